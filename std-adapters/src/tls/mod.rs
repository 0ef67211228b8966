//! TLS with rustls (feature `rustls`): `wss://` clients and servers.
//!
//! With the feature on, [`blocking::connect`](crate::blocking::connect) and
//! [`tokio::connect`](crate::tokio::connect) take `wss://` URLs: they open
//! TCP, run the TLS handshake with the URL's host as the server name (SNI,
//! unless the host is an IP literal) and verify the server's certificate
//! against [`default_client_config`]'s roots, then run the WebSocket
//! handshake over the TLS session. [`connect`] and [`connect_async`] do the
//! same with a [`ClientConfig`] of your own (a private CA, a test
//! certificate: [`client_config_from_pem`]). Servers wrap accepted TCP
//! streams with an [`Acceptor`], built from PEM files or a [`ServerConfig`].
//! An HTTP server that takes WebSockets over with `upgrade`
//! (hyper, axum) runs only the TLS handshake (`Acceptor::accept_tls`, with `tokio`),
//! with ALPN offering [`HTTP_ALPN`] ([`Acceptor::with_alpn`]), and speaks
//! HTTP/2 on the connections that agreed on `h2`: browsers then open their
//! WebSockets as streams of that connection (RFC 8441) once the server
//! enables the extended CONNECT protocol. The `axum_echo` example does this
//! with `--tls`.
//!
//! Cryptography is rustls's `ring` provider (no C toolchain beyond a C
//! compiler, no cmake); TLS 1.3 and 1.2 are offered.
//!
//! # Which certificates a client trusts by default
//!
//! The Mozilla root program, as compiled into the `webpki-roots` crate, and
//! nothing else: not the operating system's store. This keeps a client's
//! behaviour the same on every machine and in every container (a scratch or
//! distroless image has no system store at all), needs no platform code,
//! and changes only when the dependency is updated, which a lock file
//! records. The cost: a private CA installed in the system store is not
//! trusted automatically; pass a configuration that trusts it
//! ([`client_config_from_pem`], or a `rustls::ClientConfig` built with
//! `rustls-native-certs` or `rustls-platform-verifier`) to [`connect`].
//!
//! Errors are [`Error`]s: a refused certificate, a failed TLS handshake or
//! a TLS handshake that outlasts `Config::handshake_timeout` is
//! [`Error::Io`] wrapping rustls's error, which reads as `invalid peer
//! certificate: ...` for a refused certificate (`io::Error::get_ref` and
//! a downcast to `rustls::Error` give the details); unreadable PEM files
//! are `Error::Io` naming the file.
//!
//! ```no_run
//! # #[cfg(feature = "blocking")]
//! # fn main() -> Result<(), wsproto_adapters::Error> {
//! use std::net::TcpListener;
//! use wsproto_adapters::{blocking, tls, ClientOptions, Message};
//!
//! // A server: TLS, then the WebSocket handshake, under the handshake timeout.
//! let acceptor = tls::Acceptor::from_pem_files("cert.pem", "key.pem")?;
//! let listener = TcpListener::bind("127.0.0.1:9443")?;
//! let (tcp, _) = listener.accept()?;
//! let mut ws = acceptor.accept(tcp)?;
//! if let Message::Text(t) = ws.read()? {
//!     ws.send_text(&t)?;
//! }
//!
//! // A client trusting the web's roots...
//! let mut ws = blocking::connect("wss://example.com/socket")?;
//! // ...or only the certificate in a PEM file.
//! let config = tls::client_config_from_pem(&std::fs::read("cert.pem")?)?;
//! let mut ws = tls::connect("wss://localhost:9443/", &ClientOptions::default(), config)?;
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "blocking"))] fn main() {}
//! ```

pub(crate) mod session;

pub use rustls;
pub use rustls::{ClientConfig, ServerConfig};
pub use session::{client_config_from_pem, default_client_config, Acceptor, HTTP_ALPN};
pub use tokio_rustls;

#[cfg(any(feature = "blocking", feature = "tokio"))]
use crate::{ClientOptions, Error, ServerOptions};
#[cfg(any(feature = "blocking", feature = "tokio"))]
use session::handshake_timeout;
#[cfg(any(feature = "blocking", feature = "tokio"))]
use std::sync::Arc;

#[cfg(any(feature = "blocking", feature = "tokio"))]
impl Acceptor {
    /// Runs the TLS handshake on `tcp`, then the WebSocket handshake, with
    /// default options.
    #[cfg(feature = "blocking")]
    pub fn accept(
        &self,
        tcp: std::net::TcpStream,
    ) -> Result<crate::blocking::WebSocket<crate::blocking::MaybeTls>, Error> {
        self.accept_with(tcp, &ServerOptions::default())
    }

    /// Runs the TLS handshake on `tcp` (within
    /// `options.config.handshake_timeout`), then the WebSocket handshake of
    /// [`blocking::accept_with`](crate::blocking::accept_with).
    #[cfg(feature = "blocking")]
    pub fn accept_with(
        &self,
        tcp: std::net::TcpStream,
        options: &ServerOptions,
    ) -> Result<crate::blocking::WebSocket<crate::blocking::MaybeTls>, Error> {
        let stream = self.handshake_blocking(tcp, handshake_timeout(&options.config))?;
        crate::blocking::accept_with(stream, options)
    }

    /// The tokio version of [`Acceptor::accept`].
    #[cfg(feature = "tokio")]
    pub async fn accept_async(
        &self,
        tcp: tokio::net::TcpStream,
    ) -> Result<crate::tokio::WebSocket<crate::tokio::MaybeTls>, Error> {
        self.accept_async_with(tcp, &ServerOptions::default()).await
    }

    /// The tokio version of [`Acceptor::accept_with`].
    #[cfg(feature = "tokio")]
    pub async fn accept_async_with(
        &self,
        tcp: tokio::net::TcpStream,
        options: &ServerOptions,
    ) -> Result<crate::tokio::WebSocket<crate::tokio::MaybeTls>, Error> {
        let stream = self
            .handshake_tokio(tcp, handshake_timeout(&options.config))
            .await?;
        crate::tokio::accept_with(stream, options).await
    }
}

/// Connects to a `wss://` URL trusting what `config` trusts: TCP (with
/// `TCP_NODELAY`), the TLS handshake (within
/// `options.config.handshake_timeout`), then the WebSocket handshake.
///
/// [`blocking::connect_with`](crate::blocking::connect_with) is this with
/// [`default_client_config`]. A `ws://` URL is refused rather than sent in
/// the clear.
#[cfg(feature = "blocking")]
pub fn connect(
    url: &str,
    options: &ClientOptions,
    config: Arc<ClientConfig>,
) -> Result<crate::blocking::WebSocket<crate::blocking::MaybeTls>, Error> {
    let stream = session::connect_blocking(url, handshake_timeout(&options.config), config)?;
    crate::blocking::client(stream, url, options)
}

/// The tokio version of [`connect`].
#[cfg(feature = "tokio")]
pub async fn connect_async(
    url: &str,
    options: &ClientOptions,
    config: Arc<ClientConfig>,
) -> Result<crate::tokio::WebSocket<crate::tokio::MaybeTls>, Error> {
    let stream = session::connect_tokio(url, handshake_timeout(&options.config), config).await?;
    crate::tokio::client(stream, url, options).await
}
