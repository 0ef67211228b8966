//! The same job done with embedded-websocket 0.9.5 (feature `reference`),
//! with the same fixed inputs, caller buffers and byte checks: the figure
//! wsproto's footprint is compared with. Its request parsing is httparse's
//! alone, and it checks less than wsproto does (no Host, Upgrade or
//! Connection header, no version; UTF-8 is checked here, by the caller).

use crate::fixtures::{
    ACCEPT, ECHO, ECHO_BYTES, EVENT, FRAME, PARSE, RECEIVE, REQUEST, REQUEST_FIELDS,
    RESPONSE_BYTES, SEND,
};

/// The same response as [`crate::fixtures::RESPONSE`], with the
/// `Connection` and `Upgrade` lines in the order embedded-websocket writes.
const RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
Connection: Upgrade\r\n\
Upgrade: websocket\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
use core::hint::black_box;
use embedded_websocket as ews;

/// Runs the job; 0 when every byte matched, otherwise the failing step.
#[inline(never)]
pub fn run() -> u32 {
    match job() {
        Ok(()) => 0,
        Err(step) => step,
    }
}

fn job() -> Result<(), u32> {
    let request = black_box(REQUEST);
    let frame = black_box(FRAME);

    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(request) {
        Ok(httparse::Status::Complete(n)) if n == request.len() => {}
        _ => return Err(PARSE),
    }
    if req.method != Some("GET") || req.path != Some("/chat") {
        return Err(REQUEST_FIELDS);
    }
    let context = match ews::read_http_header(req.headers.iter().map(|h| (h.name, h.value))) {
        Ok(Some(context)) => context,
        _ => return Err(REQUEST_FIELDS),
    };

    let mut server = ews::WebSocketServer::new_server();
    let mut response = [0u8; 256];
    let written = server
        .server_accept(&context.sec_websocket_key, None, &mut response)
        .map_err(|_| ACCEPT)?;
    if response.get(..written) != Some(RESPONSE) {
        return Err(RESPONSE_BYTES);
    }

    let mut payload = [0u8; 128];
    let read = server.read(&frame, &mut payload).map_err(|_| RECEIVE)?;
    if read.message_type != ews::WebSocketReceiveMessageType::Text
        || !read.end_of_message
        || read.len_from != FRAME.len()
    {
        return Err(EVENT);
    }
    let text = payload
        .get(..read.len_to)
        .and_then(|p| core::str::from_utf8(p).ok())
        .ok_or(EVENT)?;
    if text != "Hello" {
        return Err(EVENT);
    }

    let mut echo = [0u8; 64];
    let n = server
        .write(
            ews::WebSocketSendMessageType::Text,
            true,
            text.as_bytes(),
            &mut echo,
        )
        .map_err(|_| SEND)?;
    if echo.get(..n) != Some(&ECHO[..]) {
        return Err(ECHO_BYTES);
    }
    black_box((&response, &echo));
    Ok(())
}
