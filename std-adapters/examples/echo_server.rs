//! Echo server: text back as text, binary back as binary.
//!
//! ```text
//! cargo run --release -p wsproto-adapters --example echo_server -- 127.0.0.1:9001 [--tokio] [--no-deflate] [--memory-budget=BYTES]
//! ```
//! Blocking by default, one thread per connection; `--tokio` runs the same on
//! the tokio adapter. permessage-deflate is accepted when a client offers it;
//! `--no-deflate` declines it; `--memory-budget=BYTES` shares one
//! `MemoryBudget` among all connections (none by default). Logs one line per connection event to stderr,
//! the `accepted` line naming the negotiated extension.

use std::net::{SocketAddr, TcpListener, TcpStream};
use wsproto_adapters::{
    blocking, tokio as wstokio, CloseFrame, Error, MemoryBudget, Message, ServerOptions,
};

/// `--memory-budget=BYTES`, shared by every connection.
static BUDGET: std::sync::OnceLock<MemoryBudget> = std::sync::OnceLock::new();

fn options(deflate: bool) -> ServerOptions {
    let mut options = ServerOptions::default();
    if !deflate {
        options.deflate = None;
    }
    options.config.limits = wsproto_adapters::wsproto::Limits::for_message_size(64 << 20);
    options.config.limits.max_frame_payload = 64 << 20;
    options.config.limits.max_fragments = 1 << 20;
    options.memory_budget = BUDGET.get().cloned();
    options
}

const USAGE: &str = "usage: echo_server [ADDRESS] [--tokio] [--no-deflate]
  ADDRESS        where to listen (default 127.0.0.1:9001; port 0 picks a free one)
  --tokio        run on the tokio driver instead of a thread per connection
  --no-deflate   decline permessage-deflate offers
  --memory-budget=BYTES  one memory budget for all connections (1013 past it)";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return;
    }
    if let Some(unknown) = args
        .iter()
        .filter(|a| !a.starts_with("--memory-budget="))
        .find(|a| a.starts_with('-') && !matches!(a.as_str(), "--tokio" | "--no-deflate"))
    {
        eprintln!("echo_server: unknown option {unknown}\n{USAGE}");
        std::process::exit(2);
    }
    if let Some(bytes) = args.iter().find_map(|a| a.strip_prefix("--memory-budget=")) {
        let Ok(bytes) = bytes.parse() else {
            eprintln!("echo_server: --memory-budget takes a byte count\n{USAGE}");
            std::process::exit(2);
        };
        let _ = BUDGET.set(MemoryBudget::new(bytes));
    }
    let use_tokio = args.iter().any(|a| a == "--tokio");
    let deflate = !args.iter().any(|a| a == "--no-deflate");
    let addr = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let result = if use_tokio {
        run_tokio(&addr, deflate)
    } else {
        run_blocking(&addr, deflate)
    };
    if let Err(e) = result {
        eprintln!("echo_server: {addr}: {e}");
        std::process::exit(1);
    }
}

/// A peer address for the log, or "?" when the socket no longer knows it.
fn show(peer: Option<SocketAddr>) -> String {
    peer.map_or_else(|| "?".to_owned(), |p| p.to_string())
}

/// A received Close for the log: `1000 "bye"`, or `no code`.
fn show_close(frame: Option<&CloseFrame>) -> String {
    match frame {
        Some(f) => format!("{} {:?}", f.code, f.reason),
        None => "no code".to_owned(),
    }
}

fn run_blocking(addr: &str, deflate: bool) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    eprintln!(
        "echo_server (blocking) listening on {}, permessage-deflate {}",
        listener.local_addr()?,
        if deflate { "on" } else { "off" }
    );
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        std::thread::spawn(move || serve_blocking(stream, deflate));
    }
    Ok(())
}

fn serve_blocking(stream: TcpStream, deflate: bool) {
    let peer = stream.peer_addr().ok();
    let _ = stream.set_nodelay(true);
    let mut ws = match blocking::accept_with(stream, &options(deflate)) {
        Ok(ws) => ws,
        Err(e) => return log_rejected(peer, &e),
    };
    eprintln!(
        "accepted {} {} extensions={}",
        show(peer),
        ws.path(),
        ws.extensions().unwrap_or("none")
    );
    loop {
        let result = match ws.read() {
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => ws.send(msg),
            Ok(Message::Close(frame)) => {
                eprintln!("closed {}: {}", show(peer), show_close(frame.as_ref()));
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(Error::ConnectionClosed) => return,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            log_error(peer, &e);
            return;
        }
    }
}

fn log_rejected(peer: Option<SocketAddr>, e: &Error) {
    match e {
        Error::Handshake(h) => {
            eprintln!(
                "rejected {}: HTTP {} ({h})",
                show(peer),
                h.status().unwrap_or(0)
            )
        }
        e => eprintln!("handshake with {} failed: {e}", show(peer)),
    }
}

fn log_error(peer: Option<SocketAddr>, e: &Error) {
    match e {
        Error::Protocol(p) => eprintln!("closed {}: {p}", show(peer)),
        e => eprintln!("closed {}: {e}", show(peer)),
    }
}

fn run_tokio(addr: &str, deflate: bool) -> std::io::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        eprintln!(
            "echo_server (tokio) listening on {}, permessage-deflate {}",
            listener.local_addr()?,
            if deflate { "on" } else { "off" }
        );
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let mut ws = match wstokio::accept_with(stream, &options(deflate)).await {
                    Ok(ws) => ws,
                    Err(e) => return log_rejected(Some(peer), &e),
                };
                eprintln!(
                    "accepted {peer} {} extensions={}",
                    ws.path(),
                    ws.extensions().unwrap_or("none")
                );
                loop {
                    let result = match ws.read().await {
                        Ok(msg @ (Message::Text(_) | Message::Binary(_))) => ws.send(msg).await,
                        Ok(Message::Close(frame)) => {
                            eprintln!("closed {peer}: {}", show_close(frame.as_ref()));
                            Ok(())
                        }
                        Ok(_) => Ok(()),
                        Err(Error::ConnectionClosed) => return,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = result {
                        return log_error(Some(peer), &e);
                    }
                }
            });
        }
    })
}
