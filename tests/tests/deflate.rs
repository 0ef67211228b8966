//! permessage-deflate (RFC 7692) through the connection: the §7.2.3 examples
//! at every split point, round trips negotiated through the real HTTP/1.1
//! handshake, the decompression bomb, RSV1 rules, and a property test.
//!
//! Run with `--features deflate`.
#![cfg(feature = "deflate")]

use proptest::prelude::*;
use wsproto::extensions::deflate::{
    accept_offer, write_offer, Agreed, Deflate, Deflate12, Deflate15, Deflate9, DeflateConfig,
    HeapDeflate15, HeapDeflate9,
};
use wsproto::handshake::{Accept, ClientHandshake, ClientRequest, ServerHandshake};
use wsproto::{
    CloseCode, Config, Connection, Error, Event, HandshakeError, Instant, Limits, MessageKind,
    Misuse, NoRng, Role, State, Violation, MIN_INFLATE_BUFFER,
};
use wsproto_tests::{receive_all_into, Collector, Ev, Pair, TestRng, Who};

/// The deflate states hold up to ~120 KiB inline and the pairs two of each:
/// run every test on a thread with room for them in debug builds.
fn big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

/// The agreement of a default offer and a default server: 15 bits, takeover.
fn default_agreed() -> Agreed {
    agree(&DeflateConfig::default(), &DeflateConfig::default())
}

/// What a client with `client` and a server with `server` agree on.
fn agree(client: &DeflateConfig, server: &DeflateConfig) -> Agreed {
    let mut offer = [0u8; 128];
    let n = write_offer(client, &mut offer).unwrap();
    accept_offer(std::str::from_utf8(&offer[..n]).unwrap(), server).expect("acceptable")
}

fn client15(agreed: &Agreed) -> Connection<TestRng, Deflate15> {
    Connection::with_rng(Role::Client, Config::default(), TestRng::new(3))
        .with_extension(Deflate15::new(agreed, Role::Client).unwrap())
}

fn server15(agreed: &Agreed) -> Connection<NoRng, Deflate15> {
    Connection::new(Role::Server, Config::default())
        .with_extension(Deflate15::new(agreed, Role::Server).unwrap())
}

/// The same frames as a client would send them: mask bit set, `key`
/// inserted, payload masked. Frames are given unmasked with 7-bit lengths.
fn masked(frames: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < frames.len() {
        let len = usize::from(frames[pos + 1] & 0x7f);
        assert!(len < 126);
        out.push(frames[pos]);
        out.push(frames[pos + 1] | 0x80);
        out.extend_from_slice(&key);
        for (i, b) in frames[pos + 2..pos + 2 + len].iter().enumerate() {
            out.push(b ^ key[i % 4]);
        }
        pos += 2 + len;
    }
    out
}

/// Feeds `bytes` to a fresh connection in two reads split at `split`, with
/// a receive window of `window` and a scratch of `scratch` bytes; returns the
/// events and errors.
fn feed<R: wsproto::rand_core::RngCore, E: wsproto::Extension>(
    mut conn: Connection<R, E>,
    bytes: &[u8],
    split: usize,
    window: usize,
    scratch: usize,
) -> (Vec<Ev>, Vec<Error>) {
    let mut out = Collector::default();
    let mut errors = Vec::new();
    let mut buf = Vec::new();
    let mut scratch = vec![0u8; scratch];
    for part in [&bytes[..split], &bytes[split..]] {
        buf.extend_from_slice(part);
        if let Err(e) = receive_all_into(&mut conn, &mut buf, window, Some(&mut scratch), &mut out)
        {
            errors.push(e);
        }
    }
    assert!(!errors.is_empty() || !out.in_message(), "message left open");
    (out.take(), errors)
}

/// Replays `frames` (as sent by a server, unmasked) into a client and, masked,
/// into a server, at every split point, with several windows and scratch
/// sizes; each run must surface exactly `expected`.
fn replay(agreed: Agreed, frames: &[u8], expected: &[Ev]) {
    let from_client = masked(frames, [0x37, 0xfa, 0x21, 0x3d]);
    for (bytes, role) in [(frames, Role::Client), (&from_client[..], Role::Server)] {
        for split in 0..=bytes.len() {
            for (window, scratch) in [(usize::MAX, 64), (usize::MAX, MIN_INFLATE_BUFFER), (7, 5)] {
                let (events, errors) = match role {
                    Role::Client => feed(client15(&agreed), bytes, split, window, scratch),
                    Role::Server => feed(server15(&agreed), bytes, split, window, scratch),
                };
                assert_eq!(errors, [], "{role:?} split {split} window {window}");
                assert_eq!(
                    events, expected,
                    "{role:?} split {split} window {window} scratch {scratch}"
                );
            }
        }
    }
}

fn hello() -> Ev {
    Ev::Text("Hello".into())
}

// ----- RFC 7692 §7.2.3 -----

