//! The inflater against miniz_oxide: streams miniz_oxide compressed at
//! every level, and the crate's own compressor's output, must inflate to
//! the same bytes however input and output are split; malformed streams must
//! fail with `Corrupt`, never panic.
#![cfg(feature = "deflate")]

use miniz_oxide::deflate::compress_to_vec;
use miniz_oxide::deflate::core::{
    compress, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
};
use miniz_oxide::inflate::decompress_to_vec;
use proptest::prelude::*;
use wsproto::extensions::deflate::inflate::TAIL;
use wsproto::extensions::deflate::{Compressor9, InflateError, Inflater, Inflater15, Inflater9};

/// A small deterministic generator (xorshift32).
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() as usize) % n.max(1)
    }
}

/// Inputs of several kinds: random bytes, English-like words, long runs and
/// a mix, so that every block type and long and short matches appear.
fn corpus(len: usize, seed: u32) -> Vec<Vec<u8>> {
    let mut rng = Rng(seed | 1);
    let random: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    const WORDS: [&str; 12] = [
        "the ",
        "socket ",
        "frame ",
        "deflate ",
        "window ",
        "of ",
        "a ",
        "message ",
        "peer ",
        "{\"id\":",
        "\"text\":\"",
        "\"},\n",
    ];
    let mut text = Vec::with_capacity(len);
    while text.len() < len {
        text.extend_from_slice(WORDS[rng.below(WORDS.len())].as_bytes());
    }
    text.truncate(len);
    let runs: Vec<u8> = (0..len).map(|i| (i / 300) as u8).collect();
    let mixed: Vec<u8> = (0..len)
        .map(|i| match (i / 1000) % 3 {
            0 => random[i],
            1 => text[i],
            _ => 0,
        })
        .collect();
    vec![random, text, runs, mixed]
}

/// Feeds `chunks` (the last with `fin`) with output buffers whose sizes come
/// from `out_sizes` in turn; returns what came out, or the first error.
fn inflate_chunks<const W: usize>(
    inf: &mut Inflater<W>,
    chunks: &[&[u8]],
    out_sizes: &mut dyn FnMut() -> usize,
) -> Result<Vec<u8>, InflateError> {
    let mut got = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let fin = i + 1 == chunks.len();
        let mut pos = 0;
        loop {
            let mut out = vec![0u8; out_sizes()];
            let r = inf.inflate(&chunk[pos..], &mut out, fin)?;
            assert!(r.consumed <= chunk.len() - pos && r.written <= out.len());
            got.extend_from_slice(&out[..r.written]);
            pos += r.consumed;
            if r.done {
                assert!(fin && pos == chunk.len());
                return Ok(got);
            }
            if !fin && pos == chunk.len() && r.written < out.len() {
                break; // this chunk is used up; the next one goes on
            }
            assert!(
                r.consumed > 0 || r.written > 0 || out.is_empty(),
                "no progress"
            );
        }
    }
    unreachable!("the fin chunk ends the message")
}

/// One message in one piece, with a large output buffer.
fn inflate_whole<const W: usize>(
    inf: &mut Inflater<W>,
    msg: &[u8],
) -> Result<Vec<u8>, InflateError> {
    inflate_chunks(inf, &[msg], &mut || 1 << 17)
}

/// miniz_oxide's messages: each sync-flushed with the tail stripped (RFC
/// 7692 §7.2.1), one compressor for all (context takeover).
fn miniz_messages(messages: &[Vec<u8>], level: u8) -> Vec<Vec<u8>> {
    let mut c = CompressorOxide::new(create_comp_flags_from_zip_params(level.into(), -15, 0));
    messages
        .iter()
        .map(|m| {
            let mut out = vec![0u8; m.len() * 2 + 1024];
            let (status, used, made) = compress(&mut c, m, &mut out, TDEFLFlush::Sync);
            assert_eq!((status, used), (TDEFLStatus::Okay, m.len()));
            out.truncate(made);
            assert_eq!(out[made - 4..], TAIL, "a sync flush ends with the tail");
            out.truncate(made - 4);
            out
        })
        .collect()
}

