//! permessage-deflate (RFC 7692) cost and gain: one text message sent by a
//! client and received by a server, with and without compression, on
//! chat-like JSON text; and the compressor alone against miniz_oxide on two
//! corpora (chat JSON and English-like prose).
//!
//! ```text
//! cargo bench -p wsproto-benches --bench deflate -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! * `deflate_roundtrip/{plain,deflate9,deflate15,deflate9f,deflate15f}/SIZE` — `send_text` into a
//!   buffer, then `receive_into` on the server until the message is whole:
//!   mask + unmask (+ compress + inflate), validated as UTF-8; `f`: the
//!   client compresses at [`CompressionLevel::Fast`].
//! * `deflate_compress/{wsproto9,wsproto15,wsproto9f,wsproto15f,miniz1,miniz6}/{chat,prose}` —
//!   one 16 KiB message compressed from scratch (no shared history) into a
//!   caller buffer: the core's [`Compressor9`] / [`Compressor15`] against
//!   miniz_oxide's raw DEFLATE at levels 1 and 6 (zlib's usual default), its
//!   compressor state reused (reset) so no allocation is timed.
//! * Printed at start: the compressed size of each sample with each window
//!   (the first message of a connection, so no shared history), beside
//!   miniz_oxide's raw DEFLATE at levels 1 and 6 as the reference, and
//!   `size_of` of the connection and compressor types.
//! * For instruction counts under callgrind, the environment picks one job
//!   and the bench exits after it: `DEFLATE_ROUNDS=BITS,N` (N round trips;
//!   BITS `9`, `15`, or `9f`, `15f` for the fast level),
//!   `DEFLATE_COMPRESS=WHICH,CORPUS,N` (N messages compressed from
//!   scratch), `DEFLATE_SIZES=1` (the sizes above only).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use miniz_oxide::deflate::core::{
    compress as miniz_compress, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush,
};
use wsproto::extensions::deflate::{accept_offer, write_offer, Agreed, DeflateConfig};
use wsproto::extensions::deflate::{CompressionLevel, Compressor15, Compressor9};
use wsproto::extensions::deflate::{Deflate12, Deflate15, Deflate9};
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

/// Deterministic English-like prose: sentences of words drawn with a
/// Zipf-like bias from a vocabulary of common and longer words, with
/// capitals, commas, full stops and paragraph breaks.
fn prose_text(len: usize, seed: u32) -> String {
    const WORDS: [&str; 96] = [
        "the",
        "of",
        "and",
        "to",
        "a",
        "in",
        "is",
        "that",
        "it",
        "for",
        "as",
        "was",
        "with",
        "be",
        "by",
        "on",
        "not",
        "he",
        "this",
        "are",
        "or",
        "his",
        "from",
        "at",
        "which",
        "but",
        "have",
        "an",
        "had",
        "they",
        "you",
        "were",
        "their",
        "one",
        "all",
        "we",
        "can",
        "her",
        "has",
        "there",
        "been",
        "if",
        "more",
        "when",
        "will",
        "would",
        "who",
        "so",
        "no",
        "message",
        "connection",
        "server",
        "client",
        "window",
        "history",
        "between",
        "through",
        "without",
        "another",
        "because",
        "question",
        "answer",
        "morning",
        "evening",
        "river",
        "mountain",
        "village",
        "library",
        "letter",
        "journey",
        "garden",
        "winter",
        "summer",
        "quietly",
        "suddenly",
        "remember",
        "believe",
        "understand",
        "different",
        "important",
        "people",
        "little",
        "nothing",
        "something",
        "always",
        "never",
        "together",
        "perhaps",
        "however",
        "although",
        "interesting",
        "particular",
        "government",
        "experience",
        "probably",
        "children",
    ];
    let mut out = String::with_capacity(len + 64);
    let mut x = 0x2545_f491_u32 ^ seed.wrapping_mul(0x9e37_79b9);
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let mut sentence_start = true;
    let mut in_sentence = 0;
    while out.len() < len {
        // Product of two uniforms: small indices (common words) dominate.
        let r = next();
        let i = (((r & 0xffff) * ((r >> 16) & 0xffff)) as u64 * WORDS.len() as u64) >> 32;
        let word = WORDS[i as usize % WORDS.len()];
        if sentence_start {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase());
                out.push_str(chars.as_str());
            }
            sentence_start = false;
        } else {
            out.push_str(word);
        }
        in_sentence += 1;
        let r = next();
        if in_sentence > 4 && r % 9 == 0 {
            out.push('.');
            sentence_start = true;
            in_sentence = 0;
            out.push_str(if (r >> 8) % 6 == 0 { "\n\n" } else { " " });
        } else if r % 13 == 0 {
            out.push_str(", ");
        } else {
            out.push(' ');
        }
    }
    out.truncate(len);
    out
}

