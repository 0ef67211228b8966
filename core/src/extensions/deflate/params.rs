//! Negotiation of permessage-deflate (RFC 7692 §7.1) over the
//! `Sec-WebSocket-Extensions` header (RFC 6455 §9.1).
//!
//! The header grammar, simplified to what RFC 6455 §9.1 allows:
//!
//! ```text
//! extension-list  = 1#extension            ; comma separated, empty elements skipped
//! extension       = token *( ";" param )
//! param           = token [ "=" ( token / quoted-string ) ]
//! ```
//!
//! A quoted value is accepted when its content is a token without escapes
//! (RFC 6455 §9.1 requires the unescaped value to be a token; values with
//! `\` escapes are refused as [`ParamError::BadValue`] so parsing stays
//! zero-copy).
//!
//! # Window bits 8
//!
//! RFC 7692 allows window bits 8..=15, but zlib silently raises a raw-deflate
//! window of 8 to 9 when *compressing*. This module therefore never asks a
//! peer for fewer than 9 bits (a configuration of 8 requests 9), and
//! [`Directions::inflate_window_bits`] is never below 9, so an inflater sized
//! from it accepts a zlib peer. Our own compressor honours an agreed 8 exactly
//! (it never references more than 256 bytes back).

use crate::Role;

/// The extension token of permessage-deflate.
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// Longest header value [`write_offer`] or [`Agreed::write_response`] can
/// produce; an output buffer this long never fails.
pub const MAX_VALUE_LEN: usize = 128;

/// Why an extension header value, offer or response was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamError {
    /// The header is not a list of `token *(";" param)` (bad token, empty
    /// parameter, unterminated quote).
    Syntax,
    /// A parameter that permessage-deflate does not define (in this
    /// direction).
    UnknownParam,
    /// The same parameter twice in one offer or response.
    Duplicate,
    /// A parameter value that is not allowed (window bits outside 8..=15,
    /// leading zeros, a value on a flag parameter, a quoted value with
    /// escapes).
    BadValue,
    /// A parameter that needs a value came without one.
    MissingValue,
    /// Response: the server answered with an extension the client did not
    /// offer, or with permessage-deflate twice.
    UnexpectedExtension,
    /// Response: a parameter the client's offer did not allow. Not produced
    /// by [`validate_response`] at present: its offers always allow
    /// `client_max_window_bits`, and an unasked `server_max_window_bits` is
    /// accepted (RFC 7692 lets the server announce a smaller window).
    NotOffered,
    /// Response: `server_max_window_bits` larger than the client asked for.
    WindowTooLarge,
    /// Response: the client asked for `server_max_window_bits` and the
    /// server's answer leaves it out (RFC 7692 §7.1.2.1).
    MissingWindowBits,
}

/// The caller's buffer cannot hold the header value; nothing usable was
/// written. [`MAX_VALUE_LEN`] bytes are always enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferTooSmall;

/// Local permessage-deflate capabilities, for either role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Largest LZ77 window (base-2 log) this endpoint keeps, for its inflater
    /// and its compressor alike: the memory budget (8..=15; values outside
    /// are clamped). 8 is requested from peers as 9 (see the module doc).
    ///
    /// Below 15, a server answers with `server_max_window_bits` (whether or
    /// not the offer named it) and with `client_max_window_bits`; it must
    /// decline offers without `client_max_window_bits`, since RFC 7692
    /// §7.1.2.2 then forbids limiting the client, whose 15-bit window would
    /// need a 15-bit inflater (browsers, Node `ws` and Python `websockets`
    /// all offer it). A client asks for `server_max_window_bits` and
    /// compresses within its budget whatever the server allows.
    pub max_window_bits: u8,
    /// Ask (client) or impose (server) that the server resets its
    /// compression context after every message.
    pub server_no_context_takeover: bool,
    /// Ask (client) or impose (server) that the client resets its
    /// compression context after every message.
    pub client_no_context_takeover: bool,
}

impl Default for DeflateConfig {
    /// Full 32 KiB windows, context takeover both ways.
    fn default() -> Self {
        Self {
            max_window_bits: 15,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
        }
    }
}

