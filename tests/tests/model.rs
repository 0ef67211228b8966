//! Model-based test of the connection state machine (proptest).
//!
//! A reference model of both sides — Open / Closing{initiator} /
//! Closed{code}, the fragmented message each side has open, which frames
//! are in flight each way, which transports are closed — is run next to a
//! real client/server [`Pair`] through random operation sequences: data
//! (whole messages and fragments), pings, pongs, closes from either side
//! with random valid codes, delivery of one direction in random chunk
//! sizes, a cut transport (EOF both ways), time passing with the network
//! working (keepalive pings answered) and time passing with the network
//! stalled (close and keepalive deadlines expire). After every operation
//! the real states must equal the model's, and these invariants hold:
//!
//! * commands succeed or fail (`Misuse::Closed`, `MessageInProgress`)
//!   exactly as the model predicts;
//! * the number of whole data messages each side received matches;
//! * no data surfaces after a side received the peer's Close;
//! * each side writes at most one Close frame, ever;
//! * a Closed server wants its transport closed; transports close exactly
//!   when the model says;
//! * inputs only ever fail with 1006 outcomes (EOF, timeouts), never a
//!   protocol violation between two correct peers.
//!
//! Split invariance over whole sessions is covered by `properties.rs`.

use proptest::prelude::*;
use std::collections::VecDeque;
use wsproto::frame::{FrameHeader, HeaderStatus, OpCode};
use wsproto::{CloseCode, Config, Duration, Error, Keepalive, MessageKind, Misuse, Side, State};
use wsproto_tests::{Endpoint, Ev, Pair, Who};

const CLOSE_TIMEOUT: u64 = 3;
const KEEPALIVE_INTERVAL: u64 = 10;
const KEEPALIVE_TIMEOUT: u64 = 5;
/// Long enough for every deadline: keepalive (at most interval twice, then
/// the pong timeout) and the close deadline.
const STALL: u64 = 60;

fn config() -> Config {
    Config {
        close_timeout: Duration::from_secs(CLOSE_TIMEOUT),
        keepalive: Some(Keepalive {
            interval: Duration::from_secs(KEEPALIVE_INTERVAL),
            timeout: Duration::from_secs(KEEPALIVE_TIMEOUT),
        }),
        // The model stalls with messages open; the minimum-progress rule
        // is not part of it (its own tests are in core's timers.rs).
        min_progress: None,
        ..Config::default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// A whole message (`send_text` / `send_binary`).
    Whole {
        who: Who,
        kind: MessageKind,
        len: u8,
    },
    /// One fragment (`send_fragment`).
    Fragment {
        who: Who,
        kind: MessageKind,
        len: u8,
        fin: bool,
    },
    Ping {
        who: Who,
    },
    Pong {
        who: Who,
    },
    Close {
        who: Who,
        code: u16,
    },
    /// Deliver everything in flight towards `to`, in chunks of `chunk` bytes.
    Deliver {
        to: Who,
        chunk: usize,
    },
    /// The transport breaks: both sides see EOF, bytes in flight are lost.
    Cut,
    /// Time passes with the network working (`Pair::advance`).
    Advance {
        secs: u64,
    },
    /// Time passes with nothing delivered: every deadline expires.
    Stall,
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![Just(Who::Client), Just(Who::Server)]
}

fn kind() -> impl Strategy<Value = MessageKind> {
    prop_oneof![Just(MessageKind::Text), Just(MessageKind::Binary)]
}

fn close_code() -> impl Strategy<Value = u16> {
    prop_oneof![
        prop::sample::select(vec![
            1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1014
        ]),
        3000u16..5000,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (who(), kind(), 0u8..40).prop_map(|(who, kind, len)| Op::Whole { who, kind, len }),
        4 => (who(), kind(), 0u8..40, any::<bool>())
            .prop_map(|(who, kind, len, fin)| Op::Fragment { who, kind, len, fin }),
        2 => who().prop_map(|who| Op::Ping { who }),
        1 => who().prop_map(|who| Op::Pong { who }),
        2 => (who(), close_code()).prop_map(|(who, code)| Op::Close { who, code }),
        6 => (who(), 1usize..64).prop_map(|(to, chunk)| Op::Deliver { to, chunk }),
        1 => Just(Op::Cut),
        2 => (1u64..25).prop_map(|secs| Op::Advance { secs }),
        1 => Just(Op::Stall),
    ]
}

// ----- the model -----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MFrame {
    Data { fin: bool },
    Close(u16),
}

