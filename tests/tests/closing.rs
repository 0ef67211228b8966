//! The closing handshake, EOF, and every timer: close deadline, keepalive,
//! idle timeout.

use wsproto::{
    CloseCode, Config, Connection, Duration, Error, Event, Instant, Keepalive, MessageKind, Misuse,
    Role, Side, State, TimeoutKind,
};
use wsproto_tests::{Ev, Pair, TestRng, Who};

fn closing(initiator: Side) -> State {
    State::Closing { initiator }
}

fn closed(code: u16) -> State {
    State::Closed {
        code: CloseCode(code),
    }
}

#[test]
fn client_initiated_close_step_by_step() {
    let mut pair = Pair::new(Config::default());
    pair.close(Who::Client, CloseCode::NORMAL, "bye").unwrap();
    assert_eq!(pair.state(Who::Client), closing(Side::Local));
    assert!(!pair.client.conn.should_close_transport());

    // The server reads the Close: Closing (remote), echo queued.
    let bytes = std::mem::take(&mut pair.to_server);
    pair.server.feed(&bytes);
    assert_eq!(pair.server.events(), [Ev::close(1000, "bye")]);
    assert_eq!(pair.state(Who::Server), closing(Side::Remote));
    assert!(
        !pair.server.conn.should_close_transport(),
        "echo not yet written"
    );
    // Writing the echo (same code, no reason) closes it; the server closes TCP first.
    pair.server.transmit(&mut pair.to_client);
    assert_eq!(pair.to_client, [0x88, 0x02, 0x03, 0xe8]);
    assert_eq!(pair.state(Who::Server), closed(1000));
    assert!(pair.server.transport_closed);
    assert!(pair.server.conn.should_close_transport());

    // The client reads the echo: closed, but it waits for the server's FIN.
    let bytes = std::mem::take(&mut pair.to_client);
    pair.client.feed(&bytes);
    assert_eq!(pair.client.events(), [Ev::close(1000, "")]);
    assert_eq!(pair.state(Who::Client), closed(1000));
    assert!(!pair.client.conn.should_close_transport());
    pair.client.eof();
    assert!(
        pair.client.errors.is_empty(),
        "EOF after the close handshake is fine"
    );
    assert!(pair.client.conn.should_close_transport());
    assert_eq!(pair.state(Who::Client), closed(1000));
}

#[test]
fn server_initiated_close() {
    let mut pair = Pair::new(Config::default());
    pair.close(Who::Server, CloseCode::GOING_AWAY, "restart")
        .unwrap();
    assert_eq!(pair.state(Who::Server), closing(Side::Local));
    let bytes = std::mem::take(&mut pair.to_client);
    pair.client.feed(&bytes);
    assert_eq!(pair.state(Who::Client), closing(Side::Remote));
    pair.client.transmit(&mut pair.to_server);
    assert_eq!(pair.state(Who::Client), closed(1001));
    assert!(
        !pair.client.transport_closed,
        "the client waits for the server"
    );
    pair.run();
    assert_eq!(pair.events(Who::Client), [Ev::close(1001, "restart")]);
    assert_eq!(pair.events(Who::Server), [Ev::close(1001, "")]);
    assert_eq!(pair.state(Who::Server), closed(1001));
    assert!(pair.server.transport_closed);
    // The client got the server's EOF after the echo and is done too.
    assert!(pair.client.eof_seen && pair.client.transport_closed);
    assert!(pair.client.errors.is_empty() && pair.server.errors.is_empty());
}

