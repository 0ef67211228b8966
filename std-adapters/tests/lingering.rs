//! The lingering close, over loopback TCP, for the blocking and the tokio
//! drivers: a peer that breaks a rule while it is still sending (a frame above
//! the limit, bad UTF-8 early in a large text message) must read our Close
//! (1009 / 1007), not a reset. Before the fix the server dropped the socket
//! with the rest of the frame unread, the kernel answered with a RST, and the
//! peer saw 1006.
//!
//! The client is a raw `TcpStream`: it handshakes by hand, then writes a frame
//! header and megabytes of payload from a separate thread (so it never
//! deadlocks against the server), then shuts its write side; only after the
//! writer is done does it read what the server sent. Every wait is bounded.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use wsproto::{Violation, MAX_CLOSE_REASON};
use wsproto_adapters::{blocking, tokio as wstokio, ClientOptions, Error, Message, ServerOptions};

const REQUEST: &[u8] = b"GET /linger HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const MIB: u64 = 1 << 20;
/// Bound on every client-side wait.
const WAIT: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug)]
enum Driver {
    Blocking,
    Tokio,
}

/// What the server's read loop ended with, and how long the failing read took.
type Ended = (Error, Duration);

/// A one-connection echo server on `driver`; its final error comes back on the channel.
fn server(driver: Driver, options: ServerOptions) -> (SocketAddr, mpsc::Receiver<Ended>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let ended = match driver {
            Driver::Blocking => serve_blocking(stream, &options),
            Driver::Tokio => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(serve_tokio(stream, &options)),
        };
        let _ = tx.send(ended);
    });
    (addr, rx)
}

fn serve_blocking(stream: TcpStream, options: &ServerOptions) -> Ended {
    let mut ws = blocking::accept_with(stream, options).expect("handshake");
    loop {
        let start = Instant::now();
        match ws.read() {
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => {
                if let Err(e) = ws.send(msg) {
                    return (e, start.elapsed());
                }
            }
            Ok(_) => {}
            Err(e) => return (e, start.elapsed()),
        }
    }
}

async fn serve_tokio(stream: TcpStream, options: &ServerOptions) -> Ended {
    stream.set_nonblocking(true).expect("nonblocking");
    let stream = tokio::net::TcpStream::from_std(stream).expect("tokio stream");
    let mut ws = wstokio::accept_with(stream, options)
        .await
        .expect("handshake");
    loop {
        let start = Instant::now();
        match ws.read().await {
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => {
                if let Err(e) = ws.send(msg).await {
                    return (e, start.elapsed());
                }
            }
            Ok(_) => {}
            Err(e) => return (e, start.elapsed()),
        }
    }
}

/// Connects and runs the handshake by hand; returns the stream after the 101 head.
fn raw_client(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    stream.set_write_timeout(Some(WAIT)).expect("write timeout");
    stream.write_all(REQUEST).expect("request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("response");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    stream
}

/// A masked frame header with FIN set, declaring `len` bytes of payload.
fn header(opcode: u8, len: u64) -> Vec<u8> {
    let mut h = vec![0x80 | opcode];
    match len {
        0..=125 => h.push(0x80 | len as u8),
        126..=0xffff => {
            h.push(0x80 | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            h.push(0x80 | 127);
            h.extend_from_slice(&len.to_be_bytes());
        }
    }
    h.extend_from_slice(&MASK);
    h
}

/// Writes `head`, then `len` payload bytes (`payload(offset)` before masking)
/// in 64 KiB writes, then shuts the write side. Returns the bytes written, or
/// the error that stopped the writer and how far it got.
fn write_all_then_shut(
    mut stream: TcpStream,
    head: Vec<u8>,
    len: u64,
    payload: impl Fn(u64) -> u8,
) -> Result<u64, (std::io::Error, u64)> {
    stream.write_all(&head).map_err(|e| (e, 0))?;
    let mut chunk = vec![0u8; 64 * 1024];
    let mut sent = 0u64;
    while sent < len {
        let n = (len - sent).min(chunk.len() as u64) as usize;
        for (i, b) in chunk[..n].iter_mut().enumerate() {
            let at = sent + i as u64;
            *b = payload(at) ^ MASK[(at % 4) as usize];
        }
        stream.write_all(&chunk[..n]).map_err(|e| (e, sent))?;
        sent += n as u64;
    }
    stream.shutdown(Shutdown::Write).map_err(|e| (e, sent))?;
    Ok(sent)
}

/// Reads until end of file, a reset or the timeout; returns what arrived and
/// the error, if any.
fn read_until_end(stream: &mut TcpStream) -> (Vec<u8>, Option<std::io::Error>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (got, None),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return (got, Some(e)),
        }
    }
}

