//! permessage-deflate (RFC 7692) cost and gain: one text message sent by a
//! client and received by a server, with and without compression, on
//! chat-like JSON text.
//!
//! ```text
//! cargo bench -p wsproto-benches --bench deflate -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! * `deflate_roundtrip/{plain,deflate9,deflate15}/SIZE` — `send_text` into a
//!   buffer, then `receive_into` on the server until the message is whole:
//!   mask + unmask (+ compress + inflate), validated as UTF-8.
//! * Printed at start: the compressed size of each sample with each window
//!   (the first message of a connection, so no shared history), beside
//!   miniz_oxide's raw DEFLATE at levels 1 and 6 (zlib's usual default) as the
//!   reference, and `size_of` of the connection types.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wsproto::extensions::deflate::{accept_offer, write_offer, Agreed, DeflateConfig};
use wsproto::extensions::deflate::{Deflate15, Deflate9};
use wsproto::{Config, Connection, Event, Extension, NoRng, Role};

/// Message sizes: a chat line, a typical API payload, a large document.
const SIZES: [usize; 3] = [256, 16 << 10, 256 << 10];

/// Masking keys for the client; any sequence will do for a benchmark.
struct Counter(u32);

impl wsproto::rand_core::RngCore for Counter {
    fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
        self.0
    }
    fn next_u64(&mut self) -> u64 {
        u64::from(self.next_u32()) << 32 | u64::from(self.next_u32())
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for b in dst {
            *b = self.next_u32() as u8;
        }
    }
}

/// Deterministic chat-like JSON lines: ids, user names and words from a small
/// vocabulary, the shape of the seed documents' chat rooms. `seed` varies
/// the lines.
fn chat_text(len: usize, seed: u32) -> String {
    const USERS: [&str; 6] = ["ada", "grace", "linus", "barbara", "ken", "margaret"];
    const WORDS: [&str; 16] = [
        "hello", "socket", "frame", "the", "server", "is", "up", "again", "who", "broke", "build",
        "deploy", "ok", "thanks", "looking", "now",
    ];
    let mut out = String::with_capacity(len + 128);
    let mut x = 0x9e37_79b9_u32 ^ seed.wrapping_mul(0x85eb_ca6b);
    let mut id = 1000 + seed * 100_000;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let user = USERS[(x % 6) as usize];
        out.push_str(&format!("{{\"id\":{id},\"user\":\"{user}\",\"text\":\""));
        for i in 0..(3 + (x >> 8) % 9) {
            let w = WORDS[((x >> (i % 24)) % 16) as usize];
            out.push_str(w);
            out.push(' ');
        }
        out.push_str("\"}\n");
        id += 1;
    }
    out.truncate(len);
    out
}

fn agreed(bits: u8) -> Agreed {
    let config = DeflateConfig {
        max_window_bits: bits,
        ..DeflateConfig::default()
    };
    let mut offer = [0u8; 128];
    let n = write_offer(&config, &mut offer).expect("offer fits");
    let offer = std::str::from_utf8(&offer[..n]).expect("ascii");
    accept_offer(offer, &config).expect("own offer is acceptable")
}

fn config() -> Config {
    let mut config = Config::default();
    config.limits.max_message_size = 64 << 20;
    config.limits.max_frame_payload = 64 << 20;
    config
}

