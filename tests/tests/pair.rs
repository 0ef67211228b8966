//! A client and a server after a real handshake exchange messages of every
//! interesting size, whole and in chunks, fragmented with control frames in
//! between, and through receive windows as small as `MIN_RECEIVE_BUFFER`.

use wsproto::{Config, MessageKind, State, MIN_RECEIVE_BUFFER};
use wsproto_tests::{handshake_pair, Ev, HandshakeSetup, Pair, Who};

/// Sizes around every length-encoding boundary, plus a large message.
const SIZES: [usize; 5] = [0, 125, 126, 65535, 65536];
const MIB: usize = 1 << 20;

/// Text of exactly `len` bytes, mixing 1- to 4-byte code points.
fn text_of(len: usize) -> String {
    let mut s = String::with_capacity(len);
    let pattern = ['a', 'é', '€', '😀', 'z', 'ß'];
    let mut i = 0;
    loop {
        let c = pattern[i % pattern.len()];
        if s.len() + c.len_utf8() > len {
            break;
        }
        s.push(c);
        i += 1;
    }
    while s.len() < len {
        s.push('.');
    }
    s
}

/// `len` pseudo-random bytes.
fn binary_of(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn other(who: Who) -> Who {
    match who {
        Who::Client => Who::Server,
        Who::Server => Who::Client,
    }
}

/// Sends `text` and `binary` messages of `size` from each side and checks
/// they arrive byte-identical and nothing else happens.
fn exchange(pair: &mut Pair, size: usize) {
    for who in [Who::Client, Who::Server] {
        let text = text_of(size);
        let binary = binary_of(size, size as u32 + 1);
        pair.send_text(who, &text).unwrap();
        pair.send_binary(who, &binary).unwrap();
        pair.run();
        let got = pair.take_events(other(who));
        assert_eq!(got.len(), 2, "size {size} from {who:?}");
        assert_eq!(got[0], Ev::Text(text), "text of size {size} from {who:?}");
        assert_eq!(
            got[1],
            Ev::Binary(binary),
            "binary size {size} from {who:?}"
        );
        assert!(pair.take_events(who).is_empty());
    }
    assert!(
        pair.errors(Who::Client).is_empty(),
        "{:?}",
        pair.errors(Who::Client)
    );
    assert!(
        pair.errors(Who::Server).is_empty(),
        "{:?}",
        pair.errors(Who::Server)
    );
    assert_eq!(pair.state(Who::Client), State::Open);
    assert_eq!(pair.state(Who::Server), State::Open);
}

fn handshaken(chunk: usize) -> Pair {
    let hs = handshake_pair(&HandshakeSetup {
        chunk,
        client_first: Some("first from client"),
        server_first: Some("first from server"),
        ..HandshakeSetup::default()
    });
    let mut pair = hs.pair;
    assert_eq!(
        pair.take_events(Who::Server),
        [Ev::Text("first from client".into())]
    );
    assert_eq!(
        pair.take_events(Who::Client),
        [Ev::Text("first from server".into())]
    );
    pair
}

#[test]
fn every_size_whole_after_handshake() {
    let mut pair = handshaken(usize::MAX);
    for size in SIZES.into_iter().chain([MIB]) {
        exchange(&mut pair, size);
    }
}

#[test]
fn every_size_in_small_chunks_after_handshake() {
    for chunk in [1, 2, 3, 7, 128, 1000] {
        let mut pair = handshaken(chunk);
        for size in SIZES {
            let before = pair.server.received.chunks;
            exchange(&mut pair, size);
            if size > chunk && chunk < 100 {
                // The payload really was surfaced in several pieces.
                assert!(pair.server.received.chunks - before > 2, "chunk {chunk}");
            }
        }
    }
}

#[test]
fn a_mebibyte_in_4k_chunks() {
    let mut pair = handshaken(4096);
    exchange(&mut pair, MIB);
    assert!(pair.client.received.chunks >= 2 * (MIB / 4096));
}

#[test]
fn frames_are_masked_only_by_the_client() {
    let mut pair = Pair::new(Config::default());
    pair.send_text(Who::Client, "Hello").unwrap();
    pair.send_text(Who::Server, "Hello").unwrap();
    // Client frame: MASK bit set, payload not in the clear.
    assert_eq!(pair.to_server[..2], [0x81, 0x85]);
    assert_ne!(&pair.to_server[6..], b"Hello");
    // Server frame: the RFC's unmasked "Hello".
    assert_eq!(pair.to_client, [0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
    pair.run();
    assert_eq!(pair.events(Who::Server), [Ev::Text("Hello".into())]);
    assert_eq!(pair.events(Who::Client), [Ev::Text("Hello".into())]);
}

/// Sends a message in three fragments with pings in between and checks it
/// arrives whole, with the pings surfaced and answered.
fn fragments_with_pings(chunk: usize, from: Who) -> (Vec<Ev>, Vec<Ev>) {
    let mut pair = handshaken(chunk);
    let to = other(from);
    pair.send_fragment(from, MessageKind::Text, "Hel".as_bytes(), false)
        .unwrap();
    pair.ping(from, b"one").unwrap();
    pair.send_fragment(from, MessageKind::Text, "lo, ".as_bytes(), false)
        .unwrap();
    pair.ping(from, b"two").unwrap();
    pair.ping(from, b"three").unwrap();
    pair.send_fragment(from, MessageKind::Text, "wörld".as_bytes(), true)
        .unwrap();
    pair.send_fragment(from, MessageKind::Binary, &[1, 2], false)
        .unwrap();
    pair.ping(from, b"four").unwrap();
    pair.send_fragment(from, MessageKind::Binary, &[], false)
        .unwrap();
    pair.send_fragment(from, MessageKind::Binary, &[3], true)
        .unwrap();
    pair.run();
    assert!(pair.errors(from).is_empty() && pair.errors(to).is_empty());
    (pair.take_events(to), pair.take_events(from))
}

#[test]
fn fragmented_messages_with_pings_between_fragments() {
    for from in [Who::Client, Who::Server] {
        for chunk in [usize::MAX, 1, 5] {
            let (received, answers) = fragments_with_pings(chunk, from);
            assert_eq!(
                received,
                [
                    Ev::Ping(b"one".to_vec()),
                    Ev::Ping(b"two".to_vec()),
                    Ev::Ping(b"three".to_vec()),
                    Ev::Text("Hello, wörld".into()),
                    Ev::Ping(b"four".to_vec()),
                    Ev::Binary(vec![1, 2, 3]),
                ],
                "from {from:?}, chunk {chunk}"
            );
            if chunk == usize::MAX {
                // Everything arrived in one read: the latest ping wins.
                assert_eq!(answers, [Ev::Pong(b"four".to_vec())], "from {from:?}");
            } else {
                // Each ping was drained before the next arrived.
                assert_eq!(
                    answers,
                    [
                        Ev::Pong(b"one".to_vec()),
                        Ev::Pong(b"two".to_vec()),
                        Ev::Pong(b"three".to_vec()),
                        Ev::Pong(b"four".to_vec()),
                    ],
                    "from {from:?}, chunk {chunk}"
                );
            }
        }
    }
}

#[test]
fn auto_pong_can_be_switched_off() {
    let config = Config {
        auto_pong: false,
        ..Config::default()
    };
    let mut pair = Pair::with_configs(Config::default(), config);
    pair.ping(Who::Client, b"x").unwrap();
    pair.run();
    assert_eq!(pair.events(Who::Server), [Ev::Ping(b"x".to_vec())]);
    assert!(pair.events(Who::Client).is_empty());
    assert!(pair.to_client.is_empty() && pair.server.sent.is_empty());
    pair.server.conn.pong(b"manual").unwrap();
    pair.run();
    assert_eq!(pair.events(Who::Client), [Ev::Pong(b"manual".to_vec())]);
}

#[test]
fn receive_windows_down_to_the_minimum() {
    let big_text = text_of(5000);
    let big_binary = binary_of(70_000, 3);
    for window in [MIN_RECEIVE_BUFFER, MIN_RECEIVE_BUFFER + 1, 200, 1000, 65536] {
        for chunk in [usize::MAX, 1, 100] {
            for from in [Who::Client, Who::Server] {
                let mut pair = Pair::new(Config::default()).windowed(window).chunked(chunk);
                pair.send_text(from, &big_text).unwrap();
                pair.send_binary(from, &big_binary).unwrap();
                // A text message whose fragments end mid code point, with a
                // maximal ping between: carry + whole control frame = the
                // minimum window.
                let smile = "😀".as_bytes();
                let mut first = b"ab".to_vec();
                first.extend_from_slice(&smile[..3]);
                let mut second = smile[3..].to_vec();
                second.extend_from_slice(b"cd");
                pair.send_fragment(from, MessageKind::Text, &first, false)
                    .unwrap();
                pair.ping(from, &[0x55; 125]).unwrap();
                pair.send_fragment(from, MessageKind::Text, &second, true)
                    .unwrap();
                pair.run();
                let to = other(from);
                assert!(pair.errors(to).is_empty(), "{:?}", pair.errors(to));
                assert_eq!(
                    pair.take_events(to),
                    [
                        Ev::Text(big_text.clone()),
                        Ev::Binary(big_binary.clone()),
                        Ev::Ping(vec![0x55; 125]),
                        Ev::Text("ab😀cd".into()),
                    ],
                    "window {window}, chunk {chunk}, from {from:?}"
                );
                assert_eq!(pair.take_events(from), [Ev::Pong(vec![0x55; 125])]);
            }
        }
    }
}

#[test]
fn the_minimum_window_splits_large_payloads() {
    let mut pair = Pair::new(Config::default()).windowed(MIN_RECEIVE_BUFFER);
    let data = binary_of(10_000, 9);
    pair.send_binary(Who::Client, &data).unwrap();
    pair.run();
    assert_eq!(pair.events(Who::Server), [Ev::Binary(data)]);
    // No chunk is larger than the window.
    assert!(pair.server.received.chunks >= 10_000 / MIN_RECEIVE_BUFFER);
}

#[test]
fn code_points_split_across_chunks_and_fragments() {
    let text = "a€😀é\u{10FFFF}ß€€z";
    let bytes = text.as_bytes();
    // Every way to cut the message into two fragments, delivered in chunks of
    // every small size: the message arrives whole and identical.
    for cut in 0..=bytes.len() {
        for chunk in 1..=8 {
            for from in [Who::Client, Who::Server] {
                let mut pair = Pair::new(Config::default()).chunked(chunk);
                pair.send_fragment(from, MessageKind::Text, &bytes[..cut], false)
                    .unwrap();
                pair.send_fragment(from, MessageKind::Text, &bytes[cut..], true)
                    .unwrap();
                pair.run();
                let to = other(from);
                assert!(
                    pair.errors(to).is_empty(),
                    "cut {cut}: {:?}",
                    pair.errors(to)
                );
                assert_eq!(
                    pair.events(to),
                    [Ev::Text(text.into())],
                    "cut {cut}, chunk {chunk}, from {from:?}"
                );
            }
        }
    }
    // Three fragments, one byte of a 4-byte code point in the middle one.
    let smile = "😀".as_bytes();
    let mut pair = Pair::new(Config::default()).chunked(1);
    pair.send_fragment(Who::Client, MessageKind::Text, &smile[..2], false)
        .unwrap();
    pair.send_fragment(Who::Client, MessageKind::Text, &smile[2..3], false)
        .unwrap();
    pair.send_fragment(Who::Client, MessageKind::Text, &smile[3..], true)
        .unwrap();
    pair.run();
    assert_eq!(pair.events(Who::Server), [Ev::Text("😀".into())]);
}

#[test]
fn many_messages_keep_their_order() {
    let mut pair = Pair::new(Config::default()).chunked(13);
    let mut expected = Vec::new();
    for i in 0..200usize {
        if i % 3 == 0 {
            let data = binary_of(i * 7, i as u32);
            pair.send_binary(Who::Client, &data).unwrap();
            expected.push(Ev::Binary(data));
        } else {
            let text = text_of(i * 5);
            pair.send_text(Who::Client, &text).unwrap();
            expected.push(Ev::Text(text));
        }
    }
    pair.run();
    assert_eq!(pair.events(Who::Server), expected);
}
