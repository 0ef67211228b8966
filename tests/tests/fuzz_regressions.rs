//! Inputs the fuzz targets once failed on, replayed through the public API.
//!
//! The targets live in `fuzz/` (harnesses with their oracles in
//! `core/src/fuzzing.rs`, compiled only under `cfg(fuzzing)`). Each file
//! under `fuzz/regressions/<target>/` is an input in that target's format;
//! the replays below decode the format the same way and check the property
//! that failed, for the whole input, a fuzzer-chosen chunking and a
//! byte-at-a-time feed.

use std::path::PathBuf;
use wsproto::handshake::{accept_key, ClientHandshake, ClientRequest, ServerHandshake};
use wsproto::{Config, HandshakeError, Instant};
use wsproto_tests::TestRng;

fn regression(target: &str, name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target)
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The harnesses' chunking: cycle through `sizes` (0 = a call with nothing
/// new); none, or all zero, means one chunk.
fn chunk_plan(sizes: &[u8], len: usize) -> Vec<usize> {
    if sizes.iter().all(|&s| s == 0) {
        return vec![len];
    }
    let mut plan = Vec::new();
    let mut at = 0;
    for &s in sizes.iter().cycle() {
        if at >= len {
            break;
        }
        let s = usize::from(s).min(len - at);
        plan.push(s);
        at += s;
    }
    plan
}

fn plans(sizes: &[u8], len: usize) -> [Vec<usize>; 3] {
    [vec![len], chunk_plan(sizes, len), vec![1; len]]
}

