//! Interactive client: lines from stdin go out as text, received messages are
//! printed one per line; stdin EOF closes the connection cleanly.
//!
//! ```text
//! cargo run --release -p wsproto-adapters --example client -- ws://HOST:PORT/path
//! ```

use std::io::{BufRead, Write};
use wsproto_adapters::{tokio as wstokio, CloseFrame, Error, Message};

#[tokio::main]
async fn main() {
    const USAGE: &str = "usage: client ws://HOST:PORT/path\n\
        lines from stdin go out as text; received messages are printed; EOF closes";
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    if url == "-h" || url == "--help" {
        println!("{USAGE}");
        return;
    }
    let mut ws = match wstokio::connect(&url).await {
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
