//! Compressed payloads (or whole frames) into a client that negotiated
//! permessage-deflate, in arbitrary chunks and scratch sizes; the trace must
//! match the whole-buffer feed, and only documented errors may escape.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wsproto::fuzzing::deflate_inflate(data);
});
