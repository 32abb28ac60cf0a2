/**
 * The Workbench commands: ids in one place (CommandIDs), registered by registerCommands and listed in
 * the command palette under the category "Workbench".
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  ICommandPalette,
  InputDialog,
  MainAreaWidget,
  Notification,
  showErrorMessage
} from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { MarkdownCell } from '@jupyterlab/cells';

import {
  ICellData,
  ISettingsOverrides,
  getImages,
  getOntology,
  getProposal,
  getProposals,
  postGate,
  postRefactor,
  postSuggest
} from './api';
import { GraphWidget } from './graph';
import { WorkbenchPanel, formatGate } from './panel';

/** Every command id of the extension. */
export namespace CommandIDs {
  export const openPanel = 'workbench:open-panel';
  export const refresh = 'workbench:refresh';
  export const insertProposal = 'workbench:insert-proposal';
  export const openGraph = 'workbench:open-graph';
  export const suggest = 'workbench:suggest';
  export const refactor = 'workbench:refactor';
  export const gate = 'workbench:gate';
  export const showHistory = 'workbench:show-history';
  export const labelConcept = 'workbench:label-concept';
}

/** The palette category of the commands. */
export const CATEGORY = 'Workbench';

/** What the commands need from the plugin. */
export interface ICommandContext {
  app: JupyterFrontEnd;
  palette: ICommandPalette | null;
  tracker: INotebookTracker;
  panel: WorkbenchPanel;
  /** The workspace to act on (relative to the Jupyter root), or null when none is found. */
  workspace(): Promise<string | null>;
  /** Per-request settings overrides from the Settings Editor (null fields: the workspace's own). */
  overrides(): ISettingsOverrides;
}

/** The text of a cell source given as a string or a list of lines (nbformat allows both). */
function sourceText(source: string | string[]): string {
  return Array.isArray(source) ? source.join('') : source;
}

/**
 * Insert a proposal's cells below the active cell of `panel` (or at the top of an empty notebook).
 *
 * Cells keep their ids (stable ids keep nbdime diffs clean) unless the notebook already uses one, and
 * carry metadata.workbench.proposal. A proposal already in the notebook is not inserted twice: its
 * first cell is selected instead. Returns the index of the first cell and whether it was inserted.
 */
export function insertProposalCells(
  panel: NotebookPanel,
  proposalId: string,
  cells: ICellData[]
): { index: number; inserted: boolean } {
  const notebook = panel.content;
  const model = notebook.model;
  if (!model) {
    throw new Error('the notebook is not loaded yet');
  }
  const ids = new Set<string>();
  let first = -1;
  for (let i = 0; i < model.cells.length; i++) {
    const cell = model.cells.get(i);
    ids.add(cell.id);
    const meta = cell.getMetadata('workbench') as { proposal?: string } | undefined;
    if (meta?.proposal === proposalId) {
      first = first < 0 ? i : first;
      // Already here: refresh its cells in place (a gate verdict may have been added since).
      const fresh = cells.find(c => c.id === cell.id && c.cell_type === cell.type);
      if (fresh && cell.sharedModel.getSource() !== sourceText(fresh.source)) {
        cell.sharedModel.setSource(sourceText(fresh.source));
      }
    }
  }
  if (first >= 0) {
    notebook.activeCellIndex = first;
    return { index: first, inserted: false };
  }
  const at = model.cells.length ? notebook.activeCellIndex + 1 : 0;
  const data = cells.map(c => {
    const metadata = { ...(c.metadata ?? {}) } as { [key: string]: any };
    metadata.workbench = { ...(metadata.workbench ?? {}), proposal: proposalId };
    const cell: { [key: string]: any } = {
      cell_type: c.cell_type,
      source: sourceText(c.source),
      metadata
    };
    if (c.id && !ids.has(c.id)) {
      cell.id = c.id;
    }
    if (c.cell_type === 'code') {
      cell.outputs = [];
      cell.execution_count = null;
    } else if (c.attachments) {
      cell.attachments = c.attachments;
    }
    return cell;
  });
  model.sharedModel.insertCells(at, data as any);
  for (let i = at; i < at + data.length; i++) {
    const widget = notebook.widgets[i];
    if (widget instanceof MarkdownCell) {
      widget.rendered = true;
    }
  }
  notebook.activeCellIndex = at;
  void notebook.scrollToItem(at);
  return { index: at, inserted: true };
}

