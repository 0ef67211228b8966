#!/usr/bin/env node
// Drives our chat_server example with real headless Chromium (Debian's, via playwright-core).
//
//   node chat_browser_test.js --bin PATH/chat_server [--redis redis://127.0.0.1:PORT/]
//
// Starts the server itself, because one check restarts it: one process without --redis, two
// processes on the same Redis with it (page "Ada" on the first, "Bob" and the late joiner on the
// second, so every check below crosses processes). Checks:
//   * the name prompt: each page picks a name, and a reload joins again without asking;
//   * both sockets negotiated permessage-deflate;
//   * each page sees the other's join notice, the online list and count, and both messages with
//     the sender's name and a time; its own messages are styled apart (`.own`), others' are not;
//   * a page that joins late gets the earlier messages as history; its leaving is announced;
//   * the server answers bad input (unknown type, bad JSON, bad names, oversize) with an error
//     message and keeps serving, and closes with 1009 above the frame limit;
//   * Ada's server process is stopped: her page shows "reconnecting in N s"; a message she types
//     meanwhile is marked as waiting; the process is started again on the same port, her page
//     reconnects by itself and the queued message reaches Bob and is marked sent.
//   * one name per person: a join with a name someone else holds (any case, on the other process
//     with Redis) gets a `name_taken` error; the page shows it in the name prompt and joins under
//     the next name it is given; a second tab of the same browser shares its name;
//   * a message typed while offline that the server never confirms (Dee's socket is routed
//     through Playwright, which drops it on its way out after the reconnect) is marked "not sent"
//     once the page's confirmation timeout runs out (shortened with `?confirm_ms=`).
// Screenshots go to $CHAT_SCREENSHOT_DIR (default target/chat-screenshots). Exits 1 on failure.
// Environment: CHROMIUM_PATH (default /usr/bin/chromium), STEP_TIMEOUT_MS (default 15000).
'use strict';

const { spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const path = require('path');
const WebSocket = require('ws');
const { chromium } = require('playwright-core');

function usage() {
  console.error('usage: node chat_browser_test.js --bin PATH/chat_server [--redis redis://HOST:PORT/]');
  process.exit(2);
}
const argv = process.argv.slice(2);
let bin = null;
let redis = null;
for (let i = 0; i < argv.length; i += 1) {
  if (argv[i] === '--bin') bin = argv[++i];
  else if (argv[i] === '--redis') redis = argv[++i];
  else usage();
}
if (!bin) usage();

const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const STEP_MS = Number(process.env.STEP_TIMEOUT_MS || 15000);
const SHOTS = process.env.CHAT_SCREENSHOT_DIR || path.join(__dirname, '..', '..', 'target', 'chat-screenshots');
const LOGS = process.env.ARTIFACT_DIR || SHOTS;
const TAG = redis ? 'redis' : 'single';
// Dee's page gives up on an unconfirmed message after this long (the page's default is 10 s).
const CONFIRM_MS = 5000;
// Dee's messages holding this never reach the server (see openDee).
const DROP = '[dropped on the way]';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

function log(msg) {
  console.log(`[chat ${TAG}] ${msg}`);
}

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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function get(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body }));
    });
    req.on('error', reject);
    req.setTimeout(2000, () => req.destroy(new Error('timeout')));
  });
}

/** A chat_server process on a fixed port; `start` waits until it serves the page. */
class Server {
  constructor(name, port) {
    this.name = name;
    this.port = port;
    this.url = `http://127.0.0.1:${port}/`;
    this.child = null;
    this.starts = 0;
  }

