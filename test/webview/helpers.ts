// Shared helpers of the dashboard tests: the recorded event stream (scripts/recordDashboardEvents.ts:
// a real Coordinator + FederationClient federation per method, synthetic trainer, 3 clients,
// 3 rounds, 2 GPT-2-shaped layers) and a state replayed from it.
import { readFileSync } from 'node:fs';
import type { DashboardEvent } from '../../src/extension/dashboard/messages.js';
import { createDashboardState, type DashboardState } from '../../webview/model.js';
import { applyMessage } from '../../webview/state.js';

/** Raw records of the fixture, as JSON objects (the test's independent view of the data). */
export type RawEvent = DashboardEvent & Record<string, unknown>;

export const FIXTURE = new URL('./fixtures/simulation.events.jsonl', import.meta.url);

/** The fixture's events, parsed. */
export function fixtureEvents(): RawEvent[] {
  return readFileSync(FIXTURE, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as RawEvent);
}

/** A dashboard state after `init` with the fixture as the history of federation `sim`. */
export function replayed(events: readonly DashboardEvent[] = fixtureEvents()): DashboardState {
  return applyMessage(createDashboardState(), {
    type: 'init', version: 1, federations: [{ id: 'sim', label: 'recorded', kind: 'simulation', live: false }],
    history: { sim: events }, selected: null, theme: 'dark',
  });
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
