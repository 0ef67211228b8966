//! The run loop without I/O, shared by the blocking and tokio drivers.
//!
//! The I/O layers repeat: write [`Driver::pending`] out, shut the transport
//! when [`Driver::wants_shutdown`], return [`Driver::take_outcome`] if there
//! is one, otherwise [`Driver::step`] and read (with the timeout it asks for)
//! into [`Driver::spare`]. All state lives here, so an async read can be
//! cancelled at any await point without losing anything.
//!
//! # Lingering close
//!
//! When the core fails the connection (a peer violation: frame or message too
//! big, bad UTF-8...), the peer may still be sending, possibly megabytes of
//! the very frame that broke the rule. Dropping the socket with unread bytes
//! in the kernel's receive buffer makes the kernel answer with a RST, which
//! can destroy our Close frame before the peer reads it (the peer then sees
//! 1006 instead of 1009 or 1007). So after the Close is written and the write
//! side shut, the driver keeps reading and *discarding* (into its fixed
//! receive window, never retained, never given to the core) until the peer's
//! end of file or `Config::close_timeout` after the shutdown, whichever comes
//! first; only then is the failure returned and the transport dropped. A peer
//! that never stops sending is cut off at that deadline. Timer failures do
//! not linger (the peer is unresponsive), nor does a finished close handshake
//! (the peer's Close was its last frame).
//!
//! # Memory budget
//!
//! The reassembly buffer, the last delivered message (until the next
//! [`Driver::step`]) and the transmit buffer are charged to the connection's
//! [`Account`] before they grow, and given back when they shrink or the
//! driver is dropped (see [`crate::budget`]). When a charge is refused the
//! driver drops the partial message (or the message being sent), starts the
//! close handshake with 1013 through the core, discards incoming data until
//! that handshake ends (or its timer), and then returns the budget error in
//! place of whatever ended the connection.
//!
//! # Large messages written in place
//!
//! A text or binary message handed over by value ([`Driver::send_owned`])
//! of at least [`VECTORED_MIN`] bytes, on a connection whose payload goes
//! out untouched (a server without compression), is not copied into the
//! transmit buffer: the core writes only its header, and the driver keeps
//! the message itself until header and payload are written, one vectored
//! write after the other ([`Driver::pending_slices`]). Its bytes are charged
//! to the budget like the transmit buffer. The output stays one ordered
//! queue: what was queued before that frame goes out first, control frames
//! and messages queued while it is written go out after it. One such frame
//! is held at a time; a second one meanwhile is copied as usual.

use crate::budget::{Account, BudgetExceeded};
use crate::conn::AnyConn;
use crate::copy;
use crate::handshake::Done;
use crate::rng::StdRng;
use crate::{CloseFrame, Error, Message};
use std::io::IoSlice;
use std::ops::ControlFlow;
use wsproto::extensions::deflate::Agreed;
use wsproto::frame::MAX_HEADER_LEN;
use wsproto::{
    CloseCode, Config, Event, HandshakeError, Instant, MessageKind, Role, State, TimeoutKind,
};

/// The largest receive window. The core surfaces payload as it arrives, so
/// only a frame header or a control frame (at most a few hundred bytes) is
/// ever kept: the window's size only sets how much one read can take. A
/// 64 KiB message with its header fits in one read, with room to spare: a
/// read that does not fill the window tells the tokio driver that the
/// socket is drained, so a window of exactly 64 KiB cost a second read for
/// the last 14 bytes of every 64 KiB echo.
const RX_BUFFER: usize = 64 * 1024 + 1024;
/// The receive window of a connection that reads little at a time. An idle
/// connection is blocked in a read that holds its window, so this is what
/// each idle connection costs; reads that fill the window grow it (up to
/// [`RX_BUFFER`]), and a run of small reads shrinks it back.
pub(crate) const RX_MIN: usize = 1024;
/// Small reads in a row (each under half of [`RX_MIN`]) after which a grown
/// window goes back to [`RX_MIN`].
const RX_SHRINK_AFTER: u8 = 4;
/// Owned messages from this size up are written from their own bytes, not
/// copied into the transmit buffer (see the module doc). Below it, the copy
/// costs less than the extra bookkeeping and keeps small replies in one write.
pub(crate) const VECTORED_MIN: usize = 16 * 1024;
/// Spare capacity a small whole message is received with: room for the
/// header of its frame if it is sent back ([`Driver::send_owned`] then
/// writes it from the message's own allocation).
const SEND_ROOM: usize = MAX_HEADER_LEN;
/// A window holding at least this many bytes goes to the core through
/// `receive_copy` ([`Driver::copy_input`]): the payload of a data frame is
/// unmasked straight into the message, one pass over a large payload
/// instead of an unmasking and a copy. A smaller window keeps the in-place
/// path, whose loop over runs of whole small frames costs less per frame.
const COPY_MIN: usize = 4096;
/// A written transmit buffer up to this size (an echoed small message's own
/// allocation) is kept as the allocation of the next small message
/// ([`Partial::Spare`]), so an echo of small messages allocates nothing; a
/// larger one is freed, so an idle connection holds at most this.
const RECYCLE_MAX: usize = 256;
/// Transmit buffers above this are shrunk back once written.
const TX_KEEP: usize = 256 * 1024;
/// Decompressed bytes per chunk of a compressed message (allocated only when
/// permessage-deflate was agreed); chunks are appended to the message being
/// reassembled, so this bounds nothing but the size of one step.
const INFLATE_SCRATCH: usize = 32 * 1024;

/// What the I/O layer should do after [`Driver::step`].
#[cfg_attr(not(feature = "blocking"), allow(dead_code))]
pub(crate) enum Step {
    /// Go round again: write, then take the outcome.
    Continue,
    /// Read more bytes, waiting at most this long (`None`: no timer armed).
    Read(Option<std::time::Duration>),
}

/// What the I/O layer should do after [`Driver::step_until`]: as [`Step`],
/// with the deadline itself rather than the wait, so a caller that keeps a
/// timer armed needs no clock to compare it with.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) enum StepAt {
    /// Go round again: write, then take the outcome.
    Continue,
    /// Read more bytes, until this deadline at most (`None`: no timer armed).
    Read(Option<Instant>),
}

/// The time for one step, read from the clock only when a deadline needs it.
struct Now {
    at: Option<Instant>,
    /// No timer can be due before this instant (the caller's timer, armed
    /// there, has not fired), so deadlines from it on need no clock.
    quiet_before: Option<Instant>,
}

impl Now {
    /// The current time, read once.
    fn get(&mut self) -> Instant {
        *self.at.get_or_insert_with(crate::clock::now)
    }

    /// Whether a deadline at `at` has come.
    fn reached(&mut self, at: Instant) -> bool {
        if self.at.is_none() && self.quiet_before.is_some_and(|quiet| at >= quiet) {
            return false;
        }
        at <= self.get()
    }
}

/// A message being reassembled, or room for the next one.
enum Partial {
    Text(String),
    Binary(Vec<u8>),
    /// A message reassembled by [`Driver::copy_input`]: its first `len`
    /// bytes so far. The bytes after them are initialised room (the rest of
    /// a spare buffer), written over by the next chunk without zeroing.
    Copying {
        buf: Vec<u8>,
        len: usize,
    },
    /// The allocation of the last large message written in place
    /// ([`Verbatim`]), still charged, its old bytes kept as room to write
    /// over (`copy_input`): the next large message is
    /// reassembled into it, so a connection echoing large messages does not
    /// allocate and free one per message. Dropped once reads get small.
    Spare(Vec<u8>),
}

/// One connection's state between I/O calls.
pub(crate) struct Driver {
    conn: AnyConn,
    rx: Vec<u8>,
    /// `rx[rx_start..rx_len]` is read and not yet consumed by the core. The
    /// bytes after a message stay where they are until the next read needs
    /// the room: moved to the front after every message, the rest of a
    /// 64 KiB window of pipelined messages cost a large `memmove` per echo.
    rx_start: usize,
    rx_len: usize,
    /// Reads append to `rx` in its spare capacity (the tokio driver, through
    /// tokio's `read_buf`) instead of filling its zeroed length: the window
    /// is then `rx`'s capacity, `rx.len()` is `rx_len`, and a new or grown
    /// window is never zeroed.
    append_reads: bool,
    /// Reads in a row that took under half of [`RX_MIN`] (see there).
    small_reads: u8,
    /// Where compressed messages are inflated: allocated when input arrives
    /// on a connection that agreed to deflate, given back with an idle
    /// window (it holds nothing between calls to the core).
    scratch: Vec<u8>,
    tx: TxBuffer,
    /// The core may hold queued control frames (pongs, pings, a Close) for
    /// [`Driver::transmit`]: set by everything that can queue one (a received
    /// control frame or failure, the timers, the control commands), cleared
    /// once `poll_transmit` has nothing left. Most steps of a busy
    /// connection queue nothing, and asking the core costs more than the
    /// flag.
    core_output: bool,
    /// A data frame written from the message's own bytes (see the module doc).
    verbatim: Option<Verbatim>,
    /// Owned messages from this size up go out in place ([`VECTORED_MIN`]).
    vectored_min: usize,
    /// A fragmented message is being sent (its last fragment not yet queued):
    /// a whole message now is misuse, which only the copying path reports.
    fragment_open: bool,
    partial: Option<Partial>,
    /// The allocation of a large message written in place while another
    /// message was already under way (so not kept as [`Partial::Spare`]):
    /// room for the next large message, charged as `room_charge`. With
    /// messages in flight it saves allocating, and zeroing, one per message.
    room: Vec<u8>,
    /// Bytes charged for `room`.
    room_charge: usize,
    /// What this connection holds of its memory budget.
    account: Account,
    /// Bytes charged for the message being reassembled.
    partial_charge: usize,
    /// Bytes charged for the last message handed over, released by the next step.
    delivered_charge: usize,
    /// Set when a charge was refused: the connection is closing with 1013.
    refused: Option<BudgetExceeded>,
    outcome: Option<Result<Message, Error>>,
    eof: bool,
    shut: bool,
    finished: bool,
    /// Whether the I/O layer can bound its reads and shut the write side, so
    /// a lingering close is possible (see the module doc).
    can_linger: bool,
    /// End of the lingering close, fixed when it starts.
    linger_until: Option<Instant>,
    /// Deadline for writing the last frames once no core timer is left.
    flush_until: Option<Instant>,
    protocol: Option<String>,
    deflate: Option<Agreed>,
    extensions: Option<String>,
    path: String,
}

impl Driver {
    /// A driver for an open connection after `done`, its handshake.
    ///
    /// Fails only if the agreed permessage-deflate windows fit none of the
    /// deflate states (never, for an agreement the core validated).
    pub fn new(role: Role, config: Config, rng: StdRng, done: Done) -> Result<Self, Error> {
        let Done {
            protocol,
            leftover,
            path,
            deflate,
            budget,
            shared,
            ..
        } = done;
        let conn = AnyConn::new(role, config, rng, deflate.as_ref(), shared.as_ref())
            .map_err(|_| Error::Handshake(HandshakeError::InvalidExtension))?;
        let extensions = deflate.map(|agreed| {
            let mut value = [0u8; wsproto::extensions::deflate::params::MAX_VALUE_LEN];
            let n = agreed.write_response(&mut value).unwrap_or(0);
            String::from_utf8_lossy(value.get(..n).unwrap_or_default()).into_owned()
        });
        let mut rx = vec![0u8; RX_MIN.max(leftover.len() + 1024)];
        if let Some(start) = rx.get_mut(..leftover.len()) {
            start.copy_from_slice(&leftover);
        }
        Ok(Driver {
            conn,
            rx,
            rx_start: 0,
            rx_len: leftover.len(),
            append_reads: false,
            small_reads: 0,
            scratch: Vec::new(),
            tx: TxBuffer::default(),
            core_output: true,
            verbatim: None,
            vectored_min: VECTORED_MIN,
            fragment_open: false,
            partial: None,
            room: Vec::new(),
            room_charge: 0,
            account: Account::new(budget),
            partial_charge: 0,
            delivered_charge: 0,
            refused: None,
            outcome: None,
            eof: false,
            shut: false,
            finished: false,
            can_linger: true,
            linger_until: None,
            flush_until: None,
            protocol,
            deflate,
            extensions,
            path,
        })
    }

    /// The request target of the handshake.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The negotiated subprotocol.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The permessage-deflate agreement, if compression was negotiated.
    pub fn deflate(&self) -> Option<&Agreed> {
        self.deflate.as_ref()
    }

    /// The negotiated `Sec-WebSocket-Extensions` value, if any.
    pub fn extensions(&self) -> Option<&str> {
        self.extensions.as_deref()
    }

    /// The core connection's state.
    pub fn state(&self) -> State {
        self.conn.state()
    }

    /// The next bytes to write: all of the output, or while a frame is
    /// written in place only its first part (use [`Driver::pending_slices`]
    /// to write everything at once). Empty once nothing waits.
    pub fn pending(&self) -> &[u8] {
        let tx = self.tx.pending();
        match &self.verbatim {
            Some(v) if v.before > 0 => tx.get(..v.before).unwrap_or_default(),
            Some(v) => v.header_left().or(v.payload_left()).unwrap_or_default(),
            None => tx,
        }
    }

    /// How many bytes wait to be written (the tokio driver's back-pressure).
    #[cfg(any(feature = "tokio", test))]
    pub fn pending_len(&self) -> usize {
        self.tx.end.saturating_sub(self.tx.start) + self.verbatim.as_ref().map_or(0, Verbatim::left)
    }

