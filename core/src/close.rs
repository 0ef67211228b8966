//! Close codes (RFC 6455 §7.4). The rules for a received Close payload
//! (§5.5.1) live with the connection's control step.

/// The most bytes a close reason may take: 125 bytes of control payload less
/// the two-byte code.
pub const MAX_CLOSE_REASON: usize = 123;

/// A WebSocket close status code.
///
/// Only codes that may appear on the wire are accepted from a peer
/// ([`CloseCode::is_allowed_on_wire`]); 1005, 1006 and 1015 exist to be
/// *reported* locally and are never sent.
///
/// ```
/// use wsproto::CloseCode;
/// assert!(CloseCode::NORMAL.is_allowed_on_wire());
/// assert!(CloseCode(4000).is_allowed_on_wire());
/// assert!(!CloseCode::ABNORMAL.is_allowed_on_wire());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose for which the connection was established has been fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: an endpoint is going away (server shutting down, page navigated away).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the endpoint is terminating the connection due to a protocol error.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: the endpoint received a type of data it cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: reserved; reports that a Close frame carried no status code. Never sent.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: reserved; reports that the connection closed without a Close frame. Never sent.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: a message's data was not consistent with its type (e.g. invalid UTF-8 text).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message violated the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message was too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected the server to negotiate an extension it did not.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server met an unexpected condition that prevented it from fulfilling the request.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting (IANA registry).
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later (IANA registry).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1014: the server acting as a gateway got an invalid response (IANA registry).
    pub const BAD_GATEWAY: CloseCode = CloseCode(1014);
    /// 1015: reserved; reports a failed TLS handshake. Never sent.
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// Whether this code may appear in a Close frame: 1000–1003, 1007–1014
    /// and the registered/private range 3000–4999.
    pub const fn is_allowed_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        CloseCode(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        code.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_codes() {
        for code in 0..=u16::MAX {
            let expected = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            assert_eq!(CloseCode(code).is_allowed_on_wire(), expected, "{code}");
        }
    }
}
