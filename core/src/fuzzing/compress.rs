//! `compress_roundtrip`: messages through the compressor at either level,
//! fed and drained in chosen steps and compared with the same messages
//! compressed whole (the output must not depend on the split), within
//! `max_compressed_len`, and inflated back by a reference decoder the fuzz
//! target passes in.

use super::*;

use crate::extensions::deflate::{CompressionLevel, Compressor};
use std::boxed::Box;

/// Message bytes a run takes from its input (the rest is ignored).
pub const MAX_COMPRESS_INPUT: usize = 4096;
/// Longest message after expansion (see [`expand`]).
const MAX_MESSAGE: usize = 1 << 16;
/// Input and output steps the selector bytes choose from.
const STEPS: [usize; 8] = [1, 2, 3, 7, 64, 511, 4096, usize::MAX];
/// What permessage-deflate strips from the end of every message.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Inflates a raw DEFLATE stream that ends after a sync flush (no final
/// block), expecting at most `max_len` bytes; `None` if it is refused.
pub type Reference = fn(&[u8], usize) -> Option<Vec<u8>>;

/// `[sel, steps, bytes...]`: `sel` bit 0 the fast level, bit 1 no context
/// takeover, bit 2 the 15-bit compressor (else 9-bit), bit 3 messages
/// expanded by back-references (so long matches are common); `steps` low
/// three bits the input step, the next three the output step. The bytes
/// are split into messages at each `0xfe`.
pub fn compress_roundtrip(data: &[u8], reference: Reference) {
    let [sel, steps, bytes @ ..] = data else {
        return;
    };
    let bytes = &bytes[..bytes.len().min(MAX_COMPRESS_INPUT)];
    let level = if sel & 1 == 0 {
        CompressionLevel::Default
    } else {
        CompressionLevel::Fast
    };
    let nct = sel & 2 != 0;
    let msgs: Vec<Vec<u8>> = bytes
        .split(|&b| b == 0xfe)
        .take(8)
        .map(|m| if sel & 8 != 0 { expand(m) } else { m.to_vec() })
        .collect();
    let in_step = STEPS[usize::from(steps & 7)];
    let out_step = STEPS[usize::from((steps >> 3) & 7)].min(1 << 20);
    let run = Run {
        level,
        nct,
        in_step,
        out_step,
        reference,
    };
    if sel & 4 == 0 {
        run.check::<1024, 512>(9, &msgs);
    } else {
        run.check::<65536, 8192>(15, &msgs);
    }
}

/// Bytes below `0x80` as literals; a byte `b` from `0x80` up copies
/// `(b & 0x7f) * 3 + 3` bytes from the distance the next byte gives.
fn expand(src: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    let mut it = src.iter();
    while let Some(&b) = it.next() {
        if b < 0x80 || out.is_empty() {
            out.push(b);
            continue;
        }
        let dist = usize::from(it.next().copied().unwrap_or(0)) % out.len() + 1;
        for _ in 0..usize::from(b & 0x7f) * 3 + 3 {
            out.push(out[out.len() - dist]);
        }
        if out.len() >= MAX_MESSAGE {
            break;
        }
    }
    out.truncate(MAX_MESSAGE);
    out
}

struct Run {
    level: CompressionLevel,
    nct: bool,
    in_step: usize,
    out_step: usize,
    reference: Reference,
}

impl Run {
    fn check<const B: usize, const H: usize>(&self, bits: u8, msgs: &[Vec<u8>]) {
        let new = || {
            let mut c = Box::new(Compressor::<B, H>::new(bits, self.nct));
            c.set_level(self.level);
            c
        };
        let (mut whole, mut split) = (new(), new());
        let mut stream = Vec::new();
        for m in msgs {
            let z = compress(&mut whole, m, usize::MAX, 1 << 20);
            let z_split = compress(&mut split, m, self.in_step, self.out_step);
            assert!(z == z_split, "the output depends on the split");
            assert!(z.len() <= Compressor::<B, H>::max_compressed_len(m.len()));
            if self.nct {
                let mut own = z.clone();
                own.extend_from_slice(&TAIL);
                let got = (self.reference)(&own, m.len()).expect("reference refused a message");
                assert!(got == *m, "a message did not inflate to itself");
            }
            stream.extend_from_slice(&z);
            stream.extend_from_slice(&TAIL);
        }
        if !self.nct {
            // With context takeover the messages are one stream.
            let all = msgs.concat();
            let got = (self.reference)(&stream, all.len()).expect("reference refused the stream");
            assert!(got == all, "the messages did not inflate to themselves");
        }
    }
}

/// One message, `in_step` input bytes and `out_step` output bytes a call.
fn compress<const B: usize, const H: usize>(
    c: &mut Compressor<B, H>,
    msg: &[u8],
    in_step: usize,
    out_step: usize,
) -> Vec<u8> {
    let mut got = Vec::new();
    let mut out = vec![0u8; out_step];
    let mut pos = 0usize;
    for _ in 0..10_000_000 {
        let end = pos.saturating_add(in_step).min(msg.len());
        let r = c.compress(&msg[pos..end], &mut out, end == msg.len());
        got.extend_from_slice(&out[..r.written]);
        pos += r.consumed;
        if r.done {
            assert_eq!(pos, msg.len(), "done before all input was taken");
            return got;
        }
    }
    panic!("the compressor made no progress");
}
