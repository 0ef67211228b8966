//! An allocation-free DEFLATE (RFC 1951) compressor for permessage-deflate
//! (RFC 7692 §7.2.1).
//!
//! Greedy LZ77 over a buffer of `BUF` bytes (half history, half lookahead)
//! with a one-entry-per-bucket hash table of `HASH` slots, encoded as
//! fixed-Huffman blocks, or as stored blocks when those are smaller. Each
//! message ends with a sync flush (an empty stored block) whose trailing
//! `00 00 ff ff` is left out, as RFC 7692 §7.2.1 requires; the output of a
//! message is byte-aligned and self-delimiting.
//!
//! Matches never reach further back than `2^window_bits` bytes (the
//! negotiated limit, at most `BUF / 2`), and with `no_context_takeover` the
//! history is dropped after every message.
//!
//! Hash slots are only hints: every candidate is re-checked against the
//! buffer (position, distance limit and bytes), so stale slots after a
//! reset or a slide cost ratio, never correctness.
//!
//! # Any split gives the same output
//!
//! Block boundaries depend on the message bytes and `fin` only, never on how
//! the input or the output is chunked. A block is encoded whole into a small
//! internal stage (`STAGE` bytes; a stored block's data follows straight from
//! the buffer) and handed out from there as `out` has room, so an `out` of
//! any size, down to one byte, makes progress. A fixed-Huffman block ends
//! early, at a symbol boundary, when its encoding would outgrow the stage;
//! such a cut block is kept only if it is no larger than its input, so the
//! cut costs nothing against [`Compressor::max_compressed_len`].

use core::borrow::{Borrow, BorrowMut};

use super::storage::{Inline, Storage};

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

const MIN_MATCH: usize = 4;
const MAX_MATCH: usize = 258;
/// Worst-case bytes around a stored block: up to 7 pending bits plus a
/// 3-bit header (2 bytes), then LEN and NLEN.
const STORED_OVERHEAD: usize = 6;
/// The final flush: 3 header bits and padding, with up to 7 pending bits.
const FLUSH_MAX: usize = 2;
/// Bytes of encoded output the compressor holds back for `out`: the largest
/// fixed-Huffman block it encodes.
const STAGE: usize = 512;
/// Free stage bytes needed to encode one more symbol and still end the
/// block: up to 7 pending bits, the longest symbol (a length code with 5
/// extra bits and a distance code with 13: 31 bits) and the end-of-block
/// code (7 bits) make 45 bits.
const STAGE_MARGIN: usize = 6;

/// A permessage-deflate compressor for one direction of one connection.
///
/// `BUF` (a power of two, 512..=65536) holds the history and the
/// lookahead: the window it supports is `BUF / 2` (so 65536 for the full
/// 32 KiB window). `HASH` (a power of two, 256..=65536) is the number of
/// hash slots (2 bytes each). Both are checked at compile time. A further
/// 512 bytes stage encoded output for the caller's `out`.
#[derive(Clone)]
pub struct Compressor<const BUF: usize, const HASH: usize, S: Storage = Inline> {
    buf: S::Bytes<BUF>,
    head: S::Words<HASH>,
    /// Next byte to encode; `buf[..cur]` is history.
    cur: usize,
    /// End of the buffered data.
    fill: usize,
    /// Largest match distance allowed: `2^window_bits`, at most `BUF / 2`.
    max_dist: usize,
    no_context_takeover: bool,
    /// Bits not yet written, least significant first.
    bits: u64,
    nbits: u32,
    /// Encoded bytes not yet handed out: `stage[stage_pos..stage_len]`.
    stage: [u8; STAGE],
    stage_pos: usize,
    stage_len: usize,
    /// A stored block's data, handed out after the stage:
    /// `buf[raw_pos..raw_end]` (nothing moves in `buf` until it is out).
    raw_pos: usize,
    raw_end: usize,
    /// The stage holds the message's final flush: done once it is out.
    flushed: bool,
}

impl<const BUF: usize, const HASH: usize, S: Storage> core::fmt::Debug
    for Compressor<BUF, HASH, S>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Compressor")
            .field("buf", &BUF)
            .field("hash", &HASH)
            .field("buffered", &(self.fill - self.cur))
            .field("unwritten", &self.unwritten())
            .field("max_dist", &self.max_dist)
            .field("no_context_takeover", &self.no_context_takeover)
            .finish_non_exhaustive()
    }
}

