//! The driver without I/O: handshake leftovers, reassembly, the memory budget, lingering close and the timers, fed by hand.

use super::*;
use rand_core::SeedableRng;
use wsproto::{Duration, Violation};

/// A driver after a handshake that left `leftover` unread, with the
/// default configuration and a fixed RNG.
fn driver(role: Role, leftover: Vec<u8>, budget: Option<crate::MemoryBudget>) -> Driver {
    driver_with(role, Config::default(), leftover, budget)
}

/// [`driver`] with a configuration of the test's own.
fn driver_with(
    role: Role,
    config: Config,
    leftover: Vec<u8>,
    budget: Option<crate::MemoryBudget>,
) -> Driver {
    let done = Done {
        protocol: None,
        leftover,
        response: Vec::new(),
        path: "/".into(),
        deflate: None,
        budget,
        shared: None,
        level: wsproto::extensions::deflate::CompressionLevel::Default,
    };
    Driver::new(role, config, StdRng::from_seed([7; 32]), done).unwrap()
}

/// A server driver whose first input is a binary frame header declaring
/// 80 MiB (above the default 16 MiB limit).
fn failing_server() -> Driver {
    let header = vec![0x82, 0xff, 0, 0, 0, 0, 0x05, 0, 0, 0, 1, 2, 3, 4];
    driver(Role::Server, header, None)
}

/// Writes everything pending and shuts when asked, as the I/O layers do.
fn write_and_shut(d: &mut Driver) {
    let n = d.pending().len();
    d.advance(n);
    if d.wants_shutdown() {
        d.mark_shut();
    }
}

fn is_too_large(outcome: Option<Result<Message, Error>>) -> bool {
    matches!(
        outcome,
        Some(Err(Error::Protocol(wsproto::Error::Protocol(
            Violation::FrameTooLarge
        ))))
    )
}

#[test]
fn lingering_close_discards_into_a_fixed_window_until_the_deadline() {
    let start = Instant::from_secs(100);
    let mut d = failing_server();
    assert!(matches!(d.step(start), Step::Continue));
    assert_eq!(&d.pending()[..4], &[0x88, d.pending()[1], 0x03, 0xf1]); // Close 1009
    write_and_shut(&mut d);
    assert!(d.take_outcome().is_none(), "held while draining");
    // 256 MiB of the peer's frame: read into the same window, never kept.
    let mut now = start;
    for _ in 0..4096 {
        let Step::Read(Some(wait)) = d.step(now) else {
            panic!("expected a bounded read");
        };
        assert!(wait <= std::time::Duration::from_secs(5));
        let n = d.spare().len();
        assert_eq!(n, RX_BUFFER);
        d.on_read(n);
        assert!(d.take_outcome().is_none());
        now += Duration::from_millis(1);
    }
    assert_eq!((d.rx.len(), d.rx_len), (RX_BUFFER, 0));
    // The peer never stops: cut off at close_timeout after the drain began.
    assert!(matches!(
        d.step(start + Duration::from_secs(5)),
        Step::Continue
    ));
    assert!(is_too_large(d.take_outcome()));
    assert!(matches!(
        d.take_outcome().or_else(|| {
            d.step(now);
            d.take_outcome()
        }),
        Some(Err(Error::ConnectionClosed))
    ));
}

#[test]
fn lingering_close_ends_at_the_peers_eof_or_a_read_error() {
    let now = Instant::from_secs(1);
    for eof in [true, false] {
        let mut d = failing_server();
        d.step(now);
        write_and_shut(&mut d);
        assert!(matches!(d.step(now), Step::Read(Some(_))));
        if eof {
            d.on_eof();
        } else {
            let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
            assert!(d.on_read_error(reset).is_ok());
        }
        assert!(is_too_large(d.take_outcome()), "eof: {eof}");
    }
}

#[test]
fn reassembly_reserves_by_the_frame_but_never_past_one_window() {
    // Binary frames announcing 1 MiB and 1000 bytes (masked, zero key),
    // 100 payload bytes of each at hand.
    let big = [0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0];
    let small = [0x82, 0xfe, 0x03, 0xe8, 0, 0, 0, 0];
    for (header, bound) in [(&big[..], 100 + RX_BUFFER), (&small[..], 1000)] {
        let mut leftover = header.to_vec();
        leftover.extend_from_slice(&[9; 100]);
        let mut d = driver(Role::Server, leftover, None);
        assert!(matches!(d.step(Instant::from_secs(1)), Step::Read(_)));
        let Some(Partial::Binary(b)) = &d.partial else {
            panic!("expected a partial binary message");
        };
        assert_eq!(b.len(), 100);
        assert!(
            b.capacity() >= bound && b.capacity() < bound + 64,
            "{}",
            b.capacity()
        );
    }
}

#[test]
fn tx_buffer_queues_in_order_and_reuses_its_room() {
    let mut tx = TxBuffer::default();
    tx.room(3).get_mut(..3).unwrap().copy_from_slice(b"abc");
    tx.commit(3);
    tx.room(2).get_mut(..2).unwrap().copy_from_slice(b"de");
    tx.commit(2);
    assert_eq!(tx.pending(), b"abcde");
    tx.advance(2);
    assert_eq!(tx.pending(), b"cde");
    tx.advance(3);
    assert_eq!(tx.pending(), b"");
    // Drained: the next frame starts at the front of the same bytes.
    let len = tx.buf.len();
    tx.room(4).get_mut(..1).unwrap().copy_from_slice(b"f");
    tx.commit(1);
    assert_eq!((tx.pending(), tx.buf.len()), (&b"f"[..], len));
    tx.advance(1);
    // A big frame grows the buffer; once written it shrinks back.
    tx.room(TX_KEEP + 1);
    tx.commit(TX_KEEP + 1);
    tx.advance(TX_KEEP + 1);
    assert_eq!(tx.buf.len(), RX_BUFFER);
}

