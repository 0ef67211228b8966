#!/usr/bin/env node
// Drives our chat_server example with real headless Chromium (Debian's, via playwright-core).
//
//   node chat_browser_test.js http://127.0.0.1:PORT/
//
// Two pages open the chat page and wait for `#status` to read "connected"; each page's socket must
// have negotiated permessage-deflate (`ws.extensions`, which browsers always offer and our server
// accepts). Each sends a distinct message through `#input` + `#send` (one of them 8 KiB, so it is
// well worth compressing), and each page's `#messages` must show both. Then page 1
// closes and page 2 must keep working; page 1 is reopened, sends again, and both pages see it.
// Exits 1 on any failure (with a screenshot of each open page saved under $ARTIFACT_DIR or /tmp).
// Environment: CHROMIUM_PATH (default /usr/bin/chromium), STEP_TIMEOUT_MS (default 15000).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const base = process.argv[2];
if (!base) {
  console.error('usage: node chat_browser_test.js http://127.0.0.1:PORT/');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const STEP_MS = Number(process.env.STEP_TIMEOUT_MS || 15000);
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function log(msg) {
  console.log(`[chat] ${msg}`);
}

/** Opens the chat page in a new tab and waits until `#status` reads exactly "connected". */
async function openChat(ctx, name) {
  const page = await ctx.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') log(`${name} console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => log(`${name} page error: ${e.message}`));
  await page.goto(base, { timeout: STEP_MS, waitUntil: 'domcontentloaded' });
  await page.waitForFunction(
    () => {
      const s = document.querySelector('#status');
      return !!s && s.textContent.trim().toLowerCase() === 'connected';
    },
    null,
    { timeout: STEP_MS },
  ).catch(async (e) => {
    const s = await page.locator('#status').textContent().catch(() => '<no #status>');
    throw new Error(`${name}: #status never read "connected" (it reads ${JSON.stringify(s)}): ${e.message.split('\n')[0]}`);
  });
  const extensions = await page.evaluate('ws.extensions');
  if (!String(extensions).includes('permessage-deflate')) {
    throw new Error(`${name}: ws.extensions is ${JSON.stringify(extensions)}, expected permessage-deflate`);
  }
  log(`${name} connected, extensions ${JSON.stringify(extensions)}`);
  return page;
}

async function send(page, name, text) {
  await page.fill('#input', text, { timeout: STEP_MS });
  await page.click('#send', { timeout: STEP_MS });
  log(`${name} sent ${JSON.stringify(text)}`);
}

/** Waits until `#messages` on `page` has an item containing each of `texts`. */
async function expectMessages(page, name, texts) {
  await page.waitForFunction(
    (want) => {
      const list = document.querySelector('#messages');
      if (!list) return false;
      const items = Array.from(list.children).map((c) => c.textContent);
      return want.every((w) => items.some((t) => t.includes(w)));
    },
    texts,
    { timeout: STEP_MS },
  ).catch(async (e) => {
    const items = await page
      .$$eval('#messages > *', (els) => els.map((el) => el.textContent))
      .catch(() => ['<no #messages>']);
    throw new Error(
      `${name}: #messages lacks ${JSON.stringify(texts)}; it holds ${JSON.stringify(items)}: ${e.message.split('\n')[0]}`,
    );
  });
  log(`${name} shows ${JSON.stringify(texts)}`);
}

async function main() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsproto-chromium-'));
  const ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: ARGS,
    timeout: 60000,
  });
  const pages = {};
  const nonce = `${process.pid}-${Date.now()}`;
  try {
    pages.p1 = await openChat(ctx, 'page1');
    pages.p2 = await openChat(ctx, 'page2');

    const m1 = `hello from page one ${nonce}`;
    const m2 = `héllo from page two ✓ ${'and again, '.repeat(750)}${nonce}`;
    await send(pages.p1, 'page1', m1);
    await send(pages.p2, 'page2', m2);
    await expectMessages(pages.p1, 'page1', [m1, m2]);
    await expectMessages(pages.p2, 'page2', [m1, m2]);

    await pages.p1.close();
    delete pages.p1;
    log('page1 closed');
    const m3 = `page two still here ${nonce}`;
    await send(pages.p2, 'page2', m3);
    await expectMessages(pages.p2, 'page2', [m3]);

    pages.p1 = await openChat(ctx, 'page1 (reopened)');
    const m4 = `page one is back ${nonce}`;
    await send(pages.p1, 'page1 (reopened)', m4);
    await expectMessages(pages.p1, 'page1 (reopened)', [m4]);
    await expectMessages(pages.p2, 'page2', [m4]);
    log('all chat checks passed');
  } catch (e) {
    const dir = process.env.ARTIFACT_DIR || os.tmpdir();
    for (const [name, page] of Object.entries(pages)) {
      const file = path.join(dir, `wsproto-chat-failure-${name}.png`);
      await page.screenshot({ path: file }).then(() => log(`screenshot ${file}`)).catch(() => {});
    }
    throw e;
  } finally {
    await ctx.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.log(`FAIL chat: ${e.message}`);
    process.exit(1);
  },
);
