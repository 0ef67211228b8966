//! Configuration: every size a peer controls has a limit here, and every
//! timer a duration. Defaults are documented on each field.

use crate::time::Duration;

/// Bounds on everything a peer can make the connection hold or count.
///
/// Nothing in the core is ever sized from a length the peer declared; these
/// limits decide when a declared length is refused (close 1009, HTTP 431).
///
/// ```
/// use wsproto::Limits;
/// let limits = Limits { max_message_size: 1 << 20, ..Limits::default() };
/// assert_eq!(limits.max_frame_payload, 16 << 20);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest opening-handshake head, request or response, in bytes.
    /// Default 8 KiB; past it a server answers 431.
    pub max_handshake_bytes: usize,
    /// Largest payload of a single frame. Default 16 MiB; past it, close 1009.
    pub max_frame_payload: u64,
    /// Largest message, the sum of its fragments. Default 64 MiB; past it, close 1009.
    pub max_message_size: u64,
    /// Most frames in one message, first frame included. Default 1024; past it, close 1009.
    /// Bounds the bookkeeping a flood of tiny (or empty) fragments can cause.
    pub max_fragments: u32,
}

impl Limits {
    /// The documented defaults, usable in `const` context.
    pub const DEFAULT: Limits = Limits {
        max_handshake_bytes: 8 * 1024,
        max_frame_payload: 16 * 1024 * 1024,
        max_message_size: 64 * 1024 * 1024,
        max_fragments: 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Keepalive: ping after `interval` without traffic from the peer, and give up
/// (close locally with 1006) if nothing arrives within `timeout` of that ping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Quiet time before a ping is sent.
    pub interval: Duration,
    /// Time allowed for any frame (usually the pong) to come back.
    pub timeout: Duration,
}

/// Connection configuration.
///
/// ```
/// use wsproto::{Config, Duration, Keepalive};
/// let config = Config {
///     keepalive: Some(Keepalive { interval: Duration::from_secs(30), timeout: Duration::from_secs(10) }),
///     ..Config::default()
/// };
/// assert!(config.auto_pong);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Size limits. Default [`Limits::DEFAULT`].
    pub limits: Limits,
    /// Answer every ping with a pong automatically (the latest ping wins when
    /// several arrive before output is drained). Default `true`.
    pub auto_pong: bool,
    /// Time allowed for the opening handshake. Default 10 s.
    pub handshake_timeout: Duration,
    /// Time allowed for the close handshake once a Close was sent; after it the
    /// connection is closed locally with 1006. Default 5 s.
    pub close_timeout: Duration,
    /// Keepalive pings. Default off.
    pub keepalive: Option<Keepalive>,
    /// Start a close (1001) after this long without any frame from the peer. Default off.
    pub idle_timeout: Option<Duration>,
}

impl Config {
    /// The documented defaults, usable in `const` context.
    pub const DEFAULT: Config = Config {
        limits: Limits::DEFAULT,
        auto_pong: true,
        handshake_timeout: Duration::from_secs(10),
        close_timeout: Duration::from_secs(5),
        keepalive: None,
        idle_timeout: None,
    };
}

impl Default for Config {
    fn default() -> Self {
        Config::DEFAULT
    }
}
