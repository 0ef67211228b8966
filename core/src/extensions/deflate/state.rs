//! [`Deflate`]: the per-connection permessage-deflate state a
//! [`crate::Connection`] holds once the extension is agreed.

use super::compress::{CompressionLevel, Compressor};
use super::inflate::{InflateError, Inflater};
use super::params::{Agreed, DeflateConfig};
#[cfg(feature = "alloc")]
use super::storage::Heap;
use super::storage::{Inline, Storage};
use crate::connection::{sealed, Extension};
use crate::error::Violation;
use crate::Role;

/// permessage-deflate for one connection: an [`Inflater`] for what the peer
/// sends and a [`Compressor`] for what we send, sized by const generics, so
/// the memory is fixed when the type is chosen.
///
/// * `INFLATE_WINDOW` — the inflater's window in bytes (a power of two,
///   512..=32768); it must hold the window the peer may use,
///   `2^Directions::inflate_window_bits` (checked by [`Deflate::new`]).
///   Negotiate with [`Deflate::config`] so the peer is never allowed more.
/// * `COMPRESS_BUF`, `COMPRESS_HASH` — the compressor's buffer (twice the
///   largest window it uses) and the length of its hash head, chain link
///   and symbol tables ([`Compressor`]); a smaller window than agreed is
///   always allowed, so any size works.
/// * `S` — where the arrays live: [`Inline`] (the default) or, with the
///   `alloc` feature, `Heap`, which builds the state in place on the heap
///   instead of passing it through the stack ([`super::storage`]).
///
/// The aliases [`Deflate9`], [`Deflate12`] and [`Deflate15`] pair matching
/// sizes (`HeapDeflate9` etc. with heap storage). Attach it with
/// [`crate::Connection::with_extension`].
///
/// ```
/// use wsproto::extensions::deflate::{accept_offer, Deflate12};
/// use wsproto::{Config, Connection, Role};
///
/// // Server side, from the client's Sec-WebSocket-Extensions value:
/// let offer = "permessage-deflate; client_max_window_bits";
/// let agreed = accept_offer(offer, &Deflate12::config()).expect("acceptable");
/// let deflate = Deflate12::new(&agreed, Role::Server).expect("window fits");
/// let mut server = Connection::new(Role::Server, Config::default()).with_extension(deflate);
///
/// // RFC 7692 §7.2.3.1: "Hello" compressed, from a client (zero mask key).
/// let mut input = [0xc1, 0x87, 0, 0, 0, 0, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
/// let mut scratch = [0u8; 64];
/// let received = server.receive_into(&mut input, &mut scratch).unwrap();
/// assert_eq!(received.event, Some(wsproto::Event::Text { data: "Hello", fin: true }));
/// ```
#[derive(Clone, Debug)]
pub struct Deflate<
    const INFLATE_WINDOW: usize,
    const COMPRESS_BUF: usize,
    const COMPRESS_HASH: usize,
    S: Storage = Inline,
> {
    inflater: Inflater<INFLATE_WINDOW, S>,
    compressor: Compressor<COMPRESS_BUF, COMPRESS_HASH, S>,
}

/// 512-byte windows both ways (about 7.7 KiB in all).
pub type Deflate9 = Deflate<512, 1024, 512>;
/// 4 KiB windows both ways.
pub type Deflate12 = Deflate<4096, 8192, 2048>;
/// Full 32 KiB windows both ways: accepts any peer's default offer.
pub type Deflate15 = Deflate<32768, 65536, 8192>;

/// [`Deflate9`] with its arrays on the heap ([`Heap`]).
#[cfg(feature = "alloc")]
pub type HeapDeflate9 = Deflate<512, 1024, 512, Heap>;
/// [`Deflate12`] with its arrays on the heap ([`Heap`]).
#[cfg(feature = "alloc")]
pub type HeapDeflate12 = Deflate<4096, 8192, 2048, Heap>;
/// [`Deflate15`] with its arrays on the heap ([`Heap`]): builds in a few
/// KiB of stack where the inline state needs hundreds.
#[cfg(feature = "alloc")]
pub type HeapDeflate15 = Deflate<32768, 65536, 8192, Heap>;

/// The inflater cannot hold the window the agreement lets the peer use;
/// `required_bits` is that window's base-2 log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowTooSmall {
    /// The window (base-2 log) the peer may compress with.
    pub required_bits: u8,
}

impl core::fmt::Display for WindowTooSmall {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "inflater window too small for the agreed {} bits",
            self.required_bits
        )
    }
}

impl core::error::Error for WindowTooSmall {}

