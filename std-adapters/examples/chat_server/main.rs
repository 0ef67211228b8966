//! Chat room on axum: the page at `/` (with `/chat.css` and `/chat.js`), the
//! WebSocket at `/ws` through the crate's axum extractor.
//!
//! ```text
//! cargo run --release -p wsproto-adapters --example chat_server -- 127.0.0.1:8080
//! cargo run --release -p wsproto-adapters --example chat_server -- 127.0.0.1:8081 --redis redis://127.0.0.1:6379/
//! cargo run --release -p wsproto-adapters --example chat_server -- 127.0.0.1:8443 --tls cert.pem key.pem
//! ```
//! With `--tls` the page and its WebSocket share one HTTP/2 connection
//! (RFC 8441: the socket is a CONNECT stream), or use HTTP/1.1 when the
//! browser does not agree on `h2`.
//! Pages and server speak JSON with a `type` field (see `protocol.rs`); the
//! server checks everything a page sends and answers mistakes with an
//! `error` message. Each page has a bounded send queue: a page too slow to
//! drain it is closed with 1008 and never holds up the others. The example
//! needs the crate's `axum` feature, which the crate's dev-dependency on
//! itself turns on for examples, so the command above names no feature. With
//! `--redis URL` several processes serve one room (see `room.rs`).
//!
//! All pages share one memory budget (`--memory-budget BYTES`, 64 MiB by
//! default): the messages being received and the messages being sent, over
//! every page together. A page whose buffers would take more than is left
//! is closed with 1013 (try again later); the others carry on. A page that
//! starts a message and then trickles it slower than 4 KiB per 10 s (or
//! `--min-progress BYTES/SECONDS`) is closed with 1008: chat messages are at
//! most 64 KiB and arrive in one go on any real link, so a stalled one holds
//! its budget share for 20 s at most instead of until the idle timers.
//!
//! Memory after a peak: glibc keeps freed memory in one arena per runtime
//! thread, so after a thousand pages come and go RSS creeps up for several
//! rounds (20 → 24 MiB over four rounds in `interop/node/chat_load_test.js`);
//! with `MALLOC_ARENA_MAX=1` in the environment it stays at about 20 MiB.

mod protocol;
mod room;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use protocol::{Event, Incoming, Member};
use room::{Hub, JoinError, Room};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use wsproto_adapters::axum::WebSocketUpgrade;
use wsproto_adapters::upgrade::UpgradedWebSocket;
use wsproto_adapters::wsproto::MinProgress;
use wsproto_adapters::{Message, ServerOptions};

const PAGE: &str = include_str!("chat.html");
const STYLE: &str = include_str!("chat.css");
const SCRIPT: &str = include_str!("chat.js");

/// A page that has not joined within this long is closed.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// A send that the page's TCP window does not take within this long means
/// the page stopped reading: it is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest WebSocket message; above it the connection closes with 1009.
const MAX_FRAME: u64 = 64 * 1024;
/// Memory for the buffers of all pages together, by default: a thousand
/// pages each mid-way through a largest message and its echo.
const DEFAULT_MEMORY_BUDGET: usize = 64 << 20;
/// A message started must move by this much, by default: 4 KiB per 10 s
/// (a largest message at this floor takes 160 s; any real link sends it in
/// one go). Slower is closed with 1008.
const DEFAULT_MIN_PROGRESS: MinProgress = MinProgress {
    bytes: 4096,
    interval: wsproto_adapters::wsproto::Duration::from_secs(10),
};

const USAGE: &str = "\
usage: chat_server [ADDRESS] [--redis URL] [--memory-budget BYTES] [--min-progress BYTES/SECONDS|off] [--tls CERT KEY]

Serves a chat room: open http://ADDRESS/ in a browser.

  ADDRESS       where to listen (default 127.0.0.1:8080)
  --redis URL   share one room between several chat_server processes through
                Redis (pub/sub for events, a list for the last 100 messages),
                e.g. redis://127.0.0.1:6379/
  --memory-budget BYTES
                memory for the message buffers of all pages together
                (default 64 MiB); a page that needs more is closed with 1013
  --min-progress BYTES/SECONDS
                a page that started a message must send at least BYTES of it
                every SECONDS (default 4096/10); slower is closed with 1008;
                `off` switches the check off
  --tls CERT KEY
                serve https:// and wss:// with this PEM certificate chain and
                key; ALPN offers h2 and http/1.1, and browsers then open the
                WebSocket as a stream of the page's HTTP/2 connection (RFC 8441)
  -h, --help    print this help";

struct App {
    room: Arc<Room>,
    hub: Arc<Hub>,
    server: String,
    sequence: AtomicU64,
    shutdown: watch::Receiver<bool>,
    /// Every page's options; clones share one memory budget.
    options: ServerOptions,
}

