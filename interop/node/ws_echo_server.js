#!/usr/bin/env node
// A Node `ws` echo server used as an interop peer for wsproto.
//
//   node ws_echo_server.js PORT [HOST] [--deflate] [--tls CERT.pem KEY.pem]
//
// With --tls the server speaks wss:// (an https server with that PEM certificate and key).
// With --deflate the server accepts permessage-deflate (compressing every message: threshold 0).
// Listens on HOST (default 127.0.0.1; loopback only) and echoes every message back with the same
// type (text as text, binary as binary). A text message `close:NNNN` makes the server close the
// connection with code NNNN instead of echoing. If the client offers subprotocols, the first one
// is selected. Prints `READY <port>` on stdout once it is listening.
'use strict';

const fs = require('fs');
const https = require('https');
const { WebSocketServer } = require('ws');

const argv = process.argv.slice(2);
const tlsAt = argv.indexOf('--tls');
const TLS = tlsAt >= 0 ? { cert: fs.readFileSync(argv[tlsAt + 1]), key: fs.readFileSync(argv[tlsAt + 2]) } : null;
if (tlsAt >= 0) argv.splice(tlsAt, 3);
const args = argv.filter((a) => a !== '--deflate');
const DEFLATE = process.argv.includes('--deflate');
const port = Number(args[0] || 0);
const host = args[1] || '127.0.0.1';
if (!['127.0.0.1', 'localhost', '::1'].includes(host) && !host.startsWith('127.')) {
  console.error(`refusing to listen on non-loopback address ${host}`);
  process.exit(2);
}

// Over TLS the WebSocket server rides on an https server; plain, it listens itself.
const httpsServer = TLS ? https.createServer(TLS) : null;
const wss = new WebSocketServer({
  ...(httpsServer ? { server: httpsServer } : { host, port }),
  perMessageDeflate: DEFLATE ? { threshold: 0 } : false,
  maxPayload: 64 * 1024 * 1024,
  handleProtocols: (protocols) => {
    const first = protocols.values().next();
    return first.done ? false : first.value;
  },
});

if (httpsServer) {
  httpsServer.on('error', (err) => {
    console.error(`[ws-echo] https server error: ${err.message}`);
    process.exit(1);
  });
  httpsServer.on('tlsClientError', (err) => console.error(`[ws-echo] TLS error: ${err.message}`));
  httpsServer.listen(port, host, () => console.log(`READY ${httpsServer.address().port} (wss)`));
} else {
  wss.on('listening', () => {
    console.log(`READY ${wss.address().port}`);
  });
}

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
