//! Decode cost per frame on a busy machine: the best of many repetitions.
//!
//! ```text
//! cargo run --release -p wsproto-benches --example decode_min [-- REPS]
//! ```
//!
//! Criterion reports a mean over wall-clock samples, which a shared machine
//! inflates whenever the bench thread is descheduled. One repetition here
//! decodes a whole buffer of frames (4,096 masked frames of 16 B, or 512 of
//! 1 KiB) in tens of microseconds, far less than a scheduler time slice, so
//! the fastest of a few hundred repetitions is a run that nothing
//! interrupted. Each repetition decodes a fresh copy of the buffer, made
//! outside the timing, with `receive` once per frame and with
//! `receive_each` over the whole buffer; `memcpy` of the same bytes is the
//! floor. Printed: the minimum and the median, in ns per frame.

use std::hint::black_box;
use std::ops::ControlFlow;
use std::time::Instant;
use wsproto::frame::{encode_frame, FrameHeader, OpCode};
use wsproto::{Config, Connection, Event, Role};

/// `count` masked frames of `payload`, each with its own key.
fn frames(payload: &[u8], count: usize, opcode: OpCode) -> Vec<u8> {
    let mut out = vec![0u8; count * (payload.len() + 14)];
    let mut len = 0;
    let mut key = 0x9e37_79b9u32;
    for _ in 0..count {
        key = key.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask: Some(key.to_ne_bytes()),
            payload_len: 0,
        };
        len += encode_frame(header, payload, &mut out[len..]).expect("room");
    }
    out.truncate(len);
    out
}

/// Mostly ASCII text with multi-byte code points, `len` bytes (ASCII at 16 B).
fn text(len: usize) -> Vec<u8> {
    let pattern = "The quick brown fox — señor Müller paid 5 € for 🦊 emoji; ";
    let mut s = String::new();
    while s.len() < len {
        s.push_str(pattern);
    }
    let mut cut = len;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    while s.len() < len {
        s.push('a');
    }
    s.into_bytes()
}

fn count_fin(event: Event<'_>, frames: &mut usize) {
    match event {
        Event::Text { data, fin } => {
            black_box(data);
            *frames += usize::from(fin);
        }
        Event::Binary { data, fin } => {
            black_box(data);
            *frames += usize::from(fin);
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn by_receive(conn: &mut Connection, buf: &mut [u8]) -> usize {
    let (mut pos, mut frames) = (0, 0);
    loop {
        let r = conn.receive(&mut buf[pos..]).expect("valid");
        match r.event {
            Some(event) => count_fin(event, &mut frames),
            None if r.consumed == 0 => return frames,
            None => {}
        }
        pos += r.consumed;
    }
}

fn by_receive_each(conn: &mut Connection, buf: &mut [u8]) -> usize {
    let (mut pos, mut frames) = (0, 0);
    loop {
        let consumed = conn
            .receive_each(&mut buf[pos..], |event| {
                count_fin(event, &mut frames);
                ControlFlow::Continue(())
            })
            .expect("valid");
        if consumed == 0 {
            return frames;
        }
        pos += consumed;
    }
}

/// Minimum and median of `reps` timings of `run` on a fresh copy of `wire`.
fn time(reps: usize, wire: &[u8], mut run: impl FnMut(&mut [u8])) -> (f64, f64) {
    let mut buf = wire.to_vec();
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            buf.copy_from_slice(wire);
            let start = Instant::now();
            run(black_box(&mut buf));
            start.elapsed().as_nanos() as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[0], times[reps / 2])
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(400);
    let mut config = Config::default();
    config.limits.max_fragments = 1 << 20;
    println!("ns per frame, min / median of {reps} repetitions");
    for (size, count) in [(16usize, 4096usize), (1024, 512)] {
        for is_text in [false, true] {
            let (payload, opcode) = if is_text {
                (text(size), OpCode::Text)
            } else {
                (vec![0x5a; size], OpCode::Binary)
            };
            let wire = frames(&payload, count, opcode);
            let mut conn = Connection::new(Role::Server, config);
            let per = |(min, median): (f64, f64)| {
                format!("{:7.2} / {:7.2}", min / count as f64, median / count as f64)
            };
            let each = time(reps, &wire, |b| {
                assert_eq!(by_receive_each(&mut conn, b), count)
            });
            let single = time(reps, &wire, |b| assert_eq!(by_receive(&mut conn, b), count));
            let mut sink = vec![0u8; wire.len()];
            let memcpy = time(reps, &wire, |b| {
                sink.copy_from_slice(b);
                black_box(&mut sink);
            });
            let kind = if is_text { "text" } else { "binary" };
            println!(
                "{kind:6} {size:5} B  receive_each {}  receive {}  memcpy {}",
                per(each),
                per(single),
                per(memcpy)
            );
        }
    }
}
