//! Time as an input: the fixed timer table (close handshake, keepalive ping
//! and pong, idle, minimum progress of a message) and the connection's `handle_timeout` / `poll_timeout`.
//! Deadlines are armed relative to the next `now` the caller passes in, so
//! commands never need a clock.

use super::{Connection, Extension, Flags, State, Transition};
use crate::close::CloseCode;
use crate::error::{Error, TimeoutKind, Violation};
use crate::time::{millis_of, Instant, NANOS_PER_MILLI};
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
    /// Check that a message in progress moved by `Config::min_progress`.
    Progress = 4,
}

const TIMERS: [Timer; 5] = [
    Timer::Close,
    Timer::Keepalive,
    Timer::Pong,
    Timer::Idle,
    Timer::Progress,
];

impl Timer {
    /// Where the timer's deadline and mark are kept. `Close` shares `Idle`'s
    /// place: the close timer is armed only once closing starts, which stops
    /// the idle timer for good (it is re-armed only while open), so the two
    /// are never armed together. Arming either disarms the other.
    const fn slot(self) -> usize {
        match self {
            Timer::Close | Timer::Idle => 0,
            Timer::Keepalive => 1,
            Timer::Pong => 2,
            Timer::Progress => 3,
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }

    /// The timer that shares this one's slot, if any.
    const fn slot_mate(self) -> Option<Timer> {
        match self {
            Timer::Close => Some(Timer::Idle),
            Timer::Idle => Some(Timer::Close),
            _ => None,
        }
    }
}

/// Nanoseconds in a millisecond, the unit of the timer table.
const MS: u64 = NANOS_PER_MILLI;

/// A `u64` kept as two `u32` halves: the table then needs only 4-byte
/// alignment, and packs without padding beside its flag bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct U64Halves([u32; 2]);

impl U64Halves {
    const fn new(value: u64) -> Self {
        U64Halves([value as u32, (value >> 32) as u32])
    }

    const fn get(self) -> u64 {
        let [low, high] = self.0;
        (high as u64) << 32 | low as u64
    }
}

/// One deadline per timer, in whole milliseconds after one base instant,
/// and whether the peer sent anything since the timer was armed. Packed for
/// small targets: four places for five timers (see [`Timer::slot`]); a
/// timer's `at` is its deadline's offset from `base`, or the duration to
/// count from the next `handle_timeout` while its `pending` bit is set; it
/// is off while its `armed` bit is clear.
///
/// The offsets cannot wrap around: `base` only moves forward to an instant
/// the caller reported, and by whole milliseconds while a deadline counts
/// from it, each offset shortened by as much, so every deadline stays where
/// it was (a deadline already due stays due). When every deadline is due,
/// `base` moves to `now` itself. After a move, `now` is less than 1 ms past
/// `base`, so a deadline `now + d` (`d` at most [`crate::Config::MAX_TIMER`])
/// always fits, rounded up to the next whole millisecond after `base`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timers {
    /// The instant the offsets count from, in nanoseconds.
    base: U64Halves,
    at: [u32; 4],
    /// The data payload bytes received when `Progress` was last armed.
    progress_mark: U64Halves,
    armed: u8,
    pending: u8,
    /// Per place: the peer sent bytes since its timer was armed.
    active: u8,
    /// A message was in progress when `Progress` was last armed: the
    /// interval now counting started mid-message.
    progress_open: bool,
}

impl Timers {
    pub(crate) const fn new() -> Self {
        Timers {
            base: U64Halves::new(0),
            at: [0; 4],
            progress_mark: U64Halves::new(0),
            armed: 0,
            pending: 0,
            active: 0,
            progress_open: false,
        }
    }

    /// Arms `timer` to fire `after_ms` after the next instant the caller
    /// reports.
    pub(crate) fn arm(&mut self, timer: Timer, after_ms: u32) {
        self.set(timer, after_ms, true);
    }

    /// Arms `timer` to fire `after_ms` after `now`, the instant being
    /// handled (rounded up to a whole millisecond after the base).
    pub(crate) fn arm_at(&mut self, timer: Timer, now: Instant, after_ms: u32) {
        self.rebase(now.as_nanos());
        let behind = now.as_nanos().saturating_sub(self.base.get());
        let lag = millis_of(behind.saturating_add(MS - 1));
        let at = u64::from(after_ms).saturating_add(lag);
        self.set(timer, u32::try_from(at).unwrap_or(u32::MAX), false);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.armed &= !timer.bit();
        self.pending &= !timer.bit();
    }

