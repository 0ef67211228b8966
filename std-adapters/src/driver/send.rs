//! The send side of the driver: messages and control frames handed to the core, and its output moved into the transmit buffer.

use super::*;

impl Driver {
    /// Moves the core's queued control frames into the transmit buffer.
    #[inline]
    pub(super) fn transmit(&mut self) {
        if self.core_output {
            self.transmit_queued();
        }
    }

    /// [`Driver::transmit`] once the core may hold output.
    #[inline(never)]
    fn transmit_queued(&mut self) {
        self.parked = None;
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
        self.parked = None;
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
                self.expect_output();
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
    pub(super) fn control(
        &mut self,
        command: impl FnOnce(&mut AnyConn) -> Result<(), wsproto::Error>,
    ) -> Result<(), Error> {
        if self.finished {
            return Err(Error::ConnectionClosed);
        }
        self.expect_output();
        self.parked = None;
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
        let end = crate::clock::now() + self.conn.config().close_timeout;
        self.closing_until = Some(ClosingUntil::Handshake(end));
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
        // What a large frame leaves behind (its room) is for a step to keep
        // or give back.
        self.parked = None;
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
        // reserved above. The usual short header is two fixed-size copies,
        // inlined, rather than calls to fill and copy two bytes.
        if let (2, Some(&short)) = (header_len, header.first_chunk::<2>()) {
            frame.extend_from_slice(&short);
            frame.copy_within(..len, 2);
            if let Some(to) = frame.first_chunk_mut::<2>() {
                *to = short;
            }
        } else {
            frame.resize(len + header_len, 0);
            frame.copy_within(..len, header_len);
            if let (Some(to), Some(from)) = (frame.get_mut(..header_len), header.get(..header_len))
            {
                to.copy_from_slice(from);
            }
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
            self.parked = None;
            self.refuse(refused);
            self.transmit();
            return Ok(None);
        }
        let mut header = [0u8; MAX_HEADER_LEN];
        match self.conn.send_header(kind, len, true, &mut header) {
            Ok(n) => Ok(Some((header, n))),
            Err(e) => {
                self.account.shrink(charge);
                self.expect_output();
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
