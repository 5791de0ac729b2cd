// The web console of `millstone serve` (docs/console.md). Everything it shows
// comes from the REST API (docs/api/openapi.yaml) with the bearer token the
// person typed; it never goes into a URL. Text from runs (names, URLs,
// messages) reaches the page only as text nodes, never as markup. Live
// charts read the run's Server-Sent Events with fetch() streaming, because
// EventSource cannot send an Authorization header.
(function () {
  "use strict";

  var TOKEN_KEY = "millstone.token";
  var token = sessionStorage.getItem(TOKEN_KEY) || "";
  var runs = [];
  var selected = null;  // the run shown: {id, state, ...}
  var stream = null;  // AbortController of its events request
  var charts = [];
  var series = null;  // {second: [], rps: [], p50: [], p99: [], errors: [], failures: []}
  var refreshTimer = null;

  function $(id) { return document.getElementById(id); }

  // An element with text content and attributes; children are elements or strings (as text).
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs.text;
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function say(node, text, kind) {
    node.textContent = text;
    node.className = kind || "";
  }

  // One call to the API. Resolves to {status, body (parsed JSON or text)}; a
  // refused token sends the person back to the token form.
  function api(method, path, body) {
    var init = {method: method, headers: {"Authorization": "Bearer " + token}, cache: "no-store"};
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      var read = type.indexOf("application/json") === 0 ? response.json() : response.text();
      return read.then(function (content) {
        if (response.status === 401) {
          showLogin("The server refused this token (401). Check serve's --token-file.");
          throw new Error("401");
        }
        return {status: response.status, body: content};
      });
    });
  }

  function errorText(result) {
    var b = result.body;
    return "HTTP " + result.status + ": " + (b && b.error ? b.error : String(b).slice(0, 300));
  }

  // --- token ---------------------------------------------------------------

  function showLogin(message) {
    token = "";
    sessionStorage.removeItem(TOKEN_KEY);
    stopStream();
    if (refreshTimer) clearInterval(refreshTimer);
    refreshTimer = null;
    $("app").hidden = true;
    $("forget").hidden = true;
    $("login").hidden = false;
    say($("connection"), "");
    say($("login-error"), message || "", "error");
    document.body.dataset.state = "login";
    $("token").focus();
  }

  function connect() {
    return api("GET", "/v1/runs").then(function (r) {
      if (r.status !== 200) throw new Error(errorText(r));
      sessionStorage.setItem(TOKEN_KEY, token);
      $("login").hidden = true;
      $("app").hidden = false;
      $("forget").hidden = false;
      say($("connection"), "connected to " + location.host, "muted");
      showRuns(r.body.runs);
      loadScenarios();
      refreshTimer = setInterval(refreshRuns, 2000);
      document.body.dataset.state = "ready";
    }).catch(function (e) {
      if (e.message !== "401") showLogin(String(e.message || e));
    });
  }

  $("login-form").addEventListener("submit", function (e) {
    e.preventDefault();
    token = $("token").value.trim();
    $("token").value = "";
    connect();
  });
  $("forget").addEventListener("click", function () { showLogin(""); });

  // --- saved scenarios and starting a run ------------------------------------

  var URL_SOURCE = "\u0000url";

  function loadScenarios() {
    return api("GET", "/v1/scenarios").then(function (r) {
      var select = $("source");
      clear(select);
      var list = r.status === 200 ? r.body.scenarios : [];
      list.forEach(function (s) {
        select.appendChild(el("option", {value: s.path, text: s.name}));
      });
      select.appendChild(el("option", {value: URL_SOURCE, text: "a URL (quick run)"}));
      if (r.status !== 200) say($("start-result"), "saved scenarios: " + errorText(r), "error");
      sourceChanged();
    });
  }

  function sourceChanged() {
    var isUrl = $("source").value === URL_SOURCE;
    $("url-field").hidden = !isUrl;
    $("vus").disabled = isUrl;
    $("target").disabled = isUrl;
    $("connections").disabled = !isUrl;
  }
  $("source").addEventListener("change", sourceChanged);

  // The POST /v1/runs body from the form: only the overrides filled in.
  function runRequest() {
    var body = {};
    if ($("source").value === URL_SOURCE) body.url = $("url").value.trim();
    else body.scenario = $("source").value;
    ["duration", "timeout", "target"].forEach(function (f) {
      var v = $(f).value.trim();
      if (v && !$(f).disabled) body[f] = v;
    });
    var rate = $("rate").value.trim();
    if (rate) body.rate = /^\d+(\.\d+)?$/.test(rate) ? Number(rate) : rate;
    ["vus", "connections", "workers"].forEach(function (f) {
      var v = $(f).value.trim();
      if (v && !$(f).disabled) body[f] = Number(v);
    });
    var env = {};
    var lines = $("env").value.split("\n");
    for (var i = 0; i < lines.length; i++) {
      var line = lines[i].trim();
      if (!line) continue;
      var eq = line.indexOf("=");
      if (eq < 1) throw new Error("environment line " + (i + 1) + ": expected NAME=value");
      env[line.slice(0, eq)] = line.slice(eq + 1);
    }
    if (Object.keys(env).length) body.env = env;
    return body;
  }

  $("start-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var body;
    try {
      body = runRequest();
    } catch (err) {
      say($("start-result"), err.message, "error");
      return;
    }
    $("start-run").disabled = true;
    api("POST", "/v1/runs", body).then(function (r) {
      if (r.status !== 202) {
        say($("start-result"), errorText(r), "error");
        return;
      }
      say($("start-result"), "started run " + r.body.id + (r.body.state === "queued" ? " (queued)" : ""), "ok");
      return refreshRuns().then(function () { select(r.body.id); });
    }).catch(function () {}).then(function () { $("start-run").disabled = false; });
  });

  // --- the list of runs -----------------------------------------------------

  function stateBadge(state) {
    return el("span", {"class": "state state-" + state, text: state});
  }

  function shortTime(iso) {
    return iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z") : "";
  }

  function showRuns(list) {
    runs = list;
    var rows = $("run-rows");
    clear(rows);
    list.forEach(function (run) {
      var verdict = run.verdict || "";
      var row = el("tr", {"data-id": run.id}, [
        el("td", {text: run.id}),
        el("td", {"class": "target", title: run.target, text: run.target}),
        el("td", {}, [stateBadge(run.state),
                      run.queue_position ? " #" + run.queue_position : ""]),
        el("td", {"class": verdict ? "verdict-" + verdict : "", text: verdict}),
      ]);
      row.title = "created " + shortTime(run.created_at) +
                  (run.started_at ? ", started " + shortTime(run.started_at) : "");
      if (selected && selected.id === run.id) row.className = "selected";
      row.addEventListener("click", function () { select(run.id); });
      rows.appendChild(row);
    });
    $("no-runs").hidden = list.length > 0;
    document.body.dataset.runs = String(list.length);
    if (selected) {
      var now = list.find(function (r) { return r.id === selected.id; });
      if (now && now.state !== selected.state) loadRun(selected.id);
    }
  }

  function refreshRuns() {
    return api("GET", "/v1/runs").then(function (r) {
      if (r.status === 200) showRuns(r.body.runs);
    }).catch(function () {});
  }

  // --- one run: details, live charts, actions --------------------------------

  function ended(state) { return state !== "queued" && state !== "running"; }

  function showRun(run) {
    selected = run;
    $("run").hidden = false;
    $("run-title").textContent = run.id + " \u2014 " + run.target;
    var meta = $("run-meta");
    clear(meta);
    meta.appendChild(el("span", {}, [stateBadge(run.state)]));
    if (run.verdict) meta.appendChild(el("span", {"class": "verdict-" + run.verdict, text: "verdict " + run.verdict}));
    if (run.exit_code !== null && run.exit_code !== undefined) meta.appendChild(el("span", {text: "exit " + run.exit_code}));
    meta.appendChild(el("span", {text: "created " + shortTime(run.created_at)}));
    if (run.started_at) meta.appendChild(el("span", {text: "started " + shortTime(run.started_at)}));
    if (run.ended_at) meta.appendChild(el("span", {text: "ended " + shortTime(run.ended_at)}));
    if (run.summary && run.summary.requests !== undefined) {
      meta.appendChild(el("span", {text: run.summary.requests + " requests"}));
    }
    $("run-message").hidden = !run.message;
    $("run-message").textContent = run.message || "";
    var done = ended(run.state);
    $("stop").disabled = done;
    $("abort").disabled = done;
    $("open-report").disabled = !done;
    $("baseline").disabled = !done;
    $("compare").disabled = !done;
    document.body.dataset.run = run.id;
    document.body.dataset.runState = run.state;
    Array.prototype.forEach.call($("run-rows").children, function (row) {
      row.className = row.getAttribute("data-id") === run.id ? "selected" : "";
    });
  }

  function loadRun(id) {
    return api("GET", "/v1/runs/" + encodeURIComponent(id)).then(function (r) {
      if (r.status !== 200) {
        say($("action-result"), errorText(r), "error");
        return;
      }
      if (selected && selected.id === id) showRun(r.body);
    }).catch(function () {});
  }

  function select(id) {
    if (selected && selected.id === id && stream) return;
    stopStream();
    selected = {id: id, state: ""};
    $("run").hidden = false;  // before the charts measure their width
    say($("action-result"), "");
    $("comparison").hidden = true;
    $("report-frame").hidden = true;
    $("report-frame").removeAttribute("srcdoc");
    $("download-report").hidden = true;
    clear($("run-events"));
    resetCharts();
    loadRun(id).then(function () { followEvents(id); });
  }

  // --- charts ---------------------------------------------------------------

  var CHARTS = [
    {title: "Requests per second", lines: [{key: "rps", label: "rps", color: "#0969da"}]},
    {title: "Latency (ms)", lines: [{key: "p50", label: "p50", color: "#1a7f37"},
                                    {key: "p99", label: "p99", color: "#bc4c00"}]},
    {title: "Errors per second", lines: [{key: "errors", label: "errors", color: "#cf222e"},
                                         {key: "failures", label: "HTTP failures", color: "#8250df"}]},
  ];

  function resetCharts() {
    charts.forEach(function (c) { c.plot.destroy(); });
    charts = [];
    series = {second: [], rps: [], p50: [], p99: [], errors: [], failures: []};
    var box = $("charts");
    clear(box);
    box.dataset.points = "0";
    var width = Math.max(320, box.clientWidth || 700);
    CHARTS.forEach(function (spec) {
      var holder = el("div", {"class": "chart"}, [el("h3", {text: spec.title})]);
      box.appendChild(holder);
      var uSeries = [{label: "second"}];
      spec.lines.forEach(function (l) {
        // Points drawn while there is room for them (uPlot's own rule), lines always.
        uSeries.push({label: l.label, stroke: l.color, width: 1.5, points: {size: 5}});
      });
      var plot = new uPlot({
        width: width,
        height: 170,
        // From zero: a rate or a latency read against its own floor exaggerates changes.
        scales: {x: {time: false}, y: {range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; }}},
        axes: [{label: "second of the run", incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600]},
               {size: 64}],
        series: uSeries,
      }, chartData(spec), holder);
      charts.push({spec: spec, plot: plot});
    });
  }

  function chartData(spec) {
    var data = [series.second];
    spec.lines.forEach(function (l) { data.push(series[l.key]); });
    return data;
  }

  function num(v) { return typeof v === "number" && isFinite(v) ? v : null; }

  function addSecond(s) {
    series.second.push(num(s.second) === null ? series.second.length : s.second + 1);
    series.rps.push(num(s.rps));
    series.p50.push(num(s.p50_ms));
    series.p99.push(num(s.p99_ms));
    series.errors.push(num(s.errors));
    series.failures.push(num(s.http_failures));
    charts.forEach(function (c) { c.plot.setData(chartData(c.spec)); });
    $("charts").dataset.points = String(series.second.length);
    if (s.total) {
      $("charts").dataset.requests = String(s.total.requests);
    }
  }

  // --- events: Server-Sent Events over fetch() --------------------------------

  function stopStream() {
    if (stream) stream.abort();
    stream = null;
  }

  function onEvent(name, data, id) {
    if (!selected || selected.id !== id) return;
    var payload;
    try { payload = JSON.parse(data); } catch (e) { return; }
    if (name === "second") {
      addSecond(payload);
    } else if (name === "drill") {
      $("run-events").appendChild(el("li", {
        text: "drill " + payload.drill + " " + payload.kind + " at " + payload.at_s + " s" +
              (payload.detail ? ": " + payload.detail : "")}));
    } else if (name === "guard") {
      $("run-events").appendChild(el("li", {
        text: "abort guard at second " + payload.second + ": " + payload.reason}));
    } else if (name === "state" || name === "end") {
      loadRun(id);
      refreshRuns();
    }
  }

  function followEvents(id) {
    var controller = new AbortController();
    stream = controller;
    fetch("/v1/runs/" + encodeURIComponent(id) + "/events", {
      headers: {"Authorization": "Bearer " + token, "Accept": "text/event-stream"},
      cache: "no-store",
      signal: controller.signal,
    }).then(function (response) {
      if (response.status === 401) {
        showLogin("The server refused this token (401).");
        return;
      }
      if (response.status !== 200 || !response.body) {
        say($("action-result"), "events: HTTP " + response.status, "error");
        return;
      }
      var reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      var buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) return;
          buffer += chunk.value.replace(/\r\n?/g, "\n");
          var end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            var block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            var name = "message";
            var data = [];
            block.split("\n").forEach(function (line) {
              if (line.indexOf("event:") === 0) name = line.slice(6).trim();
              else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
            });
            if (data.length) onEvent(name, data.join("\n"), id);
          }
          return pump();
        });
      }
      return pump();
    }).catch(function (e) {
      if (e.name !== "AbortError") say($("action-result"), "events: " + e.message, "error");
    }).then(function () {
      if (stream === controller) stream = null;
    });
  }

  // --- actions --------------------------------------------------------------

  function runAction(method, what, done) {
    if (!selected) return;
    var id = selected.id;
    say($("action-result"), "");
    api(method, "/v1/runs/" + encodeURIComponent(id) + "/" + what).then(function (r) {
      if (!selected || selected.id !== id) return;
      if (r.status >= 300) {
        say($("action-result"), errorText(r), "error");
        return;
      }
      done(r, id);
    }).catch(function () {});
  }

  $("stop").addEventListener("click", function () {
    runAction("POST", "stop", function () {
      say($("action-result"), "stop asked: the run writes its results for what ran", "ok");
    });
  });
  $("abort").addEventListener("click", function () {
    // Unlike stop, nothing of the run is kept: ask first.
    if (!window.confirm("Abort run " + selected.id + "? It is killed and writes no results.")) return;
    runAction("POST", "abort", function () {
      say($("action-result"), "abort asked: the run is killed, nothing more is written", "ok");
    });
  });

  // The report is a self-contained page: shown in a sandboxed frame (an
  // opaque origin: its scripts run, but cannot reach this page or its token).
  $("open-report").addEventListener("click", function () {
    runAction("GET", "report", function (r, id) {
      var frame = $("report-frame");
      frame.srcdoc = r.body;
      frame.hidden = false;
      var link = $("download-report");
      if (link.href) URL.revokeObjectURL(link.href);
      link.href = URL.createObjectURL(new Blob([r.body], {type: "text/html"}));
      link.download = "millstone-report-" + id + ".html";
      link.hidden = false;
      document.body.dataset.report = id;
      frame.scrollIntoView();
    });
  });

  $("baseline").addEventListener("click", function () {
    runAction("POST", "baseline", function (r) {
      say($("action-result"), "baseline of " + r.body.key + " (history run " + r.body.run_id + ")", "ok");
    });
  });

  function fmtValue(v, unit) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number") return (Math.round(v * 1000) / 1000) + (unit ? " " + unit : "");
    return String(v);
  }

  $("compare").addEventListener("click", function () {
    runAction("GET", "compare", function (r) {
      var c = r.body;
      var box = $("comparison");
      clear(box);
      box.appendChild(el("h3", {
        text: "against baseline " + c.baseline + ": " + (c.regression ? "REGRESSION" : "no regression") +
              " (tolerance " + Math.round(c.tolerance * 100) + "%)"}));
      (c.warnings || []).forEach(function (w) { box.appendChild(el("p", {"class": "muted", text: w})); });
      (c.load_differences || []).forEach(function (d) {
        box.appendChild(el("p", {"class": "muted",
                                 text: "load differs: " + d.what + " " + d.baseline + " \u2192 " + d.run}));
      });
      var body = el("tbody");
      (c.metrics || []).forEach(function (m) {
        var change = m.change_pct === null || m.change_pct === undefined ? "" :
                     (m.change_pct > 0 ? "+" : "") + m.change_pct.toFixed(1) + "%";
        body.appendChild(el("tr", {}, [
          el("td", {text: m.metric}),
          el("td", {text: fmtValue(m.baseline, m.unit)}),
          el("td", {text: fmtValue(m.run, m.unit)}),
          el("td", {text: change}),
          el("td", {"class": m.verdict === "REGRESSION" ? "regressed" : m.verdict === "better" ? "improved" : "",
                    text: m.verdict}),
        ]));
      });
      box.appendChild(el("table", {}, [
        el("thead", {}, [el("tr", {}, ["metric", "baseline", "this run", "change", "verdict"].map(
            function (h) { return el("th", {text: h}); }))]),
        body]));
      box.hidden = false;
      document.body.dataset.compared = c.regression ? "regression" : "ok";
    });
  });

  if (token) connect();
  else showLogin("");
})();