#[test]
fn empty_close_is_echoed_empty_and_reported_as_1005() {
    // Server sends an empty Close to the client.
    let mut pair = Pair::new(Config::default());
    pair.to_client.extend_from_slice(&[0x88, 0x00]);
    pair.run();
    assert_eq!(
        pair.events(Who::Client),
        [Ev::Close {
            code: None,
            reason: String::new()
        }]
    );
    assert_eq!(pair.state(Who::Client), closed(1005));
    // The echo is a masked Close with no payload.
    assert_eq!(pair.client.sent[..2], [0x88, 0x80]);
    assert_eq!(pair.client.sent.len(), 6);

    // Client sends an empty Close to the server.
    let mut pair = Pair::new(Config::default());
    pair.to_server
        .extend_from_slice(&[0x88, 0x80, 0x12, 0x34, 0x56, 0x78]);
    pair.run();
    assert_eq!(
        pair.events(Who::Server),
        [Ev::Close {
            code: None,
            reason: String::new()
        }]
    );
    assert_eq!(pair.server.sent, [0x88, 0x00]);
    assert_eq!(pair.state(Who::Server), closed(1005));
    assert!(pair.server.transport_closed);
}

#[test]
fn data_after_sending_close_is_still_surfaced() {
    let mut pair = Pair::new(Config::default());
    // The server's messages are in flight when the client starts closing.
    pair.send_text(Who::Server, "one").unwrap();
    pair.send_binary(Who::Server, &[2; 300]).unwrap();
    pair.close(Who::Client, CloseCode::NORMAL, "").unwrap();
    assert_eq!(
        pair.send_text(Who::Client, "late"),
        Err(Error::Misuse(Misuse::Closed))
    );
    pair.run();
    assert_eq!(
        pair.events(Who::Client),
        [
            Ev::Text("one".into()),
            Ev::Binary(vec![2; 300]),
            Ev::close(1000, ""),
        ]
    );
    assert_eq!(pair.events(Who::Server), [Ev::close(1000, "")]);
    assert_eq!(pair.state(Who::Client), closed(1000));
    assert_eq!(pair.state(Who::Server), closed(1000));
}

#[test]
fn input_after_the_peers_close_is_ignored() {
    // Client side: a text frame right behind the server's Close, same read.
    let mut client = Connection::with_rng(Role::Client, Config::default(), TestRng::new(1));
    let mut input = [0x88, 0x02, 0x03, 0xe8, 0x81, 0x02, b'h', b'i'];
    let r = client.receive(&mut input).unwrap();
    assert_eq!(r.consumed, 4);
    assert!(matches!(r.event, Some(wsproto::Event::Close { .. })));
    let r = client.receive(&mut input[4..]).unwrap();
    assert_eq!((r.consumed, r.event), (4, None));
    // Still ignored after the echo went out.
    let mut out = [0u8; 64];
    assert_eq!(
        client.poll_transmit(&mut out).unwrap(),
        8,
        "masked echo of 1000"
    );
    let mut more = [0x81, 0x02, b'h', b'i', 0x89, 0x00];
    let r = client.receive(&mut more).unwrap();
    assert_eq!((r.consumed, r.event), (6, None));
    assert_eq!(client.poll_transmit(&mut out).unwrap(), 0, "no pong");

    // Through the pair: the server's data after its Close never shows up.
    let mut pair = Pair::new(Config::default());
    pair.to_client
        .extend_from_slice(&[0x88, 0x02, 0x03, 0xe8, 0x81, 0x02, b'h', b'i', 0x89, 0x00]);
    pair.run();
    assert_eq!(pair.events(Who::Client), [Ev::close(1000, "")]);
    assert!(pair.client.errors.is_empty());
}

#[test]
fn commands_after_close_are_misuse() {
    let mut pair = Pair::new(Config::default());
    pair.close(Who::Client, CloseCode::NORMAL, "").unwrap();
    let closed_err = Err(Error::Misuse(Misuse::Closed));
    for _ in 0..2 {
        assert_eq!(pair.send_text(Who::Client, "x"), closed_err);
        assert_eq!(pair.send_binary(Who::Client, b"x"), closed_err);
        assert_eq!(
            pair.send_fragment(Who::Client, MessageKind::Text, b"x", false),
            closed_err
        );
        assert_eq!(pair.ping(Who::Client, b""), closed_err);
        assert_eq!(pair.client.conn.pong(b""), closed_err);
        assert_eq!(pair.close(Who::Client, CloseCode::NORMAL, ""), closed_err);
        // Once the peer's Close came in, it too is closed for commands.
        pair.run();
        assert_eq!(pair.send_text(Who::Server, "x"), closed_err);
        assert_eq!(pair.close(Who::Server, CloseCode::NORMAL, ""), closed_err);
    }
    assert_eq!(pair.state(Who::Client), closed(1000));
    // Misuse sends nothing: the only frames written are the Close and its echo.
    assert_eq!(pair.server.sent, [0x88, 0x02, 0x03, 0xe8]);
    assert_eq!(pair.client.sent.len(), 8);
}

