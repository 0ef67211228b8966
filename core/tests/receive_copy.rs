//! `Connection::receive_copy` against `Connection::receive`: for any frames,
//! any split of the input and any destination sizes, the same messages,
//! control events and errors.

use proptest::prelude::*;
use wsproto::frame::{apply_mask, encode_frame, FrameHeader, OpCode, MAX_HEADER_LEN};
use wsproto::{Config, Connection, Error, Event, Role};

/// What the application sees, with data chunks joined into whole messages.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    Failed(Error),
}

/// Joins chunks into messages.
#[derive(Default)]
struct Log {
    seen: Vec<Seen>,
    partial: Vec<u8>,
}

impl Log {
    fn add(&mut self, event: Event<'_>) {
        match event {
            Event::Text { data, fin } => {
                self.partial.extend_from_slice(data.as_bytes());
                if fin {
                    self.seen
                        .push(Seen::Text(std::mem::take(&mut self.partial)));
                }
            }
            Event::Binary { data, fin } => {
                self.partial.extend_from_slice(data);
                if fin {
                    self.seen
                        .push(Seen::Binary(std::mem::take(&mut self.partial)));
                }
            }
            Event::Ping(p) => self.seen.push(Seen::Ping(p.to_vec())),
            Event::Pong(p) => self.seen.push(Seen::Pong(p.to_vec())),
            Event::Close { code, reason } => self
                .seen
                .push(Seen::Close(code.map(|c| c.0), reason.to_owned())),
        }
    }
}

/// One frame as a peer sends it: opcode bits, FIN, payload.
fn frame() -> impl Strategy<Value = (u8, bool, Vec<u8>)> {
    let payload = prop_oneof![
        // Text with 1- to 4-byte code points, so chunks end inside them.
        proptest::collection::vec(
            prop_oneof![Just("a"), Just("é"), Just("✓"), Just("𝄞")],
            0..40
        )
        .prop_map(|s| s.concat().into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..300),
        // Bad UTF-8 after a good prefix.
        Just(b"ok\xc3\x28".to_vec()),
        Just(Vec::new()),
        Just(vec![0x03, 0xe8, b'o', b'k']),
    ];
    (
        prop_oneof![Just(0u8), Just(1), Just(2), Just(8), Just(9), Just(10)],
        any::<bool>(),
        payload,
    )
}

fn wire(frames: &[(u8, bool, Vec<u8>)], to_server: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (op, fin, payload)) in frames.iter().enumerate() {
        let opcode = OpCode::from_bits(*op).expect("the strategy draws valid opcodes");
        let payload = &payload[..payload
            .len()
            .min(if opcode.is_control() { 125 } else { 1000 })];
        let header = FrameHeader {
            fin: *fin || opcode.is_control(),
            rsv: 0,
            opcode,
            mask: to_server.then_some([i as u8, 0x5a, 0xa5, 7]),
            payload_len: 0,
        };
        let start = out.len();
        out.resize(start + MAX_HEADER_LEN + payload.len(), 0);
        let n = encode_frame(header, payload, &mut out[start..]).expect("room for the frame");
        out.truncate(start + n);
    }
    out
}

/// Feeds `wire` in `chunks` through `call` (a window compacted as a
/// driver does) until it fails or takes nothing more.
fn run(
    wire: &[u8],
    chunks: &[usize],
    mut call: impl FnMut(&mut [u8], &mut Log) -> Result<(usize, bool), Error>,
) -> Vec<Seen> {
    let mut log = Log::default();
    let mut buf = Vec::new();
    let mut fed = 0;
    for &size in chunks.iter().cycle() {
        let take = size.min(wire.len() - fed);
        buf.extend_from_slice(&wire[fed..fed + take]);
        fed += take;
        loop {
            match call(&mut buf, &mut log) {
                Err(e) => {
                    log.seen.push(Seen::Failed(e));
                    return log.seen;
                }
                Ok((consumed, event)) => {
                    buf.drain(..consumed);
                    if consumed == 0 && !event {
                        break;
                    }
                }
            }
        }
        if fed == wire.len() {
            break;
        }
    }
    log.seen
}