    /// The output in order, as up to four slices for one vectored write;
    /// returns how many of `slices` it filled (0: nothing waits). Passing
    /// the number of bytes written to [`Driver::advance`] is all a partial
    /// write needs, wherever it stops.
    pub fn pending_slices<'a>(&'a self, slices: &mut [IoSlice<'a>; 4]) -> usize {
        let tx = self.tx.pending();
        if self.verbatim.is_none() {
            // The usual case: the transmit buffer alone.
            if tx.is_empty() {
                return 0;
            }
            slices[0] = IoSlice::new(tx);
            return 1;
        }
        let parts: [Option<&'a [u8]>; 4] = match &self.verbatim {
            Some(v) => {
                let (before, after) = tx.split_at(v.before.min(tx.len()));
                [Some(before), v.header_left(), v.payload_left(), Some(after)]
            }
            None => [Some(tx), None, None, None],
        };
        let mut filled = 0;
        for part in parts.into_iter().flatten().filter(|p| !p.is_empty()) {
            if let Some(slot) = slices.get_mut(filled) {
                *slot = IoSlice::new(part);
                filled += 1;
            }
        }
        filled
    }

    /// `n` bytes of the output (from the start of [`Driver::pending`] or
    /// [`Driver::pending_slices`]) were written.
    pub fn advance(&mut self, mut n: usize) {
        if let Some(v) = &mut self.verbatim {
            let first = n.min(v.before);
            self.tx.advance(first);
            v.before -= first;
            n -= first;
            if v.before == 0 {
                let own = n.min(v.left());
                v.written += own;
                n -= own;
            }
            if v.left() == 0 {
                if let Some(v) = self.verbatim.take() {
                    self.keep_spare(v.payload, v.charge);
                }
            }
        }
        if self.verbatim.is_none() {
            self.tx.advance(n);
        }
        self.tx.settle(&mut self.account);
    }

    /// Keeps `payload` (written, `charge` bytes charged) as room for the
    /// next message ([`Partial::Spare`]) while no message is under way and
    /// it is no larger than a receive window; gives it back otherwise.
    fn keep_spare(&mut self, payload: Vec<u8>, charge: usize) {
        if self.partial.is_none() && payload.capacity() <= RX_BUFFER {
            // Not cleared: its bytes are room `copy_input` writes over
            // without zeroing it first.
            self.partial = Some(Partial::Spare(payload));
            self.partial_charge = charge;
        } else if self.room.capacity() == 0 && payload.capacity() <= RX_BUFFER {
            self.room = payload;
            self.room_charge = charge;
        } else {
            self.account.shrink(charge);
        }
    }

    /// Frees the written transmit buffer, or keeps a small one as the
    /// allocation of the next small message ([`RECYCLE_MAX`]) while no
    /// message is under way.
    fn recycle_tx(&mut self) {
        match self.tx.take() {
            Some((buf, charged)) if self.partial.is_none() && buf.capacity() <= RECYCLE_MAX => {
                self.partial = Some(Partial::Spare(buf));
                self.partial_charge = charged;
            }
            Some((_, charged)) => self.account.shrink(charged),
            None => {}
        }
    }

    /// Gives back the room kept for the next message, if any.
    fn drop_spare(&mut self) {
        if matches!(self.partial, Some(Partial::Spare(_))) {
            self.partial = None;
            self.account
                .shrink(core::mem::take(&mut self.partial_charge));
        }
    }

    /// Gives back [`Driver::room`]. Kept through the odd small read of a
    /// burst (a message's tail), unlike the spare: reads stay small only
    /// [`RX_SHRINK_AFTER`] times in a row before it goes.
    fn drop_room(&mut self) {
        if self.room.capacity() > 0 {
            self.room = Vec::new();
            self.account.shrink(core::mem::take(&mut self.room_charge));
        }
    }

    /// Drops all unwritten output (the peer will never read it).
    fn drop_output(&mut self) {
        if let Some(v) = self.verbatim.take() {
            self.account.shrink(v.charge);
        }
        self.tx.clear();
        self.tx.settle(&mut self.account);
    }

    /// The core says the transport should now be closed, and it is not yet.
    pub fn wants_shutdown(&self) -> bool {
        !self.shut && self.pending().is_empty() && self.conn.should_close_transport()
    }

    /// The transport's write side was shut (or the transport dropped).
    pub fn mark_shut(&mut self) {
        self.shut = true;
    }

    /// Turns the lingering close off: for transports whose reads cannot be
    /// bounded in time or whose write side cannot be shut.
    #[cfg(any(feature = "blocking", test))]
    pub fn disable_linger(&mut self) {
        self.can_linger = false;
    }

    /// Whether the driver is draining the transport after failing the
    /// connection: our Close is written and the write side shut, the peer has
    /// not reached end of file, and the failure is held back until it does (or
    /// the deadline passes).
    fn lingering(&self) -> bool {
        self.can_linger
            && self.shut
            && !self.eof
            && !self.finished
            && matches!(
                self.outcome,
                Some(Err(Error::Protocol(wsproto::Error::Protocol(_))))
            )
    }

    /// The result the caller should return, if one is ready.
    pub fn take_outcome(&mut self) -> Option<Result<Message, Error>> {
        if self.outcome.is_none() || self.lingering() {
            // Held until the drain ends (see the module doc).
            return None;
        }
        let mut outcome = self.outcome.take();
        if matches!(outcome, Some(Err(_))) {
            self.finished = true;
            // Whatever ended a connection closing for its budget (the peer's
            // Close, a timer, end of file), the budget is why.
            if let Some(refused) = self.refused.take() {
                outcome = Some(Err(refused.into_error()));
            }
        }
        outcome
    }

