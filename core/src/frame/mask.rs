//! Payload masking (RFC 6455 §5.3), in place and, with the `fast-mask`
//! feature, a word at a time.
//!
//! Masking is XOR with a four-byte key repeated, so it is its own inverse. The
//! fast body works on 8-byte words of a key rotated to the payload offset; the
//! compiler turns the loop into vector code, with no `unsafe`. Without the
//! feature a byte loop does the same in a fraction of the code.

/// XORs `buf` with `key`, as if `buf` started `offset` bytes into the payload.
///
/// Calling it twice with the same arguments restores the input, and masking a
/// payload in pieces gives the same bytes as masking it whole.
///
/// ```
/// use wsproto::frame::apply_mask;
/// // The masking vector from the seed documents ("helo websocket\n").
/// let mut data = *b"helo websocket\n";
/// apply_mask(&mut data, [0x08, 0xf6, 0xef, 0xb1], 0);
/// assert_eq!(data, [0x60, 0x93, 0x83, 0xde, 0x28, 0x81, 0x8a, 0xd3, 0x7b, 0x99, 0x8c, 0xda, 0x6d, 0x82, 0xe5]);
/// apply_mask(&mut data, [0x08, 0xf6, 0xef, 0xb1], 0);
/// assert_eq!(&data, b"helo websocket\n");
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    #[cfg(feature = "fast-mask")]
    mask_words(buf, key, offset);
    #[cfg(not(feature = "fast-mask"))]
    mask_bytes(buf, key, offset);
}

/// [`apply_mask`] a byte at a time: the small form, for builds without the
/// `fast-mask` feature (microcontrollers, where payloads are short).
#[cfg_attr(feature = "fast-mask", allow(dead_code))]
fn mask_bytes(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let mut at = offset;
    for byte in buf {
        if let Some(k) = key.get(at % 4) {
            *byte ^= k;
        }
        at = at.wrapping_add(1);
    }
}

/// [`apply_mask`] eight bytes at a time (feature `fast-mask`).
#[cfg_attr(not(feature = "fast-mask"), allow(dead_code))]
#[inline]
fn mask_words(buf: &mut [u8], key: [u8; 4], offset: usize) {
    // Byte i of `buf` takes key[(offset + i) % 4]: in little-endian word
    // order that is the key word rotated right by whole bytes.
    let key = u32::from_le_bytes(key).rotate_right(8 * (offset % 4) as u32);
    let word = key_word(key);
    // Fixed-length blocks first: with the block length known, the compiler
    // unrolls the words into 16-byte vector XORs (1.1–1.2x memcpy on the
    // bench machine, against 0.65x for the word loop alone). 256-byte
    // blocks pay the loop's own count, compare and branch once per sixteen
    // XORs instead of once per four: a fifth fewer instructions for a
    // large payload. 64-byte blocks take what is left of it.
    let mut large = buf.chunks_exact_mut(256);
    for block in &mut large {
        xor_words(block, word);
    }
    let mut blocks = large.into_remainder().chunks_exact_mut(64);
    for block in &mut blocks {
        xor_words(block, word);
    }
    let rest = blocks.into_remainder();
    let tail = xor_words(rest, word);
    for (byte, k) in tail.iter_mut().zip(key.to_le_bytes().iter().cycle()) {
        *byte ^= k;
    }
}

