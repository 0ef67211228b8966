//! The two halves of a split [`WebSocket`](super::WebSocket): [`ReadHalf`] (a `Stream` of
//! messages) and [`WriteHalf`] (a `Sink` of messages).
//!
//! Both hold the connection behind one `Arc<Mutex<..>>`, locked only inside
//! a poll (never across an await). Each half keeps its own timer. Writes to
//! the stream, from either half, register a waker that wakes both halves'
//! tasks, so neither takes the other's place in the stream's write
//! readiness; each half also wakes the other when it changes what the other
//! waits for (a Close queued, the connection over).

use super::poll::{Io, Timer, HIGH_WATER};
use crate::{Error, Message};
use futures_core::Stream;
use futures_sink::Sink;
use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use tokio::io::{AsyncRead, AsyncWrite};

/// The tasks waiting for the stream to take more output, one per half.
#[derive(Default)]
struct WriteWakers {
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl WriteWakers {
    fn register(&self, reader: bool, waker: &Waker) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = if reader {
            &mut slots.reader
        } else {
            &mut slots.writer
        };
        store(slot, waker);
    }
}

impl Wake for WriteWakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let slots = std::mem::take(&mut *self.slots.lock().unwrap_or_else(PoisonError::into_inner));
        for waker in [slots.reader, slots.writer].into_iter().flatten() {
            waker.wake();
        }
    }
}

/// What both halves share.
struct Shared<S> {
    io: Io<S>,
    wakers: Arc<WriteWakers>,
    /// A waker over `wakers`, registered by every write to the stream.
    write_waker: Waker,
    /// The read half's task, woken when the write half changes its deadlines.
    reader: Option<Waker>,
    /// The write half's task, woken when the read half ends the close
    /// handshake or the connection.
    writer: Option<Waker>,
    /// A failure the write half hit, for the read half to report once.
    failure_for_reader: Option<wsproto::Error>,
    /// A failure the read half hit, for the write half's next flush or
    /// close to report.
    failure_for_writer: Option<wsproto::Error>,
}

impl<S> Shared<S> {
    fn wake_reader(&mut self) {
        if let Some(waker) = self.reader.take() {
            waker.wake();
        }
    }

    fn wake_writer(&mut self) {
        if let Some(waker) = self.writer.take() {
            waker.wake();
        }
    }
}

