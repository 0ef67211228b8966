//! Parsing `ws://` and `wss://` URLs.
//!
//! ```
//! use wsproto_adapters::url::Url;
//! let url = Url::parse("ws://[::1]:9001/chat?room=1").unwrap();
//! assert_eq!((url.secure, url.host.as_str(), url.port), (false, "::1", 9001));
//! assert_eq!(url.path, "/chat?room=1");
//! assert_eq!(url.host_header(), "[::1]:9001");
//!
//! let url = Url::parse("wss://example.com").unwrap();
//! assert_eq!((url.port, url.path.as_str(), url.host_header().as_str()), (443, "/", "example.com"));
//! ```

use crate::Error;

/// The parts of a WebSocket URL a client needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// `wss://` (TLS) rather than `ws://`.
    pub secure: bool,
    /// The host name or IP literal, without IPv6 brackets.
    pub host: String,
    /// The port: explicit, or 80 (`ws`) / 443 (`wss`).
    pub port: u16,
    /// The request target: path plus query, `/` when absent. Fragments are dropped.
    pub path: String,
}

impl Url {
    /// Parses `ws://host[:port][/path][?query]` or the `wss://` equivalent.
    /// The scheme is case-insensitive; user info is refused.
    pub fn parse(url: &str) -> Result<Url, Error> {
        let bad = |why: &str| Error::Url(format!("{why}: {url:?}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("missing scheme"))?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "ws" => false,
            "wss" => true,
            _ => return Err(bad("scheme must be ws or wss")),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(split);
        if authority.contains('@') {
            return Err(bad("user info is not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(bad("invalid host"));
        }
        let port = match port {
            None | Some("") => {
                if secure {
                    443
                } else {
                    80
                }
            }
            Some(p) => p.parse::<u16>().map_err(|_| bad("invalid port"))?,
        };
        let path = match target {
            "" => "/".to_owned(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.to_owned(),
        };
        if path.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(bad("invalid path"));
        }
        Ok(Url {
            secure,
            host: host.to_owned(),
            port,
            path,
        })
    }

    /// The `Host` header value: the host (bracketed if IPv6), plus `:port`
    /// unless it is the scheme's default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.secure { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Url;

    #[test]
    fn parses_the_usual_shapes() {
        let u = Url::parse("ws://localhost:8080/ws").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("localhost", 8080, "/ws")
        );
        let u = Url::parse("WS://h?x=1#frag").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/?x=1"));
        let u = Url::parse("wss://[::1]/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.host_header().as_str()),
            ("::1", 443, "[::1]")
        );
        assert_eq!(Url::parse("ws://h:80").unwrap().host_header(), "h");
    }

    #[test]
    fn refuses_nonsense() {
        for bad in [
            "http://h/",
            "h:80",
            "ws://",
            "ws://:80",
            "ws://h:99999",
            "ws://[::1",
            "ws://u@h",
            "ws://h/a b",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }
}
