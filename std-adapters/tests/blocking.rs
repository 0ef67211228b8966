//! Blocking adapter over loopback TCP.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};
use wsproto_adapters::blocking::{self, WebSocket};
use wsproto_adapters::wsproto::{Duration as WsDuration, MessageKind};
use wsproto_adapters::{ClientOptions, CloseFrame, Error, Message, ServerOptions};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// An echo server for `connections` connections, each on its own thread.
fn echo_server(connections: usize, options: ServerOptions) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let options = options.clone();
            thread::spawn(move || {
                let Ok(mut ws) = blocking::accept_with(stream.unwrap(), &options) else {
                    return;
                };
                while let Ok(msg) = ws.read() {
                    if matches!(msg, Message::Text(_) | Message::Binary(_)) && ws.send(msg).is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn read_to_end(mut s: TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn echo_text_binary_empty_large_and_fragmented() {
    let addr = echo_server(1, ServerOptions::default());
    let mut ws = blocking::connect(&format!("ws://{addr}/echo")).unwrap();
    ws.send_text("hello").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("hello".into()));
    ws.send_binary(&[1, 2, 3]).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Binary(vec![1, 2, 3]));
    ws.send_text("").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text(String::new()));
    ws.send_binary(&[]).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Binary(vec![]));
    let big: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
    ws.send(Message::Binary(big.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Binary(big));
    ws.send_fragment(MessageKind::Text, "héllo ".as_bytes(), false)
        .unwrap();
    ws.ping(b"between").unwrap();
    ws.send_fragment(MessageKind::Text, "wörld".as_bytes(), true)
        .unwrap();
    assert_eq!(ws.read().unwrap(), Message::Pong(b"between".to_vec()));
    assert_eq!(ws.read().unwrap(), Message::Text("héllo wörld".into()));
    ws.close(1000, "done").unwrap();
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
}

#[test]
fn ping_pong_both_ways() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let mut ws = blocking::accept(listener.accept().unwrap().0).unwrap();
        assert_eq!(ws.read().unwrap(), Message::Ping(b"c2s".to_vec()));
        ws.ping(b"s2c").unwrap();
        assert_eq!(ws.read().unwrap(), Message::Pong(b"s2c".to_vec()));
        // `Message::Close(None)` goes out as 1000.
        let frame = CloseFrame {
            code: 1000,
            reason: String::new(),
        };
        assert_eq!(ws.read().unwrap(), Message::Close(Some(frame)));
        assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    });
    let mut ws = blocking::connect(&format!("ws://{addr}")).unwrap();
    ws.ping(b"c2s").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Pong(b"c2s".to_vec()));
    assert_eq!(ws.read().unwrap(), Message::Ping(b"s2c".to_vec()));
    ws.send(Message::Close(None)).unwrap();
    assert!(matches!(
        ws.read().unwrap(),
        Message::Close(Some(CloseFrame { code: 1000, .. }))
    ));
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    server.join().unwrap();
}

#[test]
fn close_codes_both_ways() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let mut first = blocking::accept(listener.accept().unwrap().0).unwrap();
        let frame = CloseFrame {
            code: 4001,
            reason: "client bye".into(),
        };
        assert_eq!(first.read().unwrap(), Message::Close(Some(frame)));
        assert!(matches!(first.read(), Err(Error::ConnectionClosed)));
        let mut second = blocking::accept(listener.accept().unwrap().0).unwrap();
        second.close(4002, "server bye").unwrap();
        assert!(matches!(second.read(), Err(Error::ConnectionClosed)));
    });
    let mut ws = blocking::connect(&format!("ws://{addr}")).unwrap();
    ws.close(4001, "client bye").unwrap();
    let mut ws = blocking::connect(&format!("ws://{addr}")).unwrap();
    let frame = CloseFrame {
        code: 4002,
        reason: "server bye".into(),
    };
    assert_eq!(ws.read().unwrap(), Message::Close(Some(frame)));
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    assert!(ws.send_text("late").is_err());
    server.join().unwrap();
}

#[test]
fn bad_handshakes_get_the_cores_answer() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let mut errors = Vec::new();
        for _ in 0..2 {
            errors.push(
                blocking::accept(listener.accept().unwrap().0)
                    .err()
                    .unwrap(),
            );
        }
        errors
    });
    let mut s = raw(addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let answer = String::from_utf8(read_to_end(s)).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    let mut s = raw(addr);
    let request = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 8\r\n\r\n"
    );
    s.write_all(request.as_bytes()).unwrap();
    let answer = String::from_utf8(read_to_end(s)).unwrap();
    assert!(answer.starts_with("HTTP/1.1 426 "), "{answer}");
    assert!(answer.contains("Sec-WebSocket-Version: 13\r\n"), "{answer}");
    let errors = server.join().unwrap();
    assert!(
        errors.iter().all(|e| matches!(e, Error::Handshake(_))),
        "{errors:?}"
    );
}

#[test]
fn a_bad_frame_closes_only_that_connection() {
    let addr = echo_server(2, ServerOptions::default());
    let mut good = blocking::connect(&format!("ws://{addr}/")).unwrap();
    good.send_text("before").unwrap();
    assert_eq!(good.read().unwrap(), Message::Text("before".into()));

    let mut bad = raw(addr);
    let request = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    bad.write_all(request.as_bytes()).unwrap();
    bad.write_all(&[0x81, 0x02, b'h', b'i']).unwrap(); // unmasked: a protocol error
    let reply = read_to_end(bad);
    let head_end = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(reply.starts_with(b"HTTP/1.1 101 "));
    assert_eq!(
        &reply[head_end..head_end + 4],
        &[0x88, reply[head_end + 1], 0x03, 0xEA]
    ); // 1002

    good.send_text("after").unwrap();
    assert_eq!(good.read().unwrap(), Message::Text("after".into()));
    good.close(1000, "").unwrap();
}

#[test]
fn handshake_deadline_drops_a_slow_loris() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let mut options = ServerOptions::default();
        options.config.handshake_timeout = WsDuration::from_millis(300);
        let started = Instant::now();
        let result = blocking::accept_with(listener.accept().unwrap().0, &options);
        (result.err(), started.elapsed())
    });
    let mut s = raw(addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let answer = String::from_utf8(read_to_end(s)).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    let (error, elapsed) = server.join().unwrap();
    assert!(matches!(error, Some(Error::Handshake(_))), "{error:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[test]
fn subprotocol_negotiation_and_url_errors() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let options = ServerOptions {
            protocols: vec!["b".into(), "a".into()],
            ..ServerOptions::default()
        };
        let ws: WebSocket<TcpStream> =
            blocking::accept_with(listener.accept().unwrap().0, &options).unwrap();
        ws.protocol().map(str::to_owned)
    });
    let options = ClientOptions {
        protocols: vec!["a".into(), "b".into()],
        ..ClientOptions::default()
    };
    let ws = blocking::connect_with(&format!("ws://{addr}/"), &options).unwrap();
    assert_eq!(ws.protocol(), Some("b"));
    assert_eq!(server.join().unwrap().as_deref(), Some("b"));
    assert!(matches!(blocking::connect("http://x/"), Err(Error::Url(_))));
    // wss:// is built in (the tests turn the `rustls` feature on): nothing
    // listens on port 1, so the TCP connect itself fails.
    assert!(matches!(
        blocking::connect("wss://127.0.0.1:1/"),
        Err(Error::Io(_))
    ));
}
