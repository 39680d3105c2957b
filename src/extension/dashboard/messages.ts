/**
 * The typed messages between the extension (the dashboard panel controller) and the dashboard
 * webview, declared once for both ends (like GitLens' IPC): one map per direction from message type
 * to payload, a discriminated union built from it, and structural guards that both ends run on
 * everything they receive. No `vscode` import: the webview bundle imports this file too.
 *
 * Handshake: the webview posts `ready` (with its protocol version) once its script has loaded; the
 * extension answers with `init`: every federation's state as the extension folded it
 * (src/extension/state/federationState.ts; the charts' figures included), not its event history.
 * Then the extension forwards each federation's new `events`, which the webview folds with the same
 * `reduceFederation`, and pushes a `federation`'s whole state when it changed without an event (a
 * new federation, its process ended). `select` focuses a federation. The webview asks with
 * `request` (a method with typed params, like vscode-jsonrpc) and the extension answers each with a
 * `reply` carrying its id and a typed result or an error with a stable code; `log` is one-way.
 *
 * Events are lines of the `fedex … --events -` stream (src/federation/events/events.ts): a
 * coordinator, simulation or join event, `{type, time, method?, ...payload}`. They are forwarded
 * unchanged; the guards check the envelope only (`type`, `time`), the fold reads payload fields
 * defensively (unknown event types are ignored, non-finite numbers arrive as null).
 */
import type { CliEvent } from '../../federation/events/events.js';
import type { FederationState } from '../state/federationState.js';
import { isFederationState, MAX_STATE_STRING } from '../state/stateGuard.js';

/** Version of this message set; travels with `ready` and `init`. */
export const DASHBOARD_PROTOCOL_VERSION = 2;

/** Stable error codes of message validation. */
export type DashboardMessageErrorCode = 'E_NOT_OBJECT' | 'E_UNKNOWN_TYPE' | 'E_UNKNOWN_METHOD' | 'E_BAD_FIELD' | 'E_VERSION';

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

/** A report's format: the CLI's report.html, or JSON (report.json, or the federation's state and events). */
export type ReportFormat = 'json' | 'html';
const REPORT_FORMATS: readonly ReportFormat[] = ['json', 'html'];

/** What the webview may ask the extension: per method, its params and the result of its reply. */
export interface DashboardRequestMap {
  /** Save a federation's report where the user chooses; `path` is null when the user cancelled. */
  exportReport: {
    readonly params: { readonly federationId: string; readonly format: ReportFormat };
    readonly result: { readonly path: string | null };
  };
}

/** A request method. */
export type DashboardRequestMethod = keyof DashboardRequestMap;

/** Stable codes of a request that failed (`E_INTERNAL`: a bug of the extension, logged there). */
export type DashboardRequestErrorCode = 'E_UNKNOWN_FEDERATION' | 'E_NO_REPORT' | 'E_WRITE_FAILED' | 'E_INTERNAL';
const REQUEST_ERROR_CODES: readonly DashboardRequestErrorCode[] = ['E_UNKNOWN_FEDERATION', 'E_NO_REPORT', 'E_WRITE_FAILED', 'E_INTERNAL'];

/** Why a request failed: a stable code and one sentence for the user. */
export interface DashboardRequestError {
  readonly code: DashboardRequestErrorCode;
  readonly message: string;
}

/** A request (`id`: chosen by the webview, unique among its pending requests). */
export type DashboardRequest = {
  [M in DashboardRequestMethod]: { readonly id: number; readonly method: M; readonly params: DashboardRequestMap[M]['params'] };
}[DashboardRequestMethod];

/** The reply to request `id`: its result, or an error. */
export type DashboardReply = {
  [M in DashboardRequestMethod]: { readonly id: number; readonly method: M } & ({ readonly result: DashboardRequestMap[M]['result'] } | { readonly error: DashboardRequestError });
}[DashboardRequestMethod];

/** Payloads of the messages the extension posts to the webview. */
export interface ExtensionToWebviewMap {
  /** Answer to `ready`: every federation the dashboard shows, as folded so far. */
  init: {
    readonly version: number;
    readonly federations: readonly FederationState[];
    /** Federation to focus, or null to keep the webview's restored choice (or the first). */
    readonly selected: string | null;
    readonly theme: DashboardThemeKind;
  };
  /** New events of one federation, in stream order (fold them with `reduceFederation`). */
  events: { readonly federationId: string; readonly events: readonly DashboardEvent[] };
  /** A federation's whole state, when it changed without an event (new, restarted, its process ended). */
  federation: { readonly federation: FederationState };
  /** Focus a federation (e.g. from the sidebar). */
  select: { readonly federationId: string };
  /** The answer to a `request`. */
  reply: DashboardReply;
}

