/**
 * Every event type of the `--events` stream (src/federation/events/events.ts), for the tests that
 * check a run emits documented types only. Exhaustive by construction: a simulation or join event
 * added to its map without being listed here is a type error, and the coordinator's types are
 * events.ts's `COORDINATOR_EVENT_TYPES`, exhaustive there.
 */
import { COORDINATOR_EVENT_TYPES, type CliEventType, type JoinEventMap, type SimulationEventMap } from '../../src/federation/events/events.js';

const SIMULATION_TYPES: Record<keyof SimulationEventMap, true> = {
  simulation_started: true,
  method_started: true,
  client_progress: true,
  client_round_done: true,
  round_evaluated: true,
  method_done: true,
  simulation_done: true,
  error: true,
};
const JOIN_TYPES: Record<keyof JoinEventMap, true> = {
  join_connected: true,
  join_welcomed: true,
  join_reconnecting: true,
  join_disconnected: true,
  join_round_started: true,
  join_uploaded: true,
  join_update_acked: true,
  join_update_rejected: true,
  join_training_failed: true,
  join_round_closed: true,
  join_done: true,
  join_model: true,
  join_data: true,
};

/** Every event type of the stream: the coordinator's, the simulation's, the joining client's. */
export const CLI_EVENT_TYPES: readonly CliEventType[] = [
  ...COORDINATOR_EVENT_TYPES,
  ...Object.keys(SIMULATION_TYPES),
  ...Object.keys(JOIN_TYPES),
] as CliEventType[];
