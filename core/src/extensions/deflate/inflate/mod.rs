//! Streaming permessage-deflate decompression (RFC 7692 §7.2.2) with the
//! crate's own DEFLATE decoder (RFC 1951; `decoder.rs`, `huffman.rs`).
//!
//! The decoder writes into a power-of-two window owned by the [`Inflater`]
//! (it doubles as the LZ77 history), and bytes are copied from there into
//! the caller's output as room allows. Input is the message payload, already
//! unmasked, in chunks of any size; output buffers may be of any size, down
//! to one byte. The decoder's state is about 2.1 KiB (Huffman codes kept as
//! canonical tables of 16-bit words, with a 256-word lookup table each for
//! the codes of up to 8 bits) and the whole inflater is built by a
//! `const fn`, so it can live in a `static`.
//!
//! # Errors and close codes
//!
//! * [`InflateError::Corrupt`]: not a valid DEFLATE stream (bad block type,
//!   bad Huffman code, a distance further back than the history the window
//!   holds). RFC 7692 §8 only says to _Fail the WebSocket Connection_; we
//!   answer **1007** (invalid frame payload data), the code RFC 6455 §7.4.1
//!   gives to "data within a message that was not consistent with the type
//!   of the message".
//! * [`InflateError::TooBig`]: the decompressed message passed
//!   `max_output`: **1009** (message too big).
//!
//! Errors are reported in stream order: the decompressed bytes that came
//! before the error (up to `max_output` for [`InflateError::TooBig`]) are
//! delivered first, and the error is returned by the first call that has
//! nothing left to deliver. So a caller validating each chunk (UTF-8) sees
//! the same first error however input and output are chunked. After an
//! error the inflater stays failed and returns the same error.
//!
//! # What is not detected
//!
//! Distances further back than the history are errors: beyond the window,
//! before the first byte of the stream, or (under `no_context_takeover`)
//! into a previous message. Bytes after a final (BFINAL) block are skipped, as zlib-based
//! receivers do; the next message then starts a new DEFLATE stream.
//!
//! # Where a message must end
//!
//! A sender flushes each message to a block boundary and strips the four
//! bytes of the empty stored block the flush ends with (RFC 7692 §7.2.1); the
//! receiver appends them again (§7.2.2). So once the tail is in, the
//! decoder must stand exactly between two blocks (or past a final
//! block). If it stands inside a block instead — an empty compressed message,
//! whose tail alone opens a stored block it cannot finish, or data that stops
//! mid-block — the message is [`InflateError::Corrupt`], reported at once
//! rather than left for the next message to trip over with the wrong state.

mod decoder;
mod huffman;

use core::borrow::{Borrow, BorrowMut};

use super::storage::{Inline, Storage};
use decoder::{Decoder, Status};

use crate::CloseCode;

/// The bytes a sender strips from the end of each message and the receiver
/// appends again (RFC 7692 §7.2.1–7.2.2): an empty stored block's LEN/NLEN.
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Window size in bytes for `bits` (9..=15; other values are clamped).
pub const fn window_size(bits: u8) -> usize {
    let bits = if bits < 9 {
        9
    } else if bits > 15 {
        15
    } else {
        bits
    };
    1 << bits
}

/// An inflater for windows of up to 2^9 bytes (about 2.7 KiB in all).
pub type Inflater9 = Inflater<512>;
/// An inflater for windows of up to 2^12 bytes.
pub type Inflater12 = Inflater<4096>;
/// An inflater for any peer (2^15 bytes, the RFC 7692 default).
pub type Inflater15 = Inflater<32768>;

/// Why a compressed message was refused; see the module doc for the codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// Not a valid DEFLATE stream: close with 1007.
    Corrupt,
    /// The decompressed message grew past `max_output`: close with 1009.
    TooBig,
}

impl InflateError {
    /// The close code to fail the connection with.
    pub fn close_code(&self) -> CloseCode {
        match self {
            InflateError::Corrupt => CloseCode::INVALID_PAYLOAD,
            InflateError::TooBig => CloseCode::MESSAGE_TOO_BIG,
        }
    }
}

