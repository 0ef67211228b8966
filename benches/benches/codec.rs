//! Codec benchmarks: wsproto side by side with tungstenite, fastwebsockets,
//! tokio-websockets and embedded-websocket, in the same run, on the same bytes.
//!
//! ```text
//! cargo bench -p wsproto-benches --bench codec -- --warm-up-time 1 --measurement-time 2
//! ```
//!
//! Groups (criterion ids are `group/crate/size`):
//! * `decode_{binary,text}` — N masked client frames, one buffer, decoded by a
//!   server: unmask + (for text) UTF-8 validation, counting every frame.
//!   - `wsproto_inplace`: the receive contract on a fresh copy of the buffer
//!     (the copy is made by `iter_batched_ref`'s setup, outside the timing);
//!   - `wsproto_copy`: the whole buffer copied into a reused one, then
//!     decoded in place (two passes over the bytes);
//!   - `wsproto_each`: the same, every frame of the buffer through
//!     `receive_each` calls (many frames per call) instead of one `receive`
//!     call per frame;
//!   - `wsproto_read`, and every peer: the bytes come from the same reader, so
//!     the timing includes copying the input into the decoder's buffer (what
//!     the peers' APIs do: they read from a stream into their own buffer);
//!     wsproto reads 64 KiB at a time and decodes each read with
//!     `receive_each`, as its adapters do;
//!   - `clone_alone`: the `Vec` clone the in-place variant's setup makes;
//!   - `memcpy`: `copy_from_slice` of the same bytes into a reused buffer,
//!     the physical reference.
//! * `encode_{server,client}` — one binary frame, unmasked (server) or masked
//!   (client), written into a reused buffer.
//! * `handshake` — parse a browser-like upgrade request and write the 101.
//! * `utf8` — validation alone.
//!
//! Throughput is in payload bytes (frame headers are not counted); frames per
//! second follow from the frame counts in `FRAMES` (printed at start).

use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::io::{Read, Write};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use std::ops::ControlFlow;
use wsproto::frame::{encode_frame, FrameHeader, OpCode};
use wsproto::{Config, Connection, Event, Role};

/// Payload sizes and how many frames of each one buffer holds.
const SIZES: [(usize, usize); 4] = [(16, 4096), (1024, 512), (64 << 10, 16), (1 << 20, 4)];

/// A deterministic xorshift RNG for masking keys (rand_core 0.9 for wsproto,
/// 0.6 for embedded-websocket).
#[derive(Clone)]
struct XorShift(u64);

