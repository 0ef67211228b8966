//! Fuzz harnesses with oracles, compiled only with `--cfg fuzzing` (which
//! `cargo fuzz` sets). The targets in `fuzz/fuzz_targets/` are short shims
//! that call these functions.
//!
//! This is test code: it uses `std` (vectors for traces and wires) and it
//! asserts, because a failed assertion is exactly what the fuzzer reports.
//! The core's denials of `unwrap`, `panic!` and indexing therefore do not
//! apply here.
//!
//! * [`frame_decoder`] — arbitrary bytes into a server and a client
//!   [`Connection`], in arbitrary chunks, compared with the whole-buffer feed.
//! * [`server_handshake`] — arbitrary bytes into [`ServerHandshake::parse`].
//! * [`client_handshake`] — arbitrary bytes as the answer to a real
//!   [`ClientHandshake`], optionally with the right accept value spliced in.
//! * [`connection`] — a client/server pair driven by a list of [`Op`]s.
//! * `deflate_inflate` (feature `deflate`) — arbitrary compressed payloads
//!   (or whole frames) into a client with permessage-deflate, in arbitrary
//!   chunks and scratch sizes, compared with the whole-buffer feed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

extern crate std;

use crate::frame::{apply_mask, encoded_frame_len, FrameHeader, HeaderStatus, OpCode};
use crate::handshake::{
    accept_key, Accept, ClientHandshake, ClientRequest, ServerHandshake, ACCEPT_LEN,
};
use crate::{
    CloseCode, Config, Connection, Duration, Error, Event, HandshakeError, Instant, Keepalive,
    MessageKind, Misuse, Received, Role, State,
};
use rand_core::RngCore;
use std::borrow::ToOwned;
use std::string::String;
use std::vec;
use std::vec::Vec;

/// A fixed xorshift64* RNG: runs are reproducible.
#[derive(Clone, Debug)]
pub struct FuzzRng(u64);

impl FuzzRng {
    pub fn new(seed: u64) -> Self {
        FuzzRng(seed | 1)
    }
}

impl RngCore for FuzzRng {
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
        for b in dst {
            *b = self.next_u32() as u8;
        }
    }
}

// ---------------------------------------------------------------------------
// Owned traces of what a connection surfaced
// ---------------------------------------------------------------------------

/// An owned event; data messages are whole (their chunks joined).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    Error(Error),
}

/// Events in order, plus the message whose chunks are still arriving.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    pub items: Vec<Item>,
    pub partial: Option<(MessageKind, Vec<u8>)>,
}

impl Trace {
    fn data(&mut self, kind: MessageKind, data: &[u8], fin: bool) {
        assert!(
            fin || !data.is_empty(),
            "empty data chunk that is not final"
        );
        let (open_kind, buf) = self.partial.get_or_insert_with(|| (kind, Vec::new()));
        assert_eq!(*open_kind, kind, "chunks of one message changed kind");
        buf.extend_from_slice(data);
        if fin {
            let (kind, buf) = self.partial.take().unwrap();
            self.items.push(match kind {
                MessageKind::Text => Item::Text(String::from_utf8(buf).expect("text chunks")),
                MessageKind::Binary => Item::Binary(buf),
            });
        }
    }

    fn event(&mut self, ev: Event<'_>) {
        match ev {
            Event::Text { data, fin } => self.data(MessageKind::Text, data.as_bytes(), fin),
            Event::Binary { data, fin } => self.data(MessageKind::Binary, data, fin),
            Event::Ping(p) => self.items.push(Item::Ping(p.to_vec())),
            Event::Pong(p) => self.items.push(Item::Pong(p.to_vec())),
            Event::Close { code, reason } => {
                assert!(reason.len() <= 123);
                if let Some(code) = code {
                    assert!(code.is_allowed_on_wire(), "surfaced close code {code:?}");
                }
                self.items
                    .push(Item::Close(code.map(|c| c.0), reason.to_owned()));
            }
        }
    }

    fn has_error(&self) -> bool {
        self.items.iter().any(|i| matches!(i, Item::Error(_)))
    }
}