/** Insert one code cell below the active cell of `panel` (or first in an empty notebook) and select it. */
export function insertCodeCell(panel: NotebookPanel, source: string): number {
  const notebook = panel.content;
  const model = notebook.model;
  if (!model) {
    throw new Error('the notebook is not loaded yet');
  }
  const at = model.cells.length ? notebook.activeCellIndex + 1 : 0;
  model.sharedModel.insertCells(at, [
    { cell_type: 'code', source, metadata: {}, outputs: [], execution_count: null } as any
  ]);
  notebook.activeCellIndex = at;
  void notebook.scrollToItem(at);
  return at;
}

/**
 * The code of a cell that opens grid review of `concept` (pages of unlabelled segments ranked as it; below 5
 * labels the labeler asks for single labels first): `wb.label(...)` when the
 * notebook opened that workspace (its `wb`), else it opens the workspace first, by its path from the
 * notebook's folder.
 */
export function labelCellSource(concept: string, workspace: string, notebookPath: string, opened: boolean): string {
  const call = `wb.label(concept=${JSON.stringify(concept)}, grid=True)  # pages ranked as ${concept}: deselect the wrong ones, Enter stores the page`;
  if (opened) {
    return call;
  }
  const rel = PathExt.relative(PathExt.dirname(notebookPath), workspace) || '.';
  return `import workbench\n\nwb = workbench.open(${JSON.stringify(rel)})\n${call}`;
}

async function requireWorkspace(ctx: ICommandContext): Promise<string> {
  const ws = await ctx.workspace();
  if (ws === null) {
    throw new Error(
      'No workspace found: open a notebook next to a workspace folder, or set "Workspace folder" ' +
        'in Settings › Constructability Workbench.'
    );
  }
  return ws;
}

async function report(title: string, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    await showErrorMessage(title, (error as Error).message ?? String(error));
  }
}

