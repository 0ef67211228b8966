//! Property tests (proptest): the encode/decode round trip in both roles,
//! invariance under any split of the input, masking, the incremental UTF-8
//! validator against `core::str::from_utf8`, and the frame header codec.

use proptest::prelude::*;
use proptest::sample::Index;
use wsproto::frame::{apply_mask, FrameHeader, HeaderStatus, OpCode, MAX_HEADER_LEN};
use wsproto::utf8::{validate_prefix, Utf8Status};
use wsproto::{
    CloseCode, Config, Connection, Error, MessageKind, Role, State, Violation, MIN_RECEIVE_BUFFER,
};

// ----- helpers -----

/// A deterministic RNG, for client masking keys and for bulk payloads.
#[derive(Clone)]
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

fn conn(role: Role, seed: u64) -> Conn {
    Connection::with_rng(role, Config::default(), Lcg(seed))
}

fn peer(role: Role) -> Role {
    match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

/// `len` bytes from `seed`.
fn seeded_bytes(len: usize, seed: u64) -> Vec<u8> {
    use rand_core::RngCore;
    let mut v = vec![0; len];
    Lcg(seed).fill_bytes(&mut v);
    v
}

/// About `len` bytes of text from `seed`, mixing 1- to 4-byte characters.
fn seeded_text(len: usize, seed: u64) -> String {
    use rand_core::RngCore;
    let mut rng = Lcg(seed);
    let mut s = String::with_capacity(len + 4);
    while s.len() < len {
        let r = rng.next_u32();
        let c = match r % 4 {
            0 => 0x20 + (r >> 8) % 0x5f,
            1 => 0x80 + (r >> 8) % 0x780,
            2 => 0x800 + (r >> 8) % (0x1_0000 - 0x800),
            _ => 0x1_0000 + (r >> 8) % 0x10_0000,
        };
        s.push(char::from_u32(c).unwrap_or('\u{fffd}'));
    }
    s
}

use wsproto_tests::chunk::{own, Ev};

/// Joins data chunks into whole messages; control events stay in place.
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

fn drain(c: &mut Conn) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut buf = [0u8; 512];
        let n = c.poll_transmit(&mut buf).expect("poll_transmit");
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Splits bytes into frames `(opcode, fin, unmasked payload)`, checking the
/// mask bit against the sender's role.
fn frames(mut bytes: &[u8], sender: Role) -> Vec<(OpCode, bool, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (h, n) = match FrameHeader::parse(bytes) {
            Ok(HeaderStatus::Complete(h, n)) => (h, n),
            other => panic!("output does not parse as frames: {other:?}"),
        };
        assert_eq!(h.rsv, 0);
        assert_eq!(h.mask.is_some(), sender == Role::Client, "mask bit vs role");
        let len = h.payload_len as usize;
        let mut payload = bytes[n..n + len].to_vec();
        if let Some(key) = h.mask {
            apply_mask(&mut payload, key, 0);
        }
        out.push((h.opcode, h.fin, payload));
        bytes = &bytes[n + len..];
    }
    out
}

/// What feeding a wire into a connection produced.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    events: Vec<Ev>,
    /// Everything `poll_transmit` wrote, drained after every `receive`.
    output: Vec<u8>,
    error: Option<Error>,
    /// Wire bytes handed over when the run stopped.
    offered: usize,
    state: State,
}

/// The receive loop, reading `wire` in chunks whose sizes cycle through `plan`.
fn run(c: &mut Conn, wire: &[u8], plan: &[usize]) -> Run {
    run_window(c, wire, plan, usize::MAX)
}

/// [`run`] with the unconsumed bytes held in a window of at most `window`
/// bytes, as an adapter with a fixed buffer would: a read only gets the room
/// left. Panics if the window fills up and `receive` makes no progress.
fn run_window(c: &mut Conn, wire: &[u8], plan: &[usize], window: usize) -> Run {
    run_window_with(c, wire, plan, window, false)
}

/// [`run_window`] through `Connection::receive_each`: every whole frame of a
/// read in one call, output drained once per read (so pongs may coalesce).
fn run_window_each(c: &mut Conn, wire: &[u8], plan: &[usize], window: usize) -> Run {
    run_window_with(c, wire, plan, window, true)
}

