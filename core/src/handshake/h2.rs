//! The opening handshake over HTTP/2 (RFC 8441): an extended CONNECT with
//! `:protocol = websocket` opens one stream that then carries WebSocket
//! frames, and `200` accepts it. There is no key and no accept hash (the
//! `:protocol` pseudo-header does their job) and no `Upgrade`/`Connection`
//! headers (HTTP/2 forbids connection-specific fields); the version,
//! subprotocol and permessage-deflate rules are those of HTTP/1.1.
//!
//! The core sees no HTTP/2 frames: the caller's HTTP/2 implementation
//! decodes the request's pseudo-headers and fields and hands them over
//! ([`ExtendedConnect::from_parts`]), then sends the status and headers this
//! module returns. The frames that follow on the stream go to a
//! [`crate::Connection`] as with HTTP/1.1.
//!
//! ```
//! use wsproto::handshake::{Accept, ExtendedConnect, PseudoHeaders};
//!
//! let pseudo = PseudoHeaders {
//!     method: "CONNECT",
//!     protocol: Some("websocket"),
//!     scheme: Some("https"),
//!     path: Some("/chat"),
//!     authority: Some("example.com"),
//! };
//! let fields = [
//!     httparse::Header { name: "sec-websocket-version", value: b"13" },
//!     httparse::Header { name: "sec-websocket-protocol", value: b"chat, superchat" },
//! ];
//! let request = ExtendedConnect::from_parts(&pseudo, &fields).unwrap();
//! assert_eq!(request.path(), "/chat");
//! let response = request.accept(&Accept { protocol: Some("chat"), ..Accept::default() }).unwrap();
//! assert_eq!(response.status(), 200);
//! let headers: Vec<_> = response.headers().collect();
//! assert_eq!(headers, [("sec-websocket-protocol", &b"chat"[..])]);
//! ```

use super::client::{check_choices, ClientRequest, DeflateOffer};
use super::headers::{check_extra, is_field_value, is_token, single, trim, values};
use super::server::Accept;
use crate::error::{HandshakeError, Misuse};
#[cfg(feature = "deflate")]
use crate::extensions::deflate::{params::MAX_VALUE_LEN, write_offer, Agreed, DeflateConfig};
use httparse::Header;

/// Fields that describe one hop of an HTTP/1.1 connection; an HTTP/2 request
/// carrying any of them is malformed (RFC 9113 §8.2.2).
const CONNECTION_SPECIFIC: [&str; 5] = [
    "connection",
    "upgrade",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
];

/// The pseudo-header fields of an HTTP/2 request, as the caller's HTTP/2
/// implementation decoded them (`None` when absent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PseudoHeaders<'a> {
    /// `:method`; `CONNECT` for a WebSocket.
    pub method: &'a str,
    /// `:protocol` (RFC 8441 §4); `websocket` for a WebSocket.
    pub protocol: Option<&'a str>,
    /// `:scheme`: `https` (or `http` on a cleartext connection).
    pub scheme: Option<&'a str>,
    /// `:path`: the path and query, e.g. `/chat?room=1`.
    pub path: Option<&'a str>,
    /// `:authority`: host and optional port.
    pub authority: Option<&'a str>,
}

/// A valid extended CONNECT that opens a WebSocket (RFC 8441 §4–5).
#[derive(Clone, Copy, Debug)]
pub struct ExtendedConnect<'a> {
    scheme: &'a str,
    path: &'a str,
    authority: &'a str,
    headers: &'a [Header<'a>],
}

