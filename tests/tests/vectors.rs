//! RFC 6455 §5.7 examples and the seed vectors, each replayed at every split
//! point (two reads, with the receive-loop contract) and one byte at a time.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use wsproto::frame::{apply_mask, encode_frame, FrameHeader, OpCode};
use wsproto::handshake::{accept_key, ClientHandshake, ClientRequest, ServerHandshake};
use wsproto::rand_core::RngCore;
use wsproto::{CloseCode, Config, Connection, Error, Instant, Role, State};
use wsproto_tests::{receive_all, Collector, Ev, TestRng};

/// What a connection did with one input.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<Ev>,
    output: Vec<u8>,
    error: Option<Error>,
    state: State,
}

/// Feeds `reads` one after the other with the receive-loop contract,
/// draining `poll_transmit` after each.
fn feed<R: RngCore>(mut conn: Connection<R>, reads: &[&[u8]]) -> Outcome {
    let mut buf = Vec::new();
    let mut collector = Collector::default();
    let mut output = Vec::new();
    let mut error = None;
    for read in reads {
        buf.extend_from_slice(read);
        if let Err(e) = receive_all(&mut conn, &mut buf, usize::MAX, &mut collector) {
            error.get_or_insert(e);
        }
        let mut out = [0u8; 256];
        loop {
            let n = conn.poll_transmit(&mut out).unwrap();
            if n == 0 {
                break;
            }
            output.extend_from_slice(&out[..n]);
        }
    }
    assert!(
        !collector.in_message() || error.is_some(),
        "a message was left unfinished"
    );
    Outcome {
        events: collector.events,
        output,
        error,
        state: conn.state(),
    }
}

