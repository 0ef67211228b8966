//! Step 2 of the byte flow: the public entry points and the step loop.
//! Anything the shortcut (`shortcut.rs`) does not take comes here: a frame
//! header is parsed and checked (role, RSV bits, sequencing, limits and the
//! memory budget) before any payload is surfaced, then the frame goes to its
//! step: `control.rs`, `payload.rs` or `inflate.rs`. The loop only goes round
//! again when a step finished a frame without anything to surface or
//! consume, so that a call never reports "no progress" with bytes at hand.

use super::inflate::Inflated;
use super::{Connection, Extension, IncomingFrame, Received, Role, MIN_INFLATE_BUFFER, RSV1};
use crate::error::{Error, Misuse, Violation};
use crate::event::Event;
use crate::frame::{apply_mask, FrameHeader, HeaderStatus, OpCode};
use core::ops::ControlFlow;
use rand_core::RngCore;

/// Where the header step left off.
pub(super) enum Step {
    /// Need more bytes; nothing consumed.
    NeedMore,
    /// A whole control frame sits at `input[..header_len + len]`.
    Control {
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

impl<R: RngCore, E: Extension> Connection<R, E> {
    /// Feeds bytes from the peer. Returns how many were consumed and at most
    /// one event, whose payload borrows `input` (unmasked in place).
    ///
    /// Call again with the unconsumed rest (plus any newly read bytes
    /// appended) until a call consumes nothing and returns no event. Bytes not
    /// consumed are an unfinished frame header, an unfinished control frame or
    /// the start of a split code point; the connection may have reordered them
    /// and expects them back first, unchanged. Keep the window at least
    /// [`MIN_RECEIVE_BUFFER`](super::MIN_RECEIVE_BUFFER) bytes.
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
        self.tracking_input(input.len(), |c| c.step(input, scratch), |r| r.consumed)
    }

    /// One receive call over `len` bytes of input: every byte past the ones
    /// handed back from the last call is new, so peer activity for the
    /// keepalive and idle timers; what `call` leaves unconsumed (`consumed`
    /// reads it from the result) is remembered for the next call.
    #[inline]
    pub(super) fn tracking_input<T>(
        &mut self,
        len: usize,
        call: impl FnOnce(&mut Self) -> Result<T, Error>,
        consumed: impl FnOnce(&T) -> usize,
    ) -> Result<T, Error> {
        if len > self.unconsumed {
            self.timers.saw_activity();
        }
        let result = call(self);
        self.unconsumed = match &result {
            Ok(r) => len.saturating_sub(consumed(r)),
            Err(_) => 0,
        };
        result
    }

    /// Decodes every whole frame at the front of `input` in one call, handing
    /// each event to `on_event` as it completes (borrowing `input`, unmasked
    /// in place, for the duration of the callback). Returns the bytes
    /// consumed: what is left is an unfinished frame header, control frame or
    /// code point, to be passed again, first, with more bytes appended, as
    /// with [`Connection::receive`].
    ///
    /// The same events, errors and output as calling `receive` in a loop, but
    /// the per-call work (activity bookkeeping, the loop itself) is paid once
    /// per buffer: with many small frames per read this is the faster way in.
    /// `on_event` may return [`ControlFlow::Break`] to stop early; the bytes
    /// of the events handed over so far are counted as consumed.
    ///
    /// ```
    /// use core::ops::ControlFlow;
    /// use wsproto::{Config, Connection, Event, Role};
    ///
    /// let mut server = Connection::new(Role::Server, Config::default());
    /// // Two masked binary frames (zero keys) and half of a third.
    /// let mut input = [0x82, 0x81, 0, 0, 0, 0, 1, 0x82, 0x81, 0, 0, 0, 0, 2, 0x82];
    /// let mut seen = Vec::new();
    /// let consumed = server
    ///     .receive_each(&mut input, |event| {
    ///         if let Event::Binary { data, .. } = event {
    ///             seen.push(data[0]);
    ///         }
    ///         ControlFlow::Continue(())
    ///     })
    ///     .unwrap();
    /// assert_eq!((seen, consumed), (vec![1, 2], 14));
    /// ```
    #[inline]
    pub fn receive_each(
        &mut self,
        input: &mut [u8],
        on_event: impl FnMut(Event<'_>) -> ControlFlow<()>,
    ) -> Result<usize, Error> {
        self.receive_each_into(input, &mut [], on_event)
    }

    /// [`Connection::receive_each`], with `scratch` for decompressed bytes
    /// (see [`Connection::receive_into`]): events of compressed messages
    /// borrow `scratch`.
    #[inline]
    pub fn receive_each_into(
        &mut self,
        input: &mut [u8],
        scratch: &mut [u8],
        mut on_event: impl FnMut(Event<'_>) -> ControlFlow<()>,
    ) -> Result<usize, Error> {
        self.receive_each_with_remaining(input, scratch, |event, _| on_event(event))
    }

    /// [`Connection::receive_each_into`], also handing `on_event` what
    /// [`Connection::frame_remaining`] would return right after the event:
    /// the payload bytes of its frame still to come (0 once the frame is
    /// whole). A driver reassembling messages sizes its buffer from it when
    /// the first chunk of a large frame arrives, without leaving the loop.
    ///
    /// ```
    /// use core::ops::ControlFlow;
    /// use wsproto::{Config, Connection, Event, Role};
    ///
    /// let mut server = Connection::new(Role::Server, Config::default());
    /// // A whole binary frame, then 2 of the 5 payload bytes of another (zero keys).
    /// let mut input = [0x82, 0x81, 0, 0, 0, 0, 1, 0x82, 0x85, 0, 0, 0, 0, 2, 3];
    /// let mut seen = Vec::new();
    /// let consumed = server
    ///     .receive_each_with_remaining(&mut input, &mut [], |event, remaining| {
    ///         if let Event::Binary { data, fin } = event {
    ///             seen.push((data.to_vec(), fin, remaining));
    ///         }
    ///         ControlFlow::Continue(())
    ///     })
    ///     .unwrap();
    /// assert_eq!(consumed, 15);
    /// assert_eq!(seen, [(vec![1], true, 0), (vec![2, 3], false, 3)]);
    /// ```
    #[inline]
    pub fn receive_each_with_remaining(
        &mut self,
        input: &mut [u8],
        scratch: &mut [u8],
        mut on_event: impl FnMut(Event<'_>, u64) -> ControlFlow<()>,
    ) -> Result<usize, Error> {
        let len = input.len();
        if len > self.unconsumed {
            self.timers.saw_activity();
        }
        let mut pos = 0;
        loop {
            // Runs of whole single-frame messages go through the tight loop
            // (`shortcut.rs`); it stops at the first frame it does not take.
            #[cfg(feature = "fast-receive")]
            if self.takes_whole_frames() {
                match self.whole_frames(input, &mut pos, &mut on_event) {
                    Ok(ControlFlow::Continue(())) => {}
                    Ok(ControlFlow::Break(())) => break,
                    Err(e) => {
                        self.unconsumed = 0;
                        return Err(e);
                    }
                }
            }
            let rest = input.get_mut(pos..).unwrap_or_default();
            let step = self.step(rest, &mut *scratch);
            let received = match step {
                Ok(received) => received,
                Err(e) => {
                    self.unconsumed = 0;
                    return Err(e);
                }
            };
            pos += received.consumed;
            let stop = match received.event {
                Some(event) => on_event(event, self.frame_remaining()).is_break(),
                None => received.consumed == 0,
            };
            if stop {
                break;
            }
        }
        self.unconsumed = len.saturating_sub(pos);
        Ok(pos)
    }

    /// One call's worth of input: small whole messages are taken inline, in
    /// the caller's loop (with the `fast-receive` feature); all else goes
    /// through the general steps, kept out of line.
    #[inline(always)]
    fn step<'a>(
        &mut self,
        input: &'a mut [u8],
        scratch: &'a mut [u8],
    ) -> Result<Received<'a>, Error> {
        #[cfg(feature = "fast-receive")]
        if let Some(shape) = self.single_frame_shape(input) {
            return self.single_frame_message(input, shape);
        }
        self.receive_steps(input, scratch)
    }

    /// [`Connection::receive_into`] for everything but the inline shortcut.
    #[inline(never)]
    fn receive_steps<'a>(
        &mut self,
        mut input: &'a mut [u8],
        mut scratch: &'a mut [u8],
    ) -> Result<Received<'a>, Error> {
        loop {
            if self.ignores_input() {
                return Ok(Received {
                    consumed: input.len(),
                    event: None,
                });
            }
            let start = match self.frame {
                // A compressed frame under way continues at the front.
                Some(frame) if frame.compressed => 0,
                Some(_) => {
                    if self.absorb_text_tail(input) {
                        // The frame ended inside a code point: its tail
                        // joined the carry; the next header follows it.
                        continue;
                    }
                    0
                }
                None => match self.header_step(input, scratch.len()) {
                    Ok(Step::Payload { start }) => start,
                    Ok(Step::NeedMore) => {
                        return Ok(Received {
                            consumed: 0,
                            event: None,
                        })
                    }
                    Ok(Step::Control {
                        header_len,
                        opcode,
                        mask,
                        len,
                    }) => return self.control_step(input, header_len, opcode, mask, len),
                    Ok(Step::NeedScratch) => return Err(Self::scratch_too_small()),
                    Err(v) => return Err(self.fail(v)),
                },
            };
            match self.frame {
                Some(frame) if frame.compressed => {
                    if scratch.len() < MIN_INFLATE_BUFFER {
                        return Err(Self::scratch_too_small());
                    }
                    match self.inflate_step(input, start, scratch)? {
                        Inflated::Done(received) => return Ok(received),
                        // Nothing consumed, nothing to surface, the frame
                        // over or more output due: the input is unchanged.
                        Inflated::Again(i, s) => (input, scratch) = (i, s),
                    }
                }
                _ => return self.payload_step(input, start),
            }
        }
    }

