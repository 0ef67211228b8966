//! Huffman codes for DEFLATE blocks (RFC 1951 §3.2.2, §3.2.6, §3.2.7):
//! length-limited code lengths from symbol counts, canonical codes, the
//! fixed codes, the length and distance symbol tables, and the run-length
//! coding of a dynamic block's code lengths.
//!
//! Nothing here allocates; [`build_lengths`] needs one array of
//! [`LIT_SYMBOLS`] words on the stack for the duration of the call.

/// Literal/length symbols (0..=285; 286 and 287 are never used).
pub(super) const LIT_SYMBOLS: usize = 286;
/// Distance symbols (0..=29).
pub(super) const DIST_SYMBOLS: usize = 30;
/// Code-length symbols (0..=18).
pub(super) const CLEN_SYMBOLS: usize = 19;
/// The order code-length code lengths are sent in (RFC 1951 §3.2.7).
pub(super) const CLEN_ORDER: [usize; CLEN_SYMBOLS] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];
/// The end-of-block symbol.
pub(super) const END_OF_BLOCK: usize = 256;

/// Length 3..=258, as `len - 3`, → the length symbol minus 257.
// Evaluated at compile time: an index out of range fails the build, it
// cannot panic at run time.
#[allow(clippy::indexing_slicing)]
pub(super) const LEN_SYMBOL: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut l = 0;
    while l < 256 {
        t[l] = length_symbol(l + 3) as u8;
        l += 1;
    }
    t
};

/// Extra bits of length symbols 257..=285 (index `symbol - 257`).
pub(super) const LEN_EXTRA_BITS: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
/// Smallest length of each length symbol, minus 3.
pub(super) const LEN_BASE: [u8; 29] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128,
    160, 192, 224, 255,
];

/// Length (3..=258) → symbol minus 257, from the RFC 1951 §3.2.5 ranges.
const fn length_symbol(len: usize) -> usize {
    if len >= 258 {
        return 28;
    }
    let l = len - 3;
    if l < 8 {
        return l;
    }
    let lg = (usize::BITS - 1 - l.leading_zeros()) as usize; // 3..=7
    let extra_bits = lg - 2;
    let top = (l >> extra_bits) & 3;
    4 * (lg - 1) + top
}

/// Distance 1..=32768, as `dist - 1`, → (symbol, extra value, extra bits).
#[inline]
pub(super) fn distance_code(d: u32) -> (usize, u32, u32) {
    if d < 4 {
        return (d as usize, 0, 0);
    }
    let lg = 31 - d.leading_zeros(); // 2..=14
    let extra_bits = lg - 1;
    let top = (d >> extra_bits) & 1;
    let symbol = 2 * lg + top;
    let extra = d - ((2 + top) << extra_bits);
    (symbol as usize, extra, extra_bits)
}

/// Extra bits of distance symbols 0..=29.
pub(super) const fn dist_extra_bits(symbol: usize) -> u32 {
    if symbol < 4 {
        0
    } else {
        (symbol as u32 / 2) - 1
    }
}

/// The fixed literal/length code lengths (RFC 1951 §3.2.6).
pub(super) const fn fixed_lit_len(symbol: usize) -> u8 {
    match symbol {
        0..=143 => 8,
        144..=255 => 9,
        256..=279 => 7,
        _ => 8,
    }
}

/// The fixed literal/length code of `symbol` (RFC 1951 §3.2.6: the
/// canonical code of [`fixed_lit_len`] over all 288 symbols), bit-reversed
/// like [`build_codes`]' output.
pub(super) const fn fixed_lit_code(symbol: usize) -> u16 {
    let (code, len) = match symbol {
        0..=143 => (0x30 + symbol, 8),
        144..=255 => (0x190 + symbol - 144, 9),
        256..=279 => (symbol - 256, 7),
        _ => (0xc0 + symbol - 280, 8),
    };
    (code as u16).reverse_bits() >> (16 - len)
}

