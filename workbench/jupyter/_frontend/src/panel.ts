/**
 * The sidebar panel: the workspace's ontology as a tree (each concept's accuracy and implementation; a
 * click opens its card), proposals with their gate verdicts, and recent history. It follows the active
 * notebook (the workspace its kernel opened) and stays current by polling a cheap stamp.
 *
 * Everything shown comes from the server as data, and model-written text (labels, titles,
 * rationales) is only ever set with textContent: never parsed as HTML or Markdown.
 */
import { Widget } from '@lumino/widgets';

import {
  IConcept,
  IConceptCard,
  IFinding,
  IGate,
  IHistoryEntry,
  IOntology,
  IProposalSummary,
  IReview,
  getConcept,
  getHistory,
  getOntology,
  getProposals,
  getState,
  postReview
} from './api';

/** How often the panel checks whether the workspace changed (while it is visible), in ms. */
export const POLL_MS = 2000;

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

/** What a provisional concept is, in one sentence (its badge's tooltip and its card). */
export const PROVISIONAL_NOTE =
  'provisional: labelled and trained, but not yet part of its parent\'s composition; ' +
  'once it has enough labels the gate judges it and a person confirms or removes it';

/** "2 serious, 1 warning" for a review's counts; "no concerns" when only info findings. */
export function formatReviewCounts(review: IReview): string {
  const said = ['serious', 'warning']
    .filter(s => (review.counts?.[s] ?? 0) > 0)
    .map(s => `${review.counts[s]} ${s}`);
  return said.length ? said.join(', ') : 'no concerns';
}

