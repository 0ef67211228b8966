//! WebSockets in an axum app: [`WebSocketUpgrade`] is an extractor that
//! validates the handshake with the core's rules before the handler runs
//! (a bad request never reaches it: it gets the core's 400/426 answer), and
//! [`WebSocketUpgrade::on_upgrade`] answers and runs the connection.
//! HTTP/1.1 upgrades and HTTP/2 extended CONNECTs both work.
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
//! let app: Router = Router::new().route("/ws", get(echo));
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
