//! The TLS sessions under the drivers: rustls configurations, the
//! [`Acceptor`], and handshakes that end in a stream. Nothing here knows a
//! WebSocket; the drivers and the public `tls` functions build on it.

// With neither driver on, only the configuration builders are left.
#![cfg_attr(
    not(any(feature = "blocking", feature = "tokio")),
    allow(unused_imports)
)]

use crate::url::Url;
use crate::Error;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::RootCertStore;
use std::io::{self, ErrorKind};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::{ClientConfig, ServerConfig};

/// The ALPN protocol ids of an HTTP server speaking both versions, HTTP/2
/// first: what [`Acceptor::with_alpn`] takes for a server that hands
/// connections to hyper and accepts WebSockets over HTTP/2 extended CONNECT
/// (RFC 8441) as well as HTTP/1.1 upgrades. Browsers only speak HTTP/2
/// over TLS when ALPN agrees on `h2`.
pub const HTTP_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn invalid(what: String) -> impl FnOnce(rustls::Error) -> Error {
    move |e| {
        Error::Io(io::Error::new(
            ErrorKind::InvalidInput,
            format!("{what}: {e}"),
        ))
    }
}

/// The client configuration `connect` uses for `wss://`: the
/// `webpki-roots` trust anchors (see the module doc for why), no client
/// certificate. Built on first use and shared.
pub fn default_client_config() -> Result<Arc<ClientConfig>, Error> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    if let Some(config) = CONFIG.get() {
        return Ok(config.clone());
    }
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(invalid("TLS client configuration".to_owned()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(CONFIG.get_or_init(|| Arc::new(config)).clone())
}

/// A client configuration that trusts exactly the certificates in `pem`
/// (one or more `CERTIFICATE` blocks: a private CA, or a self-signed server
/// certificate), and no others.
///
/// ```
/// use wsproto_adapters::tls;
/// assert!(tls::client_config_from_pem(b"no certificate here").is_err());
/// ```
pub fn client_config_from_pem(pem: &[u8]) -> Result<Arc<ClientConfig>, Error> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| pem_error("certificate PEM", e))?;
        roots
            .add(cert)
            .map_err(invalid("certificate PEM".to_owned()))?;
    }
    if roots.is_empty() {
        return Err(Error::Io(io::Error::new(
            ErrorKind::InvalidInput,
            "certificate PEM: no CERTIFICATE block",
        )));
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(invalid("TLS client configuration".to_owned()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn pem_error(what: &str, e: rustls::pki_types::pem::Error) -> Error {
    Error::Io(io::Error::new(
        ErrorKind::InvalidInput,
        format!("{what}: {e}"),
    ))
}

fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| Error::Io(io::Error::new(e.kind(), format!("{}: {e}", path.display()))))
}

/// The TLS side of a server: one [`ServerConfig`], shared by every
/// connection it accepts.
#[derive(Clone, Debug)]
pub struct Acceptor {
    config: Arc<ServerConfig>,
}

impl Acceptor {
    /// An acceptor with a configuration of your own (client certificates,
    /// ALPN, session resumption...).
    pub fn new(config: Arc<ServerConfig>) -> Acceptor {
        Acceptor { config }
    }

    /// An acceptor serving the certificate chain in `cert_pem` (leaf first)
    /// with the private key in `key_pem` (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Acceptor, Error> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_error("certificate PEM", e))?;
        if chain.is_empty() {
            return Err(Error::Io(io::Error::new(
                ErrorKind::InvalidInput,
                "certificate PEM: no CERTIFICATE block",
            )));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| pem_error("key PEM", e))?;
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(invalid("TLS server configuration".to_owned()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(invalid("certificate and key".to_owned()))?;
        Ok(Acceptor::new(Arc::new(config)))
    }

    /// [`Acceptor::from_pem`] with the contents of two files.
    pub fn from_pem_files(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Acceptor, Error> {
        let (cert, key) = (cert.as_ref(), key.as_ref());
        Acceptor::from_pem(&read_file(cert)?, &read_file(key)?).map_err(|e| match e {
            Error::Io(io) => Error::Io(io::Error::new(
                io.kind(),
                format!("{} / {}: {io}", cert.display(), key.display()),
            )),
            e => e,
        })
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// A copy of this acceptor whose configuration offers `protocols`
    /// through ALPN, in order of preference (replacing any list it had).
    /// The client's choice is then readable on each accepted session
    /// (`get_ref().1.alpn_protocol()` on what `Acceptor::accept_tls`
    /// returns), which tells an HTTP server which protocol to speak.
    ///
    /// ```
    /// # fn main() -> Result<(), wsproto_adapters::Error> {
    /// # let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    /// # let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    /// use wsproto_adapters::tls::{Acceptor, HTTP_ALPN};
    /// let acceptor = Acceptor::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())?
    ///     .with_alpn(&HTTP_ALPN);
    /// assert_eq!(acceptor.config().alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_alpn(&self, protocols: &[&[u8]]) -> Acceptor {
        let mut config = ServerConfig::clone(&self.config);
        config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
        Acceptor::new(Arc::new(config))
    }

    /// Runs only the TLS handshake on `tcp`, within `timeout`, and returns
    /// the TLS stream: for a server that speaks HTTP on it (hyper, axum)
    /// and takes WebSockets over with `upgrade` (feature `hyper`), rather than
    /// starting the WebSocket handshake at once as
    /// [`Acceptor::accept_async`] does.
    #[cfg(feature = "tokio")]
    pub async fn accept_tls(
        &self,
        tcp: tokio::net::TcpStream,
        timeout: Duration,
    ) -> Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>, Error> {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.config.clone());
        Ok(tokio::time::timeout(timeout, acceptor.accept(tcp))
            .await
            .map_err(|_| handshake_timed_out())??)
    }
}

/// `Config::handshake_timeout` as a std `Duration`: the TLS handshake's budget.
#[cfg(any(feature = "blocking", feature = "tokio"))]
pub(crate) fn handshake_timeout(config: &wsproto::Config) -> Duration {
    Duration::from_nanos(config.handshake_timeout.as_nanos())
}

#[cfg(any(feature = "blocking", feature = "tokio"))]
fn handshake_timed_out() -> Error {
    Error::Io(io::Error::new(
        ErrorKind::TimedOut,
        "the TLS handshake timed out",
    ))
}

/// A `wss://` URL, and its host as the name to verify (and send as SNI).
#[cfg(any(feature = "blocking", feature = "tokio"))]
fn parse_target(raw: &str) -> Result<(Url, ServerName<'static>), Error> {
    let url = Url::parse(raw)?;
    if !url.secure {
        return Err(Error::Url(format!(
            "{raw:?}: TLS needs a wss:// URL (ws:// goes in the clear)"
        )));
    }
    let name = ServerName::try_from(url.host.clone())
        .map_err(|_| Error::Url(format!("{raw:?}: not a valid TLS server name")))?;
    Ok((url, name))
}

/// Drives a blocking rustls session through its handshake, bounded by
/// `timeout`; the socket's timeouts are cleared afterwards (the driver sets
/// its own).
#[cfg(feature = "blocking")]
fn finish_handshake<D: rustls::SideData>(
    conn: &mut rustls::ConnectionCommon<D>,
    tcp: &mut std::net::TcpStream,
    timeout: Duration,
) -> Result<(), Error> {
    let deadline = std::time::Instant::now() + timeout;
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(handshake_timed_out());
        }
        tcp.set_read_timeout(Some(left))?;
        tcp.set_write_timeout(Some(left))?;
        match conn.complete_io(tcp) {
            Ok((0, 0)) if conn.is_handshaking() => {
                return Err(Error::Io(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "the peer closed the connection during the TLS handshake",
                )))
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e.into()),
        }
    }
    tcp.set_read_timeout(None)?;
    tcp.set_write_timeout(None)?;
    Ok(())
}

