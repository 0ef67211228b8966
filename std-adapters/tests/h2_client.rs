//! The HTTP/2 WebSocket client (RFC 8441, `wsproto_adapters::h2`): several
//! WebSockets as streams of one connection to the `axum_echo` example's
//! server, in process, in the clear (h2c) and over TLS with ALPN `h2`;
//! a server that does not enable extended CONNECT; a refused CONNECT; a
//! subprotocol agreed over HTTP/2.

// The example's `main` and helpers the tests do not call.
#[allow(dead_code)]
#[path = "../examples/axum_echo.rs"]
mod axum_echo;

use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashSet;
use std::convert::Infallible;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use wsproto_adapters::h2::{self, Http2Connection, NO_EXTENDED_CONNECT};
use wsproto_adapters::upgrade::{self, UpgradedWebSocket};
use wsproto_adapters::wsproto::HandshakeError;
use wsproto_adapters::{ClientOptions, CloseFrame, Error, Message, ServerOptions};

/// Nothing here may take longer than this.
const HANG: Duration = Duration::from_secs(30);

/// The example's cleartext server (HTTP/1.1, or HTTP/2 with prior
/// knowledge) on a free loopback port.
async fn echo_server() -> (SocketAddr, axum_echo::Stats) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = axum_echo::Stats::default();
    tokio::spawn(axum_echo::serve(listener, axum_echo::app(stats.clone())));
    (addr, stats)
}

fn plain() -> ClientOptions {
    ClientOptions {
        deflate: None,
        ..ClientOptions::default()
    }
}

async fn echo_text(ws: &mut UpgradedWebSocket, text: &str) {
    ws.send_text(text).await.unwrap();
    assert_eq!(ws.read().await.unwrap(), Message::Text(text.to_owned()));
}

/// Echoes, 1 MiB through a compressed stream, ping/pong and closes from
/// both sides on three WebSockets opened on `conn`.
async fn exercise(conn: &Http2Connection) {
    let mut uncompressed = conn.open("/plain", &plain()).await.unwrap();
    let mut compressed = conn
        .open("/compressed", &ClientOptions::default())
        .await
        .unwrap();
    let mut closing = conn.open("/server-closes", &plain()).await.unwrap();
    assert!(compressed.deflate().is_some(), "permessage-deflate agreed");
    assert!(uncompressed.deflate().is_none());
    assert_eq!(compressed.path(), "/compressed");

    for round in 0..3 {
        echo_text(&mut uncompressed, &format!("plain {round}")).await;
        echo_text(&mut compressed, &format!("compressed {round}")).await;
    }

    let big: Vec<u8> = (0..1usize << 20)
        .map(|i| (i % 251) as u8 ^ (i >> 12) as u8)
        .collect();
    compressed.send_binary(&big).await.unwrap();
    assert_eq!(compressed.read().await.unwrap(), Message::Binary(big));

    uncompressed.ping(b"are you there").await.unwrap();
    assert_eq!(
        uncompressed.read().await.unwrap(),
        Message::Pong(b"are you there".to_vec())
    );

    // The server closes this one after one echo.
    echo_text(&mut closing, "then close").await;
    assert_eq!(
        closing.read().await.unwrap(),
        Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "server closes".into()
        }))
    );
    assert!(matches!(closing.read().await, Err(Error::ConnectionClosed)));

    // The client closes the others; the server echoes the Close.
    uncompressed.close(1000, "client done").await.unwrap();
    compressed.close(1001, "going away").await.unwrap();
    assert!(matches!(
        uncompressed.read().await,
        Err(Error::ConnectionClosed)
    ));
}

/// Every WebSocket the server saw came over HTTP/2 on one TCP connection.
fn assert_one_http2_connection(stats: &axum_echo::Stats, count: usize) {
    let accepted = stats.list();
    assert_eq!(accepted.len(), count, "{accepted:?}");
    let connections: HashSet<_> = accepted.iter().map(|ws| ws.connection.clone()).collect();
    assert_eq!(connections.len(), 1, "one TCP connection: {accepted:?}");
    for ws in &accepted {
        assert_eq!(ws.version, "HTTP/2.0", "{ws:?}");
    }
}

#[tokio::test]
async fn several_websockets_share_one_h2c_connection() {
    tokio::time::timeout(HANG, async {
        let (addr, stats) = echo_server().await;
        let conn = Http2Connection::connect(&format!("ws://{addr}/"), &ClientOptions::default())
            .await
            .unwrap();
        assert!(conn.accepts_websockets());
        exercise(&conn).await;
        // A full URL on the same server names the path too.
        let mut by_url = conn
            .open(&format!("ws://{addr}/by-url?x=1"), &plain())
            .await
            .unwrap();
        assert_eq!(by_url.path(), "/by-url?x=1");
        echo_text(&mut by_url, "by url").await;
        by_url.close(1000, "").await.unwrap();
        assert_one_http2_connection(&stats, 4);
        assert!(stats.list().iter().any(|ws| ws.path == "/by-url?x=1"));
    })
    .await
    .expect("no hang");
}