#[test]
fn the_last_frames_get_close_timeout_when_no_core_timer_is_left() {
    // The core failed the connection: its Close is queued and it has no
    // timer left, but a peer that does not read cannot hold the write.
    let start = Instant::from_secs(100);
    let mut d = failing_server();
    d.step(start);
    assert!(!d.pending().is_empty());
    let wait = d.write_wait(start).unwrap();
    assert_eq!(wait, Some(std::time::Duration::from_secs(5)));
    let later = start + Duration::from_millis(4_999);
    assert_eq!(
        d.write_wait(later).unwrap(),
        Some(std::time::Duration::from_millis(1))
    );
    // Given up: the held failure is the caller's error.
    let outcome = d.write_wait(start + Duration::from_secs(5));
    assert!(matches!(
        outcome,
        Err(Error::Protocol(wsproto::Error::Protocol(
            Violation::FrameTooLarge
        )))
    ));
    assert!(d.pending().is_empty());
    assert!(matches!(d.send_text("x"), Err(Error::ConnectionClosed)));
}

#[test]
fn no_lingering_when_disabled() {
    let mut d = failing_server();
    d.disable_linger();
    d.step(Instant::from_secs(1));
    write_and_shut(&mut d);
    assert!(is_too_large(d.take_outcome()));
}
/// A server driver whose first input is `leftover`.
fn server_reading(leftover: Vec<u8>) -> Driver {
    driver(Role::Server, leftover, None)
}

#[test]
fn messages_already_read_come_out_before_any_write() {
    // Masked (zero key) text "a", ping "p", text "b", in one read.
    let mut input = vec![0x81, 0x81, 0, 0, 0, 0, b'a'];
    input.extend_from_slice(&[0x89, 0x81, 0, 0, 0, 0, b'p']);
    input.extend_from_slice(&[0x81, 0x81, 0, 0, 0, 0, b'b']);
    let mut d = server_reading(input);
    assert_eq!(d.take_buffered(true), Some(Message::Text("a".into())));
    d.send_text("echo a").unwrap();
    let queued = d.pending().len();
    // A ping waits for the writes when only data may jump the queue.
    assert_eq!(d.take_buffered(true), None);
    assert!(d.message_ready());
    assert_eq!(d.take_buffered(false), Some(Message::Ping(b"p".to_vec())));
    assert!(d.pending().len() > queued, "the pong is queued");
    assert_eq!(d.take_buffered(true), Some(Message::Text("b".into())));
    assert_eq!(d.take_buffered(true), None);
}

#[test]
fn a_reader_may_read_while_output_waits() {
    let now = Instant::from_secs(1);
    let mut d = server_reading(Vec::new());
    d.send_binary(&[1; 100]).unwrap();
    assert!(matches!(d.step(now), Step::Continue));
    assert!(matches!(d.step_reading(now), StepAt::Read(_)));
    // At the end of file the output goes first.
    d.on_eof();
    assert!(matches!(d.step_reading(now), StepAt::Continue));
    assert!(d.take_outcome().is_none());
}

#[test]
fn tx_buffer_moves_a_queue_never_drained_to_the_front() {
    let mut tx = TxBuffer::default();
    tx.room(100).fill(1);
    tx.commit(100);
    tx.advance(60);
    tx.room(10).get_mut(..10).unwrap().fill(2);
    tx.commit(10);
    assert_eq!(tx.start, 0);
    assert_eq!(tx.pending().len(), 50);
    assert!(tx.pending()[..40].iter().all(|&b| b == 1));
    assert!(tx.pending()[40..].iter().all(|&b| b == 2));
}

/// A server driver with nothing read yet.
fn idle_server() -> Driver {
    driver(Role::Server, Vec::new(), None)
}

/// Reads `wire` into the driver as a socket would (as much as the window
/// takes per read) and runs it until it asks for more; returns the
/// messages and how large the window was at each read.
fn read_all(d: &mut Driver, wire: &[u8]) -> (Vec<Message>, Vec<usize>) {
    let mut windows = Vec::new();
    let messages = feed_in_chunks(d, wire, usize::MAX, &mut windows);
    (messages, windows)
}

fn client_frames(payloads: &[&[u8]]) -> Vec<u8> {
    let mut client =
        wsproto::Connection::with_rng(Role::Client, Config::default(), StdRng::from_seed([9; 32]));
    let mut wire = Vec::new();
    for payload in payloads {
        let mut out = vec![0u8; payload.len() + 14];
        let n = client.send_binary(payload, &mut out).unwrap();
        wire.extend_from_slice(&out[..n]);
    }
    wire
}

/// Steps `d`, writing everything it queues and collecting the messages it
/// hands out, until a step asks to read.
fn step_until_read(d: &mut Driver, now: Instant, messages: &mut Vec<Message>) {
    loop {
        let step = d.step(now);
        let n = d.pending().len();
        d.advance(n);
        if let Some(outcome) = d.take_outcome() {
            messages.push(outcome.unwrap());
        } else if let Step::Read(_) = step {
            return;
        }
    }
}

/// As [`feed_in_chunks`], with reads appended to the window's spare
/// capacity (the tokio driver's way); returns the messages and the
/// window before each read.
fn feed_appending(d: &mut Driver, mut wire: &[u8], chunk: usize) -> (Vec<Message>, Vec<usize>) {
    let (mut messages, mut windows) = (Vec::new(), Vec::new());
    let now = Instant::from_secs(1);
    loop {
        step_until_read(d, now, &mut messages);
        if wire.is_empty() {
            return (messages, windows);
        }
        let window = d.read_vec();
        windows.push(window.capacity());
        let n = (window.capacity() - window.len())
            .min(wire.len())
            .min(chunk);
        assert!(n > 0, "a read into no room");
        window.extend_from_slice(&wire[..n]);
        d.on_appended(n);
        // No zeroed room is held past the bytes read.
        assert_eq!(d.rx.len(), d.rx_len);
        wire = &wire[n..];
    }
}

#[test]
fn reads_appended_to_spare_capacity_give_the_same_messages_at_any_read_size() {
    let payloads: Vec<Vec<u8>> = [16usize, 3000, 64 * 1024, 5, 70 * 1024, 200]
        .iter()
        .zip(1u8..)
        .map(|(&n, i)| vec![i; n])
        .collect();
    let refs: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
    let wire = client_frames(&refs);
    let expected: Vec<Message> = payloads.iter().cloned().map(Message::Binary).collect();
    for chunk in [1, 7, 1000, 4096, usize::MAX] {
        let mut d = idle_server();
        d.read_by_appending();
        let (messages, windows) = feed_appending(&mut d, &wire, chunk);
        assert_eq!(messages, expected, "reads of {chunk}");
        assert!(windows.iter().all(|&w| w <= RX_BUFFER), "{chunk}");
        if chunk == usize::MAX {
            // Reads that fill the window grow it as in the zeroed mode.
            assert_eq!(windows[..2], [RX_MIN, 4 * RX_MIN]);
            assert!(windows.contains(&RX_BUFFER), "{windows:?}");
        }
    }
}

