//! The blocking driver, over any `std::io::Read + Write`.
//!
//! ```no_run
//! use std::net::TcpListener;
//! use wsproto_adapters::{blocking, Message};
//!
//! let listener = TcpListener::bind("127.0.0.1:9001")?;
//! for stream in listener.incoming() {
//!     std::thread::spawn(move || -> Result<(), wsproto_adapters::Error> {
//!         let mut ws = blocking::accept(stream?)?;
//!         loop {
//!             match ws.read()? {
//!                 msg @ (Message::Text(_) | Message::Binary(_)) => ws.send(msg)?,
//!                 Message::Close(_) => return Ok(()),
//!                 _ => {}
//!             }
//!         }
//!     });
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Timers (handshake deadline, close handshake, keepalive) are honoured by
//! mapping the core's `poll_timeout` onto `TcpStream::set_read_timeout` and
//! `set_write_timeout` when the stream is a `TcpStream` (replacing any
//! timeouts set on it). Writes are bounded too: a peer that stops reading
//! cannot hold [`WebSocket::close`] past `Config::close_timeout`, nor any
//! call past the keepalive's deadline; the call then fails with the timeout,
//! the unwritten output is dropped and the write side shut. With no timer
//! armed (an open connection without keepalive) a write waits as long as
//! the peer makes it.
//!
//! For other streams the timers are best effort: they fire when a read or
//! write returns. Set read and write timeouts on such a stream yourself: a
//! timeout then runs the timers and, unless one ends the connection,
//! surfaces as `Error::Io` (`WouldBlock`/`TimedOut`); the call can simply be
//! repeated, nothing is lost (unwritten output stays queued and the next
//! call carries on writing it).
//!
//! When the peer breaks a rule, [`WebSocket::read`] returns the failure only
//! after a lingering close: the core's Close is written, the write side shut,
//! and input is read and discarded until the peer's end of file or
//! `Config::close_timeout`, so the peer reads the Close instead of a reset.
//! That needs a `TcpStream`; over other streams the failure is returned at
//! once, as soon as the Close is written.

use crate::driver::{Driver, Step};
use crate::handshake::{ClientHs, ServerHs};
use crate::rng::new_rng;
pub use crate::stream::blocking::MaybeTls;
use crate::url::Url;
use crate::{clock, ClientOptions, Error, Message, ServerOptions};
use std::any::Any;
use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use wsproto::{MessageKind, Role};

pub use crate::stream::blocking::Timed;

/// Finds the [`Timed`] part of a stream (the `TcpStream`), when there is one.
#[doc(hidden)]
pub type TimedOf<S> = fn(&S) -> Option<&dyn Timed>;

fn tcp_of<S: 'static>(stream: &S) -> Option<&dyn Timed> {
    let stream = stream as &dyn Any;
    match stream.downcast_ref::<TcpStream>() {
        Some(tcp) => Some(tcp as &dyn Timed),
        None => stream
            .downcast_ref::<MaybeTls>()
            .map(|tls| tls as &dyn Timed),
    }
}

/// A WebSocket over a blocking stream.
pub struct WebSocket<S> {
    stream: S,
    driver: Driver,
    tcp: TimedOf<S>,
    /// The clock (the process clock, or a simulated one under the fuzzer).
    now: fn() -> wsproto::Instant,
    read_timeout: SocketTimeout,
    write_timeout: SocketTimeout,
}

/// The read or write timeout in force on a TCP stream, changed only when it
/// would not do: each change is a `setsockopt`, and the driver's wait moves
/// with every message (a timer armed while a message arrives, none
/// between messages), which used to cost four of them per echo.
#[derive(Default)]
struct SocketTimeout {
    /// What is set (`None`: not known yet).
    set: Option<Option<Duration>>,
    /// The last bounded call timed out since it was set.
    expired: bool,
}

