//! wss:// built in (feature `rustls`): `connect` over TLS in both drivers,
//! `tls::Acceptor` on the server side, certificate failures.

use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;
use wsproto_adapters::{
    blocking, tls, tokio as wstokio, ClientOptions, CloseFrame, Error, Message,
};

/// Nothing here may take longer than this.
const HANG: Duration = Duration::from_secs(20);

struct Cert {
    cert_pem: String,
    key_pem: String,
}

fn cert_for(names: &[&str]) -> Cert {
    let names = names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    let generated = rcgen::generate_simple_self_signed(names).unwrap();
    Cert {
        cert_pem: generated.cert.pem(),
        key_pem: generated.signing_key.serialize_pem(),
    }
}

impl Cert {
    fn acceptor(&self) -> tls::Acceptor {
        tls::Acceptor::from_pem(self.cert_pem.as_bytes(), self.key_pem.as_bytes()).unwrap()
    }
    fn trusting(&self) -> std::sync::Arc<tls::ClientConfig> {
        tls::client_config_from_pem(self.cert_pem.as_bytes()).unwrap()
    }
}

/// Runs `f` on a thread and fails the test if it does not return in time.
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(HANG).expect("the call hung")
}

/// A blocking wss echo server for one connection; returns the Close it
/// received (or the accept error, as text).
fn blocking_echo_server(
    acceptor: tls::Acceptor,
) -> (u16, mpsc::Receiver<Result<Option<CloseFrame>, String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let result = (|| -> Result<Option<CloseFrame>, Error> {
            let mut ws = acceptor.accept(tcp)?;
            assert!(ws.get_ref().is_tls());
            loop {
                match ws.read()? {
                    msg @ (Message::Text(_) | Message::Binary(_)) => ws.send(msg)?,
                    Message::Close(frame) => return Ok(frame),
                    _ => {}
                }
            }
        })();
        let _ = tx.send(result.map_err(|e| e.to_string()));
    });
    (port, rx)
}

/// A tokio wss echo server for one connection.
async fn tokio_echo_server(
    acceptor: tls::Acceptor,
) -> (
    u16,
    tokio::task::JoinHandle<Result<Option<CloseFrame>, String>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let result = async {
            let mut ws = acceptor.accept_async(tcp).await?;
            assert!(ws.get_ref().is_tls());
            loop {
                match ws.read().await? {
                    msg @ (Message::Text(_) | Message::Binary(_)) => ws.send(msg).await?,
                    Message::Close(frame) => return Ok::<_, Error>(frame),
                    _ => {}
                }
            }
        }
        .await;
        result.map_err(|e| e.to_string())
    });
    (port, task)
}

fn bye() -> CloseFrame {
    CloseFrame {
        code: 1000,
        reason: "tls bye".into(),
    }
}

/// The rustls error under an adapter error, if there is one.
fn rustls_error(e: &Error) -> Option<&rustls::Error> {
    match e {
        Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>(),
        _ => None,
    }
}

fn is_certificate_error(e: &Error) -> bool {
    matches!(rustls_error(e), Some(rustls::Error::InvalidCertificate(_)))
}

