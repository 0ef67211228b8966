//! Errors, and the one table that decides what goes on the wire for each.
//!
//! Three families, kept apart on purpose:
//!
//! * [`Violation`] — the peer broke RFC 6455 after the handshake. Each maps to
//!   exactly one close code; the connection has already queued that Close
//!   frame, stopped surfacing data and discards further input (§7.1.7).
//! * [`HandshakeError`] — the opening handshake failed. On the server side each
//!   maps to one HTTP status, written by [`HandshakeError::write_response`].
//! * [`Misuse`] — the application called the API wrongly (send after close, a
//!   buffer too small). Never the peer's fault, never a panic, and the
//!   connection state is unchanged.
//!
//! # The table
//!
//! | Violation (peer)                                   | Close code |
//! |----------------------------------------------------|-----------:|
//! | RSV1/2/3 set without a negotiated extension         | 1002 |
//! | RSV2/RSV3 set (permessage-deflate owns only RSV1)   | 1002 |
//! | RSV1 on a continuation or control frame (deflate negotiated; RFC 7692 §6) | 1002 |
//! | reserved opcode (0x3–0x7, 0xB–0xF)                  | 1002 |
//! | client frame not masked (server side)               | 1002 |
//! | server frame masked (client side)                   | 1002 |
//! | control frame payload > 125 bytes                   | 1002 |
//! | control frame with FIN clear (fragmented)           | 1002 |
//! | 64-bit length with the top bit set                  | 1002 |
//! | length not in its minimal form                      | 1002 |
//! | continuation frame with no message in progress      | 1002 |
//! | new Text/Binary frame while a message is in progress| 1002 |
//! | Close payload of exactly one byte                   | 1002 |
//! | Close code not allowed on the wire (e.g. 1005, 999) | 1002 |
//! | Close reason not UTF-8                              | 1007 |
//! | Text message not UTF-8 (detected as early as possible) | 1007 |
//! | compressed message not a valid DEFLATE stream, or not ending at a block boundary once the tail is appended (RFC 7692 §7.2.2; e.g. an empty compressed frame) | 1007 |
//! | frame payload above `Limits::max_frame_payload`     | 1009 |
//! | message above `Limits::max_message_size` (compressed messages: the decompressed size, checked while inflating) | 1009 |
//! | more frames in one message than `Limits::max_fragments` | 1009 |
//! | message's charge (payload + `Limits::FRAME_CHARGE` per frame) + `Limits::FIXED_CHARGE` above `Limits::max_buffered` | 1009 |
//! | a message in progress delivered fewer data bytes in one interval than `Config::min_progress` asks (checked by `handle_timeout`) | 1008 |
//!
//! A compressed message whose data is not valid DEFLATE is answered with
//! 1007: RFC 7692 only says to _Fail the WebSocket Connection_ without naming
//! a code, and RFC 6455 §7.4.1 gives 1007 to "data within a message that was
//! not consistent with the type of the message" (Node's `ws` answers the
//! same). The frame itself was well formed, so 1002 would misdescribe it.
//! Decompressed bytes count against the memory budget as they come out (the
//! compressed payload that carried them is never held, so it is not charged).
//!
//! The memory budget answers 1009 like the other size limits: what is refused
//! is a message too big (in bytes or in frames) to hold, RFC 6455 §7.4.1's
//! "message that is too big for it to process". 1008 (policy) is left for the
//! application's own rules and for the minimum-progress rule
//! (`Config::min_progress`, [`Violation::TooSlow`]): a message trickled
//! slower than the configured floor breaks no RFC 6455 rule, only this
//! endpoint's policy, which §7.4.1's 1008 names ("a message that violates
//! its policy"). Control frames do not count as progress for it. Control-frame floods never exceed the budget: the
//! core keeps at most one pong (the latest ping wins), so they cost nothing.
//!
//! | Handshake failure (server side)                     | HTTP status |
//! |-----------------------------------------------------|------------:|
//! | not HTTP/1.x syntax (a bare LF line ending included), method not GET, request target not a path or an http/https/ws/wss URI, a body announced (`Content-Length` > 0, `Transfer-Encoding`), HTTP/1.0, missing Host, Upgrade or Connection tokens wrong, Sec-WebSocket-Key missing/duplicated/not 16 bytes of base64, Sec-WebSocket-Version missing | 400 |
//! | Sec-WebSocket-Version present but not 13 (answer carries `Sec-WebSocket-Version: 13`) | 426 |
//! | request head above `Limits::max_handshake_bytes`, or more header lines than slots | 431 |
//! | application refused the Origin ([`crate::handshake::Request::reject`] with 403) | 403 |
//! | handshake deadline passed before the request was complete | 408 |
//!
//! | Timer                                               | Outcome |
//! |-----------------------------------------------------|---------|
//! | close handshake not finished by the close deadline  | closed locally with 1006, transport closed |
//! | no byte from the peer within the pong deadline after a keepalive ping | closed locally with 1006, transport closed |
//! | idle timeout                                        | Close 1001 sent, close handshake starts |
//! | message in progress below `Config::min_progress` in one interval | Close 1008 sent ([`Violation::TooSlow`]), transport closed |

