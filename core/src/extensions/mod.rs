//! WebSocket extensions negotiated through `Sec-WebSocket-Extensions`
//! (RFC 6455 §9) and carried by the RSV bits.
//!
//! Only [`deflate`](crate::extensions::deflate) (permessage-deflate,
//! [RFC 7692]) exists so far. Its pieces (negotiation, inflater,
//! compressor) stand alone, and [`Deflate`](crate::extensions::deflate::Deflate) joins them into the
//! state a [`crate::Connection`] holds.
//!
//! [RFC 7692]: https://www.rfc-editor.org/rfc/rfc7692

pub mod deflate;
