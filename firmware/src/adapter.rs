//! The job through wsproto-adapters' `embedded` driver (feature `adapter`):
//! `WebSocket::accept`, `read` and `send_text` over an in-memory
//! `embedded-io-async` socket that hands the request over in small pieces,
//! driven by a minimal executor. The socket's output must be the response
//! followed by the echo, byte for byte.

use crate::fixtures::{ACCEPT, ECHO, ECHO_BYTES, EVENT, FRAME, RECEIVE, REQUEST, RESPONSE, SEND};
use core::future::Future;
use core::hint::black_box;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use embedded_io_async::{ErrorKind, ErrorType, Read, Write};
use wsproto::{Config, Instant};
use wsproto_adapters::embedded::{EmbeddedEvent, WebSocket};

/// Bytes handed over per read: the head arrives in many pieces.
const PIECE: usize = 16;

/// The socket's only failure: its output buffer is full.
#[derive(Debug)]
struct Full;

impl core::fmt::Display for Full {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("socket output full")
    }
}

impl core::error::Error for Full {}

impl embedded_io_async::Error for Full {
    fn kind(&self) -> ErrorKind {
        ErrorKind::OutOfMemory
    }
}

/// Reads from the two fixed inputs, one after the other; writes into `out`.
struct MemorySocket<'a> {
    inputs: [&'a [u8]; 2],
    read: usize,
    out: &'a mut [u8],
    written: usize,
}

impl MemorySocket<'_> {
    fn written(&self) -> &[u8] {
        self.out.get(..self.written).unwrap_or_default()
    }
}

impl ErrorType for MemorySocket<'_> {
    type Error = Full;
}

impl Read for MemorySocket<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Full> {
        let mut offset = self.read;
        for input in self.inputs {
            if offset < input.len() {
                let rest = input.get(offset..).unwrap_or_default();
                let n = rest.len().min(buf.len()).min(PIECE);
                if let (Some(to), Some(from)) = (buf.get_mut(..n), rest.get(..n)) {
                    to.copy_from_slice(from);
                }
                self.read += n;
                return Ok(n);
            }
            offset -= input.len();
        }
        Ok(0)
    }
}

impl Write for MemorySocket<'_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Full> {
        let to = self
            .out
            .get_mut(self.written..self.written + buf.len())
            .ok_or(Full)?;
        to.copy_from_slice(buf);
        self.written += buf.len();
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Full> {
        Ok(())
    }
}

/// Polls `future` until it is ready. Nothing here ever waits: the socket
/// is always ready, so a waker that does nothing is enough.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

/// Runs the job; 0 when every byte matched, otherwise the failing step.
#[inline(never)]
pub fn run() -> u32 {
    match block_on(job()) {
        Ok(()) => 0,
        Err(step) => step,
    }
}

async fn job() -> Result<(), u32> {
    let request = black_box(REQUEST);
    let frame = black_box(FRAME);
    let mut out = [0u8; 256];
    let socket = MemorySocket {
        inputs: [request, &frame],
        read: 0,
        out: &mut out,
        written: 0,
    };
    let (mut rx, mut tx) = ([0u8; 512], [0u8; 256]);
    let mut ws = WebSocket::accept(socket, &mut rx, &mut tx, Config::default(), Instant::ZERO)
        .await
        .map_err(|_| ACCEPT)?;
    match ws.read().await.map_err(|_| RECEIVE)? {
        EmbeddedEvent::Text {
            data: "Hello",
            fin: true,
        } => {}
        _ => return Err(EVENT),
    }
    ws.send_text("Hello").await.map_err(|_| SEND)?;
    let written = ws.io_mut().written();
    let (response, echo) = written.split_at(written.len().min(RESPONSE.len()));
    if response != RESPONSE {
        return Err(crate::fixtures::RESPONSE_BYTES);
    }
    if echo != ECHO {
        return Err(ECHO_BYTES);
    }
    Ok(())
}
