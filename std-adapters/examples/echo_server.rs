//! Echo server: text back as text, binary back as binary.
//!
//! ```text
//! cargo run --release -p wsproto-adapters --example echo_server -- 127.0.0.1:9001 [--tokio] [--no-deflate] [--tls CERT KEY] [--memory-budget BYTES] [--min-progress BYTES/SECONDS|off] [--deflate-memory 15|12|9|shared]
//! ```
//! Blocking by default, one thread per connection; `--tokio` runs the same on
//! the tokio adapter. `--tls CERT KEY` serves `wss://` with the PEM
//! certificate chain and private key in those files (TLS, then the WebSocket
//! handshake, both within the handshake timeout). permessage-deflate is accepted when a client offers it;
//! `--no-deflate` declines it; `--memory-budget BYTES` shares one
//! `MemoryBudget` among all connections (none by default);
//! `--min-progress BYTES/SECONDS` sets the slowest a started message may
//! arrive before the connection is closed with 1008 (the core's default,
//! 8192/30, otherwise; `off` switches it off). `--deflate-memory` picks the
//! memory of compressed connections: `15` (the default), `12` or `9` caps
//! the windows of a state each connection owns; `shared` answers with no
//! context takeover both ways and lends states from one pool only while a
//! message is in flight. Logs one line per connection event to stderr,
//! the `accepted` line naming the negotiated extension.

use std::net::{SocketAddr, TcpListener, TcpStream};
use wsproto_adapters::wsproto::{Duration, MinProgress};
use wsproto_adapters::{
    blocking, tls, tokio as wstokio, CloseFrame, DeflateMemory, Error, MemoryBudget, Message,
    ServerOptions,
};

/// `--memory-budget BYTES`, shared by every connection.
static BUDGET: std::sync::OnceLock<MemoryBudget> = std::sync::OnceLock::new();
/// `--min-progress`, when given (`None` inside: `off`).
static MIN_PROGRESS: std::sync::OnceLock<Option<MinProgress>> = std::sync::OnceLock::new();
/// `--deflate-memory`: the window cap, or `None` for the shared pool.
static DEFLATE_MEMORY: std::sync::OnceLock<Option<u8>> = std::sync::OnceLock::new();
/// The pool of `--deflate-memory shared`, one for the whole server.
static SHARED: std::sync::OnceLock<DeflateMemory> = std::sync::OnceLock::new();

fn options(deflate: bool) -> ServerOptions {
    let mut options = ServerOptions::default();
    if !deflate {
        options.deflate = None;
    }
    options.config.limits = wsproto_adapters::wsproto::Limits::for_message_size(64 << 20);
    options.config.limits.max_frame_payload = 64 << 20;
    options.config.limits.max_fragments = 1 << 20;
    options.memory_budget = BUDGET.get().cloned();
    match DEFLATE_MEMORY.get() {
        None => {}
        Some(Some(bits)) => {
            if let Some(deflate) = &mut options.deflate {
                deflate.max_window_bits = *bits;
            }
        }
        // Up to 64 idle states kept (about 8 MiB at most).
        Some(None) => {
            options.deflate_memory = SHARED.get_or_init(|| DeflateMemory::shared(64)).clone();
        }
    }
    if let Some(rule) = MIN_PROGRESS.get() {
        options.config.min_progress = *rule;
    }
    options
}

const USAGE: &str =
    "usage: echo_server [ADDRESS] [--tokio] [--no-deflate] [--tls CERT KEY] [--memory-budget BYTES] [--min-progress BYTES/SECONDS|off]
  ADDRESS         where to listen (default 127.0.0.1:9001; port 0 picks a free one)
  --tokio         run on the tokio driver instead of a thread per connection
  --no-deflate    decline permessage-deflate offers
  --tls CERT KEY  serve wss:// with this PEM certificate chain and private key
  --memory-budget BYTES
                  one memory budget for all connections (a connection past it is closed with 1013)
  --min-progress BYTES/SECONDS
                  a started message must move by BYTES every SECONDS (default 8192/30),
                  or the connection is closed with 1008; `off` switches the check off
  --deflate-memory 15|12|9|shared
                  per-connection deflate windows of 2^N bytes (default 15), or `shared`:
                  no context takeover, states lent from one pool while a message is in flight";

