/* A form generated from a node type's JSON Schema (the `schema` of flows/nodes/<type>.py).
 *
 * Supported: string (x-widget "sql"/"textarea" or long maxLength → textarea), integer, number,
 * boolean, enum (select; "x-enum-labels" gives the options' words), x-widget "datasource" (select of the tenant's data sources),
 * x-widget "flow" (select of the tenant's flows), arrays of strings (one per line); any other
 * shape (objects, arrays of objects, oneOf) is edited as JSON. Field wrappers carry
 * data-field="config.<name>" so a server 400 naming "config.<name>" lands next to the field.
 */
(function () {
  "use strict";
  const T = window.Tributary;

  function widgetOf(prop) {
    if (!prop || typeof prop !== "object") return "json";
    const w = prop["x-widget"] || prop.widget;
    if (w === "datasource" || w === "flow" || w === "sql" || w === "textarea" || w === "code") return w;
    if (prop.format === "datasource") return "datasource";
    const type = Array.isArray(prop.type) ? prop.type.filter(function (t) { return t !== "null"; })[0] : prop.type;
    if (prop.enum) return "enum";
    if (type === "boolean") return "boolean";
    if (type === "integer" || type === "number") return type;
    if (type === "string") return (prop.maxLength && prop.maxLength > 300 && !prop.format) ? "textarea" : "string";
    if (type === "array" && prop.items && (prop.items.type === "string" || prop.items.type === "integer") && !prop.items.enum) return "lines";
    if (type === "array" && prop.items && prop.items.enum) return "multi";
    return "json";
  }

  function nullable(prop) {
    return Array.isArray(prop.type) && prop.type.indexOf("null") >= 0;
  }

  /**
   * Render `schema` into `container` with `value`; returns {read(), showErrors(map), clear()}.
   * ctx: {datasources: [{id,name,engine}], flows: [{id,name}], readOnly, idPrefix}
   */
  function render(container, schema, value, ctx) {
    ctx = ctx || {};
    value = value || {};
    const props = (schema && schema.properties) || {};
    const required = (schema && schema.required) || [];
    const prefix = ctx.idPrefix || "cfg";
    const fields = [];
    container.innerHTML = "";
    if (schema && schema.description) {
      const p = document.createElement("p");
      p.className = "help";
      p.textContent = schema.description;
      container.appendChild(p);
    }
    const names = Object.keys(props);
    if (!names.length) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = "This node type has nothing to configure.";
      container.appendChild(p);
    }
    names.forEach(function (name) {
      const prop = props[name] || {};
      const widget = widgetOf(prop);
      const id = prefix + "-" + name;
      const wrap = document.createElement("div");
      wrap.setAttribute("data-field-wrap", "");
      wrap.setAttribute("data-field", "config." + name);
      const isRequired = required.indexOf(name) >= 0;
      const title = prop.title || name;
      const current = Object.prototype.hasOwnProperty.call(value, name) ? value[name] : prop.default;
      let input;
      let emptyHelp = null;
      if (widget === "boolean") {
        const label = document.createElement("label");
        label.className = "inline";
        input = document.createElement("input");
        input.type = "checkbox";
        input.id = id;
        input.checked = !!current;
        label.appendChild(input);
        label.appendChild(document.createTextNode(" " + title));
        wrap.appendChild(label);
      } else {
        const label = document.createElement("label");
        label.setAttribute("for", id);
        label.textContent = title + (isRequired ? " *" : "");
        wrap.appendChild(label);
        if (widget === "datasource" || widget === "flow" || widget === "enum") {
          input = document.createElement("select");
          const options = [];
          if (!isRequired || current === undefined || current === null || current === "") options.push(["", widget === "enum" ? "—" : "Choose…"]);
          if (widget === "datasource") {
            (ctx.datasources || []).forEach(function (ds) { options.push([String(ds.id), ds.name + (ds.engine ? " (" + ds.engine + ")" : "")]); });
            if (current != null && current !== "" && !(ctx.datasources || []).some(function (ds) { return String(ds.id) === String(current); })) {
              options.push([String(current), "Data source #" + current + " (missing)"]);
            }
          } else if (widget === "flow") {
            // This flow itself is offered only with ctx.selfFlowNote saying what choosing it
            // means (a dependency waits on its own earlier cycle); otherwise (a sub-flow or a
            // loop cannot run its own flow) it is left out, unless it is the saved value.
            (ctx.flows || []).forEach(function (f) {
              const self = String(f.id) === String(ctx.selfFlowId);
              if (self && !ctx.selfFlowNote && String(current) !== String(f.id)) return;
              options.push([String(f.id), self ? f.name + " (this flow" + (ctx.selfFlowNote ? ": " + ctx.selfFlowNote : "") + ")" : f.name]);
            });
            if (current != null && current !== "" && !(ctx.flows || []).some(function (f) { return String(f.id) === String(current); })) {
              options.push([String(current), "Flow #" + current + " (not visible)"]);
            }
          } else {
            // x-enum-labels: the choices in words, in the order of enum.
            const labels = Array.isArray(prop["x-enum-labels"]) ? prop["x-enum-labels"] : [];
            prop.enum.forEach(function (v, i) { options.push([String(v), labels[i] != null ? String(labels[i]) : String(v)]); });
          }
          options.forEach(function (o) {
            const opt = document.createElement("option");
            opt.value = o[0]; opt.textContent = o[1];
            input.appendChild(opt);
          });
          input.value = current == null ? "" : String(current);
          if (widget === "datasource" && !(ctx.datasources || []).length) {
            emptyHelp = 'No data source yet: <a href="/datasources/" target="_blank" rel="noopener">register one</a>, then reopen this node.';
          }
        } else if (widget === "sql" || widget === "textarea" || widget === "code" || widget === "lines" || widget === "json") {
          input = document.createElement("textarea");
          if (widget === "sql" || widget === "code" || widget === "json") input.className = "code";
          if (widget === "lines") input.value = Array.isArray(current) ? current.join("\n") : "";
          else if (widget === "json") input.value = current === undefined ? "" : JSON.stringify(current, null, 2);
          else input.value = current == null ? "" : String(current);
          input.spellcheck = false;
        } else {
          input = document.createElement("input");
          input.type = widget === "integer" || widget === "number" ? "number" : "text";
          if (widget === "number") input.step = "any";
          if (prop.minimum !== undefined) input.min = prop.minimum;
          if (prop.maximum !== undefined) input.max = prop.maximum;
          if (prop.maxLength) input.maxLength = prop.maxLength;
          input.value = current == null ? "" : String(current);
        }
        if (Array.isArray(prop.examples) && prop.examples.length && "placeholder" in input) input.placeholder = "e.g. " + prop.examples[0];
        input.id = id;
        wrap.appendChild(input);
        if (emptyHelp) {
          const help = document.createElement("div");
          help.className = "help";
          help.innerHTML = emptyHelp;
          wrap.appendChild(help);
        }
      }
      input.name = "config." + name;
      input.disabled = !!ctx.readOnly;
      if (widget === "json" && !input.placeholder) {
        // Say what shape of JSON is expected (a parameters object, a list of objects).
        const shape = Array.isArray(prop.type) ? prop.type.filter(function (t) { return t !== "null"; })[0] : prop.type;
        if (shape === "object") input.placeholder = 'e.g. {"name": "value"}';
        else if (shape === "array" && prop.items && prop.items.type === "object") input.placeholder = 'e.g. [{"name": "value"}, {"name": "other"}]';
      }
      const helpText = widget === "json"
        ? (prop.description ? prop.description + " " : "") + "Written as JSON."
        : prop.description || (widget === "lines" ? "One item per line." : "");
      if (helpText) {
        const help = document.createElement("div");
        help.className = "help";
        help.textContent = helpText;
        wrap.appendChild(help);
      }
      container.appendChild(wrap);
      fields.push({ name: name, prop: prop, widget: widget, input: input, wrap: wrap, required: isRequired });
    });

    // "x-show-when": {"mode": "sql"} shows a field only while the named field has that value
    // (a hidden field is not read, so the node keeps only what its mode uses).
    function shown(f) {
      const when = f.prop["x-show-when"];
      if (!when) return true;
      return Object.keys(when).every(function (other) {
        const o = fields.filter(function (x) { return x.name === other; })[0];
        return !o || String(o.input.value) === String(when[other]);
      });
    }
    function applyVisibility() { fields.forEach(function (f) { f.wrap.hidden = !shown(f); }); }
    fields.forEach(function (f) { f.input.addEventListener("change", applyVisibility); });
    // A field's error goes once the field is edited (it no longer describes what is there).
    function clearField(f) {
      f.wrap.classList.remove("has-error");
      f.wrap.querySelectorAll(".field-error").forEach(function (e) { e.remove(); });
    }
    fields.forEach(function (f) {
      f.input.addEventListener("input", function () { clearField(f); });
      f.input.addEventListener("change", function () { clearField(f); });
    });
    applyVisibility();

    function read() {
      const out = {};
      const errors = {};
      fields.forEach(function (f) {
        if (!shown(f)) return;
        const el = f.input;
        let v;
        const raw = el.type === "checkbox" ? el.checked : el.value;
        if (f.widget === "boolean") { out[f.name] = !!raw; return; }
        if (typeof raw === "string" && raw.trim() === "" && f.widget !== "sql" && f.widget !== "textarea" && f.widget !== "string") {
          if (f.required) errors[f.name] = "This field is required.";
          else if (nullable(f.prop)) out[f.name] = null;
          return;
        }
        switch (f.widget) {
          case "datasource": case "flow": case "integer":
            v = Number(raw);
            if (!Number.isInteger(v)) { errors[f.name] = "Give a whole number."; return; }
            break;
          case "number":
            v = Number(raw);
            if (!Number.isFinite(v)) { errors[f.name] = "Give a number."; return; }
            break;
          case "enum": {
            const match = f.prop.enum.filter(function (e) { return String(e) === raw; });
            v = match.length ? match[0] : raw;
            break;
          }
          case "lines":
            v = raw.split("\n").map(function (s) { return s.trim(); }).filter(Boolean);
            if (f.prop.items && f.prop.items.type === "integer") v = v.map(Number);
            break;
          case "json":
            try { v = JSON.parse(raw); } catch (e) { errors[f.name] = "Not valid JSON: " + e.message; return; }
            break;
          default:
            v = raw;
            if (v === "" && !f.required) return;
        }
        if (f.required && (v === "" || v === undefined)) { errors[f.name] = "This field is required."; return; }
        if (typeof v === "number") {
          if (f.prop.minimum !== undefined && v < f.prop.minimum) { errors[f.name] = "At least " + f.prop.minimum + "."; return; }
          if (f.prop.maximum !== undefined && v > f.prop.maximum) { errors[f.name] = "At most " + f.prop.maximum + "."; return; }
        }
        if (typeof v === "string" && f.prop.minLength && v.trim().length < f.prop.minLength) { errors[f.name] = "This field is required."; return; }
        out[f.name] = v;
      });
      return { value: out, errors: errors };
    }

    function clear() { fields.forEach(clearField); }

    /** errors: {fieldName: message | [messages]}; returns the messages that matched no field. */
    function showErrors(errors) {
      clear();
      const unmatched = [];
      Object.keys(errors || {}).forEach(function (key) {
        const name = key.replace(/^config\./, "");
        const f = fields.filter(function (x) { return x.name === name || name.indexOf(x.name + ".") === 0 || name.indexOf(x.name + "[") === 0; })[0];
        const msgs = [].concat(errors[key]);
        if (!f) { msgs.forEach(function (m) { unmatched.push(key + ": " + m); }); return; }
        f.wrap.classList.add("has-error");
        const ul = document.createElement("ul");
        ul.className = "errorlist field-error";
        msgs.forEach(function (m) { const li = document.createElement("li"); li.textContent = m; ul.appendChild(li); });
        f.wrap.appendChild(ul);
      });
      return unmatched;
    }

    return { read: read, showErrors: showErrors, clear: clear, fields: fields };
  }

  window.TributarySchemaForm = { render: render, widgetOf: widgetOf, esc: T.esc };
})();
