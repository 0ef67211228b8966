//! Taking over an upgrade that hyper 1.x (or a framework on it) has parsed:
//! an HTTP/1.1 `GET` with `Upgrade: websocket`, or an HTTP/2 extended
//! CONNECT with `:protocol = websocket` (RFC 8441; turn it on with
//! `enable_connect_protocol()` on hyper's HTTP/2 builder).
//!
//! [`accept`] validates the request with the core's rules (the same 400 and
//! 426 answers as [`crate::tokio::accept_with`]) and negotiates the
//! subprotocol and permessage-deflate from [`ServerOptions`]. Send
//! [`Upgrade::response`] (101, or 200 over HTTP/2), and once hyper hands
//! the connection over, [`Upgrade::into_websocket`] gives the same
//! [`crate::tokio::WebSocket`] as `accept` does.
//!
//! ```no_run
//! use http_body_util::Empty;
//! use hyper::body::{Bytes, Incoming};
//! use wsproto_adapters::{upgrade, Message, ServerOptions};
//!
//! async fn handle(
//!     mut request: hyper::Request<Incoming>,
//! ) -> Result<hyper::Response<Empty<Bytes>>, std::convert::Infallible> {
//!     let upgrade = match upgrade::accept(&request, &ServerOptions::default()) {
//!         Ok(upgrade) => upgrade,
//!         Err(rejection) => return Ok(rejection.response().map(|_| Empty::new())),
//!     };
//!     let response = upgrade.response().map(|()| Empty::new());
//!     let on_upgrade = hyper::upgrade::on(&mut request);
//!     tokio::spawn(async move {
//!         let mut ws = upgrade.into_websocket(on_upgrade.await?)?;
//!         while let Ok(message) = ws.read().await {
//!             if let Message::Text(text) = message {
//!                 ws.send_text(&text).await?;
//!             }
//!         }
//!         Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
//!     });
//!     Ok(response)
//! }
//! # fn main() {}
//! ```
//! (`http-body-util` is only this example's choice of body type.)

use crate::driver::Driver;
use crate::handshake::{write_sized, Done};
use crate::rng::new_rng;
use crate::tokio::socket::WebSocket;
use crate::{Agreed, Error, MemoryBudget, ServerOptions};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;
use wsproto::handshake::{Accept, ExtendedConnect, PseudoHeaders, Request};
use wsproto::httparse::{self, Header};
use wsproto::{Config, HandshakeError, Role};

/// The WebSocket over a connection hyper handed over.
pub type UpgradedWebSocket = WebSocket<TokioIo<hyper::upgrade::Upgraded>>;

/// A valid WebSocket request, with what was agreed, waiting for hyper to
/// hand over the connection.
#[derive(Debug)]
pub struct Upgrade {
    response: Response<()>,
    protocol: Option<String>,
    deflate: Option<Agreed>,
    path: String,
    config: Config,
    budget: Option<crate::MemoryBudget>,
    shared: Option<crate::SharedDeflate>,
    level: crate::CompressionLevel,
}

/// A request that is not a valid WebSocket handshake: answer it with
/// [`Rejection::response`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    error: HandshakeError,
}

impl Rejection {
    /// What was wrong.
    pub fn error(&self) -> HandshakeError {
        self.error
    }