    fn set(&mut self, timer: Timer, value: u32, pending: bool) {
        if let Some(mate) = timer.slot_mate() {
            self.stop(mate);
        }
        let bit = timer.bit();
        if let Some(at) = self.at.get_mut(timer.slot()) {
            *at = value;
            self.active &= !(1 << timer.slot());
            self.armed |= bit;
            if pending {
                self.pending |= bit;
            } else {
                self.pending &= !bit;
            }
        }
    }

    /// Moves `base` forward towards `now` without moving any deadline:
    /// by whole milliseconds, or to `now` itself when every deadline is due.
    fn rebase(&mut self, now: u64) {
        let counting = self.armed & !self.pending;
        let mut latest = 0;
        for t in TIMERS {
            if counting & t.bit() != 0 {
                latest = latest.max(self.at.get(t.slot()).copied().unwrap_or(0));
            }
        }
        // A clock that went backwards moves nothing.
        let base = self.base.get();
        let Some(elapsed) = now.checked_sub(base) else {
            return;
        };
        let step = millis_of(elapsed);
        if step >= u64::from(latest) {
            // Every deadline is at or before `now` (or none counts).
            self.base = U64Halves::new(now);
            self.shift(counting, latest);
        } else {
            // `step` is below an offset, so fits in one.
            let step = step as u32;
            self.base = U64Halves::new(base + u64::from(step) * MS);
            self.shift(counting, step);
        }
    }

    /// Shortens the offsets of the `counting` timers by `ms`.
    fn shift(&mut self, counting: u8, ms: u32) {
        for t in TIMERS {
            if counting & t.bit() != 0 {
                if let Some(at) = self.at.get_mut(t.slot()) {
                    *at = at.saturating_sub(ms);
                }
            }
        }
    }

    /// Whether `timer` is counting (or waits to start counting).
    pub(crate) fn is_armed(&self, timer: Timer) -> bool {
        self.armed & timer.bit() != 0
    }

    /// Records that the peer sent bytes: every armed timer saw activity.
    pub(crate) fn saw_activity(&mut self) {
        self.active = 0b1111;
    }

    /// The peer sent nothing since `timer` was armed.
    pub(crate) fn quiet(&self, timer: Timer) -> bool {
        self.active & (1 << timer.slot()) == 0
    }