impl SocketTimeout {
    /// What to set for a call that may wait `wanted` (`None`: as long as it
    /// takes), or `None` to keep the timeout in force. Kept while it ends
    /// the call no later than `wanted` would, or, with no timer armed,
    /// until it has expired once (one early wake-up, then no timeout).
    /// A new bound is three quarters of `wanted`, so the next message's
    /// wait, a little shorter or a little longer, still finds it fitting;
    /// a call that ends early only goes round the loop and asks again.
    fn update(&mut self, wanted: Option<Duration>) -> Option<Option<Duration>> {
        let keep = match (self.set, wanted) {
            (Some(None), None) => true,
            (Some(Some(_)), None) => !self.expired,
            (Some(Some(set)), Some(wanted)) => !self.expired && set <= wanted,
            _ => false,
        };
        if keep {
            return None;
        }
        let new = wanted.map(|w| (w / 4 * 3).max(Duration::from_millis(1)).min(w));
        self.set = Some(new);
        self.expired = false;
        Some(new)
    }
}

/// An open connection over `stream` with no handshake, on a simulated clock:
/// for the fuzzer, which plays the peer and the transport.
#[cfg(feature = "fuzz-harness")]
#[doc(hidden)]
pub fn open_for_fuzzing<S: Read + Write>(
    stream: S,
    role: Role,
    config: wsproto::Config,
    timed: TimedOf<S>,
    now: fn() -> wsproto::Instant,
) -> Result<WebSocket<S>, Error> {
    use rand_core::SeedableRng;
    let done = crate::handshake::Done {
        protocol: None,
        leftover: Vec::new(),
        response: Vec::new(),
        path: "/".into(),
        deflate: None,
        budget: None,
        shared: None,
        level: crate::CompressionLevel::Default,
    };
    let rng = crate::rng::StdRng::from_seed([7; 32]);
    let driver = Driver::new(role, config, rng, done)?;
    let mut ws = WebSocket::new(stream, driver, timed);
    ws.now = now;
    Ok(ws)
}

/// Connects to a `ws://` or `wss://` URL and runs the client handshake
/// with default options (see [`connect_with`]).
pub fn connect(url: &str) -> Result<WebSocket<MaybeTls>, Error> {
    connect_with(url, &ClientOptions::default())
}

/// Connects to a `ws://` URL over TCP (with `TCP_NODELAY`) with `options`.
///
/// `wss://` needs the `rustls` feature: TLS is then run over the TCP
/// stream, verifying the server against the `webpki-roots` trust anchors
/// (`tls::default_client_config`; `tls::connect` takes a configuration of
/// your own). Without the feature a `wss://` URL is an [`Error::Url`]
/// naming it; a TLS stream of your own can still go to [`client`].
pub fn connect_with(url: &str, options: &ClientOptions) -> Result<WebSocket<MaybeTls>, Error> {
    if options.http2 {
        return Err(Error::Url(format!(
            "{url:?}: WebSockets over HTTP/2 (ClientOptions::http2) need the tokio driver \
             (tokio::connect_with, feature `hyper`)"
        )));
    }
    let parsed = Url::parse(url)?;
    if parsed.secure {
        #[cfg(feature = "rustls")]
        {
            use crate::tls::session;
            let timeout = session::handshake_timeout(&options.config);
            let stream =
                session::connect_blocking(url, timeout, session::default_client_config()?)?;
            return client(stream, url, options);
        }
        #[cfg(not(feature = "rustls"))]
        return Err(crate::stream::tls_not_built_in(url));
    }
    let stream = TcpStream::connect((parsed.host.as_str(), parsed.port))?;
    stream.set_nodelay(true)?;
    client(MaybeTls::Plain(stream), url, options)
}

