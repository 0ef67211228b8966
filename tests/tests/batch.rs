//! `Connection::receive_each` (through `receive_each_with_remaining`)
//! against `receive` in a loop, on arbitrary
//! frames: valid ones of every length class (7-, 16- and 64-bit lengths),
//! and broken ones (RSV bits, unknown opcodes, the wrong mask bit, lengths
//! not in their minimal form, invalid UTF-8, continuations out of place,
//! oversized control frames), under default and tight limits, with the
//! bytes arriving in random reads. Both must surface the same events, fail
//! with the same error in the same read, and leave the same state,
//! accounting and output behind.

use proptest::prelude::*;
use std::ops::ControlFlow;
use wsproto::frame::apply_mask;
use wsproto::{Config, Connection, Error, Limits, Role, State};

use wsproto_tests::chunk::{own, Ev};

/// One frame as it goes on the wire, possibly broken.
#[derive(Clone, Debug)]
struct RawFrame {
    fin: bool,
    rsv: u8,
    opcode: u8,
    /// Send the mask bit the receiver does not expect.
    wrong_mask: bool,
    /// 0: minimal length form; 1: 16 bits; 2: 64 bits (maybe not minimal).
    form: u8,
    key: [u8; 4],
    payload: Vec<u8>,
}

impl RawFrame {
    fn encode(&self, receiver: Role, out: &mut Vec<u8>) {
        let masked = (receiver == Role::Server) != self.wrong_mask;
        out.push(u8::from(self.fin) << 7 | (self.rsv & 7) << 4 | (self.opcode & 0x0f));
        let mask_bit = if masked { 0x80 } else { 0 };
        let len = self.payload.len();
        let form = match self.form {
            0 if len < 126 => 0,
            0 if len <= 0xffff => 1,
            0 => 2,
            1 if len <= 0xffff => 1,
            _ => 2,
        };
        match form {
            0 => out.push(mask_bit | len as u8),
            1 => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        let mut payload = self.payload.clone();
        if masked {
            out.extend_from_slice(&self.key);
            apply_mask(&mut payload, self.key, 0);
        }
        out.extend_from_slice(&payload);
    }
}

/// Text of about `n` characters, mostly ASCII, or arbitrary bytes.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    let ch = prop_oneof![
        12 => (0x20u8..0x7f).prop_map(char::from),
        1 => Just('é'),
        1 => Just('€'),
        1 => Just('🦊'),
    ];
    let count = prop_oneof![
        6 => 0usize..24,
        3 => 100usize..140,
        2 => 200usize..400,
        1 => 1_000usize..1_100,
    ];
    prop_oneof![
        5 => count.clone().prop_flat_map(move |n| prop::collection::vec(ch.clone(), n))
            .prop_map(|cs| cs.into_iter().collect::<String>().into_bytes()),
        1 => count.prop_flat_map(|n| prop::collection::vec(any::<u8>(), n)),
    ]
}

