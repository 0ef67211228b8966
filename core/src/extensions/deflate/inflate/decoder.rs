//! The DEFLATE decoder (RFC 1951): stored, fixed and dynamic Huffman
//! blocks, decoded into a power-of-two window that is also the LZ77
//! history.
//!
//! It stops wherever input or window room runs out and carries on from the
//! same place on the next call: up to 56 bits wait in a bit buffer, and each
//! step that needs several fields (a length with its distance, a repeat code
//! with its count) takes its bits only once all of them are there. Every
//! malformed stream ends in [`Status::Corrupt`]; nothing a peer sends can
//! index outside a table or the window.

use super::huffman::{BadCode, Decoded, Table};

/// Base match length of length symbols 257..=285 (RFC 1951 §3.2.5).
const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
/// Extra bits of length symbols 257..=285.
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
/// Base distance of distance symbols 0..=29.
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
/// Extra bits of distance symbols 0..=29.
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
/// The order code length code lengths are sent in (RFC 1951 §3.2.7).
const CLEN_ORDER: [u8; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];
/// Literal/length symbols a dynamic block may define (HLIT + 257).
const MAX_LITLEN: usize = 286;
/// Distance symbols a dynamic block may define (HDIST + 1).
const MAX_DIST: usize = 30;
/// Refill the bit buffer while it holds no more than this many bits.
const REFILL_BELOW: u32 = 57;

/// Where the decoder stands in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Between blocks: the next bits are a block header.
    Header,
    /// A stored block's LEN and NLEN.
    StoredLen,
    /// Inside a stored block, `left` bytes to copy.
    Stored { left: u16 },
    /// A dynamic block's HLIT, HDIST and HCLEN.
    Counts,
    /// The code length code's lengths, `have` of them read.
    CodeLengths { have: u8 },
    /// The literal/length and distance code lengths, `have` of them read.
    Lengths { have: u16 },
    /// Huffman-coded literals and matches.
    Codes,
    /// A match with `len` bytes still to copy from `dist` back.
    Copy { len: u16, dist: u16 },
    /// Past the final block.
    Done,
}

/// Why [`Decoder::decode`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Status {
    /// Every input byte is used (the stream goes on in the next input).
    NeedInput,
    /// The window is written up to its end: drain it and call again.
    OutputFull,
    /// The final block ended; later input is not part of the stream.
    Done,
    /// Not a valid DEFLATE stream; the bytes written before the fault stand.
    Corrupt,
}

/// What one [`Decoder::decode`] call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Progress {
    /// Input bytes taken (into the bit buffer or copied).
    pub used: usize,
    /// Bytes written into the window from the position given.
    pub made: usize,
    /// Why it stopped.
    pub status: Status,
}

/// A resumable DEFLATE decoder: about 2.1 KiB, `const`-constructible.
#[derive(Clone, Debug)]
pub(super) struct Decoder {
    /// Bits taken from the input and not yet used, first bit lowest; the
    /// bits above `nbits` are zero.
    bits: u64,
    nbits: u32,
    step: Step,
    /// The current block is the final one (BFINAL).
    last: bool,
    /// HLIT + 257 and HDIST + 1 of the current dynamic block, HCLEN + 4.
    nlit: u16,
    ndist: u8,
    nclen: u8,
    /// Code lengths of the dynamic block being read.
    lengths: [u8; MAX_LITLEN + MAX_DIST],
    /// The literal/length code (also the code length code while a dynamic
    /// block's header is read).
    litlen: Table<288>,
    dist: Table<32>,
    /// Bytes of the window that hold history a match may refer to.
    history: usize,
}

impl Decoder {
    /// A decoder at the start of a stream with no history.
    pub(super) const fn new() -> Self {
        Decoder {
            bits: 0,
            nbits: 0,
            step: Step::Header,
            last: false,
            nlit: 0,
            ndist: 0,
            nclen: 0,
            lengths: [0; MAX_LITLEN + MAX_DIST],
            litlen: Table::new(),
            dist: Table::new(),
            history: 0,
        }
    }

    /// Starts a new stream that may refer to the window's history.
    pub(super) fn restart(&mut self) {
        self.bits = 0;
        self.nbits = 0;
        self.step = Step::Header;
        self.last = false;
    }

    /// Starts a new stream with no history.
    pub(super) fn reset(&mut self) {
        self.restart();
        self.history = 0;
    }

