//! Interactive client: lines from stdin go out as text, received messages are
//! printed one per line; stdin EOF closes the connection cleanly.
//!
//! ```text
//! cargo run --release -p wsproto-adapters --example client -- ws://HOST:PORT/path
//! cargo run --release -p wsproto-adapters --example client -- wss://HOST:PORT/path [--ca CERT.pem]
//! ```
//! `wss://` verifies the server against the web's roots (webpki-roots), or
//! with `--ca` against the certificates in that PEM file only (a private CA,
//! a self-signed test certificate).

use std::io::{BufRead, Write};
use wsproto_adapters::{tls, tokio as wstokio, ClientOptions, CloseFrame, Error, Message};

const USAGE: &str = "usage: client URL [--ca CERT.pem]\n  \
    URL            ws://HOST:PORT/path or wss://HOST:PORT/path\n  \
    --ca CERT.pem  for wss://, trust only the certificates in this PEM file\n\
    lines from stdin go out as text; received messages are printed; EOF closes";

/// The URL and the `--ca` file, or what is wrong with the command line.
fn parse_args() -> Result<(String, Option<String>), String> {
    let mut url = None;
    let mut ca = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--ca" => ca = Some(args.next().ok_or("--ca needs a file")?),
            a if a.starts_with('-') => return Err(format!("unknown option {a}")),
            _ if url.is_some() => return Err(format!("unexpected argument {arg}")),
            _ => url = Some(arg),
        }
    }
    Ok((url.ok_or("missing URL")?, ca))
}

/// `--ca`: a TLS client configuration trusting that file's certificates.
fn trusting(path: &str) -> Result<std::sync::Arc<tls::ClientConfig>, Error> {
    let named =
        |e: std::io::Error| Error::Io(std::io::Error::new(e.kind(), format!("{path}: {e}")));
    let pem = std::fs::read(path).map_err(named)?;
    tls::client_config_from_pem(&pem).map_err(|e| match e {
        Error::Io(e) => named(e),
        e => e,
    })
}

async fn connect(
    url: &str,
    ca: Option<&str>,
) -> Result<wstokio::WebSocket<wstokio::MaybeTls>, Error> {
    match ca {
        Some(ca) => tls::connect_async(url, &ClientOptions::default(), trusting(ca)?).await,
        None => wstokio::connect(url).await,
    }
}

#[tokio::main]
async fn main() {
    if std::env::args().skip(1).any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return;
    }
    let (url, ca) = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("client: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let mut ws = match connect(&url, ca.as_deref()).await {
        Ok(ws) => ws,
        Err(e) => {
            eprintln!("connect {url}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("connected to {url}");
    let (lines_tx, mut lines) = tokio::sync::mpsc::channel::<String>(64);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines_tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some(line) => {
                    if let Err(e) = ws.send_text(&line).await {
                        eprintln!("send: {e}");
                        std::process::exit(1);
                    }
                }
                None => {
                    // Start closing, but keep printing what arrives until the
                    // peer's Close completes the handshake.
                    let close = Message::Close(Some(CloseFrame { code: 1000, reason: String::new() }));
                    if let Err(e) = ws.send(close).await {
                        eprintln!("close: {e}");
                        std::process::exit(1);
                    }
                    loop {
                        match ws.read().await {
                            Ok(msg) => show(msg),
                            Err(Error::ConnectionClosed) => return,
                            Err(e) => {
                                eprintln!("error: {e}");
                                std::process::exit(1);
                            }
                        }
                    }
                }
            },
            msg = ws.read() => match msg {
                Ok(msg) => show(msg),
                Err(Error::ConnectionClosed) => return,
                Err(e) => {
                    eprintln!("error: {e}");
                    std::process::exit(1);
                }
            },
        }
    }
}

fn show(msg: Message) {
    match msg {
        Message::Text(t) => print_line(&t),
        Message::Binary(b) => print_line(&format!("<binary {} bytes>", b.len())),
        Message::Close(Some(frame)) => eprintln!("closed: {} {:?}", frame.code, frame.reason),
        Message::Close(None) => eprintln!("closed: no code"),
        _ => {}
    }
}

fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
