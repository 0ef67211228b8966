//! Memory attacks on a server with one shared [`MemoryBudget`], measured
//! from outside: the server (the tokio driver echoing every message, like
//! `echo_server --tokio`, with the std default limits: 16 MiB messages) runs
//! in a child process, this test binary itself started with
//! `WSPROTO_BUDGET_CHILD=<bytes>`, so that its peak resident set (`VmHWM` in
//! `/proc/PID/status`) is the server's alone.
//!
//! Each attack runs `ATTACKERS` raw clients (hand-made frames, masked with a
//! zero key) next to `WELL_BEHAVED` ordinary clients that keep sending small
//! messages. For each: the peak RSS stays under
//! `startup peak + BUDGET + OVERHEAD_PER_CONNECTION × connections + SLACK`
//! (printed as `budget attack <name>: peak RSS X MiB, budget Y MiB`), every
//! well-behaved message is echoed, and every attacker the server closes is
//! closed with the documented code: 1013 (Try Again Later) for the memory
//! attacks, where the budget runs out before any attacker reaches the 16 MiB
//! per-connection limit (1009); 1008 (policy) for the trickling attackers,
//! which the minimum-progress rule (`Config::min_progress`, given short
//! settings here so the attack ends in about a second) closes, every one.
//!
//! Linux only (`/proc`); loopback, port 0; every wait is bounded.
#![cfg(all(target_os = "linux", feature = "tokio", feature = "blocking"))]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use wsproto_adapters::wsproto::{self, MinProgress};
use wsproto_adapters::{blocking, tokio as wstokio, Message, ServerOptions};

/// Set in the child: the budget in bytes.
const CHILD_ENV: &str = "WSPROTO_BUDGET_CHILD";
/// Set in the child for the trickle attack: the minimum progress as
/// `BYTES,MILLISECONDS` (otherwise the default, 8 KiB per 30 s).
const PROGRESS_ENV: &str = "WSPROTO_BUDGET_PROGRESS";
/// The trickle attack's minimum progress: 4 KiB per 500 ms.
const TRICKLE_FLOOR: (u64, u64) = (4096, 500);
/// The shared budget of the server under attack.
const BUDGET: usize = 32 << 20;
/// The std default message limit (`DEFAULT_MAX_MESSAGE`).
const MESSAGE_LIMIT: usize = 16 << 20;
/// Attackers per attack.
const ATTACKERS: usize = 12;
/// Ordinary clients during each attack.
const WELL_BEHAVED: usize = 3;
/// Fixed cost of one server connection outside the budget: 64 KiB receive
/// window, 32 KiB inflate scratch, deflate state (about 126 KiB at 15 bits),
/// the budget's 64 KiB grace, and the task and socket bookkeeping.
const OVERHEAD_PER_CONNECTION: usize = 320 << 10;
/// Allocator slack on top of everything counted. The child server runs with
/// glibc's mmap threshold fixed at 128 KiB (`MALLOC_MMAP_THRESHOLD_`):
/// otherwise the threshold rises after large frees, later large buffers come
/// from the heap, and freed ones stay resident (up to 14 MiB over the budget
/// was measured that way). Fixed, large buffers go back to the system when
/// freed, and what is resident follows what the budget holds live.
const SLACK: usize = 4 << 20;

/// One attack at a time: each measures its own child, and two cores are
/// enough for one.
static SERIAL: Mutex<()> = Mutex::new(());

/// The server, when this binary runs as the child; a no-op test otherwise.
#[test]
fn child_server() {
    let Ok(budget) = std::env::var(CHILD_ENV) else {
        return;
    };
    let budget: usize = budget.parse().expect("budget in bytes");
    // The parent's end of stdin closing (its exit, or a kill) ends the child.
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let mut options = ServerOptions::default().with_memory_budget(budget);
        if let Ok(progress) = std::env::var(PROGRESS_ENV) {
            let (bytes, ms) = progress.split_once(',').expect("BYTES,MS");
            options.config.min_progress = Some(MinProgress {
                bytes: bytes.parse().expect("bytes"),
                interval: wsproto::Duration::from_millis(ms.parse().expect("ms")),
            });
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut out = std::io::stdout();
        writeln!(out, "PORT {port}").unwrap();
        out.flush().unwrap();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let options = options.clone();
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let Ok(mut ws) = wstokio::accept_with(stream, &options).await else {
                    return;
                };
                loop {
                    let sent = match ws.read().await {
                        Ok(msg @ (Message::Text(_) | Message::Binary(_))) => ws.send(msg).await,
                        Ok(_) => Ok(()),
                        Err(_) => return,
                    };
                    if sent.is_err() {
                        return;
                    }
                }
            });
        }
    });
}