    /// The armed timers' deadlines (`Instant::ZERO` for a pending one).
    fn deadlines(&self) -> impl Iterator<Item = (Timer, Instant)> + '_ {
        TIMERS.into_iter().filter_map(|t| {
            let at = self.at.get(t.slot()).copied().unwrap_or(0);
            if self.armed & t.bit() == 0 {
                None
            } else if self.pending & t.bit() != 0 {
                Some((t, Instant::ZERO))
            } else {
                Some((
                    t,
                    Instant::from_nanos(self.base.get().saturating_add(u64::from(at) * MS)),
                ))
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
        let pending = self.pending;
        if pending != 0 {
            // Not counting yet: the rebase in `arm_at` leaves them alone.
            // Bytes that came since they were armed still count.
            self.pending = 0;
            self.armed &= !pending;
            let active = self.active;
            for t in TIMERS {
                if pending & t.bit() != 0 {
                    let after = self.at.get(t.slot()).copied().unwrap_or(0);
                    self.arm_at(t, now, after);
                }
            }
            self.active = active;
        }
        let (due, _) = self.deadlines().find(|&(_, at)| at <= now)?;
        self.armed &= !due.bit();
        Some(due)
    }
}

impl<R: RngCore, E: Extension> Connection<R, E> {
    /// Tells the connection the time is `now`. Fires due timers; calling it
    /// early or twice for the same instant does nothing more.
    ///
    /// Returns an error when a timer ends the connection: close handshake or
    /// keepalive pong overdue ([`Error::Timeout`]: it is then closed locally
    /// with 1006 and the transport should be closed), or a message in
    /// progress slower than [`crate::Config::min_progress`]
    /// ([`Violation::TooSlow`]: the connection failed, a Close with 1008 is
    /// queued for `poll_transmit`, then the transport should be closed).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        while let Some(timer) = self.timers.pop_expired(now) {
            let quiet = self.timers.quiet(timer);
            match timer {
                Timer::Close => {
                    self.flags.insert(Flags::CLOSE_TRANSPORT);
                    if !matches!(self.state, State::Closed { .. }) {
                        self.transition(Transition::Abnormal);
                        return Err(Error::Timeout(TimeoutKind::Close));
                    }
                }
                Timer::Keepalive => {
                    if let (Some((interval, timeout)), State::Open) =
                        (self.config.keepalive(), self.state)
                    {
                        if quiet {
                            self.outbox.queue_ping(&[]);
                            // The first unanswered ping keeps its deadline:
                            // re-arming it at every interval shorter than the
                            // timeout would postpone it forever. A deadline
                            // armed before the peer's latest bytes belongs to
                            // a ping those bytes answered: this ping starts
                            // its own.
                            let answered = !self.timers.quiet(Timer::Pong);
                            if !self.timers.is_armed(Timer::Pong) || answered {
                                self.timers.arm_at(Timer::Pong, now, timeout);
                            }
                        }
                        // At least 1 ms later: a zero interval must not
                        // fire again within this call, forever.
                        self.timers.arm_at(Timer::Keepalive, now, interval.max(1));
                    }
                }
                Timer::Pong => {
                    if quiet && self.state == State::Open {
                        self.flags.insert(Flags::CLOSE_TRANSPORT);
                        self.transition(Transition::Abnormal);
                        return Err(Error::Timeout(TimeoutKind::Pong));
                    }
                }
                Timer::Idle => {
                    if let (Some(idle), State::Open) = (self.config.idle_timeout(), self.state) {
                        if quiet {
                            self.begin_close(Some(CloseCode::GOING_AWAY), "idle timeout");
                        } else {
                            self.timers.arm_at(Timer::Idle, now, idle);
                        }
                    }
                }
                Timer::Progress => {
                    if let (Some((bytes, interval)), State::Open) =
                        (self.config.min_progress(), self.state)
                    {
                        let received = self.data_received();
                        let open = self.frame.is_some() || self.incoming.is_open();
                        // Judged only over a whole interval of one unfinished
                        // message (or of messages that finished within it).
                        let moved = received.wrapping_sub(self.timers.progress_mark.get());
                        if open && self.timers.progress_open && moved < bytes {
                            return Err(self.fail(Violation::TooSlow));
                        }
                        self.timers.arm_at(Timer::Progress, now, interval.max(1));
                        self.timers.progress_mark = U64Halves::new(received);
                        self.timers.progress_open = open;
                    }
                }
            }
        }
        Ok(())
    }

    /// Data payload bytes received so far (wrapping): what the headers
    /// announced, less what the current frame still owes. Control frames and
    /// headers are not counted.
    fn data_received(&self) -> u64 {
        self.incoming
            .announced()
            .wrapping_sub(self.frame.map_or(0, |f| f.remaining))
    }

