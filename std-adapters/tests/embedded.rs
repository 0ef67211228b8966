//! The embedded-io-async driver over an in-memory pipe (tokio's duplex).

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use wsproto_adapters::embedded::{EmbeddedEvent, Error, WebSocket};
use wsproto_adapters::wsproto::handshake::ClientRequest;
use wsproto_adapters::wsproto::rand_core::RngCore;
use wsproto_adapters::wsproto::{Config, Instant, MessageKind};
use wsproto_adapters::{tokio as wstokio, ClientOptions, Message};

/// One end of an in-memory pipe, as an `embedded-io-async` transport.
struct Pipe(DuplexStream);

#[derive(Debug)]
struct PipeError;

impl std::fmt::Display for PipeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("pipe failed")
    }
}

impl std::error::Error for PipeError {}

impl embedded_io_async::Error for PipeError {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        embedded_io_async::ErrorKind::Other
    }
}

impl embedded_io_async::ErrorType for Pipe {
    type Error = PipeError;
}

impl embedded_io_async::Read for Pipe {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, PipeError> {
        self.0.read(buf).await.map_err(|_| PipeError)
    }
}

impl embedded_io_async::Write for Pipe {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, PipeError> {
        self.0.write(buf).await.map_err(|_| PipeError)
    }
    async fn flush(&mut self) -> Result<(), PipeError> {
        self.0.flush().await.map_err(|_| PipeError)
    }
}

/// A deterministic RNG (tests only; real clients need real entropy).
struct Lcg(u64);

impl RngCore for Lcg {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 16
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for b in dst {
            *b = self.next_u32() as u8;
        }
    }
}

/// An embedded echo server: echoes each chunk as a fragment of the same kind.
async fn echo(pipe: Pipe) -> Option<u16> {
    // tx holds a whole rx-sized chunk plus its frame header.
    let (mut rx, mut tx) = ([0u8; 512], [0u8; 512 + 14]);
    let mut ws = WebSocket::accept(pipe, &mut rx, &mut tx, Config::default(), Instant::ZERO)
        .await
        .unwrap();
    let mut chunk = [0u8; 512];
    loop {
        let (kind, len, fin) = match ws.read().await {
            Ok(EmbeddedEvent::Text { data, fin }) => {
                chunk[..data.len()].copy_from_slice(data.as_bytes());
                (MessageKind::Text, data.len(), fin)
            }
            Ok(EmbeddedEvent::Binary { data, fin }) => {
                chunk[..data.len()].copy_from_slice(data);
                (MessageKind::Binary, data.len(), fin)
            }
            Ok(EmbeddedEvent::Close { code, .. }) => {
                assert!(matches!(ws.read().await, Err(Error::ConnectionClosed)));
                return code;
            }
            Ok(_) => continue,
            Err(e) => panic!("{e:?}"),
        };
        ws.send_fragment(kind, &chunk[..len], fin).await.unwrap();
    }
}

#[tokio::test]
async fn embedded_client_and_server_round_trip() {
    let (a, b) = tokio::io::duplex(256);
    let server = tokio::spawn(echo(Pipe(a)));
    let client = async {
        let (mut rx, mut tx) = ([0u8; 512], [0u8; 512]);
        let request = ClientRequest::new("localhost", "/");
        let mut ws = WebSocket::connect(
            Pipe(b),
            &mut rx,
            &mut tx,
            &request,
            Config::default(),
            Lcg(1),
            Instant::ZERO,
        )
        .await
        .unwrap();
        ws.send_text("hello embedded").await.unwrap();
        let mut got = String::new();
        loop {
            match ws.read().await.unwrap() {
                EmbeddedEvent::Text { data, fin } => {
                    got.push_str(data);
                    if fin {
                        break;
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, "hello embedded");
        ws.ping(b"pp").await.unwrap();
        assert_eq!(ws.read().await.unwrap(), EmbeddedEvent::Pong(b"pp"));
        ws.close(1000, "bye").await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(10), client)
        .await
        .unwrap();
    let code = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code, Some(1000));
}

#[tokio::test]
async fn embedded_server_streams_a_message_larger_than_rx_to_a_tokio_client() {
    let (a, b) = tokio::io::duplex(4096);
    let server = tokio::spawn(echo(Pipe(a)));
    let client = async {
        let mut ws = wstokio::client(b, "ws://localhost/", &ClientOptions::default())
            .await
            .unwrap();
        let big: String = (0..5000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect::<String>()
            + "é✓";
        ws.send_text(&big).await.unwrap();
        assert_eq!(ws.read().await.unwrap(), Message::Text(big));
        ws.close(4000, "done").await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(10), client)
        .await
        .unwrap();
    let code = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code, Some(4000));
}

// ---------------------------------------------------------------------------
// A scripted peer on the raw wire: the regressions for issue 10, item 1.
// ---------------------------------------------------------------------------

/// A valid upgrade request, as a browser would send it.
const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// Reads from `peer` until the end of an HTTP head; returns the head.
async fn read_head(peer: &mut DuplexStream) -> Vec<u8> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(peer.read(&mut byte).await.unwrap(), 1, "EOF in the head");
        head.push(byte[0]);
    }
    head
}

