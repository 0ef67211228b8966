#!/usr/bin/env python3
"""A Python `websockets` client that runs the interop matrix against an echo server (ours).

    python ws_client_matrix.py ws://127.0.0.1:PORT/ [--deflate]
    python ws_client_matrix.py wss://localhost:PORT/ --ca CERT.pem [--deflate]

With ``--ca`` the connections go over TLS, trusting only the certificate(s) in that PEM file.

Checks, each with its own deadline: text, binary, empty text and binary, 1 MiB binary and text,
fragmented text (a UTF-8 code point split across fragments) and binary, ping -> pong with the
same payload, and close(4000) -> the echoed close frame carries 4000; then, each on a fresh
connection, two rule breaks made while still sending, which the server must answer with a Close
this client actually reads (not a reset, seen as 1006): one 80 MiB binary frame (above
echo_server's 64 MiB frame limit) -> 1009, and a 20 MiB text message with an invalid UTF-8 byte at
offset 10 (sent as raw bytes with ``text=True``, which websockets does not validate) -> 1007.
Without --deflate the client offers no extension (``compression=None``) and every connection
asserts that none was agreed; with --deflate it offers permessage-deflate (websockets' default)
and every connection asserts from the response's ``Sec-WebSocket-Extensions`` header that the
server agreed, so the whole matrix runs compressed both ways.
Prints ``ok <check>`` / ``FAIL <check>: <why>`` per check; exits 1 on any mismatch.
"""

import asyncio
import os
import ssl
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

STEP = float(os.environ.get("STEP_TIMEOUT_S", "10"))


def describe(msg):
    """A short description of a received message for error output."""
    kind = "text" if isinstance(msg, str) else "binary"
    size = len(msg.encode()) if isinstance(msg, str) else len(msg)
    return f"{kind} message of {size} bytes"


async def expect(ws, want, what):
    """Receive one message and compare its type and payload with ``want``."""
    got = await asyncio.wait_for(ws.recv(), STEP)
    if type(got) is not type(want):
        raise AssertionError(f"expected {describe(want)} for {what}, got {describe(got)}")
    if got != want:
        a = got.encode() if isinstance(got, str) else got
        b = want.encode() if isinstance(want, str) else want
        i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
        raise AssertionError(f"payload mismatch: got {len(a)} bytes, want {len(b)}, first difference at {i}")


