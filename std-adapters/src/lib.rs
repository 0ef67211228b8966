//! Drivers that move bytes between the [`wsproto`] core and a transport.
//!
//! The core is a sans-IO state machine; this crate owns the sockets, the
//! clock, the entropy and the allocations, and runs the loop the core
//! describes: read → `receive` → drain outputs (`poll_transmit`) → write →
//! sleep until `poll_timeout`. There is no protocol logic here: every frame,
//! close code and HTTP status is decided by the core.
//!
//! * [`blocking`] (default feature `blocking`): any `std::io::Read + Write`,
//!   with `TcpStream` helpers ([`blocking::connect`], [`blocking::accept`]).
//!   `wss://` is built in with the `rustls` feature (`tls`); any other TLS
//!   works by wrapping the stream (e.g. a rustls `StreamOwned`) and calling
//!   [`blocking::client`] / [`blocking::accept`].
//! * [`tokio`] (default feature `tokio`): the same API, async.
//! * `embedded` (feature `embedded`): `embedded-io-async`, no allocation,
//!   caller-provided buffers, streaming events.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `blocking` | on | [`blocking`]: the driver over `std::io::Read + Write` |
//! | `tokio` | on | [`tokio`]: the driver over tokio's `AsyncRead + AsyncWrite` (enables only tokio's `net`, `io-util`, `time` and `rt`), with `Stream`/`Sink` from `futures-core`/`futures-sink` and `split()` into two halves |
//! | `std` | on (via `blocking`/`tokio`) | [`clock`], [`url`], [`Error`], [`Message`], [`CloseFrame`], [`ClientOptions`], [`ServerOptions`], [`MemoryBudget`] (one memory budget for many connections), the OS-seeded client RNG, and the core's permessage-deflate |
//! | `rustls` | off | `wss://` in `connect` (rustls with `ring`, `webpki-roots` trust anchors) and `tls`: server-side `tls::Acceptor`, client configurations |
//! | `embedded` | off | `embedded`: the no_std, allocation-free driver over `embedded-io-async` |
//! | `embedded-deflate` | off | `embedded` with permessage-deflate: `accept_deflate` / `connect_deflate`, state sized by type (`Deflate9`, `Deflate12`); still no_std |
//! | `hyper` | off | `upgrade`: take over HTTP/1.1 upgrades and HTTP/2 extended CONNECTs that hyper 1.x parsed; `h2`: the client of RFC 8441, several WebSockets as streams of one HTTP/2 connection (h2c, or TLS with ALPN `h2` with `rustls`) |
//! | `axum` | off | `axum`: an extractor on top of `hyper` |
//!
//! Without `std` the crate is `#![no_std]` and needs no allocator, so
//! `default-features = false, features = ["embedded"]` gives just the
//! `embedded` driver, on `core` alone.
//!
//! ```no_run
//! # #[cfg(feature = "blocking")]
//! # fn main() -> Result<(), wsproto_adapters::Error> {
//! use wsproto_adapters::{blocking, Message};
//! let mut ws = blocking::connect("ws://127.0.0.1:9001/")?;
//! ws.send_text("hello")?;
//! if let Message::Text(reply) = ws.read()? {
//!     println!("{reply}");
//! }
//! ws.close(1000, "bye")?;
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "blocking"))] fn main() {}
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
// docs.rs: badge each item with the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
// Peer bytes reach most of this crate: no panicking shortcuts outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub use wsproto;

#[cfg(feature = "std")]
pub mod budget;
#[cfg(feature = "std")]
pub mod clock;
#[cfg(feature = "std")]
pub mod deflate_memory;
#[cfg(feature = "std")]
mod error;
#[cfg(feature = "std")]
pub mod url;

// Shared by the std drivers (`blocking` and `tokio` both imply `std`).
#[cfg(any(feature = "blocking", feature = "tokio"))]
mod conn;
#[cfg(any(feature = "blocking", feature = "tokio"))]
mod copy;
#[cfg(any(feature = "blocking", feature = "tokio"))]
mod driver;
#[cfg(any(feature = "blocking", feature = "tokio"))]
mod handshake;
#[cfg(any(feature = "blocking", feature = "tokio"))]
mod rng;
#[cfg(any(feature = "blocking", feature = "tokio"))]
mod stream;

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "blocking")]
pub mod blocking;
#[cfg(feature = "embedded")]
pub mod embedded;
#[cfg(feature = "hyper")]
pub mod h2;
#[cfg(feature = "rustls")]
pub mod tls;
#[cfg(feature = "tokio")]
pub mod tokio;
#[cfg(feature = "hyper")]
pub mod upgrade;

#[cfg(feature = "std")]
pub use budget::MemoryBudget;
#[cfg(feature = "std")]
pub use deflate_memory::{DeflateMemory, SharedDeflate};
#[cfg(feature = "std")]
pub use error::Error;
/// permessage-deflate settings for [`ClientOptions::deflate`] and
/// [`ServerOptions::deflate`].
#[cfg(feature = "std")]
pub use wsproto::extensions::deflate::{Agreed, CompressionLevel, DeflateConfig};

