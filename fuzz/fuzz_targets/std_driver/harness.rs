//! `std_driver`: the blocking std driver over a scripted in-memory transport on a
//! simulated clock. The input scripts what the peer sends (raw bytes, masked
//! frames, read timeouts, end of file, resets), how the transport takes
//! writes (short writes, interruptions, or a stall: the peer stops reading
//! for good) and what the application calls.
//!
//! Oracles:
//! * no panic, and no operation makes more than `MAX_CALLS` transport calls
//!   without simulated time passing;
//! * once the peer falls silent, an operation ends within the keepalive
//!   deadline (two intervals and the timeout) plus `close_timeout` of its
//!   last byte or of the operation's start, whichever is later;
//! * a stalled transport never sees a write without a write timeout while a
//!   timer (keepalive, close handshake) is armed: that write would block
//!   forever, and the timer could never fire;
//! * once the peer stops reading, an operation ends within the keepalive
//!   and close deadlines of simulated time; `close()` on an open connection
//!   ends within `close_timeout` whatever the transport does;
//! * every I/O error returned is one the transport produced;
//! * what the driver wrote decodes, for a peer of the other role, as valid
//!   frames.
//!
//! Shared by the cargo-fuzz target (`fuzz/fuzz_targets/std_driver.rs`) and
//! the adapters' tests (`std-adapters/tests/std_driver_fuzz.rs`), which
//! replay the inputs under `fuzz/regressions/std_driver/` through it.

use arbitrary::{Arbitrary, Unstructured};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::rc::Rc;
use std::time::Duration;
use wsproto::{Config, Connection, Instant, Keepalive, Role, State};
use wsproto_adapters::blocking::{open_for_fuzzing, Timed};
use wsproto_adapters::Error;

/// Transport calls allowed at one simulated instant before they count as a
/// hang.
const MAX_CALLS: u32 = 20_000;
/// Rounding the drivers may add to a deadline (they wait at least 1 ms).
const SLACK: Duration = Duration::from_millis(20);

thread_local! {
    static NOW: Cell<u64> = const { Cell::new(1_000_000_000) };
}

fn now() -> Instant {
    Instant::from_nanos(NOW.with(Cell::get))
}

fn advance(d: Duration) {
    let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    NOW.with(|n| n.set(n.get().saturating_add(nanos)));
}

#[derive(Arbitrary, Debug)]
enum ReadOp {
    /// Raw bytes from the peer.
    Bytes(Vec<u8>),
    /// A well-formed frame, masked when the peer is a client.
    Frame {
        opcode: u8,
        fin: bool,
        payload: Vec<u8>,
    },
    /// Nothing arrives before the read timeout.
    Timeout,
    Eof,
    Reset,
}

#[derive(Arbitrary, Debug)]
enum WriteOp {
    /// Takes at most this many bytes.
    Accept(u16),
    Interrupted,
    /// The peer stops reading for good: every later write is refused.
    Stall,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Read,
    Text(String),
    /// A binary message of `16 * n` bytes (up to 1 MiB).
    Binary(u16),
    Ping(Vec<u8>),
    Close(u16, String),
    /// Simulated time passes between calls.
    Jump(u16),
}

#[derive(Arbitrary, Debug)]
struct Input {
    server: bool,
    close_timeout_ms: u16,
    /// Keepalive interval and timeout, in milliseconds.
    keepalive: Option<(u16, u16)>,
    reads: Vec<ReadOp>,
    writes: Vec<WriteOp>,
    ops: Vec<Op>,
}

#[derive(Default)]
struct Wire {
    client_peer: bool,
    reads: VecDeque<ReadOp>,
    unread: VecDeque<u8>,
    eof: bool,
    writes: VecDeque<WriteOp>,
    /// When the peer stopped reading.
    stalled_at: Option<u64>,
    written: Vec<u8>,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    shut: bool,
    calls: u32,
    /// The simulated time of the last call.
    last_call: u64,
    /// When the peer last sent bytes.
    last_peer: u64,
    /// Start of the current operation, in nanoseconds.
    op_start: u64,
    /// Whether a timer is armed whatever the application does.
    keepalive: bool,
    closing: bool,
    /// How long after the peer stopped reading the operation must end.
    stall_bound: Duration,
    /// How long after the peer fell silent the operation must end.
    silent_bound: Duration,
}

struct Pipe(Rc<RefCell<Wire>>);