#[test]
fn invalid_close_codes_and_long_reasons_are_misuse() {
    let mut pair = Pair::new(Config::default());
    for code in [1005, 1006, 1015, 999, 0, 1004, 2999, 5000, u16::MAX] {
        assert_eq!(
            pair.close(Who::Client, CloseCode(code), ""),
            Err(Error::Misuse(Misuse::InvalidCloseCode)),
            "{code}"
        );
    }
    let long = "x".repeat(124);
    assert_eq!(
        pair.close(Who::Client, CloseCode::NORMAL, &long),
        Err(Error::Misuse(Misuse::ControlPayloadTooLong))
    );
    assert_eq!(
        pair.close(Who::Client, CloseCode::NORMAL, "é".repeat(62).as_str()),
        Err(Error::Misuse(Misuse::ControlPayloadTooLong)),
        "124 bytes of two-byte characters"
    );
    assert_eq!(pair.state(Who::Client), State::Open);
    assert!(pair.client.sent.is_empty() && pair.to_server.is_empty());
    // 123 bytes and an application code are fine, and arrive intact.
    let reason = "r".repeat(123);
    pair.close(Who::Client, CloseCode(4999), &reason).unwrap();
    pair.run();
    assert_eq!(pair.events(Who::Server), [Ev::close(4999, &reason)]);
    assert_eq!(pair.state(Who::Server), closed(4999));
}

#[test]
fn eof_before_close_is_abnormal() {
    let mut client = Connection::with_rng(Role::Client, Config::default(), TestRng::new(1));
    assert_eq!(client.receive_eof(), Err(Error::AbnormalClosure));
    assert_eq!(client.state(), closed(1006));
    assert!(client.should_close_transport());
    assert_eq!(client.poll_timeout(), None);

    let mut server = Connection::new(Role::Server, Config::default());
    server.close(CloseCode::NORMAL, "").unwrap();
    assert_eq!(server.receive_eof(), Err(Error::AbnormalClosure));
    assert_eq!(server.state(), closed(1006));

    // Through the pair: the client drops the TCP connection mid-conversation.
    let mut pair = Pair::new(Config::default());
    pair.send_text(Who::Client, "hi").unwrap();
    pair.client.transport_closed = true;
    pair.run();
    assert_eq!(pair.events(Who::Server), [Ev::Text("hi".into())]);
    assert_eq!(pair.errors(Who::Server), [Error::AbnormalClosure]);
    assert_eq!(pair.state(Who::Server), closed(1006));
    assert!(pair.server.transport_closed);
}

