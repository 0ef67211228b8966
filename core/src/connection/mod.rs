//! The connection: framing, messages, control chores and timers for one
//! WebSocket after its opening handshake.
//!
//! Methods come in three kinds, and the loop is always the same:
//!
//! * **inputs** — [`Connection::receive`], [`Connection::receive_eof`],
//!   [`Connection::handle_timeout`];
//! * **commands** — [`Connection::send_text`], [`Connection::send_binary`],
//!   [`Connection::send_fragment`], [`Connection::ping`], [`Connection::pong`],
//!   [`Connection::close`];
//! * **outputs**, drained after every input or command —
//!   [`Connection::poll_transmit`] (control frames the core queued),
//!   [`Connection::poll_timeout`] (when to call `handle_timeout` next) and
//!   [`Connection::should_close_transport`].
//!
//! Data frames are written straight into the caller's buffer by the send
//! commands; events come back from `receive`, borrowing the input.
//!
//! # Extensions
//!
//! A connection is generic over an [`Extension`] that may own RSV1 (with the
//! `deflate` feature, `extensions::deflate::Deflate`, RFC 7692). The default
//! [`NoExtension`] owns nothing. With one attached
//! ([`Connection::with_extension`]), the first frame of a message may carry
//! RSV1; such a message is inflated into a caller buffer by
//! [`Connection::receive_into`], and [`Connection::send_text`] and friends
//! compress. Messages without RSV1 keep the zero-copy path.
//!
//! # Where each step lives
//!
//! This file holds the types, construction and getters. The rest follows the
//! bytes:
//!
//! | file | step |
//! |---|---|
//! | `shortcut.rs` | a whole small message in one frame, taken inline (feature `fast-receive`) |
//! | `receive.rs` | the entry points and the step loop: frame headers, then dispatch |
//! | `located.rs` | `receive_at`: the event's payload as a range of the input |
//! | `payload.rs` | uncompressed data payload: unmask, surface, UTF-8 |
//! | `inflate.rs` | compressed data payload: unmask, inflate into scratch, UTF-8 |
//! | `control.rs` | received Ping, Pong and Close |
//! | `send.rs` | data frames out, control frames queued and written |
//! | `close.rs` | closing, failing, end of file, the one state transition |
//! | `timers.rs` | the timer table and `handle_timeout` / `poll_timeout` |
//! | `state.rs`, `outbox.rs`, `extension.rs` | the lifecycle enum, the control-frame queue, the extension hook |

mod close;
mod control;
mod copy;
mod extension;
mod inflate;
mod located;
mod outbox;
mod payload;
mod receive;
mod send;
#[cfg(feature = "fast-receive")]
mod shortcut;
mod state;
mod timers;

pub use copy::ReceivedCopy;
#[cfg(feature = "deflate")]
pub(crate) use extension::sealed;
pub use extension::{Extension, NoExtension};
pub use located::{EventAt, ReceivedAt};
pub use state::{Side, State};

use crate::config::{Config, Settings};
use crate::event::{Event, MessageKind};
use crate::frame::MAX_CONTROL_PAYLOAD;
use crate::message::IncomingMessage;
use outbox::Outbox;
use rand_core::RngCore;
use state::Transition;
use timers::{Timer, Timers};

/// The smallest input window that always lets `receive` make progress: an
/// unfinished code point (3 bytes) held in front of a whole masked control
/// frame (6 + 125 bytes).
pub const MIN_RECEIVE_BUFFER: usize = 3 + 6 + MAX_CONTROL_PAYLOAD;

/// The smallest output buffer `poll_transmit` can always write a frame into.
pub const MIN_TRANSMIT_BUFFER: usize = 6 + MAX_CONTROL_PAYLOAD;

/// The smallest scratch buffer [`Connection::receive_into`] accepts while a
/// compressed message arrives: an unfinished code point (3 bytes) carried in
/// front of at least one new byte.
pub const MIN_INFLATE_BUFFER: usize = 4;