/// miniz_oxide's raw DEFLATE at `level`, with a reused compressor state.
struct Miniz {
    state: Box<CompressorOxide>,
}

impl Miniz {
    fn new(level: i32) -> Self {
        Miniz {
            state: Box::new(CompressorOxide::new(create_comp_flags_from_zip_params(
                level, -15, 0,
            ))),
        }
    }

    fn compress(&mut self, input: &[u8], out: &mut [u8]) -> usize {
        self.state.reset();
        let (_status, used, made) = miniz_compress(&mut self.state, input, out, TDEFLFlush::Finish);
        assert_eq!(used, input.len());
        made
    }
}

/// One whole message through the core's compressor; returns its size.
fn wsproto_compress<const B: usize, const H: usize>(
    c: &mut wsproto::extensions::deflate::Compressor<B, H>,
    input: &[u8],
    out: &mut [u8],
) -> usize {
    c.reset();
    let r = c.compress(input, out, true);
    assert!(r.done && r.consumed == input.len());
    r.written
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
        "size_of: Connection = {} B, Connection<_, Deflate9> = {} B, Connection<_, Deflate12> = {} B, \
         Connection<_, Deflate15> = {} B; Deflate9 = {} B, Deflate12 = {} B, Deflate15 = {} B; \
         Compressor9 = {} B, Compressor15 = {} B",
        std::mem::size_of::<Connection<NoRng>>(),
        std::mem::size_of::<Connection<NoRng, Deflate9>>(),
        std::mem::size_of::<Connection<NoRng, Deflate12>>(),
        std::mem::size_of::<Connection<NoRng, Deflate15>>(),
        std::mem::size_of::<Deflate9>(),
        std::mem::size_of::<Deflate12>(),
        std::mem::size_of::<Deflate15>(),
        std::mem::size_of::<Compressor9>(),
        std::mem::size_of::<Compressor15>(),
    );
    let mut c9 = Box::new(Compressor9::new(9, true));
    let mut c15 = Box::new(Compressor15::new(15, true));
    let mut f9 = Box::new(Compressor9::new(9, true));
    f9.set_level(CompressionLevel::Fast);
    let mut f15 = Box::new(Compressor15::new(15, true));
    f15.set_level(CompressionLevel::Fast);
    let mut m1 = Miniz::new(1);
    let mut m6 = Miniz::new(6);
    for (name, text) in corpora(16 << 10) {
        let mut out = vec![0u8; 2 * text.len() + 4096];
        let w9 = wsproto_compress(&mut c9, text.as_bytes(), &mut out);
        let w15 = wsproto_compress(&mut c15, text.as_bytes(), &mut out);
        let v9 = wsproto_compress(&mut f9, text.as_bytes(), &mut out);
        let v15 = wsproto_compress(&mut f15, text.as_bytes(), &mut out);
        let l1 = m1.compress(text.as_bytes(), &mut out);
        let l6 = m6.compress(text.as_bytes(), &mut out);
        println!(
            "SIZE {name} {} B: wsproto 9-bit {w9} B, 15-bit {w15} B ({:.3}x level 6); \
             fast 9-bit {v9} B, 15-bit {v15} B ({:.3}x level 6, {:.3}x level 1); \
             miniz_oxide level 1 {l1} B, level 6 {l6} B",
            text.len(),
            w15 as f64 / l6 as f64,
            v15 as f64 / l6 as f64,
            v15 as f64 / l1 as f64,
        );
    }
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

