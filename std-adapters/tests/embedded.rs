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