  async start() {
    this.starts += 1;
    const args = [`127.0.0.1:${this.port}`];
    if (redis) args.push('--redis', redis);
    const out = fs.openSync(path.join(LOGS, `chat-${TAG}-${this.name}-${this.starts}.log`), 'w');
    this.child = spawn(bin, args, { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    const child = this.child;
    let exited = null;
    child.on('exit', (code, signal) => { exited = signal || code; });
    const deadline = Date.now() + STEP_MS;
    while (Date.now() < deadline) {
      if (exited !== null) throw new Error(`${this.name} exited (${exited}) before serving`);
      const ok = await get(this.url).then((r) => r.status === 200, () => false);
      if (ok) {
        log(`${this.name} serving on ${this.url} (pid ${child.pid})`);
        return;
      }
      await sleep(100);
    }
    throw new Error(`${this.name} did not serve ${this.url} within ${STEP_MS} ms`);
  }

  async stop() {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
    log(`${this.name} stopped`);
  }
}

async function waitFor(page, who, what, fn, arg) {
  try {
    await page.waitForFunction(fn, arg, { timeout: STEP_MS });
  } catch (e) {
    const state = await page.evaluate(() => ({
      status: document.querySelector('#status')?.textContent,
      items: Array.from(document.querySelectorAll('#messages > li')).map((li) => `${li.className}: ${li.textContent}`),
    })).catch(() => '<page gone>');
    throw new Error(`${who}: ${what}; the page holds ${JSON.stringify(state)}: ${e.message.split('\n')[0]}`);
  }
  log(`${who}: ${what}`);
}

const connected = (p, who) => waitFor(p, who, 'status reads "connected"',
  () => document.querySelector('#status').textContent.trim() === 'connected');

/** Opens the page; answers the name prompt when `name` is given. */
async function openChat(browser, who, url, name, viewport) {
  const ctx = await browser.newContext({ viewport: viewport || { width: 1100, height: 720 } });
  const page = await ctx.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') log(`${who} console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => log(`${who} page error: ${e.message}`));
  await page.goto(url, { timeout: STEP_MS, waitUntil: 'domcontentloaded' });
  if (name) {
    await page.waitForSelector('#name-dialog[open]', { timeout: STEP_MS });
    await page.fill('#name-input', name);
    await page.click('#name-ok');
  }
  await connected(page, who);
  const extensions = await page.evaluate('ws.extensions');
  if (!String(extensions).includes('permessage-deflate')) {
    throw new Error(`${who}: ws.extensions is ${JSON.stringify(extensions)}, expected permessage-deflate`);
  }
  return { ctx, page };
}

async function send(page, who, text) {
  await page.fill('#input', text, { timeout: STEP_MS });
  await page.click('#send', { timeout: STEP_MS });
  log(`${who} sent ${JSON.stringify(text.slice(0, 40))}`);
}

/** Waits for a message item from `name` holding `text`; `own` says how it must be styled. */
function expectMessage(page, who, name, text, own) {
  return waitFor(page, who, `shows ${own ? 'own' : name + "'s"} message ${JSON.stringify(text.slice(0, 30))}`,
    ([n, t, o]) => Array.from(document.querySelectorAll('#messages > li.msg')).some((li) => {
      const body = li.querySelector('.text')?.textContent;
      const from = li.querySelector('.name')?.textContent;
      const time = li.querySelector('.time')?.textContent;
      return body === t && from === n && !!time && li.classList.contains('own') === o
        && (!o || li.dataset.delivery === 'sent');
    }), [name, text, own]);
}

function expectNotice(page, who, text) {
  return waitFor(page, who, `shows notice "${text}"`,
    (t) => Array.from(document.querySelectorAll('#messages > li.notice')).some((li) => li.textContent.startsWith(t)),
    text);
}

function expectOnline(page, who, names) {
  return waitFor(page, who, `lists ${names.length} online: ${names.join(', ')}`, (want) => {
    const listed = Array.from(document.querySelectorAll('#members li')).map((li) => li.textContent.replace(/^.\s*/u, ''));
    return document.querySelector('#count').textContent === `${want.length} online`
      && want.every((n) => listed.some((l) => l.startsWith(n))) && listed.length === want.length;
  }, names);
}

/** In the page: Dee's own message `text` has delivery `state` and a label matching `label`. */
function deliveryIs([text, state, label]) {
  return Array.from(document.querySelectorAll('#messages > li.msg.own')).some(
    (li) => li.querySelector('.text').textContent === text && li.dataset.delivery === state
      && li.querySelector('.delivery').textContent.includes(label));
}

/**
 * Opens Dee's page with its socket routed (messages holding DROP are not passed on) and a short
 * confirmation timeout; she first asks for `taken` in upper case, is refused, then joins as `name`.
 */
async function openDee(browser, url, taken, name) {
  const ctx = await browser.newContext({ viewport: { width: 900, height: 700 } });
  await ctx.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => {
      if (!String(m).includes(DROP)) server.send(m);
    });
  });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => log(`Dee page error: ${e.message}`));
  await page.goto(`${url}?confirm_ms=${CONFIRM_MS}`, { timeout: STEP_MS, waitUntil: 'domcontentloaded' });
  await page.waitForSelector('#name-dialog[open]', { timeout: STEP_MS });
  await page.fill('#name-input', taken.toUpperCase());
  await page.click('#name-ok');
  await waitFor(page, 'Dee', 'is told the name is taken and asked again', () => {
    const error = document.querySelector('#name-error');
    return document.querySelector('#name-dialog').open && !error.hidden && /taken/.test(error.textContent)
      && document.querySelector('#status').dataset.state === 'offline';
  });
  await shot(page, 'dee-name-taken');
  await page.fill('#name-input', name);
  await page.click('#name-ok');
  await connected(page, 'Dee');
  const me = await page.textContent('#me');
  if (me !== name) throw new Error(`Dee: joined as ${JSON.stringify(me)}, expected ${JSON.stringify(name)}`);
  return { ctx, page };
}

