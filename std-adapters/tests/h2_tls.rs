//! WebSockets over HTTP/2 over TLS (RFC 8441): the `axum_echo` example's
//! TLS server, in process, and a hyper HTTP/2 client over tokio-rustls that
//! negotiates `h2` by ALPN and opens several WebSockets as streams of one
//! TCP connection. Echoes (one stream compressed, with a 1 MiB message),
//! ping/pong, closes from either side, refused CONNECTs that leave the
//! connection serving, and HTTP/2 flow control: a stream whose reader
//! stopped does not stall the others.

// The example's `main` and helpers the tests do not call.
#[allow(dead_code)]
#[path = "../examples/axum_echo.rs"]
mod axum_echo;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use wsproto_adapters::tls::{self, rustls, tokio_rustls};
use wsproto_adapters::upgrade::{websocket_over, UpgradedWebSocket};
use wsproto_adapters::wsproto::handshake::{ClientConnect, ClientRequest};
use wsproto_adapters::wsproto::httparse::Header;
use wsproto_adapters::wsproto::{Config, Role};
use wsproto_adapters::{ClientOptions, CloseFrame, Error, Message};

/// Nothing here may take longer than this.
const HANG: Duration = Duration::from_secs(30);

struct Server {
    addr: SocketAddr,
    stats: axum_echo::Stats,
    cert_pem: String,
}