impl Wire {
    fn call(&mut self) {
        let now = NOW.with(Cell::get);
        if now != self.last_call {
            self.last_call = now;
            self.calls = 0;
        }
        self.calls += 1;
        assert!(
            self.calls <= MAX_CALLS,
            "hang: {MAX_CALLS} transport calls at one simulated instant"
        );
    }

    /// The peer has nothing more to send: the driver's timers must end the
    /// operation in time.
    fn check_silence(&self) {
        let now = NOW.with(Cell::get);
        let since = self.last_peer.max(self.op_start);
        let silent = Duration::from_nanos(now.saturating_sub(since));
        assert!(
            silent <= self.silent_bound,
            "still reading {silent:?} after the peer fell silent (bound {:?})",
            self.silent_bound
        );
    }

    fn frame(&self, opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![(u8::from(fin) << 7) | (opcode & 0x0f)];
        let mask = if self.client_peer { 0x80 } else { 0 };
        match payload.len() {
            n @ 0..=125 => f.push(mask | n as u8),
            n @ 126..=0xffff => {
                f.push(mask | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(mask | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if self.client_peer {
            f.extend_from_slice(&[0; 4]);
        }
        f.extend_from_slice(payload);
        f
    }
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut w = self.0.borrow_mut();
        w.call();
        loop {
            if !w.unread.is_empty() {
                let n = buf.len().min(w.unread.len());
                w.last_peer = NOW.with(Cell::get);
                for (slot, byte) in buf.iter_mut().zip(w.unread.drain(..n)) {
                    *slot = byte;
                }
                return Ok(n);
            }
            if w.eof {
                return Ok(0);
            }
            match w.reads.pop_front() {
                Some(ReadOp::Bytes(b)) => w.unread.extend(b),
                Some(ReadOp::Frame {
                    opcode,
                    fin,
                    payload,
                }) => {
                    let f = w.frame(opcode, fin, &payload);
                    w.unread.extend(f);
                }
                Some(ReadOp::Timeout) => {
                    // Without a read timeout this read would wait for the next op.
                    if let Some(t) = w.read_timeout {
                        w.check_silence();
                        advance(t);
                        return Err(ErrorKind::WouldBlock.into());
                    }
                }
                Some(ReadOp::Eof) => w.eof = true,
                Some(ReadOp::Reset) => return Err(ErrorKind::ConnectionReset.into()),
                None => {
                    // The peer has nothing more to say: it waits for the
                    // timers, or (none armed) hangs up.
                    return match w.read_timeout {
                        Some(t) => {
                            w.check_silence();
                            advance(t);
                            Err(ErrorKind::WouldBlock.into())
                        }
                        None => Ok(0),
                    };
                }
            }
        }
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut w = self.0.borrow_mut();
        w.call();
        assert!(!w.shut, "write after the write side was shut");
        if w.stalled_at.is_none() {
            match w.writes.pop_front() {
                None => {
                    w.written.extend_from_slice(buf);
                    return Ok(buf.len());
                }
                Some(WriteOp::Accept(n)) => {
                    let n = buf.len().min(usize::from(n).max(1));
                    w.written.extend_from_slice(&buf[..n]);
                    return Ok(n);
                }
                Some(WriteOp::Interrupted) => return Err(ErrorKind::Interrupted.into()),
                Some(WriteOp::Stall) => w.stalled_at = Some(NOW.with(Cell::get)),
            }
        }
        let timers = w.keepalive || w.closing;
        let Some(t) = w.write_timeout else {
            // A real stream would block here forever.
            assert!(
                !timers,
                "a write blocks forever: the peer stopped reading, no write timeout is set, \
                 and the armed timers can never fire"
            );
            return Err(ErrorKind::BrokenPipe.into());
        };
        let since = w.stalled_at.unwrap_or(0).max(w.op_start);
        if timers {
            let waited = Duration::from_nanos(NOW.with(Cell::get).saturating_sub(since));
            assert!(
                waited <= w.stall_bound,
                "still writing {waited:?} after the peer stopped reading (bound {:?})",
                w.stall_bound
            );
        }
        advance(t);
        Err(ErrorKind::WouldBlock.into())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Timed for Pipe {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.borrow_mut().read_timeout = timeout;
        Ok(())
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.borrow_mut().write_timeout = timeout;
        Ok(())
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.0.borrow_mut().shut = true;
        Ok(())
    }
}

fn timed(pipe: &Pipe) -> Option<&dyn Timed> {
    Some(pipe)
}

/// The errors an operation may end with.
fn check(result: Result<(), Error>) {
    if let Err(Error::Io(e)) = result {
        assert!(
            matches!(
                e.kind(),
                ErrorKind::WouldBlock | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
            ),
            "an I/O error the transport never produced: {e:?}"
        );
    }
}

/// Runs one input (the fuzzer's bytes, read as libFuzzer's typed targets
/// read them) through the driver and every oracle; panics on a finding.
pub fn std_driver(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    run(input);
}

fn run(input: Input) {
    NOW.with(|n| n.set(1_000_000_000));
    let role = if input.server {
        Role::Server
    } else {
        Role::Client
    };
    let mut config = Config {
        close_timeout: wsproto::Duration::from_millis(u64::from(input.close_timeout_ms)),
        // The transport hangs up once its script is spent and no timer is
        // armed; the minimum-progress rule (on by default) is a timer that
        // is always armed, so it stays off here (its driver tests are in
        // tests/tests/budget_attacks.rs).
        min_progress: None,
        ..Config::default()
    };
    let close_timeout = Duration::from_millis(u64::from(input.close_timeout_ms));
    let mut stall_bound = close_timeout + SLACK;
    let mut silent_bound = close_timeout + SLACK;
    if let Some((interval, timeout)) = input.keepalive {
        // At least 10 ms: a read ends at every tick, and the calls an
        // operation may make are bounded.
        let interval = interval.saturating_add(10);
        config.keepalive = Some(Keepalive {
            interval: wsproto::Duration::from_millis(u64::from(interval)),
            timeout: wsproto::Duration::from_millis(u64::from(timeout)),
        });
        // A ping already awaiting its answer (which bytes other than the
        // pong can satisfy), the next quiet tick, and the new ping's timeout.
        stall_bound += 2 * Duration::from_millis(u64::from(interval) + u64::from(timeout));
        // The last peer byte lands just after a tick; the next tick is not
        // quiet, the one after pings, and that ping's timeout runs.
        silent_bound += Duration::from_millis(2 * u64::from(interval) + u64::from(timeout));
    }
    config.limits.max_message_size = 1 << 20;
    config.limits.max_frame_payload = 1 << 20;
    let wire = Rc::new(RefCell::new(Wire {
        client_peer: input.server,
        reads: input.reads.into(),
        writes: input.writes.into(),
        keepalive: input.keepalive.is_some(),
        stall_bound,
        silent_bound,
        ..Wire::default()
    }));
    let Ok(mut ws) = open_for_fuzzing(Pipe(wire.clone()), role, config, timed, now) else {
        return;
    };
    for op in input.ops {
        {
            let mut w = wire.borrow_mut();
            w.calls = 0;
            w.op_start = NOW.with(Cell::get);
        }
        match op {
            Op::Read => check(ws.read().map(drop)),
            Op::Text(t) => check(ws.send_text(&t)),
            Op::Binary(n) => check(ws.send_binary(&vec![0xa5; 16 * usize::from(n)])),
            Op::Ping(p) => check(ws.ping(&p)),
            Op::Close(code, reason) => {
                let open = ws.state() == State::Open;
                let start = now();
                wire.borrow_mut().closing = true;
                let result = ws.close(code, &reason);
                wire.borrow_mut().closing = false;
                let took = Duration::from_nanos(now().saturating_duration_since(start).as_nanos());
                if open && ws.state() != State::Open {
                    assert!(
                        took <= close_timeout + SLACK,
                        "close() took {took:?} (close timeout {close_timeout:?}): {result:?}"
                    );
                }
                check(result);
            }
            Op::Jump(ms) => advance(Duration::from_millis(u64::from(ms))),
        }
    }
    // Everything written must be valid frames for a peer of the other role.
    let peer_role = if input.server {
        Role::Client
    } else {
        Role::Server
    };
    let mut peer_config = Config::default();
    peer_config.limits.max_message_size = 1 << 24;
    peer_config.limits.max_frame_payload = 1 << 24;
    let mut peer = Connection::new(peer_role, peer_config);
    let mut bytes = std::mem::take(&mut wire.borrow_mut().written);
    let mut pos = 0;
    while pos < bytes.len() {
        match peer.receive(&mut bytes[pos..]) {
            Ok(r) if r.consumed == 0 => break,
            Ok(r) => pos += r.consumed,
            Err(wsproto::Error::Protocol(v)) => panic!("the driver wrote an invalid frame: {v:?}"),
            Err(_) => break,
        }
    }
}
