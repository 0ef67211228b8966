//! The server side: validate a client's upgrade request, then accept or reject.

use super::accept_key::{accept_key, is_valid_key};
use super::headers::{check_extra, list_items, trim, values, write_head};
use super::parse::{parse_request, HeadError};
use super::{write_error_response, HeadScanner};
use crate::config::Config;
use crate::error::{HandshakeError, Misuse};
#[cfg(feature = "deflate")]
use crate::extensions::deflate::{params::MAX_VALUE_LEN, Agreed, DeflateConfig};
use crate::time::Instant;
use httparse::Header;

/// Reads a client's opening handshake, however it is split across reads.
///
/// Lives from the accepted TCP connection until the request is complete (or
/// its deadline passes); holds only a scan position and a deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerHandshake {
    scanner: HeadScanner,
}

impl ServerHandshake {
    /// Starts waiting for a request at `now`; it must be complete within
    /// `config.handshake_timeout` and `config.limits.max_handshake_bytes`.
    pub fn new(config: &Config, now: Instant) -> Self {
        ServerHandshake {
            scanner: HeadScanner::new(
                config.limits.max_handshake_bytes,
                now + config.handshake_timeout,
            ),
        }
    }

    /// Looks at everything received so far (`buf`, which only ever grows
    /// between calls) and returns the validated request once its head is
    /// complete, or `None` while more bytes are needed.
    ///
    /// Create `headers` (the header slots; their number bounds the header
    /// count) right before each call. On error, answer with
    /// [`HandshakeError::write_response`] and close the connection.
    pub fn parse<'a>(
        &mut self,
        buf: &'a [u8],
        headers: &'a mut [Header<'a>],
    ) -> Result<Option<Request<'a>>, HandshakeError> {
        let Some(head_len) = self.scanner.head_len(buf)? else {
            return Ok(None);
        };
        let head = buf.get(..head_len).unwrap_or_default();
        // The parser must end the head exactly at `head_len`: one that ends it
        // early (at a bare-LF empty line) would leave unparsed bytes inside it.
        let req = parse_request(head, headers).map_err(|e| match e {
            HeadError::TooManyHeaders => HandshakeError::TooManyHeaders,
            HeadError::Malformed => HandshakeError::Malformed,
        })?;
        Request::validate(req.method, req.target, req.version, req.headers, head_len).map(Some)
    }

    /// The handshake deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(self.scanner.deadline)
    }

    /// Fails with [`HandshakeError::Timeout`] once `now` reaches the deadline.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), HandshakeError> {
        self.scanner.check_deadline(now)
    }
}

/// A valid WebSocket upgrade request, borrowing the caller's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    target: &'a str,
    path: &'a str,
    host: &'a [u8],
    key: &'a [u8],
    headers: &'a [Header<'a>],
    head_len: usize,
}

/// How to accept a request.
#[derive(Clone, Copy, Debug, Default)]
pub struct Accept<'a> {
    /// The subprotocol to speak; must be one the client offered.
    pub protocol: Option<&'a str>,
    /// Extra response headers (cookies, server name...).
    pub headers: &'a [(&'a str, &'a [u8])],
}

