//! Arbitrary bytes as the server's answer to a real `ClientHandshake`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wsproto::fuzzing::client_handshake(data, false);
});