/// Writes everything `poll_transmit` has into `out`.
fn drain_transmit<R: RngCore>(conn: &mut Connection<R>, out: &mut Vec<u8>) {
    let mut buf = [0u8; 1024];
    loop {
        let n = conn
            .poll_transmit(&mut buf)
            .expect("poll_transmit into 1 KiB");
        assert!(n <= buf.len());
        if n == 0 {
            return;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// The documented receive loop over `buf` (unconsumed bytes stay at its
/// front), draining `poll_transmit` into `out` after every call. Returns the
/// error that failed the connection, if any.
fn pump<R: RngCore>(
    conn: &mut Connection<R>,
    buf: &mut Vec<u8>,
    trace: &mut Trace,
    out: &mut Vec<u8>,
) -> Option<Error> {
    let mut stalled = 0;
    loop {
        let len = buf.len();
        match conn.receive(&mut buf[..]) {
            Ok(Received { consumed, event }) => {
                assert!(consumed <= len, "consumed {consumed} of {len}");
                let done = consumed == 0 && event.is_none();
                if consumed == 0 {
                    stalled += 1;
                    assert!(stalled < 4, "receive makes no progress");
                } else {
                    stalled = 0;
                }
                if let Some(ev) = event {
                    trace.event(ev);
                }
                buf.drain(..consumed);
                drain_transmit(conn, out);
                if done {
                    return None;
                }
            }
            Err(e) => {
                trace.items.push(Item::Error(e));
                drain_transmit(conn, out);
                return Some(e);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// frame_decoder
// ---------------------------------------------------------------------------

/// Everything observable after feeding a connection.
#[derive(Debug, PartialEq, Eq)]
struct DecodeOutcome {
    trace: Trace,
    transmit: Vec<u8>,
    state: State,
    close_transport: bool,
    timeout: Option<Instant>,
}

fn decoder_config(sel: u8) -> Config {
    let mut config = Config {
        auto_pong: sel & 1 == 0,
        ..Config::default()
    };
    if sel & 2 != 0 {
        config.limits.max_frame_payload = 64;
        config.limits.max_message_size = 100;
        config.limits.max_fragments = 3;
    }
    config
}

/// Cycles through `sizes` (0 allowed: a call with no new bytes) to cut `len`
/// bytes into chunks. An empty or all-zero list means one whole chunk.
fn chunk_plan(sizes: &[usize], len: usize) -> Vec<usize> {
    if sizes.iter().all(|&s| s == 0) {
        return vec![len];
    }
    let mut plan = Vec::new();
    let mut at = 0;
    for &s in sizes.iter().cycle() {
        if at >= len {
            break;
        }
        let s = s.min(len - at);
        plan.push(s);
        at += s;
    }
    plan
}

fn run_decoder(role: Role, config: Config, stream: &[u8], plan: &[usize]) -> DecodeOutcome {
    let mut conn = Connection::with_rng(role, config, FuzzRng::new(0xdec0de));
    let mut buf = Vec::new();
    let mut trace = Trace::default();
    let mut transmit = Vec::new();
    let mut at = 0;
    for &size in plan {
        buf.extend_from_slice(&stream[at..at + size]);
        at += size;
        if pump(&mut conn, &mut buf, &mut trace, &mut transmit).is_some() {
            // §7.1.7: after the failure every byte is consumed and ignored.
            buf.extend_from_slice(&stream[at..]);
            let len = buf.len();
            let r = conn.receive(&mut buf[..]).expect("input after failure");
            assert_eq!(
                r,
                Received {
                    consumed: len,
                    event: None
                }
            );
            drain_transmit(&mut conn, &mut transmit);
            assert!(conn.should_close_transport(), "failed but transport kept");
            // What a failed message had surfaced depends on the split; it is
            // discarded by any application anyway.
            trace.partial = None;
            break;
        }
    }
    DecodeOutcome {
        trace,
        transmit,
        state: conn.state(),
        close_transport: conn.should_close_transport(),
        timeout: conn.poll_timeout(),
    }
}

/// Byte 0: low nibble = number of chunk-size bytes that follow, high nibble =
/// configuration. Then the chunk sizes, then the stream.
pub fn frame_decoder(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(sel & 0x0f).min(rest.len());
    let (sizes, stream) = rest.split_at(n);
    let sizes: Vec<usize> = sizes.iter().map(|&b| usize::from(b)).collect();
    let config = decoder_config(sel >> 4);
    let prefix = &stream[..stream.len().min(4096)];
    for role in [Role::Server, Role::Client] {
        let whole = run_decoder(role, config, stream, &[stream.len()]);
        let chunked = run_decoder(role, config, stream, &chunk_plan(&sizes, stream.len()));
        assert_eq!(whole, chunked, "{role:?}: chunked feed differs");
        let whole_prefix = if prefix.len() == stream.len() {
            whole
        } else {
            run_decoder(role, config, prefix, &[prefix.len()])
        };
        let bytewise = run_decoder(role, config, prefix, &vec![1; prefix.len()]);
        assert_eq!(
            whole_prefix, bytewise,
            "{role:?}: byte-at-a-time feed differs"
        );
    }
}

// ---------------------------------------------------------------------------
// server_handshake
// ---------------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
enum ServerOutcome {
    Partial,
    Accepted {
        path: String,
        host: Vec<u8>,
        key: Vec<u8>,
        origin: Option<Vec<u8>>,
        protocols: Vec<String>,
        extensions: Vec<Vec<u8>>,
        head_len: usize,
        response: Vec<u8>,
    },
    Failed(HandshakeError),
}

fn check_server_error(e: HandshakeError) -> ServerOutcome {
    let status = e.status().expect("server-side error has a status");
    assert!(
        matches!(status, 400 | 426 | 431),
        "undocumented status {status} for {e:?}"
    );
    let mut out = [0u8; 512];
    let n = e.write_response(&mut out).expect("error response fits 512");
    let expected = std::format!("HTTP/1.1 {status} ");
    assert!(out[..n].starts_with(expected.as_bytes()));
    ServerOutcome::Failed(e)
}

fn server_parse(hs: &mut ServerHandshake, buf: &[u8], slots: usize) -> ServerOutcome {
    let mut headers = vec![httparse::EMPTY_HEADER; slots];
    match hs.parse(buf, &mut headers) {
        Ok(None) => ServerOutcome::Partial,
        Err(e) => check_server_error(e),
        Ok(Some(req)) => {
            assert!(req.head_len() <= buf.len(), "head_len past the input");
            assert!(buf[..req.head_len()].ends_with(b"\r\n\r\n"));
            // Independently: httparse ends the head exactly there.
            let mut qh = vec![httparse::EMPTY_HEADER; slots];
            let mut parsed = httparse::Request::new(&mut qh);
            assert_eq!(
                parsed.parse(&buf[..req.head_len()]),
                Ok(httparse::Status::Complete(req.head_len())),
                "accepted a head httparse ends elsewhere"
            );
            let mut out = [0u8; 4096];
            let protocol = req.protocols().next();
            let n = req
                .accept(
                    &Accept {
                        protocol,
                        headers: &[],
                    },
                    &mut out,
                )
                .expect("accept with an offered protocol");
            let response = &out[..n];
            assert!(response.starts_with(b"HTTP/1.1 101 "));
            // The response parses back, with the right accept value.
            let mut rh = [httparse::EMPTY_HEADER; 16];
            let mut res = httparse::Response::new(&mut rh);
            assert_eq!(
                res.parse(response),
                Ok(httparse::Status::Complete(n)),
                "accept response does not parse"
            );
            assert_eq!(res.code, Some(101));
            let accepts: Vec<&[u8]> = res
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("Sec-WebSocket-Accept"))
                .map(|h| h.value)
                .collect();
            assert_eq!(accepts, [&accept_key(req.key())[..]]);
            ServerOutcome::Accepted {
                path: req.path().to_owned(),
                host: req.host().to_vec(),
                key: req.key().to_vec(),
                origin: req.origin().map(<[u8]>::to_vec),
                protocols: req.protocols().map(str::to_owned).collect(),
                extensions: req.extensions().map(<[u8]>::to_vec).collect(),
                head_len: req.head_len(),
                response: response.to_vec(),
            }
        }
    }
}

fn run_server(config: &Config, input: &[u8], plan: &[usize], slots: usize) -> ServerOutcome {
    let mut hs = ServerHandshake::new(config, Instant::ZERO);
    let mut buf = Vec::new();
    let mut at = 0;
    let mut outcome = ServerOutcome::Partial;
    for &size in plan {
        buf.extend_from_slice(&input[at..at + size]);
        at += size;
        outcome = server_parse(&mut hs, &buf, slots);
        if outcome != ServerOutcome::Partial {
            break;
        }
    }
    outcome
}

/// Byte 0: low 3 bits = number of chunk-size bytes. Byte 1: header slots
/// (low 5 bits + 1) and, with bit 5, a small `max_handshake_bytes`.
pub fn server_handshake(data: &[u8]) {
    let [sel, limits, rest @ ..] = data else {
        return;
    };
    let n = usize::from(sel & 7).min(rest.len());
    let (sizes, input) = rest.split_at(n);
    let sizes: Vec<usize> = sizes.iter().map(|&b| usize::from(b)).collect();
    let slots = usize::from(limits & 0x1f) + 1;
    let mut config = Config::default();
    if limits & 0x20 != 0 {
        config.limits.max_handshake_bytes = 32 + usize::from(limits >> 6) * 64;
    }
    let whole = run_server(&config, input, &[input.len()], slots);
    let chunked = run_server(&config, input, &chunk_plan(&sizes, input.len()), slots);
    assert_eq!(whole, chunked, "chunked handshake differs");
    if input.len() <= 1024 {
        let bytewise = run_server(&config, input, &vec![1; input.len()], slots);
        assert_eq!(whole, bytewise, "byte-at-a-time handshake differs");
    }
}

// ---------------------------------------------------------------------------
// client_handshake
// ---------------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
enum ClientOutcome {
    Partial,
    Accepted {
        protocol: Option<String>,
        head_len: usize,
    },
    Failed(HandshakeError),
}

const OFFERED: &[&str] = &["chat", "superchat"];

fn run_client(
    request: &ClientRequest<'_>,
    config: &Config,
    expected_accept: &[u8; ACCEPT_LEN],
    input: &[u8],
    plan: &[usize],
    slots: usize,
) -> ClientOutcome {
    let mut out = [0u8; 1024];
    let (mut hs, _) = ClientHandshake::new(
        request,
        &mut FuzzRng::new(0x6b6579),
        config,
        Instant::ZERO,
        &mut out,
    )
    .expect("client request");
    let mut buf = Vec::new();
    let mut at = 0;
    for &size in plan {
        buf.extend_from_slice(&input[at..at + size]);
        at += size;
        let mut headers = vec![httparse::EMPTY_HEADER; slots];
        match hs.parse(request, &buf, &mut headers) {
            Ok(None) => {}
            Ok(Some(res)) => {
                let head_len = res.head_len();
                assert!(head_len <= buf.len(), "head_len past the input");
                let protocol = res.protocol();
                if let Some(p) = protocol {
                    assert!(request.protocols.contains(&p), "unoffered {p}");
                }
                // Independent check of what was accepted.
                let mut rh = vec![httparse::EMPTY_HEADER; slots];
                let mut parsed = httparse::Response::new(&mut rh);
                assert_eq!(
                    parsed.parse(&buf[..head_len]),
                    Ok(httparse::Status::Complete(head_len))
                );
                assert_eq!(parsed.code, Some(101));
                let accepts: Vec<&[u8]> = parsed
                    .headers
                    .iter()
                    .filter(|h| h.name.eq_ignore_ascii_case("Sec-WebSocket-Accept"))
                    .map(|h| h.value.trim_ascii())
                    .collect();
                assert_eq!(accepts, [&expected_accept[..]], "accepted a wrong accept");
                return ClientOutcome::Accepted {
                    protocol: protocol.map(str::to_owned),
                    head_len,
                };
            }
            Err(e) => {
                assert!(
                    matches!(
                        e,
                        HandshakeError::UnexpectedStatus(_)
                            | HandshakeError::InvalidAccept
                            | HandshakeError::MissingUpgrade
                            | HandshakeError::MissingConnectionUpgrade
                            | HandshakeError::UnofferedSubprotocol
                            | HandshakeError::UnrequestedExtension
                            | HandshakeError::Malformed
                            | HandshakeError::HeadTooLarge
                            | HandshakeError::TooManyHeaders
                    ),
                    "undocumented client error {e:?}"
                );
                if let HandshakeError::UnexpectedStatus(code) = e {
                    assert_ne!(code, 101);
                }
                return ClientOutcome::Failed(e);
            }
        }
    }
    ClientOutcome::Partial
}

/// The accept value a client built with the harness's fixed RNG expects.
fn expected_accept(request: &ClientRequest<'_>, config: &Config) -> [u8; ACCEPT_LEN] {
    let mut out = [0u8; 1024];
    let (_, n) = ClientHandshake::new(
        request,
        &mut FuzzRng::new(0x6b6579),
        config,
        Instant::ZERO,
        &mut out,
    )
    .expect("client request");
    let mut rh = [httparse::EMPTY_HEADER; 16];
    let mut req = httparse::Request::new(&mut rh);
    assert_eq!(req.parse(&out[..n]), Ok(httparse::Status::Complete(n)));
    let key = req
        .headers
        .iter()
        .find(|h| h.name == "Sec-WebSocket-Key")
        .expect("key header")
        .value;
    accept_key(key)
}

/// Byte 0: low 3 bits = number of chunk-size bytes; bit 3 = offer
/// subprotocols; bit 4 = small `max_handshake_bytes`; bit 5 (with `splice`) =
/// prepend a valid 101 head. Byte 1: header slots (low 5 bits + 1). Then the
/// chunk sizes, then the response. With `splice`, every `@@` in the response
/// becomes the correct `Sec-WebSocket-Accept` value.
pub fn client_handshake(data: &[u8], splice: bool) {
    let [sel, slots, rest @ ..] = data else {
        return;
    };
    let n = usize::from(sel & 7).min(rest.len());
    let (sizes, raw) = rest.split_at(n);
    let sizes: Vec<usize> = sizes.iter().map(|&b| usize::from(b)).collect();
    let slots = usize::from(slots & 0x1f) + 1;
    let mut config = Config::default();
    if sel & 0x10 != 0 {
        config.limits.max_handshake_bytes = 128;
    }
    let request = ClientRequest {
        host: "server.example.com",
        path: "/chat",
        origin: Some("http://example.com"),
        protocols: if sel & 0x08 != 0 { OFFERED } else { &[] },
        headers: &[],
    };
    let accept = expected_accept(&request, &config);
    let input = if splice {
        let mut input = Vec::new();
        if sel & 0x20 != 0 {
            input.extend_from_slice(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                  Connection: Upgrade\r\nSec-WebSocket-Accept: ",
            );
            input.extend_from_slice(&accept);
            input.extend_from_slice(b"\r\n");
        }
        let mut i = 0;
        while i < raw.len() {
            if raw[i..].starts_with(b"@@") {
                input.extend_from_slice(&accept);
                i += 2;
            } else {
                input.push(raw[i]);
                i += 1;
            }
        }
        input
    } else {
        raw.to_vec()
    };
    let whole = run_client(&request, &config, &accept, &input, &[input.len()], slots);
    let chunked = run_client(
        &request,
        &config,
        &accept,
        &input,
        &chunk_plan(&sizes, input.len()),
        slots,
    );
    assert_eq!(whole, chunked, "chunked response differs");
    if input.len() <= 1024 {
        let bytewise = run_client(
            &request,
            &config,
            &accept,
            &input,
            &vec![1; input.len()],
            slots,
        );
        assert_eq!(whole, bytewise, "byte-at-a-time response differs");
    }
}

// ---------------------------------------------------------------------------
// connection: a client/server pair driven by operations
// ---------------------------------------------------------------------------

/// One step of the `connection` target. `client` picks the acting side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    SendText {
        client: bool,
        text: String,
    },
    SendBinary {
        client: bool,
        data: Vec<u8>,
    },
    /// `text` fragments carry `data` made valid UTF-8 (lossily), so the
    /// message stays valid whatever the split.
    SendFragment {
        client: bool,
        text: bool,
        data: Vec<u8>,
        fin: bool,
    },
    Ping {
        client: bool,
        payload: Vec<u8>,
    },
    Pong {
        client: bool,
        payload: Vec<u8>,
    },
    /// `code` below 16 picks a common code (including invalid ones); else raw.
    Close {
        client: bool,
        code: u16,
        reason: String,
    },
    /// Moves at most `max_bytes` from the sender's wire to the receiver.
    Deliver {
        from_client: bool,
        max_bytes: u16,
    },
    AdvanceTime {
        ms: u16,
    },
    /// The sender's transport ends: the rest of its wire is delivered, then
    /// the receiver sees end of file; later bytes are lost.
    Eof {
        from_client: bool,
    },
}

const CODES: [u16; 16] = [
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999, 1005, 999,
];

struct Peer {
    conn: Connection<FuzzRng>,
    /// Bytes received, not yet consumed.
    inbox: Vec<u8>,
    trace: Trace,
    /// Whole messages this side sent (send returned Ok).
    sent: Vec<Item>,
    /// A fragmented message being sent.
    sending: Option<(MessageKind, Vec<u8>)>,
    /// Bytes written but not yet delivered.
    wire: Vec<u8>,
    /// Every byte this side ever wrote.
    transcript: Vec<u8>,
    /// The wire to the peer has ended (Eof).
    wire_closed: bool,
}

impl Peer {
    fn new(role: Role, config: Config, seed: u64) -> Self {
        Peer {
            conn: Connection::with_rng(role, config, FuzzRng::new(seed)),
            inbox: Vec::new(),
            trace: Trace::default(),
            sent: Vec::new(),
            sending: None,
            wire: Vec::new(),
            transcript: Vec::new(),
            wire_closed: false,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        self.transcript.extend_from_slice(bytes);
        if !self.wire_closed {
            self.wire.extend_from_slice(bytes);
        }
    }

    fn flush(&mut self) {
        let mut out = Vec::new();
        drain_transmit(&mut self.conn, &mut out);
        self.write(&out);
    }

    fn send(&mut self, kind: MessageKind, data: &[u8], fin: bool, fragment: bool) {
        let masked = self.conn.role() == Role::Client;
        let mut out = vec![0u8; encoded_frame_len(data.len(), masked)];
        let result = if fragment {
            self.conn.send_fragment(kind, data, fin, &mut out)
        } else if kind == MessageKind::Text {
            self.conn
                .send_text(core::str::from_utf8(data).unwrap(), &mut out)
        } else {
            self.conn.send_binary(data, &mut out)
        };
        match result {
            Ok(n) => {
                assert_eq!(n, out.len(), "frame length");
                self.write(&out);
                let (_, buf) = self.sending.get_or_insert_with(|| (kind, Vec::new()));
                buf.extend_from_slice(data);
                if fin {
                    let (kind, buf) = self.sending.take().unwrap();
                    self.sent.push(match kind {
                        MessageKind::Text => Item::Text(String::from_utf8(buf).unwrap()),
                        MessageKind::Binary => Item::Binary(buf),
                    });
                }
            }
            Err(Error::Misuse(_)) => {}
            Err(e) => panic!("send failed with {e:?}"),
        }
        self.flush();
    }

    fn command(&mut self, result: Result<(), Error>) {
        match result {
            Ok(()) | Err(Error::Misuse(_)) => {}
            Err(e) => panic!("command failed with {e:?}"),
        }
        self.flush();
    }
}

/// Moves up to `max` bytes from `from`'s wire to `to` and runs `to`'s loop.
fn deliver(from: &mut Peer, to: &mut Peer, max: usize) {
    let n = max.min(from.wire.len());
    to.inbox.extend(from.wire.drain(..n));
    let mut out = Vec::new();
    let failed = pump(&mut to.conn, &mut to.inbox, &mut to.trace, &mut out);
    to.write(&out);
    if let Some(e) = failed {
        panic!("protocol error between correct peers: {e:?}");
    }
}

/// Checks that `bytes` is a sequence of whole, valid frames as `role` sends them.
fn check_transcript(bytes: &[u8], role: Role) {
    let mut pos = 0;
    let mut open: Option<(bool, Vec<u8>)> = None;
    let mut closed = false;
    while pos < bytes.len() {
        let (h, n) = match FrameHeader::parse(&bytes[pos..]) {
            Ok(HeaderStatus::Complete(h, n)) => (h, n),
            Ok(HeaderStatus::Partial) => panic!("{role:?} wrote a truncated frame"),
            Err(v) => panic!("{role:?} wrote an invalid frame: {v:?}"),
        };
        assert!(!closed, "{role:?} wrote a frame after its Close");
        assert_eq!(h.mask.is_some(), role == Role::Client, "mask bit by role");
        assert_eq!(h.rsv, 0, "rsv bits");
        let len = usize::try_from(h.payload_len).unwrap();
        let start = pos + n;
        assert!(
            start + len <= bytes.len(),
            "{role:?} wrote a truncated payload"
        );
        let mut payload = bytes[start..start + len].to_vec();
        if let Some(key) = h.mask {
            apply_mask(&mut payload, key, 0);
        }
        match h.opcode {
            OpCode::Close => {
                closed = true;
                match payload.as_slice() {
                    [] => {}
                    [hi, lo, reason @ ..] => {
                        let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
                        assert!(code.is_allowed_on_wire(), "sent close code {code:?}");
                        assert!(core::str::from_utf8(reason).is_ok(), "close reason utf-8");
                    }
                    [_] => panic!("one-byte close payload"),
                }
            }
            OpCode::Ping | OpCode::Pong => assert!(len <= 125),
            OpCode::Text | OpCode::Binary => {
                assert!(open.is_none(), "{role:?} started a message inside another");
                open = Some((h.opcode == OpCode::Text, payload));
            }
            OpCode::Continuation => {
                let (_, buf) = open.as_mut().expect("continuation with no message");
                buf.extend_from_slice(&payload);
            }
        }
        if !h.opcode.is_control() && h.fin {
            let (text, buf) = open.take().unwrap();
            if text {
                assert!(core::str::from_utf8(&buf).is_ok(), "{role:?} sent bad text");
            }
        }
        pos = start + len;
    }
}

fn pair_config(sel: u8) -> Config {
    let mut config = Config {
        auto_pong: sel & 1 == 0,
        ..Config::default()
    };
    if sel & 2 != 0 {
        config.keepalive = Some(Keepalive {
            interval: Duration::from_millis(1000),
            timeout: Duration::from_millis(500),
        });
    }
    if sel & 4 != 0 {
        config.idle_timeout = Some(Duration::from_millis(3000));
    }
    if sel & 8 != 0 {
        config.close_timeout = Duration::from_millis(200);
    }
    config
}

/// Runs `ops` on a client/server pair configured by `sel`, then delivers
/// everything and checks the oracles.
pub fn connection(sel: u8, ops: &[Op]) {
    let config = pair_config(sel);
    let mut client = Peer::new(Role::Client, config, 0xc11e);
    let mut server = Peer::new(Role::Server, config, 0x5e7e);
    let mut now = Instant::ZERO;
    // Timeouts, EOF or lost bytes make delivery partial (a prefix).
    let mut abnormal = false;
    for op in ops {
        match op {
            Op::SendText { client: c, text } => {
                let p = if *c { &mut client } else { &mut server };
                p.send(MessageKind::Text, text.as_bytes(), true, false);
            }
            Op::SendBinary { client: c, data } => {
                let p = if *c { &mut client } else { &mut server };
                p.send(MessageKind::Binary, data, true, false);
            }
            Op::SendFragment {
                client: c,
                text,
                data,
                fin,
            } => {
                let p = if *c { &mut client } else { &mut server };
                if *text {
                    let s = String::from_utf8_lossy(data).into_owned();
                    p.send(MessageKind::Text, s.as_bytes(), *fin, true);
                } else {
                    p.send(MessageKind::Binary, data, *fin, true);
                }
            }
            Op::Ping { client: c, payload } => {
                let p = if *c { &mut client } else { &mut server };
                let r = p.conn.ping(payload);
                p.command(r);
            }
            Op::Pong { client: c, payload } => {
                let p = if *c { &mut client } else { &mut server };
                let r = p.conn.pong(payload);
                p.command(r);
            }
            Op::Close {
                client: c,
                code,
                reason,
            } => {
                let p = if *c { &mut client } else { &mut server };
                let code = CODES.get(usize::from(*code)).copied().unwrap_or(*code);
                let r = p.conn.close(CloseCode(code), reason);
                if let Err(Error::Misuse(m)) = r {
                    if p.conn.state() == State::Open && !CloseCode(code).is_allowed_on_wire() {
                        assert_eq!(m, Misuse::InvalidCloseCode);
                    }
                }
                p.command(r);
            }
            Op::Deliver {
                from_client,
                max_bytes,
            } => {
                let max = usize::from(*max_bytes);
                if *from_client {
                    deliver(&mut client, &mut server, max);
                } else {
                    deliver(&mut server, &mut client, max);
                }
            }
            Op::AdvanceTime { ms } => {
                now += Duration::from_millis(u64::from(*ms));
                for p in [&mut client, &mut server] {
                    match p.conn.handle_timeout(now) {
                        Ok(()) => {}
                        Err(Error::Timeout(_)) => abnormal = true,
                        Err(e) => panic!("handle_timeout failed with {e:?}"),
                    }
                    p.flush();
                }
            }
            Op::Eof { from_client } => {
                abnormal = true;
                let (from, to) = if *from_client {
                    (&mut client, &mut server)
                } else {
                    (&mut server, &mut client)
                };
                deliver(from, to, usize::MAX);
                from.wire_closed = true;
                match to.conn.receive_eof() {
                    Ok(()) | Err(Error::AbnormalClosure) => {}
                    Err(e) => panic!("receive_eof failed with {e:?}"),
                }
                to.flush();
            }
        }
    }
    // Deliver everything, both ways, until the wires are quiet.
    for _ in 0..64 {
        if client.wire.is_empty() && server.wire.is_empty() {
            break;
        }
        deliver(&mut client, &mut server, usize::MAX);
        deliver(&mut server, &mut client, usize::MAX);
    }
    assert!(
        client.wire.is_empty() && server.wire.is_empty(),
        "wires never settle"
    );
    check_transcript(&client.transcript, Role::Client);
    check_transcript(&server.transcript, Role::Server);
    for (from, to) in [(&client, &server), (&server, &client)] {
        assert!(
            !to.trace.has_error(),
            "protocol error between correct peers"
        );
        let got: Vec<&Item> = to
            .trace
            .items
            .iter()
            .filter(|i| matches!(i, Item::Text(_) | Item::Binary(_)))
            .collect();
        let sent: Vec<&Item> = from.sent.iter().collect();
        if abnormal {
            assert!(got.len() <= sent.len() && got[..] == sent[..got.len()]);
        } else {
            assert_eq!(got, sent, "delivered messages differ from sent");
            let partial = to.trace.partial.as_ref().map(|(_, d)| d.as_slice());
            let sending = from.sending.as_ref().map(|(_, d)| d.as_slice());
            assert_eq!(
                partial.unwrap_or_default(),
                sending.unwrap_or_default(),
                "unfinished message differs"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// deflate_inflate: compressed payloads into a permessage-deflate client
// ---------------------------------------------------------------------------

#[cfg(feature = "deflate")]
mod deflate_harness {
    use super::*;
    use crate::extensions::deflate::{Agreed, Deflate9};
    use crate::{Extension, MIN_INFLATE_BUFFER};

    /// The largest decompressed message the harness allows (1009 past it).
    const MAX_MESSAGE: u64 = 4096;

    fn agreed(sel: u8) -> Agreed {
        Agreed {
            server_no_context_takeover: sel & 1 != 0,
            client_no_context_takeover: sel & 2 != 0,
            server_max_window_bits: Some(9),
            client_max_window_bits: Some(9),
        }
    }

    fn config() -> Config {
        let mut config = Config::default();
        config.limits.max_message_size = MAX_MESSAGE;
        config
    }

    /// `pump`, through `receive_into` with a scratch of `scratch` bytes.
    fn pump_into<E: Extension>(
        conn: &mut Connection<FuzzRng, E>,
        buf: &mut Vec<u8>,
        scratch: usize,
        trace: &mut Trace,
    ) -> Option<Error> {
        let mut room = vec![0u8; scratch];
        let mut stalled = 0;
        loop {
            let len = buf.len();
            match conn.receive_into(&mut buf[..], &mut room) {
                Ok(Received { consumed, event }) => {
                    assert!(consumed <= len, "consumed {consumed} of {len}");
                    let done = consumed == 0 && event.is_none();
                    if consumed == 0 {
                        stalled += 1;
                        // Draining a full window into the smallest scratch takes
                        // a few hundred calls that consume nothing.
                        assert!(stalled < 1000, "receive makes no progress");
                    } else {
                        stalled = 0;
                    }
                    if let Some(ev) = event {
                        // (Inflated chunks borrow the scratch, so they fit it by
                        // construction; plain messages borrow the input.)
                        trace.event(ev);
                    }
                    if let Some((_, partial)) = &trace.partial {
                        assert!(
                            partial.len() as u64 <= MAX_MESSAGE,
                            "inflated past the limit"
                        );
                    }
                    buf.drain(..consumed);
                    if done {
                        return None;
                    }
                }
                Err(e) => {
                    assert!(matches!(e, Error::Protocol(_)), "undocumented error {e:?}");
                    if let Error::Protocol(v) = e {
                        let code = v.close_code().0;
                        assert!(matches!(code, 1002 | 1007 | 1009), "{v:?} → {code}");
                    }
                    trace.items.push(Item::Error(e));
                    return Some(e);
                }
            }
        }
    }

    fn run(sel: u8, stream: &[u8], plan: &[usize], scratch: usize) -> (Trace, State) {
        let deflate = Deflate9::new(&agreed(sel), Role::Client).expect("9-bit window fits");
        let mut conn =
            Connection::with_rng(Role::Client, config(), FuzzRng::new(1)).with_extension(deflate);
        let mut buf = Vec::new();
        let mut trace = Trace::default();
        let mut at = 0;
        for &size in plan {
            buf.extend_from_slice(&stream[at..at + size]);
            at += size;
            if pump_into(&mut conn, &mut buf, scratch, &mut trace).is_some() {
                let mut out = [0u8; 256];
                while conn.poll_transmit(&mut out).expect("poll_transmit") > 0 {}
                assert!(conn.should_close_transport(), "failed but transport kept");
                trace.partial = None;
                break;
            }
        }
        // Without an error, a message the stream leaves unfinished has
        // surfaced the same bytes however the stream was split.
        (trace, conn.state())
    }

    /// Frames the fuzzer's bytes: in payload mode each `0xfe` byte splits
    /// the payload into another fragment of one compressed text or binary
    /// message; in frame mode the bytes are frames already.
    fn framed(sel: u8, payload: &[u8]) -> Vec<u8> {
        if sel & 4 == 0 {
            return payload.to_vec();
        }
        let mut out = Vec::new();
        let parts: Vec<&[u8]> = payload.split(|&b| b == 0xfe).collect();
        let last = parts.len() - 1;
        for (i, part) in parts.iter().enumerate() {
            let part = &part[..part.len().min(0xffff)];
            let opcode = match (i, sel & 8 != 0) {
                (0, true) => 0x2,
                (0, false) => 0x1,
                _ => 0x0,
            };
            let rsv1 = if i == 0 { 0x40 } else { 0 };
            let fin = if i == last { 0x80 } else { 0 };
            out.push(fin | rsv1 | opcode);
            if part.len() < 126 {
                out.push(part.len() as u8);
            } else {
                out.push(126);
                out.extend_from_slice(&(part.len() as u16).to_be_bytes());
            }
            out.extend_from_slice(part);
        }
        out
    }

    /// Byte 0: bits 0–1 the context takeover flags, bit 2 payload mode,
    /// bit 3 binary, bits 4–7 the number of chunk-size bytes that follow.
    /// Then one scratch-size byte, the chunk sizes, and the data.
    pub fn deflate_inflate(data: &[u8]) {
        let Some((&sel, rest)) = data.split_first() else {
            return;
        };
        let Some((&scratch, rest)) = rest.split_first() else {
            return;
        };
        let n = usize::from(sel >> 4).min(rest.len());
        let (sizes, payload) = rest.split_at(n);
        let sizes: Vec<usize> = sizes.iter().map(|&b| usize::from(b)).collect();
        let stream = framed(sel, payload);
        let small = MIN_INFLATE_BUFFER + usize::from(scratch % 61);
        let (whole, whole_state) = run(sel, &stream, &[stream.len()], 4096);
        let (chunked, chunked_state) = run(sel, &stream, &chunk_plan(&sizes, stream.len()), small);
        assert_eq!(whole, chunked, "chunked feed with scratch {small} differs");
        assert_eq!(whole_state, chunked_state);
    }
}

#[cfg(feature = "deflate")]
pub use deflate_harness::deflate_inflate;
