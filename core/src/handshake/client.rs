//! The client side: write the upgrade request, then validate the 101 response.

use super::accept_key::{accept_key, encode_key, ACCEPT_LEN};
use super::headers::{check_extra, has_token, list_items, single, trim, values, write_head};
use super::HeadScanner;
use crate::config::Config;
use crate::error::{HandshakeError, Misuse};
#[cfg(feature = "deflate")]
use crate::extensions::deflate::{
    params::MAX_VALUE_LEN, validate_response, write_offer, Agreed, DeflateConfig, ParamError,
};
use crate::time::Instant;
use httparse::Header;
use rand_core::RngCore;

/// What the client asks for.
#[derive(Clone, Copy, Debug)]
pub struct ClientRequest<'a> {
    /// The `Host` header: host, plus `:port` when not the default.
    pub host: &'a str,
    /// The request target, e.g. `/chat`.
    pub path: &'a str,
    /// An `Origin` header, if this client speaks for a web origin.
    pub origin: Option<&'a str>,
    /// Subprotocols to offer, most preferred first.
    pub protocols: &'a [&'a str],
    /// Extra request headers (authorization, cookies...).
    pub headers: &'a [(&'a str, &'a [u8])],
}

impl<'a> ClientRequest<'a> {
    /// A request for `path` on `host` with nothing else.
    pub const fn new(host: &'a str, path: &'a str) -> Self {
        ClientRequest {
            host,
            path,
            origin: None,
            protocols: &[],
            headers: &[],
        }
    }
}

/// A client's opening handshake in progress.
///
/// ```
/// use wsproto::handshake::{ClientHandshake, ClientRequest};
/// use wsproto::{Config, Instant};
/// # struct Fixed;
/// # impl rand_core::RngCore for Fixed {
/// #     fn next_u32(&mut self) -> u32 { 0 }
/// #     fn next_u64(&mut self) -> u64 { 0 }
/// #     fn fill_bytes(&mut self, d: &mut [u8]) { d.copy_from_slice(b"the sample nonce") }
/// # }
/// let request = ClientRequest::new("server.example.com", "/chat");
/// let mut out = [0u8; 512];
/// let (mut handshake, n) = ClientHandshake::new(&request, &mut Fixed, &Config::default(), Instant::ZERO, &mut out).unwrap();
/// assert!(out[..n].starts_with(b"GET /chat HTTP/1.1\r\n"));
///
/// let response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
///     Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
/// let mut headers = [httparse::EMPTY_HEADER; 16];
/// let accepted = handshake.parse(&request, response, &mut headers).unwrap().expect("complete");
/// assert_eq!(accepted.protocol(), None);
/// assert_eq!(accepted.head_len(), response.len());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientHandshake {
    expected_accept: [u8; ACCEPT_LEN],
    scanner: HeadScanner,
    /// The permessage-deflate offer made, if any.
    #[cfg(feature = "deflate")]
    deflate: Option<DeflateConfig>,
}

impl ClientHandshake {
    /// Writes the request into `out` with a fresh key from `rng` and returns
    /// the handshake state plus the request length. `out` is untouched on error.
    pub fn new<R: RngCore + ?Sized>(
        request: &ClientRequest<'_>,
        rng: &mut R,
        config: &Config,
        now: Instant,
        out: &mut [u8],
    ) -> Result<(Self, usize), Misuse> {
        Self::build(request, None, rng, config, now, out)
    }

    /// [`ClientHandshake::new`], also offering permessage-deflate (RFC 7692)
    /// as `deflate` allows ([`crate::extensions::deflate::write_offer`]).
    /// The response may then accept it: [`Response::deflate`] holds the
    /// agreement, validated against this offer; any other extension in the
    /// response is still refused.
    #[cfg(feature = "deflate")]
    pub fn new_with_deflate<R: RngCore + ?Sized>(
        request: &ClientRequest<'_>,
        deflate: &DeflateConfig,
        rng: &mut R,
        config: &Config,
        now: Instant,
        out: &mut [u8],
    ) -> Result<(Self, usize), Misuse> {
        let mut offer = [0u8; MAX_VALUE_LEN];
        let n = write_offer(deflate, &mut offer).map_err(|_| Misuse::BufferTooSmall {
            required: MAX_VALUE_LEN,
        })?;
        let (mut handshake, len) = Self::build(request, offer.get(..n), rng, config, now, out)?;
        handshake.deflate = Some(*deflate);
        Ok((handshake, len))
    }

