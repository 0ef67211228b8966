//! # wsproto
//!
//! A WebSocket ([RFC 6455]) protocol state machine: `#![no_std]`, no
//! allocator, no `unsafe`, no I/O. Bytes go in, events and bytes to send come
//! out, and time is an argument.
//!
//! ```text
//!  peer bytes ──► adapter ──► receive(&mut [u8]) ──► Event (borrowing your buffer) ──► application
//!                                          └──► poll_transmit(&mut out) ──► adapter ──► peer
//!  application ─► send_text / send_binary / send_fragment (into your buffer) ──► adapter ──► peer
//!               └► ping / pong / close (queued, drained by poll_transmit)
//!  clock ───────► handle_timeout(now)   ◄── poll_timeout() says when to wake
//! ```
//!
//! The core is deterministic: the same bytes, calls and instants give the
//! same events and output. Sockets, clocks, entropy and allocation live in the
//! caller (or in the `wsproto-adapters` crate).
//!
//! # The run loop
//!
//! After each input or command, drain the outputs: write what
//! `poll_transmit` produced, close the transport when `should_close_transport`
//! says so, and sleep until `poll_timeout`. This runs a client and a server
//! against each other through two in-memory "wires":
//!
//! ```
//! use wsproto::{CloseCode, Config, Connection, Event, Instant, Role, State};
//! # struct Lcg(u64);
//! # impl rand_core::RngCore for Lcg {
//! #     fn next_u32(&mut self) -> u32 { self.next_u64() as u32 }
//! #     fn next_u64(&mut self) -> u64 { self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1); self.0 >> 16 }
//! #     fn fill_bytes(&mut self, d: &mut [u8]) { for b in d { *b = self.next_u32() as u8 } }
//! # }
//!
//! let mut client = Connection::with_rng(Role::Client, Config::default(), Lcg(7));
//! let mut server = Connection::new(Role::Server, Config::default());
//! let mut wire = [0u8; 1024]; // client → server bytes
//! let mut len = 0;
//!
//! // The client sends a message and starts closing.
//! len += client.send_text("hello", &mut wire[len..]).unwrap();
//! client.close(CloseCode::NORMAL, "done").unwrap();
//! len += client.poll_transmit(&mut wire[len..]).unwrap();
//!
//! // The server's loop: receive until nothing more is consumed, drain outputs.
//! let mut back = [0u8; 256]; // server → client bytes
//! let mut back_len = 0;
//! let mut pos = 0;
//! loop {
//!     let received = server.receive(&mut wire[pos..len]).unwrap();
//!     match received.event {
//!         Some(Event::Text { data, fin }) => assert_eq!((data, fin), ("hello", true)),
//!         Some(Event::Close { code, reason }) => assert_eq!((code, reason), (Some(CloseCode::NORMAL), "done")),
//!         Some(other) => panic!("unexpected {other:?}"),
//!         None if received.consumed == 0 => break,
//!         None => {}
//!     }
//!     pos += received.consumed;
//!     back_len += server.poll_transmit(&mut back[back_len..]).unwrap(); // the Close echo
//! }
//! assert_eq!(server.state(), State::Closed { code: CloseCode::NORMAL });
//! assert!(server.should_close_transport()); // the server closes TCP first
//!
//! // The client sees the echo and is closed too.
//! let received = client.receive(&mut back[..back_len]).unwrap();
//! assert!(matches!(received.event, Some(Event::Close { .. })));
//! assert_eq!(client.state(), State::Closed { code: CloseCode::NORMAL });
//! assert_eq!(client.poll_timeout(), Some(Instant::ZERO)); // arm the close timer now
//! ```
//!
//! # Map
//!
//! From the bottom up; each module uses only those above it in this list.
//!
//! * [`Instant`], [`Duration`] (`time`) — the core's own clock types; no clock.
//! * [`utf8`] — incremental UTF-8 validation that carries a split code point.
//! * [`Config`], [`Limits`] (`config`) — every limit and timer, with defaults.
//! * [`CloseCode`] (`close`) — close status codes and which may go on the wire.
//! * [`error`] — [`Violation`], [`HandshakeError`], [`Misuse`], [`Error`]:
//!   what went wrong and what goes on the wire for it, in one table.
//! * [`frame`] — the wire codec on its own: header parse/emit, masking, encoding.
//! * [`Event`] (`event`) — what `receive` surfaces.
//! * `message` — which data frame may follow which; size, fragment and
//!   memory-budget accounting of the message being received.
//! * [`Connection`] (`connection`) — one WebSocket after its handshake; its
//!   files follow the bytes: shortcut, receive loop and headers, payload,
//!   inflate, control frames, send, close, timers.
//! * `extensions` (feature `deflate`) — permessage-deflate: negotiation,
//!   inflater, compressor, the connection extension.
//! * [`handshake`] — the opening handshake, server and client: HTTP/1.1
//!   upgrades, and HTTP/2 extended CONNECTs (RFC 8441: `ExtendedConnect`,
//!   `ClientConnect`).
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `deflate` | off | permessage-deflate (RFC 7692): [`extensions`] with the negotiation, the inflater, the compressor and the connection extension; still no_std and allocation-free |
//! | `alloc` | off | links `alloc` (never std) for `extensions::deflate::storage::Heap`: deflate states built in place on the heap, for small stacks |
//! | `simd-utf8` | off | text validated with SIMD (chosen at compile time from the target's features); still no_std |
//! | `simd-utf8-std` | off | as `simd-utf8`, with run-time CPU detection on x86; links std |
//! | `fast-sha1` | **on** | the accept key's SHA-1 from the `sha1` crate (SHA instructions where the CPU has them); without it a compact loop in the core, about 2.5 KB less code for microcontrollers |
//! | `fast-receive` | **on** | a whole small message in one frame taken inline, beside the general receive steps (same events and errors); without it about 270 bytes less code for microcontrollers |
//! | `fast-mask` | **on** | payloads masked eight bytes at a time in vectorisable blocks; without it a byte loop, about 550 bytes less code for microcontrollers |
//! | `close-reasons` | **on** | the Close frame sent on a peer violation carries a short human-readable reason ([`Violation::reason`]); without it the reason is empty and the code is still sent, about 420 bytes less read-only data for microcontrollers |
//!
//! With no feature the crate needs only `core`: no allocator, no std.
//!
//! [RFC 6455]: https://www.rfc-editor.org/rfc/rfc6455

