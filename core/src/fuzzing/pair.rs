//! `connection`: a client/server pair driven by a list of operations; every
//! byte written must be valid frames, and each side must deliver what the
//! other sent.

use super::*;

// ---------------------------------------------------------------------------
// connection: a client/server pair driven by operations
// ---------------------------------------------------------------------------

/// One step of the `connection` target. `client` picks the acting side.
#[derive(Clone, Debug, PartialEq, Eq, arbitrary::Arbitrary)]
pub enum Op {
    SendText {
        client: bool,
        text: String,
    },
    SendBinary {
        client: bool,
        data: Vec<u8>,
    },
    /// `text` fragments carry `data` made valid UTF-8 (lossily), so the
    /// message stays valid whatever the split.
    SendFragment {
        client: bool,
        text: bool,
        data: Vec<u8>,
        fin: bool,
    },
    Ping {
        client: bool,
        payload: Vec<u8>,
    },
    Pong {
        client: bool,
        payload: Vec<u8>,
    },
    /// `code` below 16 picks a common code (including invalid ones); else raw.
    Close {
        client: bool,
        code: u16,
        reason: String,
    },
    /// Moves at most `max_bytes` from the sender's wire to the receiver.
    Deliver {
        from_client: bool,
        max_bytes: u16,
    },
    AdvanceTime {
        ms: u16,
    },
    /// The sender's transport ends: the rest of its wire is delivered, then
    /// the receiver sees end of file; later bytes are lost.
    Eof {
        from_client: bool,
    },
}

const CODES: [u16; 16] = [
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999, 1005, 999,
];

struct Peer {
    conn: Connection<FuzzRng>,
    /// Bytes received, not yet consumed.
    inbox: Vec<u8>,
    trace: Trace,
    /// Whole messages this side sent (send returned Ok).
    sent: Vec<Item>,
    /// A fragmented message being sent.
    sending: Option<(MessageKind, Vec<u8>)>,
    /// Bytes written but not yet delivered.
    wire: Vec<u8>,
    /// Every byte this side ever wrote.
    transcript: Vec<u8>,
    /// The wire to the peer has ended (Eof).
    wire_closed: bool,
}

