//! A compressing connection needs little stack: the deflate windows are
//! allocated on the heap in place, never moved through the stack. The server
//! side of a 15-bit permessage-deflate connection (handshake, compressed
//! messages both ways, close) runs on a thread with a 64 KiB stack (96 KiB
//! unoptimized). Kept in
//! its own test binary: a stack overflow aborts the process.

use std::net::TcpListener;
use std::thread;
use wsproto_adapters::{blocking, ClientOptions, Message, ServerOptions};

/// 64 KiB in optimized builds (measured need: at most 16 KiB); unoptimized
/// builds keep every temporary in its own slot and need 72-80 KiB, so they
/// get 96. Before the windows were built in place, a 15-bit connection
/// needed 64-256 KiB optimized and about 1 MiB unoptimized, and failed both.
const SMALL_STACK: usize = if cfg!(debug_assertions) { 96 } else { 64 } * 1024;

#[test]
fn a_15_bit_deflate_connection_is_served_on_a_64_kib_stack() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut ws = blocking::accept_with(stream, &ServerOptions::default()).unwrap();
            let extensions = ws.extensions().map(str::to_owned);
            while let Ok(message) = ws.read() {
                if let Message::Text(text) = message {
                    ws.send_text(&text).unwrap();
                }
            }
            extensions
        })
        .unwrap();

    let mut client =
        blocking::connect_with(&format!("ws://{addr}/"), &ClientOptions::default()).unwrap();
    let text = "a line that repeats, so it compresses well. ".repeat(1000);
    for _ in 0..3 {
        client.send_text(&text).unwrap();
        assert_eq!(client.read().unwrap(), Message::Text(text.clone()));
    }
    client.close(1000, "").unwrap();
    let extensions = server.join().expect("the server thread ran to its end");
    let extensions = extensions.expect("permessage-deflate negotiated");
    assert!(extensions.starts_with("permessage-deflate"), "{extensions}");
    assert!(
        !extensions.contains("max_window_bits"),
        "15-bit windows: {extensions}"
    );
}