impl<'a> Request<'a> {
    /// Validates a request whose head another HTTP/1.1 implementation has
    /// already parsed (a server framework, a proxy): the same rules and the
    /// same errors as [`ServerHandshake::parse`], from its method, request
    /// target, minor HTTP version (`1` for HTTP/1.1) and header lines. The
    /// request owns no bytes of the connection: [`Request::head_len`] is 0.
    ///
    /// ```
    /// use wsproto::handshake::{Accept, Request};
    /// let headers = [
    ///     httparse::Header { name: "Host", value: b"example.com" },
    ///     httparse::Header { name: "Upgrade", value: b"websocket" },
    ///     httparse::Header { name: "Connection", value: b"Upgrade" },
    ///     httparse::Header { name: "Sec-WebSocket-Key", value: b"dGhlIHNhbXBsZSBub25jZQ==" },
    ///     httparse::Header { name: "Sec-WebSocket-Version", value: b"13" },
    /// ];
    /// let req = Request::from_parts("GET", "/chat", 1, &headers).unwrap();
    /// assert_eq!(req.path(), "/chat");
    /// let mut out = [0u8; 256];
    /// let n = req.accept(&Accept::default(), &mut out).unwrap();
    /// assert!(out[..n].starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    /// ```
    pub fn from_parts(
        method: &'a str,
        target: &'a str,
        version: u8,
        headers: &'a [Header<'a>],
    ) -> Result<Self, HandshakeError> {
        Request::validate(method, target, version, headers, 0)
    }

    fn validate(
        method: &'a str,
        target: &'a str,
        version: u8,
        headers: &'a [Header<'a>],
        head_len: usize,
    ) -> Result<Self, HandshakeError> {
        if method != "GET" {
            return Err(HandshakeError::MethodNotGet);
        }
        if version < 1 {
            return Err(HandshakeError::HttpVersion);
        }
        let found = Found::scan(headers);
        let host_header = match found.single(HOST) {
            Ok(Some(host)) if !trim(host).is_empty() => trim(host),
            _ => return Err(HandshakeError::MissingHost),
        };
        let (path, authority) = split_target(target)?;
        // RFC 9112 §3.2.2: with the absolute form, the target's authority is
        // the host and the Host header is ignored.
        let host = authority.map_or(host_header, str::as_bytes);
        if found.count(TRANSFER_ENCODING) > 0 || found.flagged(CONTENT_LENGTH) {
            return Err(HandshakeError::RequestBody);
        }
        if !found.flagged(UPGRADE) {
            return Err(HandshakeError::MissingUpgrade);
        }
        if !found.flagged(CONNECTION) {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        match found.single(VERSION) {
            Ok(None) => return Err(HandshakeError::MissingVersion),
            Ok(Some(v)) if trim(v) == b"13" => {}
            _ => return Err(HandshakeError::UnsupportedVersion),
        }
        let key = match found.single(KEY) {
            Ok(Some(key)) if is_valid_key(trim(key)) => trim(key),
            _ => return Err(HandshakeError::InvalidKey),
        };
        Ok(Request {
            target,
            path,
            host,
            key,
            headers,
            head_len,
        })
    }

    /// The path and query the request asks for, e.g. `/chat?room=1`: the
    /// request target itself in the usual origin form, or the part after
    /// the authority of an absolute-form target (`ws://host/chat?room=1`
    /// gives `/chat?room=1`; `ws://host` gives `/`).
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The request target exactly as sent on the request line.
    pub fn target(&self) -> &'a str {
        self.target
    }

    /// The host the request is for: the `Host` header, or the authority of
    /// an absolute-form target, which takes precedence (RFC 9112 §3.2.2).
    pub fn host(&self) -> &'a [u8] {
        self.host
    }

    /// The `Origin` header (sent by browsers), for the application to check.
    pub fn origin(&self) -> Option<&'a [u8]> {
        super::headers::origin(self.headers)
    }

    /// The client's `Sec-WebSocket-Key`, as sent.
    pub fn key(&self) -> &'a [u8] {
        self.key
    }

    /// Every header line, in order.
    pub fn headers(&self) -> &'a [Header<'a>] {
        self.headers
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        values(self.headers, name).next()
    }

    /// The offered subprotocols, in the client's order of preference.
    pub fn protocols(&self) -> impl Iterator<Item = &'a str> + 'a {
        super::headers::offered_protocols(self.headers)
    }

    /// The offered extensions, one per list element, with their parameters
    /// (e.g. `permessage-deflate; client_max_window_bits`).
    pub fn extensions(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        super::headers::offered_extensions(self.headers)
    }

    /// Length of the request head: bytes after it in the buffer already
    /// belong to the WebSocket connection and must be passed to `receive`.
    pub fn head_len(&self) -> usize {
        self.head_len
    }

    /// Writes the `101 Switching Protocols` response into `out`; returns its
    /// length. `out` is untouched on error.
    pub fn accept(&self, accept: &Accept<'_>, out: &mut [u8]) -> Result<usize, Misuse> {
        self.write_accept(accept, None, out)
    }

    /// Server side of permessage-deflate (RFC 7692 §7.1): the agreement for
    /// the first acceptable offer in the request's `Sec-WebSocket-Extensions`
    /// lines (in order), or `None` to run without compression. `config` caps
    /// the windows; see [`crate::extensions::deflate::accept_offer`] for the
    /// rules. Answer with [`Request::accept_deflate`] and attach a
    /// [`crate::extensions::deflate::Deflate`] built from the agreement.
    ///
    /// ```
    /// use wsproto::extensions::deflate::{Deflate15, DeflateConfig};
    /// use wsproto::handshake::{Accept, ServerHandshake};
    /// use wsproto::{Config, Connection, Instant, Role};
    ///
    /// let request = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    ///     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
    ///     Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
    /// let mut headers = [httparse::EMPTY_HEADER; 16];
    /// let mut hs = ServerHandshake::new(&Config::default(), Instant::ZERO);
    /// let req = hs.parse(request, &mut headers).unwrap().unwrap();
    /// let agreed = req.negotiate_deflate(&DeflateConfig::default()).expect("offered");
    /// let mut out = [0u8; 256];
    /// let n = req.accept_deflate(&Accept::default(), &agreed, &mut out).unwrap();
    /// assert!(out[..n].windows(44).any(|w| w == b"Sec-WebSocket-Extensions: permessage-deflate"));
    /// let deflate = Deflate15::new(&agreed, Role::Server).unwrap();
    /// let server = Connection::new(Role::Server, Config::default()).with_extension(deflate);
    /// # let _ = server;
    /// ```
    #[cfg(feature = "deflate")]
    pub fn negotiate_deflate(&self, config: &DeflateConfig) -> Option<Agreed> {
        super::headers::negotiate_deflate(self.headers, config)
    }

    /// [`Request::accept`], answering permessage-deflate with `agreed`
    /// (from [`Request::negotiate_deflate`]) in `Sec-WebSocket-Extensions`.
    #[cfg(feature = "deflate")]
    pub fn accept_deflate(
        &self,
        accept: &Accept<'_>,
        agreed: &Agreed,
        out: &mut [u8],
    ) -> Result<usize, Misuse> {
        let mut value = [0u8; MAX_VALUE_LEN];
        let n = agreed
            .write_response(&mut value)
            .map_err(|_| Misuse::BufferTooSmall {
                required: MAX_VALUE_LEN,
            })?;
        self.write_accept(accept, value.get(..n), out)
    }

    fn write_accept(
        &self,
        accept: &Accept<'_>,
        extensions: Option<&[u8]>,
        out: &mut [u8],
    ) -> Result<usize, Misuse> {
        check_extra(accept.headers)?;
        if let Some(protocol) = accept.protocol {
            if !self.protocols().any(|p| p == protocol) {
                return Err(Misuse::ProtocolNotOffered);
            }
        }
        let accept_value = accept_key(self.key);
        write_head(out, |w| {
            w.put(b"HTTP/1.1 101 Switching Protocols\r\n");
            w.header("Upgrade", b"websocket");
            w.header("Connection", b"Upgrade");
            w.header("Sec-WebSocket-Accept", &accept_value);
            if let Some(protocol) = accept.protocol {
                w.header("Sec-WebSocket-Protocol", protocol.as_bytes());
            }
            if let Some(extensions) = extensions {
                w.header("Sec-WebSocket-Extensions", extensions);
            }
            for (name, value) in accept.headers {
                w.header(name, value);
            }
            w.put(b"\r\n");
        })
    }

    /// Writes a refusal with `status` (e.g. 403 for an unwanted Origin, 404
    /// for an unknown path) and `extra` headers; returns its length.
    pub fn reject(
        &self,
        status: u16,
        extra: &[(&str, &[u8])],
        out: &mut [u8],
    ) -> Result<usize, Misuse> {
        write_error_response(status, extra, "websocket upgrade refused", out)
    }
}

