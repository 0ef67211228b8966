//! [`Pooled`]: a permessage-deflate extension that holds its state only
//! while a message is being compressed or inflated, borrowing it from a
//! [`DeflatePool`] shared by many connections.
//!
//! With context takeover a connection's windows carry history from one
//! message to the next, so its deflate state must live as long as the
//! connection. When the agreement has *both* `server_no_context_takeover`
//! and `client_no_context_takeover` (RFC 7692 §7.1.1.1 and §7.1.1.2; a
//! server may add either to its response even if the offer did not ask for
//! it), every message starts from empty windows in both directions. Between
//! messages the state is then indistinguishable from a fresh one, and one
//! state can serve any connection with the same windows: an idle connection
//! needs none. [`Pooled::new`] refuses any other agreement.
//!
//! The state is taken from the pool when a compressed message starts in
//! either direction and given back once neither direction is in the middle
//! of a message. If inflating fails (corrupt data, message too big) the
//! state is dropped rather than given back, so a pool never holds a state in
//! an unknown condition; a connection dropped mid-message drops its state
//! too. The output is byte for byte that of a [`Deflate`] of the same type
//! under the same agreement.
//!
//! Memory: an idle connection holds the [`Pooled`] value itself (a few
//! dozen bytes plus the pool handle); a connection with a message in flight
//! in either direction holds one boxed state of type `D`. The pool decides
//! how many idle states it keeps.
//!
//! ```
//! use std::cell::RefCell;
//! use wsproto::extensions::deflate::{
//!     accept_offer, DeflateConfig, DeflatePool, Directions, HeapDeflate9, Pooled,
//! };
//! use wsproto::{Config, Connection, Role};
//!
//! // A single-threaded free list (a server would share one behind a lock).
//! #[derive(Default)]
//! struct FreeList(RefCell<Vec<(Directions, Box<HeapDeflate9>)>>);
//!
//! impl DeflatePool<HeapDeflate9> for &FreeList {
//!     fn take(&self, key: &Directions) -> Option<Box<HeapDeflate9>> {
//!         let mut list = self.0.borrow_mut();
//!         let at = list.iter().position(|(k, _)| k == key)?;
//!         Some(list.swap_remove(at).1)
//!     }
//!     fn give(&self, key: &Directions, state: Box<HeapDeflate9>) {
//!         self.0.borrow_mut().push((*key, state));
//!     }
//! }
//!
//! let pool = FreeList::default();
//! let config = DeflateConfig {
//!     server_no_context_takeover: true,
//!     client_no_context_takeover: true,
//!     ..HeapDeflate9::config()
//! };
//! let offer = "permessage-deflate; client_max_window_bits";
//! let agreed = accept_offer(offer, &config).expect("acceptable");
//! let ext = Pooled::new(&agreed, Role::Server, &pool).expect("no takeover, window fits");
//! let mut server = Connection::new(Role::Server, Config::default()).with_extension(ext);
//!
//! let mut out = [0u8; 64];
//! let n = server.send_text("Hello", &mut out).unwrap();
//! assert!(n > 0);
//! // The message is complete: its state went back to the pool.
//! assert_eq!(pool.0.borrow().len(), 1);
//! ```

use alloc::boxed::Box;

use super::compress::CompressionLevel;
use super::params::{Agreed, Directions};
use super::state::{Deflate, WindowTooSmall};
use super::storage::Storage;
use crate::connection::{sealed, Extension};
use crate::error::Violation;
use crate::Role;

/// Where [`Pooled`] connections borrow their deflate states from.
///
/// `take` returns a state built for `key` (the [`Directions`] it was made
/// for), or `None` to have a fresh one built; `give` receives a state that
/// is between messages and may be kept for the next `take` with an equal
/// key, or dropped (a pool should keep at most a bounded number).
/// Implement it for a cheap handle (a reference, an `Arc`), since every
/// connection holds one.
pub trait DeflatePool<D> {
    /// A state made for `key`, if one is free.
    fn take(&self, key: &Directions) -> Option<Box<D>>;
    /// A state made for `key`, now idle.
    fn give(&self, key: &Directions, state: Box<D>);
}

/// The agreement is not one a [`Pooled`] extension can serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolRefused {
    /// Some direction keeps context between messages: its state cannot be
    /// shared.
    ContextTakeover,
    /// The state type is too small for the agreed windows.
    WindowTooSmall(WindowTooSmall),
}

impl core::fmt::Display for PoolRefused {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PoolRefused::ContextTakeover => {
                f.write_str("a shared deflate state needs no context takeover both ways")
            }
            PoolRefused::WindowTooSmall(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for PoolRefused {}

/// permessage-deflate for one connection whose state lives in a shared
/// [`DeflatePool`] between messages (see the [module doc](self)).
pub struct Pooled<D, P> {
    pool: P,
    agreed: Agreed,
    role: Role,
    key: Directions,
    state: Option<Box<D>>,
    /// Set on every state taken, since a pooled state may come from a
    /// connection that chose another.
    level: CompressionLevel,
    inflating: bool,
    compressing: bool,
}

impl<D, P> core::fmt::Debug for Pooled<D, P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pooled")
            .field("key", &self.key)
            .field("holds_state", &self.state.is_some())
            .field("inflating", &self.inflating)
            .field("compressing", &self.compressing)
            .finish_non_exhaustive()
    }
}