#[tokio::test]
async fn many_streams_opened_at_once_from_clones_of_the_handle() {
    tokio::time::timeout(HANG, async {
        let (addr, stats) = echo_server().await;
        let conn = Http2Connection::connect(&format!("ws://{addr}/"), &plain())
            .await
            .unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let conn = conn.clone();
                tokio::spawn(async move {
                    let mut ws = conn.open(&format!("/many/{i}"), &plain()).await.unwrap();
                    for round in 0..5 {
                        echo_text(&mut ws, &format!("{i}.{round}")).await;
                    }
                    ws.close(1000, "").await.unwrap();
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_one_http2_connection(&stats, 20);
    })
    .await
    .expect("no hang");
}

#[tokio::test]
async fn a_websocket_outlives_the_connection_handle() {
    tokio::time::timeout(HANG, async {
        let (addr, stats) = echo_server().await;
        let mut ws = h2::connect(&format!("ws://{addr}/one-shot"), &ClientOptions::default())
            .await
            .unwrap();
        assert!(ws.deflate().is_some());
        echo_text(&mut ws, "one connection, one WebSocket").await;
        ws.close(1000, "").await.unwrap();
        assert_one_http2_connection(&stats, 1);
        assert_eq!(stats.list()[0].path, "/one-shot");
    })
    .await
    .expect("no hang");
}

#[tokio::test]
async fn over_tls_with_alpn_h2() {
    tokio::time::timeout(HANG, async {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert_pem = cert.cert.pem();
        let acceptor = wsproto_adapters::tls::Acceptor::from_pem(
            cert_pem.as_bytes(),
            cert.signing_key.serialize_pem().as_bytes(),
        )
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stats = axum_echo::Stats::default();
        tokio::spawn(axum_echo::serve_tls(
            listener,
            acceptor,
            axum_echo::app(stats.clone()),
        ));
        let trust = wsproto_adapters::tls::client_config_from_pem(cert_pem.as_bytes()).unwrap();
        let conn = Http2Connection::connect_tls(
            &format!("wss://localhost:{port}/"),
            &ClientOptions::default(),
            trust,
        )
        .await
        .unwrap();
        exercise(&conn).await;
        assert_one_http2_connection(&stats, 3);
    })
    .await
    .expect("no hang");
}

/// A hyper HTTP/2 server in the clear: `/refuse` is answered 403, anything
/// else is a WebSocket (subprotocol `chat` when offered) that echoes text.
/// `connect_protocol: false` leaves SETTINGS_ENABLE_CONNECT_PROTOCOL out.
/// Counts the TCP connections it accepts.
async fn hyper_server(connect_protocol: bool) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            if connect_protocol {
                builder.enable_connect_protocol();
            }
            let service = hyper::service::service_fn(handle);
            tokio::spawn(async move {
                let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
            });
        }
    });
    (addr, connections)
}

async fn handle(
    mut request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Empty<Bytes>>, Infallible> {
    if request.uri().path() == "/refuse" {
        let mut response = hyper::Response::new(Empty::new());
        *response.status_mut() = hyper::StatusCode::FORBIDDEN;
        return Ok(response);
    }
    let options = ServerOptions {
        protocols: vec!["chat".to_owned()],
        ..ServerOptions::default()
    };
    let upgrade = match upgrade::accept(&request, &options) {
        Ok(upgrade) => upgrade,
        Err(rejection) => return Ok(rejection.response().map(|_| Empty::new())),
    };
    let response = upgrade.response().map(|()| Empty::new());
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let mut ws = upgrade.into_websocket(on_upgrade.await.unwrap()).unwrap();
        while let Ok(message) = ws.read().await {
            if let Message::Text(text) = message {
                if ws.send_text(&text).await.is_err() {
                    break;
                }
            }
        }
    });
    Ok(response)
}

#[tokio::test]
async fn a_server_without_extended_connect_is_a_clear_error() {
    tokio::time::timeout(HANG, async {
        let (addr, _) = hyper_server(false).await;
        let err = Http2Connection::connect(&format!("ws://{addr}/"), &ClientOptions::default())
            .await
            .unwrap_err();
        match &err {
            Error::Io(e) => {
                assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
                assert_eq!(e.to_string(), NO_EXTENDED_CONNECT);
            }
            other => panic!("expected the RFC 8441 error, got {other:?}"),
        }
        assert!(err.to_string().contains("RFC 8441"), "{err}");
    })
    .await
    .expect("no hang");
}