impl XorShift {
    fn step(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

impl wsproto::rand_core::RngCore for XorShift {
    fn next_u32(&mut self) -> u32 {
        self.step() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.step()
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for b in dst {
            *b = self.step() as u8;
        }
    }
}

impl rand_core_06::RngCore for XorShift {
    fn next_u32(&mut self) -> u32 {
        self.step() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.step()
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for b in dst {
            *b = self.step() as u8;
        }
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), rand_core_06::Error> {
        rand_core_06::RngCore::fill_bytes(self, dst);
        Ok(())
    }
}

/// Mostly ASCII text with 2-, 3- and 4-byte code points, exactly `len` bytes.
fn text_payload(len: usize) -> Vec<u8> {
    let pattern = "The quick brown fox — señor Müller paid 5 € for 🦊 emoji; ";
    let mut s = String::with_capacity(len + 64);
    while s.len() < len {
        s.push_str(pattern);
    }
    let mut cut = len;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    while s.len() < len {
        s.push('a');
    }
    s.into_bytes()
}

fn binary_payload(len: usize) -> Vec<u8> {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    (0..len).map(|_| rng.step() as u8).collect()
}

/// `count` masked client frames of `payload`, each with its own key.
fn client_frames(payload: &[u8], count: usize, opcode: OpCode) -> Vec<u8> {
    let mut rng = XorShift(42);
    let mut out = vec![0u8; count * (payload.len() + 14)];
    let mut len = 0;
    for _ in 0..count {
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask: Some((rng.step() as u32).to_ne_bytes()),
            payload_len: 0,
        };
        len += encode_frame(header, payload, &mut out[len..]).expect("frame fits");
    }
    out.truncate(len);
    out
}

fn big_config() -> Config {
    let mut config = Config::default();
    config.limits.max_message_size = 64 << 20;
    config.limits.max_frame_payload = 64 << 20;
    config.limits.max_fragments = 1 << 20;
    config
}

/// `Connection::receive_each` over a buffer of whole frames (several frames
/// per call); returns the frames seen.
fn wsproto_decode_each(conn: &mut Connection, buf: &mut [u8]) -> usize {
    let mut frames = 0;
    let mut pos = 0;
    loop {
        let consumed = conn
            .receive_each(&mut buf[pos..], |event| {
                match event {
                    Event::Text { data, fin } => {
                        black_box(data);
                        frames += usize::from(fin);
                    }
                    Event::Binary { data, fin } => {
                        black_box(data);
                        frames += usize::from(fin);
                    }
                    other => panic!("unexpected {other:?}"),
                }
                ControlFlow::Continue(())
            })
            .expect("valid frames");
        if consumed == 0 {
            return frames;
        }
        pos += consumed;
    }
}

/// The receive contract over a buffer of whole frames; returns the frames seen.
fn wsproto_decode(conn: &mut Connection, buf: &mut [u8]) -> usize {
    let mut pos = 0;
    let mut frames = 0;
    loop {
        let received = conn.receive(&mut buf[pos..]).expect("valid frames");
        match received.event {
            Some(Event::Text { data, fin }) => {
                black_box(data);
                frames += usize::from(fin);
            }
            Some(Event::Binary { data, fin }) => {
                black_box(data);
                frames += usize::from(fin);
            }
            Some(other) => panic!("unexpected {other:?}"),
            None if received.consumed == 0 => break,
            None => {}
        }
        pos += received.consumed;
    }
    frames
}

/// The adapter's loop: read from `source` into a 64 KiB window (the
/// adapters' `RX_BUFFER`), decode every frame the window holds in one
/// `receive_each` call (as the drivers do), move the unconsumed rest to the
/// front, repeat until the source is dry. Returns the frames seen.
fn wsproto_read(conn: &mut Connection, source: &mut Source, window: &mut [u8]) -> usize {
    let mut len = 0;
    let mut frames = 0;
    loop {
        let n = source.read(&mut window[len..]).expect("in-memory read");
        len += n;
        let pos = conn
            .receive_each(&mut window[..len], |event| {
                match event {
                    Event::Text { data, fin } => {
                        black_box(data);
                        frames += usize::from(fin);
                    }
                    Event::Binary { data, fin } => {
                        black_box(data);
                        frames += usize::from(fin);
                    }
                    other => panic!("unexpected {other:?}"),
                }
                ControlFlow::Continue(())
            })
            .expect("valid frames");
        window.copy_within(pos..len, 0);
        len -= pos;
        if n == 0 {
            return frames;
        }
    }
}

/// A byte source shared with the bench loop, which rewinds it every iteration.
#[derive(Clone)]
struct Source {
    data: Rc<Vec<u8>>,
    pos: Rc<Cell<usize>>,
}

impl Source {
    fn new(data: Vec<u8>) -> Self {
        Source {
            data: Rc::new(data),
            pos: Rc::new(Cell::new(0)),
        }
    }
    fn rewind(&self) {
        self.pos.set(0);
    }
    fn next_chunk(&self, max: usize) -> &[u8] {
        let pos = self.pos.get();
        let n = max.min(self.data.len() - pos);
        self.pos.set(pos + n);
        &self.data[pos..pos + n]
    }
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let chunk = self.next_chunk(buf.len());
        buf[..chunk.len()].copy_from_slice(chunk);
        Ok(chunk.len())
    }
}