impl DeflateConfig {
    /// `max_window_bits` clamped to 8..=15.
    pub fn window_bits(&self) -> u8 {
        self.max_window_bits.clamp(8, 15)
    }

    /// The window we ask the peer to compress with: never below 9.
    fn requested_peer_bits(&self) -> u8 {
        self.window_bits().max(9)
    }
}

/// The permessage-deflate parameters of one offer or response, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeflateParams {
    /// `server_no_context_takeover` was present.
    pub server_no_context_takeover: bool,
    /// `client_no_context_takeover` was present.
    pub client_no_context_takeover: bool,
    /// `server_max_window_bits=N`, if present.
    pub server_max_window_bits: Option<u8>,
    /// `client_max_window_bits[=N]`, if present; in an offer, the form
    /// without a value reads as 15 (any value may be answered).
    pub client_max_window_bits: Option<u8>,
}

/// The outcome of a negotiation: what both ends will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// The server resets its compressor after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message.
    pub client_no_context_takeover: bool,
    /// `server_max_window_bits` as sent in the response; `None` means 15.
    pub server_max_window_bits: Option<u8>,
    /// `client_max_window_bits` as sent in the response; `None` means 15.
    /// On the client ([`validate_response`]) it is further lowered to the
    /// client's own `max_window_bits`: the window it will actually use.
    pub client_max_window_bits: Option<u8>,
}

/// What one endpoint must do in each direction once [`Agreed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Directions {
    /// Largest distance (base-2 log) our compressor may use (8..=15).
    pub compress_window_bits: u8,
    /// Reset our compressor after every message.
    pub compress_no_context_takeover: bool,
    /// Window (base-2 log) our inflater must hold: the peer's limit, never
    /// below 9 (see the module doc).
    pub inflate_window_bits: u8,
    /// Reset our inflater after every message.
    pub inflate_no_context_takeover: bool,
}

impl Directions {
    /// The larger of the two windows (base-2 log): the smallest
    /// [`super::Deflate`] that serves this agreement holds windows of this
    /// size (e.g. 9 → [`super::Deflate9`]).
    pub fn state_window_bits(&self) -> u8 {
        self.compress_window_bits.max(self.inflate_window_bits)
    }
}

impl Agreed {
    /// Splits the agreement into "what I send" and "what I receive" for
    /// `role`.
    pub fn directions(&self, role: Role) -> Directions {
        let server_bits = self.server_max_window_bits.unwrap_or(15);
        let client_bits = self.client_max_window_bits.unwrap_or(15);
        let (mine, mine_nct, theirs, theirs_nct) = match role {
            Role::Server => (
                server_bits,
                self.server_no_context_takeover,
                client_bits,
                self.client_no_context_takeover,
            ),
            Role::Client => (
                client_bits,
                self.client_no_context_takeover,
                server_bits,
                self.server_no_context_takeover,
            ),
        };
        Directions {
            compress_window_bits: mine,
            compress_no_context_takeover: mine_nct,
            inflate_window_bits: theirs.max(9),
            inflate_no_context_takeover: theirs_nct,
        }
    }

    /// Writes the server's `Sec-WebSocket-Extensions` response value, e.g.
    /// `permessage-deflate; server_max_window_bits=10`. Returns its length.
    pub fn write_response(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Writer { out, len: 0 };
        w.push(EXTENSION_NAME)?;
        if self.server_no_context_takeover {
            w.push("; server_no_context_takeover")?;
        }
        if self.client_no_context_takeover {
            w.push("; client_no_context_takeover")?;
        }
        if let Some(bits) = self.server_max_window_bits {
            w.push("; server_max_window_bits=")?;
            w.push_bits(bits)?;
        }
        if let Some(bits) = self.client_max_window_bits {
            w.push("; client_max_window_bits=")?;
            w.push_bits(bits)?;
        }
        Ok(w.len)
    }
}

/// One element of an extension list: its name and raw parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The extension token, e.g. `permessage-deflate`.
    pub name: &'a str,
    raw_params: Option<&'a str>,
}