async function shot(page, file) {
  const full = path.join(SHOTS, `chat-${TAG}-${file}.png`);
  await page.screenshot({ path: full });
  log(`screenshot ${full}`);
}

/** Sends raw frames from Node `ws` and checks the server's answers. */
async function checkValidation(url, otherUrl) {
  const sock = new WebSocket(url.replace('http:', 'ws:') + 'ws');
  const inbox = [];
  let waiter = null;
  sock.on('message', (d) => { inbox.push(JSON.parse(String(d))); if (waiter) waiter(); });
  const closed = new Promise((r) => sock.on('close', (code) => r(code)));
  await new Promise((resolve, reject) => { sock.once('open', resolve); sock.once('error', reject); });
  async function next(pred, what) {
    const deadline = Date.now() + STEP_MS;
    for (;;) {
      const i = inbox.findIndex(pred);
      if (i >= 0) return inbox.splice(i, 1)[0];
      if (Date.now() > deadline) throw new Error(`validation: no ${what}; got ${JSON.stringify(inbox)}`);
      await new Promise((r) => { waiter = r; setTimeout(r, 200); });
    }
  }
  const cases = [
    ['{"type":"dance"}', 'unknown_type'],
    ['this is not json', 'bad_json'],
    ['{"type":"message","text":"hi"}', 'not_joined'],
    ['{"type":"join","name":""}', 'bad_name'],
    ['{"type":"join","name":"   "}', 'bad_name'],
    [`{"type":"join","name":"${'n'.repeat(33)}"}`, 'bad_name'],
    ['{"type":"join","name":"bell\\u0007"}', 'bad_name'],
    [JSON.stringify({ type: 'message', text: 'x'.repeat(30000) }), 'too_large'],
  ];
  for (const [frame, code] of cases) {
    sock.send(frame);
    const e = await next((m) => m.type === 'error', `error for ${frame.slice(0, 40)}`);
    if (e.code !== code || !e.error) throw new Error(`validation: ${frame.slice(0, 40)} got ${JSON.stringify(e)}, expected code ${code}`);
  }
  const probe = `Probe ${process.pid}`;
  sock.send(JSON.stringify({ type: 'join', name: probe, client: 'probe-1' }));
  await next((m) => m.type === 'welcome', 'welcome after a good join');
  await checkNameTaken(probe, otherUrl || url);
  sock.send(JSON.stringify({ type: 'message', text: 'x'.repeat(5000) }));
  const e = await next((m) => m.type === 'error', 'error for a 5000-character message');
  if (e.code !== 'bad_text') throw new Error(`validation: long text got ${JSON.stringify(e)}`);
  sock.send('y'.repeat(70 * 1024));
  const code = await Promise.race([closed, sleep(STEP_MS).then(() => 'none')]);
  if (code !== 1009) throw new Error(`validation: a 70 KiB frame closed with ${code}, expected 1009`);
  log('validation: errors for unknown type, bad JSON, bad names, oversize; 1009 above the frame limit');
}

