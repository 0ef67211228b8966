//! Large messages a server writes from their own bytes (header and payload in
//! one vectored write, no copy into the transmit buffer): whole and in order
//! over a transport taking a few bytes per write, finished by `flush` after a
//! cancelled send, and through the blocking driver.

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::net::TcpListener;
use wsproto_adapters::wsproto::Limits;
use wsproto_adapters::{blocking, tokio as ws, ClientOptions, Message, ServerOptions};

/// Server options without compression (compressed payloads are rewritten,
/// so they never go out in place).
fn server_options() -> ServerOptions {
    ServerOptions {
        deflate: None,
        ..ServerOptions::default()
    }
}

/// Client options without compression, taking messages up to 64 MiB.
fn client_options() -> ClientOptions {
    let mut options = ClientOptions {
        deflate: None,
        ..ClientOptions::default()
    };
    options.config.limits = Limits::for_message_size(64 << 20);
    options.config.limits.max_frame_payload = 64 << 20;
    options
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 + i / 509) as u8).collect()
}

/// A stream whose writes take 1, 2, ... up to `max` bytes in turn (gathered
/// across slices when vectored) and which is not ready every other time.
struct Trickle {
    inner: DuplexStream,
    next: usize,
    max: usize,
    not_ready: bool,
    /// Writes that took bytes from more than one slice.
    vectored: Arc<AtomicUsize>,
}

impl Trickle {
    fn take(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        self.not_ready = !self.not_ready;
        if self.not_ready {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let limit = self.next;
        self.next = self.next % self.max + 1;
        let mut gathered = Vec::with_capacity(limit);
        let mut slices_used = 0;
        for buf in bufs.iter().filter(|b| !b.is_empty()) {
            if gathered.len() == limit {
                break;
            }
            let take = buf.len().min(limit - gathered.len());
            gathered.extend_from_slice(&buf[..take]);
            slices_used += 1;
        }
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(0, |b| b.len());
        let polled = Pin::new(&mut self.inner).poll_write(cx, &gathered);
        if let Poll::Ready(Ok(n)) = polled {
            if slices_used > 1 && n > first {
                self.vectored.fetch_add(1, Ordering::Relaxed);
            }
        }
        polled
    }
}

impl AsyncWrite for Trickle {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().take(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().take(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl AsyncRead for Trickle {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

#[tokio::test]
async fn large_messages_arrive_whole_through_writes_of_a_few_bytes() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let vectored = Arc::new(AtomicUsize::new(0));
    let trickle = Trickle {
        inner: a,
        next: 1,
        max: 29,
        not_ready: false,
        vectored: vectored.clone(),
    };
    // Every header length the vectored path meets (from its 16 KiB
    // threshold up: 16-bit and 64-bit lengths, and their boundary).
    let sizes = [16_384, 65_535, 65_536, 70_001];
    let test = async {
        let (server_options, client_options) = (server_options(), client_options());
        let (server, client) = tokio::join!(
            ws::accept_with(trickle, &server_options),
            ws::client(b, "ws://localhost/", &client_options),
        );
        let (mut server, mut client) = (server.unwrap(), client.unwrap());
        let send = async {
            for (i, &len) in sizes.iter().enumerate() {
                server.send(Message::Binary(pattern(len))).await.unwrap();
                server
                    .feed(Message::Text(format!("after {i}")))
                    .await
                    .unwrap();
                let text = "é".repeat(len / 2);
                server.send(Message::Text(text)).await.unwrap();
            }
            server
        };
        let receive = async {
            for (i, &len) in sizes.iter().enumerate() {
                assert_eq!(client.read().await.unwrap(), Message::Binary(pattern(len)));
                assert_eq!(
                    client.read().await.unwrap(),
                    Message::Text(format!("after {i}"))
                );
                assert_eq!(
                    client.read().await.unwrap(),
                    Message::Text("é".repeat(len / 2))
                );
            }
        };
        tokio::join!(send, receive).0
    };
    let _server = tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .unwrap();
    assert!(
        vectored.load(Ordering::Relaxed) > 0,
        "header and payload went out in vectored writes"
    );
}

#[tokio::test]
async fn a_cancelled_large_send_is_finished_by_flush() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let test = async {
        let accept = async {
            let (stream, _) = listener.accept().await.unwrap();
            ws::accept_with(stream, &server_options()).await.unwrap()
        };
        let url = format!("ws://{addr}/");
        let options = client_options();
        let (mut server, client) = tokio::join!(accept, ws::connect_with(&url, &options));
        let mut client = client.unwrap();
        // More than the loopback socket buffers hold while the client does
        // not read: the send is still writing when it is dropped.
        let big = pattern(24 << 20);
        let send = server.send(Message::Binary(big.clone()));
        let cancelled = tokio::time::timeout(Duration::from_millis(200), send).await;
        assert!(cancelled.is_err(), "the send finished before the cancel");
        // The message was queued whole: flush writes the rest, and the frame
        // after it starts where it ends.
        let finish = async {
            server.flush().await.unwrap();
            server.send_text("next").await.unwrap();
        };
        let receive = async {
            assert!(client.read().await.unwrap() == Message::Binary(big));
            assert_eq!(client.read().await.unwrap(), Message::Text("next".into()));
        };
        tokio::join!(finish, receive);
    };
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .unwrap();
}

#[test]
fn the_blocking_driver_writes_large_messages_in_place() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (done, finished) = mpsc::channel();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut ws = blocking::accept_with(stream, &server_options()).unwrap();
        ws.send(Message::Binary(pattern(1 << 20))).unwrap();
        ws.send(Message::Text("é".repeat(40_000))).unwrap();
        ws.send(Message::Text("small".into())).unwrap();
        // Until the client's Close.
        while ws.read().is_ok() {}
    });
    std::thread::spawn(move || {
        let url = format!("ws://{addr}/");
        let mut client = blocking::connect_with(&url, &client_options()).unwrap();
        assert!(client.read().unwrap() == Message::Binary(pattern(1 << 20)));
        assert_eq!(client.read().unwrap(), Message::Text("é".repeat(40_000)));
        assert_eq!(client.read().unwrap(), Message::Text("small".into()));
        client.close(1000, "").unwrap();
        let _ = done.send(());
    });
    finished
        .recv_timeout(Duration::from_secs(30))
        .expect("the exchange finished in time");
    server.join().unwrap();
}