impl<const BUF: usize, const HASH: usize, S: Storage> Compressor<BUF, HASH, S> {
    /// The largest window (base-2 log) this compressor can honour.
    pub const MAX_WINDOW_BITS: u8 = (BUF / 2).trailing_zeros() as u8;
    const HASH_SHIFT: u32 = 32 - HASH.trailing_zeros();

    /// A fresh compressor. `window_bits` (8..=15, clamped to
    /// [`Self::MAX_WINDOW_BITS`]) is the negotiated limit for this direction;
    /// `no_context_takeover` drops the history after every message.
    pub fn new(window_bits: u8, no_context_takeover: bool) -> Self {
        const {
            assert!(
                BUF.is_power_of_two() && BUF >= 512 && BUF <= 65536,
                "Compressor buffer must be a power of two in 512..=65536"
            );
            assert!(
                HASH.is_power_of_two() && HASH >= 256 && HASH <= 65536,
                "Compressor hash table must be a power of two in 256..=65536"
            );
        };
        let bits = window_bits.clamp(8, Self::MAX_WINDOW_BITS);
        Self {
            buf: S::bytes::<BUF>(),
            head: S::words::<HASH>(),
            cur: 0,
            fill: 0,
            max_dist: 1 << bits,
            no_context_takeover,
            bits: 0,
            nbits: 0,
            stage: [0; STAGE],
            stage_pos: 0,
            stage_len: 0,
            raw_pos: 0,
            raw_end: 0,
            flushed: false,
        }
    }

    /// An upper bound of the compressed size of a `len`-byte message,
    /// however its input and output are chunked (the output does not depend
    /// on the chunking): an `out` this large finishes it in one call.
    pub const fn max_compressed_len(len: usize) -> usize {
        // Every block but a cut fixed-Huffman one (which is never larger
        // than its input) covers `BUF / 2` bytes, except the last.
        let blocks = len / (BUF / 2) + 2;
        len + blocks * STORED_OVERHEAD + FLUSH_MAX
    }

    /// An upper bound of what the next [`compress`](Self::compress) calls
    /// write for `len` more input bytes, the final flush included: the bytes
    /// already taken but not yet encoded (less than a block, from earlier
    /// calls of this message) count as input too, and encoded bytes not yet
    /// handed out are added.
    pub fn max_output_len(&self, len: usize) -> usize {
        let buffered = self.fill - self.cur;
        Self::max_compressed_len(buffered.saturating_add(len)).saturating_add(self.unwritten())
    }

    /// Drops the history (as at the start of a connection), and any output
    /// not yet written. Must not be called in the middle of a message.
    pub fn reset(&mut self) {
        self.cur = 0;
        self.fill = 0;
        self.bits = 0;
        self.nbits = 0;
        self.stage_pos = 0;
        self.stage_len = 0;
        self.raw_pos = 0;
        self.raw_end = 0;
        self.flushed = false;
    }

    /// Compresses `input`, the next bytes of the current message, into
    /// `out`. `fin`: `input` ends the message.
    ///
    /// Input is buffered until a block's worth is available (or `fin`), so
    /// `written` may be 0. Encoded bytes that do not fit in `out` are kept
    /// and written by the next calls; until they are out, no more input is
    /// taken. Call again with the unconsumed input, the same `fin`, and more
    /// room (any `out` of at least one byte makes progress), until `done`
    /// (with `fin`) or all input is consumed (without). The bytes produced
    /// do not depend on how `input` or `out` is split.
    pub fn compress(&mut self, input: &[u8], out: &mut [u8], fin: bool) -> Compressed {
        let half = BUF / 2;
        let mut consumed = 0;
        let mut written = 0;
        loop {
            written += self.drain(out.get_mut(written..).unwrap_or_default());
            if self.unwritten() > 0 {
                break; // `out` is full
            }
            if self.flushed {
                self.flushed = false;
                return Compressed {
                    consumed,
                    written,
                    done: true,
                };
            }
            if self.fill == BUF && self.cur > half {
                self.slide(self.cur - half);
            }
            let rest = input.get(consumed..).unwrap_or_default();
            let fill = self.fill;
            let space = self.buf_mut().get_mut(fill..).unwrap_or_default();
            let n = space.len().min(rest.len());
            if let (Some(dst), Some(src)) = (space.get_mut(..n), rest.get(..n)) {
                dst.copy_from_slice(src);
                self.fill += n;
                consumed += n;
            }
            let input_done = consumed == input.len();
            let pending = self.fill - self.cur;
            if pending >= half || (fin && input_done && pending > 0) {
                let end = self.cur + pending.min(half);
                self.cur = self.encode_block(self.cur, end);
                continue;
            }
            if !input_done {
                // The buffer is full with less than a block pending, so
                // `cur > half`: the next turn slides and takes more.
                continue;
            }
            if !fin {
                break;
            }
            self.stage_flush();
        }
        Compressed {
            consumed,
            written,
            done: false,
        }
    }

