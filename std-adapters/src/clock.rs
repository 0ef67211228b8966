//! Maps [`std::time::Instant`] onto the core's [`wsproto::Instant`].
//!
//! One process-wide epoch, fixed the first time any function here is called,
//! so instants from different connections compare.
//!
//! ```
//! use wsproto_adapters::clock;
//! let a = clock::now();
//! let b = clock::now();
//! assert!(b >= a);
//! assert!(clock::until(a).is_zero());
//! ```

use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// The current time as a core instant.
pub fn now() -> wsproto::Instant {
    from_std(Instant::now())
}

/// Converts a std instant (saturating at the epoch).
pub fn from_std(instant: Instant) -> wsproto::Instant {
    let since = instant.saturating_duration_since(epoch());
    wsproto::Instant::from_nanos(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

/// Converts a core instant back to a std instant.
pub fn to_std(instant: wsproto::Instant) -> Instant {
    let epoch = epoch();
    epoch
        .checked_add(Duration::from_nanos(instant.as_nanos()))
        .unwrap_or_else(|| epoch + Duration::from_secs(86_400 * 365 * 100))
}

/// Time left until `deadline` (zero if it has passed).
pub fn until(deadline: wsproto::Instant) -> Duration {
    Duration::from_nanos(deadline.saturating_duration_since(now()).as_nanos())
}
