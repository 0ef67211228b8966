//! The embedded-io-async driver (`wsproto_adapters::embedded`), both roles,
//! over an in-memory socket: fuzzer-chosen read and write chunking, pending
//! polls and transport faults, a valid or an arbitrary opening handshake,
//! arbitrary peer bytes (raw or as frames) and application calls in between.
//! The harness and its oracles are in `embedded_driver/harness.rs`, shared
//! with `std-adapters/tests/embedded.rs`, which replays saved inputs.
#![no_main]

#[path = "embedded_driver/harness.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

// The "memory bounded by the caller's buffers" oracle counts allocations
// made while the driver is polled.
#[global_allocator]
static ALLOC: harness::CountingAlloc = harness::CountingAlloc;

fuzz_target!(|data: &[u8]| {
    let _ = harness::embedded_driver(data);
});
