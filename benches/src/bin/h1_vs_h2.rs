//! Many WebSockets to one server, over HTTP/1.1 (one TCP connection each)
//! or over HTTP/2 (RFC 8441: streams spread over a few connections), with
//! the same client driver (`wsproto-adapters`) either way:
//!
//! ```text
//! h1_vs_h2 127.0.0.1:9002 --mode h1 --sockets 1000 --secs 5 --server-pid PID
//! h1_vs_h2 127.0.0.1:9002 --mode h2 --sockets 1000 --conns 10 --secs 5 --server-pid PID
//! ```
//!
//! Reads the server's RSS (`/proc/PID/status`, VmRSS) before connecting and
//! again once every WebSocket has had one echo and the server has settled,
//! then has every WebSocket send 16-byte text messages and check each echo
//! (one in flight per WebSocket) for `--secs` seconds. Prints one line:
//! `mode sockets tcp_connections rss_before_kib rss_open_kib echoes secs`.
//! permessage-deflate is not offered, so no compression state is counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wsproto_adapters::h2::Http2Connection;
use wsproto_adapters::upgrade::UpgradedWebSocket;
use wsproto_adapters::{tokio as ws, ClientOptions, Message};
use wsproto_benches::BoxError;

/// HTTP/1.1 handshakes in progress at once (the server's accept backlog).
const CONCURRENT_HANDSHAKES: usize = 128;

struct Args {
    addr: String,
    http2: bool,
    sockets: usize,
    conns: usize,
    secs: u64,
    server_pid: u32,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut args = Args {
        addr: "127.0.0.1:9002".into(),
        http2: false,
        sockets: 1000,
        conns: 10,
        secs: 5,
        server_pid: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--mode" => args.http2 = value()? == "h2",
            "--sockets" => args.sockets = value()?.parse()?,
            "--conns" => args.conns = value()?.parse()?,
            "--secs" => args.secs = value()?.parse()?,
            "--server-pid" => args.server_pid = value()?.parse()?,
            _ if !arg.starts_with('-') => args.addr = arg,
            _ => return Err(format!("unknown argument {arg}").into()),
        }
    }
    if args.server_pid == 0 || args.conns == 0 {
        return Err("--server-pid PID is required and --conns must be > 0".into());
    }
    Ok(args)
}

fn rss_kib(pid: u32) -> Result<u64, BoxError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS".into())
}

fn options() -> ClientOptions {
    ClientOptions {
        deflate: None,
        ..ClientOptions::default()
    }
}

/// Either kind of WebSocket, so both modes run the same echo loop.
enum Socket {
    H1(ws::WebSocket<ws::MaybeTls>),
    H2(UpgradedWebSocket),
}

impl Socket {
    async fn echo(&mut self, text: &str) -> Result<(), BoxError> {
        let reply = match self {
            Socket::H1(ws) => {
                ws.send_text(text).await?;
                ws.read().await?
            }
            Socket::H2(ws) => {
                ws.send_text(text).await?;
                ws.read().await?
            }
        };
        match reply {
            Message::Text(echo) if echo == text => Ok(()),
            other => Err(format!("expected the echo of {text:?}, got {other:?}").into()),
        }
    }

    async fn close(&mut self) {
        let _ = match self {
            Socket::H1(ws) => ws.close(1000, "").await,
            Socket::H2(ws) => ws.close(1000, "").await,
        };
    }
}

async fn open_h1(addr: &str, sockets: usize) -> Result<Vec<Socket>, BoxError> {
    let gate = Arc::new(Semaphore::new(CONCURRENT_HANDSHAKES));
    let url = format!("ws://{addr}/h1");
    let tasks: Vec<_> = (0..sockets)
        .map(|_| {
            let (gate, url) = (gate.clone(), url.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await?;
                let mut socket = Socket::H1(ws::connect_with(&url, &options()).await?);
                socket.echo("Hello").await?;
                Ok::<_, BoxError>(socket)
            })
        })
        .collect();
    let mut opened = Vec::with_capacity(sockets);
    for task in tasks {
        opened.push(task.await??);
    }
    Ok(opened)
}

async fn open_h2(
    addr: &str,
    sockets: usize,
    conns: usize,
) -> Result<(Vec<Socket>, Vec<Http2Connection>), BoxError> {
    let url = format!("ws://{addr}/");
    let mut connections = Vec::with_capacity(conns);
    for _ in 0..conns {
        connections.push(Http2Connection::connect(&url, &options()).await?);
    }
    let tasks: Vec<_> = (0..sockets)
        .map(|i| {
            let conn = connections.get(i % conns).cloned().ok_or("no connection")?;
            Ok::<_, BoxError>(tokio::spawn(async move {
                let mut socket = Socket::H2(conn.open("/h2", &options()).await?);
                socket.echo("Hello").await?;
                Ok::<_, BoxError>(socket)
            }))
        })
        .collect::<Result<_, _>>()?;
    let mut opened = Vec::with_capacity(sockets);
    for task in tasks {
        opened.push(task.await??);
    }
    Ok((opened, connections))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = parse_args()?;
    let before = rss_kib(args.server_pid)?;
    let (sockets, _connections, tcp) = if args.http2 {
        let (sockets, connections) = open_h2(&args.addr, args.sockets, args.conns).await?;
        (sockets, connections, args.conns)
    } else {
        (
            open_h1(&args.addr, args.sockets).await?,
            Vec::new(),
            args.sockets,
        )
    };
    // Let the server finish what the handshakes left it doing.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let open = rss_kib(args.server_pid)?;

    let echoes = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.secs);
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, mut socket)| {
            let echoes = echoes.clone();
            tokio::spawn(async move {
                let text = format!("message {i:>8}");
                while Instant::now() < deadline {
                    socket.echo(&text).await?;
                    echoes.fetch_add(1, Ordering::Relaxed);
                }
                socket.close().await;
                Ok::<_, BoxError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} {} {} {} {} {} {:.3}",
        if args.http2 { "h2" } else { "h1" },
        args.sockets,
        tcp,
        before,
        open,
        echoes.load(Ordering::Relaxed),
        secs
    );
    Ok(())
}