/// The example's TLS server on a free loopback port, with a fresh
/// self-signed certificate for `localhost`.
async fn server() -> Server {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = cert.cert.pem();
    let acceptor = tls::Acceptor::from_pem(
        cert_pem.as_bytes(),
        cert.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = axum_echo::Stats::default();
    tokio::spawn(axum_echo::serve_tls(
        listener,
        acceptor,
        axum_echo::app(stats.clone()),
    ));
    Server {
        addr,
        stats,
        cert_pem,
    }
}

/// One HTTP/2 connection over TLS (ALPN `h2`, the test certificate
/// trusted); returns the request sender and the client's local address.
async fn h2_connection(server: &Server) -> (SendRequest<Empty<Bytes>>, SocketAddr) {
    let mut config = rustls::ClientConfig::clone(
        &tls::client_config_from_pem(server.cert_pem.as_bytes()).unwrap(),
    );
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(
        stream.get_ref().1.alpn_protocol(),
        Some(&b"h2"[..]),
        "the server agreed on h2"
    );
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    (sender, local)
}

/// An extended CONNECT for `path` with the core's client fields (and
/// `extra` ones), as hyper sends it.
fn connect_request(
    server: &Server,
    connect: &ClientConnect,
    request: &ClientRequest<'_>,
    extra: &[(&str, &str)],
) -> hyper::Request<Empty<Bytes>> {
    let pseudo = connect.pseudo_headers(request);
    let mut builder = hyper::Request::builder()
        .method(hyper::Method::CONNECT)
        .version(hyper::Version::HTTP_2)
        .uri(format!(
            "https://localhost:{}{}",
            server.addr.port(),
            pseudo.path.unwrap()
        ));
    for (name, value) in connect.headers(request) {
        builder = builder.header(name, value);
    }
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    let mut connect = builder.body(Empty::new()).unwrap();
    connect
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    connect
}

/// Opens a WebSocket on `path` as a new stream; `deflate` offers
/// permessage-deflate.
async fn open(
    server: &Server,
    sender: &SendRequest<Empty<Bytes>>,
    path: &str,
    deflate: bool,
) -> UpgradedWebSocket {
    let authority = format!("localhost:{}", server.addr.port());
    let request = ClientRequest::new(&authority, path);
    let connect = if deflate {
        let offer = ClientOptions::default().deflate.unwrap();
        ClientConnect::new_with_deflate(&request, &offer).unwrap()
    } else {
        ClientConnect::new(&request).unwrap()
    };
    let mut sender = sender.clone();
    sender.ready().await.unwrap();
    let response = sender
        .send_request(connect_request(server, &connect, &request, &[]))
        .await
        .unwrap();
    let fields: Vec<Header<'_>> = response
        .headers()
        .iter()
        .map(|(name, value)| Header {
            name: name.as_str(),
            value: value.as_bytes(),
        })
        .collect();
    let accepted = connect
        .check_response(&request, response.status().as_u16(), &fields)
        .unwrap();
    let agreed = accepted.deflate();
    assert_eq!(agreed.is_some(), deflate, "permessage-deflate as offered");
    drop(fields);
    let upgraded = hyper::upgrade::on(response).await.unwrap();
    websocket_over(
        TokioIo::new(upgraded),
        Role::Client,
        Config::default(),
        None,
        agreed,
    )
    .unwrap()
}

async fn echo_text(ws: &mut UpgradedWebSocket, text: &str) {
    ws.send_text(text).await.unwrap();
    assert_eq!(ws.read().await.unwrap(), Message::Text(text.to_owned()));
}

/// Sends a CONNECT with extra fields and returns the status and the
/// `sec-websocket-version` answered.
async fn refused(
    server: &Server,
    sender: &SendRequest<Empty<Bytes>>,
    extra: &[(&str, &str)],
    version: &str,
) -> (u16, Option<String>) {
    let authority = format!("localhost:{}", server.addr.port());
    let request = ClientRequest::new(&authority, "/refused");
    let connect = ClientConnect::new(&request).unwrap();
    let mut hyper_request = connect_request(server, &connect, &request, extra);
    hyper_request.headers_mut().insert(
        "sec-websocket-version",
        hyper::header::HeaderValue::from_str(version).unwrap(),
    );
    let mut sender = sender.clone();
    sender.ready().await.unwrap();
    let response = sender.send_request(hyper_request).await.unwrap();
    let answered = response
        .headers()
        .get("sec-websocket-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (response.status().as_u16(), answered)
}

#[tokio::test]
async fn three_websockets_share_one_tls_http2_connection() {
    tokio::time::timeout(HANG, async {
        let server = server().await;
        let (sender, local) = h2_connection(&server).await;

        let mut plain = open(&server, &sender, "/plain", false).await;
        let mut compressed = open(&server, &sender, "/compressed", true).await;
        let mut closing = open(&server, &sender, "/server-closes", false).await;
        assert!(compressed.deflate().is_some());

        // Interleaved echoes on the three streams.
        for round in 0..3 {
            echo_text(&mut plain, &format!("plain {round}")).await;
            echo_text(&mut compressed, &format!("compressed {round}")).await;
        }

        // 1 MiB through the compressed stream (crossing many HTTP/2 DATA
        // frames and flow-control window updates).
        let big: Vec<u8> = (0..1usize << 20)
            .map(|i| (i % 251) as u8 ^ (i >> 12) as u8)
            .collect();
        compressed.send_binary(&big).await.unwrap();
        assert_eq!(compressed.read().await.unwrap(), Message::Binary(big));

        // Ping/pong: the server's core answers.
        plain.ping(b"are you there").await.unwrap();
        assert_eq!(
            plain.read().await.unwrap(),
            Message::Pong(b"are you there".to_vec())
        );

        // Bad CONNECTs get the core's statuses on their own streams.
        assert_eq!(
            refused(&server, &sender, &[], "8").await,
            (426, Some("13".to_owned()))
        );
        let (status, _) = refused(
            &server,
            &sender,
            &[("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")],
            "13",
        )
        .await;
        assert_eq!(status, 400, "Sec-WebSocket-Key has no place in HTTP/2");

        // ...and the connection keeps serving the open streams.
        echo_text(&mut plain, "still here").await;
        echo_text(&mut compressed, "still here too").await;

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

        // The client closes the others.
        plain.close(1000, "client done").await.unwrap();
        compressed.close(1001, "going away").await.unwrap();

        // The server saw three WebSockets over HTTP/2, all on this one TCP
        // connection (refused CONNECTs are not WebSockets).
        let accepted = server.stats.list();
        assert_eq!(accepted.len(), 3, "{accepted:?}");
        for ws in &accepted {
            assert_eq!(ws.version, "HTTP/2.0", "{ws:?}");
            assert_eq!(ws.connection, local.to_string(), "{ws:?}");
        }
    })
    .await
    .expect("no hang");
}

#[tokio::test]
async fn a_flooded_stream_that_nobody_reads_does_not_stall_the_others() {
    tokio::time::timeout(HANG, async {
        let server = server().await;
        let (sender, _) = h2_connection(&server).await;
        let mut flooded = open(&server, &sender, "/flooded", false).await;
        let mut others = vec![
            open(&server, &sender, "/other-a", false).await,
            open(&server, &sender, "/other-b", false).await,
        ];

        // Send on one stream without ever reading its echoes: the server's
        // echoes back up, its reads stop, and the HTTP/2 windows close
        // until this writer blocks.
        let sent = Arc::new(AtomicUsize::new(0));
        let counter = sent.clone();
        let flood = tokio::spawn(async move {
            let chunk = vec![0x5a_u8; 64 * 1024];
            loop {
                if flooded.send_binary(&chunk).await.is_err() {
                    return;
                }
                counter.fetch_add(chunk.len(), Ordering::SeqCst);
            }
        });
        // Wait until the flood has stalled: no progress for 0.8 s.
        let mut last = 0;
        let mut still = 0;
        while still < 8 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = sent.load(Ordering::SeqCst);
            if now == last {
                still += 1;
            } else {
                (last, still) = (now, 0);
            }
        }
        assert!(
            !flood.is_finished(),
            "the flooding writer is blocked, not failed"
        );
        assert!(
            last > axum_echo::STREAM_WINDOW as usize,
            "the flood got past the stream window ({last} bytes) before it stalled"
        );

        // The other streams still echo, promptly.
        for round in 0..20 {
            for (i, ws) in others.iter_mut().enumerate() {
                let text = format!("stream {i} round {round}");
                tokio::time::timeout(Duration::from_secs(5), echo_text(ws, &text))
                    .await
                    .expect("an echo on another stream within 5 s");
            }
        }
        let payload = vec![7u8; 100_000];
        for ws in &mut others {
            tokio::time::timeout(Duration::from_secs(5), async {
                ws.send_binary(&payload).await.unwrap();
                assert_eq!(ws.read().await.unwrap(), Message::Binary(payload.clone()));
            })
            .await
            .expect("100 kB echoed on another stream within 5 s");
        }
        for ws in &mut others {
            ws.close(1000, "").await.unwrap();
        }
        flood.abort();
    })
    .await
    .expect("no hang");
}

#[tokio::test]
async fn the_same_tls_server_serves_http1_upgrades() {
    tokio::time::timeout(HANG, async {
        let server = server().await;
        // No ALPN from this client: the server speaks HTTP/1.1.
        let trusting = tls::client_config_from_pem(server.cert_pem.as_bytes()).unwrap();
        let url = format!("wss://localhost:{}/over-http1", server.addr.port());
        let mut ws = tls::connect_async(&url, &ClientOptions::default(), trusting)
            .await
            .unwrap();
        ws.send_text("hello over HTTP/1.1").await.unwrap();
        assert_eq!(
            ws.read().await.unwrap(),
            Message::Text("hello over HTTP/1.1".into())
        );
        ws.close(1000, "").await.unwrap();
        let accepted = server.stats.list();
        assert_eq!(accepted.len(), 1);
        assert_eq!(accepted[0].version, "HTTP/1.1");
        assert_eq!(accepted[0].path, "/over-http1");
    })
    .await
    .expect("no hang");
}
