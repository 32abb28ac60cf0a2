// Ontology graph frame (anywidget ESM): the pyvis page runs in a sandboxed iframe (scripts only, no
// same-origin, so it cannot reach the notebook); a node click arrives here as a postMessage.
function render({ model, el }) {
  const frame = document.createElement("iframe");
  frame.setAttribute("sandbox", "allow-scripts");
  frame.setAttribute("referrerpolicy", "no-referrer");
  frame.style.width = "100%";
  frame.style.border = "1px solid #ddd";
  const draw = () => {
    frame.style.height = model.get("height") + "px";
    frame.srcdoc = model.get("srcdoc");
  };
  const onMessage = (e) => {
    if (e.source !== frame.contentWindow || !e.data || typeof e.data.wbSelect !== "string") return;
    model.set("selected", e.data.wbSelect);
    model.save_changes();
  };
  window.addEventListener("message", onMessage);
  draw();
  model.on("change:srcdoc", draw);
  model.on("change:height", draw);
  el.append(frame);
  return () => window.removeEventListener("message", onMessage);
}

export default { render };