impl<'a> ExtendedConnect<'a> {
    /// Validates a request another HTTP/2 implementation has decoded. The
    /// errors map to statuses as over HTTP/1.1 ([`HandshakeError::status`]):
    /// 400 for a request that is not a WebSocket CONNECT or breaks a rule,
    /// 426 for a `Sec-WebSocket-Version` other than 13 (answer it with
    /// `sec-websocket-version: 13`).
    ///
    /// ```
    /// use wsproto::handshake::{ExtendedConnect, PseudoHeaders};
    /// use wsproto::HandshakeError;
    ///
    /// let pseudo = PseudoHeaders {
    ///     method: "CONNECT",
    ///     protocol: None, // a plain CONNECT: a tunnel, not a WebSocket
    ///     authority: Some("example.com:443"),
    ///     ..PseudoHeaders::default()
    /// };
    /// let fields = [httparse::Header { name: "sec-websocket-version", value: b"13" }];
    /// let refused = ExtendedConnect::from_parts(&pseudo, &fields).unwrap_err();
    /// assert_eq!(refused, HandshakeError::NotExtendedConnect);
    /// assert_eq!(refused.status(), Some(400));
    /// ```
    pub fn from_parts(
        pseudo: &PseudoHeaders<'a>,
        headers: &'a [Header<'a>],
    ) -> Result<Self, HandshakeError> {
        let is_websocket = pseudo
            .protocol
            .is_some_and(|p| p.eq_ignore_ascii_case("websocket"));
        if pseudo.method != "CONNECT" || !is_websocket {
            return Err(HandshakeError::NotExtendedConnect);
        }
        let scheme = match pseudo.scheme {
            Some(s) if s.eq_ignore_ascii_case("https") || s.eq_ignore_ascii_case("http") => s,
            _ => return Err(HandshakeError::InvalidPseudoHeaders),
        };
        let path = match pseudo.path {
            Some(p)
                if p.starts_with('/')
                    && is_field_value(p.as_bytes())
                    && !p.contains(['#', ' ']) =>
            {
                p
            }
            _ => return Err(HandshakeError::InvalidPseudoHeaders),
        };
        let authority = match pseudo.authority {
            Some(a) if is_authority(a) => a,
            _ => return Err(HandshakeError::InvalidPseudoHeaders),
        };
        // RFC 9113 §8.3.1: a Host that names another entity than
        // `:authority` makes the request malformed.
        match single(headers, "Host") {
            Ok(None) => {}
            Ok(Some(host)) if trim(host).eq_ignore_ascii_case(authority.as_bytes()) => {}
            _ => return Err(HandshakeError::InvalidPseudoHeaders),
        }
        if headers.iter().any(|h| {
            CONNECTION_SPECIFIC
                .iter()
                .any(|name| h.name.eq_ignore_ascii_case(name))
        }) {
            return Err(HandshakeError::ConnectionSpecificHeader);
        }
        if values(headers, "Content-Length").any(|v| trim(v) != b"0") {
            return Err(HandshakeError::RequestBody);
        }
        // RFC 8441 §5: the key and accept hash are superseded by
        // `:protocol`; a key here means a client mixing up the two
        // handshakes, and answering it could mislead its checks.
        if values(headers, "Sec-WebSocket-Key").next().is_some() {
            return Err(HandshakeError::KeyOverHttp2);
        }
        match single(headers, "Sec-WebSocket-Version") {
            Ok(None) => return Err(HandshakeError::MissingVersion),
            Ok(Some(v)) if trim(v) == b"13" => {}
            _ => return Err(HandshakeError::UnsupportedVersion),
        }
        Ok(ExtendedConnect {
            scheme,
            path,
            authority,
            headers,
        })
    }

    /// `:path`: the path and query the request asks for.
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// `:authority`: the host (and port) the request is for.
    pub fn authority(&self) -> &'a str {
        self.authority
    }

    /// `:scheme`: `https` or `http`.
    pub fn scheme(&self) -> &'a str {
        self.scheme
    }

    /// The `Origin` field (sent by browsers), for the application to check.
    pub fn origin(&self) -> Option<&'a [u8]> {
        super::headers::origin(self.headers)
    }

    /// Every regular field, in order.
    pub fn headers(&self) -> &'a [Header<'a>] {
        self.headers
    }

    /// The first field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        values(self.headers, name).next()
    }

    /// The offered subprotocols, in the client's order of preference.
    pub fn protocols(&self) -> impl Iterator<Item = &'a str> + 'a {
        super::headers::offered_protocols(self.headers)
    }

    /// The offered extensions, one per list element, with their parameters.
    pub fn extensions(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        super::headers::offered_extensions(self.headers)
    }

    /// Server side of permessage-deflate, as
    /// [`crate::handshake::Request::negotiate_deflate`].
    #[cfg(feature = "deflate")]
    pub fn negotiate_deflate(&self, config: &DeflateConfig) -> Option<Agreed> {
        super::headers::negotiate_deflate(self.headers, config)
    }

    /// Accepts the request: the status and fields to send on the stream.
    pub fn accept(&self, accept: &Accept<'a>) -> Result<ConnectResponse<'a>, Misuse> {
        self.respond(accept, Extensions::default())
    }

    /// [`ExtendedConnect::accept`], answering permessage-deflate with
    /// `agreed` (from [`ExtendedConnect::negotiate_deflate`]).
    #[cfg(feature = "deflate")]
    pub fn accept_deflate(
        &self,
        accept: &Accept<'a>,
        agreed: &Agreed,
    ) -> Result<ConnectResponse<'a>, Misuse> {
        let mut extensions = Extensions::default();
        extensions.len =
            agreed
                .write_response(&mut extensions.value)
                .map_err(|_| Misuse::BufferTooSmall {
                    required: MAX_VALUE_LEN,
                })?;
        self.respond(accept, extensions)
    }

    fn respond(
        &self,
        accept: &Accept<'a>,
        extensions: Extensions,
    ) -> Result<ConnectResponse<'a>, Misuse> {
        check_extra(accept.headers)?;
        if accept.headers.iter().any(|(name, _)| {
            CONNECTION_SPECIFIC
                .iter()
                .any(|c| name.eq_ignore_ascii_case(c))
        }) {
            return Err(Misuse::InvalidHeader);
        }
        if let Some(protocol) = accept.protocol {
            if !self.protocols().any(|p| p == protocol) {
                return Err(Misuse::ProtocolNotOffered);
            }
        }
        Ok(ConnectResponse {
            protocol: accept.protocol,
            extensions,
            extra: accept.headers,
        })
    }
}

