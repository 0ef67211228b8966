//! An allocation-free DEFLATE (RFC 1951) compressor for permessage-deflate
//! (RFC 7692 §7.2.1).
//!
//! LZ77 with hash chains and one step of lazy matching, over a buffer of
//! `BUF` bytes (half history, half lookahead), with `HASH` hash heads and
//! `HASH` chain links. Matches are collected as symbols in a buffer of
//! `HASH` 16-bit words; when it is full, or two chunks of input (each half
//! the buffer; one chunk with the 64 KiB buffer), or the message, have been
//! matched, they become one block, written as whichever of stored,
//! fixed-Huffman and dynamic-Huffman
//! (length-limited codes built for the block) costs the fewest bits. Each
//! message ends with a sync flush (an empty stored block) whose trailing
//! `00 00 ff ff` is left out, as RFC 7692 §7.2.1 requires; the output of a
//! message is byte-aligned and self-delimiting.
//!
//! Matches never reach further back than `2^window_bits` bytes (the
//! negotiated limit, at most `BUF / 2`), and with `no_context_takeover` the
//! history is dropped after every message (every message then compresses
//! as if it were the first).
//!
//! Hash heads and links are only hints: every candidate is re-checked
//! against the buffer (position, distance limit and bytes), and a link is
//! followed only while its slot cannot have been reused, so the tables cost
//! ratio when they are small, never correctness.
//!
//! # Any split gives the same output
//!
//! A chunk is matched only once all of it is buffered, and matches and hash
//! insertions stay inside the chunk, so block boundaries and symbols depend
//! on the message bytes and `fin` only, never on how the input or the
//! output is chunked. A block is written straight from the symbol buffer
//! (a stored block from the input buffer) into `out` as it has room, down
//! to one byte at a time, with at most 63 bits held in between.

use core::borrow::{Borrow, BorrowMut};

use super::storage::{Inline, Storage};

mod fast;
mod huffman;

use huffman::{
    build_codes, build_lengths, dist_extra_bits, distance_code, fixed_lit_code, fixed_lit_len,
    rle_item, CLEN_ORDER, CLEN_SYMBOLS, DIST_SYMBOLS, END_OF_BLOCK, LEN_BASE, LEN_EXTRA_BITS,
    LEN_SYMBOL, LIT_SYMBOLS,
};

/// A compressor for windows of up to 2^9 bytes (a 1 KiB buffer).
pub type Compressor9 = Compressor<1024, 512>;
/// A compressor for windows of up to 2^12 bytes (an 8 KiB buffer).
pub type Compressor12 = Compressor<8192, 2048>;
/// A compressor for windows of up to 2^15 bytes (a 64 KiB buffer).
pub type Compressor15 = Compressor<65536, 8192>;

/// Progress of one [`Compressor::compress`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compressed {
    /// Input bytes taken (copied into the compressor's buffer); call again
    /// with the rest.
    pub consumed: usize,
    /// Compressed bytes written to the front of the output.
    pub written: usize,
    /// The message is complete: `fin` was given and every byte of it,
    /// including the final flush, has been written.
    pub done: bool,
}

/// How hard a [`Compressor`] looks for matches: chosen per connection by
/// the endpoint that compresses (the peer cannot tell, and any level's
/// output inflates alike), like zlib's levels.
///
/// * `Default` — hash chains and one step of lazy matching: a 16 KiB
///   message of chat-like JSON, compressed from scratch, comes to about
///   1.09× the size zlib level 6 makes, English-like prose to 1.01×.
/// * `Fast` — a greedy parse with two candidates per hash slot and growing
///   steps over long literal runs: about 1.42× level 6 on that JSON and
///   1.16× on prose (0.85× and 0.88× of zlib level 1's size), compressed
///   with about a third (JSON) to a half (prose) fewer instructions. Most
///   of a round trip's cost is then the block coding and the peer's
///   inflater, which both levels share (see `BENCHMARKS.md`).
///
/// Both write the same kinds of block (stored, fixed or dynamic Huffman,
/// whichever is smallest), keep the same memory and the same
/// [`Compressor::max_compressed_len`] bound, and give the same output for
/// any split of the input.
///
/// ```
/// use wsproto::extensions::deflate::{accept_offer, CompressionLevel, Deflate12};
/// use wsproto::{Config, Connection, Role};
///
/// let offer = "permessage-deflate; client_max_window_bits";
/// let agreed = accept_offer(offer, &Deflate12::config()).expect("acceptable");
/// // This server sends with the fast level; what it receives is
/// // inflated as always.
/// let deflate = Deflate12::new(&agreed, Role::Server)
///     .expect("window fits")
///     .with_level(CompressionLevel::Fast);
/// assert_eq!(deflate.compressor().level(), CompressionLevel::Fast);
/// let mut server = Connection::new(Role::Server, Config::default()).with_extension(deflate);
/// let text = "{\"user\":\"ada\"},{\"user\":\"ada\"},{\"user\":\"ada\"}";
/// let mut wire = [0u8; 128];
/// let n = server.send_text(text, &mut wire).expect("room enough");
/// // FIN and RSV1 (compressed), text; then a payload shorter than the text.
/// assert_eq!(wire[0], 0xc1);
/// assert!(n - 2 < text.len());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompressionLevel {
    /// The better ratio: chains and lazy matching.
    #[default]
    Default,
    /// The cheaper parse: greedy, one probe per position.
    Fast,
}

/// The shortest match DEFLATE can code.
const MIN_MATCH: usize = 3;
/// Bytes hashed to find match candidates, so the shortest match searched:
/// 3-byte matches rarely pay for their distance code, and hashing four
/// keeps the chains free of them.
const HASHED: usize = 4;
const MAX_MATCH: usize = 258;
/// Chain links followed per search.
const MAX_CHAIN: u32 = 16;
/// A match this long ends the search.
const NICE_MATCH: usize = 20;
/// A match this long is taken without looking one byte further.
const LAZY_MATCH: usize = 16;
/// A match this long makes the one-byte-later search shorter (a quarter).
const GOOD_MATCH: usize = 8;
/// Inside a match longer than these two together, only its first
/// `INSERT_HEAD` and last `INSERT_TAIL` positions enter the hash tables:
/// the middle of a long match is rarely where a later match starts, and
/// each insertion costs about as much as a link followed.
const INSERT_HEAD: usize = 12;
const INSERT_TAIL: usize = 12;
/// Worst-case bytes around a stored block: up to 7 pending bits plus a
/// 3-bit header (2 bytes), then LEN and NLEN.
const STORED_OVERHEAD: usize = 6;
/// The final flush: 3 header bits and padding, with up to 7 pending bits.
const FLUSH_MAX: usize = 2;
/// A symbol word at or above this starts a match: `MATCH | (len - 3)`,
/// followed by a word holding `dist - 1`. Below it, a literal byte.
const MATCH: u16 = 0x8000;

/// Where the writing of the current block (or flush) stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Nothing to write: matching or taking input comes next.
    Idle,
    /// A dynamic block's first 17 bits (header, HLIT, HDIST, HCLEN).
    DynamicHeader,
    /// Code-length code lengths, the next at this index of `CLEN_ORDER`.
    ClenLengths(usize),
    /// The run-length coded code lengths, from this index of the sequence.
    Lengths(usize),
    /// A fixed-Huffman block's 3 header bits.
    FixedHeader,
    /// Symbols, from this index of the symbol buffer, then end of block.
    Symbols(usize),
    /// A stored block's header, padding, LEN and NLEN.
    StoredHeader,
    /// A stored block's bytes, `buf[from..cur]`.
    StoredData(usize),
    /// The sync flush's empty stored block header and padding.
    Flush,
    /// The flush is written once the bits are out.
    FlushDone,
}