/** Joins on `url` (the other process, with Redis) under names near `taken`, held by probe-1. */
async function checkNameTaken(taken, url) {
  const attempt = (name, client) => new Promise((resolve, reject) => {
    const sock = new WebSocket(url.replace('http:', 'ws:') + 'ws');
    const timer = setTimeout(() => { sock.terminate(); reject(new Error(`name check: no answer to ${name}`)); }, STEP_MS);
    sock.on('open', () => sock.send(JSON.stringify({ type: 'join', name, client })));
    sock.on('message', (d) => {
      const m = JSON.parse(String(d));
      if (m.type !== 'welcome' && m.type !== 'error') return;
      clearTimeout(timer);
      sock.close(1000);
      resolve(m);
    });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
  for (const name of [taken, taken.toUpperCase(), taken.toLowerCase()]) {
    const m = await attempt(name, 'probe-2');
    if (m.type !== 'error' || m.code !== 'name_taken' || !/taken/.test(m.error)) {
      throw new Error(`name check: ${JSON.stringify(name)} from another client got ${JSON.stringify(m)}, expected name_taken`);
    }
  }
  const same = await attempt(taken.toUpperCase(), 'probe-1');
  if (same.type !== 'welcome') throw new Error(`name check: the same client got ${JSON.stringify(same)}, expected welcome`);
  log('validation: a name held by another client is refused (name_taken, any case); the same client shares it');
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  fs.mkdirSync(LOGS, { recursive: true });
  for (const f of fs.readdirSync(SHOTS)) {
    if (f.startsWith(`chat-${TAG}-failure-`)) fs.rmSync(path.join(SHOTS, f)); // from an earlier run
  }
  const a = new Server('A', await freePort());
  const b = redis ? new Server('B', await freePort()) : a;
  const browser = await chromium.launch({ executablePath, headless: true, args: ARGS, timeout: 60000 });
  const nonce = `${process.pid.toString(36)}${Date.now().toString(36)}`;
  const ada = `Ada ${nonce}`;
  const bob = `Bob ${nonce}`;
  const cy = `Cy ${nonce}`;
  const dee = `Dee ${nonce}`;
  const opened = [];
  try {
    await a.start();
    if (b !== a) await b.start();
    await checkValidation(b.url, a.url);

    const A = await openChat(browser, 'Ada', a.url, ada);
    opened.push(A);
    // The name is remembered: a reload joins without asking.
    await A.page.reload({ waitUntil: 'domcontentloaded' });
    await connected(A.page, 'Ada (reloaded)');
    if (await A.page.$('#name-dialog[open]')) throw new Error('Ada: the name prompt came back after a reload');
    const B = await openChat(browser, 'Bob', b.url, bob, { width: 390, height: 760 });
    opened.push(B);
    await expectNotice(A.page, 'Ada', `${bob} joined`);
    await expectOnline(A.page, 'Ada', [ada, bob]);
    await expectOnline(B.page, 'Bob', [ada, bob]);

    const m1 = `Hello Bob, this is Ada (${nonce})`;
    const m2 = `héllo Ada ✓ — ${'this line repeats, so it compresses well; '.repeat(12)}${nonce}`;
    await send(A.page, 'Ada', m1);
    await expectMessage(B.page, 'Bob', ada, m1, false);
    await send(B.page, 'Bob', m2);
    for (const [P, who] of [[A.page, 'Ada'], [B.page, 'Bob']]) {
      await expectMessage(P, who, ada, m1, who === 'Ada');
      await expectMessage(P, who, bob, m2, who === 'Bob');
    }
    const m3 = `short one from Bob ${nonce}`;
    await send(B.page, 'Bob', m3);
    await expectMessage(A.page, 'Ada', bob, m3, false);

    // A late joiner gets the history (on Bob's process; Ada's messages went through Redis).
    const C = await openChat(browser, 'Cy', b.url, cy);
    opened.push(C);
    await expectMessage(C.page, 'Cy', ada, m1, false);
    await expectMessage(C.page, 'Cy', bob, m2, false);
    await expectOnline(A.page, 'Ada', [ada, bob, cy]);
    await shot(C.page, 'late-joiner-history');
    await C.ctx.close();
    opened.pop();
    await expectNotice(A.page, 'Ada', `${cy} left`);
    await expectOnline(A.page, 'Ada', [ada, bob]);
    await shot(A.page, 'ada-desktop');
    await shot(B.page, 'bob-phone');

    // Dee comes to Ada's process and asks for Bob's name (other case): refused, through Redis
    // when Bob is on the other process; the prompt comes back with the reason. Her socket goes
    // through a Playwright route that drops her messages holding DROP, and her page gives up on
    // an unconfirmed message after CONFIRM_MS instead of 10 s.
    const D = await openDee(browser, a.url, bob, dee);
    opened.push(D);
    await expectOnline(B.page, 'Bob', [ada, bob, dee]);

    // Ada's server restarts; her page must come back by itself.
    await a.stop();
    await waitFor(A.page, 'Ada', 'status shows "reconnecting in N s"',
      () => /^reconnecting in \d+ s/.test(document.querySelector('#status').textContent));
    if (b !== a) await expectNotice(B.page, 'Bob', `${ada} left`);
    const m4 = `typed while offline ${nonce}`;
    await send(A.page, 'Ada', m4);
    await waitFor(A.page, 'Ada', 'marks the offline message as waiting',
      (t) => Array.from(document.querySelectorAll('#messages > li.msg.own')).some(
        (li) => li.querySelector('.text').textContent === t && li.dataset.delivery === 'queued'
          && /waiting/.test(li.querySelector('.delivery').textContent)), m4);
    await shot(A.page, 'ada-reconnecting');
    const m5 = `${DROP} typed by Dee while offline ${nonce}`;
    await send(D.page, 'Dee', m5);
    await waitFor(D.page, 'Dee', 'marks her offline message as waiting', deliveryIs, [m5, 'queued', 'waiting']);
    await a.start();
    // Dee's page sent m5 on reconnecting; the route dropped it, so no confirmation comes.
    await connected(D.page, 'Dee (after the restart)');
    await waitFor(D.page, 'Dee', 'shows the unconfirmed message as "sending…"', deliveryIs, [m5, 'pending', 'sending']);
    const sentAt = Date.now();
    await waitFor(D.page, 'Dee', `marks it "not sent" after ${CONFIRM_MS} ms`, deliveryIs, [m5, 'failed', 'not sent']);
    const waited = Date.now() - sentAt;
    if (waited < CONFIRM_MS / 2) throw new Error(`Dee: "not sent" ${waited} ms after "sending…", before the ${CONFIRM_MS} ms timeout`);
    await connected(A.page, 'Ada (after the restart)');
    await expectMessage(A.page, 'Ada', ada, m4, true);
    await expectMessage(B.page, 'Bob', ada, m4, false);
    await shot(D.page, 'dee-not-sent');
    const leaked = await B.page.evaluate((t) => Array.from(document.querySelectorAll('#messages .text'))
      .some((el) => el.textContent === t), m5);
    if (leaked) throw new Error('Bob: received the message the route dropped');
    await D.ctx.close();
    opened.pop();
    await expectOnline(B.page, 'Bob', [ada, bob]);

    // A second tab of Ada's browser (same client id) joins under her name without being asked.
    const tab = await A.ctx.newPage();
    await tab.goto(a.url, { timeout: STEP_MS, waitUntil: 'domcontentloaded' });
    await connected(tab, 'Ada (second tab)');
    if (await tab.$('#name-dialog[open]')) throw new Error('Ada (second tab): asked for a name');
    const tabName = await tab.textContent('#me');
    if (tabName !== ada) throw new Error(`Ada (second tab): joined as ${JSON.stringify(tabName)}`);
    await expectOnline(B.page, 'Bob', [ada, bob]);
    await tab.close();
    await shot(A.page, 'ada-after-restart');
    await shot(B.page, 'bob-phone-after-restart');
    log('all chat checks passed');
  } catch (e) {
    for (const [i, o] of opened.entries()) {
      await o.page.screenshot({ path: path.join(SHOTS, `chat-${TAG}-failure-${i}.png`) }).catch(() => {});
    }
    throw e;
  } finally {
    await browser.close().catch(() => {});
    await a.stop().catch(() => {});
    if (b !== a) await b.stop().catch(() => {});
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.log(`FAIL chat: ${e.message}`);
    process.exit(1);
  },
);