use crate::close::CloseCode;
use core::fmt;

/// A peer's violation of RFC 6455 framing rules, with the close code it earns.
///
/// ```
/// use wsproto::{CloseCode, Violation};
/// assert_eq!(Violation::InvalidUtf8.close_code(), CloseCode::INVALID_PAYLOAD);
/// assert_eq!(Violation::MessageTooLarge.close_code(), CloseCode::MESSAGE_TOO_BIG);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Violation {
    /// An RSV bit was set that no negotiated extension owns.
    ReservedBits,
    /// The opcode is one of the reserved values.
    ReservedOpcode,
    /// A server received a frame without a mask (RFC 6455 §5.1).
    UnmaskedFrame,
    /// A client received a masked frame (RFC 6455 §5.1).
    MaskedFrame,
    /// A control frame carried more than 125 bytes.
    ControlFrameTooLong,
    /// A control frame had its FIN bit clear.
    FragmentedControlFrame,
    /// A 64-bit payload length had its most significant bit set.
    LengthOverflow,
    /// A payload length was not encoded in the fewest bytes possible.
    NonMinimalLength,
    /// A continuation frame arrived while no fragmented message was open.
    UnexpectedContinuation,
    /// A Text or Binary frame arrived while a fragmented message was open.
    ExpectedContinuation,
    /// A Close frame carried exactly one byte of payload.
    CloseFrameTooShort,
    /// A Close frame carried a code that may not be sent.
    InvalidCloseCode,
    /// A Close frame's reason was not valid UTF-8.
    InvalidCloseReason,
    /// A Text message was not valid UTF-8.
    InvalidUtf8,
    /// RSV1 (permessage-deflate's "compressed" bit) on a continuation or a
    /// control frame (RFC 7692 §6.1).
    MisplacedRsv1,
    /// A compressed message was not a valid DEFLATE stream (RFC 7692 §7.2.2).
    CorruptCompressedData,
    /// A frame declared more payload than `Limits::max_frame_payload`.
    FrameTooLarge,
    /// A message grew past `Limits::max_message_size`.
    MessageTooLarge,
    /// A message had more frames than `Limits::max_fragments`.
    TooManyFragments,
    /// A message's charge against the memory budget (payload plus
    /// `Limits::FRAME_CHARGE` per frame, plus `Limits::FIXED_CHARGE`) grew
    /// past `Limits::max_buffered`.
    BudgetExceeded,
    /// A message in progress arrived slower than `Config::min_progress`
    /// allows (fewer data bytes than its floor in one interval): a policy of
    /// this endpoint, not an RFC 6455 rule, answered with 1008.
    TooSlow,
}

