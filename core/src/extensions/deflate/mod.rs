//! permessage-deflate ([RFC 7692]): negotiation, a streaming inflater and an
//! allocation-free compressor, each usable on its own.
//!
//! * [`params`] — parse `Sec-WebSocket-Extensions`, [`accept_offer`]
//!   (server), [`write_offer`] / [`validate_response`] (client), and the
//!   per-direction [`Directions`] an [`Agreed`] implies.
//! * [`inflate`] — [`Inflater`]: payload chunks in, decompressed bytes out
//!   into any caller buffer, with a decompressed-size limit.
//! * [`compress`] — [`Compressor`]: message bytes in, compressed payload
//!   (tail stripped) out.
//!
//! # Memory
//!
//! Everything is sized by const generics and inline by default (with the
//! `alloc` feature, [`storage`] can put the arrays on the heap instead, built
//! in place; the sizes are the same): an [`Inflater`] holds its
//! window (`2^bits` bytes) and its DEFLATE decoder's state (about 2.1 KiB:
//! canonical Huffman tables of 16-bit words, each with a 256-word table
//! for its short codes); a [`Compressor`] holds a buffer of twice its window, hash heads,
//! hash chain links and a symbol buffer (16-bit words, as many of each as
//! its `HASH` parameter says) and the current block's Huffman codes (about
//! 1.3 KiB). It writes a block straight from the symbol buffer into the
//! caller's output as room allows, so any output buffer, even one byte,
//! makes progress, and the output does not depend on how it is chunked.
//!
//! That memory is fixed; what a peer can make the *application* hold is
//! not: a message inflates up to about 1032:1, so
//! [`crate::Limits::max_message_size`] (which counts inflated bytes) is what
//! bounds it, not the compressed frame sizes.
//!
//! # In a connection
//!
//! [`Deflate`] holds one inflater and one compressor and is attached with
//! [`crate::Connection::with_extension`] after the handshake agreed on the
//! extension ([`crate::handshake::Request::negotiate_deflate`] and
//! [`crate::handshake::Request::accept_deflate`] on the server,
//! [`crate::handshake::ClientHandshake::new_with_deflate`] and
//! [`crate::handshake::Response::deflate`] on the client).
//!
//! With the `alloc` feature, `Pooled` is the alternative for agreements
//! without context takeover in either direction: it borrows a state from a
//! `DeflatePool` shared by many connections only while a message is in
//! flight, so an idle connection holds none.
//!
//! * RSV1 is set on the first frame of a compressed message only (RFC 7692
//!   §6); continuation frames carry RSV1 = 0, and control frames are never
//!   compressed (RSV1 on them is a protocol error, 1002).
//! * Sending: every message is compressed into the caller's buffer
//!   ([`crate::Connection::send_buffer_len`] says how big it must be).
//! * Receiving: compressed messages are inflated into a caller scratch
//!   buffer ([`crate::Connection::receive_into`]); UTF-8 validation and the
//!   message-size limit apply to the decompressed bytes. Messages without
//!   RSV1 keep the zero-copy path.
//!
//! [RFC 7692]: https://www.rfc-editor.org/rfc/rfc7692

pub mod compress;
pub mod inflate;
pub mod params;
#[cfg(feature = "alloc")]
pub mod pooled;
pub mod state;
pub mod storage;
#[cfg(test)]
mod test_rng;

pub use compress::{
    Compressed, CompressionLevel, Compressor, Compressor12, Compressor15, Compressor9,
};
pub use inflate::{InflateError, Inflated, Inflater, Inflater12, Inflater15, Inflater9};
pub use params::{
    accept_offer, validate_response, write_offer, Agreed, DeflateConfig, DeflateParams, Directions,
    ParamError,
};
#[cfg(feature = "alloc")]
pub use pooled::{DeflatePool, PoolRefused, Pooled};
pub use state::{Deflate, Deflate12, Deflate15, Deflate9, WindowTooSmall};
#[cfg(feature = "alloc")]
pub use state::{HeapDeflate12, HeapDeflate15, HeapDeflate9};
#[cfg(feature = "alloc")]
pub use storage::Heap;
pub use storage::{Inline, Storage};
