//! [`Connection::receive_copy`]: `receive` with data payloads unmasked
//! straight out of the input into a buffer of the caller's.
//!
//! A driver that reassembles messages into buffers of their own would
//! otherwise touch a large payload twice: once to unmask it in place, once to
//! copy it out of its receive window. Here the copy does the unmasking, so
//! the payload crosses memory once. Control frames are small and keep the
//! in-place path; so do compressed messages (refused here, as by `receive`).

use super::receive::Step;
use super::{Connection, Extension, Received};
use crate::error::Error;
use crate::event::Event;
use crate::frame::copy_mask_at;
use rand_core::RngCore;

/// What one call to [`Connection::receive_copy`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceivedCopy<'a> {
    /// Bytes consumed from the front of the input, as in [`Received`].
    pub consumed: usize,
    /// Payload bytes written to the front of the destination: those of a
    /// text or binary event, 0 otherwise.
    pub written: usize,
    /// The event, if one completed. Text and binary data borrow the
    /// destination (its first `written` bytes); control frames borrow the
    /// input, unmasked in place.
    pub event: Option<Event<'a>>,
}

impl<'a> ReceivedCopy<'a> {
    /// A result of the in-place steps (a control frame, or nothing).
    fn in_place(received: Received<'a>) -> Self {
        ReceivedCopy {
            consumed: received.consumed,
            written: 0,
            event: received.event,
        }
    }

    /// Nothing surfaced, `consumed` bytes taken (a frame header, or none).
    fn nothing(consumed: usize) -> Self {
        ReceivedCopy {
            consumed,
            written: 0,
            event: None,
        }
    }
}

impl<R: RngCore, E: Extension> Connection<R, E> {
    /// [`Connection::receive`], with the payload of data frames unmasked
    /// while it is copied from `input` into `dst`, in one pass, instead of
    /// in place: for a caller that keeps messages in buffers of their own.
    ///
    /// The same calls, events, errors, limits, timer activity and close
    /// handling as `receive`; only where text and binary chunks land
    /// differs. A chunk is at most `dst.len()` bytes (less any unfinished
    /// code point carried from the last call, which is copied first) and
    /// its event borrows `dst[..written]`; the input bytes it came from
    /// are consumed but left as they arrived. With no room for a payload
    /// byte, a data frame's header is still consumed and
    /// [`Connection::frame_remaining`] then says how much room the frame
    /// wants; [`MIN_INFLATE_BUFFER`](super::MIN_INFLATE_BUFFER) bytes of
    /// `dst` always make progress. Control frames are unmasked in place and
    /// borrow `input`, as with `receive`. A compressed message is refused
    /// with [`crate::Misuse::BufferTooSmall`] before anything changes: use
    /// [`Connection::receive_into`] for it.
    ///
    /// ```
    /// use wsproto::{Config, Connection, Event, Role};
    ///
    /// let mut server = Connection::new(Role::Server, Config::default());
    /// // "Hi" as a masked text frame (key 1, 2, 3, 4), then a ping.
    /// let mut input = [0x81, 0x82, 1, 2, 3, 4, b'H' ^ 1, b'i' ^ 2, 0x89, 0x80, 0, 0, 0, 0];
    /// let mut message = [0u8; 16];
    /// let got = server.receive_copy(&mut input, &mut message).unwrap();
    /// assert_eq!((got.consumed, got.written), (8, 2));
    /// assert_eq!(got.event, Some(Event::Text { data: "Hi", fin: true }));
    /// // The ping is a control frame: it borrows the input.
    /// let got = server.receive_copy(&mut input[8..], &mut message).unwrap();
    /// assert_eq!((got.consumed, got.written), (6, 0));
    /// assert_eq!(got.event, Some(Event::Ping(&[])));
    /// ```
    pub fn receive_copy<'a>(
        &mut self,
        input: &'a mut [u8],
        dst: &'a mut [u8],
    ) -> Result<ReceivedCopy<'a>, Error> {
        self.tracking_input(input.len(), |c| c.copy_steps(input, dst), |r| r.consumed)
    }

    /// The steps of `receive_steps` without a scratch buffer, ending in
    /// [`Connection::payload_copy_step`] for data frames.
    fn copy_steps<'a>(
        &mut self,
        input: &'a mut [u8],
        dst: &'a mut [u8],
    ) -> Result<ReceivedCopy<'a>, Error> {
        loop {
            if self.ignores_input() {
                return Ok(ReceivedCopy::nothing(input.len()));
            }
            let start = match self.frame {
                // Only `receive_into` may have begun a compressed frame.
                Some(frame) if frame.compressed => return Err(Self::scratch_too_small()),
                Some(_) => {
                    if self.absorb_text_tail(input) {
                        continue;
                    }
                    0
                }
                None => match self.header_step(input, 0) {
                    Ok(Step::Payload { start }) => start,
                    Ok(Step::NeedMore) => return Ok(ReceivedCopy::nothing(0)),
                    Ok(Step::Control {
                        header_len,
                        opcode,
                        mask,
                        len,
                    }) => {
                        return self
                            .control_step(input, header_len, opcode, mask, len)
                            .map(ReceivedCopy::in_place)
                    }
                    Ok(Step::NeedScratch) => return Err(Self::scratch_too_small()),
                    Err(v) => return Err(self.fail(v)),
                },
            };
            return self.payload_copy_step(input, start, dst);
        }
    }

    /// `payload_step` with the chunk unmasked into `dst` instead of in
    /// place. The carried bytes of a split code point (already unmasked, in
    /// front of the payload in `input`) go first; an unfinished code point
    /// at the end is written back unmasked into `input`, where the next call
    /// expects it, and not consumed.
    fn payload_copy_step<'a>(
        &mut self,
        input: &'a mut [u8],
        start: usize,
        dst: &'a mut [u8],
    ) -> Result<ReceivedCopy<'a>, Error> {
        let Some(frame) = self.frame else {
            return Ok(ReceivedCopy::nothing(start));
        };
        let carry = usize::from(self.carry);
        let region = input.get_mut(start..).unwrap_or_default();
        let on_wire = region.len().saturating_sub(carry);
        let room = dst.len().saturating_sub(carry);
        let take = usize::try_from(frame.remaining)
            .map_or(on_wire.min(room), |r| r.min(on_wire).min(room));
        let end = carry + take;
        let (Some(out), Some(src)) = (dst.get_mut(..end), region.get(..end)) else {
            // No room even for the carried bytes: nothing taken.
            return Ok(ReceivedCopy::nothing(start));
        };
        let (Some((out_carry, out_fresh)), Some((src_carry, src_fresh))) =
            (out.split_at_mut_checked(carry), src.split_at_checked(carry))
        else {
            return Ok(ReceivedCopy::nothing(start));
        };
        out_carry.copy_from_slice(src_carry);
        match frame.mask {
            Some(key) => copy_mask_at(out_fresh, src_fresh, key, frame.mask_offset),
            None => out_fresh.copy_from_slice(src_fresh),
        }
        let (kind, message_done) = self.advance_frame(frame, take);
        let out: &'a [u8] = out;
        let (surfaced, event) = self.surface_chunk(kind, out, take, message_done)?;
        if surfaced < end {
            // The unfinished code point of a text chunk stays in the input,
            // unmasked, where the next call expects it.
            if let (Some(back), Some(tail)) = (region.get_mut(surfaced..end), out.get(surfaced..)) {
                back.copy_from_slice(tail);
            }
        }
        Ok(ReceivedCopy {
            consumed: start + surfaced,
            written: surfaced,
            event,
        })
    }
}
