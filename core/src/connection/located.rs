//! [`Connection::receive_at`]: `receive` with the event's payload given as a
//! position in the input instead of a borrow of it.
//!
//! A driver that owns its receive buffer and returns events from a read loop
//! cannot keep the borrow `receive` hands back while it reads more into the
//! same buffer; with a position it keeps nothing borrowed and slices the
//! buffer once it is done. The position is the core's to give: the payload
//! of every event `receive` surfaces from its input ends where the consumed
//! bytes end, and an empty payload (a Close without a code, an empty Ping)
//! sits there too, whatever slice the event itself borrows.

use super::{Connection, Extension};
use crate::close::CloseCode;
use crate::error::Error;
use crate::event::Event;
use core::ops::Range;
use rand_core::RngCore;

/// An [`Event`] whose payload is `input[range]` of the input given to
/// [`Connection::receive_at`], unmasked in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventAt {
    /// A piece of a text message (whole code points).
    Text {
        /// Where the chunk is.
        at: Range<usize>,
        /// This chunk ends the message.
        fin: bool,
    },
    /// A piece of a binary message.
    Binary {
        /// Where the chunk is.
        at: Range<usize>,
        /// This chunk ends the message.
        fin: bool,
    },
    /// A ping; where its payload is.
    Ping(Range<usize>),
    /// A pong; where its payload is.
    Pong(Range<usize>),
    /// The peer's Close.
    Close {
        /// The status code, or `None` when the frame had no payload.
        code: Option<CloseCode>,
        /// Where the UTF-8 reason is (empty when there is none).
        at: Range<usize>,
    },
}

/// What one call to [`Connection::receive_at`] or
/// [`Connection::receive_into_at`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedAt {
    /// Bytes consumed from the front of the input, as in [`crate::Received`].
    pub consumed: usize,
    /// The event, if one completed.
    pub event: Option<EventAt>,
    /// The event's payload lies in the scratch buffer given to
    /// [`Connection::receive_into_at`] (a decompressed chunk), not in the
    /// input: resolve it against that buffer. Always `false` from
    /// [`Connection::receive_at`].
    pub from_scratch: bool,
}

impl EventAt {
    /// `event`, surfaced by `receive` from an input of which it consumed `end` bytes.
    fn ending_at(event: Event<'_>, end: usize) -> EventAt {
        let at = |len: usize| end.saturating_sub(len)..end;
        match event {
            Event::Text { data, fin } => EventAt::Text {
                at: at(data.len()),
                fin,
            },
            Event::Binary { data, fin } => EventAt::Binary {
                at: at(data.len()),
                fin,
            },
            Event::Ping(p) => EventAt::Ping(at(p.len())),
            Event::Pong(p) => EventAt::Pong(at(p.len())),
            Event::Close { code, reason } => EventAt::Close {
                code,
                at: at(reason.len()),
            },
        }
    }

    /// Where the payload (the data, the ping or pong payload, the close reason) is.
    pub fn range(&self) -> Range<usize> {
        match self {
            EventAt::Text { at, .. }
            | EventAt::Binary { at, .. }
            | EventAt::Ping(at)
            | EventAt::Pong(at)
            | EventAt::Close { at, .. } => at.clone(),
        }
    }

    /// The event, borrowing `input`: the buffer given to
    /// [`Connection::receive_at`], unchanged since (text is checked again).
    /// `None` when `input` cannot be that buffer: too short, or the text
    /// there is not UTF-8.
    pub fn resolve<'a>(&self, input: &'a [u8]) -> Option<Event<'a>> {
        let bytes = input.get(self.range())?;
        let text = || core::str::from_utf8(bytes).ok();
        Some(match *self {
            EventAt::Text { fin, .. } => Event::Text { data: text()?, fin },
            EventAt::Binary { fin, .. } => Event::Binary { data: bytes, fin },
            EventAt::Ping(_) => Event::Ping(bytes),
            EventAt::Pong(_) => Event::Pong(bytes),
            EventAt::Close { code, .. } => Event::Close {
                code,
                reason: text()?,
            },
        })
    }
}

