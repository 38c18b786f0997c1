/* A flow's duration trends on its O&M page: a sparkline of its last successful runs (slow
   ones in red) and each node's p50/p90, from GET /api/v1/flows/{id}/stats/. */
(function () {
  "use strict";
  const T = window.Tributary;
  const box = document.getElementById("flow-trends");
  if (!box) return;
  const flow = box.getAttribute("data-flow");
  const svg = document.getElementById("trend-spark");
  const W = 520, H = 64, PAD = 5;

  function secs(s) {
    if (s == null) return "—";
    if (s < 1) return Math.round(s * 1000) + " ms";
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + " s";
    const m = Math.floor(s / 60);
    return m < 60 ? m + " min " + Math.round(s % 60) + " s" : Math.floor(m / 60) + " h " + (m % 60) + " min";
  }

  function draw(body) {
    const runs = body.runs;
    document.getElementById("trend-meta").textContent = runs.length
      ? runs.length + " run(s) · p50 " + secs(body.duration.p50_s) + " · p90 " + secs(body.duration.p90_s)
      : "no successful run yet";
    if (!runs.length) { svg.innerHTML = ""; return; }
    const max = Math.max.apply(null, runs.map(function (r) { return r.duration_s; }).concat([0.001]));
    const x = function (i) { return runs.length === 1 ? W / 2 : PAD + (i * (W - 2 * PAD)) / (runs.length - 1); };
    const y = function (s) { return H - PAD - (s / max) * (H - 2 * PAD); };
    const points = runs.map(function (r, i) { return x(i).toFixed(1) + "," + y(r.duration_s).toFixed(1); }).join(" ");
    const p90 = body.duration.p90_s;
    svg.innerHTML = (p90 != null ? '<line class="p90" x1="0" x2="' + W + '" y1="' + y(p90).toFixed(1) + '" y2="' + y(p90).toFixed(1) + '"><title>p90 ' + secs(p90) + "</title></line>" : "") +
      '<polyline points="' + points + '"></polyline>' +
      runs.map(function (r, i) {
        return '<circle data-run="' + r.id + '" class="' + (r.flagged ? "flagged" : "") + '" cx="' + x(i).toFixed(1) + '" cy="' + y(r.duration_s).toFixed(1) +
          '" r="' + (r.flagged ? 3.5 : 2.2) + '"><title>run #' + r.id + ": " + secs(r.duration_s) + (r.flagged ? " (slow)" : "") + "</title></circle>";
      }).join("");
    document.getElementById("trend-flagged").innerHTML = body.flagged.length
      ? '<span class="badge failed">' + body.flagged.length + " slow run(s)</span> " + body.flagged.map(function (f) {
        return '<a href="/runs/' + f.run + '/" data-testid="flagged-run">#' + f.run + "</a> " + secs(f.duration_s) + " (p90 before " + secs(f.p90_before_s) + ")" +
          (f.slow_nodes.length ? ": " + f.slow_nodes.map(function (n) { return T.esc(n.node_name); }).join(", ") : "");
      }).join("; ")
      : "";
    document.getElementById("trend-nodes").innerHTML = body.nodes.slice(0, 8).map(function (n) {
      return "<tr><td>" + T.esc(n.node_name) + '</td><td class="nowrap">' + secs(n.p50_s) + '</td><td class="nowrap">' + secs(n.p90_s) + "</td><td>" + n.count + "</td></tr>";
    }).join("") || '<tr><td colspan="4" class="muted">—</td></tr>';
  }

  T.api.get("/api/v1/flows/" + flow + "/stats/?last=30").then(draw).catch(function (err) {
    document.getElementById("trend-meta").textContent = err.message;
  });
})();
