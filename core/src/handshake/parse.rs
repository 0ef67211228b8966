//! The server's request-head parser: the request line and the header lines
//! of an HTTP/1.1 request (RFC 9112 §3, §5), into the caller's
//! `httparse::Header` slots.
//!
//! It accepts exactly what `httparse::Request::parse` accepts with its
//! default configuration, field for field (a test holds the two to each
//! other on generated heads), but tests bytes by comparison and a 16-byte
//! bitmap instead of httparse's three 256-byte tables: the opening
//! handshake runs once per connection, and on a microcontroller those
//! tables are most of the read-only data. The client's response parser is
//! still httparse's.

use httparse::Header;

/// Why a head was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// More header lines than slots.
    TooManyHeaders,
    /// Anything else: a byte out of place, or the head ends early.
    Malformed,
}

/// A parsed request head, borrowing the buffer and the filled slots.
#[derive(Debug)]
pub(crate) struct RequestHead<'a> {
    pub(crate) method: &'a str,
    pub(crate) target: &'a str,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub(crate) version: u8,
    pub(crate) headers: &'a [Header<'a>],
}

/// The `tchar`s of RFC 9110 §5.6.2 as a bitmap of the ASCII range: bit
/// `b % 32` of word `b / 32`.
const TOKEN_BITS: [u32; 4] = [token_word(0), token_word(1), token_word(2), token_word(3)];

/// Word `w` of [`TOKEN_BITS`]: the bytes `32 * w ..= 32 * w + 31`.
const fn token_word(w: u8) -> u32 {
    let mut word = 0;
    let mut bit = 0;
    while bit < 32 {
        let b = w * 32 + bit;
        let token = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        if token {
            word |= 1 << bit;
        }
        bit += 1;
    }
    word
}

/// Whether `b` may appear in a token (a method or a header name).
pub(crate) fn is_tchar(b: u8) -> bool {
    TOKEN_BITS
        .get(usize::from(b / 32))
        .is_some_and(|word| word & (1 << (b % 32)) != 0)
}

/// Whether `b` may appear in a request target: any visible byte but DEL,
/// obs-text included (the target must still be UTF-8 as a whole).
fn is_target_byte(b: u8) -> bool {
    b > b' ' && b != 0x7f
}

/// Whether `b` may appear in a header value: tab, space, visible bytes
/// and obs-text; no other control byte.
fn is_value_byte(b: u8) -> bool {
    b == b'\t' || (b >= b' ' && b != 0x7f)
}

/// A cursor over the head.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Result<u8, HeadError> {
        let b = self.peek().ok_or(HeadError::Malformed)?;
        self.at += 1;
        Ok(b)
    }

    /// Moves past the bytes that pass `test`; returns them.
    fn take_while(&mut self, test: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.at;
        while self.peek().is_some_and(&test) {
            self.at += 1;
        }
        self.bytes.get(start..self.at).unwrap_or_default()
    }

    /// After a line's last byte `b`: CRLF, or a bare LF as httparse allows.
    fn end_of_line(&mut self, b: u8) -> Result<(), HeadError> {
        match b {
            b'\n' => Ok(()),
            b'\r' if self.next()? == b'\n' => Ok(()),
            _ => Err(HeadError::Malformed),
        }
    }
}

/// ASCII bytes (checked by the caller's byte class) as a `str`.
fn ascii(bytes: &[u8]) -> Result<&str, HeadError> {
    core::str::from_utf8(bytes).map_err(|_| HeadError::Malformed)
}