#[test]
fn close_deadline_ends_with_1006() {
    let config = Config {
        close_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    let mut pair = Pair::new(config);
    let t0 = pair.now;
    pair.close(Who::Client, CloseCode::NORMAL, "").unwrap();
    // The server never gets it (a black hole).
    pair.to_server.clear();
    pair.run();
    assert_eq!(
        pair.client.conn.poll_timeout(),
        Some(t0 + Duration::from_secs(2))
    );
    pair.advance(Duration::from_millis(1999));
    assert_eq!(pair.state(Who::Client), closing(Side::Local));
    assert!(pair.client.errors.is_empty());
    pair.advance(Duration::from_millis(1));
    assert_eq!(
        pair.errors(Who::Client),
        [Error::Timeout(TimeoutKind::Close)]
    );
    assert_eq!(pair.state(Who::Client), closed(1006));
    assert!(pair.client.transport_closed);
    // The server sees the client go away without a Close.
    assert_eq!(pair.errors(Who::Server), [Error::AbnormalClosure]);
    assert_eq!(pair.state(Who::Server), closed(1006));
}

#[test]
fn client_closes_the_transport_after_the_close_timer_if_the_server_does_not() {
    let mut client = Connection::with_rng(Role::Client, Config::default(), TestRng::new(1));
    let mut input = [0x88, 0x02, 0x03, 0xe8];
    client.receive(&mut input).unwrap();
    let mut out = [0u8; 64];
    assert!(client.poll_transmit(&mut out).unwrap() > 0);
    assert_eq!(client.state(), closed(1000));
    assert!(!client.should_close_transport());
    let t0 = Instant::from_secs(10);
    assert_eq!(client.poll_timeout(), Some(Instant::ZERO), "arm now");
    client.handle_timeout(t0).unwrap();
    assert_eq!(client.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    client.handle_timeout(t0 + Duration::from_secs(4)).unwrap();
    assert!(!client.should_close_transport());
    // Already closed: the timer only says "drop the transport now", no error.
    client.handle_timeout(t0 + Duration::from_secs(5)).unwrap();
    assert!(client.should_close_transport());
    assert_eq!(client.state(), closed(1000));
}

#[test]
fn handle_timeout_early_or_twice_does_nothing() {
    let mut server = Connection::new(Role::Server, Config::default());
    server.close(CloseCode::NORMAL, "").unwrap();
    let mut out = [0u8; 64];
    assert_eq!(server.poll_transmit(&mut out).unwrap(), 4);
    let t0 = Instant::from_secs(1);
    server.handle_timeout(t0).unwrap();
    let deadline = server.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + Duration::from_secs(5));
    // Early, twice, and at an earlier instant than before: nothing moves.
    for now in [t0, t0, Instant::from_millis(5_999), Instant::ZERO] {
        assert_eq!(server.handle_timeout(now), Ok(()));
        assert_eq!(server.poll_timeout(), Some(deadline));
        assert_eq!(server.state(), closing(Side::Local));
        assert_eq!(server.poll_transmit(&mut out).unwrap(), 0);
    }
    assert_eq!(
        server.handle_timeout(deadline),
        Err(Error::Timeout(TimeoutKind::Close))
    );
    // Twice at (and after) the deadline: fired once only.
    assert_eq!(server.handle_timeout(deadline), Ok(()));
    assert_eq!(
        server.handle_timeout(deadline + Duration::from_secs(100)),
        Ok(())
    );
    assert_eq!(server.state(), closed(1006));

    // A keepalive ping is sent once per expiry, not once per call.
    let config = Config {
        keepalive: Some(Keepalive {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
        }),
        ..Config::default()
    };
    let mut server = Connection::new(Role::Server, config);
    server.handle_timeout(t0).unwrap();
    let at = t0 + Duration::from_secs(10);
    assert_eq!(server.poll_timeout(), Some(at));
    server.handle_timeout(at).unwrap();
    assert_eq!(server.poll_transmit(&mut out).unwrap(), 2, "one empty ping");
    assert_eq!(out[..2], [0x89, 0x00]);
    server.handle_timeout(at).unwrap();
    assert_eq!(server.poll_transmit(&mut out).unwrap(), 0, "no second ping");
}

fn keepalive(interval: u64, timeout: u64) -> Config {
    Config {
        keepalive: Some(Keepalive {
            interval: Duration::from_secs(interval),
            timeout: Duration::from_secs(timeout),
        }),
        ..Config::default()
    }
}

#[test]
fn keepalive_pings_a_quiet_peer_and_gives_up_without_a_pong() {
    // The client does not answer pings.
    let client = Config {
        auto_pong: false,
        ..Config::default()
    };
    let mut pair = Pair::with_configs(client, keepalive(10, 5));
    let t0 = pair.now;
    pair.run();
    assert_eq!(pair.next_deadline(), Some(t0 + Duration::from_secs(10)));
    pair.advance(Duration::from_millis(9_999));
    assert!(
        pair.events(Who::Client).is_empty(),
        "no ping before the interval"
    );
    pair.advance(Duration::from_millis(1));
    assert_eq!(pair.events(Who::Client), [Ev::Ping(Vec::new())]);
    assert_eq!(pair.state(Who::Server), State::Open);
    pair.advance(Duration::from_millis(4_999));
    assert!(pair.server.errors.is_empty());
    pair.advance(Duration::from_millis(1));
    assert_eq!(
        pair.errors(Who::Server),
        [Error::Timeout(TimeoutKind::Pong)]
    );
    assert_eq!(pair.state(Who::Server), closed(1006));
    assert!(pair.server.transport_closed);
    assert_eq!(pair.errors(Who::Client), [Error::AbnormalClosure]);
}

#[test]
fn keepalive_from_the_client_side_too() {
    let server = Config {
        auto_pong: false,
        ..Config::default()
    };
    let mut pair = Pair::with_configs(keepalive(3, 1), server);
    pair.advance(Duration::from_secs(3));
    assert_eq!(pair.events(Who::Server), [Ev::Ping(Vec::new())]);
    pair.advance(Duration::from_secs(1));
    assert_eq!(
        pair.errors(Who::Client),
        [Error::Timeout(TimeoutKind::Pong)]
    );
    assert_eq!(pair.state(Who::Client), closed(1006));
}

#[test]
fn a_peer_that_answers_stays_alive() {
    let mut pair = Pair::with_configs(Config::default(), keepalive(10, 5));
    for _ in 0..20 {
        pair.advance(Duration::from_secs(5));
    }
    assert!(pair.server.errors.is_empty(), "{:?}", pair.server.errors);
    assert_eq!(pair.state(Who::Server), State::Open);
    assert_eq!(pair.state(Who::Client), State::Open);
    let pings = pair.events(Who::Client).len();
    let pongs = pair.events(Who::Server).len();
    assert!(pings >= 4, "{pings} pings in 100 s");
    assert_eq!(pings, pongs, "every ping answered");
    assert!(pair
        .events(Who::Server)
        .iter()
        .all(|e| *e == Ev::Pong(Vec::new())));
}

#[test]
fn a_busy_peer_needs_no_pings() {
    let mut pair = Pair::with_configs(Config::default(), keepalive(10, 5));
    for i in 0..30 {
        pair.send_text(Who::Client, &format!("tick {i}")).unwrap();
        pair.advance(Duration::from_secs(3));
    }
    assert_eq!(pair.state(Who::Server), State::Open);
    assert!(pair.events(Who::Client).is_empty(), "no pings while busy");
    assert_eq!(pair.events(Who::Server).len(), 30);
}

fn idle(secs: u64) -> Config {
    Config {
        idle_timeout: Some(Duration::from_secs(secs)),
        ..Config::default()
    }
}

#[test]
fn idle_timeout_sends_close_1001() {
    let mut pair = Pair::with_configs(Config::default(), idle(30));
    pair.advance(Duration::from_millis(29_999));
    assert_eq!(pair.state(Who::Server), State::Open);
    assert!(pair.events(Who::Client).is_empty());
    pair.advance(Duration::from_millis(1));
    assert_eq!(pair.events(Who::Client), [Ev::close(1001, "idle timeout")]);
    assert_eq!(pair.events(Who::Server), [Ev::close(1001, "")]);
    assert_eq!(pair.state(Who::Server), closed(1001));
    assert_eq!(pair.state(Who::Client), closed(1001));
    assert!(pair.server.errors.is_empty() && pair.client.errors.is_empty());
}

#[test]
fn an_active_peer_is_not_idle() {
    let mut pair = Pair::with_configs(Config::default(), idle(30));
    for _ in 0..10 {
        pair.advance(Duration::from_secs(20));
        pair.send_binary(Who::Client, b"still here").unwrap();
    }
    pair.run();
    assert_eq!(pair.state(Who::Server), State::Open);
    assert_eq!(pair.events(Who::Server).len(), 10);
    // Then quiet: closed within two idle periods.
    pair.advance(Duration::from_secs(60));
    assert_eq!(pair.state(Who::Server), closed(1001));
}

#[test]
fn a_zero_keepalive_interval_does_not_hang() {
    // Run in a thread: a timer that re-arms itself at `now` would spin forever.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut server = Connection::new(Role::Server, keepalive(0, 1));
        let mut out = [0u8; 64];
        let mut pings = Vec::new();
        for ms in [1000, 1000, 1500] {
            let result = server.handle_timeout(Instant::from_millis(ms));
            pings.push((result, server.poll_transmit(&mut out).unwrap()));
        }
        let _ = tx.send(pings);
    });
    let pings = rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("handle_timeout returned");
    // One ping per expiry; the second call at the same instant does nothing.
    assert_eq!(pings, [(Ok(()), 2), (Ok(()), 0), (Ok(()), 2)]);
}

