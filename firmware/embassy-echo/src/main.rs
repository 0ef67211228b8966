//! # A WebSocket echo server on embassy
//!
//! embassy-executor runs two tasks: the embassy-net stack, and a server that
//! accepts TCP connections on port 80, runs the WebSocket handshake with
//! `wsproto_adapters::embedded::WebSocket::accept` over the `TcpSocket`,
//! and echoes every message back, fragment by fragment as it arrives. No
//! heap: the stack's resources live in `static`s, the buffers in the task.
//!
//! A board support crate supplies the two things this file stands in for in
//! [`board`]: the network interface (an `embassy_net::driver::Driver`) and
//! the time driver. With these stand-ins it builds for any Cortex-M target;
//! CI builds it for thumbv7em-none-eabihf (`firmware/scripts/check.sh`).

#![no_std]
#![no_main]

use embassy_executor::Spawner;
use embassy_net::tcp::TcpSocket;
use embassy_net::{Ipv4Address, Ipv4Cidr, Runner, Stack, StackResources, StaticConfigV4};
use static_cell::StaticCell;
use wsproto::MessageKind;
use wsproto_adapters::embedded::{EmbeddedEvent, WebSocket};

/// Largest message fragment echoed in one piece.
const CHUNK: usize = 512;

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(Ipv4Address::new(192, 168, 1, 2), 24),
        gateway: None,
        dns_servers: Default::default(),
    });
    static RESOURCES: StaticCell<StackResources<2>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        board::Nic,
        config,
        RESOURCES.init(StackResources::new()),
        board::random_seed(),
    );
    match net_task(runner) {
        Ok(task) => spawner.spawn(task),
        Err(_) => return,
    }
    if let Ok(task) = echo_task(stack) {
        spawner.spawn(task);
    }
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, board::Nic>) -> ! {
    runner.run().await
}

/// Accepts one connection at a time on port 80 and echoes it until it ends.
#[embassy_executor::task]
async fn echo_task(stack: Stack<'static>) -> ! {
    let (mut socket_rx, mut socket_tx) = ([0u8; 1024], [0u8; 1024]);
    let (mut rx, mut tx) = ([0u8; 1024], [0u8; CHUNK + 14]);
    loop {
        let mut socket = TcpSocket::new(stack, &mut socket_rx, &mut socket_tx);
        if socket.accept(80).await.is_err() {
            continue;
        }
        let now = wsproto::Instant::from_millis(embassy_time::Instant::now().as_millis());
        let config = wsproto::Config::default();
        if let Ok(mut ws) = WebSocket::accept(&mut socket, &mut rx, &mut tx, config, now).await {
            echo(&mut ws).await;
        }
        socket.close();
        let _ = socket.flush().await;
    }
}

/// Sends every fragment back as it arrives; returns when the connection
/// ends (a Close is answered by the driver).
async fn echo<T>(ws: &mut WebSocket<'_, T>)
where
    T: embedded_io_async::Read + embedded_io_async::Write,
{
    let mut chunk = [0u8; CHUNK];
    loop {
        // The event borrows the receive buffer: copy the fragment out, then send.
        let (kind, len, fin) = match ws.read().await {
            Ok(EmbeddedEvent::Text { data, fin }) => {
                (MessageKind::Text, copy(&mut chunk, data.as_bytes()), fin)
            }
            Ok(EmbeddedEvent::Binary { data, fin }) => {
                (MessageKind::Binary, copy(&mut chunk, data), fin)
            }
            Ok(EmbeddedEvent::Close { .. }) | Err(_) => return,
            Ok(_) => continue, // pings are answered by the core
        };
        let Some(data) = chunk.get(..len) else { return };
        if ws.send_fragment(kind, data, fin).await.is_err() {
            return;
        }
    }
}

/// Copies as much of `from` as fits into `to`; returns how much.
fn copy(to: &mut [u8], from: &[u8]) -> usize {
    let n = from.len().min(to.len());
    if let (Some(to), Some(from)) = (to.get_mut(..n), from.get(..n)) {
        to.copy_from_slice(from);
    }
    n
}

/// What a board support crate provides; stand-ins so that this builds.
mod board {
    use core::task::{Context, Waker};
    use embassy_net::driver::{Capabilities, Driver, HardwareAddress, LinkState, RxToken, TxToken};

    /// A network interface whose link never comes up.
    pub struct Nic;

    /// A frame buffer token (never handed out by [`Nic`]).
    pub struct Token;

    impl RxToken for Token {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, f: F) -> R {
            f(&mut [])
        }
    }

    impl TxToken for Token {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, _len: usize, f: F) -> R {
            f(&mut [])
        }
    }

    impl Driver for Nic {
        type RxToken<'a> = Token;
        type TxToken<'a> = Token;

        fn receive(&mut self, _cx: &mut Context) -> Option<(Token, Token)> {
            None
        }

        fn transmit(&mut self, _cx: &mut Context) -> Option<Token> {
            None
        }

        fn link_state(&mut self, _cx: &mut Context) -> LinkState {
            LinkState::Down
        }

        fn capabilities(&self) -> Capabilities {
            let mut caps = Capabilities::default();
            caps.max_transmission_unit = 1514;
            caps
        }

        fn hardware_address(&self) -> HardwareAddress {
            HardwareAddress::Ethernet([0x02, 0, 0, 0, 0, 0x01])
        }
    }

    /// A board seeds this from its hardware random number generator.
    pub fn random_seed() -> u64 {
        0x5eed
    }

    /// A clock that stays at zero (a board drives it from a hardware timer
    /// and wakes `schedule_wake`'s waker at `at`).
    struct Clock;

    impl embassy_time_driver::Driver for Clock {
        fn now(&self) -> u64 {
            0
        }

        fn schedule_wake(&self, _at: u64, waker: &Waker) {
            waker.wake_by_ref();
        }
    }

    embassy_time_driver::time_driver_impl!(static CLOCK: Clock = Clock);
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}