/// One message from `client` to `server`; returns the wire size and checks
/// the text arrived whole.
fn round_trip<C: Extension, S: Extension>(
    client: &mut Connection<Counter, C>,
    server: &mut Connection<NoRng, S>,
    text: &str,
    wire: &mut [u8],
    scratch: &mut [u8],
) -> usize {
    let n = client.send_text(text, wire).expect("send");
    let mut pos = 0;
    let mut got = 0;
    loop {
        let r = server
            .receive_into(&mut wire[pos..n], scratch)
            .expect("receive");
        pos += r.consumed;
        match r.event {
            Some(Event::Text { data, fin }) => {
                got += data.len();
                if fin {
                    break;
                }
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => assert!(r.consumed > 0, "stalled"),
        }
    }
    assert_eq!(got, text.len());
    n
}

fn print_ratios() {
    println!(
        "size_of: Connection = {} B, Connection<_, Deflate9> = {} B, Connection<_, Deflate15> = {} B",
        std::mem::size_of::<Connection<NoRng>>(),
        std::mem::size_of::<Connection<NoRng, Deflate9>>(),
        std::mem::size_of::<Connection<NoRng, Deflate15>>(),
    );
    for size in SIZES {
        let text = chat_text(size, 0);
        let mut wire = vec![0u8; 2 * size + 4096]; // above every send_buffer_len here
        let mut scratch = vec![0u8; 64 << 10];
        let mut sizes = Vec::new();
        for bits in [9u8, 15] {
            let a = agreed(bits);
            let n = if bits == 9 {
                let mut c = Connection::with_rng(Role::Client, config(), Counter(1))
                    .with_extension(Deflate9::new(&a, Role::Client).expect("fits"));
                let mut s = Connection::new(Role::Server, config())
                    .with_extension(Deflate9::new(&a, Role::Server).expect("fits"));
                round_trip(&mut c, &mut s, &text, &mut wire, &mut scratch)
            } else {
                let mut c = Box::new(
                    Connection::with_rng(Role::Client, config(), Counter(1))
                        .with_extension(Deflate15::new(&a, Role::Client).expect("fits")),
                );
                let mut s = Box::new(
                    Connection::new(Role::Server, config())
                        .with_extension(Deflate15::new(&a, Role::Server).expect("fits")),
                );
                round_trip(&mut c, &mut s, &text, &mut wire, &mut scratch)
            };
            sizes.push(n);
        }
        let level1 = miniz_oxide::deflate::compress_to_vec(text.as_bytes(), 1).len();
        let level6 = miniz_oxide::deflate::compress_to_vec(text.as_bytes(), 6).len();
        let pct = |n: usize| 100.0 * n as f64 / size as f64;
        println!(
            "RATIO {size} B chat text: frame with deflate9 {} B ({:.1}%), deflate15 {} B ({:.1}%); \
             miniz_oxide raw level 1 {level1} B ({:.1}%), level 6 {level6} B ({:.1}%)",
            sizes[0],
            pct(sizes[0]),
            sizes[1],
            pct(sizes[1]),
            pct(level1),
            pct(level6),
        );
    }
}

/// Sends the `texts` in turn: with context takeover, the same message again
/// would compress to a few back-references and flatter the figures.
fn cycle<'t>(texts: &'t [String], next: &mut usize) -> &'t str {
    *next = (*next + 1) % texts.len();
    &texts[*next]
}

fn deflate(c: &mut Criterion) {
    print_ratios();
    let mut group = c.benchmark_group("deflate_roundtrip");
    group.sample_size(30);
    for size in SIZES {
        let texts: Vec<String> = (1..=16).map(|seed| chat_text(size, seed)).collect();
        let mut next = 0;
        let mut wire = vec![0u8; 2 * size + 4096]; // above every send_buffer_len here
        let mut scratch = vec![0u8; 64 << 10];
        group.throughput(Throughput::Bytes(size as u64));

        let mut c = Connection::with_rng(Role::Client, config(), Counter(1));
        let mut s = Connection::new(Role::Server, config());
        group.bench_function(BenchmarkId::new("plain", size), |b| {
            b.iter(|| {
                let text = cycle(&texts, &mut next);
                black_box(round_trip(&mut c, &mut s, text, &mut wire, &mut scratch))
            })
        });

        let a = agreed(9);
        let mut c = Connection::with_rng(Role::Client, config(), Counter(1))
            .with_extension(Deflate9::new(&a, Role::Client).expect("fits"));
        let mut s = Connection::new(Role::Server, config())
            .with_extension(Deflate9::new(&a, Role::Server).expect("fits"));
        group.bench_function(BenchmarkId::new("deflate9", size), |b| {
            b.iter(|| {
                let text = cycle(&texts, &mut next);
                black_box(round_trip(&mut c, &mut s, text, &mut wire, &mut scratch))
            })
        });

        let a = agreed(15);
        let mut c = Box::new(
            Connection::with_rng(Role::Client, config(), Counter(1))
                .with_extension(Deflate15::new(&a, Role::Client).expect("fits")),
        );
        let mut s = Box::new(
            Connection::new(Role::Server, config())
                .with_extension(Deflate15::new(&a, Role::Server).expect("fits")),
        );
        group.bench_function(BenchmarkId::new("deflate15", size), |b| {
            b.iter(|| {
                let text = cycle(&texts, &mut next);
                black_box(round_trip(&mut c, &mut s, text, &mut wire, &mut scratch))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, deflate);
criterion_main!(benches);
