//! `Pooled` permessage-deflate (states shared between connections through a
//! pool) behaves byte for byte as a plain `Deflate` of the same type under
//! the same agreement: random sequences of fragmented messages sent both
//! ways and delivered in random chunks, interleaved, with one pool serving
//! both ends. Also: the refusal of takeover agreements, errors mid-message,
//! and that idle connections hold no state.
//!
//! Run with `--features deflate`.
#![cfg(feature = "deflate")]

use proptest::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;
use wsproto::extensions::deflate::{
    accept_offer, write_offer, Agreed, DeflateConfig, DeflatePool, Directions, HeapDeflate12,
    PoolRefused, Pooled,
};
use wsproto::{Config, Connection, Error, Extension, MessageKind, Role};
use wsproto_tests::{receive_all_into, Collector, TestRng};

type State = HeapDeflate12;

/// A free list that counts what it hands out and gets back.
#[derive(Default)]
struct Counting {
    free: Vec<(Directions, Box<State>)>,
    built: usize,
    taken: usize,
    given: usize,
}

#[derive(Clone, Default)]
struct Pool(Rc<RefCell<Counting>>);

impl DeflatePool<State> for Pool {
    fn take(&self, key: &Directions) -> Option<Box<State>> {
        let mut p = self.0.borrow_mut();
        p.taken += 1;
        match p.free.iter().position(|(k, _)| k == key) {
            Some(at) => Some(p.free.swap_remove(at).1),
            None => {
                p.built += 1;
                None
            }
        }
    }
    fn give(&self, key: &Directions, state: Box<State>) {
        let mut p = self.0.borrow_mut();
        p.given += 1;
        p.free.push((*key, state));
    }
}

impl Pool {
    /// States out of the pool now.
    fn out(&self) -> usize {
        let p = self.0.borrow();
        p.taken - p.given
    }
}

fn agree(client: &DeflateConfig, server: &DeflateConfig) -> Agreed {
    let mut offer = [0u8; 128];
    let n = write_offer(client, &mut offer).unwrap();
    accept_offer(std::str::from_utf8(&offer[..n]).unwrap(), server).expect("acceptable")
}

/// The server forces no context takeover both ways on a plain offer.
fn no_takeover(bits: u8) -> Agreed {
    let server = DeflateConfig {
        max_window_bits: bits,
        server_no_context_takeover: true,
        client_no_context_takeover: true,
    };
    let agreed = agree(&DeflateConfig::default(), &server);
    assert!(agreed.server_no_context_takeover && agreed.client_no_context_takeover);
    agreed
}

#[derive(Clone, Debug)]
enum Op {
    /// One fragment from `who` (0 client, 1 server); `fin` ends the message.
    Fragment {
        who: usize,
        text: bool,
        data: Vec<u8>,
        fin: bool,
    },
    /// Up to `max` pending bytes delivered to `who`.
    Deliver { who: usize, max: usize },
    /// A ping from `who` (control frames between fragments).
    Ping { who: usize },
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Compressible text.
        (0usize..3000, any::<u8>()).prop_map(|(n, s)| {
            "the quick brown fox jumps over the lazy dog "
                .bytes()
                .cycle()
                .skip(usize::from(s) % 40)
                .take(n)
                .collect()
        }),
        // Noise.
        prop::collection::vec(any::<u8>(), 0..600),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..2, any::<bool>(), payload(), any::<bool>())
            .prop_map(|(who, text, data, fin)| Op::Fragment { who, text, data, fin }),
        4 => (0usize..2, 1usize..5000).prop_map(|(who, max)| Op::Deliver { who, max }),
        1 => (0usize..2).prop_map(|who| Op::Ping { who }),
    ]
}

/// Two connected endpoints and what crossed the wire.
struct World<EC: Extension, ES: Extension> {
    client: Connection<TestRng, EC>,
    server: Connection<TestRng, ES>,
    /// Bytes in flight to [client, server].
    inbox: [Vec<u8>; 2],
    /// Every byte each side wrote, in order.
    wire: [Vec<u8>; 2],
    received: [Collector; 2],
    errors: Vec<Error>,
    /// The open message of [client, server], if any.
    open: [Option<MessageKind>; 2],
}

