/* The secrets page: list, add, rename, set a new value and delete through /api/v1/secrets/.
   A value is only ever sent, never read: the API has no field that returns it. */
(function () {
  "use strict";
  const T = window.Tributary;
  const page = T.jsonScript("page-data");
  const rows = document.getElementById("secret-rows");
  const dlg = document.getElementById("secret-dialog");
  const form = document.getElementById("secret-form");
  let editing = null;

  form.elements.flow.innerHTML += page.flows.map(function (f) { return '<option value="' + f[0] + '">' + T.esc(f[1]) + "</option>"; }).join("");

  function scope(s) {
    return s.flow ? "flow " + T.esc(s.flow_name || "#" + s.flow) : '<span class="muted">tenant</span>';
  }
  async function load() {
    try {
      const list = await T.api.all("/api/v1/secrets/");
      if (!list.length) { rows.innerHTML = '<tr><td colspan="5" class="empty">No secrets yet.</td></tr>'; return; }
      rows.innerHTML = list.map(function (s) {
        return "<tr data-id=\"" + s.id + "\"><td><strong>" + T.esc(s.name) + '</strong></td><td class="mono">' + T.esc(s.reference) +
          "</td><td>" + scope(s) + "</td><td>" + T.esc((s.updated_at || "").slice(0, 16).replace("T", " ")) +
          '</td><td class="nowrap">' +
          (page.can_manage ? '<button type="button" class="small" data-act="edit">Edit</button> <button type="button" class="small danger" data-act="delete">Delete</button>' : "") +
          "</td></tr>";
      }).join("");
      rows.querySelectorAll("tr[data-id]").forEach(function (tr) {
        const secret = list.filter(function (s) { return String(s.id) === tr.getAttribute("data-id"); })[0];
        tr.addEventListener("click", function (ev) {
          const act = ev.target.getAttribute && ev.target.getAttribute("data-act");
          if (act === "edit") open(secret);
          if (act === "delete") remove(secret);
        });
      });
    } catch (err) {
      rows.innerHTML = '<tr><td colspan="5"><div class="banner error">' + T.esc(err.message) + "</div></td></tr>";
    }
  }
  function open(secret) {
    editing = secret || null;
    T.clearFormErrors(form);
    form.reset();
    document.getElementById("secret-title").textContent = secret ? "Edit " + secret.name : "Add secret";
    form.querySelector("[data-scope]").hidden = !!secret;
    if (secret) form.elements.name.value = secret.name;
    document.getElementById("secret-value-help").textContent = secret
      ? "Leave empty to keep the stored value; it is never shown."
      : "Write-only: it is never shown again.";
    dlg.showModal();
  }
  async function remove(secret) {
    if (!window.confirm("Delete the secret “" + secret.name + "”?")) return;
    try { await T.api.del("/api/v1/secrets/" + secret.id + "/"); T.toast("Deleted.", "success"); load(); }
    catch (err) { T.toast(err.message, "error"); }
  }
  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    T.clearFormErrors(form);
    const body = { name: form.elements.name.value.trim() };
    if (form.elements.value.value !== "") body.value = form.elements.value.value;
    try {
      if (editing) await T.api.patch("/api/v1/secrets/" + editing.id + "/", body);
      else {
        body.flow = form.elements.flow.value === "" ? null : Number(form.elements.flow.value);
        await T.api.post("/api/v1/secrets/", body);
      }
      form.elements.value.value = "";
      dlg.close();
      T.toast("Saved.", "success");
      load();
    } catch (err) {
      T.showFormErrors(form, err);
    }
  });
  const newBtn = document.getElementById("secret-new");
  if (newBtn) newBtn.addEventListener("click", function () { open(null); });
  load();
})();
