//! One test per peer violation (RFC 6455 §5, §7.1.7): the exact
//! `Violation`, the Close frame the connection queues for it (code from the
//! table in `wsproto::error`, reason from `Violation::reason`), the `Closed`
//! state, the transport close, that nothing from the failed frame reached the
//! application, and that every later byte is ignored. Then the valid edge
//! cases that must *not* be violations.
//!
//! Frames are built by hand here, byte by byte, so the tests do not trust the
//! encoder under test. Each case runs twice: the whole input in one read, and
//! one byte per read.

use wsproto::frame::{FrameHeader, HeaderStatus, OpCode};
use wsproto::{CloseCode, Config, Connection, Error, Limits, Role, Side, State, Violation};

// ----- helpers -----

/// A deterministic RNG for client masking keys.
struct Lcg(u64);

impl rand_core::RngCore for Lcg {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for b in dst {
            *b = self.next_u32() as u8;
        }
    }
}

type Conn = Connection<Lcg>;

fn conn(role: Role, limits: Limits) -> Conn {
    Connection::with_rng(
        role,
        Config {
            limits,
            ..Config::default()
        },
        Lcg(0x5eed),
    )
}

const FIN: u8 = 0x80;
const CONT: u8 = 0x0;
const TEXT: u8 = 0x1;
const BIN: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xa;
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A frame with first byte `b0`, minimal length form, masked with `mask`.
fn raw(b0: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(m | n as u8),
        n @ 126..=0xffff => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A well-formed frame for a receiver of `role`: masked towards a server,
/// unmasked towards a client.
fn to(role: Role, b0: u8, payload: &[u8]) -> Vec<u8> {
    raw(b0, (role == Role::Server).then_some(KEY), payload)
}

/// Just a header for a receiver of `role` with an explicit (possibly
/// non-minimal) length field `len_bytes` (`b1` low bits first).
fn header(role: Role, b0: u8, len_bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    let m = if role == Role::Server { 0x80 } else { 0 };
    out.push(m | len_bytes[0]);
    out.extend_from_slice(&len_bytes[1..]);
    if role == Role::Server {
        out.extend_from_slice(&KEY);
    }
    out
}

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

use wsproto_tests::chunk::{own, Ev};

struct Fed {
    events: Vec<Ev>,
    error: Option<Error>,
    /// Bytes handed over when the error came (or all of them).
    offered: usize,
}

/// The receive loop: keep unconsumed bytes at the front, append each chunk,
/// call `receive` until it consumes nothing and returns no event.
fn feed(c: &mut Conn, chunks: &[&[u8]]) -> Fed {
    feed_with(c, &mut Vec::new(), chunks)
}

/// [`feed`] with the unconsumed bytes kept in `pending` across calls.
fn feed_with(c: &mut Conn, pending: &mut Vec<u8>, chunks: &[&[u8]]) -> Fed {
    let mut events = Vec::new();
    let mut offered = 0;
    for chunk in chunks {
        pending.extend_from_slice(chunk);
        offered += chunk.len();
        loop {
            match c.receive(pending) {
                Ok(r) => {
                    let consumed = r.consumed;
                    let ev = r.event.map(own);
                    let idle = consumed == 0 && ev.is_none();
                    events.extend(ev);
                    pending.drain(..consumed);
                    if idle {
                        break;
                    }
                }
                Err(e) => {
                    return Fed {
                        events,
                        error: Some(e),
                        offered,
                    }
                }
            }
        }
    }
    Fed {
        events,
        error: None,
        offered,
    }
}

fn feed_all(c: &mut Conn, bytes: &[u8]) -> Fed {
    feed(c, &[bytes])
}

/// Everything `poll_transmit` has queued.
fn drain(c: &mut Conn) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut buf = [0u8; 256];
        let n = c.poll_transmit(&mut buf).expect("poll_transmit");
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Splits output into frames `(opcode, fin, unmasked payload)`, checking the
/// mask bit matches the sender's role.
fn frames(mut bytes: &[u8], sender: Role) -> Vec<(OpCode, bool, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (h, n) = match FrameHeader::parse(bytes) {
            Ok(HeaderStatus::Complete(h, n)) => (h, n),
            other => panic!("output does not parse as frames: {other:?} in {bytes:02x?}"),
        };
        assert_eq!(h.rsv, 0);
        assert_eq!(h.mask.is_some(), sender == Role::Client, "mask bit vs role");
        let len = h.payload_len as usize;
        let mut payload = bytes[n..n + len].to_vec();
        if let Some(key) = h.mask {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        out.push((h.opcode, h.fin, payload));
        bytes = &bytes[n + len..];
    }
    out
}

fn data_of(events: &[Ev]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        match e {
            Ev::Text(t, _) => out.extend_from_slice(t.as_bytes()),
            Ev::Binary(b, _) => out.extend_from_slice(b),
            Ev::Ping(_) | Ev::Pong(_) | Ev::Close(..) => {}
        }
    }
    out
}

