//! Test harness for wsproto: a client/server [`Pair`] on a simulated clock.
//!
//! * [`TestRng`] — a deterministic RNG for client masking keys and handshake nonces.
//! * [`Ev`] and [`Collector`] — owned events, with data chunks reassembled into
//!   whole messages (and the chunk invariants of [`wsproto::Event`] checked).
//! * [`chunk`] — owned events as delivered, chunk by chunk (`fin` kept), for
//!   comparing two ways of receiving the same bytes.
//! * [`receive_all`] — the documented receive loop: call `receive` until a call
//!   consumes nothing and returns no event, keeping unconsumed bytes at the
//!   front of the buffer for the next call.
//! * [`Endpoint`] — one connection with its receive buffer, events and errors.
//! * [`Pair`] — a client and a server joined by two in-memory wires, delivered
//!   in chunks of a chosen size, with a clock advanced to `poll_timeout`
//!   deadlines.
//! * [`handshake_pair`] — runs the HTTP/1.1 opening handshake first, with the
//!   first frames sharing a read with the request and the response.

#![deny(missing_docs)]

use wsproto::frame::encoded_frame_len;
use wsproto::handshake::{Accept, ClientHandshake, ClientRequest, ServerHandshake};
use wsproto::rand_core::RngCore;
use wsproto::{
    CloseCode, Config, Connection, Duration, Error, Event, Extension, Instant, MessageKind,
    NoExtension, NoRng, Role,
};

/// A deterministic xorshift64* generator. The same seed always gives the same
/// masking keys and handshake nonces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestRng(u64);

impl TestRng {
    /// A generator seeded with `seed` (0 is replaced, xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Self {
        TestRng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }
}

impl RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// An owned event; data messages are whole (all their chunks joined).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    /// A whole text message.
    Text(String),
    /// A whole binary message.
    Binary(Vec<u8>),
    /// A ping and its payload.
    Ping(Vec<u8>),
    /// A pong and its payload.
    Pong(Vec<u8>),
    /// The peer's Close frame.
    Close {
        /// The code, `None` for an empty Close.
        code: Option<CloseCode>,
        /// The reason.
        reason: String,
    },
}

impl Ev {
    /// A `Close` event with `code` and `reason`.
    pub fn close(code: u16, reason: &str) -> Self {
        Ev::Close {
            code: Some(CloseCode(code)),
            reason: reason.to_owned(),
        }
    }
}

/// Collects events from `receive`, joining data chunks into messages.
///
/// Panics if the chunks break the documented rules: a non-final chunk that is
/// empty, or a chunk of another kind while a message is open.
#[derive(Clone, Debug, Default)]
pub struct Collector {
    partial: Option<(MessageKind, Vec<u8>)>,
    /// Completed events, in arrival order.
    pub events: Vec<Ev>,
    /// Number of data chunks seen (events with `fin: false` included).
    pub chunks: usize,
}

impl Collector {
    /// Records one event.
    pub fn push(&mut self, event: Event<'_>) {
        match event {
            Event::Text { data, fin } => self.data(MessageKind::Text, data.as_bytes(), fin),
            Event::Binary { data, fin } => self.data(MessageKind::Binary, data, fin),
            Event::Ping(p) => self.events.push(Ev::Ping(p.to_vec())),
            Event::Pong(p) => self.events.push(Ev::Pong(p.to_vec())),
            Event::Close { code, reason } => {
                self.events.push(Ev::Close {
                    code,
                    reason: reason.to_owned(),
                });
            }
        }
    }

    fn data(&mut self, kind: MessageKind, bytes: &[u8], fin: bool) {
        assert!(
            fin || !bytes.is_empty(),
            "an empty data chunk that is not final"
        );
        self.chunks += 1;
        let (open_kind, buf) = self.partial.get_or_insert_with(|| (kind, Vec::new()));
        assert_eq!(*open_kind, kind, "chunk kind changed inside a message");
        buf.extend_from_slice(bytes);
        if fin {
            if let Some((kind, buf)) = self.partial.take() {
                self.events.push(match kind {
                    MessageKind::Text => {
                        Ev::Text(String::from_utf8(buf).expect("text chunks are UTF-8"))
                    }
                    MessageKind::Binary => Ev::Binary(buf),
                });
            }
        }
    }

