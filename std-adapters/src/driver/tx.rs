//! What waits to be written: the transmit buffer, and a large frame written from its message's own bytes.

use super::*;

/// A data frame written from its message's own bytes: the header the core
/// wrote, then the payload, never copied into the transmit buffer.
pub(super) struct Verbatim {
    pub(super) header: [u8; MAX_HEADER_LEN],
    pub(super) header_len: usize,
    pub(super) payload: Vec<u8>,
    /// Bytes of header and payload written so far.
    pub(super) written: usize,
    /// Bytes of the transmit buffer's queue that go out before this frame.
    pub(super) before: usize,
    /// Bytes charged to the budget for the payload.
    pub(super) charge: usize,
}

impl Verbatim {
    /// The unwritten part of the header, if any.
    pub(super) fn header_left(&self) -> Option<&[u8]> {
        self.header
            .get(self.written..self.header_len)
            .filter(|h| !h.is_empty())
    }

    /// The unwritten part of the payload, if any.
    pub(super) fn payload_left(&self) -> Option<&[u8]> {
        let from = self.written.saturating_sub(self.header_len);
        self.payload.get(from..).filter(|p| !p.is_empty())
    }

    /// Bytes of the frame not yet written.
    pub(super) fn left(&self) -> usize {
        (self.header_len + self.payload.len()).saturating_sub(self.written)
    }
}

/// The transmit buffer: `buf[start..end]` is queued. The bytes of `buf`
/// past `end` stay initialised between frames, so encoding a frame into them
/// does not zero its room first (a 64 KiB `resize` per echoed message).
#[derive(Default)]
pub(super) struct TxBuffer {
    pub(super) buf: Vec<u8>,
    pub(super) start: usize,
    pub(super) end: usize,
    /// Bytes of capacity charged to the budget.
    pub(super) charged: usize,
}

impl TxBuffer {
    pub(super) fn pending(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// `n` queued bytes were written.
    pub(super) fn advance(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.capacity() > TX_KEEP {
                self.buf.truncate(RX_BUFFER);
                self.buf.shrink_to_fit();
            }
        }
    }

    /// Bytes allocated.
    pub(super) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Takes `frame` as the buffer, all of it queued, with `charged` bytes
    /// already charged for it; only when the buffer holds no allocation.
    pub(super) fn adopt(&mut self, frame: Vec<u8>, charged: usize, account: &mut Account) {
        self.buf = frame;
        self.start = 0;
        self.end = self.buf.len();
        self.charged += charged;
        self.settle(account);
    }

    /// Frees the buffer; only when nothing is queued.
    #[cfg(test)]
    pub(super) fn release(&mut self, account: &mut Account) {
        if let Some((_, charged)) = self.take() {
            account.shrink(charged);
        }
    }

    /// The buffer and what is charged for it, taken out; only when nothing
    /// is queued (and something is allocated).
    pub(super) fn take(&mut self) -> Option<(Vec<u8>, usize)> {
        if self.start != self.end || self.buf.capacity() == 0 {
            return None;
        }
        self.start = 0;
        self.end = 0;
        let charged = core::mem::take(&mut self.charged);
        Some((core::mem::take(&mut self.buf), charged))
    }

    /// Drops everything queued.
    pub(super) fn clear(&mut self) {
        self.advance(self.end.saturating_sub(self.start));
    }

    /// Capacity for `len` more bytes, charged before it is allocated;
    /// growth at least doubles, so a run of small frames is amortised.
    pub(super) fn reserve(
        &mut self,
        len: usize,
        account: &mut Account,
    ) -> Result<(), BudgetExceeded> {
        let need = self.end + len;
        let cap = self.buf.capacity();
        if need <= cap {
            return Ok(());
        }
        let target = need.max(cap.saturating_mul(2));
        // Old and new buffers both exist while the bytes are copied across:
        // both are charged until then.
        account.grow(target)?;
        self.charged += target;
        self.buf.reserve_exact(target - self.buf.len());
        self.settle(account);
        Ok(())
    }

    /// [`TxBuffer::reserve`] past the budget (for control frames).
    pub(super) fn reserve_forced(&mut self, len: usize, account: &mut Account) {
        if self.reserve(len, account).is_err() {
            self.buf.reserve(len);
            account.force(self.buf.capacity().saturating_sub(self.charged));
            self.charged = self.buf.capacity();
        }
    }

    /// Brings the charge in line with the capacity after a shrink (or an
    /// allocator that gave more than asked).
    pub(super) fn settle(&mut self, account: &mut Account) {
        let cap = self.buf.capacity();
        if cap < self.charged {
            account.shrink(self.charged - cap);
        } else {
            account.force(cap - self.charged);
        }
        self.charged = cap;
    }

    /// At least `len` writable bytes after the queued ones.
    pub(super) fn room(&mut self, len: usize) -> &mut [u8] {
        if self.start > 0
            && self.end <= self.buf.len()
            && self.start >= self.end.saturating_sub(self.start)
        {
            // Written bytes outweigh the queued ones: move the queue to the
            // front, so a queue never fully drained does not grow forever.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let need = self.end + len;
        if self.buf.len() < need {
            self.buf.resize(need, 0);
        }
        self.buf.get_mut(self.end..).unwrap_or_default()
    }

    /// `n` bytes written into [`TxBuffer::room`] are queued.
    pub(super) fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }
}
