//! `Sec-WebSocket-Accept` (RFC 6455 §4.2.2): base64(SHA-1(key + GUID)).
//!
//! SHA-1 comes from the `sha1` crate with the `fast-sha1` feature (on by
//! default: hardware SHA instructions where the CPU has them), otherwise
//! from a small loop in this file, a few hundred bytes of code instead of a
//! few kilobytes, for microcontrollers. Base64 is always this file's: only
//! 20 bytes are ever encoded and only a 24-byte key is ever checked.

/// The GUID every WebSocket endpoint appends to the client's key.
pub const WEBSOCKET_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Length of an accept value: 20 bytes of SHA-1 in base64.
pub const ACCEPT_LEN: usize = 28;

/// Length of a `Sec-WebSocket-Key`: 16 bytes in base64.
pub const KEY_LEN: usize = 24;

/// Computes the accept value for a client's `Sec-WebSocket-Key` (as sent, base64).
///
/// ```
/// use wsproto::handshake::accept_key;
/// // RFC 6455 §1.3 and the seed documents.
/// assert_eq!(&accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// assert_eq!(&accept_key(b"IHfMdf8a0aQXbwQO1pkGdA=="), b"aWAY+V/uyz5ILZEoWuWdxjnlb7E=");
/// ```
pub fn accept_key(key: &[u8]) -> [u8; ACCEPT_LEN] {
    let digest = sha1_of(&[key, WEBSOCKET_GUID]);
    let mut out = [0u8; ACCEPT_LEN];
    encode(&digest, &mut out);
    out
}

/// Encodes 16 random bytes as a `Sec-WebSocket-Key`.
pub fn encode_key(nonce: [u8; 16]) -> [u8; KEY_LEN] {
    let mut out = [0u8; KEY_LEN];
    encode(&nonce, &mut out);
    out
}

/// Whether `key` is base64 that decodes to exactly 16 bytes: 22 symbols of
/// the standard alphabet, the last with its 4 unused bits zero, then `==`.
pub fn is_valid_key(key: &[u8]) -> bool {
    let [symbols @ .., last, b'=', b'='] = key else {
        return false;
    };
    key.len() == KEY_LEN
        && symbols.iter().all(|&b| sextet(b).is_some())
        && matches!(sextet(*last), Some(v) if v & 0x0f == 0)
}

