//! The streams `connect` returns: plain TCP, or TLS over TCP (feature
//! `rustls`), behind one type so that `ws://` and `wss://` give the same
//! `WebSocket<MaybeTls>`. The TLS variants exist only with the feature;
//! both enums are `#[non_exhaustive]`, so turning it on breaks no match.

/// The error `connect` gives for a `wss://` URL when TLS is not built in.
#[cfg(not(feature = "rustls"))]
pub(crate) fn tls_not_built_in(url: &str) -> crate::Error {
    crate::Error::Url(format!(
        "{url:?}: wss:// needs the `rustls` feature of wsproto-adapters \
         (or open a TLS stream yourself and pass it to client())"
    ))
}

/// The blocking stream: [`blocking::MaybeTls`](crate::blocking::MaybeTls).
#[cfg(feature = "blocking")]
pub mod blocking {
    use std::io::{self, IoSlice, Read, Write};
    use std::net::{Shutdown, TcpStream};
    use std::ops::Deref;
    use std::time::Duration;

    /// A stream whose reads and writes can be bounded in time and whose write
    /// side can be shut, as a `TcpStream`'s can: what the timers and the
    /// lingering close need.
    #[doc(hidden)]
    pub trait Timed {
        /// Bounds every later read (`None`: reads may block forever).
        fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
        /// Bounds every later write (`None`: writes may block forever).
        fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
        /// Shuts the write side: the peer reads end of file.
        fn shutdown_write(&self) -> io::Result<()>;
    }

    impl Timed for TcpStream {
        fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
            TcpStream::set_read_timeout(self, timeout)
        }
        fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
            TcpStream::set_write_timeout(self, timeout)
        }
        fn shutdown_write(&self) -> io::Result<()> {
            self.shutdown(Shutdown::Write)
        }
    }

    /// A blocking TCP stream, plain (`ws://`) or under TLS (`wss://`, feature
    /// `rustls`).
    ///
    /// It reads and writes the WebSocket bytes (decrypted and encrypted as
    /// needed) and dereferences to the [`TcpStream`] underneath, for socket
    /// options and addresses.
    ///
    /// ```no_run
    /// use wsproto_adapters::blocking::{self, MaybeTls};
    /// let ws = blocking::connect("ws://127.0.0.1:9001/")?;
    /// let stream: &MaybeTls = ws.get_ref();
    /// println!("{} (tls: {})", stream.peer_addr()?, stream.is_tls());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[non_exhaustive]
    #[derive(Debug)]
    pub enum MaybeTls {
        /// Plain TCP (`ws://`).
        Plain(TcpStream),
        /// The client side of a TLS session (`wss://`).
        #[cfg(feature = "rustls")]
        Client(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
        /// The server side of a TLS session (`tls::Acceptor`).
        #[cfg(feature = "rustls")]
        Server(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
    }

    impl MaybeTls {
        /// The TCP stream underneath.
        pub fn tcp(&self) -> &TcpStream {
            match self {
                MaybeTls::Plain(tcp) => tcp,
                #[cfg(feature = "rustls")]
                MaybeTls::Client(tls) => tls.get_ref(),
                #[cfg(feature = "rustls")]
                MaybeTls::Server(tls) => tls.get_ref(),
            }
        }

        /// Whether the bytes go through TLS.
        pub fn is_tls(&self) -> bool {
            !matches!(self, MaybeTls::Plain(_))
        }
    }

    impl Deref for MaybeTls {
        type Target = TcpStream;
        fn deref(&self) -> &TcpStream {
            self.tcp()
        }
    }

    impl From<TcpStream> for MaybeTls {
        fn from(tcp: TcpStream) -> Self {
            MaybeTls::Plain(tcp)
        }
    }

    impl Read for MaybeTls {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self {
                MaybeTls::Plain(tcp) => tcp.read(buf),
                #[cfg(feature = "rustls")]
                MaybeTls::Client(tls) => tls.read(buf),
                #[cfg(feature = "rustls")]
                MaybeTls::Server(tls) => tls.read(buf),
            }
        }
    }

    impl Write for MaybeTls {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            match self {
                MaybeTls::Plain(tcp) => tcp.write(buf),
                #[cfg(feature = "rustls")]
                MaybeTls::Client(tls) => tls.write(buf),
                #[cfg(feature = "rustls")]
                MaybeTls::Server(tls) => tls.write(buf),
            }
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            match self {
                MaybeTls::Plain(tcp) => tcp.write_vectored(bufs),
                #[cfg(feature = "rustls")]
                MaybeTls::Client(tls) => tls.write_vectored(bufs),
                #[cfg(feature = "rustls")]
                MaybeTls::Server(tls) => tls.write_vectored(bufs),
            }
        }

        fn flush(&mut self) -> io::Result<()> {
            match self {
                MaybeTls::Plain(tcp) => tcp.flush(),
                #[cfg(feature = "rustls")]
                MaybeTls::Client(tls) => tls.flush(),
                #[cfg(feature = "rustls")]
                MaybeTls::Server(tls) => tls.flush(),
            }
        }
    }

    /// The driver bounds reads and writes on the TCP stream underneath:
    /// under TLS, a read or write that times out leaves rustls's buffers
    /// as they were, and the next call carries on.
    impl Timed for MaybeTls {
        fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
            self.tcp().set_read_timeout(timeout)
        }
        fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
            self.tcp().set_write_timeout(timeout)
        }
        fn shutdown_write(&self) -> io::Result<()> {
            self.tcp().shutdown(std::net::Shutdown::Write)
        }
    }
}

