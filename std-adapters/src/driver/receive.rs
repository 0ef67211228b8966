//! The receive side of the driver: the receive window, the core fed from it, and messages reassembled from its events.

use super::*;

impl Driver {
    /// Gives the receive window back while nothing is buffered and reads are
    /// small (see [`RX_MIN`]): the next read then goes into a buffer shared
    /// by the connections of a thread ([`Driver::on_read_shared`]), so an
    /// idle connection waiting for input holds no window at all. Returns
    /// whether the window is given back.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    #[inline]
    pub fn release_idle_window(&mut self) -> bool {
        // Most calls of an idle or small-message connection: given back already.
        self.rx.capacity() == 0 || self.release_window_now()
    }

    /// [`Driver::release_idle_window`] while the window is held.
    #[inline(never)]
    fn release_window_now(&mut self) -> bool {
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
    /// Inline: its one caller is the tokio driver's read of an idle
    /// connection, which every small message of a busy one passes too.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    #[inline]
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
        let parked = self.parked;
        let pos = self.process_input(bytes);
        if let Some(rest) = bytes.get(pos..).filter(|r| !r.is_empty()) {
            // Shorter than the shared buffer, so the window has room left.
            self.rx = self.new_window(RX_MIN.max(rest.len() + 1), rest);
            self.rx_start = 0;
            self.rx_len = rest.len();
        } else if !self.core_output
            && self.refused.is_none()
            && matches!(
                self.outcome,
                Some(Ok(Message::Text(_) | Message::Binary(_)))
            )
        {
            // Whole data messages and nothing else: no deadline moved and
            // nothing is left over, so once the message is handed out (and
            // its echo written, see `Driver::advance`) a step would ask for
            // the same read again. The I/O layer then reads without one.
            self.parked = parked;
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
    pub(super) fn window(&self) -> usize {
        if self.append_reads {
            self.rx.capacity()
        } else {
            self.rx.len()
        }
    }

    /// A window of `len` bytes holding `kept` at its front; zeroed only
    /// where reads fill its length.
    pub(super) fn new_window(&self, len: usize, kept: &[u8]) -> Vec<u8> {
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
    pub(super) fn resize_rx(&mut self, len: usize) {
        let kept = self.rx.get(self.rx_start..self.rx_len).unwrap_or_default();
        self.rx = self.new_window(len, kept);
        self.rx_len -= self.rx_start;
        self.rx_start = 0;
    }

    /// Feeds the receive window to the core until a message completes or
    /// nothing more can be consumed (see [`Driver::process_input`]); the
    /// unconsumed rest stays where it is.
    pub(super) fn process(&mut self) {
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
        // The core sees input: its timers may move.
        self.parked = None;
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
                            // The common small message without entering
                            // the general reassembly.
                            let taken = match small_whole(partial, &event, &mut charge) {
                                Some(message) => Ok(Some(message)),
                                None => on_event(partial, event, remaining, &mut charge),
                            };
                            match taken {
                                Ok(None) => ControlFlow::Continue(()),
                                Ok(Some(message)) => {
                                    *delivered_charge += core::mem::take(&mut *partial_charge);
                                    // Empty: the loop runs only while it is (so
                                    // nothing is dropped here).
                                    outcome.get_or_insert(Ok(message));
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
            self.expect_output();
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
    pub(super) fn copy_input(
        &mut self,
        input: &mut [u8],
        control: &mut bool,
    ) -> Result<usize, CopyStop> {
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
    pub(super) fn refuse(&mut self, refused: BudgetExceeded) {
        self.partial = None;
        self.account
            .shrink(core::mem::take(&mut self.partial_charge));
        self.refused = Some(refused);
        self.expect_output();
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
/// the partial message as it was. The small whole message is taken by
/// [`small_whole`] before this.
#[inline(never)]
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

/// The most common event, a small message in one frame, copied into the
/// recycled buffer waiting in `partial` ([`RECYCLE_MAX`]) when it fits:
/// that buffer is charged for its capacity already, so the charge stays as
/// it is. `None` (nothing taken) for anything else, left to [`on_event`].
#[inline]
fn small_whole(
    partial: &mut Option<Partial>,
    event: &Event<'_>,
    charge: &mut Charge<'_>,
) -> Option<Message> {
    let (data, text) = match *event {
        Event::Binary { data, fin: true } => (data, None),
        Event::Text { data, fin: true } => (data.as_bytes(), Some(data)),
        _ => return None,
    };
    let Some(Partial::Spare(spare)) = partial else {
        return None;
    };
    let cap = spare.capacity();
    if data.len() + SEND_ROOM > cap || cap > RECYCLE_MAX || *charge.bytes != cap {
        return None;
    }
    let Some(Partial::Spare(mut b)) = partial.take() else {
        return None;
    };
    b.clear();
    if let Some(text) = text {
        // Empty, so always UTF-8; the text the core checked goes in as is.
        let mut s = String::from_utf8(b).unwrap_or_default();
        s.push_str(text);
        return Some(Message::Text(s));
    }
    b.extend_from_slice(data);
    Some(Message::Binary(b))
}

/// The buffer a new message of about `cap` bytes starts in: the spare room
/// in `partial` if the message is large (a small one would keep a large
/// allocation alive), else a new one. The charge is already `cap`; the
/// caller settles it to the real capacity.
pub(super) fn start(partial: Option<Partial>, cap: usize) -> Vec<u8> {
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
pub(super) enum CopyStop {
    /// The core failed the connection.
    Core(wsproto::Error),
    /// The budget refused to let the message grow.
    Refused(BudgetExceeded),
}

/// The budget charge of the message being reassembled.
pub(super) struct Charge<'a> {
    account: &'a mut Account,
    /// Bytes charged for it so far.
    bytes: &'a mut usize,
}

impl Charge<'_> {
    /// Charges `cap` bytes in all.
    pub(super) fn to(&mut self, cap: usize) -> Result<(), BudgetExceeded> {
        self.account.resize(*self.bytes, cap)?;
        *self.bytes = cap;
        Ok(())
    }

    /// Before `more` bytes are appended to a buffer of `len` bytes and `cap`
    /// capacity: the capacity to grow to, if it must grow. The new buffer is
    /// charged on top of the old one (both exist while the bytes are copied
    /// across); [`Charge::settle`] then brings the charge to the new capacity.
    pub(super) fn grow(
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
    pub(super) fn settle(&mut self, cap: usize) {
        if cap > *self.bytes {
            self.account.force(cap - *self.bytes);
        } else {
            self.account.shrink(*self.bytes - cap);
        }
        *self.bytes = cap;
    }
}
