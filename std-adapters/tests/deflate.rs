//! permessage-deflate (RFC 7692) through the std adapters: negotiated by
//! default, messages of every shape round trip compressed, either side can
//! turn it off (the connection falls back to plain), the bytes on the wire
//! really are compressed, and a decompression bomb is answered with 1009.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;
use wsproto_adapters::wsproto::{MessageKind, Violation};
use wsproto_adapters::{
    blocking, tokio as wstokio, ClientOptions, DeflateConfig, DeflateMemory, Error, Message,
    ServerOptions, SharedDeflate,
};

const WAIT: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug)]
enum Server {
    Blocking,
    Tokio,
}

/// An echo server for one connection; reports the negotiated extension and
/// how the connection ended.
fn echo_server(
    kind: Server,
    options: ServerOptions,
) -> (SocketAddr, mpsc::Receiver<(Option<String>, Error)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        match kind {
            Server::Blocking => {
                let mut ws = blocking::accept_with(stream, &options).unwrap();
                let extensions = ws.extensions().map(str::to_owned);
                let end = loop {
                    match ws.read() {
                        Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                            if let Err(e) = ws.send(m) {
                                break e;
                            }
                        }
                        Ok(_) => {}
                        Err(e) => break e,
                    }
                };
                let _ = tx.send((extensions, end));
            }
            Server::Tokio => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    stream.set_nonblocking(true).unwrap();
                    let stream = tokio::net::TcpStream::from_std(stream).unwrap();
                    let mut ws = wstokio::accept_with(stream, &options).await.unwrap();
                    let extensions = ws.extensions().map(str::to_owned);
                    let end = loop {
                        match ws.read().await {
                            Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                                if let Err(e) = ws.send(m).await {
                                    break e;
                                }
                            }
                            Ok(_) => {}
                            Err(e) => break e,
                        }
                    };
                    let _ = tx.send((extensions, end));
                });
            }
        }
    });
    (addr, rx)
}

fn plain_client() -> ClientOptions {
    ClientOptions {
        deflate: None,
        ..ClientOptions::default()
    }
}

fn plain_server() -> ServerOptions {
    ServerOptions {
        deflate: None,
        ..ServerOptions::default()
    }
}

/// Text that compresses like real traffic (repetitive, not trivially so).
fn chatty(len: usize) -> String {
    let words = ["alpha ", "beta ", "gamma ", "délta ", "epsilon ", "ζeta "];
    let mut s = String::with_capacity(len + 16);
    let mut i = 0usize;
    while s.len() < len {
        s.push_str(words[(i * 7 + i / 3) % words.len()]);
        i += 1;
    }
    s
}

/// A stream that counts the bytes it carries each way.
struct Counting {
    inner: TcpStream,
    read: Arc<AtomicUsize>,
    written: Arc<AtomicUsize>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n, Ordering::Relaxed);
        Ok(n)
    }
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written.fetch_add(n, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn blocking_round_trips(server: Server) {
    blocking_round_trips_with(server, ServerOptions::default());
}

fn blocking_round_trips_with(server: Server, options: ServerOptions) {
    let (addr, ended) = echo_server(server, options);
    let mut ws = blocking::connect(&format!("ws://{addr}/")).unwrap();
    assert!(ws.deflate().is_some(), "{server:?}: deflate not agreed");
    assert!(ws
        .extensions()
        .is_some_and(|e| e.starts_with("permessage-deflate")));
    ws.send_text("hello").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("hello".into()));
    ws.send_binary(&[1, 2, 3, 0, 255]).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Binary(vec![1, 2, 3, 0, 255]));
    ws.send_text("").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text(String::new()));
    // 1 MiB, compressible and not.
    let text = chatty(1 << 20);
    ws.send_text(&text).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text(text));
    let mut x = 0x1234_5678u32;
    let noise: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    ws.send_binary(&noise).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Binary(noise));
    // Fragments, a control frame between them, a code point split across them.
    let word = "wörld".as_bytes();
    ws.send_fragment(MessageKind::Text, b"h\xc3", false)
        .unwrap();
    ws.send_fragment(MessageKind::Text, b"\xa9llo ", false)
        .unwrap();
    ws.ping(b"between").unwrap();
    ws.send_fragment(MessageKind::Text, word, true).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Pong(b"between".to_vec()));
    assert_eq!(ws.read().unwrap(), Message::Text("héllo wörld".into()));
    ws.send_fragment(MessageKind::Binary, &[9; 70_000], false)
        .unwrap();
    ws.send_fragment(MessageKind::Binary, &[], false).unwrap();
    ws.send_fragment(MessageKind::Binary, &[8; 3], true)
        .unwrap();
    let mut expected = vec![9; 70_000];
    expected.extend_from_slice(&[8; 3]);
    assert_eq!(ws.read().unwrap(), Message::Binary(expected));
    ws.close(1000, "done").unwrap();
    let (extensions, end) = ended.recv_timeout(WAIT).unwrap();
    assert!(extensions.is_some_and(|e| e.starts_with("permessage-deflate")));
    assert!(
        matches!(end, Error::ConnectionClosed),
        "{server:?}: {end:?}"
    );
}