    /// Whether a data message has started but not finished.
    pub fn in_message(&self) -> bool {
        self.partial.is_some()
    }

    /// The bytes of the unfinished message so far.
    pub fn partial_len(&self) -> usize {
        self.partial.as_ref().map_or(0, |(_, b)| b.len())
    }

    /// Removes and returns the completed events.
    pub fn take(&mut self) -> Vec<Ev> {
        std::mem::take(&mut self.events)
    }
}

/// The receive loop of the crate docs: presents at most `window` bytes from
/// the front of `buf`, removes what each call consumed, and stops when a call
/// consumes nothing and returns no event. Unconsumed bytes stay at the front
/// of `buf` (possibly reordered by the connection) for the next call.
///
/// On error the rest of `buf` is dropped (the connection ignores further
/// input) and the error returned. Panics if the connection stalls with a full
/// window, which the contract says cannot happen for
/// `window >= MIN_RECEIVE_BUFFER`.
pub fn receive_all<R: RngCore, E: Extension>(
    conn: &mut Connection<R, E>,
    buf: &mut Vec<u8>,
    window: usize,
    out: &mut Collector,
) -> Result<(), Error> {
    receive_all_into(conn, buf, window, None, out)
}

/// [`receive_all`] through `Connection::receive_into` with `scratch` for
/// decompressed bytes (`None`: plain `receive`).
pub fn receive_all_into<R: RngCore, E: Extension>(
    conn: &mut Connection<R, E>,
    buf: &mut Vec<u8>,
    window: usize,
    mut scratch: Option<&mut [u8]>,
    out: &mut Collector,
) -> Result<(), Error> {
    let mut start = 0;
    let result = loop {
        let n = (buf.len() - start).min(window);
        let input = &mut buf[start..start + n];
        let received = match scratch.as_deref_mut() {
            Some(scratch) => conn.receive_into(input, scratch),
            None => conn.receive(input),
        };
        let received = match received {
            Ok(r) => r,
            Err(e) => {
                start = buf.len();
                break Err(e);
            }
        };
        let consumed = received.consumed;
        assert!(consumed <= n, "consumed {consumed} of {n} bytes");
        let had_event = received.event.is_some();
        if let Some(event) = received.event {
            out.push(event);
        }
        start += consumed;
        if consumed == 0 && !had_event {
            assert!(
                buf.len() - start < window,
                "receive made no progress with a full window of {window} bytes"
            );
            break Ok(());
        }
    };
    buf.drain(..start);
    result
}

/// One side of a connection: the state machine plus what the harness keeps
/// around it.
#[derive(Debug)]
pub struct Endpoint<R: RngCore, E: Extension = NoExtension> {
    /// The connection.
    pub conn: Connection<R, E>,
    /// Received bytes not yet consumed by `receive`.
    pub inbox: Vec<u8>,
    /// Events received so far.
    pub received: Collector,
    /// Every error returned by an input (`receive`, `receive_eof`,
    /// `handle_timeout`) or by `poll_transmit`.
    pub errors: Vec<Error>,
    /// This side closed its transport (`should_close_transport` was true).
    pub transport_closed: bool,
    /// `receive_eof` was delivered to this side.
    pub eof_seen: bool,
    /// The most bytes presented to one `receive` call.
    pub window: usize,
    /// Every byte this side wrote to its wire, in order.
    pub sent: Vec<u8>,
    /// Scratch for decompressed bytes; when set, `receive_into` is used.
    pub scratch: Option<Vec<u8>>,
}

impl<R: RngCore, E: Extension> Endpoint<R, E> {
    /// Wraps `conn` with an unbounded receive window.
    pub fn new(conn: Connection<R, E>) -> Self {
        Endpoint {
            conn,
            inbox: Vec::new(),
            received: Collector::default(),
            errors: Vec::new(),
            transport_closed: false,
            eof_seen: false,
            window: usize::MAX,
            sent: Vec::new(),
            scratch: None,
        }
    }

