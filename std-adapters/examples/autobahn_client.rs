//! The standard Autobahn|Testsuite client driver: asks the fuzzing server for
//! the case count, runs every case echoing each message, then updates reports.
//!
//! ```text
//! cargo run --release -p wsproto-adapters --example autobahn_client -- ws://127.0.0.1:9001 [--tokio] [--no-deflate]
//! ```
//! Blocking by default; `--tokio` runs the same cases on the tokio driver.
//! Every case connection offers permessage-deflate (so the fuzzing server's
//! 12.x/13.x compression cases run compressed); `--no-deflate` offers nothing.
//! `scripts/conformance.sh` runs it in every combination.

use wsproto_adapters::{blocking, tokio as wstokio, ClientOptions, Error, Message};

const AGENT: &str = "wsproto";

fn options(deflate: bool) -> ClientOptions {
    let mut options = ClientOptions::default();
    if !deflate {
        options.deflate = None;
    }
    options.config.limits = wsproto_adapters::wsproto::Limits::for_message_size(64 << 20);
    options.config.limits.max_frame_payload = 64 << 20;
    options.config.limits.max_fragments = 1 << 20;
    options
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!(
            "usage: autobahn_client [ws://HOST:PORT] [--tokio] [--no-deflate]\n\
             runs every case of an Autobahn|Testsuite fuzzing server, then asks it to write the report"
        );
        return Ok(());
    }
    let use_tokio = args.iter().any(|a| a == "--tokio");
    let deflate = !args.iter().any(|a| a == "--no-deflate");
    let base = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let base = base.trim_end_matches('/');
    if use_tokio {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(run_tokio(base, deflate))
    } else {
        run_blocking(base, deflate)
    }
}

fn parse_count(message: Message) -> Result<u32, Error> {
    match message {
        Message::Text(t) => t
            .trim()
            .parse()
            .map_err(|_| Error::Url(format!("bad case count {t:?}"))),
        other => Err(Error::Url(format!("unexpected {other:?}"))),
    }
}

fn case_url(base: &str, case: u32) -> String {
    format!("{base}/runCase?case={case}&agent={AGENT}")
}

fn report(case: u32, result: Result<(), Error>) {
    match result {
        Ok(()) | Err(Error::ConnectionClosed) => {}
        Err(e) => eprintln!("case {case}: {e}"),
    }
}

fn run_blocking(base: &str, deflate: bool) -> Result<(), Error> {
    let mut ws = blocking::connect(&format!("{base}/getCaseCount"))?;
    let count = parse_count(ws.read()?)?;
    let _ = ws.close(1000, "");
    eprintln!("{count} cases (blocking)");
    for case in 1..=count {
        report(case, run_case_blocking(&case_url(base, case), deflate));
    }
    let mut ws = blocking::connect(&format!("{base}/updateReports?agent={AGENT}"))?;
    let _ = ws.close(1000, "");
    eprintln!("reports updated");
    Ok(())
}

fn run_case_blocking(url: &str, deflate: bool) -> Result<(), Error> {
    let mut ws = blocking::connect_with(url, &options(deflate))?;
    loop {
        if let msg @ (Message::Text(_) | Message::Binary(_)) = ws.read()? {
            ws.send(msg)?;
        }
    }
}

async fn run_tokio(base: &str, deflate: bool) -> Result<(), Error> {
    let mut ws = wstokio::connect(&format!("{base}/getCaseCount")).await?;
    let count = parse_count(ws.read().await?)?;
    let _ = ws.close(1000, "").await;
    eprintln!("{count} cases (tokio)");
    for case in 1..=count {
        report(case, run_case_tokio(&case_url(base, case), deflate).await);
    }
    let mut ws = wstokio::connect(&format!("{base}/updateReports?agent={AGENT}")).await?;
    let _ = ws.close(1000, "").await;
    eprintln!("reports updated");
    Ok(())
}

async fn run_case_tokio(url: &str, deflate: bool) -> Result<(), Error> {
    let mut ws = wstokio::connect_with(url, &options(deflate)).await?;
    loop {
        if let msg @ (Message::Text(_) | Message::Binary(_)) = ws.read().await? {
            ws.send(msg).await?;
        }
    }
}
