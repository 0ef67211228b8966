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
    ///
    /// With permessage-deflate it counts inflated bytes, and it is the real
    /// bound on what one peer can make a connection hold: DEFLATE expands
    /// up to about 1032:1, so about 64 KB of compressed frames can become a
    /// 64 MiB message (miniz_oxide, like zlib, turns 64 MiB of zeros into
    /// 65,193 bytes; this crate's own compressor, which ends a block every
    /// 32 KiB, into 95,232). [`Limits::max_frame_payload`] counts the
    /// compressed bytes and bounds nothing here. A server with many
    /// connections should lower this to the largest message it expects.
    pub max_message_size: u64,
    /// Most frames in one message, first frame included. Default 65,536;
    /// past it, close 1009.
    ///
    /// A flood of tiny (or empty) fragments is already bounded by the memory
    /// budget, which charges [`Limits::FRAME_CHARGE`] per frame: this limit
    /// is a second, cheaper guard. The default lets a 4 MiB message arrive
    /// in 64-byte fragments (the smallest the Autobahn|Testsuite's 9.3 and
    /// 9.4 cases send, and what some streaming senders do); such a message
    /// charges 4 MiB of payload plus 8 MiB of bookkeeping against the
    /// budget. Lower it where fragment counts are known to be small.
    pub max_fragments: u32,
    /// The memory budget of one connection: the most bytes the core can make
    /// its caller hold at once on the peer's behalf. Default
    /// [`Limits::DEFAULT_MAX_BUFFERED`], 64 MiB + 129 KiB; past it, close 1009
    /// ([`crate::Violation::BudgetExceeded`]).
    ///
    /// The core itself allocates nothing (its state is a fixed few hundred
    /// bytes); what it makes the caller hold is charged as follows.
    ///
    /// * **The message being received**, as an adapter that reassembles it
    ///   holds it: every data frame of the message costs its declared payload
    ///   plus [`Limits::FRAME_CHARGE`] (128) bytes of bookkeeping, so a flood
    ///   of tiny or *empty* fragments runs out of budget even though its
    ///   payload is (nearly) nothing. The charge is checked on each frame
    ///   header, before any payload is surfaced, and starts again at zero
    ///   with the next message: a flood of whole tiny messages retains
    ///   nothing. A compressed message (permessage-deflate) is charged its
    ///   inflated bytes as they come out (and its frames' bookkeeping), not
    ///   its compressed payload, which is inflated straight from the input and
    ///   never held; so a small frame that inflates to a large message meets
    ///   this budget (and `max_message_size`) while inflating, never after.
    /// * **A fixed charge**, [`Limits::FIXED_CHARGE`] (1 KiB), always counted:
    ///   the unconsumed input `receive` may hand back (less than
    ///   [`crate::MIN_RECEIVE_BUFFER`], 134 bytes) and the control frames the
    ///   core queues for `poll_transmit`: at most one pong (the latest ping
    ///   wins, however many arrive), one ping and one close, each at most
    ///   131 bytes on the wire. A ping flood never grows the queue.
    /// * **Handshake bytes** are held before the connection exists and never
    ///   together with a message: the request or response head is bounded by
    ///   [`Limits::max_handshake_bytes`] (HTTP 431 past it) and any bytes after
    ///   it are the connection's first input, charged like any other.
    ///
    /// Data the application sends is its own and not charged: the core writes
    /// it straight into the caller's buffer. An adapter keeps its outgoing
    /// buffer bounded by writing it out before it reads again (backpressure),
    /// which is what the std drivers do.
    ///
    /// `max_message_size` and `max_fragments` still apply. The default budget
    /// is a largest default message (64 MiB) in up to 1,024 frames plus the
    /// fixed charge: such a message always fits, and a message split into
    /// many more frames meets the budget first, by its bookkeeping (the
    /// per-connection memory never passes 64 MiB + 129 KiB, however the
    /// bytes are framed).
    ///
    /// ```
    /// use wsproto::Limits;
    /// // 1 MiB of budget: at most 1 MiB - 1 KiB of message, or fewer than
    /// // 8192 empty fragments, whatever the other limits say.
    /// let limits = Limits { max_buffered: 1 << 20, max_fragments: u32::MAX, ..Limits::DEFAULT };
    /// assert_eq!((limits.max_buffered - Limits::FIXED_CHARGE) / Limits::FRAME_CHARGE, 8184);
    /// ```
    pub max_buffered: u64,
}

