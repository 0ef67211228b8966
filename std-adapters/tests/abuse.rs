//! The std adapters under abuse, over loopback TCP: a slow-loris handshake,
//! a thousand concurrent connections, and a client that floods without ever
//! reading. Every loop is bounded and every test finishes in seconds.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};
use wsproto::frame::{encode_frame, FrameHeader, OpCode};
use wsproto::{HandshakeError, Limits};
use wsproto_adapters::{blocking, tokio as wstokio, ClientOptions, Error, Message, ServerOptions};

const REQUEST: &[u8] = b"GET /loris HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn loris_options() -> ServerOptions {
    let mut options = ServerOptions::default();
    options.config.handshake_timeout = wsproto::Duration::from_millis(500);
    options
}

/// Writes the request one byte per 100 ms until the server answers or
/// drops the connection; returns what the server sent and the bytes written.
fn slow_loris(addr: SocketAddr) -> (Vec<u8>, usize) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut written = 0;
    let mut answer = Vec::new();
    for &byte in REQUEST {
        if stream.write_all(&[byte]).is_err() {
            break;
        }
        written += 1;
        let mut buf = [0u8; 512];
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    (answer, written)
}

fn assert_dropped_at_deadline(
    result: &Result<(), Error>,
    elapsed: Duration,
    answer: &[u8],
    written: usize,
) {
    assert!(
        matches!(result, Err(Error::Handshake(HandshakeError::Timeout))),
        "{result:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(480) && elapsed < Duration::from_millis(1500),
        "dropped after {elapsed:?}"
    );
    assert!(
        answer.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(answer)
    );
    // About 5 bytes in 500 ms, far from a whole request.
    assert!(written < 15, "{written} bytes written");
    eprintln!("slow loris dropped after {elapsed:?}, {written} bytes sent");
}

#[test]
fn slow_loris_blocking_dropped_at_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let start = Instant::now();
        let result = blocking::accept_with(stream, &loris_options()).map(|_| ());
        (result, start.elapsed())
    });
    let (answer, written) = slow_loris(addr);
    let (result, elapsed) = server.join().expect("server thread");
    assert_dropped_at_deadline(&result, elapsed, &answer, written);
}

#[tokio::test]
async fn slow_loris_tokio_dropped_at_deadline() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let start = Instant::now();
        let result = wstokio::accept_with(stream, &loris_options())
            .await
            .map(|_| ());
        (result, start.elapsed())
    });
    let (answer, written) = tokio::task::spawn_blocking(move || slow_loris(addr))
        .await
        .expect("client");
    let (result, elapsed) = server.await.expect("server task");
    assert_dropped_at_deadline(&result, elapsed, &answer, written);
}

// ----- many connections -----

async fn tokio_echo(stream: tokio::net::TcpStream) -> Result<(), Error> {
    let mut ws = wstokio::accept(stream).await?;
    loop {
        if let msg @ (Message::Text(_) | Message::Binary(_)) = ws.read().await? {
            ws.send(msg).await?;
        }
    }
}

#[test]
fn thousand_concurrent_tokio_connections_echo() {
    const N: usize = 1000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let start = Instant::now();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(tokio_echo(stream));
            }
        });
        // All connections open before any of them sends: truly concurrent.
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(N));
        let mut clients = Vec::with_capacity(N);
        for i in 0..N {
            let barrier = barrier.clone();
            clients.push(tokio::spawn(async move {
                let mut ws = wstokio::connect(&format!("ws://{addr}/c{i}"))
                    .await
                    .expect("connect");
                barrier.wait().await;
                let text = format!("hello from {i}");
                ws.send_text(&text).await.expect("send");
                assert_eq!(ws.read().await.expect("echo"), Message::Text(text));
                let data = vec![i as u8; 1000 + i];
                ws.send_binary(&data).await.expect("send");
                assert_eq!(ws.read().await.expect("echo"), Message::Binary(data));
                ws.close(1000, "").await.expect("close");
            }));
        }
        let all = async {
            for c in clients {
                c.await.expect("client task");
            }
        };
        tokio::time::timeout(Duration::from_secs(60), all)
            .await
            .expect("1000 clients in time");
    });
    eprintln!(
        "{N} concurrent tokio connections echoed in {:?}",
        start.elapsed()
    );
}

