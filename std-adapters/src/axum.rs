//! WebSockets in an axum app: [`WebSocketUpgrade`] is an extractor that
//! validates the handshake with the core's rules before the handler runs
//! (a bad request never reaches it: it gets the core's 400/426 answer), and
//! [`WebSocketUpgrade::on_upgrade`] answers and runs the connection.
//! HTTP/1.1 upgrades and HTTP/2 extended CONNECTs both work; route both
//! methods to the handler (`get(h).connect(h)`), since an HTTP/2 WebSocket
//! arrives as a CONNECT request. `serve_tls` (feature `rustls`) serves an app over TLS with
//! ALPN `h2` and `http/1.1`.
//!
//! ```no_run
//! use axum::{response::Response, routing::get, Router};
//! use wsproto_adapters::axum::WebSocketUpgrade;
//! use wsproto_adapters::Message;
//!
//! async fn echo(ws: WebSocketUpgrade) -> Response {
//!     ws.on_upgrade(|mut ws| async move {
//!         while let Ok(message) = ws.read().await {
//!             match message {
//!                 Message::Text(text) => { let _ = ws.send_text(&text).await; }
//!                 Message::Binary(data) => { let _ = ws.send_binary(&data).await; }
//!                 _ => {}
//!             }
//!         }
//!     })
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! // GET for HTTP/1.1 upgrades, CONNECT for HTTP/2 streams (RFC 8441).
//! let app: Router = Router::new().route("/ws", get(echo).connect(echo));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! # fn main() {}
//! ```

use crate::upgrade::{accept_parts, Rejection, UpgradedWebSocket};
use crate::ServerOptions;
use ::axum::body::Body;
use ::axum::extract::FromRequestParts;
use ::axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, Method, StatusCode, Uri, Version};
use hyper::upgrade::OnUpgrade;
use std::future::Future;

/// A WebSocket handshake that passed the core's checks, waiting for the
/// handler to accept it.
pub struct WebSocketUpgrade {
    method: Method,
    uri: Uri,
    version: Version,
    protocol: Option<String>,
    headers: HeaderMap,
    on_upgrade: OnUpgrade,
    options: ServerOptions,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        self.response().map(Body::from)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let protocol = parts
            .extensions
            .get::<hyper::ext::Protocol>()
            .map(|p| p.as_str().to_owned());
        let options = ServerOptions::default();
        // Checked now with the default options (the rules do not depend on
        // them); negotiated again with the handler's options on accept.
        accept_parts(
            &parts.method,
            &parts.uri,
            parts.version,
            protocol.as_deref(),
            &parts.headers,
            &options,
        )
        .map_err(IntoResponse::into_response)?;
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            // A valid request on a connection hyper cannot hand over (e.g.
            // HTTP/2 without extended CONNECT enabled).
            return Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                "connection cannot be upgraded",
            )
                .into_response());
        };
        Ok(WebSocketUpgrade {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            protocol,
            headers: parts.headers.clone(),
            on_upgrade,
            options,
        })
    }
}

impl WebSocketUpgrade {
    /// Accept with these options (subprotocols, permessage-deflate, limits)
    /// instead of the defaults.
    pub fn options(mut self, options: ServerOptions) -> Self {
        self.options = options;
        self
    }

    /// The subprotocols the client offered, in its order of preference.
    pub fn offered_protocols(&self) -> impl Iterator<Item = &str> {
        self.headers
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
    }

    /// Answers the handshake (101, or 200 over HTTP/2) and, once the
    /// connection is handed over, runs `callback` with the WebSocket on a new
    /// task. If the hand-over fails (the client went away), `callback` is not
    /// called.
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(UpgradedWebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let upgrade = match accept_parts(
            &self.method,
            &self.uri,
            self.version,
            self.protocol.as_deref(),
            &self.headers,
            &self.options,
        ) {
            Ok(upgrade) => upgrade,
            Err(rejection) => return rejection.into_response(),
        };
        let response = upgrade.response().map(|()| Body::empty());
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            if let Ok(ws) = upgrade.into_websocket(upgraded) {
                callback(ws).await;
            }
        });
        response
    }
}

/// Per-stream HTTP/2 receive window of [`serve_tls`]. Kept well below the
/// connection window, so that a WebSocket whose peer floods it while the
/// application reads nothing holds at most this much of the connection's
/// window, and the other streams keep moving.
#[cfg(feature = "rustls")]
pub const HTTP2_STREAM_WINDOW: u32 = 256 * 1024;

/// Per-connection HTTP/2 receive window of [`serve_tls`]: room for sixteen
/// stalled streams before the connection as a whole stalls.
#[cfg(feature = "rustls")]
pub const HTTP2_CONNECTION_WINDOW: u32 = 16 * HTTP2_STREAM_WINDOW;

/// How long [`serve_tls`] gives a client for the TLS handshake.
#[cfg(feature = "rustls")]
pub const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves an axum app over TLS, with WebSockets over HTTP/1.1 and HTTP/2.
///
/// ALPN offers `h2` and `http/1.1`. A connection that agrees on `h2` gets
/// hyper's HTTP/2 server with extended CONNECT enabled
/// (`SETTINGS_ENABLE_CONNECT_PROTOCOL`, RFC 8441), which is what lets
/// browsers open WebSockets as streams of the connection; any other gets
/// HTTP/1.1 with upgrades. [`WebSocketUpgrade`] takes both.
///
/// `app(peer)` gives the router for a connection from `peer` (to give
/// handlers the address, layer it in: `Extension(peer)`). Stops accepting
/// when `shutdown` completes; connections already accepted run on. Failed
/// accepts (out of descriptors and the like) are retried after 100 ms; a
/// failed TLS handshake or connection ends that connection only.
///
/// ```no_run
/// use axum::{routing::get, Router};
/// use wsproto_adapters::{axum::serve_tls, tls::Acceptor};
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let acceptor = Acceptor::from_pem_files("cert.pem", "key.pem")?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
/// let app: Router = Router::new().route("/", get(|| async { "hello" }));
/// serve_tls(listener, acceptor, move |_peer| app.clone(), std::future::pending()).await;
/// # Ok(())
/// # }
/// # fn main() {}
/// ```
#[cfg(feature = "rustls")]
pub async fn serve_tls<F>(
    listener: tokio::net::TcpListener,
    acceptor: crate::tls::Acceptor,
    app: F,
    shutdown: impl Future<Output = ()>,
) where
    F: Fn(std::net::SocketAddr) -> ::axum::Router,
{
    let acceptor = acceptor.with_alpn(&crate::tls::HTTP_ALPN);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let next = std::future::poll_fn(|cx| {
            if shutdown.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(None);
            }
            listener.poll_accept(cx).map(Some)
        });
        let Some(accepted) = next.await else {
            return;
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = hyper_util::service::TowerToHyperService::new(app(peer));
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept_tls(tcp, TLS_HANDSHAKE_TIMEOUT).await else {
                return;
            };
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
            let io = hyper_util::rt::TokioIo::new(stream);
            // A failed connection concerns that peer alone.
            let _ = if h2 {
                hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .enable_connect_protocol()
                    .initial_stream_window_size(HTTP2_STREAM_WINDOW)
                    .initial_connection_window_size(HTTP2_CONNECTION_WINDOW)
                    .serve_connection(io, service)
                    .await
            } else {
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .with_upgrades()
                    .await
            };
        });
    }
}
