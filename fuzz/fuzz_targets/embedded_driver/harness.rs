//! `embedded_driver`: the embedded-io-async driver of `wsproto-adapters`,
//! server and client, over an in-memory socket and a one-future executor.
//!
//! Shared by the cargo-fuzz target (`fuzz/fuzz_targets/embedded_driver.rs`)
//! and the adapters' tests (`std-adapters/tests/embedded.rs`), which replay
//! the inputs under `fuzz/regressions/embedded_driver/` through it.
//!
//! Input (every read past the end gives zeros):
//!
//! | byte | meaning |
//! |------|---------|
//! | 0 | flags: 0x01 client (else server), 0x02 arbitrary handshake, 0x04 `auto_pong` off, 0x08 small limits, 0x10 peer stream as frame specs, 0x20 every socket call pends once first, 0x40 keepalive, 0x80 application calls follow |
//! | 1 | `rx` length: `8 + 4 * b` |
//! | 2 | `tx` length: `8 + 4 * b` |
//! | 3 | low nibble: read sizes that follow; high nibble: write sizes that follow (0 = as much as fits) |
//! | … | the read sizes, then the write sizes |
//! | next | low nibble: the read call that fails (0 = none); high nibble: the write call that fails |
//! | next | (flag 0x80) number of calls, then two bytes per call: which, argument |
//! | rest | the peer stream |
//!
//! The peer stream follows a valid opening head written by the harness (a
//! request from the core's client handshake, or the core server's 101 to the
//! driver's own request), or with flag 0x02 it is the whole of what the
//! driver reads, handshake included, with every `@@` replaced by a valid key
//! (server) or by the accept value for the driver's key (client). With flag
//! 0x10 it is a list of frame specs the harness encodes with the right
//! masking: `[b0 (FIN, RSV, opcode as on the wire), length, payload…]`,
//! length 126/127 taking a 16-bit big-endian length from the next two bytes.
//!
//! Oracles:
//! * no panic, and no hang: every call returns within a bounded number of
//!   polls, reads a closed socket at most once and never reads into an empty
//!   buffer; reading until an error ends within one event per input byte;
//! * every error is a documented one for what happened: `Io` only after an
//!   injected fault, a peer violation only with close code 1002, 1007 or
//!   1009 (or 1008 from the minimum-progress timer), `BufferTooSmall` only for buffers under the documented minimums,
//!   `Handshake` only from `accept`/`connect`, and a valid handshake with
//!   adequate buffers and no fault succeeds;
//! * what the driver writes is valid for its role: a handshake head the
//!   core's other side accepts (or a server's HTTP error answer with the
//!   error's status), then whole frames, masked exactly when it is the
//!   client, no RSV bits, control frames whole and at most 125 bytes, Close
//!   payloads valid, messages in sequence and valid UTF-8 when text, nothing
//!   after its Close but Pongs, and nothing at all after a failed write;
//! * the events equal what the core surfaces from the same peer bytes (as a
//!   prefix: the driver may stop earlier);
//! * memory is bounded by the caller's buffers: no allocation while the
//!   driver runs, events no larger than `rx`, output bounded by the calls
//!   made and the peer bytes read.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::string::String;
use std::vec::Vec;

use embedded_io_async::{ErrorKind, ErrorType, Read, Write};
use wsproto_adapters::embedded::{EmbeddedEvent, Error, WebSocket};
use wsproto_adapters::wsproto::frame::{apply_mask, FrameHeader, HeaderStatus, OpCode};
use wsproto_adapters::wsproto::fuzzing::FuzzRng;
use wsproto_adapters::wsproto::handshake::{
    accept_key, Accept, ClientHandshake, ClientRequest, ServerHandshake,
};
use wsproto_adapters::wsproto::httparse::EMPTY_HEADER;
use wsproto_adapters::wsproto::rand_core::RngCore;
use wsproto_adapters::wsproto::{
    self as ws, CloseCode, Config, Connection, Duration, Instant, Keepalive, MessageKind, Misuse,
    Role, Violation, MIN_RECEIVE_BUFFER, MIN_TRANSMIT_BUFFER,
};

// ---------------------------------------------------------------------------
// Allocation oracle
// ---------------------------------------------------------------------------

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// A global allocator that counts the allocations made on this thread while
/// the driver is being polled (the socket's own bookkeeping is excluded).
pub struct CountingAlloc;

