/**
 * The vocabulary of the federation state (federationState.ts), shared by the sidebar, the status
 * bar and the dashboard: how a federation is known, the phases of a federation and of its runs, the
 * statuses of a client. No vscode and no node here.
 */

/** How the extension knows a federation. */
export type FederationKind = 'simulation' | 'host' | 'join' | 'remote';
export const FEDERATION_KINDS: readonly FederationKind[] = ['simulation', 'host', 'join', 'remote'];

/**
 * Where a federation (`FederationState.phase`) or one of its runs (`RunState.phase`) is. One
 * vocabulary for the sidebar, the status bar and the dashboard:
 * - `idle`: a remote federation from the settings, not joined (federations only);
 * - `starting`: the process (or a simulated method) started, nothing listens yet;
 * - `connecting`, `reconnecting`, `disconnected`: a joined client's connection (federations only);
 * - `waiting`: for clients (a host before its first round) or for the coordinator (a joined client);
 * - `ready`: manual rounds: the clients are there, the next round waits for FedEx: Start Round;
 * - `training`: a round runs, the sampled clients train;
 * - `uploaded`: a joined client sent its update, the round has not closed;
 * - `aggregating`: every sampled client reported (or failed), the coordinator aggregates;
 * - `closed`: the last round closed (aggregated or not), the next has not started;
 * - `done`, `stopped`, `failed`: nothing runs any more.
 * A federation's phase follows its active run's, except for the connection phases and the end of
 * the process (a simulation is `done` after its last method, not after each).
 */
export type FederationPhase = 'idle' | 'starting' | 'connecting' | 'reconnecting' | 'disconnected' | 'waiting' | 'ready' | 'training' | 'uploaded' | 'aggregating' | 'closed' | 'done' | 'stopped' | 'failed';
// Exhaustive by construction: a phase added to the type and not here is a type error.
const PHASES: Record<FederationPhase, true> = {
  idle: true,
  starting: true,
  connecting: true,
  reconnecting: true,
  disconnected: true,
  waiting: true,
  ready: true,
  training: true,
  uploaded: true,
  aggregating: true,
  closed: true,
  done: true,
  stopped: true,
  failed: true,
};
/** Every phase, in the order of a federation's life. */
export const FEDERATION_PHASES: readonly FederationPhase[] = Object.keys(PHASES) as FederationPhase[];

/** Phases after which nothing runs any more. */
export const TERMINAL_PHASES: ReadonlySet<FederationPhase> = new Set(['done', 'stopped', 'failed']);
/** Phases of a joined client's connection (the federation's, not a run's). */
export const CONNECTION_PHASES: ReadonlySet<FederationPhase> = new Set(['connecting', 'reconnecting', 'disconnected']);

/** A client's status in a run: `uploaded` once its update was accepted (or, joined, sent). */
export type ClientStatus = 'joined' | 'training' | 'trained' | 'uploaded' | 'rejected' | 'failed' | 'left';
const STATUSES: Record<ClientStatus, true> = { joined: true, training: true, trained: true, uploaded: true, rejected: true, failed: true, left: true };
export const CLIENT_STATUSES: readonly ClientStatus[] = Object.keys(STATUSES) as ClientStatus[];
