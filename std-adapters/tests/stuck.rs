//! Peers that stop reading, cancelled sends, resets after the close
//! handshake, and handshakes with long header values. Every wait is bounded
//! by a generous timeout that only detects hangs.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use wsproto::{Connection, Event, Keepalive, Role, TimeoutKind};
use wsproto_adapters::{blocking, tokio as wstokio, ClientOptions, Error, Message, ServerOptions};

const REQUEST: &[u8] = b"GET /s HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

const HANG: Duration = Duration::from_secs(10);

fn options(close_ms: u64, keepalive_ms: Option<u64>) -> ServerOptions {
    let mut options = ServerOptions {
        deflate: None,
        ..ServerOptions::default()
    };
    options.config.close_timeout = wsproto::Duration::from_millis(close_ms);
    options.config.keepalive = keepalive_ms.map(|ms| Keepalive {
        interval: wsproto::Duration::from_millis(ms),
        timeout: wsproto::Duration::from_millis(ms),
    });
    options
}

/// Writes the request and reads the 101 head, byte by byte so that nothing
/// after it is consumed.
async fn handshake_peer(peer: &mut DuplexStream) {
    peer.write_all(REQUEST).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(peer.read_u8().await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
}

/// A server over a 4 KiB in-memory pipe whose peer has read the 101 and
/// then stops reading.
async fn stuck_server(options: &ServerOptions) -> (wstokio::WebSocket<DuplexStream>, DuplexStream) {
    let (server_end, mut peer) = tokio::io::duplex(4096);
    let options = options.clone();
    let accept = tokio::spawn(async move { wstokio::accept_with(server_end, &options).await });
    handshake_peer(&mut peer).await;
    (accept.await.unwrap().unwrap(), peer)
}

fn is_timeout(result: &Result<impl std::fmt::Debug, Error>, kind: TimeoutKind) -> bool {
    matches!(result, Err(Error::Protocol(wsproto::Error::Timeout(k))) if *k == kind)
}

#[tokio::test]
async fn tokio_close_returns_within_the_close_timeout_while_writes_are_stuck() {
    let (mut ws, mut peer) = stuck_server(&options(200, None)).await;
    let big = vec![1u8; 1 << 20];
    let send = tokio::time::timeout(Duration::from_millis(100), ws.send_binary(&big)).await;
    assert!(send.is_err(), "the 1 MiB send cannot finish: nobody reads");
    let closed = tokio::time::timeout(HANG, ws.close(1000, "bye"))
        .await
        .expect("close() hung on a peer that does not read");
    assert!(is_timeout(&closed, TimeoutKind::Close), "{closed:?}");
    assert!(matches!(ws.read().await, Err(Error::ConnectionClosed)));
    // The transport was shut: the peer reads what had been written, then
    // end of file.
    let mut rest = Vec::new();
    tokio::time::timeout(HANG, peer.read_to_end(&mut rest))
        .await
        .expect("the write side was never shut")
        .unwrap();
    assert!(rest.len() < big.len());
}

#[tokio::test]
async fn tokio_keepalive_fires_while_writes_are_stuck() {
    let (mut ws, _peer) = stuck_server(&options(200, Some(100))).await;
    let big = vec![1u8; 1 << 20];
    let send = tokio::time::timeout(Duration::from_millis(50), ws.send_binary(&big)).await;
    assert!(send.is_err());
    // read() writes the queued frame first: the pong deadline still counts.
    let read = tokio::time::timeout(HANG, ws.read())
        .await
        .expect("read() hung behind a stuck write");
    assert!(is_timeout(&read, TimeoutKind::Pong), "{read:?}");
    // A send stuck on its own frame is bounded the same way.
    let (mut ws, _peer) = stuck_server(&options(200, Some(100))).await;
    let send = tokio::time::timeout(HANG, ws.send_binary(&big))
        .await
        .expect("send_binary() hung");
    assert!(is_timeout(&send, TimeoutKind::Pong), "{send:?}");
}

/// Accepts one loopback connection in the blocking driver; the client sends
/// the request, reads the 101 and then never reads again.
fn stuck_blocking_server(options: ServerOptions) -> (blocking::WebSocket<TcpStream>, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        blocking::accept_with(stream, &options).unwrap()
    });
    let mut peer = TcpStream::connect(addr).unwrap();
    peer.write_all(REQUEST).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        peer.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    (server.join().unwrap(), peer)
}

/// Runs `f` on a thread and waits at most [`HANG`] for it.
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(HANG).expect("the call hung")
}

