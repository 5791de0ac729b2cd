// Drives millstone serve's web console in headless Chromium over the DevTools
// protocol (tests/integration/console_test.cc): types the token, starts a run
// of a saved scenario with overrides, watches the live chart grow, stops the
// run, opens its report, makes it the baseline and compares it. Prints one
// JSON object with what it saw (and every console error) for the test to judge.
//
//   node console_driver.js CONSOLE_URL TOKEN TARGET_URL SHOT_DIR
//
// Chromium is Debian's /usr/bin/chromium; the client is `ws` (package.json).
"use strict";
const {spawn} = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");
const WebSocket = require("ws");

const [consoleUrl, token, targetUrl, shotDir] = process.argv.slice(2);
const result = {steps: [], console_errors: [], screenshots: []};
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "millstone-console-"));
let chromium = null;

function finish(code, error) {
  if (error) result.error = String(error && error.stack ? error.stack : error);
  if (chromium) {
    try { process.kill(-chromium.pid, "SIGKILL"); } catch (e) {}
  }
  fs.rmSync(profile, {recursive: true, force: true});
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(code);
}
// The whole drive is bounded; the test bounds this process too.
setTimeout(() => finish(1, "timed out"), 25000).unref();

function launch() {
  return new Promise((resolve, reject) => {
    chromium = spawn("/usr/bin/chromium", [
      "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--disable-extensions", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
      // The report's sandboxed frame stays in the page's process, where the
      // page session sees its console and can look into it.
      "--disable-site-isolation-trials", "--disable-features=IsolateSandboxedIframes",
      "--user-data-dir=" + profile, "--window-size=1400,1000", consoleUrl,
    ], {stdio: ["ignore", "ignore", "pipe"], detached: true});
    let err = "";
    chromium.stderr.on("data", (d) => {
      err += d;
      const m = err.match(/DevTools listening on (ws:\/\/\S+)/);
      if (m) resolve(m[1]);
    });
    chromium.on("exit", (code) => reject(new Error("chromium exited " + code + ": " + err)));
  });
}

class Cdp {
  constructor(url) {
    this.ws = new WebSocket(url, {perMessageDeflate: false});
    this.next = 1;
    this.pending = new Map();
    this.listeners = [];
    this.ws.on("message", (text) => {
      const msg = JSON.parse(text);
      if (msg.id && this.pending.has(msg.id)) {
        const {resolve, reject} = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (msg.error) reject(new Error(JSON.stringify(msg.error)));
        else resolve(msg.result);
      } else if (msg.method) {
        this.listeners.forEach((l) => l(msg));
      }
    });
  }
  open() { return new Promise((resolve, reject) => { this.ws.once("open", resolve); this.ws.once("error", reject); }); }
  send(method, params, sessionId) {
    const id = this.next++;
    this.ws.send(JSON.stringify({id, method, params: params || {}, sessionId}));
    return new Promise((resolve, reject) => this.pending.set(id, {resolve, reject}));
  }
}