/// An accepted embedded server (rx and tx `rx_len`/`tx_len` bytes) and the
/// raw client end, with the 101 already read off it.
async fn accepted_server<'b>(
    rx: &'b mut [u8],
    tx: &'b mut [u8],
) -> (WebSocket<'b, Pipe>, DuplexStream) {
    let (a, mut peer) = tokio::io::duplex(4096);
    peer.write_all(REQUEST).await.unwrap();
    let ws = WebSocket::accept(Pipe(a), rx, tx, Config::default(), Instant::ZERO)
        .await
        .unwrap();
    let head = read_head(&mut peer).await;
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    (ws, peer)
}

/// A connected embedded client and the raw server end, which has read the
/// request and answered 101 (followed by `then`, in the same write).
async fn connected_client<'b>(
    rx: &'b mut [u8],
    tx: &'b mut [u8],
    then: &[u8],
) -> (WebSocket<'b, Pipe, Lcg>, DuplexStream) {
    let (a, mut peer) = tokio::io::duplex(4096);
    let then = then.to_vec();
    let server = tokio::spawn(async move {
        let head = read_head(&mut peer).await;
        let head = String::from_utf8(head).unwrap();
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap();
        let accept = wsproto_adapters::wsproto::handshake::accept_key(key.as_bytes());
        let mut answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Accept: "
            .to_vec();
        answer.extend_from_slice(&accept);
        answer.extend_from_slice(b"\r\n\r\n");
        answer.extend_from_slice(&then);
        peer.write_all(&answer).await.unwrap();
        peer
    });
    let request = ClientRequest::new("example.com", "/chat");
    let ws = WebSocket::connect(
        Pipe(a),
        rx,
        tx,
        &request,
        Config::default(),
        Lcg(7),
        Instant::ZERO,
    )
    .await
    .unwrap();
    (ws, server.await.unwrap())
}

/// Reads what the peer has been sent until EOF.
async fn read_to_end(mut peer: DuplexStream) -> Vec<u8> {
    let mut out = Vec::new();
    peer.read_to_end(&mut out).await.unwrap();
    out
}

/// Issue 10, item 1: a masked Close with no payload (`88 80` and a key) made
/// an accepted server panic (debug: subtract overflow locating the event;
/// release: slice out of range), because the core hands the empty reason
/// back as a static `""` and the driver located it by pointer difference.
/// It must surface as a Close without code, echo an empty Close and end.
#[tokio::test]
async fn server_surfaces_an_empty_close_and_echoes_it() {
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let (mut ws, mut peer) = accepted_server(&mut rx, &mut tx).await;
    peer.write_all(&[0x88, 0x80, 0x01, 0x02, 0x03, 0x04])
        .await
        .unwrap();
    assert_eq!(
        ws.read().await.unwrap(),
        EmbeddedEvent::Close {
            code: None,
            reason: ""
        }
    );
    assert!(matches!(ws.read().await, Err(Error::ConnectionClosed)));
    drop(ws);
    // The echo: an unmasked Close with no payload.
    assert_eq!(read_to_end(peer).await, [0x88, 0x00]);
}