/// What `ServerHandshake::parse` made of a growing buffer: `Ok(Some(head_len))`
/// for an accepted request.
fn server_replay(data: &[u8]) -> Result<Option<usize>, HandshakeError> {
    let [sel, limits, rest @ ..] = data else {
        panic!("input too short");
    };
    let n = usize::from(sel & 7).min(rest.len());
    let (sizes, input) = rest.split_at(n);
    let slots = usize::from(limits & 0x1f) + 1;
    let mut config = Config::default();
    if limits & 0x20 != 0 {
        config.limits.max_handshake_bytes = 32 + usize::from(limits >> 6) * 64;
    }
    let mut outcomes = plans(sizes, input.len()).map(|plan| {
        let mut hs = ServerHandshake::new(&config, Instant::ZERO);
        let mut at = 0;
        for size in plan {
            at += size;
            let mut headers = vec![httparse::EMPTY_HEADER; slots];
            match hs.parse(&input[..at], &mut headers) {
                Ok(None) => {}
                Ok(Some(req)) => return Ok(Some(req.head_len())),
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    });
    let whole = outcomes[0];
    assert!(outcomes.iter_mut().all(|o| *o == whole), "{outcomes:?}");
    whole
}

/// What `ClientHandshake::parse` made of a response in the
/// `client_handshake_accept` format (the correct accept value spliced in).
fn client_accept_replay(data: &[u8]) -> Result<Option<usize>, HandshakeError> {
    let [sel, slots, rest @ ..] = data else {
        panic!("input too short");
    };
    let n = usize::from(sel & 7).min(rest.len());
    let (sizes, raw) = rest.split_at(n);
    let slots = usize::from(slots & 0x1f) + 1;
    let mut config = Config::default();
    if sel & 0x10 != 0 {
        config.limits.max_handshake_bytes = 128;
    }
    let request = ClientRequest {
        host: "server.example.com",
        path: "/chat",
        origin: Some("http://example.com"),
        protocols: if sel & 0x08 != 0 {
            &["chat", "superchat"]
        } else {
            &[]
        },
        headers: &[],
    };
    let start = || {
        let mut out = [0u8; 1024];
        let (hs, len) = ClientHandshake::new(
            &request,
            &mut TestRng::new(7),
            &config,
            Instant::ZERO,
            &mut out,
        )
        .unwrap();
        (hs, out, len)
    };
    // The accept value for the key the client sent.
    let (_, out, len) = start();
    let mut rh = [httparse::EMPTY_HEADER; 16];
    let mut req = httparse::Request::new(&mut rh);
    req.parse(&out[..len]).unwrap();
    let key = req
        .headers
        .iter()
        .find(|h| h.name == "Sec-WebSocket-Key")
        .unwrap();
    let accept = accept_key(key.value);
    // Splice it in, as the target does.
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
    let mut outcomes = plans(sizes, input.len()).map(|plan| {
        let (mut hs, _, _) = start();
        let mut at = 0;
        for size in plan {
            at += size;
            let mut headers = vec![httparse::EMPTY_HEADER; slots];
            match hs.parse(&request, &input[..at], &mut headers) {
                Ok(None) => {}
                Ok(Some(res)) => return Ok(Some(res.head_len())),
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    });
    let whole = outcomes[0];
    assert!(outcomes.iter_mut().all(|o| *o == whole), "{outcomes:?}");
    whole
}

/// Found by `client_handshake_accept`: a valid 101 head, then `\n` — so the
/// head ends at a bare-LF empty line (`\r\n\n`) for httparse — followed by
/// more header-like bytes and a `\r\n\r\n`. The core's scanner only knows
/// `\r\n\r\n`, so it took the 165-byte head while httparse had stopped at
/// byte 128, and the client accepted with 37 unparsed bytes swallowed into
/// `head_len` (bytes that, to an HTTP reader, are the start of the WebSocket
/// stream). Fixed in `handshake/{client,server}.rs`: a head that httparse
/// ends before `head_len` is `Malformed`.
#[test]
fn client_refuses_a_head_httparse_ends_at_a_bare_lf() {
    let data = regression("client_handshake_accept", "bare-lf-ends-head-early");
    assert_eq!(client_accept_replay(&data), Err(HandshakeError::Malformed));
}

/// The server-side twin of the case above: a complete upgrade request whose
/// head httparse ends at `\r\n\n`, followed by a header line and `\r\n\r\n`.
/// Before the fix it was accepted with `head_len` past the bare-LF end.
#[test]
fn server_refuses_a_head_httparse_ends_at_a_bare_lf() {
    let data = regression("server_handshake", "bare-lf-ends-head-early");
    let result = server_replay(&data);
    assert_eq!(result, Err(HandshakeError::Malformed));
    assert_eq!(result.unwrap_err().status(), Some(400));
}

/// Control: without the stray LF, the header line after it belongs to the
/// head and the same request is accepted, whole and in every chunking.
#[test]
fn server_accepts_the_request_without_the_bare_lf() {
    let mut data = regression("server_handshake", "bare-lf-ends-head-early");
    let at = data.windows(3).position(|w| w == b"\r\n\n").unwrap();
    data.remove(at + 2);
    let input_len = data.len() - 4; // selector, limits and two chunk sizes
    assert_eq!(server_replay(&data), Ok(Some(input_len)));
}

/// `deflate_inflate` once asserted that every text chunk fits the inflate
/// scratch. Only inflated chunks live there; a plain (RSV1 clear) message on
/// a deflate connection is surfaced from the input, whatever the scratch size.
/// Input format: selector byte, scratch byte, then frames (frame mode).
#[cfg(feature = "deflate")]
#[test]
fn plain_text_on_a_deflate_connection_is_not_bounded_by_the_scratch() {
    use wsproto::extensions::deflate::{Agreed, Deflate9};
    use wsproto::{Connection, Event, Role, MIN_INFLATE_BUFFER};

    let data = regression("deflate_inflate", "plain-text-larger-than-scratch");
    let (&sel, rest) = data.split_first().expect("selector");
    assert_eq!(sel & 0x04, 0, "frame mode");
    let mut stream = rest[1..].to_vec(); // after the scratch byte
    let agreed = Agreed {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: Some(9),
        client_max_window_bits: Some(9),
    };
    let deflate = Deflate9::new(&agreed, Role::Client).expect("9-bit window");
    let mut client = Connection::with_rng(Role::Client, Config::default(), TestRng::new(1))
        .with_extension(deflate);
    let mut scratch = [0u8; MIN_INFLATE_BUFFER];
    let input_range = stream.as_ptr_range();
    let received = client
        .receive_into(&mut stream, &mut scratch)
        .expect("a plain text frame is fine");
    let Some(Event::Text { data, fin }) = received.event else {
        panic!("expected text, got {:?}", received.event);
    };
    // The frame says 11 bytes; the 6 that arrived are surfaced, from the input.
    assert_eq!((data, fin), ("\0\0....", false));
    assert!(data.len() > MIN_INFLATE_BUFFER);
    assert!(input_range.contains(&data.as_ptr()));
}

/// Feeds `stream` to a deflate client (9-bit windows; `sel` bit 0: the
/// server resets its context) through `receive_into` with a scratch of
/// `scratch` bytes until it stalls or fails; returns the text and the error.
#[cfg(feature = "deflate")]
fn inflate_trace(sel: u8, stream: &[u8], scratch: usize) -> (Vec<u8>, Option<wsproto::Error>) {
    use wsproto::extensions::deflate::{Agreed, Deflate9};
    use wsproto::{Connection, Event, Role};

    let agreed = Agreed {
        server_no_context_takeover: sel & 1 != 0,
        client_no_context_takeover: sel & 2 != 0,
        server_max_window_bits: Some(9),
        client_max_window_bits: Some(9),
    };
    let deflate = Deflate9::new(&agreed, Role::Client).expect("9-bit window");
    let mut client = Connection::with_rng(Role::Client, Config::default(), TestRng::new(1))
        .with_extension(deflate);
    let mut buf = stream.to_vec();
    let mut room = vec![0u8; scratch];
    let mut text = Vec::new();
    for _ in 0..10_000 {
        match client.receive_into(&mut buf, &mut room) {
            Ok(r) => {
                let consumed = r.consumed;
                if let Some(Event::Text { data, .. }) = r.event {
                    text.extend_from_slice(data.as_bytes());
                } else if consumed == 0 {
                    return (text, None);
                }
                buf.drain(..consumed);
            }
            Err(e) => return (text, Some(e)),
        }
    }
    panic!("no end after 10,000 calls");
}

/// `deflate_inflate` found corrupt DEFLATE data reported with a large
/// scratch but not with a 4-byte one (the frame was still incomplete).
#[cfg(feature = "deflate")]
#[test]
fn corrupt_deflate_data_fails_whatever_the_scratch_size() {
    let data = regression("deflate_inflate", "deferred-corruption-small-scratch");
    let (&sel, rest) = data.split_first().expect("selector");
    let stream = &rest[1..];
    let whole = inflate_trace(sel, stream, 4096);
    for scratch in [4, 5, 7, 64] {
        assert_eq!(
            inflate_trace(sel, stream, scratch),
            whole,
            "scratch {scratch}"
        );
    }
    assert!(whole.1.is_some(), "{whole:?}");
}
