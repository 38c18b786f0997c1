/* The webhooks page: list, add (the secret is shown once), pause/resume, delete, and each
   subscription's deliveries with redeliver, through /api/v1/webhooks/. */
(function () {
  "use strict";
  const T = window.Tributary;
  const page = T.jsonScript("page-data");
  const rows = document.getElementById("webhook-rows");
  const dlg = document.getElementById("webhook-dialog");
  const form = document.getElementById("webhook-form");
  const secretBox = document.getElementById("webhook-secret");
  const deliveryCard = document.getElementById("delivery-card");
  const deliveryRows = document.getElementById("delivery-rows");
  let shown = null;

  function when(s) { return T.esc((s || "").slice(0, 16).replace("T", " ")); }

  async function load() {
    try {
      const list = await T.api.all("/api/v1/webhooks/");
      if (!list.length) { rows.innerHTML = '<tr><td colspan="5" class="empty">No webhooks yet.</td></tr>'; return; }
      rows.innerHTML = list.map(function (w) {
        return '<tr data-id="' + w.id + '"><td><strong class="mono">' + T.esc(w.url) + "</strong>" +
          (w.description ? '<div class="muted">' + T.esc(w.description) + "</div>" : "") +
          '</td><td class="mono">' + w.events.map(T.esc).join("<br>") + "</td><td>" +
          (w.is_active ? "active" : '<span class="muted">paused</span>') + "</td><td>" + when(w.created_at) +
          '</td><td class="nowrap"><button type="button" class="small" data-act="deliveries">Deliveries</button> ' +
          (page.can_manage
            ? '<button type="button" class="small" data-act="toggle">' + (w.is_active ? "Pause" : "Resume") +
              '</button> <button type="button" class="small danger" data-act="delete">Delete</button>'
            : "") +
          "</td></tr>";
      }).join("");
      rows.querySelectorAll("tr[data-id]").forEach(function (tr) {
        const hook = list.filter(function (w) { return String(w.id) === tr.getAttribute("data-id"); })[0];
        tr.addEventListener("click", function (ev) {
          const act = ev.target.getAttribute && ev.target.getAttribute("data-act");
          if (act === "deliveries") deliveries(hook);
          if (act === "toggle") toggle(hook);
          if (act === "delete") remove(hook);
        });
      });
    } catch (err) {
      rows.innerHTML = '<tr><td colspan="5"><div class="banner error">' + T.esc(err.message) + "</div></td></tr>";
    }
  }

  async function deliveries(hook) {
    shown = hook;
    deliveryCard.hidden = false;
    document.getElementById("delivery-title").textContent = "Deliveries to " + hook.url;
    deliveryRows.innerHTML = '<tr><td colspan="7" class="empty">Loading…</td></tr>';
    try {
      const list = await T.api.all("/api/v1/webhooks/" + hook.id + "/deliveries/");
      if (!list.length) { deliveryRows.innerHTML = '<tr><td colspan="7" class="empty">No deliveries yet.</td></tr>'; return; }
      deliveryRows.innerHTML = list.map(function (d) {
        const answer = d.last_status_code ? "HTTP " + d.last_status_code : "";
        return '<tr data-id="' + d.id + '"><td>' + d.id + '</td><td class="mono">' + T.esc(d.event_type) +
          '</td><td><span class="status" data-status="' + T.esc(d.status) + '">' + T.esc(d.status) + "</span></td><td>" +
          d.attempts_made + "</td><td>" + T.esc(answer) + (d.last_error ? ' <span class="muted">' + T.esc(d.last_error) + "</span>" : "") +
          "</td><td>" + when(d.created_at) + '</td><td class="nowrap">' +
          (page.can_manage ? '<button type="button" class="small" data-act="redeliver">Redeliver</button>' : "") +
          "</td></tr>";
      }).join("");
      deliveryRows.querySelectorAll("tr[data-id]").forEach(function (tr) {
        tr.addEventListener("click", async function (ev) {
          if (!(ev.target.getAttribute && ev.target.getAttribute("data-act") === "redeliver")) return;
          try {
            await T.api.post("/api/v1/webhooks/" + hook.id + "/deliveries/" + tr.getAttribute("data-id") + "/redeliver/");
            T.toast("Sent again.", "success");
            deliveries(hook);
          } catch (err) { T.toast(err.message, "error"); }
        });
      });
    } catch (err) {
      deliveryRows.innerHTML = '<tr><td colspan="7"><div class="banner error">' + T.esc(err.message) + "</div></td></tr>";
    }
  }

  async function toggle(hook) {
    try {
      await T.api.patch("/api/v1/webhooks/" + hook.id + "/", { is_active: !hook.is_active });
      T.toast(hook.is_active ? "Paused." : "Resumed.", "success");
      load();
    } catch (err) { T.toast(err.message, "error"); }
  }

  async function remove(hook) {
    if (!window.confirm("Delete the webhook to " + hook.url + "?")) return;
    try {
      await T.api.del("/api/v1/webhooks/" + hook.id + "/");
      if (shown && shown.id === hook.id) deliveryCard.hidden = true;
      T.toast("Deleted.", "success");
      load();
    } catch (err) { T.toast(err.message, "error"); }
  }

  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    T.clearFormErrors(form);
    const body = {
      url: form.elements.url.value.trim(),
      events: Array.prototype.filter.call(form.querySelectorAll("input[name=event]"), function (c) { return c.checked; })
        .map(function (c) { return c.value; }),
      description: form.elements.description.value.trim(),
    };
    if (form.elements.secret.value !== "") body.secret = form.elements.secret.value;
    try {
      const created = await T.api.post("/api/v1/webhooks/", body);
      form.reset();
      dlg.close();
      secretBox.querySelector("[data-url]").textContent = created.url;
      secretBox.querySelector("[data-secret]").textContent = created.secret;
      secretBox.hidden = false;
      T.toast("Saved.", "success");
      load();
    } catch (err) {
      T.showFormErrors(form, err);
    }
  });
  const newBtn = document.getElementById("webhook-new");
  if (newBtn) newBtn.addEventListener("click", function () { T.clearFormErrors(form); form.reset(); dlg.showModal(); });
  load();
})();
