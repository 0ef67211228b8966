//! The `embedded-io-async` driver: `no_std`-compatible, no allocation.
//!
//! Everything lives in buffers the caller provides: `rx` receives (events
//! borrow it, unmasked in place) and `tx` holds each outgoing frame. Messages
//! are streamed as chunks with `fin` flags, never reassembled, so `rx` can be
//! much smaller than a message (at least [`wsproto::MIN_RECEIVE_BUFFER`]
//! bytes, plus the handshake head during [`WebSocket::accept`]/[`WebSocket::connect`]);
//! `tx` must hold the largest frame you send (use
//! [`WebSocket::send_fragment`] for larger messages).
//!
//! There is no clock here: pass `now` in, and drive timers yourself with
//! [`WebSocket::poll_timeout`] / [`WebSocket::handle_timeout`] if you use them.
//! `read` is not cancel-safe.
//!
//! This module uses only `core`; it is usable from `no_std` code that vendors it.

use embedded_io_async::{Read, Write};
use wsproto::handshake::{Accept, ClientHandshake, ClientRequest, ServerHandshake};
use wsproto::httparse::EMPTY_HEADER;
use wsproto::rand_core::RngCore;
use wsproto::{
    CloseCode, Config, Connection, Event, HandshakeError, Instant, MessageKind, NoRng, Role,
};

/// Header slots for the handshake head.
const HEADER_SLOTS: usize = 32;

/// What went wrong, with the transport's error type `E`.
#[derive(Debug)]
pub enum Error<E> {
    /// The transport failed.
    Io(E),
    /// The connection failed or was misused (see [`wsproto::Error`]).
    Protocol(wsproto::Error),
    /// The opening handshake failed (a server has written the HTTP answer).
    Handshake(HandshakeError),
    /// The connection is closed.
    ConnectionClosed,
}

impl<E> From<wsproto::Error> for Error<E> {
    fn from(e: wsproto::Error) -> Self {
        Error::Protocol(e)
    }
}

impl<E> From<wsproto::Misuse> for Error<E> {
    fn from(m: wsproto::Misuse) -> Self {
        Error::Protocol(wsproto::Error::Misuse(m))
    }
}

/// One piece of what the peer sent, borrowing `rx`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmbeddedEvent<'a> {
    /// A chunk of a text message (whole code points); `fin` ends the message.
    Text {
        /// The chunk.
        data: &'a str,
        /// Last chunk of the message.
        fin: bool,
    },
    /// A chunk of a binary message; `fin` ends the message.
    Binary {
        /// The chunk.
        data: &'a [u8],
        /// Last chunk of the message.
        fin: bool,
    },
    /// A ping (already answered when `auto_pong` is on).
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// The peer's Close (`code` is `None` when it carried none); the echo is sent.
    Close {
        /// The close code.
        code: Option<u16>,
        /// The reason.
        reason: &'a str,
    },
}

/// Where an event sits in `rx`, so no borrow is held across the read loop.
#[derive(Clone, Copy)]
enum Located {
    Text(usize, usize, bool),
    Binary(usize, usize, bool),
    Ping(usize, usize),
    Pong(usize, usize),
    Close(Option<u16>, usize, usize),
}

fn locate(base: usize, event: Event<'_>) -> Located {
    let at = |s: &[u8]| (s.as_ptr() as usize - base, s.len());
    match event {
        Event::Text { data, fin } => {
            let (o, l) = at(data.as_bytes());
            Located::Text(o, l, fin)
        }
        Event::Binary { data, fin } => {
            let (o, l) = at(data);
            Located::Binary(o, l, fin)
        }
        Event::Ping(p) => {
            let (o, l) = at(p);
            Located::Ping(o, l)
        }
        Event::Pong(p) => {
            let (o, l) = at(p);
            Located::Pong(o, l)
        }
        Event::Close { code, reason } => {
            let (o, l) = at(reason.as_bytes());
            Located::Close(code.map(|c| c.0), o, l)
        }
    }
}

/// A WebSocket over an `embedded-io-async` transport and caller buffers.
pub struct WebSocket<'b, T, R = NoRng> {
    io: T,
    conn: Connection<R>,
    rx: &'b mut [u8],
    rx_end: usize,
    /// Bytes at the front of `rx` the last event used; dropped on the next read.
    consumed: usize,
    tx: &'b mut [u8],
    done: bool,
    /// A frame is being written; still set when a call starts, the write
    /// failed or was cancelled partway, so the byte stream is broken.
    writing: bool,
}

/// Reads once into `buf[*len..]`.
async fn fill<T: Read>(io: &mut T, buf: &mut [u8], len: &mut usize) -> Result<(), Error<T::Error>> {
    let n = io.read(&mut buf[*len..]).await.map_err(Error::Io)?;
    if n == 0 {
        return Err(Error::ConnectionClosed);
    }
    *len += n;
    Ok(())
}