#[derive(Clone, Debug)]
struct MSide {
    is_server: bool,
    state: State,
    outgoing: Option<MessageKind>,
    transport_closed: bool,
    eof_seen: bool,
    /// Whole data messages received.
    messages: usize,
    /// The peer's Close was received.
    got_close: bool,
}

impl MSide {
    fn new(is_server: bool) -> Self {
        MSide {
            is_server,
            state: State::Open,
            outgoing: None,
            transport_closed: false,
            eof_seen: false,
            messages: 0,
            got_close: false,
        }
    }

    fn closed(&self) -> bool {
        matches!(self.state, State::Closed { .. })
    }

    fn set_closed(&mut self, code: u16) {
        if !self.closed() {
            self.state = State::Closed {
                code: CloseCode(code),
            };
        }
        if self.is_server {
            // The server closes TCP first (§7.1.1).
            self.transport_closed = true;
        }
    }
}

#[derive(Clone, Debug)]
struct Model {
    client: MSide,
    server: MSide,
    to_server: VecDeque<MFrame>,
    to_client: VecDeque<MFrame>,
}

impl Model {
    fn new() -> Self {
        Model {
            client: MSide::new(false),
            server: MSide::new(true),
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
        }
    }

    fn side(&mut self, who: Who) -> (&mut MSide, &mut VecDeque<MFrame>) {
        match who {
            Who::Client => (&mut self.client, &mut self.to_server),
            Who::Server => (&mut self.server, &mut self.to_client),
        }
    }

    /// The result of a data command, and its effect.
    fn send(&mut self, who: Who, kind: MessageKind, fin: bool, whole: bool) -> Result<(), Misuse> {
        let (side, wire) = self.side(who);
        if whole && side.outgoing.is_some() {
            return Err(Misuse::MessageInProgress);
        }
        if side.state != State::Open {
            return Err(Misuse::Closed);
        }
        if side.outgoing.is_some_and(|open| open != kind) {
            return Err(Misuse::MessageInProgress);
        }
        wire.push_back(MFrame::Data { fin });
        side.outgoing = if fin { None } else { Some(kind) };
        Ok(())
    }

    fn control(&mut self, who: Who) -> Result<(), Misuse> {
        let (side, _) = self.side(who);
        if side.state != State::Open {
            return Err(Misuse::Closed);
        }
        Ok(())
    }

    fn close(&mut self, who: Who, code: u16) -> Result<(), Misuse> {
        let (side, wire) = self.side(who);
        if side.state != State::Open {
            return Err(Misuse::Closed);
        }
        side.state = State::Closing {
            initiator: Side::Local,
        };
        wire.push_back(MFrame::Close(code));
        Ok(())
    }

