/**
 * The REST client for the workbench server extension (workbench/_server.py), under /workbench/api/.
 *
 * Every answer is plain JSON; errors come back as {"error", "status"} and are thrown as ApiError
 * with the server's message, so the user sees why (a refused path, a missing workspace, ...).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** One concept of the ontology, with the validation metrics of its trained model (if any). */
export interface IConcept {
  id: string;
  label: string;
  description: string;
  kind: 'root' | 'composite' | 'part';
  implementation: 'net' | 'rule';
  rule: string | null;
  parts: string[];
  parents: string[];
  /** Labelled and trained, but not yet part of its parent's composition (confirmed after the gate). */
  provisional?: boolean;
  metrics: {
    val_balanced_accuracy?: number | null;
    val_examples?: number | null;
    train_balanced_accuracy?: number | null;
    n_params?: number | null;
  } | null;
}

export interface IOntology {
  name: string;
  root: string;
  concepts: IConcept[];
  head: string | null;
  ontology_sha256: string;
}

/** A merge-gate verdict as stored in a proposal (see workbench/gate.py); every field optional. */
export interface IGate {
  decision?: string;
  kind?: string;
  message?: string;
  difference?: number | null;
  ci_low?: number | null;
  ci_high?: number | null;
  confidence?: number;
  n?: number;
  [key: string]: unknown;
}

/** One finding of a second reviewer (workbench/review/findings.py): advice, never a decision. */
export interface IFinding {
  kind: 'not_visual' | 'overlap' | 'contradiction' | 'unsupported' | 'ok' | string;
  severity: 'serious' | 'warning' | 'info' | string;
  /** 'check': found by the workbench's own code; 'reviewer': the reviewer's judgement. */
  source: string;
  edit?: number;
  about?: string;
  message: string;
  evidence?: { [key: string]: unknown };
}

/** A proposal's review as the server summarises it (the recorded model exchange left out). */
export interface IReview {
  reviewer: string;
  at: string;
  model: string | null;
  /** True when the judgements were authored by hand (the demo), not model output. */
  scripted: boolean;
  summary: string;
  counts: { [severity: string]: number };
  findings: IFinding[];
}

export interface IProposalSummary {
  id: string;
  kind: string;
  title: string;
  status: string;
  author: string;
  created: string;
  edits: number;
  invalid: number;
  gate: IGate | null;
  commit: string | null;
  stale: boolean;
  review?: IReview | null;
}

/** An nbformat-style cell as produced by workbench.cells.proposal_cells. */
export interface ICellData {
  cell_type: 'markdown' | 'code' | 'raw';
  source: string | string[];
  metadata?: { [key: string]: unknown };
  id?: string;
  attachments?: { [key: string]: unknown };
}

export interface IProposalDetail {
  id: string;
  title: string;
  status: string;
  stale: boolean;
  cells: ICellData[] | null;
  diff: string | null;
  [key: string]: unknown;
}

export interface IHistoryEntry {
  [key: string]: unknown;
}

export interface IImage {
  id: number;
  path: string;
  class_label: string | null;
}

/** Settings a request may override (the names of workbench.settings.Settings fields). */
export interface ISettingsOverrides {
  claude_model?: string | null;
  llm_max_image_edge?: number | null;
  gate_confidence?: number | null;
  gate_min_gain?: number | null;
  gate_max_loss?: number | null;
}