/// [`apply_mask`] from payload offset 0, for a payload taken whole; shaped
/// for the short payloads of small frames. Under 64 bytes the payload is
/// covered by the widest words that fit (16, 8 or 4 bytes) from the front,
/// plus one more word ending at the last byte: that last word is read before
/// anything is written and written last, so the bytes it shares with the
/// others get the same, once-masked value. From 64 bytes on it is
/// `apply_mask` itself.
// Only the one-frame shortcut (feature `fast-receive`) calls it.
#[cfg_attr(not(feature = "fast-receive"), allow(dead_code))]
#[inline(always)]
pub(crate) fn unmask_whole(buf: &mut [u8], key: [u8; 4]) {
    let len = buf.len();
    let key32 = u32::from_le_bytes(key);
    // The key as seen by a word starting at payload offset `at`.
    let key_at = |at: usize| key32.rotate_right(8 * (at % 4) as u32);
    if len >= 64 {
        apply_mask(buf, key, 0);
    } else if len >= 16 {
        let wide = |k: u32| {
            let k = key_word(k);
            u128::from(k) | (u128::from(k) << 64)
        };
        let last_at = len - 16;
        let Some(last) = word::<16>(buf, last_at).map(u128::from_le_bytes) else {
            return;
        };
        let key128 = wide(key32);
        for lane in buf.chunks_exact_mut(16) {
            if let Ok(bytes) = <&mut [u8; 16]>::try_from(lane) {
                *bytes = (u128::from_le_bytes(*bytes) ^ key128).to_le_bytes();
            }
        }
        put(buf, last_at, (last ^ wide(key_at(last_at))).to_le_bytes());
    } else if len >= 8 {
        let last_at = len - 8;
        let (Some(first), Some(last)) = (word::<8>(buf, 0), word::<8>(buf, last_at)) else {
            return;
        };
        let (first, last) = (u64::from_le_bytes(first), u64::from_le_bytes(last));
        put(buf, 0, (first ^ key_word(key32)).to_le_bytes());
        put(
            buf,
            last_at,
            (last ^ key_word(key_at(last_at))).to_le_bytes(),
        );
    } else if len >= 4 {
        let last_at = len - 4;
        let (Some(first), Some(last)) = (word::<4>(buf, 0), word::<4>(buf, last_at)) else {
            return;
        };
        let (first, last) = (u32::from_le_bytes(first), u32::from_le_bytes(last));
        put(buf, 0, (first ^ key32).to_le_bytes());
        put(buf, last_at, (last ^ key_at(last_at)).to_le_bytes());
    } else {
        for (byte, k) in buf.iter_mut().zip(key) {
            *byte ^= k;
        }
    }
}

/// The `N` bytes of `buf` at `at`, if they are all there.
#[cfg_attr(not(feature = "fast-receive"), allow(dead_code))]
#[inline(always)]
fn word<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..)?.first_chunk::<N>().copied()
}

/// Writes `bytes` into `buf` at `at`, if they fit.
#[cfg_attr(not(feature = "fast-receive"), allow(dead_code))]
#[inline(always)]
fn put<const N: usize>(buf: &mut [u8], at: usize, bytes: [u8; N]) {
    if let Some(dst) = buf.get_mut(at..).and_then(|b| b.first_chunk_mut::<N>()) {
        *dst = bytes;
    }
}

/// The little-endian key word repeated to fill 8 bytes.
#[inline(always)]
fn key_word(key: u32) -> u64 {
    u64::from(key) | (u64::from(key) << 32)
}

/// XORs every whole 8-byte word of `buf` with `word`; returns the bytes after
/// the last whole word.
#[cfg_attr(not(feature = "fast-mask"), allow(dead_code))]
#[inline(always)]
fn xor_words(buf: &mut [u8], word: u64) -> &mut [u8] {
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        if let Ok(bytes) = <&mut [u8; 8]>::try_from(chunk) {
            *bytes = (u64::from_le_bytes(*bytes) ^ word).to_le_bytes();
        }
    }
    chunks.into_remainder()
}

/// Writes `src` XORed with `key` into `dst`, from payload offset 0, in one
/// pass: the encoder's copy and mask together. Only the common length of the
/// two slices is written.
#[inline]
pub(crate) fn copy_masked(dst: &mut [u8], src: &[u8], key: [u8; 4]) {
    copy_mask_at(dst, src, key, 0);
}

