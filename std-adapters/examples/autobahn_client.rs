//! The standard Autobahn|Testsuite client driver: asks the fuzzing server for
//! the case count, runs every case echoing each message, then updates reports.
//!
//! ```text
//! cargo run --release -p wsproto-adapters --example autobahn_client -- ws://127.0.0.1:9001 [--no-deflate]
//! ```
//! Every case connection offers permessage-deflate (so the fuzzing server's
//! 12.x/13.x compression cases run compressed); `--no-deflate` offers nothing.

use wsproto_adapters::{blocking, ClientOptions, Error, Message};

const AGENT: &str = "wsproto";

fn options(deflate: bool) -> ClientOptions {
    let mut options = ClientOptions::default();
    if !deflate {
        options.deflate = None;
    }
    options.config.limits.max_message_size = 64 << 20;
    options.config.limits.max_frame_payload = 64 << 20;
    options.config.limits.max_fragments = 1 << 20;
    options
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let deflate = !args.iter().any(|a| a == "--no-deflate");
    let base = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let base = base.trim_end_matches('/');
    let mut ws = blocking::connect(&format!("{base}/getCaseCount"))?;
    let count: u32 = match ws.read()? {
        Message::Text(t) => t
            .trim()
            .parse()
            .map_err(|_| Error::Url(format!("bad case count {t:?}")))?,
        other => return Err(Error::Url(format!("unexpected {other:?}"))),
    };
    let _ = ws.close(1000, "");
    eprintln!("{count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={AGENT}");
        match run_case(&url, deflate) {
            Ok(()) | Err(Error::ConnectionClosed) => {}
            Err(e) => eprintln!("case {case}: {e}"),
        }
    }
    let mut ws = blocking::connect(&format!("{base}/updateReports?agent={AGENT}"))?;
    let _ = ws.close(1000, "");
    eprintln!("reports updated");
    Ok(())
}

fn run_case(url: &str, deflate: bool) -> Result<(), Error> {
    let mut ws = blocking::connect_with(url, &options(deflate))?;
    loop {
        match ws.read()? {
            msg @ (Message::Text(_) | Message::Binary(_)) => ws.send(msg)?,
            Message::Close(_) => {}
            _ => {}
        }
    }
}
