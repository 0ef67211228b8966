//! The per-connection memory budget (`Limits::max_buffered`) under floods:
//! tiny fragments, empty continuation frames, pings, tiny messages. Each test
//! asserts the close code, the exact frame at which the budget closes the
//! connection, and that what the core made the caller retain (unconsumed
//! input, the message reassembled so far and the per-frame bookkeeping
//! charge) never went past the budget.

use wsproto::frame::{encode_frame, FrameHeader, OpCode};
use wsproto::{
    CloseCode, Config, Connection, Error, Event, Limits, Role, State, Violation,
    MIN_TRANSMIT_BUFFER,
};
use wsproto_tests::{Collector, TestRng};

const BOTH: [Role; 2] = [Role::Server, Role::Client];

/// A small budget for the floods: 64 KiB, with the per-message limits out
/// of the way so that the budget is what binds.
const BUDGET: u64 = 64 * 1024;

fn budget_limits(budget: u64) -> Limits {
    Limits {
        max_fragments: u32::MAX,
        max_message_size: u64::MAX >> 1,
        max_frame_payload: u64::MAX >> 1,
        max_buffered: budget,
        ..Limits::DEFAULT
    }
}

/// One frame as the peer of `role` sends it (masked towards a server).
fn frame(role: Role, opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask: (role == Role::Server).then_some([0x12, 0x34, 0x56, 0x78]),
        payload_len: 0,
    };
    let mut out = vec![0u8; payload.len() + 14];
    let n = encode_frame(header, payload, &mut out).expect("encode");
    out.truncate(n);
    out
}

/// The frame at which a message of frames of `payload` bytes each first
/// exceeds `budget` (1-based), from the documented charge alone.
fn failing_frame(budget: u64, payload: u64) -> u64 {
    (budget - Limits::FIXED_CHARGE) / (payload + Limits::FRAME_CHARGE) + 1
}

/// A connection fed whole frames one at a time, measuring what it makes the
/// caller retain after each.
struct Flood {
    conn: Connection<TestRng>,
    collector: Collector,
    /// Frames of the message being reassembled.
    frames_in_message: u64,
    /// Frames fed so far.
    frames: u64,
    /// Most bytes retained after any frame: unconsumed input, the partial
    /// message and `FRAME_CHARGE` per frame of it (an adapter keeping each
    /// fragment apart), plus the control frames queued for output.
    max_retained: u64,
    /// Largest `Connection::buffered()` seen.
    max_charge: u64,
    /// Largest single `poll_transmit` output, when draining.
    max_output: usize,
}

impl Flood {
    fn new(role: Role, limits: Limits) -> Self {
        let config = Config {
            limits,
            ..Config::default()
        };
        Flood {
            conn: Connection::with_rng(role, config, TestRng::new(3)),
            collector: Collector::default(),
            frames_in_message: 0,
            frames: 0,
            max_retained: 0,
            max_charge: 0,
            max_output: 0,
        }
    }

    /// Feeds one whole frame; on error returns it (the index is `self.frames`).
    fn feed(&mut self, bytes: &[u8], data: bool, fin: bool) -> Result<(), Error> {
        self.frames += 1;
        if data {
            self.frames_in_message += 1;
        }
        let mut buf = bytes.to_vec();
        let mut start = 0;
        loop {
            let received = self.conn.receive(&mut buf[start..])?;
            start += received.consumed;
            let progressed = received.consumed > 0 || received.event.is_some();
            if let Some(event) = received.event {
                if !matches!(event, Event::Ping(_) | Event::Pong(_)) {
                    self.collector.push(event);
                }
            }
            if !progressed {
                break;
            }
        }
        let unconsumed = (buf.len() - start) as u64;
        let retained = unconsumed
            + self.collector.partial_len() as u64
            + self.frames_in_message * Limits::FRAME_CHARGE;
        self.max_retained = self.max_retained.max(retained);
        self.max_charge = self.max_charge.max(self.conn.buffered());
        if data && fin {
            self.frames_in_message = 0;
        }
        Ok(())
    }

    /// Drains `poll_transmit`, returning the frames written.
    fn drain(&mut self) -> Vec<(OpCode, Vec<u8>)> {
        let mut out = [0u8; 4 * MIN_TRANSMIT_BUFFER];
        let n = self.conn.poll_transmit(&mut out).expect("transmit");
        self.max_output = self.max_output.max(n);
        parse_frames(&out[..n])
    }
}