/// The server in its child process; killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(budget: usize) -> Server {
        Server::start_with(budget, None)
    }

    /// With a minimum progress of `(bytes, milliseconds)`.
    fn start_with(budget: usize, progress: Option<(u64, u64)>) -> Server {
        let mut command = Command::new(std::env::current_exe().unwrap());
        if let Some((bytes, ms)) = progress {
            command.env(PROGRESS_ENV, format!("{bytes},{ms}"));
        }
        let mut child = command
            .args(["--exact", "child_server", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, budget.to_string())
            .env("MALLOC_MMAP_THRESHOLD_", "131072")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                // The harness's "test child_server ... " precedes it on the line.
                if let Some((_, port)) = line.split_once("PORT ") {
                    let _ = tx.send(port.trim().parse::<u16>().unwrap());
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the server's port");
        Server { child, port }
    }

    /// A field of `/proc/PID/status`, in bytes.
    fn status(&self, field: &str) -> usize {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with(field))
            .unwrap_or_else(|| panic!("no {field}"));
        let kib: usize = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap();
        kib * 1024
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens a raw WebSocket: the handshake by hand, the 101 read byte by byte
/// so no frame is swallowed.
fn raw_connect(port: u16, deflate: bool) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let ext = if deflate {
        "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    } else {
        ""
    };
    let req = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(head.contains("permessage-deflate"), deflate, "{head}");
    s
}

/// A client frame, masked with a zero key (the payload stays as it is).
fn frame(opcode: u8, fin: bool, rsv1: bool, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![opcode | if fin { 0x80 } else { 0 } | if rsv1 { 0x40 } else { 0 }];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n < 65_536 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&[0; 4]);
    f.extend_from_slice(payload);
    f
}

/// A header announcing a binary frame of `len` bytes, none of them sent.
fn header_only(len: u64) -> Vec<u8> {
    let mut f = vec![0x82, 0x80 | 127];
    f.extend_from_slice(&len.to_be_bytes());
    f.extend_from_slice(&[0; 4]);
    f
}

/// DEFLATE bits, least significant first.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u32,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u32, len: u32) {
        for i in 0..len {
            self.acc |= ((value >> i) & 1) << self.n;
            self.n += 1;
            if self.n == 8 {
                self.out.push(self.acc as u8);
                (self.acc, self.n) = (0, 0);
            }
        }
    }

    /// A Huffman code, most significant bit first.
    fn code(&mut self, code: u32, len: u32) {
        for i in (0..len).rev() {
            self.put((code >> i) & 1, 1);
        }
    }
}

/// A permessage-deflate payload that inflates to `n` zero bytes: one fixed
/// Huffman block of a literal 0 and matches of 258 at distance 1 (13 bits
/// each, about 1:160), ended as a sync flush with its `00 00 ff ff` left
/// off (RFC 7692 §7.2.1).
fn zeros_deflated(n: usize) -> Vec<u8> {
    let mut b = Bits::default();
    b.put(0, 1); // BFINAL
    b.put(1, 2); // fixed Huffman
    let literal0 = |b: &mut Bits| b.code(0x30, 8);
    literal0(&mut b);
    let matches = (n - 1) / 258;
    for _ in 0..matches {
        b.code(0xc5, 8); // length code 285: 258
        b.code(0, 5); // distance code 0: 1
    }
    for _ in 0..(n - 1 - matches * 258) {
        literal0(&mut b);
    }
    b.code(0, 7); // end of block
    b.put(0, 3); // the empty stored block's header ...
    if b.n > 0 {
        b.put(0, 8 - b.n); // ... padded; its LEN/NLEN are the stripped tail
    }
    b.out
}

/// What an attacker saw from the server.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// A Close with this code.
    Closed(u16),
    /// Data frames (the echo) and no Close before the deadline or the end.
    Echoed,
    /// Nothing.
    Nothing,
}

