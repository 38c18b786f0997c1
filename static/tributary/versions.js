/* Two versions drawn as one DAG: added nodes and connections green, removed red, changed amber. */
(function () {
  "use strict";
  const T = window.Tributary, D = window.TributaryDag;
  const cmp = T.jsonScript("comparison");
  const types = {};
  (T.jsonScript("node-types") || []).forEach(function (t) { types[t.type] = t.label; });
  const cy = D.create(document.getElementById("diff-cy"), { readOnly: true });
  const a = cmp.a.snapshot || {}, b = cmp.b.snapshot || {}, diff = cmp.diff;
  const ids = function (list) { const out = {}; (list || []).forEach(function (n) { out[n.id] = true; }); return out; };
  const added = ids(diff.nodes.added), removed = ids(diff.nodes.removed), changed = ids(diff.nodes.changed);
  const edgeKey = function (e) { return e.upstream + ">" + e.downstream; };
  const addedEdges = {}, removedEdges = {};
  diff.edges.added.forEach(function (e) { addedEdges[edgeKey(e)] = true; });
  diff.edges.removed.forEach(function (e) { removedEdges[edgeKey(e)] = true; });

  function addNode(n, cls) {
    if (cy.getElementById("n" + n.id).nonempty()) return;
    const label = D.nodeLabel(n.name, types[n.type] || n.type, cls === "added" ? "added" : cls === "removed" ? "removed" : cls === "changed" ? "changed" : "");
    cy.add({ group: "nodes", classes: cls, data: { id: "n" + n.id, name: n.name, type: n.type, color: D.typeColor(n.type), stripe: D.stripe(n.type), label: label }, position: n.position || { x: 0, y: 0 } });
  }
  (b.nodes || []).forEach(function (n) { addNode(n, added[n.id] ? "added" : changed[n.id] ? "changed" : ""); });
  (a.nodes || []).forEach(function (n) { if (removed[n.id]) addNode(n, "removed"); });
  function addEdge(e, cls) {
    const id = "e" + edgeKey(e);
    if (cy.getElementById(id).nonempty()) return;
    if (cy.getElementById("n" + e.upstream).empty() || cy.getElementById("n" + e.downstream).empty()) return;
    const data = { id: id, source: "n" + e.upstream, target: "n" + e.downstream };
    if (e.branch) data.branch = e.branch;
    cy.add({ group: "edges", classes: cls, data: data });
  }
  (b.edges || []).forEach(function (e) { addEdge(e, addedEdges[edgeKey(e)] ? "added" : ""); });
  (a.edges || []).forEach(function (e) { if (removedEdges[edgeKey(e)]) addEdge(e, "removed"); });
  const all = (a.nodes || []).concat(b.nodes || []);
  if (D.needsLayout(all)) D.layout(cy, false); else D.fit(cy);
  window.tributaryDiff = { cy: cy };
})();
