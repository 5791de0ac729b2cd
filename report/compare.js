// The page of `millstone compare --report FILE` (docs/history.md): a run
// against its baseline, drawn with the run report's pieces, which report.js
// passes in as `kit`. Embedded only in comparison pages, before report.js.
// As in report.js, text from the runs only ever goes through textContent.
// eslint-disable-next-line no-unused-vars
function millstoneComparison(data, kit) {
  "use strict";
  var el = kit.el;
  var num = kit.num;
  var c = data.comparison || {};
  var run = data.run || {};
  var base = data.baseline || {};
  var rs = run.summary || {};
  var bs = base.summary || {};
  var renv = run.environment || {};
  var benv = base.environment || {};
  var regression = !!c.regression;
  var differences = c.load_differences || [];

  function result(r) { return r.exit_code === 0 ? "passed" : "exit " + r.exit_code; }
  function value(v, unit) {
    if (typeof v === "string") return v;
    if (typeof v !== "number") return "-";
    if (unit === "%") return v.toFixed(3) + "%";
    if (unit === "ms") return kit.fmtMs(v);
    return v.toFixed(1);
  }

  // Header: the verdict, then at once whether the comparison means anything.
  var header = document.getElementById("header");
  header.appendChild(el("h1", null, [
    el("span", {"class": "verdict " + (regression ? "fail" : "pass"), text: regression ? "REGRESSION" : "NO REGRESSION"}),
    "run " + c.run + " against baseline " + c.baseline]));
  header.appendChild(el("div", {"class": "meta"}, [
    el("span", {text: "tolerance " + Math.round(num(c.tolerance) * 1000) / 10 + "%"}),
    el("span", {text: "run " + (run.name || "") + ", started " + kit.fmtDate(num(renv.started_unix_ms))}),
    el("span", {text: "baseline " + (base.name || "") + ", started " + kit.fmtDate(num(benv.started_unix_ms))}),
  ]));
  document.title = (regression ? "REGRESSION " : "no regression ") + c.run + " vs " + c.baseline + " - millstone";
  if (differences.length) {
    header.appendChild(el("div", {"class": "load-warning", id: "load-warning"}, [
      el("strong", {text: "The two runs did not apply the same load to the same target: the verdicts " +
                          "below compare different tests, not the same test on two builds."}),
      kit.table([{label: ""}, {label: "baseline"}, {label: "run"}], differences.map(function (d) {
        return [d.what, d.baseline, d.run];
      })),
    ]));
  }
  (c.warnings || []).forEach(function (w) {
    header.appendChild(el("p", {"class": "warning", text: "warning: " + w}));
  });

  var sides = kit.section("The two runs", "runs");
  sides.appendChild(kit.table([{label: ""}, {label: "baseline"}, {label: "run"}], [
    ["id", base.id, run.id],
    ["started", kit.fmtDate(num(benv.started_unix_ms)), kit.fmtDate(num(renv.started_unix_ms))],
    ["target", kit.targetOf(base), kit.targetOf(run)],
    ["load", kit.loadText(bs), kit.loadText(rs)],
    ["ran", num(bs.duration_s).toFixed(1) + " s", num(rs.duration_s).toFixed(1) + " s"],
    ["result", result(base), result(run)],
    ["host", (benv.host || "-") + " (" + num(benv.cores) + " cores)", (renv.host || "-") + " (" + num(renv.cores) + " cores)"],
    ["millstone", benv.millstone_version || "-", renv.millstone_version || "-"],
  ]));

  var metrics = kit.section("Metrics", "metrics");
  metrics.appendChild(kit.table(
    [{label: "metric"}, {label: "baseline", num: 1}, {label: "run", num: 1}, {label: "change", num: 1}, {label: "verdict"}],
    (c.metrics || []).map(function (m) {
      var change = typeof m.change_pct === "number" ? (m.change_pct >= 0 ? "+" : "") + m.change_pct.toFixed(1) + "%" : "";
      var verdict = el("span", {"class": "tag verdict-" + String(m.verdict).toLowerCase(), text: m.verdict});
      return [m.unit === "req/s" ? m.metric + " (req/s)" : m.metric, value(m.baseline, m.unit),
              value(m.run, m.unit), change, verdict];
    })));

  // Over time: both runs on one axis, in seconds from each one's start.
  var rt = kit.perSecond(rs);
  var bt = kit.perSecond(bs);
  var length = Math.max(rt.entries.length, bt.entries.length);
  var xs = [];
  for (var i = 0; i < length; i++) xs.push(i);
  function column(entries, name) {
    var bySecond = {};
    entries.forEach(function (t) { bySecond[num(t.second)] = t; });
    return xs.map(function (x) {
      var t = bySecond[x];
      return t && typeof t[name] === "number" ? t[name] : null;
    });
  }
  var over = kit.section("Over time", "timeline");
  var notes = [rt.note && "Run: " + rt.note, bt.note && "Baseline: " + bt.note].filter(Boolean).join(" ");
  kit.chart(over, {title: "Throughput", yLabel: "requests / s", note: notes}, xs, [
    {label: "baseline", values: column(bt.entries, "rps"), color: "#6b7280"},
    {label: "run", values: column(rt.entries, "rps"), color: "#2563eb"}]);
  kit.chart(over, {title: "Latency p99", yLabel: "ms", format: kit.fmtMs}, xs, [
    {label: "baseline", values: column(bt.entries, "p99_ms"), color: "#6b7280"},
    {label: "run", values: column(rt.entries, "p99_ms"), color: "#2563eb"}]);

  // The two latency distributions, matched by percentile.
  var dist = kit.section("Latency distribution", "distribution");
  var curve = rs.latency_percentiles || [];
  var baseAt = {};
  (bs.latency_percentiles || []).forEach(function (p) { baseAt[num(p[0])] = num(p[1]); });
  if (!curve.length) dist.appendChild(kit.empty("The run has no complete responses."));
  var percentiles = curve.map(function (p) { return num(p[0]); });
  kit.percentileChart(dist, "Latency by percentile", percentiles, [
    {label: "baseline", values: percentiles.map(function (p) { return p in baseAt ? baseAt[p] : null; }), color: "#6b7280"},
    {label: "run", values: curve.map(function (p) { return num(p[1]); }), color: "#2563eb"}]);
}