/// The table from the brief, written out independently of the core.
fn table_code(v: Violation) -> u16 {
    match v {
        Violation::InvalidUtf8 | Violation::InvalidCloseReason => 1007,
        Violation::FrameTooLarge
        | Violation::MessageTooLarge
        | Violation::TooManyFragments
        | Violation::BudgetExceeded => 1009,
        _ => 1002,
    }
}

/// After a failure: exactly one Close with the table's code and the
/// violation's reason, `Closed`, transport to be closed, later input ignored.
fn assert_failed(c: &mut Conn, v: Violation, ctx: &str) {
    let role = c.role();
    let code = CloseCode(table_code(v));
    assert_eq!(v.close_code(), code, "{ctx}: table");
    assert_eq!(c.state(), State::Closed { code }, "{ctx}: state");
    assert!(
        !c.should_close_transport(),
        "{ctx}: the Close must be written before the transport closes"
    );
    let out = drain(c);
    let sent = frames(&out, role);
    let expected = close_payload(code.0, v.reason().as_bytes());
    assert_eq!(
        sent,
        vec![(OpCode::Close, true, expected)],
        "{ctx}: exactly one Close frame"
    );
    assert!(c.should_close_transport(), "{ctx}: should close transport");
    assert_eq!(c.poll_timeout(), None, "{ctx}: no timers once failed");

    // Later input, valid or not, is consumed whole and produces nothing.
    let later = [
        to(role, FIN | TEXT, b"ok"),
        to(role, FIN | BIN, b"\x00\x01"),
        to(role, FIN | PING, b"ping"),
        to(role, FIN | CLOSE, &close_payload(1000, b"bye")),
        vec![0xff; 9],
    ];
    for mut bytes in later {
        let len = bytes.len();
        let r = c.receive(&mut bytes);
        assert_eq!(
            r,
            Ok(wsproto::Received {
                consumed: len,
                event: None
            }),
            "{ctx}: later input must be ignored"
        );
    }
    assert_eq!(
        drain(c),
        Vec::<u8>::new(),
        "{ctx}: no pong, no second close"
    );
    assert_eq!(c.state(), State::Closed { code }, "{ctx}: still closed");
    assert!(c.should_close_transport(), "{ctx}");
}

/// One violation scenario.
struct Case {
    name: String,
    role: Role,
    limits: Limits,
    /// Valid frames fed (and their output drained) before the bad ones.
    prelude: Vec<u8>,
    bad: Vec<u8>,
    violation: Violation,
    /// The data that may surface while `bad` is fed (a prefix of it will).
    may_surface: Vec<u8>,
    /// In one-byte feeding, the error must come by this many bytes of `bad`.
    fail_by: Option<usize>,
}

impl Case {
    fn new(name: impl Into<String>, role: Role, bad: Vec<u8>, violation: Violation) -> Case {
        Case {
            name: name.into(),
            role,
            limits: Limits::DEFAULT,
            prelude: Vec::new(),
            bad,
            violation,
            may_surface: Vec::new(),
            fail_by: None,
        }
    }
    fn prelude(mut self, p: Vec<u8>) -> Case {
        self.prelude = p;
        self
    }
    fn limits(mut self, l: Limits) -> Case {
        self.limits = l;
        self
    }
    fn may_surface(mut self, s: &[u8]) -> Case {
        self.may_surface = s.to_vec();
        self
    }
    fn fail_by(mut self, n: usize) -> Case {
        self.fail_by = Some(n);
        self
    }
}

fn check(case: &Case) {
    for bytewise in [false, true] {
        let ctx = format!(
            "{:?} / {} / {:?} role / {}",
            case.violation,
            case.name,
            case.role,
            if bytewise { "1-byte reads" } else { "one read" }
        );
        let mut c = conn(case.role, case.limits);
        let mut pending = Vec::new();
        let pre = feed_with(&mut c, &mut pending, &[&case.prelude]);
        assert_eq!(pre.error, None, "{ctx}: prelude");
        let _ = drain(&mut c);
        assert_eq!(c.state(), State::Open, "{ctx}: open after prelude");
        let chunks: Vec<&[u8]> = if bytewise {
            case.bad.chunks(1).collect()
        } else {
            vec![&case.bad[..]]
        };
        let fed = feed_with(&mut c, &mut pending, &chunks);
        assert_eq!(
            fed.error,
            Some(Error::Protocol(case.violation)),
            "{ctx}: error (events {:?})",
            fed.events
        );
        let surfaced = data_of(&fed.events);
        assert!(
            case.may_surface.starts_with(&surfaced),
            "{ctx}: surfaced {surfaced:02x?}, only a prefix of {:02x?} allowed",
            case.may_surface
        );
        if let (true, Some(n)) = (bytewise, case.fail_by) {
            assert!(
                fed.offered <= n,
                "{ctx}: failed only after {} bytes, expected by {n}",
                fed.offered
            );
        }
        assert_failed(&mut c, case.violation, &ctx);
    }
}