/// The length of an event's payload.
fn e_len(event: &Event<'_>) -> usize {
    match event {
        Event::Text { data, .. } => data.len(),
        Event::Binary { data, .. } | Event::Ping(data) | Event::Pong(data) => data.len(),
        Event::Close { reason, .. } => reason.len(),
    }
}

impl<R: RngCore, E: Extension> Connection<R, E> {
    /// [`Connection::receive`], with the event's payload given as a range of
    /// `input` ([`EventAt`]) instead of a borrow, so `input` stays free, e.g.
    /// for a driver that returns the event after reading more into the same
    /// buffer. [`EventAt::resolve`] turns it back into the [`Event`].
    ///
    /// Same calls, errors and output as `receive`; an empty payload (a Close
    /// without a code) is placed at the end of the consumed bytes.
    ///
    /// ```
    /// use wsproto::{Config, Connection, Event, EventAt, Role};
    ///
    /// let mut server = Connection::new(Role::Server, Config::default());
    /// // A masked Close with no payload.
    /// let mut input = [0x88, 0x80, 1, 2, 3, 4];
    /// let received = server.receive_at(&mut input).unwrap();
    /// assert_eq!(received.consumed, 6);
    /// let event = received.event.unwrap();
    /// assert_eq!(event, EventAt::Close { code: None, at: 6..6 });
    /// assert_eq!(event.resolve(&input), Some(Event::Close { code: None, reason: "" }));
    /// ```
    pub fn receive_at(&mut self, input: &mut [u8]) -> Result<ReceivedAt, Error> {
        self.receive_into_at(input, &mut [])
    }

