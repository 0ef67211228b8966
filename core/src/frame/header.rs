//! The frame header (RFC 6455 §5.2): a checked parse that cannot panic, and
//! an emitter that always uses the minimal length form.

use crate::error::{Misuse, Violation};

/// The longest header: 2 bytes + 8 bytes of length + 4 bytes of mask.
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload a control frame may carry.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame opcode. Reserved values never get this far: they are a [`Violation`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: starts a text message.
    Text,
    /// 0x2: starts a binary message.
    Binary,
    /// 0x8: Close.
    Close,
    /// 0x9: Ping.
    Ping,
    /// 0xA: Pong.
    Pong,
}

impl OpCode {
    /// Decodes the low four bits of the first header byte.
    #[inline]
    pub const fn from_bits(bits: u8) -> Result<OpCode, Violation> {
        match bits & 0x0f {
            0x0 => Ok(OpCode::Continuation),
            0x1 => Ok(OpCode::Text),
            0x2 => Ok(OpCode::Binary),
            0x8 => Ok(OpCode::Close),
            0x9 => Ok(OpCode::Ping),
            0xa => Ok(OpCode::Pong),
            _ => Err(Violation::ReservedOpcode),
        }
    }

    /// The four-bit wire value.
    pub const fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xa,
        }
    }

    /// Close, Ping and Pong are control frames.
    pub const fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A parsed or to-be-emitted frame header.
///
/// ```
/// use wsproto::frame::{FrameHeader, OpCode, HeaderStatus};
/// // RFC 6455 §5.7: a single-frame unmasked text message "Hello".
/// let bytes = [0x81, 0x05, b'H', b'e', b'l', b'l', b'o'];
/// let HeaderStatus::Complete(header, len) = FrameHeader::parse(&bytes).unwrap() else { panic!() };
/// assert_eq!((header.opcode, header.payload_len, header.fin, len), (OpCode::Text, 5, true, 2));
/// let mut out = [0u8; 14];
/// assert_eq!(header.emit(&mut out), Ok(2));
/// assert_eq!(out[..2], bytes[..2]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    /// Last frame of its message.
    pub fin: bool,
    /// RSV1..RSV3 as the three low bits (RSV1 = `0b100`).
    pub rsv: u8,
    /// What the payload is.
    pub opcode: OpCode,
    /// The masking key, when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes (at most 2^63 - 1).
    pub payload_len: u64,
}

/// The outcome of parsing a header from a possibly short slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderStatus {
    /// More bytes are needed; nothing was consumed.
    Partial,
    /// A whole header, and how many bytes it took.
    Complete(FrameHeader, usize),
}

