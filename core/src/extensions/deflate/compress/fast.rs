//! The fast level's matcher: a greedy parse with one hash probe per
//! position and no chains, for connections that want their messages
//! compressed cheaply more than small.
//!
//! Each hash slot remembers the last two positions whose four bytes hashed
//! to it (the head table and, at this level, the link table used as a
//! second way), and a probed position takes the longer match of the two.
//! Only probed positions enter the table (none inside a match: each such
//! insertion would cost about what a probe does, for a slightly better
//! ratio), and a long run of literals is probed at growing steps (every
//! position for the first 32 misses, then every second, and so on), so
//! text that does not repeat costs little. A match found after skipped positions is extended
//! backwards over the literals just emitted.

use super::{read_u32, HASHED, MATCH, MAX_MATCH, MIN_MATCH};

/// Misses after which the probe step grows by one (`1 + misses >> SKIP`).
const SKIP: u32 = 5;

/// Where one call of [`match_greedy`] starts and what it may use.
pub(super) struct Span<'a, const HASH: usize> {
    /// The buffer: history, then the chunk.
    pub buf: &'a [u8],
    /// Most recent position seen for each hash slot.
    pub head: &'a mut [u16; HASH],
    /// The one seen before it, for each slot.
    pub older: &'a mut [u16; HASH],
    /// The symbol buffer and how many words it holds.
    pub syms: &'a mut [u16],
    pub nsyms: usize,
    /// First position to match; the chunk ends at `end`.
    pub from: usize,
    pub end: usize,
    /// Largest distance allowed.
    pub max_dist: usize,
}

/// The hash slot of a 4-byte key (the default level's multiplicative hash).
#[inline(always)]
fn slot<const HASH: usize>(key: u32) -> usize {
    (key.wrapping_mul(0x9e37_79b1) >> (32 - HASH.trailing_zeros())) as usize & (HASH - 1)
}

/// Parses `buf[from..end]` into symbols until the chunk ends or the symbol
/// buffer is full; returns (next position, words used).
///
/// Every decision depends on the bytes from `from` on and on the history
/// before them, never on where input or output calls were split, since the
/// caller starts a call only at the start of a chunk or after a full
/// symbol buffer.
pub(super) fn match_greedy<const HASH: usize>(s: Span<'_, HASH>) -> (usize, usize) {
    let Span {
        buf,
        head,
        older,
        syms,
        nsyms: mut n,
        from,
        end,
        max_dist,
    } = s;
    let end = end.min(buf.len());
    let cap = syms.len().min(HASH);
    let mut p = from;
    // Literals at or above `floor` are in `syms` and may be taken back
    // into a match that is extended backwards.
    let mut floor = from;
    let mut misses = 0u32;
    while p < end && n + 2 <= cap {
        let key = if p + HASHED <= end {
            read_u32(buf, p)
        } else {
            None
        };
        if let Some(key) = key {
            let h = slot::<HASH>(key);
            let (c1, c2) = match (head.get_mut(h), older.get_mut(h)) {
                (Some(e1), Some(e2)) => {
                    let c1 = core::mem::replace(e1, p as u16);
                    let c2 = core::mem::replace(e2, c1);
                    (usize::from(c1), usize::from(c2))
                }
                _ => (p, p),
            };
            let limit = (end - p).min(MAX_MATCH);
            let lo = p.saturating_sub(max_dist);
            let extend = |c: usize| -> usize {
                if c < p && c >= lo && read_u32(buf, c) == Some(key) {
                    match_len(buf, c, p, limit)
                } else {
                    0
                }
            };
            let l1 = extend(c1);
            let (mut len, cand) = if l1 < limit {
                let l2 = extend(c2);
                if l2 > l1 {
                    (l2, c2)
                } else {
                    (l1, c1)
                }
            } else {
                (l1, c1)
            };
            if len >= HASHED {
                // Backwards over the literals just written, while the bytes
                // before both ends agree.
                let (mut start, mut c) = (p, cand);
                while start > floor && c > 0 && n > 0 && len < MAX_MATCH {
                    match (buf.get(start - 1), buf.get(c - 1)) {
                        (Some(a), Some(b)) if a == b => {}
                        _ => break,
                    }
                    start -= 1;
                    c -= 1;
                    n -= 1;
                    len += 1;
                }
                if let Some(w) = syms.get_mut(n..n + 2) {
                    w.copy_from_slice(&[MATCH | (len - MIN_MATCH) as u16, (start - c - 1) as u16]);
                }
                n += 2;
                p = start + len;
                floor = p;
                misses = 0;
                continue;
            }
        }
        // Literals: one, or more after a long run of misses.
        let step = (1 + (misses >> SKIP) as usize)
            .min(end - p)
            .min(cap - 2 - n + 1);
        misses += 1;
        let (Some(lits), Some(w)) = (buf.get(p..p + step), syms.get_mut(n..n + step)) else {
            break;
        };
        for (w, &b) in w.iter_mut().zip(lits) {
            *w = u16::from(b);
        }
        n += step;
        p += step;
    }
    (p, n)
}

/// How far `buf[c..]` and `buf[p..]` agree, at most `limit` bytes, when
/// their first four are known to: eight bytes at a time, then byte by byte.
#[inline(always)]
fn match_len(buf: &[u8], c: usize, p: usize, limit: usize) -> usize {
    let word = |at: usize| -> Option<u64> {
        let w: [u8; 8] = buf.get(at..at + 8)?.try_into().ok()?;
        Some(u64::from_le_bytes(w))
    };
    let mut n = HASHED;
    while n + 8 <= limit {
        let (Some(x), Some(y)) = (word(c + n), word(p + n)) else {
            break;
        };
        let diff = x ^ y;
        if diff != 0 {
            return n + (diff.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    while n < limit {
        match (buf.get(c + n), buf.get(p + n)) {
            (Some(a), Some(b)) if a == b => n += 1,
            _ => break,
        }
    }
    n
}
