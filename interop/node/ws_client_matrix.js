#!/usr/bin/env node
// A Node `ws` client that runs the interop matrix against an echo server (ours, normally).
//
//   node ws_client_matrix.js ws://127.0.0.1:PORT/ [--deflate]
//   node ws_client_matrix.js wss://localhost:PORT/ --ca CERT.pem [--deflate]
//
// With --ca the connections go over TLS and trust only the certificate(s) in that PEM file.
//
// Without --deflate the client offers no extension and checks that none was agreed (plain
// frames). With --deflate it offers permessage-deflate (ws's perMessageDeflate, compressing
// every message: threshold 0) and checks on every connection that the server agreed to it
// (`ws.extensions`), so the whole matrix runs compressed both ways.
//
// Checks, each with its own deadline: text, binary, empty text and binary, 1 MiB binary and text,
// fragmented text (with a UTF-8 code point split across fragments) and binary, a ping between two
// fragments, ping -> pong with the same payload, close(4000) -> the echoed close frame carries
// 4000; then, each on a fresh connection, two rule breaks made while still sending, which the
// server must answer with a Close this client actually reads (not a reset, seen as 1006): one
// 80 MiB binary frame (above echo_server's 64 MiB frame limit) -> 1009, and a 20 MiB text message
// with an invalid UTF-8 byte at offset 10 -> 1007.
// Prints `ok <check>` / `FAIL <check>: <why>` per check; exits 1 on any mismatch.
'use strict';

const fs = require('fs');
const WebSocket = require('ws');

const url = process.argv[2];
if (!url) {
  console.error('usage: node ws_client_matrix.js ws://HOST:PORT/path');
  process.exit(2);
}
const DEFLATE = process.argv.includes('--deflate');
const caAt = process.argv.indexOf('--ca');
const CA = caAt > 0 ? fs.readFileSync(process.argv[caAt + 1]) : undefined;
const STEP_MS = Number(process.env.STEP_TIMEOUT_MS || 10000);

/** Turns the socket's callbacks into an awaitable queue of events. */
function eventQueue(ws) {
  const items = [];
  const waiters = [];
  const push = (ev) => {
    const w = waiters.shift();
    if (w) w(ev);
    else items.push(ev);
  };
  ws.on('message', (data, isBinary) => push({ type: 'message', data, isBinary }));
  ws.on('pong', (data) => push({ type: 'pong', data }));
  ws.on('close', (code, reason) => push({ type: 'close', code, reason: reason.toString() }));
  ws.on('error', (err) => push({ type: 'error', err }));
  return {
    next(what) {
      if (items.length) return Promise.resolve(items.shift());
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          const i = waiters.indexOf(wrapped);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`timed out after ${STEP_MS} ms waiting for ${what}`));
        }, STEP_MS);
        const wrapped = (ev) => {
          clearTimeout(t);
          resolve(ev);
        };
        waiters.push(wrapped);
      });
    },
  };
}

function describe(ev) {
  if (ev.type === 'message') {
    return `${ev.isBinary ? 'binary' : 'text'} message of ${ev.data.length} bytes`;
  }
  if (ev.type === 'close') return `close ${ev.code} ${JSON.stringify(ev.reason)}`;
  if (ev.type === 'error') return `error ${ev.err.message}`;
  return ev.type;
}

async function expectMessage(q, wantBinary, want, what) {
  const ev = await q.next(what);
  if (ev.type !== 'message') throw new Error(`expected ${what}, got ${describe(ev)}`);
  if (ev.isBinary !== wantBinary) {
    throw new Error(`expected ${wantBinary ? 'binary' : 'text'}, got ${describe(ev)}`);
  }
  if (!Buffer.from(ev.data).equals(want)) {
    const got = Buffer.from(ev.data);
    let i = 0;
    while (i < got.length && i < want.length && got[i] === want[i]) i++;
    throw new Error(`payload mismatch: got ${got.length} bytes, want ${want.length}, first difference at ${i}`);
  }
}

let announced = false;