    /// The core's answer: 400, 426 (with `Sec-WebSocket-Version: 13`) or 431,
    /// with a short plain-text body saying why.
    pub fn response(&self) -> Response<String> {
        let status = self
            .error
            .status()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = Response::new(self.error.reason().to_owned());
        *response.status_mut() = status;
        if self.error == HandshakeError::UnsupportedVersion {
            response.headers_mut().insert(
                HeaderName::from_static("sec-websocket-version"),
                HeaderValue::from_static("13"),
            );
        }
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

impl From<Rejection> for Error {
    fn from(rejection: Rejection) -> Self {
        Error::Handshake(rejection.error)
    }
}

/// Validates `request` as a WebSocket handshake and negotiates with
/// `options`. The body type does not matter: a handshake has no body.
pub fn accept<B>(
    request: &http::Request<B>,
    options: &ServerOptions,
) -> Result<Upgrade, Rejection> {
    let protocol = request
        .extensions()
        .get::<hyper::ext::Protocol>()
        .map(hyper::ext::Protocol::as_str);
    accept_parts(
        request.method(),
        request.uri(),
        request.version(),
        protocol,
        request.headers(),
        options,
    )
}

/// [`accept`] from the pieces of a request (`protocol`: HTTP/2's
/// `:protocol`, which hyper keeps as a request extension).
pub fn accept_parts(
    method: &Method,
    uri: &Uri,
    version: Version,
    protocol: Option<&str>,
    headers: &HeaderMap,
    options: &ServerOptions,
) -> Result<Upgrade, Rejection> {
    let fields = fields(headers);
    let reject = |error| Rejection { error };
    let (response, protocol, deflate, path) = if version == Version::HTTP_2 {
        let path = uri.path_and_query().map(|p| p.as_str());
        let authority = uri.authority().map(|a| a.as_str());
        let pseudo = PseudoHeaders {
            method: method.as_str(),
            protocol,
            scheme: uri.scheme_str(),
            path,
            authority,
        };
        let request = ExtendedConnect::from_parts(&pseudo, &fields).map_err(reject)?;
        let (chosen, deflate) = negotiate(
            options,
            || request.protocols(),
            |config| request.negotiate_deflate(config),
        );
        let accept = Accept {
            protocol: chosen.as_deref(),
            headers: &[],
        };
        let answer = match &deflate {
            Some(agreed) => request.accept_deflate(&accept, agreed),
            None => request.accept(&accept),
        }
        .map_err(|_| reject(HandshakeError::Malformed))?;
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::OK;
        for (name, value) in answer.headers() {
            insert(&mut response, name, value)?;
        }
        (response, chosen, deflate, request.path().to_owned())
    } else {
        let minor = match version {
            Version::HTTP_11 => 1,
            Version::HTTP_10 | Version::HTTP_09 => 0,
            _ => return Err(reject(HandshakeError::HttpVersion)),
        };
        let target = uri.to_string();
        let request =
            Request::from_parts(method.as_str(), &target, minor, &fields).map_err(reject)?;
        let (chosen, deflate) = negotiate(
            options,
            || request.protocols(),
            |config| request.negotiate_deflate(config),
        );
        let accept = Accept {
            protocol: chosen.as_deref(),
            headers: &[],
        };
        let head = write_sized(|out| match &deflate {
            Some(agreed) => request.accept_deflate(&accept, agreed, out),
            None => request.accept(&accept, out),
        })
        .map_err(|_| reject(HandshakeError::Malformed))?;
        let response = parse_response(&head)?;
        (response, chosen, deflate, request.path().to_owned())
    };
    Ok(Upgrade {
        response,
        protocol,
        deflate,
        path,
        config: options.config,
        budget: options.memory_budget.clone(),
        shared: options.deflate_memory.pool().cloned(),
        level: options.deflate_level,
    })
}

impl Upgrade {
    /// The answer to send: `101 Switching Protocols` over HTTP/1.1, `200`
    /// over HTTP/2, with the agreed subprotocol and extension.
    pub fn response(&self) -> Response<()> {
        let mut response = Response::new(());
        *response.status_mut() = self.response.status();
        *response.version_mut() = self.response.version();
        response.headers_mut().clone_from(self.response.headers());
        response
    }

    /// The subprotocol agreed on, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The permessage-deflate agreement, if any.
    pub fn deflate(&self) -> Option<&Agreed> {
        self.deflate.as_ref()
    }

    /// The path (and query) the request asked for.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The WebSocket over the connection hyper handed over
    /// (`hyper::upgrade::on(request).await`).
    pub fn into_websocket(
        self,
        upgraded: hyper::upgrade::Upgraded,
    ) -> Result<UpgradedWebSocket, Error> {
        self.into_websocket_over(TokioIo::new(upgraded))
    }

    /// The WebSocket over any stream whose handshake was answered elsewhere
    /// with [`Upgrade::response`].
    pub fn into_websocket_over<S>(self, stream: S) -> Result<WebSocket<S>, Error>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let done = Done {
            protocol: self.protocol,
            leftover: Vec::new(),
            response: Vec::new(),
            path: self.path,
            deflate: self.deflate,
            budget: self.budget,
            shared: self.shared,
            level: self.level,
        };
        let driver = Driver::new(Role::Server, self.config, new_rng()?, done)?;
        Ok(WebSocket::from_driver(stream, driver))
    }
}

/// A WebSocket over `stream`, whose opening handshake was done elsewhere
/// (by a proxy, an HTTP/2 client, a test): `role` is this end's side,
/// `protocol` and `deflate` what that handshake agreed on. Bytes read from
/// `stream` must start at the first frame.
///
/// ```no_run
/// # async fn run(stream: tokio::net::TcpStream) -> Result<(), wsproto_adapters::Error> {
/// use wsproto_adapters::upgrade::websocket_over;
/// use wsproto_adapters::wsproto::{Config, Role};
/// let mut ws = websocket_over(stream, Role::Client, Config::default(), None, None)?;
/// ws.send_text("hello").await?;
/// # Ok(())
/// # }
/// ```
///
/// The connection draws from no shared memory budget (only the core's own
/// per-connection [`wsproto::Limits::max_buffered`] applies): to charge it to
/// one, use [`websocket_over_with`].
pub fn websocket_over<S>(
    stream: S,
    role: Role,
    config: Config,
    protocol: Option<String>,
    deflate: Option<Agreed>,
) -> Result<WebSocket<S>, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    websocket_over_with(stream, role, config, protocol, deflate, None)
}

