//! One memory budget shared by many connections.
//!
//! Each connection's [`wsproto::Limits`] bound what one peer can make it
//! hold (a message, 16 MiB by default). A server holds many connections, so
//! those limits alone let `n` peers make it hold `n` times as much: ten
//! clients each sending 60 KB of permessage-deflate that inflates to the
//! message limit are ten full messages in memory. A [`MemoryBudget`] caps
//! the sum: every connection given the same budget (through
//! [`ServerOptions::memory_budget`](crate::ServerOptions::memory_budget) or
//! [`ClientOptions::memory_budget`](crate::ClientOptions::memory_budget))
//! reserves from it before a buffer grows and gives back when the buffer is
//! freed or shrunk.
//!
//! # What is charged
//!
//! * the message being reassembled, fragment by fragment, including what
//!   permessage-deflate inflated into it (inflating itself goes through a
//!   fixed 32 KiB scratch buffer, so the inflated bytes are charged as they
//!   are appended);
//! * the last message handed to the application, until the next `read` on
//!   that connection (an echo or a broadcast usually sends it on before
//!   reading again, and for that time it is memory the peer made us hold);
//! * the transmit queue: every byte of capacity of the buffer frames are
//!   encoded into before they are written.
//!
//! Buffers grow by doubling (at least), and while one grows the old and the
//! new allocation both exist until the bytes are copied across, so both are
//! charged until then: a message of `m` bytes arriving in pieces needs up to
//! `1.5 × m` of budget at its last growth, and `2 × m` while it is echoed
//! (the delivered message plus the frame queued to send).
//!
//! Not charged, because they are fixed per connection and known up front: the
//! receive window (65 KiB at most), the 32 KiB inflate scratch and the deflate state
//! (about 156 KiB at 15 window bits), and a message once the application has
//! it and has read again. Count those as the per-connection overhead next to
//! the budget when sizing a server.
//!
//! # When the budget is spent: close with 1013
//!
//! A connection whose buffer would grow past what is left is failed: its
//! partial message is dropped, its buffers are given back, and it is closed
//! with 1013 (Try Again Later) through the core's `close`. The driver then
//! discards what the peer still sends until the close handshake ends (or its
//! `close_timeout`), and `read` returns an error for which
//! [`Error::is_over_budget`](crate::Error::is_over_budget) holds. Other
//! connections carry on, and nothing is ever process-wide.
//!
//! A send whose frame would not fit fails the connection the same way:
//! nothing of its message is queued, the Close (1013) is, and the send
//! writes that Close and returns `Ok` (the message is dropped, as anything
//! sent on a failing connection may be); the next `read` returns the budget
//! error, and later sends [`Error::ConnectionClosed`](crate::Error::ConnectionClosed).
//! Returning the error from the send itself would leave the Close unwritten
//! in the usual `if send fails, drop the connection` code, and the peer would
//! see the connection cut without a code.
//!
//! Waiting for memory instead is not offered: the memory a waiting connection
//! needs is held by other connections' partial messages, which only their
//! peers can finish. Peers that open large messages and stall would hold the
//! whole budget while every connection waits on every other one, a deadlock
//! a single attacker with a few sockets can cause. Failing the connection
//! that asks is the one policy that always makes progress; its peer can try
//! again later, as 1013 says.
//!
//! # Trickling peers: closed with 1008 by the minimum-progress rule
//!
//! A peer that opens a large frame or message and then sends it a few bytes
//! at a time (a slow-loris on frames) needs no more memory than it sent, so
//! the budget never refuses it; what it holds is a connection, and its share
//! of the budget, for as long as it keeps trickling. The core's
//! minimum-progress rule ([`wsproto::Config::min_progress`], on by default:
//! 8 KiB of data payload per 30 s while a message is unfinished) is the
//! answer: slower fails the connection with 1008 (policy violation,
//! [`wsproto::Violation::TooSlow`]), the Close written like any other
//! failure. Control frames are no progress: a peer answering keepalive pings
//! (or sending its own) while its message stalls is still closed. The
//! drivers (blocking, tokio, split) run it with the other core timers; the
//! `embedded` driver has no clock and runs it only as far as its caller
//! hands it the time. Like every timer it measures what the application
//! reads: a connection whose application stops reading for a whole interval
//! in the middle of a message (or whose driver is stuck writing to a peer
//! that does not read) sees no progress either.
//!
//! Choose the floor from the slowest honest upload: the default suits large
//! uploads over very slow links; a chat server with small messages can ask
//! far more (its example asks 4 KiB per 10 s). Between messages the rule does
//! not apply: [`wsproto::Config::idle_timeout`] and keepalive cover a quiet
//! peer, and the opening handshake's deadline covers the HTTP head.
//!
//! # Small messages are never refused
//!
//! Each connection may hold [`MemoryBudget::GRACE`] (64 KiB) of charged
//! buffers even when the budget is spent: a flood of large messages on some
//! connections never refuses a chat line or a small echo on the others. The
//! grace is counted in [`MemoryBudget::used`], which can therefore exceed
//! [`MemoryBudget::limit`] by at most `GRACE` per connection; it is part of
//! the per-connection overhead.
//!
//! # Measured
//!
//! `benches/bomb.sh` sends ten permessage-deflate messages at once to
//! `echo_server --tokio` (64 MiB message limit), each about 412 KiB on the
//! wire and 64 MiB inflated: the server's peak RSS went from 2 MiB idle to
//! 543–605 MiB without a budget and to 76–90 MiB with a 64 MiB budget, every
//! connection closed with 1013 (16 MiB messages: 171 MiB without, 28 MiB
//! with a 32 MiB budget). `tests/budget_attacks.rs` runs four attacks against
//! a 32 MiB budget, twelve attackers next to three well-behaved clients each,
//! and prints the peaks: deflate bombs, unfinished fragmented messages and
//! peers that never read are closed with 1013; tricklers (against a floor of
//! 4 KiB per 500 ms there, to finish quickly) are all closed with 1008; the
//! well-behaved clients get every echo throughout.
//!
//! The budget bounds live buffers; the allocator may keep freed ones
//! resident. With glibc, whose mmap threshold rises after a large buffer is
//! freed (so later large buffers come from the heap and stay there after a
//! refused connection frees them), the attacks peaked up to about 15 MiB
//! above the budget; fixing the threshold (`MALLOC_MMAP_THRESHOLD_=131072`
//! in the server's environment) keeps large buffers mapped, returns them on
//! free, and kept every peak under the budget plus the start-up size.
//!
//! ```
//! use wsproto_adapters::{MemoryBudget, ServerOptions};
//! // 256 MiB for every connection of this server together.
//! let options = ServerOptions::default().with_memory_budget(256 << 20);
//! let budget = options.memory_budget.clone().unwrap();
//! assert_eq!((budget.used(), budget.limit()), (0, 256 << 20));
//! ```

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A pool of bytes that many connections draw from; clones share it.
///
/// Lock-free: reserving is a compare-and-swap loop on one counter, releasing
/// a subtraction. See the [module documentation](self) for what is charged
/// and what happens when it runs out.
#[derive(Clone)]
pub struct MemoryBudget {
    inner: Arc<Shared>,
}