/// RSV1 in [`FrameHeader::rsv`].
const RSV1: u8 = 0b100;

/// Which end of the connection this is. Decides masking (RFC 6455 §5.1) and
/// who closes the transport first (the server, §7.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Masks every frame it sends; rejects masked frames.
    Client,
    /// Never masks; rejects unmasked frames; closes TCP first.
    Server,
}

/// The RNG type of a connection that has none. Servers need no entropy; a
/// client built without an RNG refuses to send ([`crate::Misuse::NoEntropy`]).
/// Its `RngCore` methods exist only to satisfy the bound and return zeros.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRng;

impl RngCore for NoRng {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        dst.fill(0);
    }
}

/// What one call to [`Connection::receive`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received<'a> {
    /// Bytes consumed from the front of the input. The rest must be passed
    /// again, unchanged and first, in the next call.
    pub consumed: usize,
    /// The event, if one completed.
    pub event: Option<Event<'a>>,
}

/// The frame whose payload is being received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IncomingFrame {
    kind: MessageKind,
    /// Last frame of its message.
    fin: bool,
    mask: Option<[u8; 4]>,
    /// Payload bytes still on the wire.
    remaining: u64,
    /// Payload bytes already unmasked, modulo 4.
    mask_offset: usize,
    /// The message is compressed: the payload goes through the extension.
    compressed: bool,
}

/// A connection's one-bit state in one byte (separate `bool`s and an
/// `Option<MessageKind>` would take a byte each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Flags(u8);

impl Flags {
    /// The connection has an RNG for masking keys.
    const HAS_RNG: u8 = 1;
    /// Answer pings (`Config::auto_pong`).
    const AUTO_PONG: u8 = 2;
    /// Close the transport once the outbox is written.
    const CLOSE_TRANSPORT: u8 = 4;
    /// A fragmented Text message is being sent.
    const OUT_TEXT: u8 = 8;
    /// A fragmented Binary message is being sent.
    const OUT_BINARY: u8 = 16;

    const fn new(has_rng: bool, auto_pong: bool) -> Flags {
        let mut bits = 0;
        if has_rng {
            bits |= Flags::HAS_RNG;
        }
        if auto_pong {
            bits |= Flags::AUTO_PONG;
        }
        Flags(bits)
    }

    const fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    fn insert(&mut self, bit: u8) {
        self.0 |= bit;
    }

    /// The kind of the fragmented message being sent, if one is open.
    const fn outgoing(self) -> Option<MessageKind> {
        if self.has(Flags::OUT_TEXT) {
            Some(MessageKind::Text)
        } else if self.has(Flags::OUT_BINARY) {
            Some(MessageKind::Binary)
        } else {
            None
        }
    }

    fn set_outgoing(&mut self, kind: Option<MessageKind>) {
        self.0 &= !(Flags::OUT_TEXT | Flags::OUT_BINARY);
        self.0 |= match kind {
            Some(MessageKind::Text) => Flags::OUT_TEXT,
            Some(MessageKind::Binary) => Flags::OUT_BINARY,
            None => 0,
        };
    }
}

