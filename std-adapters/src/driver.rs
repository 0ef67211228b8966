//! The run loop without I/O, shared by the blocking and tokio drivers.
//!
//! The I/O layers repeat: write [`Driver::pending`] out, shut the transport
//! when [`Driver::wants_shutdown`], return [`Driver::take_outcome`] if there
//! is one, otherwise [`Driver::step`] and read (with the timeout it asks for)
//! into [`Driver::spare`]. All state lives here, so an async read can be
//! cancelled at any await point without losing anything.

use crate::handshake::Done;
use crate::rng::StdRng;
use crate::{CloseFrame, Error, Message};
use wsproto::frame::encoded_frame_len;
use wsproto::{CloseCode, Config, Connection, Event, Instant, MessageKind, Role, State};

/// Receive window. The core surfaces payload as it arrives, so only a frame
/// header or a control frame (at most a few hundred bytes) is ever kept.
const RX_BUFFER: usize = 64 * 1024;
/// Transmit buffers above this are shrunk back once written.
const TX_KEEP: usize = 256 * 1024;

/// What the I/O layer should do after [`Driver::step`].
pub(crate) enum Step {
    /// Go round again: write, then take the outcome.
    Continue,
    /// Read more bytes, waiting at most this long (`None`: no timer armed).
    Read(Option<std::time::Duration>),
}

/// A message being reassembled.
enum Partial {
    Text(String),
    Binary(Vec<u8>),
}

/// One connection's state between I/O calls.
pub(crate) struct Driver {
    conn: Connection<StdRng>,
    rx: Vec<u8>,
    rx_len: usize,
    tx: Vec<u8>,
    tx_pos: usize,
    partial: Option<Partial>,
    outcome: Option<Result<Message, Error>>,
    eof: bool,
    shut: bool,
    finished: bool,
    protocol: Option<String>,
    path: String,
}

impl Driver {
    /// A driver for an open connection after `done`, its handshake.
    pub fn new(role: Role, config: Config, rng: StdRng, done: Done) -> Self {
        let Done {
            protocol,
            leftover,
            path,
            ..
        } = done;
        let mut rx = vec![0u8; RX_BUFFER.max(leftover.len() + 1024)];
        rx[..leftover.len()].copy_from_slice(&leftover);
        Driver {
            conn: Connection::with_rng(role, config, rng),
            rx,
            rx_len: leftover.len(),
            tx: Vec::new(),
            tx_pos: 0,
            partial: None,
            outcome: None,
            eof: false,
            shut: false,
            finished: false,
            protocol,
            path,
        }
    }

    /// The request target of the handshake.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The negotiated subprotocol.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The core connection's state.
    pub fn state(&self) -> State {
        self.conn.state()
    }

    /// Bytes waiting to be written.
    pub fn pending(&self) -> &[u8] {
        &self.tx[self.tx_pos..]
    }

    /// `n` bytes of [`Driver::pending`] were written.
    pub fn advance(&mut self, n: usize) {
        self.tx_pos = (self.tx_pos + n).min(self.tx.len());
        if self.tx_pos == self.tx.len() {
            self.tx.clear();
            self.tx_pos = 0;
            if self.tx.capacity() > TX_KEEP {
                self.tx.shrink_to(RX_BUFFER);
            }
        }
    }

    /// The core says the transport should now be closed, and it is not yet.
    pub fn wants_shutdown(&self) -> bool {
        !self.shut && self.pending().is_empty() && self.conn.should_close_transport()
    }

    /// The transport's write side was shut (or the transport dropped).
    pub fn mark_shut(&mut self) {
        self.shut = true;
    }

    /// The result the caller should return, if one is ready.
    pub fn take_outcome(&mut self) -> Option<Result<Message, Error>> {
        let outcome = self.outcome.take();
        if matches!(outcome, Some(Err(_))) {
            self.finished = true;
        }
        outcome
    }

    /// Where the next read goes.
    pub fn spare(&mut self) -> &mut [u8] {
        &mut self.rx[self.rx_len..]
    }

    /// `n` bytes were read into [`Driver::spare`].
    pub fn on_read(&mut self, n: usize) {
        self.rx_len = (self.rx_len + n).min(self.rx.len());
    }

    /// The transport reached end of file.
    pub fn on_eof(&mut self) {
        self.eof = true;
    }

    /// The transport failed: nothing more will be read or written.
    pub fn on_io_error(&mut self) {
        self.finished = true;
        self.shut = true;
    }