/// Issue 10, item 1, client side: `88 00` from the server panicked the same way.
#[tokio::test]
async fn client_surfaces_an_empty_close_and_echoes_it() {
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let (mut ws, mut peer) = connected_client(&mut rx, &mut tx, &[0x88, 0x00]).await;
    assert_eq!(
        ws.read().await.unwrap(),
        EmbeddedEvent::Close {
            code: None,
            reason: ""
        }
    );
    // The echo: a masked Close with no payload (two bytes and the key).
    let mut echo = [0u8; 6];
    peer.read_exact(&mut echo).await.unwrap();
    assert_eq!(echo[..2], [0x88, 0x80]);
    // The client waits for the server to end the TCP connection (RFC 6455 §7.1.1).
    drop(peer);
    assert!(matches!(ws.read().await, Err(Error::ConnectionClosed)));
}

/// The same empty Close arriving in the same read as a message before it,
/// and byte by byte: the position of an event never depends on how the
/// bytes were split.
#[tokio::test]
async fn server_surfaces_an_empty_close_after_a_message_and_byte_by_byte() {
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let (mut ws, mut peer) = accepted_server(&mut rx, &mut tx).await;
    // "hi" masked with a zero key, then the empty Close.
    let wire = [0x81, 0x82, 0, 0, 0, 0, b'h', b'i', 0x88, 0x80, 9, 9, 9, 9];
    for b in wire {
        peer.write_all(&[b]).await.unwrap();
        tokio::task::yield_now().await;
    }
    assert_eq!(
        ws.read().await.unwrap(),
        EmbeddedEvent::Text {
            data: "hi",
            fin: true
        }
    );
    assert_eq!(
        ws.read().await.unwrap(),
        EmbeddedEvent::Close {
            code: None,
            reason: ""
        }
    );
    assert!(matches!(ws.read().await, Err(Error::ConnectionClosed)));
}

// ---------------------------------------------------------------------------
// The `embedded_driver` fuzz harness, replayed
// ---------------------------------------------------------------------------

#[path = "../../fuzz/fuzz_targets/embedded_driver/harness.rs"]
mod harness;

// The harness's "no allocation while the driver runs" oracle counts through
// this allocator (per thread, so the tokio tests beside it do not count).
#[global_allocator]
static ALLOC: harness::CountingAlloc = harness::CountingAlloc;

#[path = "common/fuzz_inputs.rs"]
mod common;

fn fuzz_inputs(dir: &str) -> Vec<(String, Vec<u8>)> {
    common::fuzz_inputs(dir, "embedded_driver")
}

/// Every seed of the fuzz corpus passes the harness's oracles, and each
/// gets past the handshake but the one meant to fail it.
#[test]
fn fuzz_seeds_pass_the_embedded_driver_oracles() {
    let seeds = fuzz_inputs("corpus");
    assert!(seeds.len() >= 10);
    for (name, data) in seeds {
        let outcome = harness::embedded_driver(&data);
        assert_eq!(outcome.opened, name != "seed-server-bad-request", "{name}");
    }
}

/// Inputs the `embedded_driver` target once failed on pass every oracle.
#[test]
fn fuzz_regressions_pass_the_embedded_driver_oracles() {
    for (name, data) in fuzz_inputs("regressions") {
        eprintln!("replaying {name}");
        harness::embedded_driver(&data);
    }
}

/// Found by `embedded_driver` against the driver that located events by
/// pointer difference (issue 10, item 1): a client fed `88 00` as a frame
/// spec, found in 10 s from an empty corpus, and a server reading a masked
/// empty Close, found in 5 s from the seeds. Both end with the empty Close.
#[test]
fn fuzz_found_empty_closes_surface_as_a_close_without_code() {
    for name in ["empty-close-client", "empty-close-server"] {
        let data = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../fuzz/regressions/embedded_driver")
                .join(name),
        )
        .unwrap();
        let outcome = harness::embedded_driver(&data);
        assert!(outcome.opened, "{name}");
        assert!(
            outcome
                .items
                .contains(&harness::Item::Close(None, String::new())),
            "{name}: {:?}",
            outcome.items
        );
    }
}