const BOTH: [Role; 2] = [Role::Server, Role::Client];

// ----- one test per violation -----

#[test]
fn reserved_bits() {
    for role in BOTH {
        for (rsv, bit) in [
            (0x40, "RSV1"),
            (0x20, "RSV2"),
            (0x10, "RSV3"),
            (0x70, "all"),
        ] {
            for (op, what) in [
                (TEXT, "text"),
                (BIN, "binary"),
                (PING, "ping"),
                (CONT, "cont"),
            ] {
                let prelude = if op == CONT {
                    to(role, BIN, b"a")
                } else {
                    Vec::new()
                };
                let bad = to(role, FIN | rsv | op, b"abc");
                let hl = bad.len() - 3;
                check(
                    &Case::new(
                        format!("{bit} on {what}"),
                        role,
                        bad,
                        Violation::ReservedBits,
                    )
                    .prelude(prelude)
                    .may_surface(b"")
                    .fail_by(hl),
                );
            }
        }
    }
}

#[test]
fn reserved_opcode() {
    for role in BOTH {
        for op in (0x3..=0x7).chain(0xb..=0xf) {
            for fin in [FIN, 0] {
                check(
                    &Case::new(
                        format!("opcode {op:#x} fin {}", fin != 0),
                        role,
                        to(role, fin | op, b"xyz"),
                        Violation::ReservedOpcode,
                    )
                    .fail_by(2),
                );
            }
        }
    }
}

#[test]
fn unmasked_frame() {
    for (op, payload) in [
        (TEXT, &b"hi"[..]),
        (BIN, b"\x01\x02"),
        (PING, b""),
        (PONG, b"x"),
        (CLOSE, b"\x03\xe8"),
    ] {
        check(
            &Case::new(
                format!("unmasked opcode {op:#x} to server"),
                Role::Server,
                raw(FIN | op, None, payload),
                Violation::UnmaskedFrame,
            )
            .fail_by(2),
        );
    }
    // Also in the middle of a fragmented message.
    check(
        &Case::new(
            "unmasked continuation",
            Role::Server,
            raw(FIN | CONT, None, b"rest"),
            Violation::UnmaskedFrame,
        )
        .prelude(to(Role::Server, TEXT, b"first")),
    );
}

#[test]
fn masked_frame() {
    for (op, payload) in [
        (TEXT, &b"hi"[..]),
        (BIN, b"\x01\x02"),
        (PING, b""),
        (PONG, b"x"),
        (CLOSE, b"\x03\xe8"),
    ] {
        check(
            &Case::new(
                format!("masked opcode {op:#x} to client"),
                Role::Client,
                raw(FIN | op, Some(KEY), payload),
                Violation::MaskedFrame,
            )
            .fail_by(6),
        );
    }
}

#[test]
fn control_frame_too_long() {
    for role in BOTH {
        for op in [PING, PONG, CLOSE] {
            // 126 bytes in the 16-bit form, and 70000 in the 64-bit form: refused
            // from the second header byte, before any length or payload.
            let mut p126 = vec![0x03, 0xe8];
            p126.resize(126, b'a');
            check(
                &Case::new(
                    format!("opcode {op:#x} with 126 bytes"),
                    role,
                    to(role, FIN | op, &p126),
                    Violation::ControlFrameTooLong,
                )
                .fail_by(2),
            );
            check(
                &Case::new(
                    format!("opcode {op:#x} with 64-bit length"),
                    role,
                    header(role, FIN | op, &[127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]),
                    Violation::ControlFrameTooLong,
                )
                .fail_by(2),
            );
        }
    }
}

#[test]
fn fragmented_control_frame() {
    for role in BOTH {
        for op in [PING, PONG, CLOSE] {
            check(
                &Case::new(
                    format!("opcode {op:#x} without FIN"),
                    role,
                    to(role, op, b""),
                    Violation::FragmentedControlFrame,
                )
                .fail_by(2),
            );
            // Between the fragments of a message too.
            check(
                &Case::new(
                    format!("opcode {op:#x} without FIN mid-message"),
                    role,
                    to(role, op, b"\x03\xe8"),
                    Violation::FragmentedControlFrame,
                )
                .prelude(to(role, TEXT, b"half")),
            );
        }
    }
}