#[test]
fn a_frame_announcing_more_than_the_next_window_takes_the_largest_at_once() {
    let mut d = idle_server();
    let payload = pattern(64 * 1024);
    let (messages, windows) = read_all(&mut d, &client_frames(&[&payload]));
    assert_eq!(messages, [Message::Binary(payload.clone())]);
    // The first read holds the header: once the core knows the frame
    // still announces more than 16 KiB, the window skips that step.
    assert_eq!(windows[..3], [RX_MIN, 4 * RX_MIN, RX_BUFFER]);
    // A frame that fits the next step grows by it, as before.
    let mut d = idle_server();
    let medium = vec![7u8; 10 * 1024];
    let (messages, windows) = read_all(&mut d, &client_frames(&[&medium]));
    assert_eq!(messages, [Message::Binary(medium.clone())]);
    assert_eq!(windows[..3], [RX_MIN, 4 * RX_MIN, 16 * RX_MIN]);
}

#[test]
fn the_receive_window_grows_for_a_burst_and_shrinks_back_when_reads_get_small() {
    let mut d = idle_server();
    assert_eq!(
        d.rx.len(),
        RX_MIN,
        "an idle connection holds the small window"
    );
    // Many messages of 3,000 bytes (too short to be read in place).
    let medium: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; 3000]).collect();
    let refs: Vec<&[u8]> = medium.iter().map(|m| &m[..]).collect();
    let (messages, windows) = read_all(&mut d, &client_frames(&refs));
    assert_eq!(messages.len(), 100);
    assert!(messages
        .iter()
        .zip(&medium)
        .all(|(m, p)| *m == Message::Binary(p.clone())));
    // Each read that filled the window grew it, up to the largest.
    assert_eq!(windows[..4], [RX_MIN, 4 * RX_MIN, 16 * RX_MIN, RX_BUFFER]);
    assert_eq!(d.rx.len(), RX_BUFFER);
    // Small messages, one per read: after a few the window is small again,
    // and the transmit buffer (grown by nothing here) stays empty.
    for i in 0..RX_SHRINK_AFTER {
        let small = [i; 16];
        let (messages, _) = read_all(&mut d, &client_frames(&[&small]));
        assert_eq!(messages, [Message::Binary(small.to_vec())]);
    }
    assert_eq!(d.rx.len(), RX_MIN);
    assert_eq!(d.tx.capacity(), 0);
}

/// Feeds `wire` to `d` at most `chunk` bytes per read, as a socket
/// would; returns the messages.
fn read_in_chunks(d: &mut Driver, wire: &[u8], chunk: usize) -> Vec<Message> {
    feed_in_chunks(d, wire, chunk, &mut Vec::new())
}

/// Runs `d` until it asks for more, then reads at most `chunk` bytes of
/// `wire` into its window, until `wire` is used up; records the window's
/// size at each read in `windows` and returns the messages.
fn feed_in_chunks(
    d: &mut Driver,
    mut wire: &[u8],
    chunk: usize,
    windows: &mut Vec<usize>,
) -> Vec<Message> {
    let mut messages = Vec::new();
    let now = Instant::from_secs(1);
    loop {
        step_until_read(d, now, &mut messages);
        if wire.is_empty() {
            return messages;
        }
        windows.push(d.rx.len());
        let spare = d.spare();
        let n = spare.len().min(wire.len()).min(chunk);
        spare[..n].copy_from_slice(&wire[..n]);
        d.on_read(n);
        wire = &wire[n..];
    }
}

#[test]
fn a_large_frame_in_reads_of_any_size_is_one_message_and_the_next_follows() {
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let wire = client_frames(&[&big, b"after"]);
    for chunk in [usize::MAX, 5000, 777] {
        let mut d = idle_server();
        let messages = read_in_chunks(&mut d, &wire, chunk);
        assert_eq!(
            messages,
            [
                Message::Binary(big.clone()),
                Message::Binary(b"after".to_vec())
            ],
            "chunk {chunk}"
        );
        assert!(d.partial.is_none() && d.rx_len == 0, "chunk {chunk}");
    }
}

#[test]
fn fragments_in_reads_of_any_size_keep_a_ping_between_them() {
    let mut client =
        wsproto::Connection::with_rng(Role::Client, Config::default(), StdRng::from_seed([3; 32]));
    let parts: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i + 1; 30_000]).collect();
    let mut wire = Vec::new();
    let mut out = vec![0u8; 40_000];
    for (i, part) in parts.iter().enumerate() {
        let n = client
            .send_fragment(MessageKind::Binary, part, i == 2, &mut out)
            .unwrap();
        wire.extend_from_slice(&out[..n]);
        if i == 0 {
            client.ping(b"p").unwrap();
            let n = client.poll_transmit(&mut out).unwrap();
            wire.extend_from_slice(&out[..n]);
        }
    }
    for chunk in [usize::MAX, 4096, 1000] {
        let mut d = idle_server();
        let messages = read_in_chunks(&mut d, &wire, chunk);
        assert_eq!(
            messages,
            [
                Message::Ping(b"p".to_vec()),
                Message::Binary(parts.concat())
            ],
            "chunk {chunk}"
        );
    }
}

#[test]
fn large_text_and_binary_through_the_copying_path_in_reads_of_any_size() {
    let mut client =
        wsproto::Connection::with_rng(Role::Client, Config::default(), StdRng::from_seed([5; 32]));
    // Code points of every width, so chunks end inside them.
    let text = "aé✓𝄞".repeat(3000);
    let binary: Vec<u8> = (0..70_000u32).map(|i| (i * 31 + i / 7) as u8).collect();
    let mut out = vec![0u8; 100_000];
    let mut wire = Vec::new();
    let n = client.send_text(&text, &mut out).unwrap();
    wire.extend_from_slice(&out[..n]);
    let n = client.send_binary(&binary, &mut out).unwrap();
    wire.extend_from_slice(&out[..n]);
    for chunk in [usize::MAX, 5000, 4097, 1000] {
        let mut d = idle_server();
        let messages = read_in_chunks(&mut d, &wire, chunk);
        assert!(
            messages == [Message::Text(text.clone()), Message::Binary(binary.clone())],
            "chunk {chunk}"
        );
    }
}

