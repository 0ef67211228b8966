//! The HTTP/2 opening handshake (RFC 8441): the extended CONNECT the core
//! accepts and refuses (with the status each refusal maps to), the client's
//! side of it, and a WebSocket that runs over the result.

use httparse::Header;
use wsproto::handshake::{Accept, ClientConnect, ClientRequest, ExtendedConnect, PseudoHeaders};
use wsproto::{Config, HandshakeError, Misuse};
use wsproto_tests::{Ev, Pair, Who};

/// RFC 8441 §5.1's example request, as an HTTP/2 implementation decodes it.
fn rfc_pseudo() -> PseudoHeaders<'static> {
    PseudoHeaders {
        method: "CONNECT",
        protocol: Some("websocket"),
        scheme: Some("https"),
        path: Some("/chat"),
        authority: Some("server.example.com"),
    }
}

fn rfc_fields() -> Vec<Header<'static>> {
    vec![
        Header {
            name: "sec-websocket-protocol",
            value: b"chat, superchat",
        },
        Header {
            name: "sec-websocket-extensions",
            value: b"permessage-deflate",
        },
        Header {
            name: "sec-websocket-version",
            value: b"13",
        },
        Header {
            name: "origin",
            value: b"http://www.example.com",
        },
    ]
}

fn refusal(pseudo: PseudoHeaders<'_>, fields: &[Header<'_>]) -> (HandshakeError, Option<u16>) {
    let e = ExtendedConnect::from_parts(&pseudo, fields).expect_err("must be refused");
    (e, e.status())
}

#[test]
fn the_rfc_example_is_accepted_with_200_and_the_chosen_subprotocol() {
    let fields = rfc_fields();
    let request = ExtendedConnect::from_parts(&rfc_pseudo(), &fields).unwrap();
    assert_eq!(request.path(), "/chat");
    assert_eq!(request.authority(), "server.example.com");
    assert_eq!(request.scheme(), "https");
    assert_eq!(request.origin(), Some(&b"http://www.example.com"[..]));
    assert_eq!(
        request.protocols().collect::<Vec<_>>(),
        ["chat", "superchat"]
    );
    assert_eq!(
        request.extensions().collect::<Vec<_>>(),
        [&b"permessage-deflate"[..]]
    );
    let extra: &[(&str, &[u8])] = &[("server", b"wsproto")];
    let response = request
        .accept(&Accept {
            protocol: Some("chat"),
            headers: extra,
        })
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.protocol(), Some("chat"));
    assert_eq!(
        response.headers().collect::<Vec<_>>(),
        [
            ("sec-websocket-protocol", &b"chat"[..]),
            ("server", &b"wsproto"[..])
        ]
    );
}

#[test]
fn a_request_that_is_not_a_websocket_connect_is_400() {
    let fields = rfc_fields();
    for pseudo in [
        PseudoHeaders {
            protocol: None,
            ..rfc_pseudo()
        },
        PseudoHeaders {
            protocol: Some("webtransport"),
            ..rfc_pseudo()
        },
        PseudoHeaders {
            method: "GET",
            ..rfc_pseudo()
        },
    ] {
        assert_eq!(
            refusal(pseudo, &fields),
            (HandshakeError::NotExtendedConnect, Some(400)),
            "{pseudo:?}"
        );
    }
    // The token is case-insensitive, as the Upgrade token is.
    let pseudo = PseudoHeaders {
        protocol: Some("WebSocket"),
        ..rfc_pseudo()
    };
    assert!(ExtendedConnect::from_parts(&pseudo, &fields).is_ok());
}

#[test]
fn missing_or_malformed_pseudo_headers_are_400() {
    let fields = rfc_fields();
    let cases = [
        PseudoHeaders {
            scheme: None,
            ..rfc_pseudo()
        },
        PseudoHeaders {
            scheme: Some("ftp"),
            ..rfc_pseudo()
        },
        PseudoHeaders {
            path: None,
            ..rfc_pseudo()
        },
        PseudoHeaders {
            path: Some("*"),
            ..rfc_pseudo()
        },
        PseudoHeaders {
            path: Some("chat"),
            ..rfc_pseudo()
        },
        PseudoHeaders {
            path: Some("/chat#top"),
            ..rfc_pseudo()
        },
        PseudoHeaders {
            authority: None,
            ..rfc_pseudo()
        },
        PseudoHeaders {
            authority: Some(""),
            ..rfc_pseudo()
        },
        PseudoHeaders {
            authority: Some("user@server.example.com"),
            ..rfc_pseudo()
        },
        PseudoHeaders {
            authority: Some("server.example.com/chat"),
            ..rfc_pseudo()
        },
    ];
    for pseudo in cases {
        assert_eq!(
            refusal(pseudo, &fields),
            (HandshakeError::InvalidPseudoHeaders, Some(400)),
            "{pseudo:?}"
        );
    }
}

