//! WebSockets taken over from hyper and axum: a plain hyper HTTP/1.1 server,
//! an axum app, refused upgrades with the core's statuses, and several
//! WebSockets as HTTP/2 extended CONNECT streams on one connection
//! (RFC 8441). Clients are this crate's tokio client or raw requests.

use axum::response::Response as AxumResponse;
use axum::routing::get;
use axum::Router;
use http_body_util::{Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsproto_adapters::axum::WebSocketUpgrade;
use wsproto_adapters::upgrade::{self, websocket_over};
use wsproto_adapters::wsproto::{Config, Role};
use wsproto_adapters::{ClientOptions, Message, ServerOptions};

const LIMIT: Duration = Duration::from_secs(20);

fn chat_options() -> ServerOptions {
    ServerOptions {
        protocols: vec!["chat".into()],
        ..ServerOptions::default()
    }
}

/// Echoes every data message until the peer closes.
async fn echo<S>(mut ws: wsproto_adapters::tokio::WebSocket<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Ok(message) = ws.read().await {
        let sent = match message {
            Message::Text(text) => ws.send_text(&text).await,
            Message::Binary(data) => ws.send_binary(&data).await,
            _ => Ok(()),
        };
        if sent.is_err() {
            break;
        }
    }
}

async fn hyper_handler(
    mut request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let upgrade = match upgrade::accept(&request, &chat_options()) {
        Ok(upgrade) => upgrade,
        Err(rejection) => return Ok(rejection.response().map(|body| Full::new(body.into()))),
    };
    let response = upgrade.response().map(|()| Full::default());
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            if let Ok(ws) = upgrade.into_websocket(upgraded) {
                echo(ws).await;
            }
        }
    });
    Ok(response)
}

/// A hyper HTTP/1.1 server (with upgrades) on a free loopback port.
async fn hyper_http1_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(hyper_handler))
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

async fn axum_ws(ws: WebSocketUpgrade) -> AxumResponse {
    ws.options(chat_options()).on_upgrade(echo)
}

async fn axum_server() -> SocketAddr {
    let app = Router::new()
        .route("/ws", get(axum_ws))
        .route("/", get(|| async { "a page" }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// Our client: subprotocol and permessage-deflate agreed, text and binary
/// echoed (one message large enough to cross several reads), clean close.
async fn check_echo_with_our_client(url: &str) {
    let options = ClientOptions {
        protocols: vec!["chat".into()],
        ..ClientOptions::default()
    };
    let mut ws = wsproto_adapters::tokio::connect_with(url, &options)
        .await
        .unwrap();
    assert_eq!(ws.protocol(), Some("chat"));
    assert!(ws.deflate().is_some(), "permessage-deflate negotiated");
    ws.send_text("hello through the upgrade").await.unwrap();
    assert_eq!(
        ws.read().await.unwrap(),
        Message::Text("hello through the upgrade".into())
    );
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    ws.send_binary(&big).await.unwrap();
    assert_eq!(ws.read().await.unwrap(), Message::Binary(big));
    ws.close(1000, "done").await.unwrap();
}

/// Writes a raw request and returns the whole response head and body the
/// server sends before closing (or the first 4 KiB).
async fn raw_exchange(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = vec![0u8; 4096];
    let mut len = 0;
    // Until the server closes, or a short while after the head arrived (a
    // 101 leaves the connection open).
    while len < response.len() {
        let head_seen = String::from_utf8_lossy(&response[..len]).contains("\r\n\r\n");
        let wait = Duration::from_millis(if head_seen { 300 } else { 5000 });
        match tokio::time::timeout(wait, stream.read(&mut response[len..])).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(n)) => len += n,
        }
    }
    String::from_utf8_lossy(&response[..len]).into_owned()
}

const VALID_HEAD: &str = "Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

#[tokio::test]
async fn a_plain_hyper_server_hands_over_to_our_websocket() {
    tokio::time::timeout(LIMIT, async {
        let addr = hyper_http1_server().await;
        check_echo_with_our_client(&format!("ws://{addr}/chat")).await;
    })
    .await
    .expect("no hang");
}

#[tokio::test]
async fn an_axum_app_hands_over_to_our_websocket() {
    tokio::time::timeout(LIMIT, async {
        let addr = axum_server().await;
        check_echo_with_our_client(&format!("ws://{addr}/ws")).await;
        // The rest of the app is untouched.
        let page = raw_exchange(addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    })
    .await
    .expect("no hang");
}

#[tokio::test]
async fn refused_upgrades_get_the_cores_statuses_from_hyper_and_axum() {
    tokio::time::timeout(LIMIT, async {
        for addr in [hyper_http1_server().await, axum_server().await] {
            let no_key = "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
                Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
            let answer = raw_exchange(addr, no_key).await;
            assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
            assert!(answer.contains("invalid Sec-WebSocket-Key"), "{answer}");

            let old_version =
                format!("GET /ws HTTP/1.1\r\n{VALID_HEAD}Sec-WebSocket-Version: 8\r\n\r\n");
            let answer = raw_exchange(addr, &old_version).await;
            assert!(answer.starts_with("HTTP/1.1 426"), "{answer}");
            assert!(
                answer
                    .to_ascii_lowercase()
                    .contains("sec-websocket-version: 13"),
                "{answer}"
            );

            let not_upgrade = "GET /ws HTTP/1.1\r\nHost: a\r\n\r\n";
            let answer = raw_exchange(addr, not_upgrade).await;
            assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

            let valid =
                format!("GET /ws HTTP/1.1\r\n{VALID_HEAD}Sec-WebSocket-Version: 13\r\n\r\n");
            let answer = raw_exchange(addr, &valid).await;
            assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
            assert!(
                answer.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
                "RFC 6455 accept value: {answer}"
            );
        }
    })
    .await
    .expect("no hang");
}

/// A hyper HTTP/2 server (cleartext, prior knowledge) with the extended
/// CONNECT protocol enabled, counting the TCP connections it accepted.
async fn hyper_http2_server() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .enable_connect_protocol()
                    .serve_connection(TokioIo::new(stream), service_fn(hyper_handler))
                    .await;
            });
        }
    });
    (addr, connections)
}

