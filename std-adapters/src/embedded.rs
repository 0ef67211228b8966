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
//! # permessage-deflate
//!
//! With the `embedded-deflate` feature, [`WebSocket::accept_deflate`] and
//! [`WebSocket::connect_deflate`] negotiate permessage-deflate (RFC 7692)
//! with windows no larger than the state type the caller names:
//! `WebSocket<'_, T, R, Option<Deflate9>>` (512-byte windows, about 13 KiB
//! held inline in the `WebSocket`) or `Option<Deflate12>` (4 KiB windows).
//! `None` means the peer did not agree, and the connection runs without
//! compression. Decompressed chunks land in a third caller buffer,
//! `scratch` (at least [`wsproto::MIN_INFLATE_BUFFER`] bytes; a message
//! larger than it arrives as several chunks); `tx` must hold the compressed
//! frame, [`Connection::send_buffer_len`] bytes for a payload.
//!
//! There is no clock here: pass `now` in, and drive timers yourself with
//! [`WebSocket::poll_timeout`] / [`WebSocket::handle_timeout`] if you use them.
//! That includes the minimum-progress rule ([`wsproto::Config::min_progress`],
//! on by default: a started message slower than 8 KiB per 30 s is closed with
//! 1008), which, like keepalive, runs only when `handle_timeout` is called;
//! set it to `None` if you never call it, so that `poll_timeout` asks for
//! nothing.
//! For the same reason `accept`, `connect`, `read` and `close` wait as long
//! as the peer does: race them against your executor's timer (e.g. embassy's
//! `with_timeout`) and drop the connection when it fires.
//!
//! No call is cancel-safe. A write that fails or is cancelled partway ends
//! the connection (later calls return [`Error::ConnectionClosed`] and write
//! nothing), so the peer never reads a new frame as the rest of a cut one.
//! Events are located in `rx` (or, decompressed, in `scratch`) by the core
//! ([`Connection::receive_into_at`]); the driver computes no addresses and indexes nothing unchecked.
//!
//! This module uses only `core`; it is usable from `no_std` code that vendors it.

use embedded_io_async::{Read, Write};
#[cfg(feature = "embedded-deflate")]
use wsproto::extensions::deflate::{Deflate, Inflater};
use wsproto::handshake::{
    Accept, ClientHandshake, ClientRequest, Request, Response, ServerHandshake,
};
use wsproto::httparse::EMPTY_HEADER;
use wsproto::rand_core::RngCore;
use wsproto::{
    CloseCode, Config, Connection, Event, Extension, HandshakeError, Instant, MessageKind, Misuse,
    NoExtension, NoRng, Role,
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

/// A WebSocket over an `embedded-io-async` transport and caller buffers.
///
/// `R` supplies a client's masking keys; `E` is the connection's extension
/// state ([`NoExtension`], or with `embedded-deflate` an
/// `Option<Deflate9>`/`Option<Deflate12>` from
/// [`WebSocket::accept_deflate`]/[`WebSocket::connect_deflate`]).
pub struct WebSocket<'b, T, R = NoRng, E = NoExtension> {
    io: T,
    conn: Connection<R, E>,
    rx: &'b mut [u8],
    rx_end: usize,
    /// Bytes at the front of `rx` the last event used; dropped on the next read.
    consumed: usize,
    tx: &'b mut [u8],
    /// Decompressed chunks (empty without an extension).
    scratch: &'b mut [u8],
    done: bool,
    /// A frame is being written; still set when a call starts, the write
    /// failed or was cancelled partway, so the byte stream is broken.
    writing: bool,
}

