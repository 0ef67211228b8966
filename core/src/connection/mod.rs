//! The connection: framing, messages, control chores and timers for one
//! WebSocket after its opening handshake.
//!
//! Methods come in three kinds, and the loop is always the same:
//!
//! * **inputs** — [`Connection::receive`], [`Connection::receive_eof`],
//!   [`Connection::handle_timeout`];
//! * **commands** — [`Connection::send_text`], [`Connection::send_binary`],
//!   [`Connection::send_fragment`], [`Connection::ping`], [`Connection::pong`],
//!   [`Connection::close`];
//! * **outputs**, drained after every input or command —
//!   [`Connection::poll_transmit`] (control frames the core queued),
//!   [`Connection::poll_timeout`] (when to call `handle_timeout` next) and
//!   [`Connection::should_close_transport`].
//!
//! Data frames are written straight into the caller's buffer by the send
//! commands; events come back from `receive`, borrowing the input.
//!
//! # Extensions
//!
//! A connection is generic over an [`Extension`] that may own RSV1 (with the
//! `deflate` feature, `extensions::deflate::Deflate`, RFC 7692). The default
//! [`NoExtension`] owns nothing. With one attached
//! ([`Connection::with_extension`]), the first frame of a message may carry
//! RSV1; such a message is inflated into a caller buffer by
//! [`Connection::receive_into`], and [`Connection::send_text`] and friends
//! compress. Messages without RSV1 keep the zero-copy path.

mod extension;
mod outbox;
mod state;
mod timers;

#[cfg(feature = "deflate")]
pub(crate) use extension::sealed;
pub use extension::{Extension, NoExtension};
pub use state::{Side, State};

use crate::close::{parse_close_payload, CloseCode, MAX_CLOSE_REASON};
use crate::config::Config;
use crate::error::{Error, Misuse, TimeoutKind, Violation};
use crate::event::{Event, MessageKind};
use crate::frame::{
    apply_mask, encode_frame, encoded_frame_len, FrameHeader, HeaderStatus, OpCode,
    MAX_CONTROL_PAYLOAD,
};
use crate::message::IncomingMessage;
use crate::time::{Duration, Instant};
use crate::utf8::{self, validate_prefix, Utf8Status};
use outbox::Outbox;
use rand_core::RngCore;
use state::Transition;
use timers::{Timer, Timers};

/// The smallest input window that always lets `receive` make progress: an
/// unfinished code point (3 bytes) held in front of a whole masked control
/// frame (6 + 125 bytes).
pub const MIN_RECEIVE_BUFFER: usize = 3 + 6 + MAX_CONTROL_PAYLOAD;

/// The smallest output buffer `poll_transmit` can always write a frame into.
pub const MIN_TRANSMIT_BUFFER: usize = 6 + MAX_CONTROL_PAYLOAD;

/// The smallest scratch buffer [`Connection::receive_into`] accepts while a
/// compressed message arrives: an unfinished code point (3 bytes) carried in
/// front of at least one new byte.
pub const MIN_INFLATE_BUFFER: usize = 4;

/// RSV1 in [`FrameHeader::rsv`].
const RSV1: u8 = 0b100;

/// Which end of the connection this is. Decides masking (RFC 6455 §5.1) and
/// who closes the transport first (the server, §7.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Masks every frame it sends; rejects masked frames.
    Client,
    /// Never masks; rejects unmasked frames; closes TCP first.
    Server,
}

/// The RNG type of a connection that has none. Servers need no entropy; a
/// client built without an RNG refuses to send ([`Misuse::NoEntropy`]).
/// Its `RngCore` methods exist only to satisfy the bound and return zeros.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRng;

impl RngCore for NoRng {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        dst.fill(0);
    }
}

/// What one call to [`Connection::receive`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received<'a> {
    /// Bytes consumed from the front of the input. The rest must be passed
    /// again, unchanged and first, in the next call.
    pub consumed: usize,
    /// The event, if one completed.
    pub event: Option<Event<'a>>,
}

/// The frame whose payload is being received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IncomingFrame {
    kind: MessageKind,
    /// Last frame of its message.
    fin: bool,
    mask: Option<[u8; 4]>,
    /// Payload bytes still on the wire.
    remaining: u64,
    /// Payload bytes already unmasked, modulo 4.
    mask_offset: usize,
    /// The message is compressed: the payload goes through the extension.
    compressed: bool,
}

/// A whole single-frame message at the front of the input (see
/// `Connection::single_frame_shape`).
#[derive(Clone, Copy)]
struct SingleFrame {
    text: bool,
    header_len: usize,
    len: usize,
}

