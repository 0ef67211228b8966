//! The async WebSocket itself: reading, writing, the timers, `Stream` and
//! `Sink`. How one is opened (`connect`, `accept`) is in the module above.

use super::poll::{Io, Timer, HIGH_WATER};
use super::split::{self, ReadHalf, ReuniteError, WriteHalf};
use crate::driver::Driver;
use crate::{Error, Message};
use futures_core::Stream;
use futures_sink::Sink;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};
use wsproto::MessageKind;

/// A WebSocket over an async stream.
///
/// Read with [`WebSocket::read`] or as a [`Stream`] of messages (it ends
/// after the close handshake); write with the `send` methods, with
/// [`WebSocket::feed`] and [`WebSocket::flush`], or as a [`Sink`] of
/// messages. [`WebSocket::split`] gives a half for each task.
pub struct WebSocket<S> {
    io: Io<S>,
    timer: Timer,
}

impl<S> WebSocket<S> {
    /// A WebSocket over `stream`, its handshake done (`driver` holds the outcome).
    pub(crate) fn new(stream: S, driver: Driver) -> Self {
        WebSocket {
            io: Io::new(stream, driver),
            timer: Timer::default(),
        }
    }

    /// A WebSocket over `stream`, whose handshake `driver` holds the outcome of.
    #[cfg(feature = "hyper")]
    pub(crate) fn from_driver(stream: S, driver: Driver) -> Self {
        WebSocket::new(stream, driver)
    }

    /// The same WebSocket over `f(stream)` (a wrapper of the same bytes).
    #[cfg(feature = "hyper")]
    pub(crate) fn map_stream<T>(self, f: impl FnOnce(S) -> T) -> WebSocket<T> {
        WebSocket {
            io: self.io.map_stream(f),
            timer: self.timer,
        }
    }

    /// Splits the socket into a half that reads and a half that writes, for
    /// two tasks. [`reunite`] puts them back together.
    ///
    /// The halves share the connection behind a mutex, taken only inside a
    /// poll. The read half answers pings and echoes the peer's Close (the
    /// core queues them) and writes them when the stream takes them, but it
    /// never waits on a write while there is input to read: a writer stuck
    /// on a peer that does not read holds up no reader. The timers (close
    /// handshake, keepalive) keep running in both halves.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), wsproto_adapters::Error> {
    /// use futures_util::StreamExt;
    /// use wsproto_adapters::{tokio::connect, Message};
    /// let (mut rx, mut tx) = connect("ws://127.0.0.1:9001/").await?.split();
    /// let writer = tokio::spawn(async move {
    ///     for i in 0..10 {
    ///         tx.feed(Message::Text(format!("tick {i}"))).await?;
    ///     }
    ///     tx.flush().await?;
    ///     tx.close(1000, "done").await
    /// });
    /// while let Some(msg) = rx.next().await {
    ///     println!("{:?}", msg?);
    /// }
    /// # let _ = writer.await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn split(self) -> (ReadHalf<S>, WriteHalf<S>) {
        split::split(self.io)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Reads the next whole message (see [`crate::blocking::WebSocket::read`]).
    /// Cancel-safe, including during the lingering close after a peer
    /// violation (the Close is written, then input is discarded until the
    /// peer's end of file or `Config::close_timeout`, then the failure is
    /// returned).
    ///
    /// Text and binary messages decoded from bytes already read are returned
    /// before queued output is written, so replies [`feed`](Self::feed) in
    /// between go out together; before waiting for more input (and before
    /// returning a control message or a failure) the queued output is
    /// written, as by [`WebSocket::flush`].
    pub async fn read(&mut self) -> Result<Message, Error> {
        poll_fn(|cx| self.io.poll_message(cx, &mut self.timer)).await
    }

    /// Writes queued output until at most `keep` bytes are left.
    fn poll_write_out(&mut self, cx: &mut Context<'_>, keep: usize) -> Poll<Result<(), Error>> {
        let waker = cx.waker();
        self.io.poll_write_out(waker, waker, &mut self.timer, keep)
    }