fn note_allocation() {
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

fn set_armed(on: bool) -> bool {
    ARMED.try_with(|a| a.replace(on)).unwrap_or(false)
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Disarms the allocation oracle for the socket's own work.
struct Disarm(bool);

impl Disarm {
    fn new() -> Self {
        Disarm(set_armed(false))
    }
}

impl Drop for Disarm {
    fn drop(&mut self) {
        set_armed(self.0);
    }
}

// ---------------------------------------------------------------------------
// Executor
// ---------------------------------------------------------------------------

/// Polls of one driver call before it counts as hung. A socket call pends at
/// most once, so a call that moves N bytes needs about 2N polls.
const POLL_LIMIT: u64 = 1 << 22;

/// Runs `fut` to completion with a no-op waker (the in-memory socket is
/// always ready on the next poll), with the allocation oracle armed.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    let mut polls = 0u64;
    loop {
        let before = allocations();
        let was = set_armed(true);
        let poll = fut.as_mut().poll(&mut cx);
        set_armed(was);
        assert_eq!(allocations(), before, "the driver allocated");
        if let Poll::Ready(out) = poll {
            return out;
        }
        polls += 1;
        assert!(polls < POLL_LIMIT, "a driver call never finishes");
    }
}

/// Pends once, then is ready.
struct PendOnce(bool);

impl Future for PendOnce {
    type Output = ();
    fn poll(mut self: core::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

// ---------------------------------------------------------------------------
// The in-memory socket
// ---------------------------------------------------------------------------

/// The injected transport failure.
#[derive(Debug, PartialEq, Eq)]
pub struct Fault;

impl core::fmt::Display for Fault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("injected fault")
    }
}

impl core::error::Error for Fault {}

impl embedded_io_async::Error for Fault {
    fn kind(&self) -> ErrorKind {
        ErrorKind::ConnectionReset
    }
}

/// Both directions of the wire, shared with the harness (the driver owns
/// the `Socket`, and drops it when a handshake fails).
#[derive(Default)]
pub struct Wire {
    /// The driver's role.
    client: bool,
    /// What the driver reads (for a client, built once its request is out).
    input: Vec<u8>,
    input_ready: bool,
    /// The fuzzer's bytes: the peer stream, or everything with flag 0x02.
    tail: Vec<u8>,
    raw_handshake: bool,
    read_at: usize,
    read_sizes: Vec<usize>,
    write_sizes: Vec<usize>,
    reads: usize,
    writes: usize,
    fail_read: usize,
    fail_write: usize,
    pend: bool,
    /// What the driver wrote.
    out: Vec<u8>,
    /// Where the driver's handshake head ends in `out`, once known.
    faulted_read: bool,
    faulted_write: bool,
    /// Bytes written after a failed write (must stay 0).
    written_after_fault: usize,
    eof_reads: usize,
    /// Reads that returned the end of the stream during the current call.
    eof_reads_this_call: usize,
}

pub struct Socket<'w>(&'w RefCell<Wire>);

impl ErrorType for Socket<'_> {
    type Error = Fault;
}

impl Wire {
    /// For a client: the core server's answer to the request the driver wrote.
    fn build_client_input(&mut self) {
        if self.input_ready || !self.client {
            return;
        }
        self.input_ready = true;
        let mut headers = [EMPTY_HEADER; 32];
        let mut hs = ServerHandshake::new(&Config::default(), Instant::ZERO);
        let parsed = hs.parse(&self.out, &mut headers);
        let req = match parsed {
            Ok(Some(req)) => req,
            other => {
                // Only a failed write may leave the request unfinished.
                assert!(
                    self.faulted_write,
                    "the client's request is not one the core server accepts: {other:?}"
                );
                self.input = self.tail.clone();
                return;
            }
        };
        assert_eq!(
            req.head_len(),
            self.out.len(),
            "client wrote past its request"
        );
        if self.raw_handshake {
            let accept = accept_key(req.key());
            self.input = splice(&self.tail, &accept);
        } else {
            let mut answer = [0u8; 512];
            let n = req.accept(&Accept::default(), &mut answer).unwrap();
            self.input = answer[..n].to_vec();
            self.input.extend_from_slice(&self.tail);
        }
    }
}