    /// Gives the receive window back while nothing is buffered and reads are
    /// small (see [`RX_MIN`]): the next read then goes into a buffer shared
    /// by the connections of a thread ([`Driver::on_read_shared`]), so an
    /// idle connection waiting for input holds no window at all. Returns
    /// whether the window is given back.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub fn release_idle_window(&mut self) -> bool {
        if self.rx.capacity() == 0 {
            return true;
        }
        if self.rx_len == 0 && self.small_reads > 0 && self.window() <= RX_MIN && !self.lingering()
        {
            self.rx = Vec::new();
            self.scratch = Vec::new();
            self.drop_spare();
            self.drop_room();
            return true;
        }
        false
    }

    /// `bytes` were read into a shared buffer of `shared_len` bytes while the
    /// window was given back ([`Driver::release_idle_window`]).
    ///
    /// A read that did not fill the shared buffer (the usual small message
    /// of an idle connection) is decoded where it lies: only what the core
    /// leaves unconsumed (a frame's first bytes, the messages after the
    /// first) is copied into a window of its own, so a connection that reads
    /// one small message at a time allocates no window at all. The control
    /// frames the core answered are collected as [`Driver::take_buffered`]
    /// does. A read that filled it goes through the window, which grows.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub fn on_read_shared(&mut self, bytes: &mut [u8], shared_len: usize) {
        let direct = self.rx.capacity() == 0
            && bytes.len() < shared_len
            && self.outcome.is_none()
            && !self.finished
            && !self.lingering();
        if !direct {
            if self.append_reads {
                self.read_vec().extend_from_slice(bytes);
                self.on_appended(bytes.len());
            } else if let Some(to) = self.spare().get_mut(..bytes.len()) {
                to.copy_from_slice(bytes);
                self.on_read(bytes.len());
            }
            return;
        }
        self.note_read(bytes.len());
        // The caller is back for more: the last message is its own now.
        self.account
            .shrink(core::mem::take(&mut self.delivered_charge));
        let pos = self.process_input(bytes);
        if let Some(rest) = bytes.get(pos..).filter(|r| !r.is_empty()) {
            // Shorter than the shared buffer, so the window has room left.
            self.rx = self.new_window(RX_MIN.max(rest.len() + 1), rest);
            self.rx_start = 0;
            self.rx_len = rest.len();
        }
        self.transmit();
    }

    /// Makes reads append to the window ([`Driver::read_vec`],
    /// [`Driver::on_appended`]) from now on (see `append_reads`).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub fn read_by_appending(&mut self) {
        self.append_reads = true;
        if self.rx_start > 0 {
            self.rx.copy_within(self.rx_start..self.rx_len, 0);
            self.rx_len -= self.rx_start;
            self.rx_start = 0;
        }
        self.rx.truncate(self.rx_len);
    }

    /// The receive window's size: its zeroed length, or its capacity when
    /// reads append.
    fn window(&self) -> usize {
        if self.append_reads {
            self.rx.capacity()
        } else {
            self.rx.len()
        }
    }

    /// A window of `len` bytes holding `kept` at its front; zeroed only
    /// where reads fill its length.
    fn new_window(&self, len: usize, kept: &[u8]) -> Vec<u8> {
        let len = len.max(kept.len());
        if self.append_reads {
            let mut rx = Vec::with_capacity(len);
            rx.extend_from_slice(kept);
            return rx;
        }
        let mut rx = vec![0u8; len];
        if let Some(to) = rx.get_mut(..kept.len()) {
            to.copy_from_slice(kept);
        }
        rx
    }

    /// Where the next read goes when reads append: the window, its unread
    /// bytes moved to the front, the read to go into its spare capacity.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub fn read_vec(&mut self) -> &mut Vec<u8> {
        if self.rx.capacity() == 0 {
            // Given back while idle: a window again for this read.
            self.rx = Vec::with_capacity(RX_MIN);
        }
        if self.rx_start > 0 {
            self.rx.copy_within(self.rx_start..self.rx_len, 0);
            self.rx_len -= self.rx_start;
            self.rx_start = 0;
        }
        self.rx.truncate(self.rx_len);
        &mut self.rx
    }

    /// `n` bytes were appended to [`Driver::read_vec`].
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub fn on_appended(&mut self, n: usize) {
        if self.lingering() {
            // Drained: discarded, never retained, never given to the core.
            self.rx.truncate(self.rx_len);
            return;
        }
        self.rx_len = self.rx.len();
        self.note_read(n);
        self.grow_if_filled();
    }

    /// Where the next read goes.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.rx.capacity() == 0 {
            // Given back while idle: a window again for this read.
            self.rx = vec![0u8; RX_MIN];
        }
        if self.rx_start > 0 {
            // What the core left (a frame's first bytes) goes to the front.
            self.rx.copy_within(self.rx_start..self.rx_len, 0);
            self.rx_len -= self.rx_start;
            self.rx_start = 0;
        }
        self.rx.get_mut(self.rx_len..).unwrap_or_default()
    }

    /// `n` bytes were read into [`Driver::spare`].
    pub fn on_read(&mut self, n: usize) {
        if self.lingering() {
            // Drained: discarded, never retained, never given to the core.
            return;
        }
        self.rx_len = (self.rx_len + n).min(self.rx.len());
        self.note_read(n);
        self.grow_if_filled();
    }

    /// Grows a window the last read filled.
    fn grow_if_filled(&mut self) {
        let window = self.window();
        if self.rx_len == window && window < RX_BUFFER {
            // The read filled the window: more is probably waiting. Four
            // times larger, or the largest once that is near or the frame
            // under way still announces more than four times: every new
            // window is zeroed, so the steps between would cost a large
            // message's connection for nothing.
            let next = window * 4;
            let announced = usize::try_from(self.conn.frame_remaining()).unwrap_or(usize::MAX);
            self.resize_rx(if next * 2 > RX_BUFFER || announced > next {
                RX_BUFFER
            } else {
                next
            });
        }
    }

    /// Counts a read of `n` bytes towards shrinking the window (see [`RX_MIN`]).
    fn note_read(&mut self, n: usize) {
        if n < RX_MIN / 2 {
            self.small_reads = self.small_reads.saturating_add(1);
        } else {
            self.small_reads = 0;
        }
    }

    /// Gives the receive window `len` bytes, keeping what it holds.
    fn resize_rx(&mut self, len: usize) {
        let kept = self.rx.get(self.rx_start..self.rx_len).unwrap_or_default();
        self.rx = self.new_window(len, kept);
        self.rx_len -= self.rx_start;
        self.rx_start = 0;
    }

    /// The transport reached end of file.
    pub fn on_eof(&mut self) {
        self.eof = true;
    }

    /// The transport failed: nothing more will be read or written.
    pub fn on_io_error(&mut self) {
        self.finished = true;
        self.shut = true;
        // Never written again: the next call must not retry a dead transport.
        self.drop_output();
    }

    /// A write failed with `e`. After the close handshake (the peer's Close
    /// received, ours queued) a peer that resets instead of reading our
    /// Close has ended the connection normally: the transport is gone, but
    /// the caller gets what was received and then
    /// [`Error::ConnectionClosed`], not `e`.
    pub fn on_write_error(&mut self, e: std::io::Error) -> Result<(), Error> {
        let closed = matches!(self.conn.state(), State::Closed { .. });
        self.on_io_error();
        if closed {
            Ok(())
        } else {
            Err(e.into())
        }
    }

    /// A read failed with `e`. While lingering this only ends the drain (the
    /// held failure is what the caller gets); otherwise the transport is gone
    /// and `e` is the caller's error.
    ///
    /// After the close handshake (both Close frames exchanged) nothing more
    /// was expected but the end of the transport, so a failed read (the
    /// peer's reset, common among servers) ends it like end of file.
    pub fn on_read_error(&mut self, e: std::io::Error) -> Result<(), Error> {
        if !self.lingering() && matches!(self.conn.state(), State::Closed { .. }) {
            self.eof = true;
            return Ok(());
        }
        let lingering = self.lingering();
        self.on_io_error();
        if lingering {
            Ok(())
        } else {
            Err(e.into())
        }
    }

    /// Fires the timers due at `now` (and fixes the deadlines of new ones).
    /// Returns the next deadline when none was due (so the caller need not
    /// ask the core again while nothing else reaches it), `None` after
    /// firing.
    fn run_timers(&mut self, now: &mut Now) -> Result<Option<Option<Instant>>, Error> {
        let next = self.conn.poll_timeout();
        if next.is_some_and(|at| now.reached(at)) {
            // A keepalive ping or a Close may be queued now.
            self.core_output = true;
            self.conn.handle_timeout(now.get())?;
            return Ok(None);
        }
        Ok(Some(next))
    }

    /// How long the next write may block before the timers must run
    /// (`None`: no timer is armed). Fires the timers due at `now` first: a
    /// peer that stopped reading blocks writes, and only the timers (close
    /// handshake, keepalive) can end such a connection.
    ///
    /// When a timer ends the connection, the unwritten output is dropped (the
    /// peer is not reading it), the connection is finished and the error is
    /// returned: the I/O layer shuts the transport and returns it.
    pub fn write_wait(&mut self, now: Instant) -> Result<Option<std::time::Duration>, Error> {
        if self.finished {
            return Ok(None);
        }
        let next = match self.run_timers(&mut Self::now_at(now)) {
            // Output the core gives may move its timers (our Close arms one).
            Ok(next) => next.filter(|_| !self.core_output),
            Err(e) => return Err(self.give_up(Some(e))),
        };
        // A keepalive ping (or idle Close) the timers queued goes out next.
        self.transmit();
        let wait = match next {
            Some(next) => wait_until(next, now),
            None => self.wait(now),
        };
        if let Some(wait) = wait {
            return Ok(Some(wait));
        }
        if self.conn.state() == State::Open || self.pending().is_empty() {
            return Ok(None);
        }
        // The connection is over (failed, timed out, or the handshake done)
        // and the core has no timer left, but its last frames still wait:
        // they get `close_timeout` from now, not forever.
        let until = *self
            .flush_until
            .get_or_insert_with(|| now + self.conn.config().close_timeout);
        if now >= until {
            return Err(self.give_up(None));
        }
        Ok(Some(
            std::time::Duration::from_nanos(until.saturating_duration_since(now).as_nanos())
                .max(std::time::Duration::from_millis(1)),
        ))
    }

    /// Drops the unwritten output of a peer that does not read, finishes the
    /// connection and says why: `e`, the failure already held, or the close
    /// timeout.
    fn give_up(&mut self, e: Option<Error>) -> Error {
        self.drop_output();
        self.finished = true;
        let held = match self.outcome.take() {
            Some(Err(held)) => Some(held),
            _ => None,
        };
        e.or(held)
            .unwrap_or(Error::Protocol(wsproto::Error::Timeout(TimeoutKind::Close)))
    }

    /// Time until the next timer, at least 1 ms (`None`: none armed).
    fn wait(&self, now: Instant) -> Option<std::time::Duration> {
        wait_until(self.conn.poll_timeout(), now)
    }

    /// A message decoded from bytes already read, handed out before any
    /// write so that replies to a burst of requests can be queued and written
    /// together (pipelining). Feeds the receive window to the core if no
    /// result is waiting; the control frames it queues (pongs, a Close echo)
    /// stay in [`Driver::pending`]. With `data_only`, only text and binary
    /// messages come out this way: control messages and failures wait for
    /// the I/O layer to write first, as [`Driver::step`] has it.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub fn take_buffered(&mut self, data_only: bool) -> Option<Message> {
        if self.finished || self.lingering() {
            return None;
        }
        // The caller is back for more: the last message is its own now.
        self.account
            .shrink(core::mem::take(&mut self.delivered_charge));
        if self.outcome.is_none() && self.rx_len > 0 {
            self.process();
            self.transmit();
        }
        match &self.outcome {
            Some(Ok(Message::Text(_) | Message::Binary(_))) => {}
            Some(Ok(_)) if !data_only => {}
            _ => return None,
        }
        self.outcome.take().and_then(Result::ok)
    }

    /// Whether the connection is over: the close handshake is done, or the
    /// connection failed or ended.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub fn is_over(&self) -> bool {
        self.finished || matches!(self.conn.state(), State::Closed { .. })
    }

    /// Whether a message (not a failure) waits to be handed out.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub fn message_ready(&self) -> bool {
        matches!(self.outcome, Some(Ok(_))) && !self.lingering()
    }

    /// Runs timers, feeds buffered input to the core and collects its output.
    #[cfg_attr(not(feature = "blocking"), allow(dead_code))]
    pub fn step(&mut self, now: Instant) -> Step {
        Self::waiting(self.step_inner(&mut Self::now_at(now), true), now)
    }

    /// As [`Driver::step`], but asks for a read even while output waits to
    /// be written: for a reader that must not wait behind a writer. Only
    /// the end of the connection (end of file, the transport to be shut)
    /// still waits for [`Driver::pending`] to drain.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub fn step_reading(&mut self, now: Instant) -> StepAt {
        self.step_inner(&mut Self::now_at(now), false)
    }

    /// As [`Driver::step`], for a caller whose timer is armed at
    /// `quiet_before` and has not fired: no deadline from then on can have
    /// come, so the clock is read only for an earlier one. A busy
    /// connection then steps without reading the clock at all.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub fn step_until(&mut self, quiet_before: Option<Instant>) -> StepAt {
        self.step_inner(
            &mut Now {
                at: None,
                quiet_before,
            },
            true,
        )
    }

    fn now_at(now: Instant) -> Now {
        Now {
            at: Some(now),
            quiet_before: None,
        }
    }

    /// A step's deadline as the wait from `now`.
    #[cfg_attr(not(feature = "blocking"), allow(dead_code))]
    fn waiting(step: StepAt, now: Instant) -> Step {
        match step {
            StepAt::Continue => Step::Continue,
            StepAt::Read(at) => Step::Read(wait_until(at, now)),
        }
    }

    fn step_inner(&mut self, now: &mut Now, write_first: bool) -> StepAt {
        // The caller is back for more: the last message is its own now.
        self.account
            .shrink(core::mem::take(&mut self.delivered_charge));
        if self.finished {
            self.outcome = Some(Err(Error::ConnectionClosed));
            return StepAt::Continue;
        }
        if self.lingering() {
            return self.drain(now);
        }
        let mut next = match self.run_timers(now) {
            Ok(next) => next,
            Err(e) => {
                self.outcome = Some(Err(e));
                None
            }
        };
        if self.rx_len > 0 || self.core_output || self.conn.compresses() {
            // The core may see input or give output: its timers may move.
            next = None;
        }
        if self.outcome.is_none() {
            self.process();
        }
        self.transmit();
        if self.outcome.is_some() || (write_first && !self.pending().is_empty()) {
            return StepAt::Continue;
        }
        if !self.pending().is_empty()
            && (self.eof || self.shut || self.conn.should_close_transport())
        {
            return StepAt::Continue;
        }
        if self.eof {
            self.core_output = true;
            let result = self.conn.receive_eof();
            self.finished = true;
            self.outcome = Some(Err(match result {
                Err(e) => e.into(),
                Ok(()) => Error::ConnectionClosed,
            }));
            return StepAt::Continue;
        }
        if self.shut || self.conn.should_close_transport() {
            // Shut by us (close done, failure, timer): nothing more to read.
            self.finished = true;
            return StepAt::Continue;
        }
        let window = self.window();
        if window > 0 && self.rx_len - self.rx_start == window {
            // Never expected (the core keeps little unconsumed), but never read into nothing.
            self.resize_rx(window * 2);
        } else if self.small_reads >= RX_SHRINK_AFTER && window > RX_MIN {
            // The burst is over: an idle connection holds only the small window.
            self.resize_rx(RX_MIN.max(self.rx_len - self.rx_start + 1024));
            self.drop_room();
            self.small_reads = 0;
        }
        if self.small_reads >= RX_SHRINK_AFTER
            || (self.small_reads > 0 && self.tx.capacity() <= RX_MIN)
        {
            // Small messages, or none: nothing is queued (checked above), so
            // the transmit buffer goes too, and comes back with the next send.
            // A large one stays through a burst, as the receive window does.
            if !matches!(&self.partial, Some(Partial::Spare(b)) if b.capacity() <= RECYCLE_MAX) {
                // A large spare goes; a small one is what recycling keeps.
                self.drop_spare();
            }
            self.recycle_tx();
            if self.small_reads >= RX_SHRINK_AFTER {
                self.drop_room();
            }
        }
        StepAt::Read(match next {
            Some(next) => next,
            None => self.conn.poll_timeout(),
        })
    }

    /// One round of the lingering close: read and discard until end of file
    /// or the deadline, then release the held failure.
    fn drain(&mut self, now: &mut Now) -> StepAt {
        let now = now.get();
        let until = *self
            .linger_until
            .get_or_insert_with(|| now + self.conn.config().close_timeout);
        if now >= until {
            // The peer kept the connection open (or kept sending) too long.
            self.finished = true;
            return StepAt::Continue;
        }
        // Whatever was buffered is as dead as what is still to come; the
        // peer may be sending megabytes, so drain with the whole window.
        self.rx_start = 0;
        self.rx_len = 0;
        self.rx
            .truncate(if self.append_reads { 0 } else { self.rx.len() });
        if self.window() < RX_BUFFER {
            self.rx = self.new_window(RX_BUFFER, &[]);
        }
        StepAt::Read(Some(until))
    }

    /// Feeds the receive window to the core until a message completes or
    /// nothing more can be consumed (see [`Driver::process_input`]); the
    /// unconsumed rest stays where it is.
    fn process(&mut self) {
        if self.rx_len == 0 && !self.conn.compresses() {
            // No input, no event (an inflater may still hold output, so a
            // compressed connection is always asked).
            return;
        }
        let mut rx = core::mem::take(&mut self.rx);
        let len = self.rx_len.min(rx.len());
        let start = self.rx_start.min(len);
        let consumed = match rx.get_mut(start..len) {
            Some(input) => self.process_input(input),
            None => 0,
        };
        self.rx = rx;
        // The rest stays in place for the next call (see `rx_start`).
        let start = start + consumed;
        if start >= len {
            (self.rx_start, self.rx_len) = (0, 0);
        } else {
            (self.rx_start, self.rx_len) = (start, len);
        }
    }

    /// Feeds `input` (what the receive window holds) to the core until a
    /// message completes or nothing more can be consumed; returns the bytes
    /// consumed. The core decodes every frame the input holds in one call
    /// (`receive_each`), handing the events to the loop body below; a
    /// complete message, the end of the wait after a refusal, or a refused
    /// charge stops it.
    fn process_input(&mut self, input: &mut [u8]) -> usize {
        let mut pos = 0;
        if self.scratch.is_empty() && !input.is_empty() && self.conn.compresses() {
            self.scratch = vec![0u8; INFLATE_SCRATCH];
        }
        // A control frame (answered by the core: pong, Close echo) was seen.
        let mut control = false;
        while self.outcome.is_none() {
            let Some(input) = input.get_mut(pos..) else {
                break;
            };
            if input.len() >= COPY_MIN
                && self.refused.is_none()
                && !self.conn.compresses()
                && !matches!(self.partial, Some(Partial::Text(_)))
            {
                match self.copy_input(input, &mut control) {
                    Ok(0) => break,
                    Ok(consumed) => pos += consumed,
                    Err(CopyStop::Core(e)) => {
                        // The core queued its Close and ignores further input.
                        pos += input.len();
                        control = true;
                        self.outcome = Some(Err(e.into()));
                        break;
                    }
                    Err(CopyStop::Refused(r)) => self.refuse(r),
                }
                continue;
            }
            let mut refused_now = None;
            let (partial, account, partial_charge, delivered_charge, outcome, refused) = (
                &mut self.partial,
                &mut self.account,
                &mut self.partial_charge,
                &mut self.delivered_charge,
                &mut self.outcome,
                &self.refused,
            );
            let result = self
                .conn
                .receive_each(input, &mut self.scratch, |event, remaining| {
                    if !matches!(event, Event::Text { .. } | Event::Binary { .. }) {
                        control = true;
                    }
                    match event {
                        // Closing with 1013: the peer's Close ends the wait (as the
                        // budget error, see take_outcome); data is dropped.
                        Event::Close { .. } if refused.is_some() => {
                            *outcome = Some(Err(Error::ConnectionClosed));
                            ControlFlow::Break(())
                        }
                        _ if refused.is_some() => ControlFlow::Continue(()),
                        event => {
                            let mut charge = Charge {
                                account: &mut *account,
                                bytes: &mut *partial_charge,
                            };
                            match on_event(partial, event, remaining, &mut charge) {
                                Ok(None) => ControlFlow::Continue(()),
                                Ok(Some(message)) => {
                                    *delivered_charge += core::mem::take(&mut *partial_charge);
                                    *outcome = Some(Ok(message));
                                    ControlFlow::Break(())
                                }
                                Err(r) => {
                                    refused_now = Some(r);
                                    ControlFlow::Break(())
                                }
                            }
                        }
                    }
                });
            match result {
                Ok(consumed) => pos += consumed,
                Err(e) => {
                    // The core queued its Close and ignores further input.
                    pos += input.len();
                    control = true;
                    self.outcome = Some(Err(e.into()));
                    break;
                }
            }
            match refused_now {
                // Go on with the rest of the window, now ignoring data.
                Some(r) => self.refuse(r),
                // A message, or nothing more to take from the window.
                None => break,
            }
        }
        if control {
            self.core_output = true;
        }
        pos
    }

    /// One call of the core's `receive_copy`: the payload of the data frame
    /// under way is unmasked straight from `input` into the message being
    /// reassembled (its buffer sized from what the frame still announces,
    /// capped by the bytes at hand); at a frame boundary the call takes the
    /// next header or control frame. Returns the bytes consumed; a finished
    /// message or control frame becomes the outcome, as in the loop of
    /// [`Driver::process_input`].
    #[inline(never)]
    fn copy_input(&mut self, input: &mut [u8], control: &mut bool) -> Result<usize, CopyStop> {
        let remaining = self.conn.frame_remaining();
        // Room for the payload at hand, plus an unfinished code point (at
        // most 3 bytes) the core may carry in front of it: only before a
        // text message's first chunk, since a text message under way takes
        // the other path. A binary message's room was reserved for exactly
        // its frame, which three bytes more would reallocate.
        let carried = match &self.partial {
            Some(Partial::Binary(b)) if !b.is_empty() => 0,
            Some(Partial::Copying { len, .. }) if *len > 0 => 0,
            _ => 3,
        };
        let want = usize::try_from(remaining.saturating_add(carried))
            .map_or(input.len(), |r| r.min(input.len()));
        let mut charge = Charge {
            account: &mut self.account,
            bytes: &mut self.partial_charge,
        };
        let (mut b, len) = match self.partial.take() {
            Some(Partial::Binary(mut b)) => {
                let len = b.len();
                if let Some(target) = charge
                    .grow(len, b.capacity(), want)
                    .map_err(CopyStop::Refused)?
                {
                    b.reserve_exact(target - len);
                }
                (b, len)
            }
            Some(Partial::Copying { mut buf, len }) => {
                if let Some(target) = charge
                    .grow(len, buf.capacity(), want)
                    .map_err(CopyStop::Refused)?
                {
                    buf.reserve_exact(target.saturating_sub(buf.len()));
                }
                (buf, len)
            }
            other if remaining == 0 => {
                // A header or a control frame next: no room needed.
                self.partial = other;
                (Vec::new(), 0)
            }
            mut other => {
                // A new message: sized by its frame, never past one window.
                let expected = usize::try_from(remaining).map_or(RX_BUFFER, |r| r.min(RX_BUFFER));
                let cap = if expected + 3 < VECTORED_MIN {
                    expected + 3 + SEND_ROOM
                } else {
                    expected + 3
                };
                if cap >= VECTORED_MIN
                    && !matches!(other, Some(Partial::Spare(_)))
                    && self.room.capacity() >= expected
                {
                    // The room kept from an earlier message, and its charge.
                    other = Some(Partial::Spare(core::mem::take(&mut self.room)));
                    *charge.bytes += core::mem::take(&mut self.room_charge);
                }
                charge.to(cap).map_err(CopyStop::Refused)?;
                (room_for(other, cap), 0)
            }
        };
        // The bytes for an unfinished code point only where the room has
        // them, or where without them there would be too little (under 4
        // bytes) to make progress: never a reallocation of a large message.
        let payload = usize::try_from(remaining).map_or(input.len(), |r| r.min(input.len()));
        let end = if remaining == 0 {
            len
        } else if b.capacity() >= len + want {
            len + want
        } else {
            len + payload.max(want.min(4))
        };
        lengthen(&mut b, end);
        let dst = b.get_mut(len..end).unwrap_or_default();
        let step = self.conn.receive_copy(input, dst).map(|r| {
            let data = match r.event {
                Some(Event::Text { fin, .. }) => Some((true, fin)),
                Some(Event::Binary { fin, .. }) => Some((false, fin)),
                _ => None,
            };
            (
                r.consumed,
                r.written,
                data,
                r.event.and_then(control_message),
            )
        });
        let (consumed, written, data, message) = match step {
            Ok(step) => step,
            Err(e) => {
                // Kept as the in-place path keeps it, until the driver ends.
                self.partial = Some(Partial::Copying { buf: b, len });
                return Err(CopyStop::Core(e));
            }
        };
        let len = len + written;
        let mut charge = Charge {
            account: &mut self.account,
            bytes: &mut self.partial_charge,
        };
        if b.capacity() > 0 {
            charge.settle(b.capacity());
        }
        let finished = match data {
            Some((true, fin)) => {
                b.truncate(len);
                // The core checked the text; this only changes the type.
                let s = String::from_utf8(b).unwrap_or_default();
                if fin {
                    Some(Message::Text(s))
                } else {
                    self.partial = Some(Partial::Text(s));
                    None
                }
            }
            Some((false, true)) => {
                b.truncate(len);
                Some(Message::Binary(b))
            }
            Some((false, false)) => {
                self.partial = Some(Partial::Copying { buf: b, len });
                None
            }
            None => {
                if b.capacity() > 0 {
                    // A control frame or a code point inside the message:
                    // the message so far (or its new room) is kept.
                    self.partial = Some(Partial::Copying { buf: b, len });
                }
                *control |= message.is_some();
                message
            }
        };
        if let Some(message) = finished {
            self.delivered_charge += core::mem::take(&mut self.partial_charge);
            self.outcome = Some(Ok(message));
        }
        Ok(consumed)
    }

    /// The budget refused a charge: drops the partial message, gives its
    /// memory back and starts the close handshake with 1013. The core frames
    /// the Close; if the handshake had already started, the connection ends
    /// with the budget error at once.
    fn refuse(&mut self, refused: BudgetExceeded) {
        self.partial = None;
        self.account
            .shrink(core::mem::take(&mut self.partial_charge));
        self.refused = Some(refused);
        self.core_output = true;
        let open = self.conn.state() == State::Open;
        if !open
            || self
                .conn
                .close(CloseCode::TRY_AGAIN_LATER, "memory budget spent")
                .is_err()
        {
            self.outcome = Some(Err(Error::ConnectionClosed));
        }
    }

    /// Moves the core's queued control frames into the transmit buffer.
    fn transmit(&mut self) {
        if !self.core_output {
            return;
        }
        // Encoded on the stack first, so a connection with nothing to send
        // does not grow its transmit buffer (most steps queue nothing).
        let mut out = [0u8; 3 * wsproto::MIN_TRANSMIT_BUFFER];
        loop {
            let n = self.conn.poll_transmit(&mut out).unwrap_or(0);
            let Some(frames) = out.get(..n).filter(|f| !f.is_empty()) else {
                self.core_output = false;
                break;
            };
            // Control frames are small and must go out: charged even when
            // the budget is spent.
            self.tx.reserve_forced(n, &mut self.account);
            if let Some(room) = self.tx.room(n).get_mut(..n) {
                room.copy_from_slice(frames);
                self.tx.commit(n);
            }
        }
    }

    /// Encodes one data frame (after any queued control frames) with `encode`.
    fn send_with(
        &mut self,
        len: usize,
        encode: impl FnOnce(&mut AnyConn, &mut [u8]) -> Result<usize, wsproto::Error>,
    ) -> Result<(), Error> {
        if self.finished {
            return Err(Error::ConnectionClosed);
        }
        self.transmit();
        // Room for the frame, or for its largest compressed form.
        let need = self.conn.send_buffer_len(len);
        if let Err(refused) = self.tx.reserve(need, &mut self.account) {
            // Failed like a receive (see the module doc): the message is
            // dropped and the Close goes out with the I/O layer's write, so
            // the caller's send succeeds and its next read reports the budget.
            self.refuse(refused);
            self.transmit();
            return Ok(());
        }
        let room = self.tx.room(need);
        let n = match encode(&mut self.conn, room) {
            Ok(n) => n,
            Err(e) => {
                // Whatever the core queued on the way out goes next.
                self.core_output = true;
                return Err(e.into());
            }
        };
        self.tx.commit(n);
        Ok(())
    }

    /// Queues a whole text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.send_with(text.len(), |c, out| c.send_text(text, out))
    }

    /// Queues a whole binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.send_with(data.len(), |c, out| c.send_binary(data, out))
    }

    /// Queues one fragment of a message.
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        self.send_with(data.len(), |c, out| c.send_fragment(kind, data, fin, out))?;
        self.fragment_open = !fin;
        Ok(())
    }

    /// Runs a control command, then collects its frame.
    fn control(
        &mut self,
        command: impl FnOnce(&mut AnyConn) -> Result<(), wsproto::Error>,
    ) -> Result<(), Error> {
        if self.finished {
            return Err(Error::ConnectionClosed);
        }
        self.core_output = true;
        command(&mut self.conn)?;
        self.transmit();
        Ok(())
    }

    /// Queues a ping.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.control(|c| c.ping(payload))
    }

    /// Queues a pong.
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.control(|c| c.pong(payload))
    }

    /// Starts the close handshake, unless it has already started.
    pub fn close(&mut self, code: u16, reason: &str) -> Result<(), Error> {
        if self.finished || self.conn.state() != State::Open {
            return Ok(());
        }
        self.control(|c| c.close(CloseCode(code), reason))
    }

    /// Queues `message`, as [`Driver::send`], keeping a large text or binary
    /// message by value and writing it from its own bytes when the
    /// connection sends payloads untouched (see the module doc).
    pub fn send_owned(&mut self, message: Message) -> Result<(), Error> {
        let (kind, len) = match &message {
            Message::Text(t) => (MessageKind::Text, t.len()),
            Message::Binary(b) => (MessageKind::Binary, b.len()),
            _ => return self.send(&message),
        };
        let untouched = !self.fragment_open
            && !self.finished
            && self.conn.role() == Role::Server
            && !self.conn.compresses();
        if !untouched || (len >= self.vectored_min && self.verbatim.is_some()) {
            return self.send(&message);
        }
        if len < self.vectored_min {
            // Control frames the core holds go out before this frame.
            self.transmit();
            if self.tx.capacity() > 0 {
                // Copied into the room the buffer already has.
                return self.send(&message);
            }
            return self.send_adopted(kind, message);
        }
        let payload = match message {
            Message::Text(t) => t.into_bytes(),
            Message::Binary(b) => b,
            other => return self.send(&other),
        };
        // Control frames the core holds go out before this frame.
        self.transmit();
        let charge = payload.capacity();
        let Some((header, header_len)) = self.charged_header(kind, len, charge)? else {
            return Ok(());
        };
        self.verbatim = Some(Verbatim {
            header,
            header_len,
            payload,
            written: 0,
            before: self.tx.pending().len(),
            charge,
        });
        Ok(())
    }

    /// Queues a small text or binary message on a connection whose transmit
    /// buffer was given back: the message's own allocation becomes the
    /// buffer, its payload moved up behind the header, so an echo of a small
    /// message allocates once (the message), not twice. Received messages
    /// carry the room for the header ([`SEND_ROOM`]).
    fn send_adopted(&mut self, kind: MessageKind, message: Message) -> Result<(), Error> {
        let mut frame = match message {
            Message::Text(t) => t.into_bytes(),
            Message::Binary(b) => b,
            other => return self.send(&other),
        };
        let len = frame.len();
        frame.reserve(MAX_HEADER_LEN);
        let charge = frame.capacity();
        let Some((header, header_len)) = self.charged_header(kind, len, charge)? else {
            return Ok(());
        };
        // The payload moves up behind the header, within the capacity
        // reserved above.
        frame.resize(len + header_len, 0);
        frame.copy_within(..len, header_len);
        if let (Some(to), Some(from)) = (frame.get_mut(..header_len), header.get(..header_len)) {
            to.copy_from_slice(from);
        }
        self.tx.adopt(frame, charge, &mut self.account);
        Ok(())
    }

    /// Charges `charge` bytes for a frame of `len` payload bytes that goes
    /// out from its own allocation, and has the core write its header.
    /// `None` when the budget refuses the charge: as for a copied message
    /// (see `send_with`), the message is dropped and the Close with 1013
    /// goes out instead. A header the core refuses gives the charge back.
    fn charged_header(
        &mut self,
        kind: MessageKind,
        len: usize,
        charge: usize,
    ) -> Result<Option<([u8; MAX_HEADER_LEN], usize)>, Error> {
        if let Err(refused) = self.account.grow(charge) {
            self.refuse(refused);
            self.transmit();
            return Ok(None);
        }
        let mut header = [0u8; MAX_HEADER_LEN];
        match self.conn.send_header(kind, len, true, &mut header) {
            Ok(n) => Ok(Some((header, n))),
            Err(e) => {
                self.account.shrink(charge);
                self.core_output = true;
                Err(e.into())
            }
        }
    }

    /// Queues `message` (a Close starts the close handshake; `None` sends 1000).
    pub fn send(&mut self, message: &Message) -> Result<(), Error> {
        match message {
            Message::Text(t) => self.send_text(t),
            Message::Binary(b) => self.send_binary(b),
            Message::Ping(p) => self.ping(p),
            Message::Pong(p) => self.pong(p),
            Message::Close(frame) => {
                if self.finished || self.conn.state() != State::Open {
                    return Err(Error::ConnectionClosed);
                }
                match frame {
                    Some(f) => self.control(|c| c.close(CloseCode(f.code), &f.reason)),
                    None => self.control(|c| c.close(CloseCode::NORMAL, "")),
                }
            }
        }
    }
}