/// RFC 6455 §5.5.2: a Ping is answered with a Pong unless a Close was
/// *received*; after our own Close only data frames are forbidden (§5.5.1).
/// Both roles: a Ping that arrives once our Close is on the wire gets a Pong.
#[test]
fn a_ping_after_our_close_is_still_answered() {
    // Server: its Close written, then a masked ping "hi" (zero key).
    let mut server = Connection::new(Role::Server, Config::default());
    server.close(CloseCode::NORMAL, "bye").unwrap();
    let mut out = [0u8; 256];
    let n = server.poll_transmit(&mut out).unwrap();
    assert_eq!(out[..n], [0x88, 0x05, 0x03, 0xe8, b'b', b'y', b'e']);
    let mut ping = [0x89, 0x82, 0, 0, 0, 0, b'h', b'i'];
    let r = server.receive(&mut ping).unwrap();
    assert_eq!(r.event, Some(Event::Ping(b"hi")));
    let n = server.poll_transmit(&mut out).unwrap();
    assert_eq!(out[..n], [0x8a, 0x02, b'h', b'i']);
    assert_eq!(server.state(), closing(Side::Local));

    // Client: the same with the Close still queued: the pong goes first.
    let mut client = Connection::with_rng(Role::Client, Config::default(), TestRng::new(9));
    client.close(CloseCode::NORMAL, "").unwrap();
    let mut ping = [0x89, 0x02, b'h', b'i'];
    assert_eq!(
        client.receive(&mut ping).unwrap().event,
        Some(Event::Ping(b"hi"))
    );
    let n = client.poll_transmit(&mut out).unwrap();
    let mut rest = &out[..n];
    let mut opcodes = Vec::new();
    while !rest.is_empty() {
        let len = usize::from(rest[1] & 0x7f);
        opcodes.push(rest[0]);
        rest = &rest[2 + 4 + len..];
    }
    assert_eq!(opcodes, [0x8a, 0x88], "pong, then the close");
}

