/**
 * The sidebar panel: the workspace's ontology as a tree (each concept's accuracy and implementation),
 * pending proposals with their gate verdicts, and recent history.
 *
 * Everything shown comes from the server as data, and model-written text (labels, titles,
 * rationales) is only ever set with textContent: never parsed as HTML or Markdown.
 */
import { Widget } from '@lumino/widgets';

import {
  IConcept,
  IGate,
  IHistoryEntry,
  IOntology,
  IProposalSummary,
  getHistory,
  getOntology,
  getProposals,
  getWhy
} from './api';

/** Make an element with a class and (text) content. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** "0.88" for a fraction, "–" when unknown. */
export function formatAccuracy(value: number | null | undefined): string {
  return typeof value === 'number' && isFinite(value) ? value.toFixed(2) : '–';
}

/** One line for a gate verdict: "merge (+3.1 pts, CI [+0.8, +5.4])", or "not gated". */
export function formatGate(gate: IGate | null): string {
  if (!gate) {
    return 'not gated';
  }
  const decision = String(gate.decision ?? 'verdict');
  const pts = (v: unknown) =>
    typeof v === 'number' ? `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)}` : '?';
  if (typeof gate.difference === 'number') {
    return `${decision} (${pts(gate.difference)} pts, CI [${pts(gate.ci_low)}, ${pts(gate.ci_high)}])`;
  }
  return gate.message ? `${decision}: ${String(gate.message)}` : decision;
}

/** Text of the first of `keys` present in a history entry. */
function pick(entry: IHistoryEntry, ...keys: string[]): string {
  for (const k of keys) {
    const v = entry[k];
    if (typeof v === 'string' && v) {
      return v;
    }
  }
  return '';
}

export interface IPanelCallbacks {
  /** Insert a proposal as cells in the active notebook. */
  insertProposal(id: string): void;
  /** Run the merge gate on a pending proposal (records its verdict). */
  gateProposal(id: string): Promise<void>;
  /** The workspace path (relative to the Jupyter root) to show, or null when none is found. */
  resolveWorkspace(): Promise<string | null>;
}

/** The Workbench sidebar. */
export class WorkbenchPanel extends Widget {
  constructor(private readonly callbacks: IPanelCallbacks) {
    super();
    this.id = 'workbench-panel';
    this.addClass('jp-WorkbenchPanel');
    this.title.caption = 'Constructability Workbench';
    const header = el('div', 'jp-Workbench-header');
    this._workspaceLabel = el('span', 'jp-Workbench-workspace', '');
    const refresh = el('button', 'jp-Button jp-mod-minimal jp-Workbench-refresh', 'Refresh');
    refresh.title = 'Read the workspace again';
    refresh.addEventListener('click', () => void this.refresh());
    header.append(el('span', 'jp-Workbench-title', 'Workbench'), this._workspaceLabel, refresh);
    this._status = el('div', 'jp-Workbench-status');
    this._ontology = this._section('ontology', 'Ontology');
    this._proposals = this._section('proposals', 'Proposals');
    this._history = this._section('history', 'History');
    this.node.append(
      header,
      this._status,
      this._ontology.parentElement!,
      this._proposals.parentElement!,
      this._history.parentElement!
    );
  }

  /** The workspace the panel shows (relative to the Jupyter root), or null. */
  get workspace(): string | null {
    return this._workspace;
  }

  /** The ontology last read, or null. */
  get ontology(): IOntology | null {
    return this._ontologyData;
  }

  /** The proposals last read. */
  get proposals(): IProposalSummary[] {
    return this._proposalData;
  }

  /** Open one section and scroll it into view. */
  showSection(name: 'ontology' | 'proposals' | 'history'): void {
    const details = this.node.querySelector(
      `details[data-section="${name}"]`
    ) as HTMLDetailsElement | null;
    if (details) {
      details.open = true;
      details.scrollIntoView({ block: 'start' });
    }
  }