#[test]
fn every_level_and_corpus_inflates_as_miniz_does() {
    for len in [0, 1, 100, 5000, 70_000] {
        for (k, data) in corpus(len, len as u32 + 7).into_iter().enumerate() {
            for level in 0..=9u8 {
                let stream = compress_to_vec(&data, level);
                let reference = decompress_to_vec(&stream).unwrap();
                assert_eq!(reference, data);
                let mut inf = Inflater15::new(false, u64::MAX);
                let got = inflate_whole(&mut inf, &stream).unwrap();
                assert!(got == data, "len {len} corpus {k} level {level}");
            }
        }
    }
}

#[test]
fn sync_flushed_messages_with_context_takeover() {
    for level in 0..=9u8 {
        let messages: Vec<Vec<u8>> = (0..6u32)
            .map(|i| corpus(3000 + 1000 * i as usize, i)[(i % 4) as usize].clone())
            .collect();
        let compressed = miniz_messages(&messages, level);
        let mut inf = Inflater15::new(false, u64::MAX);
        let mut rng = Rng(level as u32 + 11);
        for (m, c) in messages.iter().zip(&compressed) {
            // Random chunking of input and output.
            let mut cuts: Vec<usize> = (0..rng.below(6)).map(|_| rng.below(c.len() + 1)).collect();
            cuts.sort();
            let mut chunks = Vec::new();
            let mut at = 0;
            for cut in cuts.into_iter().chain([c.len()]) {
                chunks.push(&c[at..cut]);
                at = cut;
            }
            let mut sizes = Rng(rng.next() | 1);
            let got = inflate_chunks(&mut inf, &chunks, &mut || 1 + sizes.below(700)).unwrap();
            assert!(got == *m, "level {level}");
        }
    }
}

#[test]
fn every_input_split_and_output_size() {
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for (k, data) in corpus(260, 3).into_iter().enumerate() {
        let level: u8 = [0, 1, 6, 9][k];
        inputs.push(compress_to_vec(&data, level));
        inputs.push(miniz_messages(&[data], level).remove(0));
    }
    for stream in &inputs {
        let expected = {
            let mut inf = Inflater15::new(false, u64::MAX);
            inflate_whole(&mut inf, stream).unwrap()
        };
        for split in 0..=stream.len() {
            for out in [1, 2, 3, 7, 64, 1000] {
                let mut inf = Inflater15::new(false, u64::MAX);
                let got =
                    inflate_chunks(&mut inf, &[&stream[..split], &stream[split..]], &mut || out)
                        .unwrap();
                assert!(got == expected, "split {split} out {out}");
            }
        }
        // One byte at a time, output sizes cycling through 1..=5.
        let mut inf = Inflater15::new(false, u64::MAX);
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        let mut n = 0;
        let got = inflate_chunks(&mut inf, &bytes, &mut || {
            n = n % 5 + 1;
            n
        })
        .unwrap();
        assert!(got == expected);
    }
}

#[test]
fn nine_bit_windows_from_our_compressor_and_miniz() {
    // The crate's compressor at 9 bits, context takeover, into an Inflater9.
    let mut c = Compressor9::new(9, false);
    let mut inf = Inflater9::new(false, u64::MAX);
    let mut rng = Rng(99);
    for (i, msg) in corpus(4000, 5).into_iter().enumerate() {
        let mut out = vec![0u8; Compressor9::max_compressed_len(msg.len())];
        let r = c.compress(&msg, &mut out, true);
        assert!(r.done && r.consumed == msg.len());
        out.truncate(r.written);
        let mut sizes = Rng(rng.next() | 1);
        let got = inflate_chunks(
            &mut inf,
            &[&out[..out.len() / 3], &out[out.len() / 3..]],
            &mut || 1 + sizes.below(100),
        )
        .unwrap();
        assert!(got == msg, "message {i}");
    }
    // miniz_oxide (32 KiB window) on messages short enough for 512 bytes of
    // history, no context takeover: each message alone.
    for level in 0..=9u8 {
        let mut inf = Inflater9::new(true, u64::MAX);
        for data in corpus(500, level as u32 + 1) {
            let msg = miniz_messages(std::slice::from_ref(&data), level).remove(0);
            assert_eq!(inflate_whole(&mut inf, &msg).unwrap(), data);
        }
    }
}

/// Writes DEFLATE bits, first bit lowest; Huffman codes go first bit
/// highest, as RFC 1951 §3.1.1 packs them.
#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    nbits: usize,
}