#[test]
fn length_overflow() {
    for role in BOTH {
        for top in [0x80u8, 0xff] {
            check(
                &Case::new(
                    format!("64-bit length with top byte {top:#x}"),
                    role,
                    header(role, FIN | BIN, &[127, top, 0, 0, 0, 0, 0, 0, 5]),
                    Violation::LengthOverflow,
                )
                .fail_by(10),
            );
        }
    }
}

#[test]
fn non_minimal_length() {
    for role in BOTH {
        let forms: [(&str, Vec<u8>, usize); 6] = [
            ("16-bit form of 0", vec![126, 0, 0], 0),
            ("16-bit form of 5", vec![126, 0, 5], 5),
            ("16-bit form of 125", vec![126, 0, 125], 125),
            ("64-bit form of 0", vec![127, 0, 0, 0, 0, 0, 0, 0, 0], 0),
            (
                "64-bit form of 126",
                vec![127, 0, 0, 0, 0, 0, 0, 0, 126],
                126,
            ),
            (
                "64-bit form of 65535",
                vec![127, 0, 0, 0, 0, 0, 0, 0xff, 0xff],
                65535,
            ),
        ];
        for (name, len, n) in forms {
            let mut bad = header(role, FIN | BIN, &len);
            bad.resize(bad.len() + n, 0x55);
            check(&Case::new(name, role, bad, Violation::NonMinimalLength).fail_by(len.len() + 1));
        }
    }
}

#[test]
fn unexpected_continuation() {
    for role in BOTH {
        for fin in [FIN, 0] {
            check(&Case::new(
                format!("continuation first, fin {}", fin != 0),
                role,
                to(role, fin | CONT, b"zz"),
                Violation::UnexpectedContinuation,
            ));
            check(
                &Case::new(
                    format!("continuation after a finished message, fin {}", fin != 0),
                    role,
                    to(role, fin | CONT, b"zz"),
                    Violation::UnexpectedContinuation,
                )
                .prelude(cat(&[to(role, TEXT, b"ab"), to(role, FIN | CONT, b"cd")])),
            );
        }
    }
}

#[test]
fn expected_continuation() {
    for role in BOTH {
        for (open, next) in [(TEXT, TEXT), (TEXT, BIN), (BIN, BIN), (BIN, TEXT)] {
            for fin in [FIN, 0] {
                check(
                    &Case::new(
                        format!("opcode {next:#x} while {open:#x} open, fin {}", fin != 0),
                        role,
                        to(role, fin | next, b"new"),
                        Violation::ExpectedContinuation,
                    )
                    .prelude(to(role, open, b"old")),
                );
            }
        }
    }
}

#[test]
fn close_frame_too_short() {
    for role in BOTH {
        for byte in [0x03, 0x00, 0xff] {
            check(&Case::new(
                format!("one byte {byte:#x}"),
                role,
                to(role, FIN | CLOSE, &[byte]),
                Violation::CloseFrameTooShort,
            ));
        }
    }
}

#[test]
fn invalid_close_code() {
    for role in BOTH {
        for code in [
            0u16, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            for reason in [&b""[..], b"why"] {
                check(&Case::new(
                    format!("code {code} reason {reason:?}"),
                    role,
                    to(role, FIN | CLOSE, &close_payload(code, reason)),
                    Violation::InvalidCloseCode,
                ));
            }
        }
    }
}

#[test]
fn invalid_close_reason() {
    for role in BOTH {
        for (name, reason) in [
            ("0xff", &b"\xff"[..]),
            ("truncated e-acute", b"caf\xc3"),
            ("lone continuation", b"\x80abc"),
            ("surrogate", b"\xed\xa0\x80"),
            ("overlong slash", b"\xc0\xaf"),
            ("above U+10FFFF", b"\xf4\x90\x80\x80"),
        ] {
            check(&Case::new(
                name,
                role,
                to(role, FIN | CLOSE, &close_payload(1000, reason)),
                Violation::InvalidCloseReason,
            ));
        }
    }
}

#[test]
fn invalid_utf8_in_one_frame() {
    for role in BOTH {
        for (name, text) in [
            ("0xff", &b"ab\xffcd"[..]),
            ("lone continuation", b"\x80"),
            ("surrogate", b"x\xed\xa0\x80y"),
            ("overlong", b"\xc0\x80"),
            ("above U+10FFFF", b"\xf4\x90\x80\x80"),
            ("bad continuation", b"\xe2\x28\xa1"),
        ] {
            let valid = match core::str::from_utf8(text) {
                Err(e) => &text[..e.valid_up_to()],
                Ok(_) => unreachable!(),
            };
            check(
                &Case::new(
                    name,
                    role,
                    to(role, FIN | TEXT, text),
                    Violation::InvalidUtf8,
                )
                .may_surface(valid),
            );
        }
    }
}