fn parse_frames(mut bytes: &[u8]) -> Vec<(OpCode, Vec<u8>)> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let wsproto::frame::HeaderStatus::Complete(h, n) =
            FrameHeader::parse(bytes).expect("valid output")
        else {
            panic!("partial frame in output");
        };
        let len = h.payload_len as usize;
        let mut payload = bytes[n..n + len].to_vec();
        if let Some(key) = h.mask {
            wsproto::frame::apply_mask(&mut payload, key, 0);
        }
        frames.push((h.opcode, payload));
        bytes = &bytes[n + len..];
    }
    frames
}

/// After a budget failure: 1009 on the wire with the documented reason.
fn assert_closed_1009(flood: &mut Flood, err: Error, violation: Violation) {
    assert_eq!(err, Error::Protocol(violation));
    assert_eq!(err.close_code(), Some(CloseCode::MESSAGE_TOO_BIG));
    assert_eq!(
        flood.conn.state(),
        State::Closed {
            code: CloseCode::MESSAGE_TOO_BIG
        }
    );
    let sent = flood.drain();
    let mut payload = 1009u16.to_be_bytes().to_vec();
    payload.extend_from_slice(violation.reason().as_bytes());
    assert_eq!(sent.last(), Some(&(OpCode::Close, payload)));
    assert!(flood.conn.should_close_transport());
}

/// Feeds a message of `payload`-byte fragments until the connection fails;
/// returns the failing frame's index (1-based).
fn fragment_flood(flood: &mut Flood, role: Role, payload: &[u8], max: u64) -> Option<(u64, Error)> {
    let first = frame(role, OpCode::Binary, false, payload);
    let cont = frame(role, OpCode::Continuation, false, payload);
    if let Err(e) = flood.feed(&first, true, false) {
        return Some((flood.frames, e));
    }
    for _ in 1..max {
        if let Err(e) = flood.feed(&cont, true, false) {
            return Some((flood.frames, e));
        }
    }
    None
}

#[test]
fn connection_is_small_and_fixed_size() {
    let size = std::mem::size_of::<Connection>();
    let with_rng = std::mem::size_of::<Connection<TestRng>>();
    println!("size_of::<Connection>() = {size} bytes, with TestRng = {with_rng} bytes");
    assert!(size <= 1024, "{size}");
    const {
        assert!(Limits::FIXED_CHARGE >= 134 + 3 * 131);
    }
}

#[test]
fn default_budget_is_the_worst_default_message_plus_fixed_charge() {
    let l = Limits::DEFAULT;
    assert_eq!(l.max_buffered, Limits::DEFAULT_MAX_BUFFERED);
    assert_eq!(
        l.max_buffered,
        l.max_message_size + 1024 * Limits::FRAME_CHARGE + Limits::FIXED_CHARGE
    );
    assert_eq!(l.max_buffered, (64 << 20) + 129 * 1024);
    assert_eq!(
        Violation::BudgetExceeded.close_code(),
        CloseCode::MESSAGE_TOO_BIG
    );
    assert!(Violation::BudgetExceeded.reason().len() <= 123);
}

#[test]
fn one_byte_fragment_flood_closes_1009_at_the_bound() {
    for role in BOTH {
        let mut flood = Flood::new(role, budget_limits(BUDGET));
        let expected = failing_frame(BUDGET, 1);
        assert_eq!(expected, 501);
        let (at, err) = fragment_flood(&mut flood, role, b"x", 1_000_000).expect("must fail");
        assert_eq!(at, expected, "{role:?}");
        assert_closed_1009(&mut flood, err, Violation::BudgetExceeded);
        // Nothing of the failing frame surfaced: 500 bytes in 500 frames.
        assert_eq!(flood.collector.partial_len(), 500);
        assert!(flood.max_retained + Limits::FIXED_CHARGE <= BUDGET);
        assert!(flood.max_charge <= BUDGET);
        assert_eq!(
            flood.max_charge,
            Limits::FIXED_CHARGE + 500 * (1 + Limits::FRAME_CHARGE)
        );
    }
}

#[test]
fn empty_continuation_flood_closes_1009_at_the_bound() {
    for role in BOTH {
        let mut flood = Flood::new(role, budget_limits(BUDGET));
        let expected = failing_frame(BUDGET, 0);
        assert_eq!(expected, 505);
        let (at, err) = fragment_flood(&mut flood, role, b"", 1_000_000).expect("must fail");
        assert_eq!(at, expected, "{role:?}");
        assert_closed_1009(&mut flood, err, Violation::BudgetExceeded);
        assert_eq!(flood.collector.partial_len(), 0);
        assert!(flood.max_retained + Limits::FIXED_CHARGE <= BUDGET);
        assert!(flood.max_charge <= BUDGET);
        // Further input is ignored.
        let mut more = frame(role, OpCode::Continuation, true, b"late");
        let len = more.len();
        let r = flood.conn.receive(&mut more).expect("ignored");
        assert_eq!((r.consumed, r.event), (len, None));
    }
}

