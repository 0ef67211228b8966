//! Arbitrary bytes, arbitrarily chunked, into `ServerHandshake::parse`: only
//! accept, partial or a documented error, the same for every chunking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wsproto::fuzzing::server_handshake(data);
});