/// A permessage-deflate compressor for one direction of one connection.
///
/// `BUF` (a power of two, 512..=65536) holds the history and the
/// lookahead: the window it supports is `BUF / 2` (so 65536 for the full
/// 32 KiB window). `HASH` (a power of two, 256..=65536) sizes three tables
/// of 16-bit words: hash heads, hash chain links (so chains reach `HASH`
/// bytes back; the first candidate reaches the whole window) and the
/// symbol buffer (a block holds at most `HASH` words: one per literal, two
/// per match). Both are checked at compile time. About 1 KiB more holds
/// the block's Huffman codes.
#[derive(Clone)]
pub struct Compressor<const BUF: usize, const HASH: usize, S: Storage = Inline> {
    buf: S::Bytes<BUF>,
    head: S::Words<HASH>,
    prev: S::Words<HASH>,
    syms: S::Words<HASH>,
    /// Next byte to match; `buf[..cur]` is history or the current block.
    cur: usize,
    /// End of the buffered data.
    fill: usize,
    /// End of the chunk being matched (`cur <= chunk_end <= fill`).
    chunk_end: usize,
    /// First byte of the block whose symbols are in `syms`.
    block_start: usize,
    /// The open block has passed the end of one chunk already: it ends at
    /// the next (see [`Self::SPAN_CHUNKS`]).
    spanning: bool,
    /// Words used in `syms`.
    nsyms: usize,
    /// Positions below this are in the hash tables.
    inserted: usize,
    /// A match found at `cur` by the lazy look-ahead, not yet taken
    /// (length 0: none).
    lazy_len: u16,
    lazy_dist: u16,
    /// Added to a position to index `prev`: the sum of all slides, so a
    /// link keeps its slot when the buffer moves.
    base: usize,
    /// Largest match distance allowed: `2^window_bits`, at most `BUF / 2`.
    max_dist: usize,
    no_context_takeover: bool,
    level: CompressionLevel,
    /// Bits not yet written, least significant first.
    bits: u64,
    nbits: u32,
    phase: Phase,
    /// The message's final flush is out: `done` is reported next.
    flushed: bool,
    /// The current block's codes (bit-reversed) and lengths.
    lit_code: [u16; LIT_SYMBOLS],
    lit_len: [u8; LIT_SYMBOLS],
    dist_code: [u16; DIST_SYMBOLS],
    dist_len: [u8; DIST_SYMBOLS],
    clen_code: [u16; CLEN_SYMBOLS],
    clen_len: [u8; CLEN_SYMBOLS],
    hlit: u16,
    hdist: u8,
    hclen: u8,
    /// `lit_code` and `dist_code` hold the fixed codes.
    fixed_codes: bool,
}

impl<const BUF: usize, const HASH: usize, S: Storage> core::fmt::Debug
    for Compressor<BUF, HASH, S>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Compressor")
            .field("buf", &BUF)
            .field("hash", &HASH)
            .field("buffered", &(self.fill - self.cur))
            .field("writing", &self.phase)
            .field("max_dist", &self.max_dist)
            .field("no_context_takeover", &self.no_context_takeover)
            .finish_non_exhaustive()
    }
}

impl<const BUF: usize, const HASH: usize> Compressor<BUF, HASH, Inline> {
    /// [`Compressor::new`] as a `const fn`, for inline storage: a compressor
    /// (or a whole deflate state) can then be a `static`, never built on the
    /// stack.
    pub const fn new_const(window_bits: u8, no_context_takeover: bool) -> Self {
        Self::with_arrays(
            [0; BUF],
            [0; HASH],
            [0; HASH],
            [0; HASH],
            window_bits,
            no_context_takeover,
        )
    }

    /// A compressor whose every byte is zero, to be configured in place
    /// ([`Compressor::configure`]) before use: a `static` holding one then
    /// takes no space in flash (`.bss`, not `.data`). Unconfigured, it
    /// finds no matches (a window of 0).
    pub(super) const fn unconfigured() -> Self {
        let mut c = Self::new_const(15, false);
        c.max_dist = 0;
        c
    }
}

impl<const BUF: usize, const HASH: usize, S: Storage> Compressor<BUF, HASH, S> {
    /// The largest window (base-2 log) this compressor can honour.
    pub const MAX_WINDOW_BITS: u8 = (BUF / 2).trailing_zeros() as u8;
    /// Whether a block may cover the ends of two chunks (so twice as many
    /// bytes, for half the code construction per byte, where the symbol
    /// buffer allows). Its bytes stay in the buffer, where a stored block
    /// is written from: a block starts at or after the start of its first
    /// chunk, and the slide before the next chunk moves the buffer by at
    /// most that chunk's length. Not for a 64 KiB buffer, whose two chunks
    /// would be longer than a stored block can be.
    const SPAN_CHUNKS: bool = BUF < 65536;
    /// Input bytes a block covers at least, unless its chunk ends first:
    /// a full symbol buffer holds at least `HASH - 1` words, each covering
    /// at least one byte.
    const MIN_BLOCK: usize = if HASH - 1 < BUF / 2 {
        HASH - 1
    } else {
        BUF / 2
    };

    /// A fresh compressor. `window_bits` (8..=15, clamped to
    /// [`Self::MAX_WINDOW_BITS`]) is the negotiated limit for this direction;
    /// `no_context_takeover` drops the history after every message.
    // Inlined, so that the optimizer can write the state where the caller
    // keeps it rather than into a temporary that is then moved there.
    #[inline(always)]
    pub fn new(window_bits: u8, no_context_takeover: bool) -> Self {
        Self::with_arrays(
            S::bytes::<BUF>(),
            S::words::<HASH>(),
            S::words::<HASH>(),
            S::words::<HASH>(),
            window_bits,
            no_context_takeover,
        )
    }

    /// Sets the agreement (`window_bits`, `no_context_takeover`, as for
    /// [`Self::new`]) and drops any history, in place: for a compressor
    /// made by `new_const` before the handshake agreed on anything.
    pub fn configure(&mut self, window_bits: u8, no_context_takeover: bool) {
        self.max_dist = 1 << Self::clamp_bits(window_bits);
        self.no_context_takeover = no_context_takeover;
        self.reset();
    }

    /// Chooses how hard to look for matches from the next message on (call
    /// it between messages; it keeps the history). A new compressor starts
    /// at [`CompressionLevel::Default`].
    pub fn set_level(&mut self, level: CompressionLevel) {
        self.level = level;
    }

    /// The level [`Self::set_level`] chose.
    pub fn level(&self) -> CompressionLevel {
        self.level
    }

    /// `window_bits` within 8..=[`Self::MAX_WINDOW_BITS`].
    const fn clamp_bits(window_bits: u8) -> u8 {
        if window_bits < 8 {
            8
        } else if window_bits > Self::MAX_WINDOW_BITS {
            Self::MAX_WINDOW_BITS
        } else {
            window_bits
        }
    }

    /// Fails the build for sizes outside the documented ranges.
    const SIZES_OK: () = {
        assert!(
            BUF.is_power_of_two() && BUF >= 512 && BUF <= 65536,
            "Compressor buffer must be a power of two in 512..=65536"
        );
        assert!(
            HASH.is_power_of_two() && HASH >= 256 && HASH <= 65536,
            "Compressor hash table must be a power of two in 256..=65536"
        );
    };

    /// The state around its arrays: the buffer, the hash heads, the chain
    /// links and the symbols.
    #[inline(always)]
    const fn with_arrays(
        buf: S::Bytes<BUF>,
        head: S::Words<HASH>,
        prev: S::Words<HASH>,
        syms: S::Words<HASH>,
        window_bits: u8,
        no_context_takeover: bool,
    ) -> Self {
        let () = Self::SIZES_OK;
        let bits = Self::clamp_bits(window_bits);
        Self {
            buf,
            head,
            prev,
            syms,
            cur: 0,
            fill: 0,
            chunk_end: 0,
            block_start: 0,
            spanning: false,
            nsyms: 0,
            inserted: 0,
            lazy_len: 0,
            lazy_dist: 0,
            base: 0,
            max_dist: 1 << bits,
            no_context_takeover,
            level: CompressionLevel::Default,
            bits: 0,
            nbits: 0,
            phase: Phase::Idle,
            flushed: false,
            lit_code: [0; LIT_SYMBOLS],
            lit_len: [0; LIT_SYMBOLS],
            dist_code: [0; DIST_SYMBOLS],
            dist_len: [0; DIST_SYMBOLS],
            clen_code: [0; CLEN_SYMBOLS],
            clen_len: [0; CLEN_SYMBOLS],
            hlit: 0,
            hdist: 0,
            hclen: 0,
            fixed_codes: false,
        }
    }

    /// An upper bound of the compressed size of a `len`-byte message,
    /// however its input and output are chunked (the output does not depend
    /// on the chunking): an `out` this large finishes it in one call.
    pub const fn max_compressed_len(len: usize) -> usize {
        // Every block is at most its stored form; blocks end at no more
        // than every chunk end (every `BUF / 2` bytes; with
        // `SPAN_CHUNKS`, every other one) and when the symbol buffer is
        // full (after at least `MIN_BLOCK` bytes).
        let blocks = len / Self::MIN_BLOCK + len / (BUF / 2) + 2;
        len + blocks * STORED_OVERHEAD + FLUSH_MAX
    }

    /// An upper bound of what the next [`compress`](Self::compress) calls
    /// write for `len` more input bytes, the final flush included: the bytes
    /// taken but not yet written out (from earlier calls of this message)
    /// count as input too.
    pub fn max_output_len(&self, len: usize) -> usize {
        // Bytes of the block being written, or of the open one, are not
        // out yet (between blocks `block_start` is `cur`).
        let from = self.block_start;
        let buffered = self.fill - from.min(self.fill);
        Self::max_compressed_len(buffered.saturating_add(len)).saturating_add(8)
    }

