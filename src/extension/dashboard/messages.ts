/**
 * The typed messages between the extension (the dashboard panel controller) and the dashboard
 * webview, declared once for both ends (like GitLens' IPC): one map per direction from message type
 * to payload, a discriminated union built from it, and structural guards that both ends run on
 * everything they receive. No `vscode` import: the webview bundle imports this file too.
 *
 * Handshake: the webview posts `ready` (with its protocol version) once its script has loaded; the
 * extension answers with `init` (every federation it knows, their full event history, the theme),
 * then streams `events` batches. `select` focuses a federation; `federations` replaces the list when
 * one is added or changes state. The webview posts `selectModule`, `exportReport` and `log`.
 *
 * Events are lines of the `fedex … --events -` stream (src/federation/events/events.ts): a
 * coordinator, simulation or join event, `{type, time, method?, ...payload}`. They are forwarded
 * unchanged; the guards check the envelope only (`type`, `time`), the dashboard reads payload fields
 * defensively (unknown event types are ignored, non-finite numbers arrive as null).
 */
import type { CliEvent } from '../../federation/events/events.js';

/** Version of this message set; travels with `ready` and `init`. */
export const DASHBOARD_PROTOCOL_VERSION = 1;

/** Stable error codes of message validation. */
export type DashboardMessageErrorCode = 'E_NOT_OBJECT' | 'E_UNKNOWN_TYPE' | 'E_BAD_FIELD' | 'E_VERSION';

/** VS Code's colour theme kinds (mirrors `vscode.ColorThemeKind`, by name). */
export type DashboardThemeKind = 'light' | 'dark' | 'high-contrast' | 'high-contrast-light';
const THEME_KINDS: readonly DashboardThemeKind[] = ['light', 'dark', 'high-contrast', 'high-contrast-light'];

/** An event of an unknown (newer) type: only the envelope is known. */
export interface UnknownDashboardEvent {
  readonly type: string;
  readonly time: number;
  readonly method?: string;
}

/** One event of a federation's stream, as the CLI wrote it. */
export type DashboardEvent = CliEvent | UnknownDashboardEvent;

/** How the extension knows a federation. */
export type FederationKind = 'simulation' | 'host' | 'join' | 'remote';
const FEDERATION_KINDS: readonly FederationKind[] = ['simulation', 'host', 'join', 'remote'];

/** A federation the dashboard can show. `id` is the extension's key; `label` is shown as text. */
export interface DashboardFederation {
  readonly id: string;
  readonly label: string;
  readonly kind: FederationKind;
  /** True while its CLI process runs. */
  readonly live: boolean;
}

/** Payloads of the messages the extension posts to the webview. */
export interface ExtensionToWebviewMap {
  /** Answer to `ready`: everything known so far. */
  init: {
    readonly version: number;
    readonly federations: readonly DashboardFederation[];
    /** Full event history per federation id (ids missing here have none yet). */
    readonly history: Readonly<Record<string, readonly DashboardEvent[]>>;
    /** Federation to focus, or null to keep the webview's restored choice (or the first). */
    readonly selected: string | null;
    readonly theme: DashboardThemeKind;
  };
  /** New events of one federation, in stream order. */
  events: { readonly federationId: string; readonly events: readonly DashboardEvent[] };
  /** Focus a federation (e.g. from the sidebar). */
  select: { readonly federationId: string };
  /** The list of federations changed (added, removed, live state). */
  federations: { readonly federations: readonly DashboardFederation[] };
}

/** Payloads of the messages the webview posts to the extension. */
export interface WebviewToExtensionMap {
  /** The script is loaded and listening; the extension answers with `init`. */
  ready: { readonly version: number };
  /** The user picked a module for the update heatmap. */
  selectModule: { readonly federationId: string; readonly module: string };
  /** The user asked to export the federation's report (the extension asks where and writes it). */
  exportReport: { readonly federationId: string; readonly format: 'json' | 'html' };
  /** A diagnostic line for the extension's output channel. */
  log: { readonly level: 'info' | 'warn' | 'error'; readonly message: string };
}

/** A message type of one direction. */
export type ExtensionToWebviewType = keyof ExtensionToWebviewMap;
export type WebviewToExtensionType = keyof WebviewToExtensionMap;

/** A message posted by the extension (a discriminated union on `type`). */
export type ExtensionToWebviewMessage = { [K in ExtensionToWebviewType]: { readonly type: K } & ExtensionToWebviewMap[K] }[ExtensionToWebviewType];
/** A message posted by the webview (a discriminated union on `type`). */
export type WebviewToExtensionMessage = { [K in WebviewToExtensionType]: { readonly type: K } & WebviewToExtensionMap[K] }[WebviewToExtensionType];

/** The outcome of validating a message: the message, or a stable code and a human reason. */
export type MessageCheck<T> =
  | { readonly ok: true; readonly message: T }
  | { readonly ok: false; readonly code: DashboardMessageErrorCode; readonly reason: string };

/** Longest id, label, module name or log line accepted (they end up as text in the UI or a log). */
export const MAX_MESSAGE_STRING = 4096;

type Fields = Record<string, unknown>;
type Check = (value: Fields) => string | null;

