//! Inputs the fuzz targets once failed on, replayed through the very
//! harnesses the targets run (`wsproto::fuzzing`, behind the hidden
//! `fuzz-harness` feature), so every oracle the fuzzer checked is checked
//! again here: the whole input, a fuzzer-chosen chunking and a byte-at-a-time
//! feed must agree. Each file under `fuzz/regressions/<target>/` is an input
//! in that target's format; the tests below add the sharper assertion of
//! what the outcome must be.

use std::path::PathBuf;
use wsproto::fuzzing::{
    client_handshake, connection_bytes, server_handshake, ClientOutcome, ServerOutcome,
};
use wsproto::HandshakeError;

fn regression(target: &str, name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target)
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Found by `client_handshake_accept`: a valid 101 head, then `\n` — so the
/// head ends at a bare-LF empty line (`\r\n\n`) for httparse — followed by
/// more header-like bytes and a `\r\n\r\n`. The core's scanner only knew
/// `\r\n\r\n`, so it took the 165-byte head while httparse had stopped at
/// byte 128, and the client accepted with 37 unparsed bytes swallowed into
/// `head_len` (bytes that, to an HTTP reader, are the start of the WebSocket
/// stream). A head with a bare LF is `Malformed`.
#[test]
fn client_refuses_a_head_httparse_ends_at_a_bare_lf() {
    let data = regression("client_handshake_accept", "bare-lf-ends-head-early");
    assert_eq!(
        client_handshake(&data, true),
        ClientOutcome::Failed(HandshakeError::Malformed)
    );
}

/// The server-side twin of the case above: a complete upgrade request whose
/// head httparse ends at `\r\n\n`, followed by a header line and `\r\n\r\n`.
/// Before the fix it was accepted with `head_len` past the bare-LF end.
#[test]
fn server_refuses_a_head_httparse_ends_at_a_bare_lf() {
    let data = regression("server_handshake", "bare-lf-ends-head-early");
    assert_eq!(
        server_handshake(&data),
        ServerOutcome::Failed(HandshakeError::Malformed)
    );
    assert_eq!(HandshakeError::Malformed.status(), Some(400));
}

/// Control: without the stray LF, the header line after it belongs to the
/// head and the same request is accepted, whole and in every chunking.
#[test]
fn server_accepts_the_request_without_the_bare_lf() {
    let mut data = regression("server_handshake", "bare-lf-ends-head-early");
    let at = data.windows(3).position(|w| w == b"\r\n\n").unwrap();
    data.remove(at + 2);
    let input_len = data.len() - 4; // selector, limits and two chunk sizes
    match server_handshake(&data) {
        ServerOutcome::Accepted { head_len, .. } => assert_eq!(head_len, input_len),
        other => panic!("expected the request accepted, got {other:?}"),
    }
}

/// `deflate_inflate` once asserted that every text chunk fits the inflate
/// scratch. Only inflated chunks live there; a plain (RSV1 clear) message on
/// a deflate connection is surfaced from the input, whatever the scratch
/// size. The input is one plain text frame announcing 11 bytes, 6 of them
/// present: the replay must surface those 6 and no error.
#[cfg(feature = "deflate")]
#[test]
fn plain_text_on_a_deflate_connection_is_not_bounded_by_the_scratch() {
    use wsproto::fuzzing::{deflate_inflate, Item};
    let data = regression("deflate_inflate", "plain-text-larger-than-scratch");
    assert_eq!(data[0] & 0x04, 0, "frame mode");
    let trace = deflate_inflate(&data);
    assert!(!trace.items.iter().any(|i| matches!(i, Item::Error(_))));
    let partial = trace.partial.expect("an unfinished text message");
    assert_eq!(partial.1, b"\0\0....");
}

/// `deflate_inflate` found corrupt DEFLATE data reported with a large
/// scratch but not with a 4-byte one (the frame was still incomplete). The
/// harness compares the whole feed (4 KiB scratch) with a chunked one whose
/// scratch the second byte picks (4 + byte % 61): replayed at 4, 5, 7 and 64.
#[cfg(feature = "deflate")]
#[test]
fn corrupt_deflate_data_fails_whatever_the_scratch_size() {
    use wsproto::fuzzing::{deflate_inflate, Item};
    use wsproto::{Error, Violation};
    let mut data = regression("deflate_inflate", "deferred-corruption-small-scratch");
    for scratch_byte in [0u8, 1, 3, 60] {
        data[1] = scratch_byte;
        let whole = deflate_inflate(&data);
        assert!(
            whole.items.iter().any(|i| matches!(
                i,
                Item::Error(Error::Protocol(Violation::CorruptCompressedData))
            )),
            "{whole:?}"
        );
    }
}

/// Found by `server_handshake` and both client targets: a head larger than
/// `max_handshake_bytes` with a bare LF past the limit. Whole, the scanner saw
/// the LF and answered `Malformed`; byte by byte it reached the limit first
/// and answered `HeadTooLarge`. Only the first `max_handshake_bytes` are
/// judged now, so every arrival pattern gets `HeadTooLarge` (431).
#[test]
fn a_bare_lf_past_the_size_limit_is_head_too_large_however_it_arrives() {
    let data = regression("server_handshake", "bare-lf-past-the-size-limit");
    assert_eq!(
        server_handshake(&data),
        ServerOutcome::Failed(HandshakeError::HeadTooLarge)
    );
    for (target, accept) in [
        ("client_handshake", false),
        ("client_handshake_accept", true),
    ] {
        let data = regression(target, "bare-lf-past-the-size-limit");
        assert_eq!(
            client_handshake(&data, accept),
            ClientOutcome::Failed(HandshakeError::HeadTooLarge),
            "{target}"
        );
    }
}

/// Found by `connection`: a client that has sent its Close answers a Ping
/// that arrives before the server's Close (RFC 6455 §5.5.2). The transcript
/// oracle still said "nothing after Close"; it now allows a Pong there and
/// nothing else. The pair must run to the end with every oracle holding.
#[test]
fn a_pong_after_our_own_close_is_a_valid_transcript() {
    connection_bytes(&regression("connection", "pong-after-own-close"));
}
