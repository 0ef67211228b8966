#!/usr/bin/env node
// A Node `ws` echo server used as an interop peer for wsproto.
//
//   node ws_echo_server.js PORT [HOST] [--deflate]
//
// With --deflate the server accepts permessage-deflate (compressing every message: threshold 0).
// Listens on HOST (default 127.0.0.1; loopback only) and echoes every message back with the same
// type (text as text, binary as binary). A text message `close:NNNN` makes the server close the
// connection with code NNNN instead of echoing. If the client offers subprotocols, the first one
// is selected. Prints `READY <port>` on stdout once it is listening.
'use strict';

const { WebSocketServer } = require('ws');

const args = process.argv.slice(2).filter((a) => a !== '--deflate');
const DEFLATE = process.argv.includes('--deflate');
const port = Number(args[0] || 0);
const host = args[1] || '127.0.0.1';
if (!['127.0.0.1', 'localhost', '::1'].includes(host) && !host.startsWith('127.')) {
  console.error(`refusing to listen on non-loopback address ${host}`);
  process.exit(2);
}

const wss = new WebSocketServer({
  host,
  port,
  perMessageDeflate: DEFLATE ? { threshold: 0 } : false,
  maxPayload: 64 * 1024 * 1024,
  handleProtocols: (protocols) => {
    const first = protocols.values().next();
    return first.done ? false : first.value;
  },
});

wss.on('listening', () => {
  console.log(`READY ${wss.address().port}`);
});

wss.on('connection', (ws, req) => {
  const who = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
  ws.on('message', (data, isBinary) => {
    if (!isBinary) {
      const text = data.toString('utf8');
      const m = /^close:(\d{4})$/.exec(text);
      if (m) {
        ws.close(Number(m[1]), `requested ${m[1]}`);
        return;
      }

    }
    ws.send(data, { binary: isBinary });
  });
  ws.on('close', (code, reason) => {
    if (process.env.WS_ECHO_VERBOSE) console.error(`[ws-echo] ${who} closed ${code} ${reason}`);
  });
  ws.on('error', (err) => {
    console.error(`[ws-echo] ${who} error: ${err.message}`);
  });
});

wss.on('error', (err) => {
  console.error(`[ws-echo] server error: ${err.message}`);
  process.exit(1);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const c of wss.clients) c.terminate();
    wss.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 500).unref();
  });
}