/// The close code of the unmasked Close frame `bytes` must consist of.
fn close_code(bytes: &[u8], read_error: Option<&std::io::Error>) -> u16 {
    assert!(
        bytes.len() >= 4 && bytes[0] == 0x88,
        "expected a Close frame, got {bytes:02x?} (read error: {read_error:?})"
    );
    let len = usize::from(bytes[1]);
    assert!((2..=2 + MAX_CLOSE_REASON).contains(&len), "{bytes:02x?}");
    assert_eq!(bytes.len(), 2 + len, "exactly one frame: {bytes:02x?}");
    u16::from_be_bytes([bytes[2], bytes[3]])
}

/// Sends `head` and `len` payload bytes while the server fails the
/// connection; the client must then read the server's Close (with `code`),
/// and the server must have drained everything the client wrote.
fn peer_reads_the_close(
    driver: Driver,
    options: ServerOptions,
    head: Vec<u8>,
    len: u64,
    payload: fn(u64) -> u8,
    code: u16,
    violation: Violation,
) {
    let (addr, ended) = server(driver, options);
    let mut client = raw_client(addr);
    let writer_stream = client.try_clone().expect("clone");
    let writer = thread::spawn(move || write_all_then_shut(writer_stream, head, len, payload));
    let written = writer.join().expect("writer thread");
    // Only now, like a peer busy sending, does the client look at its input.
    let (bytes, error) = read_until_end(&mut client);
    assert_eq!(close_code(&bytes, error.as_ref()), code, "{driver:?}");
    assert!(error.is_none(), "{driver:?}: {error:?} after the Close");
    assert_eq!(
        written
            .as_ref()
            .map_err(|(e, n)| format!("{e} after {n} bytes")),
        Ok(&len),
        "{driver:?}: the server must keep reading (and discarding) until the end"
    );
    let (e, _) = ended.recv_timeout(WAIT).expect("server ends");
    assert!(
        matches!(e, Error::Protocol(wsproto::Error::Protocol(v)) if v == violation),
        "{driver:?}: {e:?}"
    );
}

fn large_limits() -> ServerOptions {
    // Those of the echo_server example.
    let mut options = ServerOptions::default();
    options.config.limits = wsproto_adapters::wsproto::Limits::for_message_size(64 * MIB);
    options.config.limits.max_frame_payload = 64 * MIB;
    options
}

/// A frame declaring 80 MiB (default limit 16 MiB), of which 8 MiB are sent.
fn oversized_frame(driver: Driver) {
    peer_reads_the_close(
        driver,
        ServerOptions::default(),
        header(0x2, 80 * MIB),
        8 * MIB,
        |i| i as u8,
        1009,
        Violation::FrameTooLarge,
    );
}

/// A 20 MiB text frame (within the limits) with an invalid byte at offset 10.
fn bad_utf8_early_in_a_large_text(driver: Driver) {
    peer_reads_the_close(
        driver,
        large_limits(),
        header(0x1, 20 * MIB),
        20 * MIB,
        |i| if i == 10 { 0xff } else { b'a' + (i % 26) as u8 },
        1007,
        Violation::InvalidUtf8,
    );
}

#[test]
fn blocking_oversized_frame_peer_reads_1009() {
    oversized_frame(Driver::Blocking);
}

#[test]
fn tokio_oversized_frame_peer_reads_1009() {
    oversized_frame(Driver::Tokio);
}

#[test]
fn blocking_bad_utf8_in_large_text_peer_reads_1007() {
    bad_utf8_early_in_a_large_text(Driver::Blocking);
}

#[test]
fn tokio_bad_utf8_in_large_text_peer_reads_1007() {
    bad_utf8_early_in_a_large_text(Driver::Tokio);
}