/// Reads server frames (unmasked) until a Close, end of stream or `quiet`
/// without a byte; data frames are skipped.
fn read_close(s: &mut TcpStream, quiet: Duration) -> Seen {
    s.set_read_timeout(Some(quiet)).unwrap();
    let mut seen = Seen::Nothing;
    loop {
        let mut h = [0u8; 2];
        if s.read_exact(&mut h).is_err() {
            return seen;
        }
        let mut len = u64::from(h[1] & 0x7f);
        if len == 126 {
            let mut e = [0u8; 2];
            if s.read_exact(&mut e).is_err() {
                return seen;
            }
            len = u64::from(u16::from_be_bytes(e));
        } else if len == 127 {
            let mut e = [0u8; 8];
            if s.read_exact(&mut e).is_err() {
                return seen;
            }
            len = u64::from_be_bytes(e);
        }
        let mut payload = Vec::new();
        if (&mut *s).take(len).read_to_end(&mut payload).is_err() || payload.len() as u64 != len {
            return seen;
        }
        match h[0] & 0x0f {
            0x8 if payload.len() >= 2 => {
                return Seen::Closed(u16::from_be_bytes([payload[0], payload[1]]))
            }
            0x8 => return Seen::Closed(1005),
            0x0..=0x2 => seen = Seen::Echoed,
            _ => {}
        }
    }
}