    /// Encoded bytes waiting for room in `out`.
    fn unwritten(&self) -> usize {
        (self.stage_len - self.stage_pos) + (self.raw_end - self.raw_pos)
    }

    /// Writes what it can of the staged bytes, then of a stored block's
    /// data, into `out`; returns the bytes written.
    fn drain(&mut self, out: &mut [u8]) -> usize {
        let staged = self
            .stage
            .get(self.stage_pos..self.stage_len)
            .unwrap_or_default();
        let n = copy_prefix(staged, out);
        self.stage_pos += n;
        if self.stage_pos < self.stage_len {
            return n;
        }
        let raw = self
            .buf()
            .get(self.raw_pos..self.raw_end)
            .unwrap_or_default();
        let m = copy_prefix(raw, out.get_mut(n..).unwrap_or_default());
        self.raw_pos += m;
        n + m
    }

    /// Stages the sync flush ending the message: an empty stored block,
    /// its LEN/NLEN left out.
    fn stage_flush(&mut self) {
        let mut w = BitWriter::new(self.bits, self.nbits);
        w.put(&mut self.stage, 0, 3);
        w.align(&mut self.stage);
        self.stage_pos = 0;
        self.stage_len = w.pos;
        self.bits = 0;
        self.nbits = 0;
        self.flushed = true;
        if self.no_context_takeover {
            self.cur = 0;
            self.fill = 0;
        }
    }

    /// Moves the buffer `by` bytes down, keeping the last `BUF/2` of
    /// history.
    fn slide(&mut self, by: usize) {
        let fill = self.fill;
        self.buf_mut().copy_within(by..fill, 0);
        self.cur -= by;
        self.fill -= by;
        for slot in self.head_mut().iter_mut() {
            *slot = usize::from(*slot).saturating_sub(by) as u16;
        }
    }

    /// Bytes held in allocations outside the value (heap storage only).
    pub(crate) fn heap_bytes(&self) -> usize {
        let head: &[u16] = self.head.borrow();
        if S::HEAP {
            self.buf().len() + core::mem::size_of_val(head)
        } else {
            0
        }
    }

    fn buf(&self) -> &[u8] {
        self.buf.borrow()
    }

    fn buf_mut(&mut self) -> &mut [u8] {
        self.buf.borrow_mut()
    }

    fn head_mut(&mut self) -> &mut [u16] {
        self.head.borrow_mut()
    }

    fn hash(word: u32) -> usize {
        (word.wrapping_mul(0x9e37_79b1) >> Self::HASH_SHIFT) as usize
    }

    fn word_at(&self, pos: usize) -> Option<u32> {
        let b = self.buf().get(pos..pos + 4)?;
        let array: [u8; 4] = b.try_into().ok()?;
        Some(u32::from_le_bytes(array))
    }

    /// Records `pos` in the hash table; returns the previous occupant.
    fn insert(&mut self, pos: usize, word: u32) -> usize {
        match self.head_mut().get_mut(Self::hash(word)) {
            Some(slot) => usize::from(core::mem::replace(slot, pos as u16)),
            None => usize::MAX,
        }
    }

    /// Length of the match of `pos` against `cand` (≤ `limit`).
    fn match_len(&self, cand: usize, pos: usize, limit: usize) -> usize {
        match (self.buf().get(cand..), self.buf().get(pos..pos + limit)) {
            (Some(a), Some(b)) => a.iter().zip(b).take_while(|(x, y)| x == y).count(),
            _ => 0,
        }
    }

