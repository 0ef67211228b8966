#!/usr/bin/env node
// Load test for our chat_server example, with Node `ws` clients (permessage-deflate off, so the
// server's work is the fan-out, not compression).
//
//   node chat_load_test.js --bin PATH/chat_server [--redis redis://127.0.0.1:PORT/]
//                          [--clients 1000] [--senders 10] [--messages 20] [--rss-growth 10]
//                          [--rounds 2] [--malloc-arena-max 1]
//
// Starts the servers itself: two processes on the Redis with --redis, one without. Then one page
// sends 100 messages, so that the room's history (the last 100 messages, sent in every welcome)
// is as full in round 1 as in round 2 and the rounds do the same work. Then:
//   1. fan-out, twice: CLIENTS pages join, spread evenly over the processes; SENDERS of them send
//      MESSAGES messages each; every page must receive every message exactly once (no loss, no
//      duplicate). Prints the deliveries per second.
//   2. a page that never reads: one more page joins and stops reading (its socket is paused);
//      a sender floods 4 KB messages in bursts, each burst waiting for 20 reading pages to get
//      it, until the room announces that the silent page left. The reading pages must get every
//      message exactly once; the burst round trips before and during the flood are printed.
// The servers' RSS (VmRSS) is printed idle, before each round, with every page connected, and
// after they all left, and their peak (VmHWM) at the end. Memory one round leaves behind must be
// reused by the next: after round 2 each server's RSS may exceed its RSS after round 1 by at most
// --rss-growth percent (default 10), or the test fails. The servers run with MALLOC_ARENA_MAX=1
// (--malloc-arena-max N, or `default` to leave glibc's choice): with an arena per runtime thread,
// glibc keeps freed memory in each and RSS creeps up for several rounds (measured after rounds 1
// to 4: 20.3, 21.5, 22.7, 23.7 MiB; with one arena 20.0, 20.7, 20.7, 20.7 MiB), which would hide a
// leak of a few KiB per page. Before the presence hashes were edited field by field, every leave
// rewrote the whole hash and RSS went 53 -> 68 MiB (A) and 61 -> 76 MiB (B) from round 1 to 2.
// Exits 1 when a check fails. Nothing here asserts a speed; STEP_TIMEOUT_MS bounds each wait.
'use strict';

const { spawn } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');
const WebSocket = require('ws');

const opts = { clients: 1000, senders: 10, messages: 20, 'rss-growth': 10, rounds: 2, 'malloc-arena-max': '1' };
let bin = null;
let redis = null;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 1) {
  const a = argv[i];
  if (a === '--bin') bin = argv[++i];
  else if (a === '--redis') redis = argv[++i];
  else if (['--clients', '--senders', '--messages', '--rss-growth', '--rounds'].includes(a)) opts[a.slice(2)] = Number(argv[++i]);
  else if (a === '--malloc-arena-max') opts['malloc-arena-max'] = argv[++i];
  else bin = null;
}
if (!bin || !(opts.clients > 0) || !(opts.senders > 0) || opts.senders > opts.clients || !(opts['rss-growth'] >= 0) || !(opts.rounds >= 2)
  || !/^([1-9]\d*|default)$/.test(opts['malloc-arena-max'] || '')) {
  console.error('usage: node chat_load_test.js --bin PATH/chat_server [--redis URL] [--clients N] [--senders N] [--messages N] [--rss-growth PERCENT] [--rounds N] [--malloc-arena-max N|default]');
  process.exit(2);
}
const STEP_MS = Number(process.env.STEP_TIMEOUT_MS || 60000);
const LOGS = process.env.ARTIFACT_DIR || os.tmpdir();

const log = (msg) => console.log(`[load] ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function serving(url) {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => { res.resume(); resolve(res.statusCode === 200); });
    req.on('error', () => resolve(false));
    req.setTimeout(1000, () => req.destroy());
  });
}

async function startServer(name) {
  const port = await freePort();
  const args = [`127.0.0.1:${port}`];
  if (redis) args.push('--redis', redis);
  const file = path.join(LOGS, `chat-load-${name}.log`);
  const out = fs.openSync(file, 'w');
  const env = { ...process.env };
  if (opts['malloc-arena-max'] !== 'default') env.MALLOC_ARENA_MAX = opts['malloc-arena-max'];
  const child = spawn(bin, args, { stdio: ['ignore', out, out], env });
  fs.closeSync(out);
  const url = `http://127.0.0.1:${port}/`;
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode} (log: ${file})`);
    if (await serving(url)) return { name, child, ws: `ws://127.0.0.1:${port}/ws`, log: file };
    await sleep(100);
  }
  throw new Error(`${name} did not start (log: ${file})`);
}

