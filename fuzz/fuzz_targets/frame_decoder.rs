//! Arbitrary bytes, arbitrarily chunked, into a server and a client
//! connection; the events, state and output must match the whole-buffer feed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| wsproto::fuzzing::frame_decoder(data));
