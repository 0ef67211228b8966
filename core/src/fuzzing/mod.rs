//! Fuzz harnesses with oracles, compiled only with the hidden `fuzz-harness`
//! feature: the targets in `fuzz/fuzz_targets/` are short shims that call
//! these functions, and the regression tests replay the inputs the fuzzer
//! once failed on through the same functions (no second decoder of the input
//! formats).
//!
//! This is test code: it uses `std` (vectors for traces and wires) and it
//! asserts, because a failed assertion is exactly what the fuzzer reports.
//! The core's denials of `unwrap`, `panic!` and indexing therefore do not
//! apply here.
//!
//! One file per target family: `decoder.rs`, `server.rs` (handshake),
//! `client.rs` (handshake), `pair.rs` (connection), `deflate.rs`, `inflate.rs`, `compress.rs`.
//!
//! * [`frame_decoder`] — arbitrary bytes into a server and a client
//!   [`Connection`], in arbitrary chunks, compared with the whole-buffer feed.
//! * [`server_handshake`] — arbitrary bytes into [`ServerHandshake::parse`].
//! * [`client_handshake`] — arbitrary bytes as the answer to a real
//!   [`ClientHandshake`], optionally with the right accept value spliced in.
//! * [`connection`] — a client/server pair driven by a list of [`Op`]s.
//! * `deflate_inflate` (feature `deflate`) — arbitrary compressed payloads
//!   (or whole frames) into a client with permessage-deflate, in arbitrary
//!   chunks and scratch sizes, compared with the whole-buffer feed.
//! * `compress_roundtrip` (feature `deflate`) — messages through the
//!   compressor at either level in chosen steps: the same bytes as compressed
//!   whole, within the size bound, inflated back by a reference decoder.
//! * `inflate_differential` (feature `deflate`) — arbitrary bytes as a raw
//!   DEFLATE message into the [`Inflater`](crate::extensions::deflate::Inflater),
//!   compared with a reference decoder passed in by the fuzz target.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use crate::frame::{apply_mask, encoded_frame_len, FrameHeader, HeaderStatus, OpCode};
use crate::handshake::{
    accept_key, Accept, ClientHandshake, ClientRequest, ServerHandshake, ACCEPT_LEN,
};
use crate::{
    CloseCode, Config, Connection, Duration, Error, Event, Extension, HandshakeError, Instant,
    Keepalive, MessageKind, Misuse, Received, Role, State,
};
use rand_core::RngCore;
use std::borrow::ToOwned;
use std::string::String;
use std::vec;
use std::vec::Vec;

/// A fixed xorshift64* RNG: runs are reproducible.
#[derive(Clone, Debug)]
pub struct FuzzRng(u64);

impl FuzzRng {
    pub fn new(seed: u64) -> Self {
        FuzzRng(seed | 1)
    }
}

impl RngCore for FuzzRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for b in dst {
            *b = self.next_u32() as u8;
        }
    }
}

mod client;
#[cfg(feature = "deflate")]
mod compress;
mod decoder;
#[cfg(feature = "deflate")]
mod deflate;
#[cfg(feature = "deflate")]
mod inflate;
mod pair;
mod server;

pub use client::{client_handshake, ClientOutcome};
#[cfg(feature = "deflate")]
pub use compress::{compress_roundtrip, Reference, MAX_COMPRESS_INPUT};
pub use decoder::frame_decoder;
#[cfg(feature = "deflate")]
pub use deflate::deflate_inflate;
#[cfg(feature = "deflate")]
pub use inflate::{inflate_differential, reference_stream, Oracle, MAX_INPUT};
pub use pair::{connection, connection_bytes, ConnectionInput, Op};
pub use server::{server_handshake, ServerOutcome};

// ---------------------------------------------------------------------------
// Owned traces of what a connection surfaced
// ---------------------------------------------------------------------------

/// An owned event; data messages are whole (their chunks joined).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    Error(Error),
}

/// Events in order, plus the message whose chunks are still arriving.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    pub items: Vec<Item>,
    pub partial: Option<(MessageKind, Vec<u8>)>,
}

