/* The run page: DAG coloured by node status, polled every second while the run is not finished,
 * a Gantt timeline of node durations, node output and log, and the O&M actions the user may take.
 */
(function () {
  "use strict";
  const T = window.Tributary, D = window.TributaryDag;
  const page = T.jsonScript("page-data");
  const runUrl = "/api/v1/runs/" + page.run_id + "/";
  const terminal = page.terminal;
  const cy = D.create(document.getElementById("run-cy"), { readOnly: true });
  let run = null;
  let selected = null;   // node id (string) of the selected node
  let timer = null;
  let lastLogAt = 0;

  // ------------------------------------------------------------------ the DAG of the version that ran
  const graph = page.graph;
  const typeLabel = function (type) { return (page.type_labels || {})[type] || type; };
  // How a node's state reads: a deferred node has started and waits, without a worker, for
  // its next check (running to the user); a waiting node says what holds it back.
  function heldBy(nr) {
    if (!nr.waiting_reason) return "";
    // The pool's detail names the pool; the tenant's limit reads best as its label.
    const words = (nr.waiting_reason !== "tenant_limit" && nr.waiting_detail) || (page.waiting_reasons || {})[nr.waiting_reason] || nr.waiting_detail;
    return words ? "held by " + words.charAt(0).toLowerCase() + words.slice(1) : "";
  }
  function statusText(nr) {
    const label = (page.node_statuses || {})[nr.status] || nr.status.replace(/_/g, " ");
    const held = heldBy(nr);
    return held ? label + ": " + held : label;
  }
  // On the canvas (a node is 168px wide): the state and, for a held node, what holds it.
  const SHORT_REASONS = { tenant_limit: "tenant limit", pool: "pool full", concurrency_policy: "concurrency policy" };
  function shortStatus(nr) {
    if (nr.status === "deferred") return "running · waiting";
    if (nr.status === "waiting" && SHORT_REASONS[nr.waiting_reason]) return "waiting: " + SHORT_REASONS[nr.waiting_reason];
    return nr.status.replace(/_/g, " ");
  }
  // The node table's narrow column: the state in a short badge, and what a long label
  // explains (held by what, waiting for a check) on a line under it; the whole label is
  // the badge's tooltip and in the node panel.
  const SHORT_LABELS = { not_run: "Not run", deferred: "Running", waiting: "Waiting" };
  const NOTES = { deferred: "waiting for its next check" };
  function badge(nr, attrs) {
    return '<span class="badge ' + T.esc(nr.status) + '"' + (attrs || "") + ' title="' + T.esc(statusText(nr)) + '">' + T.esc(statusText(nr)) + "</span>";
  }
  function statusCell(nr) {
    const note = nr.status === "waiting" ? heldBy(nr) : NOTES[nr.status] || "";
    const text = SHORT_LABELS[nr.status] || statusText(nr);
    return '<span class="node-state" data-testid="node-status-' + T.esc(nr.node_name) + '"><span class="badge ' + T.esc(nr.status) + '" title="' + T.esc(statusText(nr)) + '">' + T.esc(text) + "</span>" +
      (note ? '<span class="note">' + T.esc(note) + "</span>" : "") + "</span>";
  }
  graph.nodes.forEach(function (n) {
    const added = cy.add({ group: "nodes", data: { id: "n" + n.id, name: n.name, type: n.type, trigger_rule: n.trigger_rule, color: D.typeColor(n.type), stripe: D.stripe(n.type) }, position: n.position || { x: 0, y: 0 } });
    D.labelNode(added, n.name, typeLabel(n.type), D.controlMark(n.trigger_rule, n.enabled));
  });
  graph.edges.forEach(function (e, i) {
    const data = { id: "e" + i, source: "n" + e.upstream, target: "n" + e.downstream };
    if (e.branch) data.branch = e.branch;
    if (cy.getElementById(data.source).nonempty() && cy.getElementById(data.target).nonempty()) cy.add({ group: "edges", data: data });
  });
  if (D.needsLayout(graph.nodes)) D.layout(cy, false); else D.fit(cy);
  cy.on("tap", "node", function (ev) { select(ev.target.id(), true); });

  // ------------------------------------------------------------------ sub-flows and loops
  function runBadge(status) { return '<span class="badge ' + T.esc(status) + '">' + T.esc(status.replace(/_/g, " ")) + "</span>"; }
  /** A loop's item key (its index from 0) as users count it. */
  function itemWords(key) { return /^\d+$/.test(key || "") ? "item " + (Number(key) + 1) : key ? "item " + key : ""; }
  /** A child run in words: "item 2 · run #41 of daily load" for a loop's, "run #40 of …" for a sub-flow's. */
  function childName(c) {
    const item = itemWords(c.parent_key);
    return (item ? item + " · " : "") + "run #" + c.id + " of " + c.flow_name;
  }
  /** The run that started this one: its flow, the node and the item, as far as the user may see it. */
  function parentLink() {
    const p = page.parent || { run: run.parent_run };
    let text = "run #" + p.run + (p.flow_name ? " of " + p.flow_name : "");
    if (p.node_name) text += ", node “" + p.node_name + "”" + (p.key ? " (" + itemWords(p.key) + ")" : "");
    return '<a data-testid="parent-run" href="/runs/' + T.esc(p.run) + '/">' + T.esc(text) + "</a>";
  }
  /** Under a sub-flow or loop node: the runs it started (any attempt's), with their status. */
  function renderChildren(node) {
    const box = document.getElementById("np-children");
    const ref = node && node.nonempty() ? Number(node.id().slice(1)) : null;
    const mine = (run.child_runs || []).filter(function (c) { return c.parent_node != null && c.parent_node === ref; });
    if (!mine.length) { box.hidden = true; box.innerHTML = ""; return; }
    const loop = mine.some(function (c) { return c.parent_key !== ""; });
    box.hidden = false;
    box.innerHTML = "<h3>" + (loop ? "Item runs (" + mine.length + ")" : "Child run") + '</h3><ul class="child-runs" data-testid="node-child-runs">' +
      mine.map(function (c) { return '<li><a href="/runs/' + T.esc(c.id) + '/">' + T.esc(childName(c)) + "</a> " + runBadge(c.status) + "</li>"; }).join("") + "</ul>";
  }

  // ------------------------------------------------------------------ rendering
  function latestByNode() {
    // The newest attempt of each node is its status (older attempts stay for the record).
    const out = {};
    (run.node_runs || []).forEach(function (nr) {
      const key = nr.node != null ? "n" + nr.node : "name:" + nr.node_name;
      if (!out[key] || (nr.attempt || 0) >= (out[key].attempt || 0)) out[key] = nr;
    });
    return out;
  }
  function nodeKeyFor(nr) {
    if (nr.node != null && cy.getElementById("n" + nr.node).nonempty()) return "n" + nr.node;
    const hit = cy.nodes().filter(function (n) { return n.data("name") === nr.node_name; })[0];
    return hit ? hit.id() : null;
  }
  function paintGraph(latest) {
    cy.nodes().forEach(function (n) {
      Object.keys(D.STATUS_COLORS).forEach(function (s) { n.removeClass("st-" + s); });
    });
    Object.keys(latest).forEach(function (k) {
      const nr = latest[k];
      const id = nodeKeyFor(nr);
      if (!id) return;
      const n = cy.getElementById(id);
      n.addClass("st-" + nr.status);
      // Name and status (the colour stripe already tells the type), and its trigger rule's mark.
      D.labelNode(n, n.data("name"), shortStatus(nr), D.controlMark(n.data("trigger_rule"), true));
      n.data("status", nr.status);
    });
  }
  function renderActions() {
    const status = run.status;
    const finished = terminal.indexOf(status) >= 0;
    const show = {
      pause: status === "running" || status === "queued" || status === "waiting",
      resume: status === "paused",
      stop: !finished,
      restore: finished && (status === "failed" || status === "stopped"),
      rerun: finished,
    };
    document.querySelectorAll("[data-run-action]").forEach(function (b) { b.hidden = !show[b.getAttribute("data-run-action")]; });
  }
  document.addEventListener("tributary:zone", function () { if (run) renderHeader(); });
  function renderHeader() {
    const badge = document.getElementById("run-status");
    badge.className = "badge " + run.status;
    badge.textContent = run.status;
    document.getElementById("run-live").hidden = terminal.indexOf(run.status) >= 0;
    const kv = [
      ["Status", '<span class="badge ' + T.esc(run.status) + '">' + T.esc(run.status) + "</span>"],
      ["Mode", T.esc((page.modes || {})[run.mode] || run.mode)], ["Trigger", T.esc((page.triggers || {})[run.trigger] || run.trigger || "—") + (run.triggered_by_name ? " (" + T.esc(run.triggered_by_name) + ")" : "")],
      ["Business time", T.fmtTime(run.business_time, true, page.zone)], ["Created", T.fmtTime(run.created_at, true, page.zone)],
      ["Started", T.fmtTime(run.started_at, true, page.zone)], ["Finished", T.fmtTime(run.finished_at, true, page.zone)],
      ["Duration", T.fmtDuration(run.started_at, run.finished_at)],
    ];
    if (run.version != null) kv.splice(3, 0, ["Version", "v" + T.esc(run.version)]);
    if (run.deadline_at) {
      let text = T.deadlineBadge(run) + " " + T.fmtTime(run.deadline_at);
      const p = run.deadline_prediction;
      if (p && p.finish) {
        text += ' <span class="muted small">predicted finish ' + T.fmtTime(p.finish) + " (" +
          (p.nodes || []).map(function (n) { return T.esc(n.node_name); }).join(" → ") + ")</span>";
      }
      kv.push(["Deadline", text]);
    }
    if (run.error) kv.push(["Error", '<span style="color:var(--bad)">' + T.esc(run.error) + "</span>"]);
    if (run.skip_reason) kv.push(["Skipped", T.esc(run.skip_reason)]);
    // Sub-flows and loops: the run that started this one, and the runs this one started.
    if (run.parent_run) kv.push(["Started by", parentLink()]);
    if (run.child_runs && run.child_runs.length) {
      kv.push(["Child runs", run.child_runs.map(function (c) {
        return '<a data-testid="child-run" href="/runs/' + T.esc(c.id) + '/">' + T.esc(childName(c)) + "</a> " + runBadge(c.status);
      }).join("<br>")]);
    }
    document.getElementById("run-kv").innerHTML = kv.map(function (p) { return "<dt>" + p[0] + "</dt><dd>" + p[1] + "</dd>"; }).join("");
  }
  function renderTable(latest) {
    const list = Object.keys(latest).map(function (k) { return latest[k]; });
    const order = {};
    cy.nodes().forEach(function (n, i) { order[n.data("name")] = i; });
    list.sort(function (a, b) {
      return (a.started_at || "9") < (b.started_at || "9") ? -1 : (a.started_at || "9") > (b.started_at || "9") ? 1 : (order[a.node_name] || 0) - (order[b.node_name] || 0);
    });
    document.getElementById("node-rows").innerHTML = list.map(function (nr) {
      const id = nodeKeyFor(nr) || "";
      return '<tr data-node="' + T.esc(id) + '" class="' + (id === selected ? "selected" : "") + '" style="cursor:pointer"><td class="node-name"><span class="truncate" title="' + T.esc(nr.node_name) + '">' + T.esc(nr.node_name) + "</span>" +
        "</td><td>" + statusCell(nr) + "</td><td>" +
        T.esc(nr.attempt || 1) + '</td><td class="nowrap">' + T.fmtDuration(nr.started_at, nr.finished_at) + "</td></tr>";
    }).join("") || '<tr><td colspan="4" class="empty">No node has been scheduled yet.</td></tr>';
  }
  function renderGantt(latest) {
    const box = document.getElementById("gantt");
    const list = Object.keys(latest).map(function (k) { return latest[k]; }).filter(function (nr) { return nr.started_at; });
    if (!list.length) { box.innerHTML = '<span class="muted">No node has started yet.</span>'; return; }
    const now = Date.now();
    const starts = list.map(function (nr) { return Date.parse(nr.started_at); });
    const ends = list.map(function (nr) { return nr.finished_at ? Date.parse(nr.finished_at) : now; });
    const t0 = Math.min.apply(null, starts.concat(run.started_at ? [Date.parse(run.started_at)] : []));
    const t1 = Math.max.apply(null, ends.concat(run.finished_at ? [Date.parse(run.finished_at)] : []));
    const span = Math.max(t1 - t0, 1);
    const critical = {};
    (run.critical_path || []).forEach(function (c) { critical[typeof c === "object" ? c.node : c] = true; });
    list.sort(function (a, b) { return Date.parse(a.started_at) - Date.parse(b.started_at); });
    box.innerHTML = list.map(function (nr) {
      const s = Date.parse(nr.started_at), e = nr.finished_at ? Date.parse(nr.finished_at) : now;
      const left = ((s - t0) / span) * 100, width = Math.max(((e - s) / span) * 100, 0.4);
      const cls = ["succeeded", "failed", "upstream_failed", "running", "stopped", "skipped"].indexOf(nr.status) >= 0 ? nr.status : "running";
      return '<div class="name" title="' + T.esc(nr.node_name) + '">' + (critical[nr.node] ? "★ " : "") + T.esc(nr.node_name) + "</div>" +
        '<div class="track"><div class="bar ' + cls + '" style="left:' + left.toFixed(2) + "%;width:" + width.toFixed(2) + '%" title="' +
        T.esc(nr.node_name + ": " + T.fmtDuration(nr.started_at, nr.finished_at)) + '"></div></div>';
    }).join("") + '<div class="axis"><span>0</span><span>' + T.esc(T.fmtDuration(new Date(t0).toISOString(), new Date(t1).toISOString())) + "</span></div>" +
      (run.critical_path && run.critical_path.length ? '<div class="axis"><span>★ on the critical path</span><span></span></div>' : "");
  }
  async function renderNodePanel(latest, refreshLog) {
    const panel = document.getElementById("node-panel");
    if (!selected) { panel.hidden = true; return; }
    const nr = Object.keys(latest).map(function (k) { return latest[k]; }).filter(function (x) { return nodeKeyFor(x) === selected; })[0];
    const node = cy.getElementById(selected);
    panel.hidden = false;
    document.getElementById("np-title").textContent = node.nonempty() ? node.data("name") : "Node";
    renderChildren(node);
    if (!nr) {
      document.getElementById("np-kv").innerHTML = "<dt>Status</dt><dd>not scheduled</dd>";
      document.getElementById("np-output").textContent = "—";
      document.getElementById("np-config").textContent = "—";
      document.getElementById("np-log").textContent = "—";
      panel.querySelectorAll("[data-node-action]").forEach(function (b) { b.hidden = true; });
      return;
    }
    const kv = [["Status", badge(nr)], ["Attempt", T.esc(nr.attempt || 1)],
      ["Started", T.fmtTime(nr.started_at, true, page.zone)], ["Finished", T.fmtTime(nr.finished_at, true, page.zone)], ["Duration", T.fmtDuration(nr.started_at, nr.finished_at)]];
    if (nr.status === "deferred" && nr.next_attempt_at) kv.push(["Next check", T.fmtTime(nr.next_attempt_at, true, page.zone)]);
    if (nr.error) kv.push(["Error", '<span style="color:var(--bad)">' + T.esc(nr.error) + "</span>"]);
    document.getElementById("np-kv").innerHTML = kv.map(function (p) { return "<dt>" + p[0] + "</dt><dd>" + p[1] + "</dd>"; }).join("");
    const out = nr.output;
    document.getElementById("np-output").textContent = out && Object.keys(out).length ? JSON.stringify(out, null, 2) : "—";
    const cfg = nr.rendered_config;
    document.getElementById("np-config").textContent = cfg && Object.keys(cfg).length ? JSON.stringify(cfg, null, 2) : "— (not rendered yet)";
    const finished = terminal.indexOf(run.status) >= 0;
    panel.querySelectorAll("[data-node-action]").forEach(function (b) {
      const act = b.getAttribute("data-node-action");
      b.hidden = act === "mark-success" ? nr.status !== "failed" : !(finished || nr.status === "failed");
      b.setAttribute("data-node-run", nr.id);
    });
    if (refreshLog || Date.now() - lastLogAt > 2000 || nr.status === "running" || nr.status === "deferred") {
      lastLogAt = Date.now();
      try {
        const log = await T.api.text("/api/v1/node-runs/" + nr.id + "/log/");
        const text = typeof log === "string" ? log : (log && (log.log != null ? log.log : JSON.stringify(log, null, 2)));
        const pre = document.getElementById("np-log");
        const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.textContent = text || "(empty)";
        if (atBottom) pre.scrollTop = pre.scrollHeight;
      } catch (err) {
        document.getElementById("np-log").textContent = "The log could not be read: " + err.message;
      }
    }
  }
  // Until the user picks a node, the panel follows the running node (the latest started one).
  const followBox = document.getElementById("np-follow");
  function followRunning(latest) {
    if (!followBox || !followBox.checked) return;
    const list = Object.keys(latest).map(function (k) { return latest[k]; });
    const running = list.filter(function (nr) { return nr.status === "running" || nr.status === "deferred"; });
    const pick = (running.length ? running : list.filter(function (nr) { return nr.started_at; }))
      .sort(function (a, b) { return (a.started_at || "") < (b.started_at || "") ? 1 : -1; })[0];
    const id = pick ? nodeKeyFor(pick) : null;
    if (id && id !== selected) { selected = id; cy.$(":selected").unselect(); cy.getElementById(id).select(); }
  }
  function select(id, byUser) {
    if (byUser && followBox) followBox.checked = false;
    selected = id;
    cy.$(":selected").unselect();
    if (id) cy.getElementById(id).select();
    if (run) { const latest = latestByNode(); renderTable(latest); renderNodePanel(latest, true); }
  }
  document.getElementById("node-rows").addEventListener("click", function (ev) {
    const tr = ev.target.closest("tr[data-node]");
    if (tr && tr.getAttribute("data-node")) select(tr.getAttribute("data-node"), true);
  });

  // ------------------------------------------------------------------ polling
  async function poll() {
    clearTimeout(timer);
    try {
      run = await T.api.get(runUrl);
      document.getElementById("run-error").innerHTML = "";
      const latest = latestByNode();
      followRunning(latest);
      paintGraph(latest);
      renderHeader();
      renderActions();
      renderTable(latest);
      renderGantt(latest);
      await renderNodePanel(latest, false);
    } catch (err) {
      document.getElementById("run-error").innerHTML = '<div class="banner error">' + T.esc(err.message) + "</div>";
    }
    // Poll every second until the run is finished (and once more after, to settle the last states).
    if (!run || terminal.indexOf(run.status) < 0) timer = setTimeout(poll, 1000);
  }

  // ------------------------------------------------------------------ actions
  document.querySelectorAll("[data-run-action]").forEach(function (b) {
    b.addEventListener("click", async function () {
      const act = b.getAttribute("data-run-action");
      if (act === "stop" && !window.confirm("Stop this run? Running nodes are stopped at once.")) return;
      b.disabled = true;
      try {
        const res = await T.api.post(runUrl + act + "/");
        T.toast("Done: " + act + ".", "success");
        if (res && res.id && res.node_runs && String(res.id) !== String(page.run_id)) { window.location.href = "/runs/" + res.id + "/"; return; }
        poll();
      } catch (err) {
        T.toast(err.message, "error");
      } finally {
        b.disabled = false;
      }
    });
  });
  document.querySelectorAll("[data-node-action]").forEach(function (b) {
    b.addEventListener("click", async function () {
      const act = b.getAttribute("data-node-action");
      b.disabled = true;
      try {
        const res = await T.api.post("/api/v1/node-runs/" + b.getAttribute("data-node-run") + "/" + act + "/");
        T.toast(act === "mark-success" ? "Marked as succeeded." : "Rerunning from this node.", "success");
        if (res && res.id && res.node_runs && String(res.id) !== String(page.run_id)) { window.location.href = "/runs/" + res.id + "/"; return; }
        poll();
      } catch (err) {
        T.toast(err.message, "error");
      } finally {
        b.disabled = false;
      }
    });
  });

  poll();
  window.tributaryRun = { cy: cy, current: function () { return run; } };
})();