#[test]
fn the_rest_of_a_window_stays_in_place_until_a_read_needs_the_room() {
    let payloads: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 3000]).collect();
    let refs: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
    let mut wire = client_frames(&refs);
    let next = client_frames(&[b"next"]);
    wire.extend_from_slice(&next[..3]); // the next frame's first bytes
    let mut d = driver(Role::Server, wire.clone(), None);
    for p in &payloads {
        assert_eq!(d.take_buffered(true), Some(Message::Binary(p.clone())));
        // Nothing moved: the window's rest is consumed from where it lies.
        assert_eq!(d.rx_len, wire.len());
    }
    assert_eq!(d.take_buffered(true), None);
    assert_eq!((d.rx_start, d.rx_len), (wire.len() - 3, wire.len()));
    // The next read moves the three bytes to the front first.
    let spare = d.spare();
    spare[..next.len() - 3].copy_from_slice(&next[3..]);
    d.on_read(next.len() - 3);
    assert_eq!((d.rx_start, d.rx_len), (0, next.len()));
    assert_eq!(
        d.take_buffered(true),
        Some(Message::Binary(b"next".to_vec()))
    );
    assert_eq!((d.rx_start, d.rx_len), (0, 0));
}

/// Pongs are queued only when a ping arrives: the flag that spares the
/// core's transmit queue a visit on every step must not lose one.
#[test]
fn a_pong_is_queued_for_every_ping_with_data_around_it() {
    let mut client =
        wsproto::Connection::with_rng(Role::Client, Config::default(), StdRng::from_seed([5; 32]));
    let mut wire = Vec::new();
    let mut out = vec![0u8; 256];
    for i in 0..3u8 {
        let n = client.send_binary(&[i; 20], &mut out).unwrap();
        wire.extend_from_slice(&out[..n]);
        client.ping(&[b'p', i]).unwrap();
        let n = client.poll_transmit(&mut out).unwrap();
        wire.extend_from_slice(&out[..n]);
    }
    let mut d = idle_server();
    let now = Instant::from_secs(1);
    let mut d_out = Vec::new();
    let mut messages = Vec::new();
    d.spare()[..wire.len()].copy_from_slice(&wire);
    d.on_read(wire.len());
    loop {
        let step = d.step(now);
        d_out.extend_from_slice(d.pending());
        let n = d.pending().len();
        d.advance(n);
        match d.take_outcome() {
            Some(outcome) => messages.push(outcome.unwrap()),
            None if matches!(step, Step::Read(_)) => break,
            None => {}
        }
    }
    assert_eq!(messages.len(), 6);
    // Three pongs, each echoing its ping, in order.
    let mut pongs = Vec::new();
    let mut rest = &d_out[..];
    while let [0x8a, len, tail @ ..] = rest {
        let len = usize::from(*len);
        pongs.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    assert!(rest.is_empty());
    assert_eq!(
        pongs,
        [b"p\x00".to_vec(), b"p\x01".to_vec(), b"p\x02".to_vec()]
    );
}

#[test]
fn an_idle_window_is_given_back_and_shared_reads_refill_it() {
    let mut d = idle_server();
    // Nothing read yet: the window stays (no small read seen).
    assert!(!d.release_idle_window());
    let (messages, _) = read_all(&mut d, &client_frames(&[b"one"]));
    assert_eq!(messages, [Message::Binary(b"one".to_vec())]);
    assert!(d.release_idle_window());
    assert!(d.rx.is_empty(), "an idle connection holds no window");
    // A read through a shared buffer: split mid-frame, then the rest.
    let mut wire = client_frames(&[b"two", b"three"]);
    d.on_read_shared(&mut wire[..5], RX_MIN);
    assert_eq!(d.rx.len(), RX_MIN);
    assert!(!d.release_idle_window(), "never while bytes are buffered");
    let (messages, _) = read_all(&mut d, &wire[5..]);
    assert_eq!(
        messages,
        [
            Message::Binary(b"two".to_vec()),
            Message::Binary(b"three".to_vec())
        ]
    );
    // A reader of its own (the blocking driver) gets a window back.
    assert!(d.release_idle_window());
    assert_eq!(d.spare().len(), RX_MIN);
}

#[test]
fn a_small_transmit_buffer_is_released_once_reads_are_small() {
    let mut d = idle_server();
    d.send_binary(b"hello").unwrap();
    assert!(d.tx.capacity() > 0);
    let (messages, _) = read_all(&mut d, &client_frames(&[b"ping"]));
    assert_eq!(messages, [Message::Binary(b"ping".to_vec())]);
    assert_eq!(d.tx.capacity(), 0, "released while the connection waits");
    // A large one stays through a burst.
    d.send_binary(&vec![1u8; 100_000]).unwrap();
    let n = d.pending().len();
    d.advance(n);
    let (messages, _) = read_all(&mut d, &client_frames(&[b"ping"]));
    assert_eq!(messages.len(), 1);
    assert!(d.tx.capacity() >= 100_000);
}

/// A masked (zero key) client frame: `opcode` with `fin`, `len` payload bytes of 7.
fn frame(opcode: u8, fin: bool, len: usize) -> Vec<u8> {
    let mut f = vec![if fin { 0x80 | opcode } else { opcode }];
    if len < 126 {
        f.push(0x80 | len as u8);
    } else {
        f.push(0x80 | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    }
    f.extend_from_slice(&[0; 4]);
    f.extend(std::iter::repeat_n(7, len));
    f
}

fn budget_server(budget: &crate::MemoryBudget) -> Driver {
    driver(Role::Server, Vec::new(), Some(budget.clone()))
}

/// Feeds `bytes` (fitting the receive window) and steps once.
fn feed(d: &mut Driver, bytes: &[u8], now: Instant) -> Step {
    while d.spare().len() < bytes.len() {
        // As a run of reads that filled the window would have grown it.
        d.resize_rx(d.rx.len() * 2);
    }
    d.spare()[..bytes.len()].copy_from_slice(bytes);
    d.on_read(bytes.len());
    d.step(now)
}

#[test]
fn a_message_outgrowing_the_budget_closes_with_1013_and_gives_everything_back() {
    let budget = crate::MemoryBudget::new(256 * 1024);
    let now = Instant::from_secs(1);
    let mut d = budget_server(&budget);
    // Fragments of 60 000 bytes: a few fit, then the budget is spent.
    let mut first = true;
    let mut refused = false;
    for _ in 0..20 {
        let opcode = if first { 0x2 } else { 0x0 };
        first = false;
        feed(&mut d, &frame(opcode, false, 60_000), now);
        assert!(budget.used() <= budget.limit() + crate::MemoryBudget::GRACE);
        if d.refused.is_some() {
            refused = true;
            break;
        }
    }
    assert!(refused, "the budget never ran out");
    assert!(d.partial.is_none());
    // The Close queued by the core carries 1013.
    assert_eq!(&d.pending()[..4], &[0x88, d.pending()[1], 0x03, 0xf5]);
    write_and_shut(&mut d);
    // Only the transmit buffer is left charged (within the grace).
    assert!(
        budget.used() <= crate::MemoryBudget::GRACE,
        "{}",
        budget.used()
    );
    // More data is dropped, not kept.
    feed(&mut d, &frame(0x0, false, 60_000), now);
    assert!(d.partial.is_none() && d.take_outcome().is_none());
    // The peer's Close ends it, as the budget error.
    let mut close = frame(0x8, true, 2);
    let n = close.len();
    close[n - 2..].copy_from_slice(&1000u16.to_be_bytes());
    feed(&mut d, &close, now);
    let outcome = d.take_outcome();
    assert!(
        matches!(&outcome, Some(Err(e)) if e.is_over_budget()),
        "{outcome:?}"
    );
    drop(d);
    assert_eq!(budget.used(), 0);
}

#[test]
fn a_delivered_message_stays_charged_until_the_next_step() {
    let budget = crate::MemoryBudget::new(1 << 20);
    let now = Instant::from_secs(1);
    let mut d = budget_server(&budget);
    feed(&mut d, &frame(0x2, true, 30_000), now);
    let Some(Ok(Message::Binary(b))) = d.take_outcome() else {
        panic!("expected the message");
    };
    assert_eq!(b.len(), 30_000);
    assert!(budget.used() >= 30_000);
    d.step(now);
    assert!(budget.used() < 30_000, "{}", budget.used());
    // A send grows the transmit buffer under the budget, then gives it back.
    d.send_binary(&[1; 400_000]).unwrap();
    assert!(budget.used() >= 400_000);
    let n = d.pending().len();
    d.advance(n);
    assert!(budget.used() <= TX_KEEP, "{}", budget.used());
    // A send larger than the budget is dropped: its Close (1013) is what
    // is queued, and the connection closes with the budget error.
    d.send_binary(&[1; 2 << 20]).unwrap();
    assert_eq!(&d.pending()[..4], &[0x88, 21, 0x03, 0xf5]); // 1013, "memory budget spent"
    assert_eq!(
        d.state(),
        State::Closing {
            initiator: wsproto::Side::Local
        }
    );
    write_and_shut(&mut d);
    d.on_eof();
    d.step(now);
    let outcome = d.take_outcome();
    assert!(
        matches!(&outcome, Some(Err(e)) if e.is_over_budget()),
        "{outcome:?}"
    );
    assert!(matches!(d.send_text("x"), Err(Error::ConnectionClosed)));
}

#[test]
fn without_a_budget_nothing_is_refused() {
    let now = Instant::from_secs(1);
    let mut d = driver(Role::Server, Vec::new(), None);
    feed(&mut d, &frame(0x2, false, 60_000), now);
    for _ in 0..20 {
        feed(&mut d, &frame(0x0, false, 60_000), now);
    }
    assert!(d.refused.is_none());
    assert_eq!(d.account.held(), d.partial_charge + d.tx.charged);
}

/// A server driver that writes owned messages from `min` bytes up in place.
fn vectored_server(min: usize, budget: Option<crate::MemoryBudget>) -> Driver {
    let mut d = driver(Role::Server, Vec::new(), budget);
    d.vectored_min = min;
    d
}

/// Writes all the output as a vectored writer would: the slices in
/// order, at most `step(i)` bytes on the `i`th write.
fn drain_with(d: &mut Driver, mut step: impl FnMut(usize) -> usize) -> Vec<u8> {
    let mut wire = Vec::new();
    for i in 0.. {
        let mut slices = [IoSlice::new(&[]); 4];
        let count = d.pending_slices(&mut slices);
        if count == 0 {
            break;
        }
        let total: usize = slices[..count].iter().map(|s| s.len()).sum();
        assert_eq!(total, d.pending_len());
        assert!(!d.pending().is_empty());
        let mut room = step(i).max(1);
        let mut n = 0;
        for slice in &slices[..count] {
            let take = slice.len().min(room);
            wire.extend_from_slice(&slice[..take]);
            n += take;
            room -= take;
            if room == 0 {
                break;
            }
        }
        d.advance(n);
    }
    assert!(d.pending().is_empty() && d.pending_len() == 0);
    wire
}

/// The frame a server copying the payload writes.
fn copied_frame(kind: MessageKind, payload: &[u8]) -> Vec<u8> {
    let mut server = wsproto::Connection::new(Role::Server, Config::default());
    let mut out = vec![0u8; payload.len() + 14];
    let n = server.send_fragment(kind, payload, true, &mut out).unwrap();
    out.truncate(n);
    out
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn frames_written_in_place_are_byte_exact_at_every_header_length_boundary() {
    for len in [125, 126, 65_535, 65_536] {
        for kind in [MessageKind::Binary, MessageKind::Text] {
            let mut d = vectored_server(1, None);
            let (message, bytes) = match kind {
                MessageKind::Text => {
                    let text = "é".repeat(len / 2) + &"a".repeat(len % 2);
                    (Message::Text(text.clone()), text.into_bytes())
                }
                MessageKind::Binary => (Message::Binary(pattern(len)), pattern(len)),
            };
            assert_eq!(bytes.len(), len);
            d.send_owned(message).unwrap();
            assert!(d.verbatim.is_some(), "{len}: written in place");
            assert_eq!(d.tx.capacity(), 0, "{len}: nothing copied");
            let wire = drain_with(&mut d, |_| usize::MAX);
            let header_len = match len {
                ..=125 => 2,
                126..=65_535 => 4,
                _ => 10,
            };
            assert_eq!(wire.len(), header_len + len);
            assert_eq!(wire, copied_frame(kind, &bytes), "{len} {kind:?}");
            assert!(d.verbatim.is_none());
        }
    }
}

/// A copied frame, a frame written in place, and a pong queued after it.
fn three_frames(d: &mut Driver, len: usize) -> Vec<u8> {
    d.send_binary(b"first").unwrap();
    d.send_owned(Message::Binary(pattern(len))).unwrap();
    assert!(d.verbatim.is_some());
    d.pong(b"after").unwrap();
    let mut expected = copied_frame(MessageKind::Binary, b"first");
    expected.extend(copied_frame(MessageKind::Binary, &pattern(len)));
    expected.extend([0x8a, 5, b'a', b'f', b't', b'e', b'r']);
    expected
}

#[test]
fn a_write_may_stop_at_every_offset_of_the_output() {
    // Small enough to split at every offset (7 + 4 + 300 + 7 bytes).
    let total = three_frames(&mut vectored_server(1, None), 300).len();
    for first in 1..total {
        let mut d = vectored_server(1, None);
        let expected = three_frames(&mut d, 300);
        let wire = drain_with(&mut d, |i| if i == 0 { first } else { usize::MAX });
        assert_eq!(wire, expected, "first write of {first} bytes");
    }
    // A ten-byte header: stopping inside it and around the payload's ends.
    let mut d = vectored_server(1, None);
    let total = three_frames(&mut d, 65_536).len();
    let mut offsets: Vec<usize> = (1..32).collect();
    offsets.extend(total - 16..total);
    for first in offsets {
        let mut d = vectored_server(1, None);
        let expected = three_frames(&mut d, 65_536);
        let wire = drain_with(&mut d, |i| if i == 0 { first } else { usize::MAX });
        assert_eq!(wire, expected, "first write of {first} bytes");
    }
    // One to seven bytes per write, all the way.
    let mut d = vectored_server(1, None);
    let expected = three_frames(&mut d, 3_000);
    assert_eq!(drain_with(&mut d, |i| i % 7 + 1), expected);
}

#[test]
fn a_pong_queued_during_a_large_send_follows_the_whole_frame() {
    let now = Instant::from_secs(1);
    let mut d = vectored_server(VECTORED_MIN, None);
    let big = pattern(100_000);
    d.send_owned(Message::Binary(big.clone())).unwrap();
    // Part of the frame is out when the peer's ping arrives.
    let mut wire = drain_with_limit(&mut d, 5_000);
    feed(&mut d, &frame(0x9, true, 2), now);
    assert!(matches!(d.take_outcome(), Some(Ok(Message::Ping(p))) if p == [7, 7]));
    wire.extend(drain_with(&mut d, |_| 4_096));
    let mut expected = copied_frame(MessageKind::Binary, &big);
    expected.extend([0x8a, 2, 7, 7]);
    assert_eq!(wire, expected);
}

/// Writes `n` bytes of the output, in one write.
fn drain_with_limit(d: &mut Driver, n: usize) -> Vec<u8> {
    let mut slices = [IoSlice::new(&[]); 4];
    let count = d.pending_slices(&mut slices);
    let mut wire = Vec::new();
    for slice in &slices[..count] {
        let take = slice.len().min(n - wire.len());
        wire.extend_from_slice(&slice[..take]);
    }
    d.advance(wire.len());
    wire
}

#[test]
fn a_second_large_message_is_copied_and_queued_behind_the_first() {
    let mut d = vectored_server(VECTORED_MIN, None);
    let (a, b) = (pattern(20_000), vec![3u8; 30_000]);
    d.send_owned(Message::Binary(a.clone())).unwrap();
    d.send_owned(Message::Binary(b.clone())).unwrap();
    assert!(d.tx.pending().len() > b.len(), "the second is copied");
    let mut expected = copied_frame(MessageKind::Binary, &a);
    expected.extend(copied_frame(MessageKind::Binary, &b));
    assert_eq!(drain_with(&mut d, |i| 1000 + i), expected);
}

#[test]
fn a_small_received_message_sent_back_becomes_the_transmit_buffer() {
    let budget = crate::MemoryBudget::new(1 << 20);
    for (len, kind) in [
        (0, MessageKind::Binary),
        (16, MessageKind::Binary),
        (125, MessageKind::Text),
        (126, MessageKind::Binary),
        (VECTORED_MIN - 1, MessageKind::Text),
    ] {
        let mut d = vectored_server(VECTORED_MIN, Some(budget.clone()));
        let payload = pattern(len)
            .iter()
            .map(|b| b'a' + b % 26)
            .collect::<Vec<u8>>();
        let opcode = if kind == MessageKind::Text {
            0x81
        } else {
            0x82
        };
        let wire = client_frame_with(opcode, &payload);
        let (mut messages, _) = read_all(&mut d, &wire);
        let message = messages.pop().expect("the message");
        let addr = match &message {
            Message::Text(t) => t.as_ptr() as usize,
            Message::Binary(b) => b.as_ptr() as usize,
            _ => 0,
        };
        d.tx.release(&mut d.account);
        assert_eq!(d.tx.capacity(), 0);
        d.send_owned(message).unwrap();
        assert!(d.verbatim.is_none(), "{len}");
        assert_eq!(
            d.tx.buf.as_ptr() as usize,
            addr,
            "{len}: the message's own allocation"
        );
        assert_eq!(d.account.held(), d.tx.charged + d.delivered_charge);
        let out = drain_with(&mut d, |i| 3 + i);
        assert_eq!(out, copied_frame(kind, &payload), "{len}");
        // A pong the core holds goes first, and the echo is copied behind it.
        d.pong(b"p").unwrap();
        d.send_owned(Message::Binary(payload.clone())).unwrap();
        let mut expected = vec![0x8a, 1, b'p'];
        expected.extend(copied_frame(MessageKind::Binary, &payload));
        assert_eq!(drain_with(&mut d, |_| usize::MAX), expected, "{len}");
    }
}

#[test]
fn a_small_echo_written_out_is_the_allocation_of_the_next_small_message() {
    let budget = crate::MemoryBudget::new(1 << 20);
    let mut d = vectored_server(VECTORED_MIN, Some(budget.clone()));
    let mut addrs = Vec::new();
    for i in 0..4u8 {
        let payload = vec![b'a' + i; 16 - usize::from(i)];
        // Text and binary in turn: both are copied into the kept buffer.
        let (opcode, kind, expected) = if i % 2 == 1 {
            let text = String::from_utf8(payload.clone()).unwrap();
            (0x81, MessageKind::Text, Message::Text(text))
        } else {
            (0x82, MessageKind::Binary, Message::Binary(payload.clone()))
        };
        let (mut messages, _) = read_all(&mut d, &client_frame_with(opcode, &payload));
        let message = messages.pop().expect("the message");
        assert_eq!(message, expected);
        match &message {
            Message::Binary(b) => addrs.push(b.as_ptr() as usize),
            Message::Text(t) => addrs.push(t.as_ptr() as usize),
            _ => {}
        }
        d.send_owned(message).unwrap();
        let out = drain_with(&mut d, |_| usize::MAX);
        assert_eq!(out, copied_frame(kind, &payload), "{i}");
        // The step before the next read keeps the written buffer, charged.
        assert!(matches!(d.step(Instant::from_secs(1)), Step::Read(_)));
        assert_eq!(d.tx.capacity(), 0);
        assert!(matches!(d.partial, Some(Partial::Spare(_))), "{i}");
        assert_eq!(d.account.held(), d.partial_charge);
    }
    assert!(addrs.windows(2).all(|w| w[0] == w[1]), "{addrs:?}");
    // A larger message does not fit: a new allocation, and the written
    // one (over RECYCLE_MAX) is freed rather than kept.
    let payload = vec![b'z'; RECYCLE_MAX + 1];
    let (mut messages, _) = read_all(&mut d, &client_frame_with(0x82, &payload));
    let message = messages.pop().expect("the message");
    assert_eq!(message, Message::Binary(payload.clone()));
    d.send_owned(message).unwrap();
    drain_with(&mut d, |_| usize::MAX);
    assert!(matches!(d.step(Instant::from_secs(1)), Step::Read(_)));
    assert!(d.partial.is_none());
    assert_eq!(d.account.held(), 0);
    drop(d);
    assert_eq!(budget.used(), 0);
}

#[test]
fn a_large_message_written_in_place_leaves_its_room_for_the_next_large_one() {
    let budget = crate::MemoryBudget::new(1 << 20);
    let mut d = vectored_server(VECTORED_MIN, Some(budget.clone()));
    let balanced =
        |d: &Driver| d.account.held() == d.partial_charge + d.tx.charged + d.delivered_charge;
    let (mut messages, _) = read_all(&mut d, &client_frame_with(0x82, &pattern(40_000)));
    d.send_owned(messages.pop().expect("the first message"))
        .unwrap();
    let addr = d.verbatim.as_ref().map(|v| v.payload.as_ptr() as usize);
    let wire = drain_with(&mut d, |i| 5000 + i);
    assert_eq!(wire, copied_frame(MessageKind::Binary, &pattern(40_000)));
    assert!(matches!(d.partial, Some(Partial::Spare(_))));
    assert!(balanced(&d));
    // The next large message is reassembled into it, text too.
    let text = "ab".repeat(15_000);
    let (mut messages, _) = read_all(&mut d, &client_frame_with(0x81, text.as_bytes()));
    let Some(Message::Text(got)) = messages.pop() else {
        panic!("expected the text message");
    };
    assert_eq!(
        (got.as_ptr() as usize, got.as_str()),
        (addr.unwrap(), &text[..])
    );
    assert!(d.partial.is_none() && balanced(&d));
    d.send_owned(Message::Text(got)).unwrap();
    drain_with(&mut d, |_| usize::MAX);
    assert!(matches!(d.partial, Some(Partial::Spare(_))));
    // A small message does not take it (it would keep the large
    // allocation alive), and the room is given back.
    let (mut messages, _) = read_all(&mut d, &client_frame_with(0x82, b"hi"));
    let Some(Message::Binary(small)) = messages.pop() else {
        panic!("expected the small message");
    };
    assert_eq!(small, b"hi");
    assert!(small.capacity() < 100);
    assert!(d.partial.is_none() && balanced(&d));
}

/// One masked client frame (zero key) with `opcode` and `payload`.
fn client_frame_with(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut wire = vec![opcode];
    match payload.len() {
        n @ 0..=125 => wire.push(0x80 | n as u8),
        n => {
            wire.push(0x80 | 126);
            wire.extend((n as u16).to_be_bytes());
        }
    }
    wire.extend([0; 4]);
    wire.extend(payload);
    wire
}

#[test]
fn clients_and_small_messages_are_copied() {
    let mut d = vectored_server(VECTORED_MIN, None);
    d.send_owned(Message::Binary(vec![1; VECTORED_MIN - 1]))
        .unwrap();
    assert!(d.verbatim.is_none());
    let mut client = driver(Role::Client, Vec::new(), None);
    client
        .send_owned(Message::Binary(vec![1; 100_000]))
        .unwrap();
    assert!(client.verbatim.is_none(), "a client masks its payload");
    assert!(client.pending_len() > 100_000);
}

#[test]
fn a_payload_kept_in_place_is_charged_to_the_budget_until_written() {
    let budget = crate::MemoryBudget::new(1 << 20);
    let mut d = vectored_server(VECTORED_MIN, Some(budget.clone()));
    d.send_owned(Message::Binary(vec![1; 400_000])).unwrap();
    assert!(d.verbatim.is_some());
    assert!(budget.used() >= 400_000, "{}", budget.used());
    drain_with(&mut d, |_| 65_536);
    assert!(budget.used() < 4_096, "{}", budget.used());
    // A dead transport gives the held payload back at once.
    d.send_owned(Message::Binary(vec![1; 400_000])).unwrap();
    drain_with_limit(&mut d, 100);
    d.on_io_error();
    assert!(budget.used() < 4_096, "{}", budget.used());
    // Over the budget: dropped, and the Close (1013) goes out instead.
    drop(d);
    let mut d = vectored_server(VECTORED_MIN, Some(budget.clone()));
    d.send_owned(Message::Binary(vec![1; 2 << 20])).unwrap();
    assert!(d.verbatim.is_none());
    assert_eq!(&d.pending()[..4], &[0x88, 21, 0x03, 0xf5]);
    drop(d);
    assert_eq!(budget.used(), 0);
}

#[test]
fn a_whole_message_during_a_fragmented_one_is_misuse_in_place_too() {
    let mut d = vectored_server(1, None);
    d.send_fragment(MessageKind::Binary, b"part", false)
        .unwrap();
    let queued = d.pending_len();
    let e = d.send_owned(Message::Binary(pattern(1_000))).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Protocol(wsproto::Error::Misuse(wsproto::Misuse::MessageInProgress))
        ),
        "{e:?}"
    );
    assert_eq!(d.pending_len(), queued, "nothing more queued");
    d.send_fragment(MessageKind::Binary, b"end", true).unwrap();
    d.send_owned(Message::Binary(pattern(1_000))).unwrap();
    assert!(d.verbatim.is_some());
}

#[test]
fn a_parked_read_lasts_only_until_input_a_command_or_a_timer_reaches_the_core() {
    let config = Config {
        idle_timeout: Some(Duration::from_secs(10)),
        ..Config::default()
    };
    let mut d = driver_with(Role::Server, config, Vec::new(), None);
    let start = Instant::from_secs(100);
    assert_eq!(d.parked(), None, "no step yet");
    assert!(matches!(d.step(start), Step::Read(Some(_))));
    assert!(
        matches!(d.parked(), Some(Some(_))),
        "a step that asks to read parks, with the idle deadline"
    );
    // Input may move the core's deadlines: the parked read is stale.
    let mut wire = client_frames(&[b"x"]);
    d.on_read_shared(&mut wire, RX_MIN);
    assert_eq!(d.parked(), None);
    assert_eq!(d.take_buffered(true), Some(Message::Binary(b"x".to_vec())));
    assert_eq!(d.parked(), None, "the core saw input since the step");
    assert!(matches!(
        d.step(start + Duration::from_secs(1)),
        Step::Read(_)
    ));
    assert!(d.parked().is_some(), "parked again");
    // A command (a ping) reaches the core: stale, even once written.
    d.ping(b"p").unwrap();
    assert_eq!(d.parked(), None);
    let n = d.pending().len();
    d.advance(n);
    assert_eq!(d.parked(), None);
    assert!(matches!(
        d.step(start + Duration::from_secs(2)),
        Step::Read(_)
    ));
    assert!(d.parked().is_some());
    // The idle timer fires after the traffic and is armed again: the read
    // parked now waits for the new deadline, not the old one.
    let later = start + Duration::from_secs(60);
    assert!(matches!(d.step(later), Step::Read(_)));
    assert!(matches!(d.parked(), Some(Some(at)) if at > later));
    // Quiet since: the idle Close is queued, and nothing is parked.
    assert!(matches!(
        d.step(start + Duration::from_secs(200)),
        Step::Continue
    ));
    assert!(!d.pending().is_empty());
    assert_eq!(d.parked(), None);
}

/// Steps `d` at `now`, writing what it queues and taking its outcomes,
/// until it asks to read; returns how long that read may wait.
fn read_wait(d: &mut Driver, now: Instant) -> Option<std::time::Duration> {
    loop {
        let step = d.step(now);
        let n = d.pending().len();
        d.advance(n);
        let _ = d.take_outcome();
        if let Step::Read(wait) = step {
            return wait;
        }
    }
}

#[test]
fn the_kept_deadline_follows_commands_and_timers_but_not_data() {
    let secs = std::time::Duration::from_secs;
    // No slow-message timer: it moves with data, which this is not about.
    let config = Config {
        idle_timeout: Some(Duration::from_secs(60)),
        min_progress: None,
        ..Config::default()
    };
    let mut d = driver_with(Role::Server, config, Vec::new(), None);
    let now = Instant::from_secs(1);
    assert_eq!(read_wait(&mut d, now), Some(secs(60)));
    // Data in and out leaves the deadline where it was.
    let (mut messages, _) = read_all(&mut d, &client_frames(&[b"hi"]));
    d.send_owned(messages.pop().expect("the message")).unwrap();
    assert_eq!(read_wait(&mut d, now), Some(secs(60)));
    // Our Close arms the close handshake's timer, which comes first.
    d.close(1000, "").unwrap();
    assert_eq!(read_wait(&mut d, now), Some(secs(5)));

    // A keepalive ping, sent when its timer fires, arms the pong deadline.
    let config = Config {
        keepalive: Some(wsproto::Keepalive {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }),
        min_progress: None,
        ..Config::default()
    };
    let mut d = driver_with(Role::Server, config, Vec::new(), None);
    assert_eq!(read_wait(&mut d, now), Some(secs(30)));
    let later = now + Duration::from_secs(30);
    assert_eq!(read_wait(&mut d, later), Some(secs(10)));
}

#[test]
fn a_small_echo_read_where_it_lies_keeps_the_read_parked_and_its_buffer() {
    let config = Config {
        idle_timeout: Some(Duration::from_secs(10)),
        ..Config::default()
    };
    let mut d = driver_with(Role::Server, config, Vec::new(), None);
    let now = Instant::from_secs(1);
    // A first echo through the window, then the window given back.
    let (mut messages, _) = read_all(&mut d, &client_frames(&[b"one"]));
    d.send_owned(messages.pop().expect("the first message"))
        .unwrap();
    drain_with(&mut d, |_| usize::MAX);
    assert!(matches!(d.step(now), Step::Read(Some(_))));
    assert!(d.release_idle_window());
    let parked = d.parked();
    assert!(matches!(parked, Some(Some(_))));
    // A whole data message read where it lies: no step is due once it is
    // handed out and its echo written.
    let mut wire = client_frames(&[b"two"]);
    d.on_read_shared(&mut wire, RX_MIN);
    assert_eq!(d.parked(), None, "a message waits");
    let message = d.take_buffered(true).expect("the message");
    assert_eq!(message, Message::Binary(b"two".to_vec()));
    assert_eq!(d.parked(), parked);
    d.send_owned(message).unwrap();
    assert_eq!(d.parked(), None, "its echo waits");
    let wire = drain_with(&mut d, |_| usize::MAX);
    assert_eq!(wire, copied_frame(MessageKind::Binary, b"two"));
    assert_eq!(d.parked(), parked, "written: parked again");
    // The echo's buffer is the next message's room, as a step leaves it.
    assert_eq!(d.tx.capacity(), 0);
    assert!(matches!(d.partial, Some(Partial::Spare(_))));
    assert_eq!(d.account.held(), d.partial_charge);
    // A control frame among the input: the next read is a step's again.
    let mut wire = client_frame_with(0x89, b"p");
    d.on_read_shared(&mut wire, RX_MIN);
    assert_eq!(d.parked(), None);
    assert!(matches!(d.step(now), Step::Continue));
    assert_eq!(d.parked(), None);
}