/// Code lengths for `freq`, none longer than `limit`, written to `lens`
/// (same length as `freq`, at most [`LIT_SYMBOLS`]); symbols with a zero
/// count get length 0. At least two symbols always get a code (symbols 0
/// and 1 are added with length `limit`-style codes if needed) so that every
/// code is complete, which every inflater accepts.
///
/// One array of [`LIT_SYMBOLS`] words is all the scratch: the Huffman tree
/// is built in place over the sorted leaves (Moffat and Katajainen's
/// method), each word keeping its leaf's symbol in the low 9 bits while the
/// high 23 hold a weight, then a parent index, then a depth.
pub(super) fn build_lengths(freq: &[u16], lens: &mut [u8], limit: u32) {
    const N: usize = LIT_SYMBOLS;
    const SYM: u32 = 0x1ff;
    const MAX: u32 = (1 << 23) - 1;
    // Leaves sorted by count: count << 9 | symbol. Counts below `SMALL`
    // (most symbols of a block) are placed in order by a counting sort,
    // symbols ascending within a count; the rest, after them, are sorted
    // by the heap sort below.
    const SMALL: usize = 32;
    let mut start = [0u16; SMALL];
    let mut large = 0u16;
    for &f in freq.iter().take(N) {
        match start.get_mut(usize::from(f)) {
            Some(c) => *c += 1,
            None => large += 1,
        }
    }
    // Counts of each small count, then where its run starts.
    let mut at = 0u16;
    for c in start.iter_mut().skip(1) {
        let k = *c;
        *c = at;
        at += k;
    }
    let sorted = usize::from(at);
    let mut next_large = at;
    let mut a = [0u32; N];
    for (sym, &f) in freq.iter().enumerate().take(N) {
        if f == 0 {
            continue;
        }
        let slot = match start.get_mut(usize::from(f)) {
            Some(c) => c,
            None => &mut next_large,
        };
        if let Some(v) = a.get_mut(usize::from(*slot)) {
            *v = (u32::from(f) << 9) | sym as u32;
        }
        *slot += 1;
    }
    let mut n = sorted + usize::from(large);
    for l in lens.iter_mut() {
        *l = 0;
    }
    // Fewer than two used symbols: pad with symbols 0 and 1 (count 0).
    let mut pad = 0u32;
    while n < 2 && pad < 2 {
        let taken = a.iter().take(n).any(|&v| v & SYM == pad);
        if !taken && (pad as usize) < lens.len() {
            if let Some(slot) = a.get_mut(n) {
                *slot = pad;
                n += 1;
            }
        }
        pad += 1;
    }
    let Some(a) = a.get_mut(..n) else {
        return;
    };
    // Padding (fewer than two symbols) puts count-0 leaves last: sort all.
    let from = if n > sorted + usize::from(large) {
        0
    } else {
        sorted
    };
    heapsort(a.get_mut(from..).unwrap_or_default());
    let high = |a: &[u32], i: usize| a.get(i).map_or(0, |&v| v >> 9);
    let set = |a: &mut [u32], i: usize, v: u32| {
        if let Some(slot) = a.get_mut(i) {
            *slot = (v.min(MAX) << 9) | (*slot & SYM);
        }
    };

    let limit = limit as usize;
    let mut count = [0u32; 16];
    if n < 2 {
        if let Some(c) = count.get_mut(1) {
            *c = n as u32;
        }
    } else {
        // Weights: internal node k (created in nondecreasing weight order)
        // goes to slot k, whose leaf is already merged; an internal node,
        // once merged, keeps its parent's index instead. Ties go to the
        // leaf.
        let (mut root, mut leaf) = (0usize, 2usize);
        set(a, 0, high(a, 0) + high(a, 1));
        for next in 1..n - 1 {
            let mut w = 0;
            for _ in 0..2 {
                if leaf >= n || (root < next && high(a, root) < high(a, leaf)) {
                    w += high(a, root);
                    set(a, root, next as u32);
                    root += 1;
                } else {
                    w += high(a, leaf);
                    leaf += 1;
                }
            }
            set(a, next, w);
        }
        // Depths of the internal nodes: the root (the last one) is at 0,
        // and a parent's index is above its children's.
        set(a, n - 2, 0);
        for next in (0..n - 2).rev() {
            let parent = high(a, next) as usize;
            set(a, next, high(a, parent) + 1);
        }
        // Leaves per depth, level by level from the root, each clamped to
        // the limit.
        let (mut avail, mut depth, mut internal) = (1usize, 0usize, n - 1);
        while avail > 0 {
            let mut used = 0;
            while internal > 0 && high(a, internal - 1) as usize == depth {
                used += 1;
                internal -= 1;
            }
            if let Some(c) = count.get_mut(depth.clamp(1, limit)) {
                *c += (avail - used) as u32;
            }
            avail = 2 * used;
            depth += 1;
        }
    }
    // Restore the Kraft sum after clamping: take a code from the longest
    // level and split a shorter leaf into two until the code is exactly
    // complete again.
    let full = 1u64 << limit;
    let mut kraft: u64 = (1..=limit)
        .map(|d| u64::from(count.get(d).copied().unwrap_or(0)) << (limit - d))
        .sum();
    while kraft > full {
        if let Some(c) = count.get_mut(limit) {
            *c = c.saturating_sub(1);
        }
        for d in (1..limit).rev() {
            if count.get(d).copied().unwrap_or(0) > 0 {
                if let Some(c) = count.get_mut(d) {
                    *c -= 1;
                }
                if let Some(c) = count.get_mut(d + 1) {
                    *c += 2;
                }
                break;
            }
        }
        kraft -= 1;
    }
    // Longest codes to the rarest symbols (the leaves are in count order).
    let mut d = limit;
    let mut left = count.get(d).copied().unwrap_or(0);
    for &leaf in a.iter() {
        while left == 0 && d > 1 {
            d -= 1;
            left = count.get(d).copied().unwrap_or(0);
        }
        left = left.saturating_sub(1);
        if let Some(l) = lens.get_mut((leaf & SYM) as usize) {
            *l = d as u8;
        }
    }
}

