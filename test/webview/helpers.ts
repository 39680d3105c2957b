// Shared helpers of the dashboard tests: the recorded event stream (scripts/recordDashboardEvents.ts:
// a real Coordinator + FederationClient federation per method, synthetic trainer, 3 clients,
// 3 rounds, 2 GPT-2-shaped layers), folded as the extension folds it and handed to the dashboard
// with `init`, as the panel does.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { checkExtensionToWebview, DASHBOARD_PROTOCOL_VERSION, type DashboardEvent } from '../../src/extension/dashboard/messages.js';
import { initialFederation, reduceFederation, type FederationState } from '../../src/extension/state/federationState.js';
import { createDashboardState, type DashboardState } from '../../webview/model.js';
import { applyMessage } from '../../webview/state.js';

/** Raw records of the fixture, as JSON objects (the test's independent view of the data). */
export type RawEvent = DashboardEvent & Record<string, unknown>;

export const FIXTURE = new URL('./fixtures/simulation.events.jsonl', import.meta.url);

/** The fixture's events, parsed. */
export function fixtureEvents(): RawEvent[] {
  return readFileSync(FIXTURE, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as RawEvent);
}

/** The events folded by the extension's reducer into federation `sim` (a simulation whose process ended). */
export function folded(events: readonly DashboardEvent[] = fixtureEvents()): FederationState {
  return events.reduce(reduceFederation, initialFederation({ id: 'sim', label: 'recorded', kind: 'simulation', live: false }));
}

/** A dashboard state after an `init` that carries the folded fixture as federation `sim` (through JSON and the message guard, as postMessage). */
export function replayed(events: readonly DashboardEvent[] = fixtureEvents()): DashboardState {
  const posted: unknown = JSON.parse(JSON.stringify({ type: 'init', version: DASHBOARD_PROTOCOL_VERSION, federations: [folded(events)], selected: null, theme: 'dark' }));
  const checked = checkExtensionToWebview(posted);
  assert.ok(checked.ok, checked.ok ? '' : checked.reason);
  return applyMessage(createDashboardState(), checked.message);
}

/** Raw round_closed records of one method, by round. */
export function roundRecords(events: readonly RawEvent[], method: string): RawEvent[] {
  return events.filter((e) => e.type === 'round_closed' && e.method === method).sort((a, b) => (a.round as number) - (b.round as number));
}

/** Module records of a raw round_closed. */
export interface RawModule {
  module: string;
  relativeDeviation: number;
  residualNorm: number;
  globalDeltaANorm: number;
  globalDeltaBNorm: number;
  clientDeltaANorms: number[];
  clientDeltaBNorms: number[];
}

export function rawModules(record: RawEvent): RawModule[] {
  return record.modules as RawModule[];
}
