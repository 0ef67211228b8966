//! Messages through the core's compressor at either level, in chosen input
//! and output steps: the bytes must not depend on the split, must stay
//! within the size bound and must inflate back with miniz_oxide; the
//! harness lives in `wsproto::fuzzing::compress_roundtrip`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use miniz_oxide::inflate::core::inflate_flags::{
    TINFL_FLAG_HAS_MORE_INPUT, TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
};
use miniz_oxide::inflate::core::{decompress, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;
use wsproto::fuzzing::compress_roundtrip;

/// The whole stream at once; it ends after a sync flush, so more input is
/// announced and "needs more input" is the expected end.
fn reference(stream: &[u8], max_len: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; max_len + 64];
    let mut d = Box::<DecompressorOxide>::default();
    let flags = TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF | TINFL_FLAG_HAS_MORE_INPUT;
    let (status, used, made) = decompress(&mut d, stream, &mut out, 0, flags);
    match status {
        TINFLStatus::NeedsMoreInput | TINFLStatus::Done if used == stream.len() => {
            out.truncate(made);
            Some(out)
        }
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    compress_roundtrip(data, reference);
});