/** Register every command and add them to the palette. */
export function registerCommands(ctx: ICommandContext): void {
  const { app, palette, tracker, panel } = ctx;
  const { commands, shell } = app;

  /** The id given as a command argument, or one the user picks among the pending proposals. */
  const pickPending = async (args: { [key: string]: unknown }, title: string): Promise<string | null> => {
    if (typeof args.id === 'string' && args.id) {
      return args.id;
    }
    const workspace = await requireWorkspace(ctx);
    const pending = (await getProposals(workspace)).proposals.filter(p => p.status === 'pending');
    if (!pending.length) {
      throw new Error('No pending proposals: suggest edits for an image or run a refactor first.');
    }
    const items = pending.map(p => `${p.id}: ${p.title}`);
    const choice = await InputDialog.getItem({ title, items });
    if (!choice.button.accept || choice.value === null) {
      return null;
    }
    return pending[items.indexOf(choice.value)].id;
  };

  const insert = async (id: string) => {
    const nb = tracker.currentWidget;
    if (!nb) {
      throw new Error('Open a notebook first: the proposal is inserted below its active cell.');
    }
    const workspace = await requireWorkspace(ctx);
    const detail = await getProposal(workspace, id);
    if (!detail.cells || !detail.cells.length) {
      throw new Error(`Proposal ${id} has no notebook cells (this workbench version cannot render them).`);
    }
    await nb.context.ready;
    const { inserted } = insertProposalCells(nb, id, detail.cells);
    shell.activateById(nb.id);
    Notification.info(
      inserted
        ? `Proposal ${id} inserted: read it, then run its code cell to apply it.`
        : `Proposal ${id} is already in this notebook: its cells were brought up to date.`,
      { autoClose: 4000 }
    );
  };

  commands.addCommand(CommandIDs.openPanel, {
    label: 'Open Workbench Panel',
    caption: 'Show the ontology, pending proposals and history of the workspace',
    execute: () => {
      shell.activateById(panel.id);
      return panel.refresh();
    }
  });

  commands.addCommand(CommandIDs.refresh, {
    label: 'Refresh Workbench Panel',
    execute: () => panel.refresh()
  });

  // Always listed and enabled: without an open notebook it says what to do instead of vanishing.
  commands.addCommand(CommandIDs.insertProposal, {
    label: args => (args.id ? `Insert Proposal ${args.id} as Cells` : 'Insert Proposal as Cells'),
    caption: 'Insert a proposal below the active cell: its rationale and diff, and a cell that applies it',
    execute: args =>
      report('Insert proposal', async () => {
        if (!tracker.currentWidget) {
          throw new Error('Open a notebook first: the proposal is inserted below its active cell.');
        }
        const id = await pickPending(args, 'Insert proposal as cells');
        if (id) {
          await insert(id);
        }
      })
  });

  commands.addCommand(CommandIDs.openGraph, {
    label: 'Open Ontology Graph',
    caption: 'Show the ontology as a graph: parts below the concepts they make up',
    execute: () =>
      report('Ontology graph', async () => {
        const workspace = await requireWorkspace(ctx);
        const content = new GraphWidget();
        content.render(await getOntology(workspace));
        const widget = new MainAreaWidget({ content });
        widget.id = `workbench-graph-${Date.now()}`;
        shell.add(widget, 'main');
        shell.activateById(widget.id);
      })
  });

  const afterProposal = async (p: { id: string; title: string }) => {
    await panel.refresh();
    if (tracker.currentWidget) {
      await insert(p.id);
    } else {
      Notification.success(`Proposal ${p.id}: ${p.title}`, { autoClose: 6000 });
    }
  };

  commands.addCommand(CommandIDs.suggest, {
    label: 'Suggest Edits for an Image',
    caption: 'Ask the suggester (Claude with ANTHROPIC_API_KEY set on the server, else scripted) for edits',
    execute: args =>
      report('Suggest edits', async () => {
        const workspace = await requireWorkspace(ctx);
        let image = typeof args.image === 'string' ? args.image : '';
        if (!image) {
          const images = (await getImages(workspace)).images.map(i => i.path);
          const choice = images.length
            ? await InputDialog.getItem({ title: 'Suggest edits for which image?', items: images })
            : await InputDialog.getText({
                title: 'Suggest edits for which image?',
                placeholder: 'path inside the data set, e.g. daisy/0003.png'
              });
          if (!choice.button.accept || !choice.value) {
            return;
          }
          image = choice.value;
        }
        const { proposal } = await postSuggest(workspace, image, ctx.overrides());
        await afterProposal(proposal);
      })
  });

  commands.addCommand(CommandIDs.refactor, {
    label: 'Refactor Ontology Now',
    caption: 'Ask the suggester to simplify the ontology given the proposals so far',
    execute: () =>
      report('Refactor', async () => {
        const workspace = await requireWorkspace(ctx);
        const { proposal } = await postRefactor(workspace, ctx.overrides());
        await afterProposal(proposal);
      })
  });

  commands.addCommand(CommandIDs.gate, {
    label: args => (args.id ? `Run Merge Gate on Proposal ${args.id}` : 'Run Merge Gate on a Proposal'),
    caption:
      'Retrain what a pending proposal affects and compare the root\'s balanced accuracy with and without it',
    execute: args =>
      report('Merge gate', async () => {
        const id = await pickPending(args, 'Run the merge gate on which proposal?');
        if (!id) {
          return;
        }
        const workspace = await requireWorkspace(ctx);
        const { gate } = await postGate(workspace, id, ctx.overrides());
        await panel.refresh();
        Notification.info(`Proposal ${id}: ${formatGate(gate)}`, { autoClose: 8000 });
      })
  });

  commands.addCommand(CommandIDs.labelConcept, {
    label: args => (args.concept ? `Label ${args.concept} in the Notebook` : 'Label a Concept in the Notebook'),
    caption: 'Insert a cell that opens the labeler on the segments of one concept',
    execute: args =>
      report('Label a concept', async () => {
        const nb = tracker.currentWidget;
        if (!nb) {
          throw new Error('Open a notebook first: the labeler cell is inserted below its active cell.');
        }
        let concept = typeof args.concept === 'string' ? args.concept : '';
        let workspace = typeof args.workspace === 'string' ? args.workspace : null;
        let opened = args.opened === true;
        if (workspace === null) {
          workspace = await requireWorkspace(ctx);
          opened = false;
        }
        if (!concept) {
          const parts = (await getOntology(workspace)).concepts.filter(c => c.kind === 'part').map(c => c.id);
          const pick = await InputDialog.getItem({ title: 'Label which concept?', items: parts });
          if (!pick.button.accept || !pick.value) {
            return;
          }
          concept = pick.value;
        }
        await nb.context.ready;
        insertCodeCell(nb, labelCellSource(concept, workspace, nb.context.path, opened));
        shell.activateById(nb.id);
        Notification.info(`Run the new cell (Shift+Enter) to label ${concept}.`, { autoClose: 4000 });
      })
  });

  commands.addCommand(CommandIDs.showHistory, {
    label: 'Show Workbench History',
    caption: 'The workspace changes: which proposal changed what, and why',
    execute: async () => {
      shell.activateById(panel.id);
      await panel.refresh();
      panel.showSection('history');
    }
  });

  if (palette) {
    for (const command of Object.values(CommandIDs)) {
      palette.addItem({ command, category: CATEGORY });
    }
  }
}
