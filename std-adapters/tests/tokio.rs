//! Tokio adapter over loopback TCP.

use std::time::Duration;
use tokio::net::TcpListener;
use wsproto_adapters::{tokio as ws, CloseFrame, Error, Message};

#[tokio::test]
async fn echo_round_trip_and_close() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut ws = ws::accept(listener.accept().await.unwrap().0)
            .await
            .unwrap();
        loop {
            match ws.read().await {
                Ok(msg @ (Message::Text(_) | Message::Binary(_))) => ws.send(msg).await.unwrap(),
                Ok(Message::Close(frame)) => return frame,
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        }
    });
    let test = async {
        let mut client = ws::connect(&format!("ws://{addr}/x")).await.unwrap();
        client.send_text("hello").await.unwrap();
        assert_eq!(client.read().await.unwrap(), Message::Text("hello".into()));
        let big = vec![7u8; 300_000];
        client.send_binary(&big).await.unwrap();
        assert_eq!(client.read().await.unwrap(), Message::Binary(big));
        client.ping(b"p").await.unwrap();
        assert_eq!(client.read().await.unwrap(), Message::Pong(b"p".to_vec()));
        client.close(1001, "going").await.unwrap();
        assert!(matches!(client.read().await, Err(Error::ConnectionClosed)));
    };
    tokio::time::timeout(Duration::from_secs(10), test)
        .await
        .unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        frame,
        Some(CloseFrame {
            code: 1001,
            reason: "going".into()
        })
    );
}

#[tokio::test]
async fn read_is_cancel_safe_in_select() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut ws = ws::accept(listener.accept().await.unwrap().0)
            .await
            .unwrap();
        // Sends while the client keeps cancelling its reads.
        for i in 0..20 {
            ws.send_text(&format!("m{i}")).await.unwrap();
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        ws.close(1000, "").await.unwrap();
    });
    let mut client = ws::connect(&format!("ws://{addr}")).await.unwrap();
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        tokio::select! {
            msg = client.read() => match msg {
                Ok(Message::Text(t)) => got.push(t),
                Ok(Message::Close(_)) => {}
                Ok(_) => {}
                Err(Error::ConnectionClosed) => break,
                Err(e) => panic!("{e}"),
            },
            _ = tokio::time::sleep(Duration::from_millis(1)) => {}
        }
        assert!(tokio::time::Instant::now() < deadline);
    }
    let expected: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    assert_eq!(got, expected);
    server.await.unwrap();
}