/// Runs the client handshake for `url` over any stream (a TLS stream for
/// `wss://`).
pub fn client<S: Read + Write + 'static>(
    mut stream: S,
    url: &str,
    options: &ClientOptions,
) -> Result<WebSocket<S>, Error> {
    let url = Url::parse(url)?;
    let mut rng = new_rng()?;
    let mut hs = ClientHs::new(&url, options, &mut rng, clock::now())?;
    stream.write_all(&hs.request)?;
    stream.flush()?;
    let tcp: TimedOf<S> = tcp_of::<S>;
    loop {
        if let Some(done) = hs.poll(clock::now())? {
            let driver = Driver::new(Role::Client, options.config, rng, done)?;
            return Ok(WebSocket::new(stream, driver, tcp));
        }
        match read_until(&mut stream, tcp, hs.deadline(), hs.spare()) {
            Ok(0) => return Err(Error::Io(ErrorKind::UnexpectedEof.into())),
            Ok(n) => hs.filled(n),
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Runs the server handshake with default options.
pub fn accept<S: Read + Write + 'static>(stream: S) -> Result<WebSocket<S>, Error> {
    accept_with(stream, &ServerOptions::default())
}

/// Runs the server handshake: reads the request (within
/// `options.config.handshake_timeout`), answers 101 choosing the first of
/// `options.protocols` the client offered, or writes the core's HTTP error
/// answer (400, 426, 431, 408) and returns [`Error::Handshake`].
pub fn accept_with<S: Read + Write + 'static>(
    mut stream: S,
    options: &ServerOptions,
) -> Result<WebSocket<S>, Error> {
    let tcp: TimedOf<S> = tcp_of::<S>;
    let mut hs = ServerHs::new(options, clock::now());
    loop {
        match hs.poll(clock::now()) {
            Ok(Some(done)) => {
                stream.write_all(&done.response)?;
                stream.flush()?;
                let rng = new_rng()?;
                let driver = Driver::new(Role::Server, options.config, rng, done)?;
                return Ok(WebSocket::new(stream, driver, tcp));
            }
            Ok(None) => {}
            Err(failed) => {
                let _ = stream
                    .write_all(&failed.response)
                    .and_then(|()| stream.flush());
                if let Some(tcp) = tcp(&stream) {
                    let _ = tcp.shutdown_write();
                }
                return Err(Error::Handshake(failed.error));
            }
        }
        match read_until(&mut stream, tcp, hs.deadline(), hs.spare()) {
            Ok(0) => return Err(Error::Io(ErrorKind::UnexpectedEof.into())),
            Ok(n) => hs.filled(n),
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

/// One read during the handshake, bounded by `deadline` on TCP streams.
fn read_until<S: Read>(
    stream: &mut S,
    tcp: TimedOf<S>,
    deadline: Option<wsproto::Instant>,
    buf: &mut [u8],
) -> io::Result<usize> {
    if let Some(tcp) = tcp(stream) {
        let wait = deadline.map(|d| clock::until(d).max(Duration::from_millis(1)));
        tcp.set_read_timeout(wait)?;
    }
    stream.read(buf)
}

impl<S: Read + Write> WebSocket<S> {
    fn new(stream: S, mut driver: Driver, tcp: TimedOf<S>) -> Self {
        if tcp(&stream).is_none() {
            // Reads cannot be bounded nor the write side shut: no lingering close.
            driver.disable_linger();
        }
        WebSocket {
            stream,
            driver,
            tcp,
            now: clock::now,
            read_timeout: SocketTimeout::default(),
            write_timeout: SocketTimeout::default(),
        }
    }

    /// Reads the next whole message. Pings and pongs are surfaced (the core
    /// already answered pings; the answer is written here). The peer's Close
    /// is returned once; after it, and after any error, reads return
    /// [`Error::ConnectionClosed`].
    ///
    /// A peer violation is returned as [`Error::Protocol`] once the core's
    /// Close has been written and the peer has closed its side or
    /// `Config::close_timeout` has passed (the lingering close, see the
    /// module doc); the input meanwhile is discarded.
    pub fn read(&mut self) -> Result<Message, Error> {
        loop {
            self.flush()?;
            if self.driver.wants_shutdown() {
                self.shutdown();
            }
            if let Some(outcome) = self.driver.take_outcome() {
                return outcome;
            }
            match self.driver.step((self.now)()) {
                Step::Continue => {}
                Step::Read(wait) => self.fill(wait)?,
            }
        }
    }

    /// Sends a message. Sending `Message::Close` only starts the close
    /// handshake (keep reading until [`Error::ConnectionClosed`]); `None` sends 1000.
    ///
    /// On a server without compression, a text or binary message from
    /// 16 KiB up is written from its own bytes (header and payload in one
    /// vectored write) instead of being copied into the transmit buffer.
    pub fn send(&mut self, message: Message) -> Result<(), Error> {
        self.driver.send_owned(message)?;
        self.flush()
    }

    /// Sends a whole text message as one frame.
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.driver.send_text(text)?;
        self.flush()
    }

    /// Sends a whole binary message as one frame.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.driver.send_binary(data)?;
        self.flush()
    }

    /// Sends one fragment of a message; `fin` ends it.
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        self.driver.send_fragment(kind, data, fin)?;
        self.flush()
    }

    /// Sends a ping (at most 125 bytes).
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.driver.ping(payload)?;
        self.flush()
    }

    /// Sends a pong (at most 125 bytes).
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.driver.pong(payload)?;
        self.flush()
    }

    /// Sends a Close with `code` and `reason` and completes the close
    /// handshake: reads (discarding data) until the peer's Close and the end
    /// of the transport, or the close timeout.
    pub fn close(&mut self, code: u16, reason: &str) -> Result<(), Error> {
        self.driver.close(code, reason)?;
        loop {
            match self.read() {
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

    /// Writes everything pending, in as few writes as the stream allows.
    ///
    /// On a [`Timed`] stream (`TcpStream`) each write is bounded by the next
    /// timer, so a peer that stops reading cannot hold the caller past the
    /// close or keepalive deadline: when a timer ends the connection, the
    /// unwritten output is dropped, the write side shut and the timer's
    /// error returned. On other streams a write blocks as long as the stream
    /// lets it; a write timeout of the stream's own (`WouldBlock` or
    /// `TimedOut`) runs the timers and, unless they end the connection, is
    /// returned as [`Error::Io`] with the output still queued: the next call
    /// carries on writing it.
    fn flush(&mut self) -> Result<(), Error> {
        if self.driver.pending().is_empty() {
            return Ok(());
        }
        loop {
            let wait = match self.driver.write_wait((self.now)()) {
                Ok(wait) => wait,
                Err(e) => {
                    self.shutdown();
                    return Err(e);
                }
            };
            let timed = (self.tcp)(&self.stream);
            if let Some(timed) = timed {
                if let Some(timeout) = self.write_timeout.update(wait) {
                    if let Err(e) = timed.set_write_timeout(timeout) {
                        self.write_timeout = SocketTimeout::default();
                        return Err(e.into());
                    }
                }
            }
            let bounded = timed.is_some();
            let mut slices = [IoSlice::new(&[]); 4];
            let count = self.driver.pending_slices(&mut slices);
            let result = match slices.get(..count) {
                None | Some([]) => match self.stream.flush() {
                    Ok(()) => return Ok(()),
                    Err(e) => Err(e),
                },
                Some([one]) => self.stream.write(one),
                // A large frame written from its own bytes: header and
                // payload (and what surrounds them) in one call.
                Some(several) => self.stream.write_vectored(several),
            };
            match result {
                Ok(0) => {
                    self.driver.on_io_error();
                    return Err(Error::Io(ErrorKind::WriteZero.into()));
                }
                Ok(n) => self.driver.advance(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // The timers run at the top of the loop.
                Err(e) if bounded && is_timeout(&e) => self.write_timeout.expired = true,
                Err(e) if is_timeout(&e) => {
                    if let Err(timer) = self.driver.write_wait((self.now)()) {
                        self.shutdown();
                        return Err(timer);
                    }
                    return Err(e.into());
                }
                Err(e) => return self.driver.on_write_error(e),
            }
        }
    }

    fn shutdown(&mut self) {
        if let Some(tcp) = (self.tcp)(&self.stream) {
            let _ = tcp.shutdown_write();
        }
        self.driver.mark_shut();
    }

    /// One read into the driver's window, bounded by `wait` on TCP streams.
    fn fill(&mut self, wait: Option<Duration>) -> Result<(), Error> {
        let tcp = (self.tcp)(&self.stream);
        if let Some(tcp) = tcp {
            if let Some(timeout) = self.read_timeout.update(wait) {
                if let Err(e) = tcp.set_read_timeout(timeout) {
                    self.read_timeout = SocketTimeout::default();
                    return Err(e.into());
                }
            }
        }
        let is_tcp = tcp.is_some();
        match self.stream.read(self.driver.spare()) {
            Ok(0) => self.driver.on_eof(),
            Ok(n) => self.driver.on_read(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if is_tcp && is_timeout(&e) => self.read_timeout.expired = true,
            Err(e) if is_timeout(&e) => return Err(e.into()),
            Err(e) => return self.driver.on_read_error(e),
        }
        Ok(())
    }
}
