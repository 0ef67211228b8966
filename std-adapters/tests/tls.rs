//! wss:// — the blocking adapter over rustls streams on both ends.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection, StreamOwned,
};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use wsproto_adapters::{blocking, ClientOptions, CloseFrame, Message};

#[test]
fn wss_echo_over_rustls() {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_der = CertificateDer::from(cert.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));

    let server_config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key)
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(cert_der).unwrap();
    let client_config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let tcp = listener.accept().unwrap().0;
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let tls = StreamOwned::new(ServerConnection::new(Arc::new(server_config)).unwrap(), tcp);
        let mut ws = blocking::accept(tls).unwrap();
        loop {
            match ws.read().unwrap() {
                msg @ (Message::Text(_) | Message::Binary(_)) => ws.send(msg).unwrap(),
                Message::Close(frame) => return frame,
                _ => {}
            }
        }
    });

    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = StreamOwned::new(
        ClientConnection::new(Arc::new(client_config), name).unwrap(),
        tcp,
    );
    let url = format!("wss://localhost:{}/secure", addr.port());
    let mut ws = blocking::client(tls, &url, &ClientOptions::default()).unwrap();
    ws.send_text("over tls").unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text("over tls".into()));
    let big = vec![0xA5u8; 200_000];
    ws.send_binary(&big).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Binary(big));
    ws.send(Message::Close(Some(CloseFrame {
        code: 1000,
        reason: "tls bye".into(),
    })))
    .unwrap();
    assert!(matches!(
        ws.read().unwrap(),
        Message::Close(Some(CloseFrame { code: 1000, .. }))
    ));
    let frame = server.join().unwrap();
    assert_eq!(
        frame,
        Some(CloseFrame {
            code: 1000,
            reason: "tls bye".into()
        })
    );
}