async def main():
    args = [a for a in sys.argv[1:] if a != "--deflate"]
    deflate = "--deflate" in sys.argv[1:]
    # --ca CERT.pem: a wss:// URL, trusting only the certificate(s) in that file.
    tls = None
    if "--ca" in args:
        at = args.index("--ca")
        if at + 1 >= len(args):
            print("--ca needs a PEM file", file=sys.stderr)
            return 2
        tls = ssl.create_default_context(cafile=args[at + 1])
        del args[at : at + 2]
    if not args:
        print("usage: ws_client_matrix.py ws[s]://HOST:PORT/path [--ca CERT.pem] [--deflate]", file=sys.stderr)
        return 2
    url = args[0]
    failures = []
    ws = None
    announced = False

    async def open_connection():
        # websockets offers permessage-deflate by default; the plain run turns it off. Either way
        # the server's answer must match what was offered.
        nonlocal announced
        conn = await asyncio.wait_for(
            connect(
                url,
                max_size=64 * 1024 * 1024,
                ping_interval=None,
                open_timeout=STEP,
                compression="deflate" if deflate else None,
                **({"ssl": tls} if tls else {}),
            ),
            STEP,
        )
        agreed = conn.response.headers.get("Sec-WebSocket-Extensions")
        if deflate != (agreed is not None and agreed.startswith("permessage-deflate")):
            conn.transport.abort()
            raise AssertionError(f"negotiated extensions {agreed!r} (deflate wanted: {deflate})")
        if not announced:
            print(f"ok negotiated extensions: {agreed!r}", flush=True)
            announced = True
        return conn

    async def check(name, fn):
        # A failed check drops its connection; the next check starts on a fresh one, so one
        # failure does not cascade into the rest.
        nonlocal ws
        try:
            if ws is None:
                ws = await open_connection()
            await fn()
            print(f"ok {name}", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported, not raised
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            failures.append(name)
            if ws is not None:
                ws.transport.abort()
            ws = None

    try:
        ws = await open_connection()
    except Exception as e:  # noqa: BLE001
        print(f"FAIL connect: {type(e).__name__}: {e}", flush=True)
        return 1

    async def text():
        await ws.send("hello from python websockets ✓")
        await expect(ws, "hello from python websockets ✓", "text echo")

    async def binary():
        b = bytes([0, 1, 2, 0xFE, 0xFF, 0x80, 0x7F])
        await ws.send(b)
        await expect(ws, b, "binary echo")

    async def empty_text():
        await ws.send("")
        await expect(ws, "", "empty text echo")

    async def empty_binary():
        await ws.send(b"")
        await expect(ws, b"", "empty binary echo")

    async def mib_binary():
        b = bytes((i * 31 + (i >> 8)) & 0xFF for i in range(1 << 20))
        await ws.send(b)
        await expect(ws, b, "1 MiB binary echo")

    async def mib_text():
        unit = "abcdefghijklmnopqrstuvwxyz0123456789\u00e9\u4e2d\U0001F600"
        # At most 1 MiB of UTF-8, cut on a code point boundary.
        s = (unit * ((1 << 20) // len(unit) + 1)).encode()[: 1 << 20].decode(errors="ignore")
        await ws.send(s)
        await expect(ws, s, "1 MiB text echo")

    async def fragmented_text():
        whole = "frag-\u00e9-\u4e2d-\U0001F600-end".encode()
        cuts = [0, 6, 10, 15, len(whole)]
        pieces = [whole[cuts[i] : cuts[i + 1]] for i in range(len(cuts) - 1)]
        await ws.send(pieces, text=True)
        await expect(ws, whole.decode(), "fragmented text echo")

    async def fragmented_str():
        await ws.send(["py-", "frag", "", "mented"])
        await expect(ws, "py-fragmented", "fragmented str echo")

    async def fragmented_binary():
        pieces = [b"\x01\x02\x03", b"", b"\x09" * 70000, b"\x04"]
        await ws.send(pieces)
        await expect(ws, b"".join(pieces), "fragmented binary echo")

    async def ping_pong():
        waiter = await ws.ping(b"py-ping-\x01\xff")
        # The pong waiter resolves only on a pong whose payload matches this ping's.
        await asyncio.wait_for(waiter, STEP)

    async def close_4000():
        await asyncio.wait_for(ws.close(code=4000, reason="python done"), STEP)
        rcvd = ws.protocol.close_rcvd
        if rcvd is None:
            raise AssertionError(f"no close frame received (close_code={ws.close_code})")
        if rcvd.code != 4000:
            raise AssertionError(f"echoed close code {rcvd.code} ({rcvd.reason!r}), want 4000")
        if ws.close_code != 4000:
            raise AssertionError(f"close_code {ws.close_code}, want 4000")

    async def expect_close(message, text, code):
        # The server fails the connection while the payload is still arriving; it must drain the
        # rest (lingering close) so that its Close reaches us instead of a reset.
        nonlocal ws
        try:
            await asyncio.wait_for(ws.send(message, text=text), STEP)
        except ConnectionClosed:
            pass  # the Close may arrive before the send completes
        try:
            got = await asyncio.wait_for(ws.recv(), STEP)
            raise AssertionError(f"expected close {code}, got {describe(got)}")
        except ConnectionClosed:
            pass
        await asyncio.wait_for(ws.wait_closed(), STEP)
        rcvd = ws.protocol.close_rcvd
        if rcvd is None:
            raise AssertionError(f"no close frame received (close_code={ws.close_code})")
        if rcvd.code != code:
            raise AssertionError(f"close code {rcvd.code} ({rcvd.reason!r}), want {code}")
        # asyncio reads the Close even when a reset follows it, so also require that the
        # connection ended without one (no ConnectionResetError / BrokenPipeError).
        if ws.connection_exc is not None:
            exc = ws.connection_exc
            raise AssertionError(f"connection ended with {type(exc).__name__}: {exc}")
        ws = None  # closed: the next check opens a fresh connection

    async def oversized_frame():
        await expect_close(bytes(80 << 20), False, 1009)

    async def bad_utf8_in_large_text():
        bad = bytearray(b"a" * (20 << 20))
        bad[10] = 0xFF
        await expect_close(bytes(bad), True, 1007)

    await check("text", text)
    await check("binary", binary)
    await check("empty text", empty_text)
    await check("empty binary", empty_binary)
    await check("1 MiB binary", mib_binary)
    await check("1 MiB text", mib_text)
    await check("fragmented text (code point split across fragments)", fragmented_text)
    await check("fragmented str", fragmented_str)
    await check("fragmented binary", fragmented_binary)
    await check("ping -> pong", ping_pong)
    await check("close 4000 echoed", close_4000)
    ws = None  # closed by the check above (or dropped by its failure)
    await check("80 MiB binary frame (limit 64 MiB) -> close 1009", oversized_frame)
    await check("bad UTF-8 at offset 10 of a 20 MiB text -> close 1007", bad_utf8_in_large_text)

    if failures:
        print(f"python websockets client matrix: {len(failures)} check(s) failed: {'; '.join(failures)}")
        return 1
    print(f"python websockets client matrix{' (permessage-deflate)' if deflate else ''}: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
