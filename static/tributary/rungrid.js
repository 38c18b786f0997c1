/* The run grid: flows by business date from GET /api/v1/runs/grid/, and tomorrow's fire times
   per hour from GET /api/v1/schedules/distribution/. In select mode a click on a date picks its
   latest run for a bulk action (bulk.js) instead of opening it. */
(function () {
  "use strict";
  const T = window.Tributary;
  const page = T.jsonScript("page-data");
  const form = document.getElementById("grid-filters");
  const head = document.getElementById("grid-head");
  const rows = document.getElementById("grid-rows");
  const pager = document.getElementById("grid-pager");
  const STATUS_LABELS = {};
  page.statuses.forEach(function (s) { STATUS_LABELS[s[0]] = s[1]; });
  let current = 1;
  const selectMode = document.getElementById("gf-select");
  const selected = new Set();
  function syncPicks() {
    rows.querySelectorAll("[data-testid=grid-cell]").forEach(function (a) {
      const on = selected.has(Number(a.getAttribute("data-run")));
      a.classList.toggle("picked", on);
      a.setAttribute("aria-pressed", on ? "true" : "false");
    });
  }
  const bulk = T.bulk({
    selected: function () { return Array.from(selected); },
    clear: function () { selected.clear(); syncPicks(); },
    after: function () { load(current); },
  });

  function options(select, items, anyLabel) {
    select.innerHTML = '<option value="">' + anyLabel + "</option>" + items.map(function (i) {
      return '<option value="' + T.esc(i[0]) + '">' + T.esc(i[1]) + "</option>";
    }).join("");
  }
  options(form.elements.flow, page.flows.map(function (f) { return [f.id, f.name]; }), "All flows");
  options(form.elements.owner, page.owners.map(function (o) { return [o.id, o.username]; }), "Anyone");
  options(form.elements.status, page.statuses, "Any");
  ["from", "to", "flow", "owner", "status"].forEach(function (k) { form.elements[k].value = page.initial[k] || ""; });

  document.getElementById("grid-legend").innerHTML = ["succeeded", "failed", "running", "waiting", "stopped", "skipped"].map(function (s) {
    return '<span><span class="sq st-' + s + '"></span>' + T.esc(STATUS_LABELS[s] || s) + "</span>";
  }).join("") + '<span><span class="sq"></span>no run</span>';

  function query(pageNo) {
    const params = new URLSearchParams();
    ["from", "to", "flow", "owner", "status"].forEach(function (k) { if (form.elements[k].value) params.set(k, form.elements[k].value); });
    if (pageNo > 1) params.set("page", pageNo);
    return params;
  }

  function dateHead(iso) {
    const d = new Date(iso + "T00:00:00Z");
    const day = d.getUTCDay();
    return '<th class="date' + (day === 0 || day === 6 ? " weekend" : "") + '" title="' + iso + '">' +
      iso.slice(5, 7) + "<br>" + iso.slice(8, 10) + "</th>";
  }

  function cell(flow, dateIso, c) {
    if (!c) return '<td class="cell"><span class="sq" title="' + T.esc(flow.flow_name) + " · " + dateIso + ': no run"></span></td>';
    const title = flow.flow_name + " · " + dateIso + ": " + (STATUS_LABELS[c.status] || c.status) +
      " (latest of " + c.runs.length + " run" + (c.runs.length === 1 ? "" : "s") + ")";
    return '<td class="cell"><a class="sq st-' + T.esc(c.status) + '" href="/runs/' + c.latest_run + '/" title="' + T.esc(title) +
      '" data-testid="grid-cell" data-run="' + c.latest_run + '" data-flow="' + flow.flow + '" data-date="' + dateIso + '" data-status="' + T.esc(c.status) + '"></a>' +
      (c.runs.length > 1 ? '<span class="count">' + c.runs.length + "</span>" : "") + "</td>";
  }

  async function load(pageNo) {
    current = pageNo || 1;
    T.clearFormErrors(form);
    let body;
    try {
      body = await T.api.get("/api/v1/runs/grid/?" + query(current).toString());
    } catch (err) {
      T.showFormErrors(form, err);
      rows.innerHTML = '<tr><td class="empty">The grid could not be loaded.</td></tr>';
      return;
    }
    if (!form.elements.from.value) form.elements.from.value = body.from;
    if (!form.elements.to.value) form.elements.to.value = body.to;
    head.innerHTML = "<tr><th>Task flow</th>" + body.dates.map(dateHead).join("") + "</tr>";
    if (!body.results.length) {
      rows.innerHTML = '<tr><td class="empty" colspan="' + (body.dates.length + 1) + '">No task flow matches.</td></tr>';
    } else {
      rows.innerHTML = body.results.map(function (f) {
        const byDate = {};
        f.cells.forEach(function (c) { byDate[c.date] = c; });
        return '<tr data-testid="grid-row" data-flow="' + f.flow + '"><td class="flow"><a href="/runs/?flow=' + f.flow + '" title="' + T.esc(f.flow_name) + '">' +
          T.esc(f.flow_name) + '</a> <a class="muted small" href="/runs/calendar/' + f.flow + '/" title="A year of this flow">year</a>' +
          ' <span class="muted small" title="Business dates are read in this zone">' + T.esc(f.timezone) + "</span></td>" +
          body.dates.map(function (d) { return cell(f, d, byDate[d]); }).join("") + "</tr>";
      }).join("");
    }
    syncPicks();
    pager.innerHTML = (body.previous ? '<a href="#" data-page="' + (current - 1) + '">← Previous</a> ' : "") +
      body.count + " task flow(s)" + (body.next ? ' <a href="#" data-page="' + (current + 1) + '">Next →</a>' : "");
    history.replaceState(null, "", "?" + query(1).toString());
  }

  async function distribution() {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    let body;
    try {
      body = await T.api.get("/api/v1/schedules/distribution/?timezone=" + encodeURIComponent(zone));
    } catch (err) {
      try { body = await T.api.get("/api/v1/schedules/distribution/"); } catch (e) { return; }
    }
    const max = Math.max.apply(null, body.hours.map(function (h) { return h.fire_times; }).concat([1]));
    document.getElementById("dist-meta").textContent = body.date + " · " + body.timezone + " · " + body.total + " fire time(s) of " + body.flows + " flow(s)";
    document.getElementById("dist-bars").innerHTML = body.hours.map(function (h) {
      return '<div class="bar' + (h.fire_times ? "" : " zero") + '" data-hour="' + h.hour + '" style="height:' + Math.max(1, Math.round(100 * h.fire_times / max)) +
        '%" title="' + String(h.hour).padStart(2, "0") + ":00–" + String(h.hour).padStart(2, "0") + ":59: " + h.fire_times + " fire time(s), " + h.flows + ' flow(s)"></div>';
    }).join("");
    document.getElementById("dist-labels").innerHTML = body.hours.map(function (h) { return "<span>" + h.hour + "</span>"; }).join("");
    document.getElementById("dist-busiest").textContent = body.busiest.length
      ? "Busiest minutes: " + body.busiest.slice(0, 5).map(function (m) { return m.time + " (" + m.fire_times + ")"; }).join(", ")
      : "No schedule fires that day.";
  }

  form.addEventListener("submit", function (ev) { ev.preventDefault(); load(1); });
  form.addEventListener("change", function (ev) { if (ev.target.tagName === "SELECT") load(1); });
  rows.addEventListener("click", function (ev) {
    const cellLink = ev.target.closest("[data-testid=grid-cell]");
    if (!cellLink || !selectMode || !selectMode.checked) return;
    ev.preventDefault();
    const id = Number(cellLink.getAttribute("data-run"));
    if (selected.has(id)) selected.delete(id); else selected.add(id);
    syncPicks();
    bulk.refresh();
  });
  pager.addEventListener("click", function (ev) {
    const p = ev.target.getAttribute("data-page");
    if (p) { ev.preventDefault(); load(Number(p)); }
  });
  window.tributaryGrid = { reload: function () { return load(current); } };
  load(1);
  distribution();
})();