#[test]
fn blocking_close_returns_within_the_close_timeout_while_writes_are_stuck() {
    let (mut ws, peer) = stuck_blocking_server(options(200, None));
    // Fill both socket buffers behind the driver's back (the peer never
    // parses them), so that the Close cannot be written.
    let stream = ws.get_mut();
    stream.set_nonblocking(true).unwrap();
    let filler = vec![0u8; 64 * 1024];
    loop {
        match stream.write(&filler) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    stream.set_nonblocking(false).unwrap();
    let (closed, state) = bounded(move || {
        let closed = ws.close(1000, "bye");
        let after = ws.read();
        (closed, after)
    });
    assert!(is_timeout(&closed, TimeoutKind::Close), "{closed:?}");
    assert!(matches!(state, Err(Error::ConnectionClosed)), "{state:?}");
    drop(peer);
}

#[test]
fn blocking_keepalive_fires_while_a_send_is_stuck() {
    let (mut ws, peer) = stuck_blocking_server(options(200, Some(100)));
    // Far more than loopback's socket buffers hold.
    let sent = bounded(move || ws.send_binary(&vec![1u8; 64 << 20]));
    assert!(is_timeout(&sent, TimeoutKind::Pong), "{sent:?}");
    drop(peer);
}

/// Decodes every frame the server wrote, as its client would.
fn messages(bytes: &mut [u8]) -> Vec<Message> {
    let mut config = wsproto::Config::default();
    config.limits.max_frame_payload = 64 << 20;
    config.limits.max_message_size = 64 << 20;
    let mut client = Connection::new(Role::Client, config);
    let mut out = Vec::new();
    let mut partial = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let r = client.receive(&mut bytes[pos..]).unwrap();
        if r.consumed == 0 {
            break;
        }
        pos += r.consumed;
        match r.event {
            Some(Event::Binary { data, fin }) => {
                partial.extend_from_slice(data);
                if fin {
                    out.push(Message::Binary(std::mem::take(&mut partial)));
                }
            }
            Some(Event::Text { data, fin }) => {
                partial.extend_from_slice(data.as_bytes());
                if fin {
                    let text = String::from_utf8(std::mem::take(&mut partial)).unwrap();
                    out.push(Message::Text(text));
                }
            }
            Some(Event::Close { code, .. }) => {
                out.push(Message::Close(code.map(|c| wsproto_adapters::CloseFrame {
                    code: c.0,
                    reason: String::new(),
                })))
            }
            Some(_) | None => {}
        }
    }
    out
}

