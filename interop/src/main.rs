//! `wsproto-interop`: drives wsproto's blocking client against echo servers nobody here wrote.
//!
//! ```text
//! wsproto-interop client-matrix ws://127.0.0.1:PORT/ [--deflate]
//! wsproto-interop client-matrix wss://localhost:PORT/ --ca CERT.pem [--deflate]
//! ```
//!
//! `--ca` runs the matrix over TLS (the adapters' built-in `wss://`), trusting only the
//! certificates in that PEM file.
//!
//! Every connection offers permessage-deflate (the adapters' default). With `--deflate` each one
//! must have agreed on it (the peer server runs with compression on), so the whole matrix runs
//! compressed both ways; without it the peer must have declined (plain frames, the fallback).
//!
//! The peer is an echo server (Node `ws` or Python `websockets`, see `interop/node` and
//! `interop/python`) that echoes text as text and binary as binary, and answers a text message
//! `close:NNNN` by closing with code NNNN. The matrix checks text, binary, empty messages, 1 MiB
//! messages, fragmented messages (sent with `send_fragment`, with UTF-8 code points split across
//! fragments and a ping between fragments), ping → pong, subprotocol negotiation, a close started
//! by the peer (`close:4001` → the peer closes with 4001), and a close started by us (4000 →
//! the peer echoes 4000), both through `send(Message::Close(..))` and through `close()`.
//!
//! It prints `ok <check>` or `FAIL <check>: <why>` per check and exits 1 if any check failed.
//! A failed check drops its connection; the next check connects afresh, so one failure does not
//! cascade. Every check has a deadline (`STEP_TIMEOUT_SECS`, default 15 s): a watchdog thread
//! then shuts the check's socket down, so a silent peer fails that check instead of hanging the
//! run (see [`Watchdog`]).

use std::net::{Shutdown, TcpStream};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use wsproto_adapters::blocking::{self, MaybeTls, WebSocket};
use wsproto_adapters::wsproto::MessageKind;
use wsproto_adapters::{tls, ClientOptions, CloseFrame, Error, Message};

/// The connection type every check works on.
type Ws = WebSocket<MaybeTls>;

/// A check's outcome: `Err` carries a human-readable reason.
type CheckResult = Result<(), String>;

/// The subprotocol offered in the `subprotocol` check; both peer servers pick the first offered.
const PROTOCOL: &str = "wsproto-interop.v1";

