/**
 * A structural guard of a federation state that crossed a boundary: the dashboard's `init` and
 * `federation` messages, and a state the webview saved with `setState` (possibly by an older
 * version). It checks the shape of everything the sidebar and the dashboard walk, not every number.
 */
import type { FederationState } from './federationState.js';
import { CLIENT_STATUSES, FEDERATION_KINDS, FEDERATION_PHASES, type ClientStatus, type FederationKind, type FederationPhase } from './phases.js';
import { fields, type Fields } from './read.js';

/** Longest id or label accepted (they end up as text in the UI or a log). */
export const MAX_STATE_STRING = 4096;

function text(value: unknown, nonEmpty = false): boolean {
  return typeof value === 'string' && value.length <= MAX_STATE_STRING && (!nonEmpty || value.length > 0);
}

function nullable(value: unknown, check: (v: unknown) => boolean): boolean {
  return value === null || check(value);
}

function isNumber(value: unknown): boolean {
  return typeof value === 'number' && Number.isFinite(value);
}

function arrayOf(value: unknown, check: (v: unknown) => boolean): boolean {
  return Array.isArray(value) && value.every(check);
}

function isPhase(value: unknown): value is FederationPhase {
  return FEDERATION_PHASES.includes(value as FederationPhase);
}

function isClient(value: unknown): boolean {
  const c = fields(value);
  return c !== null && text(c.id) && text(c.name) && typeof c.connected === 'boolean' && CLIENT_STATUSES.includes(c.status as ClientStatus);
}

function isRound(value: unknown): boolean {
  const r = fields(value);
  return r !== null && isNumber(r.round) && typeof r.aggregated === 'boolean' && isNumber(r.participants)
    && Array.isArray(r.clientLoss) && Array.isArray(r.modules) && Array.isArray(r.clientDiffs);
}

function isHeatmap(value: unknown): boolean {
  const h = fields(value);
  return h !== null && text(h.module) && isNumber(h.round) && isNumber(h.rows) && isNumber(h.cols) && Array.isArray(h.values);
}

function isEval(value: unknown): boolean {
  const e = fields(value);
  return e !== null && isNumber(e.round);
}

function isRun(value: unknown): boolean {
  const r = fields(value);
  return r !== null && text(r.key) && isPhase(r.phase) && isNumber(r.round) && nullable(r.totalRounds, isNumber)
    && arrayOf(r.sampled, text) && arrayOf(r.reported, text) && arrayOf(r.failed, text)
    && arrayOf(r.clients, isClient) && arrayOf(r.rounds, isRound) && arrayOf(r.evals, isEval) && arrayOf(r.heatmaps, isHeatmap)
    && (r.summary === null || fields(r.summary) !== null);
}

function isNote(value: unknown): boolean {
  const n = fields(value);
  return n !== null && isNumber(n.time) && (n.level === 'info' || n.level === 'warn' || n.level === 'error') && typeof n.text === 'string';
}

function isSimulation(value: unknown): boolean {
  const s = fields(value);
  return s !== null && arrayOf(s.methods, text) && typeof s.model === 'string' && typeof s.data === 'string';
}

function isReady(value: unknown): boolean {
  const r = fields(value);
  return r !== null && isNumber(r.round) && isNumber(r.minClients);
}

/** The fields of a state that are plain strings or null. */
const OPTIONAL_TEXT = ['url', 'outDir', 'method', 'clientId', 'lastError', 'reportJson', 'reportHtml'] as const;

/** True when `value` has the shape of a FederationState. */
export function isFederationState(value: unknown): value is FederationState {
  const s: Fields | null = fields(value);
  return s !== null && text(s.id, true) && text(s.label) && FEDERATION_KINDS.includes(s.kind as FederationKind)
    && typeof s.live === 'boolean' && isPhase(s.phase) && typeof s.manualRounds === 'boolean'
    && OPTIONAL_TEXT.every((k) => nullable(s[k], (v) => typeof v === 'string'))
    && nullable(s.totalRounds, isNumber) && nullable(s.simulation, isSimulation) && nullable(s.ready, isReady)
    && arrayOf(s.runs, isRun) && arrayOf(s.notes, isNote) && isNumber(s.eventCount)
    && nullable(s.startedAt, isNumber) && nullable(s.updatedAt, isNumber);
}
