//! The opening handshake without I/O, shared by the std drivers: buffers the
//! head, lets the core parse and validate it, and hands back the bytes to
//! write and the bytes that already belong to the connection.

use crate::rng::StdRng;
use crate::url::Url;
use crate::{ClientOptions, Error, MemoryBudget, ServerOptions};
use wsproto::extensions::deflate::{Agreed, CompressionLevel, DeflateConfig};
use wsproto::handshake::{Accept, ClientHandshake, ClientRequest, ServerHandshake};
use wsproto::httparse::{Header, EMPTY_HEADER};
use wsproto::{Config, HandshakeError, Instant, Misuse};

/// Header slots per head: bounds the header count.
const HEADER_SLOTS: usize = 64;
/// The head buffer never grows past this, whatever the configured limit.
const MAX_HEAD_BUFFER: usize = 1 << 20;

/// A completed handshake.
pub(crate) struct Done {
    /// The subprotocol agreed on.
    pub protocol: Option<String>,
    /// Bytes after the head: the first WebSocket frames.
    pub leftover: Vec<u8>,
    /// (server) The 101 response to write.
    pub response: Vec<u8>,
    /// The request target (server: as requested; client: as sent).
    pub path: String,
    /// The permessage-deflate agreement, if the extension was negotiated.
    pub deflate: Option<Agreed>,
    /// The memory budget the connection draws from, if any.
    pub budget: Option<MemoryBudget>,
    /// (server) The pool deflate states are borrowed from, in the shared
    /// mode.
    pub shared: Option<crate::SharedDeflate>,
    /// How hard our compressor works (with deflate agreed).
    pub level: CompressionLevel,
}

/// A failed handshake: the core's HTTP answer (empty for clients) and why.
pub(crate) struct Failed {
    pub response: Vec<u8>,
    pub error: HandshakeError,
}

fn failed(error: HandshakeError) -> Failed {
    let response = write_sized(|out| error.write_response(out)).unwrap_or_default();
    Failed { response, error }
}

/// Runs a core writer into a buffer exactly as large as it asks for: the
/// core sizes what it writes before it writes (`BufferTooSmall { required }`
/// on an empty buffer), so nothing is guessed.
pub(crate) fn write_sized(
    mut write: impl FnMut(&mut [u8]) -> Result<usize, Misuse>,
) -> Result<Vec<u8>, Misuse> {
    let required = match write(&mut []) {
        Ok(_) => 0,
        Err(Misuse::BufferTooSmall { required }) => required,
        Err(e) => return Err(e),
    };
    let mut out = vec![0u8; required];
    let n = write(&mut out)?;
    out.truncate(n);
    Ok(out)
}

/// The growing buffer holding a head as it arrives.
struct HeadBuffer {
    buf: Vec<u8>,
    len: usize,
}

impl HeadBuffer {
    fn new(config: &Config) -> Self {
        let cap = config.limits.max_handshake_bytes.clamp(64, MAX_HEAD_BUFFER);
        HeadBuffer {
            buf: vec![0; cap],
            len: 0,
        }
    }
}

/// Server side of the handshake.
pub(crate) struct ServerHs {
    hs: ServerHandshake,
    head: HeadBuffer,
    protocols: Vec<String>,
    deflate: Option<DeflateConfig>,
    budget: Option<MemoryBudget>,
    shared: Option<crate::SharedDeflate>,
    level: CompressionLevel,
}

impl ServerHs {
    pub fn new(options: &ServerOptions, now: Instant) -> Self {
        ServerHs {
            hs: ServerHandshake::new(&options.config, now),
            head: HeadBuffer::new(&options.config),
            protocols: options.protocols.clone(),
            deflate: options.negotiated_deflate(),
            budget: options.memory_budget.clone(),
            shared: options.deflate_memory.pool().cloned(),
            level: options.deflate_level,
        }
    }

    /// Where the next read goes.
    pub fn spare(&mut self) -> &mut [u8] {
        self.head.buf.get_mut(self.head.len..).unwrap_or_default()
    }

    /// `n` bytes were read into [`ServerHs::spare`].
    pub fn filled(&mut self, n: usize) {
        self.head.len = (self.head.len + n).min(self.head.buf.len());
    }

    /// When the handshake times out.
    pub fn deadline(&self) -> Option<Instant> {
        self.hs.poll_timeout()
    }

