//! Arbitrary bytes as a raw DEFLATE message into the core's inflater, in
//! chosen chunks, window bits and output sizes, with miniz_oxide's
//! decompressor as the reference; the harness and its rules live in
//! `wsproto::fuzzing::inflate_differential`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use miniz_oxide::inflate::core::inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
use miniz_oxide::inflate::core::{decompress, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;
use wsproto::fuzzing::{inflate_differential, Oracle, MAX_INPUT};

/// miniz_oxide on the whole stream, with a non-wrapping output buffer (so a
/// distance before the first byte is refused) large enough for any output
/// of `MAX_INPUT` bytes of input.
fn reference(stream: &[u8]) -> Oracle {
    let mut out = vec![0u8; (MAX_INPUT + 16) * 1040];
    let mut d = Box::<DecompressorOxide>::default();
    let (status, _, made) = decompress(
        &mut d,
        stream,
        &mut out,
        0,
        TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
    );
    match status {
        TINFLStatus::Done => {
            out.truncate(made);
            Oracle::Inflated(out)
        }
        TINFLStatus::HasMoreOutput => Oracle::Inconclusive,
        _ => Oracle::Refused,
    }
}

fuzz_target!(|data: &[u8]| {
    inflate_differential(data, reference);
});