/// Replaces every `@@` in `data` with `with`.
fn splice(data: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(b"@@") {
            out.extend_from_slice(with);
            i += 2;
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

fn next_size(sizes: &[usize], i: usize) -> usize {
    if sizes.is_empty() {
        0
    } else {
        sizes[i % sizes.len()]
    }
}

impl Read for Socket<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Fault> {
        let pend = self.0.borrow().pend;
        if pend {
            PendOnce(false).await;
        }
        let _disarm = Disarm::new();
        let mut w = self.0.borrow_mut();
        assert!(
            !buf.is_empty(),
            "the driver read into an empty buffer (an Ok(0) it would take for EOF)"
        );
        w.build_client_input();
        w.reads += 1;
        if w.reads == w.fail_read {
            w.faulted_read = true;
            return Err(Fault);
        }
        let left = w.input.len() - w.read_at;
        if left == 0 {
            w.eof_reads += 1;
            w.eof_reads_this_call += 1;
            assert!(
                w.eof_reads_this_call <= 1,
                "the driver read a closed socket again in the same call"
            );
            return Ok(0);
        }
        let want = match next_size(&w.read_sizes, w.reads) {
            0 => usize::MAX,
            n => n,
        };
        let n = want.min(left).min(buf.len());
        let at = w.read_at;
        buf[..n].copy_from_slice(&w.input[at..at + n]);
        w.read_at += n;
        Ok(n)
    }
}

impl Write for Socket<'_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Fault> {
        let pend = self.0.borrow().pend;
        if pend {
            PendOnce(false).await;
        }
        let _disarm = Disarm::new();
        let mut w = self.0.borrow_mut();
        if buf.is_empty() {
            return Ok(0);
        }
        w.writes += 1;
        if w.writes == w.fail_write {
            w.faulted_write = true;
            return Err(Fault);
        }
        let n = match next_size(&w.write_sizes, w.writes) {
            0 => buf.len(),
            n => n.min(buf.len()),
        };
        if w.faulted_write {
            w.written_after_fault += n;
        }
        w.out.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    async fn flush(&mut self) -> Result<(), Fault> {
        let pend = self.0.borrow().pend;
        if pend {
            PendOnce(false).await;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------

/// A cursor over the input; past the end every byte is 0.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}

const CLIENT: u8 = 0x01;
const RAW_HANDSHAKE: u8 = 0x02;
const NO_AUTO_PONG: u8 = 0x04;
const SMALL_LIMITS: u8 = 0x08;
const FRAMED: u8 = 0x10;
const PEND: u8 = 0x20;
const KEEPALIVE: u8 = 0x40;
const CALLS: u8 = 0x80;

/// A valid key for `@@` in an arbitrary request.
const KEY: &[u8] = b"dGhlIHNhbXBsZSBub25jZQ==";

fn config(flags: u8) -> Config {
    let mut config = Config {
        auto_pong: flags & NO_AUTO_PONG == 0,
        ..Config::default()
    };
    if flags & SMALL_LIMITS != 0 {
        config.limits.max_frame_payload = 64;
        config.limits.max_message_size = 100;
        config.limits.max_fragments = 3;
    }
    if flags & KEEPALIVE != 0 {
        config.keepalive = Some(Keepalive {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
        });
        config.idle_timeout = Some(Duration::from_secs(60));
    }
    config
}

/// Encodes frame specs as a peer of the driver would send them: masked
/// towards a server, with keys from a counter.
fn encode_frames(mut specs: Cursor<'_>, to_server: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut key_seed = 0x9e37_79b9u32;
    while !specs.0.is_empty() {
        let b0 = specs.byte();
        let len = match specs.byte() {
            126 => usize::from(u16::from_be_bytes([specs.byte(), specs.byte()])).max(126),
            127 => 65_536 + usize::from(specs.byte()),
            n => usize::from(n),
        };
        out.push(b0);
        let mask_bit = if to_server { 0x80 } else { 0 };
        match len {
            0..=125 => out.push(mask_bit | len as u8),
            126..=65_535 => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        let mut payload = specs.take(len).to_vec();
        payload.resize(len, b'a');
        if to_server {
            key_seed = key_seed.wrapping_mul(0x0101_0101).wrapping_add(0x6b43_a9b5);
            let key = key_seed.to_be_bytes();
            out.extend_from_slice(&key);
            apply_mask(&mut payload, key, 0);
        }
        out.extend_from_slice(&payload);
    }
    out
}

// ---------------------------------------------------------------------------
// Traces
// ---------------------------------------------------------------------------

/// An owned event; data messages whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    Violation(Violation),
}

#[derive(Default, Debug)]
struct Trace {
    items: Vec<Item>,
    partial: Option<(MessageKind, Vec<u8>)>,
}

impl Trace {
    fn data(&mut self, kind: MessageKind, data: &[u8], fin: bool) {
        assert!(
            fin || !data.is_empty(),
            "empty data chunk that is not final"
        );
        let (open, buf) = self.partial.get_or_insert_with(|| (kind, Vec::new()));
        assert_eq!(*open, kind, "the chunks of one message changed kind");
        buf.extend_from_slice(data);
        if fin {
            let (kind, buf) = self.partial.take().unwrap();
            self.items.push(match kind {
                MessageKind::Text => Item::Text(String::from_utf8(buf).expect("text chunks")),
                MessageKind::Binary => Item::Binary(buf),
            });
        }
    }

    fn embedded(&mut self, ev: EmbeddedEvent<'_>) {
        match ev {
            EmbeddedEvent::Text { data, fin } => self.data(MessageKind::Text, data.as_bytes(), fin),
            EmbeddedEvent::Binary { data, fin } => self.data(MessageKind::Binary, data, fin),
            EmbeddedEvent::Ping(p) => self.items.push(Item::Ping(p.to_vec())),
            EmbeddedEvent::Pong(p) => self.items.push(Item::Pong(p.to_vec())),
            EmbeddedEvent::Close { code, reason } => {
                if let Some(code) = code {
                    assert!(CloseCode(code).is_allowed_on_wire(), "surfaced code {code}");
                }
                assert!(
                    reason.len() <= 123,
                    "close reason of {} bytes",
                    reason.len()
                );
                self.items.push(Item::Close(code, reason.into()));
            }
        }
    }

    fn core(&mut self, ev: ws::Event<'_>) {
        match ev {
            ws::Event::Text { data, fin } => self.data(MessageKind::Text, data.as_bytes(), fin),
            ws::Event::Binary { data, fin } => self.data(MessageKind::Binary, data, fin),
            ws::Event::Ping(p) => self.items.push(Item::Ping(p.to_vec())),
            ws::Event::Pong(p) => self.items.push(Item::Pong(p.to_vec())),
            ws::Event::Close { code, reason } => self
                .items
                .push(Item::Close(code.map(|c| c.0), reason.into())),
        }
    }
}

/// What the core itself surfaces from `stream`, fed whole.
fn reference(role: Role, config: Config, stream: &[u8]) -> Vec<Item> {
    let mut conn = Connection::new(role, config);
    let mut buf = stream.to_vec();
    let mut trace = Trace::default();
    let mut at = 0;
    loop {
        match conn.receive(&mut buf[at..]) {
            Ok(r) => {
                at += r.consumed;
                match r.event {
                    Some(ev) => trace.core(ev),
                    None if r.consumed == 0 => break,
                    None => {}
                }
            }
            Err(ws::Error::Protocol(v)) => {
                trace.items.push(Item::Violation(v));
                break;
            }
            Err(e) => panic!("core receive: {e:?}"),
        }
    }
    trace.items
}

// ---------------------------------------------------------------------------
// Oracles on what the driver wrote
// ---------------------------------------------------------------------------

/// Checks the frames `bytes` (everything the driver wrote after its head)
/// for a sender of role `client`/server. `cut`: a failed write may have left
/// the last frame unfinished.
fn check_frames(bytes: &[u8], client: bool, cut: bool) {
    let mut at = 0;
    // The kind of the message being sent, if one is open.
    let mut open: Option<OpCode> = None;
    let mut text = Vec::new();
    let mut closed = false;
    while at < bytes.len() {
        let (h, n) = match FrameHeader::parse(&bytes[at..]) {
            Ok(HeaderStatus::Complete(h, n)) => (h, n),
            Ok(HeaderStatus::Partial) => {
                assert!(cut, "the driver left a frame header unfinished");
                return;
            }
            Err(v) => panic!("the driver wrote an invalid frame header: {v:?}"),
        };
        let len = usize::try_from(h.payload_len).unwrap();
        if bytes.len() - at - n < len {
            assert!(cut, "the driver left a frame unfinished");
            return;
        }
        let mut payload = bytes[at + n..at + n + len].to_vec();
        at += n + len;
        assert_eq!(h.rsv, 0, "RSV bits set without an extension");
        match h.mask {
            Some(key) => {
                assert!(client, "a server masked a frame");
                apply_mask(&mut payload, key, 0);
            }
            None => assert!(!client, "a client sent an unmasked frame"),
        }
        match h.opcode {
            OpCode::Ping | OpCode::Pong => {
                assert!(
                    !closed || h.opcode == OpCode::Pong,
                    "a Ping after the driver's Close"
                );
            }
            OpCode::Close => {
                assert!(!closed, "two Close frames");
                closed = true;
                match payload.as_slice() {
                    [] => {}
                    [hi, lo, reason @ ..] => {
                        let code = u16::from_be_bytes([*hi, *lo]);
                        assert!(
                            CloseCode(code).is_allowed_on_wire(),
                            "sent close code {code}"
                        );
                        assert!(
                            core::str::from_utf8(reason).is_ok(),
                            "close reason not UTF-8"
                        );
                    }
                    [_] => panic!("a one-byte Close payload"),
                }
            }
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                assert!(!closed, "a data frame after the driver's Close");
                match (h.opcode, open) {
                    (OpCode::Continuation, None) => panic!("a continuation with no message open"),
                    (OpCode::Continuation, Some(_)) => {}
                    (_, Some(_)) => panic!("a new message while one is open"),
                    (op, None) => {
                        open = Some(op);
                        text.clear();
                    }
                }
                if open == Some(OpCode::Text) {
                    text.extend_from_slice(&payload);
                }
                if h.fin {
                    if open == Some(OpCode::Text) {
                        assert!(core::str::from_utf8(&text).is_ok(), "sent text not UTF-8");
                    }
                    open = None;
                }
            }
        }
    }
}

/// The length of the whole HTTP response (head and `Content-Length` body)
/// at the front of `out`.
fn http_response_len(out: &[u8]) -> Option<usize> {
    let mut headers = [EMPTY_HEADER; 16];
    let mut res = wsproto_adapters::wsproto::httparse::Response::new(&mut headers);
    let head = match res.parse(out) {
        Ok(wsproto_adapters::wsproto::httparse::Status::Complete(n)) => n,
        _ => return None,
    };
    let body = res
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| core::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
        .unwrap_or(0);
    Some(head + body)
}

/// Where the head ends in `out` (after `\r\n\r\n`), if it does.
fn head_end(out: &[u8]) -> Option<usize> {
    out.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

/// An application call.
#[derive(Clone, Copy, Debug)]
enum Call {
    Read,
    SendText(usize),
    SendBinary(usize),
    SendFragment(MessageKind, usize, bool),
    Ping(usize),
    Close(u16, usize),
    Advance(u64),
    ReadAll,
}

fn decode_call(which: u8, arg: u8) -> Call {
    let a = usize::from(arg);
    match which % 8 {
        0 => Call::Read,
        1 => Call::SendText(a),
        2 => Call::SendBinary(a * 5),
        3 => Call::SendFragment(
            if arg & 1 == 0 {
                MessageKind::Text
            } else {
                MessageKind::Binary
            },
            (a >> 2) * 9,
            arg & 2 != 0,
        ),
        4 => Call::Ping(a),
        5 => Call::Close(
            [1000, 1001, 1011, 3000, 4999, 1005, 999, 5000][a % 8],
            (a >> 3) * 5,
        ),
        6 => Call::Advance(u64::from(arg)),
        _ => Call::ReadAll,
    }
}

/// `len` bytes of valid UTF-8 text (ASCII plus two-, three- and four-byte
/// characters), cut at a character boundary.
fn text_of(len: usize) -> String {
    let mut s = String::new();
    for c in "hé✓𝄞 wsproto ".chars().cycle() {
        if s.len() + c.len_utf8() > len {
            break;
        }
        s.push(c);
    }
    s
}

fn bytes_of(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

/// What the run has seen that makes an error legitimate.
struct Bounds {
    rx_len: usize,
    tx_len: usize,
    timers: bool,
}

/// Checks an error from a read (or from `close`, which reads).
fn check_read_error<E: core::fmt::Debug>(e: &Error<E>, wire: &Wire, ctx: &Bounds) {
    match e {
        Error::ConnectionClosed => {}
        Error::Io(_) => assert!(
            wire.faulted_read || wire.faulted_write,
            "Io error without a fault: {e:?}"
        ),
        Error::Protocol(ws::Error::Protocol(v)) => {
            let code = v.close_code().0;
            // 1008: a message stalled past `Config::min_progress` (a timer).
            assert!(
                matches!(code, 1002 | 1007 | 1009) || *v == ws::Violation::TooSlow,
                "{v:?} closes with {code}"
            );
        }
        Error::Protocol(ws::Error::AbnormalClosure) => {}
        Error::Protocol(ws::Error::Timeout(_)) => assert!(ctx.timers, "a timeout with no timers"),
        Error::Protocol(ws::Error::Misuse(Misuse::BufferTooSmall { .. })) => assert!(
            ctx.rx_len < MIN_RECEIVE_BUFFER || ctx.tx_len < MIN_TRANSMIT_BUFFER,
            "BufferTooSmall with rx {} and tx {}",
            ctx.rx_len,
            ctx.tx_len
        ),
        other => panic!("undocumented read error {other:?}"),
    }
}

/// Checks an error from a send, ping or timer call.
fn check_call_error<E: core::fmt::Debug>(e: &Error<E>, wire: &Wire, ctx: &Bounds) {
    match e {
        Error::Protocol(ws::Error::Misuse(_)) | Error::ConnectionClosed => {}
        Error::Protocol(ws::Error::Timeout(_)) => assert!(ctx.timers, "a timeout with no timers"),
        // The minimum-progress rule (on by default) failing a stalled message.
        Error::Protocol(ws::Error::Protocol(ws::Violation::TooSlow)) => {}
        Error::Io(_) => assert!(
            wire.faulted_read || wire.faulted_write,
            "Io error without a fault: {e:?}"
        ),
        other => panic!("undocumented error from a send {other:?}"),
    }
}

/// What a run ended with, for the tests that replay inputs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The opening handshake succeeded.
    pub opened: bool,
    /// The events the driver surfaced (whole messages), then the violation
    /// it failed with, if any.
    pub items: Vec<Item>,
    /// Everything the driver wrote.
    pub written: Vec<u8>,
}

/// Runs one input through the driver and checks every oracle (panics on a
/// failed one).
pub fn embedded_driver(data: &[u8]) -> Outcome {
    let mut input = Cursor(data);
    let flags = input.byte();
    let rx_len = 8 + 4 * usize::from(input.byte());
    let tx_len = 8 + 4 * usize::from(input.byte());
    let counts = input.byte();
    let read_sizes: Vec<usize> = input
        .take(usize::from(counts & 0x0f))
        .iter()
        .map(|&b| usize::from(b))
        .collect();
    let write_sizes: Vec<usize> = input
        .take(usize::from(counts >> 4))
        .iter()
        .map(|&b| usize::from(b))
        .collect();
    let faults = input.byte();
    let mut calls = Vec::new();
    if flags & CALLS != 0 {
        let n = input.byte();
        for _ in 0..n {
            if input.0.is_empty() {
                break;
            }
            calls.push(decode_call(input.byte(), input.byte()));
        }
    }
    let client = flags & CLIENT != 0;
    let raw = flags & RAW_HANDSHAKE != 0;
    let config = config(flags);
    let stream = if flags & FRAMED != 0 {
        encode_frames(Cursor(input.0), !client)
    } else {
        input.0.to_vec()
    };
    let mut wire = Wire {
        client,
        raw_handshake: raw,
        read_sizes,
        write_sizes,
        fail_read: usize::from(faults & 0x0f),
        fail_write: usize::from(faults >> 4),
        pend: flags & PEND != 0,
        ..Wire::default()
    };
    // The output bound: the handshake, each call's frame and one control
    // frame per two bytes read; reserved so the socket never allocates.
    let out_bound = 4096 + (calls.len() + 2) * (tx_len + 256) + stream.len() * 70;
    wire.out.reserve(out_bound);
    let mut client_hs = None;
    let request = ClientRequest::new("example.com", "/chat");
    if client {
        wire.tail = stream.clone();
    } else if raw {
        wire.input = splice(&stream, KEY);
        wire.input_ready = true;
    } else {
        let mut head = [0u8; 512];
        let (hs, n) = ClientHandshake::new(
            &request,
            &mut FuzzRng::new(0x5eed),
            &Config::default(),
            Instant::ZERO,
            &mut head,
        )
        .unwrap();
        client_hs = Some(hs);
        wire.input = head[..n].to_vec();
        wire.input.extend_from_slice(&stream);
        wire.input_ready = true;
    }
    wire.input.reserve(0);
    let wire = RefCell::new(wire);
    let ctx = Bounds {
        rx_len,
        tx_len,
        timers: flags & KEEPALIVE != 0,
    };
    let mut rx = vec![0u8; rx_len];
    let mut tx = vec![0u8; tx_len];
    let items = if client {
        let opened = block_on(WebSocket::connect(
            Socket(&wire),
            &mut rx,
            &mut tx,
            &request,
            config,
            FuzzRng::new(0xc11e47),
            Instant::ZERO,
        ));
        match opened {
            Ok(ws) => run(ws, &wire, &ctx, &calls, config, raw, &stream),
            Err(e) => {
                handshake_failed(&e, &wire.borrow(), &ctx, raw);
                return Outcome {
                    written: wire.into_inner().out,
                    ..Outcome::default()
                };
            }
        }
    } else {
        let opened = block_on(WebSocket::accept(
            Socket(&wire),
            &mut rx,
            &mut tx,
            config,
            Instant::ZERO,
        ));
        match opened {
            Ok(ws) => {
                if let Some(mut hs) = client_hs {
                    let w = wire.borrow();
                    let mut headers = [EMPTY_HEADER; 32];
                    match hs.parse(&request, &w.out, &mut headers) {
                        Ok(Some(_)) => {}
                        other => panic!("the core client refuses the server's 101: {other:?}"),
                    }
                }
                run(ws, &wire, &ctx, &calls, config, raw, &stream)
            }
            Err(e) => {
                handshake_failed(&e, &wire.borrow(), &ctx, raw);
                return Outcome {
                    written: wire.into_inner().out,
                    ..Outcome::default()
                };
            }
        }
    };
    // The connection opened: its head is whole, frames follow.
    let w = wire.into_inner();
    check_output(&w, out_bound);
    let end = head_end(&w.out).expect("an opened connection wrote its head");
    check_frames(&w.out[end..], client, w.faulted_write);
    Outcome {
        opened: true,
        items,
        written: w.out,
    }
}

fn check_output(w: &Wire, out_bound: usize) {
    assert_eq!(
        w.written_after_fault, 0,
        "the driver wrote after a failed write"
    );
    assert!(
        w.out.len() <= out_bound,
        "the driver wrote {} bytes",
        w.out.len()
    );
}

/// A failed `accept`/`connect`: the error must fit what happened.
fn handshake_failed<E: core::fmt::Debug>(e: &Error<E>, wire: &Wire, ctx: &Bounds, raw: bool) {
    check_output(wire, usize::MAX);
    let adequate = ctx.rx_len >= 512 && ctx.tx_len >= 256;
    match e {
        Error::Io(_) => assert!(wire.faulted_read || wire.faulted_write, "{e:?}"),
        Error::Handshake(he) => {
            assert!(raw || !adequate, "a valid handshake failed: {he:?}");
            if !wire.client && !wire.faulted_write && !wire.out.is_empty() {
                let status = he.status().expect("a server error has a status");
                let line = format!("HTTP/1.1 {status} ");
                assert!(
                    wire.out.starts_with(line.as_bytes()),
                    "{he:?} answered with {:?}",
                    String::from_utf8_lossy(&wire.out[..wire.out.len().min(40)])
                );
                assert_eq!(
                    http_response_len(&wire.out),
                    Some(wire.out.len()),
                    "the error answer is not one whole response"
                );
            }
        }
        Error::ConnectionClosed => assert!(raw, "EOF inside a valid head"),
        Error::Protocol(ws::Error::Misuse(Misuse::BufferTooSmall { .. })) => {
            assert!(
                !adequate,
                "BufferTooSmall with rx {} tx {}",
                ctx.rx_len, ctx.tx_len
            )
        }
        other => panic!("undocumented handshake error {other:?}"),
    }
}

fn run<R: RngCore>(
    mut ws: WebSocket<'_, Socket<'_>, R>,
    wire: &RefCell<Wire>,
    ctx: &Bounds,
    calls: &[Call],
    config: Config,
    raw: bool,
    stream: &[u8],
) -> Vec<Item> {
    let client = wire.borrow().client;
    let mut trace = Trace::default();
    let mut now = Instant::ZERO;
    let mut ended = false;
    let max_events = stream.len() + 16;
    let mut events = 0usize;
    // One read: records the event; `false` once the driver returned an error.
    let mut read_one = |ws: &mut WebSocket<'_, Socket<'_>, R>, trace: &mut Trace| -> bool {
        wire.borrow_mut().eof_reads_this_call = 0;
        let r = block_on(ws.read());
        match r {
            Ok(ev) => {
                events += 1;
                assert!(events <= max_events, "more events than input bytes");
                let len = match ev {
                    EmbeddedEvent::Text { data, .. } => data.len(),
                    EmbeddedEvent::Binary { data, .. }
                    | EmbeddedEvent::Ping(data)
                    | EmbeddedEvent::Pong(data) => data.len(),
                    EmbeddedEvent::Close { reason, .. } => reason.len(),
                };
                assert!(len <= ctx.rx_len, "an event larger than rx");
                trace.embedded(ev);
                true
            }
            Err(e) => {
                check_read_error(&e, &wire.borrow(), ctx);
                if let Error::Protocol(ws::Error::Protocol(v)) = e {
                    trace.items.push(Item::Violation(v));
                }
                false
            }
        }
    };
    for &call in calls {
        if ended {
            break;
        }
        wire.borrow_mut().eof_reads_this_call = 0;
        let result = match call {
            Call::Read => {
                ended = !read_one(&mut ws, &mut trace);
                continue;
            }
            Call::ReadAll => {
                while read_one(&mut ws, &mut trace) {}
                ended = true;
                continue;
            }
            Call::SendText(n) => block_on(ws.send_text(&text_of(n))),
            Call::SendBinary(n) => block_on(ws.send_binary(&bytes_of(n))),
            Call::SendFragment(kind, n, fin) => {
                let data = match kind {
                    MessageKind::Text => text_of(n).into_bytes(),
                    MessageKind::Binary => bytes_of(n),
                };
                block_on(ws.send_fragment(kind, &data, fin))
            }
            Call::Ping(n) => block_on(ws.ping(&bytes_of(n))),
            Call::Close(code, n) => {
                let reason = text_of(n);
                match block_on(ws.close(code, &reason)) {
                    Ok(()) => {
                        ended = true;
                        continue;
                    }
                    Err(e @ Error::Protocol(ws::Error::Misuse(_))) => Err(e),
                    Err(e) => {
                        // `close` discards what it reads, so the events it
                        // passed over are not in the trace: nor is its error.
                        check_read_error(&e, &wire.borrow(), ctx);
                        ended = true;
                        continue;
                    }
                }
            }
            Call::Advance(secs) => {
                now += Duration::from_secs(secs);
                ws.handle_timeout(now)
            }
        };
        if let Err(e) = result {
            check_call_error(&e, &wire.borrow(), ctx);
        }
    }
    if !ended {
        while read_one(&mut ws, &mut trace) {}
    }
    // Once ended (other than by a transport fault, which may pass), the
    // driver stays ended without touching the socket.
    let faulted = {
        let w = wire.borrow();
        w.faulted_read || w.faulted_write
    };
    if !faulted {
        let reads = wire.borrow().reads;
        wire.borrow_mut().eof_reads_this_call = 0;
        let again = block_on(ws.read()).map(|_| ());
        assert!(again.is_err(), "an event after the driver's end");
        assert!(
            wire.borrow().reads <= reads + 1,
            "the driver kept reading after its end"
        );
    }
    drop(ws);
    if !raw {
        let role = if client { Role::Client } else { Role::Server };
        let expected = reference(role, config, stream);
        assert!(
            trace.items.len() <= expected.len() && expected[..trace.items.len()] == trace.items[..],
            "the driver's events differ from the core's:\n driver {:?}\n core   {:?}",
            trace.items,
            expected
        );
    }
    trace.items
}