impl Write for Source {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl tokio::io::AsyncRead for Source {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let chunk = self.next_chunk(buf.remaining());
        buf.put_slice(chunk);
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Source {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Polls a future that never waits (its I/O is a `Source`) to completion.
fn run<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn print_sizes() {
    use wsproto::handshake::{ClientHandshake, ServerHandshake};
    println!(
        "size_of: wsproto::Connection = {} B, Connection<XorShift> = {} B, ServerHandshake = {} B, ClientHandshake = {} B",
        std::mem::size_of::<Connection>(),
        std::mem::size_of::<Connection<XorShift>>(),
        std::mem::size_of::<ServerHandshake>(),
        std::mem::size_of::<ClientHandshake>(),
    );
    println!(
        "size_of (peers, per-connection struct only, heap buffers not counted): tungstenite::WebSocket<Source> = {} B, \
         fastwebsockets::WebSocket<Source> = {} B, embedded_websocket::WebSocketServer = {} B",
        std::mem::size_of::<tungstenite::WebSocket<Source>>(),
        std::mem::size_of::<fastwebsockets::WebSocket<Source>>(),
        std::mem::size_of::<embedded_websocket::WebSocketServer>(),
    );
    for (size, frames) in SIZES {
        println!("FRAMES decode {size} B payload: {frames} frames per iteration");
    }
}

fn decode(c: &mut Criterion) {
    print_sizes();
    for text in [false, true] {
        let kind = if text { "text" } else { "binary" };
        let mut group = c.benchmark_group(format!("decode_{kind}"));
        for (size, count) in SIZES {
            let payload = if text {
                text_payload(size)
            } else {
                binary_payload(size)
            };
            let opcode = if text { OpCode::Text } else { OpCode::Binary };
            let wire = client_frames(&payload, count, opcode);
            group.throughput(Throughput::Bytes((size * count) as u64));
            if size >= (1 << 20) {
                group.sample_size(20);
            } else {
                group.sample_size(50);
            }

            // wsproto, in place on a fresh copy (copy made outside the timing).
            let mut conn = Connection::new(Role::Server, big_config());
            group.bench_function(BenchmarkId::new("wsproto_inplace", size), |b| {
                b.iter_batched_ref(
                    || wire.clone(),
                    |buf| assert_eq!(wsproto_decode(&mut conn, buf), count),
                    BatchSize::LargeInput,
                )
            });
            // wsproto, every frame of the buffer in one `receive_each` call.
            group.bench_function(BenchmarkId::new("wsproto_each", size), |b| {
                b.iter_batched_ref(
                    || wire.clone(),
                    |buf| assert_eq!(wsproto_decode_each(&mut conn, buf), count),
                    BatchSize::LargeInput,
                )
            });
            // wsproto, bytes copied into its buffer first (same work as the peers).
            let mut scratch = vec![0u8; wire.len()];
            group.bench_function(BenchmarkId::new("wsproto_copy", size), |b| {
                b.iter(|| {
                    scratch.copy_from_slice(&wire);
                    assert_eq!(wsproto_decode(&mut conn, &mut scratch), count)
                })
            });
            // wsproto as its adapters drive it: 64 KiB reads from the same reader
            // the peers get, decoded chunk by chunk.
            let mut source = Source::new(wire.clone());
            let mut window = vec![0u8; 64 << 10];
            group.bench_function(BenchmarkId::new("wsproto_read", size), |b| {
                b.iter(|| {
                    source.rewind();
                    assert_eq!(wsproto_read(&mut conn, &mut source, &mut window), count)
                })
            });
            group.bench_function(BenchmarkId::new("clone_alone", size), |b| {
                b.iter(|| black_box(wire.clone()))
            });
            group.bench_function(BenchmarkId::new("memcpy", size), |b| {
                b.iter(|| {
                    scratch.copy_from_slice(black_box(&wire));
                    black_box(&mut scratch);
                })
            });

            // tungstenite: sync WebSocket over a reader of the same bytes.
            let source = Source::new(wire.clone());
            let config = tungstenite::protocol::WebSocketConfig::default()
                .max_message_size(Some(64 << 20))
                .max_frame_size(Some(64 << 20));
            let mut ws = tungstenite::WebSocket::from_raw_socket(
                source.clone(),
                tungstenite::protocol::Role::Server,
                Some(config),
            );
            group.bench_function(BenchmarkId::new("tungstenite", size), |b| {
                b.iter(|| {
                    source.rewind();
                    for _ in 0..count {
                        match ws.read().expect("valid frame") {
                            tungstenite::Message::Text(t) => {
                                black_box(t);
                            }
                            tungstenite::Message::Binary(d) => {
                                black_box(d);
                            }
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                })
            });

            // fastwebsockets: read_frame (unmask; UTF-8 check on final text frames).
            let source = Source::new(wire.clone());
            let mut ws = fastwebsockets::WebSocket::after_handshake(
                source.clone(),
                fastwebsockets::Role::Server,
            );
            ws.set_max_message_size(64 << 20);
            group.bench_function(BenchmarkId::new("fastwebsockets", size), |b| {
                b.iter(|| {
                    source.rewind();
                    for _ in 0..count {
                        let frame = run(ws.read_frame()).expect("valid frame");
                        assert!(frame.fin);
                        black_box(&frame.payload);
                    }
                })
            });

            // tokio-websockets: the WebSocketStream, polled without a runtime.
            let source = Source::new(wire.clone());
            let limits = tokio_websockets::Limits::default().max_payload_len(Some(64 << 20));
            let mut ws = tokio_websockets::ServerBuilder::new()
                .limits(limits)
                .serve(source.clone());
            group.bench_function(BenchmarkId::new("tokio-websockets", size), |b| {
                b.iter(|| {
                    source.rewind();
                    for _ in 0..count {
                        let msg = run(futures_util::StreamExt::next(&mut ws))
                            .expect("a message")
                            .expect("valid frame");
                        black_box(msg.as_payload());
                    }
                })
            });

            // embedded-websocket: read() copies and unmasks from one slice into
            // another; it does not validate UTF-8, so text is validated here.
            let mut ws = embedded_websocket::WebSocketServer::new_server();
            ws.state = embedded_websocket::WebSocketState::Open;
            let mut to = vec![0u8; size + 64];
            group.bench_function(BenchmarkId::new("embedded-websocket", size), |b| {
                b.iter(|| {
                    let mut pos = 0;
                    for _ in 0..count {
                        let r = ws.read(&wire[pos..], &mut to).expect("valid frame");
                        assert!(r.end_of_message && r.len_to == size);
                        if text {
                            black_box(std::str::from_utf8(&to[..r.len_to]).expect("utf-8"));
                        }
                        black_box(&to[..r.len_to]);
                        pos += r.len_from;
                    }
                })
            });
        }
        group.finish();
    }
}

fn encode(c: &mut Criterion) {
    for masked in [false, true] {
        let side = if masked { "client" } else { "server" };
        let mut group = c.benchmark_group(format!("encode_{side}"));
        group.sample_size(50);
        for (size, _) in SIZES.iter().take(3).copied() {
            let payload = binary_payload(size);
            let mut out = vec![0u8; size + 64];
            group.throughput(Throughput::Bytes(size as u64));

            let mut conn = Connection::with_rng(
                if masked { Role::Client } else { Role::Server },
                big_config(),
                XorShift(7),
            );
            group.bench_function(BenchmarkId::new("wsproto", size), |b| {
                b.iter(|| {
                    black_box(
                        conn.send_binary(black_box(&payload), &mut out)
                            .expect("fits"),
                    )
                })
            });

            let bytes = bytes::Bytes::from(payload.clone());
            let mut rng = XorShift(7);
            let mut vec_out: Vec<u8> = Vec::with_capacity(size + 64);
            group.bench_function(BenchmarkId::new("tungstenite", size), |b| {
                b.iter(|| {
                    use tungstenite::protocol::frame::{
                        coding::Data, coding::OpCode as TOp, Frame,
                    };
                    let mut frame = Frame::message(bytes.clone(), TOp::Data(Data::Binary), true);
                    if masked {
                        frame.header_mut().mask = Some((rng.step() as u32).to_ne_bytes());
                    }
                    vec_out.clear();
                    frame.format(&mut vec_out).expect("vec write");
                    black_box(&vec_out);
                })
            });

            let mut rng = XorShift(7);
            group.bench_function(BenchmarkId::new("fastwebsockets", size), |b| {
                b.iter(|| {
                    let mask = masked.then(|| (rng.step() as u32).to_ne_bytes());
                    let mut frame = fastwebsockets::Frame::new(
                        true,
                        fastwebsockets::OpCode::Binary,
                        mask,
                        fastwebsockets::Payload::Borrowed(black_box(&payload)),
                    );
                    if masked {
                        frame.mask(); // what WriteHalf does for a client
                    }
                    black_box(frame.write(&mut vec_out).len());
                })
            });

            let mut server = embedded_websocket::WebSocketServer::new_server();
            server.state = embedded_websocket::WebSocketState::Open;
            let mut client = embedded_websocket::WebSocketClient::new_client(XorShift(7));
            client.state = embedded_websocket::WebSocketState::Open;
            group.bench_function(BenchmarkId::new("embedded-websocket", size), |b| {
                b.iter(|| {
                    let n = if masked {
                        client.write(
                            embedded_websocket::WebSocketSendMessageType::Binary,
                            true,
                            black_box(&payload),
                            &mut out,
                        )
                    } else {
                        server.write(
                            embedded_websocket::WebSocketSendMessageType::Binary,
                            true,
                            black_box(&payload),
                            &mut out,
                        )
                    };
                    black_box(n.expect("fits"))
                })
            });

            group.bench_function(BenchmarkId::new("memcpy", size), |b| {
                b.iter(|| {
                    out[..size].copy_from_slice(black_box(&payload));
                    black_box(&mut out);
                })
            });
        }
        group.finish();
    }
}

const REQUEST: &[u8] = b"GET /chat?room=1 HTTP/1.1\r\n\
Host: example.com:8080\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Cache-Control: no-cache\r\n\
Pragma: no-cache\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Origin: http://example.com:8080\r\n\
Sec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
\r\n";

fn handshake(c: &mut Criterion) {
    use wsproto::handshake::{Accept, ServerHandshake};
    let mut group = c.benchmark_group("handshake");
    group.sample_size(50);
    group.throughput(Throughput::Elements(1));
    let config = Config::default();
    let mut out = [0u8; 512];
    group.bench_function("wsproto", |b| {
        b.iter(|| {
            let mut hs = ServerHandshake::new(&config, wsproto::Instant::ZERO);
            let mut headers = [wsproto::httparse::EMPTY_HEADER; 32];
            let req = hs
                .parse(black_box(REQUEST), &mut headers)
                .expect("valid")
                .expect("complete");
            black_box(req.accept(&Accept::default(), &mut out).expect("fits"))
        })
    });
    group.bench_function("tungstenite", |b| {
        use tungstenite::handshake::machine::TryParse;
        let mut out = Vec::with_capacity(512);
        b.iter(|| {
            let (_, req) = tungstenite::handshake::server::Request::try_parse(black_box(REQUEST))
                .expect("valid")
                .expect("complete");
            let resp = tungstenite::handshake::server::create_response(&req).expect("upgrade");
            out.clear();
            tungstenite::handshake::server::write_response(&mut out, &resp).expect("vec");
            black_box(&out);
        })
    });
    group.bench_function("embedded-websocket", |b| {
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            assert!(req.parse(black_box(REQUEST)).expect("valid").is_complete());
            let ws_ctx =
                embedded_websocket::read_http_header(req.headers.iter().map(|h| (h.name, h.value)))
                    .expect("valid")
                    .expect("websocket");
            let mut ws = embedded_websocket::WebSocketServer::new_server();
            black_box(
                ws.server_accept(&ws_ctx.sec_websocket_key, None, &mut out)
                    .expect("fits"),
            )
        })
    });
    group.finish();
}

fn utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    group.sample_size(50);
    for (size, _) in SIZES.iter().take(3).copied() {
        let text = text_payload(size);
        let ascii = vec![b'a'; size];
        for (label, data) in [("mixed", &text), ("ascii", &ascii)] {
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_function(
                BenchmarkId::new(format!("core_from_utf8_{label}"), size),
                |b| b.iter(|| black_box(std::str::from_utf8(black_box(data)).is_ok())),
            );
            group.bench_function(
                BenchmarkId::new(format!("wsproto_validate_prefix_{label}"), size),
                |b| b.iter(|| black_box(wsproto::utf8::validate_prefix(black_box(data)))),
            );
            group.bench_function(BenchmarkId::new(format!("simdutf8_{label}"), size), |b| {
                b.iter(|| black_box(simdutf8::basic::from_utf8(black_box(data)).is_ok()))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, decode, encode, handshake, utf8);
criterion_main!(benches);