impl Trace {
    fn data(&mut self, kind: MessageKind, data: &[u8], fin: bool) {
        assert!(
            fin || !data.is_empty(),
            "empty data chunk that is not final"
        );
        let (open_kind, buf) = self.partial.get_or_insert_with(|| (kind, Vec::new()));
        assert_eq!(*open_kind, kind, "chunks of one message changed kind");
        buf.extend_from_slice(data);
        if fin {
            let (kind, buf) = self.partial.take().unwrap();
            self.items.push(match kind {
                MessageKind::Text => Item::Text(String::from_utf8(buf).expect("text chunks")),
                MessageKind::Binary => Item::Binary(buf),
            });
        }
    }

    fn event(&mut self, ev: Event<'_>) {
        match ev {
            Event::Text { data, fin } => self.data(MessageKind::Text, data.as_bytes(), fin),
            Event::Binary { data, fin } => self.data(MessageKind::Binary, data, fin),
            Event::Ping(p) => self.items.push(Item::Ping(p.to_vec())),
            Event::Pong(p) => self.items.push(Item::Pong(p.to_vec())),
            Event::Close { code, reason } => {
                assert!(reason.len() <= 123);
                if let Some(code) = code {
                    assert!(code.is_allowed_on_wire(), "surfaced close code {code:?}");
                }
                self.items
                    .push(Item::Close(code.map(|c| c.0), reason.to_owned()));
            }
        }
    }

    fn has_error(&self) -> bool {
        self.items.iter().any(|i| matches!(i, Item::Error(_)))
    }
}

/// Writes everything `poll_transmit` has into `out`.
pub(crate) fn drain_transmit<R: RngCore, E: Extension>(
    conn: &mut Connection<R, E>,
    out: &mut Vec<u8>,
) {
    let mut buf = [0u8; 1024];
    loop {
        let n = conn
            .poll_transmit(&mut buf)
            .expect("poll_transmit into 1 KiB");
        assert!(n <= buf.len());
        if n == 0 {
            return;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// The documented receive loop over `buf` (unconsumed bytes stay at its
/// front), through `receive_into` with a scratch of `scratch` bytes (0: plain
/// `receive`), draining `poll_transmit` into `out` after every call. Returns
/// the error that failed the connection, if any.
///
/// Oracles: a call never consumes more than it was given; it makes progress
/// (draining a full window into the smallest scratch takes a few hundred
/// calls that consume nothing, plain input at most a few); a message never
/// surfaces more than `max_message_size`; only violations escape, each with
/// a documented close code.
pub(crate) fn pump<R: RngCore, E: Extension>(
    conn: &mut Connection<R, E>,
    buf: &mut Vec<u8>,
    scratch: usize,
    trace: &mut Trace,
    out: &mut Vec<u8>,
) -> Option<Error> {
    let max_message = conn.config().limits.max_message_size;
    let stall_limit = if scratch == 0 { 4 } else { 1000 };
    let mut room = vec![0u8; scratch];
    let mut stalled = 0;
    loop {
        let len = buf.len();
        match conn.receive_into(&mut buf[..], &mut room) {
            Ok(Received { consumed, event }) => {
                assert!(consumed <= len, "consumed {consumed} of {len}");
                let done = consumed == 0 && event.is_none();
                if consumed == 0 {
                    stalled += 1;
                    assert!(stalled < stall_limit, "receive makes no progress");
                } else {
                    stalled = 0;
                }
                if let Some(ev) = event {
                    trace.event(ev);
                }
                if let Some((_, partial)) = &trace.partial {
                    assert!(
                        partial.len() as u64 <= max_message,
                        "surfaced past the message limit"
                    );
                }
                buf.drain(..consumed);
                drain_transmit(conn, out);
                if done {
                    return None;
                }
            }
            Err(e) => {
                let Error::Protocol(v) = e else {
                    panic!("undocumented error {e:?}");
                };
                let code = v.close_code().0;
                assert!(matches!(code, 1002 | 1007 | 1009), "{v:?} → {code}");
                trace.items.push(Item::Error(e));
                drain_transmit(conn, out);
                return Some(e);
            }
        }
    }
}

/// Cycles through `sizes` (0 allowed: a call with no new bytes) to cut `len`
/// bytes into chunks. An empty or all-zero list means one whole chunk.
pub(crate) fn chunk_plan(sizes: &[usize], len: usize) -> Vec<usize> {
    if sizes.iter().all(|&s| s == 0) {
        return vec![len];
    }
    let mut plan = Vec::new();
    let mut at = 0;
    for &s in sizes.iter().cycle() {
        if at >= len {
            break;
        }
        let s = s.min(len - at);
        plan.push(s);
        at += s;
    }
    plan
}