/// The command line.
struct Args {
    addr: String,
    use_tokio: bool,
    deflate: bool,
    /// PEM files: certificate chain, private key.
    tls: Option<(String, String)>,
    /// `--memory-budget`: bytes shared by all connections.
    memory_budget: Option<usize>,
    /// `--min-progress`: `Some(None)` for `off`.
    min_progress: Option<Option<MinProgress>>,
    /// `--deflate-memory`: `Some(None)` for `shared`.
    deflate_memory: Option<Option<u8>>,
}

fn parse_args(args: Vec<String>) -> Result<Args, String> {
    let mut parsed = Args {
        addr: "127.0.0.1:9001".to_owned(),
        use_tokio: false,
        deflate: true,
        tls: None,
        memory_budget: None,
        min_progress: None,
        deflate_memory: None,
    };
    let mut addr = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--tokio" => parsed.use_tokio = true,
            "--no-deflate" => parsed.deflate = false,
            "--tls" => match (args.next(), args.next()) {
                (Some(cert), Some(key)) => parsed.tls = Some((cert, key)),
                _ => return Err("--tls needs two files: CERT KEY".to_owned()),
            },
            "--memory-budget" => match args.next().map(|b| b.parse()) {
                Some(Ok(bytes)) => parsed.memory_budget = Some(bytes),
                _ => return Err("--memory-budget takes a byte count".to_owned()),
            },
            a if a.starts_with("--memory-budget=") => {
                match a.trim_start_matches("--memory-budget=").parse() {
                    Ok(bytes) => parsed.memory_budget = Some(bytes),
                    Err(_) => return Err("--memory-budget takes a byte count".to_owned()),
                }
            }
            "--min-progress" => match args.next().as_deref().and_then(parse_min_progress) {
                Some(rule) => parsed.min_progress = Some(rule),
                None => return Err("--min-progress takes BYTES/SECONDS or off".to_owned()),
            },
            "--deflate-memory" => match args.next().as_deref() {
                Some("shared") => parsed.deflate_memory = Some(None),
                Some(n @ ("9" | "12" | "15")) => {
                    parsed.deflate_memory = n.parse().ok().map(Some);
                }
                _ => return Err("--deflate-memory takes 15, 12, 9 or shared".to_owned()),
            },
            a if a.starts_with('-') => return Err(format!("unknown option {a}")),
            _ if addr.is_some() => return Err(format!("unexpected argument {arg}")),
            _ => addr = Some(arg),
        }
    }
    if let Some(addr) = addr {
        parsed.addr = addr;
    }
    Ok(parsed)
}

/// `BYTES/SECONDS` (seconds may have a fraction) or `off`.
fn parse_min_progress(arg: &str) -> Option<Option<MinProgress>> {
    if arg == "off" {
        return Some(None);
    }
    let (bytes, secs) = arg.split_once('/')?;
    let secs: f64 = secs
        .parse()
        .ok()
        .filter(|s: &f64| *s > 0.0 && s.is_finite())?;
    Some(Some(MinProgress {
        bytes: bytes.parse().ok()?,
        interval: Duration::from_millis((secs * 1000.0) as u64),
    }))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return;
    }
    let Args {
        addr,
        use_tokio,
        deflate,
        tls,
        memory_budget,
        min_progress,
        deflate_memory,
    } = match parse_args(args) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("echo_server: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Some(bytes) = memory_budget {
        let _ = BUDGET.set(MemoryBudget::new(bytes));
    }
    if let Some(rule) = min_progress {
        let _ = MIN_PROGRESS.set(rule);
    }
    if let Some(mode) = deflate_memory {
        let _ = DEFLATE_MEMORY.set(mode);
    }
    let tls = match tls.map(|(cert, key)| tls::Acceptor::from_pem_files(cert, key)) {
        None => None,
        Some(Ok(acceptor)) => Some(acceptor),
        Some(Err(e)) => {
            eprintln!("echo_server: --tls: {e}");
            std::process::exit(1);
        }
    };
    let result = if use_tokio {
        run_tokio(&addr, deflate, tls)
    } else {
        run_blocking(&addr, deflate, tls)
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

/// Marks the listening line of a `wss://` server.
fn scheme(tls: &Option<tls::Acceptor>) -> &'static str {
    if tls.is_some() {
        " (wss)"
    } else {
        ""
    }
}

