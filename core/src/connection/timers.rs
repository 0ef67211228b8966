//! Time as an input: the fixed timer table (close handshake, keepalive ping
//! and pong, idle) and the connection's `handle_timeout` / `poll_timeout`.
//! Deadlines are armed relative to the next `now` the caller passes in, so
//! commands never need a clock.

use super::{Connection, Extension, State, Transition};
use crate::close::CloseCode;
use crate::error::{Error, TimeoutKind};
use crate::time::{Duration, Instant};
use rand_core::RngCore;

/// The connection's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The close handshake must finish by this deadline.
    Close = 0,
    /// Send a keepalive ping when the peer has been quiet this long.
    Keepalive = 1,
    /// The peer must send something before this deadline after a keepalive ping.
    Pong = 2,
    /// Start closing when the peer has been quiet this long.
    Idle = 3,
}

const TIMERS: [Timer; 4] = [Timer::Close, Timer::Keepalive, Timer::Pong, Timer::Idle];

/// One deadline per timer, plus the peer-activity count seen when it was
/// armed. Packed for small targets: a timer's `at` is a deadline's
/// nanoseconds, or the duration to count from the next `handle_timeout`
/// while its `pending` bit is set; it is off while its `armed` bit is clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timers {
    at: [u64; 4],
    marks: [u64; 4],
    armed: u8,
    pending: u8,
}

impl Timers {
    pub(crate) const fn new() -> Self {
        Timers {
            at: [0; 4],
            marks: [0; 4],
            armed: 0,
            pending: 0,
        }
    }

    /// Arms `timer` to fire `after` the next instant the caller reports.
    pub(crate) fn arm(&mut self, timer: Timer, after: Duration, activity: u64) {
        self.set(timer, after.as_nanos(), activity, true);
    }

    /// Arms `timer` to fire at `at`.
    pub(crate) fn arm_at(&mut self, timer: Timer, at: Instant, activity: u64) {
        self.set(timer, at.as_nanos(), activity, false);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.set(timer, 0, 0, false);
        self.armed &= !(1 << timer as u8);
    }

    fn set(&mut self, timer: Timer, value: u64, activity: u64, pending: bool) {
        let bit = 1 << timer as u8;
        if let (Some(at), Some(m)) = (
            self.at.get_mut(timer as usize),
            self.marks.get_mut(timer as usize),
        ) {
            *at = value;
            *m = activity;
            self.armed |= bit;
            if pending {
                self.pending |= bit;
            } else {
                self.pending &= !bit;
            }
        }
    }

    /// Whether `timer` is counting (or waits to start counting).
    pub(crate) fn is_armed(&self, timer: Timer) -> bool {
        self.armed & (1 << timer as u8) != 0
    }

    /// The peer-activity count when `timer` was armed.
    pub(crate) fn mark(&self, timer: Timer) -> u64 {
        self.marks.get(timer as usize).copied().unwrap_or(0)
    }

    /// The armed timers' deadlines (`Instant::ZERO` for a pending one).
    fn deadlines(&self) -> impl Iterator<Item = (Timer, Instant)> + '_ {
        TIMERS.into_iter().zip(self.at).filter_map(|(t, at)| {
            let bit = 1 << t as u8;
            if self.armed & bit == 0 {
                None
            } else if self.pending & bit != 0 {
                Some((t, Instant::ZERO))
            } else {
                Some((t, Instant::from_nanos(at)))
            }
        })
    }

    /// The earliest deadline; `Instant::ZERO` when a timer waits to be armed.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.deadlines().map(|(_, at)| at).min()
    }

    /// Fixes pending deadlines at `now`, then stops and returns the first
    /// timer due at `now`, if any. Call until it returns `None`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        for (i, at) in self.at.iter_mut().enumerate() {
            if self.pending & (1 << i) != 0 {
                *at = (now + Duration::from_nanos(*at)).as_nanos();
            }
        }
        self.pending = 0;
        let (due, _) = self.deadlines().find(|&(_, at)| at <= now)?;
        self.armed &= !(1 << due as u8);
        Some(due)
    }
}