/// The two corpora of `len` bytes for the compressor-only group.
fn corpora(len: usize) -> [(&'static str, String); 2] {
    [("chat", chat_text(len, 0)), ("prose", prose_text(len, 0))]
}

fn compress_only(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate_compress");
    group.sample_size(30);
    let mut c9 = Box::new(Compressor9::new(9, true));
    let mut c15 = Box::new(Compressor15::new(15, true));
    let mut f9 = Box::new(Compressor9::new(9, true));
    f9.set_level(CompressionLevel::Fast);
    let mut f15 = Box::new(Compressor15::new(15, true));
    f15.set_level(CompressionLevel::Fast);
    let mut m1 = Miniz::new(1);
    let mut m6 = Miniz::new(6);
    for (name, text) in corpora(16 << 10) {
        let input = text.as_bytes();
        let mut out = vec![0u8; 2 * input.len() + 4096];
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function(BenchmarkId::new("wsproto9", name), |b| {
            b.iter(|| black_box(wsproto_compress(&mut c9, black_box(input), &mut out)))
        });
        group.bench_function(BenchmarkId::new("wsproto15", name), |b| {
            b.iter(|| black_box(wsproto_compress(&mut c15, black_box(input), &mut out)))
        });
        group.bench_function(BenchmarkId::new("wsproto9f", name), |b| {
            b.iter(|| black_box(wsproto_compress(&mut f9, black_box(input), &mut out)))
        });
        group.bench_function(BenchmarkId::new("wsproto15f", name), |b| {
            b.iter(|| black_box(wsproto_compress(&mut f15, black_box(input), &mut out)))
        });
        group.bench_function(BenchmarkId::new("miniz1", name), |b| {
            b.iter(|| black_box(m1.compress(black_box(input), &mut out)))
        });
        group.bench_function(BenchmarkId::new("miniz6", name), |b| {
            b.iter(|| black_box(m6.compress(black_box(input), &mut out)))
        });
    }
    group.finish();
}

/// `DEFLATE_ROUNDS=BITS,N` (BITS 0 for plain, 9 or 15, with an `f` for the
/// fast level: `15f`, `9f`): runs N round trips of the 16 KiB chat messages
/// and exits, for instruction counts (run it under `valgrind
/// --tool=callgrind` with two values of N and take the difference, so setup
/// cancels out).
fn count_rounds(spec: &str) {
    let mut parts = spec.split(',');
    let which = parts.next().expect("BITS");
    let (bits, level) = match which.strip_suffix('f') {
        Some(b) => (b, CompressionLevel::Fast),
        None => (which, CompressionLevel::Default),
    };
    let bits: u8 = bits.parse().expect("BITS");
    let n: usize = parts.next().and_then(|n| n.parse().ok()).expect("N");
    let size = 16 << 10;
    let texts: Vec<String> = (1..=16).map(|seed| chat_text(size, seed)).collect();
    let mut next = 0;
    let mut wire = vec![0u8; 2 * size + 4096];
    let mut scratch = vec![0u8; 64 << 10];
    let mut total = 0;
    let a = agreed(bits.max(9));
    match bits {
        0 => {
            let mut c = Connection::with_rng(Role::Client, config(), Counter(1));
            let mut s = Connection::new(Role::Server, config());
            for _ in 0..n {
                let text = cycle(&texts, &mut next);
                total += round_trip(&mut c, &mut s, text, &mut wire, &mut scratch);
            }
        }
        9 => {
            let (mut c, mut s) = pair9(&a, level);
            for _ in 0..n {
                let text = cycle(&texts, &mut next);
                total += round_trip(&mut c, &mut s, text, &mut wire, &mut scratch);
            }
        }
        _ => {
            let (mut c, mut s) = pair15(&a, level);
            for _ in 0..n {
                let text = cycle(&texts, &mut next);
                total += round_trip(&mut c, &mut s, text, &mut wire, &mut scratch);
            }
        }
    }
    println!("ROUNDS bits {which}: {n} round trips, {total} wire bytes");
}

/// A client and a server with 512-byte windows, the client compressing at
/// `level` (the server's level does not matter: it only inflates here).
fn pair9(
    a: &Agreed,
    level: CompressionLevel,
) -> (Connection<Counter, Deflate9>, Connection<NoRng, Deflate9>) {
    let c = Connection::with_rng(Role::Client, config(), Counter(1)).with_extension(
        Deflate9::new(a, Role::Client)
            .expect("fits")
            .with_level(level),
    );
    let s = Connection::new(Role::Server, config())
        .with_extension(Deflate9::new(a, Role::Server).expect("fits"));
    (c, s)
}

/// A client and a server with full 32 KiB windows, boxed (about 150 KB
/// each).
type Pair15 = (
    Box<Connection<Counter, Deflate15>>,
    Box<Connection<NoRng, Deflate15>>,
);

/// [`pair9`] with full 32 KiB windows.
fn pair15(a: &Agreed, level: CompressionLevel) -> Pair15 {
    let c = Box::new(
        Connection::with_rng(Role::Client, config(), Counter(1)).with_extension(
            Deflate15::new(a, Role::Client)
                .expect("fits")
                .with_level(level),
        ),
    );
    let s = Box::new(
        Connection::new(Role::Server, config())
            .with_extension(Deflate15::new(a, Role::Server).expect("fits")),
    );
    (c, s)
}

/// `DEFLATE_COMPRESS=WHICH,CORPUS,N` (WHICH one of `wsproto9`, `wsproto15`,
/// `wsproto9f`, `wsproto15f` (the fast level), `miniz1`, `miniz6`; CORPUS `chat` or `prose`): compresses the 16 KiB sample from
/// scratch N times and exits, for instruction counts per message taken as
/// the difference between two values of N, as for `DEFLATE_ROUNDS`.
fn count_compress(spec: &str) {
    let parts: Vec<&str> = spec.split(',').collect();
    let [which, corpus, n] = parts[..] else {
        panic!("DEFLATE_COMPRESS=WHICH,CORPUS,N");
    };
    let n: usize = n.parse().expect("N");
    let text = match corpus {
        "chat" => chat_text(16 << 10, 0),
        _ => prose_text(16 << 10, 0),
    };
    let input = text.as_bytes();
    let mut out = vec![0u8; 2 * input.len() + 4096];
    let mut total = 0;
    match which {
        "wsproto9" => {
            let mut c = Box::new(Compressor9::new(9, true));
            for _ in 0..n {
                total += wsproto_compress(&mut c, black_box(input), &mut out);
            }
        }
        "wsproto15" => {
            let mut c = Box::new(Compressor15::new(15, true));
            for _ in 0..n {
                total += wsproto_compress(&mut c, black_box(input), &mut out);
            }
        }
        "wsproto9f" => {
            let mut c = Box::new(Compressor9::new(9, true));
            c.set_level(CompressionLevel::Fast);
            for _ in 0..n {
                total += wsproto_compress(&mut c, black_box(input), &mut out);
            }
        }
        "wsproto15f" => {
            let mut c = Box::new(Compressor15::new(15, true));
            c.set_level(CompressionLevel::Fast);
            for _ in 0..n {
                total += wsproto_compress(&mut c, black_box(input), &mut out);
            }
        }
        "miniz1" => {
            let mut m = Miniz::new(1);
            for _ in 0..n {
                total += m.compress(black_box(input), &mut out);
            }
        }
        _ => {
            let mut m = Miniz::new(6);
            for _ in 0..n {
                total += m.compress(black_box(input), &mut out);
            }
        }
    }
    println!("COMPRESS {which} {corpus}: {n} messages, {total} bytes");
}

fn deflate(c: &mut Criterion) {
    if let Ok(spec) = std::env::var("DEFLATE_ROUNDS") {
        count_rounds(&spec);
        std::process::exit(0);
    }
    if let Ok(spec) = std::env::var("DEFLATE_COMPRESS") {
        count_compress(&spec);
        std::process::exit(0);
    }
    if std::env::var_os("DEFLATE_SIZES").is_some() {
        print_ratios();
        std::process::exit(0);
    }
    print_ratios();
    compress_only(c);
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

        for (name, level) in [
            ("deflate9", CompressionLevel::Default),
            ("deflate9f", CompressionLevel::Fast),
        ] {
            let (mut c, mut s) = pair9(&agreed(9), level);
            group.bench_function(BenchmarkId::new(name, size), |b| {
                b.iter(|| {
                    let text = cycle(&texts, &mut next);
                    black_box(round_trip(&mut c, &mut s, text, &mut wire, &mut scratch))
                })
            });
        }
        for (name, level) in [
            ("deflate15", CompressionLevel::Default),
            ("deflate15f", CompressionLevel::Fast),
        ] {
            let (mut c, mut s) = pair15(&agreed(15), level);
            group.bench_function(BenchmarkId::new(name, size), |b| {
                b.iter(|| {
                    let text = cycle(&texts, &mut next);
                    black_box(round_trip(&mut c, &mut s, text, &mut wire, &mut scratch))
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, deflate);
criterion_main!(benches);