/** A figure of /proc/PID/status, in KiB: VmRSS (resident now) or VmHWM (the peak). */
function statusKiB(pid, field) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
  return m ? Number(m[1]) : NaN;
}

const rssKiB = (pid) => statusKiB(pid, 'VmRSS');
const mib = (kib) => `${(kib / 1024).toFixed(1)} MiB`;

function rss(servers) {
  return servers.map((s) => `${s.name} ${mib(rssKiB(s.child.pid))}`).join(', ');
}

async function until(what, fn) {
  const deadline = Date.now() + STEP_MS;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A chat page without the page: joins as `name` and counts what it receives. */
function joinAs(url, name) {
  return new Promise((resolve, reject) => {
    const sock = new WebSocket(url, { perMessageDeflate: false });
    const client = {
      name,
      sock,
      got: new Map(), // message text -> times received
      onMessage: null,
      left: new Set(),
      closed: null,
    };
    sock.on('message', (data) => {
      const m = JSON.parse(String(data));
      if (m.type === 'welcome') resolve(client);
      else if (m.type === 'message') {
        client.got.set(m.text, (client.got.get(m.text) || 0) + 1);
        if (client.onMessage) client.onMessage(m);
      } else if (m.type === 'leave') client.left.add(m.name);
      else if (m.type === 'error') reject(new Error(`${name}: server error ${m.error}`));
    });
    sock.on('close', (code) => { client.closed = code; });
    sock.on('error', reject);
    sock.on('open', () => sock.send(JSON.stringify({ type: 'join', name, client: name })));
  });
}

function stats(values) {
  const v = [...values].sort((x, y) => x - y);
  const at = (q) => v[Math.min(v.length - 1, Math.floor(q * v.length))];
  return `median ${at(0.5).toFixed(1)} ms, p99 ${at(0.99).toFixed(1)} ms, max ${v[v.length - 1].toFixed(1)} ms`;
}

async function fanOut(servers, nonce) {
  const clients = [];
  const t0 = Date.now();
  for (let i = 0; i < opts.clients; i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(i + 50, opts.clients); j += 1) {
      batch.push(joinAs(servers[j % servers.length].ws, `load-${nonce}-${j}`));
    }
    clients.push(...(await Promise.all(batch)));
  }
  log(`${clients.length} pages joined over ${servers.length} process(es) in ${Date.now() - t0} ms; RSS ${rss(servers)}`);
  await sleep(1000); // let the join notices and online lists settle

  const texts = [];
  for (let s = 0; s < opts.senders; s += 1) {
    for (let k = 0; k < opts.messages; k += 1) texts.push(`fan-out ${nonce} from ${s} #${k}`);
  }
  const expected = texts.length * clients.length;
  let delivered = 0;
  for (const c of clients) c.onMessage = (m) => { if (m.text.startsWith(`fan-out ${nonce}`)) delivered += 1; };
  const start = process.hrtime.bigint();
  for (let k = 0; k < opts.messages; k += 1) {
    for (let s = 0; s < opts.senders; s += 1) {
      clients[s].sock.send(JSON.stringify({ type: 'message', text: `fan-out ${nonce} from ${s} #${k}` }));
    }
  }
  await until(`${expected} deliveries (have ${delivered})`, () => delivered >= expected);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await sleep(500); // a duplicate would arrive now
  for (const c of clients) {
    for (const t of texts) {
      const n = c.got.get(t) || 0;
      if (n !== 1) throw new Error(`${c.name} received ${JSON.stringify(t)} ${n} times, expected once`);
    }
  }
  log(`fan-out: ${texts.length} messages x ${clients.length} pages = ${expected} deliveries, each exactly once, `
    + `in ${seconds.toFixed(2)} s = ${Math.round(expected / seconds)} deliveries/s; RSS ${rss(servers)}`);
  return clients;
}