impl<'a> Extension<'a> {
    /// The parameters, in order.
    pub fn params(&self) -> Params<'a> {
        Params {
            rest: self.raw_params,
        }
    }

    /// Whether this is permessage-deflate (ASCII case-insensitive).
    pub fn is_permessage_deflate(&self) -> bool {
        self.name.eq_ignore_ascii_case(EXTENSION_NAME)
    }
}

/// One parameter: `name` or `name=value` (quotes removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// The parameter token.
    pub name: &'a str,
    /// The value, unquoted, if one was given.
    pub value: Option<&'a str>,
}

/// Iterator over the extensions of a header value; see [`extensions`].
#[derive(Debug, Clone)]
pub struct Extensions<'a> {
    rest: Option<&'a str>,
}

/// Iterator over an extension's parameters; see [`Extension::params`].
#[derive(Debug, Clone)]
pub struct Params<'a> {
    rest: Option<&'a str>,
}

/// Splits a `Sec-WebSocket-Extensions` value into its extensions. After a
/// syntax error the iterator yields that error once and ends.
pub fn extensions(header_value: &str) -> Extensions<'_> {
    Extensions {
        rest: Some(header_value),
    }
}

impl<'a> Iterator for Extensions<'a> {
    type Item = Result<Extension<'a>, ParamError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let rest = self.rest?;
            let (element, tail) = match split_unquoted(rest, ',') {
                Ok(split) => split,
                Err(e) => {
                    self.rest = None;
                    return Some(Err(e));
                }
            };
            self.rest = tail;
            let element = element.trim_matches(is_ows);
            if element.is_empty() {
                continue; // RFC 7230 §7: empty list elements are ignored
            }
            let (name, raw_params) = match split_unquoted(element, ';') {
                Ok(split) => split,
                Err(e) => {
                    self.rest = None;
                    return Some(Err(e));
                }
            };
            let name = name.trim_matches(is_ows);
            if !is_token(name) {
                self.rest = None;
                return Some(Err(ParamError::Syntax));
            }
            return Some(Ok(Extension { name, raw_params }));
        }
    }
}

impl<'a> Iterator for Params<'a> {
    type Item = Result<Param<'a>, ParamError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest?;
        let item = split_unquoted(rest, ';').and_then(|(param, tail)| {
            self.rest = tail;
            parse_param(param)
        });
        if item.is_err() {
            self.rest = None;
        }
        Some(item)
    }
}

fn parse_param(raw: &str) -> Result<Param<'_>, ParamError> {
    let (name, value) = match raw.split_once('=') {
        Some((name, value)) => (name, Some(value.trim_matches(is_ows))),
        None => (raw, None),
    };
    let name = name.trim_matches(is_ows);
    if !is_token(name) {
        return Err(ParamError::Syntax);
    }
    let value = match value {
        None => None,
        Some(v) => {
            let inner = match v.strip_prefix('"') {
                Some(quoted) => quoted.strip_suffix('"').ok_or(ParamError::Syntax)?,
                None => v,
            };
            if !is_token(inner) {
                // Empty, escaped or otherwise not a token.
                return Err(ParamError::BadValue);
            }
            Some(inner)
        }
    };
    Ok(Param { name, value })
}

/// Splits `s` at the first `sep` outside a quoted string.
fn split_unquoted(s: &str, sep: char) -> Result<(&str, Option<&str>), ParamError> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if quoted {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            }
        } else if c == '"' {
            quoted = true;
        } else if c == sep {
            let head = s.get(..i).ok_or(ParamError::Syntax)?;
            let tail = s.get(i + sep.len_utf8()..).ok_or(ParamError::Syntax)?;
            return Ok((head, Some(tail)));
        }
    }
    if quoted {
        Err(ParamError::Syntax)
    } else {
        Ok((s, None))
    }
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// RFC 7230 `token`: one or more tchar.
fn is_token(s: &str) -> bool {
    crate::handshake::is_token(s.as_bytes())
}