    /// The completed events so far.
    pub fn events(&self) -> &[Ev] {
        &self.received.events
    }

    /// Removes and returns the completed events.
    pub fn take_events(&mut self) -> Vec<Ev> {
        self.received.take()
    }

    /// Appends `bytes` to the receive buffer and runs the receive loop.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.inbox.extend_from_slice(bytes);
        if let Err(e) = receive_all_into(
            &mut self.conn,
            &mut self.inbox,
            self.window,
            self.scratch.as_deref_mut(),
            &mut self.received,
        ) {
            self.errors.push(e);
        }
    }

    /// Delivers end of file.
    pub fn eof(&mut self) {
        self.eof_seen = true;
        if let Err(e) = self.conn.receive_eof() {
            self.errors.push(e);
        }
    }

    /// Drains `poll_transmit` into `wire`, then notes `should_close_transport`.
    pub fn transmit(&mut self, wire: &mut Vec<u8>) {
        if self.transport_closed {
            return;
        }
        let mut out = [0u8; 512];
        loop {
            match self.conn.poll_transmit(&mut out) {
                Ok(0) => break,
                Ok(n) => {
                    wire.extend_from_slice(&out[..n]);
                    self.sent.extend_from_slice(&out[..n]);
                }
                Err(e) => {
                    self.errors.push(e);
                    break;
                }
            }
        }
        if self.conn.should_close_transport() {
            self.transport_closed = true;
        }
    }

    /// Calls `handle_timeout(now)` if `poll_timeout` asks for it by `now`
    /// (`Instant::ZERO` means "arm now"). Returns whether it was called.
    pub fn fire(&mut self, now: Instant) -> bool {
        match self.conn.poll_timeout() {
            Some(at) if at <= now => {
                if let Err(e) = self.conn.handle_timeout(now) {
                    self.errors.push(e);
                }
                true
            }
            _ => false,
        }
    }

    /// Writes one data frame (whole message or fragment) onto `wire`, then
    /// drains `poll_transmit`.
    pub fn send(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
        wire: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let mut out = vec![0u8; self.conn.send_buffer_len(data.len())];
        let n = self.conn.send_fragment(kind, data, fin, &mut out)?;
        wire.extend_from_slice(&out[..n]);
        self.sent.extend_from_slice(&out[..n]);
        self.transmit(wire);
        Ok(())
    }
}

/// Which side of a [`Pair`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// The client (masks its frames).
    Client,
    /// The server.
    Server,
}

/// Runs `$body` with `$ep` bound to the chosen endpoint and `$wire` to the
/// wire it writes to.
macro_rules! with_side {
    ($pair:expr, $who:expr, |$ep:ident, $wire:ident| $body:expr) => {
        match $who {
            Who::Client => {
                let ($ep, $wire) = (&mut $pair.client, &mut $pair.to_server);
                $body
            }
            Who::Server => {
                let ($ep, $wire) = (&mut $pair.server, &mut $pair.to_client);
                $body
            }
        }
    };
}

/// A client and a server connected by two in-memory wires, on a simulated clock.
///
/// Commands (`send_*`, `ping`, `close`) write to the sender's wire and drain
/// its `poll_transmit`, but deliver nothing; [`Pair::run`] moves bytes across
/// (in chunks of [`Pair::chunk`] bytes) until nothing more happens, and
/// [`Pair::advance`] moves the clock through the deadlines both sides ask for.
#[derive(Debug)]
pub struct Pair<E: Extension = NoExtension> {
    /// The client side.
    pub client: Endpoint<TestRng, E>,
    /// The server side.
    pub server: Endpoint<NoRng, E>,
    /// The simulated time.
    pub now: Instant,
    /// Bytes in flight from client to server.
    pub to_server: Vec<u8>,
    /// Bytes in flight from server to client.
    pub to_client: Vec<u8>,
    /// How many bytes one delivery step moves across a wire.
    pub chunk: usize,
}

