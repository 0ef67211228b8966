//! The HTTP/1.1 opening handshake, server and client side: requests from the
//! seed documents at every split point, every refusal with its status, and
//! response validation on the client.

use wsproto::handshake::{
    encode_key, Accept, ClientHandshake, ClientRequest, Request, ServerHandshake,
};
use wsproto::rand_core::RngCore;
use wsproto::{Config, Connection, Duration, HandshakeError, Instant, Limits, Misuse, Role};
use wsproto_tests::{handshake_pair, Collector, Ev, HandshakeSetup, TestRng, Who};

/// The Chrome request from the seed documents (headers as the browser sent them).
const CHROME: &str = "GET / HTTP/1.1\r\n\
Accept-Encoding: gzip, deflate\r\n\
Accept-Language: zh-CN,zh;q=0.9,en;q=0.8\r\n\
Cache-Control: no-cache\r\n\
Connection: Upgrade\r\n\
Host: 192.168.31.40:3000\r\n\
Origin: http://localhost:8080\r\n\
Pragma: no-cache\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
Sec-WebSocket-Key: Mk8Au85XqQTn+vuDsfr/kw==\r\n\
Sec-WebSocket-Version: 13\r\n\
Upgrade: websocket\r\n\
User-Agent: Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/100.0.4896.127 Safari/537.36\r\n\
\r\n";

/// base64(SHA-1(key + GUID)) for the Chrome key, computed independently.
const CHROME_ACCEPT: &str = "1G9H95KI40U6fhhYtKZw/LUcWsY=";

/// What the tests look at in a parsed request (owned).
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    path: String,
    host: Vec<u8>,
    origin: Option<Vec<u8>>,
    protocols: Vec<String>,
    extensions: Vec<Vec<u8>>,
    head_len: usize,
    response: Vec<u8>,
}

fn seen(req: &Request<'_>, accept: &Accept<'_>) -> Seen {
    let mut out = [0u8; 1024];
    let n = req.accept(accept, &mut out).unwrap();
    Seen {
        path: req.path().to_owned(),
        host: req.host().to_vec(),
        origin: req.origin().map(<[u8]>::to_vec),
        protocols: req.protocols().map(str::to_owned).collect(),
        extensions: req.extensions().map(<[u8]>::to_vec).collect(),
        head_len: req.head_len(),
        response: out[..n].to_vec(),
    }
}

/// Feeds `reads` to a fresh server handshake; the request must complete on
/// the last read and not before.
fn serve(
    config: &Config,
    slots: usize,
    reads: &[&[u8]],
    accept: &Accept<'_>,
) -> Result<Seen, HandshakeError> {
    let mut hs = ServerHandshake::new(config, Instant::ZERO);
    let mut buf = Vec::new();
    for (i, read) in reads.iter().enumerate() {
        buf.extend_from_slice(read);
        let mut headers = vec![httparse::EMPTY_HEADER; slots];
        match hs.parse(&buf, &mut headers)? {
            Some(req) => {
                assert_eq!(i, reads.len() - 1, "complete before the last read");
                return Ok(seen(&req, accept));
            }
            None => assert!(i < reads.len() - 1, "incomplete after the last read"),
        }
    }
    unreachable!("no reads")
}

fn serve_whole(request: &[u8]) -> Result<Seen, HandshakeError> {
    serve(&Config::default(), 32, &[request], &Accept::default())
}

#[test]
fn chrome_request_at_every_split() {
    let request = CHROME.as_bytes();
    let expected = Seen {
        path: "/".into(),
        host: b"192.168.31.40:3000".to_vec(),
        origin: Some(b"http://localhost:8080".to_vec()),
        protocols: vec![],
        extensions: vec![b"permessage-deflate; client_max_window_bits".to_vec()],
        head_len: request.len(),
        response: format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {CHROME_ACCEPT}\r\n\r\n"
        )
        .into_bytes(),
    };
    assert_eq!(serve_whole(request), Ok(expected));
    let expected = serve_whole(request).unwrap();
    for split in 1..request.len() {
        let (a, b) = request.split_at(split);
        let got = serve(&Config::default(), 32, &[a, b], &Accept::default());
        assert_eq!(got.as_ref(), Ok(&expected), "split at {split}");
    }
    let bytes: Vec<&[u8]> = request.chunks(1).collect();
    assert_eq!(
        serve(&Config::default(), 32, &bytes, &Accept::default()),
        Ok(expected)
    );
}