/// RFC 7692 §7.1.2: `"8"`..`"15"`, no leading zeros.
fn parse_window_bits(value: &str) -> Result<u8, ParamError> {
    let bits = match value {
        "8" => 8,
        "9" => 9,
        "10" => 10,
        "11" => 11,
        "12" => 12,
        "13" => 13,
        "14" => 14,
        "15" => 15,
        _ => return Err(ParamError::BadValue),
    };
    Ok(bits)
}

/// Which side wrote the parameters: offers and responses differ only for
/// `client_max_window_bits`, whose value is optional in an offer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Offer,
    Response,
}

fn parse_deflate(ext: &Extension<'_>, dir: Direction) -> Result<DeflateParams, ParamError> {
    fn flag(slot: &mut bool, value: Option<&str>) -> Result<(), ParamError> {
        if *slot {
            return Err(ParamError::Duplicate);
        }
        if value.is_some() {
            return Err(ParamError::BadValue);
        }
        *slot = true;
        Ok(())
    }
    let mut p = DeflateParams::default();
    for param in ext.params() {
        let param = param?;
        let name = param.name;
        if name.eq_ignore_ascii_case("server_no_context_takeover") {
            flag(&mut p.server_no_context_takeover, param.value)?;
        } else if name.eq_ignore_ascii_case("client_no_context_takeover") {
            flag(&mut p.client_no_context_takeover, param.value)?;
        } else if name.eq_ignore_ascii_case("server_max_window_bits") {
            if p.server_max_window_bits.is_some() {
                return Err(ParamError::Duplicate);
            }
            let value = param.value.ok_or(ParamError::MissingValue)?;
            p.server_max_window_bits = Some(parse_window_bits(value)?);
        } else if name.eq_ignore_ascii_case("client_max_window_bits") {
            if p.client_max_window_bits.is_some() {
                return Err(ParamError::Duplicate);
            }
            let bits = match (param.value, dir) {
                (Some(value), _) => parse_window_bits(value)?,
                (None, Direction::Offer) => 15,
                (None, Direction::Response) => return Err(ParamError::MissingValue),
            };
            p.client_max_window_bits = Some(bits);
        } else {
            return Err(ParamError::UnknownParam);
        }
    }
    Ok(p)
}

/// Validates the parameters of one permessage-deflate offer (a client's
/// extension element), RFC 7692 §5 and §7.1.
pub fn parse_offer(ext: &Extension<'_>) -> Result<DeflateParams, ParamError> {
    parse_deflate(ext, Direction::Offer)
}

/// Server side: picks the first acceptable permessage-deflate offer of a
/// `Sec-WebSocket-Extensions` value, or `None` to run without compression.
///
/// Offers of other extensions, invalid offers (RFC 7692 §5: unknown or
/// duplicate parameters, bad values) and offers that do not fit `config` are
/// declined and the next one is tried; a syntax error ends the search. With
/// several header lines, call once per line in order and keep the first
/// `Some`.
///
/// Window bits: below 15, the server's are announced as
/// `config.window_bits()` (or the offer's value if smaller), whether or not
/// the offer named `server_max_window_bits` (RFC 7692 §7.1.2.1 allows both);
/// the client's are capped to `config.window_bits().max(9)`, which needs the
/// client to have offered `client_max_window_bits` (§7.1.2.2), otherwise
/// the offer is declined. So both windows of the agreement fit the budget.
pub fn accept_offer(header_value: &str, config: &DeflateConfig) -> Option<Agreed> {
    for ext in extensions(header_value) {
        let ext = ext.ok()?;
        if !ext.is_permessage_deflate() {
            continue;
        }
        let Ok(offer) = parse_offer(&ext) else {
            continue;
        };
        if let Some(agreed) = agree(&offer, config) {
            return Some(agreed);
        }
    }
    None
}