/// Whether the server has sent anything yet (without waiting).
fn has_input(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let ready = !matches!(s.peek(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    ready
}

/// Ordinary clients (the blocking adapter, deflate on) sending a 1 KB text
/// every 20 ms until `stop`; each returns how many echoes it got, failing on
/// any error or a wrong echo (a panic: its count never arrives).
fn well_behaved(port: u16, stop: &Arc<AtomicBool>) -> mpsc::Receiver<usize> {
    let (tx, rx) = mpsc::channel();
    for i in 0..WELL_BEHAVED {
        let mut ws = blocking::connect(&format!("ws://127.0.0.1:{port}/ok{i}")).unwrap();
        let stop = stop.clone();
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut echoed = 0;
            while !stop.load(Ordering::Relaxed) || echoed == 0 {
                let text = format!("{i}:{echoed}:{}", "x".repeat(1000));
                ws.send_text(&text).unwrap();
                match ws.read() {
                    Ok(Message::Text(t)) => assert_eq!(t, text),
                    other => panic!("well-behaved client {i}: {other:?}"),
                }
                echoed += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = ws.close(1000, "");
            let _ = tx.send(echoed);
        });
    }
    rx
}

/// Runs `attack` (one call per attacker, in its own thread) against a fresh
/// server with the well-behaved clients alongside; checks the memory bound
/// and the echoes, and returns what each attacker saw.
fn run_attack(
    name: &str,
    attack: impl Fn(u16, usize) -> Seen + Send + Sync + 'static,
) -> (Vec<Seen>, Server) {
    run_attack_with(name, None, attack)
}

/// [`run_attack`] against a server with a minimum progress of `(bytes, ms)`.
fn run_attack_with(
    name: &str,
    progress: Option<(u64, u64)>,
    attack: impl Fn(u16, usize) -> Seen + Send + Sync + 'static,
) -> (Vec<Seen>, Server) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let server = Server::start_with(BUDGET, progress);
    let port = server.port;
    let stop = Arc::new(AtomicBool::new(false));
    let good = well_behaved(port, &stop);
    // The server with every connection open and idle: its startup peak.
    std::thread::sleep(Duration::from_millis(200));
    let startup = server.status("VmHWM:");
    let attack = Arc::new(attack);
    let (tx, rx) = mpsc::channel();
    for i in 0..ATTACKERS {
        let attack = attack.clone();
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send(attack(port, i));
        });
    }
    drop(tx);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while seen.len() < ATTACKERS {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(s) => seen.push(s),
            Err(_) => panic!("{name}: attackers still running after 60 s ({seen:?})"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut echoes = 0;
    for _ in 0..WELL_BEHAVED {
        match good.recv_timeout(Duration::from_secs(30)) {
            Ok(n) => echoes += n,
            Err(_) => panic!("{name}: a well-behaved client failed or hung"),
        }
    }
    let peak = server.status("VmHWM:");
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    println!(
        "budget attack {name}: peak RSS {:.1} MiB, budget {} MiB (startup peak {:.1} MiB, \
         {echoes} well-behaved echoes, attackers saw {seen:?})",
        mib(peak),
        BUDGET >> 20,
        mib(startup)
    );
    let connections = ATTACKERS + WELL_BEHAVED;
    let bound = startup + BUDGET + OVERHEAD_PER_CONNECTION * connections + SLACK;
    assert!(
        peak <= bound,
        "{name}: peak RSS {:.1} MiB over the bound {:.1} MiB",
        mib(peak),
        mib(bound)
    );
    assert!(echoes >= WELL_BEHAVED, "{name}: {echoes} echoes");
    (seen, server)
}

/// Every close an attacker saw is 1013, and at least one attacker was closed.
fn assert_closed_1013(name: &str, seen: &[Seen]) {
    let closed = seen.iter().filter(|s| matches!(s, Seen::Closed(_))).count();
    assert!(closed >= 1, "{name}: no attacker was closed: {seen:?}");
    assert!(
        seen.iter()
            .all(|s| !matches!(s, Seen::Closed(c) if *c != 1013)),
        "{name}: {seen:?}"
    );
}

#[test]
fn bomb_zeros_deflated_is_a_valid_message() {
    // 1 MiB of zeros through the server and back: any fault in the stream
    // would close with 1007 or 1002 instead of an echo.
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let server = Server::start(BUDGET);
    let mut s = raw_connect(server.port, true);
    let bomb = zeros_deflated(1 << 20);
    assert!(bomb.len() < 7 << 10, "{}", bomb.len());
    s.write_all(&frame(0x2, true, true, &bomb)).unwrap();
    assert_eq!(read_close(&mut s, Duration::from_secs(2)), Seen::Echoed);
}

#[test]
fn attack_deflate_bombs() {
    // Each sends one message of about 106 KB that inflates to the 16 MiB limit.
    let bomb = Arc::new(zeros_deflated(MESSAGE_LIMIT));
    let (seen, _server) = run_attack("deflate-bombs", move |port, _| {
        let mut s = raw_connect(port, true);
        s.write_all(&frame(0x2, true, true, &bomb)).unwrap();
        read_close(&mut s, Duration::from_secs(30))
    });
    assert_closed_1013("deflate-bombs", &seen);
    // The budget holds 32 MiB: at most one whole message with its echo; every
    // other attacker is closed.
    let echoed = seen.iter().filter(|s| **s == Seen::Echoed).count();
    assert!(echoed <= 1, "{seen:?}");
    assert!(seen.iter().all(|s| *s != Seen::Nothing), "{seen:?}");
}

#[test]
fn attack_unfinished_fragmented_messages() {
    // Each opens a binary message and sends 64 KiB fragments, never the last
    // one, until it is closed or has sent 12 MiB (under the 16 MiB limit).
    let (seen, _server) = run_attack("unfinished-fragments", |port, _| {
        let mut s = raw_connect(port, false);
        let chunk = vec![0x5a; 64 << 10];
        for i in 0..(12 << 20) / chunk.len() {
            let opcode = if i == 0 { 0x2 } else { 0x0 };
            if s.write_all(&frame(opcode, false, false, &chunk)).is_err() || has_input(&s) {
                break;
            }
        }
        read_close(&mut s, Duration::from_secs(2))
    });
    assert_closed_1013("unfinished-fragments", &seen);
    // 12 attackers × 12 MiB do not fit in 32 MiB: most are refused.
    let closed = seen.iter().filter(|s| **s == Seen::Closed(1013)).count();
    assert!(closed >= ATTACKERS / 2, "{seen:?}");
}

#[test]
fn attack_never_reading() {
    // Each sends 3 MiB messages as fast as the server takes them and never
    // reads the echoes, until its writes stall; only then does it read what
    // came back (the echoes, and a Close if it was refused).
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let (seen, _server) = run_attack("never-reading", move |port, i| {
        let mut s = raw_connect(port, false);
        s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        let message = frame(0x2, true, false, &vec![i as u8; 3 << 20]);
        for _ in 0..8 {
            if s.write_all(&message).is_err() {
                break;
            }
            counter.fetch_add(1, Ordering::Relaxed);
        }
        // The server has sat on it for a while; now see what it said.
        std::thread::sleep(Duration::from_secs(1));
        read_close(&mut s, Duration::from_secs(2))
    });
    assert!(sent.load(Ordering::Relaxed) >= ATTACKERS, "{seen:?}");
    assert_closed_1013("never-reading", &seen);
}

#[test]
fn attack_trickling_bytes() {
    // The slowloris on frames, against a floor of 4 KiB per 500 ms. Half the
    // attackers announce an 8 MiB frame and trickle its payload, 16 bytes
    // every 100 ms; the other half open a fragmented message and then send
    // only pings, 125 bytes every 10 ms (12 KiB per interval, three times
    // the floor in bytes, none of it data). Each stops at the server's
    // Close or after 10 s. Every attacker must be closed with 1008, within
    // about two intervals; their memory is what they sent, far under the
    // budget.
    let started = Instant::now();
    let (seen, server) = run_attack_with("trickle", Some(TRICKLE_FLOOR), |port, i| {
        let mut s = raw_connect(port, false);
        let start = Instant::now();
        if i % 2 == 0 {
            s.write_all(&header_only(8 << 20)).unwrap();
            while start.elapsed() < Duration::from_secs(10) {
                if s.write_all(&[0x11; 16]).is_err() || has_input(&s) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        } else {
            s.write_all(&frame(0x2, false, false, &[0x22; 64])).unwrap();
            let ping = frame(0x9, true, false, &[0x33; 125]);
            // The pongs arrive at once, so only a Close can stop it early:
            // read_close skips the pongs and finds it.
            s.set_nonblocking(true).unwrap();
            let mut closed = false;
            let mut inbox = Vec::new();
            while start.elapsed() < Duration::from_secs(10) && !closed {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = s.read(&mut buf) {
                    inbox.extend_from_slice(&buf[..n]);
                }
                closed = has_server_close(&inbox);
                s.set_nonblocking(false).unwrap();
                if s.write_all(&ping).is_err() {
                    break;
                }
                s.set_nonblocking(true).unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
            s.set_nonblocking(false).unwrap();
            return close_in(&inbox).unwrap_or_else(|| read_close(&mut s, Duration::from_secs(2)));
        }
        read_close(&mut s, Duration::from_secs(2))
    });
    let took = started.elapsed();
    assert!(
        seen.iter().all(|s| *s == Seen::Closed(1008)),
        "every trickler is closed with 1008: {seen:?}"
    );
    println!("budget attack trickle: all {ATTACKERS} attackers closed with 1008 in {took:.1?}");
    // Still serving.
    let mut ws = blocking::connect(&format!("ws://127.0.0.1:{}/", server.port)).unwrap();
    ws.send_text("after").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("after".into()));
}

/// The server frames (unmasked) in `bytes`, as (opcode, payload), up to the
/// first incomplete one.
fn server_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while bytes.len() >= 2 {
        let (len, start) = match bytes[1] & 0x7f {
            126 if bytes.len() >= 4 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            126 | 127 => break,
            n => (usize::from(n), 2),
        };
        let Some(payload) = bytes.get(start..start + len) else {
            break;
        };
        frames.push((bytes[0] & 0x0f, payload.to_vec()));
        bytes = &bytes[start + len..];
    }
    frames
}

fn has_server_close(bytes: &[u8]) -> bool {
    server_frames(bytes).iter().any(|(op, _)| *op == 0x8)
}

/// The Close among the server frames in `bytes`, if any.
fn close_in(bytes: &[u8]) -> Option<Seen> {
    server_frames(bytes)
        .into_iter()
        .find(|(op, _)| *op == 0x8)
        .map(|(_, p)| match p.get(..2) {
            Some(c) => Seen::Closed(u16::from_be_bytes([c[0], c[1]])),
            None => Seen::Closed(1005),
        })
}

/// The bomb of `benches/bomb.sh`, against a server started elsewhere:
/// `WSPROTO_BOMB_ADDR=127.0.0.1:PORT` (loopback), `WSPROTO_BOMB_BYTES` (the
/// inflated size of each message, default 16 MiB), `WSPROTO_BOMB_CONNECTIONS`
/// (default 10). Each connection sends one compressed message at the same
/// time and reports what came back. Ignored unless run on purpose.
#[test]
#[ignore = "a measurement for benches/bomb.sh, against a server it starts"]
fn bomb_client() {
    let Ok(addr) = std::env::var("WSPROTO_BOMB_ADDR") else {
        return;
    };
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let bytes = env("WSPROTO_BOMB_BYTES", MESSAGE_LIMIT);
    let connections = env("WSPROTO_BOMB_CONNECTIONS", 10);
    let addr: std::net::SocketAddr = addr.parse().expect("host:port");
    assert!(addr.ip().is_loopback(), "loopback only");
    let bomb = Arc::new(zeros_deflated(bytes));
    println!(
        "bomb: {connections} connections x {} KiB compressed -> {} MiB each",
        bomb.len() >> 10,
        bytes >> 20
    );
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let bomb = bomb.clone();
            std::thread::spawn(move || {
                let mut s = raw_connect(addr.port(), true);
                s.write_all(&frame(0x2, true, true, &bomb)).unwrap();
                read_close(&mut s, Duration::from_secs(30))
            })
        })
        .collect();
    let seen: Vec<Seen> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    println!("bomb: connections saw {seen:?}");
}