/// Thread per connection on both ends. 1,000 connections means 2,000
/// threads (plus 2,000 descriptors): measured at well under the budget
/// of this test on 2 cores, so the full thousand runs here too.
///
/// The clients do not offer permessage-deflate: a compressing connection
/// needs far more than these 256 KiB stacks to be built (see the adapters'
/// `ClientOptions::deflate`) and ~160 KiB of heap each. The servers keep
/// their default (deflate accepted if offered) and so run uncompressed.
#[test]
fn thousand_concurrent_blocking_connections_echo() {
    const N: usize = 1000;
    let start = Instant::now();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        let mut handlers = Vec::with_capacity(N);
        for _ in 0..N {
            let (stream, _) = listener.accept().expect("accept");
            handlers.push(
                std::thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn(move || -> Result<(), Error> {
                        let mut ws = blocking::accept(stream)?;
                        loop {
                            if let msg @ (Message::Text(_) | Message::Binary(_)) = ws.read()? {
                                ws.send(msg)?;
                            }
                        }
                    })
                    .expect("spawn handler"),
            );
        }
        handlers
    });
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(N));
    let clients: Vec<_> = (0..N)
        .map(|i| {
            let barrier = barrier.clone();
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let options = ClientOptions {
                        deflate: None,
                        ..ClientOptions::default()
                    };
                    let url = format!("ws://{addr}/b{i}");
                    let mut ws = blocking::connect_with(&url, &options).expect("connect");
                    barrier.wait();
                    let text = format!("hello from {i}");
                    ws.send_text(&text).expect("send");
                    assert_eq!(ws.read().expect("echo"), Message::Text(text));
                    ws.close(1000, "").expect("close");
                })
                .expect("spawn client")
        })
        .collect();
    for c in clients {
        c.join().expect("client thread");
    }
    for h in server.join().expect("acceptor") {
        // Every handler ends once its client closed.
        assert!(matches!(
            h.join().expect("handler"),
            Err(Error::ConnectionClosed)
        ));
    }
    let elapsed = start.elapsed();
    eprintln!("{N} concurrent blocking connections echoed in {elapsed:?}");
    assert!(elapsed < Duration::from_secs(60));
}

// ----- a client that never reads -----

/// A raw client: handshake by hand, then masked frames written straight to
/// the socket, never reading a byte after the 101.
fn raw_client(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(REQUEST).expect("request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("response");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    stream
        .set_write_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    stream
}

fn masked(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        fin: true,
        rsv: 0,
        opcode,
        mask: Some([1, 2, 3, 4]),
        payload_len: 0,
    };
    let mut out = vec![0u8; payload.len() + 14];
    let n = encode_frame(header, payload, &mut out).expect("encode");
    out.truncate(n);
    out
}

/// Writes `batch` again and again until a write blocks past the timeout (the
/// server stopped reading) or `limit` bytes went out. Returns the bytes written.
fn flood(stream: &mut TcpStream, batch: &[u8], limit: usize) -> Result<usize, usize> {
    let mut written = 0;
    while written < limit {
        // Resume where a short write stopped, so frames stay whole.
        match stream.write(&batch[written % batch.len()..]) {
            Ok(n) => written += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(written)
            }
            Err(e) => panic!("write failed after {written} bytes: {e}"),
        }
    }
    Err(written)
}

/// The message flood must stall: the server applies backpressure (it writes
/// its pending echo before reading again) instead of queueing without bound.
/// Socket buffers on loopback hold a few MiB; 256 MiB would mean the server
/// kept reading while its output could not drain.
const FLOOD_LIMIT: usize = 256 << 20;

/// A ping flood need not stall: pongs coalesce in the core (the latest ping
/// wins), so the server's queued output stays one pong however much it reads.
/// The server may stop reading (its pong write blocked) or keep reading; what
/// must hold is that it stays correct and live once the client reads again.
const PING_FLOOD_LIMIT: usize = 32 << 20;

fn ping_batch() -> Vec<u8> {
    let ping = masked(OpCode::Ping, &[0x55; 125]);
    ping.repeat(512)
}

fn message_batch() -> Vec<u8> {
    masked(OpCode::Binary, &vec![0xaa; 64 * 1024])
}

/// After a ping flood: finishes the frame the flood may have cut, sends one
/// binary message and reads (on another thread, as the server may be blocked
/// writing) until its echo, checking that everything before it is a pong of
/// the flood's payload. Returns the number of pongs read.
fn pongs_then_echo(stream: &mut TcpStream, written: usize, batch: &[u8]) -> usize {
    let mut reader = stream.try_clone().expect("clone");
    reader
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let reading = std::thread::spawn(move || {
        let mut pongs = 0;
        loop {
            let mut head = [0u8; 2];
            reader.read_exact(&mut head).expect("frame header");
            assert_eq!(head[1] & 0x80, 0, "server frames are unmasked");
            let len = usize::from(head[1] & 0x7f);
            assert!(len <= 125, "only pongs and the short echo expected");
            let mut payload = vec![0u8; len];
            reader.read_exact(&mut payload).expect("frame payload");
            match head[0] {
                0x8a => {
                    assert_eq!(payload, [0x55; 125], "a pong echoes its ping");
                    pongs += 1;
                }
                0x82 => {
                    assert_eq!(payload, b"after the flood");
                    return pongs;
                }
                other => panic!("unexpected frame {other:#04x}"),
            }
        }
    });
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let ping_len = batch.len() / 512;
    let cut = written % ping_len;
    if cut != 0 {
        stream
            .write_all(&batch[cut..ping_len])
            .expect("rest of the cut ping");
    }
    stream
        .write_all(&masked(OpCode::Binary, b"after the flood"))
        .expect("write after flood");
    reading.join().expect("reader")
}

