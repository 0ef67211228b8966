//! Control frames waiting to be written: at most one pong (the latest ping
//! wins, RFC 6455 §5.5.3), one ping and one close, written in that order.
//!
//! The three payloads live in one fixed buffer of two halves, each payload
//! at a fixed place, so nothing is ever moved: the pong fills the front of
//! the first half; the ping the front of the second, the close its back. A
//! close that fails the connection carries its violation's static reason,
//! kept as the violation (one byte) rather than copied. A pong always fits beside the others; the
//! ping and the close share their half, and when a close arrives that does
//! not fit beside the unsent ping, the ping is dropped, since the close
//! (which ends the connection) comes first.

use crate::close::CloseCode;
use crate::error::Violation;
use crate::frame::{OpCode, MAX_CONTROL_PAYLOAD};

/// Bytes of each half: one whole control payload.
const HALF: usize = MAX_CONTROL_PAYLOAD;

const PONG: u8 = 1;
const PING: u8 = 2;
const CLOSE: u8 = 4;
const CLOSE_WRITTEN: u8 = 8;

/// Packed for small targets: byte counts are `u8` (a payload is at most 125
/// bytes), the close code is read back from the close's bytes (kept after
/// it is written), and the static reason exists only with the
/// `close-reasons` feature (without it every static reason is empty).
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    /// `pong` at `buf[..pong_len]`; `ping` at `buf[HALF..HALF + ping_len]`;
    /// the close's bytes (its code, then a copied reason) at the end,
    /// `buf[2 * HALF - close_len..]`, still there once written (nothing is
    /// queued in their place after a close), for the state change.
    buf: [u8; 2 * HALF],
    pong_len: u8,
    ping_len: u8,
    /// 0 for a close without a code, otherwise at least 2.
    close_len: u8,
    /// `PONG`, `PING`, `CLOSE` (queued) and `CLOSE_WRITTEN` bits.
    flags: u8,
    /// The violation whose static reason is sent after the close's bytes.
    #[cfg(feature = "close-reasons")]
    close_static: Option<Violation>,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            buf: [0; 2 * HALF],
            pong_len: 0,
            ping_len: 0,
            close_len: 0,
            flags: 0,
            #[cfg(feature = "close-reasons")]
            close_static: None,
        }
    }
}

/// A control payload's length as stored (callers keep it within 125 bytes).
fn stored_len(len: usize) -> u8 {
    u8::try_from(len.min(MAX_CONTROL_PAYLOAD)).unwrap_or(0)
}

impl Outbox {
    /// Copies `bytes` into `buf[at..]` (callers keep it within the buffer).
    fn put(&mut self, at: usize, bytes: &[u8]) {
        if let Some(slot) = self.buf.get_mut(at..at + bytes.len()) {
            slot.copy_from_slice(bytes);
        }
    }

