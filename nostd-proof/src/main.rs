//! # no_std proof for `wsproto`
//!
//! A `#![no_std] #![no_main]` binary with its own `#[panic_handler]`,
//! `panic = "abort"` (the workspace's `nostd` profile) and no global
//! allocator. It runs a server through the whole happy path on fixed bytes:
//!
//! 1. [`ServerHandshake`] parses the RFC 6455 §1.3 sample request (key
//!    `dGhlIHNhbXBsZSBub25jZQ==`), followed in the same buffer by the §5.7
//!    masked text frame "Hello";
//! 2. the accept response must contain `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`;
//! 3. a server [`Connection`] receives the bytes after `head_len` and must
//!    report `Text "Hello"`;
//! 4. `send_text` echoes it into a stack buffer, which must hold
//!    `81 05 48 65 6c 6c 6f`.
//!
//! Exit status 0 means every check passed, 1 means a mismatch (2 is the
//! panic handler, which the success path never reaches).
//!
//! Why it is a proof: if anything in the dependency graph links Rust's std,
//! std's own `panic_impl` collides with the handler below and the build fails
//! with a duplicate lang item. The `std-leak` feature does exactly that on
//! purpose; `check.sh` requires the normal build to run and that one to fail:
//!
//! ```text
//! cargo build -p wsproto-nostd-proof --profile nostd && ./target/nostd/wsproto-nostd-proof
//! bash nostd-proof/check.sh
//! ```
//!
//! Only the `nostd` profile (`panic = "abort"`) is the proof. With the
//! default `panic = "unwind"` profiles (the workspace-wide `cargo clippy`,
//! `cargo doc`, `cargo build --workspace`) a no_std binary cannot be built
//! on stable at all ("unwinding panics are not supported without std"), so
//! there the crate links std for its unwinding runtime and uses std's panic
//! handler, just so the same code can be linted and documented. For the
//! same reason `--all-features` (which turns on `std-leak`) only fails in
//! the `nostd` profile.
//!
//! The host target is used (no bare-metal target is needed): `build.rs`
//! links with `-nostartfiles` and `_start` is defined here. libc is still
//! linked, for `memcpy`/`memset`, `write` and `_exit`; Rust's std is not.

#![no_std]
#![no_main]

// Not part of the proof: see the crate docs (`panic = "unwind"` profiles only).
#[cfg(panic = "unwind")]
extern crate std;

use wsproto::handshake::{Accept, ServerHandshake};
use wsproto::httparse;
use wsproto::{Config, Connection, Event, Instant, Role};

// libc (dynamic): no_std has no `libc` crate to add `-lc`, so ask for it here.
// It also provides the `memcpy`/`memmove`/`memset`/`memcmp` that core calls.
#[link(name = "c")]
extern "C" {
    fn write(fd: i32, buf: *const u8, count: usize) -> isize;
    fn _exit(status: i32) -> !;
}

/// RFC 6455 §1.3 sample request, then the §5.7 masked text frame "Hello".
const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Version: 13\r\n\
\r\n\
\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";

const ACCEPT_KEY: &[u8] = b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
const ECHO: [u8; 7] = [0x81, 0x05, b'H', b'e', b'l', b'l', b'o'];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The whole check; `Err` names the step that did not match.
fn run() -> Result<(), &'static str> {
    let mut buf = [0u8; 512];
    let input = buf.get_mut(..REQUEST.len()).ok_or("buffer")?;
    input.copy_from_slice(REQUEST);

    // Handshake: parse, accept, check the accept key.
    let mut response = [0u8; 256];
    let head_len;
    {
        let mut handshake = ServerHandshake::new(&Config::default(), Instant::ZERO);
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let req = handshake
            .parse(&*input, &mut headers)
            .map_err(|_| "handshake parse error")?
            .ok_or("handshake incomplete")?;
        let n = req
            .accept(&Accept::default(), &mut response)
            .map_err(|_| "accept error")?;
        let response = response.get(..n).ok_or("accept length")?;
        if !response.starts_with(b"HTTP/1.1 101 ") || !contains(response, ACCEPT_KEY) {
            return Err("accept response");
        }
        head_len = req.head_len();
    }

    // Connection: the leftover bytes are the masked "Hello".
    let mut conn = Connection::new(Role::Server, Config::default());
    let rest = input.get_mut(head_len..).ok_or("head_len")?;
    let rest_len = rest.len();
    let received = conn.receive(rest).map_err(|_| "receive error")?;
    if received.consumed != rest_len {
        return Err("receive consumed");
    }
    match received.event {
        Some(Event::Text {
            data: "Hello",
            fin: true,
        }) => {}
        _ => return Err("event"),
    }

    // Echo into a stack buffer.
    let mut out = [0u8; 64];
    let n = conn
        .send_text("Hello", &mut out)
        .map_err(|_| "send_text error")?;
    if out.get(..n) != Some(&ECHO[..]) {
        return Err("echo bytes");
    }
    Ok(())
}

fn print(parts: &[&[u8]]) {
    for part in parts {
        // SAFETY: a valid pointer/length pair for the duration of the call.
        // A failed write only loses the message; the exit status still tells.
        unsafe {
            write(1, part.as_ptr(), part.len());
        }
    }
}

/// The Rust entry point, called by `_start` with an aligned stack.
#[no_mangle]
extern "C" fn proof_main() -> ! {
    let status = match run() {
        Ok(()) => {
            print(&[b"wsproto no_std proof: ok\n"]);
            0
        }
        Err(step) => {
            print(&[
                b"wsproto no_std proof: MISMATCH at ",
                step.as_bytes(),
                b"\n",
            ]);
            1
        }
    };
    // SAFETY: `_exit` ends the process; nothing needs to run after it.
    unsafe { _exit(status) }
}

// Process entry without crt1.o (`-nostartfiles`). The kernel enters with
// `rsp` 16-byte aligned and no return address; a Rust `extern "C" fn` expects
// `rsp % 16 == 8`, so realign and `call` (pushing 8 bytes) into Rust.
#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".globl _start",
    ".type _start,@function",
    "_start:",
    "xor ebp, ebp",
    "and rsp, -16",
    "call {main}",
    "ud2",
    main = sym proof_main,
);

#[cfg(panic = "abort")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    print(&[b"wsproto no_std proof: panic\n"]);
    // SAFETY: see `proof_main`.
    unsafe { _exit(2) }
}

/// Placeholder for the unwinding personality routine. The precompiled
/// `libcore` (built with `panic = "unwind"`) names `rust_eh_personality` in
/// its unwind tables, so the linker wants the symbol even though this
/// binary is `panic = "abort"` and links no unwinder: nothing can ever call
/// it. If something did, it exits like the panic handler.
#[cfg(panic = "abort")]
#[no_mangle]
extern "C" fn rust_eh_personality() -> ! {
    // SAFETY: see `proof_main`.
    unsafe { _exit(2) }
}
