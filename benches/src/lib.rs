//! Benchmarks support crate (binaries live in src/bin): what the load
//! generators share — a cheap RNG for masks, the client configuration, and
//! the opening handshake over a tokio socket, done with the core directly so
//! the generators stay cheap next to the servers they measure.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsproto::handshake::{ClientHandshake, ClientRequest};
use wsproto::Config;

/// The generators' error type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A xorshift64 generator: masking keys need no cryptographic strength in a
/// benchmark, only to be cheap.
#[derive(Clone)]
pub struct XorShift(pub u64);

impl wsproto::rand_core::RngCore for XorShift {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for b in dst {
            *b = self.next_u64() as u8;
        }
    }
}

/// The generators' limits: large enough for every benchmarked size.
pub fn config() -> Config {
    let mut config = Config::default();
    config.limits.max_message_size = 64 << 20;
    config.limits.max_frame_payload = 64 << 20;
    config
}

/// Connects to `addr` (with `TCP_NODELAY`) and runs the opening handshake
/// (no extension offered); returns the stream and any bytes that followed
/// the 101 response.
pub async fn connect(addr: &str, seed: u64) -> Result<(TcpStream, Vec<u8>), BoxError> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let request = ClientRequest::new(addr, "/");
    let mut out = [0u8; 1024];
    let mut rng = XorShift(seed | 1);
    let (mut handshake, n) = ClientHandshake::new(
        &request,
        &mut rng,
        &config(),
        wsproto::Instant::ZERO,
        &mut out,
    )
    .map_err(|e| format!("{e:?}"))?;
    stream
        .write_all(out.get(..n).ok_or("handshake larger than its buffer")?)
        .await?;
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        let spare = buf.get_mut(len..).ok_or("handshake response too large")?;
        if spare.is_empty() {
            return Err("handshake response too large".into());
        }
        let read = stream.read(spare).await?;
        if read == 0 {
            return Err("eof during handshake".into());
        }
        len += read;
        let mut headers = [wsproto::httparse::EMPTY_HEADER; 32];
        let head = buf.get(..len).ok_or("bad length")?;
        if let Some(response) = handshake
            .parse(&request, head, &mut headers)
            .map_err(|e| format!("{e:?}"))?
        {
            let rest = buf.get(response.head_len()..len).unwrap_or_default();
            return Ok((stream, rest.to_vec()));
        }
    }
}
