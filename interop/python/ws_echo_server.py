#!/usr/bin/env python3
"""A Python `websockets` (asyncio) echo server used as an interop peer for wsproto.

    python ws_echo_server.py PORT [HOST] [--deflate]

Without --deflate the server declines every extension (plain frames); with it, it accepts
permessage-deflate (websockets' default compression).

Listens on HOST (default 127.0.0.1; loopback only) and echoes every message with the same type
(text as text, binary as binary). A text message ``close:NNNN`` makes the server close the
connection with code NNNN instead of echoing. If the client offers subprotocols, the first one is
selected. Prints ``READY <port>`` on stdout once it is listening.
"""

import asyncio
import ipaddress
import re
import signal
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

CLOSE_RE = re.compile(r"close:(\d{4})")


def select_subprotocol(connection, subprotocols):
    """Accept the first subprotocol the client offers, or none if it offers none."""
    return subprotocols[0] if subprotocols else None


async def echo(ws):
    """Echo messages until the peer closes; honour ``close:NNNN`` requests."""
    try:
        async for message in ws:
            if isinstance(message, str):
                m = CLOSE_RE.fullmatch(message)
                if m:
                    code = int(m.group(1))
                    await ws.close(code=code, reason=f"requested {code}")
                    return
            await ws.send(message)
    except ConnectionClosed:
        pass


async def main():
    args = [a for a in sys.argv[1:] if a != "--deflate"]
    deflate = "--deflate" in sys.argv[1:]
    port = int(args[0]) if args else 0
    host = args[1] if len(args) > 1 else "127.0.0.1"
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        print(f"refusing to listen on non-loopback address {host}", file=sys.stderr)
        sys.exit(2)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with serve(
        echo,
        host,
        port,
        select_subprotocol=select_subprotocol,
        max_size=64 * 1024 * 1024,
        compression="deflate" if deflate else None,
    ) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"READY {bound}", flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main())