fn extended_connect(addr: SocketAddr, version: &'static str) -> hyper::Request<Empty<Bytes>> {
    let mut request = hyper::Request::builder()
        .method(hyper::Method::CONNECT)
        .uri(format!("http://{addr}/chat"))
        .version(hyper::Version::HTTP_2)
        .header("sec-websocket-version", version)
        .header("sec-websocket-protocol", "chat")
        .body(Empty::new())
        .unwrap();
    request
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    request
}

#[tokio::test]
async fn several_websockets_share_one_http2_connection() {
    tokio::time::timeout(LIMIT, async {
        let (addr, connections) = hyper_http2_server().await;
        let stream = TcpStream::connect(addr).await.unwrap();
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);

        // A bad CONNECT is refused on its stream; the connection goes on.
        let mut bad = sender.clone();
        bad.ready().await.unwrap();
        let refused = bad.send_request(extended_connect(addr, "8")).await.unwrap();
        assert_eq!(refused.status(), 426);
        assert_eq!(refused.headers()["sec-websocket-version"], "13");

        let mut sockets = Vec::new();
        for _ in 0..3 {
            let mut sender = sender.clone();
            sender.ready().await.unwrap();
            let response = sender
                .send_request(extended_connect(addr, "13"))
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
            let upgraded = hyper::upgrade::on(response).await.unwrap();
            let ws = websocket_over(
                TokioIo::new(upgraded),
                Role::Client,
                Config::default(),
                Some("chat".into()),
                None,
            )
            .unwrap();
            sockets.push(ws);
        }
        // Interleave messages on the three streams.
        for round in 0..3 {
            for (i, ws) in sockets.iter_mut().enumerate() {
                ws.send_text(&format!("stream {i} round {round}"))
                    .await
                    .unwrap();
            }
            for (i, ws) in sockets.iter_mut().enumerate() {
                assert_eq!(
                    ws.read().await.unwrap(),
                    Message::Text(format!("stream {i} round {round}"))
                );
            }
        }
        for ws in &mut sockets {
            ws.close(1000, "").await.unwrap();
        }
        assert_eq!(
            connections.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "all streams on one TCP connection"
        );
    })
    .await
    .expect("no hang");
}
