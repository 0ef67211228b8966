//! Incoming message sequencing: which data frame may follow which, and the
//! size and fragment accounting that bounds a message.

use crate::config::Limits;
use crate::error::Violation;
use crate::event::MessageKind;
use crate::frame::OpCode;

/// The message currently being received, if any.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct IncomingMessage {
    open: Option<Open>,
    /// The budget charge of the current message (or of the last one, until
    /// the next begins: its final payload may still be arriving): payload
    /// plus `Limits::FRAME_CHARGE` per frame.
    charge: u64,
    /// Data payload announced by every data frame header accepted so far,
    /// over the whole connection (wrapping): less the current frame's
    /// remaining payload, the data bytes received (`Config::min_progress`).
    announced: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Open {
    kind: MessageKind,
    size: u64,
    frames: u32,
}

impl IncomingMessage {
    /// Accounts for a data frame header (Text, Binary or Continuation) and
    /// returns the kind of message it belongs to. Checks sequencing first,
    /// then the frame, message and fragment limits, then the memory budget
    /// (`Limits::max_buffered`) — all before any payload.
    ///
    /// The payload of a `compressed` frame is not charged: it is inflated
    /// straight from the input, and what the caller holds are the inflated
    /// bytes, charged as they come out ([`IncomingMessage::on_inflated`]).
    #[inline]
    pub(crate) fn on_data_frame(
        &mut self,
        opcode: OpCode,
        fin: bool,
        len: u64,
        compressed: bool,
        limits: &Limits,
    ) -> Result<MessageKind, Violation> {
        let mut open = match (opcode, self.open) {
            (OpCode::Continuation, Some(open)) => open,
            (OpCode::Continuation, None) => return Err(Violation::UnexpectedContinuation),
            (_, Some(_)) => return Err(Violation::ExpectedContinuation),
            (OpCode::Text, None) => Open {
                kind: MessageKind::Text,
                size: 0,
                frames: 0,
            },
            (_, None) => Open {
                kind: MessageKind::Binary,
                size: 0,
                frames: 0,
            },
        };
        if len > limits.max_frame_payload {
            return Err(Violation::FrameTooLarge);
        }
        open.size = open.size.saturating_add(len);
        if open.size > limits.max_message_size {
            return Err(Violation::MessageTooLarge);
        }
        open.frames = open.frames.saturating_add(1);
        if open.frames > limits.max_fragments {
            return Err(Violation::TooManyFragments);
        }
        let held = if compressed { 0 } else { len };
        let charge = if open.frames == 1 { 0 } else { self.charge }
            .saturating_add(held)
            .saturating_add(Limits::FRAME_CHARGE);
        if charge.saturating_add(Limits::FIXED_CHARGE) > limits.max_buffered {
            return Err(Violation::BudgetExceeded);
        }
        self.charge = charge;
        self.announced = self.announced.wrapping_add(len);
        self.open = if fin { None } else { Some(open) };
        Ok(open.kind)
    }

    /// Accounts for `n` decompressed bytes of the current (compressed)
    /// message: they are charged against the memory budget, as an adapter
    /// reassembling the message holds them (the compressed payload that
    /// carried them is not charged). The decompressed size itself is bounded
    /// by the inflater (`Limits::max_message_size`).
    pub(crate) fn on_inflated(&mut self, n: usize, limits: &Limits) -> Result<(), Violation> {
        let charge = self.charge.saturating_add(n as u64);
        if charge.saturating_add(Limits::FIXED_CHARGE) > limits.max_buffered {
            return Err(Violation::BudgetExceeded);
        }
        self.charge = charge;
        Ok(())
    }

    /// The budget charge of the current (or last) message.
    pub(crate) fn charge(&self) -> u64 {
        self.charge
    }

    /// Data payload announced by all data frame headers so far (wrapping).
    pub(crate) fn announced(&self) -> u64 {
        self.announced
    }

