//! Opens N WebSocket connections to an echo server, sends one 5-byte text
//! message on each and checks its echo, then holds them all open, idle:
//!
//! ```text
//! idle_clients 127.0.0.1:9001 --conns 5000 [--deflate]
//! ```
//!
//! With `--deflate` every connection offers permessage-deflate (the default
//! offer: 15-bit windows, context takeover; the server decides what it
//! agrees to) and fails unless the server agreed; "Hello" and its echo are
//! then compressed. The client drops its own deflate state after the echo.
//!
//! Prints `ready N` on stdout once every connection has had its echo, then
//! waits for stdin to close (so `benches/idle_memory.sh` can read the
//! server's memory while the connections sit idle) and exits. Exits non-zero
//! if any connection or echo failed.

use std::io::Read;
use std::sync::Arc;

use tokio::io::AsyncRead;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use wsproto::extensions::deflate::{DeflateConfig, HeapDeflate15};
use wsproto::handshake::{ClientHandshake, ClientRequest};
use wsproto::{Connection, Event, Extension, Role};
use wsproto_benches::{config, connect, BoxError, XorShift};

/// Handshakes in progress at once: enough to be quick, few enough not to
/// overflow the server's accept backlog.
const CONCURRENT_HANDSHAKES: usize = 128;

/// Connects, sends "Hello" and waits for its echo; returns the idle stream.
async fn open_one(addr: &str, seed: u64, deflate: bool) -> Result<TcpStream, BoxError> {
    let conn = Connection::with_rng(Role::Client, config(), XorShift(seed | 1));
    if !deflate {
        let (stream, leftover) = connect(addr, seed).await?;
        return echo(stream, leftover, conn).await;
    }
    let (stream, leftover, agreed) = connect_deflate(addr, seed).await?;
    let state = HeapDeflate15::new(&agreed, Role::Client).map_err(|e| e.to_string())?;
    echo(stream, leftover, conn.with_extension(state)).await
}

/// The handshake with the default permessage-deflate offer; fails unless
/// the server agreed to it.
async fn connect_deflate(
    addr: &str,
    seed: u64,
) -> Result<(TcpStream, Vec<u8>, wsproto::extensions::deflate::Agreed), BoxError> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let request = ClientRequest::new(addr, "/");
    let mut out = [0u8; 1024];
    let mut rng = XorShift(seed | 1);
    let (mut handshake, n) = ClientHandshake::new_with_deflate(
        &request,
        &DeflateConfig::default(),
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
        len += read_some(&mut stream, spare).await?;
        let mut headers = [wsproto::httparse::EMPTY_HEADER; 32];
        let head = buf.get(..len).ok_or("bad length")?;
        if let Some(response) = handshake
            .parse(&request, head, &mut headers)
            .map_err(|e| format!("{e:?}"))?
        {
            let agreed = response.deflate().ok_or("the server declined deflate")?;
            let rest = buf.get(response.head_len()..len).unwrap_or_default();
            return Ok((stream, rest.to_vec(), agreed));
        }
    }
}

async fn read_some(
    stream: &mut (impl AsyncRead + Unpin),
    spare: &mut [u8],
) -> Result<usize, BoxError> {
    match stream.read(spare).await? {
        0 => Err("the server closed the connection".into()),
        n => Ok(n),
    }
}

/// Sends "Hello" on `conn` and waits for its echo.
async fn echo<E: Extension>(
    mut stream: TcpStream,
    leftover: Vec<u8>,
    mut conn: Connection<XorShift, E>,
) -> Result<TcpStream, BoxError> {
    let mut out = [0u8; 64];
    let n = conn.send_text("Hello", &mut out)?;
    stream
        .write_all(out.get(..n).ok_or("frame larger than its buffer")?)
        .await?;
    let mut buf = vec![0u8; 4096];
    let mut scratch = vec![0u8; 4096];
    let mut len = leftover.len();
    buf.get_mut(..len)
        .ok_or("leftover too large")?
        .copy_from_slice(&leftover);
    loop {
        let mut pos = 0;
        loop {
            let window = buf.get_mut(pos..len).ok_or("bad window")?;
            let received = conn.receive_into(window, &mut scratch)?;
            match received.event {
                Some(Event::Text {
                    data: "Hello",
                    fin: true,
                }) => return Ok(stream),
                Some(Event::Ping { .. } | Event::Pong { .. }) => {}
                Some(other) => return Err(format!("unexpected echo {other:?}").into()),
                None if received.consumed == 0 => break,
                None => {}
            }
            pos += received.consumed;
        }
        buf.copy_within(pos..len, 0);
        len -= pos;
        let spare = buf.get_mut(len..).ok_or("bad window")?;
        len += read_some(&mut stream, spare).await?;
    }
}

fn main() -> Result<(), BoxError> {
    let mut addr = "127.0.0.1:9001".to_owned();
    let mut conns = 5000usize;
    let mut deflate = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--deflate" => deflate = true,
            "--conns" => conns = args.next().ok_or("--conns needs a value")?.parse()?,
            "-h" | "--help" => {
                println!("usage: idle_clients ADDRESS [--conns N] [--deflate]");
                return Ok(());
            }
            s if !s.starts_with('-') => addr = s.to_owned(),
            s => return Err(format!("unknown option {s}").into()),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let streams = runtime.block_on(async move {
        let gate = Arc::new(Semaphore::new(CONCURRENT_HANDSHAKES));
        let addr = Arc::new(addr);
        let mut tasks = Vec::with_capacity(conns);
        for i in 0..conns {
            let gate = gate.clone();
            let addr = addr.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await?;
                open_one(&addr, i as u64 + 1, deflate).await
            }));
        }
        let mut streams = Vec::with_capacity(conns);
        for task in tasks {
            streams.push(task.await??);
        }
        Ok::<_, BoxError>(streams)
    })?;
    println!("ready {}", streams.len());
    // Hold the connections until whoever started us is done measuring.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(streams);
    Ok(())
}