#![no_std]
// docs.rs: badge each item with the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

// Tests and the fuzz harnesses use std; the library never does.
#[cfg(any(test, feature = "fuzz-harness"))]
extern crate std;
// Only for the heap storage of deflate states (`alloc` feature).
#[cfg(feature = "alloc")]
extern crate alloc;

mod close;
mod config;
mod connection;
pub mod error;
mod event;
/// WebSocket extensions (RFC 7692 permessage-deflate), behind the `deflate` feature.
#[cfg(feature = "deflate")]
pub mod extensions;
pub mod frame;
#[cfg(feature = "fuzz-harness")]
#[doc(hidden)]
pub mod fuzzing;
pub mod handshake;
mod message;
mod time;
pub mod utf8;

pub use close::{CloseCode, MAX_CLOSE_REASON};
pub use config::{Config, Keepalive, Limits, MinProgress};
pub use connection::{
    Connection, EventAt, Extension, NoExtension, NoRng, Received, ReceivedAt, ReceivedCopy, Role,
    Side, State, MIN_INFLATE_BUFFER, MIN_RECEIVE_BUFFER, MIN_TRANSMIT_BUFFER,
};
pub use error::{Error, HandshakeError, Misuse, TimeoutKind, Violation};
pub use event::{Event, MessageKind};
pub use httparse;
pub use rand_core;
pub use time::{Duration, Instant};