impl FrameHeader {
    /// Parses a header from the start of `bytes`.
    ///
    /// Checks everything a header alone can tell: reserved opcodes, control
    /// frame length and FIN, the 63-bit limit and the minimal length form.
    /// Role (mask bit), RSV ownership and message sequencing are the
    /// connection's to check, because they depend on state.
    #[inline]
    pub fn parse(bytes: &[u8]) -> Result<HeaderStatus, Violation> {
        let (b0, b1) = match bytes {
            [b0, b1, ..] => (*b0, *b1),
            _ => return Ok(HeaderStatus::Partial),
        };
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0x07;
        let opcode = OpCode::from_bits(b0)?;
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7f;
        if opcode.is_control() {
            if len7 as usize > MAX_CONTROL_PAYLOAD {
                return Err(Violation::ControlFrameTooLong);
            }
            if !fin {
                return Err(Violation::FragmentedControlFrame);
            }
        }
        let rest = bytes.get(2..).unwrap_or_default();
        let (payload_len, ext) = match len7 {
            126 => match rest {
                [a, b, ..] => {
                    let len = u16::from_be_bytes([*a, *b]) as u64;
                    if len < 126 {
                        return Err(Violation::NonMinimalLength);
                    }
                    (len, 2)
                }
                _ => return Ok(HeaderStatus::Partial),
            },
            127 => match rest.first_chunk::<8>() {
                Some(raw) => {
                    let len = u64::from_be_bytes(*raw);
                    if len >> 63 != 0 {
                        return Err(Violation::LengthOverflow);
                    }
                    if len <= u16::MAX as u64 {
                        return Err(Violation::NonMinimalLength);
                    }
                    (len, 8)
                }
                None => return Ok(HeaderStatus::Partial),
            },
            n => (n as u64, 0),
        };
        let after_len = rest.get(ext..).unwrap_or_default();
        let mask = if masked {
            match after_len.first_chunk::<4>() {
                Some(key) => Some(*key),
                None => return Ok(HeaderStatus::Partial),
            }
        } else {
            None
        };
        let header = FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len,
        };
        Ok(HeaderStatus::Complete(header, header.encoded_len()))
    }

    /// Bytes this header takes on the wire.
    pub const fn encoded_len(&self) -> usize {
        let len_bytes = if self.payload_len < 126 {
            0
        } else if self.payload_len <= u16::MAX as u64 {
            2
        } else {
            8
        };
        2 + len_bytes + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Writes the header into `out`, minimal length form, returning its length.
    /// `out` is untouched when it is too small.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, Misuse> {
        if let Some(head) = out.first_chunk_mut::<MAX_HEADER_LEN>() {
            // Room for any header: written in place, without a copy (only
            // its own bytes are touched).
            return Ok(self.emit_array(head));
        }
        let mut raw = [0u8; MAX_HEADER_LEN];
        let n = self.emit_array(&mut raw);
        match (out.get_mut(..n), raw.get(..n)) {
            (Some(dst), Some(src)) => {
                dst.copy_from_slice(src);
                Ok(n)
            }
            _ => Err(Misuse::BufferTooSmall { required: n }),
        }
    }

    /// Writes the header into a fixed array, returning the used length;
    /// the bytes past it are left as they were.
    pub fn emit_array(&self, raw: &mut [u8; MAX_HEADER_LEN]) -> usize {
        raw[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0x07) << 4) | self.opcode.bits();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut n = 2;
        if self.payload_len < 126 {
            raw[1] = mask_bit | self.payload_len as u8;
        } else if self.payload_len <= u16::MAX as u64 {
            raw[1] = mask_bit | 126;
            let [a, b] = (self.payload_len as u16).to_be_bytes();
            raw[2] = a;
            raw[3] = b;
            n = 4;
        } else {
            raw[1] = mask_bit | 127;
            let [a, b, c, d, e, f, g, h] = (self.payload_len & (u64::MAX >> 1)).to_be_bytes();
            // Only the header's own bytes: the rest of `raw` may be payload.
            [
                raw[2], raw[3], raw[4], raw[5], raw[6], raw[7], raw[8], raw[9],
            ] = [a, b, c, d, e, f, g, h];
            n = 10;
        }
        if let Some([a, b, c, d]) = self.mask {
            let tail: [u8; 4] = [a, b, c, d];
            for (i, byte) in tail.into_iter().enumerate() {
                if let Some(slot) = raw.get_mut(n + i) {
                    *slot = byte;
                }
            }
            n += 4;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(bytes: &[u8]) -> (FrameHeader, usize) {
        match FrameHeader::parse(bytes) {
            Ok(HeaderStatus::Complete(h, n)) => (h, n),
            other => panic!("expected a header, got {other:?}"),
        }
    }

    #[test]
    fn emit_touches_only_the_headers_own_bytes() {
        for len in [5u64, 300, 1 << 20] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let h = FrameHeader {
                    fin: true,
                    rsv: 0,
                    opcode: OpCode::Binary,
                    mask,
                    payload_len: len,
                };
                // Exactly the header, and room for any header (in place).
                for room in [h.encoded_len(), MAX_HEADER_LEN + 2] {
                    let mut out = [0xaa; MAX_HEADER_LEN + 2];
                    let out = &mut out[..room];
                    let n = h.emit(out).unwrap();
                    assert_eq!(n, h.encoded_len());
                    assert_eq!(parse_ok(out).0, h);
                    assert!(out[n..].iter().all(|&b| b == 0xaa), "{len} {mask:?} {room}");
                }
            }
        }
    }

    #[test]
    fn three_length_forms_round_trip() {
        for len in [0u64, 1, 125, 126, 127, 65535, 65536, 1 << 40, (1 << 63) - 1] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let h = FrameHeader {
                    fin: true,
                    rsv: 0,
                    opcode: OpCode::Binary,
                    mask,
                    payload_len: len,
                };
                let mut raw = [0u8; MAX_HEADER_LEN];
                let n = h.emit_array(&mut raw);
                assert_eq!(n, h.encoded_len());
                assert_eq!(parse_ok(&raw[..n]), (h, n));
                for short in 0..n {
                    assert_eq!(FrameHeader::parse(&raw[..short]), Ok(HeaderStatus::Partial));
                }
            }
        }
    }

    #[test]
    fn rejects_what_a_header_alone_can_tell() {
        assert_eq!(
            FrameHeader::parse(&[0x83, 0x00]),
            Err(Violation::ReservedOpcode)
        );
        assert_eq!(
            FrameHeader::parse(&[0x8b, 0x00]),
            Err(Violation::ReservedOpcode)
        );
        assert_eq!(
            FrameHeader::parse(&[0x89, 126]),
            Err(Violation::ControlFrameTooLong)
        );
        assert_eq!(
            FrameHeader::parse(&[0x09, 0]),
            Err(Violation::FragmentedControlFrame)
        );
        assert_eq!(
            FrameHeader::parse(&[0x82, 126, 0, 125]),
            Err(Violation::NonMinimalLength)
        );
        assert_eq!(
            FrameHeader::parse(&[0x82, 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff]),
            Err(Violation::NonMinimalLength)
        );
        assert_eq!(
            FrameHeader::parse(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(Violation::LengthOverflow)
        );
    }

    #[test]
    fn emit_refuses_small_buffer_untouched() {
        let h = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Text,
            mask: Some([9; 4]),
            payload_len: 300,
        };
        let mut out = [0xaa; 7];
        assert_eq!(
            h.emit(&mut out),
            Err(Misuse::BufferTooSmall { required: 8 })
        );
        assert_eq!(out, [0xaa; 7]);
    }
}
