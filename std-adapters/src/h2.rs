//! The client side of WebSockets over HTTP/2 (RFC 8441): one HTTP/2
//! connection, many WebSockets, each an extended CONNECT stream.
//!
//! [`Http2Connection::connect`] opens the connection: HTTP/2 with prior
//! knowledge (h2c) for `ws://`, TLS with ALPN `h2` for `wss://` (feature
//! `rustls`). It waits for the server's SETTINGS and fails with
//! [`NO_EXTENDED_CONNECT`] unless the server announced
//! `SETTINGS_ENABLE_CONNECT_PROTOCOL`. [`Http2Connection::open`] then sends
//! an extended CONNECT (`:protocol websocket`, version 13, the subprotocols
//! and permessage-deflate offer of [`ClientOptions`]), has the core check the
//! answer (`wsproto::handshake::ClientConnect::check_response`: a status
//! other than 200 is [`Error::Handshake`] with `UnexpectedStatus`) and gives
//! the same [`crate::tokio::WebSocket`] as the HTTP/1.1 drivers, over
//! hyper's upgraded stream.
//!
//! ```no_run
//! # async fn run() -> Result<(), wsproto_adapters::Error> {
//! use wsproto_adapters::h2::Http2Connection;
//! use wsproto_adapters::{ClientOptions, Message};
//!
//! let options = ClientOptions::default();
//! let conn = Http2Connection::connect("ws://127.0.0.1:9002/", &options).await?;
//! // Two WebSockets, two streams of one TCP connection.
//! let mut chat = conn.open("/chat", &options).await?;
//! let mut feed = conn.open("/feed", &options).await?;
//! chat.send_text("hello").await?;
//! if let Message::Text(reply) = chat.read().await? {
//!     println!("{reply}");
//! }
//! chat.close(1000, "").await?;
//! feed.close(1000, "").await?;
//! # Ok(())
//! # }
//! ```
//!
//! The connection runs on a task spawned on the current tokio runtime (so
//! the calls must be made inside one). It stays up while a handle (the
//! [`Http2Connection`] or a clone) or a WebSocket opened on it is alive, and
//! closes once they are all dropped.
//!
//! [`connect`] opens one connection for one WebSocket, for a client that
//! wants HTTP/2 without managing connections.

use crate::driver::Driver;
use crate::handshake::Done;
use crate::rng::new_rng;
use crate::tokio::socket::WebSocket;
use crate::upgrade::UpgradedWebSocket;
use crate::url::Url;
use crate::{ClientOptions, Error};
use hyper::body::{Body, Bytes, Frame};
use hyper::client::conn::http2::{Connection, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io::{self, ErrorKind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use wsproto::handshake::{ClientConnect, ClientRequest};
use wsproto::httparse::Header;
use wsproto::{HandshakeError, Role};

/// The message of the error [`Http2Connection::connect`] and
/// [`Http2Connection::open`] give when the server did not announce
/// `SETTINGS_ENABLE_CONNECT_PROTOCOL`.
pub const NO_EXTENDED_CONNECT: &str =
    "the server does not accept WebSockets over HTTP/2 (RFC 8441)";

/// The dispatcher half of hyper's client connection: it must be polled for
/// requests to go out, and it knows what the server's SETTINGS allowed.
type Dispatch = Connection<TokioIo<Watched<Box<dyn Transport>>>, NoBody, TokioExecutor>;

/// Any stream an HTTP/2 connection can run over.
pub trait Transport: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Transport for T {}

/// An HTTP/2 connection that opens WebSockets as streams.
///
/// Clones share the connection.
#[derive(Clone)]
pub struct Http2Connection {
    sender: SendRequest<NoBody>,
    dispatch: Arc<Mutex<Pin<Box<Dispatch>>>>,
    settings: watch::Receiver<bool>,
    scheme: &'static str,
    authority: String,
}

impl fmt::Debug for Http2Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http2Connection")
            .field("scheme", &self.scheme)
            .field("authority", &self.authority)
            .field("closed", &self.sender.is_closed())
            .finish()
    }
}

