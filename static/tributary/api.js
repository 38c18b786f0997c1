/* Tributary console: the one way pages talk to /api/v1/ (session auth + CSRF), plus small UI helpers. */
(function () {
  "use strict";

  function meta(name) {
    const el = document.querySelector('meta[name="' + name + '"]');
    return el ? el.getAttribute("content") : "";
  }

  /** An API answer that was not 2xx: `status` and the parsed JSON `body` ({field: [msg]} or {detail}). */
  class ApiError extends Error {
    constructor(status, body) {
      super(ApiError.summary(status, body));
      this.status = status;
      this.body = body || {};
    }
    static summary(status, body) {
      if (status === 0) return "The server could not be reached; check your connection and try again.";
      if (status === 403 && body && body.detail) return body.detail;
      if (status === 404) return (body && body.detail) || "Not found (it may have been deleted, or you may not see it).";
      if (status >= 500) return "The server had a problem; it has been logged. Please try again.";
      const msgs = flattenErrors(body);
      return msgs.length ? msgs.join(" ") : "Request failed (" + status + ").";
    }
  }

  /** Flatten a DRF error body into "field: message" strings (nested dicts and lists too). */
  function flattenErrors(body, prefix) {
    const out = [];
    if (body == null) return out;
    if (typeof body === "string") { out.push(prefix ? prefix + ": " + body : body); return out; }
    if (Array.isArray(body)) {
      body.forEach(function (item, i) {
        if (typeof item === "string") out.push(prefix ? prefix + ": " + item : item);
        else out.push.apply(out, flattenErrors(item, prefix ? prefix + "[" + i + "]" : "[" + i + "]"));
      });
      return out;
    }
    if (typeof body === "object") {
      Object.keys(body).forEach(function (key) {
        const label = key === "non_field_errors" || key === "detail" ? prefix : (prefix ? prefix + "." + key : key);
        out.push.apply(out, flattenErrors(body[key], label));
      });
    }
    return out;
  }

  /** A refused graph / publish answer as [{where, message}]: `where` is a node name, "flow" or null. */
  function problems(body) {
    if (body && body.problems && typeof body.problems === "object" && !Array.isArray(body.problems)) {
      const out = [];
      Object.keys(body.problems).forEach(function (where) {
        [].concat(body.problems[where]).forEach(function (m) { out.push({ where: where, message: String(m) }); });
      });
      return out;
    }
    return flattenErrors(body).map(function (m) { return { where: null, message: m }; });
  }

  async function request(method, url, data, opts) {
    opts = opts || {};
    const headers = { Accept: "application/json" };
    const init = { method: method, headers: headers, credentials: "same-origin" };
    if (method !== "GET" && method !== "HEAD") headers["X-CSRFToken"] = meta("csrf-token");
    if (data !== undefined && data !== null) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(data);
    }
    let resp;
    try {
      resp = await fetch(url, init);
    } catch (e) {
      throw new ApiError(0, {});
    }
    const type = resp.headers.get("Content-Type") || "";
    let body = null;
    if (resp.status !== 204) {
      if (type.indexOf("json") >= 0) {
        try { body = await resp.json(); } catch (e) { body = null; }
      } else if (opts.text) {
        body = await resp.text();
      } else {
        // Never show an HTML error page's source to the user.
        body = null;
      }
    }
    if (!resp.ok) throw new ApiError(resp.status, body);
    return body;
  }

  /** Fetch every page of a paginated list (bounded, so a huge list cannot freeze the page). */
  async function all(url, maxPages) {
    let next = url, results = [], pages = 0;
    while (next && pages < (maxPages || 20)) {
      const body = await request("GET", next);
      if (Array.isArray(body)) return body;
      results = results.concat(body.results || []);
      next = body.next;
      pages += 1;
    }
    return results;
  }

  function esc(value) {
    return String(value == null ? "" : value).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function toast(message, kind) {
    const box = document.getElementById("toasts");
    if (!box) return;
    const el = document.createElement("div");
    el.className = "toast " + (kind || "");
    el.setAttribute("role", kind === "error" ? "alert" : "status");
    el.textContent = message;
    box.appendChild(el);
    setTimeout(function () { el.remove(); }, kind === "error" ? 9000 : 4000);
  }

  /**
   * Show a 400 body next to the fields of `form` (elements with name= or data-field=);
   * what matches no field goes to the form's [data-errors] box. Returns the unmatched messages.
   */
  function showFormErrors(form, err) {
    clearFormErrors(form);
    const body = (err && err.body) || {};
    const general = [];
    if (!err || err.status !== 400 || typeof body !== "object" || Array.isArray(body)) {
      general.push(err ? err.message : "Request failed.");
    } else {
      Object.keys(body).forEach(function (key) {
        const msgs = flattenErrors(body[key]);
        const target = form.querySelector('[data-field="' + key + '"]') || form.querySelector('[name="' + key + '"]');
        if (target && key !== "non_field_errors" && key !== "detail") {
          const holder = target.closest("[data-field-wrap]") || target.parentElement;
          holder.classList.add("has-error");
          const ul = document.createElement("ul");
          ul.className = "errorlist field-error";
          msgs.forEach(function (m) { const li = document.createElement("li"); li.textContent = m; ul.appendChild(li); });
          holder.appendChild(ul);
        } else {
          msgs.forEach(function (m) { general.push(key === "non_field_errors" || key === "detail" ? m : key + ": " + m); });
        }
      });
    }
    const box = form.querySelector("[data-errors]");
    if (box && general.length) {
      box.innerHTML = '<div class="banner error" role="alert">' + general.map(esc).join("<br>") + "</div>";
    }
    // The first error is brought into view (a panel's form scrolls inside the panel).
    const first = form.querySelector("[data-errors] .banner, .field-error");
    if (first && first.scrollIntoView) first.scrollIntoView({ block: "nearest" });
    return general;
  }

  function clearFormErrors(form) {
    form.querySelectorAll(".field-error").forEach(function (el) { el.remove(); });
    form.querySelectorAll(".has-error").forEach(function (el) { el.classList.remove("has-error"); });
    const box = form.querySelector("[data-errors]");
    if (box) box.innerHTML = "";
  }

  function jsonScript(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  // ---------------------------------------------------------------- time zones
  // Every time the console shows names its zone. Times of a scheduled flow (business and fire
  // times) are shown in its schedule's zone by default; the switch in the top bar shows every
  // time in the viewer's zone or in UTC instead (kept in localStorage).
  const ZONE_KEY = "tributary.zone";
  const browserZone = (Intl.DateTimeFormat().resolvedOptions().timeZone) || "UTC";
  function zoneChoice() {
    let v = null;
    try { v = window.localStorage.getItem(ZONE_KEY); } catch (e) { v = null; }
    return v === "local" || v === "utc" ? v : "schedule";
  }
  function zoneFor(scheduleZone) {
    const choice = zoneChoice();
    if (choice === "utc") return "UTC";
    if (choice === "local") return browserZone;
    return scheduleZone || browserZone;
  }
  const formatters = {};
  function parts(d, zone) {
    let f = formatters[zone];
    if (!f) {
      try {
        f = new Intl.DateTimeFormat("en-GB", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
          weekday: "short", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
      } catch (e) { return parts(d, "UTC"); }
      formatters[zone] = f;
    }
    const out = {};
    f.formatToParts(d).forEach(function (p) { out[p.type] = p.value; });
    return out;
  }
  /** "2026-12-07 Mon 00:00:00 Asia/Shanghai": the instant in `scheduleZone` (or the viewer's choice). */
  function fmtTime(iso, withSeconds, scheduleZone) {
    if (!iso) return "—";
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    const zone = zoneFor(scheduleZone);
    const p = parts(d, zone);
    let s = p.year + "-" + p.month + "-" + p.day + " " + p.weekday + " " + p.hour + ":" + p.minute;
    if (withSeconds !== false) s += ":" + p.second;
    return s + ' <span class="tz muted small">' + esc(zone) + "</span>";
  }
  function setupZoneSwitch() {
    const bar = document.querySelector(".topbar");
    if (!bar || !document.querySelector("meta[name=tenant]")) return;
    const select = document.createElement("select");
    select.id = "tz-switch";
    select.className = "tz-switch";
    select.setAttribute("aria-label", "Show times in");
    select.setAttribute("data-testid", "tz-switch");
    select.title = "Show times in the schedule's zone, your zone or UTC";
    [["schedule", "Times: schedule's zone"], ["local", "Times: my zone (" + browserZone + ")"], ["utc", "Times: UTC"]].forEach(function (o) {
      const opt = document.createElement("option");
      opt.value = o[0]; opt.textContent = o[1];
      select.appendChild(opt);
    });
    select.value = zoneChoice();
    select.addEventListener("change", function () {
      try { window.localStorage.setItem(ZONE_KEY, select.value); } catch (e) { /* private mode: this page only */ }
      refreshTimes();
      labelInputZones();
      document.dispatchEvent(new CustomEvent("tributary:zone"));
    });
    const nav = bar.querySelector("nav");
    if (nav && nav.nextSibling) bar.insertBefore(select, nav.nextSibling); else bar.appendChild(select);
  }
  /** Server-rendered <time data-fmt datetime="…" data-zone="…"> follow the switch too. */
  function refreshTimes() {
    document.querySelectorAll("time[data-fmt]").forEach(function (el) {
      el.innerHTML = fmtTime(el.getAttribute("datetime"), false, el.getAttribute("data-zone") || null);
    });
  }
  // Date-time inputs (run dialogs, previews) are read as wall times in the zone times are
  // shown in: the flow's schedule's zone (or the switch's choice); the page sends them with
  // that zone's offset, so the server reads exactly that instant. Each input's label names
  // the zone in an element marked data-input-zone.
  let inputScheduleZone = null;
  function inputZone() { return zoneFor(inputScheduleZone); }
  function setInputScheduleZone(zone) { inputScheduleZone = zone || null; labelInputZones(); }
  function labelInputZones() {
    const zone = inputZone(), choice = zoneChoice();
    const why = choice === "utc" ? "" : choice === "local" || !inputScheduleZone ? "your zone" : "the schedule's zone";
    document.querySelectorAll("[data-input-zone]").forEach(function (el) {
      el.textContent = "(" + zone + (why ? ", " + why : "") + ")";
      el.title = "This date and time is read in " + zone + ". The switch in the top bar changes the zone.";
    });
  }
  /** The UTC offset in minutes of `zone` at the instant `ms`. */
  function zoneOffset(ms, zone) {
    const p = parts(new Date(ms), zone);
    const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
    return Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60000);
  }
  /** A datetime-local value read as a wall time in `zone` (default: inputZone()): ISO with its offset. */
  function zonedInputToIso(value, zone) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(value || "");
    if (!m) return null;
    zone = zone || inputZone();
    const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
    // The offset at the instant that wall time names (twice: across a change, the first guess is off).
    let off = zoneOffset(wall, zone);
    off = zoneOffset(wall - off * 60000, zone);
    const a = Math.abs(off), pad = function (n) { return String(n).padStart(2, "0"); };
    return m[1] + "-" + m[2] + "-" + m[3] + "T" + m[4] + ":" + m[5] + ":" + (m[6] || "00") +
      (off >= 0 ? "+" : "-") + pad(Math.floor(a / 60)) + ":" + pad(a % 60);
  }
  /** Now as a datetime-local value in `zone` (default: inputZone()). */
  function nowInputIn(zone) {
    const p = parts(new Date(), zone || inputZone());
    return p.year + "-" + p.month + "-" + p.day + "T" + p.hour + ":" + p.minute;
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { setupZoneSwitch(); refreshTimes(); labelInputZones(); });
  else { setupZoneSwitch(); refreshTimes(); labelInputZones(); }

  // A run against its deadline (API deadline_state): a badge, or "—" without a deadline.
  const DEADLINE_BADGES = { on_time: ["ok", "on time"], at_risk: ["warn", "at risk"], missed: ["bad", "missed"] };
  function deadlineBadge(run) {
    const b = DEADLINE_BADGES[run.deadline_state];
    if (!b) return '<span class="muted">—</span>';
    return '<span class="badge ' + b[0] + '" data-deadline-state="' + esc(run.deadline_state) + '" title="deadline ' +
      esc(fmtTime(run.deadline_at)) + '">' + b[1] + "</span>";
  }

  function fmtDuration(startIso, endIso) {
    if (!startIso) return "—";
    const ms = (endIso ? new Date(endIso) : new Date()) - new Date(startIso);
    if (!(ms >= 0)) return "—";
    if (ms < 1000) return ms + " ms";
    const s = ms / 1000;
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + " s";
    const m = Math.floor(s / 60), r = Math.round(s % 60);
    if (m < 60) return m + " min " + r + " s";
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  }

  /** A value of an <input type="datetime-local"> as an ISO string with the browser's offset. */
  function localInputToIso(value) {
    if (!value) return null;
    const d = new Date(value);
    if (isNaN(d)) return null;
    const off = -d.getTimezoneOffset(), sign = off >= 0 ? "+" : "-", pad = function (n) { return String(Math.floor(Math.abs(n))).padStart(2, "0"); };
    return value.length === 16 ? value + ":00" + sign + pad(off / 60) + ":" + pad(off % 60)
      : value + sign + pad(off / 60) + ":" + pad(off % 60);
  }

  function nowLocalInput() {
    const d = new Date(), pad = function (n) { return String(n).padStart(2, "0"); };
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  window.Tributary = {
    ApiError: ApiError,
    api: {
      get: function (url) { return request("GET", url); },
      text: function (url) { return request("GET", url, null, { text: true }); },
      post: function (url, data) { return request("POST", url, data === undefined ? {} : data); },
      put: function (url, data) { return request("PUT", url, data); },
      patch: function (url, data) { return request("PATCH", url, data); },
      del: function (url) { return request("DELETE", url); },
      all: all,
    },
    flattenErrors: flattenErrors,
    problems: problems,
    showFormErrors: showFormErrors,
    clearFormErrors: clearFormErrors,
    esc: esc,
    toast: toast,
    jsonScript: jsonScript,
    fmtTime: fmtTime,
    zoneFor: zoneFor,
    fmtDuration: fmtDuration,
    deadlineBadge: deadlineBadge,
    localInputToIso: localInputToIso,
    nowLocalInput: nowLocalInput,
    inputZone: inputZone,
    setInputScheduleZone: setInputScheduleZone,
    zonedInputToIso: zonedInputToIso,
    nowInputIn: nowInputIn,
  };

  // <select data-autosubmit> submits its form on change (no inline handlers: the CSP forbids them).
  document.addEventListener("change", function (ev) {
    if (ev.target.matches && ev.target.matches("select[data-autosubmit]") && ev.target.form) ev.target.form.submit();
  });

  // Dialog openers: <button data-open="dialog-id">, <button data-close> inside a dialog.
  document.addEventListener("click", function (ev) {
    const opener = ev.target.closest("[data-open]");
    if (opener) {
      const dlg = document.getElementById(opener.getAttribute("data-open"));
      if (dlg && dlg.showModal) { ev.preventDefault(); dlg.showModal(); }
    }
    const closer = ev.target.closest("[data-close]");
    if (closer) {
      const dlg = closer.closest("dialog");
      if (dlg) { ev.preventDefault(); dlg.close(); }
    }
  });
})();