fn run_window_with(c: &mut Conn, wire: &[u8], plan: &[usize], window: usize, each: bool) -> Run {
    let mut pending: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    let mut output = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    let mut error = None;
    'outer: while pos < wire.len() {
        let room = window - pending.len();
        assert!(
            room > 0,
            "stuck: {} bytes in a full window of {window}, {} wire bytes left",
            pending.len(),
            wire.len() - pos
        );
        let size = plan[i % plan.len()].clamp(1, room);
        i += 1;
        let end = pos.saturating_add(size).min(wire.len());
        pending.extend_from_slice(&wire[pos..end]);
        pos = end;
        if each {
            let result = c.receive_each(&mut pending, |e| {
                let ev = own(e);
                match &ev {
                    Ev::Text(t, false) => assert!(!t.is_empty(), "empty text chunk"),
                    Ev::Binary(b, false) => assert!(!b.is_empty(), "empty binary chunk"),
                    _ => {}
                }
                events.push(ev);
                std::ops::ControlFlow::Continue(())
            });
            output.extend(drain(c));
            match result {
                Ok(consumed) => {
                    pending.drain(..consumed);
                    continue;
                }
                Err(e) => {
                    error = Some(e);
                    break 'outer;
                }
            }
        }
        loop {
            match c.receive(&mut pending) {
                Ok(r) => {
                    let consumed = r.consumed;
                    let ev = r.event.map(own);
                    let idle = consumed == 0 && ev.is_none();
                    // Data chunks are never empty except the last one.
                    match &ev {
                        Some(Ev::Text(t, false)) => assert!(!t.is_empty(), "empty text chunk"),
                        Some(Ev::Binary(b, false)) => assert!(!b.is_empty(), "empty binary chunk"),
                        _ => {}
                    }
                    events.extend(ev);
                    pending.drain(..consumed);
                    output.extend(drain(c));
                    if idle {
                        break;
                    }
                }
                Err(e) => {
                    error = Some(e);
                    output.extend(drain(c));
                    break 'outer;
                }
            }
        }
    }
    Run {
        events,
        output,
        error,
        offered: pos,
        state: c.state(),
    }
}

/// Chunk plans: whole, one byte at a time, or random sizes.
fn plan() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        Just(vec![usize::MAX]),
        Just(vec![1]),
        prop::collection::vec(1usize..8, 1..16),
        prop::collection::vec(1usize..300, 1..16),
        prop::collection::vec(1usize..20_000, 1..8),
    ]
}

/// Splits `len` at the given cut points (sorted; duplicates make empty pieces).
fn pieces(len: usize, cuts: &[Index]) -> Vec<(usize, usize)> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c.index(len + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for p in points {
        out.push((start, p));
        start = p;
    }
    out.push((start, len));
    out
}

fn kind_of(text: bool) -> MessageKind {
    if text {
        MessageKind::Text
    } else {
        MessageKind::Binary
    }
}

/// One message sent by `sender` in fragments at `cuts` (whole with
/// `send_text`/`send_binary` when there are none), with a ping after
/// fragment `j` when bit `j` of `pings` is set. Returns the wire bytes and
/// the reassembled events the peer should see.
fn send_message(
    sender: &mut Conn,
    text: bool,
    payload: &[u8],
    cuts: &[Index],
    pings: u8,
) -> (Vec<u8>, Vec<Ev>) {
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    let parts = pieces(payload.len(), cuts);
    for (j, &(a, b)) in parts.iter().enumerate() {
        let piece = &payload[a..b];
        let last = j + 1 == parts.len();
        let mut out = vec![0u8; piece.len() + MAX_HEADER_LEN];
        let n = if parts.len() == 1 && text {
            sender.send_text(std::str::from_utf8(piece).expect("utf-8"), &mut out)
        } else if parts.len() == 1 {
            sender.send_binary(piece, &mut out)
        } else {
            sender.send_fragment(kind_of(text), piece, last, &mut out)
        }
        .expect("send");
        wire.extend_from_slice(&out[..n]);
        if last {
            expected.push(if text {
                Ev::Text(String::from_utf8(payload.to_vec()).expect("utf-8"), true)
            } else {
                Ev::Binary(payload.to_vec(), true)
            });
        }
        if j < 8 && pings & (1 << j) != 0 {
            let p = vec![j as u8, 0xee];
            sender.ping(&p).expect("ping");
            wire.extend(drain(sender));
            expected.push(Ev::Ping(p));
        }
    }
    (wire, expected)
}

