//! A core connection with or without permessage-deflate, chosen at run time
//! by the handshake.
//!
//! The core's `Connection<R, E>` holds its extension inline and fixes it by
//! type. The std drivers learn only during the handshake whether the peer
//! agreed to compress, so they hold one of these variants. A plain
//! connection stays as small as before; a compressing one is boxed and sized
//! by the agreed windows (16,584 B for 9-bit windows, 36,552 B for 12,
//! 159,432 B for 15), so an idle uncompressed connection never pays for a
//! compressor it does not use.
//!
//! The deflate states keep their windows on the heap (the core's `Heap`
//! storage, allocated zeroed in place), so building one never moves the
//! windows through the stack: a 15-bit connection is negotiated on a thread
//! with a 64 KiB stack.
//!
//! In the server's shared mode ([`crate::DeflateMemory::Shared`]) the
//! connection holds a `Pooled` extension instead: no state while idle, one
//! borrowed from the server's pool while a message is in flight.
//!
//! Every method only forwards to the core: there is no protocol logic here.

use crate::rng::StdRng;
use crate::SharedDeflate;
use std::ops::ControlFlow;
use wsproto::extensions::deflate::{
    Agreed, CompressionLevel, Deflate, Heap, HeapDeflate12, HeapDeflate15, HeapDeflate9, Pooled,
    WindowTooSmall,
};
use wsproto::{Config, Connection, Instant, MessageKind, Role, State};

/// The core connection of a std driver.
// The plain variant is inline on purpose: it is the size the driver had
// before deflate, and the deflate ones are what must not be.
#[allow(clippy::large_enum_variant)]
pub(crate) enum AnyConn {
    /// No extension.
    Plain(Connection<StdRng>),
    /// permessage-deflate, windows of at most 2^9 bytes.
    Deflate9(Box<Connection<StdRng, HeapDeflate9>>),
    /// permessage-deflate, windows of at most 2^12 bytes.
    Deflate12(Box<Connection<StdRng, HeapDeflate12>>),
    /// permessage-deflate, windows of at most 2^15 bytes.
    Deflate15(Box<Connection<StdRng, HeapDeflate15>>),
    /// permessage-deflate without context takeover, the state borrowed from
    /// a shared pool only while a message is in flight.
    Shared(Box<Connection<StdRng, Pooled<HeapDeflate15, SharedDeflate>>>),
}

/// Builds the deflate state for `agreed`, attaches it and moves the
/// connection to the heap. Kept out of line so that only the chosen state's
/// temporaries are ever on the stack, and none on the plain path
/// (unoptimized builds reserve slots for every temporary of a function).
#[inline(never)]
fn boxed<const IW: usize, const CB: usize, const CH: usize>(
    conn: Connection<StdRng>,
    agreed: &Agreed,
    level: CompressionLevel,
) -> Result<Box<Connection<StdRng, Deflate<IW, CB, CH, Heap>>>, WindowTooSmall> {
    let role = conn.role();
    let ext = Deflate::new(agreed, role)?.with_level(level);
    Ok(Box::new(conn.with_extension(ext)))
}

/// Runs `$body` with `$c` bound to the connection, whatever its extension.
macro_rules! each {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            AnyConn::Plain($c) => $body,
            AnyConn::Deflate9($c) => $body,
            AnyConn::Deflate12($c) => $body,
            AnyConn::Deflate15($c) => $body,
            AnyConn::Shared($c) => $body,
        }
    };
}

impl AnyConn {
    /// An open connection for `role`; with `deflate`, compressing as agreed,
    /// in the smallest state that holds both agreed windows, or with
    /// `shared` (and no context takeover agreed both ways) in states
    /// borrowed from that pool; our compressor works at `level`.
    pub fn new(
        role: Role,
        config: Config,
        rng: StdRng,
        deflate: Option<&Agreed>,
        shared: Option<&SharedDeflate>,
        level: CompressionLevel,
    ) -> Result<Self, WindowTooSmall> {
        let conn = Connection::with_rng(role, config, rng);
        let Some(agreed) = deflate else {
            return Ok(AnyConn::Plain(conn));
        };
        if let Some(pool) = shared {
            // Refused only with context takeover: then a state of its own.
            if let Ok(ext) = Pooled::new(agreed, role, pool.clone()) {
                let ext = ext.with_level(level);
                return Ok(AnyConn::Shared(Box::new(conn.with_extension(ext))));
            }
        }
        let dirs = agreed.directions(role);
        Ok(
            match dirs.inflate_window_bits.max(dirs.compress_window_bits) {
                ..=9 => AnyConn::Deflate9(boxed(conn, agreed, level)?),
                10..=12 => AnyConn::Deflate12(boxed(conn, agreed, level)?),
                _ => AnyConn::Deflate15(boxed(conn, agreed, level)?),
            },
        )
    }