    fn build<R: RngCore + ?Sized>(
        request: &ClientRequest<'_>,
        extensions: Option<&[u8]>,
        rng: &mut R,
        config: &Config,
        now: Instant,
        out: &mut [u8],
    ) -> Result<(Self, usize), Misuse> {
        check_extra(request.headers)?;
        let valid_protocols = request
            .protocols
            .iter()
            .all(|p| super::headers::is_token(p.as_bytes()));
        let valid_fields = [
            request.host,
            request.path,
            request.origin.unwrap_or_default(),
        ]
        .iter()
        .all(|v| super::headers::is_field_value(v.as_bytes()) && !v.contains(' '));
        if !valid_protocols
            || !valid_fields
            || request.host.is_empty()
            || !request.path.starts_with('/')
        {
            return Err(Misuse::InvalidHeader);
        }
        let mut nonce = [0u8; 16];
        rng.fill_bytes(&mut nonce);
        let key = encode_key(nonce);
        let n = write_head(out, |w| {
            w.put(b"GET ");
            w.put(request.path.as_bytes());
            w.put(b" HTTP/1.1\r\n");
            w.header("Host", request.host.as_bytes());
            w.header("Upgrade", b"websocket");
            w.header("Connection", b"Upgrade");
            w.header("Sec-WebSocket-Key", &key);
            w.header("Sec-WebSocket-Version", b"13");
            if let Some(origin) = request.origin {
                w.header("Origin", origin.as_bytes());
            }
            if let Some((first, rest)) = request.protocols.split_first() {
                w.put(b"Sec-WebSocket-Protocol: ");
                w.put(first.as_bytes());
                for p in rest {
                    w.put(b", ");
                    w.put(p.as_bytes());
                }
                w.put(b"\r\n");
            }
            if let Some(extensions) = extensions {
                w.header("Sec-WebSocket-Extensions", extensions);
            }
            for (name, value) in request.headers {
                w.header(name, value);
            }
            w.put(b"\r\n");
        })?;
        let scanner = HeadScanner::new(
            config.limits.max_handshake_bytes,
            now + config.handshake_timeout,
        );
        Ok((
            ClientHandshake {
                expected_accept: accept_key(&key),
                scanner,
                #[cfg(feature = "deflate")]
                deflate: None,
            },
            n,
        ))
    }

    /// Looks at everything received so far and returns the validated
    /// response once its head is complete, or `None` while more is needed.
    /// `request` must be the one given to [`ClientHandshake::new`].
    pub fn parse<'a>(
        &mut self,
        request: &ClientRequest<'_>,
        buf: &'a [u8],
        headers: &'a mut [Header<'a>],
    ) -> Result<Option<Response<'a>>, HandshakeError> {
        let Some(head_len) = self.scanner.head_len(buf)? else {
            return Ok(None);
        };
        let head = buf.get(..head_len).unwrap_or_default();
        let mut res = httparse::Response::new(headers);
        match res.parse(head) {
            // httparse also ends a head at a bare-LF empty line (`\r\n\n`); the
            // scanner only at `\r\n\r\n`. A head that httparse ends early would
            // leave unparsed bytes inside `head_len`: refuse it.
            Ok(httparse::Status::Complete(n)) if n == head_len => {}
            Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::TooManyHeaders),
            _ => return Err(HandshakeError::Malformed),
        }
        let Some(code) = res.code else {
            return Err(HandshakeError::Malformed);
        };
        if code != 101 {
            return Err(HandshakeError::UnexpectedStatus(code));
        }
        let headers: &'a [Header<'a>] = res.headers;
        if !has_token(headers, "Upgrade", "websocket") {
            return Err(HandshakeError::MissingUpgrade);
        }
        if !has_token(headers, "Connection", "upgrade") {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        match single(headers, "Sec-WebSocket-Accept") {
            Ok(Some(accept)) if trim(accept) == self.expected_accept => {}
            _ => return Err(HandshakeError::InvalidAccept),
        }
        let choices = check_choices(headers, request.protocols, self.deflate_offer())?;
        Ok(Some(Response {
            protocol: choices.protocol,
            headers,
            head_len,
            #[cfg(feature = "deflate")]
            deflate: choices.deflate,
        }))
    }

    #[cfg(feature = "deflate")]
    fn deflate_offer(&self) -> DeflateOffer {
        self.deflate
    }

    #[cfg(not(feature = "deflate"))]
    fn deflate_offer(&self) -> DeflateOffer {}

    /// The handshake deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(self.scanner.deadline)
    }

    /// Fails with [`HandshakeError::Timeout`] once `now` reaches the deadline.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), HandshakeError> {
        self.scanner.check_deadline(now)
    }
}