/// `dst` word = `src` word XOR `word`, for every whole 8-byte word both have;
/// returns the bytes done.
#[cfg_attr(not(feature = "fast-mask"), allow(dead_code))]
#[inline(always)]
fn xor_words_into(dst: &mut [u8], src: &[u8], word: u64) -> usize {
    let mut done = 0;
    for (d, s) in dst.chunks_exact_mut(8).zip(src.chunks_exact(8)) {
        if let (Ok(d), Ok(s)) = (<&mut [u8; 8]>::try_from(d), <&[u8; 8]>::try_from(s)) {
            *d = (u64::from_le_bytes(*s) ^ word).to_le_bytes();
            done += 8;
        }
    }
    done
}

/// Writes `src` XORed with `key` into `dst`, as if `src` started `offset`
/// bytes into the payload: [`apply_mask`] fused with a copy, so a payload
/// leaves the receive window unmasked in one pass over its bytes. Only the
/// common length of the two slices is written.
#[inline]
pub(crate) fn copy_mask_at(dst: &mut [u8], src: &[u8], key: [u8; 4], offset: usize) {
    #[cfg(feature = "fast-mask")]
    copy_mask_at_words(dst, src, key, offset);
    #[cfg(not(feature = "fast-mask"))]
    copy_mask_at_bytes(dst, src, key, offset);
}

/// [`copy_mask_at`] a byte at a time (without the `fast-mask` feature).
#[cfg_attr(feature = "fast-mask", allow(dead_code))]
fn copy_mask_at_bytes(dst: &mut [u8], src: &[u8], key: [u8; 4], offset: usize) {
    let mut at = offset;
    for (d, s) in dst.iter_mut().zip(src) {
        *d = s ^ key.get(at % 4).copied().unwrap_or_default();
        at = at.wrapping_add(1);
    }
}