/// The tokio stream: [`tokio::MaybeTls`](crate::tokio::MaybeTls).
#[cfg(feature = "tokio")]
pub mod tokio {
    use std::io::{self, IoSlice};
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio::net::TcpStream;

    /// The stream under a tokio `connect`: plain TCP (`ws://`), TLS
    /// (`wss://` and `tls::Acceptor`, feature `rustls`), or one stream of an
    /// HTTP/2 connection (`ClientOptions::http2`, feature `hyper`).
    ///
    /// It reads and writes the WebSocket bytes; [`MaybeTls::tcp`] gives the
    /// [`TcpStream`] underneath, for socket options and addresses, when the
    /// WebSocket has one to itself.
    #[non_exhaustive]
    #[derive(Debug)]
    pub enum MaybeTls {
        /// Plain TCP (`ws://`).
        Plain(TcpStream),
        /// A TLS session, client or server side.
        #[cfg(feature = "rustls")]
        Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
        /// A stream of an HTTP/2 connection (RFC 8441): the TCP connection
        /// belongs to the HTTP/2 connection, not to this WebSocket.
        #[cfg(feature = "hyper")]
        Http2(Box<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>),
    }

    impl MaybeTls {
        /// The TCP stream underneath; `None` over HTTP/2, where it is shared
        /// by the connection's streams.
        pub fn tcp(&self) -> Option<&TcpStream> {
            match self {
                MaybeTls::Plain(tcp) => Some(tcp),
                #[cfg(feature = "rustls")]
                MaybeTls::Tls(tls) => Some(tls.get_ref().0),
                #[cfg(feature = "hyper")]
                MaybeTls::Http2(_) => None,
            }
        }

        /// Whether the bytes go through TLS (for HTTP/2: as the stream's
        /// connection was set up, which this does not know; `false`).
        pub fn is_tls(&self) -> bool {
            match self {
                MaybeTls::Plain(_) => false,
                #[cfg(feature = "rustls")]
                MaybeTls::Tls(_) => true,
                #[cfg(feature = "hyper")]
                MaybeTls::Http2(_) => false,
            }
        }

        /// Whether this is a stream of an HTTP/2 connection.
        pub fn is_http2(&self) -> bool {
            match self {
                #[cfg(feature = "hyper")]
                MaybeTls::Http2(_) => true,
                _ => false,
            }
        }
    }

    impl From<TcpStream> for MaybeTls {
        fn from(tcp: TcpStream) -> Self {
            MaybeTls::Plain(tcp)
        }
    }

    impl AsyncRead for MaybeTls {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            match self.get_mut() {
                MaybeTls::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
                #[cfg(feature = "rustls")]
                MaybeTls::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
                #[cfg(feature = "hyper")]
                MaybeTls::Http2(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
            }
        }
    }

    impl AsyncWrite for MaybeTls {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            match self.get_mut() {
                MaybeTls::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
                #[cfg(feature = "rustls")]
                MaybeTls::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
                #[cfg(feature = "hyper")]
                MaybeTls::Http2(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
            }
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            match self.get_mut() {
                MaybeTls::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
                #[cfg(feature = "rustls")]
                MaybeTls::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
                #[cfg(feature = "hyper")]
                MaybeTls::Http2(io) => Pin::new(io.as_mut()).poll_write_vectored(cx, bufs),
            }
        }

        fn is_write_vectored(&self) -> bool {
            match self {
                MaybeTls::Plain(tcp) => tcp.is_write_vectored(),
                #[cfg(feature = "rustls")]
                MaybeTls::Tls(tls) => tls.is_write_vectored(),
                #[cfg(feature = "hyper")]
                MaybeTls::Http2(io) => io.is_write_vectored(),
            }
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            match self.get_mut() {
                MaybeTls::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
                #[cfg(feature = "rustls")]
                MaybeTls::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
                #[cfg(feature = "hyper")]
                MaybeTls::Http2(io) => Pin::new(io.as_mut()).poll_flush(cx),
            }
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            match self.get_mut() {
                MaybeTls::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
                #[cfg(feature = "rustls")]
                MaybeTls::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
                #[cfg(feature = "hyper")]
                MaybeTls::Http2(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
            }
        }
    }
}
