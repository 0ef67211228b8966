//! Canonical Huffman decoding tables (RFC 1951 §3.2.2), kept small: per
//! code length, the first code past its codes (left-justified to 15 bits)
//! and where its symbols start in a list sorted by (length, symbol). A
//! symbol is found by comparing the next 15 bits, bit-reversed, against at
//! most 15 limits.
//!
//! In front of that, codes of up to [`FAST_BITS`] bits (the frequent
//! symbols) are looked up directly in a 256-word table indexed by the next
//! 8 bits, which is what keeps the decoder about as fast as table-driven
//! ones (miniz_oxide's tables are 10-bit, four times as many entries, and
//! a further tree for the longer codes).

/// The longest code DEFLATE allows.
pub(super) const MAX_BITS: usize = 15;
/// Codes up to this long are decoded by one lookup in [`Table::fast`].
pub(super) const FAST_BITS: usize = 8;
/// Where the code length sits in a [`Table::fast`] entry (above the symbol).
const FAST_LEN_SHIFT: u32 = 9;

/// Why a set of code lengths cannot be a Huffman code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BadCode;

/// A decoding table for up to `N` symbols.
#[derive(Clone, Debug)]
pub(super) struct Table<const N: usize> {
    /// `limit[len]`: the first 15-bit left-justified code that is not a code
    /// of `len` bits or fewer. Non-decreasing in `len`.
    limit: [u16; MAX_BITS + 1],
    /// `base[len]`: added (wrapping) to a code of `len` bits, right-aligned,
    /// to give its index in `symbols`.
    base: [u16; MAX_BITS + 1],
    /// Symbols sorted by code length, then value.
    symbols: [u16; N],
    /// Indexed by the next [`FAST_BITS`] bits as they arrive: the symbol,
    /// with its code length above [`FAST_LEN_SHIFT`], for codes of up to
    /// `FAST_BITS` bits; 0 where the code is longer (or invalid).
    fast: [u16; 1 << FAST_BITS],
    /// The shortest code length in use above `FAST_BITS` (where the
    /// canonical search starts).
    min_len: u8,
}

/// What [`Table::decode`] found in the bits it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decoded {
    /// A symbol whose code is `len` bits long.
    Symbol { symbol: u16, len: u32 },
    /// The code is longer than the bits available.
    NeedBits,
    /// No code starts with these bits (an incomplete code's unused space).
    Invalid,
}

impl<const N: usize> Table<N> {
    /// An empty table: every bit pattern is invalid.
    pub(super) const fn new() -> Self {
        Table {
            limit: [0; MAX_BITS + 1],
            base: [0; MAX_BITS + 1],
            symbols: [0; N],
            fast: [0; 1 << FAST_BITS],
            min_len: 0,
        }
    }

    /// Builds the table for `lengths` (one per symbol, 0 = unused).
    ///
    /// Over-subscribed lengths are refused. An incomplete code is refused
    /// too, unless `allow_single` and it is a single code of one bit (RFC
    /// 1951 §3.2.7 allows one distance code; zlib accepts the same for
    /// literal/length codes). An empty code (no lengths at all) is accepted
    /// when `allow_single` is set: it decodes nothing, so any use is
    /// [`Decoded::Invalid`].
    pub(super) fn build(&mut self, lengths: &[u8], allow_single: bool) -> Result<(), BadCode> {
        if lengths.len() > N {
            return Err(BadCode);
        }
        let mut count = [0u16; MAX_BITS + 1];
        for &len in lengths {
            let slot = count.get_mut(usize::from(len)).ok_or(BadCode)?;
            *slot += 1;
        }
        // Kraft: `left` codes of the current length are still free.
        let mut left: i32 = 1;
        let mut used = 0u16;
        for &c in count.iter().skip(1) {
            left = left * 2 - i32::from(c);
            if left < 0 {
                return Err(BadCode);
            }
            used += c;
        }
        let ones = count.get(1).copied().unwrap_or(0);
        if left > 0 && !(allow_single && (used == 0 || (used == 1 && ones == 1))) {
            return Err(BadCode);
        }
        // `next[len]`: where the next symbol of `len` bits goes in the
        // sorted list; first the offset of each length's run.
        let mut next = [0u16; MAX_BITS + 1];
        let mut at = 0u16;
        for (slot, &c) in next.iter_mut().zip(&count).skip(1) {
            *slot = at;
            at += c;
        }
        let offset = next;
        for (symbol, &len) in lengths.iter().enumerate() {
            if len != 0 {
                let at = next.get_mut(usize::from(len)).ok_or(BadCode)?;
                let slot = self.symbols.get_mut(usize::from(*at)).ok_or(BadCode)?;
                *slot = symbol as u16;
                *at += 1;
            }
        }
        // `code`: the first code of `len` bits, canonical order.
        let mut code: u32 = 0;
        self.min_len = 0;
        self.fast.fill(0);
        let rows = self.limit.iter_mut().zip(self.base.iter_mut());
        for (len, ((limit, base), (&c, &first))) in rows.zip(count.iter().zip(&offset)).enumerate()
        {
            if len == 0 {
                continue;
            }
            let end = code + u32::from(c);
            *limit = (end << (MAX_BITS - len)) as u16;
            *base = first.wrapping_sub(code as u16);
            if len <= FAST_BITS {
                // Every 8-bit pattern that starts with one of these codes.
                let symbols = self.symbols.get(usize::from(first)..).unwrap_or_default();
                let step = 1usize << len;
                for (k, &symbol) in symbols.iter().take(usize::from(c)).enumerate() {
                    // At most 8 bits: an 8-bit reversal is enough (and
                    // cheaper than a 32-bit one where there is no
                    // instruction for it).
                    let reversed = ((code + k as u32) as u8).reverse_bits() >> (FAST_BITS - len);
                    let entry = symbol | (len as u16) << FAST_LEN_SHIFT;
                    let mut i = usize::from(reversed);
                    while let Some(slot) = self.fast.get_mut(i) {
                        *slot = entry;
                        i += step;
                    }
                }
            } else if c > 0 && self.min_len == 0 {
                self.min_len = len as u8;
            }
            code = end << 1;
        }
        if self.min_len == 0 {
            self.min_len = MAX_BITS as u8 + 1;
        }
        Ok(())
    }

