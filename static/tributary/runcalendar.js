/* A year of one flow as a heat map of business dates (GET /api/v1/runs/grid/?flow=…). */
(function () {
  "use strict";
  const T = window.Tributary;
  const page = T.jsonScript("page-data");
  const days = document.getElementById("cal-days");
  const months = document.getElementById("cal-months");
  const DAY = 86400000;
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  let end = /^\d{4}-\d{2}-\d{2}$/.test(page.to) ? page.to : page.today;

  function iso(ms) { return new Date(ms).toISOString().slice(0, 10); }
  function parse(text) { return Date.parse(text + "T00:00:00Z"); }

  document.getElementById("cal-legend").innerHTML = ["succeeded", "failed", "running", "waiting", "stopped", "skipped"].map(function (s) {
    return '<span><span class="sq st-' + s + '"></span>' + s + "</span>";
  }).join("") + '<span><span class="sq"></span>no run</span>';

  async function load() {
    const last = parse(end), first = last - 364 * DAY;
    let body;
    try {
      body = await T.api.get("/api/v1/runs/grid/?flow=" + page.flow_id + "&from=" + iso(first) + "&to=" + iso(last));
    } catch (err) {
      days.innerHTML = '<div class="banner error">' + T.esc(err.message) + "</div>";
      return;
    }
    const cells = {};
    (body.results[0] ? body.results[0].cells : []).forEach(function (c) { cells[c.date] = c; });
    // Columns are weeks from Sunday; the first column is padded up to the first date.
    const lead = new Date(first).getUTCDay();
    const parts = [];
    for (let i = 0; i < lead; i++) parts.push('<span class="sq out"></span>');
    const counts = { runs: 0, dates: 0, failed: 0 };
    const monthStarts = [];
    for (let t = first; t <= last; t += DAY) {
      const d = iso(t), c = cells[d];
      const index = lead + Math.round((t - first) / DAY);
      if (d.slice(8) === "01") monthStarts.push([Math.floor(index / 7), MONTHS[Number(d.slice(5, 7)) - 1]]);
      if (c) {
        counts.runs += c.runs.length; counts.dates += 1; if (c.status === "failed") counts.failed += 1;
        parts.push('<a class="sq st-' + T.esc(c.status) + '" href="/runs/' + c.latest_run + '/" data-testid="cal-day" data-date="' + d +
          '" data-status="' + T.esc(c.status) + '" title="' + d + ": " + T.esc(c.status) + " (" + c.runs.length + ' run(s))"></a>');
      } else {
        parts.push('<span class="sq" data-date="' + d + '" title="' + d + ': no run"></span>');
      }
    }
    days.innerHTML = parts.join("");
    const weeks = Math.ceil((lead + 365) / 7);
    months.innerHTML = "";
    months.style.display = "grid";
    months.style.gridTemplateColumns = "repeat(" + weeks + ", 17px)";
    monthStarts.forEach(function (m) {
      const span = document.createElement("span");
      span.textContent = m[1];
      span.style.gridColumn = String(m[0] + 1);
      months.appendChild(span);
    });
    document.getElementById("cal-range").textContent = iso(first) + " – " + iso(last) + " (business dates in " + page.timezone + ")";
    document.getElementById("cal-summary").textContent = counts.dates + " business date(s) with runs, " + counts.runs + " run(s); " +
      counts.failed + " date(s) whose latest run failed.";
    history.replaceState(null, "", "?to=" + iso(last));
  }

  document.getElementById("cal-prev").addEventListener("click", function () { end = iso(parse(end) - 365 * DAY); load(); });
  document.getElementById("cal-next").addEventListener("click", function () { end = iso(parse(end) + 365 * DAY); load(); });
  load();
})();