struct Shared {
    limit: usize,
    used: AtomicUsize,
}

impl fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("used", &self.used())
            .field("limit", &self.limit())
            .finish()
    }
}

impl MemoryBudget {
    /// Bytes each connection may hold even when the budget is spent (see the
    /// [module documentation](self)).
    pub const GRACE: usize = 64 * 1024;

    /// A budget of `limit` bytes, nothing used.
    pub fn new(limit: usize) -> Self {
        MemoryBudget {
            inner: Arc::new(Shared {
                limit,
                used: AtomicUsize::new(0),
            }),
        }
    }

    /// Bytes currently charged, by every connection together.
    pub fn used(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// The limit the budget was created with.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Bytes left before the limit (0 when grace took it past).
    pub fn available(&self) -> usize {
        self.limit().saturating_sub(self.used())
    }

    /// Takes `bytes` if that keeps [`MemoryBudget::used`] within the limit.
    pub(crate) fn try_reserve(&self, bytes: usize) -> bool {
        let limit = self.inner.limit;
        self.inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= limit)
            })
            .is_ok()
    }

    /// Takes `bytes` whatever is left (the per-connection grace).
    fn force_reserve(&self, bytes: usize) {
        // Saturating: the count only ever covers live allocations, far below usize::MAX.
        let _ = self
            .inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_add(bytes))
            });
    }

    /// Gives back `bytes` taken earlier.
    fn release(&self, bytes: usize) {
        let _ = self
            .inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            });
    }
}

/// The error a connection fails with when its buffers would outgrow the
/// budget; carried as the source of an [`std::io::ErrorKind::OutOfMemory`]
/// I/O error (see [`Error::is_over_budget`](crate::Error::is_over_budget)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetExceeded {
    /// Bytes the connection asked for.
    pub requested: usize,
}

impl fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "memory budget spent ({} more bytes needed); closed with 1013",
            self.requested
        )
    }
}

impl std::error::Error for BudgetExceeded {}

impl BudgetExceeded {
    /// As the adapters' error.
    pub(crate) fn into_error(self) -> crate::Error {
        crate::Error::Io(std::io::Error::new(std::io::ErrorKind::OutOfMemory, self))
    }
}

impl crate::Error {
    /// Whether this is the failure of a connection that needed more than its
    /// [`MemoryBudget`] had left (and was closed with 1013).
    ///
    /// ```
    /// # use wsproto_adapters::Error;
    /// let e = Error::ConnectionClosed;
    /// assert!(!e.is_over_budget());
    /// ```
    pub fn is_over_budget(&self) -> bool {
        match self {
            crate::Error::Io(e) => e
                .get_ref()
                .is_some_and(|inner| inner.is::<BudgetExceeded>()),
            _ => false,
        }
    }
}

