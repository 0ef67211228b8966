//! `client_handshake`: arbitrary bytes as the answer to a real client
//! handshake, optionally with the right accept value spliced in.

use super::*;

// ---------------------------------------------------------------------------
// client_handshake
// ---------------------------------------------------------------------------

/// What the client handshake made of a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOutcome {
    Partial,
    Accepted {
        protocol: Option<String>,
        head_len: usize,
    },
    Failed(HandshakeError),
}

const OFFERED: &[&str] = &["chat", "superchat"];

fn run_client(
    request: &ClientRequest<'_>,
    config: &Config,
    expected_accept: &[u8; ACCEPT_LEN],
    input: &[u8],
    plan: &[usize],
    slots: usize,
) -> ClientOutcome {
    let mut out = [0u8; 1024];
    let (mut hs, _) = ClientHandshake::new(
        request,
        &mut FuzzRng::new(0x6b6579),
        config,
        Instant::ZERO,
        &mut out,
    )
    .expect("client request");
    let mut buf = Vec::new();
    let mut at = 0;
    for &size in plan {
        buf.extend_from_slice(&input[at..at + size]);
        at += size;
        let mut headers = vec![httparse::EMPTY_HEADER; slots];
        match hs.parse(request, &buf, &mut headers) {
            Ok(None) => {}
            Ok(Some(res)) => {
                let head_len = res.head_len();
                assert!(head_len <= buf.len(), "head_len past the input");
                let protocol = res.protocol();
                if let Some(p) = protocol {
                    assert!(request.protocols.contains(&p), "unoffered {p}");
                }
                // Independent check of what was accepted.
                let mut rh = vec![httparse::EMPTY_HEADER; slots];
                let mut parsed = httparse::Response::new(&mut rh);
                assert_eq!(
                    parsed.parse(&buf[..head_len]),
                    Ok(httparse::Status::Complete(head_len))
                );
                assert_eq!(parsed.code, Some(101));
                let accepts: Vec<&[u8]> = parsed
                    .headers
                    .iter()
                    .filter(|h| h.name.eq_ignore_ascii_case("Sec-WebSocket-Accept"))
                    .map(|h| h.value.trim_ascii())
                    .collect();
                assert_eq!(accepts, [&expected_accept[..]], "accepted a wrong accept");
                return ClientOutcome::Accepted {
                    protocol: protocol.map(str::to_owned),
                    head_len,
                };
            }
            Err(e) => {
                assert!(
                    matches!(
                        e,
                        HandshakeError::UnexpectedStatus(_)
                            | HandshakeError::InvalidAccept
                            | HandshakeError::MissingUpgrade
                            | HandshakeError::MissingConnectionUpgrade
                            | HandshakeError::UnofferedSubprotocol
                            | HandshakeError::UnrequestedExtension
                            | HandshakeError::Malformed
                            | HandshakeError::HeadTooLarge
                            | HandshakeError::TooManyHeaders
                    ),
                    "undocumented client error {e:?}"
                );
                if let HandshakeError::UnexpectedStatus(code) = e {
                    assert_ne!(code, 101);
                }
                return ClientOutcome::Failed(e);
            }
        }
    }
    ClientOutcome::Partial
}

/// The accept value a client built with the harness's fixed RNG expects.
fn expected_accept(request: &ClientRequest<'_>, config: &Config) -> [u8; ACCEPT_LEN] {
    let mut out = [0u8; 1024];
    let (_, n) = ClientHandshake::new(
        request,
        &mut FuzzRng::new(0x6b6579),
        config,
        Instant::ZERO,
        &mut out,
    )
    .expect("client request");
    let mut rh = [httparse::EMPTY_HEADER; 16];
    let mut req = httparse::Request::new(&mut rh);
    assert_eq!(req.parse(&out[..n]), Ok(httparse::Status::Complete(n)));
    let key = req
        .headers
        .iter()
        .find(|h| h.name == "Sec-WebSocket-Key")
        .expect("key header")
        .value;
    accept_key(key)
}

/// Byte 0: low 3 bits = number of chunk-size bytes; bit 3 = offer
/// subprotocols; bit 4 = small `max_handshake_bytes`; bit 5 (with `splice`) =
/// prepend a valid 101 head. Byte 1: header slots (low 5 bits + 1). Then the
/// chunk sizes, then the response. With `splice`, every `@@` in the response
/// becomes the correct `Sec-WebSocket-Accept` value. Returns the outcome
/// (the same for every split).
pub fn client_handshake(data: &[u8], splice: bool) -> ClientOutcome {
    let [sel, slots, rest @ ..] = data else {
        return ClientOutcome::Partial;
    };
    let n = usize::from(sel & 7).min(rest.len());
    let (sizes, raw) = rest.split_at(n);
    let sizes: Vec<usize> = sizes.iter().map(|&b| usize::from(b)).collect();
    let slots = usize::from(slots & 0x1f) + 1;
    let mut config = Config::default();
    if sel & 0x10 != 0 {
        config.limits.max_handshake_bytes = 128;
    }
    let request = ClientRequest {
        host: "server.example.com",
        path: "/chat",
        origin: Some("http://example.com"),
        protocols: if sel & 0x08 != 0 { OFFERED } else { &[] },
        headers: &[],
    };
    let accept = expected_accept(&request, &config);
    let input = if splice {
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
        input
    } else {
        raw.to_vec()
    };
    let whole = run_client(&request, &config, &accept, &input, &[input.len()], slots);
    let chunked = run_client(
        &request,
        &config,
        &accept,
        &input,
        &chunk_plan(&sizes, input.len()),
        slots,
    );
    assert_eq!(whole, chunked, "chunked response differs");
    if input.len() <= 1024 {
        let bytewise = run_client(
            &request,
            &config,
            &accept,
            &input,
            &vec![1; input.len()],
            slots,
        );
        assert_eq!(whole, bytewise, "byte-at-a-time response differs");
    }
    whole
}
