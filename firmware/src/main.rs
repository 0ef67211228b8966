//! # wsproto firmware
//!
//! Bare-metal firmware (no std, no allocator, no libc) that does a
//! WebSocket server's first job with `wsproto` and checks every byte:
//!
//! 1. parse the RFC 6455 §1.3 sample opening handshake;
//! 2. answer `101 Switching Protocols`; the whole response is compared, its
//!    `Sec-WebSocket-Accept` is the RFC's `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`;
//! 3. decode the §5.7 masked text frame "Hello" (UTF-8 validated);
//! 4. encode the echo, which must be `81 05 48 65 6c 6c 6f`.
//!
//! The result is a number: 0 when everything matched, otherwise the step
//! that did not (see the constants below). The qemu build (feature `qemu`)
//! reports it as the exit status through semihosting and prints the peak
//! stack and the size of the states; `scripts/check.sh` builds it for
//! three targets, runs it and checks the footprint budget.
//!
//! No std: a bare-metal target has none (`-Zbuild-std=core` builds only
//! `core`), so anything in the graph that needs std or `alloc` stops the
//! build. The `std-leak` feature does that on purpose.

#![no_std]
#![no_main]

#[cfg(feature = "std-leak")]
extern crate std;

#[cfg(feature = "adapter")]
mod adapter;
#[cfg(feature = "deflate")]
mod deflate;
mod fixtures;
#[cfg(not(any(feature = "reference", feature = "adapter", feature = "deflate")))]
mod job;
#[cfg(feature = "reference")]
mod reference;
mod rt;

/// Status: the panic handler ran.
pub const PANIC: u32 = 100;
/// Status: the processor faulted (HardFault or NMI).
pub const FAULT: u32 = 101;

/// Called by the reset code once RAM is set up.
#[no_mangle]
extern "C" fn firmware_main() -> ! {
    #[cfg(feature = "adapter")]
    let status = adapter::run();
    #[cfg(feature = "reference")]
    let status = reference::run();
    #[cfg(feature = "deflate")]
    let status = deflate::run();
    #[cfg(not(any(feature = "reference", feature = "adapter", feature = "deflate")))]
    let status = job::run();
    #[cfg(feature = "qemu")]
    report::print(status);
    rt::exit(status)
}

/// What the qemu build prints besides its exit status.
#[cfg(feature = "qemu")]
mod report {
    use crate::rt::{semihosting, stack_peak};
    use core::mem::size_of;
    use wsproto::handshake::{Request, ServerHandshake};
    use wsproto::{Config, Connection};

    /// A line of text being assembled, NUL-terminated for semihosting.
    struct Line {
        buf: [u8; 160],
        len: usize,
    }

    impl Line {
        fn new() -> Self {
            Line {
                buf: [0; 160],
                len: 0,
            }
        }

        fn text(&mut self, text: &[u8]) -> &mut Self {
            for &b in text {
                // Keep the last byte for the NUL.
                if let Some(slot) = self.buf.get_mut(self.len) {
                    if self.len + 1 < 160 {
                        *slot = b;
                        self.len += 1;
                    }
                }
            }
            self
        }

        fn number(&mut self, mut n: usize) -> &mut Self {
            let mut digits = [0u8; 20];
            let mut start = digits.len();
            loop {
                start -= 1;
                if let Some(d) = digits.get_mut(start) {
                    *d = b'0' + (n % 10) as u8;
                }
                n /= 10;
                if n == 0 || start == 0 {
                    break;
                }
            }
            self.text(digits.get(start..).unwrap_or_default())
        }

        fn print(&mut self) {
            self.text(b"\n");
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = 0;
            }
            semihosting::print(self.buf.get(..=self.len).unwrap_or_default());
            self.len = 0;
        }
    }

    /// Prints the result, the peak stack and the state sizes, one
    /// `key: name=value ...` line each, for `scripts/check.sh` to read.
    pub fn print(status: u32) {
        let stack = stack_peak();
        let mut line = Line::new();
        line.text(b"firmware: status=")
            .number(status as usize)
            .print();
        line.text(b"stack: peak=").number(stack).print();
        line.text(b"sizeof: Connection=")
            .number(size_of::<Connection>())
            .text(b" Config=")
            .number(size_of::<Config>())
            .text(b" ServerHandshake=")
            .number(size_of::<ServerHandshake>())
            .text(b" Request=")
            .number(size_of::<Request<'static>>());
        #[cfg(feature = "deflate")]
        line.text(b" ConnectionDeflate9=").number(size_of::<
            Connection<wsproto::NoRng, wsproto::extensions::deflate::Deflate9>,
        >());
        line.print();
    }
}