impl Bits {
    fn put(&mut self, value: u32, n: usize) -> &mut Self {
        for i in 0..n {
            if self.nbits % 8 == 0 {
                self.bytes.push(0);
            }
            if value >> i & 1 != 0 {
                *self.bytes.last_mut().unwrap() |= 1 << (self.nbits % 8);
            }
            self.nbits += 1;
        }
        self
    }

    fn code(&mut self, code: u32, len: usize) -> &mut Self {
        for i in (0..len).rev() {
            self.put(code >> i & 1, 1);
        }
        self
    }

    /// A symbol of the fixed literal/length code (RFC 1951 §3.2.6).
    fn fixed(&mut self, symbol: u32) -> &mut Self {
        match symbol {
            0..=143 => self.code(0x30 + symbol, 8),
            144..=255 => self.code(0x190 + symbol - 144, 9),
            256..=279 => self.code(symbol - 256, 7),
            _ => self.code(0xc0 + symbol - 280, 8),
        }
    }
}

/// (code, length) per symbol.
type Codes = Vec<(u32, usize)>;

/// Canonical codes for `lengths` (RFC 1951 §3.2.2): (code, length) each.
fn canonical(lengths: &[u8]) -> Codes {
    let mut count = [0u32; 16];
    for &l in lengths {
        count[l as usize] += 1;
    }
    count[0] = 0;
    let mut next = [0u32; 16];
    let mut code = 0;
    for bits in 1..16 {
        code = (code + count[bits - 1]) << 1;
        next[bits] = code;
    }
    lengths
        .iter()
        .map(|&l| {
            let c = next[l as usize];
            next[l as usize] += 1;
            (c, l as usize)
        })
        .collect()
}

/// The order of the code length code's lengths (RFC 1951 §3.2.7).
const CLEN_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// A final dynamic block header: the code length code `clens`, then `lit`
/// and `dist` code lengths, each sent as a plain length symbol. Returns the
/// writer and the literal/length and distance codes.
fn dynamic_header(clens: &[u8; 19], lit: &[u8], dist: &[u8]) -> (Bits, Codes, Codes) {
    let mut b = Bits::default();
    b.put(1, 1).put(2, 2);
    b.put(lit.len() as u32 - 257, 5)
        .put(dist.len() as u32 - 1, 5)
        .put(15, 4);
    for &i in &CLEN_ORDER {
        b.put(clens[i].into(), 3);
    }
    let clen_codes = canonical(clens);
    for &l in lit.iter().chain(dist) {
        let (code, len) = clen_codes[l as usize];
        b.code(code, len);
    }
    (b, canonical(lit), canonical(dist))
}

/// A complete code length code: 0..=15 on 5 bits, 16 and 17 on 3, 18 on 2.
fn complete_clens() -> [u8; 19] {
    let mut c = [5u8; 19];
    c[16] = 3;
    c[17] = 3;
    c[18] = 2;
    c
}

fn corrupt(stream: &[u8]) {
    for out in [1, 4096] {
        let mut inf = Inflater15::new(false, u64::MAX);
        let r = inflate_chunks(&mut inf, &[stream], &mut || out);
        assert_eq!(r, Err(InflateError::Corrupt), "{stream:02x?}");
        // Split anywhere: still corrupt, and the inflater stays failed.
        for split in 0..=stream.len() {
            let mut inf = Inflater15::new(false, u64::MAX);
            let r = inflate_chunks(&mut inf, &[&stream[..split], &stream[split..]], &mut || out);
            assert_eq!(r, Err(InflateError::Corrupt), "split {split}");
            let mut buf = [0u8; 8];
            assert_eq!(
                inf.inflate(&[0], &mut buf, true),
                Err(InflateError::Corrupt)
            );
        }
    }
}