/// A million empty continuation frames: the default limits stop them at
/// frame 65,537 (max_fragments); with the fragment limit lifted, the default
/// budget stops them at frame 525,313 though their payload is zero.
#[test]
fn million_empty_continuations_against_the_defaults() {
    let role = Role::Server;
    let mut flood = Flood::new(role, Limits::DEFAULT);
    let (at, err) = fragment_flood(&mut flood, role, b"", 1_000_000).expect("must fail");
    assert_eq!(at, 65_537);
    assert_closed_1009(&mut flood, err, Violation::TooManyFragments);

    let limits = Limits {
        max_fragments: u32::MAX,
        ..Limits::DEFAULT
    };
    let mut flood = Flood::new(role, limits);
    let expected = failing_frame(Limits::DEFAULT_MAX_BUFFERED, 0);
    assert_eq!(expected, 525_313);
    let (at, err) = fragment_flood(&mut flood, role, b"", 1_000_000).expect("must fail");
    assert_eq!(at, expected);
    assert_closed_1009(&mut flood, err, Violation::BudgetExceeded);
    assert!(flood.max_retained + Limits::FIXED_CHARGE <= Limits::DEFAULT_MAX_BUFFERED);
    assert!(flood.max_charge <= Limits::DEFAULT_MAX_BUFFERED);
}

/// The budget is inclusive: a message charged exactly the budget passes,
/// one more byte fails on the header, before any payload surfaces.
#[test]
fn budget_boundary_is_inclusive_and_checked_on_the_header() {
    for role in BOTH {
        let fits = (BUDGET - Limits::FIXED_CHARGE - Limits::FRAME_CHARGE) as usize;
        let mut flood = Flood::new(role, budget_limits(BUDGET));
        flood
            .feed(
                &frame(role, OpCode::Binary, true, &vec![7; fits]),
                true,
                true,
            )
            .expect("exactly the budget");
        assert_eq!(flood.conn.buffered(), BUDGET);
        assert_eq!(flood.conn.state(), State::Open);

        let mut flood = Flood::new(role, budget_limits(BUDGET));
        let big = frame(role, OpCode::Binary, true, &vec![7; fits + 1]);
        let header_len = big.len() - fits - 1;
        // The header alone is enough to fail.
        let mut head = big[..header_len].to_vec();
        let err = flood.conn.receive(&mut head).expect_err("over budget");
        assert_closed_1009(&mut flood, err, Violation::BudgetExceeded);
        assert_eq!(flood.collector.partial_len(), 0);

        // Two fragments summing past it: the second header fails.
        let mut flood = Flood::new(role, budget_limits(BUDGET));
        let half = fits / 2;
        flood
            .feed(
                &frame(role, OpCode::Text, false, &vec![b'a'; half]),
                true,
                false,
            )
            .expect("first half");
        let err = flood
            .feed(
                &frame(role, OpCode::Continuation, true, &vec![b'a'; fits - half]),
                true,
                true,
            )
            .expect_err("second frame's charge passes the budget");
        assert_eq!(flood.frames, 2);
        assert_closed_1009(&mut flood, err, Violation::BudgetExceeded);
        assert_eq!(flood.collector.partial_len(), half);
    }
}

/// 100,000 pings fed without draining output: one pong is queued (the last
/// ping's payload), the connection stays open and retains nothing. Drained
/// after every ping, each drain writes exactly one pong frame.
#[test]
fn ping_flood_keeps_one_pong() {
    for role in BOTH {
        let mut flood = Flood::new(role, budget_limits(BUDGET));
        for i in 0u32..100_000 {
            let ping = frame(role, OpCode::Ping, true, &i.to_be_bytes());
            flood.feed(&ping, false, true).expect("ping");
        }
        assert_eq!(flood.conn.state(), State::Open);
        let sent = flood.drain();
        assert_eq!(sent, vec![(OpCode::Pong, 99_999u32.to_be_bytes().to_vec())]);
        assert!(flood.drain().is_empty());
        assert_eq!(flood.max_retained, 0);
        assert_eq!(flood.max_charge, Limits::FIXED_CHARGE);

        // Drained after every ping (of the largest size): one frame each time.
        let big = [0xabu8; 125];
        for _ in 0..10_000 {
            flood
                .feed(&frame(role, OpCode::Ping, true, &big), false, true)
                .expect("ping");
            let sent = flood.drain();
            assert_eq!(sent.len(), 1);
            assert_eq!(sent[0].0, OpCode::Pong);
        }
        assert!(
            flood.max_output <= MIN_TRANSMIT_BUFFER,
            "{}",
            flood.max_output
        );
    }
}