    /// Between two blocks (or before the first).
    pub(super) fn between_blocks(&self) -> bool {
        self.step == Step::Header
    }

    /// Decodes from `input` into `window[pos..]`. `window.len()` must be a
    /// power of two (a shorter or odd window is treated as corrupt output
    /// room, never indexed out of bounds); bytes before `pos`, and after it
    /// from earlier wraps, are the history matches copy from.
    pub(super) fn decode(&mut self, input: &[u8], window: &mut [u8], pos: usize) -> Progress {
        let size = window.len();
        let mask = size.wrapping_sub(1);
        let mut bits = self.bits;
        let mut nbits = self.nbits;
        let mut used = 0;
        let mut out = pos;
        // Takes input bytes into the bit buffer while it has room: whole
        // bytes only, so that the bits above `nbits` stay zero.
        macro_rules! refill {
            () => {
                if nbits < REFILL_BELOW {
                    if let Some(word) = input.get(used..used + 8) {
                        // Eight bytes at once; keep those that fit.
                        let mut le = [0u8; 8];
                        le.copy_from_slice(word);
                        let take = (63 - nbits) / 8;
                        nbits += take * 8;
                        bits = (bits | u64::from_le_bytes(le) << (nbits - take * 8))
                            & ((1u64 << nbits) - 1);
                        used += take as usize;
                    } else {
                        while nbits < REFILL_BELOW {
                            match input.get(used) {
                                Some(&b) => {
                                    bits |= u64::from(b) << nbits;
                                    nbits += 8;
                                    used += 1;
                                }
                                None => break,
                            }
                        }
                    }
                }
            };
        }
        // Drops `n` bits from the buffer (n <= nbits).
        macro_rules! consume {
            ($n:expr) => {{
                let n: u32 = $n;
                bits >>= n;
                nbits -= n;
            }};
        }
        let status = 'run: loop {
            match self.step {
                Step::Header => {
                    refill!();
                    if nbits < 3 {
                        break 'run Status::NeedInput;
                    }
                    self.last = bits & 1 != 0;
                    let kind = (bits >> 1) & 3;
                    consume!(3);
                    self.step = match kind {
                        0 => {
                            // Stored: skip to a byte boundary.
                            consume!(nbits % 8);
                            Step::StoredLen
                        }
                        1 => {
                            if self.fixed_tables().is_err() {
                                break 'run Status::Corrupt;
                            }
                            Step::Codes
                        }
                        2 => Step::Counts,
                        _ => break 'run Status::Corrupt,
                    };
                }
                Step::StoredLen => {
                    refill!();
                    if nbits < 32 {
                        break 'run Status::NeedInput;
                    }
                    let len = (bits & 0xffff) as u16;
                    let nlen = ((bits >> 16) & 0xffff) as u16;
                    if len != !nlen {
                        break 'run Status::Corrupt;
                    }
                    consume!(32);
                    self.step = Step::Stored { left: len };
                }
                Step::Stored { mut left } => {
                    // Whole bytes already in the bit buffer come first.
                    while left > 0 && nbits >= 8 {
                        let Some(slot) = window.get_mut(out) else {
                            break;
                        };
                        *slot = bits as u8;
                        consume!(8);
                        out += 1;
                        left -= 1;
                    }
                    if nbits < 8 {
                        let rest = input.get(used..).unwrap_or_default();
                        let room = window.get_mut(out..).unwrap_or_default();
                        let n = usize::from(left).min(rest.len()).min(room.len());
                        if let (Some(dst), Some(src)) = (room.get_mut(..n), rest.get(..n)) {
                            dst.copy_from_slice(src);
                            used += n;
                            out += n;
                            left -= n as u16;
                        }
                    }
                    self.step = Step::Stored { left };
                    if left > 0 {
                        if out >= size {
                            break 'run Status::OutputFull;
                        }
                        break 'run Status::NeedInput;
                    }
                    if let Some(s) = self.end_block() {
                        break 'run s;
                    }
                }
                Step::Counts => {
                    refill!();
                    if nbits < 14 {
                        break 'run Status::NeedInput;
                    }
                    self.nlit = 257 + (bits & 31) as u16;
                    self.ndist = 1 + ((bits >> 5) & 31) as u8;
                    self.nclen = 4 + ((bits >> 10) & 15) as u8;
                    consume!(14);
                    if usize::from(self.nlit) > MAX_LITLEN || usize::from(self.ndist) > MAX_DIST {
                        break 'run Status::Corrupt;
                    }
                    for l in self.lengths.iter_mut().take(CLEN_ORDER.len()) {
                        *l = 0;
                    }
                    self.step = Step::CodeLengths { have: 0 };
                }
                Step::CodeLengths { mut have } => {
                    while have < self.nclen {
                        refill!();
                        if nbits < 3 {
                            self.step = Step::CodeLengths { have };
                            break 'run Status::NeedInput;
                        }
                        let at = CLEN_ORDER.get(usize::from(have)).copied().unwrap_or(0);
                        if let Some(l) = self.lengths.get_mut(usize::from(at)) {
                            *l = (bits & 7) as u8;
                        }
                        consume!(3);
                        have += 1;
                    }
                    let clens = self.lengths.get(..CLEN_ORDER.len()).unwrap_or_default();
                    if self.litlen.build(clens, false).is_err() {
                        break 'run Status::Corrupt;
                    }
                    self.step = Step::Lengths { have: 0 };
                }
                Step::Lengths { mut have } => {
                    let total = self.nlit + u16::from(self.ndist);
                    while have < total {
                        refill!();
                        let (symbol, len) = match self.litlen.decode(bits, nbits) {
                            Decoded::Symbol { symbol, len } => (symbol, len),
                            Decoded::NeedBits => {
                                self.step = Step::Lengths { have };
                                break 'run Status::NeedInput;
                            }
                            Decoded::Invalid => break 'run Status::Corrupt,
                        };
                        if symbol < 16 {
                            if let Some(l) = self.lengths.get_mut(usize::from(have)) {
                                *l = symbol as u8;
                            }
                            consume!(len);
                            have += 1;
                            continue;
                        }
                        // Repeat codes: (extra bits, base count, value).
                        let (extra, base) = match symbol {
                            16 => (2, 3),
                            17 => (3, 3),
                            _ => (7, 11),
                        };
                        if nbits < len + extra {
                            self.step = Step::Lengths { have };
                            break 'run Status::NeedInput;
                        }
                        let count = base + ((bits >> len) & ((1 << extra) - 1)) as u16;
                        let value = if symbol == 16 {
                            match have
                                .checked_sub(1)
                                .and_then(|i| self.lengths.get(usize::from(i)))
                            {
                                Some(&v) => v,
                                // Nothing to repeat.
                                None => break 'run Status::Corrupt,
                            }
                        } else {
                            0
                        };
                        let end = have + count;
                        if end > total {
                            break 'run Status::Corrupt;
                        }
                        let run = self
                            .lengths
                            .get_mut(usize::from(have)..usize::from(end))
                            .unwrap_or_default();
                        run.fill(value);
                        consume!(len + extra);
                        have = end;
                    }
                    if self.dynamic_tables().is_err() {
                        break 'run Status::Corrupt;
                    }
                    self.step = Step::Codes;
                }
                Step::Codes => {
                    let avail_hist = self.history;
                    loop {
                        if nbits < 48 {
                            refill!();
                        }

                        let (symbol, len) = match self.litlen.decode(bits, nbits) {
                            Decoded::Symbol { symbol, len } => (symbol, len),
                            Decoded::NeedBits => break 'run Status::NeedInput,
                            Decoded::Invalid => break 'run Status::Corrupt,
                        };
                        if symbol < 256 {
                            let Some(slot) = window.get_mut(out) else {
                                break 'run Status::OutputFull;
                            };
                            *slot = symbol as u8;
                            out += 1;
                            consume!(len);
                            continue;
                        }
                        if symbol == 256 {
                            consume!(len);
                            break;
                        }
                        let index = usize::from(symbol - 257);
                        let (Some(&base), Some(&extra)) =
                            (LEN_BASE.get(index), LEN_EXTRA.get(index))
                        else {
                            break 'run Status::Corrupt; // 286 and 287
                        };
                        let extra = u32::from(extra);
                        let taken = len + extra;
                        if nbits < taken {
                            break 'run Status::NeedInput;
                        }
                        let length = base + ((bits >> len) & ((1 << extra) - 1)) as u16;
                        let rest = bits >> taken;
                        let (dsym, dlen) = match self.dist.decode(rest, nbits - taken) {
                            Decoded::Symbol { symbol, len } => (symbol, len),
                            Decoded::NeedBits => break 'run Status::NeedInput,
                            Decoded::Invalid => break 'run Status::Corrupt,
                        };
                        let dindex = usize::from(dsym);
                        let (Some(&dbase), Some(&dextra)) =
                            (DIST_BASE.get(dindex), DIST_EXTRA.get(dindex))
                        else {
                            break 'run Status::Corrupt; // 30 and 31
                        };
                        let dextra = u32::from(dextra);
                        if nbits < taken + dlen + dextra {
                            break 'run Status::NeedInput;
                        }
                        let dist = dbase + ((rest >> dlen) & ((1 << dextra) - 1)) as u16;
                        // History: what the window held plus what this call
                        // wrote, never more than the window.
                        let reach = avail_hist.saturating_add(out - pos).min(size);
                        if usize::from(dist) > reach {
                            break 'run Status::Corrupt;
                        }
                        consume!(taken + dlen + dextra);
                        let left = copy_match(window, &mut out, length, usize::from(dist), mask);
                        if left > 0 {
                            self.step = Step::Copy { len: left, dist };
                            break 'run Status::OutputFull;
                        }
                    }
                    if let Some(s) = self.end_block() {
                        break 'run s;
                    }
                }
                Step::Copy { len, dist } => {
                    let left = copy_match(window, &mut out, len, usize::from(dist), mask);
                    if left > 0 {
                        self.step = Step::Copy { len: left, dist };
                        break 'run Status::OutputFull;
                    }
                    self.step = Step::Codes;
                }
                Step::Done => break 'run Status::Done,
            }
        };
        self.bits = bits;
        self.nbits = nbits;
        let made = out - pos;
        self.history = self.history.saturating_add(made).min(size);
        Progress { used, made, status }
    }

    /// The block ended: the next block, or the end of the stream.
    fn end_block(&mut self) -> Option<Status> {
        if self.last {
            self.step = Step::Done;
            Some(Status::Done)
        } else {
            self.step = Step::Header;
            None
        }
    }

    /// The fixed codes of RFC 1951 §3.2.6.
    fn fixed_tables(&mut self) -> Result<(), BadCode> {
        let mut lengths = [8u8; 288];
        for (symbol, l) in lengths.iter_mut().enumerate() {
            *l = match symbol {
                144..=255 => 9,
                256..=279 => 7,
                _ => 8,
            };
        }
        self.litlen.build(&lengths, false)?;
        // All 32 five-bit codes; 30 and 31 are refused when they occur.
        self.dist.build(&[5; 32], false)
    }

    /// The codes a dynamic block's header described.
    fn dynamic_tables(&mut self) -> Result<(), BadCode> {
        let nlit = usize::from(self.nlit);
        let total = nlit + usize::from(self.ndist);
        let lit = self.lengths.get(..nlit).ok_or(BadCode)?;
        // A block without an end-of-block code could never end.
        if lit.get(256).is_none_or(|&l| l == 0) {
            return Err(BadCode);
        }
        self.litlen.build(lit, true)?;
        let dist = self.lengths.get(nlit..total).ok_or(BadCode)?;
        self.dist.build(dist, true)
    }
}

