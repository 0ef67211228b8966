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
    /// as 1 ms (see [`Config`] on how durations are kept).
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
///
/// # Durations
///
/// A [`crate::Connection`] keeps its durations in whole milliseconds, so
/// that its timers fit in a few words: each is rounded up to the next
/// millisecond (a timer never fires before its duration has passed) and
/// capped at [`Config::MAX_TIMER`], about 49.7 days. Its timers fire at
/// most 1 ms after the exact instant when the caller's instants are not
/// whole milliseconds apart, and exactly on time when they are.
/// [`crate::Connection::config`] returns the durations so kept.
///
/// ```
/// use wsproto::{Config, Connection, Duration, Role};
/// let config = Config { close_timeout: Duration::from_micros(2_500), ..Config::default() };
/// let server = Connection::new(Role::Server, config);
/// assert_eq!(server.config().close_timeout, Duration::from_millis(3));
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
    /// The longest duration a connection's timer keeps: `u32::MAX - 1`
    /// milliseconds (49 days, 17 h, 2 min and 47.294 s). A longer duration
    /// in a `Config` is taken as this one.
    pub const MAX_TIMER: Duration = Duration::from_millis(u32::MAX as u64 - 1);

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

/// What a connection keeps of its [`Config`], packed: every duration in
/// whole milliseconds (rounded up, at most [`Config::MAX_TIMER`]) in a
/// `u32`, an option that is off marked by [`Settings::OFF`] in its
/// duration. `auto_pong` is kept by the connection itself, beside its other
/// flags. [`Settings::config`] gives the `Config` back with its durations
/// so rounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) limits: Limits,
    progress_bytes: u64,
    handshake_timeout: u32,
    pub(crate) close_timeout: u32,
    keepalive_interval: u32,
    keepalive_timeout: u32,
    idle_timeout: u32,
    progress_interval: u32,
}

/// Milliseconds of a duration, as a connection keeps it.
const fn millis(d: Duration) -> u32 {
    d.as_millis_ceil(Settings::OFF - 1)
}

impl Settings {
    /// In an option's duration: the option is off (`None`).
    const OFF: u32 = u32::MAX;

    pub(crate) const fn new(config: &Config) -> Settings {
        let (keepalive_interval, keepalive_timeout) = match config.keepalive {
            Some(k) => (millis(k.interval), millis(k.timeout)),
            None => (Settings::OFF, 0),
        };
        let idle_timeout = match config.idle_timeout {
            Some(idle) => millis(idle),
            None => Settings::OFF,
        };
        let (progress_interval, progress_bytes) = match config.min_progress {
            Some(rule) => (millis(rule.interval), rule.bytes),
            None => (Settings::OFF, 0),
        };
        Settings {
            limits: config.limits,
            progress_bytes,
            handshake_timeout: millis(config.handshake_timeout),
            close_timeout: millis(config.close_timeout),
            keepalive_interval,
            keepalive_timeout,
            idle_timeout,
            progress_interval,
        }
    }

    /// The keepalive interval and pong timeout, in milliseconds.
    pub(crate) const fn keepalive(&self) -> Option<(u32, u32)> {
        if self.keepalive_interval == Settings::OFF {
            None
        } else {
            Some((self.keepalive_interval, self.keepalive_timeout))
        }
    }

    /// The idle timeout, in milliseconds.
    pub(crate) const fn idle_timeout(&self) -> Option<u32> {
        if self.idle_timeout == Settings::OFF {
            None
        } else {
            Some(self.idle_timeout)
        }
    }

    /// The minimum progress: bytes per interval in milliseconds.
    pub(crate) const fn min_progress(&self) -> Option<(u64, u32)> {
        if self.progress_interval == Settings::OFF {
            None
        } else {
            Some((self.progress_bytes, self.progress_interval))
        }
    }

    /// The configuration these settings were made from, its durations in
    /// whole milliseconds as kept.
    pub(crate) const fn config(&self, auto_pong: bool) -> Config {
        const fn back(ms: u32) -> Duration {
            Duration::from_millis(ms as u64)
        }
        Config {
            limits: self.limits,
            auto_pong,
            handshake_timeout: back(self.handshake_timeout),
            close_timeout: back(self.close_timeout),
            keepalive: match self.keepalive() {
                Some((interval, timeout)) => Some(Keepalive {
                    interval: back(interval),
                    timeout: back(timeout),
                }),
                None => None,
            },
            idle_timeout: match self.idle_timeout() {
                Some(idle) => Some(back(idle)),
                None => None,
            },
            min_progress: match self.min_progress() {
                Some((bytes, interval)) => Some(MinProgress {
                    bytes,
                    interval: back(interval),
                }),
                None => None,
            },
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
            timeout: Duration::from_millis(1),
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
                idle_timeout: Some(Config::MAX_TIMER),
                min_progress: None,
                ..Config::DEFAULT
            },
            Config {
                min_progress: Some(MinProgress {
                    bytes: u64::MAX,
                    interval: Duration::from_millis(7),
                }),
                ..Config::DEFAULT
            },
        ] {
            assert_eq!(Settings::new(&config).config(config.auto_pong), config);
        }
        assert!(core::mem::size_of::<Settings>() < core::mem::size_of::<Config>());
    }

    #[test]
    fn durations_are_kept_in_whole_milliseconds_rounded_up_and_capped() {
        let config = Config {
            close_timeout: Duration::from_nanos(1),
            handshake_timeout: Duration::from_micros(2_500),
            keepalive: Some(Keepalive {
                interval: Duration::MAX,
                timeout: Duration::from_millis(u32::MAX.into()),
            }),
            idle_timeout: Some(Config::MAX_TIMER + Duration::from_nanos(1)),
            ..Config::DEFAULT
        };
        let kept = Settings::new(&config).config(true);
        assert_eq!(kept.close_timeout, Duration::from_millis(1));
        assert_eq!(kept.handshake_timeout, Duration::from_millis(3));
        let keepalive = kept.keepalive.unwrap();
        assert_eq!(keepalive.interval, Config::MAX_TIMER);
        assert_eq!(keepalive.timeout, Config::MAX_TIMER);
        assert_eq!(kept.idle_timeout, Some(Config::MAX_TIMER));
        // About 49.7 days.
        assert_eq!(Config::MAX_TIMER.as_millis(), 4_294_967_294);
    }
}
