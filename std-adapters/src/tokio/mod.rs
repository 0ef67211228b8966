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
//!   `read` before it waits for input, a send, `close`) finishes writing
//!   it. Sending it again would send it twice.
//!
//! A large text or binary message passed by value (`send`, `feed`, the
//! [`Sink`](futures_sink::Sink)) is queued the same way without being copied: on a server
//! without compression, from 16 KiB up, the connection keeps the `Message`
//! itself and writes header and payload with vectored writes, so a cancelled
//! send leaves it queued whole as above. The borrowing sends (`send_text`,
//! `send_binary`, `send_fragment`) copy the payload, since a dropped future
//! must not leave half a frame that refers to bytes no longer lent.
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
//! # Streams, sinks and pipelining
//!
//! [`WebSocket`] is also a [`Stream`](futures_core::Stream) of received messages (ending after the
//! close handshake) and a [`Sink`](futures_sink::Sink) of messages to send, for `futures`
//! combinators. [`WebSocket::feed`] (the sink's `poll_ready` + `start_send`)
//! queues a message without writing it unless more than 64 KiB are already
//! queued; [`WebSocket::flush`] writes the queue. A read hands out the text
//! and binary messages already decoded from bytes it has read before it
//! writes anything, and writes the queue before it waits for more input, so
//! a server that `feed`s each reply answers a burst of requests in one
//! write:
//!
//! ```no_run
//! # async fn run(mut ws: wsproto_adapters::tokio::WebSocket<tokio::net::TcpStream>)
//! # -> Result<(), wsproto_adapters::Error> {
//! use futures_util::StreamExt;
//! use wsproto_adapters::Message;
//! while let Some(msg) = ws.next().await {
//!     if let msg @ (Message::Text(_) | Message::Binary(_)) = msg? {
//!         ws.feed(msg).await?; // written by the next read, at the latest
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Splitting
//!
//! [`WebSocket::split`] gives a [`ReadHalf`] (a `Stream`) and a
//! [`WriteHalf`] (a `Sink`, with `send`, `feed`, `flush` and `close`) for
//! two tasks; [`reunite`] joins them again. The read half answers pings and
//! echoes a Close while split, without ever waiting behind the write half,
//! and the timers keep running. Each half documents its cancel safety.
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

mod poll;
pub(crate) mod socket;
mod split;

pub use crate::stream::tokio::MaybeTls;
pub use socket::{reunite, WebSocket};
pub use split::{ReadHalf, ReuniteError, WriteHalf};

use crate::driver::Driver;
use crate::handshake::{ClientHs, ServerHs};
use crate::rng::new_rng;
use crate::url::Url;
use crate::{clock, ClientOptions, Error, ServerOptions};
use std::io::ErrorKind;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use wsproto::Role;

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
    if options.http2 {
        // RFC 8441: the WebSocket is a stream of its own HTTP/2 connection.
        #[cfg(feature = "hyper")]
        return crate::h2::connect(url, options)
            .await
            .map(|ws| ws.map_stream(|io| MaybeTls::Http2(Box::new(io))));
        #[cfg(not(feature = "hyper"))]
        return Err(Error::Url(format!(
            "{url:?}: ClientOptions::http2 needs the `hyper` feature of wsproto-adapters"
        )));
    }
    let parsed = Url::parse(url)?;
    if parsed.secure {
        #[cfg(feature = "rustls")]
        {
            use crate::tls::session;
            let timeout = session::handshake_timeout(&options.config);
            let config = session::default_client_config()?;
            let stream = session::connect_tokio(url, timeout, config).await?;
            return client(stream, url, options).await;
        }
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
            return Ok(WebSocket::new(stream, driver));
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
                return Ok(WebSocket::new(stream, driver));
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