#[test]
fn rfc7692_hello_single_frame() {
    big_stack(|| {
        replay(
            default_agreed(),
            &[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
            &[hello()],
        )
    });
}

#[test]
fn rfc7692_hello_in_two_fragments() {
    big_stack(|| {
        replay(
            default_agreed(),
            &[
                0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00,
            ],
            &[hello()],
        )
    });
}

#[test]
fn rfc7692_fragments_with_a_ping_between() {
    big_stack(|| {
        replay(
            default_agreed(),
            &[
                0x41, 0x03, 0xf2, 0x48, 0xcd, 0x89, 0x01, b'p', 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00,
            ],
            &[Ev::Ping(b"p".to_vec()), hello()],
        )
    });
}

#[test]
fn rfc7692_second_hello_shares_the_window() {
    big_stack(|| {
        replay(
            default_agreed(),
            &[
                0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, // "Hello"
                0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00, // "Hello" again, from the window
            ],
            &[hello(), hello()],
        )
    });
}

#[test]
fn rfc7692_no_context_takeover() {
    big_stack(|| {
        let nct = DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        let agreed = agree(&nct, &DeflateConfig::default());
        assert!(agreed.server_no_context_takeover && agreed.client_no_context_takeover);
        let one = [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        replay(agreed, &[one, one].concat(), &[hello(), hello()]);
        // Our own sender repeats the same bytes without takeover.
        let mut server = server15(&agreed);
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        let n = server.send_text("Hello", &mut a).unwrap();
        let m = server.send_text("Hello", &mut b).unwrap();
        assert_eq!(a[..n], b[..m]);
    });
}

#[test]
fn rfc7692_stored_block_bfinal_and_two_blocks() {
    big_stack(|| {
        // §7.2.3.3: a stored (uncompressed) block.
        let stored = [
            0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        replay(default_agreed(), &stored, &[hello()]);
        // §7.2.3.4: BFINAL set, then an empty block header.
        let bfinal = [0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        replay(default_agreed(), &bfinal, &[hello()]);
        // §7.2.3.5: two DEFLATE blocks in one message.
        let two = [
            0xc1, 0x0d, 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07,
            0x00,
        ];
        replay(default_agreed(), &two, &[hello()]);
        // All of them in a row, sharing the stream.
        replay(
            default_agreed(),
            &[&stored[..], &bfinal, &two].concat(),
            &[hello(), hello(), hello()],
        );
    });
}

#[test]
fn our_hello_is_the_rfc_bytes() {
    big_stack(|| {
        let mut server = server15(&default_agreed());
        let mut out = vec![0u8; server.send_buffer_len(5)];
        let n = server.send_text("Hello", &mut out).unwrap();
        assert_eq!(
            out[..n],
            [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        );
        // An empty message is one byte of payload, RSV1 set.
        let n = server.send_binary(b"", &mut out).unwrap();
        assert_eq!(out[..n], [0xc2, 0x01, 0x00]);
        // Control frames are never compressed.
        server.ping(b"x").unwrap();
        let n = server.poll_transmit(&mut out).unwrap();
        assert_eq!(out[..n], [0x89, 0x01, b'x']);
    });
}

#[test]
fn fragments_set_rsv1_on_the_first_frame_only() {
    big_stack(|| {
        let agreed = default_agreed();
        let mut server = server15(&agreed);
        let mut wire = Vec::new();
        for (i, part) in ["Hel", "lo, ", "world"].iter().enumerate() {
            let mut out = vec![0u8; server.send_buffer_len(part.len())];
            let n = server
                .send_fragment(MessageKind::Text, part.as_bytes(), i == 2, &mut out)
                .unwrap();
            let rsv1 = out[0] & 0x40 != 0;
            assert_eq!(rsv1, i == 0, "fragment {i}");
            wire.extend_from_slice(&out[..n]);
        }
        let (events, errors) = feed(client15(&agreed), &wire, 0, usize::MAX, 16);
        assert_eq!(errors, []);
        assert_eq!(events, [Ev::Text("Hello, world".into())]);
    });
}

// ----- violations -----

fn expect_failure<R: wsproto::rand_core::RngCore, E: wsproto::Extension>(
    conn: Connection<R, E>,
    bytes: &[u8],
    v: Violation,
    code: u16,
) {
    let (_, errors) = feed(conn, bytes, 0, usize::MAX, 64);
    assert_eq!(errors, [Error::Protocol(v)]);
    assert_eq!(v.close_code(), CloseCode(code));
}

#[test]
fn rsv1_on_continuation_or_control_is_1002() {
    big_stack(|| {
        let a = default_agreed();
        // RSV1 on the continuation of a compressed message.
        expect_failure(
            client15(&a),
            &[
                0x41, 0x03, 0xf2, 0x48, 0xcd, 0xc0, 0x04, 0xc9, 0xc9, 0x07, 0x00,
            ],
            Violation::MisplacedRsv1,
            1002,
        );
        // RSV1 on the continuation of an uncompressed message.
        expect_failure(
            client15(&a),
            &[0x01, 0x01, b'a', 0xc0, 0x01, b'b'],
            Violation::MisplacedRsv1,
            1002,
        );
        // RSV1 on a ping, and on a close.
        expect_failure(client15(&a), &[0xc9, 0x00], Violation::MisplacedRsv1, 1002);
        expect_failure(client15(&a), &[0xc8, 0x00], Violation::MisplacedRsv1, 1002);
        // RSV2 and RSV3 stay reserved.
        expect_failure(client15(&a), &[0xa1, 0x00], Violation::ReservedBits, 1002);
        expect_failure(client15(&a), &[0x91, 0x00], Violation::ReservedBits, 1002);
    });
}

#[test]
fn rsv1_without_negotiation_is_1002() {
    let conn = Connection::with_rng(Role::Client, Config::default(), TestRng::new(1));
    expect_failure(
        conn,
        &[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
        Violation::ReservedBits,
        1002,
    );
}

#[test]
fn corrupt_deflate_data_is_1007() {
    big_stack(|| {
        // BTYPE 11 is reserved (RFC 1951 §3.2.3).
        expect_failure(
            client15(&default_agreed()),
            &[0xc1, 0x02, 0xff, 0xff],
            Violation::CorruptCompressedData,
            1007,
        );
        // Valid DEFLATE of bytes that are not UTF-8 (a stored block of 0xff,
        // then the empty stored block's header whose LEN/NLEN the tail adds).
        expect_failure(
            client15(&default_agreed()),
            &[0xc1, 0x07, 0x00, 0x01, 0x00, 0xfe, 0xff, 0xff, 0x00],
            Violation::InvalidUtf8,
            1007,
        );
        // A text message ending inside a code point ("é" cut after 0xc3).
        expect_failure(
            client15(&default_agreed()),
            &[0xc1, 0x07, 0x00, 0x01, 0x00, 0xfe, 0xff, 0xc3, 0x00],
            Violation::InvalidUtf8,
            1007,
        );
        // The same stored block without the flush's block header: the tail
        // alone cannot end the message at a block boundary.
        expect_failure(
            client15(&default_agreed()),
            &[0xc1, 0x06, 0x00, 0x01, 0x00, 0xfe, 0xff, 0x41],
            Violation::CorruptCompressedData,
            1007,
        );
    });
}

#[test]
fn plain_receive_refuses_a_compressed_message_without_changing_anything() {
    big_stack(|| {
        let mut client = client15(&default_agreed());
        let frame = [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let mut input = frame;
        assert_eq!(
            client.receive(&mut input),
            Err(Error::Misuse(Misuse::BufferTooSmall {
                required: MIN_INFLATE_BUFFER
            }))
        );
        assert_eq!(input, frame);
        assert_eq!(client.state(), State::Open);
        let mut scratch = [0u8; 3];
        assert!(client.receive_into(&mut input, &mut scratch).is_err());
        let mut scratch = [0u8; 4];
        let r = client.receive_into(&mut input, &mut scratch).unwrap();
        assert_eq!(
            r.event,
            Some(Event::Text {
                data: "Hell",
                fin: false
            })
        );
        let consumed = r.consumed;
        let r = client
            .receive_into(&mut input[consumed..], &mut scratch)
            .unwrap();
        assert_eq!(
            r.event,
            Some(Event::Text {
                data: "o",
                fin: true
            })
        );
    });
}

#[test]
fn uncompressed_messages_stay_zero_copy() {
    big_stack(|| {
        let mut client = client15(&default_agreed());
        let mut input = [0x81, 0x05, b'H', b'e', b'l', b'l', b'o'];
        let range = input.as_ptr_range();
        let mut scratch = [0u8; 16];
        let r = client.receive_into(&mut input, &mut scratch).unwrap();
        let Some(Event::Text { data, fin: true }) = r.event else {
            panic!("{r:?}")
        };
        assert_eq!(data, "Hello");
        assert!(range.contains(&data.as_ptr()), "borrows the input");
    });
}

#[test]
fn decompression_bomb_fails_with_1009_at_the_limit() {
    big_stack(|| {
        let agreed = default_agreed();
        // 1 MiB of zeros, compressed by our sender.
        let mut client = client15(&agreed);
        let zeros = vec![0u8; 1 << 20];
        let mut out = vec![0u8; client.send_buffer_len(zeros.len())];
        let n = client.send_binary(&zeros, &mut out).unwrap();
        assert!(n < 12 * 1024, "1 MiB of zeros compressed to {n} bytes");
        let limit = 64 * 1024;
        let config = Config {
            limits: Limits {
                max_message_size: limit,
                ..Limits::DEFAULT
            },
            ..Config::default()
        };
        let mut server = Connection::new(Role::Server, config)
            .with_extension(Deflate15::new(&agreed, Role::Server).unwrap());
        let mut buf = out[..n].to_vec();
        let mut got = Collector::default();
        let mut scratch = vec![0u8; 4096];
        let err = receive_all_into(
            &mut server,
            &mut buf,
            usize::MAX,
            Some(&mut scratch),
            &mut got,
        );
        assert_eq!(err, Err(Error::Protocol(Violation::MessageTooLarge)));
        assert!(got.partial_len() as u64 <= limit, "{}", got.partial_len());
        assert!(
            server.extension().inflater().message_len() <= limit + 32 * 1024,
            "inflated {} bytes",
            server.extension().inflater().message_len()
        );
        assert_eq!(
            server.state(),
            State::Closed {
                code: CloseCode::MESSAGE_TOO_BIG
            }
        );
        let mut close = [0u8; 64];
        let n = server.poll_transmit(&mut close).unwrap();
        assert_eq!(close[..4], [0x88, n as u8 - 2, 0x03, 0xf1]);
    });
}

#[test]
fn decompressed_bytes_count_against_the_budget() {
    big_stack(|| {
        let agreed = default_agreed();
        let mut client = client15(&agreed);
        let zeros = vec![0u8; 256 * 1024];
        let mut out = vec![0u8; client.send_buffer_len(zeros.len())];
        let n = client.send_binary(&zeros, &mut out).unwrap();
        let config = Config {
            limits: Limits {
                max_buffered: Limits::FIXED_CHARGE + 100 * 1024,
                ..Limits::DEFAULT
            },
            ..Config::default()
        };
        let mut server = Connection::new(Role::Server, config)
            .with_extension(Deflate15::new(&agreed, Role::Server).unwrap());
        let (_, errors) = {
            let mut buf = out[..n].to_vec();
            let mut got = Collector::default();
            let mut scratch = vec![0u8; 1000];
            let e = receive_all_into(
                &mut server,
                &mut buf,
                usize::MAX,
                Some(&mut scratch),
                &mut got,
            );
            (got, e)
        };
        assert_eq!(errors, Err(Error::Protocol(Violation::BudgetExceeded)));
    });
}

// ----- negotiation through the real HTTP/1.1 handshake, then a Pair -----

/// What one opening handshake with permessage-deflate produced.
struct Negotiated {
    /// The client's request, whole.
    request: String,
    /// The server's 101 response, whole.
    response: String,
    /// The server's agreement.
    server: Agreed,
    /// The client's agreement, from the response.
    client: Agreed,
    /// The client's RNG after the handshake, for its connection.
    rng: TestRng,
}

/// Runs the opening handshake with permessage-deflate offered by a client
/// with `client_cfg` and accepted by a server with `server_cfg`.
fn negotiate(client_cfg: &DeflateConfig, server_cfg: &DeflateConfig, config: Config) -> Negotiated {
    let now = Instant::from_secs(1);
    let request = ClientRequest::new("example.com", "/chat");
    let mut rng = TestRng::new(11);
    let mut out = vec![0u8; 1024];
    let (mut client_hs, n) =
        ClientHandshake::new_with_deflate(&request, client_cfg, &mut rng, &config, now, &mut out)
            .unwrap();
    let request_bytes = out[..n].to_vec();
    assert!(std::str::from_utf8(&request_bytes)
        .unwrap()
        .contains("\r\nSec-WebSocket-Extensions: permessage-deflate"));

    let mut server_hs = ServerHandshake::new(&config, now);
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let req = server_hs
        .parse(&request_bytes, &mut headers)
        .unwrap()
        .unwrap();
    let agreed = req.negotiate_deflate(server_cfg).expect("offer accepted");
    let mut response = vec![0u8; 1024];
    let n = req
        .accept_deflate(&Accept::default(), &agreed, &mut response)
        .unwrap();
    response.truncate(n);

    let mut headers = [httparse::EMPTY_HEADER; 32];
    let res = client_hs
        .parse(&request, &response, &mut headers)
        .unwrap()
        .unwrap();
    let client = res.deflate().expect("accepted");
    Negotiated {
        request: String::from_utf8(request_bytes).unwrap(),
        response: String::from_utf8(response).unwrap(),
        server: agreed,
        client,
        rng,
    }
}

/// Runs the opening handshake ([`negotiate`]), then builds the pair with
/// each side's agreed state.
fn deflate_pair<const IW: usize, const CB: usize, const CH: usize>(
    client_cfg: &DeflateConfig,
    server_cfg: &DeflateConfig,
    config: Config,
) -> Box<Pair<Deflate<IW, CB, CH>>> {
    let hs = negotiate(client_cfg, server_cfg, config);
    // Both read the response alike; only the client's own window may be
    // lowered to its budget.
    assert_eq!(
        Agreed {
            client_max_window_bits: hs.server.client_max_window_bits,
            ..hs.client
        },
        hs.server
    );
    let client = Connection::with_rng(Role::Client, config, hs.rng)
        .with_extension(Deflate::<IW, CB, CH>::new(&hs.client, Role::Client).unwrap());
    let server = Connection::new(Role::Server, config)
        .with_extension(Deflate::<IW, CB, CH>::new(&hs.server, Role::Server).unwrap());
    let mut pair = Box::new(Pair::from_connections(client, server));
    pair.client.scratch = Some(vec![0u8; 4096]);
    pair.server.scratch = Some(vec![0u8; 1000]);
    pair
}

/// Text with multi-byte code points, repetitive enough to compress.
fn text(len: usize) -> String {
    let words = [
        "héllo ",
        "wörld ",
        "€uro ",
        "🦀 crab ",
        "deflate ",
        "window ",
    ];
    let mut s = String::new();
    let mut i = 0usize;
    while s.len() < len {
        s.push_str(words[(i * 7 + i / 3) % words.len()]);
        i += 1;
    }
    while s.len() > len {
        s.pop();
    }
    s
}

/// Pseudo-random bytes: incompressible.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn round_trip<const IW: usize, const CB: usize, const CH: usize>(
    client_cfg: DeflateConfig,
    server_cfg: DeflateConfig,
    sizes: &[usize],
    chunk: usize,
) {
    let mut pair = deflate_pair::<IW, CB, CH>(&client_cfg, &server_cfg, Config::default());
    pair.chunk = chunk;
    for &len in sizes {
        let t = text(len);
        let b = noise(len, len as u64);
        let zeros = vec![0u8; len];
        for who in [Who::Client, Who::Server] {
            pair.send_text(who, &t).unwrap();
            pair.send_binary(who, &b).unwrap();
            pair.send_binary(who, &zeros).unwrap();
            // Fragmented, with pings between the fragments.
            let cut = t.len() / 3;
            let cut = (cut..=t.len()).find(|&i| t.is_char_boundary(i)).unwrap();
            pair.send_fragment(who, MessageKind::Text, &t.as_bytes()[..cut], false)
                .unwrap();
            pair.ping(who, b"between").unwrap();
            pair.send_fragment(who, MessageKind::Text, &t.as_bytes()[cut..], false)
                .unwrap();
            pair.ping(who, b"again").unwrap();
            pair.send_fragment(who, MessageKind::Text, b"", true)
                .unwrap();
            pair.run();
            let other = if who == Who::Client {
                Who::Server
            } else {
                Who::Client
            };
            let events: Vec<Ev> = pair
                .take_events(other)
                .into_iter()
                .filter(|e| !matches!(e, Ev::Pong(_)))
                .collect();
            assert_eq!(
                events,
                [
                    Ev::Text(t.clone()),
                    Ev::Binary(b.clone()),
                    Ev::Binary(zeros.clone()),
                    Ev::Ping(b"between".to_vec()),
                    Ev::Ping(b"again".to_vec()),
                    Ev::Text(t.clone()),
                ],
                "len {len} from {who:?}"
            );
            pair.take_events(who);
        }
        assert_eq!(pair.errors(Who::Client), []);
        assert_eq!(pair.errors(Who::Server), []);
    }
    pair.close(Who::Client, CloseCode::NORMAL, "bye").unwrap();
    pair.run();
    assert_eq!(
        pair.state(Who::Server),
        State::Closed {
            code: CloseCode::NORMAL
        }
    );
}

const SMALL: &[usize] = &[0, 1, 125, 4000];

#[test]
fn round_trip_full_window_with_takeover() {
    big_stack(|| {
        round_trip::<32768, 65536, 8192>(
            DeflateConfig::default(),
            DeflateConfig::default(),
            &[0, 125, 64 * 1024, 1 << 20],
            usize::MAX,
        )
    });
}

#[test]
fn round_trip_full_window_no_takeover_chunked() {
    big_stack(|| {
        let nct = DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        round_trip::<32768, 65536, 8192>(nct, DeflateConfig::default(), &[0, 125, 64 * 1024], 997)
    });
}

#[test]
fn round_trip_small_windows() {
    big_stack(|| {
        let nine = Deflate9::config();
        let twelve = Deflate12::config();
        // Both ends small.
        round_trip::<512, 1024, 512>(nine, nine, &[0, 125, 64 * 1024], 333);
        round_trip::<4096, 8192, 2048>(twelve, twelve, SMALL, usize::MAX);
        // A 9-bit server, a 12-bit client: the client's offer lets the
        // server cap the client's window to 9 bits.
        round_trip::<4096, 8192, 2048>(twelve, nine, SMALL, 50);
        // The server imposes no context takeover on the client only.
        let server_nct = DeflateConfig {
            client_no_context_takeover: true,
            ..twelve
        };
        round_trip::<4096, 8192, 2048>(twelve, server_nct, SMALL, usize::MAX);
    });
}

#[test]
fn round_trip_one_mebibyte_small_window() {
    big_stack(|| {
        round_trip::<512, 1024, 512>(
            Deflate9::config(),
            Deflate9::config(),
            &[1 << 20],
            usize::MAX,
        )
    });
}

#[test]
fn compression_ratio_on_text() {
    big_stack(|| {
        // Real prose-like text: this crate's connection source.
        let sample = include_str!("../../core/src/connection/mod.rs").to_owned();
        for (name, bytes) in [
            ("Deflate15", {
                let mut s = server15(&default_agreed());
                let mut out = vec![0u8; s.send_buffer_len(sample.len())];
                s.send_text(&sample, &mut out).unwrap()
            }),
            ("Deflate9", {
                let nine = Deflate9::config();
                let agreed = agree(&nine, &nine);
                let mut s = Connection::new(Role::Server, Config::default())
                    .with_extension(Deflate9::new(&agreed, Role::Server).unwrap());
                let mut out = vec![0u8; s.send_buffer_len(sample.len())];
                s.send_text(&sample, &mut out).unwrap()
            }),
        ] {
            println!(
                "{name}: {} bytes of text -> {bytes} on the wire ({:.1}%)",
                sample.len(),
                100.0 * bytes as f64 / sample.len() as f64
            );
            assert!(bytes < sample.len() * 7 / 10, "{name}: {bytes}");
        }
        println!(
            "size_of: Deflate9 = {} B, Deflate12 = {} B, Deflate15 = {} B, Connection<NoRng, Deflate15> = {} B, Connection = {} B",
            std::mem::size_of::<Deflate9>(),
            std::mem::size_of::<Deflate12>(),
            std::mem::size_of::<Deflate15>(),
            std::mem::size_of::<Connection<NoRng, Deflate15>>(),
            std::mem::size_of::<Connection>(),
        );
    });
}

#[test]
fn window_too_small_is_refused_at_construction() {
    big_stack(|| {
        // A 512-byte inflater cannot follow a peer allowed 32 KiB.
        let err = Deflate9::new(&default_agreed(), Role::Server).unwrap_err();
        assert_eq!(err.required_bits, 15);
    });
}

// ----- the memory budget bounds both windows (RFC 7692 §7.1.2) -----

/// The offer every browser sends.
const BROWSER_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// The memory of the smallest predefined state for `agreed` in `role`, as a
/// driver choosing by [`wsproto::extensions::deflate::Directions::state_window_bits`]
/// would build it.
fn state_memory(agreed: &Agreed, role: Role) -> usize {
    match agreed.directions(role).state_window_bits() {
        ..=9 => Deflate9::new(agreed, role).unwrap().memory(),
        10..=12 => Deflate12::new(agreed, role).unwrap().memory(),
        _ => Deflate15::new(agreed, role).unwrap().memory(),
    }
}

/// A message whose repeats lie 2,000 bytes apart: beyond a 9-bit window.
fn far_repeats() -> Vec<u8> {
    let block = noise(2000, 7);
    [block.as_slice(), &block, &block].concat()
}

#[test]
fn small_server_bounds_both_windows_for_the_browser_offer() {
    big_stack(|| {
        let nine = DeflateConfig {
            max_window_bits: 9,
            ..DeflateConfig::default()
        };
        let hs = negotiate(&DeflateConfig::default(), &nine, Config::default());
        assert!(
            hs.request.contains(&format!(
                "\r\nSec-WebSocket-Extensions: {BROWSER_OFFER}\r\n"
            )),
            "{}",
            hs.request
        );
        // The server announces its own window unasked (§7.1.2.1) and limits
        // the client's, which the offer allows (§7.1.2.2).
        assert!(
            hs.response.contains(
                "\r\nSec-WebSocket-Extensions: permessage-deflate; \
                 server_max_window_bits=9; client_max_window_bits=9\r\n"
            ),
            "{}",
            hs.response
        );
        assert_eq!(hs.client, hs.server);
        for (agreed, role) in [(hs.server, Role::Server), (hs.client, Role::Client)] {
            let dirs = agreed.directions(role);
            assert_eq!(
                (dirs.compress_window_bits, dirs.inflate_window_bits),
                (9, 9),
                "{role:?}"
            );
            assert_eq!(dirs.state_window_bits(), 9);
            let memory = state_memory(&agreed, role);
            assert_eq!(memory, std::mem::size_of::<Deflate9>());
            // The inflater (about 11 KiB) and the compressor's buffer, hash
            // heads, chain links, symbol buffer and code tables.
            assert!(memory < 17 * 1024, "{memory} bytes");
        }
        // The heap layout costs the same and works the same.
        let heap = HeapDeflate9::new(&hs.server, Role::Server)
            .unwrap()
            .memory();
        let inline = std::mem::size_of::<Deflate9>();
        assert!((inline..inline + 1024).contains(&heap), "{heap} bytes");

        // Both ends at 9 bits: messages with far repeats go through.
        let mut pair =
            deflate_pair::<512, 1024, 512>(&DeflateConfig::default(), &nine, Config::default());
        let message = far_repeats();
        for who in [Who::Client, Who::Server] {
            for _ in 0..3 {
                pair.send_binary(who, &message).unwrap();
            }
            pair.send_text(who, &text(3000)).unwrap();
        }
        pair.run();
        for who in [Who::Client, Who::Server] {
            assert_eq!(
                pair.take_events(who),
                [
                    Ev::Binary(message.clone()),
                    Ev::Binary(message.clone()),
                    Ev::Binary(message.clone()),
                    Ev::Text(text(3000)),
                ]
            );
            assert_eq!(pair.errors(who), []);
        }

        // Without client_max_window_bits in the offer the client's window
        // cannot be limited (§7.1.2.2): a 9-bit server declines rather than
        // hold a 15-bit inflater.
        let offer = "permessage-deflate; server_max_window_bits=9";
        assert_eq!(accept_offer(offer, &nine), None);
        assert!(accept_offer(offer, &DeflateConfig::default()).is_some());
    });
}

#[test]
fn every_budget_bounds_the_state_on_both_sides() {
    big_stack(|| {
        for bits in 9..=15u8 {
            let cfg = DeflateConfig {
                max_window_bits: bits,
                ..DeflateConfig::default()
            };
            // A small server facing browsers.
            let agreed = accept_offer(BROWSER_OFFER, &cfg).unwrap();
            assert_eq!(agreed.directions(Role::Server).state_window_bits(), bits);
            let expected = (bits < 15).then_some(bits);
            assert_eq!(agreed.server_max_window_bits, expected, "{bits}");
            assert_eq!(agreed.client_max_window_bits, expected, "{bits}");
            // A small client facing a default server.
            let hs = negotiate(&cfg, &DeflateConfig::default(), Config::default());
            let dirs = hs.client.directions(Role::Client);
            assert_eq!(
                (dirs.compress_window_bits, dirs.inflate_window_bits),
                (bits, bits),
                "{bits}"
            );
            // Both states fit the budget: the type the window needs, no more.
            let fits = match bits {
                ..=9 => std::mem::size_of::<Deflate9>(),
                10..=12 => std::mem::size_of::<Deflate12>(),
                _ => std::mem::size_of::<Deflate15>(),
            };
            assert_eq!(state_memory(&agreed, Role::Server), fits, "{bits}");
            assert_eq!(state_memory(&hs.client, Role::Client), fits, "{bits}");
        }
    });
}

#[test]
fn small_client_compresses_within_its_budget_whatever_the_server_allows() {
    big_stack(|| {
        let nine = Deflate9::config();
        // The server answers the 9-bit server window asked for and leaves
        // the client's window unlimited (15 bits), or names 15 outright.
        for response in [
            "permessage-deflate; server_max_window_bits=9",
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits=15",
        ] {
            let client = client_verdict(Some(&nine), &[response]).unwrap().unwrap();
            assert_eq!(client.client_max_window_bits, Some(9), "{response}");
            let dirs = client.directions(Role::Client);
            assert_eq!(
                (dirs.compress_window_bits, dirs.inflate_window_bits),
                (9, 9)
            );
            assert_eq!(
                state_memory(&client, Role::Client),
                std::mem::size_of::<Deflate9>()
            );

            // It works against that server, which inflates up to 15 bits.
            let server_agreed = accept_offer(
                "permessage-deflate; server_max_window_bits=9; client_max_window_bits",
                &DeflateConfig::default(),
            )
            .unwrap();
            assert_eq!(server_agreed.server_max_window_bits, Some(9));
            let mut c = Connection::with_rng(Role::Client, Config::default(), TestRng::new(1))
                .with_extension(Deflate9::new(&client, Role::Client).unwrap());
            let mut s = Connection::new(Role::Server, Config::default())
                .with_extension(HeapDeflate15::new(&server_agreed, Role::Server).unwrap());
            let message = far_repeats();
            let mut scratch = vec![0u8; 1000];
            for _ in 0..2 {
                let mut wire = vec![0u8; c.send_buffer_len(message.len())];
                let n = c.send_binary(&message, &mut wire).unwrap();
                wire.truncate(n);
                let mut got = Collector::default();
                receive_all_into(&mut s, &mut wire, usize::MAX, Some(&mut scratch), &mut got)
                    .unwrap();
                assert_eq!(got.take(), [Ev::Binary(message.clone())]);
                let mut wire = vec![0u8; s.send_buffer_len(message.len())];
                let n = s.send_binary(&message, &mut wire).unwrap();
                wire.truncate(n);
                let mut got = Collector::default();
                receive_all_into(&mut c, &mut wire, usize::MAX, Some(&mut scratch), &mut got)
                    .unwrap();
                assert_eq!(got.take(), [Ev::Binary(message.clone())]);
            }
        }
        // A full-window client must still inflate what the server may send:
        // limited to 9 bits itself, it keeps a 15-bit inflater.
        let client = client_verdict(
            Some(&DeflateConfig::default()),
            &["permessage-deflate; client_max_window_bits=9"],
        )
        .unwrap()
        .unwrap();
        let dirs = client.directions(Role::Client);
        assert_eq!(
            (dirs.compress_window_bits, dirs.inflate_window_bits),
            (9, 15)
        );
        assert_eq!(
            state_memory(&client, Role::Client),
            std::mem::size_of::<Deflate15>()
        );
    });
}

// ----- handshake-level negotiation -----

const RESPONSE_HEAD: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Accept: ";

/// The client's verdict on a 101 response with `extensions` lines, after
/// offering `offer` (or nothing).
fn client_verdict(
    offer: Option<&DeflateConfig>,
    extensions: &[&str],
) -> Result<Option<Agreed>, HandshakeError> {
    let request = ClientRequest::new("example.com", "/");
    let mut rng = TestRng::new(5);
    let mut out = vec![0u8; 1024];
    let config = Config::default();
    let (mut hs, n) = match offer {
        Some(cfg) => ClientHandshake::new_with_deflate(
            &request,
            cfg,
            &mut rng,
            &config,
            Instant::ZERO,
            &mut out,
        ),
        None => ClientHandshake::new(&request, &mut rng, &config, Instant::ZERO, &mut out),
    }
    .unwrap();
    let text = std::str::from_utf8(&out[..n]).unwrap();
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap();
    let accept = wsproto::handshake::accept_key(key.as_bytes());
    let mut response = format!(
        "{RESPONSE_HEAD}{}\r\n",
        std::str::from_utf8(&accept).unwrap()
    );
    for e in extensions {
        response.push_str(&format!("Sec-WebSocket-Extensions: {e}\r\n"));
    }
    response.push_str("\r\n");
    let mut headers = [httparse::EMPTY_HEADER; 16];
    hs.parse(&request, response.as_bytes(), &mut headers)
        .map(|r| r.unwrap().deflate())
}

#[test]
fn client_checks_the_extension_response() {
    let cfg = DeflateConfig::default();
    assert_eq!(client_verdict(Some(&cfg), &[]), Ok(None));
    assert_eq!(
        client_verdict(Some(&cfg), &["permessage-deflate"]).map(|a| a.is_some()),
        Ok(true)
    );
    // Not offered at all.
    assert_eq!(
        client_verdict(None, &["permessage-deflate"]),
        Err(HandshakeError::UnrequestedExtension)
    );
    // Another extension than the one offered.
    assert_eq!(
        client_verdict(Some(&cfg), &["x-webkit-deflate-frame"]),
        Err(HandshakeError::UnrequestedExtension)
    );
    // A server window announced unasked (RFC 7692 §7.1.2.1 allows it; Python
    // `websockets` servers answer server_max_window_bits=12 by default).
    assert_eq!(
        client_verdict(
            Some(&cfg),
            &["permessage-deflate; server_max_window_bits=10"]
        )
        .map(|a| a.and_then(|a| a.server_max_window_bits)),
        Ok(Some(10))
    );
    assert_eq!(
        client_verdict(Some(&cfg), &["permessage-deflate; mystery"]),
        Err(HandshakeError::InvalidExtension)
    );
    // Twice.
    assert_eq!(
        client_verdict(Some(&cfg), &["permessage-deflate", "permessage-deflate"]),
        Err(HandshakeError::InvalidExtension)
    );
    // A window larger than asked.
    let nine = Deflate9::config();
    assert_eq!(
        client_verdict(
            Some(&nine),
            &["permessage-deflate; server_max_window_bits=12"]
        ),
        Err(HandshakeError::InvalidExtension)
    );
}

#[test]
fn server_picks_the_first_acceptable_offer_across_lines() {
    let request = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Extensions: x-foo, permessage-deflate; bogus\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10, permessage-deflate\r\n\r\n";
    let mut hs = ServerHandshake::new(&Config::default(), Instant::ZERO);
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let req = hs.parse(request.as_bytes(), &mut headers).unwrap().unwrap();
    let agreed = req.negotiate_deflate(&DeflateConfig::default()).unwrap();
    assert_eq!(agreed.client_max_window_bits, Some(10));
    let mut out = [0u8; 512];
    let n = req
        .accept_deflate(&Accept::default(), &agreed, &mut out)
        .unwrap();
    let text = std::str::from_utf8(&out[..n]).unwrap();
    assert!(text.contains(
        "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10\r\n"
    ));
    // Nothing offered: no agreement, and `accept` writes no extension.
    let plain = request.replace("Sec-WebSocket-Extensions", "X-Other");
    let mut hs = ServerHandshake::new(&Config::default(), Instant::ZERO);
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let req = hs.parse(plain.as_bytes(), &mut headers).unwrap().unwrap();
    assert_eq!(req.negotiate_deflate(&DeflateConfig::default()), None);
}

// ----- property: round trip across window sizes and chunkings -----

fn prop_round_trip<const IW: usize, const CB: usize, const CH: usize>(
    client_cfg: DeflateConfig,
    server_cfg: DeflateConfig,
    msgs: &[(bool, Vec<u8>)],
    chunk: usize,
    scratch: usize,
) -> Result<(), TestCaseError> {
    let mut pair = deflate_pair::<IW, CB, CH>(&client_cfg, &server_cfg, Config::default());
    pair.chunk = chunk;
    pair.client.scratch = Some(vec![0u8; scratch]);
    pair.server.scratch = Some(vec![0u8; scratch + 3]);
    let mut expected = Vec::new();
    for (is_text, bytes) in msgs {
        if *is_text {
            let t = String::from_utf8_lossy(bytes).into_owned();
            pair.send_text(Who::Client, &t).unwrap();
            pair.send_text(Who::Server, &t).unwrap();
            expected.push(Ev::Text(t));
        } else {
            pair.send_binary(Who::Client, bytes).unwrap();
            pair.send_binary(Who::Server, bytes).unwrap();
            expected.push(Ev::Binary(bytes.clone()));
        }
    }
    pair.run();
    prop_assert_eq!(pair.errors(Who::Client), &[]);
    prop_assert_eq!(pair.errors(Who::Server), &[]);
    prop_assert_eq!(pair.take_events(Who::Server), expected.clone());
    prop_assert_eq!(pair.take_events(Who::Client), expected);
    Ok(())
}

fn message() -> impl Strategy<Value = (bool, Vec<u8>)> {
    (
        any::<bool>(),
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            prop::collection::vec(prop::sample::select(b"ab\xc3\xa9 ".to_vec()), 0..3000),
            (0usize..5000).prop_map(|n| vec![b'z'; n]),
        ],
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn deflate_round_trip_any_window(
        bits in prop::sample::select(vec![8u8, 9, 10, 12, 15]),
        server_nct in any::<bool>(),
        client_nct in any::<bool>(),
        msgs in prop::collection::vec(message(), 1..6),
        chunk in 1usize..2000,
        scratch in MIN_INFLATE_BUFFER..600,
    ) {
        let cfg = DeflateConfig {
            max_window_bits: bits,
            server_no_context_takeover: server_nct,
            client_no_context_takeover: client_nct,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        big_stack(move || {
            let r = if bits <= 9 {
                prop_round_trip::<512, 1024, 512>(cfg, cfg, &msgs, chunk, scratch)
            } else if bits <= 12 {
                prop_round_trip::<4096, 8192, 2048>(cfg, cfg, &msgs, chunk, scratch)
            } else {
                prop_round_trip::<32768, 65536, 8192>(cfg, cfg, &msgs, chunk, scratch)
            };
            tx.send(r).unwrap();
        });
        rx.recv().unwrap()?;
    }
}

#[test]
fn first_error_in_stream_order_whatever_the_chunking() {
    big_stack(|| {
        // A stored block holding 0xff (not UTF-8), then a reserved block type.
        let frame = [0xc1, 0x07, 0x00, 0x01, 0x00, 0xfe, 0xff, 0xff, 0xff];
        for split in 0..=frame.len() {
            for scratch in [MIN_INFLATE_BUFFER, 4096] {
                let (_, errors) = feed(client15(&default_agreed()), &frame, split, 5, scratch);
                assert_eq!(
                    errors,
                    [Error::Protocol(Violation::InvalidUtf8)],
                    "split {split} scratch {scratch}"
                );
            }
        }
    });
}

// ----- defects found by attacking the crate -----

/// A compressed message is charged against the memory budget once, by its
/// decompressed bytes: its compressed payload is never held (it is inflated
/// from the input into the scratch). Before, both were charged, so an
/// incompressible message of 0.6× the limit, sent compressed in five
/// fragments, failed with 1009 although it is well within
/// `max_message_size` and the budget sized for it.
#[test]
fn a_compressed_message_is_charged_once() {
    big_stack(|| {
        let limit = 1 << 20;
        let config = Config {
            limits: Limits {
                max_message_size: limit,
                max_buffered: limit + Limits::FIXED_CHARGE + 64 * Limits::FRAME_CHARGE,
                ..Limits::DEFAULT
            },
            ..Config::default()
        };
        let mut pair = deflate_pair::<32768, 65536, 8192>(
            &DeflateConfig::default(),
            &DeflateConfig::default(),
            config,
        );
        let message = noise(640 * 1024, 41);
        let parts: Vec<&[u8]> = message.chunks(128 * 1024).collect();
        for (i, part) in parts.iter().enumerate() {
            pair.send_fragment(Who::Client, MessageKind::Binary, part, i == parts.len() - 1)
                .unwrap();
        }
        pair.run();
        assert_eq!(pair.errors(Who::Server), []);
        assert_eq!(pair.take_events(Who::Server), [Ev::Binary(message)]);
    });
}

/// RFC 7692 §7.2.2: the receiver appends `00 00 ff ff` to a message's
/// payload and inflates. An *empty* compressed message (RSV1 and FIN on an
/// empty frame) gives `00 00 ff ff` alone, which stops inside a stored
/// block's header: not a complete DEFLATE block sequence. It is refused with
/// 1007 at once, rather than leaving the inflater inside a block for the
/// next message to inherit (with context takeover that message would fail
/// instead, or worse, decode against the wrong state).
#[test]
fn an_empty_compressed_message_is_refused() {
    big_stack(|| {
        let agreed = default_agreed();
        // Client → server: "Hello" compressed, the empty compressed frame,
        // then "Hello" again (sharing the window).
        let frames = [
            0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, // "Hello"
            0xc1, 0x00, // empty, RSV1 + FIN
            0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00, // "Hello" again
        ];
        let from_client = masked(&frames, [1, 2, 3, 4]);
        let (events, errors) = feed(
            server15(&agreed),
            &from_client,
            from_client.len(),
            usize::MAX,
            64,
        );
        assert_eq!(events, [hello()]);
        assert_eq!(errors, [Error::Protocol(Violation::CorruptCompressedData)]);
    });
}

/// The RFC's own empty message (§7.2.3.6 shows an empty uncompressed block
/// as the one byte `00`) and an empty *final fragment* after compressed
/// data are complete DEFLATE and are delivered, with the window intact for
/// the next message.
#[test]
fn empty_but_complete_compressed_messages_are_delivered() {
    big_stack(|| {
        let agreed = default_agreed();
        replay(
            agreed,
            &[
                0xc1, 0x01, 0x00, // empty message, as a stored block header
                0x41, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, // "Hello", not final
                0x80, 0x00, // empty final continuation
                0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00, // "Hello" again
            ],
            &[Ev::Text(String::new()), hello(), hello()],
        );
    });
}
