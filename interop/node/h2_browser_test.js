#!/usr/bin/env node
// Headless Chromium against our axum_echo --tls: WebSockets over HTTP/2 (RFC 8441).
//
//   node h2_browser_test.js https://127.0.0.1:PORT/
//
// The page GET /h2test?run=TOKEN (served by axum_echo over TLS, ALPN offering h2) opens four
// WebSockets at once to /h2echo on its own origin, checks a text echo on each and a clean close
// (1000), and reports in window.h2result. Then the server's GET /stats must list exactly those
// four WebSockets (matched by TOKEN), each with HTTP version HTTP/2.0, all on one TCP connection
// (one peer address): Chromium opened them as extended CONNECT streams of the connection the
// page came over, because the server sent SETTINGS_ENABLE_CONNECT_PROTOCOL. Exits 1 otherwise,
// printing what the server saw. The certificate is self-signed: Chromium runs with
// --ignore-certificate-errors and the context ignores HTTPS errors. Drives Debian's chromium
// through playwright-core, like wss_browser_test.js.
//
// Environment: CHROMIUM_PATH (default /usr/bin/chromium), STEP_TIMEOUT_MS (default 20000).
'use strict';

const https = require('https');
const crypto = require('crypto');
const { chromium } = require('playwright-core');

const base = process.argv[2];
if (!base || !base.startsWith('https://') || !base.endsWith('/')) {
  console.error('usage: node h2_browser_test.js https://127.0.0.1:PORT/');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const STEP_MS = Number(process.env.STEP_TIMEOUT_MS || 20000);
const SOCKETS = 4;
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--ignore-certificate-errors'];

/** GET url (self-signed certificate accepted) and parse the JSON body. */
function getJson(url) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { rejectUnauthorized: false, timeout: STEP_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        if (res.statusCode !== 200) { reject(new Error(`${url}: status ${res.statusCode}: ${body}`)); return; }
        try { resolve(JSON.parse(body)); } catch (e) { reject(new Error(`${url}: not JSON: ${body.slice(0, 200)}`)); }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timed out`)));
    req.on('error', reject);
  });
}

async function main() {
  const run = crypto.randomBytes(6).toString('hex');
  const browser = await chromium.launch({ executablePath, headless: true, args: ARGS, timeout: 60000 });
  let result;
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    const response = await page.goto(`${base}h2test?run=${run}`, { timeout: STEP_MS });
    if (!response || response.status() !== 200) throw new Error(`page: status ${response && response.status()}`);
    await page.waitForFunction(() => window.h2result !== undefined, null, { timeout: STEP_MS });
    result = await page.evaluate(() => window.h2result);
  } finally {
    await browser.close().catch(() => {});
  }
  console.log(`page over ${result.page}; sockets: ${JSON.stringify(result.sockets || result.error)}`);
  if (!result.ok) throw new Error(`the page's WebSockets failed: ${result.error}`);
  if (result.page !== 'h2') throw new Error(`the page itself came over ${result.page}, not h2 (ALPN?)`);

  const stats = await getJson(`${base}stats`);
  const mine = stats.websockets.filter((ws) => ws.path.includes(`run=${run}`));
  console.log(`server saw: ${JSON.stringify(mine)}`);
  if (mine.length !== SOCKETS) throw new Error(`the server accepted ${mine.length} WebSockets, expected ${SOCKETS}`);
  const notH2 = mine.filter((ws) => ws.version !== 'HTTP/2.0');
  if (notH2.length) {
    throw new Error(`${notH2.length} WebSockets came over ${notH2[0].version}, not HTTP/2 `
      + '(did the server send SETTINGS_ENABLE_CONNECT_PROTOCOL?)');
  }
  const connections = new Set(mine.map((ws) => ws.connection));
  if (connections.size !== 1) {
    throw new Error(`the ${SOCKETS} WebSockets came on ${connections.size} TCP connections: ${[...connections].join(', ')}`);
  }
  console.log(`chromium h2 test: ${SOCKETS} WebSockets echoed and closed cleanly, all HTTP/2 streams of one `
    + `TCP connection (${[...connections][0]})`);
}

main().catch((e) => {
  console.error(`chromium h2 test: FAIL: ${e.stack || e}`);
  process.exit(1);
});
