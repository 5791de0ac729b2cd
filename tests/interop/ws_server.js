// A WebSocket server written with the `ws` package, for millstone's interop
// tests: echoes every message, and pushes {"type":"tick","sent_us":...} every
// 200 ms to each client. Listens on 127.0.0.1 on the port given (0 = any) and
// prints "listening PORT" once ready.
'use strict';
const path = require('path');
const { WebSocketServer } = require(path.join(__dirname, 'node_modules', 'ws'));

const port = Number(process.argv[2] || 0);
const wss = new WebSocketServer({ host: '127.0.0.1', port, handleProtocols: (protocols) => {
  return protocols.has('chat.v1') ? 'chat.v1' : false;
} });

wss.on('connection', (socket) => {
  socket.send(JSON.stringify({ type: 'welcome' }));
  const timer = setInterval(() => {
    const sent_us = Math.round((performance.timeOrigin + performance.now()) * 1000);
    socket.send(JSON.stringify({ type: 'tick', sent_us }));
  }, 200);
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  socket.on('close', () => clearInterval(timer));
  socket.on('error', () => clearInterval(timer));
});

wss.on('listening', () => {
  process.stdout.write(`listening ${wss.address().port}\n`);
});

// Bounded: a test that forgets to stop us does not leave us running.
setTimeout(() => process.exit(0), 120000).unref();
process.on('SIGTERM', () => process.exit(0));