impl Peer {
    fn new(role: Role, config: Config, seed: u64) -> Self {
        Peer {
            conn: Connection::with_rng(role, config, FuzzRng::new(seed)),
            inbox: Vec::new(),
            trace: Trace::default(),
            sent: Vec::new(),
            sending: None,
            wire: Vec::new(),
            transcript: Vec::new(),
            wire_closed: false,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        self.transcript.extend_from_slice(bytes);
        if !self.wire_closed {
            self.wire.extend_from_slice(bytes);
        }
    }

    fn flush(&mut self) {
        let mut out = Vec::new();
        drain_transmit(&mut self.conn, &mut out);
        self.write(&out);
    }

    fn send(&mut self, kind: MessageKind, data: &[u8], fin: bool, fragment: bool) {
        let masked = self.conn.role() == Role::Client;
        let mut out = vec![0u8; encoded_frame_len(data.len(), masked)];
        let result = if fragment {
            self.conn.send_fragment(kind, data, fin, &mut out)
        } else if kind == MessageKind::Text {
            self.conn
                .send_text(core::str::from_utf8(data).unwrap(), &mut out)
        } else {
            self.conn.send_binary(data, &mut out)
        };
        match result {
            Ok(n) => {
                assert_eq!(n, out.len(), "frame length");
                self.write(&out);
                let (_, buf) = self.sending.get_or_insert_with(|| (kind, Vec::new()));
                buf.extend_from_slice(data);
                if fin {
                    let (kind, buf) = self.sending.take().unwrap();
                    self.sent.push(match kind {
                        MessageKind::Text => Item::Text(String::from_utf8(buf).unwrap()),
                        MessageKind::Binary => Item::Binary(buf),
                    });
                }
            }
            Err(Error::Misuse(_)) => {}
            Err(e) => panic!("send failed with {e:?}"),
        }
        self.flush();
    }

    fn command(&mut self, result: Result<(), Error>) {
        match result {
            Ok(()) | Err(Error::Misuse(_)) => {}
            Err(e) => panic!("command failed with {e:?}"),
        }
        self.flush();
    }
}

/// Moves up to `max` bytes from `from`'s wire to `to` and runs `to`'s loop.
fn deliver(from: &mut Peer, to: &mut Peer, max: usize) {
    let n = max.min(from.wire.len());
    to.inbox.extend(from.wire.drain(..n));
    let mut out = Vec::new();
    let failed = pump(&mut to.conn, &mut to.inbox, 0, &mut to.trace, &mut out);
    to.write(&out);
    if let Some(e) = failed {
        panic!("protocol error between correct peers: {e:?}");
    }
}

/// Checks that `bytes` is a sequence of whole, valid frames as `role` sends them.
fn check_transcript(bytes: &[u8], role: Role) {
    let mut pos = 0;
    let mut open: Option<(bool, Vec<u8>)> = None;
    let mut closed = false;
    while pos < bytes.len() {
        let (h, n) = match FrameHeader::parse(&bytes[pos..]) {
            Ok(HeaderStatus::Complete(h, n)) => (h, n),
            Ok(HeaderStatus::Partial) => panic!("{role:?} wrote a truncated frame"),
            Err(v) => panic!("{role:?} wrote an invalid frame: {v:?}"),
        };
        // After its Close an endpoint still answers Pings (RFC 6455 §5.5.2:
        // until it has the peer's Close), but sends nothing else (§5.5.1).
        assert!(
            !closed || h.opcode == OpCode::Pong,
            "{role:?} wrote a {:?} frame after its Close",
            h.opcode
        );
        assert_eq!(h.mask.is_some(), role == Role::Client, "mask bit by role");
        assert_eq!(h.rsv, 0, "rsv bits");
        let len = usize::try_from(h.payload_len).unwrap();
        let start = pos + n;
        assert!(
            start + len <= bytes.len(),
            "{role:?} wrote a truncated payload"
        );
        let mut payload = bytes[start..start + len].to_vec();
        if let Some(key) = h.mask {
            apply_mask(&mut payload, key, 0);
        }
        match h.opcode {
            OpCode::Close => {
                closed = true;
                match payload.as_slice() {
                    [] => {}
                    [hi, lo, reason @ ..] => {
                        let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
                        assert!(code.is_allowed_on_wire(), "sent close code {code:?}");
                        assert!(core::str::from_utf8(reason).is_ok(), "close reason utf-8");
                    }
                    [_] => panic!("one-byte close payload"),
                }
            }
            OpCode::Ping | OpCode::Pong => assert!(len <= 125),
            OpCode::Text | OpCode::Binary => {
                assert!(open.is_none(), "{role:?} started a message inside another");
                open = Some((h.opcode == OpCode::Text, payload));
            }
            OpCode::Continuation => {
                let (_, buf) = open.as_mut().expect("continuation with no message");
                buf.extend_from_slice(&payload);
            }
        }
        if !h.opcode.is_control() && h.fin {
            let (text, buf) = open.take().unwrap();
            if text {
                assert!(core::str::from_utf8(&buf).is_ok(), "{role:?} sent bad text");
            }
        }
        pos = start + len;
    }
}

fn pair_config(sel: u8) -> Config {
    let mut config = Config {
        auto_pong: sel & 1 == 0,
        ..Config::default()
    };
    if sel & 2 != 0 {
        config.keepalive = Some(Keepalive {
            interval: Duration::from_millis(1000),
            timeout: Duration::from_millis(500),
        });
    }
    if sel & 4 != 0 {
        config.idle_timeout = Some(Duration::from_millis(3000));
    }
    if sel & 8 != 0 {
        config.close_timeout = Duration::from_millis(200);
    }
    config
}

/// The `connection` target's input as the fuzzer builds it from raw bytes.
#[derive(Clone, Debug, arbitrary::Arbitrary)]
pub struct ConnectionInput {
    /// Configuration selector (see `pair_config`).
    pub config: u8,
    /// What both peers do, in order.
    pub ops: Vec<Op>,
}

/// Decodes raw fuzzer bytes exactly as the `connection` target does, then
/// runs them: a saved crash input replays through this.
pub fn connection_bytes(data: &[u8]) {
    use arbitrary::Arbitrary;
    let unstructured = arbitrary::Unstructured::new(data);
    if let Ok(input) = ConnectionInput::arbitrary_take_rest(unstructured) {
        connection(input.config, &input.ops);
    }
}

/// Runs `ops` on a client/server pair configured by `sel`, then delivers
/// everything and checks the oracles.
pub fn connection(sel: u8, ops: &[Op]) {
    let config = pair_config(sel);
    let mut client = Peer::new(Role::Client, config, 0xc11e);
    let mut server = Peer::new(Role::Server, config, 0x5e7e);
    let mut now = Instant::ZERO;
    // Timeouts, EOF or lost bytes make delivery partial (a prefix).
    let mut abnormal = false;
    for op in ops {
        match op {
            Op::SendText { client: c, text } => {
                let p = if *c { &mut client } else { &mut server };
                p.send(MessageKind::Text, text.as_bytes(), true, false);
            }
            Op::SendBinary { client: c, data } => {
                let p = if *c { &mut client } else { &mut server };
                p.send(MessageKind::Binary, data, true, false);
            }
            Op::SendFragment {
                client: c,
                text,
                data,
                fin,
            } => {
                let p = if *c { &mut client } else { &mut server };
                if *text {
                    let s = String::from_utf8_lossy(data).into_owned();
                    p.send(MessageKind::Text, s.as_bytes(), *fin, true);
                } else {
                    p.send(MessageKind::Binary, data, *fin, true);
                }
            }
            Op::Ping { client: c, payload } => {
                let p = if *c { &mut client } else { &mut server };
                let r = p.conn.ping(payload);
                p.command(r);
            }
            Op::Pong { client: c, payload } => {
                let p = if *c { &mut client } else { &mut server };
                let r = p.conn.pong(payload);
                p.command(r);
            }
            Op::Close {
                client: c,
                code,
                reason,
            } => {
                let p = if *c { &mut client } else { &mut server };
                let code = CODES.get(usize::from(*code)).copied().unwrap_or(*code);
                let r = p.conn.close(CloseCode(code), reason);
                if let Err(Error::Misuse(m)) = r {
                    if p.conn.state() == State::Open && !CloseCode(code).is_allowed_on_wire() {
                        assert_eq!(m, Misuse::InvalidCloseCode);
                    }
                }
                p.command(r);
            }
            Op::Deliver {
                from_client,
                max_bytes,
            } => {
                let max = usize::from(*max_bytes);
                if *from_client {
                    deliver(&mut client, &mut server, max);
                } else {
                    deliver(&mut server, &mut client, max);
                }
            }
            Op::AdvanceTime { ms } => {
                now += Duration::from_millis(u64::from(*ms));
                for p in [&mut client, &mut server] {
                    match p.conn.handle_timeout(now) {
                        Ok(()) => {}
                        Err(Error::Timeout(_)) => abnormal = true,
                        // A peer that stopped mid-message for long enough:
                        // the minimum-progress rule closes it with 1008.
                        Err(Error::Protocol(crate::Violation::TooSlow)) => abnormal = true,
                        Err(e) => panic!("handle_timeout failed with {e:?}"),
                    }
                    p.flush();
                }
            }
            Op::Eof { from_client } => {
                abnormal = true;
                let (from, to) = if *from_client {
                    (&mut client, &mut server)
                } else {
                    (&mut server, &mut client)
                };
                deliver(from, to, usize::MAX);
                from.wire_closed = true;
                match to.conn.receive_eof() {
                    Ok(()) | Err(Error::AbnormalClosure) => {}
                    Err(e) => panic!("receive_eof failed with {e:?}"),
                }
                to.flush();
            }
        }
    }
    // Deliver everything, both ways, until the wires are quiet.
    for _ in 0..64 {
        if client.wire.is_empty() && server.wire.is_empty() {
            break;
        }
        deliver(&mut client, &mut server, usize::MAX);
        deliver(&mut server, &mut client, usize::MAX);
    }
    assert!(
        client.wire.is_empty() && server.wire.is_empty(),
        "wires never settle"
    );
    check_transcript(&client.transcript, Role::Client);
    check_transcript(&server.transcript, Role::Server);
    for (from, to) in [(&client, &server), (&server, &client)] {
        assert!(
            !to.trace.has_error(),
            "protocol error between correct peers"
        );
        let got: Vec<&Item> = to
            .trace
            .items
            .iter()
            .filter(|i| matches!(i, Item::Text(_) | Item::Binary(_)))
            .collect();
        let sent: Vec<&Item> = from.sent.iter().collect();
        if abnormal {
            assert!(got.len() <= sent.len() && got[..] == sent[..got.len()]);
        } else {
            assert_eq!(got, sent, "delivered messages differ from sent");
            let partial = to.trace.partial.as_ref().map(|(_, d)| d.as_slice());
            let sending = from.sending.as_ref().map(|(_, d)| d.as_slice());
            assert_eq!(
                partial.unwrap_or_default(),
                sending.unwrap_or_default(),
                "unfinished message differs"
            );
        }
    }
}
