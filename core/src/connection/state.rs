//! The connection's lifecycle (RFC 6455 §4–§7) and the only place it changes.

use crate::close::CloseCode;

/// Which endpoint started something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// This endpoint.
    Local,
    /// The peer.
    Remote,
}

/// Where the connection is in its lifecycle, named as in RFC 6455.
///
/// (The RFC's CONNECTING state belongs to the opening handshake, which lives
/// in [`crate::handshake`]; a [`crate::Connection`] starts OPEN.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// One Close frame has been sent or received, not yet both.
    Closing {
        /// Who sent the first Close frame.
        initiator: Side,
    },
    /// Both Close frames are exchanged, or the connection failed or was cut.
    /// `code` is the peer's code (1005 when it sent none), the code this
    /// endpoint failed the connection with, or 1006 for an abnormal end.
    Closed {
        /// The close code that ended the connection.
        code: CloseCode,
    },
}

/// Something that moves the state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    /// The application (or an idle timer) queued a Close frame.
    LocalClose,
    /// The peer's Close frame arrived.
    PeerClose(CloseCode),
    /// Our echo of the peer's Close frame went out.
    EchoSent(CloseCode),
    /// This endpoint failed the connection with a close code (§7.1.7).
    Fail(CloseCode),
    /// The transport or a timer ended things without a close handshake.
    Abnormal,
}

impl State {
    /// The state after `t`. Pure, total, and the only transition function.
    pub(crate) const fn next(self, t: Transition) -> State {
        match (self, t) {
            (State::Closed { .. }, _) => self,
            (_, Transition::Fail(code)) => State::Closed { code },
            (_, Transition::Abnormal) => State::Closed {
                code: CloseCode::ABNORMAL,
            },
            (State::Open, Transition::LocalClose) => State::Closing {
                initiator: Side::Local,
            },
            (State::Open, Transition::PeerClose(_)) => State::Closing {
                initiator: Side::Remote,
            },
            (
                State::Closing {
                    initiator: Side::Local,
                },
                Transition::PeerClose(code),
            ) => State::Closed { code },
            (
                State::Closing {
                    initiator: Side::Remote,
                },
                Transition::EchoSent(code),
            ) => State::Closed { code },
            (State::Open | State::Closing { .. }, _) => self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_handshake_both_ways() {
        let c = CloseCode::NORMAL;
        let local = State::Open.next(Transition::LocalClose);
        assert_eq!(
            local,
            State::Closing {
                initiator: Side::Local
            }
        );
        assert_eq!(
            local.next(Transition::PeerClose(c)),
            State::Closed { code: c }
        );
        let remote = State::Open.next(Transition::PeerClose(c));
        assert_eq!(
            remote,
            State::Closing {
                initiator: Side::Remote
            }
        );
        assert_eq!(
            remote.next(Transition::EchoSent(c)),
            State::Closed { code: c }
        );
    }

    #[test]
    fn closed_is_final() {
        let closed = State::Closed {
            code: CloseCode::PROTOCOL_ERROR,
        };
        for t in [
            Transition::LocalClose,
            Transition::Abnormal,
            Transition::Fail(CloseCode::NORMAL),
        ] {
            assert_eq!(closed.next(t), closed);
        }
    }
}