    /// Drops the history (as at the start of a connection), and any output
    /// not yet written. Must not be called in the middle of a message.
    pub fn reset(&mut self) {
        self.cur = 0;
        self.fill = 0;
        self.bits = 0;
        self.nbits = 0;
        self.phase = Phase::Idle;
        self.flushed = false;
        self.forget();
    }

    /// Empties the buffer and the hash heads at a message boundary.
    fn forget(&mut self) {
        self.cur = 0;
        self.fill = 0;
        self.chunk_end = 0;
        self.block_start = 0;
        self.spanning = false;
        self.nsyms = 0;
        self.inserted = 0;
        self.lazy_len = 0;
        self.lazy_dist = 0;
        let head: &mut [u16] = self.head.borrow_mut();
        head.fill(0);
    }

    /// Compresses `input`, the next bytes of the current message, into
    /// `out`. `fin`: `input` ends the message.
    ///
    /// Input is buffered until a chunk (half the buffer) is available (or
    /// `fin`), so `written` may be 0. Encoded bytes that do not fit in
    /// `out` are kept and written by the next calls; until they are out, no
    /// more input is taken. Call again with the unconsumed input, the same
    /// `fin`, and more room (any `out` of at least one byte makes progress),
    /// until `done` (with `fin`) or all input is consumed (without). The
    /// bytes produced do not depend on how `input` or `out` is split.
    pub fn compress(&mut self, input: &[u8], out: &mut [u8], fin: bool) -> Compressed {
        let mut consumed = 0;
        let mut written = 0;
        loop {
            written += self.write_out(out.get_mut(written..).unwrap_or_default());
            if self.phase != Phase::Idle {
                break; // `out` is full
            }
            if self.flushed {
                self.flushed = false;
                if self.no_context_takeover {
                    self.forget();
                }
                return Compressed {
                    consumed,
                    written,
                    done: true,
                };
            }
            if self.cur < self.chunk_end {
                self.match_chunk();
                if Self::SPAN_CHUNKS && self.cur == self.chunk_end && !self.spanning {
                    // The block stays open into the next chunk: its bytes
                    // are still in the buffer after the next slide.
                    self.spanning = true;
                    continue;
                }
            } else {
                match self.take_input(input, &mut consumed, fin) {
                    None => break,
                    Some(false) => continue,
                    Some(true) => {}
                }
            }
            // The chunk is matched (or the message ends inside an open
            // block): the block is complete. One call site, so that its
            // frame can be merged into the caller's.
            self.start_block();
        }
        Compressed {
            consumed,
            written,
            done: false,
        }
    }

    /// Takes input into the buffer (sliding it first if full) and decides
    /// what comes next: a chunk to match (`chunk_end` moves), more input
    /// (the buffer was full), or at the end of the message the final
    /// flush. `None`: the call must return for more input; `Some(true)`:
    /// the message ends inside an open block, which the caller closes
    /// first.
    fn take_input(&mut self, input: &[u8], consumed: &mut usize, fin: bool) -> Option<bool> {
        let half = BUF / 2;
        if self.fill == BUF && self.cur > half {
            self.slide(self.cur - half);
        }
        let rest = input.get(*consumed..).unwrap_or_default();
        let fill = self.fill;
        let space = self.buf_mut().get_mut(fill..).unwrap_or_default();
        let n = space.len().min(rest.len());
        if let (Some(dst), Some(src)) = (space.get_mut(..n), rest.get(..n)) {
            dst.copy_from_slice(src);
            self.fill += n;
            *consumed += n;
        }
        let input_done = *consumed == input.len();
        let pending = self.fill - self.cur;
        if pending >= half || (fin && input_done && pending > 0) {
            self.chunk_end = self.cur + pending.min(half);
            return Some(false);
        }
        if !input_done {
            // The buffer is full with less than a chunk pending, so
            // `cur > half`: the next turn slides and takes more.
            return Some(false);
        }
        if !fin {
            return None;
        }
        if self.block_start < self.cur {
            return Some(true);
        }
        self.phase = Phase::Flush;
        Some(false)
    }

    /// Moves the buffer `by` bytes down, keeping the last `BUF/2` of
    /// history.
    fn slide(&mut self, by: usize) {
        // An open block spans at most the chunk before this slide, so its
        // bytes stay in the buffer.
        debug_assert!(by <= self.block_start);
        let fill = self.fill;
        self.buf_mut().copy_within(by..fill, 0);
        self.cur -= by;
        self.fill -= by;
        self.chunk_end = self.chunk_end.saturating_sub(by);
        self.block_start = self.block_start.saturating_sub(by);
        self.inserted = self.inserted.saturating_sub(by);
        self.base = self.base.wrapping_add(by);
        // `by` is below `BUF`, so at most 2^16 - 1: one 16-bit saturating
        // subtraction per slot, which the compiler turns into vector code
        // when each table has its own loop.
        let by = by.min(usize::from(u16::MAX)) as u16;
        let head: &mut [u16] = self.head.borrow_mut();
        for slot in head.iter_mut() {
            *slot = slot.saturating_sub(by);
        }
        let prev: &mut [u16] = self.prev.borrow_mut();
        for slot in prev.iter_mut() {
            *slot = slot.saturating_sub(by);
        }
    }

    /// Bytes held in allocations outside the value (heap storage only).
    pub(crate) fn heap_bytes(&self) -> usize {
        if S::HEAP {
            BUF + 3 * HASH * core::mem::size_of::<u16>()
        } else {
            0
        }
    }

    fn buf_mut(&mut self) -> &mut [u8] {
        self.buf.borrow_mut()
    }

    /// LZ77 over `buf[cur..chunk_end]` into the symbol buffer, until the
    /// chunk is done or the buffer is full.
    fn match_chunk(&mut self) {
        if self.level == CompressionLevel::Fast {
            self.match_fast();
            return;
        }
        let end = self.chunk_end;
        let buf: &[u8] = self.buf.borrow();
        let head: &mut [u16] = self.head.borrow_mut();
        let prev: &mut [u16] = self.prev.borrow_mut();
        let (Ok(head), Ok(prev)) = (
            <&mut [u16; HASH]>::try_from(head),
            <&mut [u16; HASH]>::try_from(prev),
        ) else {
            return;
        };
        let mut t = Tables::<HASH> {
            head,
            prev,
            base: self.base,
            inserted: self.inserted,
        };
        let syms: &mut [u16] = self.syms.borrow_mut();
        let max_dist = self.max_dist;
        let mut n = self.nsyms;
        let mut p = self.cur;
        let mut lazy = (usize::from(self.lazy_len), usize::from(self.lazy_dist));
        while p < end && n + 2 <= HASH {
            let (len, dist) = if lazy.0 > 0 {
                core::mem::take(&mut lazy)
            } else {
                t.find(buf, p, end, max_dist, MAX_CHAIN, HASHED - 1)
            };
            if len >= MIN_MATCH {
                if len < LAZY_MATCH && p + 1 < end {
                    let chain = if len >= GOOD_MATCH {
                        MAX_CHAIN / 4
                    } else {
                        MAX_CHAIN
                    };
                    // Only a longer match matters: the search skips the
                    // candidates that cannot beat `len`.
                    let next = t.find(buf, p + 1, end, max_dist, chain, len);
                    if next.0 > len {
                        if let Some(s) = syms.get_mut(n) {
                            *s = u16::from(buf.get(p).copied().unwrap_or(0));
                        }
                        n += 1;
                        lazy = next;
                        p += 1;
                        continue;
                    }
                }
                if let Some(s) = syms.get_mut(n..n + 2) {
                    s.copy_from_slice(&[MATCH | (len - MIN_MATCH) as u16, (dist - 1) as u16]);
                }
                n += 2;
                let stop = (p + len).min(end.saturating_sub(HASHED - 1));
                let from = t.inserted.max(p + 1);
                if stop > from + INSERT_HEAD + INSERT_TAIL {
                    t.insert_range(buf, from, from + INSERT_HEAD);
                    t.insert_range(buf, stop - INSERT_TAIL, stop);
                } else {
                    t.insert_range(buf, from, stop);
                }
                p += len;
            } else {
                if let Some(s) = syms.get_mut(n) {
                    *s = u16::from(buf.get(p).copied().unwrap_or(0));
                }
                n += 1;
                p += 1;
            }
        }
        self.inserted = t.inserted;
        self.nsyms = n;
        self.cur = p;
        self.lazy_len = lazy.0 as u16;
        self.lazy_dist = lazy.1 as u16;
    }

    /// [`Self::match_chunk`] at the fast level ([`fast::match_greedy`]).
    /// Kept out of line, so that the default level's loop is compiled as
    /// it was without it.
    #[inline(never)]
    fn match_fast(&mut self) {
        let head: &mut [u16] = self.head.borrow_mut();
        let older: &mut [u16] = self.prev.borrow_mut();
        let (Ok(head), Ok(older)) = (
            <&mut [u16; HASH]>::try_from(head),
            <&mut [u16; HASH]>::try_from(older),
        ) else {
            return;
        };
        let (p, n) = fast::match_greedy(fast::Span {
            buf: self.buf.borrow(),
            head,
            older,
            syms: self.syms.borrow_mut(),
            nsyms: self.nsyms,
            from: self.cur,
            end: self.chunk_end,
            max_dist: self.max_dist,
        });
        // The chain tables are not kept at this level: should the default
        // level follow, it starts hashing from here.
        self.inserted = p;
        self.nsyms = n;
        self.cur = p;
    }

