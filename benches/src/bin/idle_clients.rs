//! Opens N WebSocket connections to an echo server, sends one 5-byte text
//! message on each and checks its echo, then holds them all open, idle:
//!
//! ```text
//! idle_clients 127.0.0.1:9001 --conns 5000
//! ```
//!
//! Prints `ready N` on stdout once every connection has had its echo, then
//! waits for stdin to close (so `benches/idle_memory.sh` can read the
//! server's memory while the connections sit idle) and exits. Exits non-zero
//! if any connection or echo failed.

use std::io::Read;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use wsproto::{Connection, Event, Role};
use wsproto_benches::{config, connect, BoxError, XorShift};

/// Handshakes in progress at once: enough to be quick, few enough not to
/// overflow the server's accept backlog.
const CONCURRENT_HANDSHAKES: usize = 128;

/// Connects, sends "Hello" and waits for its echo; returns the idle stream.
async fn open_one(addr: &str, seed: u64) -> Result<TcpStream, BoxError> {
    let (mut stream, leftover) = connect(addr, seed).await?;
    let mut conn = Connection::with_rng(Role::Client, config(), XorShift(seed | 1));
    let mut out = [0u8; 64];
    let n = conn.send_text("Hello", &mut out)?;
    stream
        .write_all(out.get(..n).ok_or("frame larger than its buffer")?)
        .await?;
    let mut buf = vec![0u8; 4096];
    let mut len = leftover.len();
    buf.get_mut(..len)
        .ok_or("leftover too large")?
        .copy_from_slice(&leftover);
    loop {
        let mut pos = 0;
        loop {
            let window = buf.get_mut(pos..len).ok_or("bad window")?;
            let received = conn.receive(window)?;
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
        let read = stream.read(spare).await?;
        if read == 0 {
            return Err("the server closed the connection before the echo".into());
        }
        len += read;
    }
}

fn main() -> Result<(), BoxError> {
    let mut addr = "127.0.0.1:9001".to_owned();
    let mut conns = 5000usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--conns" => conns = args.next().ok_or("--conns needs a value")?.parse()?,
            "-h" | "--help" => {
                println!("usage: idle_clients ADDRESS [--conns N]");
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
                open_one(&addr, i as u64 + 1).await
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