/// Found by `embedded_driver` (`write-after-failed-write`): a send whose
/// write failed partway left half a frame on the wire, and the next send or
/// pong went out behind it, to be read by the peer as the first frame's
/// payload. A failed write now ends the connection: later calls return
/// `ConnectionClosed` and write nothing.
#[test]
fn a_failed_write_ends_the_connection_without_writing_more() {
    let data = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/regressions/embedded_driver/write-after-failed-write"),
    )
    .unwrap();
    let outcome = harness::embedded_driver(&data);
    assert!(outcome.opened);
    // The 101, then the 5 bytes of the text frame written before the fault.
    let head = outcome
        .written
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap()
        + 4;
    assert_eq!(outcome.written.len() - head, 5);
}

/// A transport for the write-failure tests: reads give `input` then EOF;
/// writes take at most `chunk` bytes, and pend forever (or fail, `fail`)
/// once `budget` bytes are written.
struct Scripted {
    input: Vec<u8>,
    chunk: usize,
    budget: usize,
    fail: bool,
    out: Vec<u8>,
}

impl embedded_io_async::ErrorType for Scripted {
    type Error = PipeError;
}

impl embedded_io_async::Read for Scripted {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, PipeError> {
        let n = buf.len().min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input.drain(..n);
        Ok(n)
    }
}

impl embedded_io_async::Write for Scripted {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, PipeError> {
        if self.out.len() >= self.budget {
            if self.fail {
                return Err(PipeError);
            }
            std::future::pending::<()>().await;
        }
        let n = buf.len().min(self.chunk).min(self.budget - self.out.len());
        self.out.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    async fn flush(&mut self) -> Result<(), PipeError> {
        Ok(())
    }
}

/// Polls `fut` once with a no-op waker, then drops it (a cancellation).
fn poll_once<F: std::future::Future>(fut: F) -> std::task::Poll<F::Output> {
    let mut fut = std::pin::pin!(fut);
    fut.as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
}

/// A send cancelled after part of its frame was written (here: the
/// transport stopped taking bytes) leaves the connection unusable rather
/// than putting a new frame behind the partial one.
#[tokio::test]
async fn a_send_cancelled_partway_ends_the_connection() {
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let io = Scripted {
        input: REQUEST.to_vec(),
        chunk: 7,
        budget: usize::MAX,
        fail: false,
        out: Vec::new(),
    };
    let mut ws = WebSocket::accept(io, &mut rx, &mut tx, Config::default(), Instant::ZERO)
        .await
        .unwrap();
    let head = ws.io_mut().out.len();
    ws.io_mut().budget = head + 7;
    assert!(poll_once(ws.send_text("twenty bytes of text")).is_pending());
    ws.io_mut().budget = usize::MAX;
    assert_eq!(ws.io_mut().out.len(), head + 7);
    assert!(matches!(
        ws.send_text("again").await,
        Err(Error::ConnectionClosed)
    ));
    assert!(matches!(ws.ping(b"p").await, Err(Error::ConnectionClosed)));
    assert!(matches!(ws.read().await, Err(Error::ConnectionClosed)));
    assert_eq!(ws.io_mut().out.len(), head + 7, "wrote after the cut");
}

/// The same with a transport error partway: the error is reported once,
/// then `ConnectionClosed`, and nothing more is written.
#[tokio::test]
async fn a_send_that_fails_partway_ends_the_connection() {
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let io = Scripted {
        input: REQUEST.to_vec(),
        chunk: 3,
        budget: usize::MAX,
        fail: true,
        out: Vec::new(),
    };
    let mut ws = WebSocket::accept(io, &mut rx, &mut tx, Config::default(), Instant::ZERO)
        .await
        .unwrap();
    let head = ws.io_mut().out.len();
    ws.io_mut().budget = head + 6;
    assert!(matches!(
        ws.send_binary(&[1; 40]).await,
        Err(Error::Io(PipeError))
    ));
    ws.io_mut().budget = usize::MAX;
    assert!(matches!(
        ws.send_binary(&[2; 4]).await,
        Err(Error::ConnectionClosed)
    ));
    assert!(matches!(ws.read().await, Err(Error::ConnectionClosed)));
    assert_eq!(ws.io_mut().out.len(), head + 6, "wrote after the failure");
}

/// The driver's futures are what an embedded executor allocates statically
/// per task: the handshake's header slots (32 of them, 1 KiB) are used only
/// during a parse and take no room in the futures. On x86-64 the futures
/// measured 1,688 B (accept) and 1,632 B (connect) with the slots held
/// across the reads, 608 B and 632 B without; the bounds catch the slots,
/// or anything as large, coming back.
#[test]
fn driver_futures_stay_small() {
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let io = Scripted {
        input: Vec::new(),
        chunk: 1,
        budget: 0,
        fail: true,
        out: Vec::new(),
    };
    let accept = WebSocket::accept(io, &mut rx, &mut tx, Config::default(), Instant::ZERO);
    let accept_size = std::mem::size_of_val(&accept);
    drop(accept);
    let request = ClientRequest::new("example.com", "/");
    let io = Scripted {
        input: Vec::new(),
        chunk: 1,
        budget: 0,
        fail: true,
        out: Vec::new(),
    };
    let connect = WebSocket::connect(
        io,
        &mut rx,
        &mut tx,
        &request,
        Config::default(),
        Lcg(1),
        Instant::ZERO,
    );
    let connect_size = std::mem::size_of_val(&connect);
    drop(connect);
    eprintln!("accept {accept_size} B, connect {connect_size} B");
    assert!(accept_size < 900, "accept future: {accept_size} B");
    assert!(connect_size < 1000, "connect future: {connect_size} B");
}

// ---------------------------------------------------------------------------
// permessage-deflate (RFC 7692) through the embedded driver.
// ---------------------------------------------------------------------------

#[cfg(feature = "embedded-deflate")]
mod deflate {
    use super::*;
    use std::sync::{Arc, Mutex};
    use wsproto_adapters::wsproto::extensions::deflate::{Deflate12, Deflate9};
    use wsproto_adapters::wsproto::NoRng;