/// The `sec-websocket-extensions` value of a response or offer, kept inline.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(feature = "deflate"), derive(Default))]
struct Extensions {
    #[cfg(feature = "deflate")]
    value: [u8; MAX_VALUE_LEN],
    #[cfg(feature = "deflate")]
    len: usize,
}

#[cfg(feature = "deflate")]
impl Default for Extensions {
    fn default() -> Self {
        Extensions {
            value: [0; MAX_VALUE_LEN],
            len: 0,
        }
    }
}

impl Extensions {
    #[cfg(feature = "deflate")]
    fn get(&self) -> Option<&[u8]> {
        self.value.get(..self.len).filter(|v| !v.is_empty())
    }

    #[cfg(not(feature = "deflate"))]
    fn get(&self) -> Option<&[u8]> {
        None
    }
}

/// The server's answer to an [`ExtendedConnect`]: status 200 and these
/// fields (names in lowercase, as HTTP/2 requires).
#[derive(Clone, Copy, Debug)]
pub struct ConnectResponse<'a> {
    protocol: Option<&'a str>,
    extensions: Extensions,
    extra: &'a [(&'a str, &'a [u8])],
}

impl<'a> ConnectResponse<'a> {
    /// The status that accepts an extended CONNECT (RFC 8441 §5).
    pub const STATUS: u16 = 200;

    /// [`ConnectResponse::STATUS`].
    pub fn status(&self) -> u16 {
        Self::STATUS
    }

    /// The chosen subprotocol, if any.
    pub fn protocol(&self) -> Option<&'a str> {
        self.protocol
    }

    /// The fields to send: the subprotocol, the extension agreement, then the
    /// application's extra fields (their names as given: lowercase them for
    /// HTTP/2).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        let protocol = self
            .protocol
            .map(|p| ("sec-websocket-protocol", p.as_bytes()));
        let extensions = self
            .extensions
            .get()
            .map(|v| ("sec-websocket-extensions", v));
        protocol
            .into_iter()
            .chain(extensions)
            .chain(self.extra.iter().copied())
    }
}

/// The client side of RFC 8441: what to send in the extended CONNECT, then
/// the check of the server's answer.
///
/// ```
/// use wsproto::handshake::{ClientConnect, ClientRequest};
///
/// let mut request = ClientRequest::new("example.com", "/chat");
/// request.protocols = &["chat"];
/// let connect = ClientConnect::new(&request).unwrap();
/// let pseudo = connect.pseudo_headers(&request);
/// assert_eq!((pseudo.method, pseudo.protocol), ("CONNECT", Some("websocket")));
/// let fields: Vec<_> = connect.headers(&request).collect();
/// assert!(fields.contains(&("sec-websocket-version", &b"13"[..])));
///
/// let answer = [httparse::Header { name: "sec-websocket-protocol", value: b"chat" }];
/// let accepted = connect.check_response(&request, 200, &answer).unwrap();
/// assert_eq!(accepted.protocol(), Some("chat"));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ClientConnect {
    offer: Extensions,
    deflate: DeflateOffer,
}

impl ClientConnect {
    /// Checks `request` (as [`crate::handshake::ClientHandshake::new`]
    /// does) and prepares the CONNECT without compression.
    pub fn new(request: &ClientRequest<'_>) -> Result<Self, Misuse> {
        check_request(request)?;
        Ok(ClientConnect {
            offer: Extensions::default(),
            deflate: DeflateOffer::default(),
        })
    }