impl Pair {
    /// A pair with the same `config` on both sides, already open (as after an
    /// external handshake), delivering whole writes.
    pub fn new(config: Config) -> Self {
        Pair::with_configs(config, config)
    }

    /// A pair with a configuration per side.
    pub fn with_configs(client: Config, server: Config) -> Self {
        Pair::from_connections(
            Connection::with_rng(Role::Client, client, TestRng::new(1)),
            Connection::new(Role::Server, server),
        )
    }
}

impl<E: Extension> Pair<E> {
    /// A pair around existing connections.
    pub fn from_connections(client: Connection<TestRng, E>, server: Connection<NoRng, E>) -> Self {
        let mut pair = Pair {
            client: Endpoint::new(client),
            server: Endpoint::new(server),
            now: Instant::from_secs(1),
            to_server: Vec::new(),
            to_client: Vec::new(),
            chunk: usize::MAX,
        };
        // Arm any timers the connections start with.
        pair.client.fire(pair.now);
        pair.server.fire(pair.now);
        pair
    }

    /// Sets the delivery chunk size.
    pub fn chunked(mut self, chunk: usize) -> Self {
        self.chunk = chunk.max(1);
        self
    }

    /// Sets the receive window of both sides.
    pub fn windowed(mut self, window: usize) -> Self {
        self.client.window = window;
        self.server.window = window;
        self
    }

    /// The events `who` received so far.
    pub fn events(&self, who: Who) -> &[Ev] {
        match who {
            Who::Client => self.client.events(),
            Who::Server => self.server.events(),
        }
    }

    /// Removes and returns the events `who` received.
    pub fn take_events(&mut self, who: Who) -> Vec<Ev> {
        with_side!(self, who, |ep, _wire| ep.take_events())
    }

    /// The errors `who` met so far.
    pub fn errors(&self, who: Who) -> &[Error] {
        match who {
            Who::Client => &self.client.errors,
            Who::Server => &self.server.errors,
        }
    }

    /// The connection state of `who`.
    pub fn state(&self, who: Who) -> wsproto::State {
        match who {
            Who::Client => self.client.conn.state(),
            Who::Server => self.server.conn.state(),
        }
    }

    /// `who` sends a whole text message.
    pub fn send_text(&mut self, who: Who, text: &str) -> Result<(), Error> {
        self.send_fragment(who, MessageKind::Text, text.as_bytes(), true)
    }

    /// `who` sends a whole binary message.
    pub fn send_binary(&mut self, who: Who, data: &[u8]) -> Result<(), Error> {
        self.send_fragment(who, MessageKind::Binary, data, true)
    }

    /// `who` sends one fragment.
    pub fn send_fragment(
        &mut self,
        who: Who,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        with_side!(self, who, |ep, wire| ep.send(kind, data, fin, wire))
    }

    /// `who` queues a ping.
    pub fn ping(&mut self, who: Who, payload: &[u8]) -> Result<(), Error> {
        with_side!(self, who, |ep, wire| {
            ep.conn.ping(payload)?;
            ep.transmit(wire);
            Ok(())
        })
    }

    /// `who` starts the close handshake.
    pub fn close(&mut self, who: Who, code: CloseCode, reason: &str) -> Result<(), Error> {
        with_side!(self, who, |ep, wire| {
            ep.conn.close(code, reason)?;
            ep.transmit(wire);
            Ok(())
        })
    }

    /// Moves bytes, EOFs and due timers until nothing more happens.
    pub fn run(&mut self) {
        for _ in 0..10_000_000 {
            if !self.step() {
                return;
            }
        }
        panic!("the pair never went quiet");
    }

    /// One round: fire due timers, drain outputs, deliver what is on each
    /// wire (chunk by chunk) or an EOF. Returns whether anything happened.
    pub fn step(&mut self) -> bool {
        let mut progress = false;
        progress |= self.client.fire(self.now);
        progress |= self.server.fire(self.now);
        self.client.transmit(&mut self.to_server);
        self.server.transmit(&mut self.to_client);
        progress |= deliver(
            &mut self.to_server,
            &self.client,
            &mut self.server,
            &mut self.to_client,
            self.chunk,
        );
        progress |= deliver(
            &mut self.to_client,
            &self.server,
            &mut self.client,
            &mut self.to_server,
            self.chunk,
        );
        self.client.transmit(&mut self.to_server);
        self.server.transmit(&mut self.to_client);
        progress
    }