    /// Chooses the cheapest encoding of the symbols in the buffer (the
    /// input `buf[block_start..cur]`) and starts writing it.
    ///
    /// The dynamic code lengths are built straight into the block's tables
    /// (the fixed tables are rebuilt when a later block wants them), so the
    /// only arrays on the stack are the symbol counts and the scratch of
    /// [`build_lengths`].
    fn start_block(&mut self) {
        let syms: &[u16] = self.syms.borrow();
        let syms = syms.get(..self.nsyms).unwrap_or_default();
        // A block holds fewer than `HASH` (at most 2^16) words, so no count
        // overflows 16 bits.
        let mut lit_freq = [0u16; LIT_SYMBOLS];
        let mut dist_freq = [0u16; DIST_SYMBOLS];
        let mut extra_bits = 0u64;
        let mut words = syms.iter();
        while let Some(&w) = words.next() {
            if w < MATCH {
                if let Some(f) = lit_freq.get_mut(usize::from(w & 0xff)) {
                    *f += 1;
                }
                continue;
            }
            let ls = usize::from(LEN_SYMBOL.get(usize::from(w & 0xff)).copied().unwrap_or(0));
            if let Some(f) = lit_freq.get_mut(257 + ls) {
                *f += 1;
            }
            extra_bits += u64::from(LEN_EXTRA_BITS.get(ls).copied().unwrap_or(0));
            let d = words.next().copied().unwrap_or(0);
            let (ds, _, eb) = distance_code(u32::from(d));
            if let Some(f) = dist_freq.get_mut(ds) {
                *f += 1;
            }
            extra_bits += u64::from(eb);
        }
        if let Some(f) = lit_freq.get_mut(END_OF_BLOCK) {
            *f = 1;
        }
        // Fixed codes: 8 bits for literals 0..=143, 9 for 144..=255, 7 for
        // symbols 256..=279 and 8 above, 5 for every distance.
        let total = |freq: &[u16]| freq.iter().map(|&f| u32::from(f)).sum::<u32>();
        let sum_lit = |from: usize, to: usize| total(lit_freq.get(from..to).unwrap_or_default());
        let fixed_bits = 3
            + extra_bits
            + u64::from(
                8 * sum_lit(0, 144)
                    + 9 * sum_lit(144, 256)
                    + 7 * sum_lit(256, 280)
                    + 8 * sum_lit(280, LIT_SYMBOLS)
                    + 5 * total(&dist_freq),
            );
        debug_assert_eq!(
            fixed_bits,
            3 + extra_bits
                + lit_freq
                    .iter()
                    .enumerate()
                    .map(|(s, &f)| u64::from(f) * u64::from(fixed_lit_len(s)))
                    .sum::<u64>()
                + 5 * dist_freq.iter().map(|&f| u64::from(f)).sum::<u64>()
        );

        // Dynamic code lengths, into the tables (a fixed block refills
        // them).
        build_lengths(&lit_freq, &mut self.lit_len, 15);
        build_lengths(&dist_freq, &mut self.dist_len, 15);
        let hlit = LIT_SYMBOLS
            - self
                .lit_len
                .iter()
                .rev()
                .take_while(|&&l| l == 0)
                .count()
                .min(LIT_SYMBOLS - 257);
        let hdist = DIST_SYMBOLS
            - self
                .dist_len
                .iter()
                .rev()
                .take_while(|&&l| l == 0)
                .count()
                .min(DIST_SYMBOLS - 1);
        let lits = self.lit_len.get(..hlit).unwrap_or_default();
        let dists = self.dist_len.get(..hdist).unwrap_or_default();
        let mut clen_freq = [0u16; CLEN_SYMBOLS];
        let mut rle_extra = 0u64;
        let mut i = 0;
        while i < hlit + hdist {
            let (sym, _, eb, n) = rle_item(lits, dists, i);
            if let Some(f) = clen_freq.get_mut(sym) {
                *f += 1;
            }
            rle_extra += u64::from(eb);
            i += n;
        }
        build_lengths(&clen_freq, &mut self.clen_len, 7);
        let hclen = CLEN_SYMBOLS
            - CLEN_ORDER
                .iter()
                .rev()
                .take_while(|&&s| self.clen_len.get(s) == Some(&0))
                .count()
                .min(CLEN_SYMBOLS - 4);
        let dynamic_bits = 3
            + 14
            + 3 * hclen as u64
            + rle_extra
            + weigh(&clen_freq, &self.clen_len)
            + extra_bits
            + weigh(&lit_freq, &self.lit_len)
            + weigh(&dist_freq, &self.dist_len);

        // Stored: header, padding to a byte, LEN and NLEN, the bytes.
        let len = self.cur - self.block_start;
        let stored_bits = {
            let header_end = self.nbits as usize + 3;
            (header_end.div_ceil(8) * 8 - self.nbits as usize + 32 + 8 * len) as u64
        };

        if stored_bits < fixed_bits.min(dynamic_bits) {
            self.phase = Phase::StoredHeader;
        } else if fixed_bits <= dynamic_bits {
            // The lengths were overwritten above; the codes are rebuilt
            // only after a dynamic block.
            for (s, l) in self.lit_len.iter_mut().enumerate() {
                *l = fixed_lit_len(s);
            }
            self.dist_len.fill(5);
            if !self.fixed_codes {
                for (s, c) in self.lit_code.iter_mut().enumerate() {
                    *c = fixed_lit_code(s);
                }
                build_codes(&self.dist_len, &mut self.dist_code);
                self.fixed_codes = true;
            }
            self.phase = Phase::FixedHeader;
        } else {
            build_codes(&self.lit_len, &mut self.lit_code);
            build_codes(&self.dist_len, &mut self.dist_code);
            build_codes(&self.clen_len, &mut self.clen_code);
            self.fixed_codes = false;
            self.hlit = hlit as u16;
            self.hdist = hdist as u8;
            self.hclen = hclen as u8;
            self.phase = Phase::DynamicHeader;
        }
    }

    /// Writes what it can of the current block or flush into `out`;
    /// returns the bytes written. Leaves `phase` at `Idle` only when
    /// everything is out but fewer than 8 bits.
    fn write_out(&mut self, out: &mut [u8]) -> usize {
        let mut o = Out { buf: out, pos: 0 };
        let mut b = Bits {
            bits: self.bits,
            nbits: self.nbits,
        };
        loop {
            if !b.drain(&mut o) {
                break; // `out` is full
            }
            match self.phase {
                Phase::Idle => break,
                Phase::DynamicHeader => {
                    b.put(0b100, 3);
                    b.put(u32::from(self.hlit) - 257, 5);
                    b.put(u32::from(self.hdist) - 1, 5);
                    b.put(u32::from(self.hclen) - 4, 4);
                    self.phase = Phase::ClenLengths(0);
                }
                Phase::ClenLengths(i) => {
                    if i < usize::from(self.hclen) {
                        let sym = CLEN_ORDER.get(i).copied().unwrap_or(0);
                        let l = self.clen_len.get(sym).copied().unwrap_or(0);
                        b.put(u32::from(l), 3);
                        self.phase = Phase::ClenLengths(i + 1);
                    } else {
                        self.phase = Phase::Lengths(0);
                    }
                }
                Phase::Lengths(i) => {
                    let (hlit, hdist) = (usize::from(self.hlit), usize::from(self.hdist));
                    if i < hlit + hdist {
                        let lits = self.lit_len.get(..hlit).unwrap_or_default();
                        let dists = self.dist_len.get(..hdist).unwrap_or_default();
                        let (sym, extra, extra_bits, covered) = rle_item(lits, dists, i);
                        let code = self.clen_code.get(sym).copied().unwrap_or(0);
                        let len = self.clen_len.get(sym).copied().unwrap_or(0);
                        b.put(u32::from(code), u32::from(len));
                        b.put(extra, extra_bits);
                        self.phase = Phase::Lengths(i + covered);
                    } else {
                        self.phase = Phase::Symbols(0);
                    }
                }
                Phase::FixedHeader => {
                    b.put(0b010, 3);
                    self.phase = Phase::Symbols(0);
                }
                Phase::Symbols(i) => {
                    let (i, done) = self.write_symbols(i, &mut b, &mut o);
                    if done {
                        self.end_block();
                    } else {
                        self.phase = Phase::Symbols(i);
                    }
                }
                Phase::StoredHeader => {
                    let len = (self.cur - self.block_start) as u32;
                    b.put(0, 3);
                    b.put(0, (8 - b.nbits % 8) % 8);
                    b.put((len & 0xffff) | ((!len & 0xffff) << 16), 32);
                    self.phase = Phase::StoredData(self.block_start);
                }
                Phase::StoredData(from) => {
                    // `drain` left no bits: the header ended on a byte.
                    let buf: &[u8] = self.buf.borrow();
                    let data = buf.get(from..self.cur).unwrap_or_default();
                    let n = o.copy(data);
                    if n < data.len() {
                        self.phase = Phase::StoredData(from + n);
                        break;
                    }
                    self.end_block();
                }
                Phase::Flush => {
                    b.put(0, 3);
                    b.put(0, (8 - b.nbits % 8) % 8);
                    self.phase = Phase::FlushDone;
                }
                Phase::FlushDone => {
                    self.flushed = true;
                    self.phase = Phase::Idle;
                }
            }
        }
        self.bits = b.bits;
        self.nbits = b.nbits;
        o.pos
    }