async function main() {
  const cdp = new Cdp(await launch());
  await cdp.open();
  const {targetInfos} = await cdp.send("Target.getTargets");
  const page = targetInfos.find((t) => t.type === "page");
  const {sessionId} = await cdp.send("Target.attachToTarget", {targetId: page.targetId, flatten: true});
  const send = (method, params) => cdp.send(method, params, sessionId);
  cdp.listeners.push((msg) => {
    if (msg.sessionId !== sessionId) return;
    if (msg.method === "Runtime.exceptionThrown") {
      const d = msg.params.exceptionDetails;
      result.console_errors.push("exception: " + (d.exception && d.exception.description || d.text));
    } else if (msg.method === "Runtime.consoleAPICalled" &&
               (msg.params.type === "error" || msg.params.type === "assert")) {
      result.console_errors.push("console." + msg.params.type + ": " +
                                 msg.params.args.map((a) => a.value || a.description).join(" "));
    } else if (msg.method === "Log.entryAdded" && msg.params.entry.level === "error") {
      result.console_errors.push("log: " + msg.params.entry.text + " " + (msg.params.entry.url || ""));
    }
  });
  await Promise.all([
    send("Runtime.enable"), send("Log.enable"), send("Page.enable"),
    send("Emulation.setDeviceMetricsOverride", {width: 1400, height: 1000, deviceScaleFactor: 1, mobile: false}),
  ]);

  const evaluate = async (expression, contextId) => {
    const r = await send("Runtime.evaluate", {expression, returnByValue: true, awaitPromise: true, contextId});
    if (r.exceptionDetails) throw new Error(expression + ": " + r.exceptionDetails.text);
    return r.result.value;
  };
  // Polls until the expression is truthy; its value, or an error naming it.
  const waitFor = async (expression, seconds, contextId) => {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
      const v = await evaluate(expression, contextId);
      if (v) return v;
      if (Date.now() > deadline) throw new Error("waited " + seconds + " s for " + expression);
      await new Promise((r) => setTimeout(r, 30));
    }
  };
  const shot = async (name) => {
    const {data} = await send("Page.captureScreenshot", {format: "png"});
    const file = path.join(shotDir, name + ".png");
    fs.writeFileSync(file, Buffer.from(data, "base64"));
    result.screenshots.push(file);
  };
  const began = Date.now();
  const step = (name) => result.steps.push(((Date.now() - began) / 1000).toFixed(2) + " s: " + name);

  step("chromium up");
  await waitFor("document.body && document.body.dataset.state === 'login'", 5);
  step("asked for the token");
  // Typed into the focused field, as a person would.
  await waitFor("document.activeElement && document.activeElement.id === 'token'", 2);
  await send("Input.insertText", {text: token});
  await evaluate("document.querySelector('#login-form button').click()");
  await waitFor("document.body.dataset.state === 'ready' && document.querySelectorAll('#source option').length > 1", 5);
  step("connected");
  result.scenario_options = await evaluate("Array.from(document.querySelectorAll('#source option')).map(o => o.textContent)");
  result.token_in_storage_only = await evaluate(`location.href.indexOf(${JSON.stringify(token)}) < 0`);

  // Start the first saved scenario (its file name is markup: it must show as text) with overrides.
  await evaluate(`(() => {
    const source = document.getElementById('source');
    source.selectedIndex = 0;
    source.dispatchEvent(new Event('change'));
    document.getElementById('duration').value = '20s';
    document.getElementById('vus').value = '2';
    document.getElementById('workers').value = '1';
    document.getElementById('target').value = ${JSON.stringify(targetUrl)};
    document.getElementById('start-run').click();
  })()`);
  result.run_id = await waitFor("document.body.dataset.run", 5);
  await waitFor("document.body.dataset.runState === 'running'", 10);
  step("started " + result.run_id);
  await waitFor("Number(document.getElementById('charts').dataset.points) >= 1", 10);
  result.points_first = Number(await evaluate("document.getElementById('charts').dataset.points"));
  result.chart_paths = await evaluate("document.querySelectorAll('#charts .uplot canvas').length");
  result.state_while_live = await evaluate("document.body.dataset.runState");
  step("the live chart shows " + result.points_first + " second(s)");
  await shot("console-live");

  await evaluate("document.getElementById('stop').click()");
  await waitFor("document.body.dataset.runState === 'stopped'", 15);
  step("stopped");
  result.state_after_stop = await evaluate("document.body.dataset.runState");
  result.points_at_end = Number(await evaluate("document.getElementById('charts').dataset.points"));
  step("the chart grew to " + result.points_at_end + " seconds");
  result.streamed_requests = Number(await evaluate("document.getElementById('charts').dataset.requests"));
  // The list refreshes on its own request: wait for it to say so too.
  const listState = `(() => {
    const row = document.querySelector('#run-rows tr[data-id="${result.run_id}"]');
    return row ? row.children[2].textContent : '';
  })()`;
  await waitFor(listState + " === 'stopped'", 5).catch(() => {});
  result.list_state = await evaluate(listState);

  // What came from the run shows as text: no element was made of it.
  result.title = await evaluate("document.getElementById('run-title').textContent");
  result.list_target = await evaluate(`document.querySelector('#run-rows tr[data-id="${result.run_id}"] td.target').textContent`);
  result.injected_elements = await evaluate("document.querySelectorAll('img, b#injected').length");

  await evaluate("document.getElementById('open-report').click()");
  await waitFor("document.body.dataset.report", 5);
  // The report's frame: look into it from an isolated world of that frame.
  const frameTree = (await send("Page.getFrameTree")).frameTree;
  const child = (frameTree.childFrames || [])[0];
  if (!child) throw new Error("no report frame");
  const world = await send("Page.createIsolatedWorld", {frameId: child.frame.id, worldName: "test"});
  result.report_status = await waitFor(
      "document.body && document.body.dataset.status !== 'loading' && document.body.dataset.status",
      10, world.executionContextId);
  result.report_charts = Number(await evaluate("document.body.dataset.charts || 0", world.executionContextId));
  result.report_origin = await evaluate("(() => { try { return String(window.parent.location.href); } catch (e) { return 'opaque'; } })()",
                                        world.executionContextId);
  step("report shown: " + result.report_status);
  await shot("console-report");

  await evaluate("document.getElementById('baseline').click()");
  await waitFor("document.getElementById('action-result').textContent.indexOf('baseline of') === 0", 5);
  await evaluate("document.getElementById('compare').click()");
  result.compared = await waitFor("document.body.dataset.compared", 5);
  result.compare_rows = await evaluate("document.querySelectorAll('#comparison tbody tr').length");
  await evaluate("document.getElementById('run').scrollIntoView()");
  step("compared with its baseline: " + result.compared);
  await shot("console-compare");
  finish(0);
}

main().catch((e) => finish(1, e));