fn blocking_echo_server(listener: TcpListener) -> std::thread::JoinHandle<Result<(), Error>> {
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut ws = blocking::accept(stream)?;
        loop {
            if let msg @ (Message::Text(_) | Message::Binary(_)) = ws.read()? {
                ws.send(msg)?;
            }
        }
    })
}

#[test]
fn never_reading_client_is_backpressured_blocking() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = blocking_echo_server(listener);
    let mut client = raw_client(addr);
    let start = Instant::now();
    let written = flood(&mut client, &message_batch(), FLOOD_LIMIT)
        .unwrap_or_else(|n| panic!("server kept reading: {n} bytes accepted"));
    eprintln!(
        "blocking: the server stopped reading after {written} bytes ({:?})",
        start.elapsed()
    );
    // Dropping the client unblocks the server's write with an error.
    drop(client);
    let result = server.join().expect("server thread");
    assert!(result.is_err(), "{result:?}");
}

#[test]
fn ping_flood_without_reading_stays_bounded_blocking() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let _server = blocking_echo_server(listener);
    let mut client = raw_client(addr);
    let batch = ping_batch();
    let written = flood(&mut client, &batch, PING_FLOOD_LIMIT).unwrap_or_else(|n| n);
    let pongs = pongs_then_echo(&mut client, written, &batch);
    eprintln!("blocking: {written} bytes of pings, {pongs} coalesced pongs back");
    assert!(pongs >= 1, "at least the last ping is answered");
    let pings = written.div_ceil(batch.len() / 512);
    assert!(pongs <= pings, "{pongs} pongs for {pings} pings");
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn spawn_tokio_echo(
    rt: &tokio::runtime::Runtime,
) -> (SocketAddr, tokio::task::JoinHandle<Result<(), Error>>) {
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            tokio_echo(stream).await
        });
        (addr, server)
    })
}

#[test]
fn never_reading_client_is_backpressured_tokio() {
    let rt = tokio_runtime();
    let (addr, server) = spawn_tokio_echo(&rt);
    let mut client = raw_client(addr);
    let start = Instant::now();
    let written = flood(&mut client, &message_batch(), FLOOD_LIMIT)
        .unwrap_or_else(|n| panic!("server kept reading: {n} bytes accepted"));
    eprintln!(
        "tokio: the server stopped reading after {written} bytes ({:?})",
        start.elapsed()
    );
    drop(client);
    let result = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), server).await })
        .expect("server ends once the client is gone")
        .expect("server task");
    assert!(result.is_err(), "{result:?}");
}

#[test]
fn ping_flood_without_reading_stays_bounded_tokio() {
    let rt = tokio_runtime();
    let (addr, _server) = spawn_tokio_echo(&rt);
    let mut client = raw_client(addr);
    let batch = ping_batch();
    let written = flood(&mut client, &batch, PING_FLOOD_LIMIT).unwrap_or_else(|n| n);
    let pongs = pongs_then_echo(&mut client, written, &batch);
    eprintln!("tokio: {written} bytes of pings, {pongs} coalesced pongs back");
    assert!(pongs >= 1, "at least the last ping is answered");
    let pings = written.div_ceil(batch.len() / 512);
    assert!(pongs <= pings, "{pongs} pongs for {pings} pings");
}

/// The memory budget through an adapter: a message of empty fragments past
/// the budget is answered with a 1009 Close and the connection fails.
#[test]
fn fragment_flood_through_the_blocking_adapter_closes_1009() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut options = ServerOptions::default();
        options.config.limits.max_fragments = u32::MAX;
        options.config.limits.max_buffered = 64 * 1024;
        let mut ws = blocking::accept_with(stream, &options)?;
        loop {
            ws.read()?;
        }
    });
    let mut client = raw_client(addr);
    let mut first = masked(OpCode::Binary, b"");
    first[0] &= 0x7f; // not fin
    let mut cont = masked(OpCode::Continuation, b"");
    cont[0] &= 0x7f;
    let frames = (64 * 1024 - Limits::FIXED_CHARGE) / Limits::FRAME_CHARGE + 1;
    let mut bytes = first;
    for _ in 1..frames {
        bytes.extend_from_slice(&cont);
    }
    client.write_all(&bytes).expect("flood");
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut answer = Vec::new();
    let _ = client.read_to_end(&mut answer);
    let reason = b"memory budget exceeded";
    let mut close = vec![0x88, (2 + reason.len()) as u8, 0x03, 0xf1];
    close.extend_from_slice(reason);
    assert_eq!(answer, close);
    let result: Result<(), Error> = server.join().expect("server");
    assert!(
        matches!(
            result,
            Err(Error::Protocol(wsproto::Error::Protocol(
                wsproto::Violation::BudgetExceeded
            )))
        ),
        "{result:?}"
    );
}
