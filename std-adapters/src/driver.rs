//! The run loop without I/O, shared by the blocking and tokio drivers.
//!
//! The I/O layers repeat: write [`Driver::pending`] out, shut the transport
//! when [`Driver::wants_shutdown`], return [`Driver::take_outcome`] if there
//! is one, otherwise [`Driver::step`] and read (with the timeout it asks for)
//! into [`Driver::spare`]. All state lives here, so an async read can be
//! cancelled at any await point without losing anything.
//!
//! | file | what it holds |
//! |---|---|
//! | `driver.rs` | the state, the step loop, the timers, shutdown and lingering |
//! | `driver/receive.rs` | the receive window, the core fed from it, reassembly |
//! | `driver/send.rs` | messages and control frames to the core, its output queued |
//! | `driver/tx.rs` | the transmit buffer and frames written in place |
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

/// A deadline of the driver's own at the end of a connection, fixed when
/// its phase starts (each is `Config::close_timeout` long).
#[derive(Clone, Copy)]
enum ClosingUntil {
    /// The close handshake we started must end by then: a later phase
    /// (writing the last frames, lingering after a failure) ends no later.
    Handshake(Instant),
    /// Writing the last frames once the core has no timer left.
    Flush(Instant),
    /// The lingering close after the write side was shut.
    Linger(Instant),
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
    /// The core's next deadline as last asked ([`Driver::next_deadline`]),
    /// kept while nothing that can move its timers has reached it since.
    deadline: Option<Option<Instant>>,
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
    /// The driver's own deadline once the core has none left: for writing
    /// the last frames, then for the lingering close (one field: the
    /// shutdown that starts the one ends the other).
    closing_until: Option<ClosingUntil>,
    /// The read (until this deadline) the last step asked for, kept while
    /// nothing has reached the core since: everything that calls into it
    /// with input, a command or a timer clears it (see [`Driver::parked`]).
    parked: Option<Option<Instant>>,
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
            level,
            ..
        } = done;
        let conn = AnyConn::new(role, config, rng, deflate.as_ref(), shared.as_ref(), level)
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
            deadline: None,
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
            closing_until: None,
            parked: None,
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
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    #[inline]
    pub fn pending_len(&self) -> usize {
        self.tx.end.saturating_sub(self.tx.start) + self.verbatim.as_ref().map_or(0, Verbatim::left)
    }

    /// All of the output as one slice, while no frame is written in place
    /// (the usual case: the transmit buffer alone); `None` otherwise, for
    /// [`Driver::pending_slices`].
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    #[inline]
    pub fn pending_whole(&self) -> Option<&[u8]> {
        match self.verbatim {
            None => Some(self.tx.pending()),
            Some(_) => None,
        }
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
        if self.parked.is_some() && self.pending_len() == 0 {
            // Written out while a read is parked (a small message's echo):
            // the buffer becomes the next message's room now, as the step
            // the parked read stands for would have done, or, when that
            // step would do more, the read is a step's again.
            if self.small_reads > 0 && self.tx.capacity() <= RECYCLE_MAX && self.partial.is_none() {
                self.recycle_tx();
            } else {
                self.parked = None;
            }
        }
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
        let Some((buf, charged)) = self.tx.take() else {
            return;
        };
        if buf.capacity() <= RECYCLE_MAX && self.partial.is_none() {
            // Nothing held in `partial` to drop.
            self.partial.get_or_insert(Partial::Spare(buf));
            self.partial_charge = charged;
        } else {
            self.account.shrink(charged);
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
    #[inline]
    pub fn wants_shutdown(&self) -> bool {
        !self.shut && self.pending_len() == 0 && self.conn.should_close_transport()
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
    #[inline]
    pub fn take_outcome(&mut self) -> Option<Result<Message, Error>> {
        // Most calls: nothing to hand out.
        self.outcome.as_ref()?;
        self.take_outcome_slow()
    }

    /// [`Driver::take_outcome`] once a result is held.
    #[inline(never)]
    fn take_outcome_slow(&mut self) -> Option<Result<Message, Error>> {
        if self.lingering() {
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
        let next = self.next_deadline();
        if next.is_some_and(|at| now.reached(at)) {
            // A keepalive ping or a Close may be queued now.
            self.expect_output();
            self.parked = None;
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
        if self.closing_until.is_none() && self.conn.state() != State::Open {
            // A close handshake under way (ours, the peer's or a timer's)
            // while writes wait: the phases after it end no later than it.
            let end = now + self.conn.config().close_timeout;
            self.closing_until = Some(ClosingUntil::Handshake(end));
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
        let until = self.closing_deadline(now, false);
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
    fn wait(&mut self, now: Instant) -> Option<std::time::Duration> {
        wait_until(self.next_deadline(), now)
    }

    /// The core may hold output now (see `core_output`), and what put it
    /// there (a control frame or failure received, a command, a timer) may
    /// have moved its deadlines.
    fn expect_output(&mut self) {
        self.core_output = true;
        self.deadline = None;
    }

    /// The core's next deadline, asked of it again only once something
    /// that can move its timers reached it: everything that does also sets
    /// `core_output` ([`Driver::expect_output`]). Data frames received or
    /// sent move none (traffic only marks the idle and keepalive timers as
    /// answered), so a busy connection asks once, not once per message.
    fn next_deadline(&mut self) -> Option<Instant> {
        match self.deadline {
            Some(next) if !self.core_output => next,
            _ => {
                let next = self.conn.poll_timeout();
                if !self.core_output {
                    self.deadline = Some(next);
                }
                next
            }
        }
    }

    /// A message decoded from bytes already read, handed out before any
    /// write so that replies to a burst of requests can be queued and written
    /// together (pipelining). Feeds the receive window to the core if no
    /// result is waiting; the control frames it queues (pongs, a Close echo)
    /// stay in [`Driver::pending`]. With `data_only`, only text and binary
    /// messages come out this way: control messages and failures wait for
    /// the I/O layer to write first, as [`Driver::step`] has it.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    #[inline]
    pub fn take_buffered(&mut self, data_only: bool) -> Option<Message> {
        if self.outcome.is_none() && self.rx_len == 0 && self.delivered_charge == 0 {
            // Nothing read, held or charged (most calls of a small echo).
            return None;
        }
        self.take_buffered_slow(data_only)
    }

    /// The text or binary message a read just decoded, if that is what is
    /// held: [`Driver::take_buffered`] without its other cases, for a read
    /// that woke a parked connection.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    #[inline]
    pub fn take_data_message(&mut self) -> Option<Message> {
        if self.finished
            || !matches!(
                self.outcome,
                Some(Ok(Message::Text(_) | Message::Binary(_)))
            )
        {
            return None;
        }
        // The caller is back for more: the last message is its own now.
        self.account
            .shrink(core::mem::take(&mut self.delivered_charge));
        self.outcome.take().and_then(Result::ok)
    }

    /// [`Driver::take_buffered`] once something is read, held or charged.
    #[inline(never)]
    fn take_buffered_slow(&mut self, data_only: bool) -> Option<Message> {
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
        if let Err(e) = self.run_timers(now) {
            self.outcome = Some(Err(e));
        }
        if self.outcome.is_none() && (self.rx_len > 0 || self.conn.compresses()) {
            self.process();
        }
        self.transmit();
        let queued = self.pending_len() > 0;
        if self.outcome.is_some() || (write_first && queued) {
            return StepAt::Continue;
        }
        if queued && (self.eof || self.shut || self.conn.should_close_transport()) {
            return StepAt::Continue;
        }
        if self.eof {
            self.expect_output();
            self.parked = None;
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
        // Kept unless something moved it (a timer that fired, input or
        // output of the core's own).
        let until = self.next_deadline();
        self.parked = Some(until);
        StepAt::Read(until)
    }

    /// The deadline of the read the last step asked for, while a step now
    /// would ask for the same read: nothing was read, queued, sent or fired
    /// since, and no result waits. The tokio driver, woken for input, then
    /// reads at once instead of stepping first; the caller still checks that
    /// its timer has not fired (a deadline that came is not known here).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    #[inline]
    pub fn parked(&self) -> Option<Option<Instant>> {
        // Cleared by most of what happens: checked first.
        let until = self.parked?;
        // What most often holds a step back first: output, a result, input.
        let quiet = self.pending_len() == 0
            && self.outcome.is_none()
            && self.rx_len == 0
            && !self.finished
            && !self.eof
            && !self.shut
            && !self.core_output
            && self.refused.is_none()
            && !self.conn.compresses();
        quiet.then_some(until)
    }

    /// The driver's own deadline for writing the last frames (`linger`
    /// false) or for the lingering close, `close_timeout` from the first
    /// time it is asked for in that phase, and no later than the end of a
    /// close handshake we started ([`Driver::close`]).
    fn closing_deadline(&mut self, now: Instant, linger: bool) -> Instant {
        match self.closing_until {
            Some(ClosingUntil::Flush(until)) if !linger => until,
            Some(ClosingUntil::Linger(until)) if linger => until,
            phase => {
                let mut until = now + self.conn.config().close_timeout;
                if let Some(ClosingUntil::Handshake(end)) = phase {
                    // A failure during our close handshake does not give
                    // the peer a second `close_timeout`.
                    until = until.min(end);
                }
                self.closing_until = Some(if linger {
                    ClosingUntil::Linger(until)
                } else {
                    ClosingUntil::Flush(until)
                });
                until
            }
        }
    }

    /// One round of the lingering close: read and discard until end of file
    /// or the deadline, then release the held failure.
    fn drain(&mut self, now: &mut Now) -> StepAt {
        let now = now.get();
        let until = self.closing_deadline(now, true);
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
}

/// Time from `now` until the deadline `at`, at least 1 ms (`None`: no deadline).
fn wait_until(at: Option<Instant>, now: Instant) -> Option<std::time::Duration> {
    at.map(|at| {
        std::time::Duration::from_nanos(at.saturating_duration_since(now).as_nanos())
            .max(std::time::Duration::from_millis(1))
    })
}

mod receive;
mod send;
#[cfg(test)]
mod tests;
mod tx;

use tx::{TxBuffer, Verbatim};
