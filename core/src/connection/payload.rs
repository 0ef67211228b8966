//! Step 3 of the byte flow, for uncompressed data frames: unmask the payload
//! in place and surface it, binary as it comes and text once the surfaced
//! prefix is whole, valid UTF-8 (an unfinished code point is carried to the
//! next call).

use super::{Connection, Extension, IncomingFrame, Received};
use crate::error::{Error, Violation};
use crate::event::{Event, MessageKind};
use crate::frame::apply_mask;
use crate::utf8::{validate_prefix, Utf8Status};
use rand_core::RngCore;

impl<R: RngCore, E: Extension> Connection<R, E> {
    /// Handles a text frame, already under way and not the last of its
    /// message, whose remaining payload in `input` only extends the carried,
    /// unfinished code point. Nothing could be surfaced or consumed, yet the
    /// frame is done: the tail is unmasked into the carry and `true` returned
    /// so `receive` goes on to the next header instead of reporting no
    /// progress with more bytes at hand.
    pub(super) fn absorb_text_tail(&mut self, input: &mut [u8]) -> bool {
        let Some(frame) = self.frame else {
            return false;
        };
        let carry = usize::from(self.carry);
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
        // `end` is at most 3 (checked above).
        self.carry = end as u8;
        self.frame = None;
        true
    }

    /// Unmasks and surfaces the payload bytes at `input[start..]` (after the
    /// carried bytes) of the current data frame.
    pub(super) fn payload_step<'a>(
        &mut self,
        input: &'a mut [u8],
        start: usize,
    ) -> Result<Received<'a>, Error> {
        let Some(frame) = self.frame else {
            return Ok(Received {
                consumed: start,
                event: None,
            });
        };
        let carry = usize::from(self.carry);
        let region = input.get_mut(start..).unwrap_or_default();
        let on_wire = region.len().saturating_sub(carry);
        let take = usize::try_from(frame.remaining).map_or(on_wire, |r| r.min(on_wire));
        let end = carry + take;
        let fresh = region.get_mut(carry..end).unwrap_or_default();
        if let Some(key) = frame.mask {
            apply_mask(fresh, key, frame.mask_offset);
        }
        let (kind, message_done) = self.advance_frame(frame, take);
        let chunk = region.get(..end).unwrap_or_default();
        let (surfaced, event) = self.surface_chunk(kind, chunk, take, message_done)?;
        Ok(Received {
            consumed: start + surfaced,
            event,
        })
    }

    /// Counts `take` payload bytes of `frame`, the frame under way, as
    /// received: the mask offset moves on and a finished frame is cleared.
    /// Returns the frame's kind and whether its message is now complete.
    pub(super) fn advance_frame(
        &mut self,
        mut frame: IncomingFrame,
        take: usize,
    ) -> (MessageKind, bool) {
        // `take` never exceeds `remaining`: both callers cap it there.
        frame.remaining = frame.remaining.saturating_sub(take as u64);
        frame.mask_offset = (frame.mask_offset + take) % 4;
        let message_done = frame.remaining == 0 && frame.fin;
        self.frame = (frame.remaining != 0).then_some(frame);
        (frame.kind, message_done)
    }

    /// Surfaces `chunk` (the carried bytes, then `take` fresh ones, all
    /// unmasked) as the event of its kind: binary whole, text up to its last
    /// whole code point, with an unfinished one carried to the next call.
    /// Returns how many bytes of `chunk` were surfaced, and the event.
    pub(super) fn surface_chunk<'a>(
        &mut self,
        kind: MessageKind,
        chunk: &'a [u8],
        take: usize,
        message_done: bool,
    ) -> Result<(usize, Option<Event<'a>>), Error> {
        match kind {
            MessageKind::Binary => {
                let event = (take > 0 || message_done).then_some(Event::Binary {
                    data: chunk,
                    fin: message_done,
                });
                Ok((chunk.len(), event))
            }
            MessageKind::Text => match validate_prefix(chunk) {
                Utf8Status::Prefix { valid, incomplete } if !(message_done && incomplete > 0) => {
                    // An unfinished code point: at most 3 bytes.
                    self.carry = incomplete.min(3) as u8;
                    let event = (!valid.is_empty() || message_done).then_some(Event::Text {
                        data: valid,
                        fin: message_done,
                    });
                    Ok((valid.len(), event))
                }
                _ => Err(self.fail(Violation::InvalidUtf8)),
            },
        }
    }
}