    /// Whether messages may be compressed (an extension owns RSV1).
    pub fn compresses(&self) -> bool {
        !matches!(self, AnyConn::Plain(_))
    }

    pub fn role(&self) -> Role {
        each!(self, c => c.role())
    }

    pub fn state(&self) -> State {
        each!(self, c => c.state())
    }

    pub fn config(&self) -> Config {
        each!(self, c => c.config())
    }

    /// Every event the window holds, in one call (see
    /// `Connection::receive_each_with_remaining`).
    pub fn receive_each(
        &mut self,
        input: &mut [u8],
        scratch: &mut [u8],
        on_event: impl FnMut(wsproto::Event<'_>, u64) -> ControlFlow<()>,
    ) -> Result<usize, wsproto::Error> {
        each!(self, c => c.receive_each_with_remaining(input, scratch, on_event))
    }

    /// One step with data payloads unmasked into `dst` (see
    /// `Connection::receive_copy`).
    pub fn receive_copy<'a>(
        &mut self,
        input: &'a mut [u8],
        dst: &'a mut [u8],
    ) -> Result<wsproto::ReceivedCopy<'a>, wsproto::Error> {
        each!(self, c => c.receive_copy(input, dst))
    }

    pub fn frame_remaining(&self) -> u64 {
        each!(self, c => c.frame_remaining())
    }

    pub fn receive_eof(&mut self) -> Result<(), wsproto::Error> {
        each!(self, c => c.receive_eof())
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), wsproto::Error> {
        each!(self, c => c.handle_timeout(now))
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        each!(self, c => c.poll_timeout())
    }

    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Result<usize, wsproto::Error> {
        each!(self, c => c.poll_transmit(out))
    }

    pub fn should_close_transport(&self) -> bool {
        each!(self, c => c.should_close_transport())
    }

    pub fn send_buffer_len(&self, len: usize) -> usize {
        each!(self, c => c.send_buffer_len(len))
    }

    pub fn send_text(&mut self, text: &str, out: &mut [u8]) -> Result<usize, wsproto::Error> {
        each!(self, c => c.send_text(text, out))
    }

    pub fn send_binary(&mut self, data: &[u8], out: &mut [u8]) -> Result<usize, wsproto::Error> {
        each!(self, c => c.send_binary(data, out))
    }

    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
        out: &mut [u8],
    ) -> Result<usize, wsproto::Error> {
        each!(self, c => c.send_fragment(kind, data, fin, out))
    }

    pub fn send_header(
        &mut self,
        kind: MessageKind,
        len: usize,
        fin: bool,
        out: &mut [u8],
    ) -> Result<usize, wsproto::Error> {
        each!(self, c => c.send_header(kind, len, fin, out))
    }

    pub fn ping(&mut self, payload: &[u8]) -> Result<(), wsproto::Error> {
        each!(self, c => c.ping(payload))
    }

    pub fn pong(&mut self, payload: &[u8]) -> Result<(), wsproto::Error> {
        each!(self, c => c.pong(payload))
    }

    pub fn close(&mut self, code: wsproto::CloseCode, reason: &str) -> Result<(), wsproto::Error> {
        each!(self, c => c.close(code, reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;
    use wsproto::extensions::deflate::{accept_offer, write_offer, DeflateConfig};

    fn agreed(client_bits: u8, server_bits: u8) -> Agreed {
        let client = DeflateConfig {
            max_window_bits: client_bits,
            ..DeflateConfig::default()
        };
        let server = DeflateConfig {
            max_window_bits: server_bits,
            ..DeflateConfig::default()
        };
        let mut offer = [0u8; 128];
        let n = write_offer(&client, &mut offer).unwrap();
        accept_offer(std::str::from_utf8(&offer[..n]).unwrap(), &server).unwrap()
    }

    fn build(role: Role, deflate: Option<&Agreed>) -> AnyConn {
        AnyConn::new(
            role,
            Config::default(),
            StdRng::from_seed([1; 32]),
            deflate,
            None,
            CompressionLevel::Default,
        )
        .unwrap()
    }

    #[test]
    fn plain_without_agreement_and_sized_by_the_agreed_windows() {
        assert!(matches!(build(Role::Server, None), AnyConn::Plain(_)));
        for role in [Role::Client, Role::Server] {
            let c = build(role, Some(&agreed(9, 9)));
            assert!(matches!(c, AnyConn::Deflate9(_)), "{role:?}");
            let c = build(role, Some(&agreed(12, 10)));
            assert!(matches!(c, AnyConn::Deflate12(_)), "{role:?}");
            let c = build(role, Some(&agreed(15, 15)));
            assert!(matches!(c, AnyConn::Deflate15(_)), "{role:?}");
            assert!(c.compresses());
        }
        // The enum itself stays small: the deflate states are behind a Box.
        assert!(std::mem::size_of::<AnyConn>() <= std::mem::size_of::<Connection<StdRng>>() + 16);
    }

    #[test]
    fn shared_only_without_context_takeover_and_holding_nothing_idle() {
        let pool = SharedDeflate::new(4);
        let nct = DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        let mut offer = [0u8; 128];
        let n = write_offer(&DeflateConfig::default(), &mut offer).unwrap();
        let forced = accept_offer(std::str::from_utf8(&offer[..n]).unwrap(), &nct).unwrap();
        let build = |agreed: &Agreed| {
            let rng = StdRng::from_seed([1; 32]);
            AnyConn::new(
                Role::Server,
                Config::default(),
                rng,
                Some(agreed),
                Some(&pool),
                CompressionLevel::Default,
            )
            .unwrap()
        };
        let AnyConn::Shared(c) = build(&forced) else {
            panic!("no takeover both ways: shared");
        };
        assert!(!c.extension().holds_state());
        // What an idle connection adds to a plain one: the extension value.
        assert!(c.extension().memory() <= 128, "{}", c.extension().memory());
        // With takeover the state cannot be shared: one of its own.
        assert!(matches!(build(&agreed(15, 15)), AnyConn::Deflate15(_)));
    }

    #[test]
    fn the_level_reaches_the_compressor_per_connection_and_pooled() {
        // Chat-like JSON: the two levels parse it differently, so their
        // frames differ, and the peer inflates both to the same text.
        let mut text = String::new();
        for i in 0..120 {
            text.push_str(&format!(
                "{{\"type\":\"message\",\"user\":\"user{}\",\"text\":\"hello number {}\"}},",
                i % 7,
                i * 37 % 101
            ));
        }
        let pool = SharedDeflate::new(2);
        let nct = DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        let mut offer = [0u8; 128];
        let n = write_offer(&nct, &mut offer).unwrap();
        let forced = accept_offer(std::str::from_utf8(&offer[..n]).unwrap(), &nct).unwrap();
        for (agreement, shared) in [(agreed(15, 15), None), (forced, Some(&pool))] {
            let mut frames = Vec::new();
            for level in [CompressionLevel::Default, CompressionLevel::Fast] {
                let rng = StdRng::from_seed([1; 32]);
                let mut server = AnyConn::new(
                    Role::Server,
                    Config::default(),
                    rng,
                    Some(&agreement),
                    shared,
                    level,
                )
                .unwrap();
                let mut wire = vec![0u8; server.send_buffer_len(text.len())];
                let n = server.send_text(&text, &mut wire).unwrap();
                wire.truncate(n);
                assert!(n < text.len() / 4, "{level:?}: {n} bytes");
                frames.push(wire);
            }
            assert_ne!(frames[0], frames[1], "the same frame at both levels");
            for wire in &mut frames {
                let mut client = AnyConn::new(
                    Role::Client,
                    Config::default(),
                    StdRng::from_seed([2; 32]),
                    Some(&agreement),
                    None,
                    CompressionLevel::Default,
                )
                .unwrap();
                let mut scratch = vec![0u8; 64 << 10];
                let mut got = String::new();
                let used = client
                    .receive_each(wire, &mut scratch, |event, _| {
                        if let wsproto::Event::Text { data, .. } = event {
                            got.push_str(data);
                        }
                        ControlFlow::Continue(())
                    })
                    .unwrap();
                assert_eq!(used, wire.len());
                assert_eq!(got, text);
            }
        }
    }
}