#[test]
fn blocking_client_round_trips_compressed_with_a_blocking_server() {
    blocking_round_trips(Server::Blocking);
}

#[test]
fn blocking_client_round_trips_compressed_with_a_tokio_server() {
    blocking_round_trips(Server::Tokio);
}

/// The shared mode: the server forces no context takeover both ways, every
/// shape of message still round trips, and the state is back in the pool
/// once the connection is idle.
fn shared_round_trips(server: Server) {
    let pool = SharedDeflate::new(4);
    let options = ServerOptions {
        deflate_memory: DeflateMemory::Shared(pool.clone()),
        ..ServerOptions::default()
    };
    let (addr, ended) = echo_server(server, options.clone());
    let mut ws = blocking::connect(&format!("ws://{addr}/")).unwrap();
    let agreed = *ws.deflate().expect("deflate agreed");
    assert!(agreed.server_no_context_takeover && agreed.client_no_context_takeover);
    let text = chatty(100_000);
    for _ in 0..3 {
        ws.send_text(&text).unwrap();
        assert_eq!(ws.read().unwrap(), Message::Text(text.clone()));
    }
    ws.close(1000, "done").unwrap();
    ended.recv_timeout(WAIT).unwrap();
    // One connection, one message at a time: one state, now idle.
    assert_eq!(pool.idle(), 1, "{server:?}");
    // The whole battery, on the same pool.
    blocking_round_trips_with(server, options);
    assert_eq!(pool.idle(), 1, "{server:?}");
}

#[test]
fn shared_mode_round_trips_with_a_blocking_server() {
    shared_round_trips(Server::Blocking);
}

#[test]
fn shared_mode_round_trips_with_a_tokio_server() {
    shared_round_trips(Server::Tokio);
}

#[test]
fn the_shared_pool_keeps_at_most_its_cap() {
    use wsproto_adapters::wsproto::extensions::deflate::{
        accept_offer, DeflatePool, HeapDeflate15,
    };
    use wsproto_adapters::wsproto::Role;
    let pool = SharedDeflate::new(2);
    let agreed = accept_offer(
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        &DeflateConfig::default(),
    )
    .unwrap();
    let key = agreed.directions(Role::Server);
    for _ in 0..5 {
        let state = Box::new(HeapDeflate15::new(&agreed, Role::Server).unwrap());
        pool.give(&key, state);
    }
    assert_eq!(pool.idle(), 2);
    assert!(pool.take(&key).is_some());
    assert!(
        pool.take(&agreed.directions(Role::Client)).is_some(),
        "same windows both ways"
    );
    assert!(pool.take(&key).is_none());
}

#[tokio::test]
async fn tokio_client_round_trips_compressed() {
    for server in [Server::Blocking, Server::Tokio] {
        let (addr, ended) = echo_server(server, ServerOptions::default());
        let mut ws = wstokio::connect(&format!("ws://{addr}/")).await.unwrap();
        assert!(ws.deflate().is_some(), "{server:?}");
        let text = chatty(1 << 20);
        ws.send_text(&text).await.unwrap();
        assert_eq!(ws.read().await.unwrap(), Message::Text(text));
        ws.send_binary(&[0; 5000]).await.unwrap();
        assert_eq!(ws.read().await.unwrap(), Message::Binary(vec![0; 5000]));
        ws.send_fragment(MessageKind::Text, "ζ".as_bytes(), false)
            .await
            .unwrap();
        ws.ping(b"p").await.unwrap();
        ws.send_fragment(MessageKind::Text, "eta".as_bytes(), true)
            .await
            .unwrap();
        assert_eq!(ws.read().await.unwrap(), Message::Pong(b"p".to_vec()));
        assert_eq!(ws.read().await.unwrap(), Message::Text("ζeta".into()));
        ws.close(1000, "").await.unwrap();
        let (extensions, end) = ended.recv_timeout(WAIT).unwrap();
        assert!(extensions.is_some(), "{server:?}");
        assert!(
            matches!(end, Error::ConnectionClosed),
            "{server:?}: {end:?}"
        );
    }
}

/// Either side turning deflate off gives a plain connection that works.
#[test]
fn turned_off_on_one_side_falls_back_to_plain() {
    for server in [Server::Blocking, Server::Tokio] {
        for (client_options, server_options) in [
            (plain_client(), ServerOptions::default()),
            (ClientOptions::default(), plain_server()),
        ] {
            let (addr, ended) = echo_server(server, server_options);
            let url = format!("ws://{addr}/");
            let mut ws = blocking::connect_with(&url, &client_options).unwrap();
            assert!(ws.deflate().is_none() && ws.extensions().is_none());
            let text = chatty(100_000);
            ws.send_text(&text).unwrap();
            assert_eq!(ws.read().unwrap(), Message::Text(text));
            ws.close(1000, "").unwrap();
            let (extensions, end) = ended.recv_timeout(WAIT).unwrap();
            assert_eq!(extensions, None, "{server:?}");
            assert!(
                matches!(end, Error::ConnectionClosed),
                "{server:?}: {end:?}"
            );
        }
    }
}