/** An error answered by the server, with its status and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Call the workbench API: `path` below /workbench/api/, `query` as URL parameters. */
export async function requestAPI<T>(
  path: string,
  query: { [key: string]: string } = {},
  init: RequestInit = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  let url = URLExt.join(settings.baseUrl, 'workbench', 'api', path);
  const params = new URLSearchParams(query).toString();
  if (params) {
    url += '?' + params;
  }
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const body = data as { error?: string; message?: string } | null;
    const message =
      body?.error ?? body?.message ?? `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message);
  }
  return data as T;
}

/** What the server knows about the notebook kernel's workspace (recorded by workbench.open). */
export interface IKernelWorkspace {
  /** The workspace the kernel opened, relative to the Jupyter root. */
  workspace?: string;
  /** The folder name, when the kernel opened a workspace outside the Jupyter root (never served). */
  outside?: string;
  outside_path?: string;
}

/**
 * Workspaces for a notebook folder, nearest first; with `kernel` (the notebook's kernel id) the one that
 * kernel opened with workbench.open comes first.
 */
export function findWorkspaces(
  path: string,
  kernel?: string | null
): Promise<{ workspaces: string[]; kernel?: IKernelWorkspace }> {
  const query: { [key: string]: string } = { path };
  if (kernel) {
    query.kernel = kernel;
  }
  return requestAPI('workspaces', query);
}

/** A stamp that changes whenever the ontology, proposals, models or history change. */
export function getState(workspace: string): Promise<{ stamp: string }> {
  return requestAPI('state', { workspace });
}

/** One example segment of a concept: a small PNG data URL made by the server. */
export interface IExample {
  segment: number;
  image: string;
  src: string;
}

/** Everything the concept card shows. */
export interface IConceptCard extends IConcept {
  status: string | null;
  status_reason: string | null;
  labelled: number;
  examples: IExample[];
  introduced: IHistoryEntry | null;
  why: string;
}

export function getConcept(workspace: string, concept: string): Promise<IConceptCard> {
  return requestAPI('concept', { workspace, concept });
}

export function getOntology(workspace: string): Promise<IOntology> {
  return requestAPI('ontology', { workspace });
}

export function getProposals(
  workspace: string
): Promise<{ proposals: IProposalSummary[] }> {
  return requestAPI('proposals', { workspace });
}

export function getProposal(
  workspace: string,
  id: string
): Promise<IProposalDetail> {
  return requestAPI(`proposals/${encodeURIComponent(id)}`, { workspace });
}

export function getHistory(
  workspace: string
): Promise<{ history: IHistoryEntry[] }> {
  return requestAPI('history', { workspace });
}

/** Why a concept is what it is (workbench.history.Explanation as data). */
export interface IWhy {
  concept: string;
  exists: boolean;
  summary: string;
  introduced: IHistoryEntry | null;
  last_changed: IHistoryEntry | null;
}

export function getWhy(workspace: string, concept: string): Promise<IWhy> {
  return requestAPI('why', { workspace, concept });
}

export function getImages(workspace: string): Promise<{ images: IImage[] }> {
  return requestAPI('images', { workspace });
}

export function postSuggest(
  workspace: string,
  image: string,
  settings: ISettingsOverrides
): Promise<{ proposal: { id: string; title: string } }> {
  return requestAPI(
    'suggest',
    {},
    { method: 'POST', body: JSON.stringify({ workspace, image, settings }) }
  );
}

export function postRefactor(
  workspace: string,
  settings: ISettingsOverrides
): Promise<{ proposal: { id: string; title: string } }> {
  return requestAPI(
    'refactor',
    {},
    { method: 'POST', body: JSON.stringify({ workspace, settings }) }
  );
}

export function postGate(
  workspace: string,
  proposal: string,
  settings: ISettingsOverrides
): Promise<{ gate: IGate }> {
  return requestAPI(
    'gate',
    {},
    { method: 'POST', body: JSON.stringify({ workspace, proposal, settings }) }
  );
}

/** Ask a second reviewer for findings on a proposal (stored beside its edits; it never decides). */
export function postReview(
  workspace: string,
  proposal: string,
  reviewer?: string
): Promise<{ review: IReview | null }> {
  const body: { [key: string]: string } = { workspace, proposal };
  if (reviewer) {
    body.reviewer = reviewer;
  }
  return requestAPI('review', {}, { method: 'POST', body: JSON.stringify(body) });
}