/** Payloads of the messages the webview posts to the extension. */
export interface WebviewToExtensionMap {
  /** The script is loaded and listening; the extension answers with `init`. */
  ready: { readonly version: number };
  /** A request; the extension answers with a `reply` of the same id. */
  request: DashboardRequest;
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

/** Longest id, label or log line accepted (they end up as text in the UI or a log); the same bound as a state's. */
export const MAX_MESSAGE_STRING = MAX_STATE_STRING;

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

function federationsProblem(value: unknown): string | null {
  if (!Array.isArray(value)) return 'federations is not an array';
  const bad = value.findIndex((f) => !isFederationState(f));
  return bad < 0 ? null : `federations[${bad}] is not a federation state`;
}

/** Params and result checks per request method. */
const REQUESTS: { readonly [M in DashboardRequestMethod]: { readonly params: Check; readonly result: Check } } = {
  exportReport: {
    params: (p) => (!nonEmptyStr(p.federationId) ? 'params.federationId is not a non-empty string' : REPORT_FORMATS.includes(p.format as ReportFormat) ? null : 'params.format is not json or html'),
    result: (r) => (r.path === null || nonEmptyStr(r.path) ? null : 'result.path is neither null nor a path'),
  },
};

function isRequestMethod(value: unknown): value is DashboardRequestMethod {
  return typeof value === 'string' && Object.hasOwn(REQUESTS, value);
}

function idProblem(value: unknown): string | null {
  return Number.isSafeInteger(value) && (value as number) > 0 ? null : 'id is not a positive integer';
}

function requestProblem(m: Fields): string | null {
  const id = idProblem(m.id);
  if (id !== null) return id;
  if (!isRecord(m.params)) return 'params is not an object';
  return REQUESTS[m.method as DashboardRequestMethod].params(m.params);
}

function replyProblem(m: Fields): string | null {
  const id = idProblem(m.id);
  if (id !== null) return id;
  if (('result' in m) === ('error' in m)) return 'a reply carries either a result or an error';
  if ('error' in m) {
    const e = m.error;
    return isRecord(e) && REQUEST_ERROR_CODES.includes(e.code as DashboardRequestErrorCode) && str(e.message) ? null : `error is not {code: ${REQUEST_ERROR_CODES.join(' | ')}, message}`;
  }
  return isRecord(m.result) ? REQUESTS[m.method as DashboardRequestMethod].result(m.result) : 'result is not an object';
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
    if (m.selected !== null && !nonEmptyStr(m.selected)) return 'selected is neither null nor an id';
    if (!THEME_KINDS.includes(m.theme as DashboardThemeKind)) return `theme is not one of ${THEME_KINDS.join(', ')}`;
    return null;
  },
  events: (m) => (nonEmptyStr(m.federationId) ? eventsProblem(m.events, 'events') : 'federationId is not a non-empty string'),
  federation: (m) => (isFederationState(m.federation) ? null : 'federation is not a federation state'),
  select: (m) => (nonEmptyStr(m.federationId) ? null : 'federationId is not a non-empty string'),
  reply: replyProblem,
};

const WEBVIEW_TO_EXTENSION: { readonly [K in WebviewToExtensionType]: Check } = {
  ready: (m) => versionProblem(m.version),
  request: requestProblem,
  log: (m) => (!['info', 'warn', 'error'].includes(m.level as string) ? 'level is not info, warn or error' : str(m.message) ? null : 'message is not a string (≤ 4096 chars)'),
};

function check<T>(value: unknown, checks: Readonly<Record<string, Check>>, direction: string): MessageCheck<T> {
  if (!isRecord(value)) return { ok: false, code: 'E_NOT_OBJECT', reason: `${direction}: message is not an object` };
  const type = value.type;
  if (typeof type !== 'string' || !Object.hasOwn(checks, type)) {
    return { ok: false, code: 'E_UNKNOWN_TYPE', reason: `${direction}: unknown message type ${JSON.stringify(typeof type === 'string' ? type.slice(0, 40) : type ?? null)}` };
  }
  if ((type === 'request' || type === 'reply') && !isRequestMethod(value.method)) {
    return { ok: false, code: 'E_UNKNOWN_METHOD', reason: `${direction} ${type}: unknown method ${JSON.stringify(typeof value.method === 'string' ? value.method.slice(0, 40) : value.method ?? null)}` };
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