impl<const IW: usize, const CB: usize, const CH: usize> Deflate<IW, CB, CH, Inline> {
    /// A state agreed on nothing yet, built by a `const fn` so that it can
    /// be a `static` (on a microcontroller, no stack has to hold it).
    /// [`Deflate::configure`] sets the agreement in place once the
    /// handshake is done; a connection borrows the state
    /// (`Connection<R, &mut Deflate9>`) rather than holding it.
    ///
    /// ```
    /// use std::sync::Mutex;
    /// use wsproto::extensions::deflate::{accept_offer, Deflate9};
    /// use wsproto::{Config, Connection, Role};
    ///
    /// static DEFLATE: Mutex<Deflate9> = Mutex::new(Deflate9::new_const());
    ///
    /// let offer = "permessage-deflate; client_max_window_bits";
    /// let agreed = accept_offer(offer, &Deflate9::config()).expect("acceptable");
    /// let mut state = DEFLATE.lock().unwrap();
    /// state.configure(&agreed, Role::Server).expect("window fits");
    /// let mut server = Connection::new(Role::Server, Config::default()).with_extension(&mut *state);
    /// let mut input = [0xc1, 0x87, 0, 0, 0, 0, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    /// let mut scratch = [0u8; 64];
    /// let received = server.receive_into(&mut input, &mut scratch).unwrap();
    /// assert_eq!(received.event, Some(wsproto::Event::Text { data: "Hello", fin: true }));
    /// ```
    pub const fn new_const() -> Self {
        // All zeros, so that a `static` holding it lands in `.bss`: the
        // limits and windows come from `configure`.
        Deflate {
            inflater: Inflater::new_const(false, 0),
            compressor: Compressor::unconfigured(),
        }
    }
}

impl<const IW: usize, const CB: usize, const CH: usize, S: Storage> Deflate<IW, CB, CH, S> {
    /// The negotiation settings that fit this type: windows capped to the
    /// inflater's, context takeover both ways. Adjust the takeover flags
    /// freely; do not raise `max_window_bits`.
    pub fn config() -> DeflateConfig {
        DeflateConfig {
            max_window_bits: Inflater::<IW, S>::WINDOW_BITS,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
        }
    }

    /// The state for `role` under `agreed`. Fails if the inflater is smaller
    /// than the window the peer may use (negotiate with a
    /// [`DeflateConfig`] whose `max_window_bits` is at most the inflater's,
    /// e.g. [`Deflate::config`]).
    // Inlined, so that the optimizer can write the state where the caller
    // keeps it rather than into a temporary that is then moved there.
    #[inline(always)]
    pub fn new(agreed: &Agreed, role: Role) -> Result<Self, WindowTooSmall> {
        let dirs = agreed.directions(role);
        if !Inflater::<IW, S>::supports(dirs.inflate_window_bits) {
            return Err(WindowTooSmall {
                required_bits: dirs.inflate_window_bits,
            });
        }
        Ok(Deflate {
            inflater: Inflater::new(dirs.inflate_no_context_takeover, u64::MAX),
            compressor: Compressor::new(
                dirs.compress_window_bits,
                dirs.compress_no_context_takeover,
            ),
        })
    }

    /// Sets the agreement for `role` in place (as [`Deflate::new`] would
    /// build it) and drops any history in both directions. Fails, leaving
    /// the state as it was, if the inflater is smaller than the window the
    /// peer may use.
    pub fn configure(&mut self, agreed: &Agreed, role: Role) -> Result<(), WindowTooSmall> {
        let dirs = agreed.directions(role);
        if !Inflater::<IW, S>::supports(dirs.inflate_window_bits) {
            return Err(WindowTooSmall {
                required_bits: dirs.inflate_window_bits,
            });
        }
        self.inflater.configure(dirs.inflate_no_context_takeover);
        self.inflater.set_max_output(u64::MAX);
        self.compressor
            .configure(dirs.compress_window_bits, dirs.compress_no_context_takeover);
        Ok(())
    }

    /// This state, sending with `level` ([`CompressionLevel`]): a choice
    /// of this endpoint alone, not negotiated, so it fits any agreement.
    #[inline(always)]
    pub fn with_level(mut self, level: CompressionLevel) -> Self {
        self.compressor.set_level(level);
        self
    }

    /// Sets the compression level in place (between messages), e.g. on a
    /// state built by [`Deflate::new_const`]; [`Deflate::configure`]
    /// keeps it.
    pub fn set_level(&mut self, level: CompressionLevel) {
        self.compressor.set_level(level);
    }

    /// Bytes this state occupies: its own size, plus its allocations with
    /// heap storage ([`super::storage`]). Fixed once the type is chosen.
    pub fn memory(&self) -> usize {
        core::mem::size_of::<Self>() + self.inflater.heap_bytes() + self.compressor.heap_bytes()
    }

    /// The inflater (what the peer sends).
    pub fn inflater(&self) -> &Inflater<IW, S> {
        &self.inflater
    }

    /// The compressor (what we send).
    pub fn compressor(&self) -> &Compressor<CB, CH, S> {
        &self.compressor
    }
}

impl<const IW: usize, const CB: usize, const CH: usize, S: Storage> Extension
    for Deflate<IW, CB, CH, S>
{
}