impl Http2Connection {
    /// Connects to the server of `url`: TCP (with `TCP_NODELAY`), then
    /// HTTP/2 with prior knowledge for `ws://`, or TLS with ALPN `h2`
    /// verified against the `webpki-roots` anchors for `wss://` (feature
    /// `rustls`; [`Http2Connection::connect_tls`] takes a configuration of
    /// your own). The URL's path is not used: [`Http2Connection::open`]
    /// names one per WebSocket.
    ///
    /// The connection is ready once the server's SETTINGS arrived, within
    /// `options.config.handshake_timeout` ([`HandshakeError::Timeout`]
    /// otherwise); without `SETTINGS_ENABLE_CONNECT_PROTOCOL` in them the
    /// result is an [`Error::Io`] of kind `Unsupported` saying
    /// [`NO_EXTENDED_CONNECT`].
    pub async fn connect(url: &str, options: &ClientOptions) -> Result<Self, Error> {
        let parsed = Url::parse(url)?;
        if parsed.secure {
            #[cfg(feature = "rustls")]
            return Self::connect_tls(url, options, crate::tls::session::default_client_config()?)
                .await;
            #[cfg(not(feature = "rustls"))]
            return Err(Error::Url(format!(
                "{url:?}: wss:// needs the `rustls` feature of wsproto-adapters \
                 (or open a TLS stream with ALPN h2 yourself and pass it to Http2Connection::handshake())"
            )));
        }
        let tcp = TcpStream::connect((parsed.host.as_str(), parsed.port)).await?;
        tcp.set_nodelay(true)?;
        Self::handshake(tcp, url, options).await
    }

