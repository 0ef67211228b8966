//! Loopback echo load generator: N WebSocket connections, K binary messages in
//! flight on each, for T seconds. Every echo is checked byte for byte.
//!
//! ```text
//! loadgen 127.0.0.1:9001 --conns 16 --inflight 16 --size 1024 --secs 3
//! loadgen 127.0.0.1:9001 --conns 16 --inflight 1 --size 65536 --count 500
//! ```
//!
//! Built on the wsproto core directly (client handshake + frames over tokio
//! sockets, one current-thread runtime), so the generator itself stays cheap.
//! Each connection holds K messages in flight: a message goes out as soon as
//! an echo comes back, and the messages for all the echoes that arrived in
//! one read leave in one write (as pipelining clients send a burst).
//! With `--count N` each connection sends exactly N messages and stops when
//! their echoes are back, however long that takes: a fixed load, for
//! counting the server's instructions or syscalls per message (under
//! `valgrind` or `perf stat`) where seconds are too noisy.
//! Prints one line of `key=value`: msgs, msg_per_s, p50_us, p99_us, errors.
//! Exits non-zero if any echo was wrong or missing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use wsproto::{Connection, Event, Role};
use wsproto_benches::{config, connect, BoxError, XorShift};

struct Args {
    addr: String,
    conns: usize,
    inflight: usize,
    size: usize,
    secs: f64,
    /// Messages per connection (`--count`); `None`: as many as `secs` allow.
    count: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:9001".into(),
        conns: 1,
        inflight: 1,
        size: 16,
        secs: 3.0,
        count: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--conns" => args.conns = value()?.parse().map_err(|e| format!("{e}"))?,
            "--inflight" => args.inflight = value()?.parse().map_err(|e| format!("{e}"))?,
            "--size" => args.size = value()?.parse().map_err(|e| format!("{e}"))?,
            "--secs" => args.secs = value()?.parse().map_err(|e| format!("{e}"))?,
            "--count" => args.count = Some(value()?.parse().map_err(|e| format!("{e}"))?),
            s if !s.starts_with("--") => args.addr = s.to_owned(),
            s => return Err(format!("unknown option {s}")),
        }
    }
    if args.size < 8 || args.conns == 0 || args.inflight == 0 || args.count == Some(0) {
        return Err("size must be >= 8, conns, inflight and count >= 1".into());
    }
    Ok(args)
}

#[derive(Default)]
struct ConnResult {
    msgs: u64,
    latencies_ns: Vec<u32>,
    errors: u64,
}

fn expected_payload(size: usize, seq: u64, template: &mut [u8]) {
    template[..8].copy_from_slice(&seq.to_le_bytes());
    debug_assert_eq!(template.len(), size);
}