/// After the peer's Close nothing more is read (§7.1.7's "discard"), so a
/// Ping behind it is neither surfaced nor answered.
#[test]
fn a_ping_after_the_peers_close_is_not_answered() {
    let mut server = Connection::new(Role::Server, Config::default());
    let mut input = [0x88, 0x80, 0, 0, 0, 0, 0x89, 0x80, 0, 0, 0, 0];
    let r = server.receive(&mut input).unwrap();
    assert!(matches!(r.event, Some(Event::Close { code: None, .. })));
    let consumed = r.consumed;
    let r = server.receive(&mut input[consumed..]).unwrap();
    assert_eq!(r.event, None);
    let mut out = [0u8; 64];
    let n = server.poll_transmit(&mut out).unwrap();
    assert_eq!(out[..n], [0x88, 0x00], "only the empty Close echo");
}

/// A peer sending one large frame slowly cannot send a Pong in the middle of
/// it (§5.4): any byte it sends counts as life. Keepalive 30 s / 10 s; the
/// client sends a 1 MiB binary frame at 8 KiB per second; the server must
/// stay open and deliver it whole (the frame takes 128 s).
#[test]
fn keepalive_counts_bytes_not_frames() {
    let mut server = Connection::new(Role::Server, keepalive(30, 10));
    let mut client = Connection::with_rng(Role::Client, Config::default(), TestRng::new(5));
    let payload: Vec<u8> = (0..1 << 20).map(|i| (i * 7) as u8).collect();
    let mut wire = vec![0u8; payload.len() + 14];
    let n = client.send_binary(&payload, &mut wire).unwrap();
    wire.truncate(n);
    let mut now = Instant::ZERO;
    server.handle_timeout(now).unwrap();
    let mut got = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut pings = 0;
    for chunk in wire.chunks(8 * 1024) {
        now += Duration::from_secs(1);
        server
            .handle_timeout(now)
            .unwrap_or_else(|e| panic!("at {now:?} with bytes arriving: {e:?}"));
        let mut out = [0u8; 256];
        pings += server.poll_transmit(&mut out).unwrap();
        buf.extend_from_slice(chunk);
        loop {
            let r = server.receive(&mut buf).unwrap();
            let consumed = r.consumed;
            let done = consumed == 0 && r.event.is_none();
            if let Some(Event::Binary { data, .. }) = r.event {
                got.extend_from_slice(data);
            }
            buf.drain(..consumed);
            if done {
                break;
            }
        }
    }
    assert_eq!(got, payload);
    assert_eq!(pings, 0, "no keepalive ping while bytes keep arriving");
    assert_eq!(server.state(), State::Open);
    // Then silence. The keepalive timer checks for quiet once per interval,
    // so the ping goes out between one and two intervals after the last
    // byte, and the connection is given up on the pong timeout after it.
    let last_byte = now;
    let mut ping_at = None;
    let ended = loop {
        now += Duration::from_secs(1);
        assert!(now <= last_byte + Duration::from_secs(80), "never gave up");
        if let Err(e) = server.handle_timeout(now) {
            break e;
        }
        let mut out = [0u8; 256];
        if server.poll_transmit(&mut out).unwrap() > 0 {
            assert_eq!(out[..2], [0x89, 0x00], "an empty ping");
            ping_at.get_or_insert(now);
        }
    };
    assert_eq!(ended, Error::Timeout(TimeoutKind::Pong));
    let ping_at = ping_at.expect("pinged before giving up");
    assert!(ping_at >= last_byte + Duration::from_secs(30));
    assert!(ping_at <= last_byte + Duration::from_secs(60));
    assert_eq!(now, ping_at + Duration::from_secs(10));
}

/// Re-presenting the same unconsumed bytes is not activity: a peer that sent
/// half a header and went quiet is pinged and then given up on, however
/// often the caller retries `receive`.
#[test]
fn keepalive_is_not_fooled_by_re_presented_bytes() {
    let mut server = Connection::new(Role::Server, keepalive(30, 10));
    let mut now = Instant::ZERO;
    server.handle_timeout(now).unwrap();
    let mut half = [0x82, 0xfe, 0x01];
    assert_eq!(server.receive(&mut half).unwrap().consumed, 0);
    let mut result = Ok(());
    for _ in 0..100 {
        now += Duration::from_secs(1);
        assert_eq!(server.receive(&mut half).unwrap().consumed, 0);
        result = server.handle_timeout(now);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(Error::Timeout(TimeoutKind::Pong)));
    // The three bytes at t = 0 were the last activity: the check at 30 s
    // sees them, the one at 60 s finds quiet and pings, 70 s gives up.
    assert_eq!(now, Instant::ZERO + Duration::from_secs(70));
}