    /// Whether a fragmented message is open (its final frame not yet seen).
    pub(crate) fn is_open(&self) -> bool {
        self.open.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequencing() {
        let l = Limits::DEFAULT;
        let mut m = IncomingMessage::default();
        assert_eq!(
            m.on_data_frame(OpCode::Continuation, true, 0, false, &l),
            Err(Violation::UnexpectedContinuation)
        );
        assert_eq!(
            m.on_data_frame(OpCode::Text, false, 3, false, &l),
            Ok(MessageKind::Text)
        );
        assert_eq!(
            m.on_data_frame(OpCode::Binary, true, 3, false, &l),
            Err(Violation::ExpectedContinuation)
        );
        assert_eq!(
            m.on_data_frame(OpCode::Continuation, true, 3, false, &l),
            Ok(MessageKind::Text)
        );
        assert!(!m.is_open());
    }

    #[test]
    fn limits() {
        let l = Limits {
            max_frame_payload: 10,
            max_message_size: 15,
            max_fragments: 3,
            ..Limits::DEFAULT
        };
        let mut m = IncomingMessage::default();
        assert_eq!(
            m.on_data_frame(OpCode::Binary, true, 11, false, &l),
            Err(Violation::FrameTooLarge)
        );
        let mut m = IncomingMessage::default();
        assert!(m
            .on_data_frame(OpCode::Binary, false, 10, false, &l)
            .is_ok());
        assert_eq!(
            m.on_data_frame(OpCode::Continuation, false, 6, false, &l),
            Err(Violation::MessageTooLarge)
        );
        let mut m = IncomingMessage::default();
        assert!(m.on_data_frame(OpCode::Binary, false, 0, false, &l).is_ok());
        assert!(m
            .on_data_frame(OpCode::Continuation, false, 0, false, &l)
            .is_ok());
        assert!(m
            .on_data_frame(OpCode::Continuation, false, 0, false, &l)
            .is_ok());
        assert_eq!(
            m.on_data_frame(OpCode::Continuation, false, 0, false, &l),
            Err(Violation::TooManyFragments)
        );
    }

    #[test]
    fn budget_charges_every_frame() {
        let l = Limits {
            max_fragments: u32::MAX,
            max_buffered: Limits::FIXED_CHARGE + 3 * Limits::FRAME_CHARGE + 10,
            ..Limits::DEFAULT
        };
        let mut m = IncomingMessage::default();
        assert!(m
            .on_data_frame(OpCode::Binary, false, 10, false, &l)
            .is_ok());
        assert!(m
            .on_data_frame(OpCode::Continuation, false, 0, false, &l)
            .is_ok());
        assert!(m
            .on_data_frame(OpCode::Continuation, false, 0, false, &l)
            .is_ok());
        assert_eq!(m.charge(), 3 * Limits::FRAME_CHARGE + 10);
        assert_eq!(
            m.on_data_frame(OpCode::Continuation, true, 0, false, &l),
            Err(Violation::BudgetExceeded)
        );
        // A new message starts from zero.
        let mut m = IncomingMessage::default();
        for _ in 0..100 {
            assert!(m.on_data_frame(OpCode::Text, true, 10, false, &l).is_ok());
            assert_eq!(m.charge(), Limits::FRAME_CHARGE + 10);
        }
    }

    #[test]
    fn compressed_payload_is_not_charged() {
        let l = Limits::DEFAULT;
        let mut m = IncomingMessage::default();
        assert!(m
            .on_data_frame(OpCode::Binary, false, 1000, true, &l)
            .is_ok());
        assert_eq!(m.charge(), Limits::FRAME_CHARGE);
        assert!(m.on_inflated(5000, &l).is_ok());
        assert_eq!(m.charge(), Limits::FRAME_CHARGE + 5000);
        assert!(m
            .on_data_frame(OpCode::Continuation, true, 1000, true, &l)
            .is_ok());
        assert_eq!(m.charge(), 2 * Limits::FRAME_CHARGE + 5000);
    }
}