fn lock<S>(shared: &Mutex<Shared<S>>) -> MutexGuard<'_, Shared<S>> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keeps `waker` in `slot` (cloning only when it is another task's).
fn store(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(old) if old.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

/// A read result as a stream item: the end of the connection ends the stream.
/// Inline: every message read through `Stream` passes here.
#[inline]
pub(super) fn end_on_close(result: Result<Message, Error>) -> Option<Result<Message, Error>> {
    match result {
        Err(Error::ConnectionClosed) => None,
        result => Some(result),
    }
}

pub(super) fn split<S>(io: Io<S>) -> (ReadHalf<S>, WriteHalf<S>) {
    let wakers = Arc::new(WriteWakers::default());
    let shared = Arc::new(Mutex::new(Shared {
        io,
        write_waker: Waker::from(wakers.clone()),
        wakers,
        reader: None,
        writer: None,
        failure_for_reader: None,
        failure_for_writer: None,
    }));
    (
        ReadHalf {
            shared: shared.clone(),
            timer: Timer::default(),
        },
        WriteHalf {
            shared,
            timer: Timer::default(),
        },
    )
}

/// The reading half of a [`WebSocket`](super::WebSocket) from [`WebSocket::split`](super::WebSocket::split): a
/// [`Stream`] of messages that ends after the close handshake.
///
/// It answers pings and echoes the peer's Close (the core queues the frames)
/// and writes them, with anything the write half queued, whenever the stream
/// takes them; it never waits on a write while there is input to read, so a
/// writer blocked by a slow peer does not hold it up. Only a failure or the
/// end of the connection (nothing left to read) waits for the output, within
/// the close timeout. The timers (close handshake, keepalive) run here too.
///
/// **Cancel safety:** [`ReadHalf::read`] and `next()` are cancel-safe: all
/// state is in the shared connection, and a dropped read loses nothing.
pub struct ReadHalf<S> {
    shared: Arc<Mutex<Shared<S>>>,
    timer: Timer,
}

/// The writing half of a [`WebSocket`](super::WebSocket) from [`WebSocket::split`](super::WebSocket::split): a
/// [`Sink`] of messages, with the same `send`, `feed`, `flush` and `close`
/// as the whole socket.
///
/// **Cancel safety:** as for [`WebSocket`](super::WebSocket)'s sends (see the
/// [module doc](super#cancelling-a-send)): a `send` or `feed` dropped while
/// writing earlier output queued nothing; once a message is queued it is
/// written by the next flush, send or close (or by the read half). `flush`
/// is cancel-safe; `close` may be retried.
///
/// [`WriteHalf::close`] waits for the peer's Close, which only the read half
/// receives: keep the read half polled, or `close` ends at the close
/// timeout, with its error.
pub struct WriteHalf<S> {
    shared: Arc<Mutex<Shared<S>>>,
    timer: Timer,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message, Error>> {
        let mut guard = lock(&self.shared);
        let shared = &mut *guard;
        store(&mut shared.reader, cx.waker());
        shared.wakers.register(true, cx.waker());
        let result = std::task::ready!(shared.io.poll_message_split(
            cx,
            &shared.write_waker,
            &mut self.timer
        ));
        let over = result.is_err()
            || matches!(result, Ok(Message::Close(_)))
            || shared.io.driver.is_over();
        if over {
            // A close the write half waits for may be done, or a failure
            // for it to report.
            shared.wake_writer();
        }
        Poll::Ready(match result {
            Err(Error::Protocol(e)) => {
                shared.failure_for_writer = Some(e);
                Err(Error::Protocol(e))
            }
            Err(Error::ConnectionClosed) => match shared.failure_for_reader.take() {
                Some(e) => Err(Error::Protocol(e)),
                None => Err(Error::ConnectionClosed),
            },
            result => result,
        })
    }

    /// Reads the next whole message, as [`WebSocket::read`](super::WebSocket::read) does (control
    /// messages too); [`Error::ConnectionClosed`] once the connection is
    /// over. Cancel-safe.
    pub async fn read(&mut self) -> Result<Message, Error> {
        poll_fn(|cx| self.poll_read(cx)).await
    }
}

impl<S> ReadHalf<S> {
    /// Whether `write` is the other half of the same socket.
    pub fn is_pair_of(&self, write: &WriteHalf<S>) -> bool {
        Arc::ptr_eq(&self.shared, &write.shared)
    }
}

/// The messages received; ends (`None`) once the connection is closed.
impl<S: AsyncRead + AsyncWrite + Unpin> Stream for ReadHalf<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_read(cx).map(end_on_close)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WriteHalf<S> {
    /// Writes queued output until at most `keep` bytes are left.
    fn poll_write_out(&mut self, cx: &mut Context<'_>, keep: usize) -> Poll<Result<(), Error>> {
        let mut guard = lock(&self.shared);
        let shared = &mut *guard;
        store(&mut shared.writer, cx.waker());
        shared.wakers.register(false, cx.waker());
        let result = std::task::ready!(shared.io.poll_write_out(
            cx.waker(),
            &shared.write_waker,
            &mut self.timer,
            keep
        ));
        if result.is_ok() {
            // The read half ended the connection (a timer, a peer
            // violation): the output it dropped was never written.
            if let Some(e) = shared.failure_for_writer.take() {
                return Poll::Ready(Err(Error::Protocol(e)));
            }
        }
        if let Err(e) = &result {
            if let Error::Protocol(p) = e {
                shared.failure_for_reader = Some(*p);
            }
            shared.wake_reader();
        }
        Poll::Ready(result)
    }

    /// Queues `message` without writing.
    fn queue(&mut self, message: Message) -> Result<(), Error> {
        let mut shared = lock(&self.shared);
        let close = matches!(message, Message::Close(_));
        let result = shared.io.driver.send_owned(message);
        if close {
            // The read half now runs the close timer.
            shared.wake_reader();
        }
        result
    }

    /// Waits until the close handshake is over.
    fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut guard = lock(&self.shared);
        let shared = &mut *guard;
        store(&mut shared.writer, cx.waker());
        shared.wakers.register(false, cx.waker());
        let result =
            std::task::ready!(shared
                .io
                .poll_closed(cx, &shared.write_waker, &mut self.timer));
        Poll::Ready(match result {
            Ok(()) => match shared.failure_for_writer.take() {
                Some(e) => Err(Error::Protocol(e)),
                None => Ok(()),
            },
            Err(e) => {
                if let Error::Protocol(p) = &e {
                    shared.failure_for_reader = Some(*p);
                }
                shared.wake_reader();
                Err(e)
            }
        })
    }

    /// Sends a message: writes earlier output, queues the message, writes
    /// it (see [`WebSocket::send`](super::WebSocket::send)).
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
        self.flush().await?;
        self.queue(message)?;
        self.flush().await
    }

    /// Queues a message, writing earlier output first only while more than
    /// 64 KiB are queued (see [`WebSocket::feed`](super::WebSocket::feed)).
    pub async fn feed(&mut self, message: Message) -> Result<(), Error> {
        poll_fn(|cx| self.poll_write_out(cx, HIGH_WATER)).await?;
        self.queue(message)
    }

    /// Writes everything queued (see [`WebSocket::flush`](super::WebSocket::flush)). Cancel-safe.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_write_out(cx, 0)).await
    }

    /// Sends a Close and waits until the close handshake is over: the read
    /// half has received the peer's Close (data it receives meanwhile is
    /// still its to read), or `Config::close_timeout` passed (its error).
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<(), Error> {
        {
            let mut shared = lock(&self.shared);
            shared.io.driver.close(code, reason)?;
            shared.wake_reader();
        }
        poll_fn(|cx| self.poll_closed(cx)).await
    }
}

