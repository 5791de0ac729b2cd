// Interop check: the npm `ws` client (a third-party RFC 6455 implementation)
// against `millstone mock`. Usage: node ws_client.js ws://127.0.0.1:PORT
// Expects the routes of tests/integration/mock_ws_test.cc: /ws/echo (echo)
// and /ws/ticker (push, subprotocol ticker.v1). Exits 0 only if every check
// passed; the whole run is bounded by a timer.
'use strict';
const path = require('path');
const WebSocket = require(path.join(__dirname, 'node_modules', 'ws'));

const base = process.argv[2];
if (!base) {
  console.error('usage: node ws_client.js ws://HOST:PORT');
  process.exit(2);
}

const deadline = setTimeout(() => {
  console.error('FAIL: timed out');
  process.exit(1);
}, 20000);

function open(url, protocols) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function nextMessage(ws) {
  return new Promise((resolve, reject) => {
    ws.once('message', (data, isBinary) => resolve({data, isBinary}));
    ws.once('error', reject);
  });
}

function check(condition, what) {
  if (!condition) throw new Error(what);
  console.log('ok: ' + what);
}

async function main() {
  const echo = await open(base + '/ws/echo');
  echo.send('hello from ws');
  let m = await nextMessage(echo);
  check(!m.isBinary && m.data.toString() === 'hello from ws', 'text echo');

  const bin = Buffer.from([0, 1, 2, 250, 255]);
  echo.send(bin);
  m = await nextMessage(echo);
  check(m.isBinary && Buffer.compare(m.data, bin) === 0, 'binary echo');

  const big = Buffer.alloc(200 * 1024);
  for (let i = 0; i < big.length; ++i) big[i] = 97 + (i % 26);
  echo.send(big.toString());
  m = await nextMessage(echo);
  check(m.data.length === big.length && m.data.toString() === big.toString(), '200 KiB text echo');

  const pong = new Promise((resolve) => echo.once('pong', (data) => resolve(data.toString())));
  echo.ping('hi');
  check((await pong) === 'hi', 'ping answered with pong');

  const closed = new Promise((resolve) => echo.once('close', (code) => resolve(code)));
  echo.close(1000, 'bye');
  check((await closed) === 1000, 'clean close with 1000');

  const ticker = await open(base + '/ws/ticker', ['ticker.v1']);
  check(ticker.protocol === 'ticker.v1', 'subprotocol ticker.v1 chosen');
  m = await nextMessage(ticker);
  const tick = JSON.parse(m.data.toString());
  check(tick.type === 'tick' && tick.seq >= 1 && tick.sent_us > 0, 'push received');
  const tickerClosed = new Promise((resolve) => ticker.once('close', (code) => resolve(code)));
  ticker.close(1000);
  check((await tickerClosed) === 1000, 'ticker closed cleanly');
}

main().then(
    () => {
      clearTimeout(deadline);
      console.log('PASS');
      process.exit(0);
    },
    (err) => {
      console.error('FAIL: ' + (err && err.message ? err.message : err));
      process.exit(1);
    });
