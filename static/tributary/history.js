/* A flow's audit timeline from GET /api/v1/flows/{id}/history/ with field-level diffs and filters. */
(function () {
  "use strict";
  const T = window.Tributary;
  const page = T.jsonScript("page-data");
  const form = document.getElementById("history-filters");
  const list = document.getElementById("timeline");
  const more = document.getElementById("history-more");
  const TYPES = { flow: "Flow", node: "Node", edge: "Connection", grant: "Access", schedule: "Schedule", version: "Version" };
  let next = null;
  let shown = 0;

  const USER_FIELDS = ["owner", "user", "created_by", "triggered_by"];
  function value(v, field) {
    if (v === null || v === undefined || v === "") return '<span class="muted">∅</span>';
    if (USER_FIELDS.indexOf(field) >= 0 && (page.usernames || {})[v]) return T.esc(page.usernames[v]) + ' <span class="muted small">#' + T.esc(v) + "</span>";
    if (typeof v === "string") return T.esc(v);
    return '<span class="mono">' + T.esc(JSON.stringify(v)) + "</span>";
  }
  function entryHtml(e) {
    const who = e.username || (e.user ? "user #" + e.user : "system");
    // Created rows have no "before", deleted rows no "after": show one column for them.
    const changes = (e.changes || []).length
      ? '<table class="diff-table"><tbody>' + e.changes.map(function (c) {
        if (e.action === "created") return '<tr><td class="field">' + T.esc(c.field) + '</td><td class="new">' + value(c.new, c.field) + "</td></tr>";
        if (e.action === "deleted") return '<tr><td class="field">' + T.esc(c.field) + '</td><td class="old">' + value(c.old, c.field) + "</td></tr>";
        return '<tr><td class="field">' + T.esc(c.field) + '</td><td class="old">' + value(c.old, c.field) + '</td><td class="new">' + value(c.new, c.field) + "</td></tr>";
      }).join("") + "</tbody></table>"
      : "";
    return '<li class="' + T.esc(e.action) + '" data-type="' + T.esc(e.object_type) + '">' +
      '<div class="when">' + T.fmtTime(e.at) + " · <strong>" + T.esc(who) + "</strong></div>" +
      '<div><span class="badge ' + (e.action === "created" ? "ok" : e.action === "deleted" ? "bad" : "warn") + '">' + T.esc(e.action) + "</span> " +
      T.esc(TYPES[e.object_type] || e.object_type) + " <strong>" + T.esc(e.object_repr || ("#" + e.object_id)) + "</strong>" +
      (e.reason ? ' <span class="muted small">— ' + T.esc(e.reason) + "</span>" : "") + "</div>" + changes + "</li>";
  }
  function matches(e) {
    const type = form.elements.object_type.value, action = form.elements.action.value;
    return (!type || e.object_type === type) && (!action || e.action === action);
  }
  function url() {
    const params = new URLSearchParams();
    if (form.elements.user.value) params.set("user", form.elements.user.value);
    if (form.elements.since.value) params.set("since", form.elements.since.value + "T00:00:00");
    if (form.elements.until.value) params.set("until", form.elements.until.value + "T23:59:59");
    params.set("page_size", "100");
    return "/api/v1/flows/" + page.flow_id + "/history/?" + params.toString();
  }
  async function load(reset) {
    more.hidden = true;
    if (reset) { list.innerHTML = '<li class="muted">Loading…</li>'; shown = 0; next = url(); }
    let first = reset;
    // Keep reading pages until something matches the client-side filters (or the end).
    for (let pages = 0; next && pages < 10; pages++) {
      let body;
      try {
        body = await T.api.get(next);
      } catch (err) {
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