    /// [`Http2Connection::connect`] to a `wss://` URL trusting what `config`
    /// trusts; ALPN offers only `h2` (whatever `config` had), and a server
    /// that does not agree on it is refused.
    #[cfg(feature = "rustls")]
    pub async fn connect_tls(
        url: &str,
        options: &ClientOptions,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<Self, Error> {
        let parsed = Url::parse(url)?;
        if !parsed.secure {
            return Err(Error::Url(format!(
                "{url:?}: TLS needs a wss:// URL (ws:// goes in the clear)"
            )));
        }
        let name = rustls::pki_types::ServerName::try_from(parsed.host.clone())
            .map_err(|e| Error::Url(format!("{url:?}: {e}")))?;
        let mut config = rustls::ClientConfig::clone(&config);
        config.alpn_protocols = vec![b"h2".to_vec()];
        let tcp = TcpStream::connect((parsed.host.as_str(), parsed.port)).await?;
        tcp.set_nodelay(true)?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tls = tokio::time::timeout(handshake_timeout(options), connector.connect(name, tcp))
            .await
            .map_err(|_| io::Error::new(ErrorKind::TimedOut, "the TLS handshake timed out"))??;
        if tls.get_ref().1.alpn_protocol() != Some(b"h2".as_slice()) {
            return Err(Error::Io(io::Error::new(
                ErrorKind::Unsupported,
                "the server did not agree on HTTP/2 (ALPN h2)",
            )));
        }
        Self::handshake(tls, url, options).await
    }

    /// Runs HTTP/2 over a stream already connected (and secured, if
    /// `url` is `wss://`) to the server of `url`, and waits for its
    /// SETTINGS as [`Http2Connection::connect`] does.
    pub async fn handshake<S: Transport>(
        stream: S,
        url: &str,
        options: &ClientOptions,
    ) -> Result<Self, Error> {
        let parsed = Url::parse(url)?;
        let (seen, settings) = watch::channel(false);
        let io = TokioIo::new(Watched::new(Box::new(stream) as Box<dyn Transport>, seen));
        let (sender, dispatch) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(hyper_error)?;
        let dispatch = Arc::new(Mutex::new(Box::pin(dispatch)));
        let driven = Arc::clone(&dispatch);
        tokio::spawn(poll_fn(move |cx| lock(&driven).as_mut().poll(cx)));
        let conn = Http2Connection {
            sender,
            dispatch,
            settings,
            scheme: if parsed.secure { "https" } else { "http" },
            authority: parsed.host_header(),
        };
        conn.settled(options).await?;
        Ok(conn)
    }

    /// Whether the server allows WebSockets over this connection
    /// (`SETTINGS_ENABLE_CONNECT_PROTOCOL`), as its latest SETTINGS said.
    pub fn accepts_websockets(&self) -> bool {
        lock(&self.dispatch).is_extended_connect_protocol_enabled()
    }

    /// Whether the connection has ended: no more WebSockets can be opened.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Opens a WebSocket on `target` (a path such as `/chat?room=1`, or a
    /// `ws://`/`wss://` URL on this connection's server, of which only the
    /// path is used) as a new stream, with the subprotocols, extra headers,
    /// origin, permessage-deflate offer, limits and memory budget of
    /// `options`. The answer must come within
    /// `options.config.handshake_timeout`. When the server's limit of
    /// concurrent streams is reached, the CONNECT waits (within that
    /// timeout) for another stream to end.
    ///
    /// Errors: [`Error::Handshake`] with `UnexpectedStatus(status)` when the
    /// server refuses (any status but 200), or another
    /// [`HandshakeError`] when its answer breaks a rule (a subprotocol or an
    /// extension that was not offered); [`Error::Io`] when the connection
    /// failed or the server does not accept WebSockets over HTTP/2
    /// ([`NO_EXTENDED_CONNECT`]).
    pub async fn open(
        &self,
        target: &str,
        options: &ClientOptions,
    ) -> Result<UpgradedWebSocket, Error> {
        if !self.accepts_websockets() {
            return Err(not_enabled());
        }
        let path = if target.starts_with('/') {
            target.to_owned()
        } else {
            Url::parse(target)?.path
        };
        match tokio::time::timeout(
            handshake_timeout(options),
            self.extended_connect(&path, options),
        )
        .await
        {
            Ok(result) => result,
            Err(_elapsed) => Err(Error::Handshake(HandshakeError::Timeout)),
        }
    }

    async fn extended_connect(
        &self,
        path: &str,
        options: &ClientOptions,
    ) -> Result<UpgradedWebSocket, Error> {
        let protocols: Vec<&str> = options.protocols.iter().map(String::as_str).collect();
        let headers: Vec<(&str, &[u8])> = options
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes()))
            .collect();
        let request = ClientRequest {
            host: &self.authority,
            path,
            origin: options.origin.as_deref(),
            protocols: &protocols,
            headers: &headers,
        };
        let connect = match &options.deflate {
            Some(offer) => ClientConnect::new_with_deflate(&request, offer)?,
            None => ClientConnect::new(&request)?,
        };
        let mut builder = http::Request::builder()
            .method(http::Method::CONNECT)
            .version(http::Version::HTTP_2)
            .uri(format!("{}://{}{}", self.scheme, self.authority, path));
        for (name, value) in connect.headers(&request) {
            builder = builder.header(name, value);
        }
        let mut hyper_request = builder.body(NoBody).map_err(|e| {
            Error::Io(io::Error::new(
                ErrorKind::InvalidInput,
                format!("extended CONNECT: {e}"),
            ))
        })?;
        hyper_request
            .extensions_mut()
            .insert(hyper::ext::Protocol::from_static("websocket"));
        let mut sender = self.sender.clone();
        sender.ready().await.map_err(hyper_error)?;
        let response = sender
            .send_request(hyper_request)
            .await
            .map_err(hyper_error)?;
        let fields: Vec<Header<'_>> = response
            .headers()
            .iter()
            .map(|(name, value)| Header {
                name: name.as_str(),
                value: value.as_bytes(),
            })
            .collect();
        let accepted = connect.check_response(&request, response.status().as_u16(), &fields)?;
        let protocol = accepted.protocol().map(str::to_owned);
        let deflate = accepted.deflate();
        drop(fields);
        let upgraded = hyper::upgrade::on(response).await.map_err(hyper_error)?;
        let done = Done {
            protocol,
            leftover: Vec::new(),
            response: Vec::new(),
            path: path.to_owned(),
            deflate,
            budget: options.memory_budget.clone(),
            shared: None,
            level: options.deflate_level,
        };
        let driver = Driver::new(Role::Client, options.config, new_rng()?, done)?;
        Ok(WebSocket::from_driver(TokioIo::new(upgraded), driver))
    }

    /// Waits for the server's first SETTINGS to be applied, then checks
    /// that they allow extended CONNECT.
    async fn settled(&self, options: &ClientOptions) -> Result<(), Error> {
        let mut settings = self.settings.clone();
        match tokio::time::timeout(handshake_timeout(options), settings.wait_for(|seen| *seen))
            .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(_closed)) => {
                return Err(Error::Io(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "the HTTP/2 connection ended before the server's SETTINGS",
                )))
            }
            Err(_elapsed) => return Err(Error::Handshake(HandshakeError::Timeout)),
        }
        if self.accepts_websockets() {
            Ok(())
        } else {
            Err(not_enabled())
        }
    }
}

