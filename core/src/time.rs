//! Time without a clock.
//!
//! The core never reads a clock: the caller passes the current [`Instant`] to
//! `handle_timeout`, and reads the next deadline from `poll_timeout`. An
//! `Instant` is a count of nanoseconds since an epoch the caller chooses (boot,
//! process start, the Unix epoch — anything monotonic).

use core::ops::{Add, AddAssign, Sub};

/// A span of time, with nanosecond resolution.
///
/// ```
/// use wsproto::Duration;
/// assert_eq!(Duration::from_secs(2), Duration::from_millis(2_000));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(u64);

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration(0);
    /// The longest representable span (about 584 years).
    pub const MAX: Duration = Duration(u64::MAX);

    /// A span of `nanos` nanoseconds.
    pub const fn from_nanos(nanos: u64) -> Self {
        Duration(nanos)
    }
    /// A span of `micros` microseconds (saturating).
    pub const fn from_micros(micros: u64) -> Self {
        Duration(micros.saturating_mul(1_000))
    }
    /// A span of `millis` milliseconds (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Duration(millis.saturating_mul(1_000_000))
    }
    /// A span of `secs` seconds (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Duration(secs.saturating_mul(1_000_000_000))
    }
    /// Whole nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// Whole milliseconds, rounded down.
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000_000
    }
    /// Whole milliseconds, rounded up (a timer never fires early), and at
    /// most `cap`: how a connection keeps its timer durations.
    pub(crate) const fn as_millis_ceil(self, cap: u32) -> u32 {
        // Compared first, so the division only sees values below 2^53.
        if self.0 > cap as u64 * NANOS_PER_MILLI {
            return cap;
        }
        millis_of(self.0 + (NANOS_PER_MILLI - 1)) as u32
    }
}

/// Nanoseconds in a millisecond.
pub(crate) const NANOS_PER_MILLI: u64 = 1_000_000;

/// Whole milliseconds in `nanos`, rounded down.
///
/// On 32-bit targets a 64-bit division is a library routine of several
/// hundred bytes of code: there, see [`millis_without_u64_division`].
pub(crate) const fn millis_of(nanos: u64) -> u64 {
    #[cfg(target_pointer_width = "64")]
    {
        nanos / NANOS_PER_MILLI
    }
    #[cfg(not(target_pointer_width = "64"))]
    {
        millis_without_u64_division(nanos)
    }
}

/// [`millis_of`] with 32-bit arithmetic: 1,000,000 is 64 × 15,625, so below
/// 2^38 ns (about 4.6 minutes, every default duration and the usual time
/// between two `handle_timeout` calls) a shift and one 32-bit division by a
/// constant do, which a constant argument turns into a constant; beyond, a
/// binary long division, kept out of line.
#[cfg(any(test, not(target_pointer_width = "64")))]
const fn millis_without_u64_division(nanos: u64) -> u64 {
    let sixty_fourths = nanos >> 6;
    if sixty_fourths <= u32::MAX as u64 {
        (sixty_fourths as u32 / 15_625) as u64
    } else {
        millis_by_shifts(nanos)
    }
}

/// [`millis_of`] by binary long division.
#[cfg(any(test, not(target_pointer_width = "64")))]
#[inline(never)]
const fn millis_by_shifts(nanos: u64) -> u64 {
    let mut quotient = 0;
    let mut rest = 0;
    let mut bit = 64;
    while bit > 0 {
        bit -= 1;
        // `rest` stays below 2 * NANOS_PER_MILLI: no overflow.
        rest = rest << 1 | (nanos >> bit) & 1;
        quotient <<= 1;
        if rest >= NANOS_PER_MILLI {
            rest -= NANOS_PER_MILLI;
            quotient |= 1;
        }
    }
    quotient
}

impl Add for Duration {
    type Output = Duration;
    fn add(self, rhs: Duration) -> Duration {
        Duration(self.0.saturating_add(rhs.0))
    }
}

/// A point in time: nanoseconds since the caller's epoch.
///
/// Arithmetic saturates instead of overflowing, so a far deadline never wraps
/// around into the past.
///
/// ```
/// use wsproto::{Duration, Instant};
/// let t = Instant::from_millis(1_500);
/// assert_eq!(t + Duration::from_millis(500), Instant::from_secs(2));
/// assert_eq!(Instant::from_secs(2) - t, Duration::from_millis(500));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The epoch itself. A deadline of `Instant::ZERO` means "now".
    pub const ZERO: Instant = Instant(0);

    /// `nanos` nanoseconds after the epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }
    /// `millis` milliseconds after the epoch (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis.saturating_mul(1_000_000))
    }
    /// `secs` seconds after the epoch (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Instant(secs.saturating_mul(1_000_000_000))
    }
    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let far = Instant::from_nanos(u64::MAX - 1);
        assert_eq!(far + Duration::from_secs(5), Instant::from_nanos(u64::MAX));
        assert_eq!(Instant::ZERO - far, Duration::ZERO);
        assert_eq!(Duration::from_secs(u64::MAX), Duration::MAX);
    }

    #[test]
    fn millis_by_shifts_agree_with_division() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let edge = (1 << 38) - 1;
        for n in [
            0,
            1,
            999_999,
            1_000_000,
            edge,
            edge + 1,
            u64::MAX - 1,
            u64::MAX,
        ] {
            assert_eq!(millis_by_shifts(n), n / NANOS_PER_MILLI);
            assert_eq!(millis_without_u64_division(n), n / NANOS_PER_MILLI);
        }
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for n in [x, x >> 11, x >> 33] {
                assert_eq!(millis_by_shifts(n), n / NANOS_PER_MILLI);
                assert_eq!(millis_without_u64_division(n), n / NANOS_PER_MILLI);
                assert_eq!(millis_of(n), n / NANOS_PER_MILLI);
            }
        }
    }

    #[test]
    fn millis_round_up_and_stop_at_the_cap() {
        assert_eq!(Duration::ZERO.as_millis_ceil(9), 0);
        assert_eq!(Duration::from_nanos(1).as_millis_ceil(9), 1);
        assert_eq!(Duration::from_millis(3).as_millis_ceil(9), 3);
        assert_eq!(Duration::from_micros(3_001).as_millis_ceil(9), 4);
        assert_eq!(Duration::from_millis(10).as_millis_ceil(9), 9);
        assert_eq!(Duration::MAX.as_millis_ceil(u32::MAX - 1), u32::MAX - 1);
    }
}