/// The error an inflater stopped at, if any. Its own type rather than an
/// `Option<InflateError>` so that "none" is stored as zero: a state built
/// by [`Inflater::new_const`] is then all zeros, and a `static` holding one
/// takes no space in flash (`.bss`, not `.data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Fault {
    None = 0,
    Corrupt,
    TooBig,
}

impl Fault {
    fn error(self) -> Option<InflateError> {
        match self {
            Fault::None => None,
            Fault::Corrupt => Some(InflateError::Corrupt),
            Fault::TooBig => Some(InflateError::TooBig),
        }
    }
}

/// Progress of one [`Inflater::inflate`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inflated {
    /// Input bytes used; call again with the rest.
    pub consumed: usize,
    /// Decompressed bytes written to the front of the output.
    pub written: usize,
    /// The message is complete: `fin` was given, every input byte was used
    /// and every decompressed byte delivered. The next call starts the next
    /// message.
    pub done: bool,
}

/// A permessage-deflate decompressor for one direction of one connection.
///
/// `WINDOW` is the history it keeps, a power of two from 512 to 32768: at
/// least `2^inflate_window_bits` of the agreement
/// ([`super::Directions::inflate_window_bits`]). Checked at compile time.
///
/// Use: for each frame payload chunk of a compressed message call
/// [`inflate`](Self::inflate) with `fin` set on the message's last frame,
/// until the chunk is consumed (and, at the end, until `done`), handing each
/// `written` prefix of the output to the application.
#[derive(Clone)]
pub struct Inflater<const WINDOW: usize, S: Storage = Inline> {
    decoder: Decoder,
    window: S::Bytes<WINDOW>,
    /// Where the decoder writes next in `window`.
    pos: usize,
    /// Decompressed bytes not yet delivered: `window[pos - pending..pos]`.
    pending: usize,
    /// How much of [`TAIL`] the decoder has taken this message.
    tail_fed: usize,
    /// The peer ended the DEFLATE stream (BFINAL) inside this message.
    stream_done: bool,
    /// The decoder stopped with input it has not decoded yet (its output
    /// was full); false once it stops for want of input.
    undecoded: bool,
    /// Decompressed bytes of the current message so far.
    message_len: u64,
    max_output: u64,
    no_context_takeover: bool,
    failed: Fault,
}

impl<const WINDOW: usize, S: Storage> core::fmt::Debug for Inflater<WINDOW, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Inflater")
            .field("window", &WINDOW)
            .field("pending", &self.pending)
            .field("message_len", &self.message_len)
            .field("max_output", &self.max_output)
            .field("no_context_takeover", &self.no_context_takeover)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl<const WINDOW: usize> Inflater<WINDOW, Inline> {
    /// [`Inflater::new`] as a `const fn`, for inline storage: an inflater
    /// (or a whole connection) can then be a `static`, never built on the
    /// stack.
    pub const fn new_const(no_context_takeover: bool, max_output: u64) -> Self {
        Self::with_window([0; WINDOW], no_context_takeover, max_output)
    }
}

impl<const WINDOW: usize, S: Storage> Inflater<WINDOW, S> {
    /// Base-2 log of `WINDOW`.
    pub const WINDOW_BITS: u8 = WINDOW.trailing_zeros() as u8;

    /// Fails the build for a window that is not a power of two in
    /// 512..=32768.
    const WINDOW_OK: () = assert!(
        WINDOW.is_power_of_two() && WINDOW >= 512 && WINDOW <= 32768,
        "Inflater window must be a power of two in 512..=32768"
    );

    /// A fresh inflater. `no_context_takeover`: the peer resets its
    /// compressor after every message (so do we). `max_output`: the largest
    /// decompressed message accepted.
    // Inlined, so that the optimizer can write the state where the caller
    // keeps it rather than into a temporary that is then moved there.
    #[inline(always)]
    pub fn new(no_context_takeover: bool, max_output: u64) -> Self {
        Self::with_window(S::bytes::<WINDOW>(), no_context_takeover, max_output)
    }

    /// A fresh inflater around `window`: the one constructor behind `new`
    /// and `new_const`.
    #[inline(always)]
    const fn with_window(
        window: S::Bytes<WINDOW>,
        no_context_takeover: bool,
        max_output: u64,
    ) -> Self {
        let () = Self::WINDOW_OK;
        Self {
            decoder: Decoder::new(),
            window,
            pos: 0,
            pending: 0,
            tail_fed: 0,
            stream_done: false,
            undecoded: false,
            message_len: 0,
            max_output,
            no_context_takeover,
            failed: Fault::None,
        }
    }