    /// Parses what has arrived; `Ok(None)` while the head is incomplete.
    pub fn poll(&mut self, now: Instant) -> Result<Option<Done>, Failed> {
        let mut headers = [EMPTY_HEADER; HEADER_SLOTS];
        let buf = self.head.buf.get(..self.head.len).unwrap_or_default();
        match self.hs.parse(buf, &mut headers) {
            Ok(Some(req)) => {
                let protocol = self
                    .protocols
                    .iter()
                    .find(|p| req.protocols().any(|offered| offered == p.as_str()))
                    .cloned();
                let accept = Accept {
                    protocol: protocol.as_deref(),
                    headers: &[],
                };
                // The core picks the first acceptable offer, within our caps.
                let deflate = self.deflate.and_then(|cfg| req.negotiate_deflate(&cfg));
                let response = write_sized(|out| match &deflate {
                    Some(agreed) => req.accept_deflate(&accept, agreed, out),
                    None => req.accept(&accept, out),
                })
                .map_err(|_| failed(HandshakeError::Malformed))?;
                let leftover = buf.get(req.head_len()..).unwrap_or_default().to_vec();
                Ok(Some(Done {
                    protocol,
                    leftover,
                    response,
                    path: req.path().to_owned(),
                    deflate,
                    budget: self.budget.clone(),
                    shared: self.shared.clone(),
                    level: self.level,
                }))
            }
            Ok(None) => {
                self.hs.handle_timeout(now).map_err(failed)?;
                if self.head.len == self.head.buf.len() {
                    return Err(failed(HandshakeError::HeadTooLarge));
                }
                Ok(None)
            }
            Err(e) => Err(failed(e)),
        }
    }
}

/// Client side of the handshake.
pub(crate) struct ClientHs {
    hs: ClientHandshake,
    head: HeadBuffer,
    host: String,
    path: String,
    origin: Option<String>,
    protocols: Vec<String>,
    budget: Option<MemoryBudget>,
    level: CompressionLevel,
    /// The request to write.
    pub request: Vec<u8>,
}

fn with_request<T>(
    host: &str,
    path: &str,
    origin: Option<&str>,
    protocols: &[String],
    headers: &[(String, String)],
    f: impl FnOnce(&ClientRequest<'_>) -> T,
) -> T {
    let protocols: Vec<&str> = protocols.iter().map(String::as_str).collect();
    let headers: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    f(&ClientRequest {
        host,
        path,
        origin,
        protocols: &protocols,
        headers: &headers,
    })
}

impl ClientHs {
    pub fn new(
        url: &Url,
        options: &ClientOptions,
        rng: &mut StdRng,
        now: Instant,
    ) -> Result<Self, Error> {
        let host = url.host_header();
        // A first guess from the parts; the core says exactly how much it
        // needs when that is not enough (a long origin, many headers).
        let parts = host.len()
            + url.path.len()
            + options.origin.as_ref().map_or(0, String::len)
            + options
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len() + 4)
                .sum::<usize>()
            + options.protocols.iter().map(|p| p.len() + 2).sum::<usize>();
        let mut request = vec![0u8; 512 + parts];
        let (hs, n) = loop {
            let written = with_request(
                &host,
                &url.path,
                options.origin.as_deref(),
                &options.protocols,
                &options.headers,
                |req| match &options.deflate {
                    Some(deflate) => ClientHandshake::new_with_deflate(
                        req,
                        deflate,
                        rng,
                        &options.config,
                        now,
                        &mut request,
                    ),
                    None => ClientHandshake::new(req, rng, &options.config, now, &mut request),
                },
            );
            match written {
                Err(Misuse::BufferTooSmall { required }) if required > request.len() => {
                    request.resize(required, 0);
                }
                other => break other?,
            }
        };
        request.truncate(n);
        Ok(ClientHs {
            hs,
            head: HeadBuffer::new(&options.config),
            host,
            path: url.path.clone(),
            origin: options.origin.clone(),
            protocols: options.protocols.clone(),
            budget: options.memory_budget.clone(),
            level: options.deflate_level,
            request,
        })
    }

    /// Where the next read goes.
    pub fn spare(&mut self) -> &mut [u8] {
        self.head.buf.get_mut(self.head.len..).unwrap_or_default()
    }

    /// `n` bytes were read into [`ClientHs::spare`].
    pub fn filled(&mut self, n: usize) {
        self.head.len = (self.head.len + n).min(self.head.buf.len());
    }

    /// When the handshake times out.
    pub fn deadline(&self) -> Option<Instant> {
        self.hs.poll_timeout()
    }

    /// Parses what has arrived; `Ok(None)` while the head is incomplete.
    pub fn poll(&mut self, now: Instant) -> Result<Option<Done>, Error> {
        let buf = self.head.buf.get(..self.head.len).unwrap_or_default();
        let hs = &mut self.hs;
        let parsed = with_request(
            &self.host,
            &self.path,
            self.origin.as_deref(),
            &self.protocols,
            &[],
            |req| {
                let mut headers: [Header<'_>; HEADER_SLOTS] = [EMPTY_HEADER; HEADER_SLOTS];
                hs.parse(req, buf, &mut headers).map(|r| {
                    r.map(|r| (r.protocol().map(str::to_owned), r.head_len(), r.deflate()))
                })
            },
        )?;
        match parsed {
            Some((protocol, head_len, deflate)) => Ok(Some(Done {
                protocol,
                leftover: buf.get(head_len..).unwrap_or_default().to_vec(),
                response: Vec::new(),
                path: self.path.clone(),
                deflate,
                budget: self.budget.clone(),
                shared: None,
                level: self.level,
            })),
            None => {
                self.hs.handle_timeout(now)?;
                if self.head.len == self.head.buf.len() {
                    return Err(HandshakeError::HeadTooLarge.into());
                }
                Ok(None)
            }
        }
    }
}