#[tokio::test]
async fn tokio_a_send_cancelled_behind_earlier_output_queues_nothing() {
    let (mut ws, mut peer) = stuck_server(&options(5_000, None)).await;
    let big = vec![2u8; 64 * 1024];
    // Cancelled while writing its own frame: the frame stays queued whole.
    let first = tokio::time::timeout(Duration::from_millis(50), ws.send_binary(&big)).await;
    assert!(first.is_err());
    // Cancelled while the first frame is still being written: nothing queued.
    let second = tokio::time::timeout(Duration::from_millis(50), ws.send_text("x")).await;
    assert!(second.is_err());
    // The peer reads again; the first frame is finished, then "x" is sent
    // again, once.
    let reader = tokio::spawn(async move {
        let mut all = Vec::new();
        peer.read_to_end(&mut all).await.unwrap();
        all
    });
    tokio::time::timeout(HANG, async {
        ws.flush().await.unwrap();
        ws.send_text("x").await.unwrap();
        ws.get_mut().shutdown().await.unwrap();
    })
    .await
    .unwrap();
    let mut all = tokio::time::timeout(HANG, reader).await.unwrap().unwrap();
    let got: Vec<String> = messages(&mut all)
        .iter()
        .map(|m| match m {
            Message::Binary(b) if *b == big => "big".to_owned(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(got, ["big", "Text(\"x\")"]);
}

/// Accepts with tokio, sends a Close and, without waiting for the answer,
/// resets the connection (SO_LINGER 0), as the Autobahn fuzzing server does.
async fn resetting_server(listener: tokio::net::TcpListener) {
    let (stream, _) = listener.accept().await.unwrap();
    let mut ws = wstokio::accept_with(stream, &options(5_000, None))
        .await
        .unwrap();
    ws.send(Message::Close(None)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    #[allow(deprecated)]
    ws.get_ref().set_linger(Some(Duration::ZERO)).unwrap();
    drop(ws);
}

/// Both drivers as clients: they read the server's Close only after the
/// reset has arrived, so answering it fails on the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_after_the_close_handshake_is_a_normal_end() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(resetting_server(listener));
    let mut client = wstokio::connect(&format!("ws://{addr}/")).await.unwrap();
    server.await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let first = tokio::time::timeout(HANG, client.read()).await.unwrap();
    assert!(matches!(first, Ok(Message::Close(_))), "tokio: {first:?}");
    let end = tokio::time::timeout(HANG, client.read()).await.unwrap();
    assert!(
        matches!(end, Err(Error::ConnectionClosed)),
        "tokio: {end:?}"
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(resetting_server(listener));
    let client =
        tokio::task::spawn_blocking(move || blocking::connect(&format!("ws://{addr}/")).unwrap())
            .await
            .unwrap();
    server.await.unwrap();
    let (first, end) = tokio::task::spawn_blocking(move || {
        let mut client = client;
        std::thread::sleep(Duration::from_millis(200));
        (client.read(), client.read())
    })
    .await
    .unwrap();
    assert!(
        matches!(first, Ok(Message::Close(_))),
        "blocking: {first:?}"
    );
    assert!(
        matches!(end, Err(Error::ConnectionClosed)),
        "blocking: {end:?}"
    );
}

#[test]
fn a_long_origin_and_a_long_subprotocol_fit_the_handshake() {
    let protocol = "p".repeat(3000);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server_protocol = protocol.clone();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let options = ServerOptions {
            protocols: vec![server_protocol],
            ..ServerOptions::default()
        };
        let mut ws = blocking::accept_with(stream, &options).unwrap();
        let msg = ws.read().unwrap();
        ws.send(msg).unwrap();
        ws.protocol().map(str::to_owned)
    });
    let options = ClientOptions {
        origin: Some(format!("https://{}.example", "o".repeat(1000))),
        protocols: vec![protocol.clone()],
        headers: vec![("X-Long".into(), "h".repeat(2000))],
        ..ClientOptions::default()
    };
    let mut client = blocking::connect_with(&format!("ws://{addr}/"), &options).unwrap();
    assert_eq!(client.protocol(), Some(protocol.as_str()));
    client.send_text("hi").unwrap();
    assert_eq!(client.read().unwrap(), Message::Text("hi".into()));
    assert_eq!(server.join().unwrap().as_deref(), Some(protocol.as_str()));
}

/// A stream the driver cannot see into (not a `TcpStream`): its own write
/// timeout is all that bounds a write.
struct Opaque(TcpStream);

impl Read for Opaque {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Opaque {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[test]
fn blocking_write_timeouts_of_other_streams_lose_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_write_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        blocking::accept_with(Opaque(stream), &options(300, None)).unwrap()
    });
    let mut peer = TcpStream::connect(addr).unwrap();
    peer.write_all(REQUEST).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        peer.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let mut ws = server.join().unwrap();
    let big = vec![3u8; 32 << 20];
    // The peer does not read: the stream's own timeout ends the call, and
    // the frame stays queued.
    let sent = ws.send_binary(&big);
    assert!(
        matches!(&sent, Err(Error::Io(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "{sent:?}"
    );
    assert_eq!(ws.state(), wsproto::State::Open);
    // The peer reads again: the rest of the frame goes out, then the next.
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        peer.read_to_end(&mut all).unwrap();
        all
    });
    let sent = bounded(move || {
        let sent = ws.send_text("after");
        ws.get_ref().0.shutdown(std::net::Shutdown::Write).unwrap();
        sent
    });
    assert!(sent.is_ok(), "{sent:?}");
    let mut all = reader.join().unwrap();
    let got: Vec<String> = messages(&mut all)
        .iter()
        .map(|m| match m {
            Message::Binary(b) if *b == big => "big".to_owned(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(got, ["big", "Text(\"after\")"]);
}

#[test]
fn blocking_close_over_other_streams_ends_at_the_close_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_write_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        blocking::accept_with(Opaque(stream), &options(300, None)).unwrap()
    });
    let mut peer = TcpStream::connect(addr).unwrap();
    peer.write_all(REQUEST).unwrap();
    let mut ws = server.join().unwrap();
    assert!(ws.send_binary(&vec![3u8; 32 << 20]).is_err());
    // Each call returns at the stream's timeout; repeated, close() ends
    // with the close handshake's timeout.
    let closed = bounded(move || loop {
        match ws.close(1000, "bye") {
            Err(Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            other => return other,
        }
    });
    assert!(is_timeout(&closed, TimeoutKind::Close), "{closed:?}");
    drop(peer);
}