/// One WebSocket connection after the opening handshake, as a state machine.
///
/// `R` supplies client masking keys; servers use the default [`NoRng`].
///
/// ```
/// use wsproto::{Config, Connection, Event, Role};
///
/// let mut server = Connection::new(Role::Server, Config::default());
/// // RFC 6455 §5.7: a masked text frame "Hello" from a client.
/// let mut input = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
/// let received = server.receive(&mut input).unwrap();
/// assert_eq!(received.consumed, 11);
/// assert_eq!(received.event, Some(Event::Text { data: "Hello", fin: true }));
///
/// // Echo it: the frame is written straight into the caller's buffer.
/// let mut out = [0u8; 64];
/// let n = server.send_text("Hello", &mut out).unwrap();
/// assert_eq!(out[..n], [0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
/// ```
#[derive(Clone, Debug)]
pub struct Connection<R = NoRng, E = NoExtension> {
    role: Role,
    /// The configuration, packed.
    config: Settings,
    state: State,
    /// Masking keys, with `Flags::HAS_RNG` (otherwise a placeholder:
    /// `NoRng`). Kept apart from its flag, not as `Option<R>`, whose tag an
    /// RNG without a niche would pad to its alignment.
    rng: R,
    /// The frame whose payload is arriving, if any.
    frame: Option<IncomingFrame>,
    /// Text bytes at the front of the next input: an unfinished code point,
    /// already unmasked and counted, not yet surfaced (at most 3 bytes).
    carry: u8,
    incoming: IncomingMessage,
    outbox: Outbox,
    timers: Timers,
    /// Bytes the last `receive` call left unconsumed: the front of the next
    /// input, not new. Any byte past them is peer activity for the timers (a
    /// peer in the middle of a long frame cannot send a Pong, RFC 6455 §5.4).
    unconsumed: usize,
    /// One-bit state, packed in a byte.
    flags: Flags,
    /// The extension owning RSV1, if any (a zero-sized no-op by default).
    ext: E,
    /// The message being received is compressed (RSV1 on its first frame).
    inflating: bool,
    /// Decompressed text bytes of an unfinished code point, surfaced at the
    /// front of the next scratch buffer: `inflate_carry[..inflate_carry_len]`.
    inflate_carry: [u8; 3],
    inflate_carry_len: u8,
    /// The event of the last `receive` call is a decompressed chunk in the
    /// scratch buffer (for [`Connection::receive_into_at`]).
    from_scratch: bool,
}

impl Connection<NoRng> {
    /// A connection that is already open, for `role`, with no RNG.
    ///
    /// Use this after any external handshake (HTTP/1.1 via
    /// [`crate::handshake`], HTTP/2 extended CONNECT, a proxy). A client built
    /// this way cannot send until it has an RNG: use [`Connection::with_rng`].
    pub fn new(role: Role, config: Config) -> Self {
        Connection::build(role, config, NoRng, false, NoExtension)
    }
}

impl<R: RngCore> Connection<R> {
    /// A connection that is already open, taking masking keys from `rng`.
    /// A client needs one; a server ignores it.
    ///
    /// ```
    /// use wsproto::{Config, Connection, Role};
    /// # struct Counter(u32);
    /// # impl rand_core::RngCore for Counter {
    /// #     fn next_u32(&mut self) -> u32 { self.0 = self.0.wrapping_mul(747796405).wrapping_add(1); self.0 }
    /// #     fn next_u64(&mut self) -> u64 { self.next_u32() as u64 }
    /// #     fn fill_bytes(&mut self, d: &mut [u8]) { for b in d { *b = self.next_u32() as u8 } }
    /// # }
    /// let mut client = Connection::with_rng(Role::Client, Config::default(), Counter(1));
    /// let mut out = [0u8; 32];
    /// let n = client.send_binary(b"hi", &mut out).unwrap();
    /// assert_eq!(n, 2 + 4 + 2); // header, masking key, payload
    /// ```
    pub fn with_rng(role: Role, config: Config, rng: R) -> Self {
        Connection::build(role, config, rng, true, NoExtension)
    }
}

impl<R: RngCore, E: Extension> Connection<R, E> {
    fn build(role: Role, config: Config, rng: R, has_rng: bool, ext: E) -> Self {
        let settings = Settings::new(&config);
        let mut timers = Timers::new();
        if let Some((interval, _)) = settings.keepalive() {
            timers.arm(Timer::Keepalive, interval);
        }
        if let Some(idle) = settings.idle_timeout() {
            timers.arm(Timer::Idle, idle);
        }
        if let Some((_, interval)) = settings.min_progress() {
            timers.arm(Timer::Progress, interval);
        }
        Connection {
            role,
            config: settings,
            state: State::Open,
            rng,
            frame: None,
            carry: 0,
            incoming: IncomingMessage::default(),
            outbox: Outbox::default(),
            timers,
            unconsumed: 0,
            flags: Flags::new(has_rng, config.auto_pong),
            ext,
            inflating: false,
            inflate_carry: [0; 3],
            inflate_carry_len: 0,
            from_scratch: false,
        }
    }