#[test]
fn the_stream_builders_make_valid_streams() {
    // Fixed: "ab" then a copy of 3 from 2 back, end of block: "ababa".
    let mut b = Bits::default();
    b.put(1, 1)
        .put(1, 2)
        .fixed(97)
        .fixed(98)
        .fixed(257)
        .code(1, 5)
        .fixed(256);
    assert_eq!(decompress_to_vec(&b.bytes).unwrap(), b"ababa");
    let mut inf = Inflater15::new(false, u64::MAX);
    assert_eq!(inflate_whole(&mut inf, &b.bytes).unwrap(), b"ababa");
    // Dynamic: 'a' and end of block on one bit each, one distance code.
    let mut lit = vec![0u8; 257];
    lit[97] = 1;
    lit[256] = 1;
    let (mut b, codes, _) = dynamic_header(&complete_clens(), &lit, &[1]);
    let (a, eob) = (codes[97], codes[256]);
    b.code(a.0, a.1).code(a.0, a.1).code(eob.0, eob.1);
    assert_eq!(decompress_to_vec(&b.bytes).unwrap(), b"aa");
    let mut inf = Inflater15::new(false, u64::MAX);
    assert_eq!(inflate_whole(&mut inf, &b.bytes).unwrap(), b"aa");
}

#[test]
fn malformed_block_headers() {
    // BTYPE 11 is reserved.
    corrupt(&[0b111]);
    // A stored block whose NLEN is not the complement of LEN.
    corrupt(&[0x01, 0x05, 0x00, 0xfa, 0xfe, b'H', b'e', b'l', b'l', b'o']);
    // HLIT of 287 and 288 literal/length codes, and HDIST of 31 and 32.
    for (hlit, hdist) in [(30, 0), (31, 0), (0, 30), (0, 31)] {
        let mut b = Bits::default();
        b.put(1, 1).put(2, 2).put(hlit, 5).put(hdist, 5).put(15, 4);
        b.put(0, 32);
        corrupt(&b.bytes);
    }
}

#[test]
fn malformed_code_lengths() {
    let mut lit = vec![0u8; 257];
    lit[97] = 1;
    lit[256] = 1;
    // Over-subscribed code length code: every length on one bit.
    let (b, _, _) = dynamic_header(&[1; 19], &lit, &[1]);
    corrupt(&b.bytes);
    // Incomplete code length code.
    let mut clens = [0u8; 19];
    clens[1] = 2;
    clens[0] = 2;
    let mut b = Bits::default();
    b.put(1, 1).put(2, 2).put(0, 5).put(0, 5).put(15, 4);
    for &i in &CLEN_ORDER {
        b.put(clens[i].into(), 3);
    }
    b.put(0, 16);
    corrupt(&b.bytes);
    // Over-subscribed literal/length code: three codes of one bit.
    let mut over = lit.clone();
    over[98] = 1;
    let (b, _, _) = dynamic_header(&complete_clens(), &over, &[1]);
    corrupt(&b.bytes);
    // Incomplete literal/length code: two codes of two bits.
    let mut incomplete = lit.clone();
    incomplete[97] = 2;
    incomplete[256] = 2;
    let (b, _, _) = dynamic_header(&complete_clens(), &incomplete, &[1]);
    corrupt(&b.bytes);
    // Over-subscribed and incomplete distance codes.
    let (b, _, _) = dynamic_header(&complete_clens(), &lit, &[1, 1, 1]);
    corrupt(&b.bytes);
    let (b, _, _) = dynamic_header(&complete_clens(), &lit, &[2, 2]);
    corrupt(&b.bytes);
    // No end-of-block code: the block could never end.
    let mut no_end = vec![0u8; 257];
    no_end[97] = 1;
    no_end[98] = 1;
    let (b, _, _) = dynamic_header(&complete_clens(), &no_end, &[1]);
    corrupt(&b.bytes);
}

#[test]
fn malformed_repeat_codes() {
    let clens = complete_clens();
    let codes = canonical(&clens);
    let header = |b: &mut Bits| {
        b.put(1, 1).put(2, 2).put(0, 5).put(0, 5).put(15, 4);
        for &i in &CLEN_ORDER {
            b.put(clens[i].into(), 3);
        }
    };
    // Code 16 (repeat the previous length) with no previous length.
    let mut b = Bits::default();
    header(&mut b);
    b.code(codes[16].0, codes[16].1).put(0, 2);
    b.put(0, 32);
    corrupt(&b.bytes);
    // Code 18 (11..=138 zeros) running past the 258 lengths announced.
    let mut b = Bits::default();
    header(&mut b);
    b.code(codes[18].0, codes[18].1).put(127, 7); // 138 zeros
    b.code(codes[18].0, codes[18].1).put(127, 7); // 276 > 258
    b.put(0, 32);
    corrupt(&b.bytes);
}