/// [`websocket_over`], with the connection's buffers charged to `budget`
/// (a clone of a [`MemoryBudget`] shared with other connections, as
/// [`ServerOptions::memory_budget`] and [`crate::ClientOptions::memory_budget`]
/// are): a message that needs more than is left is refused, and the
/// connection closed with 1013 (see [`crate::budget`]). `None` is
/// [`websocket_over`].
///
/// ```no_run
/// # async fn run(stream: tokio::net::TcpStream) -> Result<(), wsproto_adapters::Error> {
/// use wsproto_adapters::upgrade::websocket_over_with;
/// use wsproto_adapters::wsproto::Role;
/// use wsproto_adapters::ServerOptions;
/// // One budget for every connection of the server, however they arrive.
/// let options = ServerOptions::default().with_memory_budget(256 << 20);
/// let mut ws = websocket_over_with(
///     stream,
///     Role::Server,
///     options.config,
///     None,
///     None,
///     options.memory_budget.clone(),
/// )?;
/// let message = ws.read().await?;
/// # let _ = message;
/// # Ok(())
/// # }
/// ```
pub fn websocket_over_with<S>(
    stream: S,
    role: Role,
    config: Config,
    protocol: Option<String>,
    deflate: Option<Agreed>,
    budget: Option<MemoryBudget>,
) -> Result<WebSocket<S>, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let done = Done {
        protocol,
        leftover: Vec::new(),
        response: Vec::new(),
        path: String::new(),
        deflate,
        budget,
        shared: None,
        level: crate::CompressionLevel::Default,
    };
    let driver = Driver::new(role, config, new_rng()?, done)?;
    Ok(WebSocket::from_driver(stream, driver))
}

/// What the server agrees to: the first of its subprotocols that the client
/// offered, and permessage-deflate within its settings.
fn negotiate<'a, I: Iterator<Item = &'a str>>(
    options: &ServerOptions,
    offered: impl Fn() -> I,
    deflate: impl Fn(&wsproto::extensions::deflate::DeflateConfig) -> Option<Agreed>,
) -> (Option<String>, Option<Agreed>) {
    let chosen = choose(&options.protocols, offered);
    (
        chosen,
        options.negotiated_deflate().as_ref().and_then(deflate),
    )
}

/// The first of the server's subprotocols that the client offered.
fn choose<'a, I: Iterator<Item = &'a str>>(
    ours: &[String],
    offered: impl Fn() -> I,
) -> Option<String> {
    ours.iter()
        .find(|p| offered().any(|o| o == p.as_str()))
        .cloned()
}

/// The request's fields as the core reads them (values as bytes: the core
/// judges them).
fn fields(headers: &HeaderMap) -> Vec<Header<'_>> {
    headers
        .iter()
        .map(|(name, value)| Header {
            name: name.as_str(),
            value: value.as_bytes(),
        })
        .collect()
}

/// The core's 101 head as an `http::Response` hyper can send.
fn parse_response(head: &[u8]) -> Result<Response<()>, Rejection> {
    let malformed = Rejection {
        error: HandshakeError::Malformed,
    };
    let count = head.windows(2).filter(|w| w == b"\r\n").count();
    let mut slots = vec![httparse::EMPTY_HEADER; count];
    let mut parsed = httparse::Response::new(&mut slots);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(malformed),
    }
    let status = parsed
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(malformed)?;
    let mut response = Response::new(());
    *response.status_mut() = status;
    for header in parsed.headers.iter() {
        insert(&mut response, header.name, header.value)?;
    }
    Ok(response)
}

fn insert(response: &mut Response<()>, name: &str, value: &[u8]) -> Result<(), Rejection> {
    let malformed = Rejection {
        error: HandshakeError::Malformed,
    };
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| malformed)?;
    let value = HeaderValue::from_bytes(value).map_err(|_| malformed)?;
    response.headers_mut().append(name, value);
    Ok(())
}