#[test]
fn blocking_connect_echoes_over_wss() {
    let cert = cert_for(&["localhost", "127.0.0.1"]);
    // Both a DNS name and an IP literal are verified against the certificate.
    for host in ["localhost", "127.0.0.1"] {
        let (port, ended) = blocking_echo_server(cert.acceptor());
        let config = cert.trusting();
        let url = format!("wss://{host}:{port}/secure?x=1");
        let got = bounded(move || {
            let mut ws = tls::connect(&url, &ClientOptions::default(), config).unwrap();
            assert!(ws.get_ref().is_tls());
            assert_eq!(ws.path(), "/secure?x=1");
            ws.send_text("over tls").unwrap();
            let text = ws.read().unwrap();
            let big = vec![0xA5u8; 300_000];
            ws.send_binary(&big).unwrap();
            let binary = ws.read().unwrap();
            ws.send(Message::Close(Some(bye()))).unwrap();
            let close = ws.read().unwrap();
            let after = ws.read();
            (text, binary == Message::Binary(big), close, after)
        });
        assert_eq!(got.0, Message::Text("over tls".into()));
        assert!(got.1, "the binary echo differs");
        // The server's core echoes the code (with no reason).
        assert!(
            matches!(&got.2, Message::Close(Some(CloseFrame { code: 1000, .. }))),
            "{:?}",
            got.2
        );
        assert!(matches!(got.3, Err(Error::ConnectionClosed)), "{:?}", got.3);
        let frame = ended.recv_timeout(HANG).unwrap();
        assert_eq!(frame, Ok(Some(bye())));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_connect_echoes_over_wss() {
    let cert = cert_for(&["localhost"]);
    let (port, server) = tokio_echo_server(cert.acceptor()).await;
    let url = format!("wss://localhost:{port}/t");
    tokio::time::timeout(HANG, async {
        let mut ws = tls::connect_async(&url, &ClientOptions::default(), cert.trusting())
            .await
            .unwrap();
        assert!(ws.get_ref().is_tls());
        ws.send_text("async tls").await.unwrap();
        assert_eq!(ws.read().await.unwrap(), Message::Text("async tls".into()));
        let big = vec![0x5Au8; 300_000];
        ws.send_binary(&big).await.unwrap();
        assert_eq!(ws.read().await.unwrap(), Message::Binary(big));
        ws.close(1000, "tls bye").await.unwrap();
        assert_eq!(server.await.unwrap(), Ok(Some(bye())));
    })
    .await
    .unwrap();
}

/// The drivers mix: a blocking client against the tokio server and a tokio
/// client against the blocking server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_driver_talks_to_the_other_over_wss() {
    let cert = cert_for(&["localhost"]);
    let (port, server) = tokio_echo_server(cert.acceptor()).await;
    let config = cert.trusting();
    let echoed = tokio::task::spawn_blocking(move || {
        let url = format!("wss://localhost:{port}/");
        let mut ws = tls::connect(&url, &ClientOptions::default(), config).unwrap();
        ws.send_text("blocking to tokio").unwrap();
        let echoed = ws.read().unwrap();
        ws.close(1000, "tls bye").unwrap();
        echoed
    });
    let echoed = tokio::time::timeout(HANG, echoed).await.unwrap().unwrap();
    assert_eq!(echoed, Message::Text("blocking to tokio".into()));
    let ended = tokio::time::timeout(HANG, server).await.unwrap().unwrap();
    assert_eq!(ended, Ok(Some(bye())));

    let (port, ended) = blocking_echo_server(cert.acceptor());
    tokio::time::timeout(HANG, async {
        let url = format!("wss://localhost:{port}/");
        let mut ws = tls::connect_async(&url, &ClientOptions::default(), cert.trusting())
            .await
            .unwrap();
        ws.send_binary(b"tokio to blocking").await.unwrap();
        assert_eq!(
            ws.read().await.unwrap(),
            Message::Binary(b"tokio to blocking".to_vec())
        );
        ws.close(1000, "tls bye").await.unwrap();
    })
    .await
    .unwrap();
    let ended = tokio::task::spawn_blocking(move || ended.recv_timeout(HANG).unwrap());
    assert_eq!(ended.await.unwrap(), Ok(Some(bye())));
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let cert = cert_for(&["localhost"]);
    let (port, server) = blocking_echo_server(cert.acceptor());
    let config = cert.trusting();
    // Trusted, but issued for "localhost", not for 127.0.0.1.
    let url = format!("wss://127.0.0.1:{port}/");
    let err = bounded(move || tls::connect(&url, &ClientOptions::default(), config).err());
    let err = err.expect("a certificate for another name was accepted");
    assert!(
        matches!(
            rustls_error(&err),
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. }
            ))
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("certificate"), "{err}");
    // The server's TLS handshake fails too (the client's alert), promptly.
    let ended = server.recv_timeout(HANG).unwrap();
    assert!(ended.is_err(), "{ended:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused_by_both_drivers() {
    let cert = cert_for(&["localhost"]);
    let stranger = cert_for(&["localhost"]);

    // Blocking, trusting another certificate.
    let (port, _server) = blocking_echo_server(cert.acceptor());
    let config = stranger.trusting();
    let err = tokio::task::spawn_blocking(move || {
        let url = format!("wss://localhost:{port}/");
        tls::connect(&url, &ClientOptions::default(), config).err()
    });
    let err = tokio::time::timeout(HANG, err).await.unwrap().unwrap();
    let err = err.expect("an untrusted certificate was accepted");
    // Both certificates carry rcgen's default issuer name, so rustls finds
    // the stranger as a candidate issuer and rejects its signature.
    assert!(is_certificate_error(&err), "{err:?}");

    // Tokio, trusting another certificate.
    let (port, _server) = tokio_echo_server(cert.acceptor()).await;
    let url = format!("wss://localhost:{port}/");
    let err = tokio::time::timeout(
        HANG,
        tls::connect_async(&url, &ClientOptions::default(), stranger.trusting()),
    )
    .await
    .unwrap()
    .err()
    .expect("an untrusted certificate was accepted");
    assert!(is_certificate_error(&err), "{err:?}");
}

