//! `frame_decoder`: arbitrary bytes into a server and a client connection,
//! in arbitrary chunks and byte by byte, compared with the whole-buffer feed.

use super::*;

// ---------------------------------------------------------------------------
// frame_decoder
// ---------------------------------------------------------------------------

/// Everything observable after feeding a connection.
#[derive(Debug, PartialEq, Eq)]
struct DecodeOutcome {
    trace: Trace,
    transmit: Vec<u8>,
    state: State,
    close_transport: bool,
    timeout: Option<Instant>,
}

fn decoder_config(sel: u8) -> Config {
    let mut config = Config {
        auto_pong: sel & 1 == 0,
        ..Config::default()
    };
    if sel & 2 != 0 {
        config.limits.max_frame_payload = 64;
        config.limits.max_message_size = 100;
        config.limits.max_fragments = 3;
    }
    config
}

fn run_decoder(role: Role, config: Config, stream: &[u8], plan: &[usize]) -> DecodeOutcome {
    let mut conn = Connection::with_rng(role, config, FuzzRng::new(0xdec0de));
    let mut buf = Vec::new();
    let mut trace = Trace::default();
    let mut transmit = Vec::new();
    let mut at = 0;
    for &size in plan {
        buf.extend_from_slice(&stream[at..at + size]);
        at += size;
        if pump(&mut conn, &mut buf, 0, &mut trace, &mut transmit).is_some() {
            // §7.1.7: after the failure every byte is consumed and ignored.
            buf.extend_from_slice(&stream[at..]);
            let len = buf.len();
            let r = conn.receive(&mut buf[..]).expect("input after failure");
            assert_eq!(
                r,
                Received {
                    consumed: len,
                    event: None
                }
            );
            drain_transmit(&mut conn, &mut transmit);
            assert!(conn.should_close_transport(), "failed but transport kept");
            // What a failed message had surfaced depends on the split; it is
            // discarded by any application anyway.
            trace.partial = None;
            break;
        }
    }
    DecodeOutcome {
        trace,
        transmit,
        state: conn.state(),
        close_transport: conn.should_close_transport(),
        timeout: conn.poll_timeout(),
    }
}

/// Byte 0: low nibble = number of chunk-size bytes that follow, high nibble =
/// configuration. Then the chunk sizes, then the stream.
pub fn frame_decoder(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(sel & 0x0f).min(rest.len());
    let (sizes, stream) = rest.split_at(n);
    let sizes: Vec<usize> = sizes.iter().map(|&b| usize::from(b)).collect();
    let config = decoder_config(sel >> 4);
    let prefix = &stream[..stream.len().min(4096)];
    for role in [Role::Server, Role::Client] {
        let whole = run_decoder(role, config, stream, &[stream.len()]);
        let chunked = run_decoder(role, config, stream, &chunk_plan(&sizes, stream.len()));
        assert_eq!(whole, chunked, "{role:?}: chunked feed differs");
        let whole_prefix = if prefix.len() == stream.len() {
            whole
        } else {
            run_decoder(role, config, prefix, &[prefix.len()])
        };
        let bytewise = run_decoder(role, config, prefix, &vec![1; prefix.len()]);
        assert_eq!(
            whole_prefix, bytewise,
            "{role:?}: byte-at-a-time feed differs"
        );
    }
}