#[test]
fn a_client_budget_closes_with_1013_on_the_blocking_driver() {
    // A server sends 2 MiB to a client whose budget is 1 MiB: the client
    // closes with 1013 and its read reports the budget; the server sees 1013.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut ws = blocking::accept(stream).unwrap();
        ws.send_binary(&vec![3; 2 << 20]).unwrap();
        let _ = tx.send(ws.read());
    });
    let budget = wsproto_adapters::MemoryBudget::new(1 << 20);
    let options = wsproto_adapters::ClientOptions {
        memory_budget: Some(budget.clone()),
        ..Default::default()
    };
    let mut ws = blocking::connect_with(&format!("ws://127.0.0.1:{port}/"), &options).unwrap();
    let e = ws.read().unwrap_err();
    assert!(e.is_over_budget(), "{e}");
    let server_saw = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    match server_saw {
        Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, 1013),
        other => panic!("{other:?}"),
    }
    drop(ws);
    assert_eq!(budget.used(), 0);
}

#[cfg(feature = "hyper")]
#[test]
fn an_upgrade_taken_from_hyper_draws_from_the_options_budget() {
    // `upgrade::accept` (the axum extractor's path, the chat server's) keeps
    // the options' budget: a fragmented message past it is closed with 1013.
    let budget = wsproto_adapters::MemoryBudget::new(1 << 20);
    let options = ServerOptions {
        memory_budget: Some(budget.clone()),
        deflate: None,
        ..ServerOptions::default()
    };
    let request = http::Request::get("/ws")
        .header("host", "127.0.0.1")
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
        .body(())
        .unwrap();
    let upgrade = wsproto_adapters::upgrade::accept(&request, &options).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = runtime.spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        // The handshake was answered elsewhere: frames start at once.
        let mut ws = upgrade.into_websocket_over(stream).unwrap();
        ws.read().await
    });
    let client = std::thread::spawn(move || flood_past_1_mib(port));
    let outcome = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(20), server).await })
        .expect("bounded")
        .unwrap();
    assert!(
        matches!(&outcome, Err(e) if e.is_over_budget()),
        "{outcome:?}"
    );
    assert_eq!(client.join().unwrap(), Seen::Closed(1013));
    assert_eq!(budget.used(), 0);
}