impl Violation {
    /// The close code this violation is answered with. The single place that decides it.
    pub const fn close_code(self) -> CloseCode {
        match self {
            Violation::InvalidUtf8
            | Violation::InvalidCloseReason
            | Violation::CorruptCompressedData => CloseCode::INVALID_PAYLOAD,
            Violation::FrameTooLarge
            | Violation::MessageTooLarge
            | Violation::TooManyFragments
            | Violation::BudgetExceeded => CloseCode::MESSAGE_TOO_BIG,
            Violation::TooSlow => CloseCode::POLICY_VIOLATION,
            Violation::ReservedBits
            | Violation::ReservedOpcode
            | Violation::UnmaskedFrame
            | Violation::MaskedFrame
            | Violation::ControlFrameTooLong
            | Violation::FragmentedControlFrame
            | Violation::LengthOverflow
            | Violation::NonMinimalLength
            | Violation::UnexpectedContinuation
            | Violation::ExpectedContinuation
            | Violation::CloseFrameTooShort
            | Violation::InvalidCloseCode
            | Violation::MisplacedRsv1 => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// A short reason, sent in the Close frame (always under 123 bytes).
    ///
    /// Without the `close-reasons` feature (on by default) it is empty, and so
    /// is the reason of the Close frame sent on failure; the code is always
    /// sent.
    pub const fn reason(self) -> &'static str {
        #[cfg(not(feature = "close-reasons"))]
        {
            let _ = self;
            ""
        }
        #[cfg(feature = "close-reasons")]
        {
            self.text()
        }
    }

    /// The reason texts, built with the `close-reasons` feature.
    #[cfg(feature = "close-reasons")]
    const fn text(self) -> &'static str {
        match self {
            Violation::ReservedBits => "reserved bits set",
            Violation::ReservedOpcode => "reserved opcode",
            Violation::UnmaskedFrame => "client frame not masked",
            Violation::MaskedFrame => "server frame masked",
            Violation::ControlFrameTooLong => "control frame too long",
            Violation::FragmentedControlFrame => "fragmented control frame",
            Violation::LengthOverflow => "payload length overflow",
            Violation::NonMinimalLength => "non-minimal payload length",
            Violation::UnexpectedContinuation => "unexpected continuation frame",
            Violation::ExpectedContinuation => "expected continuation frame",
            Violation::CloseFrameTooShort => "close payload of one byte",
            Violation::InvalidCloseCode => "invalid close code",
            Violation::InvalidCloseReason => "close reason not utf-8",
            Violation::InvalidUtf8 => "text not utf-8",
            Violation::MisplacedRsv1 => "rsv1 on a continuation or control frame",
            Violation::CorruptCompressedData => "invalid compressed data",
            Violation::FrameTooLarge => "frame too large",
            Violation::MessageTooLarge => "message too large",
            Violation::TooManyFragments => "too many fragments",
            Violation::BudgetExceeded => "memory budget exceeded",
            Violation::TooSlow => "message arriving too slowly",
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = self.reason();
        if reason.is_empty() {
            write!(f, "{self:?} (close {})", self.close_code().0)
        } else {
            write!(f, "{reason} (close {})", self.close_code().0)
        }
    }
}

/// Why the opening handshake failed.
///
/// Server-side failures carry the HTTP status to answer with
/// ([`HandshakeError::status`]); client-side failures (a bad 101 response)
/// mean the client should drop the connection.
///
/// ```
/// use wsproto::HandshakeError;
/// assert_eq!(HandshakeError::UnsupportedVersion.status(), Some(426));
/// assert_eq!(HandshakeError::HeadTooLarge.status(), Some(431));
/// assert_eq!(HandshakeError::InvalidAccept.status(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The bytes are not an HTTP/1.x message head.
    Malformed,
    /// The request method is not GET.
    MethodNotGet,
    /// The request target is neither the origin form (`/path?query`) nor an
    /// absolute `http`, `https`, `ws` or `wss` URI with a host and no user
    /// info (RFC 9112 §3.2); or it has a fragment.
    InvalidTarget,
    /// The request announces a body (`Content-Length` above 0, or any
    /// `Transfer-Encoding`): an upgrade request has none, and bytes after
    /// the head must be unambiguously WebSocket frames.
    RequestBody,
    /// The HTTP version is older than 1.1.
    HttpVersion,
    /// The request has no Host header (or more than one).
    MissingHost,
    /// `Upgrade` does not list the `websocket` token.
    MissingUpgrade,
    /// `Connection` does not list the `upgrade` token.
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Key` is missing, repeated or not 16 bytes of base64.
    InvalidKey,
    /// `Sec-WebSocket-Version` is missing.
    MissingVersion,
    /// `Sec-WebSocket-Version` is not 13.
    UnsupportedVersion,
    /// (HTTP/2) The request is not an extended CONNECT with
    /// `:protocol = websocket` (RFC 8441 §4).
    NotExtendedConnect,
    /// (HTTP/2) `:scheme` is not `https`/`http`, `:path` is not a path, or
    /// `:authority` is missing, malformed or contradicted by a `Host` field.
    InvalidPseudoHeaders,
    /// (HTTP/2) A connection-specific field such as `Connection` or
    /// `Upgrade` is present (RFC 9113 §8.2.2).
    ConnectionSpecificHeader,
    /// (HTTP/2) `Sec-WebSocket-Key` is present: RFC 8441 §5 replaces it with
    /// `:protocol`, so a key means the client mixed up the two handshakes.
    KeyOverHttp2,
    /// The head exceeded `Limits::max_handshake_bytes`.
    HeadTooLarge,
    /// The head has more header lines than the caller's slots.
    TooManyHeaders,
    /// The handshake deadline passed.
    Timeout,
    /// (client) The response status was not 101; the status is attached.
    UnexpectedStatus(u16),
    /// (client) `Sec-WebSocket-Accept` is missing or does not match the key sent.
    InvalidAccept,
    /// (client) The server chose a subprotocol the client did not offer, or sent several.
    UnofferedSubprotocol,
    /// (client) The server answered with an extension the client did not request.
    UnrequestedExtension,
    /// (client) The server's answer to an offered extension is not valid
    /// for the offer (RFC 7692 §7.1: unknown or duplicate parameters, a
    /// window larger than asked, a parameter that was not offered).
    InvalidExtension,
}

impl HandshakeError {
    /// The HTTP status a server answers with, or `None` for client-side failures.
    pub const fn status(self) -> Option<u16> {
        Some(match self {
            HandshakeError::Malformed
            | HandshakeError::MethodNotGet
            | HandshakeError::InvalidTarget
            | HandshakeError::RequestBody
            | HandshakeError::HttpVersion
            | HandshakeError::MissingHost
            | HandshakeError::MissingUpgrade
            | HandshakeError::MissingConnectionUpgrade
            | HandshakeError::InvalidKey
            | HandshakeError::MissingVersion
            | HandshakeError::NotExtendedConnect
            | HandshakeError::InvalidPseudoHeaders
            | HandshakeError::ConnectionSpecificHeader
            | HandshakeError::KeyOverHttp2 => 400,
            HandshakeError::UnsupportedVersion => 426,
            HandshakeError::HeadTooLarge | HandshakeError::TooManyHeaders => 431,
            HandshakeError::Timeout => 408,
            HandshakeError::UnexpectedStatus(_)
            | HandshakeError::InvalidAccept
            | HandshakeError::UnofferedSubprotocol
            | HandshakeError::UnrequestedExtension
            | HandshakeError::InvalidExtension => return None,
        })
    }

    /// A short description, also used as the body of the HTTP answer.
    pub const fn reason(self) -> &'static str {
        match self {
            HandshakeError::Malformed => "malformed request",
            HandshakeError::MethodNotGet => "method must be GET",
            HandshakeError::InvalidTarget => {
                "request target must be a path or an http(s)/ws(s) URI"
            }
            HandshakeError::RequestBody => "an upgrade request has no body",
            HandshakeError::HttpVersion => "HTTP/1.1 or later required",
            HandshakeError::MissingHost => "missing Host header",
            HandshakeError::MissingUpgrade => "Upgrade: websocket required",
            HandshakeError::MissingConnectionUpgrade => "Connection: upgrade required",
            HandshakeError::InvalidKey => "invalid Sec-WebSocket-Key",
            HandshakeError::MissingVersion => "missing Sec-WebSocket-Version",
            HandshakeError::UnsupportedVersion => "unsupported Sec-WebSocket-Version",
            HandshakeError::NotExtendedConnect => "not an extended CONNECT for websocket",
            HandshakeError::InvalidPseudoHeaders => "invalid :scheme, :path or :authority",
            HandshakeError::ConnectionSpecificHeader => {
                "connection-specific header in an HTTP/2 request"
            }
            HandshakeError::KeyOverHttp2 => "Sec-WebSocket-Key is not used over HTTP/2",
            HandshakeError::HeadTooLarge => "request head too large",
            HandshakeError::TooManyHeaders => "too many headers",
            HandshakeError::Timeout => "handshake timed out",
            HandshakeError::UnexpectedStatus(_) => "response status not 101",
            HandshakeError::InvalidAccept => "Sec-WebSocket-Accept mismatch",
            HandshakeError::UnofferedSubprotocol => "subprotocol not offered",
            HandshakeError::UnrequestedExtension => "extension not requested",
            HandshakeError::InvalidExtension => "extension response does not fit the offer",
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.status()) {
            (HandshakeError::UnexpectedStatus(s), _) => {
                write!(f, "response status {s}, expected 101")
            }
            (_, Some(status)) => write!(f, "{} (HTTP {status})", self.reason()),
            (_, None) => f.write_str(self.reason()),
        }
    }
}

/// The application used the API wrongly. The connection is unchanged and any
/// output buffer is left untouched.
///
/// ```
/// use wsproto::Misuse;
/// let e = Misuse::BufferTooSmall { required: 131 };
/// assert_eq!(e.to_string(), "output buffer too small: 131 bytes required");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Misuse {
    /// The output buffer cannot hold the frame or response; `required` bytes would.
    BufferTooSmall {
        /// Bytes needed for the next unit of output.
        required: usize,
    },
    /// The connection is closing or closed: no more data may be sent.
    Closed,
    /// A new message was started while a fragmented one is still open.
    MessageInProgress,
    /// A continuation was sent with no fragmented message open.
    NoMessageInProgress,
    /// A ping, pong or close payload would exceed 125 bytes.
    ControlPayloadTooLong,
    /// The close code may not be sent (1005, 1006, 1015, or outside the ranges).
    InvalidCloseCode,
    /// A client connection was created without an RNG for masking keys.
    NoEntropy,
    /// An extra header name or value contains bytes HTTP does not allow there.
    InvalidHeader,
    /// The chosen subprotocol is not one the client offered.
    ProtocolNotOffered,
    /// A header-only send on a connection whose payload cannot go out as
    /// given: a client masks it, and an extension owning RSV1 compresses it.
    PayloadNotVerbatim,
}