    /// Bytes held in allocations outside the value (heap storage only).
    pub(crate) fn heap_bytes(&self) -> usize {
        if S::HEAP {
            let window: &[u8] = self.window.borrow();
            window.len()
        } else {
            0
        }
    }

    /// Whether this inflater can decode a peer compressing with `bits`.
    pub fn supports(bits: u8) -> bool {
        window_size(bits) <= WINDOW
    }

    /// Changes the decompressed-size limit (from the next byte on).
    pub fn set_max_output(&mut self, max_output: u64) {
        self.max_output = max_output;
    }

    /// Decompressed bytes of the current message so far (delivered or not).
    pub fn message_len(&self) -> u64 {
        self.message_len
    }

    /// Decompressed bytes waiting for room in a caller's output.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// The decoder holds input it has not decoded yet (it stopped when the
    /// output filled up): the next [`Self::inflate`] call, even without
    /// input, has more to deliver.
    pub fn holds_undecoded(&self) -> bool {
        self.undecoded && !self.stream_done
    }

    /// An error was found behind bytes not yet delivered: the next
    /// [`Self::inflate`] call, with or without input, reports it.
    pub fn has_deferred_error(&self) -> bool {
        self.failed != Fault::None
    }

    /// Sets the agreement's takeover flag (`no_context_takeover`: the peer
    /// resets its compressor after every message) and drops all state, in
    /// place: for an inflater made by [`Self::new_const`] before the
    /// handshake agreed on anything.
    pub fn configure(&mut self, no_context_takeover: bool) {
        self.no_context_takeover = no_context_takeover;
        self.reset();
    }

    /// Drops all state: the next byte starts a fresh stream and message.
    pub fn reset(&mut self) {
        self.decoder.reset();
        self.undecoded = false;
        self.pos = 0;
        self.pending = 0;
        self.tail_fed = 0;
        self.stream_done = false;
        self.message_len = 0;
        self.failed = Fault::None;
    }

    /// Decompresses `input` (a chunk of the current message's payload) into
    /// `output`. `fin`: `input` ends the message (the [`TAIL`] is appended
    /// after it). Stops when the output is full or the input is used up;
    /// never writes more than `max_output` bytes for one message.
    pub fn inflate(
        &mut self,
        input: &[u8],
        output: &mut [u8],
        fin: bool,
    ) -> Result<Inflated, InflateError> {
        let mut consumed = 0;
        let mut written = 0;
        loop {
            written += self.drain(output.get_mut(written..).unwrap_or_default());
            if self.pending > 0 || written == output.len() && !output.is_empty() {
                break; // output full; what is left waits in the window
            }
            if let Some(e) = self.failed.error() {
                if written == 0 {
                    return Err(e);
                }
                break; // the bytes before the error first, the error next call
            }
            if self.pos >= WINDOW {
                self.pos = 0;
            }
            let rest = input.get(consumed..).unwrap_or_default();
            let tail = TAIL.get(self.tail_fed..).unwrap_or_default();
            let (src, from_tail) = if !rest.is_empty() {
                if self.stream_done {
                    // Bytes after a final block are ignored, like zlib's
                    // `unused_data` (RFC 7692 §7.2.3.4 appends an empty
                    // block header after one).
                    consumed = input.len();
                    continue;
                }
                (rest, false)
            } else if self.stream_done {
                break;
            } else if self.undecoded {
                // Bits in the decoder's buffer, or a match, still to finish.
                (rest, false)
            } else if fin && !tail.is_empty() {
                (tail, true)
            } else {
                break;
            };
            let window: &mut [u8] = self.window.borrow_mut();
            let step = self.decoder.decode(src, window, self.pos);
            if from_tail {
                self.tail_fed += step.used;
            } else {
                consumed += step.used;
            }
            self.pos += step.made;
            self.pending += step.made;
            self.message_len = self.message_len.saturating_add(step.made as u64);
            if self.message_len > self.max_output {
                // Deliver up to the limit, never past it.
                let excess = self.message_len - self.max_output;
                let keep = (self.pending as u64).saturating_sub(excess);
                self.pending = usize::try_from(keep).unwrap_or(0);
                self.failed = Fault::TooBig;
                continue;
            }
            self.undecoded = step.status != Status::NeedInput;
            match step.status {
                Status::Done => self.stream_done = true,
                Status::Corrupt => self.failed = Fault::Corrupt,
                // The decoder stops with room left only for want of input;
                // a full stop that wrote nothing would loop for ever.
                Status::OutputFull if step.made == 0 => self.failed = Fault::Corrupt,
                Status::OutputFull | Status::NeedInput => {}
            }
            if self.tail_fed == TAIL.len()
                && !self.undecoded
                && !self.stream_done
                && !self.decoder.between_blocks()
            {
                // The whole tail is in, every bit of it decoded, and the
                // decoder is inside a block.
                self.failed = Fault::Corrupt;
            }
        }
        let done = fin
            && self.failed == Fault::None
            && consumed == input.len()
            && self.pending == 0
            && (self.stream_done || (self.tail_fed == TAIL.len() && !self.undecoded));
        if done {
            self.end_message();
        }
        Ok(Inflated {
            consumed,
            written,
            done,
        })
    }