/// Connects without a handshake (it was done elsewhere) and sends 2 MiB of
/// an unfinished binary message in 64 KiB fragments, stopping at the
/// server's first byte; returns what it answered, after echoing its Close.
#[cfg(feature = "hyper")]
fn flood_past_1_mib(port: u16) -> Seen {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let chunk = vec![1u8; 64 << 10];
    for i in 0..32 {
        let opcode = if i == 0 { 0x2 } else { 0x0 };
        if s.write_all(&frame(opcode, false, false, &chunk)).is_err() || has_input(&s) {
            break;
        }
    }
    let seen = read_close(&mut s, Duration::from_secs(5));
    // Answer the Close so the server's close handshake ends.
    let _ = s.write_all(&frame(0x8, true, false, &1013u16.to_be_bytes()));
    seen
}

#[cfg(feature = "hyper")]
#[test]
fn a_stream_wrapped_by_websocket_over_with_draws_from_the_given_budget() {
    // `upgrade::websocket_over_with` (a handshake done elsewhere) charges the
    // budget it is given: past 1 MiB the flood is closed with 1013, and all
    // of it is given back once the connection ends.
    let budget = wsproto_adapters::MemoryBudget::new(1 << 20);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let charged = budget.clone();
    let server = runtime.spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = wsproto_adapters::upgrade::websocket_over_with(
            stream,
            wsproto::Role::Server,
            wsproto_adapters::default_config(),
            None,
            None,
            Some(charged),
        )
        .unwrap();
        ws.read().await
    });
    let client = std::thread::spawn(move || flood_past_1_mib(port));
    let outcome = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(20), server).await })
        .expect("bounded")
        .unwrap();
    assert!(
        matches!(&outcome, Err(e) if e.is_over_budget()),
        "{outcome:?}"
    );
    assert_eq!(client.join().unwrap(), Seen::Closed(1013));
    assert_eq!(budget.used(), 0);
}

