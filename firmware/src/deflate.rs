//! The job with permessage-deflate (RFC 7692; feature `deflate`): the
//! request offers it, the server agrees to 9-bit windows and runs a
//! permessage-deflate connection, receives the RFC 7692 §7.2.3.1 compressed
//! "Hello" (masked, as a client sends it) and sends a compressed echo. The
//! echo is checked by decoding it with a client-side connection.
//!
//! Both connections live in statics, never on the stack: each `Deflate9`
//! state (7,856 B on 32-bit targets: windows, hash tables, Huffman tables)
//! is built at compile time by `Deflate9::new_const` (all zeros, so in
//! `.bss`) and configured in place once the handshake agreed, and the
//! connection, which borrows it, is moved into a static of its own. `static_cell` hands each out once as `&'static mut`,
//! with no `unsafe` here (on targets without compare-and-swap its
//! portable-atomic falls back to masking interrupts: single-core parts).

use crate::fixtures::{ACCEPT, EVENT, PARSE, RECEIVE, REQUEST_FIELDS, RESPONSE_BYTES, SEND};
use core::hint::black_box;
use static_cell::{ConstStaticCell, StaticCell};
use wsproto::extensions::deflate::{Agreed, Deflate9, DeflateConfig};
use wsproto::handshake::{Accept, ServerHandshake};
use wsproto::httparse;
use wsproto::{Config, Connection, Event, Instant, NoRng, Role};

/// A connection whose deflate state lives in a static of its own.
pub type StaticDeflateConnection = Connection<NoRng, &'static mut Deflate9>;

/// The server's deflate state, built at compile time.
static SERVER_STATE: ConstStaticCell<Deflate9> = ConstStaticCell::new(Deflate9::new_const());
/// The server's connection.
static SERVER: StaticCell<StaticDeflateConnection> = StaticCell::new();
/// The checking client's deflate state.
static CLIENT_STATE: ConstStaticCell<Deflate9> = ConstStaticCell::new(Deflate9::new_const());
/// The checking client's connection.
static CLIENT: StaticCell<StaticDeflateConnection> = StaticCell::new();

/// The RFC 6455 §1.3 request, offering permessage-deflate with the server's
/// window at 9 bits (so that a `Deflate9` client can read the echo).
const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9; \
client_max_window_bits\r\n\r\n";

/// The whole answer: 9-bit windows both ways.
const RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9; \
client_max_window_bits=9\r\n\r\n";

/// RFC 7692 §7.2.3.1's compressed "Hello" (`f2 48 cd c9 c9 07 00`), RSV1
/// set, masked with the RFC 6455 §5.7 key `37 fa 21 3d`.
const FRAME: [u8; 13] = [
    0xc1, 0x87, 0x37, 0xfa, 0x21, 0x3d, 0xc5, 0xb2, 0xec, 0xf4, 0xfe, 0xfd, 0x21,
];

/// Status: the echo is not a compressed text frame that decodes to "Hello".
pub const ECHO_DECODE: u32 = 9;

/// Runs the job; 0 when every check passed, otherwise the failing step.
#[inline(never)]
pub fn run() -> u32 {
    match job() {
        Ok(()) => 0,
        Err(step) => step,
    }
}

fn job() -> Result<(), u32> {
    let request = black_box(REQUEST);
    let mut frame = black_box(FRAME);

    let config = Config::default();
    let mut response = [0u8; 256];
    let (written, agreed) = {
        let mut handshake = ServerHandshake::new(&config, Instant::ZERO);
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let req = handshake
            .parse(request, &mut headers)
            .map_err(|_| PARSE)?
            .ok_or(PARSE)?;
        let wanted = DeflateConfig {
            max_window_bits: 9,
            ..DeflateConfig::default()
        };
        let agreed = req.negotiate_deflate(&wanted).ok_or(REQUEST_FIELDS)?;
        let n = req
            .accept_deflate(&Accept::default(), &agreed, &mut response)
            .map_err(|_| ACCEPT)?;
        (n, agreed)
    };
    if response.get(..written) != Some(RESPONSE) {
        return Err(RESPONSE_BYTES);
    }

    // Each connection is set up in its own call, so that the frames that
    // build them do not add up on the stack.
    let (mut echo, n) = serve(&agreed, config, &mut frame)?;
    let echo = echo.get_mut(..n).ok_or(SEND)?;
    // FIN, RSV1 (compressed), text; unmasked.
    if echo.first() != Some(&0xc1) || echo.get(1).is_none_or(|&b| b & 0x80 != 0) {
        return Err(ECHO_DECODE);
    }
    read_back(&agreed, config, echo)
}

/// The server's connection: receives `frame`, returns the echo frame.
#[inline(never)]
fn serve(agreed: &Agreed, config: Config, frame: &mut [u8]) -> Result<([u8; 64], usize), u32> {
    let deflate = SERVER_STATE.try_take().ok_or(ACCEPT)?;
    deflate
        .configure(agreed, Role::Server)
        .map_err(|_| ACCEPT)?;
    let server = SERVER
        .try_init(Connection::new(Role::Server, config).with_extension(deflate))
        .ok_or(ACCEPT)?;
    let mut scratch = [0u8; 64];
    let frame_len = frame.len();
    let received = server
        .receive_into(frame, &mut scratch)
        .map_err(|_| RECEIVE)?;
    let text = match received.event {
        Some(Event::Text { data, fin: true }) if received.consumed == frame_len => data,
        _ => return Err(EVENT),
    };
    if text != "Hello" {
        return Err(EVENT);
    }
    let mut echo = [0u8; 64];
    let n = server.send_text("Hello", &mut echo).map_err(|_| SEND)?;
    Ok((echo, n))
}

/// The client's side of the same agreement must read "Hello" back.
#[inline(never)]
fn read_back(agreed: &Agreed, config: Config, echo: &mut [u8]) -> Result<(), u32> {
    let n = echo.len();
    let deflate = CLIENT_STATE.try_take().ok_or(ECHO_DECODE)?;
    deflate
        .configure(agreed, Role::Client)
        .map_err(|_| ECHO_DECODE)?;
    let client = CLIENT
        .try_init(Connection::new(Role::Client, config).with_extension(deflate))
        .ok_or(ECHO_DECODE)?;
    let mut scratch = [0u8; 64];
    let decoded = client
        .receive_into(echo, &mut scratch)
        .map_err(|_| ECHO_DECODE)?;
    match decoded.event {
        Some(Event::Text {
            data: "Hello",
            fin: true,
        }) if decoded.consumed == n => Ok(()),
        _ => Err(ECHO_DECODE),
    }
}
