/* A flow's lineage graph (GET /api/v1/flows/{id}/lineage/) and the table lookup
   (GET /api/v1/lineage/?table=). */
(function () {
  "use strict";
  const T = window.Tributary;
  const D = window.TributaryDag;
  const page = T.jsonScript("page-data");
  const cy = D.create(document.getElementById("lineage-cy"), { readOnly: true });
  cy.style()
    .selector("node.self").style({ "background-color": "#dbeafe", "border-color": "#2563eb", "border-width": 3 })
    .selector("node.upstream").style({ "background-color": "#dcfce7", "border-color": "#16a34a" })
    .selector("node.downstream").style({ "background-color": "#fef3c7", "border-color": "#d97706" })
    .selector("edge[label]").style({
      label: "data(label)", "font-size": 10, "text-wrap": "wrap", "text-max-width": 160, color: "#475467",
      "text-background-color": "#fff", "text-background-opacity": 1, "text-background-padding": 2,
    })
    .selector("edge.dependency").style({ "line-style": "dashed" })
    .update();

  function fact(f) {
    const where = f.table ? '<span class="mono">' + T.esc(f.table) + "</span>" + (f.datasource_name ? ' <span class="muted">on ' + T.esc(f.datasource_name) + "</span>" : "") : "";
    return "<li>" + where + ' <span class="muted">· ' + T.esc(f.node_name) + "</span></li>";
  }

  function own(body, names) {
    const parts = [];
    const section = function (title, list, render) {
      if (list.length) parts.push("<h3>" + title + '</h3><ul class="facts">' + list.map(render).join("") + "</ul>");
    };
    section("Reads", body.reads, fact);
    section("Writes", body.writes, fact);
    section("Waits for", body.depends, function (f) {
      const name = names[f.depends_on] || ("flow " + f.depends_on);
      return '<li><a href="/flows/' + f.depends_on + '/lineage/">' + T.esc(name) + '</a> <span class="muted">· ' + T.esc(f.node_name) + "</span></li>";
    });
    section("Not understood", body.problems, function (f) {
      return '<li><span class="badge warn">' + T.esc(f.node_name) + "</span> " + T.esc(f.detail) + "</li>";
    });
    document.getElementById("lineage-own").innerHTML = parts.join("") ||
      '<span class="muted">The published version reads and writes no table we know of (or the flow is not published).</span>';
  }

  async function load() {
    let body;
    try {
      body = await T.api.get("/api/v1/flows/" + page.flow_id + "/lineage/");
    } catch (err) {
      document.getElementById("lineage-own").innerHTML = '<div class="banner error">' + T.esc(err.message) + "</div>";
      return;
    }
    const names = {};
    body.flows.forEach(function (f) { names[f.id] = f.name; });
    const elements = body.flows.map(function (f) {
      const role = f.id === body.flow ? "self" : (f.upstream ? "upstream" : "downstream");
      return { group: "nodes", classes: role, data: { id: "f" + f.id, flow: f.id, label: f.name + "\n" + f.status + (f.version ? " · v" + f.version : ""), role: role } };
    }).concat(body.edges.map(function (e) {
      const label = e.tables.join("\n") + (e.dependency ? (e.tables.length ? "\n" : "") + "dependency check" : "");
      return { group: "edges", classes: e.tables.length ? "" : "dependency", data: { id: "e" + e.upstream + "-" + e.downstream, source: "f" + e.upstream, target: "f" + e.downstream, label: label } };
    }));
    cy.elements().remove();
    cy.add(elements);
    D.layout(cy, false);
    const ups = body.flows.filter(function (f) { return f.upstream; }).length;
    const downs = body.flows.filter(function (f) { return f.downstream; }).length;
    document.getElementById("lineage-summary").textContent = ups + " flow(s) upstream, " + downs + " downstream, " + body.edges.length + " link(s).";
    own(body, names);
    window.tributaryLineage.data = body;
  }

  cy.on("tap", "node", function (ev) {
    const id = ev.target.data("flow");
    if (id !== page.flow_id) window.location.href = "/flows/" + id + "/lineage/";
  });

  const form = document.getElementById("table-lookup");
  const result = document.getElementById("table-result");
  function use(u) {
    return '<li><a href="/flows/' + u.flow + '/lineage/">' + T.esc(u.flow_name) + '</a> <span class="muted">· ' + T.esc(u.node_name) + " · " +
      '<span class="mono">' + T.esc(u.table) + "</span>" + (u.datasource_name ? " on " + T.esc(u.datasource_name) : "") + "</span></li>";
  }
  async function lookup(table) {
    T.clearFormErrors(form);
    try {
      const body = await T.api.get("/api/v1/lineage/?table=" + encodeURIComponent(table));
      result.innerHTML = "<h3>Written by</h3>" + (body.writers.length ? '<ul class="facts" data-testid="table-writers">' + body.writers.map(use).join("") + "</ul>" : '<p class="muted">No published node writes it.</p>') +
        "<h3>Read by</h3>" + (body.readers.length ? '<ul class="facts" data-testid="table-readers">' + body.readers.map(use).join("") + "</ul>" : '<p class="muted">No published node reads it.</p>');
    } catch (err) {
      T.showFormErrors(form, err);
    }
  }
  form.addEventListener("submit", function (ev) { ev.preventDefault(); lookup(form.elements.table.value); });
  if (page.table) { form.elements.table.value = page.table; lookup(page.table); }

  window.tributaryLineage = { cy: cy, data: null };
  load();
})();
