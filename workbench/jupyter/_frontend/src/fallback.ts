/**
 * Saved widgets, reopened: a notebook saved with live widgets and reopened without their kernel shows
 * "Error displaying widget: model not found" and nothing else. Every Workbench widget puts a static
 * stand-in (`text/html`, a `.wb-fallback` block: a still picture of it as last shown and how to get the
 * live widget back) in the same output, next to the widget view. JupyterLab prefers the widget view;
 * when that fails, this swaps in the stand-in, rendered by JupyterLab's own HTML renderer (sanitised
 * unless the notebook is trusted). Outputs without a stand-in are left as they are.
 */
import { CodeCell } from '@jupyterlab/cells';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

/** The text ipywidgets' renderer leaves when it cannot show a widget. */
const WIDGET_ERROR = 'Error displaying widget';
/** The class of the stand-in our widgets put in their text/html. */
const FALLBACK_CLASS = 'wb-fallback';
/** Set on an output once its stand-in is shown. */
const SHOWN = 'wb-fallback-shown';

/** Replace failed widget views in `panel` with their stand-ins; returns how many were replaced. */
export async function showFallbacks(panel: NotebookPanel): Promise<number> {
  let replaced = 0;
  for (const cell of panel.content.widgets) {
    if (!(cell instanceof CodeCell)) {
      continue;
    }
    const area = cell.outputArea;
    for (let i = 0; i < area.widgets.length && i < area.model.length; i++) {
      const child = area.widgets[i];
      const failed = Array.from(child.node.querySelectorAll('.jp-OutputArea-output')).find(
        node => !node.classList.contains(SHOWN) && (node.textContent ?? '').startsWith(WIDGET_ERROR)
      ) as HTMLElement | undefined;
      if (!failed) {
        continue;
      }
      const output = area.model.get(i);
      const html = output.data['text/html'];
      const text = Array.isArray(html) ? html.join('') : html;
      if (typeof text !== 'string' || !text.includes(FALLBACK_CLASS)) {
        continue;
      }
      failed.classList.add(SHOWN);
      const renderer = panel.content.rendermime.createRenderer('text/html');
      await renderer.renderModel({
        data: { 'text/html': text },
        metadata: {},
        trusted: output.trusted,
        setData: () => undefined
      });
      failed.replaceChildren(renderer.node);
      replaced++;
    }
  }
  return replaced;
}

/** Watch every notebook for failed widget views (they appear once the widget manager gives up). */
export function watchWidgetFallbacks(tracker: INotebookTracker): void {
  tracker.widgetAdded.connect((_sender, panel) => {
    let pending: ReturnType<typeof setTimeout> | null = null;
    const check = () => {
      if (pending === null) {
        pending = setTimeout(() => {
          pending = null;
          void showFallbacks(panel);
        }, 200);
      }
    };
    // ipywidgets sets the error with `node.textContent = ...`: look only at added text nodes (cheap,
    // so a labeler's keypresses, which change the page often, cost nothing here).
    const observer = new MutationObserver(mutations => {
      for (const m of mutations) {
        for (const added of Array.from(m.addedNodes)) {
          if (added.nodeType === Node.TEXT_NODE && (added as Text).data.startsWith(WIDGET_ERROR)) {
            check();
            return;
          }
        }
      }
    });
    void panel.context.ready.then(() => {
      observer.observe(panel.content.node, { childList: true, subtree: true });
      check();
    });
    panel.disposed.connect(() => observer.disconnect());
  });
}
