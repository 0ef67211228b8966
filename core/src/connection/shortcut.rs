//! Step 1 of the byte flow, taken first: the one-frame shortcut. A whole,
//! small, uncompressed message in a single final frame is checked, counted,
//! unmasked and surfaced in one inline pass; everything else goes to the
//! general steps in `receive.rs`. The chunking-invariance property test holds
//! the two paths to the same events, accounting and errors.
//!
//! `receive_each` has a tighter form of it, [`Connection::whole_frames`]: a
//! loop over consecutive whole single-frame messages (7- or 16-bit lengths)
//! that checks the connection's state once per run instead of once per frame.

use super::{Connection, Extension, Received, Role};
use crate::error::{Error, Violation};
use crate::event::Event;
use crate::frame::{apply_mask, unmask_whole, OpCode};
use crate::utf8;
use core::ops::ControlFlow;
use rand_core::RngCore;

/// A whole single-frame message at the front of the input (see
/// `Connection::single_frame_shape`).
#[derive(Clone, Copy)]
pub(super) struct SingleFrame {
    text: bool,
    header_len: usize,
    len: usize,
}

impl<R: RngCore, E: Extension> Connection<R, E> {
    /// Recognises the most common input: a whole uncompressed message in one
    /// final frame with a 7-bit length, all of it in `input`, while no frame
    /// is under way. Changes nothing.
    #[inline]
    pub(super) fn single_frame_shape(&self, input: &[u8]) -> Option<SingleFrame> {
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
    pub(super) fn single_frame_message<'a>(
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
                .on_data_frame(opcode, true, shape.len as u64, false, &self.config.limits)
        {
            return Err(self.fail(v));
        }
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

    /// Whether [`Connection::whole_frames`] may run: no frame under way, no
    /// text carried, input not ignored. Nothing a whole single-frame message
    /// does changes any of these, so one check covers a run of them.
    #[inline]
    pub(super) fn takes_whole_frames(&self) -> bool {
        self.frame.is_none() && self.carry == 0 && !self.ignores_input()
    }

    /// Takes consecutive whole single-frame messages from `input[*pos..]`,
    /// handing each event to `on_event`, and advances `*pos` past them.
    /// Stops at the first frame that is anything else (another opcode, RSV
    /// bits, a fragment, a 64-bit length, a wrong mask bit, a non-minimal
    /// length, bytes missing) and leaves it to the general steps, or when
    /// `on_event` breaks. Each frame gets the general path's accounting
    /// (`on_data_frame`) and, for text, the same UTF-8 check, so events and
    /// errors are the same. Only call it when
    /// [`Connection::takes_whole_frames`] holds.
    #[inline]
    pub(super) fn whole_frames(
        &mut self,
        input: &mut [u8],
        pos: &mut usize,
        on_event: &mut impl FnMut(Event<'_>, u64) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, Error> {
        // The role fixes the header length: two loops, each with constants.
        match self.role {
            Role::Server => self.whole_frames_of::<true>(input, pos, on_event),
            Role::Client => self.whole_frames_of::<false>(input, pos, on_event),
        }
    }

    /// [`Connection::whole_frames`] for masked (`MASKED`, at a server) or
    /// unmasked frames.
    #[inline(always)]
    fn whole_frames_of<const MASKED: bool>(
        &mut self,
        input: &mut [u8],
        pos: &mut usize,
        on_event: &mut impl FnMut(Event<'_>, u64) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, Error> {
        let mask_bit = if MASKED { 0x80 } else { 0 };
        let key_len = if MASKED { 4 } else { 0 };
        let fits_below = self.whole_message_fits_below();
        let total = input.len();
        let start = *pos;
        let mut rest = input.get_mut(start..).unwrap_or_default();
        // The length of the last frame whose accounting was deferred (see
        // `account_last`).
        let mut last = None;
        let flow = loop {
            let [b0, b1, ..] = *rest else {
                break ControlFlow::Continue(());
            };
            // FIN set, RSV clear, Text (0x81) or Binary (0x82); the mask bit
            // the role expects, then a 7-bit length or 126 for 16 bits.
            let short = usize::from(b1 ^ mask_bit);
            if b0.wrapping_sub(0x81) > 1 || short > 126 {
                break ControlFlow::Continue(());
            }
            let (len, len_bytes) = if short < 126 {
                (short, 0)
            } else {
                let [_, _, hi, lo, ..] = *rest else {
                    break ControlFlow::Continue(());
                };
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                if len < 126 {
                    // Not the minimal form: the general steps refuse it.
                    break ControlFlow::Continue(());
                }
                (len, 2)
            };
            let header_len = 2 + len_bytes + key_len;
            let frame_len = header_len + len;
            if rest.len() < frame_len {
                break ControlFlow::Continue(());
            }
            let (frame, tail) = core::mem::take(&mut rest).split_at_mut(frame_len);
            rest = tail;
            let text = b0 == 0x81;
            if len < fits_below {
                // Passes the accounting (see `whole_message_fits_below`);
                // only the last such frame's needs doing.
                last = Some(len);
            } else {
                // The general path's accounting; a violation (a message
                // already open, a limit) fails the connection as it would
                // there (after the deferred frame's, so that a failure
                // leaves the same accounting behind).
                self.account_last(last.take())?;
                let opcode = if text { OpCode::Text } else { OpCode::Binary };
                if let Err(v) = self.incoming.on_data_frame(
                    opcode,
                    true,
                    len as u64,
                    false,
                    &self.config.limits,
                ) {
                    return Err(self.fail(v));
                }
            }
            let (header, payload) = frame.split_at_mut(header_len);
            if MASKED {
                if let Some(key) = header.last_chunk::<4>() {
                    unmask_whole(payload, *key);
                }
            }
            let event = if text {
                match utf8::short_or_whole_str(payload) {
                    Some(data) => Event::Text { data, fin: true },
                    None => {
                        self.account_last(last)?;
                        return Err(self.fail(Violation::InvalidUtf8));
                    }
                }
            } else {
                Event::Binary {
                    data: payload,
                    fin: true,
                }
            };
            // A whole frame: nothing of it remains.
            if on_event(event, 0).is_break() {
                break ControlFlow::Break(());
            }
        };
        let at = total - rest.len();
        if at != start {
            self.inflating = false;
            self.inflate_carry_len = 0;
        }
        *pos = at;
        self.account_last(last)?;
        Ok(flow)
    }

    /// The length below which a whole single-frame message passes
    /// `on_data_frame` now (0 when none does: a message is open, or the
    /// limits are that low). Found by trying the longest lengths
    /// [`Connection::whole_frames`] takes on a copy of the accounting: every
    /// check there bounds the length from above, and a whole message leaves
    /// no message open, so what passes now passes after each such frame.
    #[inline]
    fn whole_message_fits_below(&self) -> usize {
        let limits = &self.config.limits;
        [usize::from(u16::MAX), 125]
            .into_iter()
            .find(|&len| {
                let mut probe = self.incoming;
                probe
                    .on_data_frame(OpCode::Binary, true, len as u64, false, limits)
                    .is_ok()
            })
            .map_or(0, |len| len + 1)
    }

    /// Does the accounting of a deferred frame: the state it leaves is the
    /// same as if every frame before it had been accounted in turn (each
    /// whole message starts the charge again).
    #[inline]
    fn account_last(&mut self, last: Option<usize>) -> Result<(), Error> {
        // The opcode of a whole message changes nothing it leaves behind.
        if let Some(len) = last {
            if let Err(v) = self.incoming.on_data_frame(
                OpCode::Binary,
                true,
                len as u64,
                false,
                &self.config.limits,
            ) {
                // Cannot happen (the length fit); fail as the general path would.
                return Err(self.fail(v));
            }
        }
        Ok(())
    }
}