/// What one connection holds of a budget; everything returns on drop.
///
/// Without a budget it only counts, so the driver needs no second code path.
#[derive(Default)]
pub(crate) struct Account {
    budget: Option<MemoryBudget>,
    /// Bytes charged by this connection.
    held: usize,
}

impl Account {
    pub fn new(budget: Option<MemoryBudget>) -> Self {
        Account { budget, held: 0 }
    }

    /// Bytes this connection holds.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.held
    }

    /// Charges `bytes` more: within this connection's grace always, past it
    /// only if the budget has them left.
    #[inline]
    pub fn grow(&mut self, bytes: usize) -> Result<(), BudgetExceeded> {
        if bytes == 0 {
            return Ok(());
        }
        if let Some(budget) = &self.budget {
            let free = MemoryBudget::GRACE.saturating_sub(self.held).min(bytes);
            if !budget.try_reserve(bytes) {
                if free < bytes {
                    return Err(BudgetExceeded { requested: bytes });
                }
                budget.force_reserve(bytes);
            }
        }
        self.held = self.held.saturating_add(bytes);
        Ok(())
    }

    /// Charges `bytes` more whatever the budget has left: for what must be
    /// allocated anyway (a control frame) or already was (an allocator that
    /// gave more than asked).
    #[inline]
    pub fn force(&mut self, bytes: usize) {
        if let Some(budget) = &self.budget {
            budget.force_reserve(bytes);
        }
        self.held = self.held.saturating_add(bytes);
    }

    /// Gives back `bytes` of what this connection holds.
    #[inline]
    pub fn shrink(&mut self, bytes: usize) {
        let bytes = bytes.min(self.held);
        self.held -= bytes;
        if let Some(budget) = &self.budget {
            budget.release(bytes);
        }
    }

    /// Moves the charge from `from` bytes to `to` bytes.
    pub fn resize(&mut self, from: usize, to: usize) -> Result<(), BudgetExceeded> {
        if to > from {
            self.grow(to - from)
        } else {
            self.shrink(from - to);
            Ok(())
        }
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        self.shrink(self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_within_the_limit_and_release_on_drop() {
        let budget = MemoryBudget::new(1 << 20);
        let mut a = Account::new(Some(budget.clone()));
        let mut b = Account::new(Some(budget.clone()));
        a.grow(600 << 10).unwrap();
        // b: 500 KiB would pass the limit; not within its grace either.
        assert_eq!(
            b.grow(500 << 10),
            Err(BudgetExceeded {
                requested: 500 << 10
            })
        );
        assert_eq!(budget.used(), 600 << 10);
        b.grow(400 << 10).unwrap();
        assert_eq!(budget.available(), 24 << 10);
        a.resize(600 << 10, 100 << 10).unwrap();
        assert_eq!(budget.used(), 500 << 10);
        drop(a);
        assert_eq!(budget.used(), 400 << 10);
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn grace_lets_small_buffers_through_a_spent_budget() {
        let budget = MemoryBudget::new(1 << 20);
        let mut hog = Account::new(Some(budget.clone()));
        hog.grow(1 << 20).unwrap();
        // The hog has used its grace up inside the limit: refused.
        assert!(hog.grow(1).is_err());
        let mut small = Account::new(Some(budget.clone()));
        small.grow(1000).unwrap();
        small.grow(MemoryBudget::GRACE - 1000).unwrap();
        assert!(small.grow(1).is_err());
        assert_eq!(budget.used(), (1 << 20) + MemoryBudget::GRACE);
        drop(small);
        assert_eq!((budget.used(), hog.held()), (1 << 20, 1 << 20));
    }

    #[test]
    fn without_a_budget_it_only_counts() {
        let mut a = Account::new(None);
        a.grow(usize::MAX / 2).unwrap();
        a.shrink(10);
        assert_eq!(a.held(), usize::MAX / 2 - 10);
    }

    #[test]
    fn threads_never_push_it_past_the_limit() {
        let budget = MemoryBudget::new(1000);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let budget = budget.clone();
                std::thread::spawn(move || {
                    let mut ok = 0;
                    for _ in 0..10_000 {
                        if budget.try_reserve(7) {
                            assert!(budget.used() <= 1000);
                            budget.release(7);
                            ok += 1;
                        }
                    }
                    ok
                })
            })
            .collect();
        let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!((total, budget.used()), (40_000, 0));
    }

    #[test]
    fn the_error_is_recognisable() {
        let e = BudgetExceeded { requested: 5 }.into_error();
        assert!(e.is_over_budget());
        assert!(e.to_string().contains("1013"), "{e}");
    }
}