    /// When `handle_timeout` should next be called. `Instant::ZERO` means
    /// "now": a timer is waiting for the current time to be armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.flags.has(Flags::CLOSE_TRANSPORT) && self.outbox.is_empty() {
            return None;
        }
        self.timers.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    #[test]
    fn halves_keep_every_bit() {
        for v in [0, 1, u64::from(u32::MAX), 1 << 32, u64::MAX - 1, u64::MAX] {
            assert_eq!(U64Halves::new(v).get(), v);
        }
    }

    #[test]
    fn pending_then_fires_once() {
        let mut t = Timers::new();
        assert_eq!(t.next(), None);
        t.arm(Timer::Close, 5_000);
        assert_eq!(t.next(), Some(Instant::ZERO));
        assert_eq!(t.pop_expired(Instant::from_secs(10)), None);
        assert_eq!(t.next(), Some(Instant::from_secs(15)));
        assert_eq!(t.pop_expired(Instant::from_secs(14)), None);
        assert_eq!(t.pop_expired(Instant::from_secs(15)), Some(Timer::Close));
        assert_eq!(t.pop_expired(Instant::from_secs(15)), None);
        assert!(t.quiet(Timer::Close));
    }

    #[test]
    fn close_and_idle_share_a_place_and_arming_one_stops_the_other() {
        let mut t = Timers::new();
        let now = Instant::from_secs(1);
        t.arm_at(Timer::Idle, now, 29_000);
        t.saw_activity();
        t.arm_at(Timer::Keepalive, now, 19_000);
        t.arm_at(Timer::Close, now, 4_000);
        assert!(!t.is_armed(Timer::Idle));
        assert!(t.quiet(Timer::Close));
        assert!(t.quiet(Timer::Keepalive));
        assert!(!t.quiet(Timer::Pong));
        assert_eq!(t.next(), Some(Instant::from_secs(5)));
        assert_eq!(t.pop_expired(Instant::from_secs(40)), Some(Timer::Close));
        assert_eq!(
            t.pop_expired(Instant::from_secs(40)),
            Some(Timer::Keepalive)
        );
        assert_eq!(t.pop_expired(Instant::from_secs(40)), None);
        t.arm(Timer::Idle, 1_000);
        assert!(!t.is_armed(Timer::Close));
        assert_eq!(t.pop_expired(Instant::from_secs(50)), None);
        assert_eq!(t.pop_expired(Instant::from_secs(51)), Some(Timer::Idle));
    }

    /// Activity seen between arming a timer and the instant that fixes its
    /// deadline still counts for it.
    #[test]
    fn bytes_before_a_pending_deadline_is_fixed_count() {
        let mut t = Timers::new();
        t.arm(Timer::Idle, 1_000);
        t.saw_activity();
        assert_eq!(t.pop_expired(Instant::from_secs(3)), None);
        assert!(!t.quiet(Timer::Idle));
        assert_eq!(t.next(), Some(Instant::from_secs(4)));
    }

    /// Instants that are not whole milliseconds apart: a deadline is never
    /// early, and late by less than 1 ms.
    #[test]
    fn deadlines_between_milliseconds_round_up() {
        let mut t = Timers::new();
        let start = Instant::from_nanos(2_500_000);
        t.arm_at(Timer::Keepalive, start, 10);
        assert_eq!(t.next(), Some(Instant::from_nanos(12_500_000)));
        // Half a millisecond later, from the same base: 10 ms after it,
        // rounded up to the base's next whole millisecond.
        let later = Instant::from_nanos(3_000_000);
        t.arm_at(Timer::Pong, later, 10);
        assert_eq!(t.pop_expired(Instant::from_nanos(12_499_999)), None);
        assert_eq!(
            t.pop_expired(Instant::from_nanos(12_500_000)),
            Some(Timer::Keepalive)
        );
        assert_eq!(t.next(), Some(Instant::from_nanos(13_500_000)));
        assert_eq!(t.pop_expired(Instant::from_nanos(13_499_999)), None);
        assert_eq!(
            t.pop_expired(Instant::from_nanos(13_500_000)),
            Some(Timer::Pong)
        );
    }

    /// A caller silent for far longer than an offset can count: deadlines
    /// neither wrap around into the future nor fire early afterwards.
    #[test]
    fn a_long_silence_neither_loses_nor_advances_a_deadline() {
        let year = 365 * 24 * 3_600;
        let mut t = Timers::new();
        let max = u32::MAX - 1;
        t.arm_at(Timer::Idle, Instant::from_secs(7), max);
        t.arm_at(Timer::Keepalive, Instant::from_secs(7), 1_000);
        let idle_at = Instant::from_secs(7) + Duration::from_millis(max.into());
        assert_eq!(t.next(), Some(Instant::from_secs(8)));
        // Keepalive re-armed 40 days in: the idle deadline stays put.
        let day40 = Instant::from_secs(40 * 24 * 3_600);
        assert_eq!(t.pop_expired(day40), Some(Timer::Keepalive));
        t.arm_at(Timer::Keepalive, day40, max);
        assert_eq!(t.next(), Some(idle_at));
        assert_eq!(
            t.pop_expired(Instant::from_nanos(idle_at.as_nanos() - 1)),
            None
        );
        // Ten years pass without a call: both are due, once each.
        let later = Instant::from_secs(10 * year);
        assert_eq!(t.pop_expired(later), Some(Timer::Keepalive));
        t.arm_at(Timer::Keepalive, later, max);
        assert_eq!(t.pop_expired(later), Some(Timer::Idle));
        assert_eq!(t.pop_expired(later), None);
        let next = later + Duration::from_millis(max.into());
        assert_eq!(t.next(), Some(next));
        assert_eq!(
            t.pop_expired(Instant::from_nanos(next.as_nanos() - 1)),
            None
        );
        assert_eq!(t.pop_expired(next), Some(Timer::Keepalive));
    }

    /// A connection's durations are whole milliseconds, rounded up: an idle
    /// timeout of 2.5 ms fires 3 ms after the instant that armed it, and
    /// not a nanosecond before.
    #[test]
    fn a_sub_millisecond_duration_fires_at_the_next_whole_millisecond() {
        use crate::connection::{Connection, Role};
        use crate::{CloseCode, Config};
        let config = Config {
            idle_timeout: Some(Duration::from_micros(2_500)),
            ..Config::default()
        };
        let mut server = Connection::new(Role::Server, config);
        let start = Instant::from_nanos(250_000);
        assert_eq!(server.handle_timeout(start), Ok(()));
        let due = Instant::from_nanos(3_250_000);
        assert_eq!(server.poll_timeout(), Some(due));
        let just_before = Instant::from_nanos(due.as_nanos() - 1);
        assert_eq!(server.handle_timeout(just_before), Ok(()));
        assert_eq!(server.state(), State::Open);
        assert_eq!(server.handle_timeout(due), Ok(()));
        let mut out = [0u8; 64];
        let n = server.poll_transmit(&mut out).unwrap();
        // The idle close: 1001, going away.
        assert!(n >= 4 && out[0] == 0x88);
        assert_eq!(
            u16::from_be_bytes([out[2], out[3]]),
            CloseCode::GOING_AWAY.0
        );
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

    /// Bytes from the peer after a ping answer it, even while its deadline
    /// is still armed: the next quiet tick's ping gets a whole timeout of its
    /// own, counted from that tick, not from the answered ping (which would
    /// fail a live peer early) nor from the old deadline's expiry (which
    /// would let a silent peer live almost two timeouts).
    #[test]
    fn a_ping_answered_by_any_bytes_gives_the_next_ping_its_own_deadline() {
        use crate::connection::{Connection, Role};
        use crate::{Config, Keepalive};
        let config = Config {
            keepalive: Some(Keepalive {
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(10),
            }),
            ..Config::default()
        };
        let mut client = Connection::new(Role::Client, config);
        let mut out = [0u8; 64];
        let mut failed = None;
        for s in 0..60 {
            if s == 3 {
                // After the first ping (at 1 s): the first byte of a frame
                // header, and then nothing more, ever.
                let received = client.receive(&mut [0x82]).map(|r| r.consumed);
                assert_eq!(received, Ok(0));
            }
            if let Err(e) = client.handle_timeout(Instant::from_secs(s)) {
                failed = Some((s, e));
                break;
            }
            while let Ok(1..) = client.poll_transmit(&mut out) {}
        }
        // Quiet again from the tick at 4 s (the byte came in before it): the
        // ping at 4 s is unanswered, and the connection fails 10 s later.
        assert_eq!(failed, Some((14, Error::Timeout(TimeoutKind::Pong))));
    }

    mod min_progress {
        use crate::connection::{Connection, Role};
        use crate::{CloseCode, Config, Error, Keepalive, MinProgress, Violation};
        use crate::{Duration, Instant};
        use std::{vec, vec::Vec};

        /// 100 data bytes per 10 s.
        fn server(rule: Option<MinProgress>) -> Connection {
            let config = Config {
                min_progress: rule,
                ..Config::default()
            };
            Connection::new(Role::Server, config)
        }

        fn floor() -> Option<MinProgress> {
            Some(MinProgress {
                bytes: 100,
                interval: Duration::from_secs(10),
            })
        }

        /// A masked frame header (zero key) announcing `len` payload bytes.
        fn header(opcode: u8, fin: bool, len: usize) -> Vec<u8> {
            let b0 = opcode | if fin { 0x80 } else { 0 };
            let mut h = match len {
                0..=125 => vec![b0, 0x80 | len as u8],
                _ => {
                    let mut h = vec![b0, 0x80 | 126];
                    h.extend_from_slice(&(len as u16).to_be_bytes());
                    h
                }
            };
            h.extend_from_slice(&[0; 4]);
            h
        }

        fn frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
            let mut f = header(opcode, fin, payload.len());
            f.extend_from_slice(payload);
            f
        }

        fn feed(c: &mut Connection, bytes: &[u8]) -> Result<(), Error> {
            let mut buf = bytes.to_vec();
            let mut pos = 0;
            while pos < buf.len() {
                let r = c.receive(&mut buf[pos..])?;
                if r.consumed == 0 {
                    break;
                }
                pos += r.consumed;
            }
            Ok(())
        }

        fn at(c: &mut Connection, secs: u64) -> Result<(), Error> {
            c.handle_timeout(Instant::from_secs(secs))
        }

        /// The Close frame queued, as (code, whole frame).
        fn close_code(c: &mut Connection) -> Option<u16> {
            let mut out = [0u8; 256];
            let n = c.poll_transmit(&mut out).ok()?;
            (n >= 4 && out[0] == 0x88).then(|| u16::from_be_bytes([out[2], out[3]]))
        }

        #[test]
        fn exactly_the_floor_in_every_interval_is_enough() {
            let mut c = server(floor());
            at(&mut c, 0).unwrap();
            feed(&mut c, &header(0x2, true, 5000)).unwrap();
            for i in 1..=40u64 {
                at(&mut c, i * 10).unwrap();
                feed(&mut c, &[7; 100]).unwrap();
            }
            assert_eq!(c.frame_remaining(), 1000);
            // One byte short of the floor in the next interval: 1008.
            at(&mut c, 410).unwrap();
            feed(&mut c, &[7; 99]).unwrap();
            assert_eq!(at(&mut c, 420), Err(Error::Protocol(Violation::TooSlow)));
            assert_eq!(close_code(&mut c), Some(CloseCode::POLICY_VIOLATION.0));
            assert!(c.should_close_transport());
            assert_eq!(c.poll_timeout(), None);
        }

        #[test]
        fn a_stalled_frame_fails_between_one_and_two_intervals_after_its_last_byte() {
            let mut c = server(floor());
            at(&mut c, 0).unwrap();
            // Starts mid-interval: the first interval [0, 10] is not judged.
            at(&mut c, 5).unwrap();
            feed(&mut c, &header(0x1, true, 1000)).unwrap();
            feed(&mut c, b"hello").unwrap();
            at(&mut c, 10).unwrap();
            assert_eq!(c.poll_timeout(), Some(Instant::from_secs(20)));
            assert_eq!(at(&mut c, 20), Err(Error::Protocol(Violation::TooSlow)));
        }

        #[test]
        fn between_whole_messages_a_quiet_peer_is_not_judged() {
            let mut c = server(floor());
            at(&mut c, 0).unwrap();
            feed(&mut c, &frame(0x2, true, &[1; 3])).unwrap();
            for i in 1..=100u64 {
                at(&mut c, i * 10).unwrap();
            }
            // A message started late, after a long quiet, gets its whole
            // first interval too.
            feed(&mut c, &header(0x2, true, 1000)).unwrap();
            at(&mut c, 1010).unwrap();
            feed(&mut c, &[0; 100]).unwrap();
            at(&mut c, 1020).unwrap();
            assert_eq!(at(&mut c, 1030), Err(Error::Protocol(Violation::TooSlow)));
        }

        #[test]
        fn a_fragmented_message_idle_between_its_frames_is_in_progress() {
            let mut c = server(floor());
            at(&mut c, 0).unwrap();
            // A whole first fragment, then nothing: no frame is open, but
            // the message is.
            feed(&mut c, &frame(0x2, false, &[1; 120])).unwrap();
            assert_eq!(c.frame_remaining(), 0);
            at(&mut c, 10).unwrap();
            assert_eq!(at(&mut c, 20), Err(Error::Protocol(Violation::TooSlow)));
        }

        #[test]
        fn fragments_at_the_floor_keep_a_message_going_and_empty_ones_do_not() {
            let mut c = server(floor());
            at(&mut c, 0).unwrap();
            feed(&mut c, &frame(0x2, false, &[1; 10])).unwrap();
            for i in 1..=10u64 {
                at(&mut c, i * 10).unwrap();
                feed(&mut c, &frame(0x0, false, &[2; 100])).unwrap();
            }
            // Frame headers are no progress: many empty fragments.
            at(&mut c, 110).unwrap();
            for _ in 0..50 {
                feed(&mut c, &frame(0x0, false, &[])).unwrap();
            }
            assert_eq!(at(&mut c, 120), Err(Error::Protocol(Violation::TooSlow)));
        }

        #[test]
        fn control_frames_between_fragments_are_no_progress() {
            let mut c = server(floor());
            at(&mut c, 0).unwrap();
            feed(&mut c, &frame(0x1, false, b"start")).unwrap();
            at(&mut c, 10).unwrap();
            // Pings and pongs worth far more bytes than the floor.
            for _ in 0..5 {
                feed(&mut c, &frame(0x9, true, &[0x61; 125])).unwrap();
                feed(&mut c, &frame(0xa, true, &[0x62; 125])).unwrap();
            }
            // The pongs the core queued for them do not matter either.
            let mut out = [0u8; 256];
            while c.poll_transmit(&mut out).unwrap() > 0 {}
            assert_eq!(at(&mut c, 20), Err(Error::Protocol(Violation::TooSlow)));
        }

        #[test]
        fn control_frames_between_fragments_at_the_floor_change_nothing() {
            let mut c = server(floor());
            at(&mut c, 0).unwrap();
            feed(&mut c, &frame(0x1, false, b"start")).unwrap();
            for i in 1..=5u64 {
                at(&mut c, i * 10).unwrap();
                feed(&mut c, &frame(0x9, true, b"ping")).unwrap();
                feed(&mut c, &frame(0x0, false, &[0x61; 100])).unwrap();
            }
            feed(&mut c, &frame(0x0, true, b"end")).unwrap();
            for i in 6..=20u64 {
                at(&mut c, i * 10).unwrap();
            }
        }

        #[test]
        fn answering_keepalive_pings_does_not_keep_a_stalled_message_alive() {
            let config = Config {
                min_progress: floor(),
                keepalive: Some(Keepalive {
                    interval: Duration::from_secs(2),
                    timeout: Duration::from_secs(3),
                }),
                ..Config::default()
            };
            let mut c = Connection::new(Role::Server, config);
            at(&mut c, 0).unwrap();
            feed(&mut c, &frame(0x2, false, &[1; 200])).unwrap();
            let mut out = [0u8; 256];
            let mut result = Ok(());
            for s in 1..=30u64 {
                result = at(&mut c, s);
                if result.is_err() {
                    break;
                }
                // Every keepalive ping is answered at once with a pong.
                while let Ok(n @ 1..) = c.poll_transmit(&mut out) {
                    if out[0] == 0x89 {
                        feed(&mut c, &frame(0xa, true, &out[2..n])).unwrap();
                    }
                }
            }
            assert_eq!(result, Err(Error::Protocol(Violation::TooSlow)));
        }

        #[test]
        fn off_or_zero_bytes_never_judges() {
            for rule in [
                None,
                Some(MinProgress {
                    bytes: 0,
                    interval: Duration::from_secs(10),
                }),
            ] {
                let mut c = server(rule);
                at(&mut c, 0).unwrap();
                feed(&mut c, &header(0x2, true, 1000)).unwrap();
                for i in 1..=50u64 {
                    at(&mut c, i * 10).unwrap();
                }
                assert_eq!(c.frame_remaining(), 1000);
            }
        }

        #[test]
        fn the_check_stops_once_closing() {
            let mut c = server(floor());
            at(&mut c, 0).unwrap();
            feed(&mut c, &header(0x2, true, 1000)).unwrap();
            c.close(CloseCode::NORMAL, "").unwrap();
            // Only the close timer is left (5 s by default).
            at(&mut c, 1).unwrap();
            assert_eq!(c.poll_timeout(), Some(Instant::from_secs(6)));
        }

        #[test]
        fn the_default_is_on_and_documented() {
            assert_eq!(Config::default().min_progress, Some(MinProgress::DEFAULT));
            assert_eq!(MinProgress::DEFAULT.bytes, 8192);
            assert_eq!(MinProgress::DEFAULT.interval, Duration::from_secs(30));
            assert_eq!(Violation::TooSlow.close_code(), CloseCode::POLICY_VIOLATION);
        }
    }
}