#[test]
fn malformed_symbols_and_distances() {
    // Length symbols 286 and 287 exist in the fixed code but are invalid.
    for symbol in [286, 287] {
        let mut b = Bits::default();
        b.put(1, 1)
            .put(1, 2)
            .fixed(97)
            .fixed(symbol)
            .code(0, 5)
            .fixed(256);
        corrupt(&b.bytes);
    }
    // Distance symbols 30 and 31.
    for symbol in [30, 31] {
        let mut b = Bits::default();
        b.put(1, 1)
            .put(1, 2)
            .fixed(97)
            .fixed(257)
            .code(symbol, 5)
            .fixed(256);
        corrupt(&b.bytes);
    }
    // A distance further back than anything written: one byte, then 2 back.
    let mut b = Bits::default();
    b.put(1, 1)
        .put(1, 2)
        .fixed(97)
        .fixed(257)
        .code(1, 5)
        .fixed(256);
    corrupt(&b.bytes);
    // ... also at the very start of the stream (distance 1, nothing yet).
    let mut b = Bits::default();
    b.put(1, 1).put(1, 2).fixed(258).code(0, 5).fixed(256);
    corrupt(&b.bytes);
    // Beyond a 512-byte window, though the stream itself is fine: a length
    // of 3 from 600 back, after 600 stored bytes.
    let mut b = Bits::default();
    b.put(0, 1)
        .put(0, 2)
        .put(0, 5)
        .put(600, 16)
        .put(!600u32 & 0xffff, 16);
    for i in 0..600u32 {
        b.put(i % 251, 8);
    }
    b.put(1, 1)
        .put(1, 2)
        .fixed(257)
        .code(18, 5)
        .put(600 - 513, 8)
        .fixed(256);
    let mut big = Inflater15::new(false, u64::MAX);
    let got = inflate_whole(&mut big, &b.bytes).unwrap();
    assert_eq!(got.len(), 603);
    assert_eq!(got[600..], got[..3]);
    let mut small = Inflater9::new(false, u64::MAX);
    assert_eq!(
        inflate_whole(&mut small, &b.bytes),
        Err(InflateError::Corrupt)
    );
}

#[test]
fn truncated_streams_are_corrupt_never_a_panic() {
    let data = &corpus(3000, 17)[3];
    for level in [1, 6, 9] {
        let msg = miniz_messages(std::slice::from_ref(data), level).remove(0);
        for cut in (0..msg.len()).step_by(7) {
            let mut inf = Inflater15::new(false, u64::MAX);
            // A stream cut short may end where a block ends; only check that
            // what comes out is a prefix of the data.
            match inflate_whole(&mut inf, &msg[..cut]) {
                Ok(got) => assert!(data.starts_with(&got)),
                Err(e) => assert_eq!(e, InflateError::Corrupt),
            }
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        input in proptest::collection::vec(any::<u8>(), 0..600),
        out in 1usize..300,
        split in 0usize..600,
    ) {
        let split = split.min(input.len());
        let mut inf = Inflater9::new(false, 1 << 16);
        let r = inflate_chunks(&mut inf, &[&input[..split], &input[split..]], &mut || out);
        // Whatever it is, miniz_oxide accepts a valid one alike.
        if let Ok(got) = r {
            let mut with_tail = input.clone();
            with_tail.extend_from_slice(&TAIL);
            if let Ok(reference) = decompress_to_vec(&with_tail) {
                prop_assert_eq!(got, reference);
            }
        }
    }

    #[test]
    fn random_data_round_trips_through_miniz(
        data in proptest::collection::vec(0u8..8, 0..3000),
        level in 0u8..=9,
        cuts in proptest::collection::vec(any::<u16>(), 0..5),
        out in 1usize..2000,
    ) {
        let msg = miniz_messages(std::slice::from_ref(&data), level).remove(0);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c as usize % (msg.len() + 1)).collect();
        cuts.sort();
        let mut chunks = Vec::new();
        let mut at = 0;
        for cut in cuts.into_iter().chain([msg.len()]) {
            chunks.push(&msg[at..cut]);
            at = cut;
        }
        let mut inf = Inflater15::new(false, u64::MAX);
        prop_assert_eq!(inflate_chunks(&mut inf, &chunks, &mut || out).unwrap(), data);
    }
}