    /// Decodes the symbol at the front of `bits` (LSB first, as DEFLATE
    /// packs them), of which `avail` are real; the bits above are zero.
    #[inline(always)]
    pub(super) fn decode(&self, bits: u64, avail: u32) -> Decoded {
        let entry = self
            .fast
            .get((bits & ((1 << FAST_BITS) - 1)) as usize)
            .copied()
            .unwrap_or(0);
        if entry != 0 {
            let len = u32::from(entry >> FAST_LEN_SHIFT);
            if len > avail {
                return Decoded::NeedBits;
            }
            return Decoded::Symbol {
                symbol: entry & ((1 << FAST_LEN_SHIFT) - 1),
                len,
            };
        }
        // The next 15 bits, first bit highest: codes compare as integers.
        let code = ((bits as u32).reverse_bits() >> (32 - MAX_BITS)) as u16;
        let rows = self.limit.iter().zip(&self.base).enumerate();
        for (len, (&limit, &base)) in rows.skip(usize::from(self.min_len)) {
            if code < limit {
                if len as u32 > avail {
                    return Decoded::NeedBits;
                }
                let index = base.wrapping_add(code >> (MAX_BITS - len));
                return match self.symbols.get(usize::from(index)) {
                    Some(&symbol) => Decoded::Symbol {
                        symbol,
                        len: len as u32,
                    },
                    None => Decoded::Invalid,
                };
            }
        }
        // Past every code, whatever the missing bits are.
        Decoded::Invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packs `code` (`len` bits, first bit highest) LSB first.
    fn packed(code: u32, len: u32) -> u64 {
        u64::from(code.reverse_bits() >> (32 - len))
    }

    #[test]
    fn rfc1951_example_code() {
        // RFC 1951 §3.2.2: lengths (3, 3, 3, 3, 3, 2, 4, 4) give
        // F=00, A=010 .. E=110, G=1110, H=1111.
        let mut t = Table::<8>::new();
        t.build(&[3, 3, 3, 3, 3, 2, 4, 4], false).unwrap();
        let expect = [
            (0b010, 3, 0),
            (0b011, 3, 1),
            (0b100, 3, 2),
            (0b101, 3, 3),
            (0b110, 3, 4),
            (0b00, 2, 5),
            (0b1110, 4, 6),
            (0b1111, 4, 7),
        ];
        for (code, len, symbol) in expect {
            assert_eq!(
                t.decode(packed(code, len), 15),
                Decoded::Symbol { symbol, len },
                "{code:b}"
            );
            // One bit short of the code: more bits are needed.
            assert_eq!(t.decode(packed(code, len), len - 1), Decoded::NeedBits);
        }
    }

    #[test]
    fn bad_codes_are_refused() {
        let mut t = Table::<8>::new();
        // Over-subscribed: three codes of one bit.
        assert_eq!(t.build(&[1, 1, 1], true), Err(BadCode));
        // Incomplete: two codes of two bits.
        assert_eq!(t.build(&[2, 2], true), Err(BadCode));
        // A single one-bit code only where allowed; its other half is invalid.
        assert_eq!(t.build(&[0, 1], false), Err(BadCode));
        t.build(&[0, 1], true).unwrap();
        assert_eq!(t.decode(0, 15), Decoded::Symbol { symbol: 1, len: 1 });
        assert_eq!(t.decode(1, 15), Decoded::Invalid);
        // Empty: nothing decodes.
        t.build(&[0, 0, 0], true).unwrap();
        assert_eq!(t.decode(0, 15), Decoded::Invalid);
        assert_eq!(t.build(&[0, 0, 0], false), Err(BadCode));
        // Lengths past 15 bits, or more symbols than the table holds.
        assert_eq!(t.build(&[16, 1], true), Err(BadCode));
        assert_eq!(t.build(&[4; 9], true), Err(BadCode));
    }
}