// ----- encode/decode round trip -----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// What one side's send commands write, the other side's `receive`
    /// surfaces identically, whatever the role, kind, size and fragmentation.
    #[test]
    fn round_trip(
        client_sends in any::<bool>(),
        text in any::<bool>(),
        len in prop_oneof![0usize..200, 0usize..70_000],
        seed in any::<u64>(),
        cuts in prop::collection::vec(any::<Index>(), 0..6),
        pings in any::<u8>(),
        plan in plan(),
    ) {
        let role = if client_sends { Role::Client } else { Role::Server };
        let payload = if text {
            seeded_text(len, seed).into_bytes()
        } else {
            seeded_bytes(len, seed)
        };
        let mut sender = conn(role, seed ^ 0xabcd);
        let (wire, expected) = send_message(&mut sender, text, &payload, &cuts, pings);

        // The wire is well-formed frames for the sender's role.
        let sent = frames(&wire, role);
        let data: Vec<_> = sent.iter().filter(|(op, ..)| !op.is_control()).collect();
        for (i, (op, fin, _)) in data.iter().enumerate() {
            let first = if text { OpCode::Text } else { OpCode::Binary };
            prop_assert_eq!(*op, if i == 0 { first } else { OpCode::Continuation });
            prop_assert_eq!(*fin, i + 1 == data.len());
        }
        let joined: Vec<u8> = data.iter().flat_map(|(_, _, p)| p.iter().copied()).collect();
        prop_assert_eq!(&joined, &payload);

        let mut receiver = conn(peer(role), 7);
        let got = run(&mut receiver, &wire, &plan);
        prop_assert_eq!(got.error, None);
        prop_assert_eq!(reassemble(&got.events), expected);
        prop_assert_eq!(got.state, State::Open);
        // Each ping was answered (output drained after every read).
        let pongs = frames(&got.output, peer(role));
        prop_assert!(pongs.iter().all(|(op, _, _)| *op == OpCode::Pong));
        let fragments = (cuts.len() + 1).min(8);
        let sent_pings = (u16::from(pings) & ((1u16 << fragments) - 1)).count_ones();
        prop_assert_eq!(pongs.len() as u32, sent_pings);
    }
}

// ----- chunking invariance -----

#[derive(Clone, Debug)]
enum Op {
    Message {
        text: bool,
        payload: Vec<u8>,
        cuts: Vec<Index>,
        pings: u8,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        proptest::char::range(' ', '~'),
        proptest::char::range('\u{80}', '\u{7ff}'),
        proptest::char::range('\u{800}', '\u{d7ff}'),
        proptest::char::range('\u{e000}', '\u{ffff}'),
        proptest::char::range('\u{10000}', '\u{10ffff}'),
    ]
}

fn text_of(max_chars: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any_char(), 0..max_chars).prop_map(|v| v.into_iter().collect())
}

fn op() -> impl Strategy<Value = Op> {
    let control = prop::collection::vec(any::<u8>(), 0..=125);
    prop_oneof![
        4 => (
            text_of(300),
            prop::collection::vec(any::<Index>(), 0..5),
            any::<u8>()
        )
            .prop_map(|(t, cuts, pings)| Op::Message {
                text: true,
                payload: t.into_bytes(),
                cuts,
                pings
            }),
        2 => (
            prop_oneof![0usize..100, 0usize..5000],
            any::<u64>(),
            prop::collection::vec(any::<Index>(), 0..5),
            any::<u8>()
        )
            .prop_map(|(len, seed, cuts, pings)| Op::Message {
                text: false,
                payload: seeded_bytes(len, seed),
                cuts,
                pings
            }),
        1 => control.clone().prop_map(Op::Ping),
        1 => control.prop_map(Op::Pong),
    ]
}

fn close_reason() -> impl Strategy<Value = String> {
    text_of(60).prop_map(|mut s| {
        while s.len() > 123 {
            s.pop();
        }
        s
    })
}

