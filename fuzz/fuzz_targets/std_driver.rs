//! The blocking std driver over a scripted in-memory transport on a
//! simulated clock. The harness and its oracles are in
//! `std_driver/harness.rs`, shared with `std-adapters/tests/std_driver_fuzz.rs`,
//! which replays saved inputs.
#![no_main]

#[path = "std_driver/harness.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    harness::std_driver(data);
});