/// Copies up to `len` bytes from `dist` back to `window[*out..]`, as room
/// allows; returns how many are left. `dist` is at most the window size,
/// `mask` the window size minus one.
#[inline(always)]
fn copy_match(window: &mut [u8], out: &mut usize, len: u16, dist: usize, mask: usize) -> u16 {
    let size = window.len();
    let n = usize::from(len).min(size.saturating_sub(*out));
    let mut at = *out;
    let mut left = n;
    let mut from = at.wrapping_sub(dist) & mask;
    if from > at {
        // The source lies in the window's previous lap, ahead of the write
        // position: copy up to the window's end (a forward copy, so a move
        // is the same), then go on from its start.
        let k = left.min(size - from);
        window.copy_within(from..from + k, at);
        at += k;
        left -= k;
        from = 0;
    }
    if left > 0 {
        // The source is the `dist` bytes right behind the write position:
        // copy what is there, then repeat it (a match longer than its
        // distance repeats its first `dist` bytes). Each step doubles the
        // copied run, which stays a whole number of periods.
        let mut done = left.min(dist);
        window.copy_within(from..from + done, at);
        while done < left {
            let k = done.min(left - done);
            window.copy_within(at..at + k, at + done);
            done += k;
        }
    }
    *out += n;
    len - n as u16
}