    /// The earliest deadline either side asks for (`Instant::ZERO` reported as now).
    pub fn next_deadline(&self) -> Option<Instant> {
        let now = self.now;
        [
            self.client.conn.poll_timeout(),
            self.server.conn.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .map(|t| if t == Instant::ZERO { now } else { t })
        .min()
    }

    /// Runs, then lets `d` pass, stopping at every deadline on the way to
    /// fire timers and run again.
    pub fn advance(&mut self, d: Duration) {
        self.run();
        let target = self.now + d;
        for _ in 0..1_000_000 {
            match self.next_deadline() {
                Some(at) if at <= target => {
                    if at > self.now {
                        self.now = at;
                    }
                    if !self.step() {
                        panic!("deadline {at:?} reported but nothing fired");
                    }
                    self.run();
                }
                _ => {
                    self.now = target;
                    self.run();
                    return;
                }
            }
        }
        panic!("too many deadlines");
    }
}

/// Moves what is on `wire` to `to` in chunks of `chunk` bytes, draining
/// `to`'s output onto `back` after each chunk; or delivers EOF once `from`
/// closed its transport and the wire is empty. Bytes for a closed transport
/// are dropped.
fn deliver<A: RngCore, B: RngCore, E: Extension>(
    wire: &mut Vec<u8>,
    from: &Endpoint<A, E>,
    to: &mut Endpoint<B, E>,
    back: &mut Vec<u8>,
    chunk: usize,
) -> bool {
    if to.transport_closed {
        let had = !wire.is_empty();
        wire.clear();
        return had;
    }
    if !wire.is_empty() {
        let bytes = std::mem::take(wire);
        for piece in bytes.chunks(chunk) {
            if to.transport_closed {
                break;
            }
            to.feed(piece);
            to.transmit(back);
        }
        return true;
    }
    if from.transport_closed && !to.eof_seen {
        to.eof();
        to.transmit(back);
        return true;
    }
    false
}

/// What [`handshake_pair`] does.
#[derive(Clone, Copy, Debug)]
pub struct HandshakeSetup<'a> {
    /// Configuration of both sides.
    pub config: Config,
    /// The client's request.
    pub request: ClientRequest<'a>,
    /// The subprotocol the server picks.
    pub protocol: Option<&'a str>,
    /// A text message the client writes right behind its request.
    pub client_first: Option<&'a str>,
    /// A text message the server writes in the same write as its 101 response.
    pub server_first: Option<&'a str>,
    /// Delivery chunk size, for the handshake and the pair.
    pub chunk: usize,
    /// Seed of the client's RNG.
    pub seed: u64,
}

impl Default for HandshakeSetup<'_> {
    fn default() -> Self {
        HandshakeSetup {
            config: Config::default(),
            request: ClientRequest::new("example.com", "/chat"),
            protocol: None,
            client_first: None,
            server_first: None,
            chunk: usize::MAX,
            seed: 7,
        }
    }
}

/// A pair after a completed HTTP/1.1 handshake.
#[derive(Debug)]
pub struct Handshaken {
    /// The connections; the first frames (if any) are already received.
    pub pair: Pair,
    /// The request bytes the client wrote (head and any first frame).
    pub request: Vec<u8>,
    /// The response bytes the server wrote (head and any first frame).
    pub response: Vec<u8>,
    /// The path the server saw.
    pub path: String,
    /// The subprotocol the client was told.
    pub protocol: Option<String>,
}