    /// Encodes one block of `buf[start..end]` into the (empty) stage and
    /// returns where the block ends.
    ///
    /// Fixed Huffman is kept when it is not larger than a stored block of
    /// the same bytes. If its encoding would outgrow the stage, the block
    /// ends at the last whole symbol that fits, and is kept only if it is no
    /// larger than its input. Otherwise `buf[start..end]` becomes a stored
    /// block: its header is staged and its data follows from `buf`.
    fn encode_block(&mut self, start: usize, end: usize) -> usize {
        let len = end - start;
        let stored_bits = {
            let header_end = self.nbits as usize + 3;
            header_end.div_ceil(8) * 8 - self.nbits as usize + 32 + 8 * len
        };
        let mut w = BitWriter::new(self.bits, self.nbits);
        w.put(&mut self.stage, 0b010, 3);
        let mut p = start;
        while p < end && w.total <= stored_bits && w.pos + STAGE_MARGIN <= STAGE {
            let mut matched = 0;
            let mut dist = 0;
            if end - p >= MIN_MATCH {
                if let Some(word) = self.word_at(p) {
                    let cand = self.insert(p, word);
                    if cand < p && p - cand <= self.max_dist {
                        let limit = (end - p).min(MAX_MATCH);
                        matched = self.match_len(cand, p, limit);
                        dist = p - cand;
                    }
                }
            }
            if matched >= MIN_MATCH {
                let (symbol, extra, extra_bits) = length_code(matched);
                let (code, n) = fixed_code(symbol);
                w.put(&mut self.stage, code, n);
                w.put(&mut self.stage, extra, extra_bits);
                let (dcode, dextra, dextra_bits) = distance_code(dist);
                w.put(&mut self.stage, reverse(dcode, 5), 5);
                w.put(&mut self.stage, dextra, dextra_bits);
                // Index the positions inside the match for later matches.
                let last = (p + matched).min(end + 1 - MIN_MATCH);
                for q in p + 1..last {
                    if let Some(word) = self.word_at(q) {
                        self.insert(q, word);
                    }
                }
                p += matched;
            } else {
                let byte = self.buf().get(p).copied().unwrap_or(0);
                let (code, n) = fixed_code(u16::from(byte));
                w.put(&mut self.stage, code, n);
                p += 1;
            }
        }
        let (code, n) = fixed_code(256);
        w.put(&mut self.stage, code, n);
        // A whole block against its stored form; a cut one against its
        // input (a stopped-early one is larger than both).
        let budget = if p >= end {
            stored_bits
        } else {
            8 * (p - start)
        };
        self.stage_pos = 0;
        if !w.overflow && w.total <= budget {
            self.bits = w.bits;
            self.nbits = w.nbits;
            self.stage_len = w.pos;
            return p;
        }
        // Stored block instead.
        let mut w = BitWriter::new(self.bits, self.nbits);
        w.put(&mut self.stage, 0, 3);
        w.align(&mut self.stage);
        let len16 = len as u16;
        for b in len16
            .to_le_bytes()
            .into_iter()
            .chain((!len16).to_le_bytes())
        {
            w.put(&mut self.stage, u32::from(b), 8);
        }
        self.bits = w.bits;
        self.nbits = w.nbits;
        self.stage_len = w.pos;
        self.raw_pos = start;
        self.raw_end = end;
        // Keep later matches able to find this data.
        let mut p = start;
        while p + MIN_MATCH <= end {
            if let Some(word) = self.word_at(p) {
                self.insert(p, word);
            }
            p += 1;
        }
        end
    }
}

/// Copies as much of `src` as fits to the front of `dst`; returns the count.
fn copy_prefix(src: &[u8], dst: &mut [u8]) -> usize {
    let n = src.len().min(dst.len());
    if let (Some(s), Some(d)) = (src.get(..n), dst.get_mut(..n)) {
        d.copy_from_slice(s);
    }
    n
}

/// Packs bits least significant first and writes whole bytes into the
/// `out` given to each call. Running out of room sets `overflow` (and
/// writes nothing more).
struct BitWriter {
    bits: u64,
    nbits: u32,
    pos: usize,
    overflow: bool,
    /// Bits put so far.
    total: usize,
}

impl BitWriter {
    fn new(bits: u64, nbits: u32) -> Self {
        Self {
            bits,
            nbits,
            pos: 0,
            overflow: false,
            total: 0,
        }
    }

    fn put(&mut self, out: &mut [u8], value: u32, n: u32) {
        self.total += n as usize;
        self.bits |= u64::from(value) << self.nbits;
        self.nbits += n;
        while self.nbits >= 8 {
            match out.get_mut(self.pos) {
                Some(b) if !self.overflow => {
                    *b = self.bits as u8;
                    self.pos += 1;
                }
                _ => self.overflow = true,
            }
            self.bits >>= 8;
            self.nbits -= 8;
        }
    }

    fn align(&mut self, out: &mut [u8]) {
        let pad = (8 - self.nbits % 8) % 8;
        self.put(out, 0, pad);
    }
}

/// Reverses the low `n` bits of `code` (Huffman codes go MSB first).
const fn reverse(code: u32, n: u32) -> u32 {
    code.reverse_bits() >> (32 - n)
}

