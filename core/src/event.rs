//! What the connection reports to the application.

use crate::close::CloseCode;

/// Whether a data message is text or binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text (opcode 0x1).
    Text,
    /// Arbitrary bytes (opcode 0x2).
    Binary,
}

/// One thing that arrived from the peer. Payload borrows the caller's input
/// buffer, unmasked in place: nothing is copied.
///
/// Data messages arrive in pieces: a message split into frames, or a frame
/// larger than the bytes at hand, is surfaced as consecutive chunks of the
/// same kind, the last with `fin: true`. Control events may come between the
/// chunks of a message. Text chunks are always whole code points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A piece of a text message.
    Text {
        /// Valid UTF-8; may be empty only on the final chunk.
        data: &'a str,
        /// This chunk ends the message.
        fin: bool,
    },
    /// A piece of a binary message.
    Binary {
        /// The bytes; may be empty only on the final chunk.
        data: &'a [u8],
        /// This chunk ends the message.
        fin: bool,
    },
    /// A ping. With `Config::auto_pong` the pong is already queued.
    Ping(&'a [u8]),
    /// A pong (solicited or not; unsolicited ones need no action).
    Pong(&'a [u8]),
    /// The peer's Close frame. The echo is already queued; no more data events follow.
    Close {
        /// The status code, or `None` when the frame had no payload (reported as 1005).
        code: Option<CloseCode>,
        /// The UTF-8 reason, possibly empty.
        reason: &'a str,
    },
}

impl Event<'_> {
    /// For data chunks, whether this one ends its message; `true` for control events.
    pub fn is_fin(&self) -> bool {
        match self {
            Event::Text { fin, .. } | Event::Binary { fin, .. } => *fin,
            _ => true,
        }
    }
}
