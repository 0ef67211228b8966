//! Echo servers built on other crates, for `benches/echo.sh`:
//!
//! ```text
//! peer_echo tungstenite 127.0.0.1:9002      # tokio-tungstenite
//! peer_echo fastwebsockets 127.0.0.1:9003   # fastwebsockets (FragmentCollector)
//! ```
//!
//! Both run on a default (multi-thread) tokio runtime, like
//! `echo_server --tokio`; pinned to one core, that is one worker. Text is
//! echoed as text and binary as binary. Each is written the way its crate's
//! own echo example is: tokio-tungstenite forwards the read half of a split
//! socket into the write half (pipelined echoes go out together),
//! fastwebsockets reads a frame and writes it back.

use futures_util::{StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(which), Some(addr)) = (args.first(), args.get(1)) else {
        return Err("usage: peer_echo tungstenite|fastwebsockets 127.0.0.1:PORT".into());
    };
    let which = which.clone();
    if which != "tungstenite" && which != "fastwebsockets" {
        return Err(format!("unknown peer {which}").into());
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(addr).await?;
        eprintln!("peer_echo {which} listening on {}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let tungstenite = which == "tungstenite";
            tokio::spawn(async move {
                let result = if tungstenite {
                    serve_tungstenite(stream).await
                } else {
                    serve_fastwebsockets(stream).await
                };
                if let Err(e) = result {
                    eprintln!("connection ended: {e}");
                }
            });
        }
    })
}

/// The shape of tokio-tungstenite's own echo example: the socket split in
/// two, the read half forwarded into the write half. `forward` feeds each
/// message into the sink while the stream has more ready and flushes only
/// when it has none, so a pipelined burst is answered in few writes.
async fn serve_tungstenite(stream: TcpStream) -> Result<(), BoxError> {
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20));
    let ws = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await?;
    let (write, read) = ws.split();
    // Pings are answered and the Close echoed by tungstenite itself; only
    // data goes back.
    read.try_filter(|msg| std::future::ready(msg.is_text() || msg.is_binary()))
        .forward(write)
        .await?;
    Ok(())
}

/// fastwebsockets leaves the HTTP upgrade to hyper; to keep hyper out of the
/// build, the upgrade is done with wsproto's handshake module (it is not part
/// of what the echo benchmark measures), then fastwebsockets takes the stream.
async fn serve_fastwebsockets(mut stream: TcpStream) -> Result<(), BoxError> {
    // The handshake's buffers are freed before the connection's life starts:
    // held in this frame, they would add 8 KiB to every idle connection.
    upgrade(&mut stream).await?;
    let mut ws = fastwebsockets::WebSocket::after_handshake(stream, fastwebsockets::Role::Server);
    ws.set_auto_close(true);
    ws.set_auto_pong(true);
    ws.set_max_message_size(64 << 20);
    let mut ws = fastwebsockets::FragmentCollector::new(ws);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            fastwebsockets::OpCode::Text | fastwebsockets::OpCode::Binary => {
                ws.write_frame(frame).await?;
            }
            fastwebsockets::OpCode::Close => break,
            _ => {}
        }
    }
    Ok(())
}

/// Reads the upgrade request and writes the 101.
async fn upgrade(stream: &mut TcpStream) -> Result<(), BoxError> {
    use wsproto::handshake::{Accept, ServerHandshake};
    let mut buf = vec![0u8; 8192];
    let mut len = 0;
    let mut handshake = ServerHandshake::new(&wsproto::Config::default(), wsproto::Instant::ZERO);
    let (response, head_len) = loop {
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Err("eof during handshake".into());
        }
        len += n;
        let mut headers = [wsproto::httparse::EMPTY_HEADER; 32];
        if let Some(req) = handshake
            .parse(&buf[..len], &mut headers)
            .map_err(|e| format!("{e:?}"))?
        {
            let mut out = [0u8; 512];
            let n = req
                .accept(&Accept::default(), &mut out)
                .map_err(|e| format!("{e:?}"))?;
            break (out[..n].to_vec(), req.head_len());
        }
    };
    if head_len != len {
        return Err("client sent frames before the 101".into());
    }
    stream.write_all(&response).await?;
    Ok(())
}