/// Time from `now` until the deadline `at`, at least 1 ms (`None`: no deadline).
fn wait_until(at: Option<Instant>, now: Instant) -> Option<std::time::Duration> {
    at.map(|at| {
        std::time::Duration::from_nanos(at.saturating_duration_since(now).as_nanos())
            .max(std::time::Duration::from_millis(1))
    })
}

/// A data frame written from its message's own bytes: the header the core
/// wrote, then the payload, never copied into the transmit buffer.
struct Verbatim {
    header: [u8; MAX_HEADER_LEN],
    header_len: usize,
    payload: Vec<u8>,
    /// Bytes of header and payload written so far.
    written: usize,
    /// Bytes of the transmit buffer's queue that go out before this frame.
    before: usize,
    /// Bytes charged to the budget for the payload.
    charge: usize,
}

impl Verbatim {
    /// The unwritten part of the header, if any.
    fn header_left(&self) -> Option<&[u8]> {
        self.header
            .get(self.written..self.header_len)
            .filter(|h| !h.is_empty())
    }

    /// The unwritten part of the payload, if any.
    fn payload_left(&self) -> Option<&[u8]> {
        let from = self.written.saturating_sub(self.header_len);
        self.payload.get(from..).filter(|p| !p.is_empty())
    }

    /// Bytes of the frame not yet written.
    fn left(&self) -> usize {
        (self.header_len + self.payload.len()).saturating_sub(self.written)
    }
}

