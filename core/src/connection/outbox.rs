//! Control frames waiting to be written: at most one pong (the latest ping
//! wins), one ping and one close. Fixed size, no allocation.

use crate::close::CloseCode;
use crate::frame::{OpCode, MAX_CONTROL_PAYLOAD};
use heapless::Vec;

type ControlPayload = Vec<u8, MAX_CONTROL_PAYLOAD>;

#[derive(Clone, Debug, Default)]
pub(crate) struct Outbox {
    pong: Option<ControlPayload>,
    ping: Option<ControlPayload>,
    close: Option<ControlPayload>,
    /// The code of the queued close, for the state change once it is written.
    close_code: Option<CloseCode>,
    close_written: bool,
}

impl Outbox {
    /// Replaces any queued pong (callers check the 125-byte limit). Allowed
    /// after our Close too: RFC 6455 forbids only data frames then (§5.5.1),
    /// and a Ping received before the peer's Close is answered (§5.5.2).
    pub(crate) fn queue_pong(&mut self, payload: &[u8]) {
        self.pong = Vec::from_slice(payload).ok();
    }

    pub(crate) fn queue_ping(&mut self, payload: &[u8]) {
        if !self.close_queued() {
            self.ping = Vec::from_slice(payload).ok();
        }
    }

    /// Queues the one Close frame. `None` code sends an empty payload.
    pub(crate) fn queue_close(&mut self, code: Option<CloseCode>, reason: &str) {
        if self.close_queued() {
            return;
        }
        let mut payload = ControlPayload::new();
        if let Some(code) = code {
            let _ = payload.extend_from_slice(&code.0.to_be_bytes());
            let _ = payload.extend_from_slice(reason.as_bytes());
        }
        self.close = Some(payload);
        self.close_code = code;
    }

    pub(crate) fn close_queued(&self) -> bool {
        self.close.is_some() || self.close_written
    }

    /// The next frame to write, pongs first and the close last.
    pub(crate) fn peek(&self) -> Option<(OpCode, &[u8])> {
        if let Some(p) = &self.pong {
            return Some((OpCode::Pong, p));
        }
        if let Some(p) = &self.ping {
            return Some((OpCode::Ping, p));
        }
        self.close.as_ref().map(|p| (OpCode::Close, p.as_slice()))
    }

    /// Drops the frame `peek` returned, once written.
    pub(crate) fn pop(&mut self) {
        if self.pong.take().is_some() || self.ping.take().is_some() {
            return;
        }
        if self.close.take().is_some() {
            self.close_written = true;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pong.is_none() && self.ping.is_none() && self.close.is_none()
    }

    pub(crate) fn queued_close_code(&self) -> Option<CloseCode> {
        self.close_code
    }
}
