//! WebSocket extensions negotiated through `Sec-WebSocket-Extensions`
//! (RFC 6455 §9) and carried by the RSV bits.
//!
//! Only [`deflate`](crate::extensions::deflate) (permessage-deflate,
//! [RFC 7692]) exists so far. Its pieces (negotiation, inflater,
//! compressor) stand alone here; the connection does not use them yet.
//!
//! [RFC 7692]: https://www.rfc-editor.org/rfc/rfc7692

pub mod deflate;
