//! Echo server on axum: every path upgrades to a WebSocket that sends text
//! back as text and binary as binary, through the crate's axum extractor.
//! HTTP/1.1 upgrades and HTTP/2 extended CONNECTs (RFC 8441) are both
//! served: in the clear (HTTP/2 with prior knowledge), or over TLS with
//! `--tls CERT KEY` (PEM files), where ALPN offers `h2` and `http/1.1` and
//! the negotiated protocol picks hyper's HTTP/2 or HTTP/1.1 server.
//!
//! ```text
//! cargo run --release -p wsproto-adapters --features axum --example axum_echo -- 127.0.0.1:9002
//! cargo run --release -p wsproto-adapters --features axum --example axum_echo -- 127.0.0.1:9443 --tls cert.pem key.pem
//! ```
//!
//! Besides the echo, three routes:
//! - `GET /stats`: JSON listing every WebSocket accepted so far with the
//!   HTTP version its handshake came over and the TCP connection (the
//!   peer's address) it runs on, so a test can see several WebSockets
//!   sharing one HTTP/2 connection. Each one is also logged to stderr.
//! - `GET /h2test`: a page that opens four WebSockets at once to
//!   `/h2echo` on its own origin, checks an echo on each and reports in
//!   `window.h2result` (what the headless Chromium test reads).
//! - `/server-closes`: a WebSocket that echoes one message, then closes
//!   from the server's side (1000).

use axum::extract::{ConnectInfo, State};
use axum::http::{header, Uri, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use wsproto_adapters::axum::WebSocketUpgrade;
use wsproto_adapters::{tls, Message, ServerOptions};

/// The library's HTTP/2 windows ([`wsproto_adapters::axum::serve_tls`]),
/// which the flow-control test reasons about.
pub const STREAM_WINDOW: u32 = wsproto_adapters::axum::HTTP2_STREAM_WINDOW;

/// One accepted WebSocket, as `/stats` reports it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Accepted {
    /// In order of acceptance, from 1.
    pub id: usize,
    /// The request target (path and query).
    pub path: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// The peer address of the TCP connection it came on.
    pub connection: String,
}

/// Every WebSocket accepted so far.
#[derive(Clone, Default)]
pub struct Stats(Arc<Mutex<Vec<Accepted>>>);

impl Stats {
    fn record(&self, path: String, version: Version, connection: SocketAddr) -> Accepted {
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let accepted = Accepted {
            id: list.len() + 1,
            path,
            version: format!("{version:?}"),
            connection: connection.to_string(),
        };
        list.push(accepted.clone());
        accepted
    }