function isRecord(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function str(value: unknown): boolean {
  return typeof value === 'string' && value.length <= MAX_MESSAGE_STRING;
}

function nonEmptyStr(value: unknown): boolean {
  return str(value) && (value as string).length > 0;
}

/** True when `value` has the envelope of a stream event: a string `type` and a finite `time`. */
export function isDashboardEvent(value: unknown): value is DashboardEvent {
  return isRecord(value) && nonEmptyStr(value.type) && typeof value.time === 'number' && Number.isFinite(value.time)
    && (value.method === undefined || typeof value.method === 'string');
}

function eventsProblem(value: unknown, field: string): string | null {
  if (!Array.isArray(value)) return `${field} is not an array`;
  const bad = value.findIndex((e) => !isDashboardEvent(e));
  return bad < 0 ? null : `${field}[${bad}] is not an event ({type: string, time: number})`;
}

/** True when `value` is a well-formed federation descriptor. */
export function isDashboardFederation(value: unknown): value is DashboardFederation {
  return isRecord(value) && nonEmptyStr(value.id) && str(value.label)
    && FEDERATION_KINDS.includes(value.kind as FederationKind) && typeof value.live === 'boolean';
}

function federationsProblem(value: unknown): string | null {
  if (!Array.isArray(value)) return 'federations is not an array';
  const bad = value.findIndex((f) => !isDashboardFederation(f));
  return bad < 0 ? null : `federations[${bad}] is not {id, label, kind, live}`;
}

function versionProblem(value: unknown): string | null {
  return Number.isInteger(value) ? null : 'version is not an integer';
}

const EXTENSION_TO_WEBVIEW: { readonly [K in ExtensionToWebviewType]: Check } = {
  init: (m) => {
    const version = versionProblem(m.version);
    if (version !== null) return version;
    const federations = federationsProblem(m.federations);
    if (federations !== null) return federations;
    if (!isRecord(m.history)) return 'history is not an object';
    for (const [id, events] of Object.entries(m.history)) {
      const problem = eventsProblem(events, `history[${JSON.stringify(id.slice(0, 40))}]`);
      if (problem !== null) return problem;
    }
    if (m.selected !== null && !nonEmptyStr(m.selected)) return 'selected is neither null nor an id';
    if (!THEME_KINDS.includes(m.theme as DashboardThemeKind)) return `theme is not one of ${THEME_KINDS.join(', ')}`;
    return null;
  },
  events: (m) => (nonEmptyStr(m.federationId) ? eventsProblem(m.events, 'events') : 'federationId is not a non-empty string'),
  select: (m) => (nonEmptyStr(m.federationId) ? null : 'federationId is not a non-empty string'),
  federations: (m) => federationsProblem(m.federations),
};

const WEBVIEW_TO_EXTENSION: { readonly [K in WebviewToExtensionType]: Check } = {
  ready: (m) => versionProblem(m.version),
  selectModule: (m) => (!nonEmptyStr(m.federationId) ? 'federationId is not a non-empty string' : nonEmptyStr(m.module) ? null : 'module is not a non-empty string'),
  exportReport: (m) => (!nonEmptyStr(m.federationId) ? 'federationId is not a non-empty string' : m.format === 'json' || m.format === 'html' ? null : 'format is not json or html'),
  log: (m) => (!['info', 'warn', 'error'].includes(m.level as string) ? 'level is not info, warn or error' : str(m.message) ? null : 'message is not a string (≤ 4096 chars)'),
};

function check<T>(value: unknown, checks: Readonly<Record<string, Check>>, direction: string): MessageCheck<T> {
  if (!isRecord(value)) return { ok: false, code: 'E_NOT_OBJECT', reason: `${direction}: message is not an object` };
  const type = value.type;
  if (typeof type !== 'string' || !Object.hasOwn(checks, type)) {
    return { ok: false, code: 'E_UNKNOWN_TYPE', reason: `${direction}: unknown message type ${JSON.stringify(typeof type === 'string' ? type.slice(0, 40) : type ?? null)}` };
  }
  const problem = checks[type](value);
  if (problem !== null) return { ok: false, code: 'E_BAD_FIELD', reason: `${direction} ${type}: ${problem}` };
  if ((type === 'ready' || type === 'init') && value.version !== DASHBOARD_PROTOCOL_VERSION) {
    return { ok: false, code: 'E_VERSION', reason: `${direction} ${type}: protocol version ${String(value.version)}, expected ${DASHBOARD_PROTOCOL_VERSION}` };
  }
  return { ok: true, message: value as T };
}

/** Validates a message received by the webview (posted by the extension). */
export function checkExtensionToWebview(value: unknown): MessageCheck<ExtensionToWebviewMessage> {
  return check<ExtensionToWebviewMessage>(value, EXTENSION_TO_WEBVIEW, 'extension→webview');
}

/** Validates a message received by the extension (posted by the webview). */
export function checkWebviewToExtension(value: unknown): MessageCheck<WebviewToExtensionMessage> {
  return check<WebviewToExtensionMessage>(value, WEBVIEW_TO_EXTENSION, 'webview→extension');
}

/** Type guard of `checkExtensionToWebview`. */
export function isExtensionToWebviewMessage(value: unknown): value is ExtensionToWebviewMessage {
  return checkExtensionToWebview(value).ok;
}

/** Type guard of `checkWebviewToExtension`. */
export function isWebviewToExtensionMessage(value: unknown): value is WebviewToExtensionMessage {
  return checkWebviewToExtension(value).ok;
}