/// Writes all of `bytes` and flushes. A transport that takes nothing
/// (`Ok(0)`) has closed. Unlike `write_all`, this never panics.
async fn write_out<T: Write>(io: &mut T, mut bytes: &[u8]) -> Result<(), Error<T::Error>> {
    while !bytes.is_empty() {
        let n = io.write(bytes).await.map_err(Error::Io)?;
        if n == 0 {
            return Err(Error::ConnectionClosed);
        }
        bytes = bytes.get(n..).unwrap_or_default();
    }
    io.flush().await.map_err(Error::Io)
}

impl<'b, T: Read + Write> WebSocket<'b, T, NoRng> {
    /// Runs the server handshake (no subprotocol) and returns the open
    /// connection. On a bad request the core's HTTP answer is written first.
    pub async fn accept(
        mut io: T,
        rx: &'b mut [u8],
        tx: &'b mut [u8],
        config: Config,
        now: Instant,
    ) -> Result<Self, Error<T::Error>> {
        let mut hs = ServerHandshake::new(&config, now);
        let mut len = 0;
        let head_len = loop {
            let mut headers = [EMPTY_HEADER; HEADER_SLOTS];
            let parsed = match hs.parse(&rx[..len], &mut headers) {
                Ok(None) if len == rx.len() => Err(HandshakeError::HeadTooLarge),
                other => other,
            };
            match parsed {
                Ok(Some(req)) => {
                    let n = req.accept(&Accept::default(), tx)?;
                    io.write_all(&tx[..n]).await.map_err(Error::Io)?;
                    io.flush().await.map_err(Error::Io)?;
                    break req.head_len();
                }
                Ok(None) => fill(&mut io, rx, &mut len).await?,
                Err(e) => {
                    let n = e.write_response(tx).unwrap_or(0);
                    let _ = io.write_all(&tx[..n]).await;
                    let _ = io.flush().await;
                    return Err(Error::Handshake(e));
                }
            }
        };
        rx.copy_within(head_len..len, 0);
        Ok(WebSocket::open(
            io,
            Connection::new(Role::Server, config),
            rx,
            len - head_len,
            tx,
        ))
    }
}

impl<'b, T: Read + Write, R: RngCore> WebSocket<'b, T, R> {
    /// Runs the client handshake for `request`, with `rng` for the key and
    /// the masking keys, and returns the open connection.
    pub async fn connect(
        mut io: T,
        rx: &'b mut [u8],
        tx: &'b mut [u8],
        request: &ClientRequest<'_>,
        config: Config,
        mut rng: R,
        now: Instant,
    ) -> Result<Self, Error<T::Error>> {
        let (mut hs, n) = ClientHandshake::new(request, &mut rng, &config, now, tx)?;
        io.write_all(&tx[..n]).await.map_err(Error::Io)?;
        io.flush().await.map_err(Error::Io)?;
        let mut len = 0;
        let head_len = loop {
            let mut headers = [EMPTY_HEADER; HEADER_SLOTS];
            match hs.parse(request, &rx[..len], &mut headers) {
                Ok(Some(response)) => break response.head_len(),
                Ok(None) if len == rx.len() => {
                    return Err(Error::Handshake(HandshakeError::HeadTooLarge))
                }
                Ok(None) => fill(&mut io, rx, &mut len).await?,
                Err(e) => return Err(Error::Handshake(e)),
            }
        };
        rx.copy_within(head_len..len, 0);
        let conn = Connection::with_rng(Role::Client, config, rng);
        Ok(WebSocket::open(io, conn, rx, len - head_len, tx))
    }

    fn open(io: T, conn: Connection<R>, rx: &'b mut [u8], rx_end: usize, tx: &'b mut [u8]) -> Self {
        WebSocket {
            io,
            conn,
            rx,
            rx_end,
            consumed: 0,
            tx,
            done: false,
            writing: false,
        }
    }

    /// Fails once a write has failed or was cancelled partway: whatever
    /// follows a partial frame would be read as its rest.
    fn check_writable(&mut self) -> Result<(), Error<T::Error>> {
        if self.writing {
            self.done = true;
            return Err(Error::ConnectionClosed);
        }
        Ok(())
    }

    /// Writes `tx[..n]`, a whole frame; a failure (or a cancellation) leaves
    /// `writing` set, which ends the connection.
    async fn write_frame(&mut self, n: usize) -> Result<(), Error<T::Error>> {
        self.check_writable()?;
        self.writing = true;
        let frame = self.tx.get(..n).unwrap_or_default();
        let written = write_out(&mut self.io, frame).await;
        if written.is_ok() {
            self.writing = false;
        } else {
            self.done = true;
        }
        written
    }

