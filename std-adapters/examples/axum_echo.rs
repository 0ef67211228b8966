//! Echo server on axum: every path upgrades to a WebSocket that sends text
//! back as text and binary as binary, through the crate's axum extractor.
//! HTTP/1.1 upgrades and HTTP/2 extended CONNECTs (cleartext, prior
//! knowledge) are both served.
//!
//! ```text
//! cargo run --release -p wsproto-adapters --features axum --example axum_echo -- 127.0.0.1:9002
//! ```

use axum::response::Response;
use axum::Router;
use wsproto_adapters::axum::WebSocketUpgrade;
use wsproto_adapters::{Message, ServerOptions};

fn options() -> ServerOptions {
    let mut options = ServerOptions::default();
    options.config.limits = wsproto_adapters::wsproto::Limits::for_message_size(64 << 20);
    options.config.limits.max_frame_payload = 64 << 20;
    options.config.limits.max_fragments = 1 << 20;
    options
}

async fn echo(ws: WebSocketUpgrade) -> Response {
    ws.options(options()).on_upgrade(|mut ws| async move {
        while let Ok(message) = ws.read().await {
            let sent = match message {
                Message::Text(text) => ws.send_text(&text).await,
                Message::Binary(data) => ws.send_binary(&data).await,
                _ => Ok(()),
            };
            if sent.is_err() {
                break;
            }
        }
    })
}

#[tokio::main]
async fn main() {
    let arg = std::env::args().nth(1);
    if matches!(arg.as_deref(), Some("-h" | "--help")) {
        println!("usage: axum_echo [ADDRESS]   (default 127.0.0.1:9002)");
        return;
    }
    let addr = arg.unwrap_or_else(|| "127.0.0.1:9002".to_owned());
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("axum_echo: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("axum_echo listening on {addr}");
    let app = Router::new().fallback(echo);
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("axum_echo: {e}");
        std::process::exit(1);
    }
}
