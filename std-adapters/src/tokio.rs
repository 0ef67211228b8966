//! The tokio driver, over any `AsyncRead + AsyncWrite + Unpin`.
//!
//! The same shape as [`crate::blocking`], async. [`WebSocket::read`] is
//! cancel-safe: all state lives in the `WebSocket`, so it can sit in a
//! `tokio::select!` next to a channel of messages to send.
//!
//! # Cancelling a send
//!
//! A send (`send`, `send_text`, `send_binary`, `send_fragment`, `ping`,
//! `pong`) first writes what earlier calls left queued, then queues its
//! whole frame, then writes it. Dropping the future (a `select!` branch
//! losing, a `tokio::time::timeout`) therefore leaves one of two states,
//! never a partial frame:
//!
//! * dropped while earlier output was still being written: nothing of this
//!   message was queued, and sending it again sends it once;
//! * dropped while its own frame was being written: the whole frame is
//!   queued and the next call on the connection ([`WebSocket::flush`],
//!   `read`, a send, `close`) finishes writing it. Sending it again would
//!   send it twice.
//!
//! A frame cannot be taken back once queued: part of it may be on the wire,
//! and with permessage-deflate the compressor's window already holds it. To
//! tell the two apart, call [`WebSocket::flush`] (cancel-safe, retry it
//! freely) until it succeeds: a send started with nothing queued queues its
//! message when first polled, so if it is dropped, do not send it again.
//!
//! Writes never outlast the timers: while the peer does not read, a write
//! waits at most until the close handshake's deadline (after `close`) or the
//! keepalive's, and the call then fails with that timeout.
//!
//! ```no_run
//! # async fn run() -> Result<(), wsproto_adapters::Error> {
//! use wsproto_adapters::{tokio::connect, Message};
//! let mut ws = connect("ws://127.0.0.1:9001/").await?;
//! ws.send_text("hello").await?;
//! while let Ok(msg) = ws.read().await {
//!     if let Message::Text(t) = msg {
//!         println!("{t}");
//!         break;
//!     }
//! }
//! ws.close(1000, "").await?;
//! # Ok(())
//! # }
//! ```

use crate::driver::{Driver, Step};
use crate::handshake::{ClientHs, ServerHs};
use crate::rng::new_rng;
pub use crate::stream::tokio::MaybeTls;
use crate::url::Url;
use crate::{clock, ClientOptions, Error, Message, ServerOptions};
use std::io::ErrorKind;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use wsproto::{MessageKind, Role};

/// A WebSocket over an async stream.
pub struct WebSocket<S> {
    stream: S,
    driver: Driver,
}

/// Connects to a `ws://` or `wss://` URL with default options (see
/// [`connect_with`]).
pub async fn connect(url: &str) -> Result<WebSocket<MaybeTls>, Error> {
    connect_with(url, &ClientOptions::default()).await
}

/// Connects to a `ws://` URL over TCP (with `TCP_NODELAY`) with `options`.
///
/// `wss://` needs the `rustls` feature: TLS is then run over the TCP
/// stream, verifying the server against the `webpki-roots` trust anchors
/// (`tls::default_client_config`; `tls::connect_async` takes a
/// configuration of your own). Without the feature a `wss://` URL is an
/// [`Error::Url`] naming it; a TLS stream of your own can still go to
/// [`client`].
pub async fn connect_with(
    url: &str,
    options: &ClientOptions,
) -> Result<WebSocket<MaybeTls>, Error> {
    let parsed = Url::parse(url)?;
    if parsed.secure {
        #[cfg(feature = "rustls")]
        return crate::tls::connect_async(url, options, crate::tls::default_client_config()?).await;
        #[cfg(not(feature = "rustls"))]
        return Err(crate::stream::tls_not_built_in(url));
    }
    let stream = TcpStream::connect((parsed.host.as_str(), parsed.port)).await?;
    stream.set_nodelay(true)?;
    client(MaybeTls::Plain(stream), url, options).await
}

