//! Header-only sends (`Connection::send_header`): a server writes the header
//! and sends the payload itself, untouched. The bytes must be exactly those
//! of `send_fragment`, at every length boundary of the header, and the rules
//! (sequencing, closed state, roles and extensions that rewrite the payload)
//! the same.

use wsproto::frame::MAX_HEADER_LEN;
use wsproto::{CloseCode, Config, Connection, Error, MessageKind, Misuse, Role};
use wsproto_tests::{Ev, Pair, Who};

fn server() -> Connection {
    Connection::new(Role::Server, Config::default())
}

#[test]
fn header_and_payload_are_the_frame_send_fragment_writes() {
    for len in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
        for (kind, fin) in [
            (MessageKind::Binary, true),
            (MessageKind::Text, true),
            (MessageKind::Binary, false),
        ] {
            let payload = vec![b'a'; len];
            let mut whole = vec![0u8; len + MAX_HEADER_LEN];
            let n = server()
                .send_fragment(kind, &payload, fin, &mut whole)
                .unwrap();
            let mut header = [0u8; MAX_HEADER_LEN];
            let h = server().send_header(kind, len, fin, &mut header).unwrap();
            let mut joined = header[..h].to_vec();
            joined.extend_from_slice(&payload);
            assert_eq!(joined, whole[..n], "len {len}, {kind:?}, fin {fin}");
        }
    }
}

#[test]
fn fragments_follow_the_same_sequencing_rules() {
    let mut conn = server();
    let mut header = [0u8; MAX_HEADER_LEN];
    let n = conn
        .send_header(MessageKind::Text, 3, false, &mut header)
        .unwrap();
    assert_eq!(header[..n], [0x01, 3]);
    assert_eq!(
        conn.send_header(MessageKind::Binary, 3, true, &mut header),
        Err(Error::Misuse(Misuse::MessageInProgress))
    );
    let n = conn
        .send_header(MessageKind::Text, 2, true, &mut header)
        .unwrap();
    assert_eq!(header[..n], [0x80, 2], "a final continuation");
    // A too-small buffer changes nothing.
    let mut tiny = [0u8; 1];
    assert!(matches!(
        conn.send_header(MessageKind::Binary, 300, true, &mut tiny),
        Err(Error::Misuse(Misuse::BufferTooSmall { required: 4 }))
    ));
    let n = conn
        .send_header(MessageKind::Binary, 300, true, &mut header)
        .unwrap();
    assert_eq!(header[..n], [0x82, 126, 1, 44]);
}

#[test]
fn clients_and_closed_connections_cannot_send_a_bare_header() {
    let mut header = [0u8; MAX_HEADER_LEN];
    let mut pair = Pair::new(Config::default());
    assert_eq!(
        pair.client
            .conn
            .send_header(MessageKind::Binary, 1, true, &mut header),
        Err(Error::Misuse(Misuse::PayloadNotVerbatim)),
        "a client must mask its payload"
    );
    pair.close(Who::Server, CloseCode::NORMAL, "").unwrap();
    assert_eq!(
        pair.server
            .conn
            .send_header(MessageKind::Binary, 1, true, &mut header),
        Err(Error::Misuse(Misuse::Closed))
    );
}

#[test]
fn the_peer_reads_a_header_only_frame_as_any_other() {
    let mut pair = Pair::new(Config::default());
    let payload = vec![9u8; 1000];
    let mut header = [0u8; MAX_HEADER_LEN];
    let n = pair
        .server
        .conn
        .send_header(MessageKind::Binary, payload.len(), true, &mut header)
        .unwrap();
    let mut wire = header[..n].to_vec();
    wire.extend_from_slice(&payload);
    pair.client.feed(&wire);
    assert_eq!(pair.client.take_events(), [Ev::Binary(payload)]);
}

#[cfg(feature = "deflate")]
#[test]
fn a_compressing_connection_cannot_send_a_bare_header() {
    use wsproto::extensions::deflate::{accept_offer, write_offer, Deflate9, DeflateConfig};
    let config = DeflateConfig {
        max_window_bits: 9,
        ..DeflateConfig::default()
    };
    let mut offer = [0u8; 128];
    let n = write_offer(&config, &mut offer).unwrap();
    let agreed = accept_offer(std::str::from_utf8(&offer[..n]).unwrap(), &config).unwrap();
    let mut conn = Connection::new(Role::Server, Config::default())
        .with_extension(Deflate9::new(&agreed, Role::Server).unwrap());
    let mut header = [0u8; MAX_HEADER_LEN];
    assert_eq!(
        conn.send_header(MessageKind::Text, 1, true, &mut header),
        Err(Error::Misuse(Misuse::PayloadNotVerbatim))
    );
}