    pub(super) fn scratch_too_small() -> Error {
        Misuse::BufferTooSmall {
            required: MIN_INFLATE_BUFFER,
        }
        .into()
    }

    /// Unmasks a whole control frame at the front of `input` and hands it to
    /// `control.rs`.
    pub(super) fn control_step<'a>(
        &mut self,
        input: &'a mut [u8],
        header_len: usize,
        opcode: OpCode,
        mask: Option<[u8; 4]>,
        len: usize,
    ) -> Result<Received<'a>, Error> {
        let end = header_len + len;
        let payload = input.get_mut(header_len..end).unwrap_or_default();
        if let Some(key) = mask {
            apply_mask(payload, key, 0);
        }
        let event = self.on_control(opcode, payload)?;
        Ok(Received {
            consumed: end,
            event,
        })
    }

    /// is whole, a data frame's payload begins, or bytes run out.
    pub(super) fn header_step(
        &mut self,
        input: &mut [u8],
        scratch_len: usize,
    ) -> Result<Step, Violation> {
        let carry = usize::from(self.carry);
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
                rotate_left(region, carry);
            }
            return Ok(Step::Control {
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
            compressed,
            &self.config.limits,
        )?;
        if first {
            self.inflating = rsv1;
            self.inflate_carry_len = 0;
            if rsv1 {
                self.ext.begin_inflate(self.config.limits.max_message_size);
            }
        }
        if let Some(region) = input.get_mut(..carry + header_len).filter(|_| carry > 0) {
            // Put the header first so the carried bytes touch the new payload.
            rotate_left(region, carry);
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
}

/// `region.rotate_left(n)` by three reversals: only swaps, no overlapping
/// copy. The carried bytes are at most three and the region a header or a
/// control frame, so this is never hot; core's rotation would link the
/// `memmove` routine (about 660 bytes on Cortex-M) for it.
fn rotate_left(region: &mut [u8], n: usize) {
    if let Some((front, back)) = region.split_at_mut_checked(n) {
        front.reverse();
        back.reverse();
        region.reverse();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rotate_left_agrees_with_core() {
        let bytes: [u8; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        for len in 0..=bytes.len() {
            for n in 0..=len {
                let mut ours = bytes;
                let mut core = bytes;
                super::rotate_left(&mut ours[..len], n);
                core[..len].rotate_left(n);
                assert_eq!(ours, core, "len {len}, n {n}");
            }
        }
    }
}
