//! Payload masking (RFC 6455 §5.3), in place and a word at a time.
//!
//! Masking is XOR with a four-byte key repeated, so it is its own inverse. The
//! body works on 8-byte words of a key rotated to the payload offset; the
//! compiler turns the loop into vector code, with no `unsafe`.

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
    let key = rotate_key(key, offset);
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        if let Ok(bytes) = <&mut [u8; 8]>::try_from(chunk) {
            *bytes = (u64::from_ne_bytes(*bytes) ^ word).to_ne_bytes();
        }
    }
    for (byte, k) in chunks.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}

/// The key as seen from `offset` bytes into the payload.
#[inline]
fn rotate_key(mut key: [u8; 4], offset: usize) -> [u8; 4] {
    key.rotate_left(offset % 4);
    key
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
        // Past 64 bytes: whole 64-byte blocks, 16-byte lanes and a tail.
        for len in 0..200 {
            for offset in 0..8 {
                let mut fast: heapless::Vec<u8, 256> = (0..len as u8).collect();
                let mut slow = fast.clone();
                apply_mask(&mut fast, key, offset);
                reference(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
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