/// Where a header-level step of `receive` left off.
enum Step {
    /// Need more bytes; `consumed` so far.
    NeedMore,
    /// A whole control frame sits at `start..start + header + payload`.
    Control {
        start: usize,
        header_len: usize,
        opcode: OpCode,
        mask: Option<[u8; 4]>,
        len: usize,
    },
    /// A data frame's payload starts at `start` (after any carried text bytes).
    Payload { start: usize },
    /// A compressed data frame is next but the scratch buffer is too small:
    /// nothing was changed.
    NeedScratch,
}

/// One WebSocket connection after the opening handshake, as a state machine.
///
/// `R` supplies client masking keys; servers use the default [`NoRng`].
///
/// ```
/// use wsproto::{Config, Connection, Event, Role};
///
/// let mut server = Connection::new(Role::Server, Config::default());
/// // RFC 6455 §5.7: a masked text frame "Hello" from a client.
/// let mut input = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
/// let received = server.receive(&mut input).unwrap();
/// assert_eq!(received.consumed, 11);
/// assert_eq!(received.event, Some(Event::Text { data: "Hello", fin: true }));
///
/// // Echo it: the frame is written straight into the caller's buffer.
/// let mut out = [0u8; 64];
/// let n = server.send_text("Hello", &mut out).unwrap();
/// assert_eq!(out[..n], [0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
/// ```
#[derive(Clone, Debug)]
pub struct Connection<R = NoRng, E = NoExtension> {
    role: Role,
    config: Config,
    state: State,
    rng: Option<R>,
    /// The frame whose payload is arriving, if any.
    frame: Option<IncomingFrame>,
    /// Text bytes at the front of the next input: an unfinished code point,
    /// already unmasked and counted, not yet surfaced.
    carry: usize,
    incoming: IncomingMessage,
    /// The kind of the fragmented message being sent, if one is open.
    outgoing: Option<MessageKind>,
    outbox: Outbox,
    timers: Timers,
    /// Frames received so far; timers compare it to see peer activity.
    frames_received: u64,
    /// Close the transport once the outbox is written.
    close_transport: bool,
    /// The extension owning RSV1, if any (a zero-sized no-op by default).
    ext: E,
    /// The message being received is compressed (RSV1 on its first frame).
    inflating: bool,
    /// Decompressed text bytes of an unfinished code point, surfaced at the
    /// front of the next scratch buffer: `inflate_carry[..inflate_carry_len]`.
    inflate_carry: [u8; 3],
    inflate_carry_len: usize,
}

impl Connection<NoRng> {
    /// A connection that is already open, for `role`, with no RNG.
    ///
    /// Use this after any external handshake (HTTP/1.1 via
    /// [`crate::handshake`], HTTP/2 extended CONNECT, a proxy). A client built
    /// this way cannot send until it has an RNG: use [`Connection::with_rng`].
    pub fn new(role: Role, config: Config) -> Self {
        Connection::build(role, config, None, NoExtension)
    }
}

impl<R: RngCore> Connection<R> {
    /// A connection that is already open, taking masking keys from `rng`.
    /// A client needs one; a server ignores it.
    ///
    /// ```
    /// use wsproto::{Config, Connection, Role};
    /// # struct Counter(u32);
    /// # impl rand_core::RngCore for Counter {
    /// #     fn next_u32(&mut self) -> u32 { self.0 = self.0.wrapping_mul(747796405).wrapping_add(1); self.0 }
    /// #     fn next_u64(&mut self) -> u64 { self.next_u32() as u64 }
    /// #     fn fill_bytes(&mut self, d: &mut [u8]) { for b in d { *b = self.next_u32() as u8 } }
    /// # }
    /// let mut client = Connection::with_rng(Role::Client, Config::default(), Counter(1));
    /// let mut out = [0u8; 32];
    /// let n = client.send_binary(b"hi", &mut out).unwrap();
    /// assert_eq!(n, 2 + 4 + 2); // header, masking key, payload
    /// ```
    pub fn with_rng(role: Role, config: Config, rng: R) -> Self {
        Connection::build(role, config, Some(rng), NoExtension)
    }
}

impl<R: RngCore, E: Extension> Connection<R, E> {
    fn build(role: Role, config: Config, rng: Option<R>, ext: E) -> Self {
        let mut timers = Timers::new();
        if let Some(keepalive) = config.keepalive {
            timers.arm(Timer::Keepalive, keepalive.interval, 0);
        }
        if let Some(idle) = config.idle_timeout {
            timers.arm(Timer::Idle, idle, 0);
        }
        Connection {
            role,
            config,
            state: State::Open,
            rng,
            frame: None,
            carry: 0,
            incoming: IncomingMessage::default(),
            outgoing: None,
            outbox: Outbox::default(),
            timers,
            frames_received: 0,
            close_transport: false,
            ext,
            inflating: false,
            inflate_carry: [0; 3],
            inflate_carry_len: 0,
        }
    }

