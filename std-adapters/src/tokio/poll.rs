//! The poll functions under every tokio entry point: the async methods,
//! `Stream` and `Sink`, and both halves of a split socket.
//!
//! All state lives in [`Io`] (the stream, the [`Driver`]) and in the
//! caller's [`Timer`], so any poll may be abandoned between two calls
//! without losing anything. Reads register the task's waker; writes register
//! the waker they are given (a split socket gives one that wakes both
//! halves, so neither steals the other's registration with the stream).

use crate::clock;
use crate::driver::{Driver, StepAt, RX_MIN};
use crate::{Error, Message};
use std::future::Future;
use std::io::{ErrorKind, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Queued output above this makes [`Io::poll_write_out`] with
/// `keep = HIGH_WATER` write before more is queued (`feed`, `Sink::poll_ready`).
pub(crate) const HIGH_WATER: usize = 64 * 1024;

/// One re-armable sleep for the driver's deadlines, kept between polls.
///
/// The sleep is re-armed only when a deadline comes earlier than the one it
/// is armed for, or once it fired: a later deadline (an idle timeout pushed
/// on by traffic) leaves it be, and when it fires early the driver finds
/// nothing due and it is armed again. A busy connection so touches neither
/// the clock nor the runtime's timer wheel per message.
#[derive(Default)]
pub(crate) struct Timer {
    sleep: Option<Pin<Box<Sleep>>>,
    /// The core's instant the sleep is armed for, while it has not fired.
    armed: Option<wsproto::Instant>,
    /// The waker the sleep holds, to skip polling it for the same task.
    waker: Option<Waker>,
}

impl Timer {
    /// No deadline from this instant on can have come: the sleep is armed
    /// there and has not fired (see [`Driver::step_until`]).
    #[inline]
    fn quiet_before(&self) -> Option<wsproto::Instant> {
        match &self.sleep {
            Some(sleep) if !sleep.is_elapsed() => self.armed,
            _ => None,
        }
    }

    /// Ready once `wait` has passed from now.
    fn poll_after(&mut self, waker: &Waker, wait: Duration) -> Poll<()> {
        let wait =
            wsproto::Duration::from_nanos(u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX));
        self.poll_until(waker, clock::now() + wait)
    }

    /// Ready once the core's instant `at` has come; `waker` is woken then
    /// (or earlier, when the sleep was armed earlier).
    #[inline]
    fn poll_until(&mut self, waker: &Waker, at: wsproto::Instant) -> Poll<()> {
        if self.armed.is_some_and(|armed| armed <= at)
            && self.waker.as_ref().is_some_and(|w| w.will_wake(waker))
            && self.quiet_before().is_some()
        {
            // Armed no later than `at` for this task already, and not fired
            // (most reads of a busy connection).
            return Poll::Pending;
        }
        self.poll_until_slow(waker, at)
    }

    /// [`Timer::poll_until`] for a caller that has just seen the sleep
    /// armed no later than `at` and not fired ([`Io::parked`]): if it fires
    /// since, it wakes the task again, so only the waker is left to check.
    #[inline]
    fn poll_armed(&mut self, waker: &Waker, at: wsproto::Instant) -> Poll<()> {
        if self.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            return Poll::Pending;
        }
        self.poll_until_slow(waker, at)
    }

    /// [`Timer::poll_until`] once the sleep must be armed or polled.
    #[inline(never)]
    fn poll_until_slow(&mut self, waker: &Waker, at: wsproto::Instant) -> Poll<()> {
        let same_task = self.waker.as_ref().is_some_and(|w| w.will_wake(waker));
        let deadline = tokio::time::Instant::from_std(clock::to_std(at));
        let sleep = match &mut self.sleep {
            Some(sleep) => {
                sleep.as_mut().reset(deadline);
                sleep
            }
            empty => empty.insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        if !same_task {
            self.waker = Some(waker.clone());
        }
        let polled = sleep.as_mut().poll(&mut Context::from_waker(waker));
        self.armed = polled.is_pending().then_some(at);
        polled
    }
}

/// The stream and the driver: one connection's whole state.
pub(crate) struct Io<S> {
    pub(crate) stream: S,
    pub(crate) driver: Driver,
    /// Bytes were written since the stream was last flushed.
    unflushed: bool,
}

