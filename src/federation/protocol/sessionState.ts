/**
 * The per-connection state machine, from the client's point of view (docs/protocol.md §State
 * machine). Both ends run the same pure function over every message in order (sent or received),
 * so a coordinator and a client agree on what may come next. Violations become `ProtocolError`s
 * with the codes the coordinator sends back (E_STATE, E_ROUND_CLOSED, E_ROUND_MISMATCH, E_DUPLICATE).
 */
import { PROTOCOL_MAJOR, PROTOCOL_MINOR } from './constants.js';
import { protocolError } from './errors.js';
import { descriptorFor, maySend, type Method, type ParamsOf } from './messages.js';

/** Where a connection stands. */
export type SessionPhase = 'connecting' | 'handshaking' | 'authenticating' | 'idle' | 'training' | 'uploaded' | 'done' | 'closed';

export interface SessionState {
  readonly phase: SessionPhase;
  /** Last round started for this client (0 before its first round_start). */
  readonly round: number;
  /** Highest round known to be closed. */
  readonly closedRound: number;
}

/** A fresh connection: the client must send hello first. */
export const INITIAL_SESSION: SessionState = { phase: 'connecting', round: 0, closedRound: 0 };

/** The part of a message the state machine reads. */
export interface SessionEvent {
  readonly method: Method;
  readonly params: unknown;
}

const JOINED: readonly SessionPhase[] = ['idle', 'training', 'uploaded'];

function requirePhase(state: SessionState, method: string, allowed: readonly SessionPhase[]): void {
  if (!allowed.includes(state.phase)) throw protocolError('E_STATE', `${method} is not allowed in session phase ${state.phase}`);
}

function roundOf(params: unknown): number {
  return (params as { round: number }).round;
}

/**
 * The state after `from` sent `event`. Throws `ProtocolError` when the message may not come now;
 * the state is then unchanged (the caller decides whether the error is fatal).
 */
export function advanceSession(state: SessionState, from: 'client' | 'coordinator', event: SessionEvent): SessionState {
  const { method, params } = event;
  const descriptor = descriptorFor(method);
  if (descriptor === undefined) throw protocolError('E_UNKNOWN_METHOD', `unknown method ${method}`);
  if (!maySend(descriptor, from)) throw protocolError('E_DIRECTION', `${method} may not be sent by a ${from}`);
  if (state.phase === 'closed') throw protocolError('E_STATE', `${method} after the session closed`);
  switch (method) {
    case 'hello':
      requirePhase(state, method, ['connecting']);
      return { ...state, phase: 'handshaking' };
    case 'welcome': {
      requirePhase(state, method, ['handshaking']);
      const current = (params as ParamsOf<'welcome'>).currentRound;
      return { phase: 'idle', round: 0, closedRound: Math.max(0, current - 1) };
    }
    case 'challenge':
      // 1.2: only after a hello, once; the client's answer returns the session to handshaking.
      requirePhase(state, method, ['handshaking']);
      return { ...state, phase: 'authenticating' };
    case 'challenge_response':
      requirePhase(state, method, ['authenticating']);
      return { ...state, phase: 'handshaking' };
    case 'reject':
      requirePhase(state, method, ['handshaking', 'authenticating']);
      return { ...state, phase: 'closed' };
    case 'ping':
    case 'pong':
      requirePhase(state, method, ['handshaking', 'authenticating', ...JOINED, 'done']);
      return state;
    case 'error':
      return (params as ParamsOf<'error'>).fatal ? { ...state, phase: 'closed' } : state;
    case 'leave':
      return { ...state, phase: 'closed' };
    case 'round_start': {
      requirePhase(state, method, JOINED);
      const r = roundOf(params);
      if (r <= state.closedRound || r <= state.round) {
        throw protocolError('E_ROUND_MISMATCH', `round_start for round ${r}, but round ${Math.max(state.round, state.closedRound)} was already started or closed`);
      }
      return { ...state, phase: 'training', round: r };
    }
    case 'client_update': {
      requirePhase(state, method, JOINED);
      const r = roundOf(params);
      if (r <= state.closedRound) throw protocolError('E_ROUND_CLOSED', `round ${r} is closed (update arrived after the round ended)`);
      if (r !== state.round) throw protocolError('E_ROUND_MISMATCH', `update for round ${r}, but this client's round is ${state.round}`);
      if (state.phase === 'uploaded') throw protocolError('E_DUPLICATE', `a second update for round ${r}`);
      requirePhase(state, method, ['training']);
      return { ...state, phase: 'uploaded' };
    }
    case 'client_failed': {
      // Like an update, it uses up the client's round: it sends nothing more for it.
      requirePhase(state, method, JOINED);
      const r = roundOf(params);
      if (r <= state.closedRound) throw protocolError('E_ROUND_CLOSED', `client_failed for round ${r}, which is closed`);
      if (r !== state.round) throw protocolError('E_ROUND_MISMATCH', `client_failed for round ${r}, but this client's round is ${state.round}`);
      if (state.phase === 'uploaded') throw protocolError('E_DUPLICATE', `client_failed for round ${r} after this client's update or failure for it`);
      requirePhase(state, method, ['training']);
      return { ...state, phase: 'uploaded' };
    }
    case 'update_ack':
    case 'update_rejected': {
      requirePhase(state, method, JOINED);
      const r = roundOf(params);
      if (r > state.round) throw protocolError('E_ROUND_MISMATCH', `${method} for round ${r}, but this client's round is ${state.round}`);
      return state;
    }
    case 'round_closed': {
      requirePhase(state, method, JOINED);
      const r = roundOf(params);
      if (r <= state.closedRound || r < state.round) {
        throw protocolError('E_ROUND_MISMATCH', `round_closed for round ${r}; round ${state.closedRound} was closed and ${state.round} started`);
      }
      return { phase: 'idle', round: state.round, closedRound: r };
    }
    case 'federation_done':
      requirePhase(state, method, JOINED);
      return { ...state, phase: 'done' };
    case 'model_request':
    case 'model_chunk':
      requirePhase(state, method, JOINED);
      return state;
  }
}

/**
 * Coordinator side of the version handshake: the negotiated minor version for a hello, or
 * `E_VERSION` when the majors differ.
 */
export function negotiateVersion(hello: Pick<ParamsOf<'hello'>, 'protocolMajor' | 'protocolMinor'>, ownMinor: number = PROTOCOL_MINOR): number {
  if (hello.protocolMajor !== PROTOCOL_MAJOR) {
    throw protocolError('E_VERSION', `client speaks protocol ${hello.protocolMajor}.${hello.protocolMinor}, this coordinator speaks ${PROTOCOL_MAJOR}.${ownMinor}`);
  }
  return Math.min(hello.protocolMinor, ownMinor);
}