#[test]
fn invalid_utf8_split_across_fragments() {
    for role in BOTH {
        // "€" is e2 82 ac: the lead bytes end one fragment, a wrong byte starts the next.
        check(
            &Case::new(
                "e2 82 | 28",
                role,
                cat(&[
                    to(role, TEXT, b"ok\xe2\x82"),
                    to(role, FIN | CONT, b"\x28x"),
                ]),
                Violation::InvalidUtf8,
            )
            .may_surface(b"ok"),
        );
        check(&Case::new(
            "f0 | 9f | 98 | 41",
            role,
            cat(&[
                to(role, TEXT, b"\xf0"),
                to(role, CONT, b"\x9f"),
                to(role, CONT, b"\x98"),
                to(role, FIN | CONT, b"\x41"),
            ]),
            Violation::InvalidUtf8,
        ));
        // The fragment boundary itself is fine; the next fragment is bad.
        check(
            &Case::new(
                "valid | 0xff",
                role,
                cat(&[to(role, TEXT, b"good"), to(role, FIN | CONT, b"\xff")]),
                Violation::InvalidUtf8,
            )
            .may_surface(b"good"),
        );
        // A control frame between the halves of a split code point.
        check(&Case::new(
            "e2 | pong | 41",
            role,
            cat(&[
                to(role, TEXT, b"\xe2"),
                to(role, FIN | PONG, b""),
                to(role, FIN | CONT, b"\x41"),
            ]),
            Violation::InvalidUtf8,
        ));
    }
}

#[test]
fn invalid_utf8_truncated_at_message_end() {
    for role in BOTH {
        for (name, parts) in [
            (
                "one frame ends in e2 82",
                vec![(FIN | TEXT, &b"ok\xe2\x82"[..])],
            ),
            ("one frame ends in f0", vec![(FIN | TEXT, b"\xf0")]),
            (
                "last fragment ends in c3",
                vec![(TEXT, &b"ab"[..]), (FIN | CONT, b"caf\xc3")],
            ),
            (
                "empty final fragment after e2 82",
                vec![(TEXT, &b"x\xe2\x82"[..]), (FIN | CONT, b"")],
            ),
        ] {
            let bad = cat(&parts
                .iter()
                .map(|(b0, p)| to(role, *b0, p))
                .collect::<Vec<_>>());
            let all: Vec<u8> = parts.iter().flat_map(|(_, p)| p.iter().copied()).collect();
            let valid = &all[..core::str::from_utf8(&all).unwrap_err().valid_up_to()];
            check(&Case::new(name, role, bad, Violation::InvalidUtf8).may_surface(valid));
        }
    }
}

/// The brief's example: a text frame whose second read has bad UTF-8 surfaces
/// only the valid first read, never the bad bytes.
#[test]
fn invalid_utf8_split_across_reads() {
    for role in BOTH {
        let frame = to(role, FIN | TEXT, b"hello\xffworld");
        let hl = frame.len() - 11;
        let mut c = conn(role, Limits::DEFAULT);
        let mut pending = Vec::new();
        let first = feed_with(&mut c, &mut pending, &[&frame[..hl + 5]]);
        assert_eq!(first.error, None);
        assert_eq!(first.events, vec![Ev::Text("hello".into(), false)]);
        let second = feed_with(&mut c, &mut pending, &[&frame[hl + 5..]]);
        assert_eq!(second.error, Some(Error::Protocol(Violation::InvalidUtf8)));
        assert_eq!(second.events, vec![]);
        assert_failed(&mut c, Violation::InvalidUtf8, "split across reads");

        // A code point split across reads, then a bad continuation.
        let frame = to(role, FIN | TEXT, b"a\xe2\x82\x28");
        let hl = frame.len() - 4;
        let mut c = conn(role, Limits::DEFAULT);
        let mut pending = Vec::new();
        let first = feed_with(&mut c, &mut pending, &[&frame[..hl + 3]]);
        assert_eq!(first.error, None);
        assert_eq!(first.events, vec![Ev::Text("a".into(), false)]);
        let second = feed_with(&mut c, &mut pending, &[&frame[hl + 3..]]);
        assert_eq!(second.error, Some(Error::Protocol(Violation::InvalidUtf8)));
        assert_eq!(second.events, vec![]);
        assert_failed(
            &mut c,
            Violation::InvalidUtf8,
            "code point split across reads",
        );
    }
}

