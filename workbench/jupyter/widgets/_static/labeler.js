// Segment labeler front end (anywidget ESM, no bundler, works offline).
// Everything shown comes from the model's traits; every action is a custom message to Python,
// which writes the store and sends back the next view. Data is put in the page with textContent
// and element attributes only (never innerHTML): concept labels and model ids are data.

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function keyName(e) {
  if (e.key === "z" && (e.ctrlKey || e.metaKey)) return "u";
  if (e.ctrlKey || e.metaKey || e.altKey) return null;
  if (e.shiftKey && e.key === "Enter") return null; // Shift+Enter still runs the cell
  if (e.key === "PageDown") return "]";
  if (e.key === "PageUp") return "[";
  return e.key;
}

function render({ model, el }) {
  const root = h("div", { class: "wb-labeler", tabindex: "0", "data-lm-suppress-shortcuts": "true" });
  root.tabIndex = 0;
  el.append(root);

  const title = h("span", { class: "wb-title" }, "Label segments");
  const filterSel = h("select", { class: "wb-filter", title: "filter" });
  const bar = h("progress", { class: "wb-bar", max: "1", value: "0" });
  const progText = h("span", { class: "wb-progtext" });
  const header = h("div", { class: "wb-header" }, title, bar, progText, filterSel);
  const errorBox = h("div", { class: "wb-error", role: "alert" });
  const noticeBox = h("div", { class: "wb-notice" });
  const messageBox = h("div", { class: "wb-message" });
  const skippedBox = h("div", { class: "wb-error wb-skipped" });
  const ctxImg = h("img", { class: "wb-context", alt: "image with the segment outlined" });
  const cropImg = h("img", { class: "wb-crop", alt: "segment crop" });
  const facts = h("div", { class: "wb-facts" });
  const main = h("div", { class: "wb-main" }, ctxImg, h("div", { class: "wb-side" }, cropImg, facts));
  const emptyBox = h("div", { class: "wb-empty" });
  const keysBox = h("div", { class: "wb-keys" });
  const strip = h("div", { class: "wb-strip" });
  const counts = h("div", { class: "wb-counts" });

  // create a concept while labelling: becomes a proposal
  const fId = h("input", { placeholder: "id (e.g. bud)", size: "14" });
  const fLabel = h("input", { placeholder: "label (e.g. Flower bud)", size: "18" });
  const fDesc = h("textarea", { placeholder: "what it looks like", rows: "2", cols: "40" });
  const fParent = h("select", {});
  const fWhy = h("input", { placeholder: "why (optional)", size: "30" });
  const fGo = h("button", { class: "wb-btn", type: "button" }, "Propose concept");
  fGo.addEventListener("click", () => {
    model.send({ type: "create_concept", id: fId.value, label: fLabel.value, description: fDesc.value,
                 parents: fParent.value ? [fParent.value] : null, rationale: fWhy.value });
  });
  const form = h("details", { class: "wb-create" }, h("summary", {}, "New concept… (becomes a proposal to review)"),
    h("div", {}, fId, " ", fLabel, " part of ", fParent), h("div", {}, fDesc), h("div", {}, fWhy, " ", fGo));

  const upnext = h("div", { class: "wb-upnext" }, "Up next");
  // grid review: a page of tiles ranked as one concept, all selected at first
  const gridHead = h("div", { class: "wb-grid-head" });
  const gridBox = h("div", { class: "wb-grid", role: "listbox", "aria-multiselectable": "true" });
  const trainerBox = h("div", { class: "wb-trainer" });
  root.append(header, errorBox, skippedBox, noticeBox, messageBox, emptyBox, gridHead, gridBox, main, keysBox,
    upnext, strip, trainerBox, counts, form);
  let focus = 0; // the focused tile of the grid page (arrow keys move it)
  const GRID_COLS = 8;

  const send = (key, extra) => model.send(Object.assign({ type: "key", key }, extra || {}));
  const isGrid = () => model.get("mode") === "grid";
  const tiles = () => (model.get("grid") || {}).tiles || [];

  function drawKeys() {
    keysBox.replaceChildren();
    for (const k of model.get("bindings") || []) {
      if (k.hidden) continue;
      const b = h("button", { class: "wb-btn wb-key-" + k.action, type: "button", title: k.concept || k.action },
        h("kbd", {}, k.key === "Enter" ? "⏎" : k.key === " " ? "space" : k.key), " ", k.label);
      b.addEventListener("click", () => { sendKey(k.key); root.focus(); });
      keysBox.append(b);
    }
  }

  function drawFilter() {
    filterSel.replaceChildren();
    for (const o of model.get("filter_options") || []) filterSel.append(h("option", { value: o.value }, o.text));
    filterSel.title = "showing: " + model.get("filter_text");
    filterSel.value = model.get("filter_value") || "unlabelled";
    fParent.replaceChildren();
    for (const c of model.get("composites") || []) fParent.append(h("option", { value: c.id }, c.label + " (" + c.id + ")"));
  }
  filterSel.addEventListener("change", () => model.send({ type: "filter", value: filterSel.value }));

  // Send a key; on a grid page the focused tile goes with it (space, x, a concept key act on that tile).
  function sendKey(key) {
    const t = tiles();
    if (isGrid() && t.length) send(key, { segment_id: t[Math.min(focus, t.length - 1)].segment_id });
    else send(key);
  }

  function drawGrid() {
    const g = model.get("grid") || {};
    const grid = isGrid();
    root.classList.toggle("wb-grid-mode", grid);
    gridHead.style.display = grid ? "" : "none";
    gridBox.style.display = grid && (g.tiles || []).length ? "" : "none";
    if (!grid) { gridBox.replaceChildren(); return; }
    const page = String(g.page || 0);
    if (gridBox.dataset.page !== page) {
      focus = 0;
      gridHead.replaceChildren(
        h("div", { class: "wb-grid-q" }, "Is each of these ", h("b", {}, g.label || g.concept || ""), "?"),
        h("div", { class: "wb-grid-how" }, "All are selected (✓). Deselect the wrong ones: click a tile, or move with the ",
          "arrow keys and press space or x. ⏎ accepts the page: ✓ → " + (g.concept || "") +
          ", ✗ → none (or the concept key you pressed on it)."),
        h("div", { class: "wb-grid-by" }, (g.tiles || []).length + " unlabelled segments ranked by " + (g.model || "?")));
      gridBox.replaceChildren();
      (g.tiles || []).forEach((t, i) => {
        const img = h("img", { src: t.thumb, alt: "segment " + t.segment_id });
        const tile = h("div", { class: "wb-tile", role: "option", "data-segment": String(t.segment_id),
          title: "segment " + t.segment_id + " · " + t.image + " · score " + t.score },
          img, h("span", { class: "wb-tile-mark" }), h("span", { class: "wb-tile-label" }));
        tile.addEventListener("click", () => {
          focus = i;
          send(" ", { segment_id: t.segment_id });
          markTiles(t.segment_id);
          root.focus();
        });
        gridBox.append(tile);
      });
      gridBox.dataset.page = page; // set last: a test (or a person) sees the new page only when it is drawn
    }
    markTiles();
  }

  // Draw each tile's state: ✓ selected (the page's concept), ✗ with the concept it will get otherwise.
  // `flip`: a tile just clicked or toggled, drawn at once before Python's answer confirms it.
  function markTiles(flip) {
    const g = model.get("grid") || {};
    const choices = Object.assign({}, model.get("grid_choices") || {});
    if (flip !== undefined) {
      if (choices[String(flip)] === undefined) choices[String(flip)] = "none";
      else delete choices[String(flip)];
    }
    Array.from(gridBox.children).forEach((tile, i) => {
      const c = choices[tile.dataset.segment];
      const selected = c === undefined;
      tile.classList.toggle("wb-off", !selected);
      tile.classList.toggle("wb-focus", i === focus);
      tile.setAttribute("aria-selected", selected ? "true" : "false");
      tile.querySelector(".wb-tile-mark").textContent = selected ? "✓" : "✗";
      tile.querySelector(".wb-tile-label").textContent = selected ? g.concept || "" : c;
    });
  }

  function drawCurrent() {
    const cur = model.get("current") || {};
    root.classList.remove("wb-pending");
    if (isGrid()) {
      main.style.display = "none";
      upnext.style.display = "none";
      strip.style.display = "none";
      const none = !tiles().length;
      emptyBox.style.display = none ? "" : "none";
      emptyBox.textContent = none ? (model.get("empty") || "No grid page: pick another filter above.") : "";
      return;
    }
    const empty = !cur.segment_id;
    // Nothing to show: one clear sentence instead of empty picture frames.
    main.style.display = empty ? "none" : "";
    emptyBox.style.display = empty ? "" : "none";
    emptyBox.textContent = empty ? (model.get("empty") || "Nothing left for this filter: pick another one above.") : "";
    if (empty) {
      ctxImg.removeAttribute("src");
      cropImg.removeAttribute("src");
      facts.replaceChildren();
      return;
    }
    ctxImg.src = cur.context;
    cropImg.src = cur.crop;
    const rows = [
      h("div", {}, "segment ", h("b", {}, String(cur.segment_id)), " · area " + cur.area),
      h("div", { class: "wb-path" }, cur.image + (cur.image_class ? " (" + cur.image_class + ")" : "")),
      h("div", {}, "current label: ", h("b", {}, cur.label || "—")),
    ];
    if (cur.suggestion) {
      rows.push(h("div", { class: "wb-suggestion" }, "suggested: ", h("b", {}, cur.suggestion.concept),
        " by " + cur.suggestion.model + " — ⏎ accepts"));
    }
    facts.replaceChildren(...rows);
  }

  function drawStrip() {
    strip.replaceChildren();
    if (isGrid()) return;
    const none = !(model.get("upcoming") || []).length;
    upnext.style.display = none ? "none" : "";
    strip.style.display = none ? "none" : "";
    for (const u of model.get("upcoming") || []) {
      const img = h("img", { class: "wb-thumb", src: u.thumb, title: "segment " + u.segment_id + " · " + u.image });
      img.addEventListener("click", () => { model.send({ type: "goto", segment_id: u.segment_id }); root.focus(); });
      strip.append(img);
    }
  }

  function drawProgress() {
    const p = model.get("progress") || {};
    bar.max = Math.max(1, p.total || 0);
    bar.value = p.labelled || 0;
    progText.textContent = (p.labelled || 0) + " / " + (p.total || 0) + " labelled";
    counts.replaceChildren();
    for (const [c, n] of Object.entries(p.counts || {})) counts.append(h("span", { class: "wb-count" }, c + " " + n));
  }

  function drawText() {
    errorBox.textContent = model.get("error") || "";
    errorBox.style.display = model.get("error") ? "" : "none";
    noticeBox.textContent = model.get("notice") || "";
    noticeBox.style.display = model.get("notice") ? "" : "none";
    messageBox.textContent = model.get("message") || "";
    const sk = model.get("skipped") || [];
    skippedBox.textContent = sk.length ? "Skipped (cannot be shown): " + sk.map((x) => x.image + ": " + x.reason).join("; ") : "";
    skippedBox.style.display = sk.length ? "" : "none";
    const ts = model.get("trainer_status") || "";
    trainerBox.textContent = ts ? "Background retraining: " + ts : "";
    trainerBox.style.display = ts ? "" : "none";
  }

  root.addEventListener("keydown", (e) => {
    const t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) return;
    const key = keyName(e);
    if (key === null) return;
    if (isGrid() && key.startsWith("Arrow")) { // move the focus ring; nothing is sent
      const n = tiles().length;
      if (!n) return;
      e.preventDefault();
      e.stopPropagation();
      const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -GRID_COLS, ArrowDown: GRID_COLS }[key] || 0;
      focus = Math.max(0, Math.min(n - 1, focus + step));
      markTiles();
      return;
    }
    const known = (model.get("bindings") || []).some((k) => k.key === key);
    if (!known) return;
    e.preventDefault();
    e.stopPropagation();
    if (isGrid()) {
      const k = (model.get("bindings") || []).find((x) => x.key === key);
      const t = tiles();
      if (k && k.action === "toggle" && t.length) markTiles(t[Math.min(focus, t.length - 1)].segment_id);
      sendKey(key);
      return;
    }
    // Show the next segment at once (its thumbnail is already here); Python's view replaces it.
    const up = model.get("upcoming") || [];
    const k = (model.get("bindings") || []).find((x) => x.key === key);
    if (up.length && k && (k.action === "label" || k.action === "none" || k.action === "skip" || k.action === "accept")) {
      cropImg.src = up[0].thumb;
      root.classList.add("wb-pending");
    }
    send(key);
  });
  // Catch up with labels made elsewhere (other cells, other people) when the person comes back.
  let lastSync = 0;
  root.addEventListener("focusin", () => {
    const now = Date.now();
    if (now - lastSync > 1000) {
      lastSync = now;
      model.send({ type: "sync" });
    }
  });
  root.addEventListener("click", (e) => {
    const t = e.target;
    if (!(t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.tagName === "SUMMARY"))) root.focus();
  });

  drawKeys(); drawFilter(); drawGrid(); drawCurrent(); drawStrip(); drawProgress(); drawText();
  const on = (name, fn) => model.on("change:" + name, fn);
  on("bindings", drawKeys);
  on("filter_options", drawFilter);
  on("filter_text", drawFilter);
  on("filter_value", drawFilter);
  on("composites", drawFilter);
  on("current", drawCurrent);
  on("mode", () => { drawGrid(); drawCurrent(); drawStrip(); });
  on("grid", () => { drawGrid(); drawCurrent(); });
  on("grid_choices", () => markTiles());
  on("trainer_status", drawText);
  on("empty", drawCurrent);
  on("upcoming", drawStrip);
  on("progress", drawProgress);
  on("error", drawText);
  on("notice", drawText);
  on("message", drawText);
  on("skipped", drawText);
  return () => root.remove();
}

export default { render };