    /// The block is written: its symbols are dropped.
    fn end_block(&mut self) {
        self.block_start = self.cur;
        self.spanning = false;
        self.nsyms = 0;
        self.phase = Phase::Idle;
    }

    /// Writes symbols from index `i` (then the end-of-block code) while
    /// `out` has room; returns where it stopped and whether the block is
    /// complete.
    fn write_symbols(&self, mut i: usize, b: &mut Bits, o: &mut Out<'_>) -> (usize, bool) {
        let syms: &[u16] = self.syms.borrow();
        let syms = syms.get(..self.nsyms).unwrap_or_default();
        let lit = |s: usize| {
            (
                u32::from(self.lit_code.get(s).copied().unwrap_or(0)),
                u32::from(self.lit_len.get(s).copied().unwrap_or(0)),
            )
        };
        loop {
            if !b.drain(o) {
                return (i, false);
            }
            let Some(&w) = syms.get(i) else {
                let (code, len) = lit(END_OF_BLOCK);
                b.put(code, len);
                return (i, true);
            };
            if w < MATCH {
                let (code, len) = lit(usize::from(w));
                b.put(code, len);
                i += 1;
                continue;
            }
            let l = usize::from(w & 0xff);
            let ls = usize::from(LEN_SYMBOL.get(l).copied().unwrap_or(0));
            let (code, len) = lit(257 + ls);
            let base = usize::from(LEN_BASE.get(ls).copied().unwrap_or(0));
            let eb = u32::from(LEN_EXTRA_BITS.get(ls).copied().unwrap_or(0));
            b.put(code | (((l - base) as u32) << len), len + eb);
            let d = syms.get(i + 1).copied().unwrap_or(0);
            let (ds, dextra, deb) = distance_code(u32::from(d));
            debug_assert_eq!(deb, dist_extra_bits(ds));
            let dcode = u32::from(self.dist_code.get(ds).copied().unwrap_or(0));
            let dlen = u32::from(self.dist_len.get(ds).copied().unwrap_or(0));
            b.put(dcode | (dextra << dlen), dlen + deb);
            i += 2;
        }
    }
}

/// The hash heads and links while a chunk is matched, as fixed-size
/// arrays so that masked indices need no bounds checks.
struct Tables<'a, const HASH: usize> {
    head: &'a mut [u16; HASH],
    prev: &'a mut [u16; HASH],
    base: usize,
    inserted: usize,
}

impl<const HASH: usize> Tables<'_, HASH> {
    /// The hash of the 4 bytes at `p` (callers keep them inside the
    /// chunk).
    #[inline(always)]
    fn hash(buf: &[u8], p: usize) -> Option<usize> {
        let key = read_u32(buf, p)?;
        Some(Self::hash_key(key))
    }

    /// The hash slot of a 4-byte key.
    #[inline(always)]
    fn hash_key(key: u32) -> usize {
        (key.wrapping_mul(0x9e37_79b1) >> (32 - HASH.trailing_zeros())) as usize & (HASH - 1)
    }

    /// Records position `p` (its 4 bytes must be inside the chunk); returns
    /// the previous head of its chain.
    #[inline(always)]
    fn insert(&mut self, buf: &[u8], p: usize) -> Option<usize> {
        let h = Self::hash(buf, p)?;
        let slot = self.head.get_mut(h)?;
        let cand = usize::from(core::mem::replace(slot, p as u16));
        if let Some(link) = self.prev.get_mut(p.wrapping_add(self.base) & (HASH - 1)) {
            *link = cand as u16;
        }
        self.inserted = p + 1;
        Some(cand)
    }

    /// Records positions `from..to` (the 4 bytes at each inside the
    /// chunk), in order: the loop behind every match.
    #[inline(always)]
    fn insert_range(&mut self, buf: &[u8], from: usize, to: usize) {
        if from >= to {
            return;
        }
        // Every key read below lies in `buf[from..to + 3]`.
        let Some(bytes) = buf.get(from..to + HASHED - 1) else {
            return;
        };
        for (i, w) in bytes.windows(HASHED).enumerate() {
            let key = u32::from_le_bytes([
                w.first().copied().unwrap_or(0),
                w.get(1).copied().unwrap_or(0),
                w.get(2).copied().unwrap_or(0),
                w.get(3).copied().unwrap_or(0),
            ]);
            let q = from + i;
            let h = Self::hash_key(key);
            if let Some(slot) = self.head.get_mut(h) {
                let cand = core::mem::replace(slot, q as u16);
                if let Some(link) = self.prev.get_mut(q.wrapping_add(self.base) & (HASH - 1)) {
                    *link = cand;
                }
            }
        }
        self.inserted = to;
    }

    /// The longest match for `p` within `buf[..end]`, at most `max_dist`
    /// back, following at most `chain` links: (length, distance), length 0
    /// if there is none longer than `longer_than` (at least `HASHED - 1`).
    /// Inserts `p` if it is not yet.
    #[inline(always)]
    fn find(
        &mut self,
        buf: &[u8],
        p: usize,
        end: usize,
        max_dist: usize,
        chain: u32,
        longer_than: usize,
    ) -> (usize, usize) {
        if p + HASHED > end {
            return (0, 0);
        }
        let cand = if p >= self.inserted {
            self.insert(buf, p)
        } else {
            Self::hash(buf, p)
                .and_then(|h| self.head.get(h))
                .map(|&c| usize::from(c))
        };
        let Some(mut c) = cand else {
            return (0, 0);
        };
        if c == p {
            // `p` itself was the head: start from its link.
            c = match self.prev.get(p.wrapping_add(self.base) & (HASH - 1)) {
                Some(&l) => usize::from(l),
                None => return (0, 0),
            };
        }
        let limit = (end - p).min(MAX_MATCH);
        let Some(here) = buf.get(p..p + limit) else {
            return (0, 0);
        };
        // Candidates lie in `lo..p`; a link is followed only from a
        // candidate at or above `link_lo`, whose slot cannot have been
        // reused since.
        let lo = p.saturating_sub(max_dist);
        let link_lo = p.saturating_sub(HASH - 1);
        if c >= p || c < lo {
            return (0, 0);
        }
        // `limit > longer_than` keeps `want` inside `here`.
        if limit <= longer_than {
            return (0, 0);
        }
        let mut best = (longer_than.max(HASHED - 1), 0);
        let mut left = chain;
        // Only a candidate that agrees with `here` on the four bytes
        // ending at the one that would make it longer than `best` can beat
        // it.
        let mut probe = best.0 - 3;
        let Some(mut want) = read_u32(here, probe) else {
            return (0, 0);
        };
        loop {
            // `c + probe + 4 <= c + limit < p + limit <= end`: in the chunk.
            if read_u32(buf, c + probe) == Some(want) {
                let there = buf.get(c..c + limit).unwrap_or_default();
                let l = common_prefix(there, here);
                if l > best.0 {
                    best = (l, p - c);
                    if l >= NICE_MATCH || l == limit {
                        break;
                    }
                    probe = l - 3;
                    want = match read_u32(here, probe) {
                        Some(w) => w,
                        None => break,
                    };
                }
            }
            left -= 1;
            if left == 0 || c < link_lo {
                break; // out of effort, or `c`'s link slot may be reused
            }
            let next = match self.prev.get(c.wrapping_add(self.base) & (HASH - 1)) {
                Some(&l) => usize::from(l),
                None => break,
            };
            if next >= c || next < lo {
                break;
            }
            c = next;
        }
        if best.1 == 0 {
            return (0, 0);
        }
        best
    }
}

/// The bits of the symbols counted in `freq` coded with lengths `lens`
/// (without extra bits). Counts are below 2^16 and lengths below 16, so a
/// 32-bit sum of at most 286 products does not overflow.
fn weigh(freq: &[u16], lens: &[u8]) -> u64 {
    let bits: u32 = freq
        .iter()
        .zip(lens)
        .map(|(&f, &l)| u32::from(f) * u32::from(l))
        .sum();
    u64::from(bits)
}