/// The request headers [`Request::validate`] checks, found in one pass over
/// the header lines (names compared case-insensitively), in the order of
/// [`CHECKED`].
const CHECKED: [&str; 7] = [
    "Host",
    "Transfer-Encoding",
    "Content-Length",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Key",
];
const HOST: usize = 0;
const TRANSFER_ENCODING: usize = 1;
const CONTENT_LENGTH: usize = 2;
const UPGRADE: usize = 3;
const CONNECTION: usize = 4;
const VERSION: usize = 5;
const KEY: usize = 6;

/// What one pass over the header lines found of each [`CHECKED`] name: how
/// often it came, its first value, and whether any of its values is flagged
/// (a `Content-Length` other than 0; an `Upgrade` listing `websocket`; a
/// `Connection` listing `upgrade`). One pass instead of one per name keeps
/// the validation small for microcontrollers; the checks are the same.
struct Found<'b> {
    count: [u8; CHECKED.len()],
    first: [&'b [u8]; CHECKED.len()],
    flagged: [bool; CHECKED.len()],
}

impl<'b> Found<'b> {
    fn scan(headers: &[Header<'b>]) -> Self {
        let mut found = Found {
            count: [0; CHECKED.len()],
            first: [&[]; CHECKED.len()],
            flagged: [false; CHECKED.len()],
        };
        for header in headers {
            let Some(i) = CHECKED
                .iter()
                .position(|name| header.name.eq_ignore_ascii_case(name))
            else {
                continue;
            };
            let value = header.value;
            let token: &[u8] = match i {
                UPGRADE => b"websocket",
                CONNECTION => b"upgrade",
                _ => b"",
            };
            let flag = match i {
                CONTENT_LENGTH => trim(value) != b"0",
                UPGRADE | CONNECTION => {
                    list_items(value).any(|item| item.eq_ignore_ascii_case(token))
                }
                _ => false,
            };
            if let (Some(count), Some(first), Some(flagged)) = (
                found.count.get_mut(i),
                found.first.get_mut(i),
                found.flagged.get_mut(i),
            ) {
                if *count == 0 {
                    *first = value;
                }
                *count = count.saturating_add(1);
                *flagged |= flag;
            }
        }
        found
    }

    fn count(&self, i: usize) -> u8 {
        self.count.get(i).copied().unwrap_or(0)
    }

    fn flagged(&self, i: usize) -> bool {
        self.flagged.get(i).copied().unwrap_or(false)
    }

    /// The only value of name `i`: `Ok(None)` when absent, `Err(())` when
    /// repeated (as `headers::single`).
    fn single(&self, i: usize) -> Result<Option<&'b [u8]>, ()> {
        match self.count(i) {
            0 => Ok(None),
            1 => Ok(self.first.get(i).copied()),
            _ => Err(()),
        }
    }
}

