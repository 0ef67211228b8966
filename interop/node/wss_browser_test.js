#!/usr/bin/env node
// Headless Chromium against our echo_server over wss://.
//
//   node wss_browser_test.js wss://127.0.0.1:PORT/ [wss://127.0.0.1:PORT2/ ...]
//
// For each URL, a page opens `new WebSocket(url)` (the server's certificate is self-signed:
// Chromium runs with --ignore-certificate-errors and the context ignores HTTPS errors), then
// checks a text echo (with non-ASCII), a 64 KiB binary echo, a 1 MiB text echo, and a clean
// close (1000 initiated by the page, wasClean). Prints `ok <url>: ...` per URL; exits 1 on any
// failure. Drives Debian's chromium through playwright-core, like chat_browser_test.js.
//
// Environment: CHROMIUM_PATH (default /usr/bin/chromium), STEP_TIMEOUT_MS (default 15000).
'use strict';

const { chromium } = require('playwright-core');

const urls = process.argv.slice(2);
if (urls.length === 0 || urls.some((u) => !u.startsWith('wss://'))) {
  console.error('usage: node wss_browser_test.js wss://127.0.0.1:PORT/ [...]');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const STEP_MS = Number(process.env.STEP_TIMEOUT_MS || 15000);
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--ignore-certificate-errors'];

/** Runs in the page: the whole exchange on one socket; resolves with what was seen. */
async function exchange(url) {
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const queue = [];
  const waiters = [];
  const push = (ev) => {
    const w = waiters.shift();
    if (w) w(ev);
    else queue.push(ev);
  };
  ws.onopen = () => push({ type: 'open' });
  ws.onmessage = (e) => push({ type: 'message', data: e.data });
  ws.onerror = () => push({ type: 'error' });
  ws.onclose = (e) => push({ type: 'close', code: e.code, reason: e.reason, wasClean: e.wasClean });
  const next = () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiters.push(r)));
  const expect = async (type, what) => {
    const ev = await next();
    if (ev.type !== type) throw new Error(`${what}: expected ${type}, got ${JSON.stringify(ev).slice(0, 200)}`);
    return ev;
  };

  await expect('open', 'opening handshake');
  const seen = { extensions: ws.extensions, protocol: ws.url };

  const text = 'hello over wss \u2713 \u{1F600}';
  ws.send(text);
  const t = await expect('message', 'text echo');
  if (t.data !== text) throw new Error(`text echo: got ${JSON.stringify(t.data)}`);

  const bytes = new Uint8Array(64 * 1024);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31) & 0xff;
  ws.send(bytes);
  const b = await expect('message', 'binary echo');
  if (!(b.data instanceof ArrayBuffer)) throw new Error('binary echo: came back as text');
  const back = new Uint8Array(b.data);
  if (back.length !== bytes.length || back.some((v, i) => v !== bytes[i])) {
    throw new Error(`binary echo: ${back.length} bytes differ from the ${bytes.length} sent`);
  }

  const big = 'x\u00e9'.repeat(512 * 1024);
  ws.send(big);
  const m = await expect('message', '1 MiB text echo');
  if (m.data !== big) throw new Error(`1 MiB text echo: got ${m.data.length} chars`);

  ws.close(1000, 'page done');
  const c = await expect('close', 'close handshake');
  if (c.code !== 1000 || !c.wasClean) throw new Error(`close: ${JSON.stringify(c)}`);
  seen.close = `${c.code} clean`;
  return seen;
}

async function main() {
  const browser = await chromium.launch({ executablePath, headless: true, args: ARGS, timeout: 60000 });
  let failures = 0;
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    for (const url of urls) {
      const page = await context.newPage();
      try {
        const seen = await Promise.race([
          page.evaluate(exchange, url),
          new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out after ${STEP_MS} ms`)), STEP_MS)),
        ]);
        console.log(`ok ${url}: text, 64 KiB binary and 1 MiB text echoed; close ${seen.close}; extensions ${JSON.stringify(seen.extensions)}`);
      } catch (e) {
        failures++;
        console.log(`FAIL ${url}: ${e.message}`);
      } finally {
        await page.close().catch(() => {});
      }
    }
  } finally {
    await browser.close().catch(() => {});
  }
  if (failures) {
    console.log(`chromium wss test: ${failures} of ${urls.length} failed`);
    process.exit(1);
  }
  console.log(`chromium wss test: all ${urls.length} passed`);
}

main().catch((e) => {
  console.error(`chromium wss test: ${e.stack || e}`);
  process.exit(1);
});