    /// [`Connection::receive_into`], with the event's payload given as a
    /// range ([`EventAt`]) of `input` or, when
    /// [`ReceivedAt::from_scratch`] says so (a chunk of a compressed
    /// message), of `scratch`, where such a chunk always starts at 0.
    ///
    /// ```
    /// # #[cfg(feature = "deflate")] {
    /// use wsproto::extensions::deflate::{accept_offer, Deflate9};
    /// use wsproto::{Config, Connection, Event, Role};
    ///
    /// let agreed = accept_offer(
    ///     "permessage-deflate; server_max_window_bits=9; client_max_window_bits",
    ///     &Deflate9::config(),
    /// )
    /// .unwrap();
    /// let deflate = Deflate9::new(&agreed, Role::Server).unwrap();
    /// let mut server = Connection::new(Role::Server, Config::default()).with_extension(deflate);
    /// // RFC 7692 §7.2.3.1: "Hello" compressed, from a client (zero mask key).
    /// let mut input = [0xc1, 0x87, 0, 0, 0, 0, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    /// let mut scratch = [0u8; 16];
    /// let received = server.receive_into_at(&mut input, &mut scratch).unwrap();
    /// assert!(received.from_scratch);
    /// let event = received.event.unwrap().resolve(&scratch);
    /// assert_eq!(event, Some(Event::Text { data: "Hello", fin: true }));
    /// # }
    /// ```
    pub fn receive_into_at(
        &mut self,
        input: &mut [u8],
        scratch: &mut [u8],
    ) -> Result<ReceivedAt, Error> {
        self.from_scratch = false;
        let received = self.receive_into(input, scratch)?;
        let consumed = received.consumed;
        let from_scratch = self.from_scratch && received.event.is_some();
        let event = received.event.map(|e| {
            if from_scratch {
                EventAt::ending_at(e, e_len(&e))
            } else {
                EventAt::ending_at(e, consumed)
            }
        });
        Ok(ReceivedAt {
            consumed,
            event,
            from_scratch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::apply_mask;
    use crate::{Config, Received, Role};
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    /// Where a payload `receive` surfaced sits in the input (tests only: the
    /// library never compares addresses). `None` for an empty payload, which
    /// may borrow anything.
    fn offset_in(input_addr: usize, payload: &[u8]) -> Option<Range<usize>> {
        (!payload.is_empty()).then(|| {
            let start = payload.as_ptr() as usize - input_addr;
            start..start + payload.len()
        })
    }

    fn payload_of<'a>(event: &Event<'a>) -> &'a [u8] {
        match *event {
            Event::Text { data, .. } => data.as_bytes(),
            Event::Binary { data, .. } | Event::Ping(data) | Event::Pong(data) => data,
            Event::Close { reason, .. } => reason.as_bytes(),
        }
    }

    #[test]
    fn an_empty_close_is_placed_at_the_end_of_the_consumed_bytes() {
        for (role, wire) in [
            (Role::Server, &[0x88, 0x80, 1, 2, 3, 4][..]),
            (Role::Client, &[0x88, 0x00][..]),
        ] {
            let mut conn = Connection::new(role, Config::default());
            let mut input = wire.to_vec();
            let got = conn.receive_at(&mut input).unwrap();
            let end = wire.len();
            let event = EventAt::Close {
                code: None,
                at: end..end,
            };
            assert_eq!(
                got,
                ReceivedAt {
                    consumed: end,
                    event: Some(event.clone()),
                    from_scratch: false,
                }
            );
            assert_eq!(
                event.resolve(&input),
                Some(Event::Close {
                    code: None,
                    reason: ""
                })
            );
        }
    }

    #[test]
    fn resolve_refuses_a_buffer_that_cannot_be_the_input() {
        let text = EventAt::Text {
            at: 0..2,
            fin: true,
        };
        assert_eq!(text.resolve(b"h"), None);
        assert_eq!(text.resolve(&[0xc3, 0x28]), None);
        assert_eq!(
            text.resolve(b"hi!"),
            Some(Event::Text {
                data: "hi",
                fin: true
            })
        );
    }

    /// Compressed messages through `receive_into_at` with a small scratch:
    /// chunks are located in the scratch, uncompressed and control frames in
    /// the input; `Option<Deflate9>` set to `None` refuses RSV1.
    #[cfg(feature = "deflate")]
    #[test]
    fn receive_into_at_locates_decompressed_chunks_in_the_scratch() {
        use crate::extensions::deflate::{accept_offer, Deflate9};
        use crate::{Error, Violation};

        struct Counter(u32);
        impl rand_core::RngCore for Counter {
            fn next_u32(&mut self) -> u32 {
                self.0 = self.0.wrapping_mul(747796405).wrapping_add(1);
                self.0
            }
            fn next_u64(&mut self) -> u64 {
                u64::from(self.next_u32())
            }
            fn fill_bytes(&mut self, d: &mut [u8]) {
                d.iter_mut().for_each(|b| *b = self.next_u32() as u8);
            }
        }
        let agreed = accept_offer(
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits",
            &Deflate9::config(),
        )
        .unwrap();
        let mut client = Connection::with_rng(Role::Client, Config::default(), Counter(7))
            .with_extension(Some(Deflate9::new(&agreed, Role::Client).unwrap()));
        let mut server = Connection::new(Role::Server, Config::default())
            .with_extension(Some(Deflate9::new(&agreed, Role::Server).unwrap()));
        let text = "héllo wörld, héllo wörld, héllo wörld ✓";
        let mut wire = vec![0u8; 256];
        let mut n = client.send_text(text, &mut wire).unwrap();
        assert_eq!(wire[0] & 0x40, 0x40, "compressed");
        client.ping(b"p").unwrap();
        n += client.poll_transmit(&mut wire[n..]).unwrap();
        wire.truncate(n);

        let mut got = std::string::String::new();
        let mut pings = 0;
        let mut scratch = [0u8; 5];
        while !wire.is_empty() {
            let r = server.receive_into_at(&mut wire, &mut scratch).unwrap();
            match r.event {
                Some(ev) if r.from_scratch => match ev.resolve(&scratch).unwrap() {
                    Event::Text { data, .. } => got.push_str(data),
                    other => panic!("{other:?}"),
                },
                Some(ev) => {
                    assert_eq!(ev.resolve(&wire), Some(Event::Ping(b"p")));
                    pings += 1;
                }
                None => assert!(r.consumed > 0),
            }
            wire.drain(..r.consumed);
        }
        assert_eq!((got.as_str(), pings), (text, 1));

        // Nothing agreed: RSV1 is a protocol error, as without an extension.
        let mut plain =
            Connection::new(Role::Server, Config::default()).with_extension(None::<Deflate9>);
        let mut frame = [0xc1, 0x80, 0, 0, 0, 0];
        assert_eq!(
            plain.receive_into_at(&mut frame, &mut scratch),
            Err(Error::Protocol(Violation::ReservedBits))
        );
    }

    /// One frame as a peer sends it: opcode bits, FIN, payload.
    fn frame() -> impl Strategy<Value = (u8, bool, Vec<u8>)> {
        let payload = prop_oneof![
            // Text with 1- to 4-byte code points, so chunks end inside them.
            proptest::collection::vec(
                prop_oneof![Just("a"), Just("é"), Just("✓"), Just("𝄞")],
                0..12
            )
            .prop_map(|s| s.concat().into_bytes()),
            proptest::collection::vec(any::<u8>(), 0..40),
            // Close payloads: none, a code alone, a code and a reason.
            Just(Vec::new()),
            Just(vec![0x03, 0xe8]),
            Just(vec![0x03, 0xe8, b'o', b'k']),
        ];
        (
            prop_oneof![Just(0u8), Just(1), Just(2), Just(8), Just(9), Just(10)],
            any::<bool>(),
            payload,
        )
    }

    fn wire(frames: &[(u8, bool, Vec<u8>)], to_server: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (op, fin, payload)) in frames.iter().enumerate() {
            let fin = *fin || *op >= 8;
            let payload = &payload[..payload.len().min(if *op >= 8 { 125 } else { 1000 })];
            out.push(u8::from(fin) << 7 | op);
            let mask = if to_server { 0x80 } else { 0 };
            out.push(mask | payload.len() as u8);
            let mut p = payload.to_vec();
            if to_server {
                let key = [i as u8, 0x5a, 0xa5, 7];
                out.extend_from_slice(&key);
                apply_mask(&mut p, key, 0);
            }
            out.extend_from_slice(&p);
        }
        out
    }