/// Canonical codes (RFC 1951 §3.2.2) for `lens`, bit-reversed for
/// least-significant-bit-first output, into `codes`.
pub(super) fn build_codes(lens: &[u8], codes: &mut [u16]) {
    let mut count = [0u16; 16];
    for &l in lens {
        if let Some(c) = count.get_mut(usize::from(l & 15)) {
            *c += 1;
        }
    }
    count[0] = 0;
    let mut next = [0u16; 16];
    let mut code = 0u16;
    for bits in 1..16 {
        code = code
            .wrapping_add(count.get(bits - 1).copied().unwrap_or(0))
            .wrapping_shl(1);
        if let Some(n) = next.get_mut(bits) {
            *n = code;
        }
    }
    for (&l, c) in lens.iter().zip(codes.iter_mut()) {
        let l = usize::from(l & 15);
        if l == 0 {
            *c = 0;
            continue;
        }
        let v = next.get(l).copied().unwrap_or(0);
        if let Some(n) = next.get_mut(l) {
            *n = v.wrapping_add(1);
        }
        *c = v.reverse_bits() >> (16 - l);
    }
}

/// Sorts `a` ascending. A heap sort: a few dozen instructions and no
/// recursion, where the slice's own sort brings in about 2.5 KiB of code
/// and a deeper stack; the keys are distinct, so the order is the same.
fn heapsort(a: &mut [u32]) {
    let n = a.len();
    for root in (0..n / 2).rev() {
        sift_down(a, root, n);
    }
    for end in (1..n).rev() {
        a.swap(0, end);
        sift_down(a, 0, end);
    }
}

/// Restores the max-heap below `root` within `a[..end]` (`end <= a.len()`).
fn sift_down(a: &mut [u32], mut root: usize, end: usize) {
    loop {
        let mut child = 2 * root + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && a.get(child) < a.get(child + 1) {
            child += 1;
        }
        if a.get(root) >= a.get(child) {
            return;
        }
        a.swap(root, child);
        root = child;
    }
}

/// One item of the run-length coded code lengths of a dynamic block
/// header, starting at index `i` of the sequence `lits` then `dists` (the
/// literal/length lengths then the distance lengths, coded as one run
/// across the two): (code-length symbol, extra value, extra bits, lengths
/// covered).
pub(super) fn rle_item(lits: &[u8], dists: &[u8], i: usize) -> (usize, u32, u32, usize) {
    let (first, second) = match i.checked_sub(lits.len()) {
        None => (lits.get(i..).unwrap_or_default(), dists),
        Some(j) => (dists.get(j..).unwrap_or_default(), &[][..]),
    };
    let Some(&v) = first.first() else {
        return (0, 0, 0, 1);
    };
    let mut run = run_of(first, v, 138);
    if run == first.len() {
        run += run_of(second, v, 138 - run);
    }
    if v == 0 {
        if run >= 11 {
            return (18, run as u32 - 11, 7, run);
        }
        if run >= 3 {
            return (17, run as u32 - 3, 3, run);
        }
        return (0, 0, 0, 1);
    }
    let previous = match i.checked_sub(1) {
        Some(k) if k < lits.len() => lits.get(k),
        Some(k) => dists.get(k - lits.len()),
        None => None,
    };
    let repeat = previous == Some(&v);
    if repeat && run >= 3 {
        let r = run.min(6);
        return (16, r as u32 - 3, 2, r);
    }
    (usize::from(v), 0, 0, 1)
}