/// The windows are capped by configuration: a 9-bit server limits the
/// client's window to 9 bits (its own it simply keeps small, which needs no
/// parameter), and traffic still flows.
#[test]
fn window_bits_capped_by_the_server_configuration() {
    let options = ServerOptions {
        deflate: Some(DeflateConfig {
            max_window_bits: 9,
            ..DeflateConfig::default()
        }),
        ..ServerOptions::default()
    };
    let (addr, ended) = echo_server(Server::Blocking, options);
    let mut ws = blocking::connect(&format!("ws://{addr}/")).unwrap();
    let agreed = *ws.deflate().expect("agreed");
    assert_eq!(agreed.client_max_window_bits, Some(9));
    let text = chatty(200_000);
    ws.send_text(&text).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text(text));
    ws.close(1000, "").unwrap();
    assert!(ended.recv_timeout(WAIT).unwrap().0.is_some());
}

/// What crosses the socket is compressed: 1 MiB of chatty text each way
/// costs a small fraction of that on the wire.
#[test]
fn the_wire_carries_compressed_bytes() {
    let (addr, ended) = echo_server(Server::Blocking, ServerOptions::default());
    let read = Arc::new(AtomicUsize::new(0));
    let written = Arc::new(AtomicUsize::new(0));
    let stream = Counting {
        inner: TcpStream::connect(addr).unwrap(),
        read: read.clone(),
        written: written.clone(),
    };
    let mut ws =
        blocking::client(stream, &format!("ws://{addr}/"), &ClientOptions::default()).unwrap();
    let (r0, w0) = (
        read.load(Ordering::Relaxed),
        written.load(Ordering::Relaxed),
    );
    let text = chatty(1 << 20);
    ws.send_text(&text).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text(text));
    let sent = written.load(Ordering::Relaxed) - w0;
    let received = read.load(Ordering::Relaxed) - r0;
    eprintln!("1 MiB of text: {sent} bytes sent, {received} bytes received");
    assert!(sent < (1 << 20) / 10, "sent {sent} bytes");
    assert!(received < (1 << 20) / 10, "received {received} bytes");
    ws.close(1000, "").unwrap();
    ended.recv_timeout(WAIT).unwrap();
}

/// A raw client offering deflate sends RFC 7692 §7.2.3.1's compressed
/// "Hello"; the server inflates it and echoes it compressed (RSV1 set).
#[test]
fn raw_peer_sees_the_extension_and_compressed_frames() {
    for server in [Server::Blocking, Server::Tokio] {
        let (addr, _ended) = echo_server(server, ServerOptions::default());
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
              Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
        )
        .unwrap();
        // Masked with a zero key: the payload is as in the RFC.
        s.write_all(&[
            0xc1, 0x87, 0, 0, 0, 0, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00,
        ])
        .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        let head_end = loop {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "{server:?}: closed early");
            got.extend_from_slice(&buf[..n]);
            if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                if got.len() >= at + 4 + 2 {
                    break at + 4;
                }
            }
        };
        let head = String::from_utf8_lossy(&got[..head_end]).to_lowercase();
        assert!(
            head.contains("sec-websocket-extensions: permessage-deflate"),
            "{server:?}: {head}"
        );
        let frame = &got[head_end..];
        assert_eq!(frame[0], 0xc1, "{server:?}: FIN + RSV1 + text");
        assert!(
            (frame[1] as usize) < 12,
            "{server:?}: compressed payload {}",
            frame[1]
        );
    }
}

/// A decompression bomb (1 MiB of zeros in about a kilobyte) against a 64
/// KiB message limit: the server stops inflating at the limit and closes
/// with 1009, which the client reads.
#[test]
fn decompression_bomb_is_answered_with_1009() {
    for server in [Server::Blocking, Server::Tokio] {
        let mut options = ServerOptions::default();
        options.config.limits.max_message_size = 64 * 1024;
        let (addr, ended) = echo_server(server, options);
        let mut ws = blocking::connect(&format!("ws://{addr}/")).unwrap();
        assert!(ws.deflate().is_some());
        ws.send_binary(&vec![0u8; 1 << 20]).unwrap();
        match ws.read() {
            Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, 1009, "{server:?}"),
            other => panic!("{server:?}: expected Close 1009, got {other:?}"),
        }
        let (_, end) = ended.recv_timeout(WAIT).unwrap();
        assert!(
            matches!(
                end,
                Error::Protocol(wsproto_adapters::wsproto::Error::Protocol(
                    Violation::MessageTooLarge
                ))
            ),
            "{server:?}: {end:?}"
        );
    }
}