/// Server options whose minimum progress is 1 KiB per 200 ms.
fn impatient() -> ServerOptions {
    let mut options = ServerOptions::default();
    options.config.min_progress = Some(MinProgress {
        bytes: 1024,
        interval: wsproto::Duration::from_millis(200),
    });
    options
}

/// Announces a 1 MiB frame and trickles it, 8 bytes every 50 ms, until the
/// server says something (or 10 s); returns what it said.
fn trickle(port: u16) -> Seen {
    let mut s = raw_connect(port, false);
    s.write_all(&header_only(1 << 20)).unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if s.write_all(&[0x44; 8]).is_err() || has_input(&s) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    read_close(&mut s, Duration::from_secs(2))
}

fn is_too_slow(outcome: &Result<Message, wsproto_adapters::Error>) -> bool {
    matches!(
        outcome,
        Err(wsproto_adapters::Error::Protocol(wsproto::Error::Protocol(
            wsproto::Violation::TooSlow
        )))
    )
}

#[test]
fn a_trickler_is_closed_with_1008_by_the_blocking_driver() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut ws = blocking::accept_with(stream, &impatient()).unwrap();
        ws.read()
    });
    assert_eq!(trickle(port), Seen::Closed(1008));
    let outcome = server.join().unwrap();
    assert!(is_too_slow(&outcome), "{outcome:?}");
}

#[test]
fn a_trickler_is_closed_with_1008_by_the_tokio_driver_whole_and_split() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for split in [false, true] {
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = runtime.spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut ws = wstokio::accept_with(stream, &impatient()).await.unwrap();
            if split {
                let (mut read, _write) = ws.split();
                read.read().await
            } else {
                ws.read().await
            }
        });
        let client = std::thread::spawn(move || trickle(port));
        let outcome = runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(20), server).await })
            .expect("bounded")
            .unwrap();
        assert!(is_too_slow(&outcome), "split {split}: {outcome:?}");
        assert_eq!(client.join().unwrap(), Seen::Closed(1008), "split {split}");
    }
}

#[test]
fn a_slow_but_steady_upload_above_the_floor_arrives_whole() {
    // 64 KiB in 2 KiB pieces every 100 ms (20 KiB/s, ten times the floor):
    // the message arrives and is echoed, however long it takes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut ws = blocking::accept_with(stream, &impatient()).unwrap();
        let message = ws.read();
        if let Ok(Message::Binary(data)) = &message {
            ws.send_binary(data).unwrap();
        }
        message.map(|m| match m {
            Message::Binary(data) => data.len(),
            _ => 0,
        })
    });
    let mut s = raw_connect(port, false);
    let payload = vec![0x55u8; 64 << 10];
    let whole = frame(0x2, true, false, &payload);
    for piece in whole.chunks(2048) {
        s.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(read_close(&mut s, Duration::from_secs(2)), Seen::Echoed);
    assert_eq!(server.join().unwrap().unwrap(), 64 << 10);
}