fn run_blocking(addr: &str, deflate: bool, tls: Option<tls::Acceptor>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    eprintln!(
        "echo_server (blocking) listening on {}{}, permessage-deflate {}",
        listener.local_addr()?,
        scheme(&tls),
        if deflate { "on" } else { "off" }
    );
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let tls = tls.clone();
        std::thread::spawn(move || serve_blocking(stream, deflate, tls));
    }
    Ok(())
}

/// The TLS handshake (with `--tls`), then the WebSocket handshake.
fn accept_blocking(
    stream: TcpStream,
    options: &ServerOptions,
    tls: Option<tls::Acceptor>,
) -> Result<blocking::WebSocket<blocking::MaybeTls>, Error> {
    match tls {
        Some(acceptor) => acceptor.accept_with(stream, options),
        None => blocking::accept_with(blocking::MaybeTls::Plain(stream), options),
    }
}

fn serve_blocking(stream: TcpStream, deflate: bool, tls: Option<tls::Acceptor>) {
    let peer = stream.peer_addr().ok();
    let _ = stream.set_nodelay(true);
    let mut ws = match accept_blocking(stream, &options(deflate), tls) {
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

/// The TLS handshake (with `--tls`), then the WebSocket handshake.
async fn accept_tokio(
    stream: tokio::net::TcpStream,
    options: &ServerOptions,
    tls: Option<tls::Acceptor>,
) -> Result<wstokio::WebSocket<wstokio::MaybeTls>, Error> {
    match tls {
        Some(acceptor) => acceptor.accept_async_with(stream, options).await,
        None => wstokio::accept_with(wstokio::MaybeTls::Plain(stream), options).await,
    }
}

fn run_tokio(addr: &str, deflate: bool, tls: Option<tls::Acceptor>) -> std::io::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        eprintln!(
            "echo_server (tokio) listening on {}{}, permessage-deflate {}",
            listener.local_addr()?,
            scheme(&tls),
            if deflate { "on" } else { "off" }
        );
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let tls = tls.clone();
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                // Boxed: the handshake's state (a TLS handshake's included)
                // lives on the heap only while it runs, instead of in every
                // connection's task for its whole life. Its result is matched
                // without a name of its own: a named local would keep a
                // second WebSocket's room in the task across every later
                // await (about 1.3 KiB per connection), moved out or not:
                // so the block stays in the scrutinee.
                #[allow(clippy::blocks_in_conditions)]
                let mut ws = match {
                    let options = options(deflate);
                    Box::pin(accept_tokio(stream, &options, tls)).await
                } {
                    Ok(ws) => ws,
                    Err(e) => return log_rejected(Some(peer), &e),
                };
                eprintln!(
                    "accepted {peer} {} extensions={}",
                    ws.path(),
                    ws.extensions().unwrap_or("none")
                );
                // Pipelined: each echo is queued with `feed`, and what was
                // queued is written once no more input is ready, so a burst
                // of messages read at once is answered in one write.
                while let Some(msg) = next_or_flush(&mut ws).await {
                    let result = match msg {
                        Ok(msg @ (Message::Text(_) | Message::Binary(_))) => ws.feed(msg).await,
                        Ok(Message::Close(frame)) => {
                            eprintln!("closed {peer}: {}", show_close(frame.as_ref()));
                            Ok(())
                        }
                        Ok(_) => Ok(()),
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

/// The next message if one is ready; otherwise writes what `feed` queued
/// while waiting for one, and `None` once the connection is closed. (The
/// socket's own `next()` also writes queued output before it waits for
/// input; flushing here keeps the shape right for any `Stream + Sink`.)
async fn next_or_flush<W>(ws: &mut W) -> Option<Result<Message, Error>>
where
    W: futures_util::Stream<Item = Result<Message, Error>>
        + futures_util::Sink<Message, Error = Error>
        + Unpin,
{
    use std::pin::Pin;
    use std::task::Poll;
    std::future::poll_fn(|cx| match Pin::new(&mut *ws).poll_next(cx) {
        Poll::Ready(item) => Poll::Ready(item),
        Poll::Pending => match Pin::new(&mut *ws).poll_flush(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) | Poll::Pending => Poll::Pending,
        },
    })
    .await
}
