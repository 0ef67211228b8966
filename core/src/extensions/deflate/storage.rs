//! Where a deflate state keeps its large arrays: inline ([`Inline`], the
//! default, no allocator) or in heap allocations of their own (`Heap`,
//! with the `alloc` feature).
//!
//! Safe Rust cannot build a value directly on the heap: `Box::new(x)` first
//! makes `x` on the stack, and unoptimized builds copy it a few more times on
//! the way. An inline [`super::Deflate15`] is about 156 KiB, so boxing one
//! takes several hundred KiB of stack. With `Heap` the windows, buffers and
//! hash and symbol tables are allocated zeroed by `vec!` and never exist on
//! the stack; the [`super::Deflate`] value itself is about 3.4 KiB (the
//! compressor's Huffman code tables and the inflater's decoder, whose
//! canonical code tables stay inline).

use core::borrow::BorrowMut;

mod sealed {
    pub trait Sealed {}
}

/// How a deflate state stores its arrays; implemented by [`Inline`] and
/// `Heap` only. `N` is the array length the state asks for.
pub trait Storage: sealed::Sealed {
    /// The arrays live in allocations of their own, outside the state.
    const HEAP: bool;
    /// `N` bytes, zeroed.
    type Bytes<const N: usize>: BorrowMut<[u8]> + Clone;
    /// `N` 16-bit words, zeroed.
    type Words<const N: usize>: BorrowMut<[u16]> + Clone;

    /// `N` zero bytes.
    fn bytes<const N: usize>() -> Self::Bytes<N>;
    /// `N` zero words.
    fn words<const N: usize>() -> Self::Words<N>;
}

/// Arrays inside the state itself: no allocator, the size is the type's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inline;

impl sealed::Sealed for Inline {}

impl Storage for Inline {
    const HEAP: bool = false;
    type Bytes<const N: usize> = [u8; N];
    type Words<const N: usize> = [u16; N];

    fn bytes<const N: usize>() -> [u8; N] {
        [0; N]
    }

    fn words<const N: usize>() -> [u16; N] {
        [0; N]
    }
}

/// Every large array in its own heap allocation, made in place, so building
/// a state needs little stack (threads with small stacks, many
/// connections). Needs the `alloc` feature.
#[cfg(feature = "alloc")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Heap;

#[cfg(feature = "alloc")]
impl sealed::Sealed for Heap {}

#[cfg(feature = "alloc")]
impl Storage for Heap {
    const HEAP: bool = true;
    type Bytes<const N: usize> = alloc::boxed::Box<[u8]>;
    type Words<const N: usize> = alloc::boxed::Box<[u16]>;

    fn bytes<const N: usize>() -> Self::Bytes<N> {
        alloc::vec![0u8; N].into_boxed_slice()
    }

    fn words<const N: usize>() -> Self::Words<N> {
        alloc::vec![0u16; N].into_boxed_slice()
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::super::{Compressor, Inflater};
    use super::{Heap, Inline, Storage};
    use std::vec::Vec;

    fn compress<S: Storage>(messages: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut c = std::boxed::Box::new(Compressor::<8192, 2048, S>::new(12, false));
        messages
            .iter()
            .map(|m| {
                let mut out =
                    std::vec![0u8; Compressor::<8192, 2048, S>::max_compressed_len(m.len())];
                let r = c.compress(m, &mut out, true);
                assert!(r.done && r.consumed == m.len());
                out.truncate(r.written);
                out
            })
            .collect()
    }

    #[test]
    fn heap_storage_behaves_as_inline() {
        let messages: Vec<Vec<u8>> = (0..4u32)
            .map(|k| (0..10_000u32).map(|i| ((i % 3000) * 7 + k) as u8).collect())
            .collect();
        let inline = compress::<Inline>(&messages);
        assert_eq!(compress::<Heap>(&messages), inline);
        let mut inflater = Inflater::<4096, Heap>::new(false, u64::MAX);
        for (message, compressed) in messages.iter().zip(&inline) {
            // One byte of room to spare: a full output stops before the tail.
            let mut out = std::vec![0u8; message.len() + 1];
            let r = inflater.inflate(compressed, &mut out, true).unwrap();
            assert!(r.done && r.consumed == compressed.len());
            assert_eq!(out.get(..r.written), Some(message.as_slice()));
        }
    }
}