/// `--ca`: the TLS configuration every `wss://` connection uses.
static TRUST: OnceLock<Arc<tls::ClientConfig>> = OnceLock::new();

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--ca") {
        let Some(file) = args.get(at + 1).cloned() else {
            eprintln!("--ca needs a PEM file");
            return ExitCode::from(2);
        };
        args.drain(at..at + 2);
        let config = std::fs::read(&file)
            .map_err(Error::Io)
            .and_then(|pem| tls::client_config_from_pem(&pem));
        match config {
            Ok(config) => {
                TRUST.get_or_init(|| config);
            }
            Err(e) => {
                eprintln!("--ca {file}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    match args.as_slice() {
        [cmd, url] if cmd == "client-matrix" => client_matrix(url, false),
        [cmd, url, flag] if cmd == "client-matrix" && flag == "--deflate" => {
            client_matrix(url, true)
        }
        _ => {
            eprintln!(
                "usage: wsproto-interop client-matrix ws[s]://HOST:PORT/path [--ca CERT.pem] [--deflate]"
            );
            ExitCode::from(2)
        }
    }
}

/// What the watchdog watches: the running check, since when, and its socket.
#[derive(Default)]
struct Watched {
    /// The running check and when it started.
    check: Option<(String, Instant)>,
    /// A handle on the running check's socket, shut down when the check overruns.
    socket: Option<TcpStream>,
    /// Whether the running check overran and its socket was shut down.
    fired: bool,
}

/// Ends checks that overrun: a blocking read from a silent peer would otherwise hang forever.
///
/// When a check has run for `limit`, its socket is shut down, so the blocked read returns and
/// the check fails; if it is still running 10 s later (a hang in our own code), the process
/// exits.
struct Watchdog {
    /// Shared with the watchdog thread.
    watched: Arc<Mutex<Watched>>,
    /// How long one check may run.
    limit: Duration,
}

impl Watchdog {
    /// Starts the watchdog thread.
    fn start(limit: Duration) -> Watchdog {
        let watched = Arc::new(Mutex::new(Watched::default()));
        let seen = Arc::clone(&watched);
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(100));
            let mut w = seen.lock().unwrap_or_else(|e| e.into_inner());
            let Some((name, started)) = w.check.clone() else {
                continue;
            };
            let elapsed = started.elapsed();
            if elapsed > limit && !w.fired {
                w.fired = true;
                if let Some(socket) = w.socket.take() {
                    let _ = socket.shutdown(Shutdown::Both);
                }
            }
            if elapsed > limit + Duration::from_secs(10) {
                println!(
                    "FAIL {name}: still running {elapsed:?} after it started (a hang in our code)"
                );
                println!("wsproto client matrix: aborted by the watchdog");
                std::process::exit(1);
            }
        });
        Watchdog { watched, limit }
    }

    /// Locks the shared state.
    fn lock(&self) -> std::sync::MutexGuard<'_, Watched> {
        self.watched.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the start (`Some`) or the end (`None`) of a check.
    fn set(&self, check: Option<&str>) {
        let mut w = self.lock();
        w.check = check.map(|c| (c.to_owned(), Instant::now()));
        w.socket = None;
        w.fired = false;
    }

    /// Watches this socket for the running check.
    fn arm(&self, socket: &TcpStream) {
        self.lock().socket = socket.try_clone().ok();
    }

    /// Explains a failure: says so when the watchdog cut the check short.
    fn explain(&self, why: String) -> String {
        if self.lock().fired {
            format!("timed out after {:?} ({why})", self.limit)
        } else {
            why
        }
    }
}

/// The one watchdog, started by [`client_matrix`].
static WATCHDOG: OnceLock<Watchdog> = OnceLock::new();

/// Whether every connection must have agreed on permessage-deflate (set by [`client_matrix`]).
static EXPECT_DEFLATE: OnceLock<bool> = OnceLock::new();