/// Reads once into `buf[*len..]`, which must not be empty (an empty read
/// would look like the end of the stream).
async fn fill<T: Read>(io: &mut T, buf: &mut [u8], len: &mut usize) -> Result<(), Error<T::Error>> {
    let free = buf.get_mut(*len..).unwrap_or_default();
    let room = free.len();
    let n = io.read(free).await.map_err(Error::Io)?;
    if n == 0 {
        return Err(Error::ConnectionClosed);
    }
    // A transport cannot have read more than it was given room for.
    *len += n.min(room);
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

/// Runs the server side of the opening handshake: reads the request into
/// `rx`, writes `answer`'s response from `tx` (or the core's HTTP error
/// answer). Returns the bytes after the head, now at the front of `rx`, and
/// what `answer` decided.
async fn serve_handshake<T: Read + Write, X>(
    io: &mut T,
    rx: &mut [u8],
    tx: &mut [u8],
    config: &Config,
    now: Instant,
    answer: impl Fn(&Request<'_>, &mut [u8]) -> Result<(usize, X), Misuse>,
) -> Result<(usize, X), Error<T::Error>> {
    let mut hs = ServerHandshake::new(config, now);
    let mut len = 0;
    let (head_len, decided) = loop {
        // The header slots live only for the parse, not across the
        // awaits, so they take no room in the future.
        let step = {
            let mut headers = [EMPTY_HEADER; HEADER_SLOTS];
            let window = rx.get(..len).unwrap_or_default();
            match hs.parse(window, &mut headers) {
                Ok(Some(req)) => answer(&req, tx)
                    .map(|(n, decided)| Some((n, req.head_len(), decided)))
                    .map_err(Error::from),
                Ok(None) if len >= rx.len() => Err(Error::Handshake(HandshakeError::HeadTooLarge)),
                Ok(None) => Ok(None),
                Err(e) => Err(Error::Handshake(e)),
            }
        };
        match step {
            Ok(Some((n, head_len, decided))) => {
                write_out(io, tx.get(..n).unwrap_or_default()).await?;
                break (head_len, decided);
            }
            Ok(None) => fill(io, rx, &mut len).await?,
            Err(Error::Handshake(e)) => {
                // Best effort: the peer learns why, the caller gets `e`.
                let n = e.write_response(tx).unwrap_or(0);
                let _ = write_out(io, tx.get(..n).unwrap_or_default()).await;
                return Err(Error::Handshake(e));
            }
            Err(e) => return Err(e),
        }
    };
    Ok((drop_front(rx, head_len, len), decided))
}

/// Runs the client side of the opening handshake, whose request `n` bytes
/// are in `tx`: writes it and reads the response into `rx`. Returns the
/// bytes after the head, now at the front of `rx`, and what `decide` read
/// from the response.
async fn client_handshake<T: Read + Write, X>(
    io: &mut T,
    rx: &mut [u8],
    tx: &[u8],
    request: &ClientRequest<'_>,
    mut hs: ClientHandshake,
    decide: impl Fn(&Response<'_>) -> X,
) -> Result<(usize, X), Error<T::Error>> {
    write_out(io, tx).await?;
    let mut len = 0;
    let (head_len, decided) = loop {
        let step = {
            let mut headers = [EMPTY_HEADER; HEADER_SLOTS];
            let window = rx.get(..len).unwrap_or_default();
            match hs.parse(request, window, &mut headers) {
                Ok(Some(response)) => Some((response.head_len(), decide(&response))),
                Ok(None) if len >= rx.len() => {
                    return Err(Error::Handshake(HandshakeError::HeadTooLarge))
                }
                Ok(None) => None,
                Err(e) => return Err(Error::Handshake(e)),
            }
        };
        match step {
            Some(done) => break done,
            None => fill(io, rx, &mut len).await?,
        }
    };
    Ok((drop_front(rx, head_len, len), decided))
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
        let (rest, ()) = serve_handshake(&mut io, rx, tx, &config, now, |req, out| {
            req.accept(&Accept::default(), out).map(|n| (n, ()))
        })
        .await?;
        let conn = Connection::new(Role::Server, config);
        Ok(WebSocket::open(io, conn, rx, rest, tx, &mut []))
    }
}

#[cfg(feature = "embedded-deflate")]
impl<'b, T: Read + Write, const IW: usize, const CB: usize, const CH: usize>
    WebSocket<'b, T, NoRng, Option<Deflate<IW, CB, CH>>>
{
    /// [`WebSocket::accept`], agreeing to permessage-deflate (RFC 7692) when
    /// the client offers it with windows this state type can hold
    /// ([`Deflate::config`]: context takeover both ways, windows capped to
    /// its own); otherwise the connection runs uncompressed (the extension
    /// is `None`). Decompressed chunks are surfaced from `scratch`.
    ///
    /// The state type is the caller's choice, e.g. 512-byte windows:
    ///
    /// ```no_run
    /// # async fn run<T: embedded_io_async::Read + embedded_io_async::Write>(socket: T) {
    /// use wsproto_adapters::embedded::{EmbeddedEvent, WebSocket};
    /// use wsproto_adapters::wsproto::extensions::deflate::Deflate9;
    /// use wsproto_adapters::wsproto::{Config, Instant, NoRng};
    ///
    /// let (mut rx, mut tx, mut scratch) = ([0u8; 1024], [0u8; 1024], [0u8; 256]);
    /// let mut ws: WebSocket<'_, T, NoRng, Option<Deflate9>> = WebSocket::accept_deflate(
    ///     socket, &mut rx, &mut tx, &mut scratch, Config::default(), Instant::ZERO,
    /// )
    /// .await
    /// .unwrap();
    /// let compressed = ws.extension().is_some();
    /// if let Ok(EmbeddedEvent::Text { data, fin: true }) = ws.read().await {
    ///     let mut echo = [0u8; 256];
    ///     let n = data.len().min(echo.len());
    ///     echo[..n].copy_from_slice(&data.as_bytes()[..n]);
    ///     // Compressed when the client agreed.
    ///     let _ = ws.send_binary(&echo[..n]).await;
    /// }
    /// # let _ = compressed;
    /// # }
    /// ```
    pub async fn accept_deflate(
        mut io: T,
        rx: &'b mut [u8],
        tx: &'b mut [u8],
        scratch: &'b mut [u8],
        config: Config,
        now: Instant,
    ) -> Result<Self, Error<T::Error>> {
        let wanted = Deflate::<IW, CB, CH>::config();
        let (rest, agreed) = serve_handshake(&mut io, rx, tx, &config, now, |req, out| {
            // An agreement the state cannot serve is declined, not accepted.
            let agreed = req.negotiate_deflate(&wanted).filter(|a| {
                Inflater::<IW>::supports(a.directions(Role::Server).inflate_window_bits)
            });
            match agreed {
                Some(a) => req
                    .accept_deflate(&Accept::default(), &a, out)
                    .map(|n| (n, Some(a))),
                None => req.accept(&Accept::default(), out).map(|n| (n, None)),
            }
        })
        .await?;
        let deflate = match agreed {
            // Cannot fail: the window was checked before agreeing.
            Some(a) => Some(Deflate::new(&a, Role::Server).map_err(|_| Error::ConnectionClosed)?),
            None => None,
        };
        let conn = Connection::new(Role::Server, config).with_extension(deflate);
        Ok(WebSocket::open(io, conn, rx, rest, tx, scratch))
    }
}

/// Drops the first `used` of the `len` bytes at the front of `buf` (a head,
/// an event), moving the rest to the front; returns how many are left.
fn drop_front(buf: &mut [u8], used: usize, len: usize) -> usize {
    let len = len.min(buf.len());
    let used = used.min(len);
    buf.copy_within(used..len, 0);
    len - used
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
        let (hs, n) = ClientHandshake::new(request, &mut rng, &config, now, tx)?;
        let sent = tx.get(..n).unwrap_or_default();
        let (rest, ()) = client_handshake(&mut io, rx, sent, request, hs, |_| ()).await?;
        let conn = Connection::with_rng(Role::Client, config, rng);
        Ok(WebSocket::open(io, conn, rx, rest, tx, &mut []))
    }
}

#[cfg(feature = "embedded-deflate")]
impl<'b, T: Read + Write, R: RngCore, const IW: usize, const CB: usize, const CH: usize>
    WebSocket<'b, T, R, Option<Deflate<IW, CB, CH>>>
{
    /// [`WebSocket::connect`], offering permessage-deflate (RFC 7692) with
    /// windows this state type can hold ([`Deflate::config`]). The extension
    /// is `None` when the server declines; decompressed chunks are surfaced
    /// from `scratch`.
    #[allow(clippy::too_many_arguments)]
    pub async fn connect_deflate(
        mut io: T,
        rx: &'b mut [u8],
        tx: &'b mut [u8],
        scratch: &'b mut [u8],
        request: &ClientRequest<'_>,
        config: Config,
        mut rng: R,
        now: Instant,
    ) -> Result<Self, Error<T::Error>> {
        let offer = Deflate::<IW, CB, CH>::config();
        let (hs, n) =
            ClientHandshake::new_with_deflate(request, &offer, &mut rng, &config, now, tx)?;
        let sent = tx.get(..n).unwrap_or_default();
        let (rest, agreed) =
            client_handshake(&mut io, rx, sent, request, hs, |r| r.deflate()).await?;
        let deflate = match agreed {
            // The response was validated against our offer, which caps the
            // server's window to the inflater's: this cannot fail.
            Some(a) => Some(Deflate::new(&a, Role::Client).map_err(|_| Error::ConnectionClosed)?),
            None => None,
        };
        let conn = Connection::with_rng(Role::Client, config, rng).with_extension(deflate);
        Ok(WebSocket::open(io, conn, rx, rest, tx, scratch))
    }
}

impl<'b, T: Read + Write, R: RngCore, E: Extension> WebSocket<'b, T, R, E> {
    fn open(
        io: T,
        conn: Connection<R, E>,
        rx: &'b mut [u8],
        rx_end: usize,
        tx: &'b mut [u8],
        scratch: &'b mut [u8],
    ) -> Self {
        WebSocket {
            io,
            conn,
            rx,
            rx_end,
            consumed: 0,
            tx,
            scratch,
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
    ///
    /// Not cancel-safe: an event whose pong or close echo was being written
    /// is lost, and a write cut partway ends the connection.
    pub async fn read(&mut self) -> Result<EmbeddedEvent<'_>, Error<T::Error>> {
        let at = loop {
            if self.consumed > 0 {
                self.rx_end = drop_front(self.rx, self.consumed, self.rx_end);
                self.consumed = 0;
            }
            self.flush_control().await?;
            if self.done || self.conn.should_close_transport() {
                self.done = true;
                return Err(Error::ConnectionClosed);
            }
            let full = self.rx_end >= self.rx.len();
            let window = self.rx.get_mut(..self.rx_end).unwrap_or_default();
            // The event comes back as a range of `rx`, so nothing stays
            // borrowed while the loop reads more into it.
            match self.conn.receive_into_at(window, self.scratch) {
                Err(e) => {
                    self.consumed = self.rx_end;
                    self.flush_control().await?;
                    self.done = true;
                    return Err(Error::Protocol(e));
                }
                Ok(received) => {
                    self.consumed = received.consumed;
                    match received.event {
                        Some(event) => break (event, received.from_scratch),
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
        let (at, from_scratch) = at;
        let place: &[u8] = if from_scratch { self.scratch } else { self.rx };
        match at.resolve(place) {
            Some(event) => Ok(match event {
                Event::Text { data, fin } => EmbeddedEvent::Text { data, fin },
                Event::Binary { data, fin } => EmbeddedEvent::Binary { data, fin },
                Event::Ping(p) => EmbeddedEvent::Ping(p),
                Event::Pong(p) => EmbeddedEvent::Pong(p),
                Event::Close { code, reason } => EmbeddedEvent::Close {
                    code: code.map(|c| c.0),
                    reason,
                },
            }),
            // Cannot happen: the range lies in the bytes `receive_at` just
            // consumed from `rx`, untouched since, and text was validated
            // there. Ending the connection beats handing over wrong bytes.
            None => {
                self.done = true;
                Err(Error::ConnectionClosed)
            }
        }
    }

    async fn send_frame(
        &mut self,
        encode: impl FnOnce(&mut Connection<R, E>, &mut [u8]) -> Result<usize, wsproto::Error>,
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

    /// The extension state: with `embedded-deflate`, `Some` when
    /// permessage-deflate was agreed.
    pub fn extension(&self) -> &E {
        self.conn.extension()
    }

    /// The transport.
    pub fn io_mut(&mut self) -> &mut T {
        &mut self.io
    }
}
