//! Header helpers: case-insensitive lookup, comma-separated token lists, and
//! a writer that sizes a response before touching the caller's buffer.

use crate::error::Misuse;
use httparse::Header;

/// The values of every header named `name` (case-insensitive).
pub(crate) fn values<'h, 'b: 'h>(
    headers: &'h [Header<'b>],
    name: &'h str,
) -> impl Iterator<Item = &'b [u8]> + 'h {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// The only value of header `name`: `Ok(None)` when absent, `Err(())` when repeated.
pub(crate) fn single<'b>(headers: &[Header<'b>], name: &str) -> Result<Option<&'b [u8]>, ()> {
    let mut found = values(headers, name);
    let first = found.next();
    match found.next() {
        Some(_) => Err(()),
        None => Ok(first),
    }
}

/// Splits comma-separated list elements, trimming optional whitespace and
/// skipping empty elements (RFC 9110 §5.6.1).
pub(crate) fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|b| *b == b',')
        .map(trim)
        .filter(|item| !item.is_empty())
}

/// Whether any `name` header lists `token` (case-insensitive).
pub(crate) fn has_token(headers: &[Header<'_>], name: &str, token: &str) -> bool {
    values(headers, name)
        .any(|v| list_items(v).any(|item| item.eq_ignore_ascii_case(token.as_bytes())))
}

/// The `Origin` header, trimmed (sent by browsers).
pub(crate) fn origin<'b>(headers: &[Header<'b>]) -> Option<&'b [u8]> {
    single(headers, "Origin").ok().flatten().map(trim)
}

/// The offered subprotocols, in the client's order of preference.
pub(crate) fn offered_protocols<'b>(
    headers: &'b [Header<'b>],
) -> impl Iterator<Item = &'b str> + 'b {
    values(headers, "Sec-WebSocket-Protocol")
        .flat_map(list_items)
        .filter_map(|p| core::str::from_utf8(p).ok())
}

/// The offered extensions, one per list element, with their parameters.
pub(crate) fn offered_extensions<'b>(
    headers: &'b [Header<'b>],
) -> impl Iterator<Item = &'b [u8]> + 'b {
    values(headers, "Sec-WebSocket-Extensions").flat_map(list_items)
}

/// The agreement for the first acceptable permessage-deflate offer.
#[cfg(feature = "deflate")]
pub(crate) fn negotiate_deflate(
    headers: &[Header<'_>],
    config: &crate::extensions::deflate::DeflateConfig,
) -> Option<crate::extensions::deflate::Agreed> {
    values(headers, "Sec-WebSocket-Extensions")
        .filter_map(|v| core::str::from_utf8(v).ok())
        .find_map(|v| crate::extensions::deflate::accept_offer(v, config))
}

/// Strips spaces and tabs from both ends.
pub(crate) fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// Whether `name` is an HTTP token (RFC 9110 §5.6.2).
pub(crate) fn is_token(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| super::parse::is_tchar(b))
}

/// Whether `value` can be sent as a header value: no control bytes but tab.
pub(crate) fn is_field_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|b| *b == b'\t' || (*b >= 0x20 && *b != 0x7f))
}

/// Writes into a slice, or only counts when the slice is too small, so the
/// caller can report the size needed and leave its buffer untouched.
pub(crate) struct HeadWriter<'o> {
    out: &'o mut [u8],
    len: usize,
    fits: bool,
}

impl<'o> HeadWriter<'o> {
    pub(crate) fn new(out: &'o mut [u8]) -> Self {
        HeadWriter {
            out,
            len: 0,
            fits: true,
        }
    }

    /// A writer that only counts.
    pub(crate) fn counter() -> HeadWriter<'static> {
        HeadWriter {
            out: &mut [],
            len: 0,
            fits: false,
        }
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if self.fits {
            match self.out.get_mut(self.len..end) {
                Some(dst) => dst.copy_from_slice(bytes),
                None => self.fits = false,
            }
        }
        self.len = end;
    }

    pub(crate) fn header(&mut self, name: &str, value: &[u8]) {
        self.put(name.as_bytes());
        self.put(b": ");
        self.put(value);
        self.put(b"\r\n");
    }

    /// Writes a decimal number.
    pub(crate) fn number(&mut self, mut n: usize) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            if let Some(d) = digits.get_mut(i) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        self.put(digits.get(i..).unwrap_or_default());
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// Runs `compose` once to size the head, then again into `out` if it fits.
pub(crate) fn write_head(
    out: &mut [u8],
    compose: impl Fn(&mut HeadWriter<'_>),
) -> Result<usize, Misuse> {
    let mut counter = HeadWriter::counter();
    compose(&mut counter);
    let required = counter.len();
    if required > out.len() {
        return Err(Misuse::BufferTooSmall { required });
    }
    let mut writer = HeadWriter::new(out);
    compose(&mut writer);
    Ok(writer.len())
}

/// Checks application-supplied extra headers before any are written.
pub(crate) fn check_extra(extra: &[(&str, &[u8])]) -> Result<(), Misuse> {
    if extra
        .iter()
        .all(|(n, v)| is_token(n.as_bytes()) && is_field_value(v))
    {
        Ok(())
    } else {
        Err(Misuse::InvalidHeader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lists() {
        let headers = [
            Header {
                name: "Connection",
                value: b"keep-alive, Upgrade",
            },
            Header {
                name: "upgrade",
                value: b" WebSocket ",
            },
        ];
        assert!(has_token(&headers, "connection", "upgrade"));
        assert!(has_token(&headers, "Upgrade", "websocket"));
        assert!(!has_token(&headers, "Connection", "close"));
        assert_eq!(
            list_items(b" a ,, b,c ").collect::<heapless::Vec<_, 4>>(),
            [&b"a"[..], b"b", b"c"]
        );
    }

    #[test]
    fn writer_counts_then_writes() {
        let mut small = [0u8; 4];
        assert_eq!(
            write_head(&mut small, |w| w.put(b"hello")),
            Err(Misuse::BufferTooSmall { required: 5 })
        );
        assert_eq!(small, [0; 4]);
        let mut out = [0u8; 16];
        assert_eq!(write_head(&mut out, |w| w.number(431)), Ok(3));
        assert_eq!(&out[..3], b"431");
    }
}