/** One finding as a list item (all text set with textContent). */
export function findingItem(f: IFinding): HTMLElement {
  const li = el('li', `jp-Workbench-finding jp-mod-${f.severity}`);
  li.dataset.kind = f.kind;
  const where = [typeof f.edit === 'number' ? `edit ${f.edit}` : '', f.about ?? '']
    .filter(Boolean)
    .join(' · ');
  li.append(
    el('span', `jp-Workbench-severity jp-mod-${f.severity}`, f.severity),
    el('span', 'jp-Workbench-findingKind', f.kind.replace('_', ' '))
  );
  if (where) {
    li.append(el('span', 'jp-Workbench-conceptId', where));
  }
  if (f.source === 'check') {
    li.append(el('span', 'jp-Workbench-findingSource', 'workbench check'));
  }
  li.append(el('div', 'jp-Workbench-findingText', f.message));
  li.title = f.source === 'check' ? 'found by the workbench\'s own checks' : 'the reviewer\'s judgement';
  return li;
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

/** Which workspace the panel shows, and why that one. */
export interface IWorkspaceChoice {
  /** Relative to the Jupyter root ('' is the root itself); null when there is none to show. */
  path: string | null;
  /** 'setting': the Settings Editor; 'notebook': the active notebook's kernel opened it; 'nearby': found near the notebook. */
  source: 'setting' | 'notebook' | 'nearby' | 'none';
  /** A sentence for the person (e.g. why none is shown). */
  note?: string;
}

export interface IPanelCallbacks {
  /** Insert a proposal as cells in the active notebook. */
  insertProposal(id: string): void;
  /** Run the merge gate on a pending proposal (records its verdict). */
  gateProposal(id: string): Promise<void>;
  /** The workspace to show. */
  resolveWorkspace(): Promise<IWorkspaceChoice>;
  /** Insert a cell that opens the labeler filtered to `concept` in the active notebook. */
  labelConcept(concept: string, choice: IWorkspaceChoice): void;
}

/** The Workbench sidebar. */
export class WorkbenchPanel extends Widget {
  constructor(private readonly callbacks: IPanelCallbacks) {
    super();
    this.id = 'workbench-panel';
    this.addClass('jp-WorkbenchPanel');
    this.title.caption = 'Constructability Workbench';
    const header = el('div', 'jp-Workbench-header');
    const refresh = el('button', 'jp-Button jp-mod-minimal jp-Workbench-refresh', 'Refresh');
    refresh.title = 'Read the workspace again (it also updates by itself every few seconds)';
    refresh.addEventListener('click', () => void this.refresh());
    header.append(el('span', 'jp-Workbench-title', 'Workbench'), refresh);
    this._workspaceLabel = el('div', 'jp-Workbench-workspace', '');
    this._workspaceSource = el('div', 'jp-Workbench-workspaceSource', '');
    this._status = el('div', 'jp-Workbench-status');
    this._ontology = this._section('ontology', 'Ontology');
    this._proposals = this._section('proposals', 'Proposals');
    this._history = this._section('history', 'History');
    this._pendingOnly = el('input', 'jp-Workbench-pendingOnly') as HTMLInputElement;
    this._pendingOnly.type = 'checkbox';
    this._pendingOnly.addEventListener('change', () => this._renderProposals(this._proposalData));
    const filter = el('label', 'jp-Workbench-filter');
    filter.append(this._pendingOnly, ' pending only');
    this._proposals.parentElement!.insertBefore(filter, this._proposals);
    this.node.append(
      header,
      this._workspaceLabel,
      this._workspaceSource,
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

  /** Where the shown workspace came from. */
  get choice(): IWorkspaceChoice {
    return this._choice;
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
    let choice: IWorkspaceChoice;
    try {
      choice = await this.callbacks.resolveWorkspace();
    } catch (error) {
      this._fail(seq, error);
      return;
    }
    if (seq !== this._seq) {
      return;
    }
    this._choice = choice;
    const workspace = choice.path;
    this._workspace = workspace;
    if (workspace === null) {
      this._workspaceLabel.textContent = '';
      this._workspaceSource.textContent = '';
      this._stamp = null;
      this._status.textContent =
        choice.note ??
        'No workspace here. Run workbench.open("…") in a notebook, or set "Workspace folder" in ' +
          'Settings › Constructability Workbench.';
      for (const list of [this._ontology, this._proposals, this._history]) {
        list.replaceChildren();
      }
      return;
    }
    this._workspaceLabel.textContent = workspace || '(Jupyter root)';
    this._workspaceLabel.title = `Workspace: ${workspace || '.'} (relative to the Jupyter root)`;
    this._workspaceSource.textContent =
      choice.source === 'notebook'
        ? 'opened by this notebook'
        : choice.source === 'setting'
          ? 'from Settings › Constructability Workbench'
          : 'found near this notebook';
    try {
      const [ontology, proposals, history, state] = await Promise.all([
        getOntology(workspace),
        getProposals(workspace).catch(error => ({ proposals: [], error })),
        getHistory(workspace),
        getState(workspace).catch(() => ({ stamp: null }))
      ]);
      if (seq !== this._seq) {
        return;
      }
      this._stamp = state.stamp;
      this._ontologyData = ontology;
      this._proposalData = proposals.proposals;
      this._renderOntology(ontology);
      this._renderProposals(proposals.proposals);
      this._renderHistory(history.history);
      const problem = (proposals as { error?: Error }).error;
      this._status.textContent = problem ? `Proposals: ${problem.message}` : '';
      if (choice.note) {
        this._status.textContent = choice.note;
      }
    } catch (error) {
      this._fail(seq, error);
    }
  }

  /**
   * Check the workspace's stamp and refresh when it changed (a proposal saved by the labeler, a merge,
   * new models). Cheap: the server compares file names, sizes and times.
   */
  async poll(): Promise<boolean> {
    const workspace = this._workspace;
    if (workspace === null || this._polling) {
      return false;
    }
    this._polling = true;
    try {
      const { stamp } = await getState(workspace);
      if (workspace === this._workspace && stamp !== this._stamp) {
        await this.refresh();
        return true;
      }
    } catch {
      // the next poll or a Refresh tries again; errors show on refresh
    } finally {
      this._polling = false;
    }
    return false;
  }

  protected onAfterShow(): void {
    void this.refresh();
    this._startPolling();
  }

  protected onAfterHide(): void {
    this._stopPolling();
  }

  protected onBeforeDetach(): void {
    this._stopPolling();
  }

  private _startPolling(): void {
    if (this._timer !== null) {
      return;
    }
    this._timer = setInterval(() => {
      if (this.isVisible && document.visibilityState === 'visible') {
        void this.poll();
      }
    }, POLL_MS);
  }

  private _stopPolling(): void {
    if (this._timer !== null) {
      clearInterval(this._timer);
      this._timer = null;
    }
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
      if (c.provisional) {
        const badge = el('span', 'jp-Workbench-badge jp-mod-provisional', 'provisional');
        badge.title = PROVISIONAL_NOTE;
        row.append(badge);
        li.classList.add('jp-mod-provisional');
      }
      row.title = 'Click: the concept card (accuracy, examples, where it came from)';
      row.addEventListener('click', () => void this._toggleCard(li, c.id));
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

  /** Show (or hide) a concept's card under it: accuracy and status, parameters, implementation,
   * example segments, the change that introduced it, and a button that opens the labeler on it. */
  private async _toggleCard(li: HTMLElement, concept: string): Promise<void> {
    const existing = li.querySelector(':scope > .jp-Workbench-card');
    if (existing) {
      existing.remove();
      return;
    }
    const box = el('div', 'jp-Workbench-card', 'Reading the concept…');
    li.insertBefore(box, li.children[1] ?? null);
    if (this._workspace === null) {
      box.textContent = 'No workspace.';
      return;
    }
    try {
      this._fillCard(box, await getConcept(this._workspace, concept));
    } catch (error) {
      box.textContent = `Could not read ${concept}: ${(error as Error).message}`;
    }
  }

  private _fillCard(box: HTMLElement, c: IConceptCard): void {
    const rows: [string, string][] = [];
    const m = c.metrics;
    const acc = m ? `${formatAccuracy(m.val_balanced_accuracy)} on ${m.val_examples ?? '?'} validation examples` : 'not trained yet';
    rows.push(['balanced accuracy', acc]);
    rows.push(['status', c.status ? c.status + (c.status_reason ? `: ${c.status_reason}` : '') : '–']);
    rows.push(['parameters', m && typeof m.n_params === 'number' ? String(m.n_params) : '–']);
    rows.push(['implementation', c.implementation === 'rule' ? `rule ${c.rule ?? ''}`.trim() : 'net']);
    rows.push(['kind', c.kind + (c.parts.length ? ` of ${c.parts.join(', ')}` : '')]);
    rows.push(['labelled segments', String(c.labelled)]);
    if (c.provisional) {
      rows.push(['in the ontology', 'provisional (not yet confirmed)']);
    }
    const intro = c.introduced;
    if (intro) {
      const by = pick(intro, 'proposal') ? `proposal ${pick(intro, 'proposal')}` : pick(intro, 'sha').slice(0, 7);
      rows.push(['introduced by', `${by}: ${pick(intro, 'title')}`]);
    }
    const table = el('table', 'jp-Workbench-cardTable');
    for (const [k, v] of rows) {
      const tr = el('tr');
      tr.append(el('th', '', k), el('td', k === 'status' && (c.status === 'weak' || c.status === 'dead') ? 'jp-mod-warn' : '', v));
      table.append(tr);
    }
    const head = el('div', 'jp-Workbench-cardHead');
    head.append(el('b', '', c.label), ' ', el('code', '', c.id));
    const parts: HTMLElement[] = [head];
    if (c.description) {
      parts.push(el('div', 'jp-Workbench-cardDesc', c.description));
    }
    parts.push(table);
    if (c.provisional) {
      parts.push(el('div', 'jp-Workbench-provisionalNote', PROVISIONAL_NOTE.replace(/^provisional: /, 'Provisional: ')));
    }
    const examples = el('div', 'jp-Workbench-examples');
    for (const ex of c.examples) {
      const img = el('img', 'jp-Workbench-example') as HTMLImageElement;
      img.src = ex.src;
      img.alt = `segment ${ex.segment}`;
      img.title = `segment ${ex.segment} of ${ex.image}`;
      examples.append(img);
    }
    if (!c.examples.length) {
      examples.append(el('span', 'jp-Workbench-caption', c.kind === 'part' ? 'no labelled segments yet' : 'composites are not labelled directly'));
    }
    parts.push(examples);
    parts.push(el('div', 'jp-Workbench-why', c.why));
    if (c.kind === 'part') {
      const label = el('button', 'jp-Button jp-mod-styled jp-Workbench-labelConcept', `Label ${c.id} in the notebook`);
      label.title = `Insert a cell below the active one that opens the labeler on the segments labelled ${c.id}`;
      label.addEventListener('click', () => this.callbacks.labelConcept(c.id, this._choice));
      parts.push(label);
    }
    box.replaceChildren(...parts);
  }

  private _renderProposals(items: IProposalSummary[]): void {
    const pending = items.filter(p => p.status === 'pending');
    const rest = this._pendingOnly.checked ? [] : items.filter(p => p.status !== 'pending').slice(0, 10);
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
      const review = this._reviewBlock(p);
      if (review) {
        li.append(review);
      }
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
    const empty = !items.length
      ? 'No proposals yet.'
      : !pending.length && this._pendingOnly.checked
        ? 'No pending proposals.'
        : '';
    this._proposals.replaceChildren(empty ? el('div', 'jp-Workbench-caption', empty) : list);
  }

  /** The second reviewer's findings under a proposal (open for a pending one with concerns), or, for a
   * pending proposal nobody reviewed yet, a button that asks the workspace's reviewer. */
  private _reviewBlock(p: IProposalSummary): HTMLElement | null {
    const r = p.review;
    if (!r) {
      if (p.status !== 'pending') {
        return null;
      }
      const box = el('div', 'jp-Workbench-actions jp-Workbench-noReview');
      const button = el('button', 'jp-Button jp-mod-styled jp-Workbench-askReview', 'Review');
      button.title = 'Ask the second reviewer (the workspace\'s reviewer setting) for findings; it never decides';
      button.addEventListener('click', async () => {
        if (this._workspace === null) {
          return;
        }
        button.disabled = true;
        button.textContent = 'Reviewing…';
        try {
          await postReview(this._workspace, p.id);
          await this.refresh();
        } catch (error) {
          this._status.textContent = `Review of ${p.id}: ${(error as Error).message}`;
          this._status.classList.add('jp-mod-error');
          button.disabled = false;
          button.textContent = 'Review';
        }
      });
      box.append(el('span', 'jp-Workbench-caption', 'not reviewed yet'), button);
      return box;
    }
    const details = el('details', 'jp-Workbench-review');
    const concerns = (r.counts?.serious ?? 0) + (r.counts?.warning ?? 0);
    details.open = p.status === 'pending' && concerns > 0;
    const summary = el('summary', concerns ? 'jp-mod-warn' : '');
    summary.textContent = `Review: ${formatReviewCounts(r)}`;
    summary.title = `${r.reviewer}, ${r.at}: advice for the person who decides`;
    details.append(summary);
    const who = el(
      'div',
      'jp-Workbench-caption',
      r.scripted ? `${r.reviewer} (authored findings, not model output)` : r.reviewer
    );
    details.append(who);
    if (r.summary) {
      details.append(el('div', 'jp-Workbench-reviewSummary', r.summary));
    }
    const list = el('ul', 'jp-Workbench-findings');
    const rank: { [k: string]: number } = { serious: 0, warning: 1, info: 2 };
    const shown = [...r.findings].sort((a, b) => (rank[a.severity] ?? 3) - (rank[b.severity] ?? 3));
    for (const f of shown) {
      list.append(findingItem(f));
    }
    details.append(list);
    return details;
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
  private _stamp: string | null = null;
  private _polling = false;
  private _timer: ReturnType<typeof setInterval> | null = null;
  private _choice: IWorkspaceChoice = { path: null, source: 'none' };
  private _pendingOnly: HTMLInputElement;
  private _workspaceSource: HTMLElement;
  private _workspace: string | null = null;
  private _ontologyData: IOntology | null = null;
  private _proposalData: IProposalSummary[] = [];
  private _workspaceLabel: HTMLElement;
  private _status: HTMLElement;
  private _ontology: HTMLElement;
  private _proposals: HTMLElement;
  private _history: HTMLElement;
}