fn raw_frame() -> impl Strategy<Value = RawFrame> {
    (
        prop::bool::weighted(0.9),
        prop_oneof![19 => Just(0u8), 1 => 1u8..8],
        prop_oneof![
            6 => Just(1u8),
            6 => Just(2u8),
            1 => Just(0u8),
            1 => Just(9u8),
            1 => Just(10u8),
            1 => Just(3u8),
            1 => Just(8u8),
        ],
        prop::bool::weighted(0.03),
        prop_oneof![18 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
        any::<[u8; 4]>(),
        payload(),
    )
        .prop_map(|(fin, rsv, opcode, wrong_mask, form, key, payload)| {
            // Control frames are mostly short, like real ones.
            let payload = if opcode >= 8 && payload.len() > 125 && key[0] & 1 == 0 {
                payload[..payload.len() % 126].to_vec()
            } else {
                payload
            };
            RawFrame {
                fin,
                rsv,
                opcode,
                wrong_mask,
                form,
                key,
                payload,
            }
        })
}

fn limits() -> impl Strategy<Value = Limits> {
    prop_oneof![
        4 => Just(Limits::DEFAULT),
        1 => Just(Limits { max_frame_payload: 100, ..Limits::DEFAULT }),
        1 => Just(Limits { max_message_size: 300, ..Limits::DEFAULT }),
        1 => Just(Limits { max_fragments: 2, ..Limits::DEFAULT }),
        1 => (0u64..400).prop_map(|room| Limits {
            max_buffered: Limits::FIXED_CHARGE + Limits::FRAME_CHARGE + room,
            ..Limits::DEFAULT
        }),
    ]
}

/// What a run left behind.
#[derive(Debug, PartialEq)]
struct Outcome {
    /// Events, each with the index of the read that surfaced it and the
    /// payload of its frame still to come.
    events: Vec<(usize, Ev, u64)>,
    /// The error and the read it came in.
    error: Option<(usize, Error)>,
    /// Frames written by the connection, pongs left out (they may coalesce
    /// when output is drained once per read).
    output: Vec<u8>,
    state: State,
    buffered: u64,
    frame_remaining: u64,
    /// Bytes left unconsumed at the end (without an error: after one, a
    /// `receive_each` caller does not learn what the failed call consumed).
    pending: Option<usize>,
}

fn drain(c: &mut Connection, out: &mut Vec<u8>) {
    let mut buf = [0u8; 256];
    while let Ok(n) = c.poll_transmit(&mut buf) {
        if n == 0 {
            break;
        }
        // Control frames only (at most 125 bytes of payload, 7-bit length),
        // masked by a client: keep all but pongs.
        let mut frames = &buf[..n];
        while let [b0, b1, ..] = *frames {
            let len = 2 + if b1 & 0x80 != 0 { 4 } else { 0 } + usize::from(b1 & 0x7f);
            if b0 & 0x0f != 0x0a {
                out.extend_from_slice(&frames[..len]);
            }
            frames = &frames[len..];
        }
    }
}

/// Feeds `wire` in reads of the sizes in `plan` (cycled). With `each`, one
/// `receive_each` call per read, its callback breaking after every
/// `break_every`-th event (then called again); otherwise `receive` until
/// it makes no progress.
fn run(
    role: Role,
    limits: Limits,
    wire: &[u8],
    plan: &[usize],
    each: bool,
    break_every: usize,
) -> Outcome {
    let config = Config {
        limits,
        ..Config::default()
    };
    let mut c = Connection::new(role, config);
    let mut pending = Vec::new();
    let mut events = Vec::new();
    let mut output = Vec::new();
    let mut error = None;
    let mut pos = 0;
    let mut read = 0;
    'reads: while pos < wire.len() {
        let size = plan[read % plan.len()].max(1);
        let end = pos.saturating_add(size).min(wire.len());
        pending.extend_from_slice(&wire[pos..end]);
        pos = end;
        loop {
            let mut surfaced = 0;
            let result = if each {
                c.receive_each_with_remaining(&mut pending, &mut [], |e, remaining| {
                    events.push((read, own(e), remaining));
                    surfaced += 1;
                    if surfaced % break_every == 0 {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                })
            } else {
                match c.receive(&mut pending) {
                    Ok(r) => {
                        if let Some(e) = r.event {
                            events.push((read, own(e), 0));
                            surfaced += 1;
                        }
                        let consumed = r.consumed;
                        if let Some(last) = events.last_mut().filter(|_| surfaced > 0) {
                            last.2 = c.frame_remaining();
                        }
                        Ok(consumed)
                    }
                    Err(e) => Err(e),
                }
            };
            drain(&mut c, &mut output);
            match result {
                Ok(consumed) => {
                    pending.drain(..consumed);
                    if consumed == 0 && surfaced == 0 {
                        break;
                    }
                }
                Err(e) => {
                    error = Some((read, e));
                    break 'reads;
                }
            }
        }
        read += 1;
    }
    Outcome {
        events,
        output,
        state: c.state(),
        buffered: c.buffered(),
        frame_remaining: c.frame_remaining(),
        pending: error.is_none().then_some(pending.len()),
        error,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn receive_each_agrees_with_receive(
        server in any::<bool>(),
        frames in prop::collection::vec(raw_frame(), 0..24),
        limits in limits(),
        plan in prop_oneof![
            Just(vec![usize::MAX]),
            prop::collection::vec(1usize..300, 1..6),
            prop::collection::vec(1usize..5_000, 1..4),
        ],
        break_every in prop_oneof![Just(usize::MAX), 1usize..4],
    ) {
        let role = if server { Role::Server } else { Role::Client };
        let mut wire = Vec::new();
        for f in &frames {
            f.encode(role, &mut wire);
        }
        let one_by_one = run(role, limits, &wire, &plan, false, usize::MAX);
        let each = run(role, limits, &wire, &plan, true, break_every);
        prop_assert_eq!(each, one_by_one);
    }
}

/// The many-small-frames case the tight loop is for, with every shape it
/// stops at in between: the events are those of `receive`, in order.
#[test]
fn runs_of_small_frames_with_interruptions() {
    let mut frames = Vec::new();
    for i in 0..200u32 {
        let payload = match i % 7 {
            0 => "x".repeat((i % 130) as usize).into_bytes(),
            1 => vec![b'a' + (i % 26) as u8; 300],
            _ => format!("frame {i} ü").into_bytes(),
        };
        let (fin, opcode) = match i % 11 {
            3 => (true, 9),  // a ping
            5 => (false, 2), // the first fragment of a binary message
            6 => (true, 0),  // its last
            _ => (true, 1 + (i % 2) as u8),
        };
        frames.push(RawFrame {
            fin,
            rsv: 0,
            opcode,
            wrong_mask: false,
            form: 0,
            key: i.to_le_bytes(),
            payload: if opcode == 9 { vec![1, 2] } else { payload },
        });
    }
    for role in [Role::Server, Role::Client] {
        let mut wire = Vec::new();
        for f in &frames {
            f.encode(role, &mut wire);
        }
        for plan in [vec![usize::MAX], vec![1], vec![7, 300, 64], vec![4096]] {
            let one_by_one = run(role, Limits::DEFAULT, &wire, &plan, false, usize::MAX);
            assert_eq!(one_by_one.error, None);
            assert!(one_by_one.events.len() >= 200);
            let each = run(role, Limits::DEFAULT, &wire, &plan, true, usize::MAX);
            assert_eq!(each, one_by_one, "{role:?} {plan:?}");
        }
    }
}