fn close_code() -> impl Strategy<Value = u16> {
    prop_oneof![1000u16..=1003, 1007u16..=1014, 3000u16..=4999]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A session encoded once gives the same reassembled events, output and
    /// state however its bytes are split into reads.
    #[test]
    fn chunking_invariance(
        client_sends in any::<bool>(),
        ops in prop::collection::vec(op(), 0..8),
        code in close_code(),
        reason in close_reason(),
        plans in prop::collection::vec(plan(), 1..4),
        extra_window in prop_oneof![Just(0usize), 0usize..64],
    ) {
        let role = if client_sends { Role::Client } else { Role::Server };
        let mut sender = conn(role, 99);
        let mut wire = Vec::new();
        let mut model = Vec::new();
        let mut expected_out = Vec::new();
        for op in &ops {
            match op {
                Op::Message { text, payload, cuts, pings } => {
                    let (w, e) = send_message(&mut sender, *text, payload, cuts, *pings);
                    wire.extend(w);
                    for ev in &e {
                        if let Ev::Ping(p) = ev {
                            expected_out.push((OpCode::Pong, true, p.clone()));
                        }
                    }
                    model.extend(e);
                }
                Op::Ping(p) => {
                    sender.ping(p).expect("ping");
                    wire.extend(drain(&mut sender));
                    model.push(Ev::Ping(p.clone()));
                    expected_out.push((OpCode::Pong, true, p.clone()));
                }
                Op::Pong(p) => {
                    sender.pong(p).expect("pong");
                    wire.extend(drain(&mut sender));
                    model.push(Ev::Pong(p.clone()));
                }
            }
        }
        sender.close(CloseCode(code), &reason).expect("close");
        wire.extend(drain(&mut sender));
        model.push(Ev::Close(Some(code), reason.clone()));
        expected_out.push((OpCode::Close, true, code.to_be_bytes().to_vec()));

        let receiver_role = peer(role);
        let reference = run(&mut conn(receiver_role, 5), &wire, &[usize::MAX]);
        prop_assert_eq!(reference.error, None);
        prop_assert_eq!(reassemble(&reference.events), model);
        prop_assert_eq!(frames(&reference.output, receiver_role), expected_out);
        prop_assert_eq!(reference.state, State::Closed { code: CloseCode(code) });

        for plan in plans.iter().chain([&vec![1]]) {
            // Unbounded reads, and a fixed adapter buffer of the documented minimum (or a bit more).
            for window in [usize::MAX, MIN_RECEIVE_BUFFER + extra_window] {
                let got = run_window(&mut conn(receiver_role, 5), &wire, plan, window);
                prop_assert_eq!(got.error, None);
                prop_assert_eq!(
                    reassemble(&got.events),
                    reassemble(&reference.events),
                    "plan {:?} window {}",
                    plan,
                    window
                );
                prop_assert_eq!(&got.output, &reference.output, "plan {:?} window {}", plan, window);
                prop_assert_eq!(got.state, reference.state);
                // Many frames per call: the same events and end state; pongs
                // may coalesce (output is drained once per read), the rest
                // of the output is the same.
                let each = run_window_each(&mut conn(receiver_role, 5), &wire, plan, window);
                prop_assert_eq!(each.error, None);
                prop_assert_eq!(&each.events, &got.events, "each: plan {:?} window {}", plan, window);
                prop_assert_eq!(each.state, reference.state);
                let not_pong = |out: &[u8]| -> Vec<(OpCode, bool, Vec<u8>)> {
                    frames(out, receiver_role).into_iter().filter(|f| f.0 != OpCode::Pong).collect()
                };
                prop_assert_eq!(not_pong(&each.output), not_pong(&reference.output));
            }
        }
    }
}

