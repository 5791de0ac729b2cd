// Draws millstone's HTML report from the run record embedded as JSON
// (<script id="run-data">). Text from the run only ever goes through
// textContent, never innerHTML, so no payload can inject markup.
// A comparison (`millstone compare --report`) is drawn by compare.js with
// the same pieces. When done: body[data-status="ok"], data-charts (charts
// drawn), data-points (values plotted), data-markers (scenario boundaries)
// and data-bands (drill windows and lost agents shaded, counted once per
// chart when first painted); on any error data-status="error: ...".
(function () {
  "use strict";
  var body = document.body;
  var chartCount = 0;
  var pointCount = 0;
  var markerCount = 0;
  var bandCount = 0;
  var palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04",
                 "#db2777", "#4b5563", "#65a30d"];

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") node.textContent = attrs[k];
        else node.setAttribute(k, attrs[k]);
      });
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function num(v) { return typeof v === "number" && isFinite(v) ? v : 0; }
  function fmtInt(v) { return Math.round(num(v)).toLocaleString("en-US"); }
  function fmtMs(v) {
    v = num(v);
    if (v >= 1000) return (v / 1000).toFixed(2) + " s";
    if (v >= 10) return v.toFixed(1) + " ms";
    return v.toFixed(2) + " ms";
  }
  function fmtBytes(v) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    v = num(v);
    var u = 0;
    while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
    return v.toFixed(u ? 1 : 0) + " " + units[u];
  }
  function fmtDate(ms) {
    if (!ms) return "-";
    return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }
  function pct(a, b) { return b ? (100 * a / b).toFixed(2) + "%" : "-"; }

  function section(title, id) {
    var s = el("section", id ? {id: id} : null, [el("h2", {text: title})]);
    document.getElementById("main").appendChild(s);
    return s;
  }

  // headers: [{label, num}], rows: arrays of cells (strings or nodes).
  function table(headers, rows) {
    var head = el("tr", null, headers.map(function (h) {
      return el("th", h.num ? {"class": "num", text: h.label} : {text: h.label});
    }));
    var trs = rows.map(function (row) {
      return el("tr", null, row.map(function (cell, i) {
        var td = el("td", headers[i] && headers[i].num ? {"class": "num"} : null);
        if (cell instanceof Node) td.appendChild(cell);
        else td.textContent = cell === undefined || cell === null ? "" : String(cell);
        return td;
      }));
    });
    return el("table", null, [el("thead", null, [head]), el("tbody", null, trs)]);
  }

  function keyValues(obj) {
    var rows = [];
    Object.keys(obj || {}).forEach(function (k) {
      var v = obj[k];
      if (v === null || v === undefined || v === "") return;
      if (typeof v === "object") v = JSON.stringify(v);
      rows.push(el("tr", null, [el("td", {"class": "key", text: k}), el("td", null, [el("code", {text: String(v)})])]));
    });
    return el("table", null, [el("tbody", null, rows)]);
  }

  function tag(ok, yes, no) {
    return el("span", {"class": "tag " + (ok ? "pass" : "fail"), text: ok ? (yes || "pass") : (no || "FAIL")});
  }

  function empty(text) { return el("p", {"class": "empty", text: text}); }

  // The width of the box the chart goes in (its section's content box).
  function chartWidth(box) {
    return Math.max(360, Math.min(1600, box.clientWidth || 800));
  }

  function stats(values) {
    var n = 0, sum = 0, min = null, max = null;
    values.forEach(function (v) {
      if (typeof v !== "number" || !isFinite(v)) return;
      n++; sum += v;
      if (min === null || v < min) min = v;
      if (max === null || v > max) max = v;
    });
    return n ? {min: min, mean: sum / n, max: max} : null;
  }

  // Draws dashed vertical lines with a label at the top: where one scenario
  // ends and the next begins. markers: [{x, text}] in x-axis units.
  function markerPlugin(markers) {
    return {hooks: {draw: function (u) {
      var ctx = u.ctx;
      var dpr = window.devicePixelRatio || 1;
      ctx.save();
      ctx.strokeStyle = "#6b7280";
      ctx.fillStyle = "#374151";
      ctx.lineWidth = dpr;
      ctx.setLineDash([5 * dpr, 4 * dpr]);
      ctx.font = (11 * dpr) + "px system-ui, sans-serif";
      ctx.textBaseline = "top";
      ctx.textAlign = "left";  // uPlot leaves the axes' alignment behind
      markers.forEach(function (m, i) {
        var x = Math.round(u.valToPos(m.x, "x", true));
        if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
        ctx.beginPath();
        ctx.moveTo(x, u.bbox.top);
        ctx.lineTo(x, u.bbox.top + u.bbox.height);
        ctx.stroke();
        var w = ctx.measureText(m.text).width;
        var tx = x + 4 * dpr + w > u.bbox.left + u.bbox.width ? x - 4 * dpr - w : x + 4 * dpr;
        ctx.fillText(m.text, tx, u.bbox.top + (2 + 13 * (i % 2)) * dpr);
      });
      ctx.restore();
    }}};
  }

  // Shades each drill's fault window (summary.drills) across the plot, with
  // its name at the bottom: what the series did before, during and after.
  // bands: [{from, to, text}] in x-axis units.
  function bandPlugin(bands) {
    var counted = false;
    return {hooks: {drawClear: function (u) {
      var painted = 0;
      var ctx = u.ctx;
      var dpr = window.devicePixelRatio || 1;
      ctx.save();
      ctx.font = (11 * dpr) + "px system-ui, sans-serif";
      ctx.textBaseline = "bottom";
      ctx.textAlign = "left";
      bands.forEach(function (b, i) {
        var left = u.bbox.left, right = u.bbox.left + u.bbox.width;
        var x0 = Math.max(left, Math.round(u.valToPos(b.from, "x", true)));
        var x1 = Math.min(right, Math.round(u.valToPos(b.to, "x", true)));
        if (x1 < x0) return;
        ctx.fillStyle = b.loss ? "rgba(75, 85, 99, 0.16)"
                      : b.failed ? "rgba(220, 38, 38, 0.12)" : "rgba(245, 158, 11, 0.16)";
        ctx.fillRect(x0, u.bbox.top, Math.max(x1 - x0, dpr), u.bbox.height);
        ctx.fillStyle = b.loss ? "#374151" : "#92400e";
        ctx.fillText(b.text, x0 + 3 * dpr, u.bbox.top + u.bbox.height - (2 + 13 * (i % 2)) * dpr);
        painted++;
      });
      ctx.restore();
      if (!counted) {
        // uPlot draws after the script has finished: count here.
        bandCount += painted;
        counted = true;
        body.dataset.bands = String(bandCount);
      }
    }}};
  }

  // The drills that started, as bands: from their start to their end (or
  // the run's end while still on).
  function drillBands(s) {
    return (s.drills || []).filter(function (d) { return typeof d.start_s === "number"; })
        .map(function (d) {
          var to = typeof d.end_s === "number" ? d.end_s : num(s.duration_s);
          return {from: d.start_s, to: Math.max(to, d.start_s), text: d.name,
                  failed: d.status !== "done"};
        });
  }

  // An agent's name as the summary gives it, with its host when known.
  function lossName(l) {
    return l.agent + (l.host ? " (" + l.host + ")" : "");
  }

  function percentText(share) {
    return (Math.round(num(share) * 1000) / 10) + "%";
  }

  // Each lost agent (summary.agent_losses), as a band from the first second
  // it did not report to the end: those seconds lack its share of the load.
  function lossBands(s) {
    return (s.agent_losses || []).filter(function (l) { return typeof l.at_second === "number"; })
        .map(function (l) {
          var to = Math.max(num(s.duration_s), l.at_second);
          return {from: l.at_second, to: to, text: "lost " + (l.host || l.agent), loss: true,
                  note: "agent " + lossName(l) + " lost from " + l.at_second + " s to the end (" +
                        percentText(l.missing_share) + " of the load missing)"};
        });
  }

  // A legend that needs no cursor, so a printed page still shows the numbers:
  // one row per series with its colour and its statistics (opts.legend(values)
  // -> [[header, text]], by default min, mean and max).
  function staticLegend(series, colors, legend) {
    var rows = [];
    var headers = null;
    series.forEach(function (s, i) {
      var cells = legend(s.values);
      if (!headers) headers = cells.map(function (c) { return c[0]; });
      var swatch = el("span", {"class": "swatch", style: "background:" + colors[i]});
      rows.push(el("tr", null, [el("td", null, [swatch, s.label])].concat(cells.map(function (c) {
        return el("td", {"class": "num", text: c[1]});
      }))));
    });
    var head = el("tr", null, [el("th", {text: "series"})].concat((headers || []).map(function (h) {
      return el("th", {"class": "num", text: h});
    })));
    return el("table", {"class": "legend-static"}, [el("thead", null, [head]), el("tbody", null, rows)]);
  }

  // series: [{label, values, color?}] over the x values; opts: title, yLabel, xLabel, xAxis,
  // note, markers ([{x, text}]), format (a value for the legend), legend (see staticLegend).
  function chart(parent, opts, xs, series) {
    var box = el("div", {"class": "chart"}, [el("h3", {text: opts.title})]);
    if (opts.note) box.appendChild(el("div", {"class": "note", text: opts.note}));
    parent.appendChild(box);
    var data = [xs];
    var uSeries = [{label: opts.xLabel || "second"}];
    var colors = [];
    series.forEach(function (s, i) {
      data.push(s.values);
      s.values.forEach(function (v) { if (v !== null && v !== undefined) pointCount++; });
      colors.push(s.color || palette[i % palette.length]);
      uSeries.push({
        label: s.label,
        stroke: colors[i],
        width: 1.5,
        spanGaps: false,
        points: {show: xs.length < 40},
      });
    });
    // Whole seconds on the time axis.
    var xAxis = opts.xAxis ||
                {label: opts.xLabel || "second of the run", incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600]};
    var markers = opts.markers || [];
    var bands = opts.bands || [];
    var plugins = [];
    if (markers.length) plugins.push(markerPlugin(markers));
    if (bands.length) plugins.push(bandPlugin(bands));
    new uPlot({
      width: chartWidth(box),
      height: opts.height || 240,
      scales: {x: Object.assign({time: false}, opts.xScale || {})},
      series: uSeries,
      axes: [xAxis, {label: opts.yLabel, size: 60}],
      legend: {live: true},
      plugins: plugins,
    }, data, box);
    markerCount += markers.length;
    if (markers.length) {
      box.appendChild(el("div", {"class": "note markers", text: "Dashed lines: " + markers.map(function (m) {
        return m.text + " at " + m.x + " s";
      }).join("; ")}));
    }
    if (bands.length) {
      box.appendChild(el("div", {"class": "note drills", text: "Shaded: " + bands.map(function (b) {
        return b.note || "drill " + b.text + " from " + b.from + " s to " + b.to + " s";
      }).join("; ")}));
    }
    var format = opts.format || function (v) { return v.toFixed(1); };
    var legend = opts.legend || function (values) {
      var st = stats(values);
      return [["min", st ? format(st.min) : "-"], ["mean", st ? format(st.mean) : "-"],
              ["max", st ? format(st.max) : "-"]];
    };
    if (series.length) box.appendChild(staticLegend(series, colors, legend));
    chartCount++;
  }

  function statGrid(items) {
    return el("div", {"class": "grid"}, items.map(function (it) {
      return el("div", {"class": "stat"}, [el("div", {"class": "label", text: it[0]}),
                                          el("div", {"class": "value", text: it[1]})]);
    }));
  }

  // Latency by percentile: x is -log10(1 - q), so 90%, 99%, 99.9% are evenly
  // spaced, as HdrHistogram plots are drawn. percentiles: the x values (0..100).
  function percentileChart(parent, title, percentiles, series) {
    var maxPos = 5;
    function pos(p) { return Math.min(maxPos, -Math.log10(Math.max(1 - p / 100, Math.pow(10, -maxPos)))); }
    function label(x) {
      if (x >= maxPos) return "100%";
      var p = 100 * (1 - Math.pow(10, -x));
      return (Math.round(p * 1000) / 1000) + "%";
    }
    function at(values, p) {
      var i = percentiles.indexOf(p);
      return i >= 0 && typeof values[i] === "number" ? fmtMs(values[i]) : "-";
    }
    chart(parent, {
      title: title, yLabel: "ms", xLabel: "percentile", height: 300,
      legend: function (values) {
        return [["p50", at(values, 50)], ["p99", at(values, 99)], ["p99.9", at(values, 99.9)],
                ["max", at(values, 100)]];
      },
      note: "Horizontal axis: 0%, 90%, 99%, 99.9%, ... evenly spaced; the last point is the maximum.",
      xScale: {range: function () { return [0, maxPos]; }},
      xAxis: {
        label: "percentile",
        splits: function () { var a = []; for (var i = 0; i <= maxPos; i++) a.push(i); return a; },
        values: function (u, splits) { return splits.map(label); },
      },
    }, percentiles.map(pos), series);
  }

  // The base URL a scenario's requests went to (the summary's target; for runs
  // recorded before it existed, what follows " -> " in its url), or a URL
  // run's method and URL.
  function targetOf(run) {
    var s = run.summary || {};
    if (s.model === "scenario") {
      if (s.target) return s.target;
      var url = s.url || "";
      var at = url.lastIndexOf(" -> ");
      return at >= 0 ? url.slice(at + 4) : "";
    }
    return (s.method || "GET") + " " + (s.url || run.name || "");
  }

  function secondsText(v) { return String(Math.round(num(v) * 10) / 10) + " s"; }

  // The load the run was asked for, in one line.
  function loadText(s) {
    var planned = " for " + secondsText(s.planned_duration_s);
    if (s.model === "open") {
      return "open model: " + num(s.rate) + " req/s over " + fmtInt(s.connections) + " connections" + planned;
    }
    if (s.model === "closed") return "closed model: " + fmtInt(s.connections) + " connections" + planned;
    if (s.model === "scenario") {
      var parts = (s.scenarios || []).map(function (sc) {
        return sc.name + " (" + sc.executor + ", " + secondsText(sc.start_s) + " to " + secondsText(sc.end_s) + ")";
      });
      return (parts.length ? parts.join(", ") + "; " : "") + "peak " + fmtInt(s.peak_vus) + " VUs";
    }
    return "";
  }

  // Why the run did not pass, from its exit code (docs/exit-codes.md).
  function failureReasons(run) {
    var s = run.summary || {};
    var code = run.exit_code;
    if (code === 0) return [];
    if (code === 99) {
      var failed = (s.thresholds || []).filter(function (t) { return !t.passed && t.status !== "no_data"; });
      var reasons = failed.map(function (t) {
        return "Threshold failed: " + t.threshold + ": observed " + t.observed +
               (t.location ? " (" + t.location + ")" : "");
      });
      // SLO objectives: in which phases, windows or recoveries each failed.
      ((s.slo && s.slo.objectives) || []).filter(function (o) { return !o.passed; }).forEach(function (o) {
        var where = (o.phases || []).filter(function (p) { return !p.passed && !p.no_data; }).map(function (p) {
          return p.phase + " (observed " + p.observed + ")";
        });
        (o.recovery || []).filter(function (r) { return r.status === "not_recovered"; }).forEach(function (r) {
          where.push("did not recover after " + r.fault);
        });
        if (!where.length && o.windows && o.windows.failed) {
          where.push(o.windows.failed + " of " + o.windows.count + " windows");
        }
        reasons.push("SLO failed: " + o.objective + ": " + (where.length ? where.join(", ") : "no data") +
                     (o.location ? " (" + o.location + ")" : ""));
      });
      return reasons.length ? reasons : ["Thresholds or SLOs failed (exit code 99)."];
    }
    if (code === 5) {
      var workers = s.worker_failures || [];
      var drills = (s.drills || []).filter(function (d) { return d.status === "failed" || d.status === "undo_failed"; });
      if (!workers.length && drills.length) {
        return drills.map(function (d) {
          var action = d.status === "failed" ? d.start : d.end;
          return "Incomplete: drill " + d.name + (d.status === "failed" ? " failed to start" : " was not undone") +
                 (action ? ": " + action.detail : "");
        });
      }
      if (!workers.length) return ["Incomplete: a worker process died or hung (exit code 5)."];
      return workers.map(function (f) { return "Incomplete: " + f; });
    }
    if (code === 9) {
      var losses = s.agent_losses || [];
      if (!losses.length) return ["Completed degraded: an agent was lost (exit code 9)."];
      return losses.map(function (l) {
        return "Completed degraded: " + lossName(l) + " lost at second " + l.at_second + "; " +
               percentText(l.missing_share) + " of the load missing from then on (" + l.cause + ")";
      });
    }
    if (code === 130) {
      return ["Interrupted (Ctrl-C or SIGTERM) after " + secondsText(s.duration_s) + " of " +
              secondsText(s.planned_duration_s) + " (exit code 130)."];
    }
    if (code === 3) return ["An output file could not be written (exit code 3)."];
    return ["Exit code " + code + "."];
  }

  // The generator's own load and the targets' metrics (docs/monitoring.md),
  // stacked under the load charts on the same seconds: [second, value]
  // points placed on the load charts' x values, gaps where a second has none.
  function onSeconds(xs, points) {
    var bySecond = {};
    (points || []).forEach(function (p) { if (Array.isArray(p) && typeof p[1] === "number") bySecond[p[0]] = p[1]; });
    return xs.map(function (x) { return typeof bySecond[x] === "number" ? bySecond[x] : null; });
  }

  function monitorCharts(parent, s, xs, markers, bands) {
    var gen = s.generator;
    if (gen && (gen.workers || []).length) {
      var genSeries = [];
      gen.workers.forEach(function (w) {
        var name = "worker " + w.worker + (w.saturated ? " (saturated)" : "");
        genSeries.push({label: name + " CPU, % of a core", values: onSeconds(xs, w.cpu_percent)});
        genSeries.push({label: name + " event loop busy %", values: onSeconds(xs, w.loop_busy_percent)});
      });
      chart(parent, {title: "Load generator: CPU and event loop per worker", yLabel: "%", markers: markers, bands: bands,
                     note: gen.limited ? "The load generator, not the target, limited this run." : "Saturated: " + (gen.saturated_when || "")},
            xs, genSeries);
    }
    var mon = s.monitor;
    if (!mon) return;
    (mon.targets || []).forEach(function (t) {
      if (t.warning) parent.appendChild(el("p", {"class": "warning monitor-warning", text: "Monitor: " + t.warning}));
    });
    // One chart per target and unit: node_exporter's CPU, memory and
    // network each get their own; selected series share one per unit.
    var titles = {"%": "CPU busy", "bytes": "memory used", "bytes/s": "network", "/s": "counters, per second", "": "gauges"};
    var groups = [];
    var byKey = {};
    (mon.series || []).forEach(function (ser) {
      var key = ser.target + "\u0000" + ser.kind + "\u0000" + ser.unit;
      if (!byKey[key]) {
        byKey[key] = {target: ser.target, kind: ser.kind, unit: ser.unit, series: []};
        groups.push(byKey[key]);
      }
      byKey[key].series.push(ser);
    });
    groups.forEach(function (g) {
      var what = g.kind === "node" ? (titles[g.unit] || g.unit) : (g.unit === "/s" ? "counters, per second" : "gauges");
      var format = g.unit === "bytes" ? fmtBytes : g.unit === "bytes/s" ? function (v) { return fmtBytes(v) + "/s"; }
                                                                        : function (v) { return v.toFixed(1); };
      chart(parent, {title: "Target " + g.target + ": " + what, yLabel: g.unit || "value", markers: markers, bands: bands, format: format},
            xs, g.series.map(function (ser) {
        var label = ser.kind === "node" ? ser.name.replace(/_/g, " ") : ser.name;
        return {label: label, values: onSeconds(xs, ser.points)};
      }));
    });
  }

  // The timeline with its last second, usually cut short by the end of the
  // run, as per-second values: its counts divided by its real length (the
  // summary's rps already is), so it is not drawn as a dip. A last sliver
  // under 0.1 s is left out: too short to be a rate.
  function perSecond(s) {
    var tl = (s.timeline || []).slice();
    if (!tl.length) return {entries: tl, note: ""};
    var last = tl[tl.length - 1];
    var length = num(s.duration_s) - num(last.second);
    if (length > 0 && length < 0.1 && tl.length > 1) {
      tl.pop();
      return {entries: tl, note: "The last " + length.toFixed(2) + " s of the run is left out: too short to be a rate."};
    }
    if (length >= 0.1 && length < 1) {
      var scaled = Object.assign({}, last);
      ["requests", "errors", "http_failures", "connections_opened", "connections_established", "dropped_iterations", "checks_passed", "checks_failed",
       "bytes_sent", "bytes_received"].forEach(function (k) {
        if (typeof last[k] === "number") scaled[k] = last[k] / length;
      });
      scaled.rps = num(last.requests) / length;
      tl[tl.length - 1] = scaled;
      return {entries: tl, note: "The last second lasted " + length.toFixed(2) +
                                 " s; its counts are shown per second of that length."};
    }
    return {entries: tl, note: ""};
  }

  // Where one scenario ends and another begins: [{x, text}] for the charts.
  function scenarioMarkers(s) {
    var list = s.scenarios || [];
    if (list.length < 2) return [];
    var total = 0;
    list.forEach(function (sc) { total = Math.max(total, num(sc.end_s)); });
    var at = {};
    function add(x, kind, name) {
      var k = String(x);
      at[k] = at[k] || {x: x, ends: [], starts: []};
      at[k][kind].push(name);
    }
    list.forEach(function (sc) {
      if (num(sc.start_s) > 0) add(num(sc.start_s), "starts", sc.name);
      if (num(sc.end_s) < total) add(num(sc.end_s), "ends", sc.name);
    });
    return Object.keys(at).map(function (k) { return at[k]; })
        .sort(function (a, b) { return a.x - b.x; })
        .map(function (m) {
          var parts = [];
          if (m.ends.length) parts.push(m.ends.join(", ") + " ends");
          if (m.starts.length) parts.push(m.starts.join(", ") + " starts");
          return {x: m.x, text: parts.join(", ")};
        });
  }

  function render(run) {
    var s = run.summary || {};
    var env = run.environment || s.environment || {};
    var scenario = s.model === "scenario";
    // The verdict names what it judged (run_verdict() in results/record.cc):
    // a run without thresholds is COMPLETED, not PASSED.
    var verdict = run.verdict || {word: run.exit_code === 0 ? "COMPLETED" : "FAILED", judged: "", good: run.exit_code === 0};
    var badge = verdict.word === "PASSED" ? "pass" : verdict.word === "COMPLETED" ? "neutral" : "fail";
    var started = num(env.started_unix_ms);
    var ended = started ? started + num(s.duration_s) * 1000 : 0;

    // Header.
    var header = document.getElementById("header");
    header.appendChild(el("h1", null, [el("span", {"class": "verdict " + badge, text: verdict.word}),
                                       scenario && s.scenario ? s.scenario : (run.name || s.url || "")]));
    var reasons = failureReasons(run);
    if (reasons.length) {
      header.appendChild(el("div", {"class": "reason", id: "reason"}, reasons.map(function (r) {
        return el("div", {text: r});
      })));
    }
    header.appendChild(el("div", {"class": "meta"}, [
      el("span", {text: "run " + (run.id || s.run_id || "-")}),
      scenario ? el("span", {text: "scenario file " + ((run.config || {}).scenario_file || run.name || "")}) : null,
      el("span", {text: "target " + targetOf(run)}),
      el("span", {text: "load " + loadText(s)}),
      el("span", {text: "started " + fmtDate(started)}),
      el("span", {text: "ended " + fmtDate(ended)}),
      el("span", {text: "exit code " + run.exit_code}),
    ]));
    if (verdict.judged) header.appendChild(el("p", {"class": "judged", text: verdict.word + ": " + verdict.judged}));
    document.title = verdict.word + " " + (run.name || "") + " - millstone";

    // Overview numbers.
    var lat = s.latency_ms || {};
    var ov = section("Overview", "overview");
    var items = [
      ["requests", fmtInt(s.requests)], ["requests / s", num(s.rps).toFixed(1)],
      // One definition of errors (docs/summary-json.md): failed / attempts.
      ["error rate", typeof s.error_rate === "number" ? (100 * s.error_rate).toFixed(2) + "%"
                       : pct(num(s.error_total), num(s.requests) + num(s.error_total))],
      ["HTTP failures (status >= 400)", fmtInt(s.http_failures)],
      ["transport errors", fmtInt(s.error_total)],
      ["latency p50", fmtMs(lat.p50)], ["latency p90", fmtMs(lat.p90)], ["latency p99", fmtMs(lat.p99)],
      ["latency p99.9", fmtMs(lat.p999)], ["latency max", fmtMs(lat.max)],
      ["duration", num(s.duration_s).toFixed(1) + " s of " + num(s.planned_duration_s).toFixed(1) + " s"],
      ["sent", fmtBytes(s.bytes_sent)], ["received", fmtBytes(s.bytes_received)],
      ["connections established", fmtInt(s.connections_established) + " of " +
                                  fmtInt(s.connections_attempted !== undefined ? s.connections_attempted : s.connections_opened) + " attempted"],
      ["requests in flight at the end", fmtInt(s.in_flight)],
    ];
    if (scenario) items.push(["peak VUs", fmtInt(s.peak_vus)]);
    else items.push(["connections", fmtInt(s.connections)]);
    if (s.model === "open") items.push(["planned rate", num(s.rate) + " req/s"]);
    if (scenario) items.push(["dropped iterations", fmtInt(s.dropped_iterations)]);
    items.push(["workers", fmtInt(s.workers)]);
    ov.appendChild(statGrid(items));
    if (s.generator && s.generator.limited) {
      ov.appendChild(el("p", {"class": "warning", id: "generator-limited", text: "Limited by the generator: " + s.generator.reason}));
    }
    if (s.knee && s.knee.text) {
      ov.appendChild(el("p", {"class": "note", id: "knee", text: s.knee.text.charAt(0).toUpperCase() + s.knee.text.slice(1) + "."}));
    }
    if (s.interrupted) ov.appendChild(el("p", {"class": "warning", text: "The run was interrupted."}));
    (s.worker_failures || []).forEach(function (f) {
      ov.appendChild(el("p", {"class": "warning", text: "Incomplete: " + f}));
    });

    // The open model's schedule: whether requests went out when they were due.
    if (s.model === "open" && s.schedule) {
      var sch = s.schedule;
      var sched = section("Open-model schedule", "schedule");
      sched.appendChild(statGrid([
        ["planned rate", num(s.rate) + " req/s"], ["scheduled", fmtInt(sch.scheduled)],
        ["started late", fmtInt(sch.started_late) + " (" + pct(num(sch.started_late), num(sch.scheduled)) + ")"],
        ["not started", fmtInt(sch.not_started) + " (" + pct(num(sch.not_started), num(sch.scheduled)) + ")"],
        ["generator lag max", fmtMs(sch.max_generator_lag_ms)],
      ]));
      if (num(sch.started_late) || num(sch.not_started)) {
        sched.appendChild(el("p", {"class": "warning", text:
            fmtInt(sch.started_late) + " requests started 1 ms or more after they were due and " +
            fmtInt(sch.not_started) + " never started: the target, or " + fmtInt(s.connections) +
            " connections, could not keep up with " + num(s.rate) + " req/s."}));
      }
      sched.appendChild(el("p", {"class": "note", text:
          "Request k is due at start + k / rate. Started late: sent 1 ms or more after it was due; " +
          "not started: still waiting when the run ended. Latency counts from when each request was due."}));
    }

    // Time series.
    var series = perSecond(s);
    var tl = series.entries;
    var markers = scenarioMarkers(s);
    // The saturation knee of a ramp (docs/scenarios.md#saturation-knee), on
    // the load charts: where p99 turned up while throughput stopped growing.
    var loadMarkers = markers;
    if (s.knee && typeof s.knee.second === "number") {
      loadMarkers = markers.concat([{x: s.knee.second, text: "saturation knee ~" + Math.round(num(s.knee.rps)) + " rps"}])
          .sort(function (a, b) { return a.x - b.x; });
    }
    var bands = drillBands(s).concat(lossBands(s));
    var xs = tl.map(function (t) { return num(t.second); });
    function col(name) { return tl.map(function (t) { return typeof t[name] === "number" ? t[name] : null; }); }
    var over = section("Over time", "timeline");
    if (!tl.length) over.appendChild(empty("The run recorded no whole second."));
    chart(over, {title: "Throughput and errors", yLabel: "per second", note: series.note, markers: loadMarkers, bands: bands}, xs,
          [{label: "requests/s", values: col("rps")},
           {label: "transport errors/s", values: col("errors"), color: "#dc2626"},
           {label: "HTTP failures/s", values: col("http_failures"), color: "#ea580c"}]);
    chart(over, {title: "Latency", yLabel: "ms", markers: loadMarkers, bands: bands, format: fmtMs}, xs,
          [{label: "p50", values: col("p50_ms")}, {label: "p90", values: col("p90_ms")},
           {label: "p99", values: col("p99_ms")}, {label: "max", values: col("max_ms")}]);
    if (scenario) {
      chart(over, {title: "Virtual users", yLabel: "VUs", markers: loadMarkers, bands: bands}, xs, [{label: "VUs", values: col("vus")}]);
      var stepNames = (s.steps || []).map(function (st) { return st.name; });
      chart(over, {title: "p99 latency per step", yLabel: "ms", markers: markers, bands: bands, format: fmtMs}, xs,
            stepNames.map(function (name) {
        return {label: name, values: tl.map(function (t) {
          var st = t.steps && t.steps[name];
          return st ? num(st.p99_ms) : null;
        })};
      }));
    } else {
      chart(over, {title: "Connections attempted and established", yLabel: "per second", note: series.note,
                   markers: markers, bands: bands}, xs,
            [{label: "attempted", values: col("connections_opened")},
             {label: "established", values: col("connections_established")}]);
    }
    monitorCharts(over, s, xs, markers, bands);

    var dist = section("Latency distribution", "distribution");
    var curve = s.latency_percentiles || [];
    var curveSeries = [{label: "all requests", values: curve.map(function (c) { return num(c[1]); })}];
    (s.steps || []).forEach(function (st) {
      var c = st.latency_percentiles || [];
      if (c.length === curve.length) curveSeries.push({label: st.name, values: c.map(function (v) { return num(v[1]); })});
    });
    if (!curve.length) dist.appendChild(empty("No complete responses."));
    percentileChart(dist, "Latency by percentile", curve.map(function (c) { return num(c[0]); }), curveSeries);

    // Scenario tables.
    if (scenario) {
      var steps = section("Steps", "steps");
      if (!(s.steps || []).length) steps.appendChild(empty("No request steps."));
      else steps.appendChild(table(
        [{label: "step"}, {label: "requests", num: 1}, {label: "failed", num: 1}, {label: "errors", num: 1},
         {label: "extract failed", num: 1}, {label: "p50", num: 1}, {label: "p90", num: 1}, {label: "p95", num: 1},
         {label: "p99", num: 1}, {label: "max", num: 1}],
        s.steps.map(function (st) {
          var l = st.latency_ms || {};
          return [st.name, fmtInt(st.requests), fmtInt(st.failed), fmtInt(st.errors), fmtInt(st.extract_failed),
                  fmtMs(l.p50), fmtMs(l.p90), fmtMs(l.p95), fmtMs(l.p99), fmtMs(l.max)];
        })));

      var flows = section("Flows", "flows");
      if (!(s.flows || []).length) flows.appendChild(empty("No flows."));
      else flows.appendChild(table(
        [{label: "flow"}, {label: "iterations", num: 1}, {label: "aborted", num: 1},
         {label: "checks passed", num: 1}, {label: "checks failed", num: 1}],
        s.flows.map(function (f) {
          return [f.name, fmtInt(f.iterations), fmtInt(f.aborted), fmtInt(f.checks_passed), fmtInt(f.checks_failed)];
        })));

      var checks = section("Checks", "checks");
      if (!(s.checks || []).length) checks.appendChild(empty("No checks."));
      else checks.appendChild(table(
        [{label: ""}, {label: "check"}, {label: "passed", num: 1}, {label: "failed", num: 1}, {label: "pass rate", num: 1}],
        s.checks.map(function (c) {
          var name = el("div", null, [el("code", {text: c.name})]);
          if ((c.samples || []).length) {
            name.appendChild(el("ul", {"class": "samples"}, c.samples.map(function (t) { return el("li", {text: t}); })));
          }
          // A check whose step never got a response neither passed nor failed.
          var ran = num(c.passed) + num(c.failed) > 0;
          return [ran ? tag(!num(c.failed), "ok") : el("span", {"class": "tag", text: "not run"}), name,
                  fmtInt(c.passed), fmtInt(c.failed), pct(num(c.passed), num(c.passed) + num(c.failed))];
        })));

      if ((s.drills || []).length) {
        // What each fault did (docs/scenarios.md#drills); shaded on the charts above.
        var dr = section("Drills", "drills");
        dr.appendChild(table([{label: "drill"}, {label: "action"}, {label: "start", num: true}, {label: "end", num: true}, {label: "status"}, {label: "what happened"}],
          s.drills.map(function (d) {
            var what = d.start ? d.start.detail : "planned at " + secondsText(d.planned_start_s) + "; the run ended first";
            if (d.start && !d.start.ok && d.start.output) what += " (" + d.start.output.split("\n")[0] + ")";
            if (d.end) what += "; " + (d.ended_by_run ? "at the run's end, " : "") + "undo: " + d.end.detail;
            return [d.name, d.action, typeof d.start_s === "number" ? secondsText(d.start_s) : "-",
                    typeof d.end_s === "number" ? secondsText(d.end_s) : "-",
                    tag(d.status === "done", d.status, d.status), what];
          })));
      }

      var dp = s.drill_phases;
      if (dp && (dp.phases || []).length) {
        // Before, during and after each fault, and the way back to before
        // (docs/scenarios.md#phases-and-recovery).
        var ph = section("Phases", "phases");
        ph.appendChild(table([{label: "phase"}, {label: "seconds"}, {label: "requests", num: true}, {label: "rps", num: true},
                              {label: "p50", num: true}, {label: "p99", num: true}, {label: "errors", num: true}],
          dp.phases.map(function (p) {
            return [p.name, p.start_s + " s to " + p.end_s + " s", fmtInt(p.requests), num(p.rps).toFixed(1),
                    typeof p.p50_ms === "number" ? fmtMs(p.p50_ms) : "-",
                    typeof p.p99_ms === "number" ? fmtMs(p.p99_ms) : "-",
                    fmtInt(p.failed) + " (" + (100 * num(p.error_rate)).toFixed(2) + "%)"];
          })));
        if ((dp.recovery || []).length) {
          var b = dp.baseline, t = dp.tolerance || {};
          ph.appendChild(el("p", {"class": "note", text: b
            ? "Recovered: every second for " + t.window_s + " s with p99 at most " + fmtMs(b.p99_limit_ms) +
              " (before: " + fmtMs(b.p99_ms) + " + " + t.p99 + ") and an error rate at most " +
              (100 * num(b.error_rate_limit)).toFixed(2) + "% (before: " + (100 * num(b.error_rate)).toFixed(2) + "%)."
            : "No baseline: no complete response before the first fault."}));
          ph.appendChild(table([{label: "fault"}, {label: "time to recover", num: true}, {label: ""}],
            dp.recovery.map(function (r) {
              var ok = r.status === "recovered";
              var text = ok ? "back from second " + r.recovered_at_s
                : r.status === "not_recovered" ? "not recovered"
                : r.status === "still_on" ? "still on at the end" : "no baseline";
              return [r.fault, typeof r.time_s === "number" ? secondsText(r.time_s) : "-",
                      tag(ok, text, text)];
            })));
        }
      }

      if (s.slo && (s.slo.objectives || []).length) {
        // Each objective judged per phase, over windows and for recovery
        // (docs/scenarios.md#slos-and-phases).
        var so = section("SLOs by phase", "slo");
        var phaseNames = (s.slo.phases || []).map(function (p) { return p.name + " (" + p.start_s + " s to " + p.end_s + " s)"; });
        so.appendChild(table([{label: ""}, {label: "objective"}].concat(phaseNames.map(function (n) { return {label: n}; }),
                                                                  [{label: "worst window"}]),
          s.slo.objectives.map(function (o) {
            var row = [tag(o.passed), el("code", {text: o.objective + (o.guard ? " (guard)" : "")})];
            (o.phases || []).forEach(function (p) { row.push(tag(p.passed, "ok " + p.observed, "FAIL " + p.observed)); });
            var w = o.windows && o.windows.worst;
            row.push(w ? (w.passed ? "ok " : "FAIL ") + w.observed + " in " + w.start_s + " s to " + w.end_s + " s (" +
                         o.windows.failed + " of " + o.windows.count + " windows failed)" : "no data");
            return row;
          })));
        var rec = [];
        s.slo.objectives.forEach(function (o) {
          (o.recovery || []).forEach(function (r) {
            var text = r.status === "recovered" ? secondsText(r.time_s) + " (held from second " + r.recovered_at_s + ")"
              : r.status === "not_recovered" ? "did not recover (" + secondsText(r.time_s) + " watched)" : "still on at the end";
            rec.push([r.fault, el("code", {text: o.objective}), tag(r.status === "recovered", text, text)]);
          });
        });
        if (rec.length) so.appendChild(table([{label: "fault"}, {label: "objective"}, {label: "time to recover"}], rec));
        if (s.slo.abort) so.appendChild(el("p", {"class": "note", text: "Stopped early: " + s.slo.abort.reason}));
      }

      var th = section("Thresholds", "thresholds");
      if (!(s.thresholds || []).length) th.appendChild(empty("No thresholds."));
      else th.appendChild(table(
        [{label: ""}, {label: "threshold"}, {label: "observed", num: 1}, {label: "where"}],
        s.thresholds.map(function (t) {
          // A target series without data (a dead endpoint) is not judged: neither pass nor FAIL.
          var judged = t.status === "no_data"
              ? el("span", {"class": "tag neutral", text: "no data"}) : tag(t.passed);
          return [judged, el("code", {text: t.threshold}),
                  t.status === "no_data" ? "not evaluated: no data from the monitored target" : t.observed, t.location];
        })));
    }

    // Errors and statuses.
    var cols = el("div", {"class": "cols"});
    var errBox = el("div", null, [el("h2", {text: "Errors by cause"})]);
    var errKeys = Object.keys(s.errors || {});
    errBox.appendChild(errKeys.length ? table([{label: "cause"}, {label: "count", num: 1}],
        errKeys.map(function (k) { return [k, fmtInt(s.errors[k])]; })) : empty("No errors."));
    var stBox = el("div", null, [el("h2", {text: "Status codes"})]);
    var stKeys = Object.keys(s.status || {});
    stBox.appendChild(stKeys.length ? table([{label: "status"}, {label: "count", num: 1}, {label: "share", num: 1}],
        stKeys.map(function (k) { return [k, fmtInt(s.status[k]), pct(num(s.status[k]), num(s.requests))]; }))
        : empty("No responses."));
    cols.appendChild(errBox);
    cols.appendChild(stBox);
    section("Errors and status codes", "errors").appendChild(cols);

    // Configuration and environment.
    var conf = section("Configuration and environment", "config");
    var config = Object.assign({}, run.config || {});
    var source = config.scenario_source;
    delete config.scenario_source;
    var grid = el("div", {"class": "cols"}, [
      el("div", null, [el("h2", {text: "Configuration"}), keyValues(config)]),
      el("div", null, [el("h2", {text: "Environment"}), keyValues(env)]),
    ]);
    conf.appendChild(grid);
    if (source) {
      conf.appendChild(el("details", null, [el("summary", {text: "Scenario file"}), el("pre", {text: source})]));
    }
  }

  // What the comparison view (compare.js, embedded only in `compare --report`
  // pages) draws with: the same pieces as the run report.
  var kit = {
    el: el, section: section, table: table, chart: chart, percentileChart: percentileChart,
    statGrid: statGrid, tag: tag, empty: empty, num: num, fmtInt: fmtInt, fmtMs: fmtMs,
    fmtDate: fmtDate, pct: pct, targetOf: targetOf, loadText: loadText, perSecond: perSecond,
  };

  try {
    var data = JSON.parse(document.getElementById("run-data").textContent);
    if (typeof uPlot !== "function") throw new Error("uPlot did not load");
    if (data.kind === "comparison") {
      if (typeof millstoneComparison !== "function") throw new Error("the comparison view did not load");
      millstoneComparison(data, kit);
    } else {
      render(data);
    }
    body.dataset.charts = String(chartCount);
    body.dataset.points = String(pointCount);
    body.dataset.markers = String(markerCount);
    body.dataset.bands = String(bandCount);
    if (!/^error/.test(body.dataset.status || "")) body.dataset.status = "ok";
  } catch (e) {
    body.dataset.status = "error: " + (e && e.message ? e.message : String(e));
    if (typeof console !== "undefined") console.error(e);
  }
})();