impl<EC: Extension, ES: Extension> World<EC, ES> {
    fn new(client: EC, server: ES) -> Self {
        World {
            client: Connection::with_rng(Role::Client, Config::default(), TestRng::new(5))
                .with_extension(client),
            server: Connection::with_rng(Role::Server, Config::default(), TestRng::new(6))
                .with_extension(server),
            inbox: [Vec::new(), Vec::new()],
            wire: [Vec::new(), Vec::new()],
            received: [Collector::default(), Collector::default()],
            errors: Vec::new(),
            open: [None, None],
        }
    }

    fn sent(&mut self, who: usize, bytes: &[u8]) {
        self.wire[who].extend_from_slice(bytes);
        self.inbox[1 - who].extend_from_slice(bytes);
    }

    fn flush(&mut self) {
        let mut out = vec![0u8; 512];
        for who in 0..2 {
            loop {
                let n = if who == 0 {
                    self.client.poll_transmit(&mut out)
                } else {
                    self.server.poll_transmit(&mut out)
                }
                .unwrap();
                if n == 0 {
                    break;
                }
                self.sent(who, &out[..n]);
            }
        }
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Fragment {
                who,
                text,
                data,
                fin,
            } => {
                let kind = *self.open[*who].get_or_insert(if *text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                });
                // Text fragments stay valid UTF-8 whatever the split: ASCII.
                let data: Vec<u8> = if kind == MessageKind::Text {
                    data.iter().map(|b| b & 0x7f).collect()
                } else {
                    data.clone()
                };
                let (len, r) = if *who == 0 {
                    let mut out = vec![0u8; self.client.send_buffer_len(data.len())];
                    let r = self.client.send_fragment(kind, &data, *fin, &mut out);
                    (out, r)
                } else {
                    let mut out = vec![0u8; self.server.send_buffer_len(data.len())];
                    let r = self.server.send_fragment(kind, &data, *fin, &mut out);
                    (out, r)
                };
                let n = r.unwrap();
                self.sent(*who, &len[..n]);
                if *fin {
                    self.open[*who] = None;
                }
            }
            Op::Deliver { who, max } => {
                let n = self.inbox[*who].len().min(*max);
                let mut chunk: Vec<u8> = self.inbox[*who].drain(..n).collect();
                let mut scratch = vec![0u8; 1024];
                let r = if *who == 0 {
                    receive_all_into(
                        &mut self.client,
                        &mut chunk,
                        usize::MAX,
                        Some(&mut scratch),
                        &mut self.received[0],
                    )
                } else {
                    receive_all_into(
                        &mut self.server,
                        &mut chunk,
                        usize::MAX,
                        Some(&mut scratch),
                        &mut self.received[1],
                    )
                };
                if let Err(e) = r {
                    self.errors.push(e);
                }
                // Unconsumed bytes (a partial header) go back in front.
                chunk.extend_from_slice(&self.inbox[*who]);
                self.inbox[*who] = chunk;
            }
            Op::Ping { who } => {
                let r = if *who == 0 {
                    self.client.ping(b"p")
                } else {
                    self.server.ping(b"p")
                };
                r.unwrap();
            }
        }
        self.flush();
    }

    fn finish(&mut self) {
        for who in 0..2 {
            if let Some(kind) = self.open[who] {
                let op = Op::Fragment {
                    who,
                    text: kind == MessageKind::Text,
                    data: b"end".to_vec(),
                    fin: true,
                };
                self.apply(&op);
            }
        }
        for _ in 0..4 {
            for who in 0..2 {
                self.apply(&Op::Deliver {
                    who,
                    max: usize::MAX,
                });
            }
        }
    }
}

fn plain_world(agreed: &Agreed) -> World<State, State> {
    World::new(
        State::new(agreed, Role::Client).unwrap(),
        State::new(agreed, Role::Server).unwrap(),
    )
}