/// Runs every check against the echo server at `url`.
fn client_matrix(url: &str, deflate: bool) -> ExitCode {
    EXPECT_DEFLATE.get_or_init(|| deflate);
    match connect(url, &ClientOptions::default()) {
        Ok(mut ws) => {
            println!("ok negotiated extensions: {:?}", ws.extensions());
            let _ = ws.close(1000, "");
        }
        Err(why) => {
            println!("FAIL negotiation: {why}");
            println!("wsproto client matrix: 1 check(s) failed: negotiation");
            return ExitCode::FAILURE;
        }
    }
    let limit = std::env::var("STEP_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(15), Duration::from_secs);
    let dog = WATCHDOG.get_or_init(|| Watchdog::start(limit));
    let mut ws: Option<Ws> = None;
    let mut failures: Vec<&str> = Vec::new();

    /// A check that runs on the shared connection.
    type OnConn = fn(&mut Ws) -> CheckResult;
    let on_conn: [(&str, OnConn); 11] = [
        ("text", check_text),
        ("binary", check_binary),
        ("empty text", check_empty_text),
        ("empty binary", check_empty_binary),
        ("1 MiB binary", check_mib_binary),
        ("1 MiB text", check_mib_text),
        (
            "fragmented text (send_fragment, code points split)",
            check_fragmented_text,
        ),
        ("fragmented binary (send_fragment)", check_fragmented_binary),
        ("ping between fragments", check_ping_between_fragments),
        ("ping -> pong", check_ping),
        ("peer closes with 4001 on request", check_peer_close),
    ];
    for (name, check) in on_conn {
        dog.set(Some(name));
        let result = match ws.take() {
            Some(conn) => Ok(conn),
            None => connect(url, &ClientOptions::default()),
        }
        .and_then(|mut conn| {
            dog.arm(conn.get_ref());
            check(&mut conn)?;
            Ok(conn)
        });
        match result {
            Ok(conn) => {
                println!("ok {name}");
                ws = Some(conn);
            }
            Err(why) => {
                println!("FAIL {name}: {}", dog.explain(why));
                failures.push(name);
            }
        }
    }
    // The peer-close check leaves a closed connection behind; the rest start afresh.
    drop(ws);

    /// A check that makes its own connection.
    type OwnConn = fn(&str) -> CheckResult;
    let own_conn: [(&str, OwnConn); 3] = [
        (
            "reconnect, send close 4000, 4000 echoed",
            check_our_close_frame,
        ),
        (
            "reconnect, close(4000) completes the handshake",
            check_our_close_call,
        ),
        ("subprotocol negotiated", check_subprotocol),
    ];
    for (name, check) in own_conn {
        dog.set(Some(name));
        match check(url) {
            Ok(()) => println!("ok {name}"),
            Err(why) => {
                println!("FAIL {name}: {}", dog.explain(why));
                failures.push(name);
            }
        }
    }
    dog.set(None);

    if failures.is_empty() {
        let mode = if deflate { " (permessage-deflate)" } else { "" };
        println!("wsproto client matrix{mode}: all checks passed");
        ExitCode::SUCCESS
    } else {
        println!(
            "wsproto client matrix: {} check(s) failed: {}",
            failures.len(),
            failures.join("; ")
        );
        ExitCode::FAILURE
    }
}

/// Connects, checks the negotiated extension and hands the socket to the watchdog.
fn connect(url: &str, options: &ClientOptions) -> Result<Ws, String> {
    let ws = match TRUST.get() {
        Some(trust) => tls::connect(url, options, trust.clone()),
        None => blocking::connect_with(url, options),
    }
    .map_err(|e| format!("connect to {url}: {e}"))?;
    let expected = EXPECT_DEFLATE.get().copied().unwrap_or(false);
    if ws.deflate().is_some() != expected {
        return Err(format!(
            "negotiated extensions {:?}, permessage-deflate expected: {expected}",
            ws.extensions()
        ));
    }
    if let Some(dog) = WATCHDOG.get() {
        dog.arm(ws.get_ref());
    }
    Ok(ws)
}

/// Describes a message briefly, for failure output.
fn describe(msg: &Message) -> String {
    match msg {
        Message::Text(t) => format!("text message of {} bytes", t.len()),
        Message::Binary(b) => format!("binary message of {} bytes", b.len()),
        Message::Ping(p) => format!("ping {p:02x?}"),
        Message::Pong(p) => format!("pong {p:02x?}"),
        Message::Close(None) => "close without a code".to_owned(),
        Message::Close(Some(f)) => format!("close {} {:?}", f.code, f.reason),
    }
}

/// Where two byte strings first differ, for failure output.
fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

/// Reads the next message that is not a ping (the peer may send keepalive pings at any time;
/// the core answers them).
fn read_skipping_pings(ws: &mut Ws, what: &str) -> Result<Message, String> {
    loop {
        match ws.read() {
            Ok(Message::Ping(_)) => continue,
            Ok(msg) => return Ok(msg),
            Err(e) => return Err(format!("reading {what}: {e}")),
        }
    }
}

/// Reads one message and requires it to equal `want` (same type, same payload).
fn expect(ws: &mut Ws, want: &Message, what: &str) -> CheckResult {
    let got = read_skipping_pings(ws, what)?;
    if &got == want {
        return Ok(());
    }
    let detail = match (&got, want) {
        (Message::Text(g), Message::Text(w)) => format!(
            ", first difference at byte {}",
            first_difference(g.as_bytes(), w.as_bytes())
        ),
        (Message::Binary(g), Message::Binary(w)) => {
            format!(", first difference at byte {}", first_difference(g, w))
        }
        _ => String::new(),
    };
    Err(format!(
        "expected {} for {what}, got {}{detail}",
        describe(want),
        describe(&got)
    ))
}

/// Turns an adapter error into a check failure naming the operation.
fn op<T>(what: &str, r: Result<T, Error>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

/// A 1 MiB binary payload with a pattern that catches shifted or repeated chunks.
fn mib_binary() -> Vec<u8> {
    (0..1usize << 20)
        .map(|i| ((i.wrapping_mul(31) + (i >> 8)) & 0xff) as u8)
        .collect()
}

/// At most 1 MiB of UTF-8 mixing one- to four-byte code points, cut on a boundary.
fn mib_text() -> String {
    let unit = "abcdefghijklmnopqrstuvwxyz0123456789\u{e9}\u{4e2d}\u{1F600}";
    let mut s = String::with_capacity((1 << 20) + unit.len());
    while s.len() + unit.len() <= 1 << 20 {
        s.push_str(unit);
    }
    s
}

/// A short text message round trip.
fn check_text(ws: &mut Ws) -> CheckResult {
    let msg = "hello from wsproto \u{2713}";
    op("send_text", ws.send_text(msg))?;
    expect(ws, &Message::Text(msg.to_owned()), "text echo")
}

/// A short binary message round trip, with bytes that are not UTF-8.
fn check_binary(ws: &mut Ws) -> CheckResult {
    let msg = [0u8, 1, 2, 0xfe, 0xff, 0x80, 0x7f];
    op("send_binary", ws.send_binary(&msg))?;
    expect(ws, &Message::Binary(msg.to_vec()), "binary echo")
}

/// An empty text message round trip.
fn check_empty_text(ws: &mut Ws) -> CheckResult {
    op("send_text", ws.send_text(""))?;
    expect(ws, &Message::Text(String::new()), "empty text echo")
}

/// An empty binary message round trip.
fn check_empty_binary(ws: &mut Ws) -> CheckResult {
    op("send_binary", ws.send_binary(&[]))?;
    expect(ws, &Message::Binary(Vec::new()), "empty binary echo")
}

/// A 1 MiB binary message round trip (64-bit length header).
fn check_mib_binary(ws: &mut Ws) -> CheckResult {
    let msg = mib_binary();
    op("send_binary", ws.send_binary(&msg))?;
    expect(ws, &Message::Binary(msg), "1 MiB binary echo")
}

/// A ~1 MiB text message round trip.
fn check_mib_text(ws: &mut Ws) -> CheckResult {
    let msg = mib_text();
    op("send_text", ws.send_text(&msg))?;
    expect(ws, &Message::Text(msg), "1 MiB text echo")
}

/// A text message in fragments cut inside a two-, a three- and a four-byte code point.
fn check_fragmented_text(ws: &mut Ws) -> CheckResult {
    let whole = "frag-\u{e9}-\u{4e2d}-\u{1F600}-end";
    let bytes = whole.as_bytes();
    let cuts = [0, 6, 10, 15, bytes.len()];
    for (i, w) in cuts.windows(2).enumerate() {
        let (start, end) = (w[0], w[1]);
        let fin = i == cuts.len() - 2;
        op(
            "send_fragment",
            ws.send_fragment(MessageKind::Text, &bytes[start..end], fin),
        )?;
    }
    expect(ws, &Message::Text(whole.to_owned()), "fragmented text echo")
}

/// A binary message in fragments, one of them empty and one past the 16-bit length.
fn check_fragmented_binary(ws: &mut Ws) -> CheckResult {
    let pieces: [Vec<u8>; 4] = [vec![1, 2, 3], Vec::new(), vec![9; 70_000], vec![4]];
    for (i, p) in pieces.iter().enumerate() {
        op(
            "send_fragment",
            ws.send_fragment(MessageKind::Binary, p, i == pieces.len() - 1),
        )?;
    }
    expect(
        ws,
        &Message::Binary(pieces.concat()),
        "fragmented binary echo",
    )
}

/// A ping sent between two fragments of a text message: the peer must answer the ping and
/// still reassemble the message.
fn check_ping_between_fragments(ws: &mut Ws) -> CheckResult {
    op(
        "send_fragment",
        ws.send_fragment(MessageKind::Text, b"first half, ", false),
    )?;
    op("ping", ws.ping(b"mid"))?;
    op(
        "send_fragment",
        ws.send_fragment(MessageKind::Text, b"second half", true),
    )?;
    let a = read_skipping_pings(ws, "pong or echo")?;
    let b = read_skipping_pings(ws, "pong or echo")?;
    let pong = Message::Pong(b"mid".to_vec());
    let text = Message::Text("first half, second half".to_owned());
    if (a == pong && b == text) || (a == text && b == pong) {
        Ok(())
    } else {
        Err(format!(
            "expected pong \"mid\" and text \"first half, second half\", got {} then {}",
            describe(&a),
            describe(&b)
        ))
    }
}

/// A ping whose pong must carry the same payload.
fn check_ping(ws: &mut Ws) -> CheckResult {
    let payload = b"wsproto-ping-\x01\xff";
    op("ping", ws.ping(payload))?;
    expect(ws, &Message::Pong(payload.to_vec()), "pong")
}

/// Asks the peer to close with 4001; we must surface its Close once, then `ConnectionClosed`.
fn check_peer_close(ws: &mut Ws) -> CheckResult {
    op("send_text", ws.send_text("close:4001"))?;
    match read_skipping_pings(ws, "the peer's close")? {
        Message::Close(Some(CloseFrame { code: 4001, .. })) => {}
        other => {
            return Err(format!(
                "expected the peer's close with 4001, got {}",
                describe(&other)
            ))
        }
    }
    match ws.read() {
        Err(Error::ConnectionClosed) => Ok(()),
        Ok(m) => Err(format!(
            "after the peer's close, read() returned {} instead of ConnectionClosed",
            describe(&m)
        )),
        Err(e) => Err(format!(
            "after the peer's close, read() failed with {e} instead of ConnectionClosed"
        )),
    }
}

/// Connects afresh, checks one echo, sends a Close 4000 frame by hand and reads the echo.
fn check_our_close_frame(url: &str) -> CheckResult {
    let mut ws = connect(url, &ClientOptions::default())?;
    check_text(&mut ws)?;
    op(
        "send close",
        ws.send(Message::Close(Some(CloseFrame {
            code: 4000,
            reason: "wsproto done".to_owned(),
        }))),
    )?;
    match read_skipping_pings(&mut ws, "the echoed close")? {
        Message::Close(Some(CloseFrame { code: 4000, .. })) => {}
        other => {
            return Err(format!(
                "expected the peer to echo close 4000, got {}",
                describe(&other)
            ))
        }
    }
    match ws.read() {
        Err(Error::ConnectionClosed) => Ok(()),
        Ok(m) => Err(format!(
            "after the echoed close, read() returned {}",
            describe(&m)
        )),
        Err(e) => Err(format!(
            "after the echoed close, read() failed with {e} instead of ConnectionClosed"
        )),
    }
}

/// Connects afresh and closes with `close(4000, ..)`, which must complete the close handshake.
fn check_our_close_call(url: &str) -> CheckResult {
    let mut ws = connect(url, &ClientOptions::default())?;
    check_binary(&mut ws)?;
    op("close(4000)", ws.close(4000, "wsproto done"))?;
    match ws.read() {
        Err(Error::ConnectionClosed) => Ok(()),
        Ok(m) => Err(format!("after close(), read() returned {}", describe(&m))),
        Err(e) => Err(format!(
            "after close(), read() failed with {e} instead of ConnectionClosed"
        )),
    }
}

/// Offers a subprotocol, which the peer echo servers accept, and checks it was agreed.
fn check_subprotocol(url: &str) -> CheckResult {
    let options = ClientOptions {
        protocols: vec![PROTOCOL.to_owned(), "other".to_owned()],
        ..ClientOptions::default()
    };
    let mut ws = connect(url, &options)?;
    if ws.protocol() != Some(PROTOCOL) {
        return Err(format!(
            "offered [{PROTOCOL:?}, \"other\"], negotiated {:?}",
            ws.protocol()
        ));
    }
    check_text(&mut ws)?;
    op("close(1000)", ws.close(1000, ""))
}
