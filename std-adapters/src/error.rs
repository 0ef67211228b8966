//! The adapters' error type.

use core::fmt;

/// Anything that can go wrong in an adapter.
#[derive(Debug)]
pub enum Error {
    /// The transport failed.
    Io(std::io::Error),
    /// The connection failed: a peer violation (the close frame the core
    /// queued has been sent), a timeout, an abnormal end (EOF before the close
    /// handshake), or API misuse.
    Protocol(wsproto::Error),
    /// The opening handshake failed; a server has already written the core's
    /// HTTP answer.
    Handshake(wsproto::HandshakeError),
    /// The URL could not be used (bad syntax, unsupported scheme...).
    Url(String),
    /// The connection is closed: the peer's Close was already returned, the
    /// close handshake finished, or the transport is gone.
    ConnectionClosed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Protocol(e) => write!(f, "{e}"),
            // A plain HTTP answer (a web page, a redirect, a 404) means the
            // URL is not a WebSocket endpoint; say so rather than "not 101".
            Error::Handshake(wsproto::HandshakeError::UnexpectedStatus(status)) => {
                write!(f, "not a WebSocket endpoint (HTTP {status})")
            }
            Error::Handshake(e) => write!(f, "handshake failed: {e}"),
            Error::Url(e) => write!(f, "invalid URL: {e}"),
            Error::ConnectionClosed => f.write_str("connection closed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Protocol(e) => Some(e),
            Error::Handshake(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<wsproto::Error> for Error {
    fn from(e: wsproto::Error) -> Self {
        match e {
            wsproto::Error::Misuse(wsproto::Misuse::Closed) => Error::ConnectionClosed,
            e => Error::Protocol(e),
        }
    }
}

impl From<wsproto::HandshakeError> for Error {
    fn from(e: wsproto::HandshakeError) -> Self {
        Error::Handshake(e)
    }
}

impl From<wsproto::Misuse> for Error {
    fn from(m: wsproto::Misuse) -> Self {
        Error::from(wsproto::Error::Misuse(m))
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn a_plain_http_answer_reads_as_not_a_websocket_endpoint() {
        let e = Error::Handshake(wsproto::HandshakeError::UnexpectedStatus(200));
        assert_eq!(e.to_string(), "not a WebSocket endpoint (HTTP 200)");
        let e = Error::Handshake(wsproto::HandshakeError::InvalidAccept);
        assert!(e.to_string().starts_with("handshake failed: "), "{e}");
    }
}
