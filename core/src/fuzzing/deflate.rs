//! `deflate_inflate`: arbitrary compressed payloads (or whole frames) into a
//! client with permessage-deflate, in arbitrary chunks and scratch sizes,
//! compared with the whole-buffer feed.

use super::*;

use crate::extensions::deflate::{Agreed, Deflate9};
use crate::MIN_INFLATE_BUFFER;

/// The largest decompressed message the harness allows (1009 past it).
const MAX_MESSAGE: u64 = 4096;

fn agreed(sel: u8) -> Agreed {
    Agreed {
        server_no_context_takeover: sel & 1 != 0,
        client_no_context_takeover: sel & 2 != 0,
        server_max_window_bits: Some(9),
        client_max_window_bits: Some(9),
    }
}

fn config() -> Config {
    let mut config = Config::default();
    config.limits.max_message_size = MAX_MESSAGE;
    config
}

fn run(sel: u8, stream: &[u8], plan: &[usize], scratch: usize) -> (Trace, State) {
    let deflate = Deflate9::new(&agreed(sel), Role::Client).expect("9-bit window fits");
    let mut conn =
        Connection::with_rng(Role::Client, config(), FuzzRng::new(1)).with_extension(deflate);
    let mut buf = Vec::new();
    let mut trace = Trace::default();
    let mut at = 0;
    for &size in plan {
        buf.extend_from_slice(&stream[at..at + size]);
        at += size;
        let mut transmit = Vec::new();
        if pump(&mut conn, &mut buf, scratch, &mut trace, &mut transmit).is_some() {
            assert!(conn.should_close_transport(), "failed but transport kept");
            trace.partial = None;
            break;
        }
    }
    // Without an error, a message the stream leaves unfinished has
    // surfaced the same bytes however the stream was split.
    (trace, conn.state())
}

/// Frames the fuzzer's bytes: in payload mode each `0xfe` byte splits
/// the payload into another fragment of one compressed text or binary
/// message; in frame mode the bytes are frames already.
fn framed(sel: u8, payload: &[u8]) -> Vec<u8> {
    if sel & 4 == 0 {
        return payload.to_vec();
    }
    let mut out = Vec::new();
    let parts: Vec<&[u8]> = payload.split(|&b| b == 0xfe).collect();
    let last = parts.len() - 1;
    for (i, part) in parts.iter().enumerate() {
        let part = &part[..part.len().min(0xffff)];
        let opcode = match (i, sel & 8 != 0) {
            (0, true) => 0x2,
            (0, false) => 0x1,
            _ => 0x0,
        };
        let rsv1 = if i == 0 { 0x40 } else { 0 };
        let fin = if i == last { 0x80 } else { 0 };
        out.push(fin | rsv1 | opcode);
        if part.len() < 126 {
            out.push(part.len() as u8);
        } else {
            out.push(126);
            out.extend_from_slice(&(part.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(part);
    }
    out
}

/// Byte 0: bits 0–1 the context takeover flags, bit 2 payload mode,
/// bit 3 binary, bits 4–7 the number of chunk-size bytes that follow.
/// Then one scratch-size byte, the chunk sizes, and the data. Returns
/// what the whole-buffer feed surfaced.
pub fn deflate_inflate(data: &[u8]) -> Trace {
    let Some((&sel, rest)) = data.split_first() else {
        return Trace::default();
    };
    let Some((&scratch, rest)) = rest.split_first() else {
        return Trace::default();
    };
    let n = usize::from(sel >> 4).min(rest.len());
    let (sizes, payload) = rest.split_at(n);
    let sizes: Vec<usize> = sizes.iter().map(|&b| usize::from(b)).collect();
    let stream = framed(sel, payload);
    let small = MIN_INFLATE_BUFFER + usize::from(scratch % 61);
    let (whole, whole_state) = run(sel, &stream, &[stream.len()], 4096);
    let (chunked, chunked_state) = run(sel, &stream, &chunk_plan(&sizes, stream.len()), small);
    assert_eq!(whole, chunked, "chunked feed with scratch {small} differs");
    assert_eq!(whole_state, chunked_state);
    whole
}