    /// Writes the control frames the core has queued (pongs, close echo).
    async fn flush_control(&mut self) -> Result<(), Error<T::Error>> {
        loop {
            self.check_writable()?;
            let n = self.conn.poll_transmit(self.tx)?;
            if n == 0 {
                return Ok(());
            }
            self.write_frame(n).await?;
        }
    }

    /// Reads the next event. After the peer's Close, and once the core says
    /// the transport is done, returns [`Error::ConnectionClosed`].
    pub async fn read(&mut self) -> Result<EmbeddedEvent<'_>, Error<T::Error>> {
        let located = loop {
            if self.consumed > 0 {
                self.rx.copy_within(self.consumed..self.rx_end, 0);
                self.rx_end -= self.consumed;
                self.consumed = 0;
            }
            self.flush_control().await?;
            if self.done || self.conn.should_close_transport() {
                self.done = true;
                return Err(Error::ConnectionClosed);
            }
            let base = self.rx.as_ptr() as usize;
            let full = self.rx_end == self.rx.len();
            match self.conn.receive(&mut self.rx[..self.rx_end]) {
                Err(e) => {
                    self.consumed = self.rx_end;
                    self.flush_control().await?;
                    self.done = true;
                    return Err(Error::Protocol(e));
                }
                Ok(received) => {
                    self.consumed = received.consumed;
                    match received.event {
                        Some(event) => break locate(base, event),
                        None if received.consumed > 0 => {}
                        None if full => {
                            return Err(wsproto::Misuse::BufferTooSmall {
                                required: wsproto::MIN_RECEIVE_BUFFER,
                            }
                            .into())
                        }
                        None => match fill(&mut self.io, self.rx, &mut self.rx_end).await {
                            Ok(()) => {}
                            Err(Error::ConnectionClosed) => {
                                self.done = true;
                                return Err(match self.conn.receive_eof() {
                                    Ok(()) => Error::ConnectionClosed,
                                    Err(e) => Error::Protocol(e),
                                });
                            }
                            Err(e) => return Err(e),
                        },
                    }
                }
            }
        };
        // Pongs and the close echo go out before the event is handed over.
        self.flush_control().await?;
        let rx: &[u8] = self.rx;
        let text = |o: usize, l: usize| core::str::from_utf8(&rx[o..o + l]).unwrap_or_default();
        Ok(match located {
            Located::Text(o, l, fin) => EmbeddedEvent::Text {
                data: text(o, l),
                fin,
            },
            Located::Binary(o, l, fin) => EmbeddedEvent::Binary {
                data: &rx[o..o + l],
                fin,
            },
            Located::Ping(o, l) => EmbeddedEvent::Ping(&rx[o..o + l]),
            Located::Pong(o, l) => EmbeddedEvent::Pong(&rx[o..o + l]),
            Located::Close(code, o, l) => EmbeddedEvent::Close {
                code,
                reason: text(o, l),
            },
        })
    }

    async fn send_frame(
        &mut self,
        encode: impl FnOnce(&mut Connection<R>, &mut [u8]) -> Result<usize, wsproto::Error>,
    ) -> Result<(), Error<T::Error>> {
        self.flush_control().await?;
        let n = encode(&mut self.conn, self.tx)?;
        self.write_frame(n).await
    }

    /// Sends a whole text message as one frame (it must fit in `tx`).
    pub async fn send_text(&mut self, text: &str) -> Result<(), Error<T::Error>> {
        self.send_frame(|c, out| c.send_text(text, out)).await
    }

    /// Sends a whole binary message as one frame (it must fit in `tx`).
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<(), Error<T::Error>> {
        self.send_frame(|c, out| c.send_binary(data, out)).await
    }

    /// Sends one fragment of a message; `fin` ends it.
    pub async fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), Error<T::Error>> {
        self.send_frame(|c, out| c.send_fragment(kind, data, fin, out))
            .await
    }

    /// Sends a ping.
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error<T::Error>> {
        self.conn.ping(payload)?;
        self.flush_control().await
    }

    /// Sends a Close and completes the close handshake, discarding data,
    /// until [`Error::ConnectionClosed`] (or the transport's end).
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<(), Error<T::Error>> {
        if self.conn.state() == wsproto::State::Open {
            self.conn.close(CloseCode(code), reason)?;
        }
        loop {
            match self.read().await {
                Ok(_) => {}
                Err(Error::ConnectionClosed) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// When [`WebSocket::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.conn.poll_timeout()
    }

    /// Fires due timers; queued frames go out with the next read or send.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error<T::Error>> {
        Ok(self.conn.handle_timeout(now)?)
    }

    /// The core connection's state.
    pub fn state(&self) -> wsproto::State {
        self.conn.state()
    }

    /// The transport.
    pub fn io_mut(&mut self) -> &mut T {
        &mut self.io
    }
}
