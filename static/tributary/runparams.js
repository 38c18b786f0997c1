/* Run parameters in the console: the form a run button shows, generated from the flow's
 * declared parameters, and the row editor of the declarations (Parameters tab).
 * The server validates and coerces every value (a 400 names parameters.<name>); this only
 * shapes the input by type.
 */
(function () {
  "use strict";
  const TYPES = ["string", "integer", "number", "boolean", "date", "datetime"];

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text != null) node.textContent = text;
    return node;
  }

  function localInput(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (isNaN(d)) return "";
    const pad = function (n) { return String(n).padStart(2, "0"); };
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  /** Fill `box` with one input per declared parameter; returns how many there are. */
  function renderForm(box, declarations) {
    box.innerHTML = "";
    (declarations || []).forEach(function (p) {
      const wrap = el("div", { "data-field-wrap": "", "data-field": "parameters." + p.name, "data-param": p.name, "data-type": p.type });
      const id = "rparam-" + box.id + "-" + p.name;
      wrap.appendChild(el("label", { for: id }, p.name + (p.required && p.default == null ? " *" : "") + " (" + p.type + ")"));
      let input;
      if (p.choices && p.choices.length) {
        input = el("select", { id: id });
        if (!p.required || p.default == null) input.appendChild(el("option", { value: "" }, p.required ? "— choose —" : "(none)"));
        p.choices.forEach(function (c) { input.appendChild(el("option", { value: String(c) }, String(c))); });
        if (p.default != null) input.value = String(p.default);
      } else if (p.type === "boolean") {
        input = el("select", { id: id });
        [["", p.default == null ? "(none)" : "default (" + p.default + ")"], ["true", "true"], ["false", "false"]].forEach(function (c) {
          input.appendChild(el("option", { value: c[0] }, c[1]));
        });
      } else {
        const kind = { integer: "number", number: "number", date: "date", datetime: "datetime-local" }[p.type] || "text";
        input = el("input", { id: id, type: kind });
        if (p.type === "integer") input.setAttribute("step", "1");
        if (p.type === "number") input.setAttribute("step", "any");
        if (p.default != null) input.value = p.type === "datetime" ? localInput(p.default) : String(p.default);
      }
      input.setAttribute("data-param-input", p.name);
      wrap.appendChild(input);
      if (p.description) wrap.appendChild(el("div", { class: "help" }, p.description));
      box.appendChild(wrap);
    });
    return (declarations || []).length;
  }

  /** The values of a rendered form: empty inputs are left out (the default applies). */
  function readForm(box) {
    const values = {};
    box.querySelectorAll("[data-param]").forEach(function (wrap) {
      const name = wrap.getAttribute("data-param");
      const type = wrap.getAttribute("data-type");
      const raw = wrap.querySelector("[data-param-input]").value;
      if (raw === "") return;
      if (type === "datetime") {
        const d = new Date(raw);
        values[name] = isNaN(d) ? raw : d.toISOString();
      } else {
        values[name] = raw;
      }
    });
    return values;
  }

  /** The declarations' row editor of the Parameters tab. */
  function createEditor(container, options) {
    const editable = !!(options && options.editable);
    function addRow(p) {
      p = p || { name: "", type: "string", required: false, default: null, choices: null, description: "" };
      const row = el("div", { class: "row", "data-param-row": "" });
      const name = el("input", { "data-k": "name", placeholder: "name", maxlength: "64" });
      name.value = p.name || "";
      const type = el("select", { "data-k": "type" });
      TYPES.forEach(function (t) { type.appendChild(el("option", { value: t }, t)); });
      type.value = p.type || "string";
      const reqLabel = el("label", { class: "inline" });
      const req = el("input", { type: "checkbox", "data-k": "required" });
      req.checked = !!p.required;
      reqLabel.appendChild(req);
      reqLabel.appendChild(document.createTextNode(" required"));
      const def = el("input", { "data-k": "default", placeholder: "default" });
      def.value = p.default == null ? "" : String(p.default);
      const choices = el("input", { "data-k": "choices", placeholder: "choices, comma-separated" });
      choices.value = (p.choices || []).join(", ");
      const desc = el("input", { "data-k": "description", placeholder: "description", maxlength: "500" });
      desc.value = p.description || "";
      const remove = el("button", { type: "button", class: "small danger", "data-edit-only": "" }, "✕");
      remove.addEventListener("click", function () { row.remove(); });
      [name, type, reqLabel, def, choices, desc, remove].forEach(function (c) { row.appendChild(c); });
      row.querySelectorAll("input, select, button").forEach(function (c) { c.disabled = !editable; });
      container.appendChild(row);
    }
    return {
      fill: function (declarations) {
        container.querySelectorAll("[data-param-row]").forEach(function (r) { r.remove(); });
        (declarations || []).forEach(addRow);
      },
      add: function () { addRow(null); },
      read: function () {
        return Array.prototype.map.call(container.querySelectorAll("[data-param-row]"), function (row) {
          const get = function (k) { return row.querySelector('[data-k="' + k + '"]'); };
          const choices = get("choices").value.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
          const def = get("default").value.trim();
          return {
            name: get("name").value.trim(),
            type: get("type").value,
            required: get("required").checked,
            default: def === "" ? null : def,
            choices: choices.length ? choices : null,
            description: get("description").value.trim(),
          };
        });
      },
    };
  }

  window.TributaryRunParams = { renderForm: renderForm, readForm: readForm, createEditor: createEditor };
})();