  /** Read the workspace again and redraw. */
  async refresh(): Promise<void> {
    const seq = ++this._seq;
    this._status.textContent = 'Reading the workspace…';
    this._status.classList.remove('jp-mod-error');
    let workspace: string | null;
    try {
      workspace = await this.callbacks.resolveWorkspace();
    } catch (error) {
      this._fail(seq, error);
      return;
    }
    if (seq !== this._seq) {
      return;
    }
    this._workspace = workspace;
    if (workspace === null) {
      this._workspaceLabel.textContent = '';
      this._status.textContent =
        'No workspace here. Open a notebook next to a workspace folder, or set ' +
        '"Workspace folder" in Settings › Constructability Workbench.';
      for (const list of [this._ontology, this._proposals, this._history]) {
        list.replaceChildren();
      }
      return;
    }
    this._workspaceLabel.textContent = workspace || '(Jupyter root)';
    this._workspaceLabel.title = `Workspace: ${workspace || '.'}`;
    try {
      const [ontology, proposals, history] = await Promise.all([
        getOntology(workspace),
        getProposals(workspace).catch(error => ({ proposals: [], error })),
        getHistory(workspace)
      ]);
      if (seq !== this._seq) {
        return;
      }
      this._ontologyData = ontology;
      this._proposalData = proposals.proposals;
      this._renderOntology(ontology);
      this._renderProposals(proposals.proposals);
      this._renderHistory(history.history);
      const problem = (proposals as { error?: Error }).error;
      this._status.textContent = problem ? `Proposals: ${problem.message}` : '';
    } catch (error) {
      this._fail(seq, error);
    }
  }

  protected onAfterShow(): void {
    void this.refresh();
  }

  private _fail(seq: number, error: unknown): void {
    if (seq !== this._seq) {
      return;
    }
    this._status.textContent = `Could not read the workspace: ${(error as Error).message ?? error}`;
    this._status.classList.add('jp-mod-error');
  }

  private _section(name: string, title: string): HTMLElement {
    const details = el('details', 'jp-Workbench-section');
    details.open = true;
    details.dataset.section = name;
    details.append(el('summary', '', title));
    const body = el('div', `jp-Workbench-${name}`);
    details.append(body);
    return body;
  }

  private _renderOntology(o: IOntology): void {
    const byId = new Map(o.concepts.map(c => [c.id, c]));
    const tree = el('ul', 'jp-Workbench-tree');
    const seen = new Set<string>();
    const add = (parent: HTMLElement, c: IConcept, depth: number) => {
      const li = el('li', 'jp-Workbench-concept');
      li.dataset.concept = c.id;
      li.dataset.kind = c.kind;
      const row = el('div', 'jp-Workbench-conceptRow');
      const name = el('span', 'jp-Workbench-conceptLabel', c.label);
      name.title = c.description ? `${c.id}: ${c.description}` : c.id;
      const impl = el(
        'span',
        `jp-Workbench-impl jp-mod-${c.implementation}`,
        c.implementation === 'rule' ? `rule ${c.rule ?? ''}`.trim() : 'net'
      );
      const acc = c.metrics?.val_balanced_accuracy;
      const accuracy = el(
        'span',
        'jp-Workbench-accuracy',
        c.metrics ? `bal. acc ${formatAccuracy(acc)}` : 'untrained'
      );
      accuracy.title = c.metrics
        ? `validation balanced accuracy ${formatAccuracy(acc)} on ${c.metrics.val_examples ?? '?'} examples`
        : 'no trained model yet';
      row.append(name, el('span', 'jp-Workbench-conceptId', c.id), impl, accuracy);
      row.title = 'Click: which change introduced this concept, and why';
      row.addEventListener('click', () => void this._toggleWhy(li, c.id));
      li.append(row);
      parent.append(li);
      if (seen.has(c.id) || depth > 32) {
        return; // a concept shared by two parents is listed under both, its parts once
      }
      seen.add(c.id);
      if (c.parts.length) {
        const ul = el('ul');
        for (const p of c.parts) {
          const child = byId.get(p);
          if (child) {
            add(ul, child, depth + 1);
          }
        }
        li.append(ul);
      }
    };
    const root = byId.get(o.root);
    if (root) {
      add(tree, root, 0);
    }
    this._ontology.replaceChildren(
      el('div', 'jp-Workbench-caption', `${o.name}: ${o.concepts.length} concepts`),
      tree
    );
  }

