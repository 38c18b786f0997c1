/* Shared Cytoscape set-up for every DAG drawn by the console: editor, run page, version diff. */
(function () {
  "use strict";

  const TYPE_COLORS = {
    sql: "#2563eb", sql_assign: "#7c3aed", data_sync: "#0891b2", condition: "#d97706",
    http: "#db2777", wait: "#64748b", dependency_check: "#059669", noop: "#94a3b8",
    subflow: "#4f46e5", foreach: "#9333ea",
  };
  const STATUS_COLORS = {
    pending: ["#f2f4f7", "#98a2b3"], waiting: ["#fef3c7", "#d97706"], queued: ["#dbeafe", "#60a5fa"],
    running: ["#dbeafe", "#2563eb"], deferred: ["#dbeafe", "#2563eb"],
    succeeded: ["#dcfce7", "#16a34a"], failed: ["#fee2e2", "#dc2626"],
    // Upstream-failed is not red: the node did not fail, a node before it did (orange, as Airflow).
    upstream_failed: ["#ffedd5", "#ea580c"], skipped: ["#f2f4f7", "#cbd5e1"], stopped: ["#e5e7eb", "#475467"],
    // Switched off, or left out of a node-scoped test run: grey, never red.
    disabled: ["#f2f4f7", "#d0d5dd"], not_run: ["#f9fafb", "#e4e7ec"],
  };

  function typeColor(type) { return TYPE_COLORS[type] || "#475467"; }
  function stripe(type) { const c = typeColor(type); return c + " " + c + " #ffffff #ffffff"; }

  function style() {
    const s = [
      { selector: "node", style: {
        shape: "round-rectangle", width: 168, height: 48, "background-color": "#ffffff",
        "border-width": 1.5, "border-color": "#98a2b3", "text-wrap": "wrap",
        "text-max-width": 150, "text-valign": "center", "text-halign": "center", "font-size": 12,
        "font-family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", color: "#1d2330",
        "line-height": 1.3,
      } },
      { selector: "node[label]", style: { label: "data(label)" } },
      // A stripe in the node type's colour along the left edge.
      { selector: "node[color]", style: {
        "border-color": "data(color)",
        "background-fill": "linear-gradient", "background-gradient-direction": "to-right",
        "background-gradient-stop-colors": "data(stripe)", "background-gradient-stop-positions": "0% 5% 5% 100%",
      } },
      { selector: "node:selected", style: { "border-width": 3, "border-color": "#1d4ed8", "overlay-opacity": 0 } },
      { selector: "node.problem", style: { "border-color": "#dc2626", "border-width": 3, "border-style": "dashed" } },
      { selector: "edge", style: {
        width: 2, "line-color": "#98a2b3", "target-arrow-color": "#98a2b3", "target-arrow-shape": "triangle",
        "curve-style": "bezier", "arrow-scale": 1.1,
      } },
      { selector: "edge[branch]", style: {
        label: "data(branch)", "font-size": 11, "text-background-color": "#fff", "text-background-opacity": 1,
        "text-background-padding": 2, color: "#475467",
      } },
      { selector: "edge:selected", style: { "line-color": "#1d4ed8", "target-arrow-color": "#1d4ed8", width: 3 } },
      // edgehandles
      { selector: ".eh-source, .eh-target", style: { "border-width": 3, "border-color": "#2563eb" } },
      { selector: ".eh-preview, .eh-ghost-edge", style: {
        "line-color": "#2563eb", "target-arrow-color": "#2563eb", "line-style": "dashed", width: 2,
      } },
      { selector: ".eh-ghost-edge.eh-preview-active", style: { opacity: 0 } },
      { selector: ".eh-ghost-node", style: { width: 1, height: 1, opacity: 0, label: "" } },
      { selector: ".refused", style: { "border-color": "#dc2626", "border-width": 3, "background-color": "#fee2e2" } },
      // version diff
      { selector: "node.added", style: { "background-color": "#dcfce7", "border-color": "#16a34a", "border-width": 3 } },
      { selector: "node.removed", style: { "background-color": "#fee2e2", "border-color": "#dc2626", "border-width": 3, "border-style": "dashed", opacity: 0.85 } },
      { selector: "node.changed", style: { "background-color": "#fef3c7", "border-color": "#d97706", "border-width": 3 } },
      { selector: "edge.added", style: { "line-color": "#16a34a", "target-arrow-color": "#16a34a", width: 3 } },
      { selector: "edge.removed", style: { "line-color": "#dc2626", "target-arrow-color": "#dc2626", width: 3, "line-style": "dashed" } },
    ];
    Object.keys(STATUS_COLORS).forEach(function (status) {
      s.push({ selector: "node.st-" + status, style: {
        "background-color": STATUS_COLORS[status][0], "border-color": STATUS_COLORS[status][1], "border-width": 3,
      } });
    });
    s.push({ selector: "node[color].st-pending, node[color].st-waiting, node[color].st-queued, node[color].st-running, node[color].st-deferred, node[color].st-succeeded, node[color].st-failed, node[color].st-upstream_failed, node[color].st-skipped, node[color].st-stopped, node[color].st-disabled, node[color].st-not_run, node[color].added, node[color].removed, node[color].changed, node[color].refused", style: { "background-fill": "solid" } });
    s.push({ selector: "node.st-running", style: { "border-style": "double", "border-width": 5 } });
    s.push({ selector: "node.marked", style: { height: 64 } });
    // A disabled node (editor: enabled off; run page: its row says disabled) is greyed.
    s.push({ selector: "node.off, node.st-disabled, node.st-not_run", style: { opacity: 0.5, "border-style": "dashed" } });
    return s;
  }

  /** A long name (128 characters are allowed) is cut to the node's width; lists and panels show it whole. */
  function shortName(name) { return name && name.length > 26 ? name.slice(0, 25) + "…" : name; }
  function nodeLabel(name, typeLabel, extra) {
    return shortName(name) + "\n" + typeLabel + (extra ? " · " + extra : "");
  }

  /** A trigger rule as the node's mark says it (the node form's select has the long words). */
  const RULE_MARKS = {
    all_done: "when all done", one_success: "when one succeeded", one_failed: "when one failed",
    all_failed: "when all failed", none_failed: "when none failed",
  };
  /** The mark a node's control fields put on its label, in words: its trigger rule unless
   * the default, and "disabled" when switched off. */
  function controlMark(rule, enabled) {
    const parts = [];
    if (rule && rule !== "all_success") parts.push("⚑ " + (RULE_MARKS[rule] || rule.replace(/_/g, " ")));
    if (enabled === false) parts.push("disabled");
    return parts.join(" · ");
  }
  /** Label a node with its name, a second line and, when it has one, its mark on a third
   * line (the node grows to hold it: a mark beside the type overflowed the node). */
  function labelNode(node, name, second, mark) {
    node.data("label", shortName(name) + "\n" + second + (mark ? "\n" + mark : ""));
    node.toggleClass("marked", !!mark);
  }

  /** A Cytoscape instance in `container` with the console's look; `opts.readOnly` locks it. */
  function create(container, opts) {
    opts = opts || {};
    const cy = window.cytoscape({
      container: container,
      style: style(),
      elements: [],
      minZoom: 0.2,
      maxZoom: 2.5,
      boxSelectionEnabled: !opts.readOnly,
      autoungrabify: !!opts.readOnly,
      autounselectify: false,
    });
    // Cytoscape only notices window resizes; panels opening under the canvas resize it too.
    if (window.ResizeObserver) {
      new ResizeObserver(function () {
        cy.resize();
        // Bring the graph back into view if the new size hides part of it.
        if (!cy.nodes().length) return;
        const ext = cy.extent(), bb = cy.elements().boundingBox();
        if (bb.x1 < ext.x1 || bb.x2 > ext.x2 || bb.y1 < ext.y1 || bb.y2 > ext.y2) fit(cy);
      }).observe(container);
    }
    return cy;
  }

  function layout(cy, animate) {
    if (!cy.nodes().length) return;
    cy.layout({
      name: "dagre", rankDir: "LR", nodeSep: 36, rankSep: 90, edgeSep: 12,
      fit: true, padding: 40, animate: !!animate, animationDuration: 250,
      // A small graph fitted to a large canvas would be drawn huge: keep it at a readable size.
      stop: function () { if (cy.zoom() > 1.2) { cy.zoom(1.2); cy.center(); } },
    }).run();
  }

  function fit(cy) {
    if (!cy.nodes().length) return;
    cy.fit(undefined, 40);
    if (cy.zoom() > 1.2) { cy.zoom(1.2); cy.center(); }
  }

  /** True when every node sits at the origin (a graph that was never laid out). */
  function needsLayout(nodes) {
    return nodes.length > 1 && nodes.every(function (n) {
      const p = n.position || {};
      return !p.x && !p.y;
    });
  }

  /** The nodes on the path downstream → … → upstream, if one exists (adding upstream→downstream would close it). */
  function pathBetween(cy, fromId, toId) {
    if (fromId === toId) return [fromId];
    const prev = {}; const queue = [fromId]; const seen = {}; seen[fromId] = true;
    while (queue.length) {
      const id = queue.shift();
      const outs = cy.getElementById(id).outgoers("node");
      for (let i = 0; i < outs.length; i++) {
        const next = outs[i].id();
        if (seen[next]) continue;
        seen[next] = true; prev[next] = id;
        if (next === toId) {
          const path = [toId];
          let cur = toId;
          while (prev[cur] !== undefined) { cur = prev[cur]; path.unshift(cur); }
          return path;
        }
        queue.push(next);
      }
    }
    return null;
  }

  window.TributaryDag = {
    create: create, layout: layout, fit: fit, needsLayout: needsLayout, pathBetween: pathBetween,
    typeColor: typeColor, stripe: stripe, nodeLabel: nodeLabel, labelNode: labelNode, controlMark: controlMark, shortName: shortName, STATUS_COLORS: STATUS_COLORS,
  };
})();
