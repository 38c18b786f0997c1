/* Rows editing variable definitions, shared by the flow's Variables tab and a node's form.
 *
 * A row: name, type (time | constant), format or value, offset, and for time variables the
 * base its offset counts from (business time, the default; or bizdate = a day earlier, as DMS
 * counts). create(container, {editable, onChange}) → {add(v), fill(list), read(), markErrors(msgs)}.
 */
(function () {
  "use strict";

  function create(container, opts) {
    opts = opts || {};
    const onChange = opts.onChange || function () {};

    function add(v) {
      v = v || { name: "", type: "time", format: "yyyy-MM-dd", offset: "-1d" };
      const row = document.createElement("div");
      row.className = "row";
      row.setAttribute("data-var-row", "");
      row.innerHTML =
        '<input data-k="name" placeholder="name" maxlength="64" aria-label="Variable name">' +
        '<select data-k="type" aria-label="Variable type"><option value="time">time</option><option value="constant">constant</option></select>' +
        '<input data-k="value" aria-label="Value or format">' +
        '<input data-k="offset" placeholder="-1d" aria-label="Offset">' +
        '<select data-k="base" aria-label="Offset counted from" title="What the offset counts from">' +
        '<option value="business_time">from business time</option><option value="bizdate">from bizdate (a day earlier)</option></select>' +
        '<button type="button" class="small danger" data-edit-only aria-label="Remove variable">✕</button>';
      const get = function (k) { return row.querySelector('[data-k="' + k + '"]'); };
      get("name").value = v.name || "";
      get("type").value = v.type === "constant" ? "constant" : "time";
      get("value").value = v.type === "constant" ? (v.value == null ? "" : v.value) : (v.format || "");
      get("offset").value = v.offset || "";
      get("base").value = v.base === "bizdate" ? "bizdate" : "business_time";
      function sync() {
        const constant = get("type").value === "constant";
        get("offset").disabled = constant || !opts.editable;
        get("base").disabled = constant || !opts.editable;
        get("value").placeholder = constant ? "value" : "yyyy-MM-dd";
      }
      get("type").addEventListener("change", sync);
      row.querySelector("button").addEventListener("click", function () { row.remove(); onChange(); });
      row.addEventListener("input", onChange);
      container.appendChild(row);
      row.querySelectorAll("input, select, button").forEach(function (el) { el.disabled = !opts.editable; });
      sync();
    }

    function fill(list) {
      container.querySelectorAll("[data-var-row]").forEach(function (r) { r.remove(); });
      (list || []).forEach(add);
    }

    function read() {
      return Array.prototype.map.call(container.querySelectorAll("[data-var-row]"), function (row) {
        const get = function (k) { return row.querySelector('[data-k="' + k + '"]').value.trim(); };
        if (get("type") === "constant") return { name: get("name"), type: "constant", value: row.querySelector('[data-k="value"]').value };
        const out = { name: get("name"), type: "time", format: get("value") };
        if (get("offset")) out.offset = get("offset");
        // The default base is left out, so definitions saved before bases existed read the same.
        if (get("base") === "bizdate") out.base = "bizdate";
        return out;
      }).filter(function (v) { return v.name || v.value || v.format; });
    }

    /** Marks the rows named by "variables[i]…" messages. */
    function markErrors(msgs) {
      const rows = container.querySelectorAll("[data-var-row]");
      rows.forEach(function (r) { r.classList.remove("has-error"); });
      (msgs || []).forEach(function (m) {
        const hit = /variables\[(\d+)\]/.exec(m);
        if (hit && rows[Number(hit[1])]) rows[Number(hit[1])].classList.add("has-error");
      });
    }

    return { add: add, fill: fill, read: read, markErrors: markErrors };
  }

  window.TributaryVarRows = { create: create };
})();