/// How many of the first `max` bytes of `s` equal `v`, from the start.
#[inline]
fn run_of(s: &[u8], v: u8, max: usize) -> usize {
    let mut n = 0;
    while n < max {
        match s.get(n) {
            Some(&x) if x == v => n += 1,
            _ => break,
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extensions::deflate::test_rng::XorShift;
    use std::vec::Vec;

    /// Plain Huffman cost and depth (no length limit) by repeated merging.
    fn reference_cost(freq: &[u16]) -> (u64, u32) {
        let mut w: Vec<(u64, u32)> = freq
            .iter()
            .filter(|&&f| f > 0)
            .map(|&f| (u64::from(f), 0))
            .collect();
        let mut cost = 0;
        while w.len() > 1 {
            w.sort_unstable();
            let s = (w[0].0 + w[1].0, w[0].1.max(w[1].1) + 1);
            cost += s.0;
            w.drain(..2);
            w.push(s);
        }
        (cost, w.first().map_or(0, |x| x.1))
    }

    fn kraft(lens: &[u8], limit: u32) -> u64 {
        lens.iter()
            .filter(|&&l| l > 0)
            .map(|&l| 1u64 << (limit - u32::from(l)))
            .sum()
    }

    #[test]
    fn lengths_are_optimal_and_complete() {
        let mut rng = XorShift::new(12345);
        for round in 0..300 {
            let n = 2 + round % 285;
            let freq: Vec<u16> = (0..n)
                .map(|_| {
                    let x = rng.next_u32();
                    if x % 5 == 0 {
                        0
                    } else {
                        (x % (1 + round as u32 * 37)) as u16
                    }
                })
                .collect();
            let mut lens = std::vec![0u8; n];
            build_lengths(&freq, &mut lens, 15);
            assert_eq!(kraft(&lens, 15), 1 << 15, "{freq:?}");
            let cost: u64 = freq
                .iter()
                .zip(&lens)
                .map(|(&f, &l)| u64::from(f) * u64::from(l))
                .sum();
            let (best, depth) = reference_cost(&freq);
            if freq.iter().filter(|&&f| f > 0).count() >= 2 {
                if depth <= 15 {
                    assert_eq!(cost, best, "{freq:?}");
                } else {
                    assert!(cost > best && cost < best + best / 100, "{freq:?}");
                }
            }
            for (&f, &l) in freq.iter().zip(&lens) {
                assert!(f == 0 || l > 0);
            }
        }
    }

    #[test]
    fn limited_lengths_stay_complete() {
        // Fibonacci counts make the unlimited code very deep.
        let mut freq = std::vec![0u16; 30];
        let (mut a, mut b) = (1u16, 1u16);
        for f in freq.iter_mut() {
            *f = a;
            (a, b) = (b, a.saturating_add(b));
        }
        for limit in [7, 9, 15] {
            let mut lens = std::vec![0u8; 30];
            build_lengths(&freq, &mut lens, limit);
            assert!(lens.iter().all(|&l| l >= 1 && u32::from(l) <= limit));
            assert_eq!(kraft(&lens, limit), 1 << limit);
        }
    }

    #[test]
    fn one_or_no_symbol_still_gets_two_codes() {
        for used in [None, Some(0), Some(1), Some(7)] {
            let mut freq = [0u16; 19];
            if let Some(s) = used {
                freq[s] = 9;
            }
            let mut lens = [0u8; 19];
            build_lengths(&freq, &mut lens, 7);
            assert_eq!(lens.iter().filter(|&&l| l == 1).count(), 2, "{used:?}");
            if let Some(s) = used {
                assert_eq!(lens[s], 1);
            }
        }
    }

    #[test]
    fn canonical_codes_match_rfc1951_example() {
        // RFC 1951 §3.2.2: lengths (3, 3, 3, 3, 3, 2, 4, 4) give codes
        // 010, 011, 100, 101, 110, 00, 1110, 1111.
        let lens = [3u8, 3, 3, 3, 3, 2, 4, 4];
        let mut codes = [0u16; 8];
        build_codes(&lens, &mut codes);
        let expect = [0b010u16, 0b011, 0b100, 0b101, 0b110, 0b00, 0b1110, 0b1111];
        for ((&c, &e), &l) in codes.iter().zip(&expect).zip(&lens) {
            assert_eq!(c, e.reverse_bits() >> (16 - l));
        }
    }

    #[test]
    fn tables_match_rfc1951() {
        assert_eq!(LEN_SYMBOL[0], 0); // 3 → 257
        assert_eq!(LEN_SYMBOL[8], 8); // 11 → 265
        assert_eq!(LEN_SYMBOL[9], 8); // 12 → 265
        assert_eq!(LEN_SYMBOL[224], 27); // 227 → 284
        assert_eq!(LEN_SYMBOL[254], 27); // 257 → 284
        assert_eq!(LEN_SYMBOL[255], 28); // 258 → 285
        for (l, &s) in LEN_SYMBOL.iter().enumerate() {
            let s = usize::from(s);
            let base = usize::from(LEN_BASE[s]);
            assert!(l >= base && l - base < (1 << LEN_EXTRA_BITS[s]) || s == 28);
        }
        assert_eq!(distance_code(0), (0, 0, 0));
        assert_eq!(distance_code(3), (3, 0, 0));
        assert_eq!(distance_code(4), (4, 0, 1));
        assert_eq!(distance_code(6), (5, 0, 1));
        assert_eq!(distance_code(24576), (29, 0, 13));
        assert_eq!(distance_code(32767), (29, 8191, 13));
        assert_eq!(dist_extra_bits(29), 13);
    }

    #[test]
    fn rle_covers_runs() {
        let lens = [8u8, 8, 8, 8, 8, 8, 8, 8, 0, 0, 0, 0, 5, 0, 0];
        let mut i = 0;
        let mut items = Vec::new();
        while i < lens.len() {
            let (s, e, b, n) = rle_item(&lens, &[], i);
            items.push((s, e, b));
            i += n;
        }
        assert_eq!(
            items,
            [
                (8, 0, 0),
                (16, 3, 2),
                (8, 0, 0),
                (17, 1, 3),
                (5, 0, 0),
                (0, 0, 0),
                (0, 0, 0)
            ]
        );
    }
    /// The earlier construction (a parent and a depth array beside the
    /// leaves), kept to show the in-place one gives the same lengths.
    #[allow(clippy::needless_range_loop)]
    fn two_array_lengths(freq: &[u32], lens: &mut [u8], limit: u32) {
        const N: usize = LIT_SYMBOLS;
        // Leaves sorted by count: count << 9 | symbol (counts stay below 2^23).
        let mut leaves = [0u32; N];
        let mut n = 0;
        for (sym, &f) in freq.iter().enumerate().take(N) {
            if f > 0 {
                if let Some(slot) = leaves.get_mut(n) {
                    *slot = (f.min((1 << 23) - 1) << 9) | sym as u32;
                    n += 1;
                }
            }
        }
        for l in lens.iter_mut() {
            *l = 0;
        }
        // Fewer than two used symbols: pad with symbols 0 and 1 (count 0).
        let mut pad = 0u32;
        while n < 2 && pad < 2 {
            let taken = leaves.iter().take(n).any(|&v| v & 0x1ff == pad);
            if !taken && (pad as usize) < lens.len() {
                if let Some(slot) = leaves.get_mut(n) {
                    *slot = pad;
                    n += 1;
                }
            }
            pad += 1;
        }
        let Some(leaves) = leaves.get_mut(..n) else {
            return;
        };
        leaves.sort_unstable();

        // Two-queue Huffman: leaves in order, internal nodes created in
        // nondecreasing weight order. Node ids: leaves 0..n, internal n..2n-1.
        let mut weight = [0u32; N];
        let mut parent = [0u16; 2 * N];
        let (mut li, mut ii) = (0usize, 0usize);
        for k in 0..n.saturating_sub(1) {
            let pick = |li: &mut usize, ii: &mut usize| -> (usize, u32) {
                let leaf = leaves.get(*li).map(|&v| v >> 9);
                let internal = if *ii < k {
                    weight.get(*ii).copied()
                } else {
                    None
                };
                match (leaf, internal) {
                    (Some(l), Some(i)) if i < l => {
                        *ii += 1;
                        (n + *ii - 1, i)
                    }
                    (Some(l), _) => {
                        *li += 1;
                        (*li - 1, l)
                    }
                    (None, Some(i)) => {
                        *ii += 1;
                        (n + *ii - 1, i)
                    }
                    (None, None) => (0, 0),
                }
            };
            let (a, wa) = pick(&mut li, &mut ii);
            let (b, wb) = pick(&mut li, &mut ii);
            if let Some(w) = weight.get_mut(k) {
                *w = wa.saturating_add(wb);
            }
            for child in [a, b] {
                if let Some(p) = parent.get_mut(child) {
                    *p = (n + k) as u16;
                }
            }
        }
        // Depths: the root (the last internal node) is at depth 0; parents
        // always have larger ids than their children, so go downwards.
        let mut depth = [0u8; 2 * N];
        let root = 2 * n - 2;
        for id in (0..root).rev() {
            let p = parent.get(id).map_or(root, |&p| usize::from(p));
            let d = depth.get(p).copied().unwrap_or(0).saturating_add(1);
            if let Some(slot) = depth.get_mut(id) {
                *slot = d;
            }
        }
        // Count codes per length, clamping to the limit, then restore the
        // Kraft sum: take a code from the longest level and split a shorter
        // leaf into two until the code is exactly complete again.
        let limit = limit as usize;
        let mut count = [0u32; 16];
        for id in 0..n {
            let d = usize::from(depth.get(id).copied().unwrap_or(1)).clamp(1, limit);
            if let Some(c) = count.get_mut(d) {
                *c += 1;
            }
        }
        let full = 1u64 << limit;
        let mut kraft: u64 = (1..=limit)
            .map(|d| u64::from(count.get(d).copied().unwrap_or(0)) << (limit - d))
            .sum();
        while kraft > full {
            if let Some(c) = count.get_mut(limit) {
                *c = c.saturating_sub(1);
            }
            for d in (1..limit).rev() {
                if count.get(d).copied().unwrap_or(0) > 0 {
                    if let Some(c) = count.get_mut(d) {
                        *c -= 1;
                    }
                    if let Some(c) = count.get_mut(d + 1) {
                        *c += 2;
                    }
                    break;
                }
            }
            kraft -= 1;
        }
        // Longest codes to the rarest symbols (the leaves are in count order).
        let mut d = limit;
        let mut left = count.get(d).copied().unwrap_or(0);
        for &leaf in leaves.iter() {
            while left == 0 && d > 1 {
                d -= 1;
                left = count.get(d).copied().unwrap_or(0);
            }
            left = left.saturating_sub(1);
            if let Some(l) = lens.get_mut((leaf & 0x1ff) as usize) {
                *l = d as u8;
            }
        }
    }

    #[test]
    fn heapsort_sorts() {
        let mut rng = XorShift::new(77);
        for n in 0..300 {
            let mut v: Vec<u32> = (0..n).map(|_| rng.next_u32() % 1000).collect();
            let mut want = v.clone();
            want.sort_unstable();
            heapsort(&mut v);
            assert_eq!(v, want);
        }
    }

    #[test]
    fn fixed_codes_are_the_canonical_ones() {
        // All 288 fixed codes count for the canonical order, even 286 and
        // 287, which are never sent.
        let lens: Vec<u8> = (0..288).map(fixed_lit_len).collect();
        let mut codes = [0u16; 288];
        build_codes(&lens, &mut codes);
        for (s, &c) in codes.iter().enumerate() {
            assert_eq!(fixed_lit_code(s), c, "symbol {s}");
        }
    }

    #[test]
    fn in_place_lengths_match_the_two_array_construction() {
        let mut rng = XorShift::new(0x2545_f491);
        let mut next = move || rng.next_u32();
        for round in 0..2000u32 {
            let n = [19, 30, 286][round as usize % 3];
            let zeros = next() % 4;
            let scale = [2, 16, 300, 65535][next() as usize % 4];
            let freq: Vec<u16> = (0..n)
                .map(|_| {
                    if next() % 4 < zeros {
                        0
                    } else {
                        (next() % scale) as u16
                    }
                })
                .collect();
            let wide: Vec<u32> = freq.iter().map(|&f| u32::from(f)).collect();
            for limit in [7, 15] {
                let mut got = std::vec![0u8; n];
                let mut want = std::vec![0u8; n];
                build_lengths(&freq, &mut got, limit);
                two_array_lengths(&wide, &mut want, limit);
                assert_eq!(got, want, "{freq:?} limit {limit}");
            }
        }
    }

    #[test]
    fn rle_runs_cross_from_literal_to_distance_lengths() {
        let all = [
            7u8, 7, 7, 7, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3,
        ];
        for cut in 0..=all.len() {
            let (lits, dists) = all.split_at(cut);
            let mut i = 0;
            while i < all.len() {
                let whole = rle_item(&all, &[], i);
                assert_eq!(rle_item(lits, dists, i), whole, "cut {cut} at {i}");
                i += whole.3;
            }
        }
    }
}