async function silentPage(servers, nonce) {
  const readers = [];
  for (let i = 0; i < 20; i += 1) readers.push(await joinAs(servers[i % servers.length].ws, `reader-${nonce}-${i}`));
  const sender = readers[0];
  const silentName = `silent-${nonce}`;
  const payload = crypto.randomBytes(3000).toString('base64').slice(0, 3900); // incompressible
  let seq = 0;
  const sentAt = new Map();
  const roundTrips = { before: [], during: [] };
  const burst = async (phase, size) => {
    const texts = [];
    for (let i = 0; i < size; i += 1) {
      const text = `flood ${nonce} ${seq} ${payload}`;
      seq += 1;
      texts.push(text);
      sentAt.set(text, process.hrtime.bigint());
      sender.sock.send(JSON.stringify({ type: 'message', text }));
    }
    const t = process.hrtime.bigint();
    await until(`a burst to reach the ${readers.length} reading pages`, () => readers.every((r) => texts.every((x) => r.got.has(x))));
    roundTrips[phase].push(Number(process.hrtime.bigint() - t) / 1e6);
  };
  for (let i = 0; i < 20; i += 1) await burst('before', 50); // baseline, before the silent page joins
  const silent = await joinAs(servers[0].ws, silentName);
  silent.sock.pause(); // stops reading from the socket: its kernel buffers fill, then its queue
  await sleep(600);
  // The silent page's kernel buffers hold a few MB: flood until the room says it left.
  const started = Date.now();
  let bursts = 0;
  while (!readers[1].left.has(silentName)) {
    if (Date.now() - started > STEP_MS) throw new Error('the silent page was never dropped');
    await burst('during', 50);
    bursts += 1;
  }
  const droppedAfter = Date.now() - started;
  await sleep(500);
  for (const r of readers) {
    for (const text of sentAt.keys()) {
      const n = r.got.get(text) || 0;
      if (n !== 1) throw new Error(`${r.name} received a flood message ${n} times, expected once`);
    }
  }
  log(`silent page: dropped (the room announced it left) after ${bursts} bursts of 50 x 4 KB messages, `
    + `${(droppedAfter / 1000).toFixed(1)} s into the flood; ${seq} messages reached all ${readers.length} reading pages exactly once`);
  log(`50-message burst round trip to all readers without the silent page: ${stats(roundTrips.before)}`);
  log(`the same while the silent page filled up and was dropped: ${stats(roundTrips.during)}`);
  silent.sock.resume();
  await until('the silent page to see its connection end', () => silent.closed !== null);
  log(`the silent page's connection ended with code ${silent.closed}`);
  return [...readers, silent];
}

/** Sends HISTORY messages from one page, so that every welcome carries a full history. */
async function fillHistory(servers, nonce) {
  const HISTORY = 100;
  const page = await joinAs(servers[0].ws, `history-${nonce}`);
  for (let k = 0; k < HISTORY; k += 1) {
    page.sock.send(JSON.stringify({ type: 'message', text: `history ${nonce} #${k}` }));
  }
  await until(`the ${HISTORY} history messages to come back`, () => page.got.has(`history ${nonce} #${HISTORY - 1}`));
  page.sock.close(1000);
  await until('the history page to close', () => page.closed !== null);
  await sleep(500);
  log(`history filled with ${HISTORY} messages; RSS ${rss(servers)}`);
}

async function main() {
  const nonce = `${process.pid.toString(36)}${Date.now().toString(36)}`;
  const servers = [await startServer('A')];
  if (redis) servers.push(await startServer('B'));
  try {
    await sleep(300);
    log(`servers idle (MALLOC_ARENA_MAX=${opts['malloc-arena-max']}): RSS ${rss(servers)}`);
    // Two rounds: memory that one round leaves behind must be reused by the next.
    await fillHistory(servers, nonce);
    const after = [];
    for (let round = 1; round <= opts.rounds; round += 1) {
      log(`round ${round}: before: RSS ${rss(servers)}`);
      const clients = await fanOut(servers, `${nonce}r${round}`);
      for (const c of clients) c.sock.close(1000);
      await until('every fan-out page to close', () => clients.every((c) => c.closed !== null));
      await sleep(1500);
      after.push(servers.map((s) => rssKiB(s.child.pid)));
      log(`round ${round}: after all ${clients.length} pages left: RSS ${rss(servers)}`);
    }
    const growth = opts['rss-growth'];
    for (const [i, s] of servers.entries()) {
      const [one, last] = [after[0][i], after[after.length - 1][i]];
      const bound = one * (1 + growth / 100);
      const verdict = `${s.name}: ${mib(last)} after round ${after.length}, ${mib(one)} after round 1, `
        + `bound ${mib(bound)} (+${growth} %)`;
      if (!(last <= bound)) throw new Error(`RSS kept growing: ${verdict}`);
      log(`RSS flat across rounds: ${verdict}`);
    }
    const more = await silentPage(servers, nonce);
    for (const c of more) c.sock.terminate();
    await sleep(1000);
    log(`at the end: RSS ${rss(servers)}; peak ${servers.map((s) => `${s.name} ${mib(statusKiB(s.child.pid, 'VmHWM'))}`).join(', ')}`);
    for (const s of servers) {
      if (s.child.exitCode !== null) throw new Error(`${s.name} exited during the test (log: ${s.log})`);
    }
    log('all load checks passed');
  } finally {
    for (const s of servers) s.child.kill('SIGTERM');
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.log(`FAIL load: ${e.message}`);
    process.exit(1);
  },
);