    /// A pipe that keeps a copy of every byte read from and written to it.
    struct Recorded {
        pipe: Pipe,
        read: Arc<Mutex<Vec<u8>>>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl embedded_io_async::ErrorType for Recorded {
        type Error = PipeError;
    }

    impl embedded_io_async::Read for Recorded {
        async fn read(&mut self, buf: &mut [u8]) -> Result<usize, PipeError> {
            let n = embedded_io_async::Read::read(&mut self.pipe, buf).await?;
            self.read.lock().unwrap().extend_from_slice(&buf[..n]);
            Ok(n)
        }
    }

    impl embedded_io_async::Write for Recorded {
        async fn write(&mut self, buf: &[u8]) -> Result<usize, PipeError> {
            let n = embedded_io_async::Write::write(&mut self.pipe, buf).await?;
            self.written.lock().unwrap().extend_from_slice(&buf[..n]);
            Ok(n)
        }
        async fn flush(&mut self) -> Result<(), PipeError> {
            embedded_io_async::Write::flush(&mut self.pipe).await
        }
    }

    /// First byte (FIN, RSV, opcode) of each frame after the HTTP head in
    /// `wire`.
    fn frame_heads(wire: &[u8]) -> Vec<u8> {
        let start = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let mut at = start;
        let mut heads = Vec::new();
        while at + 2 <= wire.len() {
            let (b0, b1) = (wire[at], wire[at + 1]);
            let (len, mut hdr) = match b1 & 0x7f {
                126 => (u16::from_be_bytes([wire[at + 2], wire[at + 3]]) as usize, 4),
                127 => (
                    u64::from_be_bytes(wire[at + 2..at + 10].try_into().unwrap()) as usize,
                    10,
                ),
                n => (n as usize, 2),
            };
            if b1 & 0x80 != 0 {
                hdr += 4;
            }
            heads.push(b0);
            at += hdr + len;
        }
        heads
    }