/// Replays `input` whole, at every split point and byte by byte; every run
/// must give the same outcome, whose events must be `expected`.
fn replay<R: RngCore>(
    name: &str,
    make: impl Fn() -> Connection<R>,
    input: &[u8],
    expected: &[Ev],
) -> Outcome {
    let whole = feed(make(), &[input]);
    assert_eq!(whole.events, expected, "{name}: whole");
    assert_eq!(whole.error, None, "{name}: whole");
    for split in 0..=input.len() {
        let (a, b) = input.split_at(split);
        assert_eq!(feed(make(), &[a, b]), whole, "{name}: split at {split}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(feed(make(), &bytes), whole, "{name}: byte by byte");
    whole
}

fn client() -> Connection<TestRng> {
    Connection::with_rng(Role::Client, Config::default(), TestRng::new(42))
}

fn server() -> Connection {
    Connection::new(Role::Server, Config::default())
}

/// An RNG whose every `next_u32` yields the given masking key.
struct FixedKey([u8; 4]);

impl RngCore for FixedKey {
    fn next_u32(&mut self) -> u32 {
        u32::from_ne_bytes(self.0)
    }
    fn next_u64(&mut self) -> u64 {
        u64::from(self.next_u32())
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for (d, k) in dst.iter_mut().zip(self.0.iter().cycle()) {
            *d = *k;
        }
    }
}

/// An RNG that fills the handshake nonce with fixed bytes.
struct FixedNonce([u8; 16]);

impl RngCore for FixedNonce {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        dst.copy_from_slice(&self.0[..dst.len()]);
    }
}

const HELLO_MASKED: [u8; 11] = [
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];
const SEED_PLAIN: [u8; 15] = [
    0x68, 0x65, 0x6c, 0x6f, 0x20, 0x77, 0x65, 0x62, 0x73, 0x6f, 0x63, 0x6b, 0x65, 0x74, 0x0a,
];
const SEED_KEY: [u8; 4] = [0x08, 0xf6, 0xef, 0xb1];
const SEED_MASKED: [u8; 15] = [
    0x60, 0x93, 0x83, 0xde, 0x28, 0x81, 0x8a, 0xd3, 0x7b, 0x99, 0x8c, 0xda, 0x6d, 0x82, 0xe5,
];

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `(name, bytes a server sends, events the client sees)`.
macro_rules! vectors {
    ($($name:literal: [$($byte:expr),* $(,)?] + $payload:expr => [$($ev:expr),* $(,)?];)*) => {
        vec![$(($name, cat(&[&[$($byte),*], &$payload[..]]), vec![$($ev),*])),*]
    };
}

fn binary_payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

/// Frames a server sends (unmasked), as the client receives them.
fn server_to_client_vectors() -> Vec<(&'static str, Vec<u8>, Vec<Ev>)> {
    let empty: [u8; 0] = [];
    let b256 = binary_payload(256);
    let b64k = binary_payload(65536);
    vectors! {
        "single-frame unmasked text": [0x81, 0x05] + *b"Hello" => [Ev::Text("Hello".into())];
        "fragmented unmasked text": [0x01, 0x03, b'H', b'e', b'l', 0x80, 0x02] + *b"lo" => [Ev::Text("Hello".into())];
        "unmasked ping": [0x89, 0x05] + *b"Hello" => [Ev::Ping(b"Hello".to_vec())];
        "256-byte binary, 16-bit length": [0x82, 0x7e, 0x01, 0x00] + b256 => [Ev::Binary(b256.clone())];
        "64 KiB binary, 64-bit length": [0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0] + b64k => [Ev::Binary(b64k.clone())];
        "close 1000": [0x88, 0x04, 0x03, 0xe8, b'o', b'k'] + empty => [Ev::close(1000, "ok")];
        "empty close": [0x88, 0x00] + empty => [Ev::Close { code: None, reason: String::new() }];
        "empty binary": [0x82, 0x00] + empty => [Ev::Binary(Vec::new())];
        "code point split across fragments": [0x01, 0x02, b'a', 0xe2, 0x00, 0x00, 0x80, 0x02, 0x82, 0xac]
            + empty => [Ev::Text("a€".into())];
    }
}

/// "a€" as three masked fragments: "a" + 0xe2, an empty one, 0x82 0xac.
fn split_euro_masked() -> Vec<u8> {
    let key = [0x01, 0x02, 0x03, 0x04];
    let mut out = Vec::new();
    for (opcode, fin, payload) in [
        (OpCode::Text, false, &[b'a', 0xe2][..]),
        (OpCode::Continuation, false, &[][..]),
        (OpCode::Continuation, true, &[0x82, 0xac][..]),
    ] {
        let header = FrameHeader {
            fin,
            rsv: 0,
            opcode,
            mask: Some(key),
            payload_len: 0,
        };
        let mut frame = [0u8; 16];
        let n = encode_frame(header, payload, &mut frame).unwrap();
        out.extend_from_slice(&frame[..n]);
    }
    out
}

/// Frames a client sends (masked), as the server receives them.
fn client_to_server_vectors() -> Vec<(&'static str, Vec<u8>, Vec<Ev>)> {
    let mut seed_binary = vec![0x82, 0x8f];
    seed_binary.extend_from_slice(&SEED_KEY);
    let mut seed_text = seed_binary.clone();
    seed_text[0] = 0x81;
    vectors! {
        "masked text": [] + HELLO_MASKED => [Ev::Text("Hello".into())];
        "masked pong": [0x8a] + HELLO_MASKED[1..] => [Ev::Pong(b"Hello".to_vec())];
        "masked ping": [0x89] + HELLO_MASKED[1..] => [Ev::Ping(b"Hello".to_vec())];
        "seed masking vector, binary": [] + cat(&[&seed_binary, &SEED_MASKED]) => [Ev::Binary(SEED_PLAIN.to_vec())];
        "seed masking vector, text": [] + cat(&[&seed_text, &SEED_MASKED]) => [Ev::Text("helo websocket\n".into())];
        "code point split across masked fragments": [] + split_euro_masked() => [Ev::Text("a€".into())];
    }
}

#[test]
fn rfc_examples_received_by_a_client_at_every_split() {
    for (name, input, events) in server_to_client_vectors() {
        let outcome = replay(name, client, &input, &events);
        if name == "unmasked ping" {
            // The auto-pong is a masked pong carrying "Hello".
            let echoed = feed(server(), &[&outcome.output]);
            assert_eq!(echoed.events, [Ev::Pong(b"Hello".to_vec())]);
            assert_eq!(outcome.output[..2], [0x8a, 0x85]);
        }
        if name == "close 1000" {
            // Received and echoed: closed with the peer's code.
            assert_eq!(
                outcome.state,
                State::Closed {
                    code: CloseCode::NORMAL
                }
            );
            let echoed = feed(server(), &[&outcome.output]);
            assert_eq!(echoed.events, [Ev::close(1000, "")]);
        }
    }
}

#[test]
fn rfc_examples_received_by_a_server_at_every_split() {
    for (name, input, events) in client_to_server_vectors() {
        let outcome = replay(name, server, &input, &events);
        if name == "masked ping" {
            // Servers answer unmasked: the RFC's "unmasked pong".
            assert_eq!(outcome.output, [0x8a, 0x05, b'H', b'e', b'l', b'l', b'o']);
        }
    }
}

#[test]
fn all_vectors_in_one_stream_at_every_split() {
    // Everything a server may send, one after the other (the close last).
    let mut vectors = server_to_client_vectors();
    vectors.retain(|(name, _, _)| !name.contains("close") && !name.contains("64 KiB"));
    let input: Vec<u8> = vectors
        .iter()
        .flat_map(|(_, bytes, _)| bytes.clone())
        .collect();
    let events: Vec<Ev> = vectors.iter().flat_map(|(_, _, evs)| evs.clone()).collect();
    replay("client stream", client, &input, &events);

    let vectors = client_to_server_vectors();
    let input: Vec<u8> = vectors
        .iter()
        .flat_map(|(_, bytes, _)| bytes.clone())
        .collect();
    let events: Vec<Ev> = vectors.iter().flat_map(|(_, _, evs)| evs.clone()).collect();
    replay("server stream", server, &input, &events);
}

#[test]
fn rfc_examples_are_what_the_encoder_writes() {
    let mut out = [0u8; 300];
    // Unmasked "Hello" from a server.
    let n = server().send_text("Hello", &mut out).unwrap();
    assert_eq!(out[..n], [0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
    // Masked "Hello" from a client with the RFC's key.
    let mut c = Connection::with_rng(
        Role::Client,
        Config::default(),
        FixedKey([0x37, 0xfa, 0x21, 0x3d]),
    );
    let n = c.send_text("Hello", &mut out).unwrap();
    assert_eq!(out[..n], HELLO_MASKED);
    // Masked pong, same key.
    c.pong(b"Hello").unwrap();
    let n = c.poll_transmit(&mut out).unwrap();
    assert_eq!(out[0], 0x8a);
    assert_eq!(out[1..n], HELLO_MASKED[1..]);
    // The seed masking vector, through a client.
    let mut c = Connection::with_rng(Role::Client, Config::default(), FixedKey(SEED_KEY));
    let n = c.send_binary(&SEED_PLAIN, &mut out).unwrap();
    assert_eq!(out[..6], [0x82, 0x8f, 0x08, 0xf6, 0xef, 0xb1]);
    assert_eq!(out[6..n], SEED_MASKED);
    // Length forms: 256 bytes (16-bit), 64 KiB (64-bit).
    let mut s = server();
    let n = s.send_binary(&[0; 256], &mut out).unwrap();
    assert_eq!((n, &out[..4]), (260, &[0x82, 0x7e, 0x01, 0x00][..]));
    let mut big = vec![0u8; 65536 + 10];
    let n = s.send_binary(&[0; 65536], &mut big).unwrap();
    assert_eq!(n, 65546);
    assert_eq!(big[..10], [0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
    // Fragments "Hel" + "lo".
    let n = s
        .send_fragment(wsproto::MessageKind::Text, b"Hel", false, &mut out)
        .unwrap();
    assert_eq!(out[..n], [0x01, 0x03, b'H', b'e', b'l']);
    let n = s
        .send_fragment(wsproto::MessageKind::Text, b"lo", true, &mut out)
        .unwrap();
    assert_eq!(out[..n], [0x80, 0x02, b'l', b'o']);
    // The codec alone.
    let header = FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Pong,
        mask: Some([0x37, 0xfa, 0x21, 0x3d]),
        payload_len: 0,
    };
    let n = encode_frame(header, b"Hello", &mut out).unwrap();
    assert_eq!(out[0], 0x8a);
    assert_eq!(out[1..n], HELLO_MASKED[1..]);
}

#[test]
fn seed_masking_vector_at_every_offset_split() {
    // Masking in two pieces (with the offset carried) equals masking whole.
    for split in 0..=SEED_PLAIN.len() {
        let mut data = SEED_PLAIN;
        let (a, b) = data.split_at_mut(split);
        apply_mask(a, SEED_KEY, 0);
        apply_mask(b, SEED_KEY, split);
        assert_eq!(data, SEED_MASKED, "split at {split}");
        apply_mask(&mut data, SEED_KEY, 0);
        assert_eq!(data, SEED_PLAIN);
    }
}

/// `(Sec-WebSocket-Key, Sec-WebSocket-Accept)` from RFC 6455 §1.3 and the seeds.
const ACCEPT_VECTORS: [(&str, &str); 2] = [
    ("dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
    ("IHfMdf8a0aQXbwQO1pkGdA==", "aWAY+V/uyz5ILZEoWuWdxjnlb7E="),
];

#[test]
fn accept_keys_server_side_at_every_split() {
    for (key, accept) in ACCEPT_VECTORS {
        assert_eq!(&accept_key(key.as_bytes()), accept.as_bytes());
        let request = format!(
            "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        let request = request.as_bytes();
        let mut responses = Vec::new();
        let mut run = |reads: &[&[u8]]| {
            let mut hs = ServerHandshake::new(&Config::default(), Instant::ZERO);
            let mut buf = Vec::new();
            for (i, read) in reads.iter().enumerate() {
                buf.extend_from_slice(read);
                let mut headers = [httparse::EMPTY_HEADER; 16];
                match hs.parse(&buf, &mut headers).unwrap() {
                    Some(req) => {
                        assert_eq!(i, reads.len() - 1, "complete before the last read");
                        let mut out = [0u8; 256];
                        let n = req.accept(&Default::default(), &mut out).unwrap();
                        responses.push(out[..n].to_vec());
                        return;
                    }
                    None => assert!(i < reads.len() - 1, "incomplete after every read"),
                }
            }
        };
        for split in 1..request.len() {
            let (a, b) = request.split_at(split);
            run(&[a, b]);
        }
        run(&request.chunks(1).collect::<Vec<_>>());
        let expected = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        assert_eq!(responses.len(), request.len());
        for r in responses {
            assert_eq!(String::from_utf8(r).unwrap(), expected);
        }
    }
}

#[test]
fn accept_keys_client_side_at_every_split() {
    for (key, accept) in ACCEPT_VECTORS {
        let mut nonce = [0u8; 18];
        assert_eq!(STANDARD.decode_slice(key, &mut nonce), Ok(16));
        let nonce: [u8; 16] = nonce[..16].try_into().unwrap();
        let request = ClientRequest::new("server.example.com", "/chat");
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        let response = [response.as_bytes(), &[0x81, 0x02, b'h', b'i']].concat();
        let response = &response[..];
        let head_len = response.len() - 4;
        let run = |reads: &[&[u8]]| {
            let mut out = [0u8; 512];
            let (mut hs, n) = ClientHandshake::new(
                &request,
                &mut FixedNonce(nonce),
                &Config::default(),
                Instant::ZERO,
                &mut out,
            )
            .unwrap();
            let sent = std::str::from_utf8(&out[..n]).unwrap();
            assert!(sent.contains(&format!("\r\nSec-WebSocket-Key: {key}\r\n")));
            let mut buf = Vec::new();
            for read in reads {
                buf.extend_from_slice(read);
                let mut headers = [httparse::EMPTY_HEADER; 16];
                if let Some(res) = hs.parse(&request, &buf, &mut headers).unwrap() {
                    assert_eq!(res.head_len(), head_len);
                    return Some(buf.len());
                }
            }
            None
        };
        for split in 0..=response.len() {
            let (a, b) = response.split_at(split);
            // Complete as soon as the head is in; the rest is a frame.
            let seen = run(&[a, b]).expect("response accepted");
            assert!(seen >= head_len);
        }
        assert_eq!(run(&response.chunks(1).collect::<Vec<_>>()), Some(head_len));
        // A wrong accept (the other vector's) is refused.
        let other = if accept.starts_with('s') {
            ACCEPT_VECTORS[1].1
        } else {
            ACCEPT_VECTORS[0].1
        };
        let wrong = String::from_utf8(response[..head_len].to_vec())
            .unwrap()
            .replace(accept, other);
        let mut out = [0u8; 512];
        let (mut hs, _) = ClientHandshake::new(
            &request,
            &mut FixedNonce(nonce),
            &Config::default(),
            Instant::ZERO,
            &mut out,
        )
        .unwrap();
        let mut headers = [httparse::EMPTY_HEADER; 16];
        assert_eq!(
            hs.parse(&request, wrong.as_bytes(), &mut headers)
                .unwrap_err(),
            wsproto::HandshakeError::InvalidAccept
        );
    }
}