/// Runs the client handshake for `url` over any stream.
pub async fn client<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    url: &str,
    options: &ClientOptions,
) -> Result<WebSocket<S>, Error> {
    let url = Url::parse(url)?;
    let mut rng = new_rng()?;
    let mut hs = ClientHs::new(&url, options, &mut rng, clock::now())?;
    stream.write_all(&hs.request).await?;
    stream.flush().await?;
    loop {
        if let Some(done) = hs.poll(clock::now())? {
            let driver = Driver::new(Role::Client, options.config, rng, done)?;
            return Ok(WebSocket { stream, driver });
        }
        let wait = hs
            .deadline()
            .map(clock::until)
            .unwrap_or(std::time::Duration::MAX);
        match tokio::time::timeout(wait, stream.read(hs.spare())).await {
            Ok(Ok(0)) => return Err(Error::Io(ErrorKind::UnexpectedEof.into())),
            Ok(Ok(n)) => hs.filled(n),
            Ok(Err(e)) => return Err(e.into()),
            Err(_elapsed) => {}
        }
    }
}

/// Runs the server handshake with default options.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> Result<WebSocket<S>, Error> {
    accept_with(stream, &ServerOptions::default()).await
}

/// Runs the server handshake (see [`crate::blocking::accept_with`]): 101 with
/// the first of `options.protocols` the client offered, or the core's HTTP
/// error answer and [`Error::Handshake`].
pub async fn accept_with<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    options: &ServerOptions,
) -> Result<WebSocket<S>, Error> {
    let mut hs = ServerHs::new(options, clock::now());
    loop {
        match hs.poll(clock::now()) {
            Ok(Some(done)) => {
                stream.write_all(&done.response).await?;
                stream.flush().await?;
                let rng = new_rng()?;
                let driver = Driver::new(Role::Server, options.config, rng, done)?;
                return Ok(WebSocket { stream, driver });
            }
            Ok(None) => {}
            Err(failed) => {
                let _ = stream.write_all(&failed.response).await;
                let _ = stream.shutdown().await;
                return Err(Error::Handshake(failed.error));
            }
        }
        let wait = hs
            .deadline()
            .map(clock::until)
            .unwrap_or(std::time::Duration::MAX);
        match tokio::time::timeout(wait, stream.read(hs.spare())).await {
            Ok(Ok(0)) => return Err(Error::Io(ErrorKind::UnexpectedEof.into())),
            Ok(Ok(n)) => hs.filled(n),
            Ok(Err(e)) => return Err(e.into()),
            Err(_elapsed) => {}
        }
    }
}

impl<S> WebSocket<S> {
    /// A WebSocket over `stream`, whose handshake `driver` holds the outcome of.
    #[cfg(feature = "hyper")]
    pub(crate) fn from_driver(stream: S, driver: Driver) -> Self {
        WebSocket { stream, driver }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Reads the next whole message (see [`crate::blocking::WebSocket::read`]).
    /// Cancel-safe, including during the lingering close after a peer
    /// violation (the Close is written, then input is discarded until the
    /// peer's end of file or `Config::close_timeout`, then the failure is
    /// returned).
    pub async fn read(&mut self) -> Result<Message, Error> {
        loop {
            self.flush().await?;
            if self.driver.wants_shutdown() {
                let _ = self.stream.shutdown().await;
                self.driver.mark_shut();
            }
            if let Some(outcome) = self.driver.take_outcome() {
                return outcome;
            }
            match self.driver.step(clock::now()) {
                Step::Continue => {}
                Step::Read(wait) => {
                    let read = self.stream.read(self.driver.spare());
                    let result = match wait {
                        Some(wait) => match tokio::time::timeout(wait, read).await {
                            Ok(r) => r,
                            Err(_elapsed) => continue,
                        },
                        None => read.await,
                    };
                    match result {
                        Ok(0) => self.driver.on_eof(),
                        Ok(n) => self.driver.on_read(n),
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => self.driver.on_read_error(e)?,
                    }
                }
            }
        }
    }

    /// Sends a message (`Message::Close` only starts the close handshake).
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
        self.flush().await?;
        self.driver.send(&message)?;
        self.flush().await
    }