    /// An embedded server with the deflate state `Option<Deflate9>`:
    /// reassembles each message from its chunks (surfaced from a 64-byte
    /// scratch) and echoes it whole, of the same kind. Returns the peer's
    /// close code and whether deflate was agreed.
    async fn deflate_echo(io: Recorded) -> (Option<u16>, bool) {
        let (mut rx, mut tx, mut scratch) = ([0u8; 512], [0u8; 4096], [0u8; 64]);
        let mut ws: WebSocket<'_, Recorded, NoRng, Option<Deflate9>> = WebSocket::accept_deflate(
            io,
            &mut rx,
            &mut tx,
            &mut scratch,
            Config::default(),
            Instant::ZERO,
        )
        .await
        .unwrap();
        let agreed = ws.extension().is_some();
        let mut message = Vec::new();
        loop {
            match ws.read().await {
                Ok(EmbeddedEvent::Text { data, fin }) => {
                    message.extend_from_slice(data.as_bytes());
                    if fin {
                        let text = String::from_utf8(std::mem::take(&mut message)).unwrap();
                        ws.send_text(&text).await.unwrap();
                    }
                }
                Ok(EmbeddedEvent::Binary { data, fin }) => {
                    message.extend_from_slice(data);
                    if fin {
                        ws.send_binary(&std::mem::take(&mut message)).await.unwrap();
                    }
                }
                Ok(EmbeddedEvent::Close { code, .. }) => {
                    assert!(matches!(ws.read().await, Err(Error::ConnectionClosed)));
                    return (code, agreed);
                }
                Ok(_) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
    }

    /// A copy of the bytes that went one way.
    type Log = Arc<Mutex<Vec<u8>>>;

    fn recorded(io: DuplexStream) -> (Recorded, Log, Log) {
        let read = Arc::new(Mutex::new(Vec::new()));
        let written = Arc::new(Mutex::new(Vec::new()));
        let io = Recorded {
            pipe: Pipe(io),
            read: read.clone(),
            written: written.clone(),
        };
        (io, read, written)
    }

    /// A text message of `len` bytes that compresses well, with multi-byte
    /// code points so that chunks of the scratch end inside them.
    fn text(len: usize) -> String {
        let mut s = String::new();
        while s.len() < len {
            s.push_str("héllo wörld ✓ ");
        }
        s
    }

    /// A tokio client offering deflate (its default) against the embedded
    /// server: 9-bit windows are agreed, both directions are compressed
    /// (RSV1 on every data frame), and the echoes match.
    #[tokio::test]
    async fn embedded_deflate9_server_echoes_a_tokio_client_compressed_both_ways() {
        let (a, b) = tokio::io::duplex(4096);
        let (io, read, written) = recorded(a);
        let server = tokio::spawn(deflate_echo(io));
        let client = async {
            let mut ws = wstokio::client(b, "ws://localhost/", &ClientOptions::default())
                .await
                .unwrap();
            let agreed = ws.extensions().unwrap().to_owned();
            assert!(agreed.starts_with("permessage-deflate"), "{agreed}");
            assert!(agreed.contains("server_max_window_bits=9"), "{agreed}");
            assert!(agreed.contains("client_max_window_bits=9"), "{agreed}");
            let big = text(3000);
            for msg in [
                Message::Text("Hello".into()),
                Message::Text(big.clone()),
                Message::Binary(big.clone().into_bytes()),
                Message::Text(big),
            ] {
                ws.send(msg.clone()).await.unwrap();
                assert_eq!(ws.read().await.unwrap(), msg);
            }
            ws.close(1000, "done").await.unwrap();
        };
        tokio::time::timeout(Duration::from_secs(10), client)
            .await
            .unwrap();
        let (code, agreed) = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((code, agreed), (Some(1000), true));
        // Four data frames each way, all with RSV1 (0x40), then the closes.
        for wire in [
            read.lock().unwrap().clone(),
            written.lock().unwrap().clone(),
        ] {
            let heads = frame_heads(&wire);
            assert_eq!(heads.len(), 5, "{heads:x?}");
            assert_eq!(&heads[..4], &[0xc1, 0xc1, 0xc2, 0xc1], "{heads:x?}");
            assert_eq!(heads[4], 0x88);
        }
        // Compression paid: the big messages went out much smaller.
        assert!(written.lock().unwrap().len() < 2000);
    }

    /// A client that offers nothing still gets a working, uncompressed
    /// connection from the same server type.
    #[tokio::test]
    async fn embedded_deflate_server_serves_a_client_that_offers_nothing() {
        let (a, b) = tokio::io::duplex(4096);
        let (io, read, written) = recorded(a);
        let server = tokio::spawn(deflate_echo(io));
        let client = async {
            let options = ClientOptions {
                deflate: None,
                ..ClientOptions::default()
            };
            let mut ws = wstokio::client(b, "ws://localhost/", &options)
                .await
                .unwrap();
            assert_eq!(ws.extensions(), None);
            let big = text(1000);
            for msg in [
                Message::Text(big.clone()),
                Message::Binary(big.into_bytes()),
            ] {
                ws.send(msg.clone()).await.unwrap();
                assert_eq!(ws.read().await.unwrap(), msg);
            }
            ws.close(4001, "").await.unwrap();
        };
        tokio::time::timeout(Duration::from_secs(10), client)
            .await
            .unwrap();
        let (code, agreed) = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((code, agreed), (Some(4001), false));
        let head = String::from_utf8_lossy(&written.lock().unwrap()).into_owned();
        assert!(!head.contains("Sec-WebSocket-Extensions"), "{head}");
        for wire in [
            read.lock().unwrap().clone(),
            written.lock().unwrap().clone(),
        ] {
            assert_eq!(frame_heads(&wire), [0x81, 0x82, 0x88]);
        }
    }

    /// The deflate state is built after the handshake's last await, so
    /// the handshake futures stay as small as the plain ones; only the
    /// returned `WebSocket` holds it.
    #[test]
    fn deflate_handshake_futures_do_not_hold_the_state() {
        let (mut rx, mut tx, mut scratch) = ([0u8; 256], [0u8; 256], [0u8; 16]);
        let (a, b) = tokio::io::duplex(64);
        let accept = WebSocket::<'_, _, NoRng, Option<Deflate12>>::accept_deflate(
            Pipe(a),
            &mut rx,
            &mut tx,
            &mut scratch,
            Config::default(),
            Instant::ZERO,
        );
        let accept_size = std::mem::size_of_val(&accept);
        drop(accept);
        let request = ClientRequest::new("example.com", "/");
        let connect = WebSocket::<'_, _, Lcg, Option<Deflate12>>::connect_deflate(
            Pipe(b),
            &mut rx,
            &mut tx,
            &mut scratch,
            &request,
            Config::default(),
            Lcg(1),
            Instant::ZERO,
        );
        let connect_size = std::mem::size_of_val(&connect);
        drop(connect);
        let state = std::mem::size_of::<Deflate12>();
        eprintln!(
            "accept_deflate {accept_size} B, connect_deflate {connect_size} B, Deflate12 {state} B"
        );
        assert!(accept_size < 1200, "accept_deflate future: {accept_size} B");
        assert!(
            connect_size < 1200,
            "connect_deflate future: {connect_size} B"
        );
    }