    /// Sends a message (`Message::Close` only starts the close handshake).
    ///
    /// A large text or binary message is written from its own bytes, not
    /// copied (see [Cancelling a send](crate::tokio#cancelling-a-send)); prefer it to
    /// [`WebSocket::send_binary`] for big payloads you own.
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
        self.flush().await?;
        self.io.driver.send_owned(message)?;
        self.flush().await
    }

    /// Queues a message without waiting for it to be written, for
    /// pipelining: many `feed`s, then one [`WebSocket::flush`] (or a read,
    /// which writes before it waits for input) send them in few writes.
    ///
    /// It writes earlier output first only while more than 64 KiB are
    /// queued, so the queue stays bounded. Cancel-safe in the same way as a
    /// send: dropped while writing earlier output, nothing of `message` was
    /// queued; once it returns, the message is queued and goes out with the
    /// next flush, read, send or close. As the [`Sink`] implementation, this
    /// is `poll_ready` then `start_send`.
    ///
    /// ```no_run
    /// # async fn run(mut ws: wsproto_adapters::tokio::WebSocket<tokio::net::TcpStream>)
    /// # -> Result<(), wsproto_adapters::Error> {
    /// use wsproto_adapters::Message;
    /// for i in 0..100 {
    ///     ws.feed(Message::Text(format!("line {i}"))).await?;
    /// }
    /// ws.flush().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn feed(&mut self, message: Message) -> Result<(), Error> {
        poll_fn(|cx| self.poll_write_out(cx, HIGH_WATER)).await?;
        self.io.driver.send_owned(message)
    }

    /// Writes what is queued, queues one frame with `queue`, and writes it:
    /// the shape of every `send` that waits until its frame is out.
    async fn between_flushes(
        &mut self,
        queue: impl FnOnce(&mut Driver) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.flush().await?;
        queue(&mut self.io.driver)?;
        self.flush().await
    }

    /// Sends a whole text message as one frame.
    pub async fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.between_flushes(|d| d.send_text(text)).await
    }

    /// Sends a whole binary message as one frame.
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.between_flushes(|d| d.send_binary(data)).await
    }

    /// Sends one fragment of a message; `fin` ends it.
    pub async fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        self.between_flushes(|d| d.send_fragment(kind, data, fin))
            .await
    }

    /// Sends a ping (at most 125 bytes).
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.between_flushes(|d| d.ping(payload)).await
    }

    /// Sends a pong (at most 125 bytes).
    pub async fn pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.between_flushes(|d| d.pong(payload)).await
    }

    /// Sends a Close and completes the close handshake, discarding data.
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<(), Error> {
        self.io.driver.close(code, reason)?;
        poll_fn(|cx| self.poll_closed(cx)).await
    }

    /// Reads (discarding data) until the close handshake is over.
    fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            match std::task::ready!(self.io.poll_message(cx, &mut self.timer)) {
                Ok(_) => {}
                Err(Error::ConnectionClosed) => return Poll::Ready(Ok(())),
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// The request target of the handshake (`/chat?room=1`): what the client
    /// asked for on a server, what was sent on a client.
    pub fn path(&self) -> &str {
        self.io.driver.path()
    }

    /// The subprotocol agreed on in the handshake.
    pub fn protocol(&self) -> Option<&str> {
        self.io.driver.protocol()
    }

    /// The permessage-deflate agreement (RFC 7692), if both ends turned it
    /// on ([`crate::ClientOptions::deflate`], [`crate::ServerOptions::deflate`]):
    /// messages are then compressed on send and inflated on receive.
    pub fn deflate(&self) -> Option<&crate::Agreed> {
        self.io.driver.deflate()
    }

    /// The negotiated `Sec-WebSocket-Extensions` value, e.g.
    /// `permessage-deflate; client_max_window_bits=15`; `None` without
    /// extensions.
    pub fn extensions(&self) -> Option<&str> {
        self.io.driver.extensions()
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.io.stream
    }

    /// The underlying stream, mutably (writing to it corrupts the connection).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io.stream
    }

    /// The core connection's lifecycle state.
    pub fn state(&self) -> wsproto::State {
        self.io.driver.state()
    }

    /// Writes everything queued: messages [`feed`](Self::feed) queued, the
    /// rest of a message whose send was cancelled, or a keepalive ping.
    /// Cancel-safe: progress is recorded per write, and a dropped `flush`
    /// loses nothing.
    ///
    /// Each write waits at most until the next timer: a peer that stops
    /// reading cannot hold a call past the close or keepalive deadline. When
    /// a timer ends the connection, the unwritten output is dropped, the
    /// transport shut (without waiting) and the timer's error returned.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_write_out(cx, 0)).await
    }
}

/// The messages received, as [`WebSocket::read`] returns them; the stream
/// ends (`None`) once the connection is closed ([`Error::ConnectionClosed`]).
/// Polling `next()` is cancel-safe.
impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.io
            .poll_message(cx, &mut this.timer)
            .map(split::end_on_close)
    }
}

/// Sending messages: `poll_ready` writes earlier output only while more than
/// 64 KiB are queued, `start_send` queues a frame without writing,
/// `poll_flush` writes everything, and `poll_close` runs the close handshake
/// (Close 1000, then the peer's Close within `Config::close_timeout`,
/// discarding data received meanwhile).
impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocket<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_write_out(cx, HIGH_WATER)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        self.get_mut().io.driver.send_owned(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_write_out(cx, 0)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        this.io.driver.close(1000, "")?;
        this.poll_closed(cx)
    }
}

impl<S> ReadHalf<S> {
    /// Puts the socket back together (see [`reunite`]).
    pub fn reunite(self, write: WriteHalf<S>) -> Result<WebSocket<S>, ReuniteError<S>> {
        reunite(self, write)
    }
}

/// Puts the halves from [`WebSocket::split`] back together; fails (handing
/// both back) if they come from different sockets.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use wsproto_adapters::tokio::{connect, reunite};
/// let (read, write) = connect("ws://127.0.0.1:9001/").await?.split();
/// let mut ws = reunite(read, write)?;
/// ws.send_text("whole again").await?;
/// # Ok(())
/// # }
/// ```
pub fn reunite<S>(read: ReadHalf<S>, write: WriteHalf<S>) -> Result<WebSocket<S>, ReuniteError<S>> {
    let (io, timer) = split::rejoin(read, write)?;
    Ok(WebSocket { io, timer })
}
