//! The connection's hook for an extension that owns RSV1 and transforms
//! message payloads (RFC 6455 §9, RFC 7692).
//!
//! A [`crate::Connection`] is generic over its extension state `E`. The
//! default, [`NoExtension`], is a zero-sized type that owns no RSV bit, so a
//! connection without an extension is exactly what it was before extensions
//! existed. With the `deflate` feature, `extensions::deflate::Deflate` is
//! the other implementation: a fixed-size inflater and compressor, sized by
//! const generics and held inline.
//!
//! The trait is sealed: its methods are the connection's business, and the
//! crate implements it only for the types it knows.

use crate::error::Violation;

/// Per-message payload transformation owned by a connection, selected by
/// RSV1 on the first frame of a message. Sealed; implemented by
/// [`NoExtension`], with the `deflate` feature by
/// `extensions::deflate::Deflate` (and, with `alloc` too,
/// `extensions::deflate::Pooled`), and by `Option` of any of them (`None`:
/// no extension was agreed).
pub trait Extension: sealed::Hooks {}

/// No extension: every RSV bit is a protocol error (1002). Zero-sized.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoExtension;

impl Extension for NoExtension {}

impl sealed::Hooks for NoExtension {
    fn owns_rsv1(&self) -> bool {
        false
    }
    fn begin_inflate(&mut self, _max_output: u64) {}
    fn inflate(
        &mut self,
        _input: &[u8],
        _out: &mut [u8],
        _fin: bool,
    ) -> Result<sealed::Step, Violation> {
        // Unreachable in practice: RSV1 is refused before any payload.
        Err(Violation::ReservedBits)
    }
    fn inflate_pending(&self) -> bool {
        false
    }
    fn compress_bound(&self, len: usize) -> usize {
        len
    }
    fn compress(&mut self, _input: &[u8], _out: &mut [u8], _fin: bool) -> Option<usize> {
        None
    }
}

/// An extension that may or may not have been agreed in the handshake, so
/// that both outcomes share one connection type: `Some` behaves as the
/// extension, `None` as [`NoExtension`] (every RSV bit refused). With the
/// `deflate` feature, e.g. `Connection<NoRng, Option<Deflate9>>`.
impl<X: Extension> Extension for Option<X> {}

impl<X: sealed::Hooks> sealed::Hooks for Option<X> {
    fn owns_rsv1(&self) -> bool {
        self.as_ref().is_some_and(X::owns_rsv1)
    }
    fn begin_inflate(&mut self, max_output: u64) {
        if let Some(x) = self {
            x.begin_inflate(max_output);
        }
    }
    fn inflate(
        &mut self,
        input: &[u8],
        out: &mut [u8],
        fin: bool,
    ) -> Result<sealed::Step, Violation> {
        match self {
            Some(x) => x.inflate(input, out, fin),
            None => NoExtension.inflate(input, out, fin),
        }
    }
    fn inflate_pending(&self) -> bool {
        self.as_ref().is_some_and(X::inflate_pending)
    }
    fn compress_bound(&self, len: usize) -> usize {
        self.as_ref().map_or(len, |x| x.compress_bound(len))
    }
    fn compress(&mut self, input: &[u8], out: &mut [u8], fin: bool) -> Option<usize> {
        self.as_mut().and_then(|x| x.compress(input, out, fin))
    }
}

pub(crate) mod sealed {
    use crate::error::Violation;

    /// Progress of one inflate or compress call.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Step {
        /// Input bytes taken.
        pub consumed: usize,
        /// Output bytes written at the front of the output buffer.
        pub written: usize,
        /// The message is complete.
        pub done: bool,
    }

    /// What the connection asks of its extension.
    pub trait Hooks {
        /// RSV1 on a message's first frame means "transformed" (for
        /// permessage-deflate, "compressed"); messages are sent that way.
        fn owns_rsv1(&self) -> bool;
        /// A transformed message starts: at most `max_output` bytes of it
        /// may come out.
        fn begin_inflate(&mut self, max_output: u64);
        /// Reverses the transformation of the next payload bytes of the
        /// current message into `out`; `fin`: `input` ends the message.
        fn inflate(&mut self, input: &[u8], out: &mut [u8], fin: bool) -> Result<Step, Violation>;
        /// Output of the current message is waiting for room.
        fn inflate_pending(&self) -> bool;
        /// An `out` of this many bytes always holds what `compress` writes
        /// for `len` more input bytes (a final flush included).
        fn compress_bound(&self, len: usize) -> usize;
        /// Transforms all of `input` (the next bytes of the outgoing
        /// message) into `out`, which is at least `compress_bound` long;
        /// `fin` ends the message. Returns the bytes written, or `None` if
        /// the output did not fit (not expected with the bound).
        fn compress(&mut self, input: &[u8], out: &mut [u8], fin: bool) -> Option<usize>;
    }
}