// ----- masking -----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mask_involution_pieces_and_reference(
        data in prop::collection::vec(any::<u8>(), 0..300),
        key in any::<[u8; 4]>(),
        offset in 0usize..64,
        cuts in prop::collection::vec(any::<Index>(), 0..6),
    ) {
        // Twice is identity.
        let mut twice = data.clone();
        apply_mask(&mut twice, key, offset);
        apply_mask(&mut twice, key, offset);
        prop_assert_eq!(&twice, &data);

        // Bytewise reference.
        let mut whole = data.clone();
        apply_mask(&mut whole, key, offset);
        let reference: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[(offset + i) % 4])
            .collect();
        prop_assert_eq!(&whole, &reference);

        // In pieces, each at its own offset.
        let mut pieced = data.clone();
        for (a, b) in pieces(data.len(), &cuts) {
            apply_mask(&mut pieced[a..b], key, offset + a);
        }
        prop_assert_eq!(&pieced, &whole);
    }
}

// ----- UTF-8 -----

/// Bytes that exercise every branch of UTF-8: ASCII, continuation bytes at
/// their range ends, every kind of lead byte, and bytes that never appear.
fn utf8_byte() -> impl Strategy<Value = u8> {
    prop::sample::select(vec![
        b'a', 0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1,
        0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xf8, 0xfe, 0xff,
    ])
}

/// Valid text with a few random byte mutations and maybe a truncation.
fn mutated_text() -> impl Strategy<Value = Vec<u8>> {
    (
        text_of(40),
        prop::collection::vec((any::<Index>(), utf8_byte()), 0..3),
        proptest::option::of(any::<Index>()),
    )
        .prop_map(|(s, muts, cut)| {
            let mut v = s.into_bytes();
            if !v.is_empty() {
                for (i, b) in muts {
                    let i = i.index(v.len());
                    v[i] = b;
                }
            }
            if let Some(c) = cut {
                v.truncate(c.index(v.len() + 1));
            }
            v
        })
}

fn utf8_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..48),
        prop::collection::vec(utf8_byte(), 0..24),
        mutated_text(),
        text_of(30).prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// `validate_prefix` agrees with `core::str::from_utf8`: the longest valid
    /// prefix plus an incomplete tail exactly when std sees one, `Invalid`
    /// exactly when std finds an error.
    #[test]
    fn validator_agrees_with_std(bytes in utf8_input()) {
        let got = validate_prefix(&bytes);
        match core::str::from_utf8(&bytes) {
            Ok(s) => prop_assert_eq!(got, Utf8Status::Prefix { valid: s, incomplete: 0 }),
            Err(e) => match e.error_len() {
                None => {
                    let valid = core::str::from_utf8(&bytes[..e.valid_up_to()]).expect("prefix");
                    let incomplete = bytes.len() - e.valid_up_to();
                    prop_assert!((1..=3).contains(&incomplete));
                    prop_assert_eq!(got, Utf8Status::Prefix { valid, incomplete });
                }
                Some(_) => prop_assert_eq!(got, Utf8Status::Invalid),
            },
        }
        // Every prefix too: a chunk boundary may fall anywhere.
        for cut in 0..bytes.len() {
            let head = &bytes[..cut];
            let std_ok = match core::str::from_utf8(head) {
                Ok(_) => true,
                Err(e) => e.error_len().is_none(),
            };
            prop_assert_eq!(
                !matches!(validate_prefix(head), Utf8Status::Invalid),
                std_ok,
                "prefix {:02x?}",
                head
            );
        }
    }

    /// A text message of arbitrary bytes, fragmented and read in arbitrary
    /// chunks, is accepted iff the whole is UTF-8; otherwise it fails with
    /// `InvalidUtf8` (1007) within a code point of the first bad byte, and
    /// only valid text ever surfaced.
    #[test]
    fn text_message_accepted_iff_utf8(
        bytes in utf8_input(),
        cuts in prop::collection::vec(any::<Index>(), 0..5),
        plan in plan(),
    ) {
        let mut sender = conn(Role::Client, 3);
        let mut wire = Vec::new();
        // Wire position just past each payload byte.
        let mut after = vec![0usize; bytes.len()];
        let parts = pieces(bytes.len(), &cuts);
        for (j, &(a, b)) in parts.iter().enumerate() {
            let last = j + 1 == parts.len();
            let mut out = vec![0u8; b - a + MAX_HEADER_LEN];
            let n = sender
                .send_fragment(MessageKind::Text, &bytes[a..b], last, &mut out)
                .expect("send");
            let header = n - (b - a);
            for (k, slot) in after[a..b].iter_mut().enumerate() {
                *slot = wire.len() + header + k + 1;
            }
            wire.extend_from_slice(&out[..n]);
        }

        for window in [usize::MAX, MIN_RECEIVE_BUFFER] {
            let mut receiver = conn(Role::Server, 4);
            let got = run_window(&mut receiver, &wire, &plan, window);
            let surfaced: String = got
                .events
                .iter()
                .map(|e| match e {
                    Ev::Text(t, _) => t.as_str(),
                    other => panic!("unexpected {other:?}"),
                })
                .collect();
            match core::str::from_utf8(&bytes) {
                Ok(s) => {
                    prop_assert_eq!(got.error, None);
                    prop_assert_eq!(&surfaced, s);
                    prop_assert_eq!(reassemble(&got.events), vec![Ev::Text(s.to_owned(), true)]);
                }
                Err(e) => {
                    prop_assert_eq!(got.error, Some(Error::Protocol(Violation::InvalidUtf8)));
                    prop_assert!(bytes[..e.valid_up_to()].starts_with(surfaced.as_bytes()));
                    prop_assert_eq!(
                        got.state,
                        State::Closed { code: CloseCode::INVALID_PAYLOAD }
                    );
                    let sent = frames(&got.output, Role::Server);
                    prop_assert_eq!(sent.len(), 1);
                    prop_assert_eq!(sent[0].0, OpCode::Close);
                    if let Some(len) = e.error_len() {
                        // Fail fast: no later than the byte that makes it invalid.
                        let decisive = (e.valid_up_to() + len).min(bytes.len() - 1);
                        let bound = after[decisive];
                        // Reads deliver whole chunks, so allow the rest of that read.
                        let max_read = plan.iter().copied().max().unwrap_or(1);
                        prop_assert!(
                            got.offered < bound.saturating_add(max_read),
                            "failed after {} wire bytes, decisive byte ends at {}",
                            got.offered,
                            bound
                        );
                        if plan == [1] {
                            prop_assert!(got.offered <= bound, "{} > {}", got.offered, bound);
                        }
                    }
                }
            }
        }
    }
}

