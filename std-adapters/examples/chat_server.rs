//! Chat server: the page at `/` (plain HTTP on the same port), the WebSocket
//! at `/ws`; every text message is broadcast to every client, sender included.
//!
//! ```text
//! cargo run --release -p wsproto-adapters --example chat_server -- 127.0.0.1:8080
//! ```
//! Runs on the tokio adapter. Each client has a bounded outgoing queue: a
//! client too slow to drain it is dropped, so it never holds up the others.
//! permessage-deflate is accepted when the browser offers it (they all do);
//! the `accepted` log line names the negotiated extension.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use wsproto_adapters::{tokio as wstokio, Error, Message, ServerOptions};

const PAGE: &str = include_str!("chat.html");
/// Messages queued per client before it counts as too slow.
const QUEUE: usize = 256;

type Clients = Arc<Mutex<HashMap<u64, mpsc::Sender<Arc<str>>>>>;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!(
        "chat_server listening on http://{}/",
        listener.local_addr()?
    );
    let clients: Clients = Arc::default();
    let mut next_id = 0u64;
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        next_id += 1;
        let (id, clients) = (next_id, clients.clone());
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            match peek_target(&stream).await {
                Some(path) if path == "/ws" || path.starts_with("/ws?") => {
                    chat(stream, peer, id, clients).await
                }
                Some(path) if path == "/" || path.starts_with("/?") => {
                    serve_page(stream, peer).await
                }
                Some(path) => {
                    respond(
                        stream,
                        peer,
                        &path,
                        "404 Not Found",
                        "text/plain",
                        "not found\n",
                    )
                    .await
                }
                None => eprintln!("dropped {peer}: no request head"),
            }
        });
    }
}

/// Looks at the request head without consuming it, and returns its target
/// (the WebSocket handshake itself is left to the adapter).
async fn peek_target(stream: &TcpStream) -> Option<String> {
    let mut buf = vec![0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        let line_end = buf[..n].windows(2).position(|w| w == b"\r\n");
        if let Some(end) = line_end {
            let line = std::str::from_utf8(&buf[..end]).ok()?;
            return Some(line.split(' ').nth(1).unwrap_or("").to_owned());
        }
        if n == buf.len() {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn serve_page(stream: TcpStream, peer: SocketAddr) {
    respond(
        stream,
        peer,
        "/",
        "200 OK",
        "text/html; charset=utf-8",
        PAGE,
    )
    .await
}

/// Reads the plain HTTP request head and answers it.
async fn respond(
    mut stream: TcpStream,
    peer: SocketAddr,
    path: &str,
    status: &str,
    kind: &str,
    body: &str,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => return,
        }
    }
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
    eprintln!("http {peer} {path}: {status}");
}

async fn chat(stream: TcpStream, peer: SocketAddr, id: u64, clients: Clients) {
    let mut options = ServerOptions::default();
    options.config.limits.max_message_size = 64 << 20;
    let mut ws = match wstokio::accept_with(stream, &options).await {
        Ok(ws) => ws,
        Err(Error::Handshake(h)) => {
            return eprintln!("rejected {peer}: HTTP {} ({h})", h.status().unwrap_or(0));
        }
        Err(e) => return eprintln!("handshake with {peer} failed: {e}"),
    };
    eprintln!(
        "accepted {peer} /ws extensions={}",
        ws.extensions().unwrap_or("none")
    );
    let (tx, mut rx) = mpsc::channel::<Arc<str>>(QUEUE);
    clients
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, tx);
    let end = loop {
        tokio::select! {
            outgoing = rx.recv() => match outgoing {
                Some(text) => {
                    if let Err(e) = ws.send_text(&text).await {
                        break format!("{e}");
                    }
                }
                None => {
                    let _ = ws.close(1008, "too slow").await;
                    break "dropped: too slow".to_owned();
                }
            },
            incoming = ws.read() => match incoming {
                Ok(Message::Text(text)) => broadcast(&clients, text.into()),
                Ok(Message::Close(frame)) => break format!("code {:?}", frame.map(|f| f.code)),
                Ok(_) => {}
                Err(Error::Protocol(p)) => break format!("code {:?} ({p})", p.close_code().map(|c| c.0)),
                Err(e) => break format!("{e}"),
            },
        }
    };
    clients
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    // Let the close handshake finish (the server closes TCP first).
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while ws.read().await.is_ok() {}
    })
    .await;
    eprintln!("closed {peer}: {end}");
}

/// Queues `text` for every client; a client whose queue is full is dropped
/// from the registry (its task then closes it with 1008).
fn broadcast(clients: &Clients, text: Arc<str>) {
    let mut clients = clients.lock().unwrap_or_else(|e| e.into_inner());
    clients.retain(|_, tx| tx.try_send(text.clone()).is_ok());
}
