/* The configuration panel under the canvas: information (owner, stakeholders, policies, public),
 * variables with a live preview of resolved values, notifications, and scheduling with the next
 * fire times recomputed as the user types. Writes go through the REST API; fields the user may
 * not change are disabled (the API refuses them anyway).
 */
(function () {
  "use strict";
  const T = window.Tributary;
  const page = T.jsonScript("page-data");
  const members = T.jsonScript("members") || [];
  const rights = page.rights;
  const flowUrl = "/api/v1/flows/" + page.flow_id + "/";
  const panel = document.getElementById("config-panel");
  const toggle = document.getElementById("panel-toggle");
  let flow = null;

  // ------------------------------------------------------------------ tabs
  function openTab(name) {
    panel.classList.remove("collapsed");
    toggle.textContent = "▼ Configuration";
    toggle.setAttribute("aria-expanded", "true");
    panel.querySelectorAll(".tab").forEach(function (t) { t.classList.toggle("active", t.getAttribute("data-tab") === name); });
    panel.querySelectorAll("[data-pane]").forEach(function (p) { p.hidden = p.getAttribute("data-pane") !== name; });
    if (name === "schedule") schedulePreviewSoon();
    if (name === "variables") variablesPreviewSoon();
  }
  panel.querySelectorAll(".tab").forEach(function (t) {
    t.addEventListener("click", function () { openTab(t.getAttribute("data-tab")); });
  });
  toggle.addEventListener("click", function () {
    if (panel.classList.contains("collapsed")) {
      const active = panel.querySelector(".tab.active");
      openTab(active ? active.getAttribute("data-tab") : "info");
    } else {
      panel.classList.add("collapsed");
      toggle.textContent = "▲ Configuration";
      toggle.setAttribute("aria-expanded", "false");
    }
  });

  function lock(form, allowed) {
    form.querySelectorAll("input, select, textarea, button[data-edit-only]").forEach(function (el) { el.disabled = !allowed; });
    const save = form.querySelector("[data-save]");
    if (save) save.hidden = !allowed;
  }

  function debounce(fn, ms) {
    let t = null;
    return function () { clearTimeout(t); t = setTimeout(fn, ms); };
  }

  // ------------------------------------------------------------------ information
  const info = document.getElementById("form-info");
  function fillSelect(select, choices, value) {
    select.innerHTML = "";
    choices.forEach(function (c) {
      const o = document.createElement("option");
      o.value = c[0]; o.textContent = c[1];
      select.appendChild(o);
    });
    select.value = value;
  }
  function renderStakeholders(selected) {
    const box = document.getElementById("fi-stakeholders");
    box.innerHTML = "";
    const chosen = {};
    (selected || []).forEach(function (id) { chosen[id] = true; });
    members.forEach(function (m) {
      if (flow && m.id === flow.owner) return;
      const label = document.createElement("label");
      label.className = "inline chip";
      const cb = document.createElement("input");
      cb.type = "checkbox"; cb.value = m.id; cb.name = "stakeholder"; cb.checked = !!chosen[m.id];
      cb.disabled = !rights.manage_stakeholders;
      label.appendChild(cb);
      label.appendChild(document.createTextNode(" " + m.username + (m.role !== "member" ? " (" + m.role + ", default)" : "")));
      box.appendChild(label);
    });
    if (!box.children.length) box.innerHTML = '<span class="muted small">No other members.</span>';
  }
  function fillInfo() {
    info.elements.name.value = flow.name || "";
    info.elements.business_scenario.value = flow.business_scenario || "";
    info.elements.description.value = flow.description || "";
    fillSelect(info.elements.error_policy, page.error_policies, flow.error_policy);
    fillSelect(info.elements.concurrency_policy, page.concurrency_policies, flow.concurrency_policy);
    info.elements.is_public.checked = !!flow.is_public;
    const owners = members.map(function (m) { return [String(m.id), m.username + " (" + m.role + ")"]; });
    if (!members.some(function (m) { return m.id === flow.owner; })) owners.unshift([String(flow.owner), "user #" + flow.owner]);
    fillSelect(info.elements.owner, owners, String(flow.owner));
    renderStakeholders(flow.stakeholders);
    ["name", "business_scenario", "description", "error_policy", "concurrency_policy", "is_public"].forEach(function (n) {
      info.elements[n].disabled = !rights.edit;
    });
    info.elements.owner.disabled = !rights.change_owner;
    info.querySelector("[data-save]").hidden = !(rights.edit || rights.change_owner || rights.manage_stakeholders);
  }
  /** The page's header follows a saved name, scenario and owner (no reload). */
  function refreshHeader() {
    const h1 = document.querySelector("[data-testid=flow-name]");
    if (h1) { h1.textContent = flow.name; h1.title = flow.name; }
    const crumbs = document.querySelector(".editor-head .crumbs");
    if (crumbs) {
      crumbs.title = flow.business_scenario || "";
      const link = crumbs.querySelector("a");
      crumbs.textContent = "";
      if (link) crumbs.appendChild(link);
      if (flow.business_scenario) crumbs.appendChild(document.createTextNode(" / " + flow.business_scenario));
    }
    const owner = document.querySelector("[data-testid=owner-name]");
    const m = members.filter(function (x) { return x.id === flow.owner; })[0];
    if (owner && m) owner.textContent = m.username;
    document.title = flow.name + " · Tributary";
  }
  async function saveInfo() {
    T.clearFormErrors(info);
    const button = info.querySelector("[data-save]");
    button.disabled = true;
    let ownerChanged = false;
    try {
      if (rights.edit) {
        flow = await T.api.patch(flowUrl, {
          name: info.elements.name.value.trim(), business_scenario: info.elements.business_scenario.value.trim(),
          description: info.elements.description.value, error_policy: info.elements.error_policy.value,
          concurrency_policy: info.elements.concurrency_policy.value, is_public: info.elements.is_public.checked,
        });
      }
      const users = Array.prototype.map.call(info.querySelectorAll("input[name=stakeholder]:checked"), function (cb) { return Number(cb.value); });
      const before = (flow.stakeholders || []).slice().sort().join(",");
      if (rights.manage_stakeholders && users.slice().sort().join(",") !== before) {
        try { await T.api.put(flowUrl + "stakeholders/", { users: users }); }
        catch (err) { if (err.status === 400 && err.body && err.body.users) err.body = { stakeholders: err.body.users }; throw err; }
      }
      const owner = Number(info.elements.owner.value);
      if (rights.change_owner && owner !== flow.owner) {
        await T.api.post(flowUrl + "owner/", { owner: owner });
        ownerChanged = true;
      }
      flow = await T.api.get(flowUrl);
      fillInfo();
      refreshHeader();
      markDirty(info, false);
      if (ownerChanged) T.toast("The new owner takes effect in production at the next publish.", "info");
      return true;
    } catch (err) {
      T.showFormErrors(info, err);
      return false;
    } finally {
      button.disabled = false;
    }
  }
  info.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    if (await saveInfo()) T.toast("Information saved.", "success");
  });

  // ------------------------------------------------------------------ variables
  const varForm = document.getElementById("form-variables");
  const varRows = document.getElementById("var-rows");
  const varEditor = window.TributaryVarRows.create(varRows, { editable: rights.edit, onChange: function () { variablesPreviewSoon(); } });
  function currentVariables() { return varEditor.read(); }
  function fillVariables() {
    varEditor.fill(flow.variables);
    lock(varForm, rights.edit);
    document.getElementById("var-bt").disabled = false;
    document.getElementById("var-preview").disabled = false;
    varRows.querySelectorAll("[data-var-row]").forEach(function (row) {
      row.querySelectorAll("input, select, button").forEach(function (el) { el.disabled = !rights.edit; });
    });
  }
  function markVariableErrors(err) {
    varEditor.markErrors(T.flattenErrors((err.body && err.body.variables) || []));
  }
  document.getElementById("var-add").addEventListener("click", function () { varEditor.add(); });
  document.getElementById("var-bt").value = T.nowInputIn();
  async function variablesPreview() {
    const out = document.getElementById("var-preview-out");
    const bt = T.zonedInputToIso(document.getElementById("var-bt").value);
    if (!bt) { out.innerHTML = '<p class="muted">Choose a business time.</p>'; return; }
    try {
      const res = await T.api.post(page.urls.variables_preview, { variables: currentVariables(), business_time: bt });
      const names = Object.keys(res.values).sort();
      out.innerHTML = '<table class="diff-table"><thead><tr><th>Variable</th><th>Value</th></tr></thead><tbody>' +
        names.map(function (n) { return "<tr><td class=\"field\">${" + T.esc(n) + "}</td><td class=\"mono\">" + T.esc(res.values[n]) + "</td></tr>"; }).join("") +
        "</tbody></table>";
      varRows.querySelectorAll("[data-var-row]").forEach(function (r) { r.classList.remove("has-error"); });
    } catch (err) {
      markVariableErrors(err);
      out.innerHTML = '<div class="banner error">' + T.flattenErrors(err.body && Object.keys(err.body).length ? err.body : err.message).map(T.esc).join("<br>") + "</div>";
    }
  }
  const variablesPreviewSoon = debounce(variablesPreview, 350);
  document.getElementById("var-preview").addEventListener("click", variablesPreview);
  document.getElementById("var-bt").addEventListener("change", variablesPreviewSoon);
  async function saveVariables() {
    T.clearFormErrors(varForm);
    try {
      flow = await T.api.patch(flowUrl, { variables: currentVariables() });
      fillVariables();
      markDirty(varForm, false);
      return true;
    } catch (err) {
      markVariableErrors(err);
      T.showFormErrors(varForm, err);
      return false;
    }
  }
  varForm.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    if (await saveVariables()) T.toast("Variables saved.", "success");
  });

  // ------------------------------------------------------------------ run parameters
  const paramForm = document.getElementById("form-parameters");
  const paramEditor = window.TributaryRunParams.createEditor(document.getElementById("param-rows"), { editable: rights.edit });
  function fillParameters() {
    paramEditor.fill(flow.parameters);
    lock(paramForm, rights.edit);
  }
  document.getElementById("param-add").addEventListener("click", function () { paramEditor.add(); });
  paramForm.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    T.clearFormErrors(paramForm);
    try {
      flow = await T.api.patch(flowUrl, { parameters: paramEditor.read() });
      fillParameters();
      T.toast("Parameters saved.", "success");
    } catch (err) {
      T.showFormErrors(paramForm, err);
    }
  });

  // ------------------------------------------------------------------ notifications
  const ntForm = document.getElementById("form-notifications");
  const CHATS = ["slack", "dingtalk", "feishu", "wecom"];
  function lines(text) { return text.split(/[\n,]/).map(function (s) { return s.trim(); }).filter(Boolean); }
  function fillNotifications() {
    const n = flow.notifications || {};
    ntForm.elements.on_failure.checked = n.on_failure !== false;
    ntForm.elements.on_success.checked = !!n.on_success;
    ntForm.elements.max_duration_s.value = n.max_duration_s == null ? "" : n.max_duration_s;
    ntForm.elements.emails.value = (n.emails || []).join("\n");
    ntForm.elements.webhooks.value = (n.webhooks || []).join("\n");
    ntForm.elements.on_node_failure.checked = !!n.on_node_failure;
    ntForm.elements.on_node_retry.checked = !!n.on_node_retry;
    CHATS.forEach(function (c) { ntForm.elements[c].value = (n[c] || []).join("\n"); });
    const d = flow.deadline || {};
    ntForm.elements.deadline_kind.value = d.after_fire_s != null ? "after_fire_s" : (d.at ? "at" : "");
    ntForm.elements.deadline_after.value = d.after_fire_s != null ? d.after_fire_s : "";
    ntForm.elements.deadline_at.value = d.at || "";
    showDeadline();
    lock(ntForm, rights.edit);
  }
  function showDeadline() {
    const kind = ntForm.elements.deadline_kind.value;
    ntForm.elements.deadline_after.hidden = kind !== "after_fire_s";
    ntForm.elements.deadline_at.hidden = kind !== "at";
  }
  ntForm.elements.deadline_kind.addEventListener("change", showDeadline);
  function deadlineBody() {
    const kind = ntForm.elements.deadline_kind.value;
    if (kind === "after_fire_s") {
      const v = ntForm.elements.deadline_after.value.trim();
      return { after_fire_s: v === "" ? null : Number(v) };
    }
    if (kind === "at") return { at: ntForm.elements.deadline_at.value };
    return null;
  }
  async function saveNotifications() {
    T.clearFormErrors(ntForm);
    const maxDur = ntForm.elements.max_duration_s.value.trim();
    const body = {
      on_failure: ntForm.elements.on_failure.checked, on_success: ntForm.elements.on_success.checked,
      emails: lines(ntForm.elements.emails.value), webhooks: lines(ntForm.elements.webhooks.value),
      max_duration_s: maxDur === "" ? null : Number(maxDur),
      on_node_failure: ntForm.elements.on_node_failure.checked,
      on_node_retry: ntForm.elements.on_node_retry.checked,
    };
    CHATS.forEach(function (c) { body[c] = lines(ntForm.elements[c].value); });
    try {
      flow = await T.api.patch(flowUrl, { notifications: body, deadline: deadlineBody() });
      fillNotifications();
      markDirty(ntForm, false);
      return true;
    } catch (err) {
      T.showFormErrors(ntForm, err);
      return false;
    }
  }
  ntForm.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    if (await saveNotifications()) T.toast("Notifications saved.", "success");
  });

  // ------------------------------------------------------------------ scheduling
  const sc = document.getElementById("form-schedule");
  const weekdays = document.getElementById("sc-weekdays");
  const DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
  ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].forEach(function (d, i) {
    const label = document.createElement("label");
    label.className = "inline";
    label.innerHTML = '<input type="checkbox" name="weekday" value="' + i + '"> ' + d;
    weekdays.appendChild(label);
  });
  const zones = ["UTC", "Europe/Berlin", "Europe/London", "Europe/Paris", "America/New_York", "America/Chicago",
    "America/Los_Angeles", "Asia/Shanghai", "Asia/Tokyo", "Asia/Singapore", "Asia/Kolkata", "Australia/Sydney"];
  const browserZone = (Intl.DateTimeFormat().resolvedOptions().timeZone) || "UTC";
  if (zones.indexOf(browserZone) < 0) zones.unshift(browserZone);
  document.getElementById("sc-zones").innerHTML = zones.map(function (z) { return '<option value="' + T.esc(z) + '">'; }).join("");

  function showKind() {
    const kind = sc.elements.kind.value;
    sc.querySelectorAll("[data-kinds]").forEach(function (el) {
      el.hidden = el.getAttribute("data-kinds").split(" ").indexOf(kind) < 0;
    });
    sc.elements.interval.max = kind === "hours" ? 23 : 59;
  }
  function todayIso() {
    const d = new Date(), pad = function (n) { return String(n).padStart(2, "0"); };
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
  }
  function fillSchedule(s) {
    s = s || {};
    sc.elements.enabled.checked = s.enabled === undefined ? false : !!s.enabled;
    sc.elements.kind.value = s.kind || (s.cron ? "cron" : "daily");
    sc.elements.cron.value = s.cron || "";
    sc.elements.interval.value = s.interval == null ? "" : s.interval;
    sc.elements.time.value = (s.time || "00:00").slice(0, 5);
    // The API names weekdays ("mon", "thu"); the checkboxes count them 0-6 from Sunday.
    const days = (s.days || []).map(function (d) {
      const i = typeof d === "string" ? DAY_NAMES.indexOf(d.toLowerCase().slice(0, 3)) : -1;
      return String(i >= 0 ? i : d);
    });
    sc.querySelectorAll("input[name=weekday]").forEach(function (cb) { cb.checked = sc.elements.kind.value === "weekly" && days.indexOf(cb.value) >= 0; });
    sc.elements.monthdays.value = sc.elements.kind.value === "monthly" ? days.join(", ") : "";
    sc.elements.start_date.value = s.start_date || todayIso();
    sc.elements.end_date.value = s.end_date || "";
    sc.elements.timezone.value = s.timezone || browserZone;
    const state = document.getElementById("sc-state");
    state.textContent = s.id ? "Saved: " + (s.description || s.cron) + "." : "No schedule saved yet.";
    showPublished(s);
    // The zone business times are read and shown in: the published schedule's, else the draft's.
    page.schedule_zone = s.id ? ((s.published && s.published.timezone) || s.timezone) : null;
    T.setInputScheduleZone(page.schedule_zone);
    showKind();
    lock(sc, rights.edit);
    schedulePreviewSoon();
  }
  /** What fires: the published schedule, its state and next fire time; when the saved draft
   * differs, say that it takes effect when the flow is published. */
  function showPublished(s) {
    const box = document.getElementById("sc-published");
    const p = s.published;
    const next = s.next_fire_time
      ? 'Next fire: <strong data-testid="schedule-next-fire">' + fmtFire(s.next_fire_time) + " " + T.esc((p && p.timezone) || "") + "</strong>"
      : 'Next fire: <strong data-testid="schedule-next-fire">none</strong>';
    const published = p
      ? "Published schedule: <strong>" + T.esc(p.enabled ? p.description : "disabled") + "</strong> in " + T.esc(p.timezone) +
        ' <span class="mono muted small">' + T.esc(p.cron) + "</span>"
      : "No schedule is published yet: nothing fires until the flow is published.";
    const title = document.getElementById("sc-preview-title");
    title.textContent = s.draft_differs ? "Next fire times of this draft, once published" : "Next fire times";
    if (!s.id) { box.hidden = true; box.innerHTML = ""; return; }
    box.hidden = false;
    box.innerHTML = (s.draft_differs
      ? '<div class="banner warning" role="status" data-testid="schedule-pending"><strong>Changes to the schedule take effect when the flow is published.</strong> Until then it fires as published.</div>'
      : "") + '<p class="help">' + published + (s.state_display ? " · " + T.esc(s.state_display) : "") + "<br>" + next + "</p>";
  }
  function scheduleBody() {
    const kind = sc.elements.kind.value;
    const body = {
      enabled: sc.elements.enabled.checked, kind: kind, start_date: sc.elements.start_date.value || null,
      end_date: sc.elements.end_date.value || null, timezone: sc.elements.timezone.value.trim() || "UTC",
    };
    if (kind === "cron") body.cron = sc.elements.cron.value.trim();
    if (kind === "minutes" || kind === "hours") body.interval = sc.elements.interval.value === "" ? null : Number(sc.elements.interval.value);
    if (kind === "daily" || kind === "weekly" || kind === "monthly") body.time = sc.elements.time.value || null;
    if (kind === "weekly") body.days = Array.prototype.map.call(sc.querySelectorAll("input[name=weekday]:checked"), function (cb) { return Number(cb.value); });
    if (kind === "monthly") body.days = sc.elements.monthdays.value.split(/[\s,]+/).filter(Boolean).map(function (s) { return /^\d+$/.test(s) ? Number(s) : s; });
    return body;
  }
  function fmtFire(iso) {
    // Keep the schedule's own wall time and offset, as the server computed it.
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::\d{2})?(?:\.\d+)?(.*)$/.exec(iso);
    if (!m) return T.esc(iso);
    const day = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3])).toUTCString().slice(0, 3);
    return m[1] + "-" + m[2] + "-" + m[3] + " " + day + " " + m[4] + ":" + m[5] + ' <span class="muted">' + T.esc(m[6] || "") + "</span>";
  }
  let previewSeq = 0;
  /** GET .../schedule/preview/ with the form's (unsaved) fields as query parameters. */
  function previewUrl(body, after) {
    const params = new URLSearchParams();
    params.set("count", "10");
    params.set("kind", body.kind);
    if (body.kind === "cron") params.set("cron", body.cron || "");
    if (body.interval != null) params.set("interval", String(body.interval));
    if (body.time) params.set("time", body.time);
    if (body.days) params.set("days", body.days.join(","));
    if (body.start_date) params.set("start_date", body.start_date);
    if (body.end_date) params.set("end_date", body.end_date);
    params.set("timezone", body.timezone);
    if (after) params.set("after", after);
    return flowUrl + "schedule/preview/?" + params.toString();
  }
  async function schedulePreview() {
    const out = document.getElementById("sc-preview");
    const body = scheduleBody();
    const seq = ++previewSeq;
    sc.querySelectorAll(".field-error").forEach(function (e) { e.remove(); });
    sc.querySelectorAll(".has-error").forEach(function (e) { e.classList.remove("has-error"); });
    try {
      let res = await T.api.get(previewUrl(body));
      let note = "";
      if (!res.fire_times.length && body.start_date) {
        // A window entirely in the past (like the quick start's example): show it from its start.
        // Fire times are strictly after `after`: start from the eve of the first day.
        const eve = new Date(body.start_date + "T00:00:00Z");
        eve.setUTCDate(eve.getUTCDate() - 1);
        res = await T.api.get(previewUrl(body, eve.toISOString().slice(0, 10) + "T00:00:00"));
        note = res.fire_times.length ? '<p class="help">The window has no fire time left; these are its fire times from the start.</p>' : "";
      }
      if (seq !== previewSeq) return;
      document.getElementById("sc-cron-out").textContent = res.cron ? "(" + res.cron + ")" : "";
      out.className = "";
      out.innerHTML = res.fire_times.length
        ? note + '<ol class="fire-times">' + res.fire_times.map(function (t) { return "<li>" + fmtFire(t) + "</li>"; }).join("") + "</ol>"
        : '<p class="muted">No fire time in this window.</p>';
    } catch (err) {
      if (seq !== previewSeq) return;
      document.getElementById("sc-cron-out").textContent = "";
      if (err.status === 400 && err.body && err.body.days && body.kind === "monthly") err.body.monthdays = err.body.days;
      const general = T.showFormErrors(sc, err);
      out.className = "";
      out.innerHTML = general.length ? '<div class="banner error">' + general.map(T.esc).join("<br>") + "</div>" : '<p class="muted">Fix the highlighted field to see the fire times.</p>';
      const errorsBox = sc.querySelector("[data-errors]");
      if (errorsBox) errorsBox.innerHTML = "";
    }
  }
  const schedulePreviewSoon = debounce(schedulePreview, 250);
  sc.addEventListener("input", schedulePreviewSoon);
  sc.addEventListener("change", function (ev) { if (ev.target === sc.elements.kind) showKind(); schedulePreviewSoon(); });
  async function saveSchedule() {
    T.clearFormErrors(sc);
    try {
      const saved = await T.api.put(flowUrl + "schedule/", scheduleBody());
      fillSchedule(saved);
      markDirty(sc, false);
      return true;
    } catch (err) {
      if (err.status === 400 && err.body && err.body.days && sc.elements.kind.value === "monthly") err.body.monthdays = err.body.days;
      T.showFormErrors(sc, err);
      return false;
    }
  }
  sc.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    if (await saveSchedule()) T.toast("Schedule saved.", "success");
  });

  // ------------------------------------------------------------------ one save model
  // Every form of the panel marks its tab (and the page's "unsaved changes" badge) when the
  // user changes it; the top Save saves the canvas and every changed form, its own Save button
  // only that form, and leaving the page with anything unsaved asks first.
  const savers = new Map([[info, saveInfo], [varForm, saveVariables], [ntForm, saveNotifications], [sc, saveSchedule]]);
  const dirtyForms = new Set();
  function markDirty(form, value) {
    if (value) dirtyForms.add(form); else dirtyForms.delete(form);
    const tab = panel.querySelector('.tab[data-tab="' + form.getAttribute("data-pane") + '"]');
    if (tab) tab.classList.toggle("dirty", !!value);
    document.dispatchEvent(new CustomEvent("tributary:dirty"));
  }
  savers.forEach(function (_save, form) {
    const onEdit = function (ev) { if (!ev.target.closest("[data-no-dirty]")) markDirty(form, true); };
    form.addEventListener("input", onEdit);
    form.addEventListener("change", onEdit);
    form.addEventListener("click", function (ev) {
      const b = ev.target.closest("button[type=button]");
      if (b && !b.closest("[data-no-dirty]")) markDirty(form, true);  // add / remove a row
    });
  });
  /** Save every changed form; on a refusal open its tab and answer false. */
  async function saveDirty() {
    for (const [form, save] of savers) {
      if (!dirtyForms.has(form)) continue;
      if (!(await save())) { openTab(form.getAttribute("data-pane")); return false; }
    }
    return true;
  }

  // ------------------------------------------------------------------ load
  async function loadFlow() {
    flow = await T.api.get(flowUrl);
    fillInfo();
    fillVariables();
    fillParameters();
    fillNotifications();
  }
  const loadingFlow = loadFlow().catch(function (err) { T.toast("The configuration could not be loaded: " + err.message, "error"); });
  const loadingSchedule = T.api.get(flowUrl + "schedule/").then(fillSchedule).catch(function () { fillSchedule(null); });
  // Marks the panel filled (the forms are not overwritten after this), for tests and scripts.
  Promise.all([loadingFlow, loadingSchedule]).then(function () { panel.setAttribute("data-loaded", ""); });

  window.TributaryPanel = {
    currentVariables: currentVariables, openTab: openTab, saveDirty: saveDirty,
    isDirty: function () { return dirtyForms.size > 0; },
  };
})();