impl<S> Io<S> {
    /// The same connection over `f(stream)` (a wrapper of the same bytes).
    #[cfg(feature = "hyper")]
    pub(crate) fn map_stream<T>(self, f: impl FnOnce(S) -> T) -> Io<T> {
        Io {
            stream: f(self.stream),
            driver: self.driver,
            unflushed: self.unflushed,
        }
    }

    pub(crate) fn new(stream: S, mut driver: Driver) -> Self {
        // Reads go into the window's spare capacity: a window is never
        // zeroed before it is read into.
        driver.read_by_appending();
        Io {
            stream,
            driver,
            unflushed: false,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Io<S> {
    /// Writes queued output until at most `keep` bytes are left (with
    /// `keep == 0`, everything, then flushes the stream). Each write waits at
    /// most until the next timer; when a timer ends the connection, the
    /// output is dropped, the transport shut (one attempt) and the timer's
    /// error returned. Writes register `write_waker`, the timer `cx`.
    ///
    /// The timers run only once a write cannot go on: a write the stream
    /// takes at once waits for nothing, and the next step runs the timers
    /// anyway. That spares the clock and the core's timer table on every
    /// echo of a busy connection.
    #[inline]
    pub(crate) fn poll_write_out(
        &mut self,
        waker: &Waker,
        write_waker: &Waker,
        timer: &mut Timer,
        keep: usize,
    ) -> Poll<Result<(), Error>> {
        if self.written_out(keep) {
            // Most calls of a small echo find nothing to do: no call for that.
            return Poll::Ready(Ok(()));
        }
        self.poll_write_out_slow(waker, write_waker, timer, keep)
    }

    /// Whether at most `keep` bytes wait (with `keep == 0`, nothing, and
    /// the stream flushed).
    #[inline]
    fn written_out(&self, keep: usize) -> bool {
        self.driver.pending_len() <= keep && (keep > 0 || !self.unflushed)
    }

    /// [`Io::poll_write_out`] once something is to be written.
    #[inline(never)]
    fn poll_write_out_slow(
        &mut self,
        waker: &Waker,
        write_waker: &Waker,
        timer: &mut Timer,
        keep: usize,
    ) -> Poll<Result<(), Error>> {
        let mut wcx = Context::from_waker(write_waker);
        loop {
            if self.written_out(keep) {
                return Poll::Ready(Ok(()));
            }
            if let Poll::Ready(result) = self.poll_write_once(&mut wcx) {
                result?;
                continue;
            }
            // Blocked: the timers bound the wait, and one may end the
            // connection (a peer that stopped reading).
            let wait = match self.driver.write_wait(clock::now()) {
                Ok(wait) => wait,
                Err(e) => return Poll::Ready(Err(self.shut_now(write_waker, e))),
            };
            match wait {
                // Fired: the loop writes again, then asks the timers again.
                Some(wait) if timer.poll_after(waker, wait).is_ready() => {}
                _ => return Poll::Pending,
            }
        }
    }

    /// One write of the queued output (vectored when a large frame is
    /// written from its own bytes), or a flush of the stream once nothing
    /// is queued.
    fn poll_write_once(&mut self, wcx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut stream = Pin::new(&mut self.stream);
        let polled = match self.driver.pending_whole() {
            // The usual case: the transmit buffer alone, one plain write.
            Some([]) => return self.poll_flush_once(wcx),
            Some(one) => stream.as_mut().poll_write(wcx, one),
            None => {
                let mut slices = [IoSlice::new(&[]); 4];
                let count = self.driver.pending_slices(&mut slices);
                match slices.get(..count) {
                    Some([]) | None => return self.poll_flush_once(wcx),
                    Some([one]) => stream.as_mut().poll_write(wcx, one),
                    Some(several) => stream.as_mut().poll_write_vectored(wcx, several),
                }
            }
        };
        let result = match polled {
            Poll::Ready(r) => r,
            Poll::Pending => return Poll::Pending,
        };
        Poll::Ready(match result {
            Ok(0) => {
                self.driver.on_io_error();
                self.unflushed = false;
                Err(Error::Io(ErrorKind::WriteZero.into()))
            }
            Ok(n) => {
                self.driver.advance(n);
                self.unflushed = true;
                if self.driver.pending_len() == 0 {
                    // Everything is written: the flush goes in the same
                    // turn (a plain TCP stream's is free), not in another
                    // round of the caller's loop.
                    if let Poll::Ready(flushed) = self.poll_flush_once(wcx) {
                        return Poll::Ready(flushed);
                    }
                }
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(()),
            Err(e) => {
                let result = self.driver.on_write_error(e);
                // Nothing more will be written: nothing to flush.
                self.unflushed = false;
                result
            }
        })
    }

    /// One flush of the stream, once nothing is queued.
    fn poll_flush_once(&mut self, wcx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match Pin::new(&mut self.stream).poll_flush(wcx) {
            Poll::Ready(Ok(())) => {
                self.unflushed = false;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) if e.kind() == ErrorKind::Interrupted => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => {
                let result = self.driver.on_write_error(e);
                self.unflushed = false;
                Poll::Ready(result)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Writes what it can without waiting: `Ready(Ok)` once everything is
    /// written and flushed, `Pending` (with `write_waker` registered) when
    /// the stream cannot take more now.
    fn poll_write_some(&mut self, write_waker: &Waker) -> Poll<Result<(), Error>> {
        let mut wcx = Context::from_waker(write_waker);
        while !self.driver.pending().is_empty() || self.unflushed {
            std::task::ready!(self.poll_write_once(&mut wcx))?;
        }
        Poll::Ready(Ok(()))
    }

    /// After a timer ended the connection: shuts the transport's write side
    /// without waiting (shutting may itself wait on the stuck peer, a TLS
    /// close_notify: one attempt) and hands `e` back.
    fn shut_now(&mut self, write_waker: &Waker, e: Error) -> Error {
        let mut wcx = Context::from_waker(write_waker);
        let _ = Pin::new(&mut self.stream).poll_shutdown(&mut wcx);
        self.driver.mark_shut();
        e
    }

    /// Shuts the transport's write side if the driver asks for it.
    fn poll_shut(&mut self, write_waker: &Waker) -> Poll<()> {
        if self.driver.wants_shutdown() {
            let mut wcx = Context::from_waker(write_waker);
            // A failed shutdown leaves nothing to do but drop the transport.
            let _ = std::task::ready!(Pin::new(&mut self.stream).poll_shutdown(&mut wcx));
            self.driver.mark_shut();
        }
        Poll::Ready(())
    }

    /// One read into the driver's window, bounded by `wait`; `Ready(Ok)`
    /// also when the timer fired (the driver runs its timers next).
    ///
    /// A connection that gave its window back while idle
    /// ([`Driver::release_idle_window`]) reads into this thread's shared
    /// buffer instead, and only what arrived is handed to the driver: a
    /// connection waiting for input holds no receive window. With `armed`,
    /// the caller has just seen the timer armed no later than `until` and
    /// not fired ([`Io::parked`]).
    fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        timer: &mut Timer,
        until: Option<wsproto::Instant>,
        armed: bool,
    ) -> Poll<Result<(), Error>> {
        let shared = if self.driver.release_idle_window() {
            self.poll_read_shared(cx)
        } else {
            None
        };
        let read = match shared {
            Some(read) => read,
            None => self.poll_read_own(cx),
        };
        match read {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) if e.kind() == ErrorKind::Interrupted => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => Poll::Ready(self.driver.on_read_error(e)),
            Poll::Pending => match until {
                Some(until) if armed => timer.poll_armed(cx.waker(), until).map(Ok),
                Some(until) => timer.poll_until(cx.waker(), until).map(Ok),
                None => Poll::Pending,
            },
        }
    }

    /// A read into the driver's own window, appended in its spare
    /// capacity (tokio's `read_buf`, so the room needs no zeroing).
    fn poll_read_own(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let window = self.driver.read_vec();
        let read = std::pin::pin!(self.stream.read_buf(window)).poll(cx);
        match read {
            Poll::Ready(Ok(0)) => {
                self.driver.on_eof();
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(n)) => {
                self.driver.on_appended(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// A read into this thread's shared buffer; `None` if it is in use
    /// (never: polls do not nest), and the caller reads into its own window.
    fn poll_read_shared(&mut self, cx: &mut Context<'_>) -> Option<Poll<std::io::Result<()>>> {
        thread_local! {
            static SHARED: std::cell::RefCell<[u8; RX_MIN]> =
                const { std::cell::RefCell::new([0; RX_MIN]) };
        }
        SHARED.with(|shared| {
            let mut shared = shared.try_borrow_mut().ok()?;
            let mut buf = ReadBuf::new(&mut shared[..]);
            let read = Pin::new(&mut self.stream).poll_read(cx, &mut buf);
            if let Poll::Ready(Ok(())) = read {
                let filled = buf.filled_mut();
                if filled.is_empty() {
                    self.driver.on_eof();
                } else {
                    self.driver.on_read_shared(filled, RX_MIN);
                }
            }
            Some(read)
        })
    }

    /// The next message for a socket that is not split: text and binary
    /// messages already decoded are handed out first (pipelining); then
    /// queued output is written (waiting for it), the transport shut when
    /// the close is done, and the next result returned or read for.
    pub(crate) fn poll_message(
        &mut self,
        cx: &mut Context<'_>,
        timer: &mut Timer,
    ) -> Poll<Result<Message, Error>> {
        let waker = cx.waker();
        loop {
            if let Some(message) = self.driver.take_buffered(true) {
                return Poll::Ready(Ok(message));
            }
            if let Some(until) = self.parked(timer) {
                // Woken for input after a step that asked to read: nothing
                // to write and nothing due, so read before stepping again.
                let cx = &mut Context::from_waker(waker);
                std::task::ready!(self.poll_fill(cx, timer, until, true))?;
                if let Some(message) = self.driver.take_data_message() {
                    // The usual read of a busy connection: one message.
                    return Poll::Ready(Ok(message));
                }
                continue;
            }
            if !self.written_out(0) {
                // Written, then round again: a small echo written out leaves
                // the read parked (see `Driver::advance`), so no step is due.
                std::task::ready!(self.poll_write_out_slow(waker, waker, timer, 0))?;
                continue;
            }
            std::task::ready!(self.poll_shut(waker));
            if let Some(outcome) = self.driver.take_outcome() {
                return Poll::Ready(outcome);
            }
            match self.driver.step_until(timer.quiet_before()) {
                StepAt::Continue => {}
                StepAt::Read(until) => {
                    let cx = &mut Context::from_waker(waker);
                    std::task::ready!(self.poll_fill(cx, timer, until, false))?
                }
            }
        }
    }

    /// The deadline of the read the last step asked for, if a step now
    /// would ask for the same: nothing was queued, written unflushed, read
    /// or fired since ([`Driver::parked`]), and no deadline has come (the
    /// timer, armed no later than it, has not fired).
    fn parked(&self, timer: &Timer) -> Option<Option<wsproto::Instant>> {
        if self.unflushed {
            return None;
        }
        let until = self.driver.parked()?;
        match until {
            None => Some(until),
            Some(at) => timer
                .quiet_before()
                .filter(|&armed| armed <= at)
                .map(|_| until),
        }
    }

    /// The next message for the read half of a split socket. Output (pongs,
    /// a Close echo, the write half's frames) is written when the stream
    /// takes it, never waited for while there is input to read: only a
    /// failure, or the end of the connection (nothing left to read), waits
    /// for the output to drain, bounded by the timers.
    pub(crate) fn poll_message_split(
        &mut self,
        cx: &mut Context<'_>,
        write_waker: &Waker,
        timer: &mut Timer,
    ) -> Poll<Result<Message, Error>> {
        loop {
            if let Some(message) = self.driver.take_buffered(false) {
                return Poll::Ready(Ok(message));
            }
            let mut blocked = match self.poll_write_some(write_waker) {
                Poll::Ready(Ok(())) => false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => true,
            };
            if !blocked {
                blocked = self.poll_shut(write_waker).is_pending();
            }
            if !blocked {
                if let Some(outcome) = self.driver.take_outcome() {
                    return Poll::Ready(outcome);
                }
            }
            let now = clock::now();
            if blocked {
                // The timers first, as a write runs them: one that ends the
                // connection drops the output the peer is not reading,
                // rather than waiting for it.
                if let Err(e) = self.driver.write_wait(now) {
                    return Poll::Ready(Err(self.shut_now(write_waker, e)));
                }
            }
            match self.driver.step_reading(now) {
                StepAt::Continue if blocked && self.driver.pending().is_empty() => {
                    // Only a flush or the shutdown is left, which no timer
                    // bounds: it does not hold up the result.
                    if let Some(outcome) = self.driver.take_outcome() {
                        return Poll::Ready(outcome);
                    }
                }
                StepAt::Continue if blocked && !self.driver.message_ready() => {
                    // A failure to report or the end of the connection:
                    // the output goes first, within the timers.
                    match self.driver.write_wait(now) {
                        Err(e) => return Poll::Ready(Err(self.shut_now(write_waker, e))),
                        Ok(Some(wait)) if timer.poll_after(cx.waker(), wait).is_ready() => {}
                        Ok(_) => return Poll::Pending,
                    }
                }
                StepAt::Continue => {}
                StepAt::Read(until) => std::task::ready!(self.poll_fill(cx, timer, until, false))?,
            }
        }
    }

    /// For the write half of a split socket: writes everything queued (our
    /// Close among it), shuts the transport when the core says so, and
    /// waits until the close handshake is over (the read half sees the
    /// peer's Close) or a timer (the close timeout) ends the connection.
    pub(crate) fn poll_closed(
        &mut self,
        cx: &mut Context<'_>,
        write_waker: &Waker,
        timer: &mut Timer,
    ) -> Poll<Result<(), Error>> {
        loop {
            std::task::ready!(self.poll_write_out(cx.waker(), write_waker, timer, 0))?;
            std::task::ready!(self.poll_shut(write_waker));
            if self.driver.is_over() {
                return Poll::Ready(Ok(()));
            }
            match self.driver.write_wait(clock::now()) {
                Err(e) => return Poll::Ready(Err(self.shut_now(write_waker, e))),
                Ok(Some(wait)) if timer.poll_after(cx.waker(), wait).is_ready() => {}
                Ok(_) => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    /// Counts its wakes.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn the_sleep_is_armed_again_only_for_an_earlier_deadline_or_once_it_fired() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut timer = Timer::default();
        let now = clock::now();
        let late = now + wsproto::Duration::from_secs(60);
        assert!(timer.poll_until(&waker, late).is_pending());
        assert_eq!(timer.quiet_before(), Some(late));
        // A later deadline (traffic pushing an idle timeout on) leaves it be.
        let later = late + wsproto::Duration::from_secs(5);
        assert!(timer.poll_until(&waker, later).is_pending());
        assert_eq!(timer.quiet_before(), Some(late));
        // An earlier one arms it again.
        let soon = now + wsproto::Duration::from_millis(20);
        assert!(timer.poll_until(&waker, soon).is_pending());
        assert_eq!(timer.quiet_before(), Some(soon));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "woken when it fired");
        // Fired: nothing is known quiet, and the next deadline arms it.
        assert_eq!(timer.quiet_before(), None);
        assert!(timer.poll_until(&waker, later).is_pending());
        assert_eq!(timer.quiet_before(), Some(later));
        // A deadline already past is ready at once.
        assert!(timer.poll_until(&waker, now).is_ready());
        assert_eq!(timer.quiet_before(), None);
    }

    #[tokio::test]
    async fn a_read_parked_on_the_armed_sleep_checks_only_whose_waker_it_holds() {
        let first = Arc::new(Count(AtomicUsize::new(0)));
        let second = Arc::new(Count(AtomicUsize::new(0)));
        let (w1, w2) = (Waker::from(first.clone()), Waker::from(second.clone()));
        let mut timer = Timer::default();
        let soon = clock::now() + wsproto::Duration::from_millis(20);
        assert!(timer.poll_until(&w1, soon).is_pending());
        assert!(timer.poll_armed(&w1, soon).is_pending());
        assert_eq!(timer.quiet_before(), Some(soon));
        // Another task's waker: the sleep is polled with it, so that task
        // is the one woken when it fires.
        assert!(timer.poll_armed(&w2, soon).is_pending());
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(timer.quiet_before(), None);
    }
}