/// The value of one base64 symbol.
fn sextet(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// The base64 symbol (RFC 4648 §4) of a 6-bit value, computed from the
/// alphabet's four ranges rather than looked up: no 64-byte table in
/// read-only data. The inverse of [`sextet`].
fn symbol_of(v: u8) -> u8 {
    match v {
        0..=25 => b'A' + v,
        26..=51 => b'a' + (v - 26),
        52..=61 => b'0' + (v - 52),
        62 => b'+',
        _ => b'/',
    }
}

/// Standard padded base64 of `src` into `out`, which the callers size as
/// exactly `4 * ceil(len / 3)` bytes.
fn encode(src: &[u8], out: &mut [u8]) {
    for (group, dst) in src.chunks(3).zip(out.chunks_mut(4)) {
        let mut bytes = [0u8; 3];
        for (b, s) in bytes.iter_mut().zip(group) {
            *b = *s;
        }
        let [b0, b1, b2] = bytes;
        let bits = u32::from_be_bytes([0, b0, b1, b2]);
        for (i, d) in dst.iter_mut().enumerate() {
            let symbol = ((bits >> (18 - 6 * i)) & 63) as u8;
            *d = if i <= group.len() {
                symbol_of(symbol)
            } else {
                b'='
            };
        }
    }
}

/// SHA-1 (FIPS 180-4) of the concatenation of `parts`.
#[cfg(feature = "fast-sha1")]
fn sha1_of(parts: &[&[u8]]) -> [u8; 20] {
    use sha1::{Digest, Sha1};
    let mut sha = Sha1::new();
    for part in parts {
        sha.update(part);
    }
    sha.finalize().into()
}

#[cfg(not(feature = "fast-sha1"))]
use self::compact_sha1 as sha1_of;

/// SHA-1 (FIPS 180-4) of the concatenation of `parts`, one block at a time
/// through a 64-byte buffer, the 80 rounds as one loop. The padding goes
/// through the same byte path as the message, which keeps the code small.
/// Compiled for tests in every build, to be checked against the `sha1` crate.
#[cfg(any(test, not(feature = "fast-sha1")))]
fn compact_sha1(parts: &[&[u8]]) -> [u8; 20] {
    struct Blocks {
        state: [u32; 5],
        block: [u8; 64],
        fill: usize,
    }
    impl Blocks {
        fn push(&mut self, b: u8) {
            if let Some(slot) = self.block.get_mut(self.fill) {
                *slot = b;
            }
            self.fill += 1;
            if self.fill == 64 {
                compress(&mut self.state, &self.block);
                self.fill = 0;
            }
        }
    }
    let mut sha = Blocks {
        state: [
            0x6745_2301,
            0xefcd_ab89,
            0x98ba_dcfe,
            0x1032_5476,
            0xc3d2_e1f0,
        ],
        block: [0; 64],
        fill: 0,
    };
    let mut total: u64 = 0;
    for part in parts {
        for &b in part.iter() {
            sha.push(b);
        }
        total = total.wrapping_add(part.len() as u64);
    }
    // Padding: 0x80, zeros up to 56 mod 64, the length in bits (64-bit BE).
    sha.push(0x80);
    while sha.fill != 56 {
        sha.push(0);
    }
    for b in total.wrapping_mul(8).to_be_bytes() {
        sha.push(b);
    }
    let mut out = [0u8; 20];
    for (i, byte) in out.iter_mut().enumerate() {
        let word = sha.state.get(i / 4).copied().unwrap_or(0);
        *byte = (word >> (24 - 8 * (i % 4))) as u8;
    }
    out
}

/// One SHA-1 block. The message schedule lives in a ring of 16 words:
/// round `t` reads (and, from round 16 on, first computes) `w[t % 16]`, so
/// no word is ever moved (a sliding window costs a `memmove` per round and
/// links the `memmove` routine on targets without one in hardware).
#[cfg(any(test, not(feature = "fast-sha1")))]
fn compress(state: &mut [u32; 5], block: &[u8; 64]) {
    let mut w = [0u32; 16];
    for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
        *word = u32::from_be_bytes(bytes.try_into().unwrap_or_default());
    }
    let [mut a, mut b, mut c, mut d, mut e] = *state;
    for t in 0..80 {
        // Indices masked to the ring: always in bounds, so the checks fold.
        if t >= 16 {
            let back = |n: usize| w.get((t - n) & 15).copied().unwrap_or(0);
            let next = (back(3) ^ back(8) ^ back(14) ^ back(16)).rotate_left(1);
            if let Some(slot) = w.get_mut(t & 15) {
                *slot = next;
            }
        }
        let word = w.get(t & 15).copied().unwrap_or(0);
        let (f, k) = match t / 20 {
            0 => ((b & c) | (!b & d), 0x5a82_7999),
            1 => (b ^ c ^ d, 0x6ed9_eba1),
            2 => ((b & c) | (b & d) | (c & d), 0x8f1b_bcdc),
            _ => (b ^ c ^ d, 0xca62_c1d6),
        };
        let temp = a
            .rotate_left(5)
            .wrapping_add(f)
            .wrapping_add(e)
            .wrapping_add(k)
            .wrapping_add(word);
        e = d;
        d = c;
        c = b.rotate_left(30);
        b = a;
        a = temp;
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e]) {
        *s = s.wrapping_add(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_validation() {
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ")); // unpadded
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=!"));
        assert!(!is_valid_key(b"AAAAAAAAAAAAAAAAAAAAAAAA")); // 18 bytes
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZR==")); // trailing bits set
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ==="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25j=Q=="));
        assert!(is_valid_key(&encode_key([7; 16])));
        assert!(is_valid_key(&encode_key([0xff; 16])));
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        // RFC 4648 §10, through the 16-byte encoder's padding rule.
        let mut out = [0u8; 8];
        encode(b"foob", &mut out);
        assert_eq!(&out, b"Zm9vYg==");
        encode(b"fooba", &mut out);
        assert_eq!(&out, b"Zm9vYmE=");
        encode(b"foobar", &mut out);
        assert_eq!(&out, b"Zm9vYmFy");
        assert_eq!(
            &encode_key(*b"the sample nonce"),
            b"dGhlIHNhbXBsZSBub25jZQ=="
        );
    }

    #[test]
    fn computed_alphabet_is_rfc4648_and_inverts_sextet() {
        let alphabet: std::vec::Vec<u8> = (0..64).map(symbol_of).collect();
        assert_eq!(
            &alphabet[..],
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        );
        for v in 0..64 {
            assert_eq!(sextet(symbol_of(v)), Some(v));
        }
    }

    fn hex(digest: [u8; 20]) -> std::string::String {
        digest.iter().map(|b| std::format!("{b:02x}")).collect()
    }

    /// Both SHA-1s (the `sha1` crate's with `fast-sha1`) on every length
    /// across three blocks, fed whole and in two parts.
    #[test]
    fn compact_sha1_agrees_with_the_one_in_use() {
        let mut x = 0x9e37_79b9u32;
        let data: std::vec::Vec<u8> = (0..200)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for n in 0..data.len() {
            let (a, b) = data[..n].split_at(n / 3);
            assert_eq!(compact_sha1(&[&data[..n]]), sha1_of(&[a, b]), "{n} bytes");
        }
    }

    #[test]
    fn sha1_matches_nist_vectors() {
        // FIPS 180 examples (one block, two blocks) and the empty message.
        assert_eq!(
            hex(sha1_of(&[b"abc"])),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(sha1_of(&[
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            ])),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(
            hex(sha1_of(&[b""])),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        // One million 'a' (FIPS 180 long message), fed in parts.
        let chunk = [b'a'; 1000];
        let parts = [&chunk[..]; 1000];
        assert_eq!(
            hex(sha1_of(&parts)),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
        // Every length around the padding boundary agrees with the split feed.
        let data = [0x5au8; 130];
        for n in 0..data.len() {
            let (a, b) = data[..n].split_at(n / 2);
            assert_eq!(sha1_of(&[&data[..n]]), sha1_of(&[a, b]));
        }
    }

    #[test]
    fn accept_vectors() {
        assert_eq!(
            &accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(
            &accept_key(b"IHfMdf8a0aQXbwQO1pkGdA=="),
            b"aWAY+V/uyz5ILZEoWuWdxjnlb7E="
        );
    }
}