/// Sending messages, as for [`WebSocket`](super::WebSocket): `poll_ready` writes only while
/// more than 64 KiB are queued, `start_send` queues, `poll_flush` writes
/// everything, `poll_close` sends Close 1000 and waits as
/// [`WriteHalf::close`] does.
impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WriteHalf<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_write_out(cx, HIGH_WATER)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        self.get_mut().queue(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_write_out(cx, 0)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        {
            let mut shared = lock(&this.shared);
            if shared.io.driver.state() == wsproto::State::Open {
                shared.io.driver.close(1000, "")?;
                shared.wake_reader();
            }
        }
        this.poll_closed(cx)
    }
}

/// The halves given to [`reunite`](super::reunite) came from different sockets; both are
/// handed back.
pub struct ReuniteError<S>(pub ReadHalf<S>, pub WriteHalf<S>);

impl<S> fmt::Debug for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReuniteError(..)")
    }
}

impl<S> fmt::Display for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the halves are not from the same WebSocket")
    }
}

impl<S> std::error::Error for ReuniteError<S> {}

/// The connection and write timer of two halves of one socket, for
/// [`reunite`](super::reunite)(super::reunite); the halves back if they are not a pair.
pub(super) fn rejoin<S>(
    read: ReadHalf<S>,
    write: WriteHalf<S>,
) -> Result<(Io<S>, Timer), ReuniteError<S>> {
    if !read.is_pair_of(&write) {
        return Err(ReuniteError(read, write));
    }
    let timer = write.timer;
    drop(write.shared);
    match Arc::try_unwrap(read.shared) {
        Ok(shared) => {
            let shared = shared.into_inner().unwrap_or_else(PoisonError::into_inner);
            Ok((shared.io, timer))
        }
        // Unreachable (the halves hold the only two references), but never a panic.
        Err(shared) => Err(ReuniteError(
            ReadHalf {
                shared: shared.clone(),
                timer: read.timer,
            },
            WriteHalf { shared, timer },
        )),
    }
}