    /// Attaches the extension negotiated in the opening handshake (with the
    /// `deflate` feature, `extensions::deflate::Deflate`), replacing the
    /// current one. Call it right after building the connection, before any
    /// data flows: the extension's state starts with the next message.
    ///
    /// The extension is held inline, so its size (fixed by its const
    /// generics) is part of the connection's.
    pub fn with_extension<X: Extension>(self, ext: X) -> Connection<R, X> {
        Connection {
            role: self.role,
            config: self.config,
            state: self.state,
            rng: self.rng,
            frame: self.frame,
            carry: self.carry,
            incoming: self.incoming,
            outbox: self.outbox,
            timers: self.timers,
            unconsumed: self.unconsumed,
            flags: self.flags,
            ext,
            inflating: false,
            inflate_carry: [0; 3],
            inflate_carry_len: 0,
            from_scratch: false,
        }
    }

    /// The extension state.
    pub fn extension(&self) -> &E {
        &self.ext
    }

    // ----- getters -----

    /// This endpoint's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The lifecycle state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration the connection was built with, as it keeps it
    /// (packed, so returned by value): every duration in whole milliseconds,
    /// rounded up and at most [`Config::MAX_TIMER`] (see [`Config`]); all
    /// else as given.
    pub fn config(&self) -> Config {
        self.config.config(self.flags.has(Flags::AUTO_PONG))
    }

    /// Payload bytes of the data frame under way that have not arrived yet,
    /// as its header announced them; 0 between frames.
    ///
    /// A hint for sizing a reassembly buffer when the first chunk of a large
    /// message arrives. It is the peer's claim, checked only against
    /// [`crate::Limits::max_frame_payload`]: cap any reservation made from it.
    ///
    /// ```
    /// use wsproto::{Config, Connection, Role};
    /// let mut server = Connection::new(Role::Server, Config::default());
    /// assert_eq!(server.frame_remaining(), 0);
    /// // A masked binary frame announcing 10 bytes, 3 of them here (zero key).
    /// let mut input = [0x82, 0x8a, 0, 0, 0, 0, 1, 2, 3];
    /// server.receive(&mut input).unwrap();
    /// assert_eq!(server.frame_remaining(), 7);
    /// ```
    pub fn frame_remaining(&self) -> u64 {
        self.frame.map_or(0, |f| f.remaining)
    }

    /// What this connection currently charges against its memory budget,
    /// [`crate::Limits::max_buffered`]: [`crate::Limits::FIXED_CHARGE`] plus
    /// the message being received (or the last one, until the next begins),
    /// its payload and [`crate::Limits::FRAME_CHARGE`] per frame. Never above
    /// the budget: the frame that would pass it fails the connection (1009).
    ///
    /// ```
    /// use wsproto::{Config, Connection, Limits, Role};
    /// let mut server = Connection::new(Role::Server, Config::default());
    /// assert_eq!(server.buffered(), Limits::FIXED_CHARGE);
    /// // A masked, unfinished binary frame of 3 bytes ("abc", zero mask key).
    /// let mut input = [0x02, 0x83, 0, 0, 0, 0, b'a', b'b', b'c'];
    /// server.receive(&mut input).unwrap();
    /// assert_eq!(server.buffered(), Limits::FIXED_CHARGE + Limits::FRAME_CHARGE + 3);
    /// ```
    pub fn buffered(&self) -> u64 {
        crate::config::Limits::FIXED_CHARGE.saturating_add(self.incoming.charge())
    }
}
