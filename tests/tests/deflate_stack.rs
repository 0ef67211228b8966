//! A permessage-deflate connection with full 32 KiB windows is negotiated
//! and used on a thread with a 64 KiB stack, which needs its state built on
//! the heap in place (`HeapDeflate15`). Built inline and then boxed, the same
//! state passes through the stack on the way and overflows it.
//!
//! A stack overflow aborts the whole process, so each case runs in a child
//! process (this test binary again, narrowed to the one test) and the parent
//! judges its exit status and output.
//!
//! Run with `--features deflate`.
#![cfg(feature = "deflate")]

use std::process::Command;

use wsproto::extensions::deflate::{Agreed, Deflate15, DeflateConfig, HeapDeflate15};
use wsproto::handshake::{Accept, ClientHandshake, ClientRequest, ServerHandshake};
use wsproto::{Config, Connection, Extension, Instant, Role};
use wsproto_tests::{receive_all_into, Collector, Ev, TestRng};

/// Set in the child: the stack size in bytes of the thread the case runs on.
const CHILD_STACK: &str = "WSPROTO_TEST_CHILD_STACK";

/// The stack the issue asks a deflate connection to fit in.
const SMALL_STACK: usize = 64 * 1024;

/// Runs `case` on a thread with `stack` bytes of stack and waits for it.
fn on_stack(stack: usize, case: fn()) {
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(case)
        .unwrap()
        .join()
        .unwrap();
}

/// In the child: runs `case` on the stack the parent chose and returns
/// true. In the parent: returns false.
fn child(case: fn()) -> bool {
    match std::env::var(CHILD_STACK) {
        Ok(stack) => {
            on_stack(stack.parse().unwrap(), case);
            true
        }
        Err(_) => false,
    }
}

/// Runs the test `name` of this binary in a child process with `stack`
/// bytes of stack for its case; returns whether it succeeded, and its
/// stderr.
fn spawn(name: &str, stack: usize) -> (bool, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_STACK, stack.to_string())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The child must have run exactly this one test.
    assert!(
        !out.status.success() || stdout.contains("1 passed"),
        "{stdout}"
    );
    (out.status.success(), stderr)
}

/// The opening handshake with default deflate settings both ways (full
/// windows, what browsers offer), a state for each side from `make`, and a
/// compressed message each way. Each connection is boxed once built, as the
/// std drivers do; the buffers are on the heap.
fn negotiate_and_use<E: Extension>(make: fn(&Agreed, Role) -> E) {
    let config = Config::default();
    let now = Instant::from_secs(1);
    let request = ClientRequest::new("example.com", "/chat");
    let mut rng = TestRng::new(5);
    let mut out = vec![0u8; 1024];
    let (mut client_hs, n) = ClientHandshake::new_with_deflate(
        &request,
        &DeflateConfig::default(),
        &mut rng,
        &config,
        now,
        &mut out,
    )
    .unwrap();
    let mut server_hs = ServerHandshake::new(&config, now);
    let mut headers = vec![httparse::EMPTY_HEADER; 32];
    let req = server_hs.parse(&out[..n], &mut headers).unwrap().unwrap();
    let agreed = req.negotiate_deflate(&DeflateConfig::default()).unwrap();
    assert_eq!(agreed.directions(Role::Server).state_window_bits(), 15);
    let mut response = vec![0u8; 1024];
    let n = req
        .accept_deflate(&Accept::default(), &agreed, &mut response)
        .unwrap();
    let mut headers = vec![httparse::EMPTY_HEADER; 32];
    let res = client_hs
        .parse(&request, &response[..n], &mut headers)
        .unwrap()
        .unwrap();
    let client_agreed = res.deflate().unwrap();

    let mut client = Box::new(
        Connection::with_rng(Role::Client, config, rng)
            .with_extension(make(&client_agreed, Role::Client)),
    );
    let mut server =
        Box::new(Connection::new(Role::Server, config).with_extension(make(&agreed, Role::Server)));

    // Long-distance repeats (a 20 KiB block, twice) exercise the full window.
    let block: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let message = [block.as_slice(), block.as_slice()].concat();
    let mut scratch = vec![0u8; 4096];
    for _ in 0..2 {
        let mut wire = vec![0u8; client.send_buffer_len(message.len())];
        let n = client.send_binary(&message, &mut wire).unwrap();
        assert!(n < 25_000, "the repeat was found: {n} bytes");
        wire.truncate(n);
        let mut got = Collector::default();
        receive_all_into(
            &mut server,
            &mut wire,
            usize::MAX,
            Some(&mut scratch),
            &mut got,
        )
        .unwrap();
        assert_eq!(got.take(), [Ev::Binary(message.clone())]);

        let mut wire = vec![0u8; server.send_buffer_len(message.len())];
        let n = server.send_binary(&message, &mut wire).unwrap();
        wire.truncate(n);
        let mut got = Collector::default();
        receive_all_into(
            &mut client,
            &mut wire,
            usize::MAX,
            Some(&mut scratch),
            &mut got,
        )
        .unwrap();
        assert_eq!(got.take(), [Ev::Binary(message.clone())]);
    }
}

/// The state on the heap, built in place.
fn heap15(agreed: &Agreed, role: Role) -> HeapDeflate15 {
    HeapDeflate15::new(agreed, role).unwrap()
}

/// The inline state.
fn inline15(agreed: &Agreed, role: Role) -> Deflate15 {
    Deflate15::new(agreed, role).unwrap()
}

#[test]
fn heap_deflate15_negotiated_and_used_on_a_64k_stack() {
    if child(|| negotiate_and_use(heap15)) {
        return;
    }
    let (ok, stderr) = spawn(
        "heap_deflate15_negotiated_and_used_on_a_64k_stack",
        SMALL_STACK,
    );
    assert!(ok, "{stderr}");
}

/// The control: the harness does detect an overflow, and the inline state
/// is what overflows.
#[test]
fn inline_deflate15_overflows_a_64k_stack() {
    if child(|| negotiate_and_use(inline15)) {
        return;
    }
    let (ok, stderr) = spawn("inline_deflate15_overflows_a_64k_stack", SMALL_STACK);
    assert!(!ok, "the inline state fit in 64 KiB");
    assert!(stderr.contains("has overflowed its stack"), "{stderr}");
}
