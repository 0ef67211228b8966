//! Step 3 of the byte flow, for control frames: a whole, unmasked Ping, Pong
//! or Close is answered (pong, close echo) and surfaced. Also the rules for a
//! received Close payload (RFC 6455 §5.5.1, §7.4).

use super::{Connection, Extension, Flags, State, Transition};
use crate::close::CloseCode;
use crate::error::{Error, Violation};
use crate::event::Event;
use crate::frame::OpCode;
use rand_core::RngCore;

impl<R: RngCore, E: Extension> Connection<R, E> {
    /// Handles a whole, unmasked control frame.
    pub(super) fn on_control<'a>(
        &mut self,
        opcode: OpCode,
        payload: &'a [u8],
    ) -> Result<Option<Event<'a>>, Error> {
        match opcode {
            OpCode::Ping => {
                // Answered until a Close is received (§5.5.2), which ends reading
                // (`ignores_input`); our own Close forbids only data (§5.5.1).
                if self.flags.has(Flags::AUTO_PONG) {
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
}

/// Splits and checks a received Close payload: empty, or a two-byte code
/// allowed on the wire followed by at most 123 bytes of UTF-8.
fn parse_close_payload(payload: &[u8]) -> Result<(Option<CloseCode>, &str), Violation> {
    match payload {
        [] => Ok((None, "")),
        [_] => Err(Violation::CloseFrameTooShort),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_allowed_on_wire() {
                return Err(Violation::InvalidCloseCode);
            }
            let reason = core::str::from_utf8(reason).map_err(|_| Violation::InvalidCloseReason)?;
            Ok((Some(code), reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_rules() {
        assert_eq!(parse_close_payload(&[]), Ok((None, "")));
        assert_eq!(
            parse_close_payload(&[3]),
            Err(Violation::CloseFrameTooShort)
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xe8, b'o', b'k']),
            Ok((Some(CloseCode::NORMAL), "ok"))
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xed]),
            Err(Violation::InvalidCloseCode)
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xe8, 0xff]),
            Err(Violation::InvalidCloseReason)
        );
    }
}
