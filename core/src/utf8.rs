//! Incremental, fail-fast UTF-8 validation.
//!
//! Text arrives in chunks that may split a code point. The connection keeps
//! the incomplete tail (at most three bytes) in front of the next chunk, in the
//! caller's buffer, so validation only ever looks at each byte once more than
//! the bytes of one split code point.

/// The result of checking a chunk of text that may end mid code point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Utf8Status<'a> {
    /// `valid` is the complete prefix; `incomplete` bytes (0–3) start a code
    /// point that the next chunk may finish.
    Prefix {
        /// The validated prefix.
        valid: &'a str,
        /// How many trailing bytes start an unfinished code point.
        incomplete: usize,
    },
    /// The bytes can never become valid UTF-8, whatever follows.
    Invalid,
}

/// Validates `bytes`, allowing them to stop inside a code point.
///
/// Fails as soon as the input is certain to be invalid: a byte that cannot
/// start or continue a code point, an overlong form, a surrogate, or a value
/// above U+10FFFF — even when it is in the unfinished tail.
///
/// ```
/// use wsproto::utf8::{validate_prefix, Utf8Status};
/// let euro = "€".as_bytes(); // e2 82 ac
/// assert_eq!(validate_prefix(&euro[..2]), Utf8Status::Prefix { valid: "", incomplete: 2 });
/// assert_eq!(validate_prefix(b"ok\xe2\x82\xac"), Utf8Status::Prefix { valid: "ok€", incomplete: 0 });
/// assert_eq!(validate_prefix(b"\xf4\x90"), Utf8Status::Invalid); // above U+10FFFF
/// assert_eq!(validate_prefix(b"\xc0"), Utf8Status::Invalid);     // never valid
/// ```
#[inline]
pub fn validate_prefix(bytes: &[u8]) -> Utf8Status<'_> {
    // Cut before a trailing code point that the bytes may not finish, so the
    // fast whole-slice validator runs once over everything else.
    let cut = unfinished_tail_start(bytes);
    let (head, tail) = bytes.split_at(cut);
    let Some(valid) = whole_str(head) else {
        return Utf8Status::Invalid;
    };
    if tail.is_empty() {
        // The common case (text ending on a whole code point): one pass.
        return Utf8Status::Prefix {
            valid,
            incomplete: 0,
        };
    }
    match core::str::from_utf8(tail) {
        // The cut was not needed after all (cannot happen for a real lead byte).
        Ok(_) => whole(bytes),
        Err(e) if e.error_len().is_none() && e.valid_up_to() == 0 => Utf8Status::Prefix {
            valid,
            incomplete: tail.len(),
        },
        Err(_) => Utf8Status::Invalid,
    }
}

/// Only reached when the cut was not needed; validates the whole slice.
fn whole(bytes: &[u8]) -> Utf8Status<'_> {
    match whole_str(bytes) {
        Some(valid) => Utf8Status::Prefix {
            valid,
            incomplete: 0,
        },
        None => Utf8Status::Invalid,
    }
}

/// The whole-slice validator: simdutf8's with the `simd-utf8` feature (about
/// 15x core's on non-ASCII text in `benches/`), otherwise core's.
#[inline]
pub(crate) fn whole_str(bytes: &[u8]) -> Option<&str> {
    #[cfg(feature = "simd-utf8")]
    let valid = simdutf8::basic::from_utf8(bytes).ok();
    #[cfg(not(feature = "simd-utf8"))]
    let valid = core::str::from_utf8(bytes).ok();
    valid
}

/// [`whole_str`], with short slices (under 64 bytes, the small frames of
/// `receive_each`) going straight to core's validator: the SIMD one hands
/// those to it anyway, after a dispatch through a function pointer.
// Only the one-frame shortcut (feature `fast-receive`) calls it.
#[cfg_attr(not(feature = "fast-receive"), allow(dead_code))]
#[inline]
pub(crate) fn short_or_whole_str(bytes: &[u8]) -> Option<&str> {
    if bytes.len() < 64 {
        core::str::from_utf8(bytes).ok()
    } else {
        whole_str(bytes)
    }
}

/// Where the last lead byte sits if the sequence it starts is longer than the
/// bytes that follow it; otherwise `bytes.len()`. Looks at three bytes at most.
#[inline]
fn unfinished_tail_start(bytes: &[u8]) -> usize {
    let len = bytes.len();
    if bytes.last().is_none_or(|&b| b < 0x80) {
        return len; // ends in ASCII (or empty): nothing unfinished
    }
    for back in 1..=3.min(len) {
        let i = len - back;
        let Some(&b) = bytes.get(i) else { break };
        if b & 0xc0 == 0x80 {
            continue; // continuation byte: keep looking for its lead
        }
        let needed = match b {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1,
        };
        return if needed > back { i } else { len };
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_split_of_multibyte_text() {
        let text = "aé€😀z";
        let bytes = text.as_bytes();
        for cut in 0..=bytes.len() {
            match validate_prefix(&bytes[..cut]) {
                Utf8Status::Prefix { valid, incomplete } => {
                    assert_eq!(valid.len() + incomplete, cut);
                    assert!(text.starts_with(valid));
                    assert!(incomplete <= 3);
                }
                Utf8Status::Invalid => panic!("prefix {cut} wrongly invalid"),
            }
        }
    }

    #[test]
    fn short_or_whole_str_agrees_with_core() {
        let samples: [&[u8]; 6] = [
            b"",
            b"plain ascii, forty bytes or so, no more",
            "señor €🦊".as_bytes(),
            b"ascii then \xff",
            b"\xc3",
            b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef+",
        ];
        for sample in samples {
            for end in 0..=sample.len() {
                for start in 0..=end.min(9) {
                    let bytes = &sample[start..end];
                    assert_eq!(
                        short_or_whole_str(bytes),
                        core::str::from_utf8(bytes).ok(),
                        "{bytes:02x?}"
                    );
                }
            }
        }
    }

    #[test]
    fn fails_fast_on_impossible_prefixes() {
        for bad in [
            &b"\xed\xa0"[..],
            b"\xe0\x80",
            b"\xf0\x80",
            b"\xf5",
            b"\xff",
            b"\x80",
            b"a\xc1",
        ] {
            assert_eq!(validate_prefix(bad), Utf8Status::Invalid, "{bad:02x?}");
        }
    }
}
