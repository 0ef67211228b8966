//! A client/server pair driven by a structure-aware list of operations. Every
//! byte either side writes must be valid frames for its role, no protocol
//! error may occur, and each side must deliver exactly what the other sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsproto::fuzzing::{connection, ConnectionInput};

fuzz_target!(|input: ConnectionInput| {
    connection(input.config, &input.ops);
});
