/**
 * What `FedEx: Start Round` does, decided from the federations' states alone (no vscode here; the
 * command in federationCommands.ts only carries it out):
 * - a live hosted federation with manual rounds: send `start` to its `fedex host --manual-rounds`
 *   process, and say which round that starts and when;
 * - a live hosted federation with automatic rounds: say where it is (rounds follow by themselves);
 * - none: offer to host one or to run one local round.
 */
import { activeRun, currentRound, roundsTotal, type FederationState } from '../state/federationState.js';

/** The decision. `message` is one sentence for the user, without the `FedEx: ` prefix. */
export type StartRoundAction =
  | { readonly kind: 'send'; readonly federationId: string; readonly line: 'start'; readonly round: number; readonly startsNow: boolean; readonly message: string }
  | { readonly kind: 'inform'; readonly federationId: string; readonly message: string }
  | { readonly kind: 'offer' };

/** Phases in which a round runs (a requested round starts after it). */
const RUNNING: ReadonlySet<FederationState['phase']> = new Set(['training', 'uploaded', 'aggregating']);

/** Decides what Start Round does; `minClients` is the `fedex.minClients` setting (used until the host reports its own). */
export function startRoundAction(states: readonly FederationState[], minClients: number): StartRoundAction {
  const hosted = states.find((s) => s.kind === 'host' && s.live);
  if (hosted === undefined) return { kind: 'offer' };
  const joined = (activeRun(hosted)?.clients ?? []).filter((c) => c.connected).length;
  const round = currentRound(hosted);
  const totalRounds = roundsTotal(hosted);
  const total = totalRounds !== null ? `/${totalRounds}` : '';
  if (!hosted.manualRounds) {
    const state = hosted.phase === 'waiting' && round === 0 && joined < minClients
      ? `is waiting for clients (${joined} of ${minClients} joined): the first round starts once ${minClients} have joined (setting fedex.minClients)`
      : `is at round ${round}${total} (${hosted.phase}); rounds follow one another automatically (it was hosted with fedex.manualRounds off)`;
    return { kind: 'inform', federationId: hosted.id, message: `${hosted.label} ${state}.` };
  }
  const next = round + 1;
  if (totalRounds !== null && next > totalRounds) {
    return { kind: 'inform', federationId: hosted.id, message: `${hosted.label} has no round left to start (${totalRounds} rounds).` };
  }
  const needed = hosted.ready?.minClients ?? minClients;
  const when = hosted.phase === 'ready'
    ? 'starting now'
    : RUNNING.has(hosted.phase)
    ? `it starts when round ${round} has closed`
    : joined < needed
    ? `it starts once ${needed} clients have joined (${joined} so far)`
    : 'it starts as soon as the coordinator is ready';
  const startsNow = hosted.phase === 'ready';
  return { kind: 'send', federationId: hosted.id, line: 'start', round: next, startsNow, message: `round ${next}${total} of ${hosted.label}: ${when}.` };
}