/// Fail fast: a bad byte early in a long frame fails the connection before
/// the rest of the frame arrives.
#[test]
fn invalid_utf8_fails_fast() {
    for role in BOTH {
        for (name, lead) in [
            ("0xff", &b"ab\xff"[..]),
            ("overlong e0 80", b"\xe0\x80"),
            ("surrogate ed a0", b"\xed\xa0"),
            ("above U+10FFFF f4 90", b"\xf4\x90"),
            ("f5", b"\xf5"),
        ] {
            let mut text = lead.to_vec();
            text.resize(1000, b'z');
            let frame = to(role, FIN | TEXT, &text);
            let hl = frame.len() - 1000;
            // Only the header and the lead bytes arrive: the error must come now.
            let mut c = conn(role, Limits::DEFAULT);
            let fed = feed_all(&mut c, &frame[..hl + lead.len()]);
            assert_eq!(
                fed.error,
                Some(Error::Protocol(Violation::InvalidUtf8)),
                "{name}: {:?}",
                fed.events
            );
            let ok = core::str::from_utf8(lead).unwrap_err().valid_up_to();
            assert!(lead[..ok].starts_with(&data_of(&fed.events)), "{name}");
            assert_failed(&mut c, Violation::InvalidUtf8, name);
            // And byte by byte, through the general check.
            check(
                &Case::new(name, role, frame, Violation::InvalidUtf8)
                    .may_surface(&lead[..ok])
                    .fail_by(hl + lead.len()),
            );
        }
    }
}

#[test]
fn frame_too_large() {
    let limits = Limits {
        max_frame_payload: 10,
        ..Limits::DEFAULT
    };
    for role in BOTH {
        for (op, prelude) in [
            (FIN | BIN, Vec::new()),
            (TEXT, Vec::new()),
            (FIN | CONT, to(role, BIN, b"0123456789")),
        ] {
            let bad = to(role, op, b"0123456789a");
            let hl = bad.len() - 11;
            check(
                &Case::new(
                    format!("11 bytes, opcode {op:#x}"),
                    role,
                    bad,
                    Violation::FrameTooLarge,
                )
                .limits(limits)
                .prelude(prelude)
                .fail_by(hl),
            );
        }
        // With the default limit, a huge declared length fails on the header alone.
        check(
            &Case::new(
                "2^62 bytes declared",
                role,
                header(role, FIN | BIN, &[127, 0x40, 0, 0, 0, 0, 0, 0, 0]),
                Violation::FrameTooLarge,
            )
            .fail_by(if role == Role::Server { 14 } else { 10 }),
        );
        check(
            &Case::new(
                "16 MiB + 1 declared",
                role,
                header(role, FIN | TEXT, &[127, 0, 0, 0, 0, 1, 0, 0, 1]),
                Violation::FrameTooLarge,
            )
            .fail_by(if role == Role::Server { 14 } else { 10 }),
        );
    }
}

#[test]
fn message_too_large() {
    let limits = Limits {
        max_message_size: 10,
        ..Limits::DEFAULT
    };
    for role in BOTH {
        for first in [BIN, TEXT] {
            let prelude = to(role, first, b"012345");
            let bad = to(role, FIN | CONT, b"6789a");
            let hl = bad.len() - 5;
            check(
                &Case::new(
                    format!("6 + 5 bytes, opcode {first:#x}"),
                    role,
                    bad,
                    Violation::MessageTooLarge,
                )
                .limits(limits)
                .prelude(prelude)
                .fail_by(hl),
            );
        }
        // The first frame alone, within the frame limit but above the message limit.
        check(
            &Case::new(
                "single 11-byte frame",
                role,
                to(role, FIN | BIN, b"0123456789a"),
                Violation::MessageTooLarge,
            )
            .limits(limits),
        );
        // Many small continuation frames, a control frame in between.
        check(
            &Case::new(
                "4 + ping + 4 + 4",
                role,
                cat(&[
                    to(role, BIN, b"abcd"),
                    to(role, FIN | PONG, b""),
                    to(role, CONT, b"efgh"),
                    to(role, FIN | CONT, b"ijkl"),
                ]),
                Violation::MessageTooLarge,
            )
            .limits(limits)
            .may_surface(b"abcdefgh"),
        )
    }
}

