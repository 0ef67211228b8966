//! The wire codec for frames (RFC 6455 §5): header parse/emit, masking, and
//! whole-frame encoding. Usable on its own, below the connection state machine.

mod encoder;
mod header;
mod mask;

pub use encoder::{encode_frame, encoded_frame_len};
pub use header::{FrameHeader, HeaderStatus, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
pub use mask::apply_mask;
pub(crate) use mask::copy_mask_at;
#[cfg(feature = "fast-receive")]
pub(crate) use mask::unmask_whole;