fn agree(offer: &DeflateParams, config: &DeflateConfig) -> Option<Agreed> {
    let ours = config.window_bits();
    let peer_limit = config.requested_peer_bits();
    let client_max_window_bits = match offer.client_max_window_bits {
        None if peer_limit < 15 => return None, // cannot bound the client's window
        None => None,
        Some(offered) => Some(offered.min(peer_limit)).filter(|&bits| bits < 15),
    };
    Some(Agreed {
        server_no_context_takeover: offer.server_no_context_takeover
            || config.server_no_context_takeover,
        client_no_context_takeover: offer.client_no_context_takeover
            || config.client_no_context_takeover,
        // RFC 7692 §7.1.2.1 lets the server announce its window unasked:
        // below 15 bits it always does, so its compressor fits the budget.
        server_max_window_bits: match offer.server_max_window_bits {
            Some(offered) => Some(offered.min(ours)),
            None => Some(ours).filter(|&bits| bits < 15),
        },
        client_max_window_bits,
    })
}

/// Client side: writes the offer value for `config`, e.g.
/// `permessage-deflate; client_max_window_bits`. Returns its length.
///
/// `client_max_window_bits` is always offered (any window the server picks
/// can be honoured); `server_max_window_bits` is offered when
/// `config.window_bits()` is below 15, as `max(bits, 9)`.
pub fn write_offer(config: &DeflateConfig, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let mut w = Writer { out, len: 0 };
    w.push(EXTENSION_NAME)?;
    if config.server_no_context_takeover {
        w.push("; server_no_context_takeover")?;
    }
    if config.client_no_context_takeover {
        w.push("; client_no_context_takeover")?;
    }
    if config.window_bits() < 15 {
        w.push("; server_max_window_bits=")?;
        w.push_bits(config.requested_peer_bits())?;
    }
    w.push("; client_max_window_bits")?;
    Ok(w.len)
}

/// Client side: validates the server's `Sec-WebSocket-Extensions` response
/// value against the offer [`write_offer`] made from `config`.
///
/// The response must hold permessage-deflate exactly once and nothing else.
/// The server may add `server_no_context_takeover` and
/// `client_no_context_takeover` unasked; `server_max_window_bits` must be
/// present (and not larger) when it was offered, and may be announced
/// unasked (the server only promises a smaller window than the 15 bits the
/// client is ready for; Python `websockets` servers answer
/// `server_max_window_bits=12` by default); any `client_max_window_bits`
/// value is fine since it was offered. Any error
/// means the client must fail the connection (RFC 6455 §9.1).
///
/// The returned `client_max_window_bits` is the response's, lowered to
/// `config.window_bits()`, so [`Agreed::directions`] never has our
/// compressor exceed the budget.
pub fn validate_response(header_value: &str, config: &DeflateConfig) -> Result<Agreed, ParamError> {
    let mut found: Option<DeflateParams> = None;
    for ext in extensions(header_value) {
        let ext = ext?;
        if !ext.is_permessage_deflate() || found.is_some() {
            return Err(ParamError::UnexpectedExtension);
        }
        found = Some(parse_deflate(&ext, Direction::Response)?);
    }
    let resp = found.ok_or(ParamError::UnexpectedExtension)?;
    if config.window_bits() < 15 {
        let asked = config.requested_peer_bits();
        match resp.server_max_window_bits {
            None => return Err(ParamError::MissingWindowBits),
            Some(bits) if bits > asked => return Err(ParamError::WindowTooLarge),
            Some(_) => {}
        }
    }
    // Our compressor may always use less than the server allows (RFC 7692
    // §7.1.2.2 sets only an upper bound): keep it within our budget.
    let ours = config.window_bits();
    let client_max_window_bits = match resp.client_max_window_bits {
        Some(bits) => Some(bits.min(ours)),
        None => Some(ours).filter(|&bits| bits < 15),
    };
    Ok(Agreed {
        server_no_context_takeover: resp.server_no_context_takeover,
        client_no_context_takeover: resp.client_no_context_takeover,
        server_max_window_bits: resp.server_max_window_bits,
        client_max_window_bits,
    })
}