/// The fixed literal/length code (RFC 1951 §3.2.6) of `symbol`, bit-reversed
/// for LSB-first output, with its length.
fn fixed_code(symbol: u16) -> (u32, u32) {
    let s = u32::from(symbol);
    match s {
        0..=143 => (reverse(0x30 + s, 8), 8),
        144..=255 => (reverse(0x190 + s - 144, 9), 9),
        256..=279 => (reverse(s - 256, 7), 7),
        _ => (reverse(0xc0 + s - 280, 8), 8),
    }
}

/// Length 3..=258 → (symbol, extra value, extra bit count), RFC 1951 §3.2.5.
fn length_code(len: usize) -> (u16, u32, u32) {
    if len >= 258 {
        return (285, 0, 0);
    }
    let l = len.saturating_sub(3) as u32;
    if l < 8 {
        return (257 + l as u16, 0, 0);
    }
    let lg = 31 - l.leading_zeros(); // 3..=7
    let extra_bits = lg - 2;
    let top = (l >> extra_bits) & 3;
    let symbol = 257 + 4 * (lg - 1) + top;
    let extra = l - ((4 + top) << extra_bits);
    (symbol as u16, extra, extra_bits)
}

/// Distance 1..=32768 → (code, extra value, extra bit count), RFC 1951
/// §3.2.5.
fn distance_code(dist: usize) -> (u32, u32, u32) {
    let d = dist.saturating_sub(1) as u32;
    if d < 4 {
        return (d, 0, 0);
    }
    let lg = 31 - d.leading_zeros(); // 2..=14
    let extra_bits = lg - 1;
    let top = (d >> extra_bits) & 1;
    let code = 2 * lg + top;
    let extra = d - ((2 + top) << extra_bits);
    (code, extra, extra_bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extensions::deflate::inflate::{Inflater, TAIL};
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
    fn incompressible_data_uses_stored_blocks() {
        let mut x = 0x1234_5678u32;
        let data: Vec<u8> = (0..3000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
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
        let mut x = 0x9e37_79b9u32;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
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
        for nct in [false, true] {
            let mut c = Compressor15::new(15, nct);
            let whole: Vec<Vec<u8>> = msgs
                .iter()
                .map(|m| compress_msg(&mut c, m, usize::MAX, 1 << 20))
                .collect();
            for (in_step, out_step) in [(1, 1), (7, 3), (100_000, 1), (3, 100_000), (513, 6)] {
                let mut c = Compressor15::new(15, nct);
                for (m, z) in msgs.iter().zip(&whole) {
                    let got = compress_msg(&mut c, m, in_step, out_step);
                    assert!(got == *z, "nct {nct}, steps {in_step}/{out_step}");
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
    fn compressible_data_compresses_despite_the_stage() {
        // Blocks cut at the stage size must not cost ratio noticeably.
        let msgs = sample_messages();
        let mut c = Compressor15::new(15, true);
        let text = compress_msg(&mut c, &msgs[0], usize::MAX, 1);
        assert!(
            text.len() * 3 < msgs[0].len(),
            "{} of {}",
            text.len(),
            msgs[0].len()
        );
        let rep = compress_msg(&mut c, &msgs[1], usize::MAX, 1);
        assert!(rep.len() < 700, "{}", rep.len());
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

    #[test]
    fn codes_match_rfc1951_tables() {
        assert_eq!(length_code(3), (257, 0, 0));
        assert_eq!(length_code(10), (264, 0, 0));
        assert_eq!(length_code(11), (265, 0, 1));
        assert_eq!(length_code(12), (265, 1, 1));
        assert_eq!(length_code(227), (284, 0, 5));
        assert_eq!(length_code(257), (284, 30, 5));
        assert_eq!(length_code(258), (285, 0, 0));
        assert_eq!(distance_code(1), (0, 0, 0));
        assert_eq!(distance_code(4), (3, 0, 0));
        assert_eq!(distance_code(5), (4, 0, 1));
        assert_eq!(distance_code(7), (5, 0, 1));
        assert_eq!(distance_code(24577), (29, 0, 13));
        assert_eq!(distance_code(32768), (29, 8191, 13));
        assert_eq!(fixed_code(0), (reverse(0x30, 8), 8));
        assert_eq!(fixed_code(256), (0, 7));
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
        let (c_in, c_out, i_in, i_out) = steps;
        let mut c = Compressor15::new(bits, nct);
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