    /// An embedded client with the larger `Deflate12` state against the
    /// embedded `Deflate9` server: the server's limits win (9 bits), the
    /// echo is compressed and byte-exact.
    #[tokio::test]
    async fn embedded_deflate12_client_and_deflate9_server() {
        let (a, b) = tokio::io::duplex(4096);
        let (io, _, written) = recorded(a);
        let server = tokio::spawn(deflate_echo(io));
        let client = async {
            let (mut rx, mut tx, mut scratch) = ([0u8; 512], [0u8; 4096], [0u8; 100]);
            let request = ClientRequest::new("localhost", "/");
            let mut ws: WebSocket<'_, Pipe, Lcg, Option<Deflate12>> = WebSocket::connect_deflate(
                Pipe(b),
                &mut rx,
                &mut tx,
                &mut scratch,
                &request,
                Config::default(),
                Lcg(3),
                Instant::ZERO,
            )
            .await
            .unwrap();
            assert!(ws.extension().is_some());
            let big = text(2500);
            ws.send_text(&big).await.unwrap();
            let mut got = String::new();
            loop {
                match ws.read().await.unwrap() {
                    EmbeddedEvent::Text { data, fin } => {
                        got.push_str(data);
                        if fin {
                            break;
                        }
                    }
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(got, big);
            ws.close(1000, "").await.unwrap();
        };
        tokio::time::timeout(Duration::from_secs(10), client)
            .await
            .unwrap();
        let (code, agreed) = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((code, agreed), (Some(1000), true));
        let heads = frame_heads(&written.lock().unwrap());
        assert_eq!(heads, [0xc1, 0x88]);
    }
}