/// The transmit buffer: `buf[start..end]` is queued. The bytes of `buf`
/// past `end` stay initialised between frames, so encoding a frame into them
/// does not zero its room first (a 64 KiB `resize` per echoed message).
#[derive(Default)]
struct TxBuffer {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes of capacity charged to the budget.
    charged: usize,
}

impl TxBuffer {
    fn pending(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// `n` queued bytes were written.
    fn advance(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.capacity() > TX_KEEP {
                self.buf.truncate(RX_BUFFER);
                self.buf.shrink_to_fit();
            }
        }
    }

    /// Bytes allocated.
    fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Takes `frame` as the buffer, all of it queued, with `charged` bytes
    /// already charged for it; only when the buffer holds no allocation.
    fn adopt(&mut self, frame: Vec<u8>, charged: usize, account: &mut Account) {
        self.buf = frame;
        self.start = 0;
        self.end = self.buf.len();
        self.charged += charged;
        self.settle(account);
    }

    /// Frees the buffer; only when nothing is queued.
    #[cfg(test)]
    fn release(&mut self, account: &mut Account) {
        if let Some((_, charged)) = self.take() {
            account.shrink(charged);
        }
    }

    /// The buffer and what is charged for it, taken out; only when nothing
    /// is queued (and something is allocated).
    fn take(&mut self) -> Option<(Vec<u8>, usize)> {
        if self.start != self.end || self.buf.capacity() == 0 {
            return None;
        }
        self.start = 0;
        self.end = 0;
        let charged = core::mem::take(&mut self.charged);
        Some((core::mem::take(&mut self.buf), charged))
    }

    /// Drops everything queued.
    fn clear(&mut self) {
        self.advance(self.end.saturating_sub(self.start));
    }

    /// Capacity for `len` more bytes, charged before it is allocated;
    /// growth at least doubles, so a run of small frames is amortised.
    fn reserve(&mut self, len: usize, account: &mut Account) -> Result<(), BudgetExceeded> {
        let need = self.end + len;
        let cap = self.buf.capacity();
        if need <= cap {
            return Ok(());
        }
        let target = need.max(cap.saturating_mul(2));
        // Old and new buffers both exist while the bytes are copied across:
        // both are charged until then.
        account.grow(target)?;
        self.charged += target;
        self.buf.reserve_exact(target - self.buf.len());
        self.settle(account);
        Ok(())
    }

    /// [`TxBuffer::reserve`] past the budget (for control frames).
    fn reserve_forced(&mut self, len: usize, account: &mut Account) {
        if self.reserve(len, account).is_err() {
            self.buf.reserve(len);
            account.force(self.buf.capacity().saturating_sub(self.charged));
            self.charged = self.buf.capacity();
        }
    }

    /// Brings the charge in line with the capacity after a shrink (or an
    /// allocator that gave more than asked).
    fn settle(&mut self, account: &mut Account) {
        let cap = self.buf.capacity();
        if cap < self.charged {
            account.shrink(self.charged - cap);
        } else {
            account.force(cap - self.charged);
        }
        self.charged = cap;
    }

    /// At least `len` writable bytes after the queued ones.
    fn room(&mut self, len: usize) -> &mut [u8] {
        if self.start > 0
            && self.end <= self.buf.len()
            && self.start >= self.end.saturating_sub(self.start)
        {
            // Written bytes outweigh the queued ones: move the queue to the
            // front, so a queue never fully drained does not grow forever.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let need = self.end + len;
        if self.buf.len() < need {
            self.buf.resize(need, 0);
        }
        self.buf.get_mut(self.end..).unwrap_or_default()
    }

    /// `n` bytes written into [`TxBuffer::room`] are queued.
    fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }
}

/// Adds one event to the message being reassembled; returns a finished message.
///
/// `frame_remaining` is what the frame under way still announces: a message's
/// first chunk reserves room for it (capped at [`RX_BUFFER`], one more read's
/// worth, so the peer's claim never sizes an allocation), which saves the
/// reallocation and copy of the first chunk when the rest arrives.
///
/// Growth is charged to `charge` before it happens (at least doubling, so a
/// message in many small fragments is amortised); a refused charge leaves
/// the partial message as it was.
fn on_event(
    partial: &mut Option<Partial>,
    event: Event<'_>,
    frame_remaining: u64,
    charge: &mut Charge<'_>,
) -> Result<Option<Message>, BudgetExceeded> {
    // Small messages get room for a header, to be sent back from their own
    // allocation (see `Driver::send_owned`).
    let with_header = |len: usize| {
        if len < VECTORED_MIN {
            len + SEND_ROOM
        } else {
            len
        }
    };
    let room = |len: usize| {
        let expected = usize::try_from(frame_remaining).map_or(RX_BUFFER, |r| r.min(RX_BUFFER));
        with_header(len + expected)
    };
    Ok(match event {
        Event::Text { data, fin } => {
            let mut s = match partial.take() {
                Some(Partial::Text(s)) => s,
                other => {
                    let cap = if fin {
                        with_header(data.len())
                    } else {
                        room(data.len())
                    };
                    charge.to(cap)?;
                    // Empty, so always UTF-8.
                    String::from_utf8(start(other, cap)).unwrap_or_default()
                }
            };
            // Refused: the partial message is dropped with the connection.
            if let Some(target) = charge.grow(s.len(), s.capacity(), data.len())? {
                s.reserve_exact(target - s.len());
            }
            copy::append_str(&mut s, data);
            charge.settle(s.capacity());
            if fin {
                return Ok(Some(Message::Text(s)));
            }
            *partial = Some(Partial::Text(s));
            None
        }
        Event::Binary { data, fin } => {
            let mut b = match partial.take() {
                Some(Partial::Binary(b)) => b,
                Some(Partial::Copying { mut buf, len }) => {
                    buf.truncate(len);
                    buf
                }
                other => {
                    let cap = if fin {
                        with_header(data.len())
                    } else {
                        room(data.len())
                    };
                    charge.to(cap)?;
                    start(other, cap)
                }
            };
            // Refused: the partial message is dropped with the connection.
            if let Some(target) = charge.grow(b.len(), b.capacity(), data.len())? {
                b.reserve_exact(target - b.len());
            }
            copy::append_bytes(&mut b, data);
            charge.settle(b.capacity());
            if fin {
                return Ok(Some(Message::Binary(b)));
            }
            *partial = Some(Partial::Binary(b));
            None
        }
        Event::Ping(p) => Some(Message::Ping(p.to_vec())),
        Event::Pong(p) => Some(Message::Pong(p.to_vec())),
        Event::Close { code, reason } => Some(Message::Close(code.map(|c| CloseFrame {
            code: c.0,
            reason: reason.to_owned(),
        }))),
    })
}

/// The buffer a new message of about `cap` bytes starts in: the spare room
/// in `partial` if the message is large (a small one would keep a large
/// allocation alive), else a new one. The charge is already `cap`; the
/// caller settles it to the real capacity.
fn start(partial: Option<Partial>, cap: usize) -> Vec<u8> {
    let mut b = room_for(partial, cap);
    b.clear();
    b
}

/// [`start`], keeping the bytes a spare buffer still holds (stale, but
/// initialised: room to write into without zeroing it first).
fn room_for(partial: Option<Partial>, cap: usize) -> Vec<u8> {
    match partial {
        // A large spare for a large message; a small one (a recycled
        // transmit buffer) for a small message that fits it.
        Some(Partial::Spare(b))
            if (cap >= VECTORED_MIN && b.capacity() >= VECTORED_MIN)
                || (cap < VECTORED_MIN && b.capacity() >= cap && b.capacity() <= RECYCLE_MAX) =>
        {
            b
        }
        _ => Vec::with_capacity(cap),
    }
}

/// Makes `b` at least `len` bytes long, zeroing the new bytes in pieces
/// below glibc's threshold for string instructions (see [`copy`]).
fn lengthen(b: &mut Vec<u8>, len: usize) {
    while b.len() < len {
        let next = len.min(b.len() + 2047);
        b.resize(next, 0);
    }
}

/// A control event as the message handed out.
fn control_message(event: Event<'_>) -> Option<Message> {
    match event {
        Event::Ping(p) => Some(Message::Ping(p.to_vec())),
        Event::Pong(p) => Some(Message::Pong(p.to_vec())),
        Event::Close { code, reason } => Some(Message::Close(code.map(|c| CloseFrame {
            code: c.0,
            reason: reason.to_owned(),
        }))),
        Event::Text { .. } | Event::Binary { .. } => None,
    }
}

/// Why [`Driver::copy_input`] stopped short.
enum CopyStop {
    /// The core failed the connection.
    Core(wsproto::Error),
    /// The budget refused to let the message grow.
    Refused(BudgetExceeded),
}

/// The budget charge of the message being reassembled.
struct Charge<'a> {
    account: &'a mut Account,
    /// Bytes charged for it so far.
    bytes: &'a mut usize,
}