    /// A copy of the list.
    pub fn list(&self) -> Vec<Accepted> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn options() -> ServerOptions {
    let mut options = ServerOptions::default();
    options.config.limits = wsproto_adapters::wsproto::Limits::for_message_size(64 << 20);
    options.config.limits.max_frame_payload = 64 << 20;
    options.config.limits.max_fragments = 1 << 20;
    options
}

async fn echo(
    State(stats): State<Stats>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    version: Version,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    let path = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    ws.options(options()).on_upgrade(move |mut ws| async move {
        let server_closes = uri.path() == "/server-closes";
        let accepted = stats.record(path, version, peer);
        eprintln!(
            "axum_echo: websocket {} path {} over {} on connection {}",
            accepted.id, accepted.path, accepted.version, accepted.connection
        );
        while let Ok(message) = ws.read().await {
            let sent = match message {
                Message::Text(text) => ws.send_text(&text).await,
                Message::Binary(data) => ws.send_binary(&data).await,
                _ => continue,
            };
            if sent.is_err() {
                break;
            }
            if server_closes {
                let _ = ws.close(1000, "server closes").await;
                break;
            }
        }
    })
}

async fn stats_json(State(stats): State<Stats>) -> Response {
    let body = serde_json::json!({ "websockets": stats.list() }).to_string();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn h2test_page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

/// The routes, sharing `stats`. Requests need a `ConnectInfo<SocketAddr>`
/// extension (what [`serve`] and [`serve_tls`] provide).
pub fn app(stats: Stats) -> Router {
    Router::new()
        .route("/stats", get(stats_json))
        .route("/h2test", get(h2test_page))
        .fallback(echo)
        .with_state(stats)
}

/// Serves `app` in the clear (HTTP/1.1, or HTTP/2 with prior knowledge).
pub async fn serve(listener: TcpListener, app: Router) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

/// Serves `app` over TLS with ALPN `h2` and `http/1.1` (the library's
/// [`wsproto_adapters::axum::serve_tls`]), each connection's requests
/// carrying the peer's address for `/stats`. Runs until the process ends.
pub async fn serve_tls(listener: TcpListener, acceptor: tls::Acceptor, app: Router) {
    let for_peer = move |peer: SocketAddr| app.clone().layer(Extension(ConnectInfo(peer)));
    wsproto_adapters::axum::serve_tls(listener, acceptor, for_peer, std::future::pending()).await;
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("usage: axum_echo [ADDRESS] [--tls CERT KEY]   (default 127.0.0.1:9002)");
        return;
    }
    let mut addr = "127.0.0.1:9002".to_owned();
    let mut pem = None;
    let mut rest = args.into_iter();
    while let Some(arg) = rest.next() {
        if arg == "--tls" {
            match (rest.next(), rest.next()) {
                (Some(cert), Some(key)) => pem = Some((cert, key)),
                _ => {
                    eprintln!("axum_echo: --tls needs CERT and KEY (PEM files)");
                    std::process::exit(2);
                }
            }
        } else {
            addr = arg;
        }
    }
    let acceptor = match pem.map(|(cert, key)| tls::Acceptor::from_pem_files(cert, key)) {
        None => None,
        Some(Ok(acceptor)) => Some(acceptor),
        Some(Err(e)) => {
            eprintln!("axum_echo: {e}");
            std::process::exit(1);
        }
    };
    let listener = match TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("axum_echo: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    let app = app(Stats::default());
    match acceptor {
        Some(acceptor) => {
            eprintln!("axum_echo listening on {addr} (TLS, ALPN h2 and http/1.1)");
            serve_tls(listener, acceptor, app).await;
        }
        None => {
            eprintln!("axum_echo listening on {addr}");
            if let Err(e) = serve(listener, app).await {
                eprintln!("axum_echo: {e}");
                std::process::exit(1);
            }
        }
    }
}

/// The `/h2test` page: four WebSockets opened together, one echo each.
const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>h2test</title>
<pre id="log">running</pre>
<script>
"use strict";
const run = new URLSearchParams(location.search).get("run") || "x";
const count = 4;
function one(n) {
  return new Promise((resolve, reject) => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/h2echo?run=${run}&n=${n}`);
    const text = `socket ${n} \u2713`;
    ws.onopen = () => ws.send(text);
    ws.onmessage = (e) => {
      if (e.data !== text) { reject(new Error(`socket ${n}: echo ${e.data}`)); return; }
      ws.close(1000, "page done");
    };
    ws.onerror = () => reject(new Error(`socket ${n}: error`));
    ws.onclose = (e) => e.code === 1000 && e.wasClean
      ? resolve({ n, code: e.code, extensions: ws.extensions })
      : reject(new Error(`socket ${n}: closed ${e.code}`));
  });
}
const nav = performance.getEntriesByType("navigation")[0];
Promise.all(Array.from({ length: count }, (_, n) => one(n))).then(
  (sockets) => { window.h2result = { ok: true, sockets, page: nav && nav.nextHopProtocol }; },
  (e) => { window.h2result = { ok: false, error: String(e), page: nav && nav.nextHopProtocol }; },
).finally(() => { document.getElementById("log").textContent = JSON.stringify(window.h2result); });
</script>
"#;
