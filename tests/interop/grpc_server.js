// A gRPC server written with @grpc/grpc-js, for millstone's interop tests
// and bench/grpc.sh: millstone.test.Greeter (protos/greeter.proto). SayHello
// answers "hello NAME"; with FAIL_EVERY > 0, every FAIL_EVERY-th call is
// answered UNAVAILABLE instead. Listens on 127.0.0.1:PORT (cleartext HTTP/2)
// and prints "listening PORT" once ready. With COUNT_PORT, a plain HTTP
// server there answers GET /count with the server's own counts
// {"calls":N,"ok":M,"unavailable":U,"names":{...}} (names: how many calls
// carried each request name), so a test checks millstone's figures against
// the server's.
//
// With DELAY_MS > 0, SayHello answers that late (a call whose deadline
// passes first ends DEADLINE_EXCEEDED, by grpc-js itself).
//
// With REFLECT=1 in the environment, the server also offers gRPC server
// reflection (v1 and v1alpha) through @grpc/reflection, the package grpc-js
// users add for grpcurl and Postman.
//
// usage: [REFLECT=1] node grpc_server.js PORT [COUNT_PORT] [FAIL_EVERY] [DELAY_MS]
'use strict';
const http = require('http');
const path = require('path');
const grpc = require(path.join(__dirname, 'node_modules', '@grpc', 'grpc-js'));
const loader = require(path.join(__dirname, 'node_modules', '@grpc', 'proto-loader'));

const port = Number(process.argv[2] || 0);
const countPort = Number(process.argv[3] || 0);
const failEvery = Number(process.argv[4] || 0);
const delayMs = Number(process.argv[5] || 0);

const definition = loader.loadSync(path.join(__dirname, 'protos', 'greeter.proto'), {
  keepCase: true,
  defaults: true,
  includeDirs: ['/usr/include'],
});
const proto = grpc.loadPackageDefinition(definition).millstone.test;

const counts = { calls: 0, ok: 0, unavailable: 0, names: {} };

const server = new grpc.Server();
if (process.env.REFLECT === '1') {
  const { ReflectionService } = require(path.join(__dirname, 'node_modules', '@grpc', 'reflection'));
  new ReflectionService(definition).addToServer(server);
}
server.addService(proto.Greeter.service, {
  SayHello(call, callback) {
    ++counts.calls;
    const name = call.request.name;
    counts.names[name] = (counts.names[name] || 0) + 1;
    if (failEvery > 0 && counts.calls % failEvery === 0) {
      ++counts.unavailable;
      callback({ code: grpc.status.UNAVAILABLE, details: 'try again later' });
      return;
    }
    ++counts.ok;
    const reply = { message: `hello ${name}`, count: counts.calls };
    if (delayMs > 0) {
      setTimeout(() => callback(null, reply), delayMs);
    } else {
      callback(null, reply);
    }
  },
  Ping(call, callback) {
    ++counts.calls;
    ++counts.ok;
    callback(null, {});
  },
  Collect(call, callback) {
    ++counts.calls;
    let n = 0;
    call.on('data', () => ++n);
    call.on('end', () => {
      ++counts.ok;
      callback(null, { message: 'collected', count: n });
    });
  },
  Updates(call) {
    ++counts.calls;
    for (let i = 0; i < Math.max(1, call.request.times); ++i) {
      call.write({ message: `update ${i}`, count: i });
    }
    ++counts.ok;
    call.end();
  },
});

server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
  if (err) {
    console.error(err.message);
    process.exit(1);
  }
  if (countPort > 0) {
    http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(counts));
    }).listen(countPort, '127.0.0.1');
  }
  console.log(`listening ${bound}`);
});

process.on('SIGTERM', () => process.exit(0));