fn pooled_world(agreed: &Agreed, pool: &Pool) -> World<Pooled<State, Pool>, Pooled<State, Pool>> {
    World::new(
        Pooled::new(agreed, Role::Client, pool.clone()).unwrap(),
        Pooled::new(agreed, Role::Server, pool.clone()).unwrap(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn pooled_matches_plain(bits in 9u8..=12, ops in prop::collection::vec(op(), 1..40)) {
        let agreed = no_takeover(bits);
        let pool = Pool::default();
        let mut plain = plain_world(&agreed);
        let mut pooled = pooled_world(&agreed, &pool);
        for op in &ops {
            plain.apply(op);
            pooled.apply(op);
            prop_assert_eq!(&plain.wire, &pooled.wire);
            prop_assert_eq!(&plain.received[0].events, &pooled.received[0].events);
            prop_assert_eq!(&plain.received[1].events, &pooled.received[1].events);
            // At most one state per side, and only while a message is open
            // on it in some direction.
            prop_assert!(pool.out() <= 2);
        }
        plain.finish();
        pooled.finish();
        prop_assert_eq!(&plain.wire, &pooled.wire);
        prop_assert_eq!(&plain.received[0].events, &pooled.received[0].events);
        prop_assert_eq!(&plain.received[1].events, &pooled.received[1].events);
        prop_assert!(plain.errors.is_empty() && pooled.errors.is_empty());
        // Everything delivered, no message open: every state is back.
        prop_assert_eq!(pool.out(), 0);
        prop_assert!(!pooled.client.extension().holds_state());
        prop_assert!(!pooled.server.extension().holds_state());
        let built = pool.0.borrow().built;
        prop_assert!(built <= 2, "built {}", built);
    }
}

#[test]
fn takeover_agreements_are_refused() {
    let pool = Pool::default();
    let both = agree(&DeflateConfig::default(), &HeapDeflate12::config());
    let one = agree(
        &DeflateConfig::default(),
        &DeflateConfig {
            server_no_context_takeover: true,
            ..HeapDeflate12::config()
        },
    );
    for agreed in [both, one] {
        let r = Pooled::<State, Pool>::new(&agreed, Role::Server, pool.clone());
        assert_eq!(r.unwrap_err(), PoolRefused::ContextTakeover);
    }
    // A 15-bit agreement does not fit a 12-bit state.
    let r = Pooled::<State, Pool>::new(&no_takeover(15), Role::Server, pool);
    assert!(matches!(r, Err(PoolRefused::WindowTooSmall(_))));
}

#[test]
fn many_idle_connections_share_one_state() {
    let agreed = no_takeover(12);
    let pool = Pool::default();
    let mut worlds: Vec<_> = (0..20).map(|_| pooled_world(&agreed, &pool)).collect();
    for round in 0..3 {
        for w in &mut worlds {
            w.apply(&Op::Fragment {
                who: 0,
                text: true,
                data: format!("hello hello hello {round}").into_bytes(),
                fin: true,
            });
            w.apply(&Op::Deliver {
                who: 1,
                max: usize::MAX,
            });
            assert_eq!(pool.out(), 0);
        }
    }
    // Sequential messages: one state served all 40 connections.
    assert_eq!(pool.0.borrow().built, 1);
    assert!(worlds.iter().all(|w| w.errors.is_empty()));
    let idle = worlds[0].server.extension().memory();
    assert!(idle < 256, "idle pooled extension {idle} B");
}

#[test]
fn a_corrupt_message_drops_its_state_and_the_rest_go_back() {
    let agreed = no_takeover(12);
    let pool = Pool::default();
    let mut w = pooled_world(&agreed, &pool);
    // The server is mid-way through sending a fragmented message...
    w.apply(&Op::Fragment {
        who: 1,
        text: false,
        data: vec![1; 100],
        fin: false,
    });
    assert_eq!(pool.out(), 1);
    // ...when the client sends a compressed frame with garbage (RSV1, 0xff).
    w.inbox[1].extend_from_slice(&[0xc2, 0x83, 0, 0, 0, 0, 0xff, 0xff, 0xff]);
    w.apply(&Op::Deliver {
        who: 1,
        max: usize::MAX,
    });
    assert_eq!(w.errors.len(), 1, "{:?}", w.errors);
    // The failed state is not back in the pool, nor still held.
    assert!(!w.server.extension().holds_state());
    assert_eq!(pool.0.borrow().free.len(), 0);
    // The client's own state went back when its message ended.
    w.apply(&Op::Fragment {
        who: 0,
        text: true,
        data: b"ok".to_vec(),
        fin: true,
    });
    assert!(!w.client.extension().holds_state());
    assert_eq!(pool.0.borrow().free.len(), 1);
}

#[test]
fn dropping_a_connection_mid_message_frees_its_state() {
    let agreed = no_takeover(9);
    let pool = Pool::default();
    let mut w = pooled_world(&agreed, &pool);
    w.apply(&Op::Fragment {
        who: 0,
        text: true,
        data: b"first half".to_vec(),
        fin: false,
    });
    assert!(w.client.extension().holds_state());
    let weak = Rc::downgrade(&pool.0);
    drop(w);
    drop(pool);
    // Nothing keeps the pool (or a state) alive.
    assert!(weak.upgrade().is_none());
}