impl Limits {
    /// Bookkeeping charged per data frame of a message against
    /// [`Limits::max_buffered`], on top of its payload: a pessimistic
    /// estimate of what an adapter keeping each fragment apart pays (a
    /// `Vec`'s 24-byte header, an allocator's block header and rounding, a
    /// list entry).
    pub const FRAME_CHARGE: u64 = 128;

    /// The fixed part of every connection's charge against
    /// [`Limits::max_buffered`]: unconsumed input (under 134 bytes) and the
    /// queued control frames (at most 3 × 131 bytes), rounded up to 1 KiB.
    pub const FIXED_CHARGE: u64 = 1024;

    /// The default memory budget: a largest default message (64 MiB) in
    /// 1,024 frames (1024 × [`Limits::FRAME_CHARGE`] = 128 KiB of
    /// bookkeeping), plus [`Limits::FIXED_CHARGE`]: 64 MiB + 129 KiB.
    pub const DEFAULT_MAX_BUFFERED: u64 =
        64 * 1024 * 1024 + 1024 * Limits::FRAME_CHARGE + Limits::FIXED_CHARGE;

    /// The defaults, with every size limit derived from one number: the
    /// largest message the application accepts. `max_message_size` is
    /// `max_message`, `max_frame_payload` the smaller of it and the default
    /// 16 MiB, and the memory budget that message in 1,024 frames plus the
    /// fixed charge. The one knob a server needs to bound what a peer can
    /// make each connection hold (with permessage-deflate too).
    ///
    /// ```
    /// use wsproto::Limits;
    /// let limits = Limits::for_message_size(1 << 20);
    /// assert_eq!(limits.max_message_size, 1 << 20);
    /// assert_eq!(limits.max_frame_payload, 1 << 20);
    /// assert_eq!(limits.max_buffered, (1 << 20) + 129 * 1024);
    /// assert_eq!(Limits::for_message_size(64 << 20), Limits::DEFAULT);
    /// ```
    pub const fn for_message_size(max_message: u64) -> Limits {
        let frame = if max_message < Limits::DEFAULT.max_frame_payload {
            max_message
        } else {
            Limits::DEFAULT.max_frame_payload
        };
        Limits {
            max_frame_payload: frame,
            max_message_size: max_message,
            max_buffered: max_message
                .saturating_add(1024 * Limits::FRAME_CHARGE)
                .saturating_add(Limits::FIXED_CHARGE),
            ..Limits::DEFAULT
        }
    }

