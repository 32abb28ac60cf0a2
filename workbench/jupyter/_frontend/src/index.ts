/**
 * The Constructability Workbench in JupyterLab: one plugin that adds the Workbench sidebar panel, the
 * Workbench commands (see commands.ts) and reads the user's settings (schema/plugin.json).
 *
 * The data comes from the server extension (workbench/_server.py); nothing here writes files.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon } from '@jupyterlab/ui-components';

import { ISettingsOverrides, findWorkspaces } from './api';
import { CommandIDs, registerCommands } from './commands';
import { watchWidgetFallbacks } from './fallback';
import { IWorkspaceChoice, WorkbenchPanel } from './panel';

/** The plugin id: the npm package name and the settings schema file name (schema/plugin.json). */
export const PLUGIN_ID = 'constructability-workbench:plugin';

const ICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
  '<g class="jp-icon3" fill="#616161">' +
  '<circle cx="12" cy="4" r="2.6"/><circle cx="5" cy="19" r="2.6"/><circle cx="19" cy="19" r="2.6"/>' +
  '<circle cx="12" cy="13" r="2.2"/>' +
  '<path d="M11.3 6.4h1.4v4.6h-1.4zM6 17.2l4.9-3.4.8 1.1-4.9 3.4zM18 17.2l-4.9-3.4-.8 1.1 4.9 3.4z"/>' +
  '</g></svg>';

export const workbenchIcon = new LabIcon({ name: 'workbench:icon', svgstr: ICON_SVG });

/** The user's settings (see schema/plugin.json); null fields mean "the workspace's own value". */
interface IUserSettings {
  workspace: string;
  claudeModel: string | null;
  maxImageEdge: number | null;
  gateConfidence: number | null;
  gateMinGain: number | null;
  gateMaxLoss: number | null;
}

const DEFAULTS: IUserSettings = {
  workspace: '',
  claudeModel: null,
  maxImageEdge: null,
  gateConfidence: null,
  gateMinGain: null,
  gateMaxLoss: null
};

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'The Workbench panel and commands: ontology, proposals as cells, history.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ISettingRegistry, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null
  ) => {
    let settings: IUserSettings = { ...DEFAULTS };

    // Which workspace: the setting when one is typed; else the one the active notebook's kernel opened
    // (workbench.open records it for the server); else the nearest one to the notebook's folder.
    const choose = async (): Promise<IWorkspaceChoice> => {
      if (settings.workspace.trim()) {
        return { path: settings.workspace.trim(), source: 'setting' };
      }
      const nb = tracker.currentWidget;
      const dir = nb ? PathExt.dirname(nb.context.path) : '';
      const kernel = nb?.sessionContext.session?.kernel?.id ?? null;
      const found = await findWorkspaces(dir, kernel);
      const mine = found.kernel ?? {};
      if (typeof mine.workspace === 'string') {
        return { path: mine.workspace, source: 'notebook' };
      }
      const note = mine.outside
        ? `This notebook opened the workspace "${mine.outside}", which lies outside the folder Jupyter ` +
          'serves, so the sidebar cannot show it. Keep workspaces below the Jupyter root to browse them here.'
        : undefined;
      if (found.workspaces.length) {
        return { path: found.workspaces[0], source: 'nearby', note };
      }
      return { path: null, source: 'none', note };
    };
    const workspace = async (): Promise<string | null> => (await choose()).path;

    const overrides = (): ISettingsOverrides => ({
      claude_model: settings.claudeModel || null,
      llm_max_image_edge: settings.maxImageEdge,
      gate_confidence: settings.gateConfidence,
      gate_min_gain: settings.gateMinGain,
      gate_max_loss: settings.gateMaxLoss
    });

    const panel = new WorkbenchPanel({
      insertProposal: id => void app.commands.execute(CommandIDs.insertProposal, { id }),
      gateProposal: async id => {
        await app.commands.execute(CommandIDs.gate, { id });
      },
      resolveWorkspace: choose,
      labelConcept: (concept, choice) =>
        void app.commands.execute(CommandIDs.labelConcept, {
          concept,
          workspace: choice.path ?? '',
          opened: choice.source === 'notebook'
        })
    });
    panel.title.icon = workbenchIcon;
    app.shell.add(panel, 'left', { rank: 850 });
    if (restorer) {
      restorer.add(panel, panel.id);
    }

    registerCommands({ app, palette, tracker, panel, workspace, overrides });
    watchWidgetFallbacks(tracker);

    // Follow the active notebook: another folder, or another kernel, may hold another workspace.
    tracker.currentChanged.connect((_sender, nb) => {
      if (panel.isVisible) {
        void panel.refresh();
      }
      nb?.sessionContext.kernelChanged.connect(() => {
        if (panel.isVisible && tracker.currentWidget === nb) {
          void panel.refresh();
        }
      });
    });

    // After a cell runs (e.g. wb.apply), show what changed: re-read the workspace, at most twice a second.
    let pending: ReturnType<typeof setTimeout> | null = null;
    NotebookActions.executed.connect(() => {
      if (!panel.isVisible || pending !== null) {
        return;
      }
      pending = setTimeout(() => {
        pending = null;
        void panel.refresh();
      }, 500);
    });

    if (settingRegistry) {
      settingRegistry
        .load(PLUGIN_ID)
        .then(loaded => {
          const update = () => {
            settings = { ...DEFAULTS, ...(loaded.composite as Partial<IUserSettings>) };
            if (panel.isVisible) {
              void panel.refresh();
            }
          };
          loaded.changed.connect(update);
          update();
        })
        .catch(reason => {
          console.error(`Constructability Workbench: could not load settings (${reason})`);
        });
    }
  }
};

export default plugin;