    /// Runs timers, feeds buffered input to the core and collects its output.
    pub fn step(&mut self, now: Instant) -> Step {
        if self.finished {
            self.outcome = Some(Err(Error::ConnectionClosed));
            return Step::Continue;
        }
        if self.conn.poll_timeout().is_some_and(|at| at <= now) {
            if let Err(e) = self.conn.handle_timeout(now) {
                self.outcome = Some(Err(e.into()));
            }
        }
        if self.outcome.is_none() {
            self.process();
        }
        self.transmit();
        if self.outcome.is_some() || !self.pending().is_empty() {
            return Step::Continue;
        }
        if self.eof {
            let result = self.conn.receive_eof();
            self.finished = true;
            self.outcome = Some(Err(match result {
                Err(e) => e.into(),
                Ok(()) => Error::ConnectionClosed,
            }));
            return Step::Continue;
        }
        if self.shut || self.conn.should_close_transport() {
            // Shut by us (close done, failure, timer): nothing more to read.
            self.finished = true;
            return Step::Continue;
        }
        if self.rx_len == self.rx.len() {
            // Never expected (the core keeps little unconsumed), but never read into nothing.
            self.rx.resize(self.rx.len() * 2, 0);
        }
        let wait = self.conn.poll_timeout().map(|at| {
            std::time::Duration::from_nanos(at.saturating_duration_since(now).as_nanos())
                .max(std::time::Duration::from_millis(1))
        });
        Step::Read(wait)
    }

    /// Feeds the receive window to the core until a message completes or
    /// nothing more can be consumed, then moves the unconsumed rest to the front.
    fn process(&mut self) {
        let mut pos = 0;
        while self.outcome.is_none() {
            let received = match self.conn.receive(&mut self.rx[pos..self.rx_len]) {
                Ok(r) => r,
                Err(e) => {
                    // The core queued its Close and ignores further input.
                    pos = self.rx_len;
                    self.outcome = Some(Err(e.into()));
                    break;
                }
            };
            pos += received.consumed;
            match received.event {
                None if received.consumed == 0 => break,
                None => {}
                Some(event) => self.outcome = on_event(&mut self.partial, event).map(Ok),
            }
        }
        self.rx.copy_within(pos..self.rx_len, 0);
        self.rx_len -= pos;
    }

    /// Moves the core's queued control frames into the transmit buffer.
    fn transmit(&mut self) {
        loop {
            let start = self.tx.len();
            self.tx.resize(start + 1024, 0);
            let n = self.conn.poll_transmit(&mut self.tx[start..]).unwrap_or(0);
            self.tx.truncate(start + n);
            if n == 0 {
                break;
            }
        }
    }

    /// Encodes one data frame (after any queued control frames) with `encode`.
    fn send_with(
        &mut self,
        len: usize,
        encode: impl FnOnce(&mut Connection<StdRng>, &mut [u8]) -> Result<usize, wsproto::Error>,
    ) -> Result<(), Error> {
        if self.finished {
            return Err(Error::ConnectionClosed);
        }
        self.transmit();
        let start = self.tx.len();
        let masked = self.conn.role() == Role::Client;
        self.tx.resize(start + encoded_frame_len(len, masked), 0);
        match encode(&mut self.conn, &mut self.tx[start..]) {
            Ok(n) => {
                self.tx.truncate(start + n);
                Ok(())
            }
            Err(e) => {
                self.tx.truncate(start);
                Err(e.into())
            }
        }
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
        self.send_with(data.len(), |c, out| c.send_fragment(kind, data, fin, out))
    }

    /// Runs a control command, then collects its frame.
    fn control(
        &mut self,
        command: impl FnOnce(&mut Connection<StdRng>) -> Result<(), wsproto::Error>,
    ) -> Result<(), Error> {
        if self.finished {
            return Err(Error::ConnectionClosed);
        }
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

/// Adds one event to the message being reassembled; returns a finished message.
fn on_event(partial: &mut Option<Partial>, event: Event<'_>) -> Option<Message> {
    match event {
        Event::Text { data, fin } => match (partial.take(), fin) {
            (None, true) => Some(Message::Text(data.to_owned())),
            (Some(Partial::Text(mut s)), fin) => {
                s.push_str(data);
                if fin {
                    Some(Message::Text(s))
                } else {
                    *partial = Some(Partial::Text(s));
                    None
                }
            }
            (_, _) => {
                *partial = Some(Partial::Text(data.to_owned()));
                None
            }
        },
        Event::Binary { data, fin } => match (partial.take(), fin) {
            (None, true) => Some(Message::Binary(data.to_vec())),
            (Some(Partial::Binary(mut b)), fin) => {
                b.extend_from_slice(data);
                if fin {
                    Some(Message::Binary(b))
                } else {
                    *partial = Some(Partial::Binary(b));
                    None
                }
            }
            (_, _) => {
                *partial = Some(Partial::Binary(data.to_vec()));
                None
            }
        },
        Event::Ping(p) => Some(Message::Ping(p.to_vec())),
        Event::Pong(p) => Some(Message::Pong(p.to_vec())),
        Event::Close { code, reason } => Some(Message::Close(code.map(|c| CloseFrame {
            code: c.0,
            reason: reason.to_owned(),
        }))),
    }
}
