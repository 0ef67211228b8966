//! The job: the server side of the RFC 6455 §1.3 handshake and an echo of
//! the §5.7 "Hello" frame, with the caller's (stack) buffers only.

use core::hint::black_box;
use wsproto::handshake::{Accept, ServerHandshake};
use wsproto::httparse;
use wsproto::{Config, Connection, Event, Instant, Role};

/// RFC 6455 §1.3: the client's opening handshake.
const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// The whole answer, with the RFC's accept value for that key.
const RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

/// RFC 6455 §5.7: a single-frame masked text message "Hello".
const FRAME: [u8; 11] = [
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];

/// The server's unmasked echo of it.
const ECHO: [u8; 7] = [0x81, 0x05, b'H', b'e', b'l', b'l', b'o'];

/// Status: the request was refused or incomplete.
pub const PARSE: u32 = 1;
/// Status: the request's path or key is not what was sent.
pub const REQUEST_FIELDS: u32 = 2;
/// Status: writing the response failed.
pub const ACCEPT: u32 = 3;
/// Status: the response differs from [`RESPONSE`].
pub const RESPONSE_BYTES: u32 = 4;
/// Status: the frame was refused.
pub const RECEIVE: u32 = 5;
/// Status: the frame was not read whole, or not as the text "Hello".
pub const EVENT: u32 = 6;
/// Status: encoding the echo failed.
pub const SEND: u32 = 7;
/// Status: the echo differs from [`ECHO`].
pub const ECHO_BYTES: u32 = 8;

/// Runs the job; 0 when every byte matched, otherwise the failing step.
#[inline(never)]
pub fn run() -> u32 {
    match job() {
        Ok(()) => 0,
        Err(step) => step,
    }
}

fn job() -> Result<(), u32> {
    // The optimiser must not see the fixed inputs.
    let request = black_box(REQUEST);
    let mut frame = black_box(FRAME);

    // Handshake: parse and answer.
    let config = Config::default();
    let mut response = [0u8; 256];
    let written = {
        let mut handshake = ServerHandshake::new(&config, Instant::ZERO);
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let req = handshake
            .parse(request, &mut headers)
            .map_err(|_| PARSE)?
            .ok_or(PARSE)?;
        if req.path() != "/chat" || req.key() != b"dGhlIHNhbXBsZSBub25jZQ==" {
            return Err(REQUEST_FIELDS);
        }
        req.accept(&Accept::default(), &mut response)
            .map_err(|_| ACCEPT)?
    };
    if response.get(..written) != Some(RESPONSE) {
        return Err(RESPONSE_BYTES);
    }

    // The masked frame, then the echo.
    let mut conn = Connection::new(Role::Server, config);
    let received = conn.receive(&mut frame).map_err(|_| RECEIVE)?;
    let text = match received.event {
        Some(Event::Text { data, fin: true }) if received.consumed == FRAME.len() => data,
        _ => return Err(EVENT),
    };
    if text != "Hello" {
        return Err(EVENT);
    }
    let mut echo = [0u8; 64];
    let n = conn.send_text(text, &mut echo).map_err(|_| SEND)?;
    if echo.get(..n) != Some(&ECHO[..]) {
        return Err(ECHO_BYTES);
    }
    black_box((&response, &echo));
    Ok(())
}
