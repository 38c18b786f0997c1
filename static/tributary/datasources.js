/* The data sources page: list, register, edit, test and delete through /api/v1/datasources/. */
(function () {
  "use strict";
  const T = window.Tributary;
  const page = T.jsonScript("page-data");
  const rows = document.getElementById("ds-rows");
  const dlg = document.getElementById("ds-dialog");
  const form = document.getElementById("ds-form");
  let editing = null;

  form.elements.engine.innerHTML = page.engines.map(function (e) { return '<option value="' + T.esc(e[0]) + '">' + T.esc(e[1]) + "</option>"; }).join("");
  function syncEngine() {
    const sqlite = form.elements.engine.value === "sqlite";
    form.querySelectorAll("[data-net]").forEach(function (el) { el.hidden = sqlite; });
    document.getElementById("ds-database-label").textContent = sqlite ? "Database file" : "Database";
    document.getElementById("ds-database-help").textContent = sqlite ? "Absolute path of the SQLite file on the workers." : "";
  }
  form.elements.engine.addEventListener("change", syncEngine);

  function where(ds) {
    if (ds.engine === "sqlite") return '<span class="mono">' + T.esc(ds.database) + "</span>";
    return T.esc((ds.host || "") + (ds.port ? ":" + ds.port : "")) + " / " + T.esc(ds.database);
  }
  async function load() {
    try {
      const list = await T.api.all("/api/v1/datasources/");
      if (!list.length) { rows.innerHTML = '<tr><td colspan="7" class="empty">No data sources yet.</td></tr>'; return; }
      rows.innerHTML = list.map(function (ds) {
        return "<tr data-id=\"" + ds.id + "\"><td><strong>" + T.esc(ds.name) + "</strong></td><td>" + T.esc(ds.engine) + "</td><td>" + where(ds) +
          "</td><td>" + T.esc(ds.username || "—") + "</td><td>" + (ds.has_password ? "set" : '<span class="muted">none</span>') +
          "</td><td>" + (ds.max_concurrency == null ? '<span class="muted">no cap</span>' : T.esc(ds.max_concurrency + " at once")) +
          '</td><td class="nowrap"><button type="button" class="small" data-act="test">Test</button> ' +
          (page.can_manage ? '<button type="button" class="small" data-act="edit">Edit</button> <button type="button" class="small danger" data-act="delete">Delete</button>' : "") +
          ' <span data-result class="small"></span></td></tr>';
      }).join("");
      rows.querySelectorAll("tr[data-id]").forEach(function (tr) {
        const ds = list.filter(function (d) { return String(d.id) === tr.getAttribute("data-id"); })[0];
        tr.addEventListener("click", function (ev) {
          const act = ev.target.getAttribute && ev.target.getAttribute("data-act");
          if (act === "edit") open(ds);
          if (act === "delete") remove(ds);
          if (act === "test") test(ds, tr.querySelector("[data-result]"));
        });
      });
    } catch (err) {
      rows.innerHTML = '<tr><td colspan="7"><div class="banner error">' + T.esc(err.message) + "</div></td></tr>";
    }
  }
  function open(ds) {
    editing = ds || null;
    T.clearFormErrors(form);
    form.reset();
    document.getElementById("ds-title").textContent = ds ? "Edit " + ds.name : "Register data source";
    if (ds) {
      ["name", "engine", "host", "database", "username"].forEach(function (k) { form.elements[k].value = ds[k] == null ? "" : ds[k]; });
      form.elements.port.value = ds.port == null ? "" : ds.port;
      form.elements.options.value = ds.options && Object.keys(ds.options).length ? JSON.stringify(ds.options) : "";
      form.elements.max_concurrency.value = ds.max_concurrency == null ? "" : ds.max_concurrency;
    }
    document.getElementById("ds-password-help").textContent = ds && ds.has_password ? "Leave empty to keep the stored password." : "";
    syncEngine();
    dlg.showModal();
  }
  async function test(ds, out) {
    out.textContent = "testing…";
    try {
      const res = await T.api.post("/api/v1/datasources/" + ds.id + "/test/");
      out.innerHTML = res.ok ? '<span class="badge ok">connected</span>' : '<span class="badge bad">' + T.esc(res.error || "failed") + "</span>";
    } catch (err) { out.innerHTML = '<span class="badge bad">' + T.esc(err.message) + "</span>"; }
  }
  async function remove(ds) {
    if (!window.confirm("Delete the data source “" + ds.name + "”?")) return;
    try { await T.api.del("/api/v1/datasources/" + ds.id + "/"); T.toast("Deleted.", "success"); load(); }
    catch (err) { T.toast(err.message, "error"); }
  }
  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    T.clearFormErrors(form);
    const body = { name: form.elements.name.value.trim(), engine: form.elements.engine.value, database: form.elements.database.value.trim() };
    if (body.engine !== "sqlite") {
      body.host = form.elements.host.value.trim();
      body.port = form.elements.port.value === "" ? null : Number(form.elements.port.value);
      body.username = form.elements.username.value.trim();
      if (form.elements.password.value !== "") body.password = form.elements.password.value;
    }
    body.max_concurrency = form.elements.max_concurrency.value === "" ? null : Number(form.elements.max_concurrency.value);
    const rawOptions = form.elements.options.value.trim();
    if (rawOptions) {
      try { body.options = JSON.parse(rawOptions); }
      catch (e) { T.showFormErrors(form, { status: 400, body: { options: ["Not valid JSON: " + e.message] } }); return; }
    }
    try {
      if (editing) await T.api.patch("/api/v1/datasources/" + editing.id + "/", body);
      else await T.api.post("/api/v1/datasources/", body);
      dlg.close();
      T.toast("Saved.", "success");
      load();
    } catch (err) {
      T.showFormErrors(form, err);
    }
  });
  const newBtn = document.getElementById("ds-new");
  if (newBtn) newBtn.addEventListener("click", function () { open(null); });
  load();
})();
