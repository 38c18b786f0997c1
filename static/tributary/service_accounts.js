/* The service accounts page: list, add, deactivate/reactivate through /api/v1/service-accounts/,
   and each account's tokens (issue: shown once; revoke) through …/{id}/tokens/. */
(function () {
  "use strict";
  const T = window.Tributary;
  const page = T.jsonScript("page-data");
  const base = "/api/v1/service-accounts/";
  const rows = document.getElementById("sa-rows");
  const tokenCard = document.getElementById("sa-token-card");
  const tokenRows = document.getElementById("sa-token-rows");
  const form = document.getElementById("sa-form");
  const tokenForm = document.getElementById("sa-token-form");
  const shownBox = document.getElementById("sa-token-shown");
  let current = null;

  function when(s) { return s ? T.esc(s.slice(0, 16).replace("T", " ")) : '<span class="muted">—</span>'; }
  function onAct(tbody, list, handlers) {
    tbody.querySelectorAll("tr[data-id]").forEach(function (tr) {
      const item = list.filter(function (x) { return String(x.id) === tr.getAttribute("data-id"); })[0];
      tr.addEventListener("click", function (ev) {
        const act = ev.target.getAttribute && ev.target.getAttribute("data-act");
        if (act && handlers[act]) handlers[act](item);
      });
    });
  }

  async function load() {
    try {
      const list = await T.api.all(base);
      if (!list.length) { rows.innerHTML = '<tr><td colspan="5" class="empty">No service accounts yet.</td></tr>'; return; }
      rows.innerHTML = list.map(function (a) {
        return '<tr data-id="' + a.id + '"><td><strong>' + T.esc(a.username) + "</strong>" +
          (a.description ? '<div class="muted">' + T.esc(a.description) + "</div>" : "") + "</td><td>" + T.esc(a.role) +
          "</td><td>" + (a.is_active ? "active" : '<span class="muted">deactivated</span>') + "</td><td>" + when(a.created_at) +
          '</td><td class="nowrap"><button type="button" class="small" data-act="tokens">Tokens</button> ' +
          (page.can_manage ? '<button type="button" class="small" data-act="toggle">' + (a.is_active ? "Deactivate" : "Reactivate") + "</button>" : "") +
          "</td></tr>";
      }).join("");
      onAct(rows, list, { tokens: tokens, toggle: toggle });
    } catch (err) {
      rows.innerHTML = '<tr><td colspan="5"><div class="banner error">' + T.esc(err.message) + "</div></td></tr>";
    }
  }

  async function tokens(account) {
    current = account;
    tokenCard.hidden = false;
    document.getElementById("sa-token-title").textContent = "Tokens of " + account.username;
    try {
      const list = await T.api.all(base + account.id + "/tokens/");
      if (!list.length) { tokenRows.innerHTML = '<tr><td colspan="6" class="empty">No tokens yet.</td></tr>'; return; }
      tokenRows.innerHTML = list.map(function (t) {
        return '<tr data-id="' + t.id + '"><td><strong>' + T.esc(t.name) + '</strong> <span class="muted mono">' + T.esc(t.prefix) + "…</span>" +
          '</td><td class="mono">' + t.scopes.map(T.esc).join("<br>") + '</td><td><span data-state="' + T.esc(t.state) + '">' + T.esc(t.state) +
          "</span></td><td>" + when(t.expires_at) + "</td><td>" + when(t.last_used_at) + '</td><td class="nowrap">' +
          (page.can_manage && t.state === "active" ? '<button type="button" class="small danger" data-act="revoke">Revoke</button>' : "") +
          "</td></tr>";
      }).join("");
      onAct(tokenRows, list, { revoke: revoke });
    } catch (err) {
      tokenRows.innerHTML = '<tr><td colspan="6"><div class="banner error">' + T.esc(err.message) + "</div></td></tr>";
    }
  }

  async function toggle(account) {
    try {
      await T.api.patch(base + account.id + "/", { is_active: !account.is_active });
      T.toast(account.is_active ? "Deactivated." : "Reactivated.", "success");
      load();
    } catch (err) { T.toast(err.message, "error"); }
  }

  async function revoke(token) {
    if (!window.confirm("Revoke the token “" + token.name + "”?")) return;
    try { await T.api.del(base + current.id + "/tokens/" + token.id + "/"); T.toast("Revoked.", "success"); tokens(current); }
    catch (err) { T.toast(err.message, "error"); }
  }

  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    T.clearFormErrors(form);
    const body = { name: form.elements.name.value.trim(), role: form.elements.role.value, description: form.elements.description.value.trim() };
    try {
      await T.api.post(base, body);
      form.reset();
      document.getElementById("sa-dialog").close();
      T.toast("Saved.", "success");
      load();
    } catch (err) { T.showFormErrors(form, err); }
  });

  tokenForm.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    T.clearFormErrors(tokenForm);
    const body = {
      name: tokenForm.elements.name.value.trim(),
      scopes: Array.prototype.filter.call(tokenForm.querySelectorAll("input[name=scope]"), function (c) { return c.checked; })
        .map(function (c) { return c.value; }),
    };
    try {
      const created = await T.api.post(base + current.id + "/tokens/", body);
      tokenForm.reset();
      document.getElementById("sa-token-dialog").close();
      shownBox.querySelector("[data-name]").textContent = created.name;
      shownBox.querySelector("[data-token]").textContent = created.token;
      shownBox.hidden = false;
      tokens(current);
    } catch (err) { T.showFormErrors(tokenForm, err); }
  });

  const newBtn = document.getElementById("sa-new");
  if (newBtn) newBtn.addEventListener("click", function () { T.clearFormErrors(form); form.reset(); document.getElementById("sa-dialog").showModal(); });
  const newToken = document.getElementById("sa-token-new");
  if (newToken) newToken.addEventListener("click", function () { T.clearFormErrors(tokenForm); tokenForm.reset(); document.getElementById("sa-token-dialog").showModal(); });
  load();
})();