impl<const IW: usize, const CB: usize, const CH: usize, S, P> Pooled<Deflate<IW, CB, CH, S>, P>
where
    S: Storage,
    P: DeflatePool<Deflate<IW, CB, CH, S>>,
{
    /// The extension for `role` under `agreed`, borrowing from `pool`.
    /// Fails unless both directions agreed on no context takeover, or if
    /// the state type cannot hold the agreed windows.
    pub fn new(agreed: &Agreed, role: Role, pool: P) -> Result<Self, PoolRefused> {
        if !(agreed.server_no_context_takeover && agreed.client_no_context_takeover) {
            return Err(PoolRefused::ContextTakeover);
        }
        // Checks the windows once, up front, as `Deflate::new` would.
        let probe_bits = agreed.directions(role).inflate_window_bits;
        if !super::Inflater::<IW, S>::supports(probe_bits) {
            return Err(PoolRefused::WindowTooSmall(WindowTooSmall {
                required_bits: probe_bits,
            }));
        }
        Ok(Pooled {
            pool,
            agreed: *agreed,
            role,
            key: agreed.directions(role),
            state: None,
            level: CompressionLevel::Default,
            inflating: false,
            compressing: false,
        })
    }

    /// This connection, sending with `level` ([`CompressionLevel`]) from
    /// its next message on, whichever state the pool lends it.
    pub fn with_level(mut self, level: CompressionLevel) -> Self {
        self.level = level;
        if let Some(state) = self.state.as_deref_mut() {
            state.set_level(level);
        }
        self
    }

    /// Whether this connection holds a state now (a message is in flight).
    pub fn holds_state(&self) -> bool {
        self.state.is_some()
    }

    /// Bytes this connection holds now: its own size, plus the state's while
    /// it holds one.
    pub fn memory(&self) -> usize {
        core::mem::size_of::<Self>() + self.state.as_ref().map_or(0, |s| s.memory())
    }

    /// The pool this connection borrows from.
    pub fn pool(&self) -> &P {
        &self.pool
    }

    /// The state, taken from the pool or built if it has none.
    fn state(&mut self) -> Option<&mut Deflate<IW, CB, CH, S>> {
        if self.state.is_none() {
            self.state = match self.pool.take(&self.key) {
                Some(s) => Some(s),
                // Cannot fail: `new` checked the windows.
                None => Deflate::new(&self.agreed, self.role).ok().map(Box::new),
            };
            if let Some(state) = self.state.as_deref_mut() {
                state.set_level(self.level);
            }
        }
        self.state.as_deref_mut()
    }

    /// Gives the state back if neither direction is mid-message.
    fn release(&mut self) {
        if !self.inflating && !self.compressing {
            if let Some(state) = self.state.take() {
                self.pool.give(&self.key, state);
            }
        }
    }
}

impl<const IW: usize, const CB: usize, const CH: usize, S, P> Extension
    for Pooled<Deflate<IW, CB, CH, S>, P>
where
    S: Storage,
    P: DeflatePool<Deflate<IW, CB, CH, S>>,
{
}

impl<const IW: usize, const CB: usize, const CH: usize, S, P> sealed::Hooks
    for Pooled<Deflate<IW, CB, CH, S>, P>
where
    S: Storage,
    P: DeflatePool<Deflate<IW, CB, CH, S>>,
{
    fn owns_rsv1(&self) -> bool {
        true
    }

    fn begin_inflate(&mut self, max_output: u64) {
        self.inflating = true;
        if let Some(state) = self.state() {
            sealed::Hooks::begin_inflate(state, max_output);
        }
    }

    fn inflate(
        &mut self,
        input: &[u8],
        out: &mut [u8],
        fin: bool,
    ) -> Result<sealed::Step, Violation> {
        self.inflating = true;
        let Some(state) = self.state() else {
            return Err(Violation::CorruptCompressedData);
        };
        match sealed::Hooks::inflate(state, input, out, fin) {
            Ok(step) => {
                let idle = step.done && !sealed::Hooks::inflate_pending(&*state);
                if idle {
                    self.inflating = false;
                    self.release();
                }
                Ok(step)
            }
            Err(e) => {
                // Its condition is unknown: never back into the pool.
                self.inflating = false;
                self.state = None;
                self.compressing = false;
                Err(e)
            }
        }
    }

    fn inflate_pending(&self) -> bool {
        self.inflating
            && self
                .state
                .as_deref()
                .is_some_and(sealed::Hooks::inflate_pending)
    }

    fn compress_bound(&self, len: usize) -> usize {
        // The bound depends only on the type and the agreed window, never
        // on the history, so a fresh compressor's answer is the state's.
        match &self.state {
            Some(state) => sealed::Hooks::compress_bound(&**state, len),
            None => super::Compressor::<CB, CH, S>::max_compressed_len(len),
        }
    }

    fn compress(&mut self, input: &[u8], out: &mut [u8], fin: bool) -> Option<usize> {
        self.compressing = true;
        let state = self.state()?;
        let written = sealed::Hooks::compress(state, input, out, fin);
        match written {
            Some(_) if fin => {
                self.compressing = false;
                self.release();
            }
            Some(_) => {}
            None => {
                self.compressing = false;
                self.state = None;
                self.inflating = false;
            }
        }
        written
    }
}
