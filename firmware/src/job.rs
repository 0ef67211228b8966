//! The job: the server side of the RFC 6455 §1.3 handshake and an echo of
//! the §5.7 "Hello" frame, with the caller's (stack) buffers only.

use core::hint::black_box;
use wsproto::handshake::{Accept, ServerHandshake};
use wsproto::httparse;
use wsproto::{Config, Connection, Event, Instant, Role};

use crate::fixtures::{
    ACCEPT, ECHO, ECHO_BYTES, EVENT, FRAME, PARSE, RECEIVE, REQUEST, REQUEST_FIELDS, RESPONSE,
    RESPONSE_BYTES, SEND,
};

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