struct Writer<'o> {
    out: &'o mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn push(&mut self, s: &str) -> Result<(), BufferTooSmall> {
        let end = self.len.checked_add(s.len()).ok_or(BufferTooSmall)?;
        let dst = self.out.get_mut(self.len..end).ok_or(BufferTooSmall)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }

    fn push_bits(&mut self, bits: u8) -> Result<(), BufferTooSmall> {
        self.push(match bits.clamp(8, 15) {
            8 => "8",
            9 => "9",
            10 => "10",
            11 => "11",
            12 => "12",
            13 => "13",
            14 => "14",
            _ => "15",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(value: &str) -> Result<DeflateParams, ParamError> {
        let ext = extensions(value).next().unwrap()?;
        parse_offer(&ext)
    }

    fn write(f: impl FnOnce(&mut [u8]) -> Result<usize, BufferTooSmall>) -> std::string::String {
        let mut out = [0u8; MAX_VALUE_LEN];
        let n = f(&mut out).unwrap();
        std::str::from_utf8(&out[..n]).unwrap().into()
    }

    #[test]
    fn parses_parameters() {
        let p = offer(
            "permessage-deflate; server_no_context_takeover; client_max_window_bits; \
             server_max_window_bits=\"10\"",
        )
        .unwrap();
        assert!(p.server_no_context_takeover && !p.client_no_context_takeover);
        assert_eq!(p.server_max_window_bits, Some(10));
        assert_eq!(p.client_max_window_bits, Some(15));
        // Names are case-insensitive, whitespace around separators is fine.
        let p = offer("Permessage-Deflate ;CLIENT_NO_CONTEXT_TAKEOVER").unwrap();
        assert!(p.client_no_context_takeover);
    }

    #[test]
    fn duplicate_parameters_are_refused() {
        for value in [
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=9",
        ] {
            assert_eq!(offer(value), Err(ParamError::Duplicate), "{value}");
        }
    }

    #[test]
    fn bad_window_bits_are_refused() {
        for bits in ["7", "16", "08", "1O", "", "\"\"", "-9", "9.0", "\"1\\5\""] {
            let value = std::format!("permessage-deflate; server_max_window_bits={bits}");
            assert!(
                matches!(
                    offer(&value),
                    Err(ParamError::BadValue | ParamError::Syntax)
                ),
                "{value}: {:?}",
                offer(&value)
            );
        }
        assert_eq!(
            offer("permessage-deflate; server_max_window_bits"),
            Err(ParamError::MissingValue)
        );
        assert_eq!(
            offer("permessage-deflate; server_no_context_takeover=1"),
            Err(ParamError::BadValue)
        );
        assert_eq!(
            offer("permessage-deflate; x-unknown"),
            Err(ParamError::UnknownParam)
        );
        assert_eq!(
            offer("permessage-deflate; \"unterminated"),
            Err(ParamError::Syntax)
        );
    }

    #[test]
    fn server_picks_the_first_acceptable_offer() {
        let config = DeflateConfig::default();
        // Invalid and foreign offers are skipped.
        let agreed = accept_offer(
            "x-foo, permessage-deflate; bogus, permessage-deflate; server_max_window_bits=11, \
             permessage-deflate",
            &config,
        )
        .unwrap();
        assert_eq!(agreed.server_max_window_bits, Some(11));
        // A small server declines offers that cannot limit the client's window.
        let small = DeflateConfig {
            max_window_bits: 10,
            ..config
        };
        let agreed = accept_offer(
            "permessage-deflate, permessage-deflate; client_max_window_bits=12",
            &small,
        )
        .unwrap();
        assert_eq!(agreed.client_max_window_bits, Some(10));
        assert_eq!(agreed.directions(Role::Server).inflate_window_bits, 10);
        assert_eq!(accept_offer("permessage-deflate", &small), None);
        // Below 15 bits the server announces its window unasked.
        assert_eq!(agreed.server_max_window_bits, Some(10));
        assert_eq!(agreed.directions(Role::Server).state_window_bits(), 10);
        assert_eq!(
            write(|o| agreed.write_response(o)),
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10"
        );
        // ... and caps a larger one the client asked for.
        let agreed = accept_offer(
            "permessage-deflate; server_max_window_bits=15; client_max_window_bits",
            &small,
        )
        .unwrap();
        assert_eq!(agreed.server_max_window_bits, Some(10));
        // A syntax error ends the search.
        assert_eq!(
            accept_offer("per\"message, permessage-deflate", &config),
            None
        );
        assert_eq!(accept_offer("", &config), None);
        // The server may impose no context takeover.
        let nct = DeflateConfig {
            client_no_context_takeover: true,
            ..config
        };
        let agreed = accept_offer("permessage-deflate", &nct).unwrap();
        assert!(agreed.client_no_context_takeover);
        assert_eq!(
            write(|o| agreed.write_response(o)),
            "permessage-deflate; client_no_context_takeover"
        );
    }

    #[test]
    fn window_bits_eight_are_asked_as_nine() {
        let eight = DeflateConfig {
            max_window_bits: 8,
            ..DeflateConfig::default()
        };
        assert_eq!(
            write(|o| write_offer(&eight, o)),
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits"
        );
        let agreed = accept_offer("permessage-deflate; client_max_window_bits=8", &eight).unwrap();
        assert_eq!(agreed.directions(Role::Server).inflate_window_bits, 9);
        assert_eq!(agreed.directions(Role::Client).compress_window_bits, 8);
    }

    #[test]
    fn client_validates_the_response() {
        let config = DeflateConfig::default();
        assert_eq!(
            write(|o| write_offer(&config, o)),
            "permessage-deflate; client_max_window_bits"
        );
        let agreed =
            validate_response("permessage-deflate; client_max_window_bits=10", &config).unwrap();
        assert_eq!(agreed.client_max_window_bits, Some(10));
        assert_eq!(agreed.directions(Role::Client).compress_window_bits, 10);
        // A server window announced unasked: a promise to use less.
        let agreed = validate_response(
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
            &config,
        )
        .unwrap();
        assert_eq!(agreed.server_max_window_bits, Some(12));
        assert_eq!(agreed.directions(Role::Client).inflate_window_bits, 12);
        assert_eq!(
            validate_response("permessage-deflate; server_max_window_bits=16", &config),
            Err(ParamError::BadValue)
        );
        assert_eq!(
            validate_response("permessage-deflate; client_max_window_bits", &config),
            Err(ParamError::MissingValue)
        );
        assert_eq!(
            validate_response("permessage-deflate; x=1", &config),
            Err(ParamError::UnknownParam)
        );
        assert_eq!(
            validate_response("x-foo", &config),
            Err(ParamError::UnexpectedExtension)
        );
        assert_eq!(
            validate_response("permessage-deflate, permessage-deflate", &config),
            Err(ParamError::UnexpectedExtension)
        );
        assert_eq!(
            validate_response(
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                &config
            ),
            Err(ParamError::Duplicate)
        );
        // Asked for 12 bits: the answer must name at most 12.
        let small = DeflateConfig {
            max_window_bits: 12,
            ..config
        };
        assert_eq!(
            validate_response("permessage-deflate", &small),
            Err(ParamError::MissingWindowBits)
        );
        assert_eq!(
            validate_response("permessage-deflate; server_max_window_bits=13", &small),
            Err(ParamError::WindowTooLarge)
        );
        let agreed =
            validate_response("permessage-deflate; server_max_window_bits=9", &small).unwrap();
        assert_eq!(agreed.directions(Role::Client).inflate_window_bits, 9);
        // The client's own window stays within its budget, whatever the
        // server allows.
        assert_eq!(agreed.client_max_window_bits, Some(12));
        assert_eq!(agreed.directions(Role::Client).compress_window_bits, 12);
        let agreed = validate_response(
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits=15",
            &small,
        )
        .unwrap();
        assert_eq!(agreed.directions(Role::Client).state_window_bits(), 12);
        // Unasked no-context-takeover flags are fine.
        let agreed = validate_response(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            &config,
        )
        .unwrap();
        assert!(agreed.directions(Role::Client).compress_no_context_takeover);
        assert!(agreed.directions(Role::Client).inflate_no_context_takeover);
    }
}