#[test]
fn too_many_fragments() {
    let limits = Limits {
        max_fragments: 3,
        ..Limits::DEFAULT
    };
    for role in BOTH {
        for first in [BIN, TEXT] {
            let prelude = cat(&[
                to(role, first, b"a"),
                to(role, CONT, b"b"),
                to(role, CONT, b""),
            ]);
            for fin in [FIN, 0] {
                let bad = to(role, fin | CONT, b"c");
                let hl = bad.len() - 1;
                check(
                    &Case::new(
                        format!("4th frame, opcode {first:#x}, fin {}", fin != 0),
                        role,
                        bad,
                        Violation::TooManyFragments,
                    )
                    .limits(limits)
                    .prelude(prelude.clone())
                    .fail_by(hl),
                );
            }
        }
    }
}

/// Every variant appears above; this pins the table itself in one place.
#[test]
fn table_matches_close_codes() {
    use Violation::*;
    for v in [
        ReservedBits,
        ReservedOpcode,
        UnmaskedFrame,
        MaskedFrame,
        ControlFrameTooLong,
        FragmentedControlFrame,
        LengthOverflow,
        NonMinimalLength,
        UnexpectedContinuation,
        ExpectedContinuation,
        CloseFrameTooShort,
        InvalidCloseCode,
        InvalidCloseReason,
        InvalidUtf8,
        FrameTooLarge,
        MessageTooLarge,
        TooManyFragments,
        BudgetExceeded,
    ] {
        assert_eq!(v.close_code().0, table_code(v), "{v:?}");
        assert!(v.reason().len() <= 123, "{v:?}");
        assert_eq!(
            Error::Protocol(v).close_code(),
            Some(v.close_code()),
            "{v:?}"
        );
    }
}

/// A violation after this side already sent its Close: the error and the
/// `Closed` state with the violation's code, but no second Close frame.
#[test]
fn violation_after_local_close_sends_no_second_close() {
    for role in BOTH {
        let mut c = conn(role, Limits::DEFAULT);
        c.close(CloseCode::NORMAL, "bye").expect("close");
        let first = drain(&mut c);
        assert_eq!(frames(&first, role).len(), 1);
        let fed = feed_all(&mut c, &to(role, FIN | 0x3, b""));
        assert_eq!(fed.error, Some(Error::Protocol(Violation::ReservedOpcode)));
        assert_eq!(
            c.state(),
            State::Closed {
                code: CloseCode::PROTOCOL_ERROR
            }
        );
        assert_eq!(drain(&mut c), Vec::<u8>::new());
        assert!(c.should_close_transport());
        let mut later = to(role, FIN | TEXT, b"ok");
        let len = later.len();
        assert_eq!(
            c.receive(&mut later),
            Ok(wsproto::Received {
                consumed: len,
                event: None
            })
        );
    }
}

/// A pong queued by an earlier ping may still go out, but the Close is the
/// last frame written and there is exactly one.
#[test]
fn violation_after_a_ping_in_the_same_read() {
    for role in BOTH {
        let mut c = conn(role, Limits::DEFAULT);
        let bytes = cat(&[to(role, FIN | PING, b"hb"), to(role, FIN | 0x70 | BIN, b"")]);
        let fed = feed_all(&mut c, &bytes);
        assert_eq!(fed.events, vec![Ev::Ping(b"hb".to_vec())]);
        assert_eq!(fed.error, Some(Error::Protocol(Violation::ReservedBits)));
        let out = frames(&drain(&mut c), role);
        let closes: Vec<_> = out.iter().filter(|f| f.0 == OpCode::Close).collect();
        assert_eq!(closes.len(), 1, "{out:?}");
        assert_eq!(out.last().map(|f| f.0), Some(OpCode::Close), "{out:?}");
        assert_eq!(
            out.last().map(|f| f.2.clone()),
            Some(close_payload(
                1002,
                Violation::ReservedBits.reason().as_bytes()
            ))
        );
        assert!(c.should_close_transport());
    }
}

// ----- valid edge cases that must not be violations -----

/// Feeds `bytes` in one read and byte by byte; both must give `expected`
/// with no error. Returns the connection fed in one read.
fn accept(role: Role, limits: Limits, bytes: &[u8], expected: &[Ev]) -> Conn {
    let mut byte_conn = conn(role, limits);
    let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
    let fed = feed(&mut byte_conn, &chunks);
    assert_eq!(fed.error, None, "byte by byte");
    assert_eq!(
        reassemble(&fed.events),
        reassemble(expected),
        "byte by byte"
    );

    let mut c = conn(role, limits);
    let fed = feed_all(&mut c, bytes);
    assert_eq!(fed.error, None);
    assert_eq!(fed.events, expected);
    c
}