    /// Attaches the extension negotiated in the opening handshake (with the
    /// `deflate` feature, `extensions::deflate::Deflate`), replacing the
    /// current one. Call it right after building the connection, before any
    /// data flows: the extension's state starts with the next message.
    ///
    /// The extension is held inline, so its size (fixed by its const
    /// generics) is part of the connection's.
    pub fn with_extension<X: Extension>(self, ext: X) -> Connection<R, X> {
        Connection {
            role: self.role,
            config: self.config,
            state: self.state,
            rng: self.rng,
            frame: self.frame,
            carry: self.carry,
            incoming: self.incoming,
            outgoing: self.outgoing,
            outbox: self.outbox,
            timers: self.timers,
            frames_received: self.frames_received,
            close_transport: self.close_transport,
            ext,
            inflating: false,
            inflate_carry: [0; 3],
            inflate_carry_len: 0,
        }
    }

    /// The extension state.
    pub fn extension(&self) -> &E {
        &self.ext
    }

    // ----- getters -----

    /// This endpoint's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The lifecycle state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration the connection was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Payload bytes of the data frame under way that have not arrived yet,
    /// as its header announced them; 0 between frames.
    ///
    /// A hint for sizing a reassembly buffer when the first chunk of a large
    /// message arrives. It is the peer's claim, checked only against
    /// [`crate::Limits::max_frame_payload`]: cap any reservation made from it.
    ///
    /// ```
    /// use wsproto::{Config, Connection, Role};
    /// let mut server = Connection::new(Role::Server, Config::default());
    /// assert_eq!(server.frame_remaining(), 0);
    /// // A masked binary frame announcing 10 bytes, 3 of them here (zero key).
    /// let mut input = [0x82, 0x8a, 0, 0, 0, 0, 1, 2, 3];
    /// server.receive(&mut input).unwrap();
    /// assert_eq!(server.frame_remaining(), 7);
    /// ```
    pub fn frame_remaining(&self) -> u64 {
        self.frame.map_or(0, |f| f.remaining)
    }

    /// What this connection currently charges against its memory budget,
    /// [`crate::Limits::max_buffered`]: [`crate::Limits::FIXED_CHARGE`] plus
    /// the message being received (or the last one, until the next begins),
    /// its payload and [`crate::Limits::FRAME_CHARGE`] per frame. Never above
    /// the budget: the frame that would pass it fails the connection (1009).
    ///
    /// ```
    /// use wsproto::{Config, Connection, Limits, Role};
    /// let mut server = Connection::new(Role::Server, Config::default());
    /// assert_eq!(server.buffered(), Limits::FIXED_CHARGE);
    /// // A masked, unfinished binary frame of 3 bytes ("abc", zero mask key).
    /// let mut input = [0x02, 0x83, 0, 0, 0, 0, b'a', b'b', b'c'];
    /// server.receive(&mut input).unwrap();
    /// assert_eq!(server.buffered(), Limits::FIXED_CHARGE + Limits::FRAME_CHARGE + 3);
    /// ```
    pub fn buffered(&self) -> u64 {
        crate::config::Limits::FIXED_CHARGE.saturating_add(self.incoming.charge())
    }

    // ----- inputs -----

