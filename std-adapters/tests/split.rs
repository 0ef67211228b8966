//! `Stream`, `Sink`, `feed` and `split` of the tokio WebSocket, over
//! loopback TCP. Every wait is bounded by a timeout that only detects hangs,
//! except where a test asserts a deadline.

use futures_util::{SinkExt, StreamExt};
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use wsproto::{Keepalive, TimeoutKind};
use wsproto_adapters::tokio::{self as ws, reunite, WebSocket};
use wsproto_adapters::{ClientOptions, CloseFrame, Error, Message, ServerOptions};

const HANG: Duration = Duration::from_secs(10);

const REQUEST: &[u8] = b"GET /s HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(HANG, f).await.expect("hung")
}

fn server_options(close_ms: u64, keepalive_ms: Option<u64>) -> ServerOptions {
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

fn is_timeout<T: std::fmt::Debug>(result: &Result<T, Error>, kind: TimeoutKind) -> bool {
    matches!(result, Err(Error::Protocol(wsproto::Error::Timeout(k))) if *k == kind)
}

async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Accepts one WebSocket connection on `listener` in a task.
fn accept_one(
    listener: TcpListener,
    options: ServerOptions,
) -> tokio::task::JoinHandle<WebSocket<TcpStream>> {
    tokio::spawn(async move {
        let stream = listener.accept().await.unwrap().0;
        ws::accept_with(stream, &options).await.unwrap()
    })
}

/// A raw TCP peer (optionally with a small receive buffer) that has done
/// the handshake, reading the 101 byte by byte so nothing after it is lost.
async fn raw_peer(addr: SocketAddr, recv_buffer: Option<u32>) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let mut stream = socket.connect(addr).await.unwrap();
    stream.write_all(REQUEST).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    stream
}

/// A masked client frame (`payload` under 126 bytes).
fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [1u8, 2, 3, 4];
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
    frame
}

/// Takes the complete (unmasked, server) frames off the front of `buf`.
fn take_frames(buf: &mut Vec<u8>) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut pos = 0;
    loop {
        let rest = &buf[pos..];
        if rest.len() < 2 {
            break;
        }
        let (len, header) = match rest[1] & 0x7f {
            126 if rest.len() >= 4 => (u16::from_be_bytes([rest[2], rest[3]]) as usize, 4),
            127 if rest.len() >= 10 => (
                u64::from_be_bytes(rest[2..10].try_into().unwrap()) as usize,
                10,
            ),
            126 | 127 => break,
            n => (n as usize, 2),
        };
        if rest.len() < header + len {
            break;
        }
        frames.push((rest[0] & 0x0f, rest[header..header + len].to_vec()));
        pos += header + len;
    }
    buf.drain(..pos);
    frames
}

/// The next message, or (when none is ready) a flush of what was fed: the
/// pipelining shape of the echo server example.
async fn next_or_flush<W>(ws: &mut W) -> Option<Result<Message, Error>>
where
    W: futures_util::Stream<Item = Result<Message, Error>>
        + futures_util::Sink<Message, Error = Error>
        + Unpin,
{
    poll_fn(|cx| match Pin::new(&mut *ws).poll_next(cx) {
        Poll::Ready(item) => Poll::Ready(item),
        Poll::Pending => match Pin::new(&mut *ws).poll_flush(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            _ => Poll::Pending,
        },
    })
    .await
}

/// Echoes text and binary with `feed`, flushing when no input is ready;
/// returns the peer's Close.
async fn echo<W>(mut ws: W) -> Option<CloseFrame>
where
    W: futures_util::Stream<Item = Result<Message, Error>>
        + futures_util::Sink<Message, Error = Error>
        + Unpin,
{
    let mut close = None;
    while let Some(msg) = next_or_flush(&mut ws).await {
        match msg.unwrap() {
            msg @ (Message::Text(_) | Message::Binary(_)) => {
                SinkExt::feed(&mut ws, msg).await.unwrap();
            }
            Message::Close(frame) => close = frame,
            _ => {}
        }
    }
    close
}