impl Charge<'_> {
    /// Charges `cap` bytes in all.
    fn to(&mut self, cap: usize) -> Result<(), BudgetExceeded> {
        self.account.resize(*self.bytes, cap)?;
        *self.bytes = cap;
        Ok(())
    }

    /// Before `more` bytes are appended to a buffer of `len` bytes and `cap`
    /// capacity: the capacity to grow to, if it must grow. The new buffer is
    /// charged on top of the old one (both exist while the bytes are copied
    /// across); [`Charge::settle`] then brings the charge to the new capacity.
    fn grow(
        &mut self,
        len: usize,
        cap: usize,
        more: usize,
    ) -> Result<Option<usize>, BudgetExceeded> {
        let need = len.saturating_add(more);
        if need <= cap {
            return Ok(None);
        }
        let target = need.max(cap.saturating_mul(2));
        self.account.grow(target)?;
        *self.bytes += target;
        Ok(Some(target))
    }

    /// After the allocation: the charge follows the real capacity.
    fn settle(&mut self, cap: usize) {
        if cap > *self.bytes {
            self.account.force(cap - *self.bytes);
        } else {
            self.account.shrink(*self.bytes - cap);
        }
        *self.bytes = cap;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A driver after a handshake that left `leftover` unread, with the
    /// default configuration and a fixed RNG.
    fn driver(role: Role, leftover: Vec<u8>, budget: Option<crate::MemoryBudget>) -> Driver {
        let done = Done {
            protocol: None,
            leftover,
            response: Vec::new(),
            path: "/".into(),
            deflate: None,
            budget,
            shared: None,
        };
        Driver::new(role, Config::default(), StdRng::from_seed([7; 32]), done).unwrap()
    }
    use rand_core::SeedableRng;
    use wsproto::{Duration, Violation};

    /// A server driver whose first input is a binary frame header declaring
    /// 80 MiB (above the default 16 MiB limit).
    fn failing_server() -> Driver {
        let header = vec![0x82, 0xff, 0, 0, 0, 0, 0x05, 0, 0, 0, 1, 2, 3, 4];
        driver(Role::Server, header, None)
    }

    /// Writes everything pending and shuts when asked, as the I/O layers do.
    fn write_and_shut(d: &mut Driver) {
        let n = d.pending().len();
        d.advance(n);
        if d.wants_shutdown() {
            d.mark_shut();
        }
    }

    fn is_too_large(outcome: Option<Result<Message, Error>>) -> bool {
        matches!(
            outcome,
            Some(Err(Error::Protocol(wsproto::Error::Protocol(
                Violation::FrameTooLarge
            ))))
        )
    }

    #[test]
    fn lingering_close_discards_into_a_fixed_window_until_the_deadline() {
        let start = Instant::from_secs(100);
        let mut d = failing_server();
        assert!(matches!(d.step(start), Step::Continue));
        assert_eq!(&d.pending()[..4], &[0x88, d.pending()[1], 0x03, 0xf1]); // Close 1009
        write_and_shut(&mut d);
        assert!(d.take_outcome().is_none(), "held while draining");
        // 256 MiB of the peer's frame: read into the same window, never kept.
        let mut now = start;
        for _ in 0..4096 {
            let Step::Read(Some(wait)) = d.step(now) else {
                panic!("expected a bounded read");
            };
            assert!(wait <= std::time::Duration::from_secs(5));
            let n = d.spare().len();
            assert_eq!(n, RX_BUFFER);
            d.on_read(n);
            assert!(d.take_outcome().is_none());
            now += Duration::from_millis(1);
        }
        assert_eq!((d.rx.len(), d.rx_len), (RX_BUFFER, 0));
        // The peer never stops: cut off at close_timeout after the drain began.
        assert!(matches!(
            d.step(start + Duration::from_secs(5)),
            Step::Continue
        ));
        assert!(is_too_large(d.take_outcome()));
        assert!(matches!(
            d.take_outcome().or_else(|| {
                d.step(now);
                d.take_outcome()
            }),
            Some(Err(Error::ConnectionClosed))
        ));
    }

    #[test]
    fn lingering_close_ends_at_the_peers_eof_or_a_read_error() {
        let now = Instant::from_secs(1);
        for eof in [true, false] {
            let mut d = failing_server();
            d.step(now);
            write_and_shut(&mut d);
            assert!(matches!(d.step(now), Step::Read(Some(_))));
            if eof {
                d.on_eof();
            } else {
                let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
                assert!(d.on_read_error(reset).is_ok());
            }
            assert!(is_too_large(d.take_outcome()), "eof: {eof}");
        }
    }

    #[test]
    fn reassembly_reserves_by_the_frame_but_never_past_one_window() {
        // Binary frames announcing 1 MiB and 1000 bytes (masked, zero key),
        // 100 payload bytes of each at hand.
        let big = [0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0];
        let small = [0x82, 0xfe, 0x03, 0xe8, 0, 0, 0, 0];
        for (header, bound) in [(&big[..], 100 + RX_BUFFER), (&small[..], 1000)] {
            let mut leftover = header.to_vec();
            leftover.extend_from_slice(&[9; 100]);
            let mut d = driver(Role::Server, leftover, None);
            assert!(matches!(d.step(Instant::from_secs(1)), Step::Read(_)));
            let Some(Partial::Binary(b)) = &d.partial else {
                panic!("expected a partial binary message");
            };
            assert_eq!(b.len(), 100);
            assert!(
                b.capacity() >= bound && b.capacity() < bound + 64,
                "{}",
                b.capacity()
            );
        }
    }

    #[test]
    fn tx_buffer_queues_in_order_and_reuses_its_room() {
        let mut tx = TxBuffer::default();
        tx.room(3).get_mut(..3).unwrap().copy_from_slice(b"abc");
        tx.commit(3);
        tx.room(2).get_mut(..2).unwrap().copy_from_slice(b"de");
        tx.commit(2);
        assert_eq!(tx.pending(), b"abcde");
        tx.advance(2);
        assert_eq!(tx.pending(), b"cde");
        tx.advance(3);
        assert_eq!(tx.pending(), b"");
        // Drained: the next frame starts at the front of the same bytes.
        let len = tx.buf.len();
        tx.room(4).get_mut(..1).unwrap().copy_from_slice(b"f");
        tx.commit(1);
        assert_eq!((tx.pending(), tx.buf.len()), (&b"f"[..], len));
        tx.advance(1);
        // A big frame grows the buffer; once written it shrinks back.
        tx.room(TX_KEEP + 1);
        tx.commit(TX_KEEP + 1);
        tx.advance(TX_KEEP + 1);
        assert_eq!(tx.buf.len(), RX_BUFFER);
    }

    #[test]
    fn the_last_frames_get_close_timeout_when_no_core_timer_is_left() {
        // The core failed the connection: its Close is queued and it has no
        // timer left, but a peer that does not read cannot hold the write.
        let start = Instant::from_secs(100);
        let mut d = failing_server();
        d.step(start);
        assert!(!d.pending().is_empty());
        let wait = d.write_wait(start).unwrap();
        assert_eq!(wait, Some(std::time::Duration::from_secs(5)));
        let later = start + Duration::from_millis(4_999);
        assert_eq!(
            d.write_wait(later).unwrap(),
            Some(std::time::Duration::from_millis(1))
        );
        // Given up: the held failure is the caller's error.
        let outcome = d.write_wait(start + Duration::from_secs(5));
        assert!(matches!(
            outcome,
            Err(Error::Protocol(wsproto::Error::Protocol(
                Violation::FrameTooLarge
            )))
        ));
        assert!(d.pending().is_empty());
        assert!(matches!(d.send_text("x"), Err(Error::ConnectionClosed)));
    }

    #[test]
    fn no_lingering_when_disabled() {
        let mut d = failing_server();
        d.disable_linger();
        d.step(Instant::from_secs(1));
        write_and_shut(&mut d);
        assert!(is_too_large(d.take_outcome()));
    }
    /// A server driver whose first input is `leftover`.
    fn server_reading(leftover: Vec<u8>) -> Driver {
        driver(Role::Server, leftover, None)
    }

    #[test]
    fn messages_already_read_come_out_before_any_write() {
        // Masked (zero key) text "a", ping "p", text "b", in one read.
        let mut input = vec![0x81, 0x81, 0, 0, 0, 0, b'a'];
        input.extend_from_slice(&[0x89, 0x81, 0, 0, 0, 0, b'p']);
        input.extend_from_slice(&[0x81, 0x81, 0, 0, 0, 0, b'b']);
        let mut d = server_reading(input);
        assert_eq!(d.take_buffered(true), Some(Message::Text("a".into())));
        d.send_text("echo a").unwrap();
        let queued = d.pending().len();
        // A ping waits for the writes when only data may jump the queue.
        assert_eq!(d.take_buffered(true), None);
        assert!(d.message_ready());
        assert_eq!(d.take_buffered(false), Some(Message::Ping(b"p".to_vec())));
        assert!(d.pending().len() > queued, "the pong is queued");
        assert_eq!(d.take_buffered(true), Some(Message::Text("b".into())));
        assert_eq!(d.take_buffered(true), None);
    }

    #[test]
    fn a_reader_may_read_while_output_waits() {
        let now = Instant::from_secs(1);
        let mut d = server_reading(Vec::new());
        d.send_binary(&[1; 100]).unwrap();
        assert!(matches!(d.step(now), Step::Continue));
        assert!(matches!(d.step_reading(now), StepAt::Read(_)));
        // At the end of file the output goes first.
        d.on_eof();
        assert!(matches!(d.step_reading(now), StepAt::Continue));
        assert!(d.take_outcome().is_none());
    }

    #[test]
    fn tx_buffer_moves_a_queue_never_drained_to_the_front() {
        let mut tx = TxBuffer::default();
        tx.room(100).fill(1);
        tx.commit(100);
        tx.advance(60);
        tx.room(10).get_mut(..10).unwrap().fill(2);
        tx.commit(10);
        assert_eq!(tx.start, 0);
        assert_eq!(tx.pending().len(), 50);
        assert!(tx.pending()[..40].iter().all(|&b| b == 1));
        assert!(tx.pending()[40..].iter().all(|&b| b == 2));
    }

    /// A server driver with nothing read yet.
    fn idle_server() -> Driver {
        driver(Role::Server, Vec::new(), None)
    }

    /// Reads `wire` into the driver as a socket would (as much as the window
    /// takes per read) and runs it until it asks for more; returns the
    /// messages and how large the window was at each read.
    fn read_all(d: &mut Driver, wire: &[u8]) -> (Vec<Message>, Vec<usize>) {
        let mut windows = Vec::new();
        let messages = feed_in_chunks(d, wire, usize::MAX, &mut windows);
        (messages, windows)
    }

    fn client_frames(payloads: &[&[u8]]) -> Vec<u8> {
        let mut client = wsproto::Connection::with_rng(
            Role::Client,
            Config::default(),
            StdRng::from_seed([9; 32]),
        );
        let mut wire = Vec::new();
        for payload in payloads {
            let mut out = vec![0u8; payload.len() + 14];
            let n = client.send_binary(payload, &mut out).unwrap();
            wire.extend_from_slice(&out[..n]);
        }
        wire
    }

    /// As [`feed_in_chunks`], with reads appended to the window's spare
    /// capacity (the tokio driver's way); returns the messages and the
    /// window before each read.
    fn feed_appending(d: &mut Driver, mut wire: &[u8], chunk: usize) -> (Vec<Message>, Vec<usize>) {
        let (mut messages, mut windows) = (Vec::new(), Vec::new());
        let now = Instant::from_secs(1);
        loop {
            loop {
                let step = d.step(now);
                let n = d.pending().len();
                d.advance(n);
                if let Some(outcome) = d.take_outcome() {
                    messages.push(outcome.unwrap());
                } else if let Step::Read(_) = step {
                    break;
                }
            }
            if wire.is_empty() {
                return (messages, windows);
            }
            let window = d.read_vec();
            windows.push(window.capacity());
            let n = (window.capacity() - window.len())
                .min(wire.len())
                .min(chunk);
            assert!(n > 0, "a read into no room");
            window.extend_from_slice(&wire[..n]);
            d.on_appended(n);
            // No zeroed room is held past the bytes read.
            assert_eq!(d.rx.len(), d.rx_len);
            wire = &wire[n..];
        }
    }

    #[test]
    fn reads_appended_to_spare_capacity_give_the_same_messages_at_any_read_size() {
        let payloads: Vec<Vec<u8>> = [16usize, 3000, 64 * 1024, 5, 70 * 1024, 200]
            .iter()
            .zip(1u8..)
            .map(|(&n, i)| vec![i; n])
            .collect();
        let refs: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
        let wire = client_frames(&refs);
        let expected: Vec<Message> = payloads.iter().cloned().map(Message::Binary).collect();
        for chunk in [1, 7, 1000, 4096, usize::MAX] {
            let mut d = idle_server();
            d.read_by_appending();
            let (messages, windows) = feed_appending(&mut d, &wire, chunk);
            assert_eq!(messages, expected, "reads of {chunk}");
            assert!(windows.iter().all(|&w| w <= RX_BUFFER), "{chunk}");
            if chunk == usize::MAX {
                // Reads that fill the window grow it as in the zeroed mode.
                assert_eq!(windows[..2], [RX_MIN, 4 * RX_MIN]);
                assert!(windows.contains(&RX_BUFFER), "{windows:?}");
            }
        }
    }

    #[test]
    fn a_frame_announcing_more_than_the_next_window_takes_the_largest_at_once() {
        let mut d = idle_server();
        let payload = pattern(64 * 1024);
        let (messages, windows) = read_all(&mut d, &client_frames(&[&payload]));
        assert_eq!(messages, [Message::Binary(payload.clone())]);
        // The first read holds the header: once the core knows the frame
        // still announces more than 16 KiB, the window skips that step.
        assert_eq!(windows[..3], [RX_MIN, 4 * RX_MIN, RX_BUFFER]);
        // A frame that fits the next step grows by it, as before.
        let mut d = idle_server();
        let medium = vec![7u8; 10 * 1024];
        let (messages, windows) = read_all(&mut d, &client_frames(&[&medium]));
        assert_eq!(messages, [Message::Binary(medium.clone())]);
        assert_eq!(windows[..3], [RX_MIN, 4 * RX_MIN, 16 * RX_MIN]);
    }

    #[test]
    fn the_receive_window_grows_for_a_burst_and_shrinks_back_when_reads_get_small() {
        let mut d = idle_server();
        assert_eq!(
            d.rx.len(),
            RX_MIN,
            "an idle connection holds the small window"
        );
        // Many messages of 3,000 bytes (too short to be read in place).
        let medium: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; 3000]).collect();
        let refs: Vec<&[u8]> = medium.iter().map(|m| &m[..]).collect();
        let (messages, windows) = read_all(&mut d, &client_frames(&refs));
        assert_eq!(messages.len(), 100);
        assert!(messages
            .iter()
            .zip(&medium)
            .all(|(m, p)| *m == Message::Binary(p.clone())));
        // Each read that filled the window grew it, up to the largest.
        assert_eq!(windows[..4], [RX_MIN, 4 * RX_MIN, 16 * RX_MIN, RX_BUFFER]);
        assert_eq!(d.rx.len(), RX_BUFFER);
        // Small messages, one per read: after a few the window is small again,
        // and the transmit buffer (grown by nothing here) stays empty.
        for i in 0..RX_SHRINK_AFTER {
            let small = [i; 16];
            let (messages, _) = read_all(&mut d, &client_frames(&[&small]));
            assert_eq!(messages, [Message::Binary(small.to_vec())]);
        }
        assert_eq!(d.rx.len(), RX_MIN);
        assert_eq!(d.tx.capacity(), 0);
    }

    /// Feeds `wire` to `d` at most `chunk` bytes per read, as a socket
    /// would; returns the messages.
    fn read_in_chunks(d: &mut Driver, wire: &[u8], chunk: usize) -> Vec<Message> {
        feed_in_chunks(d, wire, chunk, &mut Vec::new())
    }

    /// Runs `d` until it asks for more, then reads at most `chunk` bytes of
    /// `wire` into its window, until `wire` is used up; records the window's
    /// size at each read in `windows` and returns the messages.
    fn feed_in_chunks(
        d: &mut Driver,
        mut wire: &[u8],
        chunk: usize,
        windows: &mut Vec<usize>,
    ) -> Vec<Message> {
        let mut messages = Vec::new();
        let now = Instant::from_secs(1);
        loop {
            loop {
                let step = d.step(now);
                let n = d.pending().len();
                d.advance(n);
                if let Some(outcome) = d.take_outcome() {
                    messages.push(outcome.unwrap());
                } else if let Step::Read(_) = step {
                    break;
                }
            }
            if wire.is_empty() {
                return messages;
            }
            windows.push(d.rx.len());
            let spare = d.spare();
            let n = spare.len().min(wire.len()).min(chunk);
            spare[..n].copy_from_slice(&wire[..n]);
            d.on_read(n);
            wire = &wire[n..];
        }
    }

    #[test]
    fn a_large_frame_in_reads_of_any_size_is_one_message_and_the_next_follows() {
        let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let wire = client_frames(&[&big, b"after"]);
        for chunk in [usize::MAX, 5000, 777] {
            let mut d = idle_server();
            let messages = read_in_chunks(&mut d, &wire, chunk);
            assert_eq!(
                messages,
                [
                    Message::Binary(big.clone()),
                    Message::Binary(b"after".to_vec())
                ],
                "chunk {chunk}"
            );
            assert!(d.partial.is_none() && d.rx_len == 0, "chunk {chunk}");
        }
    }

    #[test]
    fn fragments_in_reads_of_any_size_keep_a_ping_between_them() {
        let mut client = wsproto::Connection::with_rng(
            Role::Client,
            Config::default(),
            StdRng::from_seed([3; 32]),
        );
        let parts: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i + 1; 30_000]).collect();
        let mut wire = Vec::new();
        let mut out = vec![0u8; 40_000];
        for (i, part) in parts.iter().enumerate() {
            let n = client
                .send_fragment(MessageKind::Binary, part, i == 2, &mut out)
                .unwrap();
            wire.extend_from_slice(&out[..n]);
            if i == 0 {
                client.ping(b"p").unwrap();
                let n = client.poll_transmit(&mut out).unwrap();
                wire.extend_from_slice(&out[..n]);
            }
        }
        for chunk in [usize::MAX, 4096, 1000] {
            let mut d = idle_server();
            let messages = read_in_chunks(&mut d, &wire, chunk);
            assert_eq!(
                messages,
                [
                    Message::Ping(b"p".to_vec()),
                    Message::Binary(parts.concat())
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn large_text_and_binary_through_the_copying_path_in_reads_of_any_size() {
        let mut client = wsproto::Connection::with_rng(
            Role::Client,
            Config::default(),
            StdRng::from_seed([5; 32]),
        );
        // Code points of every width, so chunks end inside them.
        let text = "aé✓𝄞".repeat(3000);
        let binary: Vec<u8> = (0..70_000u32).map(|i| (i * 31 + i / 7) as u8).collect();
        let mut out = vec![0u8; 100_000];
        let mut wire = Vec::new();
        let n = client.send_text(&text, &mut out).unwrap();
        wire.extend_from_slice(&out[..n]);
        let n = client.send_binary(&binary, &mut out).unwrap();
        wire.extend_from_slice(&out[..n]);
        for chunk in [usize::MAX, 5000, 4097, 1000] {
            let mut d = idle_server();
            let messages = read_in_chunks(&mut d, &wire, chunk);
            assert!(
                messages == [Message::Text(text.clone()), Message::Binary(binary.clone())],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn the_rest_of_a_window_stays_in_place_until_a_read_needs_the_room() {
        let payloads: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 3000]).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
        let mut wire = client_frames(&refs);
        let next = client_frames(&[b"next"]);
        wire.extend_from_slice(&next[..3]); // the next frame's first bytes
        let mut d = driver(Role::Server, wire.clone(), None);
        for p in &payloads {
            assert_eq!(d.take_buffered(true), Some(Message::Binary(p.clone())));
            // Nothing moved: the window's rest is consumed from where it lies.
            assert_eq!(d.rx_len, wire.len());
        }
        assert_eq!(d.take_buffered(true), None);
        assert_eq!((d.rx_start, d.rx_len), (wire.len() - 3, wire.len()));
        // The next read moves the three bytes to the front first.
        let spare = d.spare();
        spare[..next.len() - 3].copy_from_slice(&next[3..]);
        d.on_read(next.len() - 3);
        assert_eq!((d.rx_start, d.rx_len), (0, next.len()));
        assert_eq!(
            d.take_buffered(true),
            Some(Message::Binary(b"next".to_vec()))
        );
        assert_eq!((d.rx_start, d.rx_len), (0, 0));
    }

    /// Pongs are queued only when a ping arrives: the flag that spares the
    /// core's transmit queue a visit on every step must not lose one.
    #[test]
    fn a_pong_is_queued_for_every_ping_with_data_around_it() {
        let mut client = wsproto::Connection::with_rng(
            Role::Client,
            Config::default(),
            StdRng::from_seed([5; 32]),
        );
        let mut wire = Vec::new();
        let mut out = vec![0u8; 256];
        for i in 0..3u8 {
            let n = client.send_binary(&[i; 20], &mut out).unwrap();
            wire.extend_from_slice(&out[..n]);
            client.ping(&[b'p', i]).unwrap();
            let n = client.poll_transmit(&mut out).unwrap();
            wire.extend_from_slice(&out[..n]);
        }
        let mut d = idle_server();
        let now = Instant::from_secs(1);
        let mut d_out = Vec::new();
        let mut messages = Vec::new();
        d.spare()[..wire.len()].copy_from_slice(&wire);
        d.on_read(wire.len());
        loop {
            let step = d.step(now);
            d_out.extend_from_slice(d.pending());
            let n = d.pending().len();
            d.advance(n);
            match d.take_outcome() {
                Some(outcome) => messages.push(outcome.unwrap()),
                None if matches!(step, Step::Read(_)) => break,
                None => {}
            }
        }
        assert_eq!(messages.len(), 6);
        // Three pongs, each echoing its ping, in order.
        let mut pongs = Vec::new();
        let mut rest = &d_out[..];
        while let [0x8a, len, tail @ ..] = rest {
            let len = usize::from(*len);
            pongs.push(tail[..len].to_vec());
            rest = &tail[len..];
        }
        assert!(rest.is_empty());
        assert_eq!(
            pongs,
            [b"p\x00".to_vec(), b"p\x01".to_vec(), b"p\x02".to_vec()]
        );
    }

    #[test]
    fn an_idle_window_is_given_back_and_shared_reads_refill_it() {
        let mut d = idle_server();
        // Nothing read yet: the window stays (no small read seen).
        assert!(!d.release_idle_window());
        let (messages, _) = read_all(&mut d, &client_frames(&[b"one"]));
        assert_eq!(messages, [Message::Binary(b"one".to_vec())]);
        assert!(d.release_idle_window());
        assert!(d.rx.is_empty(), "an idle connection holds no window");
        // A read through a shared buffer: split mid-frame, then the rest.
        let mut wire = client_frames(&[b"two", b"three"]);
        d.on_read_shared(&mut wire[..5], RX_MIN);
        assert_eq!(d.rx.len(), RX_MIN);
        assert!(!d.release_idle_window(), "never while bytes are buffered");
        let (messages, _) = read_all(&mut d, &wire[5..]);
        assert_eq!(
            messages,
            [
                Message::Binary(b"two".to_vec()),
                Message::Binary(b"three".to_vec())
            ]
        );
        // A reader of its own (the blocking driver) gets a window back.
        assert!(d.release_idle_window());
        assert_eq!(d.spare().len(), RX_MIN);
    }

    #[test]
    fn a_small_transmit_buffer_is_released_once_reads_are_small() {
        let mut d = idle_server();
        d.send_binary(b"hello").unwrap();
        assert!(d.tx.capacity() > 0);
        let (messages, _) = read_all(&mut d, &client_frames(&[b"ping"]));
        assert_eq!(messages, [Message::Binary(b"ping".to_vec())]);
        assert_eq!(d.tx.capacity(), 0, "released while the connection waits");
        // A large one stays through a burst.
        d.send_binary(&vec![1u8; 100_000]).unwrap();
        let n = d.pending().len();
        d.advance(n);
        let (messages, _) = read_all(&mut d, &client_frames(&[b"ping"]));
        assert_eq!(messages.len(), 1);
        assert!(d.tx.capacity() >= 100_000);
    }

    /// A masked (zero key) client frame: `opcode` with `fin`, `len` payload bytes of 7.
    fn frame(opcode: u8, fin: bool, len: usize) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 | opcode } else { opcode }];
        if len < 126 {
            f.push(0x80 | len as u8);
        } else {
            f.push(0x80 | 126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        }
        f.extend_from_slice(&[0; 4]);
        f.extend(std::iter::repeat_n(7, len));
        f
    }

    fn budget_server(budget: &crate::MemoryBudget) -> Driver {
        driver(Role::Server, Vec::new(), Some(budget.clone()))
    }

    /// Feeds `bytes` (fitting the receive window) and steps once.
    fn feed(d: &mut Driver, bytes: &[u8], now: Instant) -> Step {
        while d.spare().len() < bytes.len() {
            // As a run of reads that filled the window would have grown it.
            d.resize_rx(d.rx.len() * 2);
        }
        d.spare()[..bytes.len()].copy_from_slice(bytes);
        d.on_read(bytes.len());
        d.step(now)
    }

    #[test]
    fn a_message_outgrowing_the_budget_closes_with_1013_and_gives_everything_back() {
        let budget = crate::MemoryBudget::new(256 * 1024);
        let now = Instant::from_secs(1);
        let mut d = budget_server(&budget);
        // Fragments of 60 000 bytes: a few fit, then the budget is spent.
        let mut first = true;
        let mut refused = false;
        for _ in 0..20 {
            let opcode = if first { 0x2 } else { 0x0 };
            first = false;
            feed(&mut d, &frame(opcode, false, 60_000), now);
            assert!(budget.used() <= budget.limit() + crate::MemoryBudget::GRACE);
            if d.refused.is_some() {
                refused = true;
                break;
            }
        }
        assert!(refused, "the budget never ran out");
        assert!(d.partial.is_none());
        // The Close queued by the core carries 1013.
        assert_eq!(&d.pending()[..4], &[0x88, d.pending()[1], 0x03, 0xf5]);
        write_and_shut(&mut d);
        // Only the transmit buffer is left charged (within the grace).
        assert!(
            budget.used() <= crate::MemoryBudget::GRACE,
            "{}",
            budget.used()
        );
        // More data is dropped, not kept.
        feed(&mut d, &frame(0x0, false, 60_000), now);
        assert!(d.partial.is_none() && d.take_outcome().is_none());
        // The peer's Close ends it, as the budget error.
        let mut close = frame(0x8, true, 2);
        let n = close.len();
        close[n - 2..].copy_from_slice(&1000u16.to_be_bytes());
        feed(&mut d, &close, now);
        let outcome = d.take_outcome();
        assert!(
            matches!(&outcome, Some(Err(e)) if e.is_over_budget()),
            "{outcome:?}"
        );
        drop(d);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_delivered_message_stays_charged_until_the_next_step() {
        let budget = crate::MemoryBudget::new(1 << 20);
        let now = Instant::from_secs(1);
        let mut d = budget_server(&budget);
        feed(&mut d, &frame(0x2, true, 30_000), now);
        let Some(Ok(Message::Binary(b))) = d.take_outcome() else {
            panic!("expected the message");
        };
        assert_eq!(b.len(), 30_000);
        assert!(budget.used() >= 30_000);
        d.step(now);
        assert!(budget.used() < 30_000, "{}", budget.used());
        // A send grows the transmit buffer under the budget, then gives it back.
        d.send_binary(&[1; 400_000]).unwrap();
        assert!(budget.used() >= 400_000);
        let n = d.pending().len();
        d.advance(n);
        assert!(budget.used() <= TX_KEEP, "{}", budget.used());
        // A send larger than the budget is dropped: its Close (1013) is what
        // is queued, and the connection closes with the budget error.
        d.send_binary(&[1; 2 << 20]).unwrap();
        assert_eq!(&d.pending()[..4], &[0x88, 21, 0x03, 0xf5]); // 1013, "memory budget spent"
        assert_eq!(
            d.state(),
            State::Closing {
                initiator: wsproto::Side::Local
            }
        );
        write_and_shut(&mut d);
        d.on_eof();
        d.step(now);
        let outcome = d.take_outcome();
        assert!(
            matches!(&outcome, Some(Err(e)) if e.is_over_budget()),
            "{outcome:?}"
        );
        assert!(matches!(d.send_text("x"), Err(Error::ConnectionClosed)));
    }

    #[test]
    fn without_a_budget_nothing_is_refused() {
        let now = Instant::from_secs(1);
        let mut d = driver(Role::Server, Vec::new(), None);
        feed(&mut d, &frame(0x2, false, 60_000), now);
        for _ in 0..20 {
            feed(&mut d, &frame(0x0, false, 60_000), now);
        }
        assert!(d.refused.is_none());
        assert_eq!(d.account.held(), d.partial_charge + d.tx.charged);
    }

    /// A server driver that writes owned messages from `min` bytes up in place.
    fn vectored_server(min: usize, budget: Option<crate::MemoryBudget>) -> Driver {
        let mut d = driver(Role::Server, Vec::new(), budget);
        d.vectored_min = min;
        d
    }

    /// Writes all the output as a vectored writer would: the slices in
    /// order, at most `step(i)` bytes on the `i`th write.
    fn drain_with(d: &mut Driver, mut step: impl FnMut(usize) -> usize) -> Vec<u8> {
        let mut wire = Vec::new();
        for i in 0.. {
            let mut slices = [IoSlice::new(&[]); 4];
            let count = d.pending_slices(&mut slices);
            if count == 0 {
                break;
            }
            let total: usize = slices[..count].iter().map(|s| s.len()).sum();
            assert_eq!(total, d.pending_len());
            assert!(!d.pending().is_empty());
            let mut room = step(i).max(1);
            let mut n = 0;
            for slice in &slices[..count] {
                let take = slice.len().min(room);
                wire.extend_from_slice(&slice[..take]);
                n += take;
                room -= take;
                if room == 0 {
                    break;
                }
            }
            d.advance(n);
        }
        assert!(d.pending().is_empty() && d.pending_len() == 0);
        wire
    }

    /// The frame a server copying the payload writes.
    fn copied_frame(kind: MessageKind, payload: &[u8]) -> Vec<u8> {
        let mut server = wsproto::Connection::new(Role::Server, Config::default());
        let mut out = vec![0u8; payload.len() + 14];
        let n = server.send_fragment(kind, payload, true, &mut out).unwrap();
        out.truncate(n);
        out
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn frames_written_in_place_are_byte_exact_at_every_header_length_boundary() {
        for len in [125, 126, 65_535, 65_536] {
            for kind in [MessageKind::Binary, MessageKind::Text] {
                let mut d = vectored_server(1, None);
                let (message, bytes) = match kind {
                    MessageKind::Text => {
                        let text = "é".repeat(len / 2) + &"a".repeat(len % 2);
                        (Message::Text(text.clone()), text.into_bytes())
                    }
                    MessageKind::Binary => (Message::Binary(pattern(len)), pattern(len)),
                };
                assert_eq!(bytes.len(), len);
                d.send_owned(message).unwrap();
                assert!(d.verbatim.is_some(), "{len}: written in place");
                assert_eq!(d.tx.capacity(), 0, "{len}: nothing copied");
                let wire = drain_with(&mut d, |_| usize::MAX);
                let header_len = match len {
                    ..=125 => 2,
                    126..=65_535 => 4,
                    _ => 10,
                };
                assert_eq!(wire.len(), header_len + len);
                assert_eq!(wire, copied_frame(kind, &bytes), "{len} {kind:?}");
                assert!(d.verbatim.is_none());
            }
        }
    }

    /// A copied frame, a frame written in place, and a pong queued after it.
    fn three_frames(d: &mut Driver, len: usize) -> Vec<u8> {
        d.send_binary(b"first").unwrap();
        d.send_owned(Message::Binary(pattern(len))).unwrap();
        assert!(d.verbatim.is_some());
        d.pong(b"after").unwrap();
        let mut expected = copied_frame(MessageKind::Binary, b"first");
        expected.extend(copied_frame(MessageKind::Binary, &pattern(len)));
        expected.extend([0x8a, 5, b'a', b'f', b't', b'e', b'r']);
        expected
    }

    #[test]
    fn a_write_may_stop_at_every_offset_of_the_output() {
        // Small enough to split at every offset (7 + 4 + 300 + 7 bytes).
        let total = three_frames(&mut vectored_server(1, None), 300).len();
        for first in 1..total {
            let mut d = vectored_server(1, None);
            let expected = three_frames(&mut d, 300);
            let wire = drain_with(&mut d, |i| if i == 0 { first } else { usize::MAX });
            assert_eq!(wire, expected, "first write of {first} bytes");
        }
        // A ten-byte header: stopping inside it and around the payload's ends.
        let mut d = vectored_server(1, None);
        let total = three_frames(&mut d, 65_536).len();
        let mut offsets: Vec<usize> = (1..32).collect();
        offsets.extend(total - 16..total);
        for first in offsets {
            let mut d = vectored_server(1, None);
            let expected = three_frames(&mut d, 65_536);
            let wire = drain_with(&mut d, |i| if i == 0 { first } else { usize::MAX });
            assert_eq!(wire, expected, "first write of {first} bytes");
        }
        // One to seven bytes per write, all the way.
        let mut d = vectored_server(1, None);
        let expected = three_frames(&mut d, 3_000);
        assert_eq!(drain_with(&mut d, |i| i % 7 + 1), expected);
    }

    #[test]
    fn a_pong_queued_during_a_large_send_follows_the_whole_frame() {
        let now = Instant::from_secs(1);
        let mut d = vectored_server(VECTORED_MIN, None);
        let big = pattern(100_000);
        d.send_owned(Message::Binary(big.clone())).unwrap();
        // Part of the frame is out when the peer's ping arrives.
        let mut wire = drain_with_limit(&mut d, 5_000);
        feed(&mut d, &frame(0x9, true, 2), now);
        assert!(matches!(d.take_outcome(), Some(Ok(Message::Ping(p))) if p == [7, 7]));
        wire.extend(drain_with(&mut d, |_| 4_096));
        let mut expected = copied_frame(MessageKind::Binary, &big);
        expected.extend([0x8a, 2, 7, 7]);
        assert_eq!(wire, expected);
    }

    /// Writes `n` bytes of the output, in one write.
    fn drain_with_limit(d: &mut Driver, n: usize) -> Vec<u8> {
        let mut slices = [IoSlice::new(&[]); 4];
        let count = d.pending_slices(&mut slices);
        let mut wire = Vec::new();
        for slice in &slices[..count] {
            let take = slice.len().min(n - wire.len());
            wire.extend_from_slice(&slice[..take]);
        }
        d.advance(wire.len());
        wire
    }

    #[test]
    fn a_second_large_message_is_copied_and_queued_behind_the_first() {
        let mut d = vectored_server(VECTORED_MIN, None);
        let (a, b) = (pattern(20_000), vec![3u8; 30_000]);
        d.send_owned(Message::Binary(a.clone())).unwrap();
        d.send_owned(Message::Binary(b.clone())).unwrap();
        assert!(d.tx.pending().len() > b.len(), "the second is copied");
        let mut expected = copied_frame(MessageKind::Binary, &a);
        expected.extend(copied_frame(MessageKind::Binary, &b));
        assert_eq!(drain_with(&mut d, |i| 1000 + i), expected);
    }

    #[test]
    fn a_small_received_message_sent_back_becomes_the_transmit_buffer() {
        let budget = crate::MemoryBudget::new(1 << 20);
        for (len, kind) in [
            (0, MessageKind::Binary),
            (16, MessageKind::Binary),
            (125, MessageKind::Text),
            (126, MessageKind::Binary),
            (VECTORED_MIN - 1, MessageKind::Text),
        ] {
            let mut d = vectored_server(VECTORED_MIN, Some(budget.clone()));
            let payload = pattern(len)
                .iter()
                .map(|b| b'a' + b % 26)
                .collect::<Vec<u8>>();
            let opcode = if kind == MessageKind::Text {
                0x81
            } else {
                0x82
            };
            let wire = client_frame_with(opcode, &payload);
            let (mut messages, _) = read_all(&mut d, &wire);
            let message = messages.pop().expect("the message");
            let addr = match &message {
                Message::Text(t) => t.as_ptr() as usize,
                Message::Binary(b) => b.as_ptr() as usize,
                _ => 0,
            };
            d.tx.release(&mut d.account);
            assert_eq!(d.tx.capacity(), 0);
            d.send_owned(message).unwrap();
            assert!(d.verbatim.is_none(), "{len}");
            assert_eq!(
                d.tx.buf.as_ptr() as usize,
                addr,
                "{len}: the message's own allocation"
            );
            assert_eq!(d.account.held(), d.tx.charged + d.delivered_charge);
            let out = drain_with(&mut d, |i| 3 + i);
            assert_eq!(out, copied_frame(kind, &payload), "{len}");
            // A pong the core holds goes first, and the echo is copied behind it.
            d.pong(b"p").unwrap();
            d.send_owned(Message::Binary(payload.clone())).unwrap();
            let mut expected = vec![0x8a, 1, b'p'];
            expected.extend(copied_frame(MessageKind::Binary, &payload));
            assert_eq!(drain_with(&mut d, |_| usize::MAX), expected, "{len}");
        }
    }

    #[test]
    fn a_small_echo_written_out_is_the_allocation_of_the_next_small_message() {
        let budget = crate::MemoryBudget::new(1 << 20);
        let mut d = vectored_server(VECTORED_MIN, Some(budget.clone()));
        let mut addrs = Vec::new();
        for i in 0..4u8 {
            let payload = vec![b'a' + i; 16 - usize::from(i)];
            let (mut messages, _) = read_all(&mut d, &client_frame_with(0x82, &payload));
            let message = messages.pop().expect("the message");
            assert_eq!(message, Message::Binary(payload.clone()));
            if let Message::Binary(b) = &message {
                addrs.push(b.as_ptr() as usize);
            }
            d.send_owned(message).unwrap();
            let out = drain_with(&mut d, |_| usize::MAX);
            assert_eq!(out, copied_frame(MessageKind::Binary, &payload), "{i}");
            // The step before the next read keeps the written buffer, charged.
            assert!(matches!(d.step(Instant::from_secs(1)), Step::Read(_)));
            assert_eq!(d.tx.capacity(), 0);
            assert!(matches!(d.partial, Some(Partial::Spare(_))), "{i}");
            assert_eq!(d.account.held(), d.partial_charge);
        }
        assert!(addrs.windows(2).all(|w| w[0] == w[1]), "{addrs:?}");
        // A larger message does not fit: a new allocation, and the written
        // one (over RECYCLE_MAX) is freed rather than kept.
        let payload = vec![b'z'; RECYCLE_MAX + 1];
        let (mut messages, _) = read_all(&mut d, &client_frame_with(0x82, &payload));
        let message = messages.pop().expect("the message");
        assert_eq!(message, Message::Binary(payload.clone()));
        d.send_owned(message).unwrap();
        drain_with(&mut d, |_| usize::MAX);
        assert!(matches!(d.step(Instant::from_secs(1)), Step::Read(_)));
        assert!(d.partial.is_none());
        assert_eq!(d.account.held(), 0);
        drop(d);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_large_message_written_in_place_leaves_its_room_for_the_next_large_one() {
        let budget = crate::MemoryBudget::new(1 << 20);
        let mut d = vectored_server(VECTORED_MIN, Some(budget.clone()));
        let balanced =
            |d: &Driver| d.account.held() == d.partial_charge + d.tx.charged + d.delivered_charge;
        let (mut messages, _) = read_all(&mut d, &client_frame_with(0x82, &pattern(40_000)));
        d.send_owned(messages.pop().expect("the first message"))
            .unwrap();
        let addr = d.verbatim.as_ref().map(|v| v.payload.as_ptr() as usize);
        let wire = drain_with(&mut d, |i| 5000 + i);
        assert_eq!(wire, copied_frame(MessageKind::Binary, &pattern(40_000)));
        assert!(matches!(d.partial, Some(Partial::Spare(_))));
        assert!(balanced(&d));
        // The next large message is reassembled into it, text too.
        let text = "ab".repeat(15_000);
        let (mut messages, _) = read_all(&mut d, &client_frame_with(0x81, text.as_bytes()));
        let Some(Message::Text(got)) = messages.pop() else {
            panic!("expected the text message");
        };
        assert_eq!(
            (got.as_ptr() as usize, got.as_str()),
            (addr.unwrap(), &text[..])
        );
        assert!(d.partial.is_none() && balanced(&d));
        d.send_owned(Message::Text(got)).unwrap();
        drain_with(&mut d, |_| usize::MAX);
        assert!(matches!(d.partial, Some(Partial::Spare(_))));
        // A small message does not take it (it would keep the large
        // allocation alive), and the room is given back.
        let (mut messages, _) = read_all(&mut d, &client_frame_with(0x82, b"hi"));
        let Some(Message::Binary(small)) = messages.pop() else {
            panic!("expected the small message");
        };
        assert_eq!(small, b"hi");
        assert!(small.capacity() < 100);
        assert!(d.partial.is_none() && balanced(&d));
    }

    /// One masked client frame (zero key) with `opcode` and `payload`.
    fn client_frame_with(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut wire = vec![opcode];
        match payload.len() {
            n @ 0..=125 => wire.push(0x80 | n as u8),
            n => {
                wire.push(0x80 | 126);
                wire.extend((n as u16).to_be_bytes());
            }
        }
        wire.extend([0; 4]);
        wire.extend(payload);
        wire
    }

    #[test]
    fn clients_and_small_messages_are_copied() {
        let mut d = vectored_server(VECTORED_MIN, None);
        d.send_owned(Message::Binary(vec![1; VECTORED_MIN - 1]))
            .unwrap();
        assert!(d.verbatim.is_none());
        let mut client = driver(Role::Client, Vec::new(), None);
        client
            .send_owned(Message::Binary(vec![1; 100_000]))
            .unwrap();
        assert!(client.verbatim.is_none(), "a client masks its payload");
        assert!(client.pending_len() > 100_000);
    }

    #[test]
    fn a_payload_kept_in_place_is_charged_to_the_budget_until_written() {
        let budget = crate::MemoryBudget::new(1 << 20);
        let mut d = vectored_server(VECTORED_MIN, Some(budget.clone()));
        d.send_owned(Message::Binary(vec![1; 400_000])).unwrap();
        assert!(d.verbatim.is_some());
        assert!(budget.used() >= 400_000, "{}", budget.used());
        drain_with(&mut d, |_| 65_536);
        assert!(budget.used() < 4_096, "{}", budget.used());
        // A dead transport gives the held payload back at once.
        d.send_owned(Message::Binary(vec![1; 400_000])).unwrap();
        drain_with_limit(&mut d, 100);
        d.on_io_error();
        assert!(budget.used() < 4_096, "{}", budget.used());
        // Over the budget: dropped, and the Close (1013) goes out instead.
        drop(d);
        let mut d = vectored_server(VECTORED_MIN, Some(budget.clone()));
        d.send_owned(Message::Binary(vec![1; 2 << 20])).unwrap();
        assert!(d.verbatim.is_none());
        assert_eq!(&d.pending()[..4], &[0x88, 21, 0x03, 0xf5]);
        drop(d);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_whole_message_during_a_fragmented_one_is_misuse_in_place_too() {
        let mut d = vectored_server(1, None);
        d.send_fragment(MessageKind::Binary, b"part", false)
            .unwrap();
        let queued = d.pending_len();
        let e = d.send_owned(Message::Binary(pattern(1_000))).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Protocol(wsproto::Error::Misuse(wsproto::Misuse::MessageInProgress))
            ),
            "{e:?}"
        );
        assert_eq!(d.pending_len(), queued, "nothing more queued");
        d.send_fragment(MessageKind::Binary, b"end", true).unwrap();
        d.send_owned(Message::Binary(pattern(1_000))).unwrap();
        assert!(d.verbatim.is_some());
    }
}