    /// Delivers what is in flight towards `to`, then an EOF if the sender's
    /// transport is closed. Returns whether anything happened.
    fn deliver(&mut self, to: Who) -> bool {
        let (from_side, to_side, wire, back) = match to {
            Who::Server => (
                &self.client,
                &mut self.server,
                &mut self.to_server,
                &mut self.to_client,
            ),
            Who::Client => (
                &self.server,
                &mut self.client,
                &mut self.to_client,
                &mut self.to_server,
            ),
        };
        if to_side.transport_closed {
            let had = !wire.is_empty();
            wire.clear();
            return had;
        }
        let mut progress = false;
        while let Some(frame) = wire.pop_front() {
            progress = true;
            if to_side.transport_closed {
                continue;
            }
            let ignoring = matches!(
                to_side.state,
                State::Closed { .. }
                    | State::Closing {
                        initiator: Side::Remote
                    }
            );
            if ignoring {
                continue;
            }
            match frame {
                MFrame::Data { fin } => {
                    if fin {
                        to_side.messages += 1;
                    }
                }
                MFrame::Close(code) => {
                    to_side.got_close = true;
                    if to_side.state == State::Open {
                        // Echoed at once (the harness drains output after
                        // every chunk); writing the echo closes.
                        back.push_back(MFrame::Close(code));
                    }
                    to_side.set_closed(code);
                }
            }
        }
        if wire.is_empty()
            && from_side.transport_closed
            && !to_side.eof_seen
            && !to_side.transport_closed
        {
            progress = true;
            to_side.eof_seen = true;
            to_side.transport_closed = true;
            to_side.set_closed(1006);
        }
        progress
    }

    fn cut(&mut self) {
        self.to_server.clear();
        self.to_client.clear();
        for side in [&mut self.client, &mut self.server] {
            if !side.eof_seen {
                side.eof_seen = true;
                side.transport_closed = true;
                side.set_closed(1006);
            }
        }
    }

    fn advance(&mut self) {
        for _ in 0..1000 {
            let a = self.deliver(Who::Server);
            let b = self.deliver(Who::Client);
            if !a && !b {
                return;
            }
        }
        panic!("model never went quiet");
    }

    fn stall(&mut self) {
        for side in [&mut self.client, &mut self.server] {
            side.set_closed(1006);
            // Every side ends up with a fired close or keepalive deadline.
            side.transport_closed = true;
        }
    }
}

// ----- driving the real pair -----

