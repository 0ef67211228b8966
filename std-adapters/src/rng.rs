//! Entropy for clients: masking keys and `Sec-WebSocket-Key` nonces come from
//! a ChaCha20 stream seeded once from the operating system.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The RNG type std clients use.
pub(crate) type StdRng = ChaCha20Rng;

/// A fresh RNG seeded from the OS.
pub(crate) fn new_rng() -> Result<StdRng, std::io::Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(ChaCha20Rng::from_seed(seed))
}