proptest! {
    #[test]
    fn receive_copy_agrees_with_receive(
        frames in proptest::collection::vec(frame(), 0..12),
        server in any::<bool>(),
        chunks in proptest::collection::vec(1usize..700, 1..8),
        rooms in proptest::collection::vec(0usize..400, 1..8),
    ) {
        let role = if server { Role::Server } else { Role::Client };
        let wire = wire(&frames, server);
        let mut a = Connection::new(role, Config::default());
        let expected = run(&wire, &chunks, |buf, log| {
            let r = a.receive(buf)?;
            let event = r.event.is_some();
            if let Some(e) = r.event {
                log.add(e);
            }
            Ok((r.consumed, event))
        });

        let mut b = Connection::new(role, Config::default());
        let mut rooms = rooms.iter().cycle();
        let mut step = |buf: &mut [u8], room: usize, log: &mut Log| {
            let mut dst = vec![0u8; room];
            let r = b.receive_copy(buf, &mut dst)?;
            assert!(r.written <= room);
            match r.event {
                Some(Event::Text { data, .. }) => assert_eq!(data.len(), r.written),
                Some(Event::Binary { data, .. }) => assert_eq!(data.len(), r.written),
                _ => assert_eq!(r.written, 0),
            }
            let event = r.event.is_some();
            if let Some(e) = r.event {
                log.add(e);
            }
            Ok((r.consumed, event))
        };
        let got = run(&wire, &chunks, |buf, log| {
            let room = *rooms.next().unwrap_or(&0);
            match step(buf, room, log)? {
                // Too little room to make progress: any 4 bytes do.
                (0, false) if room < 4 => step(buf, 4, log),
                done => Ok(done),
            }
        });
        prop_assert_eq!(got, expected);
        // The same close frames and pongs go out.
        let (mut out_a, mut out_b) = ([0u8; 512], [0u8; 512]);
        let na = a.poll_transmit(&mut out_a).unwrap_or(0);
        let nb = b.poll_transmit(&mut out_b).unwrap_or(0);
        prop_assert_eq!(&out_a[..na], &out_b[..nb]);
        prop_assert_eq!(a.state(), b.state());
    }
}

#[test]
fn a_large_masked_binary_frame_lands_unmasked_in_one_call() {
    let payload: Vec<u8> = (0..65_536u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut wire = vec![0x82, 0xff];
    wire.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    let key = [0xde, 0xad, 0xbe, 0xef];
    wire.extend_from_slice(&key);
    let mut masked = payload.clone();
    apply_mask(&mut masked, key, 0);
    wire.extend_from_slice(&masked);
    let before = wire.clone();

    let mut server = Connection::new(Role::Server, Config::default());
    let mut dst = vec![0u8; payload.len()];
    let len = wire.len();
    let r = server.receive_copy(&mut wire, &mut dst).unwrap();
    assert_eq!((r.consumed, r.written), (len, payload.len()));
    assert_eq!(
        r.event,
        Some(Event::Binary {
            data: &payload[..],
            fin: true
        })
    );
    // The input is read, not unmasked in place.
    assert_eq!(wire, before);
}

#[test]
fn without_room_the_header_is_taken_and_the_frame_size_known() {
    let mut server = Connection::new(Role::Server, Config::default());
    let mut input = [0x82, 0x83, 0, 0, 0, 0, 1, 2, 3];
    let r = server.receive_copy(&mut input, &mut []).unwrap();
    assert_eq!((r.consumed, r.written, r.event), (6, 0, None));
    assert_eq!(server.frame_remaining(), 3);
    let mut dst = [0u8; 2];
    let r = server.receive_copy(&mut input[6..], &mut dst).unwrap();
    assert_eq!(
        (r.consumed, r.event),
        (
            2,
            Some(Event::Binary {
                data: &[1, 2],
                fin: false
            })
        )
    );
    let r = server.receive_copy(&mut input[8..], &mut dst).unwrap();
    assert_eq!(
        (r.consumed, r.event),
        (
            1,
            Some(Event::Binary {
                data: &[3],
                fin: true
            })
        )
    );
}

#[test]
fn a_code_point_split_by_the_room_is_carried_unmasked() {
    // "é✓" masked with key 1, 2, 3, 4, and a destination of 2 bytes.
    let text = "é✓".as_bytes();
    let key = [1, 2, 3, 4];
    let mut masked = text.to_vec();
    apply_mask(&mut masked, key, 0);
    let mut input = vec![0x81, 0x80 | text.len() as u8];
    input.extend_from_slice(&key);
    input.extend_from_slice(&masked);
    let mut server = Connection::new(Role::Server, Config::default());
    let mut got = String::new();
    let mut pos = 0;
    let mut retried = false;
    loop {
        let mut dst = [0u8; 4];
        // Two bytes cannot hold a carried byte and the 3-byte tick: then four.
        let room = if retried { 4 } else { 2 };
        let r = server
            .receive_copy(&mut input[pos..], &mut dst[..room])
            .unwrap();
        let (consumed, event) = (r.consumed, r.event);
        let fin = match event {
            Some(Event::Text { data, fin }) => {
                got.push_str(data);
                fin
            }
            None => false,
            Some(other) => panic!("{other:?}"),
        };
        if fin {
            break;
        }
        retried = consumed == 0 && event.is_none();
        pos += consumed;
    }
    assert!(got == "é✓");
}