    /// The documented defaults, usable in `const` context.
    pub const DEFAULT: Limits = Limits {
        max_handshake_bytes: 8 * 1024,
        max_frame_payload: 16 * 1024 * 1024,
        max_message_size: 64 * 1024 * 1024,
        max_fragments: 65_536,
        max_buffered: Limits::DEFAULT_MAX_BUFFERED,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Keepalive: ping after `interval` without a byte from the peer, and give up
/// (close locally with 1006) if nothing arrives within `timeout` of that ping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Quiet time before a ping is sent. Quiet is checked once per
    /// interval, so the ping goes out between one and two intervals after
    /// the peer's last byte.
    pub interval: Duration,
    /// Time allowed for any byte (usually the pong) to come back. Any byte
    /// counts, not only whole frames: a peer in the middle of a long frame
    /// cannot send a Pong before finishing it (RFC 6455 §5.4).
    pub timeout: Duration,
}

/// The minimum progress of a message being received: while a data frame's
/// payload or a fragmented message is unfinished, the peer must deliver at
/// least `bytes` of data payload in every `interval`, or the connection
/// fails with 1008 (policy violation, [`crate::Violation::TooSlow`]). The
/// defence against a peer that opens a large frame or message and trickles
/// it (a slow-loris on frames), holding its memory and its connection.
///
/// # What counts
///
/// Only data payload (Text, Binary and Continuation frames; the compressed
/// bytes of a compressed message) counts as progress. Control frames do
/// not: a peer answering keepalive pings, or sending its own pings, while
/// its message stalls makes no progress. Frame headers do not either, so a
/// stream of empty fragments is no progress. Between messages (nothing
/// unfinished) the rule does not apply; the idle timeout and keepalive cover
/// a quiet peer, and the opening handshake's own deadline
/// ([`Config::handshake_timeout`]) covers the HTTP head.
///
/// # When it is checked
///
/// The check runs once per `interval` (on the connection's own timer, from
/// the first `handle_timeout`): an interval counts when a message was in
/// progress at both its start and its end, and then at least `bytes` must
/// have arrived within it. Exactly `bytes` is enough. A message that stalls
/// therefore fails between one and two intervals after its last byte, and
/// one that starts in the middle of an interval is first judged on the next
/// whole one.
///
/// # The default, and the trade-off
///
/// [`MinProgress::DEFAULT`], on by default: 8 KiB per 30 s, about 273 bytes
/// per second (2.2 kbit/s). That is far below any link a person would upload
/// over (GPRS gives 20 to 40 kbit/s), and a 30 s window rides out the
/// stalls of a mobile handover or a lossy Wi-Fi; a large upload on a slow
/// link keeps going as long as it moves. The price of such a low floor is
/// that a peer sending exactly at it can keep one message open for
/// `max_message_size / rate` (16 MiB at 273 B/s: about 17 hours), holding
/// what it sent; the memory budget ([`Limits::max_buffered`], and a
/// server-wide budget in the std adapters) bounds that memory, and a higher
/// floor bounds the time. There is deliberately no total deadline per
/// message: it would cut off honest large uploads on slow links.
///
/// ```
/// use wsproto::{Config, Duration, MinProgress};
/// // A chat server: small messages, peers on decent links.
/// let config = Config {
///     min_progress: Some(MinProgress { bytes: 4096, interval: Duration::from_secs(5) }),
///     ..Config::default()
/// };
/// assert_eq!(Config::default().min_progress, Some(MinProgress::DEFAULT));
/// # let _ = config;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinProgress {
    /// Data payload bytes the peer must deliver in every interval while a
    /// message is unfinished. 0 disables the check (as `None` does).
    pub bytes: u64,
    /// The length of one interval. Also how often the connection asks to be
    /// woken ([`crate::Connection::poll_timeout`]); a zero interval is taken
    /// as 1 ns.
    pub interval: Duration,
}

impl MinProgress {
    /// 8 KiB per 30 s (about 273 bytes per second): see the type's docs for
    /// the trade-off.
    pub const DEFAULT: MinProgress = MinProgress {
        bytes: 8 * 1024,
        interval: Duration::from_secs(30),
    };
}

impl Default for MinProgress {
    fn default() -> Self {
        MinProgress::DEFAULT
    }
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
    /// Start a close (1001) after this long without any byte from the peer. Default off.
    pub idle_timeout: Option<Duration>,
    /// The slowest a message may arrive once started; slower fails the
    /// connection with 1008. Default `Some(`[`MinProgress::DEFAULT`]`)`,
    /// 8 KiB per 30 s; `None` switches the check off.
    pub min_progress: Option<MinProgress>,
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
        min_progress: Some(MinProgress::DEFAULT),
    };
}

impl Default for Config {
    fn default() -> Self {
        Config::DEFAULT
    }
}

