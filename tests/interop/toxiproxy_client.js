// Toxiproxy's npm client driving `millstone proxy` (tests/proxy/api_test.cc,
// ProxyApiInterop.*). Usage: node toxiproxy_client.js API_URL UPSTREAM
// Every answer is checked here; the C++ test then reads the proxy's state.
"use strict";
const assert = require("node:assert/strict");
const { Toxiproxy, ToxiproxyError } = require("toxiproxy-node-client");

async function main() {
  const [api, upstream] = process.argv.slice(2);
  const toxiproxy = new Toxiproxy(api);

  const version = await toxiproxy.getVersion();
  assert.match(version, /millstone/);

  const proxy = await toxiproxy.createProxy({
    name: "interop_removed",
    listen: "127.0.0.1:0",
    upstream,
  });
  assert.equal(proxy.name, "interop_removed");
  assert.equal(proxy.enabled, true);
  assert.match(proxy.listen, /^127\.0\.0\.1:\d+$/);
  assert.notEqual(proxy.listen, "127.0.0.1:0");

  const toxic = await proxy.addToxic({
    type: "latency",
    stream: "downstream",
    toxicity: 1,
    attributes: { latency: 100, jitter: 5 },
  });
  assert.equal(toxic.name, "latency_downstream");
  assert.equal(toxic.attributes.latency, 100);

  const fetched = await proxy.getToxic("latency_downstream");
  assert.equal(fetched.type, "latency");
  assert.equal(fetched.attributes.jitter, 5);

  const updated = await fetched.update({ attributes: { latency: 50, jitter: 0 }, toxicity: 0.5 });
  assert.equal(updated.attributes.latency, 50);
  assert.equal(updated.toxicity, 0.5);

  const all = await toxiproxy.getAll();
  assert.ok(all.interop_removed, "getAll lists the proxy");

  const disabled = await proxy.update({ ...proxy.toJson(), enabled: false });
  assert.equal(disabled.enabled, false);
  const enabled = await proxy.update({ ...proxy.toJson(), enabled: true });
  assert.equal(enabled.enabled, true);
  assert.equal(enabled.listen, proxy.listen);

  await updated.remove();
  await assert.rejects(proxy.getToxic("latency_downstream"), ToxiproxyError);
  await proxy.remove();
  await assert.rejects(toxiproxy.get("interop_removed"), ToxiproxyError);

  const populated = await toxiproxy.populate([
    { name: "interop_kept", listen: "127.0.0.1:0", upstream },
  ]);
  const kept = populated.interop_kept;
  assert.ok(kept, "populate returns the proxy");
  await assert.rejects(
    toxiproxy.createProxy({ name: "interop_kept", listen: "127.0.0.1:0", upstream }),
    /409/,
  );
  await kept.addToxic({ type: "timeout", stream: "upstream", toxicity: 1, attributes: { timeout: 0 } });
  await toxiproxy.reset();
  const afterReset = await toxiproxy.get("interop_kept");
  assert.equal(afterReset.enabled, true);
  const bandwidth = await afterReset.addToxic({
    type: "bandwidth",
    stream: "upstream",
    toxicity: 1,
    attributes: { rate: 64 },
  });
  assert.equal(bandwidth.name, "bandwidth_upstream");
  console.log("toxiproxy-node-client: all steps passed");
}

main().catch((error) => {
  console.error("toxiproxy-node-client:", error);
  process.exit(1);
});