/// Runs `$body` with `$ep` and `$wire` for `$who`.
macro_rules! on_side {
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

fn payload(len: u8) -> Vec<u8> {
    (0..len).map(|i| b'a' + i % 26).collect()
}

fn misuse<T>(r: Result<T, Error>) -> Result<(), Misuse> {
    match r {
        Ok(_) => Ok(()),
        Err(Error::Misuse(m)) => Err(m),
        Err(e) => panic!("command failed with a non-misuse error: {e:?}"),
    }
}

fn send_whole<R: wsproto::rand_core::RngCore>(
    ep: &mut Endpoint<R>,
    wire: &mut Vec<u8>,
    kind: MessageKind,
    data: &[u8],
) -> Result<(), Error> {
    let mut out = vec![0u8; data.len() + 14];
    let n = match kind {
        MessageKind::Text => ep
            .conn
            .send_text(std::str::from_utf8(data).expect("ascii"), &mut out)?,
        MessageKind::Binary => ep.conn.send_binary(data, &mut out)?,
    };
    wire.extend_from_slice(&out[..n]);
    ep.sent.extend_from_slice(&out[..n]);
    ep.transmit(wire);
    Ok(())
}

/// Delivers the wire towards `to` in chunks, then EOF once the sender's
/// transport is closed (mirrors the harness's own delivery, one direction).
fn deliver(pair: &mut Pair, to: Who, chunk: usize) {
    match to {
        Who::Server => deliver_one(
            &mut pair.to_server,
            pair.client.transport_closed,
            &mut pair.server,
            &mut pair.to_client,
            chunk,
        ),
        Who::Client => deliver_one(
            &mut pair.to_client,
            pair.server.transport_closed,
            &mut pair.client,
            &mut pair.to_server,
            chunk,
        ),
    }
}

fn deliver_one<R: wsproto::rand_core::RngCore>(
    wire: &mut Vec<u8>,
    from_closed: bool,
    to: &mut Endpoint<R>,
    back: &mut Vec<u8>,
    chunk: usize,
) {
    let bytes = std::mem::take(wire);
    if to.transport_closed {
        return;
    }
    for piece in bytes.chunks(chunk) {
        if to.transport_closed {
            break;
        }
        to.feed(piece);
        to.transmit(back);
    }
    if from_closed && !to.eof_seen && !to.transport_closed {
        to.eof();
        to.transmit(back);
    }
}

/// Lets `STALL` seconds pass without delivering anything, firing every
/// deadline on the way and writing what the timers queue.
fn stall(pair: &mut Pair) {
    let target = pair.now + Duration::from_secs(STALL);
    for _ in 0..10_000 {
        match pair.next_deadline() {
            Some(at) if at <= target => {
                if at > pair.now {
                    pair.now = at;
                }
                let now = pair.now;
                let fired = pair.client.fire(now) | pair.server.fire(now);
                pair.client.transmit(&mut pair.to_server);
                pair.server.transmit(&mut pair.to_client);
                assert!(fired, "deadline {at:?} reported but nothing fired");
            }
            _ => {
                pair.now = target;
                return;
            }
        }
    }
    panic!("too many deadlines");
}

fn cut(pair: &mut Pair) {
    pair.to_server.clear();
    pair.to_client.clear();
    let mut lost = Vec::new();
    if !pair.client.eof_seen {
        pair.client.eof();
        pair.client.transmit(&mut lost);
    }
    if !pair.server.eof_seen {
        pair.server.eof();
        pair.server.transmit(&mut lost);
    }
}

fn close_frames_sent(bytes: &[u8]) -> usize {
    let mut rest = bytes;
    let mut closes = 0;
    while !rest.is_empty() {
        let HeaderStatus::Complete(h, n) = FrameHeader::parse(rest).expect("valid frames") else {
            panic!("a partial frame was written");
        };
        if h.opcode == OpCode::Close {
            closes += 1;
        }
        rest = &rest[n + h.payload_len as usize..];
    }
    closes
}

/// Per side: data chunks seen when the peer's Close arrived.
#[derive(Default)]
struct Watch {
    chunks_at_close: [Option<usize>; 2],
}

fn check<R: wsproto::rand_core::RngCore>(
    ep: &Endpoint<R>,
    model: &MSide,
    watch: &mut Option<usize>,
    name: &str,
    ops: &[Op],
) {
    let ctx = || format!("{name} after {ops:?}");
    assert_eq!(ep.conn.state(), model.state, "state: {}", ctx());
    assert_eq!(
        ep.transport_closed,
        model.transport_closed,
        "transport: {}",
        ctx()
    );
    let messages = ep
        .received
        .events
        .iter()
        .filter(|e| matches!(e, Ev::Text(_) | Ev::Binary(_)))
        .count();
    assert_eq!(messages, model.messages, "messages: {}", ctx());
    let closes: Vec<usize> = ep
        .received
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Ev::Close { .. }))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        closes.len(),
        usize::from(model.got_close),
        "close events: {}",
        ctx()
    );
    if let Some(&at) = closes.first() {
        assert!(
            ep.received.events[at + 1..]
                .iter()
                .all(|e| !matches!(e, Ev::Text(_) | Ev::Binary(_))),
            "data after the peer's Close: {}",
            ctx()
        );
        let chunks = *watch.get_or_insert(ep.received.chunks);
        assert_eq!(ep.received.chunks, chunks, "chunks after Close: {}", ctx());
    }
    assert!(
        close_frames_sent(&ep.sent) <= 1,
        "two Close frames: {}",
        ctx()
    );
    if model.is_server && model.closed() {
        assert!(ep.conn.should_close_transport(), "{}", ctx());
    }
    for e in &ep.errors {
        assert!(
            matches!(e, Error::AbnormalClosure | Error::Timeout(_)),
            "unexpected error {e:?}: {}",
            ctx()
        );
        assert_eq!(e.close_code(), Some(CloseCode::ABNORMAL));
    }
}