impl Acceptor {
    /// Runs the TLS handshake on an accepted blocking `tcp`, within
    /// `timeout`: the stream a blocking WebSocket handshake then runs on.
    #[cfg(feature = "blocking")]
    pub(crate) fn handshake_blocking(
        &self,
        mut tcp: std::net::TcpStream,
        timeout: Duration,
    ) -> Result<crate::stream::blocking::MaybeTls, Error> {
        let mut conn = rustls::ServerConnection::new(self.config.clone())
            .map_err(invalid("TLS session".to_owned()))?;
        finish_handshake(&mut conn, &mut tcp, timeout)?;
        Ok(crate::stream::blocking::MaybeTls::Server(Box::new(
            rustls::StreamOwned::new(conn, tcp),
        )))
    }

    /// The tokio version of [`Acceptor::handshake_blocking`].
    #[cfg(feature = "tokio")]
    pub(crate) async fn handshake_tokio(
        &self,
        tcp: tokio::net::TcpStream,
        timeout: Duration,
    ) -> Result<crate::stream::tokio::MaybeTls, Error> {
        let tls = self.accept_tls(tcp, timeout).await?;
        Ok(crate::stream::tokio::MaybeTls::Tls(Box::new(tls.into())))
    }
}

/// Opens TCP to a `wss://` URL (with `TCP_NODELAY`) and runs the TLS
/// handshake within `timeout`, verifying the server against `config`: the
/// stream the blocking WebSocket handshake then runs on.
#[cfg(feature = "blocking")]
pub(crate) fn connect_blocking(
    url: &str,
    timeout: Duration,
    config: Arc<ClientConfig>,
) -> Result<crate::stream::blocking::MaybeTls, Error> {
    let (parsed, name) = parse_target(url)?;
    let mut tcp = std::net::TcpStream::connect((parsed.host.as_str(), parsed.port))?;
    tcp.set_nodelay(true)?;
    let mut conn =
        rustls::ClientConnection::new(config, name).map_err(invalid("TLS session".to_owned()))?;
    finish_handshake(&mut conn, &mut tcp, timeout)?;
    Ok(crate::stream::blocking::MaybeTls::Client(Box::new(
        rustls::StreamOwned::new(conn, tcp),
    )))
}

/// The tokio version of [`connect_blocking`].
#[cfg(feature = "tokio")]
pub(crate) async fn connect_tokio(
    url: &str,
    timeout: Duration,
    config: Arc<ClientConfig>,
) -> Result<crate::stream::tokio::MaybeTls, Error> {
    let (parsed, name) = parse_target(url)?;
    let tcp = tokio::net::TcpStream::connect((parsed.host.as_str(), parsed.port)).await?;
    tcp.set_nodelay(true)?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let tls = tokio::time::timeout(timeout, connector.connect(name, tcp))
        .await
        .map_err(|_| handshake_timed_out())??;
    Ok(crate::stream::tokio::MaybeTls::Tls(Box::new(tls.into())))
}