/// Splits a request target into the path the application sees and, for the
/// absolute form, the authority (RFC 9112 §3.2). Accepted: the origin form
/// (`/path?query`), and `http`, `https`, `ws` or `wss` URIs with a non-empty
/// authority without user info, whose path is empty or starts with `/`.
/// Refused: the asterisk and authority forms, other schemes, fragments, and
/// an absolute URI with a query but no path (its origin form, `/?query`, is
/// not a slice of the target).
fn split_target(target: &str) -> Result<(&str, Option<&str>), HandshakeError> {
    // Byte loops rather than `str`'s char searches, which link core's
    // `memchr` (about 200 bytes) into small firmware for a one-off scan.
    let has = |s: &str, b: u8| s.bytes().any(|x| x == b);
    if has(target, b'#') {
        return Err(HandshakeError::InvalidTarget);
    }
    if target.starts_with('/') {
        return Ok((target, None));
    }
    // The scheme ends at the first ':' (RFC 3986 §3.1); a byte search keeps
    // the general substring search out of small firmware.
    let colon = target
        .bytes()
        .position(|b| b == b':')
        .ok_or(HandshakeError::InvalidTarget)?;
    // Checked splits (both points follow an ASCII byte): no panic path.
    let (scheme, rest) = target
        .split_at_checked(colon)
        .ok_or(HandshakeError::InvalidTarget)?;
    let rest = rest
        .strip_prefix("://")
        .ok_or(HandshakeError::InvalidTarget)?;
    if !["http", "https", "ws", "wss"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s))
    {
        return Err(HandshakeError::InvalidTarget);
    }
    let split = rest
        .bytes()
        .position(|b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let (authority, path) = rest
        .split_at_checked(split)
        .ok_or(HandshakeError::InvalidTarget)?;
    if authority.is_empty() || has(authority, b'@') || path.starts_with('?') {
        return Err(HandshakeError::InvalidTarget);
    }
    Ok((if path.is_empty() { "/" } else { path }, Some(authority)))
}
