/* The API tokens page: your own tokens through /api/v1/me/tokens/: list (never the secret),
   create (the token is shown once, in the answer that issues it), revoke. */
(function () {
  "use strict";
  const T = window.Tributary;
  const rows = document.getElementById("token-rows");
  const dlg = document.getElementById("token-dialog");
  const form = document.getElementById("token-form");
  const shownBox = document.getElementById("token-shown");

  function when(s) { return s ? T.esc(s.slice(0, 16).replace("T", " ")) : '<span class="muted">—</span>'; }

  async function load() {
    try {
      const list = await T.api.all("/api/v1/me/tokens/");
      if (!list.length) { rows.innerHTML = '<tr><td colspan="7" class="empty">No API tokens yet.</td></tr>'; return; }
      rows.innerHTML = list.map(function (t) {
        return '<tr data-id="' + t.id + '"><td><strong>' + T.esc(t.name) + '</strong> <span class="muted mono">' + T.esc(t.prefix) + "…</span>" +
          '</td><td class="mono">' + t.scopes.map(T.esc).join("<br>") + '</td><td><span data-state="' + T.esc(t.state) + '">' + T.esc(t.state) +
          "</span></td><td>" + when(t.expires_at) + "</td><td>" + when(t.last_used_at) + "</td><td>" + when(t.created_at) +
          '</td><td class="nowrap">' + (t.state === "active" ? '<button type="button" class="small danger" data-act="revoke">Revoke</button>' : "") +
          "</td></tr>";
      }).join("");
      rows.querySelectorAll("tr[data-id]").forEach(function (tr) {
        const token = list.filter(function (t) { return String(t.id) === tr.getAttribute("data-id"); })[0];
        tr.addEventListener("click", function (ev) {
          if (ev.target.getAttribute && ev.target.getAttribute("data-act") === "revoke") revoke(token);
        });
      });
    } catch (err) {
      rows.innerHTML = '<tr><td colspan="7"><div class="banner error">' + T.esc(err.message) + "</div></td></tr>";
    }
  }

  async function revoke(token) {
    if (!window.confirm("Revoke the token “" + token.name + "”? Integrations using it stop working.")) return;
    try { await T.api.del("/api/v1/me/tokens/" + token.id + "/"); T.toast("Revoked.", "success"); load(); }
    catch (err) { T.toast(err.message, "error"); }
  }

  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    T.clearFormErrors(form);
    const body = {
      name: form.elements.name.value.trim(),
      scopes: Array.prototype.filter.call(form.querySelectorAll("input[name=scope]"), function (c) { return c.checked; })
        .map(function (c) { return c.value; }),
    };
    if (form.elements.expires_at.value) body.expires_at = form.elements.expires_at.value + "T23:59:59Z";
    try {
      const created = await T.api.post("/api/v1/me/tokens/", body);
      form.reset();
      dlg.close();
      shownBox.querySelector("[data-name]").textContent = created.name;
      shownBox.querySelector("[data-token]").textContent = created.token;
      shownBox.hidden = false;
      T.toast("Created.", "success");
      load();
    } catch (err) {
      T.showFormErrors(form, err);
    }
  });
  document.getElementById("token-new").addEventListener("click", function () { T.clearFormErrors(form); form.reset(); dlg.showModal(); });
  load();
})();