/** Opens a connection and its event queue; checks the negotiated extension. */
async function connect() {
  const perMessageDeflate = DEFLATE ? { threshold: 0 } : false;
  const tls = CA ? { ca: CA } : {};
  const ws = new WebSocket(url, { perMessageDeflate, handshakeTimeout: STEP_MS, maxPayload: 64 * 1024 * 1024, ...tls });
  const q = eventQueue(ws);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake answered ${res.statusCode}`)));
  });
  const agreed = ws.extensions;
  if (DEFLATE !== agreed.includes('permessage-deflate')) {
    ws.terminate();
    throw new Error(`negotiated extensions ${JSON.stringify(agreed)} (deflate wanted: ${DEFLATE})`);
  }
  if (!announced) {
    console.log(`ok negotiated extensions: ${JSON.stringify(agreed)}`);
    announced = true;
  }
  return { ws, q };
}

async function main() {
  let conn = await connect();
  // Every check uses `ws` and `q`; a failed check drops its connection and the next one starts
  // on a fresh connection, so one failure does not cascade into the rest.
  let ws = conn.ws;
  let q = conn.q;

  const failures = [];
  const check = async (name, fn) => {
    try {
      if (!conn) {
        conn = await connect();
        ws = conn.ws;
        q = conn.q;
      }
      await fn();
      console.log(`ok ${name}`);
    } catch (e) {
      console.log(`FAIL ${name}: ${e.message}`);
      failures.push(name);
      if (conn) conn.ws.terminate();
      conn = null;
    }
  };

  await check('text', async () => {
    ws.send('hello from node ws ✓');
    await expectMessage(q, false, Buffer.from('hello from node ws ✓'), 'text echo');
  });
  await check('binary', async () => {
    const b = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x80, 0x7f]);
    ws.send(b, { binary: true });
    await expectMessage(q, true, b, 'binary echo');
  });
  await check('empty text', async () => {
    ws.send('');
    await expectMessage(q, false, Buffer.alloc(0), 'empty text echo');
  });
  await check('empty binary', async () => {
    ws.send(Buffer.alloc(0), { binary: true });
    await expectMessage(q, true, Buffer.alloc(0), 'empty binary echo');
  });
  await check('1 MiB binary', async () => {
    const b = Buffer.alloc(1 << 20);
    for (let i = 0; i < b.length; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
    ws.send(b, { binary: true });
    await expectMessage(q, true, b, '1 MiB binary echo');
  });
  await check('1 MiB text', async () => {
    // At most 1 MiB of UTF-8, cut on a code point boundary.
    const all = Buffer.from('abcdefghijklmnopqrstuvwxyz0123456789\u00e9\u4e2d\ud83d\ude00'.repeat(1 << 15), 'utf8');
    let end = 1 << 20;
    while ((all[end] & 0xc0) === 0x80) end--;
    const text = all.subarray(0, end).toString('utf8');
    ws.send(text);
    await expectMessage(q, false, Buffer.from(text, 'utf8'), '1 MiB text echo');
  });
  await check('fragmented text (code point split across fragments)', async () => {
    const whole = Buffer.from('frag-\u00e9-\u4e2d-\ud83d\ude00-end', 'utf8');
    // Cut inside the two-byte é, inside the three-byte 中 and inside the four-byte emoji.
    const cuts = [6, 10, 15, whole.length];
    let start = 0;
    for (let i = 0; i < cuts.length; i++) {
      ws.send(whole.subarray(start, cuts[i]), { binary: false, fin: i === cuts.length - 1 });
      start = cuts[i];
    }
    await expectMessage(q, false, whole, 'fragmented text echo');
  });
  await check('fragmented binary', async () => {
    const pieces = [Buffer.from([1, 2, 3]), Buffer.alloc(0), Buffer.alloc(70000, 9), Buffer.from([4])];
    pieces.forEach((p, i) => ws.send(p, { binary: true, fin: i === pieces.length - 1 }));
    await expectMessage(q, true, Buffer.concat(pieces), 'fragmented binary echo');
  });
  await check('ping between fragments', async () => {
    ws.send(Buffer.from('first half, '), { binary: false, fin: false });
    ws.ping(Buffer.from('mid'));
    ws.send(Buffer.from('second half'), { binary: false, fin: true });
    const seen = [await q.next('pong or echo'), await q.next('pong or echo')];
    const pong = seen.find((e) => e.type === 'pong');
    const msg = seen.find((e) => e.type === 'message');
    if (!pong || !msg) throw new Error(`expected a pong and a message, got ${seen.map(describe).join(', ')}`);
    if (pong.data.toString() !== 'mid') throw new Error(`pong payload ${JSON.stringify(pong.data.toString())}`);
    if (msg.isBinary || msg.data.toString() !== 'first half, second half') {
      throw new Error(`echo was ${describe(msg)}: ${JSON.stringify(msg.data.toString().slice(0, 60))}`);
    }
  });
  await check('ping -> pong', async () => {
    const payload = Buffer.from('node-ping-\u0001\u00ff');
    ws.ping(payload);
    const ev = await q.next('pong');
    if (ev.type !== 'pong') throw new Error(`expected pong, got ${describe(ev)}`);
    if (!Buffer.from(ev.data).equals(payload)) throw new Error(`pong payload ${ev.data.toString('hex')} != ${payload.toString('hex')}`);
  });
  await check('close 4000 echoed', async () => {
    ws.close(4000, 'node done');
    const ev = await q.next('close');
    if (ev.type !== 'close') throw new Error(`expected close, got ${describe(ev)}`);
    if (ev.code !== 4000) throw new Error(`close code ${ev.code}, want 4000 (reason ${JSON.stringify(ev.reason)})`);
  });

  conn = null; // closed by the check above (or dropped by its failure)

  // The server fails the connection while the payload is still arriving; it must drain the rest
  // (lingering close) so that its Close reaches us. `ws` sends the whole frame regardless.
  const expectClose = async (code, what) => {
    const ev = await q.next(`close ${code}`);
    if (ev.type !== 'close') throw new Error(`expected close ${code} for ${what}, got ${describe(ev)}`);
    if (ev.code !== code) throw new Error(`close code ${ev.code}, want ${code} (reason ${JSON.stringify(ev.reason)})`);
    conn = null; // closed: the next check opens a fresh connection
  };
  await check('80 MiB binary frame (limit 64 MiB) -> close 1009', async () => {
    ws.send(Buffer.alloc(80 << 20, 0x5a), { binary: true });
    await expectClose(1009, '80 MiB frame');
  });
  await check('bad UTF-8 at offset 10 of a 20 MiB text -> close 1007', async () => {
    const bad = Buffer.alloc(20 << 20, 0x61);
    bad[10] = 0xff;
    ws.send(bad, { binary: false });
    await expectClose(1007, 'invalid UTF-8');
  });

  if (conn && conn.ws.readyState !== WebSocket.CLOSED) conn.ws.terminate();
  if (failures.length) {
    console.log(`node ws client matrix: ${failures.length} check(s) failed: ${failures.join('; ')}`);
    process.exit(1);
  }
  console.log(`node ws client matrix${DEFLATE ? ' (permessage-deflate)' : ''}: all checks passed`);
  process.exit(0);
}

main().catch((e) => {
  console.log(`FAIL connect/setup: ${e.message}`);
  process.exit(1);
});
