//! The send path: data frames written straight into the caller's buffer
//! (compressed when an extension owns RSV1), control frames queued in the
//! outbox and drained by `poll_transmit`.

use super::{Connection, Extension, Flags, Role, State, Transition, RSV1};
use crate::close::CloseCode;
use crate::error::{Error, Misuse};
use crate::event::MessageKind;
use crate::frame::{
    apply_mask, encode_frame, encoded_frame_len, FrameHeader, OpCode, MAX_CONTROL_PAYLOAD,
};
use rand_core::RngCore;

impl<R: RngCore, E: Extension> Connection<R, E> {
    // ----- commands -----

    /// Writes a whole text message as one frame into `out`, returning its length.
    pub fn send_text(&mut self, text: &str, out: &mut [u8]) -> Result<usize, Error> {
        self.send_whole(MessageKind::Text, text.as_bytes(), out)
    }

    /// Writes a whole binary message as one frame into `out`, returning its length.
    pub fn send_binary(&mut self, data: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        self.send_whole(MessageKind::Binary, data, out)
    }

    fn send_whole(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        if self.flags.outgoing().is_some() {
            return Err(Misuse::MessageInProgress.into());
        }
        self.send_fragment(kind, data, true, out)
    }

    /// Writes one fragment of a message into `out`. The first fragment opens
    /// a message of `kind`; later ones must name the same kind and go out as
    /// continuations; `fin` closes it. Control frames may be sent between
    /// fragments. For text, the fragments together must be valid UTF-8.
    ///
    /// ```
    /// use wsproto::{Config, Connection, MessageKind, Role};
    /// let mut server = Connection::new(Role::Server, Config::default());
    /// let mut out = [0u8; 16];
    /// let n = server.send_fragment(MessageKind::Text, b"Hel", false, &mut out).unwrap();
    /// assert_eq!(out[..n], [0x01, 0x03, b'H', b'e', b'l']); // RFC 6455 §5.7
    /// let n = server.send_fragment(MessageKind::Text, b"lo", true, &mut out).unwrap();
    /// assert_eq!(out[..n], [0x80, 0x02, b'l', b'o']);
    /// ```
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
        out: &mut [u8],
    ) -> Result<usize, Error> {
        if self.state != State::Open {
            return Err(Misuse::Closed.into());
        }
        let opcode = self.next_data_opcode(kind)?;
        let n = if self.ext.owns_rsv1() {
            self.write_compressed(opcode, fin, data, out)?
        } else {
            self.write_frame(opcode, fin, data, out)?
        };
        self.flags.set_outgoing(if fin { None } else { Some(kind) });
        Ok(n)
    }

    /// Writes only the header of the data frame that [`Connection::send_fragment`]
    /// would write for `len` bytes of `kind`, for a server that sends the
    /// payload itself, untouched, right after it (a vectored write of header
    /// and payload, with no copy of the payload). Sequencing is that of
    /// `send_fragment`; for text the caller is responsible for valid UTF-8.
    ///
    /// Only for payloads that go out verbatim: a client must mask its frames
    /// and a compressing connection rewrites them, so both get
    /// [`Misuse::PayloadNotVerbatim`] and nothing changes.
    ///
    /// ```
    /// use wsproto::{Config, Connection, MessageKind, Role};
    /// let mut server = Connection::new(Role::Server, Config::default());
    /// let payload = vec![7u8; 70_000];
    /// let mut header = [0u8; wsproto::frame::MAX_HEADER_LEN];
    /// let n = server.send_header(MessageKind::Binary, payload.len(), true, &mut header).unwrap();
    /// assert_eq!(header[..n], [0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    /// // write_vectored(&[IoSlice::new(&header[..n]), IoSlice::new(&payload)])
    /// ```
    pub fn send_header(
        &mut self,
        kind: MessageKind,
        len: usize,
        fin: bool,
        out: &mut [u8],
    ) -> Result<usize, Error> {
        if self.role == Role::Client || self.ext.owns_rsv1() {
            return Err(Misuse::PayloadNotVerbatim.into());
        }
        if self.state != State::Open {
            return Err(Misuse::Closed.into());
        }
        let opcode = self.next_data_opcode(kind)?;
        let header = FrameHeader {
            fin,
            rsv: 0,
            opcode,
            mask: None,
            payload_len: len as u64,
        };
        let n = header.emit(out)?;
        self.flags.set_outgoing(if fin { None } else { Some(kind) });
        Ok(n)
    }

    /// The size of an `out` buffer that a send command always fits `len`
    /// bytes of message data into: the frame itself, or with compression the
    /// frame of the largest compressed form (the compressor may also hold
    /// back bytes of earlier fragments of the message and write them now).
    ///
    /// ```
    /// use wsproto::{Config, Connection, Role};
    /// let server = Connection::new(Role::Server, Config::default());
    /// assert_eq!(server.send_buffer_len(5), 7);
    /// ```
    pub fn send_buffer_len(&self, len: usize) -> usize {
        let masked = self.role == Role::Client;
        if self.ext.owns_rsv1() {
            encoded_frame_len(self.ext.compress_bound(len), masked)
        } else {
            encoded_frame_len(len, masked)
        }
    }

    /// Queues a ping with up to 125 bytes of payload (replacing a queued one).
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.check_control(payload.len())?;
        self.outbox.queue_ping(payload);
        Ok(())
    }

    /// Queues a pong (replacing a queued one). Needed only with
    /// `Config::auto_pong` off, or as a unidirectional heartbeat.
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.check_control(payload.len())?;
        self.outbox.queue_pong(payload);
        Ok(())
    }

    fn check_control(&self, len: usize) -> Result<(), Error> {
        if self.state != State::Open {
            return Err(Misuse::Closed.into());
        }
        if len > MAX_CONTROL_PAYLOAD {
            return Err(Misuse::ControlPayloadTooLong.into());
        }
        Ok(())
    }

    // ----- outputs -----

    /// Writes queued control frames (pong, ping, close) into `out` and returns
    /// the bytes written; 0 when nothing is queued. Writes whole frames only;
    /// fails with `BufferTooSmall` only when not even the first fits.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        let mut written = 0;
        let mut frame = [0u8; MAX_CONTROL_PAYLOAD];
        while let Some((opcode, len)) = self.outbox.peek(&mut frame) {
            let rest = out.get_mut(written..).unwrap_or_default();
            match self.write_frame(opcode, true, frame.get(..len).unwrap_or_default(), rest) {
                Ok(n) => written += n,
                Err(Error::Misuse(Misuse::BufferTooSmall { .. })) if written > 0 => break,
                Err(e) => return Err(e),
            }
            self.outbox.pop();
            if opcode == OpCode::Close {
                if let Some(code) = self
                    .outbox
                    .queued_close_code()
                    .or(Some(CloseCode::NO_STATUS))
                {
                    self.transition(Transition::EchoSent(code));
                }
            }
        }
        Ok(written)
    }

    // ----- internals -----

    /// The opcode of the next data frame of `kind`: a new message's, or a
    /// continuation of the open one (which must be of the same kind).
    fn next_data_opcode(&self, kind: MessageKind) -> Result<OpCode, Error> {
        match (self.flags.outgoing(), kind) {
            (Some(open), _) if open != kind => Err(Misuse::MessageInProgress.into()),
            (Some(_), _) => Ok(OpCode::Continuation),
            (None, MessageKind::Text) => Ok(OpCode::Text),
            (None, MessageKind::Binary) => Ok(OpCode::Binary),
        }
    }

    /// Encodes one frame for this role (masked for clients) into `out`.
    pub(super) fn write_frame(
        &mut self,
        opcode: OpCode,
        fin: bool,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let mask = self.next_mask()?;
        let header = FrameHeader {
            fin,
            rsv: 0,
            opcode,
            mask,
            payload_len: payload.len() as u64,
        };
        Ok(encode_frame(header, payload, out)?)
    }

    /// A masking key for a client's frame; `None` for a server.
    pub(super) fn next_mask(&mut self) -> Result<Option<[u8; 4]>, Error> {
        match (self.role, self.flags.has(Flags::HAS_RNG)) {
            (Role::Server, _) => Ok(None),
            (Role::Client, true) => Ok(Some(self.rng.next_u32().to_ne_bytes())),
            (Role::Client, false) => Err(Misuse::NoEntropy.into()),
        }
    }

    /// Compresses `data` (the next bytes of the outgoing message) into one
    /// frame in `out`; RSV1 on the message's first frame (RFC 7692 §6). The
    /// room is checked first, so on `BufferTooSmall` nothing changed.
    fn write_compressed(
        &mut self,
        opcode: OpCode,
        fin: bool,
        data: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let mask = self.next_mask()?;
        let bound = self.ext.compress_bound(data.len());
        let required = encoded_frame_len(bound, mask.is_some());
        let max_header = required - bound;
        let Some(frame) = out.get_mut(..required) else {
            return Err(Misuse::BufferTooSmall { required }.into());
        };
        let body = frame.get_mut(max_header..).unwrap_or_default();
        let Some(n) = self.ext.compress(data, body, fin).map(|n| n.min(bound)) else {
            return Err(Misuse::BufferTooSmall { required }.into());
        };
        let header = FrameHeader {
            fin,
            rsv: if opcode == OpCode::Continuation {
                0
            } else {
                RSV1
            },
            opcode,
            mask,
            payload_len: n as u64,
        };
        let header_len = header.encoded_len();
        // The header of the real length is no longer than the reserved one:
        // move the payload down to meet it (lengths are always minimal).
        frame.copy_within(max_header..max_header + n, header_len);
        header.emit(frame)?;
        if let (Some(key), Some(payload)) = (mask, frame.get_mut(header_len..header_len + n)) {
            apply_mask(payload, key, 0);
        }
        Ok(header_len + n)
    }
}