    /// Sends a whole text message as one frame.
    pub async fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.flush().await?;
        self.driver.send_text(text)?;
        self.flush().await
    }

    /// Sends a whole binary message as one frame.
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.flush().await?;
        self.driver.send_binary(data)?;
        self.flush().await
    }

    /// Sends one fragment of a message; `fin` ends it.
    pub async fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        self.flush().await?;
        self.driver.send_fragment(kind, data, fin)?;
        self.flush().await
    }

    /// Sends a ping (at most 125 bytes).
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.flush().await?;
        self.driver.ping(payload)?;
        self.flush().await
    }

    /// Sends a pong (at most 125 bytes).
    pub async fn pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.flush().await?;
        self.driver.pong(payload)?;
        self.flush().await
    }

    /// Sends a Close and completes the close handshake, discarding data.
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<(), Error> {
        self.driver.close(code, reason)?;
        loop {
            match self.read().await {
                Ok(_) => {}
                Err(Error::ConnectionClosed) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// The request target of the handshake (`/chat?room=1`): what the client
    /// asked for on a server, what was sent on a client.
    pub fn path(&self) -> &str {
        self.driver.path()
    }

    /// The subprotocol agreed on in the handshake.
    pub fn protocol(&self) -> Option<&str> {
        self.driver.protocol()
    }

    /// The permessage-deflate agreement (RFC 7692), if both ends turned it
    /// on ([`crate::ClientOptions::deflate`], [`crate::ServerOptions::deflate`]):
    /// messages are then compressed on send and inflated on receive.
    pub fn deflate(&self) -> Option<&crate::Agreed> {
        self.driver.deflate()
    }

    /// The negotiated `Sec-WebSocket-Extensions` value, e.g.
    /// `permessage-deflate; client_max_window_bits=15`; `None` without
    /// extensions.
    pub fn extensions(&self) -> Option<&str> {
        self.driver.extensions()
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The underlying stream, mutably (writing to it corrupts the connection).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The core connection's lifecycle state.
    pub fn state(&self) -> wsproto::State {
        self.driver.state()
    }

    /// Writes everything queued: the rest of a message whose send was
    /// cancelled, or a keepalive ping. Cancel-safe: progress is recorded per
    /// write, and a dropped `flush` loses nothing.
    ///
    /// Each write waits at most until the next timer: a peer that stops
    /// reading cannot hold a call past the close or keepalive deadline. When
    /// a timer ends the connection, the unwritten output is dropped, the
    /// transport shut (without waiting) and the timer's error returned.
    pub async fn flush(&mut self) -> Result<(), Error> {
        if self.driver.pending().is_empty() {
            return Ok(());
        }
        loop {
            let wait = match self.driver.write_wait(clock::now()) {
                Ok(wait) => wait,
                Err(e) => {
                    // Shutting may itself wait on the stuck peer (a TLS
                    // close_notify): one attempt, no waiting.
                    let shutdown = self.stream.shutdown();
                    let _ = tokio::time::timeout(std::time::Duration::ZERO, shutdown).await;
                    self.driver.mark_shut();
                    return Err(e);
                }
            };
            let flushing = self.driver.pending().is_empty();
            let io = async {
                if flushing {
                    self.stream.flush().await.map(|()| 0)
                } else {
                    self.stream.write(self.driver.pending()).await
                }
            };
            let result = match wait {
                Some(wait) => match tokio::time::timeout(wait, io).await {
                    Ok(r) => r,
                    // The timers run at the top of the loop.
                    Err(_elapsed) => continue,
                },
                None => io.await,
            };
            match result {
                Ok(_) if flushing => return Ok(()),
                Ok(0) => {
                    self.driver.on_io_error();
                    return Err(Error::Io(ErrorKind::WriteZero.into()));
                }
                Ok(n) => self.driver.advance(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return self.driver.on_write_error(e),
            }
        }
    }
}