fn run(ops: &[Op]) {
    let mut pair = Pair::new(config());
    let mut model = Model::new();
    let mut watch = Watch::default();
    for (i, &op) in ops.iter().enumerate() {
        match op {
            Op::Whole { who, kind, len } => {
                let data = payload(len);
                let real = on_side!(pair, who, |ep, wire| send_whole(ep, wire, kind, &data));
                assert_eq!(misuse(real), model.send(who, kind, true, true), "{op:?}");
            }
            Op::Fragment {
                who,
                kind,
                len,
                fin,
            } => {
                let real = pair.send_fragment(who, kind, &payload(len), fin);
                assert_eq!(misuse(real), model.send(who, kind, fin, false), "{op:?}");
            }
            Op::Ping { who } => {
                let real = pair.ping(who, b"model");
                assert_eq!(misuse(real), model.control(who), "{op:?}");
            }
            Op::Pong { who } => {
                let real = on_side!(pair, who, |ep, wire| {
                    let r = ep.conn.pong(b"beat");
                    ep.transmit(wire);
                    r
                });
                assert_eq!(misuse(real), model.control(who), "{op:?}");
            }
            Op::Close { who, code } => {
                let real = pair.close(who, CloseCode(code), "");
                assert_eq!(misuse(real), model.close(who, code), "{op:?}");
            }
            Op::Deliver { to, chunk } => {
                deliver(&mut pair, to, chunk);
                model.deliver(to);
            }
            Op::Cut => {
                cut(&mut pair);
                model.cut();
            }
            Op::Advance { secs } => {
                pair.advance(Duration::from_secs(secs));
                model.advance();
            }
            Op::Stall => {
                stall(&mut pair);
                model.stall();
            }
        }
        let done = &ops[..=i];
        let [client_watch, server_watch] = &mut watch.chunks_at_close;
        check(&pair.client, &model.client, client_watch, "client", done);
        check(&pair.server, &model.server, server_watch, "server", done);
    }
    // However the session went, letting it run to the end closes both sides.
    pair.advance(Duration::from_secs(STALL));
    model.advance();
    if !model.client.closed() || !model.server.closed() {
        // Still open: close from the client and run the handshake out.
        if model.client.state == State::Open {
            pair.close(Who::Client, CloseCode::NORMAL, "")
                .expect("close");
        }
        pair.advance(Duration::from_secs(STALL));
    }
    assert!(matches!(pair.state(Who::Client), State::Closed { .. }));
    assert!(matches!(pair.state(Who::Server), State::Closed { .. }));
    assert!(pair.server.conn.should_close_transport());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn connection_matches_model(ops in prop::collection::vec(op(), 1..60)) {
        run(&ops);
    }
}

/// A few fixed sessions, readable on their own.
#[test]
fn fixed_sessions() {
    use Op::*;
    let c = Who::Client;
    let s = Who::Server;
    run(&[
        Fragment {
            who: c,
            kind: MessageKind::Text,
            len: 3,
            fin: false,
        },
        Close { who: s, code: 1001 },
        Deliver { to: c, chunk: 1 },
        Fragment {
            who: c,
            kind: MessageKind::Text,
            len: 3,
            fin: true,
        },
        Deliver { to: s, chunk: 2 },
        Deliver { to: c, chunk: 7 },
    ]);
    run(&[
        Close { who: c, code: 3000 },
        Close { who: s, code: 4000 },
        Deliver { to: s, chunk: 5 },
        Deliver { to: c, chunk: 5 },
        Advance { secs: 1 },
    ]);
    run(&[
        Whole {
            who: c,
            kind: MessageKind::Binary,
            len: 9,
        },
        Close { who: c, code: 1000 },
        Stall,
        Deliver { to: s, chunk: 3 },
    ]);
    run(&[
        Ping { who: s },
        Advance { secs: 24 },
        Cut,
        Whole {
            who: s,
            kind: MessageKind::Text,
            len: 1,
        },
    ]);
}