    /// The static reason of the queued close.
    fn close_static(&self) -> &'static str {
        #[cfg(feature = "close-reasons")]
        {
            self.close_static.map_or("", |v| v.reason())
        }
        #[cfg(not(feature = "close-reasons"))]
        {
            ""
        }
    }

    /// Replaces any queued pong (callers check the 125-byte limit). Allowed
    /// after our Close too: RFC 6455 forbids only data frames then (§5.5.1),
    /// and a Ping received before the peer's Close is answered (§5.5.2).
    pub(crate) fn queue_pong(&mut self, payload: &[u8]) {
        let len = stored_len(payload.len());
        self.put(0, payload.get(..usize::from(len)).unwrap_or_default());
        self.pong_len = len;
        self.flags |= PONG;
    }

    pub(crate) fn queue_ping(&mut self, payload: &[u8]) {
        if self.close_queued() {
            return;
        }
        // No close is queued: the ping has its half to itself.
        let len = stored_len(payload.len());
        self.put(HALF, payload.get(..usize::from(len)).unwrap_or_default());
        self.ping_len = len;
        self.flags |= PING;
    }

    /// Queues the one Close frame. `None` code sends an empty payload.
    pub(crate) fn queue_close(&mut self, code: Option<CloseCode>, reason: &str) {
        if self.close_queued() {
            return;
        }
        let reason = reason
            .as_bytes()
            .get(..reason.len().min(MAX_CONTROL_PAYLOAD - 2))
            .unwrap_or_default();
        let len = if code.is_some() { 2 + reason.len() } else { 0 };
        if usize::from(self.ping_len) + len > HALF {
            // Too long beside the unsent ping: the close wins.
            self.ping_len = 0;
            self.flags &= !PING;
        }
        if let Some(code) = code {
            let at = 2 * HALF - len;
            self.put(at, &code.0.to_be_bytes());
            self.put(at + 2, reason);
        }
        self.close_len = stored_len(len);
        self.flags |= CLOSE;
    }

    /// Queues the one Close frame with `code`, the code of `v` (failing
    /// the connection), and, with the `close-reasons` feature, the static
    /// reason of `v`, kept as `v` itself.
    pub(crate) fn queue_close_violation(&mut self, code: CloseCode, v: Violation) {
        if self.close_queued() {
            return;
        }
        self.queue_close(Some(code), "");
        #[cfg(feature = "close-reasons")]
        if v.reason().len() <= MAX_CONTROL_PAYLOAD - 2 {
            self.close_static = Some(v);
        }
        #[cfg(not(feature = "close-reasons"))]
        let _ = v;
    }

    pub(crate) fn close_queued(&self) -> bool {
        self.flags & (CLOSE | CLOSE_WRITTEN) != 0
    }

    /// Copies the next frame's payload (pongs first, the close last) into
    /// `dst` and returns its opcode and length.
    pub(crate) fn peek(&self, dst: &mut [u8; MAX_CONTROL_PAYLOAD]) -> Option<(OpCode, usize)> {
        let (opcode, range, tail) = if self.flags & PONG != 0 {
            (OpCode::Pong, 0..usize::from(self.pong_len), "")
        } else if self.flags & PING != 0 {
            (OpCode::Ping, HALF..HALF + usize::from(self.ping_len), "")
        } else if self.flags & CLOSE != 0 {
            let at = 2 * HALF - usize::from(self.close_len);
            (OpCode::Close, at..2 * HALF, self.close_static())
        } else {
            return None;
        };
        let head = self.buf.get(range).unwrap_or_default();
        let len = (head.len() + tail.len()).min(MAX_CONTROL_PAYLOAD);
        if let Some(d) = dst.get_mut(..head.len()) {
            d.copy_from_slice(head);
        }
        if let Some(d) = dst.get_mut(head.len()..len) {
            d.copy_from_slice(tail.as_bytes().get(..d.len()).unwrap_or_default());
        }
        Some((opcode, len))
    }

    /// Drops the frame `peek` returned, once written.
    pub(crate) fn pop(&mut self) {
        if self.flags & PONG != 0 {
            self.pong_len = 0;
            self.flags &= !PONG;
        } else if self.flags & PING != 0 {
            self.ping_len = 0;
            self.flags &= !PING;
        } else if self.flags & CLOSE != 0 {
            // `close_len` and the bytes stay, for `queued_close_code`.
            self.flags = (self.flags & !CLOSE) | CLOSE_WRITTEN;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.flags & (PONG | PING | CLOSE) == 0
    }

    /// The code of the close queued or written, if it carries one.
    pub(crate) fn queued_close_code(&self) -> Option<CloseCode> {
        if !self.close_queued() || self.close_len < 2 {
            return None;
        }
        let at = 2 * HALF - usize::from(self.close_len);
        match self.buf.get(at..at + 2) {
            Some(&[hi, lo]) => Some(CloseCode(u16::from_be_bytes([hi, lo]))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(outbox: &mut Outbox) -> std::vec::Vec<(OpCode, std::vec::Vec<u8>)> {
        let mut frames = std::vec::Vec::new();
        let mut buf = [0u8; MAX_CONTROL_PAYLOAD];
        while let Some((op, len)) = outbox.peek(&mut buf) {
            frames.push((op, buf[..len].to_vec()));
            outbox.pop();
        }
        frames
    }

    #[test]
    fn order_is_pong_ping_close() {
        let mut o = Outbox::default();
        o.queue_ping(b"p1");
        o.queue_close(Some(CloseCode::NORMAL), "bye");
        o.queue_pong(b"a");
        o.queue_pong(b"latest");
        let frames = drain(&mut o);
        assert_eq!(
            frames,
            [
                (OpCode::Pong, b"latest".to_vec()),
                (OpCode::Ping, b"p1".to_vec()),
                (OpCode::Close, b"\x03\xe8bye".to_vec()),
            ]
        );
        assert!(o.is_empty());
        assert!(o.close_queued());
    }

    #[test]
    fn one_close_only_and_no_ping_after_it() {
        let mut o = Outbox::default();
        o.queue_close(None, "");
        o.queue_close(Some(CloseCode::NORMAL), "again");
        o.queue_ping(b"late");
        assert_eq!(drain(&mut o), [(OpCode::Close, std::vec![])]);
        o.queue_close(Some(CloseCode::NORMAL), "");
        assert!(o.is_empty());
        // A pong is still allowed after our close.
        o.queue_pong(b"x");
        assert_eq!(drain(&mut o), [(OpCode::Pong, b"x".to_vec())]);
    }

    #[test]
    fn static_reason_follows_the_code() {
        let mut o = Outbox::default();
        o.queue_pong(&[7; 125]);
        o.queue_close_violation(CloseCode::PROTOCOL_ERROR, Violation::ReservedBits);
        assert_eq!(o.queued_close_code(), Some(CloseCode::PROTOCOL_ERROR));
        let frames = drain(&mut o);
        assert_eq!(o.queued_close_code(), Some(CloseCode::PROTOCOL_ERROR));
        assert_eq!(frames[0], (OpCode::Pong, std::vec![7; 125]));
        let mut close = std::vec![0x03, 0xea];
        // Static reasons are kept only with the feature that has them.
        close.extend_from_slice(Violation::ReservedBits.reason().as_bytes());
        assert_eq!(
            Violation::ReservedBits.reason().is_empty(),
            !cfg!(feature = "close-reasons")
        );
        assert_eq!(frames[1], (OpCode::Close, close));
    }

    #[test]
    fn full_payloads_fit_in_pairs_and_the_ping_yields_to_both() {
        let mut o = Outbox::default();
        o.queue_pong(&[1; 125]);
        o.queue_ping(&[2; 125]);
        let reason = std::string::String::from("r").repeat(123);
        o.queue_close(Some(CloseCode::NORMAL), &reason);
        // Pong and close: the unsent ping gave way.
        let frames = drain(&mut o);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0], (OpCode::Pong, std::vec![1; 125]));
        assert_eq!(frames[1].0, OpCode::Close);
        assert_eq!(frames[1].1.len(), 125);

        let mut o = Outbox::default();
        o.queue_ping(&[2; 125]);
        o.queue_pong(&[1; 125]);
        assert_eq!(
            drain(&mut o),
            [
                (OpCode::Pong, std::vec![1; 125]),
                (OpCode::Ping, std::vec![2; 125])
            ]
        );

        // Small payloads: all three stay, and a replaced pong leaves the
        // others as they were.
        let mut o = Outbox::default();
        o.queue_pong(&[1; 100]);
        o.queue_ping(&[2; 40]);
        o.queue_close(Some(CloseCode::NORMAL), "ok");
        o.queue_pong(&[3; 5]);
        assert_eq!(
            drain(&mut o),
            [
                (OpCode::Pong, std::vec![3; 5]),
                (OpCode::Ping, std::vec![2; 40]),
                (OpCode::Close, std::vec![0x03, 0xe8, b'o', b'k']),
            ]
        );
    }
    #[test]
    fn the_ping_shares_its_half_with_the_close_only() {
        // A full pong never crowds out the ping or the close.
        let mut o = Outbox::default();
        o.queue_pong(&[1; 125]);
        o.queue_ping(&[2; 100]);
        o.queue_close(Some(CloseCode::NORMAL), "twenty-three bytes long");
        assert_eq!(
            drain(&mut o),
            [
                (OpCode::Pong, std::vec![1; 125]),
                (OpCode::Ping, std::vec![2; 100]),
                (OpCode::Close, b"\x03\xe8twenty-three bytes long".to_vec()),
            ]
        );
        // One byte more than their half holds: the ping gives way.
        let mut o = Outbox::default();
        o.queue_ping(&[2; 100]);
        o.queue_close(Some(CloseCode::NORMAL), "twenty-four bytes long!!");
        assert_eq!(
            drain(&mut o),
            [(OpCode::Close, b"\x03\xe8twenty-four bytes long!!".to_vec())]
        );
    }
}

#[cfg(test)]
mod size {
    use super::Outbox;
    use crate::connection::Connection;

    /// Prints the sizes (run with `--nocapture`) and keeps the outbox to its
    /// shared buffer plus a few words of bookkeeping.
    #[test]
    fn outbox_is_one_shared_buffer() {
        let outbox = core::mem::size_of::<Outbox>();
        let connection = core::mem::size_of::<Connection>();
        std::println!("size_of: Outbox = {outbox} B, Connection = {connection} B");
        assert!(outbox <= 2 * super::HALF + 4 * core::mem::size_of::<usize>() + 8);
        // The whole connection: 440 B on 64-bit targets (the firmware's
        // budget holds it on 32-bit ones, 432 B).
        #[cfg(target_pointer_width = "64")]
        assert!(connection <= 440, "{connection} B");
    }
}
