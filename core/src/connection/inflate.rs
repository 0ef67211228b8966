//! Step 3 of the byte flow, for compressed data frames (permessage-deflate,
//! RFC 7692): unmask the payload, inflate what the caller's scratch buffer
//! has room for, and surface the decompressed chunk; text once its surfaced
//! prefix is whole, valid UTF-8, with an unfinished code point carried inside
//! the connection to the front of the next scratch buffer. Decompressed
//! bytes count against the message limit and the memory budget as they come
//! out. Payload bytes the inflater did not take are masked again, so the
//! caller hands them back unchanged.

use super::{Connection, Extension, Received};
use crate::error::{Error, Violation};
use crate::event::{Event, MessageKind};
use crate::frame::apply_mask;
use crate::utf8::{self, validate_prefix, Utf8Status};
use rand_core::RngCore;

/// What one inflate step did.
pub(super) enum Inflated<'a> {
    /// The result of this `receive` call.
    Done(Received<'a>),
    /// Nothing consumed and nothing to surface, yet the step loop should go
    /// round again (the frame ended, or the inflater has more to say): the
    /// input and scratch are handed back untouched.
    Again(&'a mut [u8], &'a mut [u8]),
}

impl<R: RngCore, E: Extension> Connection<R, E> {
    /// Unmasks the payload bytes of the current compressed frame at
    /// `input[start..]`, inflates what `scratch` has room for and surfaces
    /// the decompressed chunk. Unused payload bytes are masked again, so the
    /// caller hands them back unchanged.
    pub(super) fn inflate_step<'a>(
        &mut self,
        input: &'a mut [u8],
        start: usize,
        scratch: &'a mut [u8],
    ) -> Result<Inflated<'a>, Error> {
        let Some(mut frame) = self.frame else {
            return Ok(Inflated::Done(Received {
                consumed: start,
                event: None,
            }));
        };
        let region = input.get_mut(start..).unwrap_or_default();
        let avail = usize::try_from(frame.remaining).map_or(region.len(), |r| r.min(region.len()));
        let fresh = region.get_mut(..avail).unwrap_or_default();
        if let Some(key) = frame.mask {
            apply_mask(fresh, key, frame.mask_offset);
        }
        // The message ends with these bytes if they finish its last frame.
        let fin = frame.fin && avail as u64 == frame.remaining;
        let carried = usize::from(self.inflate_carry_len).min(3);
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
                self.from_scratch = event.is_some();
                Ok(Inflated::Done(Received { consumed, event }))
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
                self.inflate_carry_len = tail.len().min(3) as u8;
                if let (Some(dst), Some(src)) = (
                    self.inflate_carry.get_mut(..tail.len()),
                    tail.get(..tail.len()),
                ) {
                    dst.copy_from_slice(src);
                }
                if valid_len == 0 && !message_done {
                    if consumed == 0 && (frame_done || self.ext.inflate_pending()) {
                        // Only an unfinished code point came out and nothing
                        // was consumed, but the frame is over or the inflater
                        // has more to say (output, or an error behind it):
                        // the step loop goes on rather than report no
                        // progress, which would make what follows depend on
                        // the scratch size.
                        return Ok(Inflated::Again(input, scratch));
                    }
                    // Bytes were consumed: the caller calls again.
                    return Ok(Inflated::Done(Received {
                        consumed,
                        event: None,
                    }));
                }
                // Checked again to borrow the text for 'a (the check above
                // borrowed `scratch` only locally, as the branch before may
                // reuse it); whole code points, so the fast validator.
                let data: &'a [u8] = scratch;
                match utf8::whole_str(data.get(..valid_len).unwrap_or_default()) {
                    Some(text) => {
                        self.from_scratch = true;
                        Ok(Inflated::Done(Received {
                            consumed,
                            event: Some(Event::Text {
                                data: text,
                                fin: message_done,
                            }),
                        }))
                    }
                    None => Err(self.fail(Violation::InvalidUtf8)),
                }
            }
        }
    }
}