/// Joins data chunks into whole messages, so reads of any size compare equal.
fn reassemble(events: &[Ev]) -> Vec<Ev> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut bin = Vec::new();
    for e in events {
        match e {
            Ev::Text(t, fin) => {
                text.push_str(t);
                if *fin {
                    out.push(Ev::Text(std::mem::take(&mut text), true));
                }
            }
            Ev::Binary(b, fin) => {
                bin.extend_from_slice(b);
                if *fin {
                    out.push(Ev::Binary(std::mem::take(&mut bin), true));
                }
            }
            other => out.push(other.clone()),
        }
    }
    out
}

#[test]
fn valid_close_codes_are_accepted() {
    let codes = (1000..=1003)
        .chain(1007..=1014)
        .chain([3000, 3999, 4000, 4999]);
    for role in BOTH {
        for code in codes.clone() {
            let bytes = to(role, FIN | CLOSE, &close_payload(code, b"fine"));
            let mut c = accept(
                role,
                Limits::DEFAULT,
                &bytes,
                &[Ev::Close(Some(code), "fine".into())],
            );
            assert_eq!(
                c.state(),
                State::Closing {
                    initiator: Side::Remote
                },
                "{code}"
            );
            // The echo carries the peer's code.
            let out = drain(&mut c);
            assert_eq!(
                frames(&out, role),
                vec![(OpCode::Close, true, code.to_be_bytes().to_vec())],
                "{code}"
            );
            assert_eq!(
                c.state(),
                State::Closed {
                    code: CloseCode(code)
                },
                "{code}"
            );
            assert_eq!(c.should_close_transport(), role == Role::Server, "{code}");
        }
    }
}

#[test]
fn empty_close_is_accepted() {
    for role in BOTH {
        let mut c = accept(
            role,
            Limits::DEFAULT,
            &to(role, FIN | CLOSE, b""),
            &[Ev::Close(None, String::new())],
        );
        let out = drain(&mut c);
        assert_eq!(frames(&out, role), vec![(OpCode::Close, true, vec![])]);
        assert_eq!(
            c.state(),
            State::Closed {
                code: CloseCode::NO_STATUS
            }
        );
    }
}

#[test]
fn close_reason_of_123_bytes_is_accepted() {
    for role in BOTH {
        // Multi-byte characters, exactly 123 bytes: the whole 125-byte payload.
        let reason = "é".repeat(61) + "x";
        assert_eq!(reason.len(), 123);
        let mut c = accept(
            role,
            Limits::DEFAULT,
            &to(role, FIN | CLOSE, &close_payload(4000, reason.as_bytes())),
            &[Ev::Close(Some(4000), reason.clone())],
        );
        assert!(!drain(&mut c).is_empty());
    }
}

#[test]
fn ping_of_125_bytes_is_accepted_and_answered() {
    for role in BOTH {
        let payload: Vec<u8> = (0..125u8).collect();
        for op in [PING, PONG] {
            let expected = if op == PING {
                Ev::Ping(payload.clone())
            } else {
                Ev::Pong(payload.clone())
            };
            let mut c = accept(
                role,
                Limits::DEFAULT,
                &to(role, FIN | op, &payload),
                &[expected],
            );
            let out = drain(&mut c);
            if op == PING {
                assert_eq!(
                    frames(&out, role),
                    vec![(OpCode::Pong, true, payload.clone())]
                );
            } else {
                assert!(out.is_empty());
            }
            assert_eq!(c.state(), State::Open);
        }
    }
}

#[test]
fn limits_are_inclusive() {
    let limits = Limits {
        max_frame_payload: 10,
        max_message_size: 20,
        max_fragments: 3,
        ..Limits::DEFAULT
    };
    for role in BOTH {
        // A 10-byte frame; 3 fragments summing to exactly 20 bytes.
        let bytes = cat(&[
            to(role, FIN | BIN, b"0123456789"),
            to(role, TEXT, b"0123456789"),
            to(role, CONT, b"abcdefghij"),
            to(role, FIN | CONT, b""),
        ]);
        let mut c = conn(role, limits);
        let fed = feed_all(&mut c, &bytes);
        assert_eq!(fed.error, None);
        assert_eq!(
            reassemble(&fed.events),
            vec![
                Ev::Binary(b"0123456789".to_vec(), true),
                Ev::Text("0123456789abcdefghij".into(), true),
            ]
        );
        assert_eq!(c.state(), State::Open);
    }
}

#[test]
fn minimal_length_boundaries_are_accepted() {
    for role in BOTH {
        for n in [0usize, 125, 126, 65535, 65536] {
            let payload = vec![0xa5; n];
            let c = accept(
                role,
                Limits::DEFAULT,
                &to(role, FIN | BIN, &payload),
                &[Ev::Binary(payload.clone(), true)],
            );
            assert_eq!(c.state(), State::Open, "{n}");
        }
    }
}