    /// Copies pending bytes to `out`; returns how many.
    fn drain(&mut self, out: &mut [u8]) -> usize {
        let n = self.pending.min(out.len());
        let start = self.pos - self.pending;
        if let (Some(dst), Some(src)) =
            (out.get_mut(..n), self.window.borrow().get(start..start + n))
        {
            dst.copy_from_slice(src);
            self.pending -= n;
            n
        } else {
            0
        }
    }

    fn end_message(&mut self) {
        self.message_len = 0;
        self.tail_fed = 0;
        if self.stream_done || self.no_context_takeover {
            // A final block ends the DEFLATE stream: the next message starts a
            // new one (the window still serves as its history unless reset).
            self.decoder.restart();
            self.stream_done = false;
            self.undecoded = false;
        }
        if self.no_context_takeover {
            self.decoder.reset();
            self.pos = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn hex(s: &str) -> Vec<u8> {
        let s: std::string::String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Feeds `input` split at `split`, with output buffers of `out_size`,
    /// until the message is done; returns the decompressed bytes.
    fn run<const W: usize>(
        inf: &mut Inflater<W>,
        input: &[u8],
        split: usize,
        out_size: usize,
    ) -> Result<Vec<u8>, InflateError> {
        let mut got = Vec::new();
        let mut out = std::vec![0u8; out_size];
        let (first, second) = input.split_at(split);
        for (chunk, fin) in [(first, false), (second, true)] {
            let mut pos = 0;
            loop {
                let r = inf.inflate(&chunk[pos..], &mut out, fin)?;
                assert!(r.written <= out.len());
                got.extend_from_slice(&out[..r.written]);
                pos += r.consumed;
                if r.done {
                    assert!(fin && pos == chunk.len());
                    return Ok(got);
                }
                if !fin && pos == chunk.len() && r.written < out.len() {
                    break;
                }
                assert!(r.consumed > 0 || r.written > 0, "no progress");
            }
        }
        unreachable!("fin chunk ends the message")
    }

    /// Every split of the input and every output size from 1 to len + 2.
    fn check_all_splits(input: &[u8], expected: &[u8]) {
        for split in 0..=input.len() {
            for out_size in 1..=expected.len() + 2 {
                let mut inf = Inflater15::new(false, 1 << 20);
                let got = run(&mut inf, input, split, out_size).unwrap();
                assert_eq!(got, expected, "split {split}, out {out_size}");
            }
        }
    }

    #[test]
    fn a_message_must_end_at_a_block_boundary() {
        // Empty payload: the tail alone opens a stored block it cannot end.
        let mut inf = Inflater15::new(false, 1 << 20);
        assert_eq!(run(&mut inf, &[], 0, 16), Err(InflateError::Corrupt));
        // "Hello" cut inside its fixed-Huffman block.
        let mut inf = Inflater15::new(false, 1 << 20);
        assert_eq!(
            run(&mut inf, &hex("f2 48 cd"), 1, 16),
            Err(InflateError::Corrupt)
        );
        // The RFC's empty message is one stored block header: complete, and
        // the window is intact for the next message.
        let mut inf = Inflater15::new(false, 1 << 20);
        assert_eq!(run(&mut inf, &hex("00"), 0, 16).unwrap(), b"");
        assert_eq!(
            run(&mut inf, &hex("f2 48 cd c9 c9 07 00"), 3, 16).unwrap(),
            b"Hello"
        );
    }

    #[test]
    fn rfc7692_single_fixed_block() {
        check_all_splits(&hex("f2 48 cd c9 c9 07 00"), b"Hello");
    }

    #[test]
    fn rfc7692_stored_block() {
        check_all_splits(&hex("00 05 00 fa ff 48 65 6c 6c 6f 00"), b"Hello");
    }

    #[test]
    fn rfc7692_two_blocks() {
        check_all_splits(&hex("f2 48 05 00 00 00 ff ff ca c9 c9 07 00"), b"Hello");
    }

    #[test]
    fn rfc7692_bfinal_block_then_next_message() {
        let msg = hex("f3 48 cd c9 c9 07 00 00");
        check_all_splits(&msg, b"Hello");
        // After a final block, the next message is a new stream that may
        // still use the window (context takeover).
        let mut inf = Inflater15::new(false, 1 << 20);
        assert_eq!(run(&mut inf, &msg, 3, 64).unwrap(), b"Hello");
        assert_eq!(
            run(&mut inf, &hex("f2 00 11 00 00"), 2, 64).unwrap(),
            b"Hello"
        );
    }

    #[test]
    fn rfc7692_shared_window_second_message() {
        let first = hex("f2 48 cd c9 c9 07 00");
        let second = hex("f2 00 11 00 00");
        for split in 0..=second.len() {
            for out_size in 1..=7 {
                let mut inf = Inflater9::new(false, 1 << 20);
                assert_eq!(run(&mut inf, &first, 0, 16).unwrap(), b"Hello");
                let got = run(&mut inf, &second, split, out_size).unwrap();
                assert_eq!(got, b"Hello", "split {split}, out {out_size}");
            }
        }
    }

    #[test]
    fn no_context_takeover_resets_between_messages() {
        let first = hex("f2 48 cd c9 c9 07 00");
        let mut inf = Inflater15::new(true, 1 << 20);
        for _ in 0..3 {
            assert_eq!(run(&mut inf, &first, 4, 3).unwrap(), b"Hello");
        }
        // A back-reference into the previous message finds no history: the
        // window still holds it, but the peer promised not to use it.
        let second = hex("f2 00 11 00 00");
        assert_eq!(run(&mut inf, &second, 0, 16), Err(InflateError::Corrupt));
        // With takeover the same bytes are "Hello".
        let mut inf = Inflater15::new(false, 1 << 20);
        run(&mut inf, &first, 0, 16).unwrap();
        assert_eq!(run(&mut inf, &second, 0, 16).unwrap(), b"Hello");
    }

    #[test]
    fn empty_message_and_empty_chunks() {
        let mut inf = Inflater9::new(false, 0);
        let mut out = [0u8; 4];
        let r = inf.inflate(&[], &mut out, false).unwrap();
        assert_eq!((r.consumed, r.written, r.done), (0, 0, false));
        let r = inf.inflate(&[0x00], &mut out, true).unwrap();
        assert_eq!((r.consumed, r.written, r.done), (1, 0, true));
        // A zero-length output buffer still makes progress on input.
        let mut inf = Inflater9::new(false, 100);
        let r = inf
            .inflate(&hex("f2 48 cd c9 c9 07 00"), &mut [], true)
            .unwrap();
        assert!(!r.done);
        let r = inf.inflate(&hex("f2 48 cd c9 c9 07 00")[r.consumed..], &mut out, true);
        assert_eq!(r.unwrap().written, 4);
    }

    #[test]
    fn corrupt_input_is_1007_and_sticky() {
        // BTYPE 11 is reserved.
        let mut inf = Inflater15::new(false, 1 << 20);
        let mut out = [0u8; 64];
        let e = inf
            .inflate(&[0xff, 0xff, 0xff], &mut out, true)
            .unwrap_err();
        assert_eq!(e, InflateError::Corrupt);
        assert_eq!(e.close_code(), CloseCode::INVALID_PAYLOAD);
        assert_eq!(inf.inflate(&hex("00"), &mut out, true), Err(e));
        inf.reset();
        assert!(inf.inflate(&hex("00"), &mut out, true).unwrap().done);
        // A stored block whose NLEN does not match LEN.
        let mut inf = Inflater15::new(false, 1 << 20);
        let bad = hex("00 05 00 fa fe 48 65 6c 6c 6f 00");
        assert_eq!(
            inf.inflate(&bad, &mut out, true),
            Err(InflateError::Corrupt)
        );
    }

    #[test]
    fn distance_beyond_the_window_is_corrupt() {
        // 600 distinct bytes then a copy of the first four: distance 600.
        let mut rng = crate::extensions::deflate::test_rng::XorShift::new(0x2545_f491);
        let data: Vec<u8> = (0..600).map(|_| (rng.next_u32() >> 24) as u8).collect();
        // Message 1 is stored; message 2 repeats its start: a distance of 600.
        let mut c = crate::extensions::deflate::Compressor15::new(15, false);
        let mut out = std::vec![0u8; 2048];
        let r1 = c.compress(&data, &mut out, true);
        let m1 = out[..r1.written].to_vec();
        let r2 = c.compress(&data[..8], &mut out, true);
        let m2 = out[..r2.written].to_vec();
        assert!(m2.len() < 8, "{m2:?}");
        let mut small = Inflater9::new(false, 1 << 20);
        assert_eq!(run(&mut small, &m1, 0, 4096).unwrap(), data);
        assert_eq!(run(&mut small, &m2, 0, 4096), Err(InflateError::Corrupt));
        let mut big = Inflater::<1024>::new(false, 1 << 20);
        assert_eq!(run(&mut big, &m1, 0, 4096).unwrap(), data);
        assert_eq!(run(&mut big, &m2, 0, 4096).unwrap(), &data[..8]);
    }

    #[test]
    fn zip_bomb_stops_at_the_limit() {
        let zeros = std::vec![0u8; 1 << 20];
        let mut c = crate::extensions::deflate::Compressor15::new(15, false);
        let mut bomb = std::vec![0u8; 1 << 16];
        let r = c.compress(&zeros, &mut bomb, true);
        assert!(r.done && r.consumed == zeros.len());
        bomb.truncate(r.written);
        assert!(bomb.len() < 8 * 1024, "{}", bomb.len());

        let limit = 64 * 1024;
        let mut inf = Inflater15::new(false, limit);
        let mut out = [0u8; 4096];
        let mut delivered = 0u64;
        let mut pos = 0;
        let err = loop {
            match inf.inflate(&bomb[pos..], &mut out, true) {
                Ok(r) => {
                    assert!(!r.done);
                    pos += r.consumed;
                    delivered += r.written as u64;
                    assert!(delivered <= limit);
                }
                Err(e) => break e,
            }
        };
        assert_eq!(err, InflateError::TooBig);
        assert_eq!(err.close_code(), CloseCode::MESSAGE_TOO_BIG);
        assert!(delivered <= limit);
        // The same message under a large enough limit.
        let mut inf = Inflater15::new(false, 1 << 20);
        let got = run(&mut inf, &bomb, bomb.len() / 2, 70_000).unwrap();
        assert_eq!(got.len(), 1 << 20);
        assert!(got.iter().all(|&b| b == 0));
    }

    #[test]
    fn limit_is_per_message() {
        let mut inf = Inflater9::new(false, 5);
        let msg = hex("f2 48 cd c9 c9 07 00");
        for _ in 0..4 {
            assert_eq!(run(&mut inf, &msg, 2, 2).unwrap(), b"Hello");
            assert_eq!(inf.message_len(), 0);
        }
        inf.set_max_output(4);
        assert_eq!(run(&mut inf, &msg, 2, 2), Err(InflateError::TooBig));
    }

    #[test]
    fn window_size_clamps() {
        assert_eq!(window_size(8), 512);
        assert_eq!(window_size(12), 4096);
        assert_eq!(window_size(20), 32768);
        assert!(Inflater9::supports(8) && Inflater9::supports(9) && !Inflater9::supports(10));
        assert_eq!(Inflater12::WINDOW_BITS, 12);
    }
}