#[test]
fn protocols_and_extra_headers_in_the_101() {
    let request = CHROME.replace(
        "Upgrade: websocket\r\n",
        "Upgrade: websocket\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Protocol: v2\r\n",
    );
    let accept = Accept {
        protocol: Some("superchat"),
        headers: &[("Set-Cookie", b"id=1")],
    };
    let got = serve(&Config::default(), 32, &[request.as_bytes()], &accept).unwrap();
    assert_eq!(got.protocols, ["chat", "superchat", "v2"]);
    assert_eq!(
        String::from_utf8(got.response).unwrap(),
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {CHROME_ACCEPT}\r\nSec-WebSocket-Protocol: superchat\r\n\
             Set-Cookie: id=1\r\n\r\n"
        )
    );
}

#[test]
fn accepting_an_unoffered_protocol_is_misuse() {
    let mut hs = ServerHandshake::new(&Config::default(), Instant::ZERO);
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let req = hs.parse(CHROME.as_bytes(), &mut headers).unwrap().unwrap();
    let mut out = [0xaa; 512];
    let accept = Accept {
        protocol: Some("chat"),
        headers: &[],
    };
    assert_eq!(
        req.accept(&accept, &mut out),
        Err(Misuse::ProtocolNotOffered)
    );
    assert_eq!(out, [0xaa; 512], "buffer untouched on error");
    // A buffer too small is misuse too, with the size needed.
    let mut small = [0u8; 16];
    assert!(matches!(
        req.accept(&Accept::default(), &mut small),
        Err(Misuse::BufferTooSmall { required }) if required > 16
    ));
}

