//! Like `client_handshake`, with the correct `Sec-WebSocket-Accept` value
//! spliced in (for every `@@`, or a valid 101 head prepended) so the accept
//! path is reachable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wsproto::fuzzing::client_handshake(data, true);
});
