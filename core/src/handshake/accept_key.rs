//! `Sec-WebSocket-Accept` (RFC 6455 §4.2.2): base64(SHA-1(key + GUID)).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha1::{Digest, Sha1};

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
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(WEBSOCKET_GUID);
    let digest = sha.finalize();
    let mut out = [0u8; ACCEPT_LEN];
    // 20 bytes always encode to exactly 28 base64 bytes.
    let _ = STANDARD.encode_slice(digest, &mut out);
    out
}

/// Encodes 16 random bytes as a `Sec-WebSocket-Key`.
pub fn encode_key(nonce: [u8; 16]) -> [u8; KEY_LEN] {
    let mut out = [0u8; KEY_LEN];
    let _ = STANDARD.encode_slice(nonce, &mut out);
    out
}

/// Whether `key` is base64 that decodes to exactly 16 bytes.
pub fn is_valid_key(key: &[u8]) -> bool {
    let mut decoded = [0u8; 18];
    key.len() == KEY_LEN && matches!(STANDARD.decode_slice(key, &mut decoded), Ok(16))
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
        assert!(is_valid_key(&encode_key([7; 16])));
    }
}