// ----- frame header -----

fn opcode() -> impl Strategy<Value = OpCode> {
    prop::sample::select(vec![
        OpCode::Continuation,
        OpCode::Text,
        OpCode::Binary,
        OpCode::Close,
        OpCode::Ping,
        OpCode::Pong,
    ])
}

fn header() -> impl Strategy<Value = FrameHeader> {
    (
        any::<bool>(),
        0u8..8,
        opcode(),
        proptest::option::of(any::<[u8; 4]>()),
        prop_oneof![
            0u64..=125,
            126u64..=65535,
            prop::sample::select(vec![0, 125, 126, 127, 65535, 65536, (1 << 63) - 1]),
            65536u64..(1 << 63),
        ],
    )
        .prop_map(|(fin, rsv, opcode, mask, len)| {
            let control = opcode.is_control();
            FrameHeader {
                // Control frames are never fragmented and at most 125 bytes.
                fin: fin || control,
                rsv,
                opcode,
                mask,
                payload_len: if control { len % 126 } else { len },
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn header_round_trip(h in header(), trailing in prop::collection::vec(any::<u8>(), 0..4)) {
        let mut raw = [0u8; MAX_HEADER_LEN];
        let n = h.emit(&mut raw).expect("emit");
        prop_assert_eq!(n, h.encoded_len());
        let mut arr = [0u8; MAX_HEADER_LEN];
        prop_assert_eq!(h.emit_array(&mut arr), n);
        prop_assert_eq!(&arr[..n], &raw[..n]);

        let mut bytes = raw[..n].to_vec();
        bytes.extend_from_slice(&trailing);
        prop_assert_eq!(FrameHeader::parse(&bytes), Ok(HeaderStatus::Complete(h, n)));
        for short in 0..n {
            prop_assert_eq!(FrameHeader::parse(&raw[..short]), Ok(HeaderStatus::Partial), "prefix {}", short);
        }
        // Too small an output buffer is refused.
        if n > 0 {
            let mut small = vec![0xaa; n - 1];
            prop_assert!(h.emit(&mut small).is_err());
            prop_assert!(small.iter().all(|&b| b == 0xaa));
        }
    }
}
