//! The deterministic generator the deflate tests draw their data from
//! (xorshift32): one definition, so a test's data is named by its seed.

use std::vec::Vec;

/// An xorshift32 generator; a seed of 0 would only ever yield 0.
pub(crate) struct XorShift(u32);

impl XorShift {
    pub(crate) fn new(seed: u32) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
}

/// `len` bytes, the low byte of each draw: data no compressor can shrink.
pub(crate) fn random_bytes(seed: u32, len: usize) -> Vec<u8> {
    let mut rng = XorShift::new(seed);
    (0..len).map(|_| rng.next_u32() as u8).collect()
}

#[test]
fn follows_the_xorshift32_recurrence() {
    // Marsaglia's xorshift32 (13, 17, 5) from seed 1.
    let mut rng = XorShift::new(1);
    assert_eq!(rng.next_u32(), 270_369);
    assert_eq!(rng.next_u32(), 67_634_689);
    assert_eq!(random_bytes(1, 2), [0x21, 0x01]);
}