#[test]
fn reject_with_403() {
    let mut hs = ServerHandshake::new(&Config::default(), Instant::ZERO);
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let req = hs.parse(CHROME.as_bytes(), &mut headers).unwrap().unwrap();
    assert_eq!(req.origin(), Some(&b"http://localhost:8080"[..]));
    let mut out = [0u8; 512];
    let n = req
        .reject(403, &[("X-Reason", b"origin")], &mut out)
        .unwrap();
    let text = std::str::from_utf8(&out[..n]).unwrap();
    assert!(text.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{text}");
    assert!(text.contains("\r\nX-Reason: origin\r\n"), "{text}");
    assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
    assert!(!text.contains("101"), "{text}");
}

#[test]
fn leftover_after_the_head_is_not_lost() {
    // A client frame in the same read as the request.
    let mut input = CHROME.as_bytes().to_vec();
    let frame = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    input.extend_from_slice(&frame);
    for split in 1..=input.len() {
        let mut hs = ServerHandshake::new(&Config::default(), Instant::ZERO);
        let mut buf = input[..split].to_vec();
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let head_len = match hs.parse(&buf, &mut headers).unwrap() {
            Some(req) => req.head_len(),
            None => {
                buf.extend_from_slice(&input[split..]);
                let mut headers = [httparse::EMPTY_HEADER; 32];
                hs.parse(&buf, &mut headers).unwrap().unwrap().head_len()
            }
        };
        assert_eq!(head_len, CHROME.len(), "split at {split}");
        let mut rest = buf[head_len..].to_vec();
        rest.extend_from_slice(&input[buf.len()..]);
        let mut server = Connection::new(Role::Server, Config::default());
        let mut events = Collector::default();
        wsproto_tests::receive_all(&mut server, &mut rest, usize::MAX, &mut events).unwrap();
        assert_eq!(
            events.events,
            [Ev::Text("Hello".into())],
            "split at {split}"
        );
    }
    // And through the harness, both directions, at several chunk sizes.
    for chunk in [1, 3, 64, usize::MAX] {
        let hs = handshake_pair(&HandshakeSetup {
            chunk,
            client_first: Some("from the client"),
            server_first: Some("from the server"),
            protocol: Some("chat"),
            request: ClientRequest {
                protocols: &["chat"],
                ..ClientRequest::new("example.com", "/room?id=1")
            },
            ..HandshakeSetup::default()
        });
        assert_eq!(hs.path, "/room?id=1");
        assert_eq!(hs.protocol.as_deref(), Some("chat"));
        assert_eq!(
            hs.pair.events(Who::Server),
            [Ev::Text("from the client".into())]
        );
        assert_eq!(
            hs.pair.events(Who::Client),
            [Ev::Text("from the server".into())]
        );
    }
}

/// Builds a request from a request line and header lines.
fn request(line: &str, headers: &[&str]) -> Vec<u8> {
    let mut s = format!("{line}\r\n");
    for h in headers {
        s.push_str(h);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s.into_bytes()
}

const GOOD: [&str; 5] = [
    "Host: example.com",
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
];

/// The good headers with the one starting with `name` replaced (or removed
/// when `with` is empty).
fn good_but(name: &str, with: &[&str]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for h in GOOD {
        if h.starts_with(name) {
            for w in with {
                out.push(Box::leak(w.to_string().into_boxed_str()));
            }
        } else {
            out.push(h);
        }
    }
    out
}

/// Checks `input` fails with `error` whole and byte by byte, and that the
/// written answer carries `status`.
fn refused(name: &str, input: &[u8], error: HandshakeError, status: u16) {
    assert_eq!(serve_whole(input).unwrap_err(), error, "{name}");
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(
        serve(&Config::default(), 32, &bytes, &Accept::default()).unwrap_err(),
        error,
        "{name}: byte by byte"
    );
    assert_eq!(error.status(), Some(status), "{name}");
    let mut out = [0u8; 512];
    let n = error.write_response(&mut out).unwrap();
    let text = std::str::from_utf8(&out[..n]).unwrap();
    assert!(
        text.starts_with(&format!("HTTP/1.1 {status} ")),
        "{name}: {text}"
    );
    assert!(text.contains("\r\nConnection: close\r\n"), "{name}: {text}");
}

#[test]
fn the_good_request_is_accepted() {
    let seen = serve_whole(&request("GET /chat HTTP/1.1", &GOOD)).unwrap();
    assert!(String::from_utf8(seen.response)
        .unwrap()
        .contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
}

#[test]
fn every_refusal_with_its_status() {
    use HandshakeError::*;
    let line = "GET /chat HTTP/1.1";
    let cases: Vec<(&str, Vec<u8>, HandshakeError, u16)> = vec![
        (
            "POST",
            request("POST /chat HTTP/1.1", &GOOD),
            MethodNotGet,
            400,
        ),
        (
            "HTTP/1.0",
            request("GET /chat HTTP/1.0", &GOOD),
            HttpVersion,
            400,
        ),
        ("not HTTP", b"hello there\r\n\r\n".to_vec(), Malformed, 400),
        (
            "no Host",
            request(line, &good_but("Host", &[])),
            MissingHost,
            400,
        ),
        (
            "two Hosts",
            request(line, &good_but("Host", &["Host: a", "Host: b"])),
            MissingHost,
            400,
        ),
        (
            "no Upgrade",
            request(line, &good_but("Upgrade", &[])),
            MissingUpgrade,
            400,
        ),
        (
            "Upgrade: h2c",
            request(line, &good_but("Upgrade", &["Upgrade: h2c"])),
            MissingUpgrade,
            400,
        ),
        (
            "no Connection",
            request(line, &good_but("Connection", &[])),
            MissingConnectionUpgrade,
            400,
        ),
        (
            "Connection without upgrade",
            request(line, &good_but("Connection", &["Connection: keep-alive"])),
            MissingConnectionUpgrade,
            400,
        ),
        (
            "no key",
            request(line, &good_but("Sec-WebSocket-Key", &[])),
            InvalidKey,
            400,
        ),
        (
            "short key",
            request(
                line,
                &good_but(
                    "Sec-WebSocket-Key",
                    &["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ"],
                ),
            ),
            InvalidKey,
            400,
        ),
        (
            "key decodes to 18 bytes",
            request(
                line,
                &good_but(
                    "Sec-WebSocket-Key",
                    &["Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA"],
                ),
            ),
            InvalidKey,
            400,
        ),
        (
            "key not base64",
            request(
                line,
                &good_but(
                    "Sec-WebSocket-Key",
                    &["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q=="],
                ),
            ),
            InvalidKey,
            400,
        ),
        (
            "key duplicated",
            request(
                line,
                &good_but(
                    "Sec-WebSocket-Key",
                    &[
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                    ],
                ),
            ),
            InvalidKey,
            400,
        ),
        (
            "no version",
            request(line, &good_but("Sec-WebSocket-Version", &[])),
            MissingVersion,
            400,
        ),
        (
            "version 8",
            request(
                line,
                &good_but("Sec-WebSocket-Version", &["Sec-WebSocket-Version: 8"]),
            ),
            UnsupportedVersion,
            426,
        ),
    ];
    for (name, input, error, status) in cases {
        refused(name, &input, error, status);
    }
}

#[test]
fn version_8_gets_426_with_version_13() {
    let input = request(
        "GET / HTTP/1.1",
        &good_but("Sec-WebSocket-Version", &["Sec-WebSocket-Version: 8"]),
    );
    let error = serve_whole(&input).unwrap_err();
    let mut out = [0u8; 512];
    let n = error.write_response(&mut out).unwrap();
    let text = std::str::from_utf8(&out[..n]).unwrap();
    assert!(
        text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{text}");
}

#[test]
fn head_over_the_limit_is_431() {
    let config = Config {
        limits: Limits {
            max_handshake_bytes: 256,
            ..Limits::DEFAULT
        },
        ..Config::default()
    };
    let mut headers: Vec<String> = GOOD.iter().map(|h| h.to_string()).collect();
    headers.push(format!("X-Padding: {}", "p".repeat(300)));
    let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let input = request("GET / HTTP/1.1", &refs);
    assert_eq!(
        serve(&config, 32, &[&input], &Accept::default()).unwrap_err(),
        HandshakeError::HeadTooLarge
    );
    // Streamed without an end in sight: refused once 256 bytes are in,
    // without waiting for the blank line.
    let mut hs = ServerHandshake::new(&config, Instant::ZERO);
    let mut buf = Vec::new();
    let mut failed_at = None;
    for (i, b) in input.iter().enumerate() {
        buf.push(*b);
        let mut slots = [httparse::EMPTY_HEADER; 32];
        if let Err(e) = hs.parse(&buf, &mut slots) {
            assert_eq!(e, HandshakeError::HeadTooLarge);
            failed_at = Some(i + 1);
            break;
        }
    }
    assert_eq!(failed_at, Some(256));
    assert_eq!(HandshakeError::HeadTooLarge.status(), Some(431));
    // Just under the limit is fine.
    let small = request("GET / HTTP/1.1", &GOOD);
    assert!(small.len() < 256);
    assert!(serve(&config, 32, &[&small], &Accept::default()).is_ok());
}

#[test]
fn more_headers_than_slots_is_431() {
    let input = request("GET / HTTP/1.1", &GOOD);
    assert_eq!(
        serve(&Config::default(), 4, &[&input], &Accept::default()).unwrap_err(),
        HandshakeError::TooManyHeaders
    );
    assert_eq!(HandshakeError::TooManyHeaders.status(), Some(431));
    assert!(serve(&Config::default(), 5, &[&input], &Accept::default()).is_ok());
}

#[test]
fn handshake_deadline_is_408() {
    let start = Instant::from_secs(100);
    let config = Config {
        handshake_timeout: Duration::from_secs(3),
        ..Config::default()
    };
    let mut hs = ServerHandshake::new(&config, start);
    assert_eq!(hs.poll_timeout(), Some(Instant::from_secs(103)));
    assert_eq!(hs.handle_timeout(Instant::from_millis(102_999)), Ok(()));
    assert_eq!(
        hs.handle_timeout(Instant::from_secs(103)),
        Err(HandshakeError::Timeout)
    );
    assert_eq!(HandshakeError::Timeout.status(), Some(408));
    let mut out = [0u8; 256];
    let n = HandshakeError::Timeout.write_response(&mut out).unwrap();
    assert!(out[..n].starts_with(b"HTTP/1.1 408 Request Timeout\r\n"));
    // The client side has the same deadline.
    let mut rng = TestRng::new(3);
    let (mut client, _) = ClientHandshake::new(
        &ClientRequest::new("h", "/"),
        &mut rng,
        &config,
        start,
        &mut [0u8; 512],
    )
    .unwrap();
    assert_eq!(client.poll_timeout(), Some(Instant::from_secs(103)));
    assert_eq!(client.handle_timeout(Instant::from_secs(102)), Ok(()));
    assert_eq!(
        client.handle_timeout(Instant::from_secs(104)),
        Err(HandshakeError::Timeout)
    );
}

#[test]
fn token_lists_are_case_insensitive() {
    let input = request(
        "GET / HTTP/1.1",
        &[
            "host: example.com",
            "UPGRADE: WebSocket",
            "connection: keep-alive, Upgrade",
            "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==",
            "SEC-WEBSOCKET-VERSION: 13",
        ],
    );
    let seen = serve_whole(&input).unwrap();
    assert_eq!(seen.host, b"example.com");
    // Client side: the response's tokens are case-insensitive too.
    let (mut hs, _, request) = client_handshake(&[]);
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: WEBSOCKET\r\nConnection: keep-alive, UPGRADE\r\n\
         sec-websocket-accept: {}\r\n\r\n",
        expected_accept()
    );
    let mut headers = [httparse::EMPTY_HEADER; 16];
    assert!(hs
        .parse(&request, response.as_bytes(), &mut headers)
        .unwrap()
        .is_some());
}

// ----- client side -----

const SEED: u64 = 99;

fn expected_key() -> String {
    let mut rng = TestRng::new(SEED);
    let mut nonce = [0u8; 16];
    rng.fill_bytes(&mut nonce);
    String::from_utf8(encode_key(nonce).to_vec()).unwrap()
}

fn expected_accept() -> String {
    String::from_utf8(wsproto::handshake::accept_key(expected_key().as_bytes()).to_vec()).unwrap()
}

fn client_handshake(
    protocols: &'static [&'static str],
) -> (ClientHandshake, String, ClientRequest<'static>) {
    let request = ClientRequest {
        host: "example.com:8080",
        path: "/chat?x=1",
        origin: Some("http://example.com"),
        protocols,
        headers: &[("Authorization", b"Bearer t0k3n")],
    };
    let mut rng = TestRng::new(SEED);
    let mut out = [0u8; 1024];
    let (hs, n) = ClientHandshake::new(
        &request,
        &mut rng,
        &Config::default(),
        Instant::ZERO,
        &mut out,
    )
    .unwrap();
    (hs, String::from_utf8(out[..n].to_vec()).unwrap(), request)
}

#[test]
fn client_request_bytes() {
    let (_, text, _) = client_handshake(&["chat", "superchat"]);
    let key = expected_key();
    assert_eq!(
        text,
        format!(
            "GET /chat?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
             Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
             Authorization: Bearer t0k3n\r\n\r\n"
        )
    );
    // A different seed gives a different key.
    let mut other = [0u8; 1024];
    let (_, n) = ClientHandshake::new(
        &ClientRequest::new("example.com", "/"),
        &mut TestRng::new(SEED + 1),
        &Config::default(),
        Instant::ZERO,
        &mut other,
    )
    .unwrap();
    assert!(!std::str::from_utf8(&other[..n]).unwrap().contains(&key));
    // And the request is one our own server accepts, offering both protocols.
    let seen = serve_whole(text.as_bytes()).unwrap();
    assert_eq!(seen.protocols, ["chat", "superchat"]);
    assert_eq!(seen.path, "/chat?x=1");
    assert!(String::from_utf8(seen.response)
        .unwrap()
        .contains(&format!("Sec-WebSocket-Accept: {}\r\n", expected_accept())));
}

#[test]
fn client_request_refuses_bad_fields() {
    let mut out = [0u8; 1024];
    for request in [
        ClientRequest::new("", "/"),
        ClientRequest::new("example.com", "no-slash"),
        ClientRequest::new("exa mple.com", "/"),
        ClientRequest {
            protocols: &["bad protocol"],
            ..ClientRequest::new("example.com", "/")
        },
        ClientRequest {
            headers: &[("X-Bad", b"line\r\nbreak")],
            ..ClientRequest::new("example.com", "/")
        },
    ] {
        let result = ClientHandshake::new(
            &request,
            &mut TestRng::new(1),
            &Config::default(),
            Instant::ZERO,
            &mut out,
        );
        assert_eq!(
            result.map(|_| ()),
            Err(Misuse::InvalidHeader),
            "{request:?}"
        );
    }
}

fn response(lines: &[&str]) -> String {
    let mut s = String::new();
    for l in lines {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s
}

#[test]
fn client_validates_the_response() {
    use HandshakeError::*;
    let accept = format!("Sec-WebSocket-Accept: {}", expected_accept());
    let ok = "HTTP/1.1 101 Switching Protocols";
    let cases: Vec<(&str, String, HandshakeError)> = vec![
        (
            "403",
            response(&["HTTP/1.1 403 Forbidden", "Content-Length: 0"]),
            UnexpectedStatus(403),
        ),
        (
            "200",
            response(&[
                "HTTP/1.1 200 OK",
                "Upgrade: websocket",
                "Connection: Upgrade",
                &accept,
            ]),
            UnexpectedStatus(200),
        ),
        (
            "wrong accept",
            response(&[
                ok,
                "Upgrade: websocket",
                "Connection: Upgrade",
                "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
            ]),
            InvalidAccept,
        ),
        (
            "no accept",
            response(&[ok, "Upgrade: websocket", "Connection: Upgrade"]),
            InvalidAccept,
        ),
        (
            "no Upgrade",
            response(&[ok, "Connection: Upgrade", &accept]),
            MissingUpgrade,
        ),
        (
            "no Connection",
            response(&[ok, "Upgrade: websocket", &accept]),
            MissingConnectionUpgrade,
        ),
        (
            "unoffered subprotocol",
            response(&[
                ok,
                "Upgrade: websocket",
                "Connection: Upgrade",
                &accept,
                "Sec-WebSocket-Protocol: mqtt",
            ]),
            UnofferedSubprotocol,
        ),
        (
            "two subprotocols",
            response(&[
                ok,
                "Upgrade: websocket",
                "Connection: Upgrade",
                &accept,
                "Sec-WebSocket-Protocol: chat",
                "Sec-WebSocket-Protocol: chat",
            ]),
            UnofferedSubprotocol,
        ),
        (
            "unrequested extension",
            response(&[
                ok,
                "Upgrade: websocket",
                "Connection: Upgrade",
                &accept,
                "Sec-WebSocket-Extensions: permessage-deflate",
            ]),
            UnrequestedExtension,
        ),
    ];
    for (name, input, error) in cases {
        let (mut hs, _, request) = client_handshake(&["chat"]);
        let mut headers = [httparse::EMPTY_HEADER; 16];
        assert_eq!(
            hs.parse(&request, input.as_bytes(), &mut headers)
                .unwrap_err(),
            error,
            "{name}"
        );
        // Failures only a client can meet have no HTTP answer (Upgrade and
        // Connection errors share their variant, and 400, with the server).
        if !matches!(error, MissingUpgrade | MissingConnectionUpgrade) {
            assert_eq!(error.status(), None, "{name}");
            let mut out = [0u8; 64];
            assert_eq!(error.write_response(&mut out), Ok(0));
        }
    }
}

#[test]
fn client_accepts_a_good_response_with_a_frame_behind_it() {
    let accept = format!("Sec-WebSocket-Accept: {}", expected_accept());
    let head = response(&[
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        &accept,
        "Sec-WebSocket-Protocol: superchat",
    ]);
    let mut input = head.as_bytes().to_vec();
    input.extend_from_slice(&[0x81, 0x05, b'H', b'e', b'l', b'l', b'o', 0x89, 0x00]);
    for split in 0..=input.len() {
        let (mut hs, _, request) = client_handshake(&["chat", "superchat"]);
        let mut buf = input[..split].to_vec();
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let done = hs
            .parse(&request, &buf, &mut headers)
            .unwrap()
            .map(|r| (r.head_len(), r.protocol().map(str::to_owned)));
        let (head_len, protocol) = match done {
            Some(d) => d,
            None => {
                assert!(split < head.len(), "split at {split}");
                buf.extend_from_slice(&input[split..]);
                let mut headers = [httparse::EMPTY_HEADER; 16];
                let r = hs.parse(&request, &buf, &mut headers).unwrap().unwrap();
                (r.head_len(), r.protocol().map(str::to_owned))
            }
        };
        assert_eq!(head_len, head.len(), "split at {split}");
        assert_eq!(protocol.as_deref(), Some("superchat"));
        let mut rest = buf[head_len..].to_vec();
        rest.extend_from_slice(&input[buf.len()..]);
        let mut client = Connection::with_rng(Role::Client, Config::default(), TestRng::new(5));
        let mut events = Collector::default();
        wsproto_tests::receive_all(&mut client, &mut rest, usize::MAX, &mut events).unwrap();
        assert_eq!(
            events.events,
            [Ev::Text("Hello".into()), Ev::Ping(Vec::new())],
            "split at {split}"
        );
    }
}

// ----- request targets, bodies and line endings (hostile requests) -----

/// RFC 9112 §3.2: a server accepts the origin form (`/path?query`) and, as
/// RFC 9112 §3.2.2 and RFC 6455 §4.2.1 allow, the absolute form with an
/// http(s) or ws(s) scheme. For the absolute form the target's authority is
/// the host (a differing `Host` header is ignored, §3.2.2) and `path()` is
/// the origin form within it; `target()` keeps what was sent.
#[test]
fn absolute_form_targets_are_normalised() {
    for (target, path, host) in [
        ("ws://a.example/chat?room=1", "/chat?room=1", "a.example"),
        ("HTTP://a.example:8080/", "/", "a.example:8080"),
        ("wss://a.example", "/", "a.example"),
        ("https://[::1]:443/x", "/x", "[::1]:443"),
    ] {
        let input = request(&format!("GET {target} HTTP/1.1"), &GOOD);
        let mut hs = ServerHandshake::new(&Config::default(), Instant::ZERO);
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let req = hs.parse(&input, &mut headers).unwrap().expect("complete");
        assert_eq!(req.path(), path, "{target}");
        assert_eq!(req.host(), host.as_bytes(), "{target}");
        assert_eq!(req.target(), target);
    }
    // The origin form is unchanged.
    let input = request("GET /chat?x HTTP/1.1", &GOOD);
    let mut hs = ServerHandshake::new(&Config::default(), Instant::ZERO);
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let req = hs.parse(&input, &mut headers).unwrap().unwrap();
    assert_eq!((req.path(), req.host()), ("/chat?x", &b"example.com"[..]));
}

/// Anything else is a 400: the asterisk form (OPTIONS only), the authority
/// form (CONNECT only), other schemes, user info, an empty authority, a
/// fragment, and a query with no path in the absolute form.
#[test]
fn other_request_targets_are_400() {
    for target in [
        "*",
        "example.com:443",
        "chat",
        "ftp://a.example/",
        "ws://user@a.example/",
        "ws:///chat",
        "/chat#frag",
        "ws://a.example?x=1",
    ] {
        refused(
            target,
            &request(&format!("GET {target} HTTP/1.1"), &GOOD),
            HandshakeError::InvalidTarget,
            400,
        );
    }
}

/// An upgrade request has no body. A `Content-Length` above zero or any
/// `Transfer-Encoding` would make the bytes after the head ambiguous (body,
/// or the first WebSocket frames?), a request-smuggling risk behind a proxy:
/// 400. `Content-Length: 0` says there is none and is accepted.
#[test]
fn a_request_body_is_400() {
    for extra in [
        "Content-Length: 5",
        "Content-Length: 00000000001",
        "Content-Length: 0, 5",
        "Content-Length: x",
        "Transfer-Encoding: chunked",
        "Transfer-Encoding: identity",
    ] {
        let mut headers: Vec<&str> = GOOD.to_vec();
        headers.push(extra);
        refused(
            extra,
            &request("GET / HTTP/1.1", &headers),
            HandshakeError::RequestBody,
            400,
        );
    }
    let mut headers: Vec<&str> = GOOD.to_vec();
    headers.push("Content-Length: 0");
    assert!(serve_whole(&request("GET / HTTP/1.1", &headers)).is_ok());
}

/// A head with bare LF line endings ends at `\n\n`, which the scanner never
/// took for the end of a head: it waited for more bytes and ended in 431 or
/// 408. Any LF not preceded by CR in the head is refused with 400 as soon as
/// it arrives (RFC 9112 §2.2 lets a server refuse it), whole and byte by byte.
#[test]
fn bare_lf_line_endings_are_400_at_once() {
    let crlf = request("GET / HTTP/1.1", &GOOD);
    let lf = String::from_utf8(crlf.clone())
        .unwrap()
        .replace("\r\n", "\n");
    refused("all bare LF", lf.as_bytes(), HandshakeError::Malformed, 400);
    // One bare LF among CRLFs, and a head starting with LF.
    let one = String::from_utf8(crlf)
        .unwrap()
        .replacen("\r\nUpgrade", "\nUpgrade", 1);
    refused(
        "one bare LF",
        one.as_bytes(),
        HandshakeError::Malformed,
        400,
    );
    refused(
        "leading LF",
        b"\nGET / HTTP/1.1\r\n",
        HandshakeError::Malformed,
        400,
    );
    // Refused on the byte that shows it, long before any limit or deadline.
    let mut hs = ServerHandshake::new(&Config::default(), Instant::ZERO);
    let mut headers = [httparse::EMPTY_HEADER; 16];
    assert_eq!(
        hs.parse(b"GET / HTTP/1.1\n", &mut headers).unwrap_err(),
        HandshakeError::Malformed
    );
    // The client side refuses a response with bare LFs the same way.
    let lf_response = response(&[
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        &format!("Sec-WebSocket-Accept: {}", expected_accept()),
    ])
    .replace("\r\n", "\n");
    let (mut hs, _, request) = client_handshake(&[]);
    let mut headers = [httparse::EMPTY_HEADER; 16];
    assert_eq!(
        hs.parse(&request, lf_response.as_bytes(), &mut headers)
            .unwrap_err(),
        HandshakeError::Malformed
    );
}
