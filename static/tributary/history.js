/* An audit timeline in words with field-level before/after and filters: a flow's
 * (GET /api/v1/flows/{id}/history/) or the tenant's (GET /api/v1/audit/, page_data.audit). */
(function () {
  "use strict";
  const T = window.Tributary;
  const page = T.jsonScript("page-data");
  const form = document.getElementById("history-filters");
  const list = document.getElementById("timeline");
  const more = document.getElementById("history-more");
  const TYPES = { flow: "Task flow", node: "Node", edge: "Connection", grant: "Stakeholder right", schedule: "Schedule", version: "Version",
    membership: "Membership", datasource: "Data source", secret: "Secret" };
  let next = null;
  let shown = 0;

  const USER_FIELDS = ["owner", "user", "created_by", "triggered_by"];
  function value(v, field, display) {
    if (v === null || v === undefined || v === "") return '<span class="muted">—</span>';
    if (display != null) return T.esc(display);
    if (USER_FIELDS.indexOf(field) >= 0 && (page.usernames || {})[v]) return T.esc(page.usernames[v]) + ' <span class="muted small">#' + T.esc(v) + "</span>";
    if (typeof v === "string") return T.esc(v);
    return '<span class="mono">' + T.esc(JSON.stringify(v)) + "</span>";
  }
  function entryHtml(e) {
    const who = e.username || (e.user ? "user #" + e.user : "the platform");
    // Field by field, before and after, in words (names, version numbers), as the API tells them.
    const changes = (e.changes || []).length
      ? '<table class="diff-table" data-testid="audit-changes"><thead><tr><th>Field</th><th>Before</th><th>After</th></tr></thead><tbody>' + e.changes.map(function (c) {
        const label = c.label || c.field;
        return '<tr data-field="' + T.esc(c.field) + '"><td class="field">' + T.esc(label) + '</td><td class="old">' + (e.action === "created" ? '<span class="muted">—</span>' : value(c.old, c.field, c.old_display)) +
          '</td><td class="new">' + (e.action === "deleted" ? '<span class="muted">—</span>' : value(c.new, c.field, c.new_display)) + "</td></tr>";
      }).join("") + "</tbody></table>"
      : "";
    const diff = e.version && e.flow
      ? ' <a class="small" data-testid="version-diff" href="/flows/' + encodeURIComponent(e.flow) + "/versions/?a=" + (e.version > 1 ? e.version - 1 : e.version) + "&b=" + e.version + '">see what version ' + T.esc(e.version) + " changed</a>"
      : "";
    const flowLink = page.audit && e.flow && e.flow_name && (e.summary || "").indexOf("“" + e.flow_name + "”") < 0
      ? ' <span class="muted small">in <a href="/flows/' + encodeURIComponent(e.flow) + '/">' + T.esc(e.flow_name) + "</a></span>" : "";
    return '<li class="' + T.esc(e.action) + '" data-type="' + T.esc(e.object_type) + '" data-testid="audit-entry">' +
      '<div class="when">' + T.fmtTime(e.at) + " · <strong>" + T.esc(who) + "</strong> · " + T.esc(TYPES[e.object_type] || e.object_type) + "</div>" +
      '<div class="summary"><span class="badge ' + (e.action === "created" ? "ok" : e.action === "deleted" ? "bad" : "warn") + '">' + T.esc(e.action) + "</span> " +
      T.esc(e.summary || (TYPES[e.object_type] || e.object_type) + " " + (e.object_repr || "#" + e.object_id)) + flowLink + diff +
      (e.reason && !/^published version/.test(e.reason) ? ' <span class="muted small">— ' + T.esc(e.reason) + "</span>" : "") + "</div>" + changes + "</li>";
  }
  function matches(e) {
    const type = form.elements.object_type.value, action = form.elements.action.value;
    return (!type || e.object_type === type) && (!action || e.action === action);
  }
  function filters() {
    const params = new URLSearchParams();
    if (form.elements.user.value) params.set("user", form.elements.user.value);
    if (form.elements.since.value) params.set("since", form.elements.since.value + "T00:00:00");
    if (form.elements.until.value) params.set("until", form.elements.until.value + "T23:59:59");
    if (page.audit && form.elements.flow.value) params.set("flow", form.elements.flow.value);
    if (page.audit && form.elements.object_type.value) params.set("object_type", form.elements.object_type.value);
    return params;
  }
  function url() {
    const params = filters();
    params.set("page_size", "100");
    if (page.audit) {
      // The CSV export follows the same filters.
      const exp = document.getElementById("audit-export");
      if (exp) exp.href = exp.href.split("?")[0] + "?" + filters().toString();
      return page.api + "?" + params.toString();
    }
    return "/api/v1/flows/" + page.flow_id + "/history/?" + params.toString();
  }
  let seq = 0;
  async function load(reset) {
    more.hidden = true;
    // A newer load (the filters changed again) wins: an older answer arriving late is dropped.
    const mine = reset ? ++seq : seq;
    if (reset) { list.innerHTML = '<li class="muted">Loading…</li>'; shown = 0; next = url(); }
    let first = reset;
    // Keep reading pages until something matches the client-side filters (or the end).
    for (let pages = 0; next && pages < 10; pages++) {
      let body;
      try {
        body = await T.api.get(next);
        if (mine !== seq) return;
      } catch (err) {
        if (mine !== seq) return;
        list.innerHTML = '<li><div class="banner error">' + T.esc(T.flattenErrors(err.body).join(" ") || err.message) + "</div></li>";
        return;
      }
      next = body.next;
      const entries = (body.results || []).filter(matches);
      if (first) { list.innerHTML = ""; first = false; }
      list.insertAdjacentHTML("beforeend", entries.map(entryHtml).join(""));
      shown += entries.length;
      if (entries.length) break;
    }
    if (!shown) list.innerHTML = '<li class="muted">No entry matches these filters.</li>';
    more.hidden = !next;
  }
  form.addEventListener("submit", function (ev) { ev.preventDefault(); load(true); });
  form.addEventListener("change", function () { load(true); });
  more.addEventListener("click", function () { load(false); });
  load(true);
})();