/// An owned, whole message.
#[cfg(feature = "std")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A whole text message.
    Text(String),
    /// A whole binary message.
    Binary(Vec<u8>),
    /// A ping from the peer (already answered by the core) or one to send.
    Ping(Vec<u8>),
    /// A pong from the peer, or one to send.
    Pong(Vec<u8>),
    /// The peer's Close frame (`None` when it carried no status code), or one to send.
    ///
    /// Sending `Close(None)` puts a Close with code 1000 (normal closure) and
    /// an empty reason on the wire, not an empty Close frame: the core's
    /// `Connection::close` always takes a code, so the adapters cannot send a
    /// Close without one.
    Close(Option<CloseFrame>),
}

/// The contents of a Close frame.
#[cfg(feature = "std")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The close status code (RFC 6455 §7.4).
    pub code: u16,
    /// The UTF-8 reason, possibly empty.
    pub reason: String,
}

/// Options for a client connection.
///
/// permessage-deflate (RFC 7692) is offered by default
/// ([`DeflateConfig::default`]: 32 KiB windows, context takeover); set
/// `deflate: None` to offer nothing, or lower
/// [`DeflateConfig::max_window_bits`] to cap the memory of both directions.
///
/// A compressing connection costs, on the heap, its deflate state (about 126
/// KiB at 15 bits, 30 KiB at 12, 13 KiB at 9) plus a 32 KiB inflate scratch
/// buffer; uncompressed connections pay nothing. The state is built in place
/// on the heap (under 16 KiB of stack optimized).
///
/// The limits default to [`default_config`]: messages up to
/// [`DEFAULT_MAX_MESSAGE`] (16 MiB).
#[cfg(feature = "std")]
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Limits and timers for the handshake and the connection.
    pub config: wsproto::Config,
    /// Subprotocols to offer, most preferred first.
    pub protocols: Vec<String>,
    /// Extra request headers (name, value).
    pub headers: Vec<(String, String)>,
    /// An `Origin` header to send.
    pub origin: Option<String>,
    /// Offer permessage-deflate with these settings (`None`: no
    /// compression). The server may decline; the connection's `deflate()` tells what
    /// was agreed.
    pub deflate: Option<DeflateConfig>,
    /// A [`MemoryBudget`] shared with other connections (`None`, the
    /// default: only `config.limits` bound this connection). A client with
    /// many connections to untrusted servers can cap them all together.
    pub memory_budget: Option<MemoryBudget>,
    /// How hard this end works to make its permessage-deflate messages
    /// small: [`CompressionLevel::Default`] or the cheaper
    /// [`CompressionLevel::Fast`]. Not negotiated (each end chooses its
    /// own); ignored without deflate.
    pub deflate_level: CompressionLevel,
    /// Open the WebSocket as a stream of an HTTP/2 connection (RFC 8441's
    /// extended CONNECT) instead of an HTTP/1.1 upgrade: `ws://` over h2c,
    /// `wss://` over TLS with ALPN `h2`. Used by `tokio::connect_with`
    /// (feature `hyper`; one HTTP/2 connection per call); to run several
    /// WebSockets over one connection, use `h2::Http2Connection`. Default
    /// `false`. The blocking driver has no HTTP/2 and refuses it.
    pub http2: bool,
}

/// The largest message the std drivers accept by default: 16 MiB.
///
/// A message is held whole before it is handed over, and with
/// permessage-deflate (on by default) a peer needs only about 1/1000 of it
/// on the wire: DEFLATE expands up to about 1032:1, so with the core's
/// 64 MiB default some 64 KB of compressed frames would make one connection
/// hold 64 MiB. 16 MiB still takes the largest messages of the
/// Autobahn|Testsuite (16 MiB in 9.1.6/9.2.6; 4 MiB in 64-byte fragments in
/// 9.3/9.4) and most uploads; for comparison, other implementations default
/// to 1 MiB (Python websockets), 64 MiB (tungstenite) and 100 MiB (Node ws).
/// Raise or lower it with one call: `Limits::for_message_size`.
#[cfg(feature = "std")]
pub const DEFAULT_MAX_MESSAGE: u64 = 16 * 1024 * 1024;

/// The std drivers' default configuration: the core's defaults with every
/// size limit derived from [`DEFAULT_MAX_MESSAGE`]
/// (`wsproto::Limits::for_message_size`).
///
/// ```
/// use wsproto_adapters::{default_config, ServerOptions, DEFAULT_MAX_MESSAGE};
/// use wsproto_adapters::wsproto::Limits;
/// assert_eq!(ServerOptions::default().config, default_config());
/// assert_eq!(default_config().limits.max_message_size, DEFAULT_MAX_MESSAGE);
/// // The one knob: a server that expects chat lines, not uploads.
/// let mut options = ServerOptions::default();
/// options.config.limits = Limits::for_message_size(64 * 1024);
/// ```
#[cfg(feature = "std")]
pub fn default_config() -> wsproto::Config {
    wsproto::Config {
        limits: wsproto::Limits::for_message_size(DEFAULT_MAX_MESSAGE),
        ..wsproto::Config::default()
    }
}