struct Args {
    addr: String,
    redis: Option<String>,
    memory_budget: usize,
    /// `--min-progress`: `None` for `off`.
    min_progress: Option<MinProgress>,
    /// PEM files: certificate chain, private key.
    tls: Option<(String, String)>,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut addr = None;
    let mut redis = None;
    let mut memory_budget = DEFAULT_MEMORY_BUDGET;
    let mut min_progress = Some(DEFAULT_MIN_PROGRESS);
    let mut tls = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--redis" => {
                redis = Some(args.next().ok_or("--redis needs a URL")?);
            }
            "--memory-budget" => {
                memory_budget = args
                    .next()
                    .and_then(|b| b.parse().ok())
                    .ok_or("--memory-budget needs a byte count")?;
            }
            "--min-progress" => {
                min_progress = parse_min_progress(&args.next().unwrap_or_default())
                    .ok_or("--min-progress needs BYTES/SECONDS or off")?;
            }
            "--tls" => match (args.next(), args.next()) {
                (Some(cert), Some(key)) => tls = Some((cert, key)),
                _ => return Err("--tls needs two files: CERT KEY".to_owned()),
            },
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            _ if addr.is_none() => addr = Some(arg),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    Ok(Some(Args {
        addr: addr.unwrap_or_else(|| "127.0.0.1:8080".to_owned()),
        redis,
        memory_budget,
        min_progress,
        tls,
    }))
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
        interval: wsproto_adapters::wsproto::Duration::from_millis((secs * 1000.0) as u64),
    }))
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => return println!("{USAGE}"),
        Err(e) => {
            eprintln!("chat_server: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args).await {
        eprintln!("chat_server: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let acceptor = match &args.tls {
        Some((cert, key)) => Some(
            wsproto_adapters::tls::Acceptor::from_pem_files(cert, key)
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(&args.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    // Unique enough to tell processes apart in message ids and presence.
    let server = format!(
        "{}-{}",
        std::process::id(),
        protocol::now_ms() % 1_000_000_007
    );
    let hub = Arc::new(Hub::default());
    let room = match &args.redis {
        Some(url) => Room::redis(hub.clone(), url, server.clone()).await?,
        None => Arc::new(Room::local(hub.clone())),
    };
    tokio::spawn(room::announce_online(room.clone()));
    let (stop, shutdown) = watch::channel(false);
    let mut options = ServerOptions::default().with_memory_budget(args.memory_budget);
    options.config.limits.max_message_size = MAX_FRAME;
    options.config.min_progress = args.min_progress;
    let app = Arc::new(App {
        room: room.clone(),
        hub,
        server,
        sequence: AtomicU64::new(0),
        shutdown,
        options,
    });
    let router = Router::new()
        .route("/", get(page))
        .route("/chat.css", get(style))
        .route("/chat.js", get(script))
        .route("/ws", {
            let app = app.clone();
            let handler =
                move |ws: WebSocketUpgrade, version: axum::http::Version| chat(ws, version, app);
            // GET for HTTP/1.1 upgrades, CONNECT for HTTP/2 streams (RFC 8441).
            get(handler.clone()).connect(handler)
        });
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    match &args.redis {
        Some(url) => {
            eprintln!("chat_server listening on {scheme}://{local}/ (room shared through {url})")
        }
        None => eprintln!("chat_server listening on {scheme}://{local}/"),
    }
    let stopping = async move {
        stop_signal().await;
        eprintln!("chat_server: shutting down");
    };
    match acceptor {
        // HTTP/2 (WebSockets as streams, RFC 8441) and HTTP/1.1 over TLS.
        Some(acceptor) => {
            let for_peer = move |_| router.clone();
            wsproto_adapters::axum::serve_tls(listener, acceptor, for_peer, stopping).await;
        }
        None => axum::serve(listener, router)
            .with_graceful_shutdown(stopping)
            .await
            .map_err(|e| e.to_string())?,
    }
    // The HTTP side has stopped; close the WebSockets (1001): each says it
    // left. Wait for them (bounded), then drop what is left.
    let _ = stop.send(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while !app.hub.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    room.shutdown().await;
    Ok(())
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn chat(ws: WebSocketUpgrade, version: axum::http::Version, app: Arc<App>) -> Response {
    ws.options(app.options.clone())
        .on_upgrade(move |ws| async move { session(ws, version, app).await })
}

/// Why a session ended.
enum End {
    /// The page closed (or the connection broke): nothing more to send.
    Gone(String),
    /// We close with this code and reason.
    Close(u16, &'static str, String),
}

/// One page's socket, and the signal that the room dropped it.
struct Page {
    ws: UpgradedWebSocket,
    kick: Arc<Notify>,
}

/// Sends `text`, giving up when the page has stopped reading: the send
/// times out, or the room dropped the page while the send was stuck. A send
/// given up half-way leaves no room for a close frame: the connection is
/// simply dropped.
async fn send(page: &mut Page, text: &str) -> Result<(), End> {
    tokio::select! {
        sent = tokio::time::timeout(SEND_TIMEOUT, page.ws.send_text(text)) => match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(End::Gone(e.to_string())),
            Err(_) => Err(End::Gone("dropped: not reading (send timed out)".to_owned())),
        },
        () = page.kick.notified() => Err(End::Gone("dropped: send queue full while a send was stuck".to_owned())),
    }
}

async fn session(ws: UpgradedWebSocket, version: axum::http::Version, app: Arc<App>) {
    let (id, mut rx, kick) = app.hub.connect();
    let mut page = Page { ws, kick };
    let mut member: Option<Member> = None;
    let mut shutdown = app.shutdown.clone();
    let joined_by = tokio::time::Instant::now() + JOIN_TIMEOUT;
    eprintln!(
        "page {id} connected over {version:?} (extensions: {})",
        page.ws.extensions().unwrap_or("none")
    );
    let end = loop {
        let join_deadline = async {
            if member.is_none() {
                tokio::time::sleep_until(joined_by).await
            } else {
                std::future::pending().await
            }
        };
        tokio::select! {
            outgoing = rx.recv() => match outgoing {
                Some(text) => {
                    if let Err(end) = send(&mut page, &text).await {
                        break end;
                    }
                }
                None => break End::Close(1008, "too slow", "dropped: send queue full".to_owned()),
            },
            incoming = page.ws.read() => match incoming {
                Ok(Message::Text(text)) => {
                    if let Err(end) = handle(&mut page, &app, id, &mut member, &text).await {
                        break end;
                    }
                }
                Ok(Message::Binary(_)) => {
                    let error = protocol::error_json("binary", "binary messages are not accepted; send JSON text");
                    if let Err(end) = send(&mut page, &error).await {
                        break end;
                    }
                }
                Ok(Message::Close(frame)) => break End::Gone(match frame {
                    Some(f) => format!("closed by the page: {} {:?}", f.code, f.reason),
                    None => "closed by the page".to_owned(),
                }),
                Ok(_) => {}
                Err(e) => break End::Gone(e.to_string()),
            },
            () = page.kick.notified() => break End::Close(1008, "too slow", "dropped: send queue full".to_owned()),
            () = join_deadline => break End::Close(1008, "join first", "never joined".to_owned()),
            _ = shutdown.changed() => break End::Close(1001, "server restarting", "server shutting down".to_owned()),
        }
    };
    app.hub.disconnect(id);
    // Announced before the close handshake, which a dead page can stretch.
    if let Some(member) = &member {
        if let Err(e) = app.room.leave(id, member.clone()).await {
            eprintln!("chat_server: {e}");
        }
    }
    let why = match end {
        End::Gone(why) => why,
        End::Close(code, reason, why) => {
            // Bounded: a page that does not read cannot take the close either.
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                if page.ws.close(code, reason).await.is_ok() {
                    while page.ws.read().await.is_ok() {}
                }
            })
            .await;
            why
        }
    };
    match member {
        Some(member) => eprintln!("page {id} ({}) left: {why}", member.name),
        None => eprintln!("page {id} left before joining: {why}"),
    }
}

/// Acts on one text message from a page. `Err` ends the session.
async fn handle(
    ws: &mut Page,
    app: &App,
    id: u64,
    member: &mut Option<Member>,
    text: &str,
) -> Result<(), End> {
    let incoming = match protocol::parse(text) {
        Ok(incoming) => incoming,
        Err(error) => return send(ws, &error).await,
    };
    match (incoming, member.as_ref()) {
        (Incoming::Join { name, client }, None) => {
            let joined = Member { name, client };
            let history = match app.room.join(id, joined.clone()).await {
                Ok(history) => history,
                Err(JoinError::NameTaken) => {
                    // The page stays connected and may join under another name.
                    eprintln!("page {id} refused: name {:?} is taken", joined.name);
                    let error = protocol::error_json(
                        "name_taken",
                        format!("the name {:?} is taken; choose another one", joined.name),
                    );
                    return send(ws, &error).await;
                }
                Err(JoinError::Unavailable(e)) => {
                    eprintln!("chat_server: {e}");
                    let error = protocol::error_json(
                        "unavailable",
                        "the room is unavailable; try again shortly",
                    );
                    send(ws, &error).await?;
                    return Err(End::Close(1013, "try again later", e));
                }
            };
            let welcome =
                protocol::welcome_json(&joined.name, &app.server, &history).map_err(End::Gone)?;
            send(ws, &welcome).await?;
            eprintln!("page {id} joined as {:?}", joined.name);
            *member = Some(joined);
            Ok(())
        }
        (Incoming::Join { .. }, Some(_)) => {
            send(
                ws,
                &protocol::error_json("already_joined", "this page has already joined"),
            )
            .await
        }
        (Incoming::Message { .. }, None) => {
            send(
                ws,
                &protocol::error_json("not_joined", "send a join message with your name first"),
            )
            .await
        }
        (Incoming::Message { text, id: label }, Some(from)) => {
            let sequence = app.sequence.fetch_add(1, Ordering::Relaxed);
            let event = Event::Message {
                id: format!("{}-{sequence}", app.server),
                name: from.name.clone(),
                client: from.client.clone(),
                text,
                time: protocol::now_ms(),
                label,
            };
            if let Err(e) = app.room.publish(&event).await {
                eprintln!("chat_server: {e}");
                let error = protocol::error_json(
                    "unavailable",
                    "the room is unavailable; message not sent",
                );
                return send(ws, &error).await;
            }
            Ok(())
        }
    }
}