/// `connect("wss://...")` with no configuration of one's own trusts the
/// webpki roots only: a self-signed certificate fails, cleanly and at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_connect_without_a_configured_trust_fails_cleanly() {
    let cert = cert_for(&["localhost"]);

    let (port, _server) = blocking_echo_server(cert.acceptor());
    let err = tokio::task::spawn_blocking(move || {
        blocking::connect(&format!("wss://localhost:{port}/")).err()
    });
    let err = tokio::time::timeout(HANG, err).await.unwrap().unwrap();
    let err = err.expect("a self-signed certificate was trusted");
    assert!(is_certificate_error(&err), "{err:?}");
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );

    let (port, _server) = tokio_echo_server(cert.acceptor()).await;
    let err = tokio::time::timeout(HANG, wstokio::connect(&format!("wss://localhost:{port}/")))
        .await
        .unwrap()
        .err()
        .expect("a self-signed certificate was trusted");
    assert!(is_certificate_error(&err), "{err:?}");
}

/// A server that accepts TCP and never answers the ClientHello: the TLS
/// handshake ends at `Config::handshake_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_times_the_tls_handshake_out() {
    let cert = cert_for(&["localhost"]);
    let mut options = ClientOptions::default();
    options.config.handshake_timeout = wsproto_adapters::wsproto::Duration::from_millis(300);

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || listener.accept().map(|(tcp, _)| tcp));
    let (config, opts) = (cert.trusting(), options.clone());
    let err =
        bounded(move || tls::connect(&format!("wss://localhost:{port}/"), &opts, config).err())
            .expect("the handshake succeeded");
    assert!(
        matches!(&err, Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut),
        "{err:?}"
    );
    drop(held.join());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _held = tokio::spawn(async move { listener.accept().await.map(|(tcp, _)| tcp) });
    let err = tokio::time::timeout(
        HANG,
        tls::connect_async(
            &format!("wss://localhost:{port}/"),
            &options,
            cert.trusting(),
        ),
    )
    .await
    .unwrap()
    .err()
    .expect("the handshake succeeded");
    assert!(
        matches!(&err, Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut),
        "{err:?}"
    );
}

/// A client that connects and says nothing cannot hold a TLS server's
/// accept past the handshake timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_times_the_server_handshake_out() {
    let cert = cert_for(&["localhost"]);
    let mut options = wsproto_adapters::ServerOptions::default();
    options.config.handshake_timeout = wsproto_adapters::wsproto::Duration::from_millis(300);

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let _silent = std::net::TcpStream::connect(addr).unwrap();
    let (acceptor, opts) = (cert.acceptor(), options.clone());
    let err = bounded(move || {
        let (tcp, _) = listener.accept().unwrap();
        acceptor.accept_with(tcp, &opts).err()
    })
    .expect("the handshake succeeded");
    assert!(
        matches!(&err, Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut),
        "{err:?}"
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let err = tokio::time::timeout(HANG, cert.acceptor().accept_async_with(tcp, &options))
        .await
        .unwrap()
        .err()
        .expect("the handshake succeeded");
    assert!(
        matches!(&err, Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut),
        "{err:?}"
    );
}

#[test]
fn tls_connect_refuses_a_ws_url_and_bad_pem_is_reported() {
    let cert = cert_for(&["localhost"]);
    let err = tls::connect(
        "ws://localhost:1/",
        &ClientOptions::default(),
        cert.trusting(),
    )
    .err()
    .unwrap();
    assert!(matches!(err, Error::Url(_)), "{err:?}");
    assert!(err.to_string().contains("wss://"), "{err}");

    let err = tls::Acceptor::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem")
        .err()
        .unwrap();
    assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
    // A key that does not match the certificate.
    let other = cert_for(&["localhost"]);
    let err = tls::Acceptor::from_pem(cert.cert_pem.as_bytes(), other.key_pem.as_bytes())
        .err()
        .unwrap();
    assert!(!err.to_string().is_empty());
    assert!(tls::Acceptor::from_pem(b"", cert.key_pem.as_bytes()).is_err());
}

/// `ws://` through the same `connect` still gives a plain stream.
#[test]
fn ws_urls_stay_plain() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut ws = blocking::accept(tcp).unwrap();
        matches!(ws.read(), Ok(Message::Close(_)))
    });
    let closed = bounded(move || {
        let mut ws = blocking::connect(&format!("ws://{addr}/")).unwrap();
        assert!(!ws.get_ref().is_tls());
        assert_eq!(ws.get_ref().peer_addr().unwrap(), addr);
        ws.close(1000, "").is_ok()
    });
    assert!(closed);
    assert!(server.join().unwrap());
}
