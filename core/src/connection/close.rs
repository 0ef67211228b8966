//! How a connection ends: the close command, failing the connection on a
//! peer violation (RFC 6455 §7.1.7), the transport's end of file, and the one
//! place the lifecycle state changes.

use super::timers::Timer;
use super::{Connection, Extension, Flags, Role, Side, State, Transition};
use crate::close::{CloseCode, MAX_CLOSE_REASON};
use crate::error::{Error, Misuse, Violation};
use rand_core::RngCore;

impl<R: RngCore, E: Extension> Connection<R, E> {
    /// The transport reached end of file. Fine after the close handshake;
    /// otherwise the connection ends abnormally (1006).
    pub fn receive_eof(&mut self) -> Result<(), Error> {
        self.flags.insert(Flags::CLOSE_TRANSPORT);
        if matches!(self.state, State::Closed { .. }) {
            return Ok(());
        }
        self.transition(Transition::Abnormal);
        Err(Error::AbnormalClosure)
    }

    /// Starts the close handshake: queues a Close frame with `code` and a
    /// reason of at most 123 bytes. Data already received keeps arriving
    /// until the peer's Close.
    ///
    /// ```
    /// use wsproto::{CloseCode, Config, Connection, Role, Side, State};
    /// let mut server = Connection::new(Role::Server, Config::default());
    /// server.close(CloseCode::NORMAL, "bye").unwrap();
    /// assert_eq!(server.state(), State::Closing { initiator: Side::Local });
    /// let mut out = [0u8; 16];
    /// let n = server.poll_transmit(&mut out).unwrap();
    /// assert_eq!(out[..n], [0x88, 0x05, 0x03, 0xe8, b'b', b'y', b'e']);
    /// ```
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        if self.state != State::Open {
            return Err(Misuse::Closed.into());
        }
        if !code.is_allowed_on_wire() {
            return Err(Misuse::InvalidCloseCode.into());
        }
        if reason.len() > MAX_CLOSE_REASON {
            return Err(Misuse::ControlPayloadTooLong.into());
        }
        self.begin_close(Some(code), reason);
        Ok(())
    }

    pub(super) fn begin_close(&mut self, code: Option<CloseCode>, reason: &str) {
        self.outbox.queue_close(code, reason);
        self.start_close_timer();
        self.transition(Transition::LocalClose);
    }

    /// Whether the adapter should now close (or drop) the transport: the
    /// server after the close handshake, either side after failing the
    /// connection or a timeout, once `poll_transmit` has nothing left.
    pub fn should_close_transport(&self) -> bool {
        self.flags.has(Flags::CLOSE_TRANSPORT) && self.outbox.is_empty()
    }

    /// Fails the connection (§7.1.7): queue the Close with the violation's
    /// code, stop surfacing data, ignore further input, close the transport.
    #[cold]
    pub(super) fn fail(&mut self, v: Violation) -> Error {
        self.outbox.queue_close_violation(v.close_code(), v);
        self.flags.insert(Flags::CLOSE_TRANSPORT);
        self.transition(Transition::Fail(v.close_code()));
        Error::Protocol(v)
    }

    pub(super) fn start_close_timer(&mut self) {
        self.timers.stop(Timer::Keepalive);
        self.timers.stop(Timer::Pong);
        self.timers.stop(Timer::Idle);
        self.timers.stop(Timer::Progress);
        self.timers.arm(Timer::Close, self.config.close_timeout);
    }

    /// The one place the state changes.
    pub(super) fn transition(&mut self, t: Transition) {
        self.state = self.state.next(t);
        if matches!(self.state, State::Closed { .. }) && self.role == Role::Server {
            // The server closes the TCP connection first (§7.1.1).
            self.flags.insert(Flags::CLOSE_TRANSPORT);
        }
    }

    /// After the peer's Close, or once closed, input is ignored (§7.1.7).
    #[inline]
    pub(super) fn ignores_input(&self) -> bool {
        matches!(
            self.state,
            State::Closed { .. }
                | State::Closing {
                    initiator: Side::Remote
                }
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, Connection, Role, Violation};

    /// Failing sends the violation's code, with its reason text only when
    /// the `close-reasons` feature is on.
    #[test]
    fn failure_close_carries_the_code_and_the_configured_reason() {
        let mut server = Connection::new(Role::Server, Config::default());
        // An unmasked text frame from a client: 1002.
        let mut input = [0x81, 0x00];
        assert!(server.receive(&mut input).is_err());
        let mut out = [0u8; 140];
        let n = server.poll_transmit(&mut out).unwrap();
        let reason = Violation::UnmaskedFrame.reason();
        assert_eq!(out[..4], [0x88, 2 + reason.len() as u8, 0x03, 0xea]);
        assert_eq!(&out[4..n], reason.as_bytes());
        assert_eq!(reason.is_empty(), !cfg!(feature = "close-reasons"));
    }
}