/// Pings between fragments of a message: still one pong, and the
/// fragments' charge keeps growing until the budget closes the connection.
#[test]
fn pings_between_fragments_cost_nothing() {
    let role = Role::Server;
    let mut flood = Flood::new(role, budget_limits(BUDGET));
    let ping = frame(role, OpCode::Ping, true, b"p");
    let cont = frame(role, OpCode::Continuation, false, b"");
    flood
        .feed(&frame(role, OpCode::Binary, false, b""), true, false)
        .expect("first");
    let mut failed = None;
    for _ in 0..100_000 {
        for _ in 0..10 {
            flood.feed(&ping, false, true).expect("ping");
        }
        if let Err(e) = flood.feed(&cont, true, false) {
            failed = Some(e);
            break;
        }
    }
    let err = failed.expect("budget");
    // Only the data frames count: frame 505 of the message fails.
    assert_eq!(flood.frames_in_message, failing_frame(BUDGET, 0));
    assert_closed_1009(&mut flood, err, Violation::BudgetExceeded);
    assert!(flood.max_charge <= BUDGET);
}

/// 100,000 one-byte whole messages: nothing accumulates, the connection
/// stays open, the charge never exceeds one message.
#[test]
fn tiny_message_flood_retains_nothing() {
    for role in BOTH {
        let mut flood = Flood::new(role, budget_limits(BUDGET));
        let text = frame(role, OpCode::Text, true, b"x");
        let binary = frame(role, OpCode::Binary, true, b"y");
        for i in 0..100_000 {
            let f = if i % 2 == 0 { &text } else { &binary };
            flood.feed(f, true, true).expect("message");
        }
        assert_eq!(flood.conn.state(), State::Open);
        assert_eq!(flood.collector.events.len(), 100_000);
        assert_eq!(flood.max_retained, Limits::FRAME_CHARGE);
        assert_eq!(
            flood.max_charge,
            Limits::FIXED_CHARGE + Limits::FRAME_CHARGE + 1
        );
        assert!(flood.drain().is_empty(), "nothing to answer");
    }
}

/// The same through the Pair harness: a client sending an endless message
/// of empty fragments is closed with 1009 at the computed frame, and the
/// client sees the 1009 Close.
#[test]
fn pair_client_fragment_flood() {
    let config = Config {
        limits: budget_limits(BUDGET),
        ..Config::default()
    };
    let mut pair = wsproto_tests::Pair::new(config);
    let expected = failing_frame(BUDGET, 0);
    pair.send_fragment(
        wsproto_tests::Who::Client,
        wsproto::MessageKind::Binary,
        b"",
        false,
    )
    .expect("first");
    for _ in 1..expected + 100 {
        pair.send_fragment(
            wsproto_tests::Who::Client,
            wsproto::MessageKind::Binary,
            b"",
            false,
        )
        .expect("client may send");
    }
    pair.run();
    assert_eq!(
        pair.server.errors,
        vec![Error::Protocol(Violation::BudgetExceeded)]
    );
    assert_eq!(
        pair.state(wsproto_tests::Who::Server),
        State::Closed {
            code: CloseCode::MESSAGE_TOO_BIG
        }
    );
    assert_eq!(
        pair.events(wsproto_tests::Who::Client),
        [wsproto_tests::Ev::close(1009, "memory budget exceeded")]
    );
}

/// Autobahn|Testsuite 9.3.1 and 9.4.1 send 4 MiB in 64-byte fragments
/// (65,536 frames); the default limits take them, charging 4 MiB of payload
/// and 8 MiB of bookkeeping, well inside the default budget.
#[test]
fn four_mebibytes_in_64_byte_fragments_pass_the_defaults() {
    let role = Role::Server;
    let mut flood = Flood::new(role, Limits::DEFAULT);
    let chunk = [b'x'; 64];
    assert_eq!(fragment_flood(&mut flood, role, &chunk, 65_535), None);
    let last = frame(role, OpCode::Continuation, true, &chunk);
    flood.feed(&last, true, true).expect("within the defaults");
    assert!(flood.max_charge <= Limits::DEFAULT_MAX_BUFFERED);
    assert_eq!(
        flood.collector.take(),
        [wsproto_tests::Ev::Binary(vec![b'x'; 4 << 20])]
    );
}