  /** Show (or hide) under a concept which change introduced it and which last changed it. */
  private async _toggleWhy(li: HTMLElement, concept: string): Promise<void> {
    const existing = li.querySelector(':scope > .jp-Workbench-why');
    if (existing) {
      existing.remove();
      return;
    }
    const box = el('div', 'jp-Workbench-why', 'Reading the history…');
    li.insertBefore(box, li.children[1] ?? null);
    if (this._workspace === null) {
      box.textContent = 'No workspace.';
      return;
    }
    try {
      box.textContent = (await getWhy(this._workspace, concept)).summary;
    } catch (error) {
      box.textContent = `Could not trace ${concept}: ${(error as Error).message}`;
    }
  }

  private _renderProposals(items: IProposalSummary[]): void {
    const pending = items.filter(p => p.status === 'pending');
    const rest = items.filter(p => p.status !== 'pending').slice(0, 10);
    const list = el('ul', 'jp-Workbench-proposalList');
    for (const p of [...pending, ...rest]) {
      const li = el('li', `jp-Workbench-proposal jp-mod-${p.status}`);
      li.dataset.proposal = p.id;
      const head = el('div', 'jp-Workbench-proposalHead');
      head.append(
        el('span', 'jp-Workbench-proposalId', p.id),
        el('span', 'jp-Workbench-proposalTitle', p.title || '(untitled)')
      );
      const meta = el('div', 'jp-Workbench-proposalMeta');
      meta.append(
        el('span', 'jp-Workbench-badge', p.status),
        el('span', 'jp-Workbench-badge', p.kind),
        el('span', 'jp-Workbench-gate', formatGate(p.gate))
      );
      if (p.stale && p.status === 'pending') {
        const stale = el('span', 'jp-Workbench-badge jp-mod-warn', 'stale');
        stale.title = 'made against an older ontology: it is re-checked when applied';
        meta.append(stale);
      }
      if (p.invalid) {
        meta.append(el('span', 'jp-Workbench-badge jp-mod-warn', `${p.invalid} invalid`));
      }
      li.append(head, meta);
      if (p.status === 'pending') {
        const insert = el('button', 'jp-Button jp-mod-styled jp-Workbench-insert', 'Insert as cells');
        insert.title = 'Insert this proposal below the active cell of the current notebook';
        insert.addEventListener('click', () => this.callbacks.insertProposal(p.id));
        const gate = el('button', 'jp-Button jp-mod-styled jp-Workbench-runGate', 'Run gate');
        gate.title = 'Retrain what the proposal affects and compare balanced accuracy with and without it';
        gate.addEventListener('click', async () => {
          gate.disabled = true;
          gate.textContent = 'Gating…';
          try {
            await this.callbacks.gateProposal(p.id);
          } finally {
            gate.disabled = false;
            gate.textContent = 'Run gate';
          }
        });
        const actions = el('div', 'jp-Workbench-actions');
        actions.append(insert, gate);
        li.append(actions);
      }
      list.append(li);
    }
    this._proposals.replaceChildren(
      items.length ? list : el('div', 'jp-Workbench-caption', 'No proposals yet.')
    );
  }

  private _renderHistory(entries: IHistoryEntry[]): void {
    const list = el('ul', 'jp-Workbench-historyList');
    for (const e of entries.slice(0, 20)) {
      const li = el('li', 'jp-Workbench-historyEntry');
      const sha = pick(e, 'sha', 'commit');
      const title = pick(e, 'title', 'subject', 'summary', 'message').split('\n')[0];
      const proposal = pick(e, 'proposal');
      const who = pick(e, 'proposed_by', 'author');
      li.append(
        el('span', 'jp-Workbench-sha', sha.slice(0, 7)),
        el('span', 'jp-Workbench-historyTitle', title)
      );
      if (proposal) {
        li.append(el('span', 'jp-Workbench-badge', `proposal ${proposal}`));
      }
      li.title = [pick(e, 'date', 'when'), who, pick(e, 'gate')].filter(Boolean).join(' · ');
      list.append(li);
    }
    this._history.replaceChildren(
      entries.length ? list : el('div', 'jp-Workbench-caption', 'No history yet.')
    );
  }

  private _seq = 0;
  private _workspace: string | null = null;
  private _ontologyData: IOntology | null = null;
  private _proposalData: IProposalSummary[] = [];
  private _workspaceLabel: HTMLElement;
  private _status: HTMLElement;
  private _ontology: HTMLElement;
  private _proposals: HTMLElement;
  private _history: HTMLElement;
}