/// [`copy_mask_at`] eight bytes at a time (feature `fast-mask`), in the
/// same fixed-length blocks as [`apply_mask`] so the compiler emits vector
/// code for them.
#[cfg_attr(not(feature = "fast-mask"), allow(dead_code))]
#[inline]
fn copy_mask_at_words(dst: &mut [u8], src: &[u8], key: [u8; 4], offset: usize) {
    let key = u32::from_le_bytes(key).rotate_right(8 * (offset % 4) as u32);
    let word = key_word(key);
    // The same length on both sides, so their blocks pair up.
    let n = dst.len().min(src.len());
    let (dst, src) = (
        dst.get_mut(..n).unwrap_or_default(),
        src.get(..n).unwrap_or_default(),
    );
    let mut dst_large = dst.chunks_exact_mut(256);
    let mut src_large = src.chunks_exact(256);
    for (d, s) in (&mut dst_large).zip(&mut src_large) {
        xor_words_into(d, s, word);
    }
    let (dst, src) = (dst_large.into_remainder(), src_large.remainder());
    let mut dst_blocks = dst.chunks_exact_mut(64);
    let mut src_blocks = src.chunks_exact(64);
    for (d, s) in (&mut dst_blocks).zip(&mut src_blocks) {
        xor_words_into(d, s, word);
    }
    let (dst, src) = (dst_blocks.into_remainder(), src_blocks.remainder());
    let done = xor_words_into(dst, src, word);
    let (dst, src) = (
        dst.get_mut(done..).unwrap_or_default(),
        src.get(done..).unwrap_or_default(),
    );
    // `done` is a multiple of 8, so the tail starts on the rotated key's first byte.
    for ((d, s), k) in dst
        .iter_mut()
        .zip(src)
        .zip(key.to_le_bytes().iter().cycle())
    {
        *d = s ^ k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn matches_bytewise_reference_at_every_offset_and_length() {
        let key = [0x12, 0x34, 0x56, 0x78];
        // Past 256 and 64 bytes: whole blocks of each, 16-byte lanes and a tail.
        for len in 0..700 {
            for offset in 0..8 {
                let mut fast: heapless::Vec<u8, 1024> = (0..len).map(|i| i as u8).collect();
                let mut slow = fast.clone();
                let mut bytes = fast.clone();
                apply_mask(&mut fast, key, offset);
                reference(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
                // Both forms, whichever the build's features pick.
                let mut words = bytes.clone();
                mask_words(&mut words, key, offset);
                mask_bytes(&mut bytes, key, offset);
                assert_eq!(
                    (&words, &bytes),
                    (&slow, &slow),
                    "len {len} offset {offset}"
                );
            }
        }
    }

    #[test]
    fn copy_masked_writes_only_the_common_length_whatever_the_lengths() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let src: [u8; 300] = core::array::from_fn(|i| (i * 13 + 5) as u8);
        for (dst_len, src_len) in [
            (300, 131),
            (131, 300),
            (200, 64),
            (64, 200),
            (7, 70),
            (70, 7),
        ] {
            let mut dst = [0xAAu8; 300];
            copy_masked(&mut dst[..dst_len], &src[..src_len], key);
            let len = dst_len.min(src_len);
            for i in 0..300 {
                let want = if i < len { src[i] ^ key[i % 4] } else { 0xAA };
                assert_eq!(dst[i], want, "byte {i} of dst {dst_len}, src {src_len}");
            }
        }
    }

    #[test]
    fn unmask_whole_matches_reference() {
        let key = [0xa5, 0x3c, 0x0f, 0x71];
        for len in 0..200 {
            let mut fast: heapless::Vec<u8, 256> = (0..len as u8).collect();
            let mut slow = fast.clone();
            unmask_whole(&mut fast, key);
            reference(&mut slow, key, 0);
            assert_eq!(fast, slow, "len {len}");
        }
    }

    #[test]
    fn copy_masked_matches_copy_then_mask() {
        let key = [0x9a, 0x01, 0xfe, 0x37];
        for len in 0..200 {
            let src: heapless::Vec<u8, 256> = (0..len as u8).map(|b| b.wrapping_mul(7)).collect();
            let mut expected = src.clone();
            apply_mask(&mut expected, key, 0);
            let mut dst = [0u8; 256];
            copy_masked(&mut dst[..len], &src, key);
            assert_eq!(&dst[..len], &expected[..], "len {len}");
        }
    }

    #[test]
    fn copy_mask_at_matches_reference_at_every_offset_and_length() {
        let key = [0x3d, 0xc2, 0x77, 0x08];
        // Around the 8-, 64- and 256-byte block sizes, at every key phase.
        for len in (0..600).chain([1023, 1024, 1025]) {
            for offset in 0..8 {
                let src: std::vec::Vec<u8> = (0..len).map(|i| (i * 13 + 5) as u8).collect();
                let mut expected = src.clone();
                reference(&mut expected, key, offset);
                let mut dst = std::vec![0xee; len + 3];
                copy_mask_at(&mut dst[..len], &src, key, offset);
                assert_eq!(&dst[..len], &expected[..], "len {len} offset {offset}");
                assert_eq!(&dst[len..], &[0xee; 3], "nothing past dst");
                let (mut words, mut bytes) = (std::vec![0; len], std::vec![0; len]);
                copy_mask_at_words(&mut words, &src, key, offset);
                copy_mask_at_bytes(&mut bytes, &src, key, offset);
                assert_eq!(
                    (&words, &bytes),
                    (&expected, &expected),
                    "len {len} offset {offset}"
                );
                // Only the common length is written, whichever slice is shorter.
                let mut short = std::vec![0xee; len / 2];
                copy_mask_at(&mut short, &src, key, offset);
                assert_eq!(&short[..], &expected[..len / 2]);
            }
        }
    }

    #[test]
    fn seed_vector() {
        // The seed's bytes spell "helo websocket\n" (15 bytes).
        let mut data = [
            0x68, 0x65, 0x6c, 0x6f, 0x20, 0x77, 0x65, 0x62, 0x73, 0x6f, 0x63, 0x6b, 0x65, 0x74,
            0x0a,
        ];
        apply_mask(&mut data, [0x08, 0xf6, 0xef, 0xb1], 0);
        assert_eq!(
            data,
            [
                0x60, 0x93, 0x83, 0xde, 0x28, 0x81, 0x8a, 0xd3, 0x7b, 0x99, 0x8c, 0xda, 0x6d, 0x82,
                0xe5
            ]
        );
    }
}