/// Opens one HTTP/2 connection to the server of `url` and one WebSocket on
/// `url`'s path over it ([`Http2Connection::connect`] then
/// [`Http2Connection::open`]). The connection closes with the WebSocket.
pub async fn connect(url: &str, options: &ClientOptions) -> Result<UpgradedWebSocket, Error> {
    let conn = Http2Connection::connect(url, options).await?;
    conn.open(url, options).await
}

fn not_enabled() -> Error {
    Error::Io(io::Error::new(ErrorKind::Unsupported, NO_EXTENDED_CONNECT))
}

fn hyper_error(e: hyper::Error) -> Error {
    Error::Io(io::Error::other(e))
}

fn handshake_timeout(options: &ClientOptions) -> Duration {
    Duration::from_nanos(options.config.handshake_timeout.as_nanos())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The request body of an extended CONNECT: none, but the stream stays
/// open (hyper does not end a CONNECT's stream with its headers).
#[derive(Clone, Copy, Debug, Default)]
struct NoBody;

impl Body for NoBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        true
    }
}

/// The connection's stream, telling when the server's first SETTINGS have
/// been applied.
///
/// A server's connection preface is one SETTINGS frame (RFC 9113 §3.4),
/// the first thing it sends. hyper's HTTP/2 layer handles the frames it
/// has buffered (applying SETTINGS once their acknowledgement is queued)
/// before it reads the socket again, so the first read that starts after
/// that frame's last byte arrived means they are in force. Only the frame
/// header's length is looked at, to know where the frame ends.
struct Watched<S> {
    inner: S,
    /// Bytes read so far, counted until the first frame is complete.
    read: usize,
    /// The first 3 bytes: the first frame's payload length.
    length: [u8; 3],
    seen: Option<watch::Sender<bool>>,
}

impl<S> Watched<S> {
    fn new(inner: S, seen: watch::Sender<bool>) -> Self {
        Watched {
            inner,
            read: 0,
            length: [0; 3],
            seen: Some(seen),
        }
    }

    /// Where the first frame ends, once its header has arrived.
    fn first_frame_end(&self) -> Option<usize> {
        const HEADER: usize = 9;
        let [a, b, c] = self.length;
        (self.read >= HEADER)
            .then(|| HEADER + (usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c)))
    }

    fn count(&mut self, bytes: &[u8]) {
        for (i, byte) in bytes.iter().enumerate() {
            if let Some(slot) = self.length.get_mut(self.read.saturating_add(i)) {
                *slot = *byte;
            }
        }
        self.read = self.read.saturating_add(bytes.len());
    }
}

impl<S> fmt::Debug for Watched<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watched").field("read", &self.read).finish()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(end) = this.first_frame_end() {
            if this.read >= end {
                if let Some(seen) = this.seen.take() {
                    seen.send_replace(true);
                }
            }
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.seen.is_some() {
            this.count(buf.filled().get(before..).unwrap_or_default());
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