#[test]
fn a_host_field_must_agree_with_the_authority() {
    let mut fields = rfc_fields();
    fields.push(Header {
        name: "host",
        value: b"SERVER.example.com",
    });
    assert!(ExtendedConnect::from_parts(&rfc_pseudo(), &fields).is_ok());
    fields.pop();
    fields.push(Header {
        name: "host",
        value: b"evil.example",
    });
    assert_eq!(
        refusal(rfc_pseudo(), &fields),
        (HandshakeError::InvalidPseudoHeaders, Some(400))
    );
}

#[test]
fn http1_connection_fields_a_body_and_a_key_are_400() {
    let with = |name: &'static str, value: &'static [u8]| {
        let mut fields = rfc_fields();
        fields.push(Header { name, value });
        refusal(rfc_pseudo(), &fields)
    };
    for (name, value) in [
        ("connection", &b"Upgrade"[..]),
        ("Upgrade", b"websocket"),
        ("keep-alive", b"timeout=5"),
        ("transfer-encoding", b"chunked"),
    ] {
        assert_eq!(
            with(name, value),
            (HandshakeError::ConnectionSpecificHeader, Some(400)),
            "{name}"
        );
    }
    assert_eq!(
        with("content-length", b"5"),
        (HandshakeError::RequestBody, Some(400))
    );
    assert_eq!(
        with("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        (HandshakeError::KeyOverHttp2, Some(400))
    );
    // A zero Content-Length announces no body.
    let mut fields = rfc_fields();
    fields.push(Header {
        name: "content-length",
        value: b"0",
    });
    assert!(ExtendedConnect::from_parts(&rfc_pseudo(), &fields).is_ok());
}

#[test]
fn the_version_rules_are_those_of_http1() {
    let mut fields = rfc_fields();
    fields.retain(|h| h.name != "sec-websocket-version");
    assert_eq!(
        refusal(rfc_pseudo(), &fields),
        (HandshakeError::MissingVersion, Some(400))
    );
    fields.push(Header {
        name: "sec-websocket-version",
        value: b"8",
    });
    assert_eq!(
        refusal(rfc_pseudo(), &fields),
        (HandshakeError::UnsupportedVersion, Some(426))
    );
}

#[test]
fn the_server_cannot_choose_what_was_not_offered_or_send_http1_fields() {
    let fields = rfc_fields();
    let request = ExtendedConnect::from_parts(&rfc_pseudo(), &fields).unwrap();
    let refused = request
        .accept(&Accept {
            protocol: Some("mqtt"),
            ..Accept::default()
        })
        .unwrap_err();
    assert_eq!(refused, Misuse::ProtocolNotOffered);
    let extra: &[(&str, &[u8])] = &[("Connection", b"close")];
    let refused = request
        .accept(&Accept {
            protocol: None,
            headers: extra,
        })
        .unwrap_err();
    assert_eq!(refused, Misuse::InvalidHeader);
}

/// The client's fields, in the owned form a test can hand to the server.
fn client_fields<'a>(
    connect: &'a ClientConnect,
    request: &'a ClientRequest<'a>,
) -> Vec<Header<'a>> {
    connect
        .headers(request)
        .map(|(name, value)| Header { name, value })
        .collect()
}