impl fmt::Display for Misuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Misuse::BufferTooSmall { required } => {
                write!(f, "output buffer too small: {required} bytes required")
            }
            Misuse::Closed => f.write_str("connection is closing or closed"),
            Misuse::MessageInProgress => f.write_str("a fragmented message is still open"),
            Misuse::NoMessageInProgress => f.write_str("no fragmented message is open"),
            Misuse::ControlPayloadTooLong => f.write_str("control payload longer than 125 bytes"),
            Misuse::InvalidCloseCode => f.write_str("close code may not be sent"),
            Misuse::NoEntropy => f.write_str("client connection has no RNG for masking keys"),
            Misuse::InvalidHeader => f.write_str("header name or value not allowed"),
            Misuse::ProtocolNotOffered => f.write_str("subprotocol was not offered by the client"),
            Misuse::PayloadNotVerbatim => f.write_str(
                "payload is masked or compressed: it cannot be sent after a bare header",
            ),
        }
    }
}

/// Which timer ended the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    /// The peer did not finish the close handshake in time.
    Close,
    /// The peer did not answer a keepalive ping in time.
    Pong,
}

/// Any error from a [`crate::Connection`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// The peer violated the protocol; a Close frame with the matching code is queued.
    Protocol(Violation),
    /// The application misused the API; nothing changed.
    Misuse(Misuse),
    /// A timer expired; the connection is closed locally with 1006.
    Timeout(TimeoutKind),
    /// The transport ended before the close handshake finished (reported as 1006).
    AbnormalClosure,
}

impl Error {
    /// The close code this error ends the connection with, if it ends it.
    pub const fn close_code(self) -> Option<CloseCode> {
        match self {
            Error::Protocol(v) => Some(v.close_code()),
            Error::Misuse(_) => None,
            Error::Timeout(_) | Error::AbnormalClosure => Some(CloseCode::ABNORMAL),
        }
    }
}

impl From<Misuse> for Error {
    fn from(m: Misuse) -> Self {
        Error::Misuse(m)
    }
}

impl From<Violation> for Error {
    fn from(v: Violation) -> Self {
        Error::Protocol(v)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Protocol(v) => write!(f, "protocol violation: {v}"),
            Error::Misuse(m) => write!(f, "API misuse: {m}"),
            Error::Timeout(TimeoutKind::Close) => f.write_str("close handshake timed out"),
            Error::Timeout(TimeoutKind::Pong) => f.write_str("keepalive pong not received in time"),
            Error::AbnormalClosure => f.write_str("transport closed without a close handshake"),
        }
    }
}

impl core::error::Error for Violation {}
impl core::error::Error for HandshakeError {}
impl core::error::Error for Misuse {}
impl core::error::Error for Error {}
