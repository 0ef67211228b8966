//! How much memory a server's permessage-deflate connections hold:
//! [`DeflateMemory`] for [`crate::ServerOptions::deflate_memory`].
//!
//! | mode | idle connection | with a message in flight |
//! |---|---|---|
//! | `PerConnection`, `max_window_bits` 15 (default) | about 123 KiB of deflate state | the same |
//! | `PerConnection`, 12 | about 27 KiB | the same |
//! | `PerConnection`, 9 | about 13 KiB | the same |
//! | `Shared` | a few hundred bytes (no state) | one 15-bit state, about 123 KiB, borrowed from the pool |
//!
//! (The deflate state only; the driver's buffers come on top in every mode,
//! see `BENCHMARKS.md` for whole-process figures.)
//!
//! With context takeover a connection's compressor and inflater remember
//! earlier messages, so each connection must keep its own state for its
//! whole life. `Shared` makes the server answer every offer with
//! `server_no_context_takeover; client_no_context_takeover` (RFC 7692
//! §7.1.1.1 and §7.1.1.2 let a server add both even when the client did not
//! ask), after which a state is blank between messages and one state can
//! serve any connection: it is taken from the pool when a message starts in
//! either direction and given back when neither direction has one open. The
//! price is the ratio: each message is compressed without the history of
//! the previous ones.

use std::sync::{Arc, Mutex, PoisonError};
use wsproto::extensions::deflate::{DeflatePool, Directions, HeapDeflate15};

/// The deflate memory mode of a server (see the [module doc](self) for the
/// memory of each).
///
/// ```
/// use wsproto_adapters::{DeflateMemory, ServerOptions};
///
/// // Connections hold a deflate state only while a message is in flight;
/// // at most 8 idle states are kept for reuse.
/// let options = ServerOptions {
///     deflate_memory: DeflateMemory::shared(8),
///     ..ServerOptions::default()
/// };
/// // Clones of the options (one per accepted connection) share the pool.
/// let again = options.clone();
/// # let _ = again;
/// ```
#[derive(Clone, Debug, Default)]
pub enum DeflateMemory {
    /// Every connection owns its state for its whole life, sized by
    /// [`crate::ServerOptions::deflate`]'s `max_window_bits` (15: about 123
    /// KiB, 12: 27 KiB, 9: 13 KiB). Context takeover as configured. The
    /// default.
    #[default]
    PerConnection,
    /// No context takeover both ways, and the states come from this pool,
    /// shared by every connection accepted with these options.
    Shared(SharedDeflate),
}

impl DeflateMemory {
    /// [`DeflateMemory::Shared`] with a new pool that keeps at most
    /// `max_idle` unused states.
    pub fn shared(max_idle: usize) -> Self {
        DeflateMemory::Shared(SharedDeflate::new(max_idle))
    }

    /// The pool, in the shared mode.
    pub(crate) fn pool(&self) -> Option<&SharedDeflate> {
        match self {
            DeflateMemory::PerConnection => None,
            DeflateMemory::Shared(pool) => Some(pool),
        }
    }
}

/// A pool of deflate states shared by a server's connections (a cheap
/// handle: clones share the pool).
///
/// It is one free list behind a `Mutex`, not one per thread: the blocking
/// server runs each connection on its own thread, so per-thread lists would
/// keep one state per connection again. The lock is held only to push or
/// pop a pointer, never while compressing. The list never holds more than
/// the number of states that were in use at the same time, nor more than
/// `max_idle`: a state given back to a full list is freed.
#[derive(Clone, Debug)]
pub struct SharedDeflate {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    free: Mutex<Vec<(Directions, Box<HeapDeflate15>)>>,
    max_idle: usize,
}

impl SharedDeflate {
    /// An empty pool that keeps at most `max_idle` unused states.
    pub fn new(max_idle: usize) -> Self {
        SharedDeflate {
            inner: Arc::new(Inner {
                free: Mutex::new(Vec::new()),
                max_idle,
            }),
        }
    }

    /// Unused states kept now.
    pub fn idle(&self) -> usize {
        self.list(|free| free.len())
    }

    fn list<T>(&self, f: impl FnOnce(&mut Vec<(Directions, Box<HeapDeflate15>)>) -> T) -> T {
        // A panic elsewhere while holding the lock leaves the list itself
        // intact (a push or pop either happened or did not).
        let mut free = self
            .inner
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(&mut free)
    }
}

impl DeflatePool<HeapDeflate15> for SharedDeflate {
    fn take(&self, key: &Directions) -> Option<Box<HeapDeflate15>> {
        self.list(|free| {
            let at = free.iter().rposition(|(k, _)| k == key)?;
            Some(free.swap_remove(at).1)
        })
    }

    fn give(&self, key: &Directions, state: Box<HeapDeflate15>) {
        let dropped = self.list(|free| {
            if free.len() < self.inner.max_idle {
                free.push((*key, state));
                None
            } else {
                Some(state)
            }
        });
        // Freed outside the lock.
        drop(dropped);
    }
}
