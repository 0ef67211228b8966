//! The compression level through a connection: a fast-level sender's
//! messages arrive whole at a peer that knows nothing of the level, a
//! default-level sender's output is what it always was, and a pooled
//! connection keeps its level whichever state the pool lends it.
#![cfg(feature = "deflate")]

use wsproto::extensions::deflate::{accept_offer, Agreed, CompressionLevel, Deflate12, Deflate9};
use wsproto::{Config, Connection, Event, Extension, NoRng, Role};

/// Chat-like JSON lines, varied by `seed`.
fn chat(seed: u32, len: usize) -> String {
    const USERS: [&str; 4] = ["ada", "grace", "linus", "ken"];
    const WORDS: [&str; 8] = [
        "hello", "socket", "frame", "build", "ok", "now", "who", "up",
    ];
    let mut x = 0x9e37_79b9u32 ^ seed;
    let mut out = String::new();
    let mut id = seed * 1000;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.push_str(&format!(
            "{{\"id\":{id},\"user\":\"{}\",\"text\":\"",
            USERS[(x % 4) as usize]
        ));
        for i in 0..(2 + x % 5) {
            out.push_str(WORDS[((x >> (3 * i)) % 8) as usize]);
            out.push(' ');
        }
        out.push_str("\"}\n");
        id += 1;
    }
    out.truncate(len);
    out
}

fn agreed(offer: &str) -> Agreed {
    accept_offer(offer, &Deflate12::config()).expect("acceptable")
}

/// Sends `text` from `server` and hands the frame to `client`, in input
/// pieces of `step` bytes; returns the frame's length and checks the text
/// arrived whole.
fn send<A: Extension, B: Extension>(
    server: &mut Connection<NoRng, A>,
    client: &mut Connection<NoRng, B>,
    text: &str,
    step: usize,
) -> Vec<u8> {
    let mut wire = vec![0u8; 2 * text.len() + 64];
    let n = server.send_text(text, &mut wire).expect("send");
    wire.truncate(n);
    let mut scratch = vec![0u8; 1 << 16];
    let mut got = String::new();
    let mut input = wire.clone();
    // `pos..end` is what the peer has read so far and not yet consumed:
    // `step` more bytes arrive on every call.
    let (mut pos, mut end) = (0, 0);
    loop {
        end = (end + step).min(n);
        let r = client
            .receive_into(&mut input[pos..end], &mut scratch)
            .expect("receive");
        pos += r.consumed;
        match r.event {
            Some(Event::Text { data, fin }) => {
                got.push_str(data);
                if fin {
                    break;
                }
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => assert!(r.consumed > 0 || end < n, "stalled"),
        }
    }
    assert_eq!(got, text);
    wire
}

fn pair(
    a: &Agreed,
    level: CompressionLevel,
) -> (Connection<NoRng, Deflate12>, Connection<NoRng, Deflate12>) {
    let server = Deflate12::new(a, Role::Server)
        .expect("fits")
        .with_level(level);
    let client = Deflate12::new(a, Role::Client).expect("fits");
    (
        Connection::new(Role::Server, Config::default()).with_extension(server),
        Connection::new(Role::Client, Config::default()).with_extension(client),
    )
}

#[test]
fn fast_level_messages_arrive_whole_with_and_without_takeover() {
    for offer in [
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; client_max_window_bits; server_no_context_takeover",
    ] {
        let a = agreed(offer);
        let (mut fs, mut fc) = pair(&a, CompressionLevel::Fast);
        let (mut ds, mut dc) = pair(&a, CompressionLevel::Default);
        let (mut fast_total, mut default_total) = (0, 0);
        for (i, len) in [5, 300, 5000, 9000, 40].into_iter().enumerate() {
            let text = chat(i as u32, len);
            let fast = send(&mut fs, &mut fc, &text, 1 + 97 * i);
            let default = send(&mut ds, &mut dc, &text, 4096);
            fast_total += fast.len();
            default_total += default.len();
            // Compressed (RSV1), and smaller than the text once it is long
            // enough to repeat itself.
            assert_eq!(fast[0] & 0x40, 0x40);
            if len >= 300 {
                assert!(fast.len() < len / 2, "{} of {len}", fast.len());
            }
        }
        // The fast level pays in size.
        assert!(fast_total > default_total, "{fast_total} {default_total}");
    }
}

#[test]
fn a_const_state_keeps_its_level_across_configure() {
    let a = accept_offer(
        "permessage-deflate; client_max_window_bits",
        &Deflate9::config(),
    )
    .expect("acceptable");
    let mut state = Box::new(Deflate9::new_const());
    state.set_level(CompressionLevel::Fast);
    state.configure(&a, Role::Server).expect("fits");
    assert_eq!(state.compressor().level(), CompressionLevel::Fast);
    let fresh = Deflate9::new(&a, Role::Server).expect("fits");
    assert_eq!(fresh.compressor().level(), CompressionLevel::Default);
}

#[cfg(feature = "alloc")]
mod pooled {
    use super::*;
    use std::cell::RefCell;
    use wsproto::extensions::deflate::{DeflatePool, Directions, HeapDeflate12, Pooled};

    #[derive(Default)]
    struct FreeList(RefCell<Vec<(Directions, Box<HeapDeflate12>)>>);

    impl DeflatePool<HeapDeflate12> for &FreeList {
        fn take(&self, key: &Directions) -> Option<Box<HeapDeflate12>> {
            let mut list = self.0.borrow_mut();
            let at = list.iter().position(|(k, _)| k == key)?;
            Some(list.swap_remove(at).1)
        }
        fn give(&self, key: &Directions, state: Box<HeapDeflate12>) {
            self.0.borrow_mut().push((*key, state));
        }
    }

    #[test]
    fn a_pooled_connection_sends_at_its_own_level() {
        let a = agreed(
            "permessage-deflate; client_max_window_bits; server_no_context_takeover; \
             client_no_context_takeover",
        );
        let pool = FreeList::default();
        let text = chat(7, 6000);
        // One connection at each level shares the pool: every state it
        // lends has served the other level just before.
        let mut fast = Connection::new(Role::Server, Config::default()).with_extension(
            Pooled::new(&a, Role::Server, &pool)
                .expect("no takeover")
                .with_level(CompressionLevel::Fast),
        );
        let mut default = Connection::new(Role::Server, Config::default())
            .with_extension(Pooled::new(&a, Role::Server, &pool).expect("no takeover"));
        let mut reader = Connection::new(Role::Client, Config::default())
            .with_extension(Deflate12::new(&a, Role::Client).expect("fits"));
        let (mut owned_fast, _) = pair(&a, CompressionLevel::Fast);
        let (mut owned_default, _) = pair(&a, CompressionLevel::Default);
        let mut sink = Connection::new(Role::Client, Config::default())
            .with_extension(Deflate12::new(&a, Role::Client).expect("fits"));
        let want_fast = send(&mut owned_fast, &mut sink, &text, 1 << 16);
        let want_default = send(&mut owned_default, &mut sink, &text, 1 << 16);
        assert_ne!(want_fast, want_default);
        for _ in 0..3 {
            assert_eq!(send(&mut fast, &mut reader, &text, 1 << 16), want_fast);
            assert_eq!(
                send(&mut default, &mut reader, &text, 1 << 16),
                want_default
            );
        }
        assert_eq!(pool.0.borrow().len(), 1);
    }
}