/// The little-endian word at `buf[at..at + 4]`, if it is all there.
#[inline]
fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// Length of the common prefix of `a` and `b`, eight bytes at a time.
#[inline]
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let mut n = 0;
    let mut xa = a.chunks_exact(8);
    let mut xb = b.chunks_exact(8);
    for (ca, cb) in (&mut xa).zip(&mut xb) {
        let (Ok(ca), Ok(cb)) = (<[u8; 8]>::try_from(ca), <[u8; 8]>::try_from(cb)) else {
            break;
        };
        let diff = u64::from_le_bytes(ca) ^ u64::from_le_bytes(cb);
        if diff != 0 {
            return n + (diff.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + xa
        .remainder()
        .iter()
        .zip(xb.remainder())
        .take_while(|(x, y)| x == y)
        .count()
}

/// The caller's output buffer and how much of it is written.
struct Out<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Out<'_> {
    /// Copies as much of `src` as fits; returns the count.
    fn copy(&mut self, src: &[u8]) -> usize {
        let dst = self.buf.get_mut(self.pos..).unwrap_or_default();
        let n = src.len().min(dst.len());
        if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
            d.copy_from_slice(s);
        }
        self.pos += n;
        n
    }
}

/// Bits waiting for `out`, least significant first. Callers keep `nbits`
/// below 8 before a `put` of at most 48 bits (a match: 15 + 5 + 15 + 13),
/// so nothing overflows 64 bits.
struct Bits {
    bits: u64,
    nbits: u32,
}

impl Bits {
    #[inline]
    fn put(&mut self, value: u32, n: u32) {
        self.bits |= u64::from(value) << self.nbits;
        self.nbits += n;
    }

