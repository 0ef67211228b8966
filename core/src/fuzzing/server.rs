//! `server_handshake`: arbitrary bytes into `ServerHandshake::parse`, whole,
//! chunked and byte by byte; an accepted head is checked independently.

use super::*;

// ---------------------------------------------------------------------------
// server_handshake
// ---------------------------------------------------------------------------

/// What the server handshake made of an input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerOutcome {
    Partial,
    Accepted {
        path: String,
        host: Vec<u8>,
        key: Vec<u8>,
        origin: Option<Vec<u8>>,
        protocols: Vec<String>,
        extensions: Vec<Vec<u8>>,
        head_len: usize,
        response: Vec<u8>,
    },
    Failed(HandshakeError),
}

fn check_server_error(e: HandshakeError) -> ServerOutcome {
    let status = e.status().expect("server-side error has a status");
    assert!(
        matches!(status, 400 | 426 | 431),
        "undocumented status {status} for {e:?}"
    );
    let mut out = [0u8; 512];
    let n = e.write_response(&mut out).expect("error response fits 512");
    let expected = std::format!("HTTP/1.1 {status} ");
    assert!(out[..n].starts_with(expected.as_bytes()));
    ServerOutcome::Failed(e)
}

fn server_parse(hs: &mut ServerHandshake, buf: &[u8], slots: usize) -> ServerOutcome {
    let mut headers = vec![httparse::EMPTY_HEADER; slots];
    match hs.parse(buf, &mut headers) {
        Ok(None) => ServerOutcome::Partial,
        Err(e) => check_server_error(e),
        Ok(Some(req)) => {
            assert!(req.head_len() <= buf.len(), "head_len past the input");
            assert!(buf[..req.head_len()].ends_with(b"\r\n\r\n"));
            // Independently: httparse ends the head exactly there.
            let mut qh = vec![httparse::EMPTY_HEADER; slots];
            let mut parsed = httparse::Request::new(&mut qh);
            assert_eq!(
                parsed.parse(&buf[..req.head_len()]),
                Ok(httparse::Status::Complete(req.head_len())),
                "accepted a head httparse ends elsewhere"
            );
            let mut out = [0u8; 4096];
            let protocol = req.protocols().next();
            let n = req
                .accept(
                    &Accept {
                        protocol,
                        headers: &[],
                    },
                    &mut out,
                )
                .expect("accept with an offered protocol");
            let response = &out[..n];
            assert!(response.starts_with(b"HTTP/1.1 101 "));
            // The response parses back, with the right accept value.
            let mut rh = [httparse::EMPTY_HEADER; 16];
            let mut res = httparse::Response::new(&mut rh);
            assert_eq!(
                res.parse(response),
                Ok(httparse::Status::Complete(n)),
                "accept response does not parse"
            );
            assert_eq!(res.code, Some(101));
            let accepts: Vec<&[u8]> = res
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("Sec-WebSocket-Accept"))
                .map(|h| h.value)
                .collect();
            assert_eq!(accepts, [&accept_key(req.key())[..]]);
            ServerOutcome::Accepted {
                path: req.path().to_owned(),
                host: req.host().to_vec(),
                key: req.key().to_vec(),
                origin: req.origin().map(<[u8]>::to_vec),
                protocols: req.protocols().map(str::to_owned).collect(),
                extensions: req.extensions().map(<[u8]>::to_vec).collect(),
                head_len: req.head_len(),
                response: response.to_vec(),
            }
        }
    }
}

fn run_server(config: &Config, input: &[u8], plan: &[usize], slots: usize) -> ServerOutcome {
    let mut hs = ServerHandshake::new(config, Instant::ZERO);
    let mut buf = Vec::new();
    let mut at = 0;
    let mut outcome = ServerOutcome::Partial;
    for &size in plan {
        buf.extend_from_slice(&input[at..at + size]);
        at += size;
        outcome = server_parse(&mut hs, &buf, slots);
        if outcome != ServerOutcome::Partial {
            break;
        }
    }
    outcome
}

/// Byte 0: low 3 bits = number of chunk-size bytes. Byte 1: header slots
/// (low 5 bits + 1) and, with bit 5, a small `max_handshake_bytes`.
/// Returns the outcome (the same for every split).
pub fn server_handshake(data: &[u8]) -> ServerOutcome {
    let [sel, limits, rest @ ..] = data else {
        return ServerOutcome::Partial;
    };
    let n = usize::from(sel & 7).min(rest.len());
    let (sizes, input) = rest.split_at(n);
    let sizes: Vec<usize> = sizes.iter().map(|&b| usize::from(b)).collect();
    let slots = usize::from(limits & 0x1f) + 1;
    let mut config = Config::default();
    if limits & 0x20 != 0 {
        config.limits.max_handshake_bytes = 32 + usize::from(limits >> 6) * 64;
    }
    let whole = run_server(&config, input, &[input.len()], slots);
    let chunked = run_server(&config, input, &chunk_plan(&sizes, input.len()), slots);
    assert_eq!(whole, chunked, "chunked handshake differs");
    if input.len() <= 1024 {
        let bytewise = run_server(&config, input, &vec![1; input.len()], slots);
        assert_eq!(whole, bytewise, "byte-at-a-time handshake differs");
    }
    whole
}
