// A WebSocket server written with the `ws` package, for millstone's interop
// tests: echoes every message, and pushes {"type":"tick","sent_us":...} every
// 200 ms to each client. Listens on 127.0.0.1 on the port given (0 = any) and
// prints "listening PORT" once ready.
//
// With a certificate and key (PEM files) after the port it serves wss over
// node's https module, and answers GET /count with its own counts
// {"connections":N,"received":M} (messages received from clients), so a test
// checks millstone's figures against the server's.
'use strict';
const fs = require('fs');
const https = require('https');
const path = require('path');
const { WebSocketServer } = require(path.join(__dirname, 'node_modules', 'ws'));

const port = Number(process.argv[2] || 0);
const certFile = process.argv[3];
const keyFile = process.argv[4];
const handleProtocols = (protocols) => (protocols.has('chat.v1') ? 'chat.v1' : false);

let connections = 0;
let received = 0;
let wss;
let listening;
if (certFile) {
  const server = https.createServer(
      { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) }, (req, res) => {
        if (req.url === '/count') {
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ connections, received }));
          return;
        }
        res.writeHead(404);
        res.end();
      });
  wss = new WebSocketServer({ server, handleProtocols });
  server.listen(port, '127.0.0.1');
  listening = server;
} else {
  wss = new WebSocketServer({ host: '127.0.0.1', port, handleProtocols });
  listening = wss;
}

wss.on('connection', (socket) => {
  ++connections;
  socket.send(JSON.stringify({ type: 'welcome' }));
  const timer = setInterval(() => {
    // The wall clock, as millstone reads it: performance.timeOrigin is taken
    // once at start-up and was seen ahead of the system clock on a loaded
    // machine, which put every stamp in millstone's future (delivery_invalid).
    // Whole milliseconds only ever make a latency look up to 1 ms longer.
    const sent_us = Date.now() * 1000;
    socket.send(JSON.stringify({ type: 'tick', sent_us }));
  }, 200);
  socket.on('message', (data, isBinary) => {
    ++received;
    socket.send(data, { binary: isBinary });
  });
  socket.on('close', () => clearInterval(timer));
  socket.on('error', () => clearInterval(timer));
});

listening.on('listening', () => {
  process.stdout.write(`listening ${listening.address().port}\n`);
});

// Bounded: a test that forgets to stop us does not leave us running.
setTimeout(() => process.exit(0), 120000).unref();
process.on('SIGTERM', () => process.exit(0));