/// Parses `head`, which must be exactly one request head, up to and
/// including the empty line that ends it.
pub(crate) fn parse_request<'a>(
    head: &'a [u8],
    slots: &'a mut [Header<'a>],
) -> Result<RequestHead<'a>, HeadError> {
    let mut cur = Cursor { bytes: head, at: 0 };
    // Empty lines before the request line are skipped (RFC 9112 §2.2).
    while let Some(b @ (b'\r' | b'\n')) = cur.peek() {
        cur.at += 1;
        cur.end_of_line(b)?;
    }
    let method = cur.take_while(is_tchar);
    if method.is_empty() || cur.next()? != b' ' {
        return Err(HeadError::Malformed);
    }
    let target = cur.take_while(is_target_byte);
    if target.is_empty() || cur.next()? != b' ' {
        return Err(HeadError::Malformed);
    }
    let target = core::str::from_utf8(target).map_err(|_| HeadError::Malformed)?;
    let version = match cur.bytes.get(cur.at..cur.at + 8) {
        Some(b"HTTP/1.0") => 0,
        Some(b"HTTP/1.1") => 1,
        _ => return Err(HeadError::Malformed),
    };
    cur.at += 8;
    let b = cur.next()?;
    cur.end_of_line(b)?;

    let mut filled = 0;
    loop {
        let b = cur.next()?;
        if b == b'\r' || b == b'\n' {
            cur.end_of_line(b)?;
            break;
        }
        if !is_tchar(b) {
            return Err(HeadError::Malformed);
        }
        cur.at -= 1;
        let name = cur.take_while(is_tchar);
        if cur.next()? != b':' {
            return Err(HeadError::Malformed);
        }
        cur.take_while(|b| b == b' ' || b == b'\t');
        let value = cur.take_while(is_value_byte);
        let b = cur.next()?;
        cur.end_of_line(b)?;
        // Trailing whitespace is not part of the value (RFC 9110 §5.5).
        let end = value
            .iter()
            .rposition(|&b| b != b' ' && b != b'\t')
            .map_or(0, |i| i + 1);
        let slot = slots.get_mut(filled).ok_or(HeadError::TooManyHeaders)?;
        *slot = Header {
            name: ascii(name)?,
            value: value.get(..end).unwrap_or_default(),
        };
        filled += 1;
    }
    if cur.at != head.len() {
        return Err(HeadError::Malformed);
    }
    let slots: &'a [Header<'a>] = slots;
    Ok(RequestHead {
        method: ascii(method)?,
        target,
        version,
        headers: slots.get(..filled).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;

    /// What httparse makes of `head`, in this parser's terms.
    fn reference(head: &[u8], slots: usize) -> std::string::String {
        let mut headers = vec![httparse::EMPTY_HEADER; slots];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(head) {
            Ok(httparse::Status::Complete(n)) if n == head.len() => std::format!(
                "{:?} {:?} {:?} {:?}",
                req.method,
                req.path,
                req.version,
                req.headers
            ),
            Err(httparse::Error::TooManyHeaders) => "too many".into(),
            _ => "malformed".into(),
        }
    }

    fn ours(head: &[u8], slots: usize) -> std::string::String {
        let mut headers = vec![httparse::EMPTY_HEADER; slots];
        match parse_request(head, &mut headers) {
            Ok(r) => std::format!(
                "{:?} {:?} {:?} {:?}",
                Some(r.method),
                Some(r.target),
                Some(r.version),
                r.headers
            ),
            Err(HeadError::TooManyHeaders) => "too many".into(),
            Err(HeadError::Malformed) => "malformed".into(),
        }
    }

    #[test]
    fn token_bitmap_is_the_tchar_set() {
        for b in 0..=255u8 {
            let expected = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(is_tchar(b), expected, "{b:#04x}");
        }
    }

    #[test]
    fn agrees_with_httparse_on_chosen_heads() {
        let heads: [&[u8]; 22] = [
            b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
            b"\r\n\nGET / HTTP/1.0\r\n\r\n",
            b"GET / HTTP/1.1\nHost: a\n\n",
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.2\r\n\r\n",
            b"GET / HTTP/1.1 \r\n\r\n",
            b"G\x01T / HTTP/1.1\r\n\r\n",
            b"GET /\x7f HTTP/1.1\r\n\r\n",
            b"GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n",
            b"GET /\xff HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nName : v\r\n\r\n",
            b"GET / HTTP/1.1\r\n Name: v\r\n\r\n",
            b"GET / HTTP/1.1\r\nName:\r\n\r\n",
            b"GET / HTTP/1.1\r\nName: \t v \t \r\n\r\n",
            b"GET / HTTP/1.1\r\nName: a\x00b\r\n\r\n",
            b"GET / HTTP/1.1\r\nName: obs \xfe text\r\n\r\n",
            b"GET / HTTP/1.1\r\nName: v\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nName: v\r\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\nbody",
            b"GET / HTTP/1.1\r\nA: 1\r\n",
            b"",
        ];
        for head in heads {
            for slots in [0, 2, 3, 16] {
                assert_eq!(
                    ours(head, slots),
                    reference(head, slots),
                    "{:?} with {slots} slots",
                    std::string::String::from_utf8_lossy(head)
                );
            }
        }
    }

    /// Bytes that make a head interesting: its delimiters, every byte class
    /// and the edges between them.
    fn piece() -> impl Strategy<Value = std::vec::Vec<u8>> {
        prop_oneof![
            Just(b"GET".to_vec()),
            Just(b" ".to_vec()),
            Just(b"/chat".to_vec()),
            Just(b"HTTP/1.1".to_vec()),
            Just(b"HTTP/1.0".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"Host".to_vec()),
            Just(b":".to_vec()),
            Just(b"\t".to_vec()),
            Just(b"v".to_vec()),
            any::<u8>().prop_map(|b| vec![b]),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        #[test]
        fn agrees_with_httparse_on_generated_heads(
            pieces in proptest::collection::vec(piece(), 0..40),
            slots in 0usize..4,
        ) {
            let mut head = b"GET / HTTP/1.1\r\n".to_vec();
            for p in &pieces {
                head.extend_from_slice(p);
            }
            head.extend_from_slice(b"\r\n\r\n");
            prop_assert_eq!(ours(&head, slots), reference(&head, slots));
            // And from the very first byte, request line included.
            let raw: std::vec::Vec<u8> = pieces.concat();
            prop_assert_eq!(ours(&raw, slots), reference(&raw, slots));
        }
    }
}