/// What a connection keeps of its [`Config`], packed: the options become
/// bits and the durations lose their `Option` tags (16 bytes less than a
/// whole `Config` on 32-bit targets, more on 64-bit). [`Settings::config`]
/// gives the `Config` back, field for field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) limits: Limits,
    pub(crate) handshake_timeout: Duration,
    pub(crate) close_timeout: Duration,
    keepalive_interval: Duration,
    keepalive_timeout: Duration,
    idle_timeout: Duration,
    progress_interval: Duration,
    progress_bytes: u64,
    /// `AUTO_PONG`, `KEEPALIVE`, `IDLE` and `PROGRESS` bits.
    flags: u8,
}

impl Settings {
    const AUTO_PONG: u8 = 1;
    const KEEPALIVE: u8 = 2;
    const IDLE: u8 = 4;
    const PROGRESS: u8 = 8;

    pub(crate) const fn new(config: &Config) -> Settings {
        let mut flags = 0;
        if config.auto_pong {
            flags |= Settings::AUTO_PONG;
        }
        let (keepalive_interval, keepalive_timeout) = match config.keepalive {
            Some(k) => {
                flags |= Settings::KEEPALIVE;
                (k.interval, k.timeout)
            }
            None => (Duration::ZERO, Duration::ZERO),
        };
        let idle_timeout = match config.idle_timeout {
            Some(idle) => {
                flags |= Settings::IDLE;
                idle
            }
            None => Duration::ZERO,
        };
        let (progress_interval, progress_bytes) = match config.min_progress {
            Some(rule) => {
                flags |= Settings::PROGRESS;
                (rule.interval, rule.bytes)
            }
            None => (Duration::ZERO, 0),
        };
        Settings {
            limits: config.limits,
            handshake_timeout: config.handshake_timeout,
            close_timeout: config.close_timeout,
            keepalive_interval,
            keepalive_timeout,
            idle_timeout,
            progress_interval,
            progress_bytes,
            flags,
        }
    }

    pub(crate) const fn auto_pong(&self) -> bool {
        self.flags & Settings::AUTO_PONG != 0
    }

    pub(crate) const fn keepalive(&self) -> Option<Keepalive> {
        if self.flags & Settings::KEEPALIVE != 0 {
            Some(Keepalive {
                interval: self.keepalive_interval,
                timeout: self.keepalive_timeout,
            })
        } else {
            None
        }
    }

    pub(crate) const fn idle_timeout(&self) -> Option<Duration> {
        if self.flags & Settings::IDLE != 0 {
            Some(self.idle_timeout)
        } else {
            None
        }
    }

    pub(crate) const fn min_progress(&self) -> Option<MinProgress> {
        if self.flags & Settings::PROGRESS != 0 {
            Some(MinProgress {
                bytes: self.progress_bytes,
                interval: self.progress_interval,
            })
        } else {
            None
        }
    }

    /// The configuration these settings were made from.
    pub(crate) const fn config(&self) -> Config {
        Config {
            limits: self.limits,
            auto_pong: self.auto_pong(),
            handshake_timeout: self.handshake_timeout,
            close_timeout: self.close_timeout,
            keepalive: self.keepalive(),
            idle_timeout: self.idle_timeout(),
            min_progress: self.min_progress(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_give_the_config_back() {
        let keepalive = Some(Keepalive {
            interval: Duration::from_secs(30),
            timeout: Duration::from_nanos(1),
        });
        for config in [
            Config::DEFAULT,
            Config {
                auto_pong: false,
                keepalive,
                idle_timeout: Some(Duration::ZERO),
                handshake_timeout: Duration::from_millis(3),
                limits: Limits::for_message_size(1000),
                ..Config::DEFAULT
            },
            Config {
                keepalive: Some(Keepalive {
                    interval: Duration::ZERO,
                    timeout: Duration::ZERO,
                }),
                min_progress: None,
                ..Config::DEFAULT
            },
            Config {
                min_progress: Some(MinProgress {
                    bytes: 1,
                    interval: Duration::from_millis(7),
                }),
                ..Config::DEFAULT
            },
        ] {
            assert_eq!(Settings::new(&config).config(), config);
        }
        assert!(core::mem::size_of::<Settings>() < core::mem::size_of::<Config>());
    }
}