/// Runs the opening handshake in chunks of `setup.chunk` bytes, then builds
/// the pair and feeds it the bytes that followed each head.
///
/// Panics if the handshake fails.
pub fn handshake_pair(setup: &HandshakeSetup<'_>) -> Handshaken {
    let config = setup.config;
    let now = Instant::from_secs(1);
    let chunk = setup.chunk.max(1);
    let mut rng = TestRng::new(setup.seed);

    // Client writes its request (and maybe a pipelined first frame).
    let mut out = vec![0u8; 4096];
    let (mut client_hs, n) =
        ClientHandshake::new(&setup.request, &mut rng, &config, now, &mut out).expect("request");
    let mut request = out[..n].to_vec();
    let mut client = Connection::with_rng(Role::Client, config, rng);
    if let Some(text) = setup.client_first {
        let mut frame = vec![0u8; encoded_frame_len(text.len(), true)];
        let n = client
            .send_text(text, &mut frame)
            .expect("first client frame");
        request.extend_from_slice(&frame[..n]);
    }

    // Server reads the request in chunks.
    let mut server = Connection::new(Role::Server, config);
    let mut server_hs = ServerHandshake::new(&config, now);
    let mut buf = Vec::new();
    let mut pos = 0;
    let (head_len, mut response, path) = loop {
        let end = pos + chunk.min(request.len() - pos);
        buf.extend_from_slice(&request[pos..end]);
        pos = end;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        match server_hs.parse(&buf, &mut headers).expect("valid request") {
            Some(req) => {
                let mut out = vec![0u8; 1024];
                let accept = Accept {
                    protocol: setup.protocol,
                    headers: &[],
                };
                let n = req.accept(&accept, &mut out).expect("accept");
                out.truncate(n);
                break (req.head_len(), out, req.path().to_owned());
            }
            None => assert!(pos < request.len(), "request head never completed"),
        }
    };
    let server_leftover = buf[head_len..].to_vec();
    let server_rest = request[pos..].to_vec();
    if let Some(text) = setup.server_first {
        let mut frame = vec![0u8; encoded_frame_len(text.len(), false)];
        let n = server
            .send_text(text, &mut frame)
            .expect("first server frame");
        response.extend_from_slice(&frame[..n]);
    }

    // Client reads the response in chunks.
    let mut buf = Vec::new();
    let mut pos = 0;
    let (head_len, protocol) = loop {
        let end = pos + chunk.min(response.len() - pos);
        buf.extend_from_slice(&response[pos..end]);
        pos = end;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        match client_hs
            .parse(&setup.request, &buf, &mut headers)
            .expect("valid response")
        {
            Some(res) => break (res.head_len(), res.protocol().map(str::to_owned)),
            None => assert!(pos < response.len(), "response head never completed"),
        }
    };
    let client_leftover = buf[head_len..].to_vec();
    let client_rest = response[pos..].to_vec();

    let mut pair = Pair::from_connections(client, server).chunked(chunk);
    pair.now = now;
    pair.server.feed(&server_leftover);
    pair.to_server = server_rest;
    pair.client.feed(&client_leftover);
    pair.to_client = client_rest;
    pair.run();
    Handshaken {
        pair,
        request,
        response,
        path,
        protocol,
    }
}

/// Owned events exactly as `receive` delivers them, one per chunk, `fin`
/// kept: what tests comparing two receive paths compare.
pub mod chunk {
    use wsproto::Event;

    /// One event, owned.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Ev {
        /// A text chunk and whether it ends the message.
        Text(String, bool),
        /// A binary chunk and whether it ends the message.
        Binary(Vec<u8>, bool),
        /// A ping and its payload.
        Ping(Vec<u8>),
        /// A pong and its payload.
        Pong(Vec<u8>),
        /// The peer's Close: code and reason.
        Close(Option<u16>, String),
    }

    /// `e`, owned.
    pub fn own(e: Event<'_>) -> Ev {
        match e {
            Event::Text { data, fin } => Ev::Text(data.to_owned(), fin),
            Event::Binary { data, fin } => Ev::Binary(data.to_vec(), fin),
            Event::Ping(p) => Ev::Ping(p.to_vec()),
            Event::Pong(p) => Ev::Pong(p.to_vec()),
            Event::Close { code, reason } => Ev::Close(code.map(|c| c.0), reason.to_owned()),
        }
    }
}