#[cfg(feature = "std")]
impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            config: default_config(),
            protocols: Vec::new(),
            headers: Vec::new(),
            origin: None,
            deflate: Some(DeflateConfig::default()),
            memory_budget: None,
            deflate_level: CompressionLevel::Default,
            http2: false,
        }
    }
}

/// Options for a server connection.
///
/// permessage-deflate (RFC 7692) is accepted by default when a client offers
/// it ([`DeflateConfig::default`]); set `deflate: None` to decline every
/// offer.
///
/// # Memory: one budget for the whole server
///
/// `config.limits` bound each connection (a message of at most 16 MiB by
/// default); a server accepting `n` connections can then be made to hold `n`
/// such messages, and with permessage-deflate a peer needs only about 16 KB
/// on the wire for each. Give every connection the same
/// [`MemoryBudget`] ([`ServerOptions::with_memory_budget`], or clone one into
/// [`ServerOptions::memory_budget`]) to cap the sum: a connection whose
/// buffers would grow past what is left is closed with 1013 (Try Again
/// Later), and the others carry on (see [`budget`] for what is charged and
/// why the connection is failed rather than made to wait).
///
/// There is no budget by default. Any default would be wrong for someone: a
/// budget sized from the machine's memory protects nothing on a shared host,
/// and a fixed one refuses legitimate large messages (uploads, or the
/// Autobahn|Testsuite's 16 MiB messages of cases 9.1.6/9.2.6, which need the
/// budget to hold at least one whole message plus its echo) as soon as a few
/// arrive together. An operator knows how much memory the server may use and
/// how many large messages it must take at once; size the budget as
/// `concurrent large messages × message limit × 2` (a message plus its echo
/// or queued copy), then add about 300 KiB per connection of fixed overhead
/// (receive window, inflate scratch, deflate state and the budget's
/// per-connection grace) to get the server's memory.
///
/// ```
/// use wsproto_adapters::ServerOptions;
/// // Every connection accepted with these options (or clones of them) draws
/// // from the same 64 MiB.
/// let options = ServerOptions::default().with_memory_budget(64 << 20);
/// let same = options.clone();
/// assert_eq!(same.memory_budget.unwrap().limit(), 64 << 20);
/// ```
#[cfg(feature = "std")]
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Limits and timers for the handshake and the connection; the handshake
    /// must complete within `config.handshake_timeout` or it is answered 408.
    /// Defaults to [`default_config`] (messages up to 16 MiB).
    pub config: wsproto::Config,
    /// Supported subprotocols in the server's order of preference: the first
    /// one the client offered is chosen.
    pub protocols: Vec<String>,
    /// Accept permessage-deflate within these settings (`None`: decline).
    /// The first offer that fits is taken; `max_window_bits` caps the windows
    /// of both directions, and with it the memory of each connection.
    pub deflate: Option<DeflateConfig>,
    /// Where the deflate state of each connection lives:
    /// [`DeflateMemory::PerConnection`] (the default, sized by `deflate`'s
    /// `max_window_bits`) or [`DeflateMemory::Shared`] (no context takeover
    /// both ways, states borrowed from a pool only while a message is in
    /// flight). The memory of each mode is in [`deflate_memory`].
    pub deflate_memory: DeflateMemory,
    /// How hard the server works to make the messages it sends small:
    /// [`CompressionLevel::Default`] (about 1.09× zlib level 6's size on
    /// chat-like JSON) or [`CompressionLevel::Fast`] (about two thirds of
    /// the compression work for about 1.4× level 6's size there). Not
    /// negotiated; ignored without deflate.
    ///
    /// ```
    /// use wsproto_adapters::{CompressionLevel, ServerOptions};
    /// let options = ServerOptions {
    ///     deflate_level: CompressionLevel::Fast,
    ///     ..ServerOptions::default()
    /// };
    /// assert_eq!(options.deflate_level, CompressionLevel::Fast);
    /// ```
    pub deflate_level: CompressionLevel,
    /// The memory all connections accepted with these options share
    /// (`None`, the default: only `config.limits` apply, per connection).
    /// Clones of the options share the same budget.
    pub memory_budget: Option<MemoryBudget>,
}

#[cfg(feature = "std")]
impl ServerOptions {
    /// These options with a new shared budget of `bytes` for all the
    /// connections they accept (see [`MemoryBudget`]).
    pub fn with_memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = Some(MemoryBudget::new(bytes));
        self
    }
}

#[cfg(feature = "std")]
impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            config: default_config(),
            protocols: Vec::new(),
            deflate: Some(DeflateConfig::default()),
            deflate_memory: DeflateMemory::PerConnection,
            deflate_level: CompressionLevel::Default,
            memory_budget: None,
        }
    }
}

#[cfg(feature = "std")]
impl ServerOptions {
    /// The settings the handshake negotiates with: `deflate`, with no
    /// context takeover forced both ways in the shared mode.
    pub(crate) fn negotiated_deflate(&self) -> Option<DeflateConfig> {
        self.deflate.map(|config| match self.deflate_memory {
            DeflateMemory::PerConnection => config,
            DeflateMemory::Shared(_) => DeflateConfig {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                ..config
            },
        })
    }
}