/// A peer that never stops sending cannot keep the connection past
/// `close_timeout`: the server's failing read returns at the deadline, and
/// the peer (reading concurrently) still got the Close before the cut.
fn endless_sender_is_cut_at_the_close_timeout(driver: Driver) {
    let close_timeout = Duration::from_millis(400);
    let mut options = ServerOptions::default();
    options.config.close_timeout = wsproto::Duration::from_millis(400);
    let (addr, ended) = server(driver, options);
    let mut client = raw_client(addr);
    let writer_stream = client.try_clone().expect("clone");
    // "Endless": far more than could be written before the deadline; it stops
    // at the first error (the server's reset).
    let writer = thread::spawn(move || {
        write_all_then_shut(writer_stream, header(0x2, 1 << 40), 1 << 40, |i| i as u8)
    });
    let (bytes, _) = read_until_end(&mut client);
    assert_eq!(close_code(&bytes, None), 1009, "{driver:?}");
    let (e, took) = ended.recv_timeout(WAIT).expect("server ends");
    assert!(
        matches!(
            e,
            Error::Protocol(wsproto::Error::Protocol(Violation::FrameTooLarge))
        ),
        "{driver:?}: {e:?}"
    );
    assert!(
        took >= close_timeout - Duration::from_millis(50) && took < close_timeout * 5,
        "{driver:?}: the failing read took {took:?}, close_timeout {close_timeout:?}"
    );
    let written = writer.join().expect("writer thread");
    assert!(written.is_err(), "{driver:?}: the writer was never cut off");
}

#[test]
fn blocking_endless_sender_is_cut_at_the_close_timeout() {
    endless_sender_is_cut_at_the_close_timeout(Driver::Blocking);
}

#[test]
fn tokio_endless_sender_is_cut_at_the_close_timeout() {
    endless_sender_is_cut_at_the_close_timeout(Driver::Tokio);
}

/// Our own blocking client, the way the Node `ws` client met the bug: one
/// 20 MiB binary message (default frame limit 16 MiB) must be answered with
/// a Close 1009 that the client reads, not a reset under its write. Sent
/// uncompressed: the point is a frame that is too big on the wire (20 MiB of
/// one byte would deflate to a few KiB).
#[test]
fn blocking_client_sending_too_big_a_message_reads_1009() {
    for driver in [Driver::Blocking, Driver::Tokio] {
        let (addr, ended) = server(driver, ServerOptions::default());
        let plain = ClientOptions {
            deflate: None,
            ..ClientOptions::default()
        };
        let mut ws = blocking::connect_with(&format!("ws://{addr}/"), &plain).expect("connect");
        ws.get_ref().set_write_timeout(Some(WAIT)).expect("timeout");
        let big = vec![0x5a; 20 << 20];
        ws.send_binary(&big)
            .unwrap_or_else(|e| panic!("{driver:?}: the send was cut off: {e}"));
        match ws.read() {
            Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, 1009, "{driver:?}"),
            other => panic!("{driver:?}: expected Close 1009, got {other:?}"),
        }
        assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
        drop(ws);
        let (e, _) = ended.recv_timeout(WAIT).expect("server ends");
        assert!(
            matches!(
                e,
                Error::Protocol(wsproto::Error::Protocol(Violation::FrameTooLarge))
            ),
            "{driver:?}: {e:?}"
        );
    }
}

/// The same with our tokio client and bad UTF-8 at offset 10 of a 20 MiB text.
#[tokio::test]
async fn tokio_client_sending_bad_utf8_reads_1007() {
    for driver in [Driver::Blocking, Driver::Tokio] {
        let (addr, ended) = server(driver, large_limits());
        let mut ws = wstokio::connect(&format!("ws://{addr}/"))
            .await
            .expect("connect");
        let mut bad = vec![b'a'; 20 << 20];
        bad[10] = 0xff;
        // Text on the wire with invalid UTF-8 inside: sent as one fragment of
        // a text message, which the client does not validate.
        let send = ws.send_fragment(wsproto::MessageKind::Text, &bad, true);
        tokio::time::timeout(WAIT, send)
            .await
            .expect("bounded")
            .unwrap_or_else(|e| panic!("{driver:?}: the send was cut off: {e}"));
        match tokio::time::timeout(WAIT, ws.read())
            .await
            .expect("bounded")
        {
            Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, 1007, "{driver:?}"),
            other => panic!("{driver:?}: expected Close 1007, got {other:?}"),
        }
        drop(ws);
        let (e, _) = ended.recv_timeout(WAIT).expect("server ends");
        assert!(
            matches!(
                e,
                Error::Protocol(wsproto::Error::Protocol(Violation::InvalidUtf8))
            ),
            "{driver:?}: {e:?}"
        );
    }
}
