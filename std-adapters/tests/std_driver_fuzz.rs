//! The `std_driver` fuzz harness (the blocking driver over a scripted
//! transport on a simulated clock), replayed on the committed seeds and on
//! every input the fuzzer once failed on (`fuzz/regressions/std_driver/`).

#[path = "../../fuzz/fuzz_targets/std_driver/harness.rs"]
mod harness;

#[path = "common/fuzz_inputs.rs"]
mod common;

fn fuzz_inputs(dir: &str) -> Vec<(String, Vec<u8>)> {
    common::fuzz_inputs(dir, "std_driver")
}

/// Every seed of the fuzz corpus passes the harness's oracles.
#[test]
fn fuzz_seeds_pass_the_std_driver_oracles() {
    let seeds = fuzz_inputs("corpus");
    assert!(seeds.len() >= 2);
    for (name, data) in seeds {
        eprintln!("replaying {name}");
        harness::std_driver(&data);
    }
}

/// Inputs the `std_driver` target once failed on pass every oracle.
///
/// `answered-ping-keeps-its-old-deadline`: a client with a 10 ms keepalive
/// interval and a 65 s timeout gets one byte from the peer just after its
/// first ping, then nothing. The bytes answered that ping, yet its deadline
/// stayed armed; when it expired (not quiet) it was dropped, and the next
/// ping's deadline was counted from then: the silent peer was kept for
/// 131 s instead of 65 s, reading every 10 ms (more than 20,000 transport
/// calls in one `read()`).
#[test]
fn fuzz_regressions_pass_the_std_driver_oracles() {
    let inputs = fuzz_inputs("regressions");
    assert!(!inputs.is_empty());
    for (name, data) in inputs {
        eprintln!("replaying {name}");
        harness::std_driver(&data);
    }
}