async fn run_conn(
    stream: TcpStream,
    leftover: Vec<u8>,
    args: Arc<Args>,
    seed: u64,
    start: Instant,
    deadline: Instant,
) -> ConnResult {
    let (mut rd, mut wr) = stream.into_split();
    let credits = Arc::new(Semaphore::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    let size = args.size;
    let pattern: Vec<u8> = (0..size).map(|i| (i * 31 + 7) as u8).collect();

    let writer_credits = credits.clone();
    let writer_pattern = pattern.clone();
    let inflight = args.inflight;
    let count = args.count.unwrap_or(u64::MAX);
    let writer = async move {
        tokio::time::sleep_until(start.into()).await;
        writer_credits.add_permits(inflight);
        let mut conn = Connection::with_rng(Role::Client, config(), XorShift(seed | 1));
        let mut payload = writer_pattern;
        let frame_max = size + 14;
        let mut out = vec![0u8; frame_max];
        let mut seq = 0u64;
        'run: loop {
            // One credit per echo that came back: wait for one, then take
            // every other one already there, and write all those messages
            // in one write, as a pipelining client does.
            let Ok(permit) = writer_credits.acquire().await else {
                break;
            };
            permit.forget();
            let more = writer_credits.available_permits();
            if let Ok(extra) = writer_credits.try_acquire_many(more as u32) {
                extra.forget();
            }
            let mut len = 0;
            for _ in 0..=more {
                let now = Instant::now();
                if now >= deadline || seq >= count {
                    break;
                }
                seq += 1;
                expected_payload(size, seq, &mut payload);
                if out.len() < len + frame_max {
                    out.resize(len + frame_max, 0);
                }
                let Ok(n) = conn.send_binary(&payload, &mut out[len..]) else {
                    break 'run;
                };
                len += n;
                if tx.send((seq, now)).is_err() {
                    break 'run;
                }
            }
            if len == 0 || wr.write_all(&out[..len]).await.is_err() || seq >= count {
                break;
            }
        }
        drop(tx);
        wr // keep the write half open until the reader is done
    };

    let reader_credits = credits.clone();
    let reader_inner = async move {
        let mut result = ConnResult::default();
        let mut conn = Connection::new(Role::Client, config());
        let mut buf = vec![0u8; (size + 14).max(64 << 10) * 2];
        let mut len = leftover.len();
        buf[..len].copy_from_slice(&leftover);
        let mut expected = pattern;
        let mut offset = 0usize; // bytes of the current echo seen so far
        let mut current: Option<(u64, Instant)> = None;
        let hard_stop = deadline + Duration::from_secs(10);
        loop {
            // Decode everything buffered.
            let mut pos = 0;
            loop {
                let received = match conn.receive(&mut buf[pos..len]) {
                    Ok(r) => r,
                    Err(_) => {
                        result.errors += 1;
                        return result;
                    }
                };
                let consumed = received.consumed;
                match received.event {
                    Some(Event::Binary { data, fin }) => {
                        if current.is_none() {
                            match rx.try_recv() {
                                Ok((seq, sent)) => {
                                    expected_payload(size, seq, &mut expected);
                                    current = Some((seq, sent));
                                    offset = 0;
                                }
                                Err(_) => {
                                    result.errors += 1; // an echo nobody sent
                                    return result;
                                }
                            }
                        }
                        if expected.get(offset..offset + data.len()) != Some(data) {
                            result.errors += 1;
                            return result;
                        }
                        offset += data.len();
                        if fin {
                            let done = Instant::now();
                            if offset != size {
                                result.errors += 1;
                                return result;
                            }
                            if let Some((_, sent)) = current.take() {
                                if done <= deadline {
                                    result.msgs += 1;
                                    let ns = done.duration_since(sent).as_nanos();
                                    result.latencies_ns.push(ns.min(u32::MAX as u128) as u32);
                                }
                            }
                            credits.add_permits(1);
                        }
                    }
                    Some(_) => {}
                    None if consumed == 0 => break,
                    None => {}
                }
                pos += consumed;
            }
            buf.copy_within(pos..len, 0);
            len -= pos;
            // Done when every echo came back and no more will be sent: the
            // writer checks the deadline and queues the send with no await in
            // between, so after the deadline an empty queue stays empty.
            if current.is_none() && rx.is_empty() && (rx.is_closed() || Instant::now() >= deadline)
            {
                return result;
            }
            let read = tokio::time::timeout_at(hard_stop.into(), rd.read(&mut buf[len..])).await;
            match read {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => {
                    // EOF, error or timeout with echoes outstanding.
                    if current.is_some() || !rx.is_empty() {
                        result.errors += 1;
                    }
                    return result;
                }
                Ok(Ok(n)) => len += n,
            }
        }
    };
    let reader = async move {
        let result = reader_inner.await;
        reader_credits.close(); // releases a writer waiting for a credit
        result
    };
    let (wr, result) = tokio::join!(writer, reader);
    drop(wr);
    result
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() -> Result<(), BoxError> {
    let args = Arc::new(parse_args()?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (msgs, mut latencies, errors, secs) = runtime.block_on(async {
        let mut conns = Vec::with_capacity(args.conns);
        for i in 0..args.conns {
            let seed = 0x5eed_0000 ^ ((i as u64) << 20) ^ std::process::id() as u64;
            conns.push((connect(&args.addr, seed).await?, seed));
        }
        let start = Instant::now() + Duration::from_millis(50);
        // A fixed count runs until it is done (the deadline only bounds a
        // stuck server).
        let secs = match args.count {
            Some(_) => 86_400.0,
            None => args.secs,
        };
        let deadline = start + Duration::from_secs_f64(secs);
        let mut tasks = Vec::with_capacity(args.conns);
        for ((stream, leftover), seed) in conns {
            tasks.push(tokio::spawn(run_conn(
                stream,
                leftover,
                args.clone(),
                seed,
                start,
                deadline,
            )));
        }
        let mut msgs = 0u64;
        let mut errors = 0u64;
        let mut latencies = Vec::new();
        for task in tasks {
            let r = task.await?;
            msgs += r.msgs;
            errors += r.errors;
            latencies.extend(r.latencies_ns);
        }
        let secs = match args.count {
            Some(_) => start.elapsed().as_secs_f64(),
            None => args.secs,
        };
        Ok::<_, BoxError>((msgs, latencies, errors, secs))
    })?;
    latencies.sort_unstable();
    println!(
        "msgs={msgs} secs={secs} msg_per_s={:.0} p50_us={:.1} p99_us={:.1} errors={errors} conns={} inflight={} size={}",
        msgs as f64 / secs,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        args.conns,
        args.inflight,
        args.size
    );
    if errors > 0 || msgs == 0 {
        std::process::exit(1);
    }
    Ok(())
}
