//! The opening handshake, both sides: HTTP/1.1 upgrades (RFC 6455 §4) and,
//! in `h2`, HTTP/2 extended CONNECTs (RFC 8441), kept apart from
//! framing: it turns bytes into a validated [`Request`] or [`Response`], and
//! the application decides. Afterwards build a [`crate::Connection`] and hand
//! it the bytes that followed the head ([`Request::head_len`]).
//!
//! The caller owns the read buffer and the header slots (`httparse`
//! style). Each `parse` call looks for the end of the head only in bytes it
//! has not seen, so a slow or byte-at-a-time peer costs linear time; the head
//! is parsed once, when complete.
//!
//! ```
//! use wsproto::handshake::{Accept, ServerHandshake};
//! use wsproto::{Config, Instant};
//!
//! let request = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
//!     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!     Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";
//! let mut handshake = ServerHandshake::new(&Config::default(), Instant::ZERO);
//! let mut headers = [httparse::EMPTY_HEADER; 16];
//! let req = handshake.parse(request, &mut headers).unwrap().expect("complete");
//! assert_eq!(req.path(), "/chat");
//! assert_eq!(req.protocols().collect::<Vec<_>>(), ["chat", "superchat"]);
//!
//! let mut out = [0u8; 256];
//! let n = req.accept(&Accept { protocol: Some("chat"), ..Accept::default() }, &mut out).unwrap();
//! let response = std::str::from_utf8(&out[..n]).unwrap();
//! assert!(response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
//! assert!(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
//! assert!(response.contains("Sec-WebSocket-Protocol: chat\r\n"));
//! ```

mod accept_key;
mod client;
mod h2;
mod headers;
mod parse;
mod server;

pub use accept_key::{accept_key, encode_key, is_valid_key, ACCEPT_LEN, KEY_LEN, WEBSOCKET_GUID};
pub use client::{ClientHandshake, ClientRequest, Response};
pub use h2::{ClientConnect, ConnectAccepted, ConnectResponse, ExtendedConnect, PseudoHeaders};
/// The HTTP token rule, for the extension parameters (RFC 7692 §5).
#[cfg(feature = "deflate")]
pub(crate) use headers::is_token;
pub use server::{Accept, Request, ServerHandshake};

use crate::error::{HandshakeError, Misuse};
use crate::time::Instant;
use headers::{check_extra, write_head};

/// Finds the end of an HTTP head (`\r\n\r\n`) without rescanning: it
/// remembers how far previous calls looked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HeadScanner {
    scanned: usize,
    max_bytes: usize,
    deadline: Instant,
}

impl HeadScanner {
    fn new(max_bytes: usize, deadline: Instant) -> Self {
        HeadScanner {
            scanned: 0,
            max_bytes,
            deadline,
        }
    }

    /// The head's length once `buf` holds all of it. A bare LF (one not
    /// preceded by CR) inside the head is refused as soon as it is seen: such
    /// a head never ends at `\r\n\r\n`, and RFC 9112 §2.2 lets a recipient
    /// refuse it rather than guess. A bare LF past `max_bytes` is never
    /// looked at: such a head is `HeadTooLarge` whether it arrives whole or
    /// byte by byte.
    fn head_len(&mut self, buf: &[u8]) -> Result<Option<usize>, HandshakeError> {
        let from = self.scanned.saturating_sub(3);
        let window = buf.get(from..).unwrap_or_default();
        let end = window
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|at| from + at + 4);
        // Only the first `max_bytes` are judged, so a head too large and
        // malformed past the limit gets the same answer however it arrives.
        let judged = end.unwrap_or(buf.len()).min(self.max_bytes);
        let fresh = buf.get(self.scanned..judged).unwrap_or_default();
        for (i, _) in fresh.iter().enumerate().filter(|(_, b)| **b == b'\n') {
            let at = self.scanned + i;
            if at == 0 || buf.get(at - 1) != Some(&b'\r') {
                return Err(HandshakeError::Malformed);
            }
        }
        if let Some(len) = end {
            return if len > self.max_bytes {
                Err(HandshakeError::HeadTooLarge)
            } else {
                Ok(Some(len))
            };
        }
        self.scanned = buf.len();
        if buf.len() >= self.max_bytes {
            return Err(HandshakeError::HeadTooLarge);
        }
        Ok(None)
    }

    fn check_deadline(&self, now: Instant) -> Result<(), HandshakeError> {
        if now >= self.deadline {
            Err(HandshakeError::Timeout)
        } else {
            Ok(())
        }
    }
}

/// The reason phrase for the statuses a WebSocket server sends.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Writes a complete non-101 response with a short plain-text body and
/// `Connection: close`. Used for handshake failures and application rejects.
pub(crate) fn write_error_response(
    status: u16,
    extra: &[(&str, &[u8])],
    body: &str,
    out: &mut [u8],
) -> Result<usize, Misuse> {
    check_extra(extra)?;
    let status = status.clamp(100, 999);
    write_head(out, |w| {
        w.put(b"HTTP/1.1 ");
        w.number(status.into());
        w.put(b" ");
        w.put(reason_phrase(status).as_bytes());
        w.put(b"\r\n");
        if status == 426 {
            w.header("Upgrade", b"websocket");
        }
        for (name, value) in extra {
            w.header(name, value);
        }
        w.header("Connection", b"close");
        w.header("Content-Type", b"text/plain; charset=utf-8");
        w.put(b"Content-Length: ");
        w.number(body.len() + 1);
        w.put(b"\r\n\r\n");
        w.put(body.as_bytes());
        w.put(b"\n");
    })
}

impl HandshakeError {
    /// Writes the complete HTTP error response for a server-side failure into
    /// `out` and returns its length (0 for client-side failures).
    ///
    /// ```
    /// use wsproto::HandshakeError;
    /// let mut out = [0u8; 256];
    /// let n = HandshakeError::UnsupportedVersion.write_response(&mut out).unwrap();
    /// let text = core::str::from_utf8(&out[..n]).unwrap();
    /// assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    /// assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"));
    /// ```
    pub fn write_response(self, out: &mut [u8]) -> Result<usize, Misuse> {
        match self.status() {
            None => Ok(0),
            Some(status) => {
                let extra: &[(&str, &[u8])] = if status == 426 {
                    &[("Sec-WebSocket-Version", b"13")]
                } else {
                    &[]
                };
                write_error_response(status, extra, self.reason(), out)
            }
        }
    }
}