impl<R: RngCore, E: Extension> Connection<R, E> {
    /// Tells the connection the time is `now`. Fires due timers; calling it
    /// early or twice for the same instant does nothing more.
    ///
    /// Returns an error when a timer ends the connection (close handshake or
    /// keepalive pong overdue): it is then closed locally with 1006 and the
    /// transport should be closed.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        while let Some(timer) = self.timers.pop_expired(now) {
            let quiet = self.timers.mark(timer) == self.bytes_received;
            match timer {
                Timer::Close => {
                    self.close_transport = true;
                    if !matches!(self.state, State::Closed { .. }) {
                        self.transition(Transition::Abnormal);
                        return Err(Error::Timeout(TimeoutKind::Close));
                    }
                }
                Timer::Keepalive => {
                    if let (Some(keepalive), State::Open) = (self.config.keepalive(), self.state) {
                        if quiet {
                            self.outbox.queue_ping(&[]);
                            // The first unanswered ping keeps its deadline:
                            // re-arming it at every interval shorter than the
                            // timeout would postpone it forever.
                            if !self.timers.is_armed(Timer::Pong) {
                                self.timers.arm_at(
                                    Timer::Pong,
                                    now + keepalive.timeout,
                                    self.bytes_received,
                                );
                            }
                        }
                        // At least 1 ns later: a zero interval must not
                        // fire again within this call, forever.
                        self.timers.arm_at(
                            Timer::Keepalive,
                            now + keepalive.interval.max(Duration::from_nanos(1)),
                            self.bytes_received,
                        );
                    }
                }
                Timer::Pong => {
                    if quiet && self.state == State::Open {
                        self.close_transport = true;
                        self.transition(Transition::Abnormal);
                        return Err(Error::Timeout(TimeoutKind::Pong));
                    }
                }
                Timer::Idle => {
                    if let (Some(idle), State::Open) = (self.config.idle_timeout(), self.state) {
                        if quiet {
                            self.begin_close(Some(CloseCode::GOING_AWAY), "idle timeout");
                        } else {
                            self.timers
                                .arm_at(Timer::Idle, now + idle, self.bytes_received);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// When `handle_timeout` should next be called. `Instant::ZERO` means
    /// "now": a timer is waiting for the current time to be armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.close_transport && self.outbox.is_empty() {
            return None;
        }
        self.timers.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_then_fires_once() {
        let mut t = Timers::new();
        assert_eq!(t.next(), None);
        t.arm(Timer::Close, Duration::from_secs(5), 7);
        assert_eq!(t.next(), Some(Instant::ZERO));
        assert_eq!(t.pop_expired(Instant::from_secs(10)), None);
        assert_eq!(t.next(), Some(Instant::from_secs(15)));
        assert_eq!(t.pop_expired(Instant::from_secs(14)), None);
        assert_eq!(t.pop_expired(Instant::from_secs(15)), Some(Timer::Close));
        assert_eq!(t.pop_expired(Instant::from_secs(15)), None);
        assert_eq!(t.mark(Timer::Close), 7);
    }

    #[test]
    fn a_keepalive_interval_shorter_than_the_timeout_still_times_out() {
        use crate::connection::{Connection, Role};
        use crate::{Config, Keepalive};
        let config = Config {
            keepalive: Some(Keepalive {
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(5),
            }),
            ..Config::default()
        };
        let mut server = Connection::new(Role::Server, config);
        let mut out = [0u8; 64];
        let mut pings = 0;
        let mut failed = None;
        for s in 0..60 {
            if let Err(e) = server.handle_timeout(Instant::from_secs(s)) {
                failed = Some((s, e));
                break;
            }
            while let Ok(n @ 1..) = server.poll_transmit(&mut out) {
                pings += usize::from(out.first() == Some(&0x89));
                assert!(n > 0);
            }
        }
        // First ping at 1 s, unanswered (one more each quiet second): the
        // connection fails 5 s after the first.
        assert_eq!(failed, Some((6, Error::Timeout(TimeoutKind::Pong))));
        assert_eq!(pings, 5);
    }
}
