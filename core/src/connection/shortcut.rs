//! Step 1 of the byte flow, taken first: the one-frame shortcut. A whole,
//! small, uncompressed message in a single final frame is checked, counted,
//! unmasked and surfaced in one inline pass; everything else goes to the
//! general steps in `receive.rs`. The chunking-invariance property test holds
//! the two paths to the same events, accounting and errors.

use super::{Connection, Extension, Received, Role};
use crate::error::{Error, Violation};
use crate::event::Event;
use crate::frame::{apply_mask, OpCode};
use crate::utf8;
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
}
