//! The job's fixed inputs, the bytes expected back, and the status that
//! names each step when it does not match.

// The `adapter`, `deflate` and `reference` jobs use only some of them.
#![cfg_attr(
    any(feature = "adapter", feature = "deflate", feature = "reference"),
    allow(dead_code)
)]

/// RFC 6455 §1.3: the client's opening handshake.
pub const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// The whole answer, with the RFC's accept value for that key.
pub const RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

/// RFC 6455 §5.7: a single-frame masked text message "Hello".
pub const FRAME: [u8; 11] = [
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];

/// The server's unmasked echo of it.
pub const ECHO: [u8; 7] = [0x81, 0x05, b'H', b'e', b'l', b'l', b'o'];

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