    /// [`ClientConnect::new`], also offering permessage-deflate.
    #[cfg(feature = "deflate")]
    pub fn new_with_deflate(
        request: &ClientRequest<'_>,
        deflate: &DeflateConfig,
    ) -> Result<Self, Misuse> {
        check_request(request)?;
        let mut offer = Extensions::default();
        offer.len = write_offer(deflate, &mut offer.value).map_err(|_| Misuse::BufferTooSmall {
            required: MAX_VALUE_LEN,
        })?;
        Ok(ClientConnect {
            offer,
            deflate: Some(*deflate),
        })
    }

    /// The pseudo-headers to send: `CONNECT`, `:protocol websocket`,
    /// `https`, and the request's path and host as `:path`/`:authority`.
    pub fn pseudo_headers<'a>(&self, request: &ClientRequest<'a>) -> PseudoHeaders<'a> {
        PseudoHeaders {
            method: "CONNECT",
            protocol: Some("websocket"),
            scheme: Some("https"),
            path: Some(request.path),
            authority: Some(request.host),
        }
    }

    /// The regular fields to send, names in lowercase: the version, the
    /// origin, one `sec-websocket-protocol` per offered subprotocol (a
    /// repeated field is the same list, RFC 9110 §5.3), the extension offer,
    /// then the request's extra headers.
    pub fn headers<'a>(
        &'a self,
        request: &'a ClientRequest<'a>,
    ) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let version = core::iter::once(("sec-websocket-version", &b"13"[..]));
        let origin = request.origin.map(|o| ("origin", o.as_bytes()));
        let protocols = request
            .protocols
            .iter()
            .map(|p| ("sec-websocket-protocol", p.as_bytes()));
        let extensions = self.offer.get().map(|v| ("sec-websocket-extensions", v));
        version
            .chain(origin)
            .chain(protocols)
            .chain(extensions)
            .chain(request.headers.iter().copied())
    }

    /// Checks the server's answer: status 200, a subprotocol the client
    /// offered (or none), and an extension answer that fits the offer.
    pub fn check_response<'a>(
        &self,
        request: &ClientRequest<'_>,
        status: u16,
        headers: &'a [Header<'a>],
    ) -> Result<ConnectAccepted<'a>, HandshakeError> {
        if status != ConnectResponse::STATUS {
            return Err(HandshakeError::UnexpectedStatus(status));
        }
        let choices = check_choices(headers, request.protocols, self.deflate)?;
        Ok(ConnectAccepted {
            protocol: choices.protocol,
            headers,
            #[cfg(feature = "deflate")]
            deflate: choices.deflate,
        })
    }
}

/// The same request checks as over HTTP/1.1, without the Host/target
/// spellings HTTP/2 replaces with pseudo-headers.
fn check_request(request: &ClientRequest<'_>) -> Result<(), Misuse> {
    check_extra(request.headers)?;
    let valid = request.protocols.iter().all(|p| is_token(p.as_bytes()))
        && is_authority(request.host)
        && request.path.starts_with('/')
        && [request.path, request.origin.unwrap_or_default()]
            .iter()
            .all(|v| is_field_value(v.as_bytes()) && !v.contains(' '));
    if valid {
        Ok(())
    } else {
        Err(Misuse::InvalidHeader)
    }
}

/// A server's acceptance of a client's extended CONNECT.
#[derive(Clone, Copy, Debug)]
pub struct ConnectAccepted<'a> {
    protocol: Option<&'a str>,
    headers: &'a [Header<'a>],
    #[cfg(feature = "deflate")]
    deflate: Option<Agreed>,
}

impl<'a> ConnectAccepted<'a> {
    /// The subprotocol the server chose, if any (always one offered).
    pub fn protocol(&self) -> Option<&'a str> {
        self.protocol
    }

    /// Every field of the answer, in order.
    pub fn headers(&self) -> &'a [Header<'a>] {
        self.headers
    }

    /// The permessage-deflate agreement, when offered and accepted.
    #[cfg(feature = "deflate")]
    pub fn deflate(&self) -> Option<Agreed> {
        self.deflate
    }
}

/// A non-empty `host[:port]` with no user info and nothing that cannot
/// appear in an authority.
fn is_authority(authority: &str) -> bool {
    !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:[]!$&'()*+,;=%".contains(&b))
}
