/* The DAG canvas of a task flow: palette drag-and-drop, node configuration, connections with
 * client-side cycle refusal, delete, auto-layout, atomic save through PUT /graph/, run buttons,
 * publish / unpublish / freeze. Read-only (no palette, no drag, no connect) without the edit right.
 */
(function () {
  "use strict";
  const T = window.Tributary, D = window.TributaryDag, SF = window.TributarySchemaForm;
  const page = T.jsonScript("page-data");
  // Date-time inputs are read in the schedule's zone (flowpanel.js follows schedule edits).
  T.setInputScheduleZone(page.schedule_zone);
  const nodeTypes = T.jsonScript("node-types") || [];
  const typeMap = {};
  nodeTypes.forEach(function (t) { typeMap[t.type] = t; });
  const rights = page.rights;
  const canEdit = !!rights.edit;
  const flowUrl = "/api/v1/flows/" + page.flow_id + "/";

  const wrap = document.getElementById("canvas-wrap");
  const banner = document.getElementById("canvas-banner");
  const emptyHint = document.getElementById("canvas-empty");
  const dirtyFlag = document.getElementById("dirty-flag");
  const deleteBtn = document.getElementById("btn-delete");

  let dirty = false;
  let tmpCounter = 0;
  let datasources = [];
  let bannerTimer = null;
  const cy = D.create(document.getElementById("cy"), { readOnly: !canEdit });

  document.querySelectorAll("[data-color-for]").forEach(function (el) {
    el.style.background = D.typeColor(el.getAttribute("data-color-for"));
  });

  // ------------------------------------------------------------------ state helpers
  function panelDirty() { return !!(window.TributaryPanel && window.TributaryPanel.isDirty()); }
  function setDirty(value) {
    dirty = !!value;
    if (dirtyFlag) dirtyFlag.hidden = !(dirty || panelDirty());
    if (value && !restoring) remember();
  }

  // ------------------------------------------------------------------ undo / redo
  // Every canvas edit ends in setDirty(true), which records the canvas as it now is; undo and
  // redo step through those states back to the last load or save (Ctrl+Z, Ctrl+Shift+Z / Ctrl+Y).
  const undo = { states: [], at: -1, saved: 0 };
  let restoring = false;
  function canvasState() {
    return cy.elements().filter(function (e) { return !/\beh-/.test(e.classes().join(" ")); }).jsons().map(function (j) {
      return { group: j.group, data: JSON.parse(JSON.stringify(j.data)), position: j.position ? { x: j.position.x, y: j.position.y } : undefined };
    });
  }
  function updateUndoButtons() {
    const u = document.getElementById("btn-undo"), r = document.getElementById("btn-redo");
    if (u) u.disabled = undo.at <= 0;
    if (r) r.disabled = undo.at >= undo.states.length - 1;
  }
  function remember() {
    undo.states = undo.states.slice(0, undo.at + 1);
    undo.states.push(canvasState());
    if (undo.states.length > 200) { undo.states.shift(); undo.saved -= 1; }
    undo.at = undo.states.length - 1;
    updateUndoButtons();
  }
  function resetUndo() { undo.states = [canvasState()]; undo.at = 0; undo.saved = 0; updateUndoButtons(); }
  function restoreState(i) {
    if (i < 0 || i >= undo.states.length) return;
    undo.at = i;
    restoring = true;
    try {
      cy.elements().remove();
      cy.add(JSON.parse(JSON.stringify(undo.states[i]))).nodes().forEach(showControl);
      setDirty(i !== undo.saved);
    } finally {
      restoring = false;
    }
    updateEmpty();
    updateUndoButtons();
  }
  function undoStep() { restoreState(undo.at - 1); }
  function redoStep() { restoreState(undo.at + 1); }
  document.addEventListener("tributary:dirty", function () { setDirty(dirty); });
  window.addEventListener("beforeunload", function (ev) {
    if (dirty || panelDirty()) { ev.preventDefault(); ev.returnValue = ""; return ""; }
  });

  function showBanner(html, kind, ms) {
    clearTimeout(bannerTimer);
    banner.innerHTML = '<div class="banner ' + (kind || "error") + '" data-testid="canvas-message">' + html + "</div>";
    if (ms) bannerTimer = setTimeout(clearBanner, ms);
  }
  function clearBanner() { banner.innerHTML = ""; }

  function updateEmpty() { emptyHint.hidden = cy.nodes().length > 0; }

  function typeLabel(type) { return (typeMap[type] && typeMap[type].label) || type; }

  function nodeData(n, id) {
    return {
      id: id, serverId: n.id == null ? null : n.id, name: n.name, type: n.type, config: n.config || {},
      retries: n.retries == null ? 0 : n.retries, retry_interval: n.retry_interval == null ? 60 : n.retry_interval,
      timeout: n.timeout == null ? 3600 : n.timeout, priority: n.priority == null ? 0 : n.priority,
      variables: n.variables || [],
      trigger_rule: n.trigger_rule || "all_success", enabled: n.enabled !== false,
      color: D.typeColor(n.type), stripe: D.stripe(n.type),
    };
  }

  /** The node's label and look from its data: the trigger rule's mark, greyed when disabled.
   * (Classes are not part of the undo states: restoring one calls this again.) */
  function showControl(node) {
    const d = node.data();
    D.labelNode(node, d.name, typeLabel(d.type), D.controlMark(d.trigger_rule, d.enabled));
    node.toggleClass("off", d.enabled === false);
  }

  function addNode(n, position) {
    const id = n.id == null ? "k" + (++tmpCounter) : "n" + n.id;
    const added = cy.add({ group: "nodes", data: nodeData(n, id), position: position || n.position || { x: 0, y: 0 } });
    showControl(added);
    return added;
  }

  function uniqueName(type) {
    const taken = {};
    cy.nodes().forEach(function (n) { taken[n.data("name")] = true; });
    let i = 1;
    while (taken[type + "_" + i]) i += 1;
    return type + "_" + i;
  }

  function nodeByName(name) {
    return cy.nodes().filter(function (n) { return n.data("name") === name; })[0];
  }

  // ------------------------------------------------------------------ loading and saving
  function render(graph, keepViewport) {
    const pan = cy.pan(), zoom = cy.zoom();
    cy.elements().remove();
    (graph.nodes || []).forEach(function (n) { addNode(n); });
    (graph.edges || []).forEach(function (e) {
      const data = { id: "e" + (e.id != null ? e.id : (++tmpCounter)), source: "n" + e.upstream, target: "n" + e.downstream };
      if (e.branch) data.branch = e.branch;
      if (cy.getElementById(data.source).nonempty() && cy.getElementById(data.target).nonempty()) cy.add({ group: "edges", data: data });
    });
    if (keepViewport) { cy.viewport({ zoom: zoom, pan: pan }); }
    else if (D.needsLayout(graph.nodes || [])) D.layout(cy, false);
    else D.fit(cy);
    updateEmpty();
  }

  async function load(keepViewport) {
    try {
      const graph = await T.api.get(flowUrl + "graph/");
      render(graph, keepViewport);
      setDirty(false);
      resetUndo();
    } catch (err) {
      showBanner("The graph could not be loaded: " + T.esc(err.message));
    }
  }

  function payload() {
    const ref = function (n) { return n.data("serverId") != null ? n.data("serverId") : n.id(); };
    const nodes = cy.nodes().map(function (n) {
      const d = n.data(), p = n.position();
      const out = {
        name: d.name, type: d.type, config: d.config || {}, position: { x: Math.round(p.x), y: Math.round(p.y) },
        retries: d.retries, retry_interval: d.retry_interval, timeout: d.timeout, priority: d.priority,
        variables: d.variables || [], trigger_rule: d.trigger_rule || "all_success", enabled: d.enabled !== false,
      };
      if (d.serverId != null) out.id = d.serverId; else out.key = n.id();
      return out;
    });
    const edges = cy.edges().map(function (e) {
      const out = { upstream: ref(e.source()), downstream: ref(e.target()) };
      if (e.data("branch")) out.branch = e.data("branch");
      return out;
    });
    return { nodes: nodes, edges: edges };
  }

  /** "config.datasource" → "Data source" (the field's title in its node type's form). */
  function fieldWords(node, path) {
    const m = /^config\.([\w]+)/.exec(path || "");
    if (m && node) {
      const t = typeMap[node.data("type")];
      const prop = t && t.schema && t.schema.properties && t.schema.properties[m[1]];
      return (prop && prop.title) || m[1].replace(/_/g, " ");
    }
    const words = { name: "Name", retries: "Retries", retry_interval: "Retry interval", timeout: "Timeout", variables: "Node variables" };
    return words[path] || (path || "").replace(/[._]/g, " ");
  }
  /** A server message in words: field paths become titles, "nodes.1" becomes the node's name. */
  function inWords(node, message) {
    const nodes = cy.nodes();
    message = message.replace(/\bnodes\.(\d+)(?:\.(\w+))?/g, function (_all, i, field) {
      const n = nodes[Number(i)];
      return n ? "node “" + n.data("name") + "”" + (field ? " (" + fieldWords(n, field) + ")" : "") : "a node";
    });
    const field = /^([\w.[\]]+):\s+(.*)$/.exec(message);
    return field && node ? fieldWords(node, field[1]) + ": " + field[2] : message;
  }
  /** Mark the nodes named in the server's problems; return the lines for the banner. */
  function applyProblems(body) {
    cy.nodes().removeClass("problem").data("problems", null);
    return T.problems(body).map(function (p) {
      const node = p.where ? nodeByName(p.where) : null;
      if (node) {
        node.addClass("problem");
        const field = /^([\w.[\]]+):\s+(.*)$/.exec(p.message);
        const list = node.data("problems") || [];
        list.push(field ? [field[1], field[2]] : ["", p.message]);
        node.data("problems", list);
        return "Node “" + p.where + "”: " + inWords(node, p.message) + " (double-click it to fix)";
      }
      return p.where && p.where !== "flow" ? inWords(null, p.where + ": " + p.message) : inWords(null, p.message);
    });
  }
  function problemsHtml(title, lines) {
    return "<strong>" + title + "</strong><ul>" + lines.map(function (m) { return "<li>" + T.esc(m) + "</li>"; }).join("") + "</ul>";
  }

  let saving = null;
  async function save() {
    if (!canEdit) return true;
    if (saving) return saving;
    const names = {};
    let duplicate = null;
    cy.nodes().forEach(function (n) { if (names[n.data("name")]) duplicate = n.data("name"); names[n.data("name")] = true; });
    if (duplicate) { showBanner("Two nodes are named “" + T.esc(duplicate) + "”: node names are unique in a flow."); return false; }
    const button = document.getElementById("btn-save");
    button.disabled = true;
    saving = (async function () {
      try {
        // One Save for the page: the canvas (when changed), then every changed panel form.
        if (dirty) {
          const result = await T.api.put(flowUrl + "graph/", payload());
          cy.nodes().removeClass("problem").data("problems", null);
          if (result && Array.isArray(result.nodes)) { render(result, true); setDirty(false); resetUndo(); }
          else await load(true);
          clearBanner();
        }
        if (window.TributaryPanel && !(await window.TributaryPanel.saveDirty())) {
          T.toast("Not saved: see the highlighted field in the configuration panel.", "error");
          return false;
        }
        setDirty(false);
        T.toast("Saved.", "success");
        return true;
      } catch (err) {
        if (err.status === 400) {
          showBanner(problemsHtml("Not saved.", applyProblems(err.body)));
        } else {
          showBanner("<strong>Not saved.</strong> " + T.esc(err.message));
        }
        return false;
      } finally {
        button.disabled = false;
        saving = null;
      }
    })();
    return saving;
  }

  // ------------------------------------------------------------------ toolbar
  document.getElementById("btn-layout").addEventListener("click", function () {
    D.layout(cy, true);
    if (canEdit && cy.nodes().length) setDirty(true);
  });
  document.getElementById("btn-fit").addEventListener("click", function () { D.fit(cy); });
  if (canEdit) {
    document.getElementById("btn-save").addEventListener("click", save);
    document.addEventListener("keydown", function (ev) {
      if ((ev.ctrlKey || ev.metaKey) && ev.key === "s") { ev.preventDefault(); save(); }
    });
  }

  // ------------------------------------------------------------------ editing (owner only)
  function deleteSelected() {
    const sel = cy.$(":selected");
    if (!sel.length) return;
    sel.remove();
    setDirty(true);
    updateEmpty();
    updateDeleteButton();
  }
  function updateDeleteButton() {
    if (deleteBtn) deleteBtn.disabled = cy.$(":selected").length === 0;
  }

  let eh = null;
  let handle = null;
  let handleNode = null;
  let hideTimer = null;

  const REFUSED_MS = 5000;  // the refused cycle's highlight and its message go together
  function cycleMessage(source, target) {
    if (source.same(target)) return "A node cannot depend on itself.";
    if (source.edgesTo(target).length) return "“" + source.data("name") + "” is already connected to “" + target.data("name") + "”.";
    const path = D.pathBetween(cy, target.id(), source.id());
    if (!path) return null;
    const names = [source.data("name")].concat(path.map(function (id) { return cy.getElementById(id).data("name"); }));
    return "Connecting “" + source.data("name") + "” → “" + target.data("name") + "” would close the cycle " + names.join(" → ") + ".";
  }

  function flashCycle(source, target) {
    const path = D.pathBetween(cy, target.id(), source.id()) || [target.id()];
    const eles = cy.collection().union(source);
    path.forEach(function (id) { eles.merge(cy.getElementById(id)); });
    eles.addClass("refused");
    setTimeout(function () { eles.removeClass("refused"); }, REFUSED_MS);
  }

  function setupEditing() {
    const undoBtn = document.getElementById("btn-undo"), redoBtn = document.getElementById("btn-redo");
    if (undoBtn) undoBtn.addEventListener("click", undoStep);
    if (redoBtn) redoBtn.addEventListener("click", redoStep);
    document.addEventListener("keydown", function (ev) {
      if (!(ev.ctrlKey || ev.metaKey)) return;
      const tag = (document.activeElement && document.activeElement.tagName) || "";
      if (/INPUT|TEXTAREA|SELECT/.test(tag) || !document.getElementById("node-drawer").hidden) return;
      const key = ev.key.toLowerCase();
      if (key === "z" && !ev.shiftKey) { ev.preventDefault(); undoStep(); }
      else if ((key === "z" && ev.shiftKey) || key === "y") { ev.preventDefault(); redoStep(); }
    });
    cy.on("select unselect remove", updateDeleteButton);
    if (deleteBtn) deleteBtn.addEventListener("click", deleteSelected);
    document.addEventListener("keydown", function (ev) {
      if (ev.key !== "Delete" && ev.key !== "Backspace") return;
      const tag = (document.activeElement && document.activeElement.tagName) || "";
      if (/INPUT|TEXTAREA|SELECT/.test(tag) || !document.getElementById("node-drawer").hidden) return;
      ev.preventDefault();
      deleteSelected();
    });
    cy.on("dragfree", "node", function () { setDirty(true); });

    // connections: hover a node, drag from the circle on its right edge to the downstream node
    eh = cy.edgehandles({
      canConnect: function (source, target) { return !target.hasClass("eh-ghost-node") && cycleMessage(source, target) === null; },
      edgeParams: function () { return { data: {} }; },
      hoverDelay: 60, snap: true, snapThreshold: 24, snapFrequency: 30, noEdgeEventsInDraw: true, disableBrowserGestures: true,
    });
    handle = document.createElement("div");
    handle.className = "eh-handle";
    handle.title = "Drag to a downstream node to connect";
    handle.setAttribute("data-testid", "connect-handle");
    handle.hidden = true;
    wrap.appendChild(handle);

    function placeHandle(node) {
      const bb = node.renderedBoundingBox({ includeLabels: false });
      handle.style.left = bb.x2 + "px";
      handle.style.top = (bb.y1 + bb.y2) / 2 + "px";
    }
    function showHandle(node) {
      clearTimeout(hideTimer);
      handleNode = node;
      placeHandle(node);
      handle.hidden = false;
    }
    function hideHandle() { handle.hidden = true; handleNode = null; }
    cy.on("mouseover mousemove", "node", function (ev) {
      if (eh.active || ev.target.hasClass("eh-ghost-node")) return;
      if (handleNode && handleNode.same(ev.target) && !handle.hidden) { clearTimeout(hideTimer); return; }
      showHandle(ev.target);
    });
    cy.on("mouseout", "node", function () { clearTimeout(hideTimer); hideTimer = setTimeout(hideHandle, 600); });
    handle.addEventListener("mouseenter", function () { clearTimeout(hideTimer); });
    handle.addEventListener("mouseleave", function () { if (!eh.active) { hideTimer = setTimeout(hideHandle, 300); } });
    cy.on("grab pan zoom remove", function () { hideHandle(); });
    cy.on("position", "node", function (ev) { if (handleNode && ev.target.same(handleNode)) placeHandle(handleNode); });
    handle.addEventListener("mousedown", function (ev) {
      if (!handleNode) return;
      ev.preventDefault();
      ev.stopPropagation();
      const node = handleNode;
      hideHandle();
      eh.start(node);
    });
    // The gesture began outside Cytoscape's canvas, so it may not see the release: end it here.
    window.addEventListener("mouseup", function () { if (eh.active) eh.stop(); });

    // edgehandles emits "complete" (edge added) before "stop": the new edge must not read as
    // an existing one, so a completed gesture shows no message.
    let completed = false;
    cy.on("ehstart", function () { completed = false; });
    cy.on("ehstop", function (ev, source) {
      if (completed) { completed = false; return; }
      const pos = ev.position || {};
      const target = cy.nodes().filter(function (n) {
        if (n.same(source) || n.hasClass("eh-ghost-node")) return false;
        const bb = n.boundingBox({ includeLabels: false });
        return pos.x >= bb.x1 && pos.x <= bb.x2 && pos.y >= bb.y1 && pos.y <= bb.y2;
      })[0];
      if (!target) return;
      const message = cycleMessage(source, target);
      if (message && !source.edgesTo(target).length) {
        showBanner("<strong>Connection refused.</strong> " + T.esc(message), "error", REFUSED_MS);
        flashCycle(source, target);
      } else if (message) {
        showBanner(T.esc(message), "warning", 4000);
      }
    });
    cy.on("ehcomplete", function (ev, source, target, edge) {
      const type = typeMap[source.data("type")];
      if (type && type.has_branches) {
        const used = source.outgoers("edge").map(function (e) { return e.data("branch"); });
        edge.data("branch", used.indexOf("true") < 0 ? "true" : "false");
      }
      completed = true;
      clearBanner();
      setDirty(true);
    });
    // Click a connection for its settings: the branch of a condition's connection, delete.
    // (Double-clicking once flipped the branch, hidden and easy to do by accident.)
    const pop = document.createElement("div");
    pop.className = "edge-pop";
    pop.hidden = true;
    pop.setAttribute("role", "dialog");
    pop.setAttribute("data-testid", "edge-popover");
    wrap.appendChild(pop);
    let popEdge = null;
    function closeEdgePop() { pop.hidden = true; popEdge = null; }
    function openEdgePop(edge) {
      popEdge = edge;
      const mid = edge.renderedMidpoint();
      const branch = edge.data("branch");
      pop.innerHTML = '<div class="edge-pop-title">' + T.esc(edge.source().data("name")) + " → " + T.esc(edge.target().data("name")) + "</div>" +
        (branch ? '<label for="edge-branch">Runs when the condition is</label><select id="edge-branch" data-testid="edge-branch">' +
          '<option value="true">true</option><option value="false">false</option></select>' : "") +
        '<div class="edge-pop-actions"><button type="button" class="small danger" data-testid="edge-delete">Delete connection</button>' +
        '<button type="button" class="small" data-testid="edge-close">Close</button></div>';
      if (branch) {
        const select = pop.querySelector("#edge-branch");
        select.value = branch;
        select.addEventListener("change", function () { if (popEdge) { popEdge.data("branch", select.value); setDirty(true); } });
      }
      pop.querySelector("[data-testid=edge-delete]").addEventListener("click", function () {
        if (popEdge) { popEdge.remove(); setDirty(true); }
        closeEdgePop();
      });
      pop.querySelector("[data-testid=edge-close]").addEventListener("click", closeEdgePop);
      pop.style.left = Math.round(mid.x) + "px";
      pop.style.top = Math.round(mid.y + 12) + "px";
      pop.hidden = false;
    }
    cy.on("tap", "edge", function (ev) { openEdgePop(ev.target); });
    cy.on("tap", function (ev) { if (ev.target === cy) closeEdgePop(); });
    cy.on("pan zoom", closeEdgePop);
    cy.on("remove", "edge", function (ev) { if (popEdge && ev.target.same(popEdge)) closeEdgePop(); });
    document.addEventListener("keydown", function (ev) { if (ev.key === "Escape") closeEdgePop(); });

    setupPalette();
  }

  /** Move a model position down until a new node there would not cover an existing one. */
  function freeSpot(model) {
    const spot = { x: model.x, y: model.y };
    for (let i = 0; i < 50; i++) {
      const hit = cy.nodes().some(function (n) {
        const p = n.position();
        return Math.abs(p.x - spot.x) < 170 && Math.abs(p.y - spot.y) < 56;
      });
      if (!hit) break;
      spot.y += 64;
    }
    return spot;
  }

  function addNodeOfType(type, renderedPos, avoidOverlap) {
    const pan = cy.pan(), zoom = cy.zoom();
    let model = { x: (renderedPos.x - pan.x) / zoom, y: (renderedPos.y - pan.y) / zoom };
    if (avoidOverlap) model = freeSpot(model);
    const node = addNode({ name: uniqueName(type), type: type, config: {} }, model);
    cy.$(":selected").unselect();
    node.select();
    setDirty(true);
    updateEmpty();
    return node;
  }

  function setupPalette() {
    const palette = document.getElementById("palette");
    if (!palette) return;
    let drag = null;
    function inside(ev) {
      const r = wrap.getBoundingClientRect();
      return ev.clientX >= r.left && ev.clientX <= r.right && ev.clientY >= r.top && ev.clientY <= r.bottom;
    }
    function onMove(ev) {
      if (!drag) return;
      if (!drag.ghost && Math.hypot(ev.clientX - drag.x, ev.clientY - drag.y) > 4) {
        drag.ghost = document.createElement("div");
        drag.ghost.className = "drag-ghost";
        drag.ghost.textContent = typeLabel(drag.type);
        document.body.appendChild(drag.ghost);
      }
      if (drag.ghost) {
        drag.ghost.style.left = ev.clientX + 8 + "px";
        drag.ghost.style.top = ev.clientY + 8 + "px";
        wrap.classList.toggle("drop-target", inside(ev));
      }
    }
    function onUp(ev) {
      document.removeEventListener("pointermove", onMove);
      if (!drag) return;
      const d = drag;
      drag = null;
      wrap.classList.remove("drop-target");
      if (d.ghost) {
        d.ghost.remove();
        if (inside(ev)) {
          const r = wrap.getBoundingClientRect();
          addNodeOfType(d.type, { x: ev.clientX - r.left, y: ev.clientY - r.top });
        }
      } else {
        // A click without dragging adds the node in the middle of the view, clear of the others.
        addNodeOfType(d.type, { x: wrap.clientWidth / 2, y: wrap.clientHeight / 3 }, true);
      }
    }
    palette.addEventListener("pointerdown", function (ev) {
      const item = ev.target.closest(".ptype");
      if (!item || ev.button !== 0) return;
      ev.preventDefault();
      drag = { type: item.getAttribute("data-type"), x: ev.clientX, y: ev.clientY, ghost: null };
      document.addEventListener("pointermove", onMove);
      document.addEventListener("pointerup", onUp, { once: true });
    });
    palette.addEventListener("keydown", function (ev) {
      const item = ev.target.closest(".ptype");
      if (item && (ev.key === "Enter" || ev.key === " ")) {
        ev.preventDefault();
        addNodeOfType(item.getAttribute("data-type"), { x: wrap.clientWidth / 2, y: wrap.clientHeight / 3 }, true);
      }
    });
  }

  // ------------------------------------------------------------------ node configuration drawer
  const drawer = document.getElementById("node-drawer");
  const nodeForm = document.getElementById("node-form");
  let drawerNode = null;
  let configForm = null;
  const nodeVars = window.TributaryVarRows.create(document.getElementById("nd-var-rows"), { editable: canEdit });
  if (canEdit) document.getElementById("nd-var-add").addEventListener("click", function () { nodeVars.add(); });

  function openDrawer(node) {
    drawerNode = node;
    const d = node.data();
    const type = typeMap[d.type] || { schema: { properties: {} }, label: d.type };
    document.getElementById("nd-title").textContent = (canEdit ? "Configure " : "") + d.name;
    nodeForm.elements.name.value = d.name;
    document.getElementById("nd-type").value = type.label;
    nodeForm.elements.retries.value = d.retries;
    nodeForm.elements.retry_interval.value = d.retry_interval;
    nodeForm.elements.timeout.value = d.timeout;
    nodeForm.elements.trigger_rule.value = d.trigger_rule || "all_success";
    nodeForm.elements.enabled.checked = d.enabled !== false;
    ["name", "retries", "retry_interval", "timeout", "trigger_rule", "enabled"].forEach(function (n) { nodeForm.elements[n].disabled = !canEdit; });
    T.clearFormErrors(nodeForm);
    configForm = SF.render(document.getElementById("nd-config"), type.schema, d.config, {
      datasources: datasources, flows: page.flows || [], selfFlowId: page.flow_id,
      // Only a dependency check may name its own flow (its earlier cycle); a sub-flow or loop may not.
      selfFlowNote: d.type === "dependency_check" ? "an earlier cycle, with a negative offset" : null, readOnly: !canEdit, idPrefix: "cfg",
    });
    nodeVars.fill(d.variables);
    document.getElementById("nd-preview-out").innerHTML = "";
    const problems = d.problems || [];
    if (problems.length) {
      const byField = {};
      const general = [];
      nodeVars.markErrors(problems.map(function (p) { return p[0]; }));
      problems.forEach(function (p) {
        if (p[0].indexOf("config") === 0) (byField[p[0]] = byField[p[0]] || []).push(p[1]);
        else if (nodeForm.elements[p[0]]) T.showFormErrors(nodeForm, { status: 400, body: (function () { const b = {}; b[p[0]] = [p[1]]; return b; })() });
        else general.push((p[0] ? p[0] + ": " : "") + p[1]);
      });
      const rest = configForm.showErrors(byField).concat(general);
      if (rest.length) nodeForm.querySelector("[data-errors]").innerHTML = '<div class="banner error">' + rest.map(T.esc).join("<br>") + "</div>";
    }
    drawer.hidden = false;
    // A node opened to fix a problem shows the field at fault (it may be far down the form).
    const wrong = nodeForm.querySelector(".has-error");
    if (wrong) {
      const input = wrong.querySelector("input, select, textarea");
      if (canEdit && input && !input.disabled) input.focus({ preventScroll: true });
      wrong.scrollIntoView({ block: "center" });
    } else if (canEdit) nodeForm.elements.name.focus();
  }
  function closeDrawer() { drawer.hidden = true; drawerNode = null; }

  function readInt(name, min, errors) {
    const raw = nodeForm.elements[name].value.trim();
    const v = Number(raw);
    if (raw === "" || !Number.isInteger(v) || v < min) { errors[name] = ["Give a whole number of at least " + min + "."]; return null; }
    return v;
  }

  function applyDrawer() {
    if (!drawerNode || !canEdit) return;
    const errors = {};
    const name = nodeForm.elements.name.value.trim();
    if (!name) errors.name = ["A node needs a name."];
    else if (cy.nodes().some(function (n) { return !n.same(drawerNode) && n.data("name") === name; })) errors.name = ["Another node is already named “" + name + "”."];
    const retries = readInt("retries", 0, errors);
    const retryInterval = readInt("retry_interval", 0, errors);
    const timeout = readInt("timeout", 1, errors);
    const cfg = configForm.read();
    T.clearFormErrors(nodeForm);
    configForm.clear();
    if (Object.keys(errors).length || Object.keys(cfg.errors).length) {
      if (Object.keys(errors).length) T.showFormErrors(nodeForm, { status: 400, body: errors });
      configForm.showErrors(cfg.errors);
      const wrong = nodeForm.querySelector(".has-error");
      if (wrong) wrong.scrollIntoView({ block: "center" });
      return;
    }
    const rule = nodeForm.elements.trigger_rule.value, enabled = nodeForm.elements.enabled.checked;
    drawerNode.data({
      name: name, retries: retries, retry_interval: retryInterval, timeout: timeout, config: cfg.value,
      variables: nodeVars.read(), trigger_rule: rule, enabled: enabled, problems: null,
    });
    showControl(drawerNode);
    drawerNode.removeClass("problem");
    setDirty(true);
    closeDrawer();
  }

  async function previewNode() {
    const out = document.getElementById("nd-preview-out");
    const bt = T.zonedInputToIso(document.getElementById("nd-bt").value || T.nowInputIn());
    const cfg = configForm.read();
    const vars = window.TributaryPanel ? window.TributaryPanel.currentVariables() : undefined;
    try {
      const body = { business_time: bt, config: cfg.value, node_variables: nodeVars.read() };
      if (vars) body.variables = vars;
      const res = await T.api.post(page.urls.variables_preview, body);
      out.innerHTML = res.render_error
        ? '<div class="banner error">' + T.esc(res.render_error) + "</div>"
        : "<pre>" + T.esc(JSON.stringify(res.rendered, null, 2)) + "</pre>";
    } catch (err) {
      out.innerHTML = '<div class="banner error">' + T.esc(err.message) + "</div>";
    }
  }

  cy.on("dbltap", "node", function (ev) { if (!ev.target.hasClass("eh-ghost-node")) openDrawer(ev.target); });
  document.getElementById("nd-close").addEventListener("click", closeDrawer);
  document.getElementById("nd-cancel").addEventListener("click", closeDrawer);
  document.getElementById("nd-preview").addEventListener("click", previewNode);
  if (canEdit) {
    document.getElementById("nd-apply").addEventListener("click", applyDrawer);
    nodeForm.addEventListener("submit", function (ev) { ev.preventDefault(); applyDrawer(); });
  }
  document.addEventListener("keydown", function (ev) { if (ev.key === "Escape" && !drawer.hidden) closeDrawer(); });

  // ------------------------------------------------------------------ runs
  async function startRun(body, dialogForm) {
    if (canEdit && (dirty || panelDirty())) {
      const ok = await save();
      if (!ok) { if (dialogForm) T.showFormErrors(dialogForm, { status: 400, body: { detail: ["Save the canvas first: it has problems."] } }); return; }
    }
    try {
      const res = await T.api.post(flowUrl + "runs/", body);
      if (res && res.runs) {
        T.toast(res.runs.length + " runs created.", "success");
        window.location.href = page.urls.runs;
      } else if (res && res.id) {
        window.location.href = "/runs/" + res.id + "/";
      }
    } catch (err) {
      if (dialogForm) T.showFormErrors(dialogForm, err);
      else showBanner("<strong>The run was not started.</strong> " + T.esc(err.message));
    }
  }
  // The node's menu (its drawer): a try run of this node, or from it downstream.
  ["nd-run-node", "nd-run-from"].forEach(function (id) {
    const btn = document.getElementById(id);
    if (!btn) return;
    btn.addEventListener("click", async function () {
      if (!drawerNode) return;
      // Saving re-draws the canvas: find the node again by its (unique) name.
      const name = drawerNode.data("name");
      if (canEdit && dirty) { const ok = await save(); if (!ok) return; }
      const found = cy.nodes().filter(function (n) { return n.data("name") === name; })[0];
      const ref = found ? found.data("serverId") : null;
      if (ref == null) { showBanner("Save the canvas first: this node is new."); return; }
      closeDrawer();
      startRun(id === "nd-run-node" ? { mode: "try", nodes: [ref] } : { mode: "try", from_node: ref });
    });
  });
  /** The version a run dialog chose: "published", "draft" or a number. */
  function runVersion(prefix) {
    const value = document.getElementById(prefix + "-version").value;
    return /^\d+$/.test(value) ? Number(value) : value;
  }
  const RP = window.TributaryRunParams;
  /** The parameters the chosen version declares: the published ones from the page, the
   * draft's (which the Parameters tab may have changed) from the API. */
  async function declaredParameters(version) {
    if (version === "published") return page.published_parameters || [];
    if (typeof version === "number") {
      const v = await T.api.get(flowUrl + "versions/" + version + "/");
      return (v.snapshot && v.snapshot.parameters) || [];
    }
    const current = await T.api.get(flowUrl);
    return current.parameters || [];
  }
  async function renderDialogParameters(prefix) {
    const box = document.getElementById(prefix + "-params");
    try { RP.renderForm(box, await declaredParameters(runVersion(prefix))); }
    catch (err) { box.innerHTML = ""; }
  }
  const tryBtn = document.getElementById("btn-try");
  if (tryBtn) {
    const paramsDialog = document.getElementById("dlg-params");
    let paramsMode = "try";
    async function startTest(mode) {
      // A draft that declares parameters asks for them first.
      const declared = await declaredParameters("draft").catch(function () { return []; });
      if (!declared.length) { startRun({ mode: mode }); return; }
      paramsMode = mode;
      document.getElementById("rt-title").textContent = (mode === "dry" ? "Dry run" : "Try run") + ": parameters";
      RP.renderForm(document.getElementById("rt-params"), declared);
      T.clearFormErrors(document.getElementById("form-params"));
      paramsDialog.showModal();
    }
    document.getElementById("form-params").addEventListener("submit", function (ev) {
      ev.preventDefault();
      startRun({ mode: paramsMode, parameters: RP.readForm(document.getElementById("rt-params")) }, ev.target);
    });
    tryBtn.addEventListener("click", function () { startTest("try"); });
    document.getElementById("btn-dry").addEventListener("click", function () { startTest("dry"); });
    ["rp", "rr"].forEach(function (prefix) {
      document.getElementById(prefix + "-version").addEventListener("change", function () { renderDialogParameters(prefix); });
      document.querySelectorAll('[data-open="' + (prefix === "rp" ? "dlg-point" : "dlg-range") + '"]').forEach(function (b) {
        b.addEventListener("click", function () { renderDialogParameters(prefix); });
      });
    });
    // "Now" in the zone the input is read in, until the user picks a time.
    let rpDefault = T.nowInputIn();
    document.getElementById("rp-bt").value = rpDefault;
    document.querySelectorAll('[data-open="dlg-point"]').forEach(function (b) {
      b.addEventListener("click", function () {
        const input = document.getElementById("rp-bt");
        if (!input.value || input.value === rpDefault) input.value = rpDefault = T.nowInputIn();
      });
    });
    document.getElementById("form-point").addEventListener("submit", function (ev) {
      ev.preventDefault();
      const bt = T.zonedInputToIso(document.getElementById("rp-bt").value);
      if (!bt) { T.showFormErrors(ev.target, { status: 400, body: { business_time: ["Give a date and time."] } }); return; }
      startRun({
        mode: "point_in_time", business_time: bt, version: runVersion("rp"),
        parameters: RP.readForm(document.getElementById("rp-params")),
      }, ev.target);
    });
    // The range dialog shows the plan (plan_only) first; the same choices again start the runs.
    const rangeForm = document.getElementById("form-range");
    const rangeSubmit = rangeForm.querySelector("[data-testid=rr-submit]");
    const rangePlan = document.getElementById("rr-plan");
    let planned = null;
    function resetRangePlan() {
      planned = null;
      rangePlan.hidden = true;
      rangePlan.innerHTML = "";
      rangeSubmit.textContent = "Show the plan";
    }
    function fillStartNodes() {
      const select = document.getElementById("rr-start-nodes");
      const chosen = new Set(Array.from(select.selectedOptions).map(function (o) { return o.value; }));
      select.innerHTML = "";
      cy.nodes().forEach(function (n) {
        const ref = n.data("serverId");
        if (ref == null) return;
        const option = document.createElement("option");
        option.value = String(ref);
        option.textContent = n.data("name");
        option.selected = chosen.has(option.value);
        select.appendChild(option);
      });
    }
    document.querySelectorAll('[data-open="dlg-range"]').forEach(function (b) {
      b.addEventListener("click", function () { fillStartNodes(); resetRangePlan(); });
    });
    rangeForm.addEventListener("input", resetRangePlan);
    rangeForm.addEventListener("change", resetRangePlan);
    function rangeBody(form) {
      const start = T.zonedInputToIso(document.getElementById("rr-start").value);
      const end = T.zonedInputToIso(document.getElementById("rr-end").value);
      const errors = {};
      if (!start) errors.start = ["Give a start."];
      if (!end) errors.end = ["Give an end."];
      if (start && end && new Date(end) < new Date(start)) errors.end = ["The end is before the start."];
      if (Object.keys(errors).length) { T.showFormErrors(form, { status: 400, body: errors }); return null; }
      const body = {
        mode: "time_range", start: start, end: end, order: document.getElementById("rr-order").value,
        parallelism: Number(document.getElementById("rr-par").value) || 1,
        version: runVersion("rr"),
        parameters: RP.readForm(document.getElementById("rr-params")),
        only: document.getElementById("rr-only").value,
        downstream_flows: document.getElementById("rr-downstream-flows").checked,
      };
      const starts = Array.from(document.getElementById("rr-start-nodes").selectedOptions).map(function (o) { return Number(o.value); });
      if (starts.length) {
        body.start_nodes = starts;
        body.include_downstream = document.getElementById("rr-include-downstream").checked;
      }
      return body;
    }
    function showPlan(plan) {
      const rows = plan.runs.map(function (r) {
        return "<tr><td>" + T.esc(r.flow_name) + "</td><td>" + T.fmtTime(r.business_time, false, T.inputZone()) +
          "</td><td>" + T.esc(r.nodes.join(", ")) + "</td></tr>";
      }).join("");
      rangePlan.innerHTML = '<p data-testid="rr-plan-count"><strong>' + plan.count + " run(s)</strong> would start" +
        (plan.count ? ":" : ": nothing to do for these choices.") + "</p>" +
        (plan.count ? '<div style="max-height:14rem;overflow:auto"><table class="table"><thead><tr><th>Flow</th><th>Business time</th><th>Nodes</th></tr></thead><tbody>' + rows + "</tbody></table></div>" : "");
      rangePlan.hidden = false;
    }
    rangeForm.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      T.clearFormErrors(ev.target);
      const body = rangeBody(ev.target);
      if (!body) return;
      const key = JSON.stringify(body);
      if (planned === key) { startRun(body, ev.target); return; }
      try {
        const plan = await T.api.post(flowUrl + "runs/", Object.assign({}, body, { plan_only: true }));
        showPlan(plan);
        if (plan.count) {
          planned = key;
          rangeSubmit.textContent = "Start " + plan.count + " run(s)";
        }
      } catch (err) {
        T.showFormErrors(ev.target, err);
      }
    });
  }

  // ------------------------------------------------------------------ publishing
  /** What changed since the last published version (GET .../versions/{n}/diff/?against=editing). */
  function renderDiff(res) {
    const parts = [];
    if (!res) {
      parts.push('<div class="banner info">First publication: this becomes version 1 with ' + cy.nodes().length + " node(s) and " + cy.edges().length + " connection(s).</div>");
      parts.push("<ul>" + cy.nodes().map(function (n) { return "<li>" + T.esc(n.data("name")) + ' <span class="muted">(' + T.esc(typeLabel(n.data("type"))) + ")</span></li>"; }).join("") + "</ul>");
      return parts.join("");
    }
    const d = res;
    if (res.empty) parts.push('<div class="banner warning">Nothing changed since version ' + T.esc(res.from) + ".</div>");
    else parts.push('<p class="muted">Changes since version ' + T.esc(res.from) + ":</p>");
    function list(title, items, cls, fmt) {
      if (!items || !items.length) return;
      parts.push("<h3>" + title + "</h3><ul>" + items.map(function (i) { return '<li class="' + cls + '">' + fmt(i) + "</li>"; }).join("") + "</ul>");
    }
    const fmtVal = function (v) { return T.esc(typeof v === "string" ? v : JSON.stringify(v)); };
    list("Configuration", d.configuration, "", function (c) { return "<code>" + T.esc(c.field) + "</code>: " + fmtVal(c.old) + " → " + fmtVal(c.new); });
    list("Nodes added", d.nodes.added, "", function (n) { return '<span class="badge ok">+</span> ' + T.esc(n.name) + ' <span class="muted">(' + T.esc(typeLabel(n.type)) + ")</span>"; });
    list("Nodes removed", d.nodes.removed, "", function (n) { return '<span class="badge bad">−</span> ' + T.esc(n.name); });
    list("Nodes changed", d.nodes.changed, "", function (n) {
      return '<span class="badge warn">~</span> ' + T.esc(n.name) + ": " + n.changes.map(function (c) { return "<code>" + T.esc(c.field) + "</code>"; }).join(", ");
    });
    list("Connections added", d.edges.added, "", function (e) { return T.esc(e.upstream_name) + " → " + T.esc(e.downstream_name); });
    list("Connections removed", d.edges.removed, "", function (e) { return T.esc(e.upstream_name) + " → " + T.esc(e.downstream_name); });
    return parts.join("");
  }

  const publishBtn = document.getElementById("btn-publish");
  if (publishBtn) {
    const dlg = document.getElementById("dlg-publish");
    const form = document.getElementById("form-publish");
    publishBtn.addEventListener("click", async function () {
      if (dirty || panelDirty()) { const ok = await save(); if (!ok) return; }
      T.clearFormErrors(form);
      document.getElementById("publish-diff").innerHTML = "Loading what changed…";
      dlg.showModal();
      try {
        const res = page.latest_version == null ? null
          : await T.api.get(flowUrl + "versions/" + page.latest_version + "/diff/?against=editing");
        document.getElementById("publish-diff").innerHTML = renderDiff(res);
      } catch (err) {
        document.getElementById("publish-diff").innerHTML = '<div class="banner error">' + T.esc(err.message) + "</div>";
      }
    });
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const comment = document.getElementById("pub-comment").value.trim();
        const res = await T.api.post(flowUrl + "publish/", comment ? { comment: comment } : {});
        T.toast("Published version " + (res && res.version != null ? res.version : "") + ".", "success");
        setDirty(false);
        window.location.reload();
      } catch (err) {
        T.showFormErrors(form, err);
        const box = form.querySelector("[data-errors]");
        if (err.status === 400 && box && err.body && err.body.problems) {
          box.innerHTML = '<div class="banner error" role="alert" data-testid="publish-problems">' + problemsHtml("Not published.", applyProblems(err.body)) + "</div>";
        }
      } finally {
        button.disabled = false;
      }
    });
  }
  function simpleAction(id, path, question, done) {
    const b = document.getElementById(id);
    if (!b) return;
    b.addEventListener("click", async function () {
      if (question && !window.confirm(question)) return;
      try {
        await T.api.post(flowUrl + path, {});
        T.toast(done, "success");
        setDirty(false);
        window.location.reload();
      } catch (err) {
        showBanner(T.esc(err.message));
      }
    });
  }
  simpleAction("btn-unpublish", "unpublish/", "Unpublish this flow? Its schedule stops firing until it is published again.", "Unpublished.");
  simpleAction("btn-freeze", "freeze/", "Freeze this flow? It stays published but its schedule fires nothing.", "Frozen.");
  simpleAction("btn-unfreeze", "unfreeze/", null, "Unfrozen.");

  // ------------------------------------------------------------------ start
  if (canEdit) setupEditing();
  load(false);
  T.api.all("/api/v1/datasources/").then(function (list) { datasources = list; }).catch(function () { datasources = []; });

  // For the browser tests and for curious users in the console.
  window.tributaryEditor = {
    cy: cy, save: save, isDirty: function () { return dirty; }, nodeByName: nodeByName,
    renderedCenter: function (name) {
      const n = nodeByName(name);
      if (!n) return null;
      const bb = n.renderedBoundingBox({ includeLabels: false });
      const r = wrap.getBoundingClientRect();
      return { x: r.left + (bb.x1 + bb.x2) / 2, y: r.top + (bb.y1 + bb.y2) / 2, right: r.left + bb.x2, top: r.top + bb.y1 };
    },
    setDirty: setDirty, undo: undoStep, redo: redoStep,
  };
})();