/// A connection may borrow its state rather than own it, so that the state
/// can live elsewhere: in a `static` ([`Deflate::new_const`]), or reused by
/// the next connection after [`Deflate::configure`].
impl<const IW: usize, const CB: usize, const CH: usize, S: Storage> Extension
    for &mut Deflate<IW, CB, CH, S>
{
}

impl<const IW: usize, const CB: usize, const CH: usize, S: Storage> sealed::Hooks
    for &mut Deflate<IW, CB, CH, S>
{
    fn owns_rsv1(&self) -> bool {
        true
    }

    fn begin_inflate(&mut self, max_output: u64) {
        sealed::Hooks::begin_inflate(&mut **self, max_output)
    }

    fn inflate(
        &mut self,
        input: &[u8],
        out: &mut [u8],
        fin: bool,
    ) -> Result<sealed::Step, Violation> {
        sealed::Hooks::inflate(&mut **self, input, out, fin)
    }

    fn inflate_pending(&self) -> bool {
        sealed::Hooks::inflate_pending(&**self)
    }

    fn compress_bound(&self, len: usize) -> usize {
        sealed::Hooks::compress_bound(&**self, len)
    }

    fn compress(&mut self, input: &[u8], out: &mut [u8], fin: bool) -> Option<usize> {
        sealed::Hooks::compress(&mut **self, input, out, fin)
    }
}

impl<const IW: usize, const CB: usize, const CH: usize, S: Storage> sealed::Hooks
    for Deflate<IW, CB, CH, S>
{
    fn owns_rsv1(&self) -> bool {
        true
    }

    fn begin_inflate(&mut self, max_output: u64) {
        self.inflater.set_max_output(max_output);
    }

    fn inflate(
        &mut self,
        input: &[u8],
        out: &mut [u8],
        fin: bool,
    ) -> Result<sealed::Step, Violation> {
        match self.inflater.inflate(input, out, fin) {
            Ok(r) => Ok(sealed::Step {
                consumed: r.consumed,
                written: r.written,
                done: r.done,
            }),
            Err(InflateError::Corrupt) => Err(Violation::CorruptCompressedData),
            Err(InflateError::TooBig) => Err(Violation::MessageTooLarge),
        }
    }

    fn inflate_pending(&self) -> bool {
        self.inflater.pending() > 0
            || self.inflater.has_deferred_error()
            || self.inflater.holds_undecoded()
    }

    fn compress_bound(&self, len: usize) -> usize {
        self.compressor.max_output_len(len)
    }

    fn compress(&mut self, input: &[u8], out: &mut [u8], fin: bool) -> Option<usize> {
        let mut consumed = 0;
        let mut written = 0;
        loop {
            let r = self.compressor.compress(
                input.get(consumed..).unwrap_or_default(),
                out.get_mut(written..).unwrap_or_default(),
                fin,
            );
            consumed += r.consumed;
            written += r.written;
            if (fin && r.done) || (!fin && consumed >= input.len()) {
                return Some(written);
            }
            if r.consumed == 0 && r.written == 0 {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::sealed::Hooks;
    use crate::extensions::deflate::accept_offer;
    use std::boxed::Box;
    use std::vec::Vec;

    /// Compresses each message whole with `state`'s hooks.
    fn compress_all<E: Hooks>(state: &mut E, messages: &[&[u8]]) -> Vec<Vec<u8>> {
        messages
            .iter()
            .map(|m| {
                let mut out = std::vec![0u8; state.compress_bound(m.len())];
                let n = state.compress(m, &mut out, true).unwrap();
                out.truncate(n);
                out
            })
            .collect()
    }

    #[test]
    fn a_const_state_configured_in_place_matches_new() {
        let messages: [&[u8]; 3] = [b"Hello, Hello, Hello", b"Hello again", b"Hello"];
        for offer in [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_max_window_bits; server_no_context_takeover",
        ] {
            let agreed = accept_offer(offer, &Deflate9::config()).unwrap();
            for role in [Role::Server, Role::Client] {
                let mut fresh = Box::new(Deflate9::new(&agreed, role).unwrap());
                let mut reused = Box::new(Deflate9::new_const());
                // Some history first, which configure must drop.
                compress_all(&mut *reused, &messages);
                reused.configure(&agreed, role).unwrap();
                let expected = compress_all(&mut *fresh, &messages);
                assert_eq!(compress_all(&mut *reused, &messages), expected);
                // Borrowed, it behaves as owned.
                let mut again = Box::new(Deflate9::new_const());
                again.configure(&agreed, role).unwrap();
                assert_eq!(compress_all(&mut &mut *again, &messages), expected);
            }
        }
    }

    #[test]
    fn configure_refuses_a_window_the_inflater_cannot_hold() {
        let agreed = accept_offer("permessage-deflate", &Deflate15::config()).unwrap();
        let mut state = Box::new(Deflate9::new_const());
        assert_eq!(
            state.configure(&agreed, Role::Server),
            Err(WindowTooSmall { required_bits: 15 })
        );
    }
}