    proptest! {
        /// For any frames in any chunks (a window compacted as a driver
        /// does), `receive_at` agrees with `receive`: same consumed bytes,
        /// same errors, the event resolves to the same one, and a non-empty
        /// payload's range is exactly where `receive`'s borrow points.
        #[test]
        fn receive_at_agrees_with_receive(
            frames in proptest::collection::vec(frame(), 0..12),
            server in any::<bool>(),
            chunks in proptest::collection::vec(1usize..48, 1..8),
        ) {
            let role = if server { Role::Server } else { Role::Client };
            let wire = wire(&frames, server);
            let mut a = Connection::new(role, Config::default());
            let mut b = Connection::new(role, Config::default());
            let (mut buf_a, mut buf_b) = (Vec::new(), Vec::new());
            let mut fed = 0;
            for &size in chunks.iter().cycle() {
                let take = size.min(wire.len() - fed);
                buf_a.extend_from_slice(&wire[fed..fed + take]);
                buf_b.extend_from_slice(&wire[fed..fed + take]);
                fed += take;
                loop {
                    let addr = buf_a.as_ptr() as usize;
                    let got_a = a.receive(&mut buf_a);
                    let got_b = b.receive_at(&mut buf_b);
                    let consumed = match (got_a, got_b) {
                        (Err(ea), Err(eb)) => {
                            prop_assert_eq!(ea, eb);
                            return Ok(());
                        }
                        (Ok(Received { consumed, event }), Ok(at)) => {
                            prop_assert_eq!(consumed, at.consumed);
                            match (event, at.event) {
                                (None, None) => {}
                                (Some(ev), Some(ev_at)) => {
                                    if let Some(range) = offset_in(addr, payload_of(&ev)) {
                                        prop_assert_eq!(range, ev_at.range());
                                    }
                                    prop_assert!(ev_at.range().end <= consumed);
                                    prop_assert_eq!(ev_at.resolve(&buf_b), Some(ev));
                                }
                                (x, y) => prop_assert!(false, "{:?} vs {:?}", x, y),
                            }
                            consumed
                        }
                        (x, y) => {
                            prop_assert!(false, "{:?} vs {:?}", x.map(|r| r.consumed), y);
                            0
                        }
                    };
                    buf_a.drain(..consumed);
                    buf_b.drain(..consumed);
                    if consumed == 0 {
                        break;
                    }
                }
                if fed == wire.len() {
                    break;
                }
            }
        }
    }
}
