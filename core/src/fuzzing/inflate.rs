//! `inflate_differential`: arbitrary bytes as one raw DEFLATE message into
//! the crate's [`Inflater`], in chosen input chunks and output sizes,
//! compared with a reference decoder the fuzz crate supplies (the core has
//! no dependency on one).
//!
//! The reference sees the message as the core does once the receiver has
//! appended the [`TAIL`], followed by an empty final block, so that a
//! message that ends between blocks is complete for both. Where exactly one
//! side accepts, the difference must be one of the documented rules:
//!
//! * window: with 2^bits < 32 KiB the core refuses a distance beyond its
//!   window. The reference (32 KiB, refusing distances before the first
//!   byte) accepts it only when more than 2^bits bytes came before, and all
//!   of those are delivered before the core's error.
//! * message end: the core refuses a message whose tail leaves the decoder
//!   inside a block, where the reference reads on into the final block.
//!   Then the message's own bytes decode without error, and the core given
//!   the reference's very bytes as the message makes the reference's
//!   output.

use super::*;
use std::boxed::Box;

use crate::extensions::deflate::inflate::TAIL;
use crate::extensions::deflate::{InflateError, Inflater};

/// What the reference decoder made of a whole stream.
pub enum Oracle {
    /// It reached the end of a final block with these bytes.
    Inflated(Vec<u8>),
    /// It refused the stream (or ran out of input).
    Refused,
    /// Its output limit was reached: nothing to compare.
    Inconclusive,
}

/// The largest input the harness uses: the reference's output buffer then
/// always holds the stream's whole output (DEFLATE expands at most
/// 1032:1).
pub const MAX_INPUT: usize = 1024;

/// Input chunk sizes and output buffer sizes the selector bytes choose from.
const IN_CHUNKS: [usize; 8] = [1, 2, 3, 7, 16, 64, 257, usize::MAX];
const OUT_SIZES: [usize; 8] = [1, 2, 3, 5, 64, 511, 4096, 1 << 16];

type Outcome = (Vec<u8>, Option<InflateError>);

/// Feeds `input` to a fresh inflater with a window of `W` bytes; returns
/// the bytes delivered and the error that stopped it, if any. With `fin`
/// false the tail is never appended (the message's own bytes only).
fn run<const W: usize>(input: &[u8], in_chunk: usize, out_size: usize, fin: bool) -> Outcome {
    let mut inf: Box<Inflater<W>> = Box::new(Inflater::new(false, u64::MAX));
    let mut got = Vec::new();
    let mut out = vec![0u8; out_size];
    let mut at: usize = 0;
    // Each call must make progress, so the number of calls is bounded by
    // the input length, the output and a few calls for the tail.
    let mut calls: usize = 0;
    loop {
        let end = at.saturating_add(in_chunk).min(input.len());
        let last = end == input.len();
        let chunk = &input[at..end];
        out.fill(0xa5);
        let r = inf.inflate(chunk, &mut out, fin && last);
        calls += 1;
        assert!(
            calls <= input.len() + 2 * (1 << 20) + 16,
            "too many calls: no progress"
        );
        match r {
            Err(e) => {
                // The error stays.
                assert_eq!(inf.inflate(&[], &mut out, true), Err(e));
                return (got, Some(e));
            }
            Ok(r) => {
                assert!(r.consumed <= chunk.len(), "consumed past the input");
                assert!(r.written <= out.len(), "wrote past the output");
                assert!(
                    out[r.written..].iter().all(|&b| b == 0xa5),
                    "touched the output past what it reported"
                );
                got.extend_from_slice(&out[..r.written]);
                at += r.consumed;
                if r.done {
                    assert!(fin && at == input.len(), "done before fin");
                    return (got, None);
                }
                let has_input = r.consumed < chunk.len() || (fin && last);
                assert!(
                    r.consumed > 0 || r.written > 0 || !has_input,
                    "a call with input and output room made no progress"
                );
                if !fin && at == input.len() && r.written < out.len() {
                    return (got, None); // all fed, all delivered
                }
            }
        }
    }
}

fn run_bits(bits: u8, input: &[u8], in_chunk: usize, out_size: usize, fin: bool) -> Outcome {
    match bits {
        9 => run::<512>(input, in_chunk, out_size, fin),
        10 => run::<1024>(input, in_chunk, out_size, fin),
        11 => run::<2048>(input, in_chunk, out_size, fin),
        12 => run::<4096>(input, in_chunk, out_size, fin),
        13 => run::<8192>(input, in_chunk, out_size, fin),
        14 => run::<16384>(input, in_chunk, out_size, fin),
        _ => run::<32768>(input, in_chunk, out_size, fin),
    }
}

/// The stream the reference decodes: the message, the tail the receiver
/// appends, and an empty final fixed block (RFC 7692 §7.2.3.4's trick).
pub fn reference_stream(message: &[u8]) -> Vec<u8> {
    let mut s = message.to_vec();
    s.extend_from_slice(&TAIL);
    s.extend_from_slice(&[0x03, 0x00]);
    s
}

/// Byte 0: window bits 9..=15 (low three bits) and input chunk size (next
/// three); byte 1: output size. The rest is the message.
pub fn inflate_differential(data: &[u8], oracle: fn(&[u8]) -> Oracle) {
    let [sel, out_sel, message @ ..] = data else {
        return;
    };
    let message = &message[..message.len().min(MAX_INPUT)];
    let bits = 9 + (sel & 7) % 7;
    let in_chunk = IN_CHUNKS[usize::from((sel >> 3) & 7)];
    let out_size = OUT_SIZES[usize::from(out_sel & 7)];

    let (got, err) = run_bits(bits, message, in_chunk, out_size, true);
    // Chunking never matters: the whole message into a large buffer.
    let whole = run_bits(bits, message, usize::MAX, 1 << 16, true);
    assert!(
        (&got, err) == (&whole.0, whole.1),
        "chunking changed the result"
    );
    assert_ne!(err, Some(InflateError::TooBig), "no limit was set");

    match (oracle(&reference_stream(message)), err) {
        (Oracle::Inconclusive, _) | (Oracle::Refused, Some(_)) => {}
        (Oracle::Inflated(want), None) => assert!(got == want, "output differs"),
        (Oracle::Refused, None) => panic!("the core accepted what the reference refused"),
        (Oracle::Inflated(want), Some(err)) => {
            assert!(want.starts_with(&got), "bytes before the error differ");
            let window = 1usize << bits;
            let past_window = bits < 15 && got.len() > window;
            // Message end: the message's own bytes decode without error,
            // and the very bytes the reference read give the core the
            // reference's output.
            let (_, own_err) = run_bits(bits, message, usize::MAX, 1 << 16, false);
            let same = run_bits(bits, &reference_stream(message), usize::MAX, 1 << 16, true);
            let bad_end = own_err.is_none() && same.1.is_none() && same.0 == want;
            assert!(
                past_window || bad_end,
                "refused without a documented reason (bits {bits}, {} of {} bytes, {err:?})",
                got.len(),
                want.len()
            );
        }
    }
}