#[tokio::test]
async fn stream_and_sink_round_trip() {
    bounded(async {
        let (listener, addr) = listen().await;
        let server = tokio::spawn(async move {
            let stream = listener.accept().await.unwrap().0;
            echo(ws::accept(stream).await.unwrap()).await
        });
        let mut client = ws::connect(&format!("ws://{addr}/")).await.unwrap();
        SinkExt::send(&mut client, Message::Text("hello".into()))
            .await
            .unwrap();
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::Text("hello".into())
        );
        let big = vec![5u8; 300_000];
        SinkExt::send(&mut client, Message::Binary(big.clone()))
            .await
            .unwrap();
        assert_eq!(client.next().await.unwrap().unwrap(), Message::Binary(big));
        SinkExt::send(&mut client, Message::Ping(b"p".to_vec()))
            .await
            .unwrap();
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::Pong(b"p".to_vec())
        );
        SinkExt::close(&mut client).await.unwrap();
        assert!(client.next().await.is_none(), "the stream ends after close");
        let frame = server.await.unwrap();
        assert_eq!(frame.map(|f| f.code), Some(1000));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_half_is_not_held_up_by_a_writer_blocked_on_a_slow_peer() {
    let (listener, addr) = listen().await;
    let accept = accept_one(listener, server_options(5_000, None));
    let peer = bounded(raw_peer(addr, Some(4096))).await;
    let (rx, tx) = bounded(accept).await.unwrap().split();
    let (mut rx, mut tx) = (rx, tx);

    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (sent, stop) = (sent.clone(), stop.clone());
        async move {
            let big = vec![7u8; 64 * 1024];
            while !stop.load(Ordering::SeqCst) {
                tx.send(Message::Binary(big.clone())).await?;
                sent.fetch_add(1, Ordering::SeqCst);
            }
            Ok::<_, Error>(tx)
        }
    });

    // The peer reads a little now and then, until told to read fast; it
    // returns the first Pong's payload.
    let (mut peer_read, mut peer_write) = peer.into_split();
    let fast = Arc::new(AtomicBool::new(false));
    let peer_task = tokio::spawn({
        let fast = fast.clone();
        async move {
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                let want = if fast.load(Ordering::SeqCst) {
                    chunk.len()
                } else {
                    1024
                };
                let n = peer_read.read(&mut chunk[..want]).await.unwrap();
                assert!(n > 0, "end of file before the pong");
                buf.extend_from_slice(&chunk[..n]);
                for (opcode, payload) in take_frames(&mut buf) {
                    if opcode == 0xA {
                        return payload;
                    }
                }
                if !fast.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    });

    // Wait until the writer is stuck: no send finished for 300 ms.
    bounded(async {
        loop {
            let before = sent.load(Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(300)).await;
            if before > 0 && sent.load(Ordering::SeqCst) == before {
                break;
            }
        }
    })
    .await;

    let mut input = masked(0x9, b"are you there");
    input.extend(masked(0x1, b"hello"));
    peer_write.write_all(&input).await.unwrap();
    let text = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match rx.next().await {
                Some(Ok(Message::Text(t))) => return t,
                Some(Ok(Message::Ping(_))) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await
    .expect("the read half waited behind the blocked writer");
    assert_eq!(text, "hello");
    assert!(!writer.is_finished(), "the writer was blocked all along");

    stop.store(true, Ordering::SeqCst);
    fast.store(true, Ordering::SeqCst);
    let pong = bounded(peer_task).await.unwrap();
    assert_eq!(pong, b"are you there");
    let tx = bounded(writer).await.unwrap().unwrap();
    assert!(reunite(rx, tx).is_ok());
}

#[tokio::test]
async fn a_received_close_is_echoed_while_split() {
    bounded(async {
        let (listener, addr) = listen().await;
        let accept = accept_one(listener, server_options(5_000, None));
        let mut client = ws::connect(&format!("ws://{addr}/")).await.unwrap();
        let (mut rx, tx) = accept.await.unwrap().split();
        let server = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(msg) = rx.next().await {
                got.push(msg.unwrap());
            }
            drop(tx);
            got
        });
        client.send_text("last words").await.unwrap();
        // Completes only once the server's echo of our Close arrived.
        client.close(1001, "going").await.unwrap();
        let got = server.await.unwrap();
        assert_eq!(
            got,
            vec![
                Message::Text("last words".into()),
                Message::Close(Some(CloseFrame {
                    code: 1001,
                    reason: "going".into()
                }))
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn the_close_timeout_applies_while_split() {
    let (listener, addr) = listen().await;
    let accept = accept_one(listener, server_options(300, None));
    let mut peer = bounded(raw_peer(addr, None)).await;
    // The peer reads everything and never answers.
    let drain = tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = peer.read_to_end(&mut sink).await;
        sink
    });
    let (mut rx, mut tx) = bounded(accept).await.unwrap().split();
    let reader = tokio::spawn(async move {
        loop {
            match rx.read().await {
                Ok(_) => {}
                end => return end,
            }
        }
    });
    let start = std::time::Instant::now();
    let closed = bounded(tx.close(1000, "bye")).await;
    let took = start.elapsed();
    assert!(is_timeout(&closed, TimeoutKind::Close), "{closed:?}");
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let read = bounded(reader).await.unwrap();
    assert!(is_timeout(&read, TimeoutKind::Close), "{read:?}");
    // Our Close reached the peer, then the transport was shut.
    let wire = bounded(drain).await.unwrap();
    assert_eq!(&wire[..2], &[0x88, 5]);
}

#[tokio::test]
async fn keepalive_applies_while_split() {
    let (listener, addr) = listen().await;
    let accept = accept_one(listener, server_options(300, Some(100)));
    let mut peer = bounded(raw_peer(addr, None)).await;
    let drain = tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = peer.read_to_end(&mut sink).await;
        sink
    });
    let (mut rx, _tx) = bounded(accept).await.unwrap().split();
    let read = bounded(rx.read()).await;
    assert!(is_timeout(&read, TimeoutKind::Pong), "{read:?}");
    // The keepalive ping went out first.
    let wire = bounded(drain).await.unwrap();
    assert_eq!(wire[0], 0x89);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_ends_both_halves_while_the_writer_is_stuck() {
    let (listener, addr) = listen().await;
    // A close timeout far above the keepalive's: the failure must not wait
    // for output the peer is not reading.
    let accept = accept_one(listener, server_options(5_000, Some(100)));
    let _peer = bounded(raw_peer(addr, Some(4096))).await;
    let (mut rx, mut tx) = bounded(accept).await.unwrap().split();
    let start = std::time::Instant::now();
    let writer = tokio::spawn(async move {
        let big = vec![3u8; 64 * 1024];
        loop {
            if let Err(e) = tx.send(Message::Binary(big.clone())).await {
                return e;
            }
        }
    });
    let read = bounded(rx.read()).await;
    assert!(is_timeout(&read, TimeoutKind::Pong), "{read:?}");
    let sent: Result<(), Error> = Err(bounded(writer).await.unwrap());
    assert!(is_timeout(&sent, TimeoutKind::Pong), "{sent:?}");
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn the_read_half_is_cancel_safe_in_select() {
    const N: usize = 1000;
    let (listener, addr) = listen().await;
    let server = tokio::spawn(async move {
        let stream = listener.accept().await.unwrap().0;
        let mut ws = ws::accept(stream).await.unwrap();
        for i in 0..N {
            ws.feed(Message::Text(format!("m{i}"))).await.unwrap();
            if i % 7 == 0 {
                ws.flush().await.unwrap();
                tokio::time::sleep(Duration::from_micros(300)).await;
            }
        }
        ws.close(1000, "").await
    });
    let client = ws::connect(&format!("ws://{addr}/")).await.unwrap();
    let (mut rx, _tx) = client.split();
    let mut got = Vec::new();
    let mut ticks = tokio::time::interval(Duration::from_micros(200));
    let mut cancelled = 0usize;
    bounded(async {
        loop {
            tokio::select! {
                msg = rx.next() => match msg {
                    Some(Ok(Message::Text(t))) => got.push(t),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => panic!("{e}"),
                    None => break,
                },
                _ = ticks.tick() => cancelled += 1,
            }
        }
    })
    .await;
    let expected: Vec<String> = (0..N).map(|i| format!("m{i}")).collect();
    assert_eq!(got, expected);
    assert!(cancelled > 0, "the timer never won a round");
    bounded(server).await.unwrap().unwrap();
}

/// Counts the writes that reach the stream.
struct Counting {
    inner: TcpStream,
    writes: Arc<AtomicUsize>,
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counting {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            if n > 0 {
                self.writes.fetch_add(1, Ordering::SeqCst);
            }
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn feeds_then_one_flush_go_out_in_few_writes_and_the_echo_pipelines() {
    const N: usize = 100;
    bounded(async {
        let (listener, addr) = listen().await;
        let server_writes = Arc::new(AtomicUsize::new(0));
        let server = tokio::spawn({
            let writes = server_writes.clone();
            async move {
                let inner = listener.accept().await.unwrap().0;
                let stream = Counting { inner, writes };
                let ws = ws::accept_with(stream, &server_options(5_000, None))
                    .await
                    .unwrap();
                echo(ws).await
            }
        });
        let client_writes = Arc::new(AtomicUsize::new(0));
        let inner = TcpStream::connect(addr).await.unwrap();
        let stream = Counting {
            inner,
            writes: client_writes.clone(),
        };
        let options = ClientOptions {
            deflate: None,
            ..ClientOptions::default()
        };
        let mut client = ws::client(stream, &format!("ws://{addr}/"), &options)
            .await
            .unwrap();
        let before = client_writes.load(Ordering::SeqCst);
        for i in 0..N {
            client.feed(Message::Text(format!("n{i}"))).await.unwrap();
        }
        assert_eq!(
            client_writes.load(Ordering::SeqCst),
            before,
            "feed wrote below the high-water mark"
        );
        client.flush().await.unwrap();
        let client_sent = client_writes.load(Ordering::SeqCst) - before;
        let server_before = server_writes.load(Ordering::SeqCst);
        for i in 0..N {
            assert_eq!(client.read().await.unwrap(), Message::Text(format!("n{i}")));
        }
        let server_sent = server_writes.load(Ordering::SeqCst) - server_before;
        assert!(client_sent < N, "{client_sent} writes for {N} messages");
        assert!(client_sent <= 2, "{client_sent} writes for {N} messages");
        assert!(
            server_sent < N,
            "{server_sent} echo writes for {N} messages"
        );
        client.close(1000, "").await.unwrap();
        server.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn reunite_gives_the_socket_back_and_refuses_strangers() {
    bounded(async {
        let (listener, addr) = listen().await;
        let server = tokio::spawn(async move {
            let mut closes = Vec::new();
            for _ in 0..2 {
                let stream = listener.accept().await.unwrap().0;
                let ws = ws::accept(stream).await.unwrap();
                closes.push(tokio::spawn(echo(ws)));
            }
            for close in closes {
                close.await.unwrap();
            }
        });
        let (rx1, tx1) = ws::connect(&format!("ws://{addr}/")).await.unwrap().split();
        let (rx2, tx2) = ws::connect(&format!("ws://{addr}/")).await.unwrap().split();
        assert!(rx1.is_pair_of(&tx1) && !rx1.is_pair_of(&tx2));
        let Err(ws::ReuniteError(rx1, tx2)) = reunite(rx1, tx2) else {
            panic!("halves of different sockets were reunited");
        };
        let mut one = rx1.reunite(tx1).unwrap();
        let mut two = reunite(rx2, tx2).unwrap();
        for (ws, text) in [(&mut one, "one"), (&mut two, "two")] {
            ws.send_text(text).await.unwrap();
            assert_eq!(ws.read().await.unwrap(), Message::Text(text.into()));
            ws.close(1000, "").await.unwrap();
        }
        server.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn the_write_half_is_a_sink_whose_close_waits_for_the_read_half() {
    const N: usize = 50;
    bounded(async {
        let (listener, addr) = listen().await;
        let server = tokio::spawn(async move {
            let stream = listener.accept().await.unwrap().0;
            echo(ws::accept(stream).await.unwrap()).await
        });
        let (mut rx, mut tx) = ws::connect(&format!("ws://{addr}/")).await.unwrap().split();
        let writer = tokio::spawn(async move {
            for i in 0..N {
                SinkExt::feed(&mut tx, Message::Text(format!("s{i}"))).await?;
            }
            SinkExt::flush(&mut tx).await?;
            SinkExt::close(&mut tx).await?;
            Ok::<_, Error>(tx)
        });
        let mut got = Vec::new();
        while let Some(msg) = rx.next().await {
            match msg.unwrap() {
                Message::Text(t) => got.push(t),
                Message::Close(frame) => assert_eq!(frame.map(|f| f.code), Some(1000)),
                other => panic!("unexpected {other:?}"),
            }
        }
        let expected: Vec<String> = (0..N).map(|i| format!("s{i}")).collect();
        assert_eq!(got, expected);
        let tx = writer.await.unwrap().unwrap();
        assert_eq!(server.await.unwrap().map(|f| f.code), Some(1000));
        // Whole again, the socket is closed.
        let mut ws = reunite(rx, tx).unwrap();
        assert!(matches!(ws.read().await, Err(Error::ConnectionClosed)));
    })
    .await;
}