#[test]
fn client_and_server_agree_and_a_websocket_runs_over_the_stream() {
    let mut request = ClientRequest::new("server.example.com", "/chat?room=1");
    request.protocols = &["superchat", "chat"];
    request.origin = Some("https://www.example.com");
    let connect = ClientConnect::new(&request).unwrap();
    let pseudo = connect.pseudo_headers(&request);
    let fields = client_fields(&connect, &request);
    assert_eq!(
        fields
            .iter()
            .filter(|h| h.name == "sec-websocket-protocol")
            .count(),
        2,
        "one field per offered subprotocol"
    );

    let server_side = ExtendedConnect::from_parts(&pseudo, &fields).unwrap();
    assert_eq!(server_side.path(), "/chat?room=1");
    assert_eq!(
        server_side.protocols().collect::<Vec<_>>(),
        ["superchat", "chat"]
    );
    let response = server_side
        .accept(&Accept {
            protocol: Some("chat"),
            ..Accept::default()
        })
        .unwrap();
    let answer: Vec<Header<'_>> = response
        .headers()
        .map(|(name, value)| Header { name, value })
        .collect();
    let accepted = connect
        .check_response(&request, response.status(), &answer)
        .unwrap();
    assert_eq!(accepted.protocol(), Some("chat"));

    // The stream now carries frames exactly as a TCP connection would.
    let mut pair = Pair::new(Config::default());
    pair.send_text(Who::Client, "hello over a stream").unwrap();
    pair.run();
    assert_eq!(
        pair.take_events(Who::Server),
        [Ev::Text("hello over a stream".into())]
    );
}

#[test]
fn the_client_refuses_a_non_200_answer_and_an_unoffered_subprotocol() {
    let mut request = ClientRequest::new("server.example.com", "/chat");
    request.protocols = &["chat"];
    let connect = ClientConnect::new(&request).unwrap();
    assert_eq!(
        connect.check_response(&request, 400, &[]).unwrap_err(),
        HandshakeError::UnexpectedStatus(400)
    );
    let answer = [Header {
        name: "sec-websocket-protocol",
        value: b"mqtt",
    }];
    assert_eq!(
        connect.check_response(&request, 200, &answer).unwrap_err(),
        HandshakeError::UnofferedSubprotocol
    );
    let answer = [Header {
        name: "sec-websocket-extensions",
        value: b"permessage-deflate",
    }];
    assert_eq!(
        connect.check_response(&request, 200, &answer).unwrap_err(),
        HandshakeError::UnrequestedExtension
    );
}

#[test]
fn the_client_refuses_to_build_a_malformed_connect() {
    for request in [
        ClientRequest::new("server.example.com", "chat"),
        ClientRequest::new("", "/chat"),
        ClientRequest::new("user@server.example.com", "/chat"),
        ClientRequest::new("server.example.com", "/a b"),
    ] {
        assert_eq!(
            ClientConnect::new(&request).unwrap_err(),
            Misuse::InvalidHeader,
            "{request:?}"
        );
    }
}

#[cfg(feature = "deflate")]
#[test]
fn permessage_deflate_is_negotiated_over_http2_as_over_http1() {
    use wsproto::extensions::deflate::{Deflate9, DeflateConfig};
    use wsproto::{Connection, Role};

    let config = DeflateConfig {
        max_window_bits: 9,
        ..DeflateConfig::default()
    };
    let request = ClientRequest::new("server.example.com", "/");
    let connect = ClientConnect::new_with_deflate(&request, &config).unwrap();
    let fields = client_fields(&connect, &request);
    assert!(fields.iter().any(
        |h| h.name == "sec-websocket-extensions" && h.value.starts_with(b"permessage-deflate")
    ));
    let server_side =
        ExtendedConnect::from_parts(&connect.pseudo_headers(&request), &fields).unwrap();
    let agreed = server_side
        .negotiate_deflate(&config)
        .expect("offer acceptable");
    let response = server_side
        .accept_deflate(&Accept::default(), &agreed)
        .unwrap();
    let answer: Vec<Header<'_>> = response
        .headers()
        .map(|(name, value)| Header { name, value })
        .collect();
    let accepted = connect.check_response(&request, 200, &answer).unwrap();
    let client_agreed = accepted.deflate().expect("accepted");
    assert_eq!(client_agreed, agreed);

    let client = Connection::with_rng(
        Role::Client,
        Config::default(),
        wsproto_tests::TestRng::new(7),
    )
    .with_extension(Deflate9::new(&client_agreed, Role::Client).unwrap());
    let server = Connection::new(Role::Server, Config::default())
        .with_extension(Deflate9::new(&agreed, Role::Server).unwrap());
    let mut pair = Box::new(Pair::from_connections(client, server));
    pair.client.scratch = Some(vec![0u8; 4096]);
    pair.server.scratch = Some(vec![0u8; 4096]);
    let text = "compressed over a stream ".repeat(40);
    pair.send_text(Who::Client, &text).unwrap();
    pair.run();
    assert_eq!(pair.take_events(Who::Server), [Ev::Text(text)]);
}
