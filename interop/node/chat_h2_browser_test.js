#!/usr/bin/env node
// Headless Chromium against `chat_server --tls`: the page over HTTP/2, its WebSocket as a stream
// of that connection (RFC 8441), a message sent and shown back.
//
//   node chat_h2_browser_test.js https://127.0.0.1:PORT/ SERVER_LOG
//
// Checks that the page was loaded over h2 (the navigation entry's nextHopProtocol), joins with a
// name, sends a message and waits for it in the list, then requires the server's log
// (SERVER_LOG, chat_server's stderr) to say the page's WebSocket connected over HTTP/2.0.
// Exits 1 otherwise. The certificate is self-signed: --ignore-certificate-errors.
//
// Environment: CHROMIUM_PATH (default /usr/bin/chromium), STEP_TIMEOUT_MS (default 20000).
'use strict';

const fs = require('fs');
const crypto = require('crypto');
const { chromium } = require('playwright-core');

const [base, serverLog] = process.argv.slice(2);
if (!base || !base.startsWith('https://') || !serverLog) {
  console.error('usage: node chat_h2_browser_test.js https://127.0.0.1:PORT/ SERVER_LOG');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const STEP_MS = Number(process.env.STEP_TIMEOUT_MS || 20000);
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--ignore-certificate-errors'];

async function main() {
  const name = `H2 ${crypto.randomBytes(3).toString('hex')}`;
  const text = `over one HTTP/2 connection ${crypto.randomBytes(4).toString('hex')}`;
  const browser = await chromium.launch({ executablePath, headless: true, args: ARGS, timeout: 60000 });
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await page.goto(base, { timeout: STEP_MS, waitUntil: 'domcontentloaded' });
    const protocol = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
    if (protocol !== 'h2') throw new Error(`the page came over ${JSON.stringify(protocol)}, not h2`);
    await page.waitForSelector('#name-dialog[open]', { timeout: STEP_MS });
    await page.fill('#name-input', name);
    await page.click('#name-ok');
    await page.fill('#input', text, { timeout: STEP_MS });
    await page.click('#send', { timeout: STEP_MS });
    // Confirmed by the server: the page marks its own message delivered.
    await page.waitForFunction((t) => Array.from(document.querySelectorAll('#messages > li.msg.own'))
      .some((li) => li.querySelector('.text')?.textContent === t && li.dataset.delivery === 'sent'),
    text, { timeout: STEP_MS });
  } finally {
    await browser.close();
  }
  const log = fs.readFileSync(serverLog, 'utf8');
  const joined = log.split('\n').find((l) => l.includes(`joined as ${JSON.stringify(name)}`));
  if (!joined) throw new Error(`the server log does not show ${name} joining:\n${log}`);
  const id = /page (\d+) joined/.exec(joined)[1];
  const connected = log.split('\n').find((l) => l.startsWith(`page ${id} connected over `));
  if (!connected || !connected.includes('HTTP/2.0')) {
    throw new Error(`page ${id}'s WebSocket did not come over HTTP/2: ${connected}`);
  }
  console.log(`chat h2 test: page over h2, WebSocket ${connected.trim()}, message shown back`);
}

main().catch((e) => { console.error(`chat h2 test: FAILED: ${e.message}`); process.exit(1); });
