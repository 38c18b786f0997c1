/* The O&M runs list: filters in the query string, rows from GET /api/v1/runs/, live while runs are
   active; runs ticked in the first column take bulk actions (bulk.js). */
(function () {
  "use strict";
  const T = window.Tributary;
  const page = T.jsonScript("page-data");
  const form = document.getElementById("run-filters");
  const rows = document.getElementById("run-rows");
  const pager = document.getElementById("run-pager");
  const flowNames = {};
  page.flows.forEach(function (f) { flowNames[f.id] = f.name; });
  const ACTIVE = ["queued", "waiting", "running", "paused"];
  let current = 1;
  let timer = null;
  // Selection survives the live refresh and paging: it is kept here, not in the checkboxes.
  const selectAll = document.getElementById("run-select-all");
  const selected = new Set();
  const cols = selectAll ? 11 : 10;
  function syncChecks() {
    const boxes = rows.querySelectorAll("input[data-run]");
    boxes.forEach(function (b) { b.checked = selected.has(Number(b.getAttribute("data-run"))); });
    if (selectAll) selectAll.checked = boxes.length > 0 && Array.prototype.every.call(boxes, function (b) { return b.checked; });
  }
  const bulk = T.bulk({
    selected: function () { return Array.from(selected); },
    clear: function () { selected.clear(); syncChecks(); },
    after: function () { load(current); },
  });

  function options(select, choices, anyLabel) {
    select.innerHTML = '<option value="">' + anyLabel + "</option>" + choices.map(function (c) {
      return '<option value="' + T.esc(c[0]) + '">' + T.esc(c[1]) + "</option>";
    }).join("");
  }
  options(form.elements.status, page.statuses, "Any");
  options(form.elements.mode, page.modes, "Any");
  options(form.elements.trigger, page.triggers, "Any");
  ["flow", "status", "mode", "trigger"].forEach(function (k) { form.elements[k].value = page.initial[k] || ""; });

  function query(pageNo) {
    const params = new URLSearchParams();
    ["flow", "status", "mode", "trigger"].forEach(function (k) { if (form.elements[k].value) params.set(k, form.elements[k].value); });
    if (pageNo > 1) params.set("page", pageNo);
    return params;
  }
  function label(choices, value) {
    const hit = choices.filter(function (c) { return c[0] === value; })[0];
    return hit ? hit[1] : (value || "—");
  }
  async function load(pageNo) {
    clearTimeout(timer);
    current = pageNo || 1;
    const params = query(current);
    try {
      const body = await T.api.get("/api/v1/runs/?" + params.toString());
      const list = body.results || body;
      if (!list.length) {
        rows.innerHTML = '<tr><td colspan="' + cols + '" class="empty">No runs match.</td></tr>';
      } else {
        rows.innerHTML = list.map(function (r) {
          const flowName = r.flow_name || flowNames[r.flow] || ("flow " + r.flow);
          const box = selectAll ? '<td class="select"><input type="checkbox" data-run="' + r.id + '" data-testid="select-run" aria-label="Select run #' + r.id + '"></td>' : "";
          return '<tr data-testid="run-row" data-run="' + r.id + '" data-status="' + T.esc(r.status) + '">' + box + "<td><a href=\"/runs/" + r.id + "/\">#" + r.id + "</a></td>" +
            "<td><a href=\"/flows/" + r.flow + "/\">" + T.esc(flowName) + "</a></td>" +
            '<td><span class="badge ' + T.esc(r.status) + '">' + T.esc(r.status) + "</span></td>" +
            "<td>" + T.esc(label(page.modes, r.mode)) + "</td>" +
            "<td>" + T.esc(label(page.triggers, r.trigger)) + (r.triggered_by_name ? ' <span class="muted small">' + T.esc(r.triggered_by_name) + "</span>" : "") + "</td>" +
            '<td class="nowrap">' + T.fmtTime(r.business_time, false, (page.zones || {})[r.flow]) + "</td>" +
            "<td>" + (r.version != null ? "v" + T.esc(r.version) : '<span class="muted">editing</span>') + "</td>" +
            '<td class="nowrap">' + T.fmtTime(r.started_at, false, (page.zones || {})[r.flow]) + "</td>" +
            '<td class="nowrap">' + T.fmtDuration(r.started_at, r.finished_at) + "</td>" +
            "<td>" + T.deadlineBadge(r) + "</td></tr>";
        }).join("");
      }
      syncChecks();
      const total = body.count != null ? body.count : list.length;
      pager.innerHTML = (body.previous ? '<a href="#" data-page="' + (current - 1) + '">← Newer</a> ' : "") +
        total + " run(s)" + (body.next ? ' <a href="#" data-page="' + (current + 1) + '">Older →</a>' : "");
      history.replaceState(null, "", "?" + query(1).toString());
      if (document.getElementById("rf-live").checked && list.some(function (r) { return ACTIVE.indexOf(r.status) >= 0; })) {
        timer = setTimeout(function () { load(current); }, 3000);
      }
    } catch (err) {
      rows.innerHTML = '<tr><td colspan="' + cols + '"><div class="banner error">' + T.esc(err.message) + "</div></td></tr>";
    }
  }
  form.addEventListener("submit", function (ev) { ev.preventDefault(); load(1); });
  form.addEventListener("change", function (ev) {
    if (ev.target.id === "rf-live") return;
    // The flow's information card is drawn by the server: a new flow means a new page.
    if (ev.target.name === "flow") { window.location.search = query(1).toString(); return; }
    load(1);
  });
  rows.addEventListener("change", function (ev) {
    const id = ev.target.getAttribute && ev.target.getAttribute("data-run");
    if (!id) return;
    if (ev.target.checked) selected.add(Number(id)); else selected.delete(Number(id));
    syncChecks();
    bulk.refresh();
  });
  if (selectAll) selectAll.addEventListener("change", function () {
    rows.querySelectorAll("input[data-run]").forEach(function (b) {
      if (selectAll.checked) selected.add(Number(b.getAttribute("data-run"))); else selected.delete(Number(b.getAttribute("data-run")));
    });
    syncChecks();
    bulk.refresh();
  });
  pager.addEventListener("click", function (ev) {
    const p = ev.target.getAttribute("data-page");
    if (p) { ev.preventDefault(); load(Number(p)); }
  });
  document.addEventListener("tributary:zone", function () { load(current); });
  load(1);

  // Fair share, live: the tenant's running nodes against its limit, runs against its
  // active-run limit, and each data source's pool (GET /api/v1/capacity/).
  const capacity = document.getElementById("capacity-body");
  function limitText(used, limit) { return limit === null || limit === undefined ? used + " (no limit)" : used + " of " + limit; }
  async function loadCapacity() {
    if (!capacity) return;
    try {
      const c = await T.api.get("/api/v1/capacity/");
      const t = c.tenant || {};
      const use = t.use || {}, eff = t.effective || {}, own = t.limits || {};
      // Where each limit comes from, in words: the tenant's own, or the platform's default share.
      const nodesFrom = own.running_nodes != null ? "the tenant's own limit"
        : eff.running_nodes != null ? "the default: a share of the " + (t.worker_slots || 0) + " worker slots up" : "";
      const runsFrom = own.active_runs != null ? "the tenant's own limit" : "";
      const from = function (words) { return words ? ' <span class="muted">(' + T.esc(words) + ")</span>" : ""; };
      let html = '<div data-testid="capacity-tenant">' +
        "<div>Running nodes: <b>" + T.esc(limitText(use.running_nodes, eff.running_nodes)) + "</b>" + from(nodesFrom) +
        " · waiting for a slot: <b>" + T.esc(String(use.waiting_nodes || 0)) + "</b></div>" +
        "<div>Active runs: <b>" + T.esc(limitText(use.active_runs, eff.active_runs)) + "</b>" + from(runsFrom) + "</div>" +
        '<div class="muted">Worker slots up: ' + T.esc(String(t.worker_slots || 0)) + "</div></div>";
      const pools = (c.pools || []).filter(function (p) { return p.max_concurrency !== null || p.running || p.waiting; });
      if (pools.length) {
        html += '<table class="small" data-testid="capacity-pools"><thead><tr><th>Pool (data source)</th><th>Running</th><th>Waiting</th></tr></thead><tbody>' +
          pools.map(function (p) {
            return "<tr><td>" + T.esc(p.name) + "</td><td>" + T.esc(limitText(p.running, p.max_concurrency)) + "</td><td>" + T.esc(String(p.waiting)) + "</td></tr>";
          }).join("") + "</tbody></table>";
      }
      capacity.innerHTML = html;
      capacity.classList.remove("muted");
    } catch (err) {
      capacity.textContent = err.message;
    }
    if (document.getElementById("rf-live").checked) setTimeout(loadCapacity, 3000);
  }
  loadCapacity();
})();