    /// Feeds bytes from the peer. Returns how many were consumed and at most
    /// one event, whose payload borrows `input` (unmasked in place).
    ///
    /// Call again with the unconsumed rest (plus any newly read bytes
    /// appended) until a call consumes nothing and returns no event. Bytes not
    /// consumed are an unfinished frame header, an unfinished control frame or
    /// the start of a split code point; the connection may have reordered them
    /// and expects them back first, unchanged. Keep the window at least
    /// [`MIN_RECEIVE_BUFFER`] bytes.
    ///
    /// On a protocol violation the error says which and what close code was
    /// queued; from then on all input is consumed and ignored.
    ///
    /// With an extension that compresses ([`Connection::with_extension`]), a
    /// compressed message needs room for its decompressed bytes: use
    /// [`Connection::receive_into`]. Here it is refused with
    /// [`Misuse::BufferTooSmall`] before anything changes.
    #[inline]
    pub fn receive<'a>(&mut self, input: &'a mut [u8]) -> Result<Received<'a>, Error> {
        self.receive_into(input, &mut [])
    }

    /// [`Connection::receive`], with `scratch` for decompressed bytes.
    ///
    /// Events of uncompressed messages and control frames borrow `input`, as
    /// with `receive`; chunks of a compressed message (RSV1 on its first
    /// frame, RFC 7692) are inflated into `scratch` and borrow it. A message
    /// bigger than `scratch` arrives as several chunks, the last with `fin`;
    /// text chunks are whole code points (an unfinished one is carried
    /// inside the connection to the next call). The decompressed size
    /// counts against [`crate::Limits::max_message_size`] while inflating
    /// (1009 once past it, without inflating further) and against the memory
    /// budget; data that is not valid DEFLATE fails with 1007.
    ///
    /// `scratch` needs at least [`MIN_INFLATE_BUFFER`] bytes while a
    /// compressed message arrives (otherwise [`Misuse::BufferTooSmall`],
    /// nothing changed); any larger size works and gives bigger chunks. It
    /// may differ from call to call: nothing is kept in it between calls.
    #[inline]
    pub fn receive_into<'a>(
        &mut self,
        input: &'a mut [u8],
        scratch: &'a mut [u8],
    ) -> Result<Received<'a>, Error> {
        // Small whole messages are taken inline, in the caller's loop; all
        // else goes through the general steps, kept out of line.
        match self.single_frame_shape(input) {
            Some(shape) => self.single_frame_message(input, shape),
            None => self.receive_steps(input, scratch),
        }
    }

    /// [`Connection::receive_into`] for everything but the inline shortcut.
    #[inline(never)]
    fn receive_steps<'a>(
        &mut self,
        input: &'a mut [u8],
        scratch: &'a mut [u8],
    ) -> Result<Received<'a>, Error> {
        if self.ignores_input() {
            return Ok(Received {
                consumed: input.len(),
                event: None,
            });
        }
        if let Some(frame) = self.frame {
            if frame.compressed {
                if scratch.len() < MIN_INFLATE_BUFFER {
                    return Err(Self::scratch_too_small());
                }
                return self.inflate_step(input, 0, scratch);
            }
        }
        if self.absorb_text_tail(input) {
            // The frame ended inside a code point: its tail joined the carry
            // and the next header starts right after it.
            return self.receive_steps(input, scratch);
        }
        match self.header_step(input, scratch.len()) {
            Ok(Step::NeedScratch) => Err(Self::scratch_too_small()),
            Ok(Step::NeedMore) => Ok(Received {
                consumed: 0,
                event: None,
            }),
            Ok(Step::Control {
                start,
                header_len,
                opcode,
                mask,
                len,
            }) => {
                let end = start + header_len + len;
                let payload = input.get_mut(start + header_len..end).unwrap_or_default();
                if let Some(key) = mask {
                    apply_mask(payload, key, 0);
                }
                let event = self.on_control(opcode, payload)?;
                Ok(Received {
                    consumed: end,
                    event,
                })
            }
            Ok(Step::Payload { start }) => match self.frame {
                Some(frame) if frame.compressed => self.inflate_step(input, start, scratch),
                _ => self.payload_step(input, start),
            },
            Err(v) => Err(self.fail(v)),
        }
    }

    /// Recognises the most common input: a whole uncompressed message in one
    /// final frame with a 7-bit length, all of it in `input`, while no frame
    /// is under way. Changes nothing.
    #[inline]
    fn single_frame_shape(&self, input: &[u8]) -> Option<SingleFrame> {
        if self.frame.is_some() || self.carry != 0 || self.ignores_input() {
            return None;
        }
        let [b0, b1, ..] = *input else {
            return None;
        };
        // FIN set, RSV clear, Text (1) or Binary (2); the mask bit the role
        // expects; a length that fits in the 7 bits.
        let masked = self.role == Role::Server;
        let len = usize::from(b1 & 0x7f);
        if !matches!(b0, 0x81 | 0x82) || (b1 & 0x80 != 0) != masked || len > 125 {
            return None;
        }
        let header_len = if masked { 6 } else { 2 };
        if input.len() < header_len + len {
            return None;
        }
        Some(SingleFrame {
            text: b0 == 0x81,
            header_len,
            len,
        })
    }

    /// Takes the frame [`Connection::single_frame_shape`] recognised, doing
    /// what the header and payload steps would (same accounting, event and
    /// error) in one pass.
    #[inline]
    fn single_frame_message<'a>(
        &mut self,
        input: &'a mut [u8],
        shape: SingleFrame,
    ) -> Result<Received<'a>, Error> {
        let (header, rest) = input.split_at_mut(shape.header_len.min(input.len()));
        let payload = rest.get_mut(..shape.len).unwrap_or_default();
        if let [_, _, k0, k1, k2, k3] = *header {
            apply_mask(payload, [k0, k1, k2, k3], 0);
        }
        let opcode = if shape.text {
            OpCode::Text
        } else {
            OpCode::Binary
        };
        // The general path's accounting; a violation (a message already
        // open, a limit) fails the connection exactly as it would there.
        if let Err(v) =
            self.incoming
                .on_data_frame(opcode, true, shape.len as u64, &self.config.limits)
        {
            return Err(self.fail(v));
        }
        self.frames_received += 1;
        self.inflating = false;
        self.inflate_carry_len = 0;
        let event = if shape.text {
            match utf8::whole_str(payload) {
                Some(data) => Event::Text { data, fin: true },
                None => return Err(self.fail(Violation::InvalidUtf8)),
            }
        } else {
            Event::Binary {
                data: payload,
                fin: true,
            }
        };
        Ok(Received {
            consumed: shape.header_len + shape.len,
            event: Some(event),
        })
    }

    fn scratch_too_small() -> Error {
        Misuse::BufferTooSmall {
            required: MIN_INFLATE_BUFFER,
        }
        .into()
    }

    /// Handles a text frame, already under way and not the last of its
    /// message, whose remaining payload in `input` only extends the carried,
    /// unfinished code point. Nothing could be surfaced or consumed, yet the
    /// frame is done: the tail is unmasked into the carry and `true` returned
    /// so `receive` goes on to the next header instead of reporting no
    /// progress with more bytes at hand.
    fn absorb_text_tail(&mut self, input: &mut [u8]) -> bool {
        let Some(frame) = self.frame else {
            return false;
        };
        let carry = self.carry;
        let Ok(take) = usize::try_from(frame.remaining) else {
            return false;
        };
        let end = carry + take;
        if frame.kind != MessageKind::Text || frame.fin || end > 3 || end > input.len() {
            return false;
        }
        let mut tail = [0u8; 3];
        let (Some(dst), Some(src)) = (tail.get_mut(..end), input.get(..end)) else {
            return false;
        };
        dst.copy_from_slice(src);
        if let (Some(key), Some(fresh)) = (frame.mask, tail.get_mut(carry..end)) {
            apply_mask(fresh, key, frame.mask_offset);
        }
        if !matches!(
            validate_prefix(tail.get(..end).unwrap_or_default()),
            Utf8Status::Prefix { valid: "", .. }
        ) {
            // A whole code point (or invalid bytes): the usual path handles it.
            return false;
        }
        if let Some(fresh) = input.get_mut(carry..end) {
            fresh.copy_from_slice(tail.get(carry..end).unwrap_or_default());
        }
        self.carry = end;
        self.frame = None;
        true
    }

    /// Parses frame headers from the front of `input` until a control frame
    /// is whole, a data frame's payload begins, or bytes run out.
    fn header_step(&mut self, input: &mut [u8], scratch_len: usize) -> Result<Step, Violation> {
        if self.frame.is_some() {
            return Ok(Step::Payload { start: 0 });
        }
        let carry = self.carry;
        let after_carry = input.get(carry..).unwrap_or_default();
        let (header, header_len) = match FrameHeader::parse(after_carry)? {
            HeaderStatus::Partial => return Ok(Step::NeedMore),
            HeaderStatus::Complete(h, n) => (h, n),
        };
        match (self.role, header.mask) {
            (Role::Server, None) => return Err(Violation::UnmaskedFrame),
            (Role::Client, Some(_)) => return Err(Violation::MaskedFrame),
            _ => {}
        }
        let rsv1 = header.rsv & RSV1 != 0;
        if header.rsv & !RSV1 != 0 || (rsv1 && !self.ext.owns_rsv1()) {
            return Err(Violation::ReservedBits);
        }
        if rsv1 && (header.opcode.is_control() || header.opcode == OpCode::Continuation) {
            // RFC 7692 §6.1: only the first frame of a message says "compressed".
            return Err(Violation::MisplacedRsv1);
        }
        if header.opcode.is_control() {
            // Control payloads are at most 125 bytes, checked by the parser.
            let len = header.payload_len as usize;
            let frame_len = header_len + len;
            let Some(region) = input.get_mut(..carry + frame_len) else {
                return Ok(Step::NeedMore);
            };
            if carry > 0 {
                // Surface the control frame whole, ahead of the carried text bytes.
                region.rotate_left(carry);
            }
            self.frames_received += 1;
            return Ok(Step::Control {
                start: 0,
                header_len,
                opcode: header.opcode,
                mask: header.mask,
                len,
            });
        }
        let first = header.opcode != OpCode::Continuation;
        let compressed = if first { rsv1 } else { self.inflating };
        if compressed && scratch_len < MIN_INFLATE_BUFFER {
            return Ok(Step::NeedScratch);
        }
        let kind = self.incoming.on_data_frame(
            header.opcode,
            header.fin,
            header.payload_len,
            &self.config.limits,
        )?;
        if first {
            self.inflating = rsv1;
            self.inflate_carry_len = 0;
            if rsv1 {
                self.ext.begin_inflate(self.config.limits.max_message_size);
            }
        }
        self.frames_received += 1;
        if let Some(region) = input.get_mut(..carry + header_len).filter(|_| carry > 0) {
            // Put the header first so the carried bytes touch the new payload.
            region.rotate_left(carry);
        }
        self.frame = Some(IncomingFrame {
            kind,
            fin: header.fin,
            mask: header.mask,
            remaining: header.payload_len,
            mask_offset: 0,
            compressed,
        });
        Ok(Step::Payload { start: header_len })
    }

    /// Unmasks and surfaces the payload bytes at `input[start..]` (after the
    /// carried bytes) of the current data frame.
    fn payload_step<'a>(
        &mut self,
        input: &'a mut [u8],
        start: usize,
    ) -> Result<Received<'a>, Error> {
        let Some(mut frame) = self.frame else {
            return Ok(Received {
                consumed: start,
                event: None,
            });
        };
        let carry = self.carry;
        let region = input.get_mut(start..).unwrap_or_default();
        let on_wire = region.len().saturating_sub(carry);
        let take = usize::try_from(frame.remaining).map_or(on_wire, |r| r.min(on_wire));
        let end = carry + take;
        let fresh = region.get_mut(carry..end).unwrap_or_default();
        if let Some(key) = frame.mask {
            apply_mask(fresh, key, frame.mask_offset);
        }
        frame.remaining -= take as u64;
        frame.mask_offset = (frame.mask_offset + take) % 4;
        let message_done = frame.remaining == 0 && frame.fin;
        self.frame = if frame.remaining == 0 {
            None
        } else {
            Some(frame)
        };
        let chunk = region.get(..end).unwrap_or_default();
        match frame.kind {
            MessageKind::Binary => {
                let event = (take > 0 || message_done).then_some(Event::Binary {
                    data: chunk,
                    fin: message_done,
                });
                Ok(Received {
                    consumed: start + end,
                    event,
                })
            }
            MessageKind::Text => match validate_prefix(chunk) {
                Utf8Status::Prefix { valid, incomplete } if !(message_done && incomplete > 0) => {
                    self.carry = incomplete;
                    let event = (!valid.is_empty() || message_done).then_some(Event::Text {
                        data: valid,
                        fin: message_done,
                    });
                    Ok(Received {
                        consumed: start + valid.len(),
                        event,
                    })
                }
                _ => Err(self.fail(Violation::InvalidUtf8)),
            },
        }
    }

    /// Unmasks the payload bytes of the current compressed frame at
    /// `input[start..]`, inflates what `scratch` has room for and surfaces
    /// the decompressed chunk. Unused payload bytes are masked again, so the
    /// caller hands them back unchanged.
    fn inflate_step<'a>(
        &mut self,
        input: &'a mut [u8],
        start: usize,
        scratch: &'a mut [u8],
    ) -> Result<Received<'a>, Error> {
        let Some(mut frame) = self.frame else {
            return Ok(Received {
                consumed: start,
                event: None,
            });
        };
        let region = input.get_mut(start..).unwrap_or_default();
        let avail = usize::try_from(frame.remaining).map_or(region.len(), |r| r.min(region.len()));
        let fresh = region.get_mut(..avail).unwrap_or_default();
        if let Some(key) = frame.mask {
            apply_mask(fresh, key, frame.mask_offset);
        }
        // The message ends with these bytes if they finish its last frame.
        let fin = frame.fin && avail as u64 == frame.remaining;
        let carried = self.inflate_carry_len.min(3);
        if let (Some(dst), Some(src)) = (
            scratch.get_mut(..carried),
            self.inflate_carry.get(..carried),
        ) {
            dst.copy_from_slice(src);
        }
        let step =
            match self
                .ext
                .inflate(fresh, scratch.get_mut(carried..).unwrap_or_default(), fin)
            {
                Ok(step) => step,
                Err(v) => return Err(self.fail(v)),
            };
        let used = step.consumed.min(avail);
        if let (Some(key), Some(unused)) = (frame.mask, fresh.get_mut(used..)) {
            apply_mask(unused, key, (frame.mask_offset + used) % 4);
        }
        if let Err(v) = self.incoming.on_inflated(step.written, &self.config.limits) {
            return Err(self.fail(v));
        }
        frame.remaining -= used as u64;
        frame.mask_offset = (frame.mask_offset + used) % 4;
        let message_done = fin && step.done;
        let frame_done = frame.remaining == 0
            && if frame.fin {
                message_done
            } else {
                !self.ext.inflate_pending()
            };
        self.frame = if frame_done { None } else { Some(frame) };
        if message_done {
            self.inflating = false;
        }
        let consumed = start + used;
        let len = carried + step.written;
        match frame.kind {
            MessageKind::Binary => {
                let data: &'a [u8] = scratch;
                let event = (len > 0 || message_done).then_some(Event::Binary {
                    data: data.get(..len).unwrap_or_default(),
                    fin: message_done,
                });
                Ok(Received { consumed, event })
            }
            MessageKind::Text => {
                let produced = scratch.get(..len).unwrap_or_default();
                let valid_len = match validate_prefix(produced) {
                    Utf8Status::Prefix { valid, incomplete }
                        if !(message_done && incomplete > 0) =>
                    {
                        valid.len()
                    }
                    _ => return Err(self.fail(Violation::InvalidUtf8)),
                };
                let tail = produced.get(valid_len..).unwrap_or_default();
                self.inflate_carry_len = tail.len().min(3);
                if let (Some(dst), Some(src)) = (
                    self.inflate_carry.get_mut(..tail.len()),
                    tail.get(..tail.len()),
                ) {
                    dst.copy_from_slice(src);
                }
                if valid_len == 0 && !message_done {
                    if consumed == 0 && frame_done || self.ext.inflate_pending() {
                        // Only an unfinished code point came out, and either
                        // the frame is over or the inflater has more to say
                        // (output, or an error behind it): go on rather than
                        // report no progress, which would make what follows
                        // depend on the scratch size.
                        return self.receive_into(input, scratch);
                    }
                    return Ok(Received {
                        consumed,
                        event: None,
                    });
                }
                // Checked again to borrow the text for 'a (the check above
                // borrowed `scratch` only locally, as the branch before may
                // reuse it); whole code points, so the fast validator.
                let data: &'a [u8] = scratch;
                match utf8::whole_str(data.get(..valid_len).unwrap_or_default()) {
                    Some(text) => Ok(Received {
                        consumed,
                        event: Some(Event::Text {
                            data: text,
                            fin: message_done,
                        }),
                    }),
                    None => Err(self.fail(Violation::InvalidUtf8)),
                }
            }
        }
    }

    /// Handles a whole, unmasked control frame.
    fn on_control<'a>(
        &mut self,
        opcode: OpCode,
        payload: &'a [u8],
    ) -> Result<Option<Event<'a>>, Error> {
        match opcode {
            OpCode::Ping => {
                if self.config.auto_pong && self.state == State::Open {
                    self.outbox.queue_pong(payload);
                }
                Ok(Some(Event::Ping(payload)))
            }
            OpCode::Pong => Ok(Some(Event::Pong(payload))),
            _ => {
                let (code, reason) = parse_close_payload(payload).map_err(|v| self.fail(v))?;
                if self.state == State::Open {
                    // Echo the peer's code (§5.5.1); an empty close is echoed empty.
                    self.outbox.queue_close(code, "");
                    self.start_close_timer();
                }
                self.transition(Transition::PeerClose(code.unwrap_or(CloseCode::NO_STATUS)));
                Ok(Some(Event::Close { code, reason }))
            }
        }
    }

    /// The transport reached end of file. Fine after the close handshake;
    /// otherwise the connection ends abnormally (1006).
    pub fn receive_eof(&mut self) -> Result<(), Error> {
        self.close_transport = true;
        if matches!(self.state, State::Closed { .. }) {
            return Ok(());
        }
        self.transition(Transition::Abnormal);
        Err(Error::AbnormalClosure)
    }

    /// Tells the connection the time is `now`. Fires due timers; calling it
    /// early or twice for the same instant does nothing more.
    ///
    /// Returns an error when a timer ends the connection (close handshake or
    /// keepalive pong overdue): it is then closed locally with 1006 and the
    /// transport should be closed.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        while let Some(timer) = self.timers.pop_expired(now) {
            let quiet = self.timers.mark(timer) == self.frames_received;
            match timer {
                Timer::Close => {
                    self.close_transport = true;
                    if !matches!(self.state, State::Closed { .. }) {
                        self.transition(Transition::Abnormal);
                        return Err(Error::Timeout(TimeoutKind::Close));
                    }
                }
                Timer::Keepalive => {
                    if let (Some(keepalive), State::Open) = (self.config.keepalive, self.state) {
                        if quiet {
                            self.outbox.queue_ping(&[]);
                            self.timers.arm_at(
                                Timer::Pong,
                                now + keepalive.timeout,
                                self.frames_received,
                            );
                        }
                        // At least 1 ns later: a zero interval must not
                        // fire again within this call, forever.
                        self.timers.arm_at(
                            Timer::Keepalive,
                            now + keepalive.interval.max(Duration::from_nanos(1)),
                            self.frames_received,
                        );
                    }
                }
                Timer::Pong => {
                    if quiet && self.state == State::Open {
                        self.close_transport = true;
                        self.transition(Transition::Abnormal);
                        return Err(Error::Timeout(TimeoutKind::Pong));
                    }
                }
                Timer::Idle => {
                    if let (Some(idle), State::Open) = (self.config.idle_timeout, self.state) {
                        if quiet {
                            self.begin_close(Some(CloseCode::GOING_AWAY), "idle timeout");
                        } else {
                            self.timers
                                .arm_at(Timer::Idle, now + idle, self.frames_received);
                        }
                    }
                }
            }
        }
        Ok(())
    }

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
        if self.outgoing.is_some() {
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
        let opcode = match (self.outgoing, kind) {
            (Some(open), _) if open != kind => return Err(Misuse::MessageInProgress.into()),
            (Some(_), _) => OpCode::Continuation,
            (None, MessageKind::Text) => OpCode::Text,
            (None, MessageKind::Binary) => OpCode::Binary,
        };
        let n = if self.ext.owns_rsv1() {
            self.write_compressed(opcode, fin, data, out)?
        } else {
            self.write_frame(opcode, fin, data, out)?
        };
        self.outgoing = if fin { None } else { Some(kind) };
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

    /// Starts the close handshake: queues a Close frame with `code` and a
    /// reason of at most 123 bytes. Data already received keeps arriving
    /// until the peer's Close.
    ///
    /// ```
    /// use wsproto::{CloseCode, Config, Connection, Role, Side, State};
    /// let mut server = Connection::new(Role::Server, Config::default());
    /// server.close(CloseCode::NORMAL, "bye").unwrap();
    /// assert_eq!(server.state(), State::Closing { initiator: Side::Local });
    /// let mut out = [0u8; 16];
    /// let n = server.poll_transmit(&mut out).unwrap();
    /// assert_eq!(out[..n], [0x88, 0x05, 0x03, 0xe8, b'b', b'y', b'e']);
    /// ```
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        if self.state != State::Open {
            return Err(Misuse::Closed.into());
        }
        if !code.is_allowed_on_wire() {
            return Err(Misuse::InvalidCloseCode.into());
        }
        if reason.len() > MAX_CLOSE_REASON {
            return Err(Misuse::ControlPayloadTooLong.into());
        }
        self.begin_close(Some(code), reason);
        Ok(())
    }

    fn begin_close(&mut self, code: Option<CloseCode>, reason: &str) {
        self.outbox.queue_close(code, reason);
        self.start_close_timer();
        self.transition(Transition::LocalClose);
    }

    // ----- outputs -----

    /// Writes queued control frames (pong, ping, close) into `out` and returns
    /// the bytes written; 0 when nothing is queued. Writes whole frames only;
    /// fails with `BufferTooSmall` only when not even the first fits.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        let mut written = 0;
        while let Some((opcode, payload)) = self.outbox.peek() {
            let mut frame = [0u8; MAX_CONTROL_PAYLOAD];
            let len = payload.len().min(frame.len());
            if let (Some(dst), Some(src)) = (frame.get_mut(..len), payload.get(..len)) {
                dst.copy_from_slice(src);
            }
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

    /// When `handle_timeout` should next be called. `Instant::ZERO` means
    /// "now": a timer is waiting for the current time to be armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.close_transport && self.outbox.is_empty() {
            return None;
        }
        self.timers.next()
    }

    /// Whether the adapter should now close (or drop) the transport: the
    /// server after the close handshake, either side after failing the
    /// connection or a timeout, once `poll_transmit` has nothing left.
    pub fn should_close_transport(&self) -> bool {
        self.close_transport && self.outbox.is_empty()
    }

    // ----- internals -----

    /// Encodes one frame for this role (masked for clients) into `out`.
    fn write_frame(
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
    fn next_mask(&mut self) -> Result<Option<[u8; 4]>, Error> {
        match (self.role, self.rng.as_mut()) {
            (Role::Server, _) => Ok(None),
            (Role::Client, Some(rng)) => Ok(Some(rng.next_u32().to_ne_bytes())),
            (Role::Client, None) => Err(Misuse::NoEntropy.into()),
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

    /// Fails the connection (§7.1.7): queue the Close with the violation's
    /// code, stop surfacing data, ignore further input, close the transport.
    #[cold]
    fn fail(&mut self, v: Violation) -> Error {
        self.outbox.queue_close(Some(v.close_code()), v.reason());
        self.close_transport = true;
        self.transition(Transition::Fail(v.close_code()));
        Error::Protocol(v)
    }

    fn start_close_timer(&mut self) {
        self.timers.stop(Timer::Keepalive);
        self.timers.stop(Timer::Pong);
        self.timers.stop(Timer::Idle);
        self.timers.arm(
            Timer::Close,
            self.config.close_timeout,
            self.frames_received,
        );
    }

    /// The one place the state changes.
    fn transition(&mut self, t: Transition) {
        self.state = self.state.next(t);
        if matches!(self.state, State::Closed { .. }) && self.role == Role::Server {
            // The server closes the TCP connection first (§7.1.1).
            self.close_transport = true;
        }
    }

    /// After the peer's Close, or once closed, input is ignored (§7.1.7).
    #[inline]
    fn ignores_input(&self) -> bool {
        matches!(
            self.state,
            State::Closed { .. }
                | State::Closing {
                    initiator: Side::Remote
                }
        )
    }
}