/// The permessage-deflate offer a client made (`()` without the feature).
#[cfg(feature = "deflate")]
pub(super) type DeflateOffer = Option<DeflateConfig>;
/// The permessage-deflate offer a client made (`()` without the feature).
#[cfg(not(feature = "deflate"))]
pub(super) type DeflateOffer = ();

/// What a server chose from a client's offers.
pub(super) struct Choices<'a> {
    pub(super) protocol: Option<&'a str>,
    #[cfg(feature = "deflate")]
    pub(super) deflate: Option<Agreed>,
}

/// Checks the server's choice of subprotocol and extensions against what the
/// client offered: the same rules over HTTP/1.1 (RFC 6455 §4.1) and over
/// HTTP/2 (RFC 8441 §5).
pub(super) fn check_choices<'a>(
    headers: &'a [Header<'a>],
    offered_protocols: &[&str],
    #[cfg_attr(not(feature = "deflate"), allow(unused_variables))] offer: DeflateOffer,
) -> Result<Choices<'a>, HandshakeError> {
    let protocol = match single(headers, "Sec-WebSocket-Protocol") {
        Ok(None) => None,
        Ok(Some(value)) => {
            let chosen = core::str::from_utf8(trim(value))
                .map_err(|_| HandshakeError::UnofferedSubprotocol)?;
            if !offered_protocols.contains(&chosen) {
                return Err(HandshakeError::UnofferedSubprotocol);
            }
            Some(chosen)
        }
        Err(()) => return Err(HandshakeError::UnofferedSubprotocol),
    };
    let mut extensions =
        values(headers, "Sec-WebSocket-Extensions").filter(|v| list_items(v).next().is_some());
    #[cfg(feature = "deflate")]
    let deflate = match (offer, extensions.next()) {
        (_, None) => None,
        (None, Some(_)) => return Err(HandshakeError::UnrequestedExtension),
        (Some(offer), Some(value)) => {
            if extensions.next().is_some() {
                // permessage-deflate may be answered once, in one line.
                return Err(HandshakeError::InvalidExtension);
            }
            let value =
                core::str::from_utf8(value).map_err(|_| HandshakeError::InvalidExtension)?;
            match validate_response(value, &offer) {
                Ok(agreed) => Some(agreed),
                Err(ParamError::UnexpectedExtension) => {
                    return Err(HandshakeError::UnrequestedExtension)
                }
                Err(_) => return Err(HandshakeError::InvalidExtension),
            }
        }
    };
    #[cfg(not(feature = "deflate"))]
    if extensions.next().is_some() {
        return Err(HandshakeError::UnrequestedExtension);
    }
    Ok(Choices {
        protocol,
        #[cfg(feature = "deflate")]
        deflate,
    })
}

/// A valid `101 Switching Protocols` response, borrowing the caller's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Response<'a> {
    protocol: Option<&'a str>,
    headers: &'a [Header<'a>],
    head_len: usize,
    #[cfg(feature = "deflate")]
    deflate: Option<Agreed>,
}

impl<'a> Response<'a> {
    /// The subprotocol the server chose, if any (always one the client offered).
    pub fn protocol(&self) -> Option<&'a str> {
        self.protocol
    }

    /// Every header line, in order.
    pub fn headers(&self) -> &'a [Header<'a>] {
        self.headers
    }

    /// Length of the response head: later bytes are WebSocket frames.
    pub fn head_len(&self) -> usize {
        self.head_len
    }

    /// The permessage-deflate agreement, when the handshake offered it
    /// ([`ClientHandshake::new_with_deflate`]) and the server accepted; build
    /// a [`crate::extensions::deflate::Deflate`] from it for
    /// [`crate::Connection::with_extension`]. `None`: no compression.
    #[cfg(feature = "deflate")]
    pub fn deflate(&self) -> Option<Agreed> {
        self.deflate
    }
}