    /// Moves whole bytes to `out`; true when fewer than 8 bits are left.
    #[inline]
    fn drain(&mut self, o: &mut Out<'_>) -> bool {
        if let Some(dst) = o.buf.get_mut(o.pos..o.pos + 8) {
            dst.copy_from_slice(&self.bits.to_le_bytes());
            let bytes = self.nbits / 8;
            o.pos += bytes as usize;
            self.bits = self.bits.checked_shr(8 * bytes).unwrap_or(0);
            self.nbits -= 8 * bytes;
            return true;
        }
        while self.nbits >= 8 {
            let Some(dst) = o.buf.get_mut(o.pos) else {
                return false;
            };
            *dst = self.bits as u8;
            o.pos += 1;
            self.bits >>= 8;
            self.nbits -= 8;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extensions::deflate::inflate::{Inflater, TAIL};
    use crate::extensions::deflate::test_rng::{random_bytes, XorShift};
    use miniz_oxide::inflate::core::inflate_flags::{
        TINFL_FLAG_HAS_MORE_INPUT, TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
    };
    use miniz_oxide::inflate::core::{decompress, DecompressorOxide};
    use proptest::prelude::*;
    use std::vec::Vec;

    /// Compresses one message with input chunks of `in_step` and output
    /// chunks of `out_step` bytes.
    fn compress_msg<const B: usize, const H: usize>(
        c: &mut Compressor<B, H>,
        msg: &[u8],
        in_step: usize,
        out_step: usize,
    ) -> Vec<u8> {
        let mut got = Vec::new();
        let mut out = std::vec![0u8; out_step];
        let mut pos = 0usize;
        loop {
            let end = pos.saturating_add(in_step).min(msg.len());
            let fin = end == msg.len();
            let r = c.compress(&msg[pos..end], &mut out, fin);
            got.extend_from_slice(&out[..r.written]);
            pos += r.consumed;
            if r.done {
                assert_eq!(pos, msg.len());
                return got;
            }
        }
    }

    /// miniz_oxide in its non-wrapping mode: an inflater path independent of
    /// ours. `stream` is every message with its tail put back.
    fn reference_inflate(stream: &[u8], expected_len: usize) -> Vec<u8> {
        let mut out = std::vec![0u8; expected_len + 64];
        let mut r = DecompressorOxide::new();
        let flags = TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF | TINFL_FLAG_HAS_MORE_INPUT;
        let (_status, used, made) = decompress(&mut r, stream, &mut out, 0, flags);
        assert_eq!(used, stream.len());
        out.truncate(made);
        out
    }

    fn with_tail(msg: &[u8]) -> Vec<u8> {
        let mut v = msg.to_vec();
        v.extend_from_slice(&TAIL);
        v
    }

    #[test]
    fn rfc7692_hello() {
        let mut c = Compressor9::new(15, false);
        let first = compress_msg(&mut c, b"Hello", 5, 64);
        assert_eq!(first, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
        // With context takeover the second "Hello" is one match; RFC 7692
        // §7.2.3.2 shows zlib's `f2 00 11 00 00` (a literal, then a match of
        // 4); we find the 5-byte match and emit one byte less. Bits in
        // stream order: `0 10` (not final, fixed Huffman), `0000011`
        // (length 5), `00100` + `0` (distance 5), `0000000` (end of block),
        // `000` (the sync flush's stored header), padding: 26 bits, packed
        // LSB first into `02 13 00 00`.
        let second = compress_msg(&mut c, b"Hello", 1, 1);
        assert_eq!(second, [0x02, 0x13, 0x00, 0x00]);
        let mut stream = with_tail(&first);
        stream.extend_from_slice(&with_tail(&second));
        assert_eq!(reference_inflate(&stream, 10), b"HelloHello");
        // Without takeover every message looks like the first.
        let mut c = Compressor9::new(9, true);
        for _ in 0..3 {
            assert_eq!(compress_msg(&mut c, b"Hello", 2, 3), first);
        }
    }

    #[test]
    fn empty_message_is_one_zero_byte() {
        let mut c = Compressor12::new(12, false);
        assert_eq!(compress_msg(&mut c, b"", 1, 1), [0x00]);
        // The final flush alone needs just the one byte it writes.
        let r = c.compress(b"", &mut [0u8; 1], true);
        assert_eq!((r.consumed, r.written, r.done), (0, 1, true));
        assert_eq!(compress_msg(&mut c, b"", 1, 8), [0x00]);
    }

    #[test]
    fn a_block_spans_two_chunks_even_across_a_slide() {
        // 1024 random bytes are two 512-byte chunks of a 1 KiB buffer: with
        // room for 2048 symbols, one stored block holds both, written from
        // the buffer. After a first
        // message of 300 bytes, the chunks sit at 300 and 812, so the
        // buffer slides between them while the block is open.
        let random = random_bytes(0x0bad_5eed, 1024);
        let first = &sample_messages()[0][..300];
        for steps in [(usize::MAX, 1 << 16), (1, 1), (100, 7)] {
            let mut c = Compressor::<1024, 2048>::new(9, false);
            let a = compress_msg(&mut c, first, steps.0, steps.1);
            let b = compress_msg(&mut c, &random, steps.0, steps.1);
            // Header byte (BTYPE 00, not final), then LEN and NLEN.
            assert_eq!(first_block_type(&b), 0);
            assert_eq!(b.get(1..5), Some(&[0x00, 0x04, 0xff, 0xfb][..]));
            assert_eq!(b.get(5..1029), Some(&random[..]));
            let mut stream = with_tail(&a);
            stream.extend_from_slice(&with_tail(&b));
            assert_eq!(
                reference_inflate(&stream, 1324),
                [first, &random[..]].concat()
            );
        }
    }

    /// Compresses `msgs` in fragments of `frag` bytes, each call given
    /// exactly [`Compressor::max_output_len`] for its input: every call
    /// must take all its input (and finish the message with `fin`).
    fn fragments_within_bound<const B: usize, const H: usize>(msgs: &[Vec<u8>], frag: usize) {
        for level in LEVELS {
            fragments_within_bound_at::<B, H>(level, msgs, frag);
        }
    }

    /// [`fragments_within_bound`] at one level.
    fn fragments_within_bound_at<const B: usize, const H: usize>(
        level: CompressionLevel,
        msgs: &[Vec<u8>],
        frag: usize,
    ) {
        let mut c = at::<B, H>(level, 9, false);
        let mut stream = Vec::new();
        for m in msgs {
            let pieces: Vec<&[u8]> = if m.is_empty() {
                std::vec![&m[..]]
            } else {
                m.chunks(frag).collect()
            };
            for (i, piece) in pieces.iter().enumerate() {
                let fin = i + 1 == pieces.len();
                let mut out = std::vec![0u8; c.max_output_len(piece.len())];
                let r = c.compress(piece, &mut out, fin);
                assert_eq!(r.consumed, piece.len(), "fragments of {frag}");
                assert_eq!(r.done, fin, "fragments of {frag}");
                stream.extend_from_slice(&out[..r.written]);
            }
            stream.extend_from_slice(&TAIL);
        }
        let all: Vec<u8> = msgs.concat();
        assert_eq!(reference_inflate(&stream, all.len()), all);
    }

    #[test]
    fn max_output_len_bounds_every_fragment() {
        // Bytes of a block left open by an earlier fragment count too: with
        // room for 2048 symbols, random bytes make stored blocks of two
        // chunks, written by the fragment that completes the second.
        let msgs = sample_messages();
        for frag in [1usize, 100, 511, 512, 513, 700, 1500, 5000] {
            fragments_within_bound::<1024, 512>(&msgs, frag);
            fragments_within_bound::<1024, 2048>(&msgs, frag);
        }
    }

    #[test]
    fn incompressible_data_uses_stored_blocks() {
        let data = random_bytes(0x1234_5678, 3000);
        let mut c = Compressor9::new(9, false);
        let out = compress_msg(&mut c, &data, 3000, 4096);
        assert!(out.len() <= Compressor9::max_compressed_len(data.len()));
        assert!(out.len() < data.len() + 40, "{}", out.len());
        assert_eq!(reference_inflate(&with_tail(&out), data.len()), data);
    }

    #[test]
    fn bound_is_enough_in_one_call() {
        for len in [0, 1, 100, 511, 512, 513, 5000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 256) as u8).collect();
            let mut c = Compressor9::new(9, false);
            let mut out = std::vec![0u8; Compressor9::max_compressed_len(len)];
            let r = c.compress(&data, &mut out, true);
            assert!(r.done && r.consumed == len, "len {len}");
        }
    }

    /// A few kilobytes of each kind: text-like, repetitive, random.
    fn sample_messages() -> Vec<Vec<u8>> {
        let mut rng = XorShift::new(0x9e37_79b9);
        let mut next = move || rng.next_u32();
        const WORDS: [&str; 6] = ["socket ", "frame ", "deflate ", "{\"id\":", "}, ", "\n"];
        let text: Vec<u8> = (0..6000)
            .flat_map(|_| WORDS[next() as usize % WORDS.len()].bytes())
            .collect();
        let repetitive: Vec<u8> = (0..70_000).map(|i| (i % 7) as u8).collect();
        let random: Vec<u8> = (0..5000).map(|_| next() as u8).collect();
        let mut mixed = text[..3000].to_vec();
        mixed.extend_from_slice(&random[..3000]);
        mixed.extend_from_slice(&text[..3000]);
        std::vec![
            text,
            repetitive,
            random,
            mixed,
            b"Hello".to_vec(),
            Vec::new()
        ]
    }

    #[test]
    fn any_split_gives_the_same_output() {
        let msgs = sample_messages();
        for (nct, level) in [false, true]
            .into_iter()
            .flat_map(|n| LEVELS.map(|l| (n, l)))
        {
            let mut c: Compressor15 = at(level, 15, nct);
            let whole: Vec<Vec<u8>> = msgs
                .iter()
                .map(|m| compress_msg(&mut c, m, usize::MAX, 1 << 20))
                .collect();
            for (in_step, out_step) in [(1, 1), (7, 3), (100_000, 1), (3, 100_000), (513, 6)] {
                let mut c: Compressor15 = at(level, 15, nct);
                for (m, z) in msgs.iter().zip(&whole) {
                    let got = compress_msg(&mut c, m, in_step, out_step);
                    assert!(
                        got == *z,
                        "{level:?}, nct {nct}, steps {in_step}/{out_step}"
                    );
                }
            }
            let mut stream = Vec::new();
            for (m, z) in msgs.iter().zip(&whole) {
                assert!(z.len() <= Compressor15::max_compressed_len(m.len()));
                stream.extend_from_slice(&with_tail(z));
                if nct {
                    assert_eq!(reference_inflate(&with_tail(z), m.len()), *m);
                }
            }
            if !nct {
                let all: Vec<u8> = msgs.concat();
                assert_eq!(reference_inflate(&stream, all.len()), all);
            }
        }
    }

    #[test]
    fn compressible_data_compresses() {
        let msgs = sample_messages();
        let mut c = Compressor15::new(15, true);
        let text = compress_msg(&mut c, &msgs[0], usize::MAX, 1);
        // Six words in random order: about 2.6 bits of choice per word.
        assert!(
            text.len() * 6 < msgs[0].len(),
            "{} of {}",
            text.len(),
            msgs[0].len()
        );
        let rep = compress_msg(&mut c, &msgs[1], usize::MAX, 1);
        assert!(rep.len() < 400, "{}", rep.len());
    }

    #[test]
    fn fast_level_compresses_and_differs_from_default() {
        let msgs = sample_messages();
        let mut fast: Compressor15 = at(CompressionLevel::Fast, 15, true);
        let mut default = Compressor15::new(15, true);
        let text = compress_msg(&mut fast, &msgs[0], usize::MAX, 1);
        let better = compress_msg(&mut default, &msgs[0], usize::MAX, 1);
        assert_ne!(text, better);
        // Greedy with two candidates: larger than the default's output,
        // but still well under a fifth of the text.
        assert!(text.len() > better.len(), "{} {}", text.len(), better.len());
        assert!(text.len() * 5 < msgs[0].len(), "{}", text.len());
        // 70,000 bytes of period 7: close to one 258-byte match per 258
        // bytes, over 140:1.
        let rep = compress_msg(&mut fast, &msgs[1], usize::MAX, 1);
        assert!(rep.len() < 500, "{}", rep.len());
        assert_eq!(reference_inflate(&with_tail(&text), msgs[0].len()), msgs[0]);
    }

    #[test]
    fn fast_level_extends_matches_backwards_and_skips_literal_runs() {
        // 3000 random bytes, then the last 600 of them again: the second
        // copy is found after the probe step has grown (to about 12), so
        // probably at a skipped position, and taken whole once extended
        // backwards: three matches of at most 258 bytes, a few bytes,
        // where the 600 bytes as literals would cost about 600.
        let random = random_bytes(0x5eed_f457, 3000);
        let msg = [&random[..], &random[2400..]].concat();
        let mut c: Compressor15 = at(CompressionLevel::Fast, 15, true);
        let z = compress_msg(&mut c, &msg, usize::MAX, 1 << 16);
        assert_eq!(reference_inflate(&with_tail(&z), msg.len()), msg);
        let stored = compress_msg(&mut c, &random, usize::MAX, 1 << 16);
        // Both are Huffman or stored blocks of 3000 random literals, within
        // a hundred bytes of each other; the repeat adds next to nothing.
        assert!(z.len() < stored.len() + 100, "{} {}", z.len(), stored.len());
    }

    #[test]
    fn level_is_kept_by_reset_and_configure() {
        let mut c: Compressor9 = at(CompressionLevel::Fast, 9, false);
        c.reset();
        c.configure(9, true);
        assert_eq!(c.level(), CompressionLevel::Fast);
        assert_eq!(Compressor9::new(9, true).level(), CompressionLevel::Default);
    }

    /// The type of the first block of a compressed message (bits 1..=2 of
    /// its first byte; bit 0, BFINAL, is never set).
    fn first_block_type(z: &[u8]) -> u8 {
        assert_eq!(z[0] & 1, 0, "no block is final");
        (z[0] >> 1) & 3
    }

    #[test]
    fn every_block_type_round_trips_at_every_window() {
        let msgs = sample_messages();
        let cases: [(&[u8], u8); 3] = [
            (&msgs[2], 0), // random: stored
            (b"Hello", 1), // short: fixed Huffman
            (&msgs[0], 2), // long text: dynamic Huffman
        ];
        for bits in 9..=15u8 {
            for (msg, btype) in cases {
                let mut c = Compressor15::new(bits, true);
                let z = compress_msg(&mut c, msg, 1000, 77);
                assert_eq!(first_block_type(&z), btype, "bits {bits}");
                assert!(z.len() <= Compressor15::max_compressed_len(msg.len()));
                assert_eq!(reference_inflate(&with_tail(&z), msg.len()), msg);
                let mut c = Compressor9::new(bits, true);
                let z = compress_msg(&mut c, msg, 3, 1000);
                assert_eq!(reference_inflate(&with_tail(&z), msg.len()), msg);
            }
        }
    }

    /// A compressor whose symbol buffer (256 words) fills before its
    /// 512-byte chunks end, so blocks also end where the buffer is full.
    type SmallSyms = Compressor<1024, 256>;

    /// Compresses `msgs` whole and with the given steps: the same bytes
    /// each way, within the bound, and inflating to the messages (one
    /// stream with context takeover).
    fn check_messages<const B: usize, const H: usize>(
        bits: u8,
        nct: bool,
        msgs: &[Vec<u8>],
        steps: &[(usize, usize)],
    ) {
        for level in LEVELS {
            check_messages_at::<B, H>(level, bits, nct, msgs, steps);
        }
    }

    /// Both levels, for every test that checks what holds at any level.
    const LEVELS: [CompressionLevel; 2] = [CompressionLevel::Default, CompressionLevel::Fast];

    /// A compressor at `level`.
    fn at<const B: usize, const H: usize>(
        level: CompressionLevel,
        bits: u8,
        nct: bool,
    ) -> Compressor<B, H> {
        let mut c = Compressor::<B, H>::new(bits, nct);
        c.set_level(level);
        c
    }

    /// [`check_messages`] at one level.
    fn check_messages_at<const B: usize, const H: usize>(
        level: CompressionLevel,
        bits: u8,
        nct: bool,
        msgs: &[Vec<u8>],
        steps: &[(usize, usize)],
    ) {
        let mut c = at::<B, H>(level, bits, nct);
        let whole: Vec<Vec<u8>> = msgs
            .iter()
            .map(|m| compress_msg(&mut c, m, usize::MAX, 1 << 20))
            .collect();
        for &(in_step, out_step) in steps {
            let mut c = at::<B, H>(level, bits, nct);
            for (m, z) in msgs.iter().zip(&whole) {
                let got = compress_msg(&mut c, m, in_step, out_step);
                assert!(
                    got == *z,
                    "{level:?}, steps {in_step}/{out_step}, len {}",
                    m.len()
                );
            }
        }
        let mut stream = Vec::new();
        for (m, z) in msgs.iter().zip(&whole) {
            assert!(z.len() <= Compressor::<B, H>::max_compressed_len(m.len()));
            if nct {
                assert_eq!(reference_inflate(&with_tail(z), m.len()), *m);
            }
            stream.extend_from_slice(&with_tail(z));
        }
        if !nct {
            let all: Vec<u8> = msgs.concat();
            assert_eq!(reference_inflate(&stream, all.len()), all);
        }
    }

    #[test]
    fn messages_ending_at_block_boundaries() {
        let samples = sample_messages();
        // Chunks are 512 bytes; a full symbol buffer ends a block after
        // 255 literals (SmallSyms) or 511 (Compressor9).
        let mut msgs = Vec::new();
        for len in [255, 256, 511, 512, 513, 1023, 1024, 1025, 1536, 2048] {
            msgs.push(
                samples[2]
                    .iter()
                    .cycle()
                    .take(len)
                    .copied()
                    .collect::<Vec<u8>>(),
            );
            msgs.push(
                samples[0]
                    .iter()
                    .cycle()
                    .take(len)
                    .copied()
                    .collect::<Vec<u8>>(),
            );
            msgs.push(Vec::new());
        }
        let steps = [(1, 1), (255, 7), (511, 4096), (512, 1), (1000, 13)];
        for nct in [false, true] {
            check_messages::<1024, 256>(9, nct, &msgs, &steps);
            check_messages::<1024, 512>(9, nct, &msgs, &steps);
            check_messages::<8192, 2048>(12, nct, &msgs, &steps);
        }
        // A symbol-buffer block ending inside a match and the lazy match
        // carried over into the next block.
        let mut c = SmallSyms::new(9, false);
        let m = &samples[3];
        let z = compress_msg(&mut c, m, 1, 3);
        assert_eq!(reference_inflate(&with_tail(&z), m.len()), *m);
    }

    #[test]
    fn context_takeover_reaches_back_across_messages() {
        // The second message repeats the first: with takeover it is a few
        // matches; without, it compresses as if alone.
        let text = &sample_messages()[0][..400];
        for nct in [false, true] {
            let mut c = Compressor9::new(9, nct);
            let first = compress_msg(&mut c, text, usize::MAX, 4096);
            let second = compress_msg(&mut c, text, 7, 5);
            if nct {
                assert_eq!(first, second);
            } else {
                assert!(second.len() < 16, "{}", second.len());
                let mut stream = with_tail(&first);
                stream.extend_from_slice(&with_tail(&second));
                assert_eq!(reference_inflate(&stream, 800), [text, text].concat());
            }
        }
    }

    #[test]
    fn one_byte_out_makes_progress() {
        // Every call with a one-byte `out` writes a byte, until done.
        let msgs = sample_messages();
        let mut c = Compressor9::new(9, false);
        for m in &msgs {
            let mut pos = 0;
            let mut total = 0;
            loop {
                let mut out = [0u8; 1];
                let r = c.compress(&m[pos..], &mut out, true);
                pos += r.consumed;
                total += r.written;
                if r.done {
                    break;
                }
                assert_eq!(r.written, 1);
            }
            assert_eq!(pos, m.len());
            assert!(total <= Compressor9::max_compressed_len(m.len()));
        }
    }

    /// Compresses `msgs` and inflates them with an inflater of exactly
    /// `2^bits` bytes (so any distance past the window fails), with random
    /// chunking on both sides; also checks against the reference inflater.
    fn roundtrip<const W: usize>(
        bits: u8,
        msgs: &[Vec<u8>],
        nct: bool,
        steps: (usize, usize, usize, usize),
    ) {
        for level in LEVELS {
            roundtrip_at::<W>(level, bits, msgs, nct, steps);
        }
    }

    /// [`roundtrip`] at one level.
    fn roundtrip_at<const W: usize>(
        level: CompressionLevel,
        bits: u8,
        msgs: &[Vec<u8>],
        nct: bool,
        steps: (usize, usize, usize, usize),
    ) {
        let (c_in, c_out, i_in, i_out) = steps;
        let mut c: Compressor15 = at(level, bits, nct);
        let mut inf = Inflater::<W>::new(nct, 1 << 24);
        let mut stream = Vec::new();
        let mut all = Vec::new();
        for msg in msgs {
            let z = compress_msg(&mut c, msg, c_in, c_out);
            assert!(z.len() <= Compressor15::max_compressed_len(msg.len()));
            if nct {
                assert_eq!(reference_inflate(&with_tail(&z), msg.len()), *msg);
            }
            stream.extend_from_slice(&with_tail(&z));
            all.extend_from_slice(msg);
            // Ours, chunked.
            let mut got = Vec::new();
            let mut out = std::vec![0u8; i_out];
            let mut pos = 0;
            loop {
                let end = (pos + i_in).min(z.len());
                let fin = end == z.len();
                let r = inf.inflate(&z[pos..end], &mut out, fin).unwrap();
                got.extend_from_slice(&out[..r.written]);
                pos += r.consumed;
                if r.done {
                    break;
                }
            }
            assert_eq!(got, *msg);
        }
        if !nct {
            assert_eq!(reference_inflate(&stream, all.len()), all);
        }
    }

    fn message() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..2000),
            // Highly repetitive: a short pattern repeated, with noise.
            (
                proptest::collection::vec(any::<u8>(), 1..8),
                0usize..20_000,
                any::<u8>()
            )
                .prop_map(|(pat, len, noise)| {
                    (0..len)
                        .map(|i| {
                            if i % 997 == 0 {
                                noise
                            } else {
                                pat[i % pat.len()]
                            }
                        })
                        .collect()
                }),
            // Text-like: words from a small vocabulary.
            proptest::collection::vec(0usize..12, 0..3000).prop_map(|ws| {
                const WORDS: [&str; 12] = [
                    "the ",
                    "socket ",
                    "frame ",
                    "deflate ",
                    "window ",
                    "of ",
                    "a ",
                    "message ",
                    "{\"id\":",
                    "\"text\":",
                    "}, ",
                    "\n",
                ];
                ws.iter().flat_map(|&w| WORDS[w].bytes()).collect()
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn same_output_for_any_split(
            kind in 0usize..3,
            nct in any::<bool>(),
            msgs in proptest::collection::vec(message(), 1..4),
            in_step in 1usize..3000,
            out_step in 1usize..600,
        ) {
            let steps = [(in_step, out_step), (1, 1 << 20)];
            match kind {
                0 => check_messages::<1024, 256>(9, nct, &msgs, &steps),
                1 => check_messages::<1024, 512>(9, nct, &msgs, &steps),
                _ => check_messages::<65536, 8192>(15, nct, &msgs, &steps),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn roundtrip_any_window_any_chunking(
            bits in 9u8..=15,
            nct in any::<bool>(),
            msgs in proptest::collection::vec(message(), 1..5),
            c_in in 1usize..5000,
            c_out in 1usize..3000,
            i_in in 1usize..3000,
            i_out in 1usize..5000,
        ) {
            let steps = (c_in, c_out, i_in, i_out);
            match bits {
                9 => roundtrip::<512>(bits, &msgs, nct, steps),
                10 => roundtrip::<1024>(bits, &msgs, nct, steps),
                11 => roundtrip::<2048>(bits, &msgs, nct, steps),
                12 => roundtrip::<4096>(bits, &msgs, nct, steps),
                13 => roundtrip::<8192>(bits, &msgs, nct, steps),
                14 => roundtrip::<16384>(bits, &msgs, nct, steps),
                _ => roundtrip::<32768>(bits, &msgs, nct, steps),
            }
        }
    }
}
