/**
 * The ontology graph: concepts in layers from the root down to the parts, drawn as plain SVG
 * (no network, no bundled graph library). Labels are set with textContent.
 */
import { Widget } from '@lumino/widgets';

import { IOntology } from './api';
import { formatAccuracy } from './panel';

const SVG = 'http://www.w3.org/2000/svg';
const NODE_W = 150;
const NODE_H = 44;
const GAP_X = 24;
const GAP_Y = 56;

/** Layer of each concept: the longest path from the root (so every part sits below all its parents). */
export function layers(o: IOntology): Map<string, number> {
  const parts = new Map(o.concepts.map(c => [c.id, c.parts]));
  const depth = new Map<string, number>([[o.root, 0]]);
  // Relax edges until nothing changes; the ontology is a DAG, so this ends within |concepts| rounds.
  for (let round = 0; round <= o.concepts.length; round++) {
    let changed = false;
    for (const [id, d] of Array.from(depth.entries())) {
      for (const p of parts.get(id) ?? []) {
        if ((depth.get(p) ?? -1) < d + 1) {
          depth.set(p, d + 1);
          changed = true;
        }
      }
    }
    if (!changed) {
      break;
    }
  }
  return depth;
}

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: { [key: string]: string | number }
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    node.setAttribute(k, String(v));
  }
  return node;
}

/** A main-area widget showing the ontology graph. */
export class GraphWidget extends Widget {
  constructor() {
    super();
    this.addClass('jp-WorkbenchGraph');
    this.title.label = 'Ontology graph';
  }

  render(o: IOntology): void {
    this.title.label = `Ontology: ${o.name}`;
    const depth = layers(o);
    const rows = new Map<number, string[]>();
    for (const c of o.concepts) {
      const d = depth.get(c.id) ?? 0;
      rows.set(d, [...(rows.get(d) ?? []), c.id]);
    }
    const widest = Math.max(1, ...Array.from(rows.values()).map(r => r.length));
    const width = widest * (NODE_W + GAP_X) + GAP_X;
    const height = rows.size * (NODE_H + GAP_Y) + GAP_Y;
    const pos = new Map<string, { x: number; y: number }>();
    for (const [d, ids] of rows) {
      const offset = (width - ids.length * (NODE_W + GAP_X) + GAP_X) / 2;
      ids.forEach((id, i) =>
        pos.set(id, { x: offset + i * (NODE_W + GAP_X), y: GAP_Y / 2 + d * (NODE_H + GAP_Y) })
      );
    }
    const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' });
    const title = svg('title', {});
    title.textContent = `Ontology ${o.name}: parts below the concepts they make up`;
    root.append(title);
    for (const c of o.concepts) {
      const a = pos.get(c.id)!;
      for (const p of c.parts) {
        const b = pos.get(p);
        if (b) {
          root.append(
            svg('line', {
              x1: a.x + NODE_W / 2, y1: a.y + NODE_H,
              x2: b.x + NODE_W / 2, y2: b.y,
              class: 'jp-WorkbenchGraph-edge'
            })
          );
        }
      }
    }
    for (const c of o.concepts) {
      const { x, y } = pos.get(c.id)!;
      const g = svg('g', { class: `jp-WorkbenchGraph-node jp-mod-${c.implementation}`, 'data-concept': c.id });
      g.append(svg('rect', { x, y, width: NODE_W, height: NODE_H, rx: 6 }));
      const label = svg('text', { x: x + NODE_W / 2, y: y + 18, 'text-anchor': 'middle' });
      label.textContent = c.label.length > 22 ? c.label.slice(0, 21) + '…' : c.label;
      const info = svg('text', { x: x + NODE_W / 2, y: y + 34, 'text-anchor': 'middle', class: 'jp-WorkbenchGraph-info' });
      const impl = c.implementation === 'rule' ? `rule ${c.rule ?? ''}` : 'net';
      info.textContent = `${impl} · ${c.metrics ? formatAccuracy(c.metrics.val_balanced_accuracy) : 'untrained'}`;
      const tip = svg('title', {});
      tip.textContent = `${c.id}: ${c.description}`;
      g.append(tip, label, info);
      root.append(g);
    }
    this.node.replaceChildren(root);
  }
}