#[tokio::test]
async fn a_refused_connect_gives_its_status_and_the_connection_goes_on() {
    tokio::time::timeout(HANG, async {
        let (addr, connections) = hyper_server(true).await;
        let conn = Http2Connection::connect(&format!("ws://{addr}/"), &ClientOptions::default())
            .await
            .unwrap();
        let Err(refused) = conn.open("/refuse", &plain()).await else {
            panic!("/refuse was accepted");
        };
        assert!(
            matches!(
                refused,
                Error::Handshake(HandshakeError::UnexpectedStatus(403))
            ),
            "{refused:?}"
        );

        // The server's `chat` subprotocol is agreed when offered.
        let options = ClientOptions {
            protocols: vec!["superchat".to_owned(), "chat".to_owned()],
            ..ClientOptions::default()
        };
        let mut chat = conn.open("/chat", &options).await.unwrap();
        assert_eq!(chat.protocol(), Some("chat"));
        assert!(chat.deflate().is_some());
        echo_text(&mut chat, "after a refusal").await;

        // No subprotocol offered: none agreed.
        let mut bare = conn.open("/bare", &plain()).await.unwrap();
        assert_eq!(bare.protocol(), None);
        echo_text(&mut bare, "bare").await;
        chat.close(1000, "").await.unwrap();
        bare.close(1000, "").await.unwrap();
        assert_eq!(connections.load(Ordering::SeqCst), 1);
        assert!(!conn.is_closed());
    })
    .await
    .expect("no hang");
}

#[tokio::test]
async fn a_server_that_sends_no_settings_times_out() {
    tokio::time::timeout(HANG, async {
        // Accepts TCP and says nothing.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let silent = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio::time::sleep(HANG).await;
            drop(tcp);
        });
        let mut options = ClientOptions::default();
        options.config.handshake_timeout = wsproto_adapters::wsproto::Duration::from_millis(300);
        let err = Http2Connection::connect(&format!("ws://{addr}/"), &options)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Handshake(HandshakeError::Timeout)),
            "{err:?}"
        );
        silent.abort();
    })
    .await
    .expect("no hang");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_settings_are_read_before_connect_returns_on_a_multi_thread_runtime() {
    tokio::time::timeout(HANG, async {
        let (addr, stats) = echo_server().await;
        let url = format!("ws://{addr}/");
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let url = url.clone();
                tokio::spawn(async move {
                    let conn = Http2Connection::connect(&url, &plain()).await.unwrap();
                    assert!(conn.accepts_websockets());
                    let mut ws = conn.open(&format!("/mt/{i}"), &plain()).await.unwrap();
                    echo_text(&mut ws, "settled").await;
                    ws.close(1000, "").await.unwrap();
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let connections: HashSet<_> = stats.list().into_iter().map(|ws| ws.connection).collect();
        assert_eq!(connections.len(), 40, "one connection per connect");
    })
    .await
    .expect("no hang");
}

#[tokio::test]
async fn connect_with_the_http2_option_opens_a_stream_not_an_upgrade() {
    tokio::time::timeout(HANG, async {
        let (addr, stats) = echo_server().await;
        let options = ClientOptions {
            http2: true,
            ..ClientOptions::default()
        };
        let url = format!("ws://{addr}/option");
        let mut ws = wsproto_adapters::tokio::connect_with(&url, &options)
            .await
            .unwrap();
        assert!(ws.get_ref().is_http2());
        assert!(
            ws.get_ref().tcp().is_none(),
            "the TCP connection is HTTP/2's"
        );
        assert!(
            ws.deflate().is_some(),
            "negotiated over HTTP/2 as over HTTP/1.1"
        );
        ws.send_text("over a stream").await.unwrap();
        assert_eq!(
            ws.read().await.unwrap(),
            Message::Text("over a stream".into())
        );
        ws.close(1000, "").await.unwrap();
        assert_one_http2_connection(&stats, 1);
        // Without the option, the same call is an HTTP/1.1 upgrade.
        let mut plain_ws = wsproto_adapters::tokio::connect(&url).await.unwrap();
        assert!(!plain_ws.get_ref().is_http2());
        assert!(plain_ws.get_ref().tcp().is_some());
        plain_ws.close(1000, "").await.unwrap();
        assert_eq!(stats.list()[1].version, "HTTP/1.1");
        // The blocking driver has no HTTP/2 and says so.
        let Err(refused) = wsproto_adapters::blocking::connect_with(&url, &options) else {
            panic!("the blocking driver opened an HTTP/2 WebSocket");
        };
        assert!(refused.to_string().contains("tokio driver"), "{refused}");
    })
    .await
    .expect("no hang");
}
