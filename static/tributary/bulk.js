/* Bulk O&M actions on selected runs: an action bar, a reason prompt, POST /api/v1/runs/bulk/,
   and what became of each run (done, or what the single action would have answered).
   A page calls Tributary.bulk({ selected, clear, after }) once; it owns which runs are selected. */
(function () {
  "use strict";
  const T = window.Tributary;
  const LABELS = { stop: "Stop", pause: "Pause", resume: "Resume", rerun: "Rerun", restore: "Restore" };

  T.bulk = function (opts) {
    const bar = document.getElementById("bulk-bar");
    if (!bar) return { refresh: function () {} };  // read-only roles get no bar
    const count = document.getElementById("bulk-count");
    const results = document.getElementById("bulk-results");
    const dialog = document.getElementById("bulk-dialog");
    const form = document.getElementById("bulk-form");
    const reason = document.getElementById("bulk-reason");
    let action = null;

    function refresh() {
      const n = opts.selected().length;
      bar.hidden = n === 0;
      count.textContent = n + " run" + (n === 1 ? "" : "s") + " selected";
    }

    function message(errors) {
      return T.flattenErrors(errors || {}).join(" ") || "refused";
    }

    function show(body) {
      results.hidden = false;
      results.innerHTML = '<div class="muted small">' + T.esc(LABELS[body.action] || body.action) + ": " +
        body.done + " done, " + body.refused + " refused</div><ul class=\"plain\">" +
        body.results.map(function (r) {
          const what = r.result === "done"
            ? "done" + (r.new_run ? ' → <a href="/runs/' + r.new_run + '/">run #' + r.new_run + "</a>" : r.run_status ? " (" + T.esc(r.run_status) + ")" : "")
            : "refused (" + r.status + "): " + T.esc(message(r.errors));
          return '<li data-testid="bulk-result" data-run="' + r.run + '" data-result="' + T.esc(r.result) + '">' +
            '<a href="/runs/' + r.run + '/">#' + r.run + "</a> " + what + "</li>";
        }).join("") + "</ul>";
    }

    bar.addEventListener("click", function (ev) {
      if (ev.target.closest("[data-bulk-clear]")) { opts.clear(); refresh(); return; }
      const btn = ev.target.closest("[data-bulk]");
      if (!btn) return;
      action = btn.getAttribute("data-bulk");
      const ids = opts.selected();
      document.getElementById("bulk-title").textContent = LABELS[action] + " " + ids.length + " run" + (ids.length === 1 ? "" : "s");
      document.getElementById("bulk-which").textContent = "Runs " + ids.map(function (i) { return "#" + i; }).join(", ");
      T.clearFormErrors(form);
      reason.value = "";
      dialog.showModal();
      reason.focus();
    });

    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      T.clearFormErrors(form);
      const apply = document.getElementById("bulk-apply");
      apply.disabled = true;
      try {
        const body = await T.api.post("/api/v1/runs/bulk/", { action: action, runs: opts.selected(), reason: reason.value });
        dialog.close();
        show(body);
        opts.clear();
        refresh();
        if (opts.after) opts.after(body);
      } catch (err) {
        T.showFormErrors(form, err);
      } finally {
        apply.disabled = false;
      }
    });

    refresh();
    return { refresh: refresh };
  };
})();
