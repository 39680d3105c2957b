/**
 * The coordinator's answer to a hello (docs/protocol.md §6.1–6.3), as pure functions: version,
 * token (constant time), base model, capacity; then the welcome it sends. A client without the
 * federation's base model is admitted only to fetch it (§8), when the coordinator offers it and
 * the client declared `modelTransfer`.
 */
import { DEFAULT_LIMITS, PROTOCOL_MINOR } from '../protocol/constants.js';
import type { FloatWireDType } from '../protocol/dtypes.js';
import { isProtocolError, type ProtocolErrorCode } from '../protocol/errors.js';
import type { ParamsOf } from '../protocol/messages.js';
import { negotiateVersion } from '../protocol/sessionState.js';
import { tokensEqual } from '../protocol/tokens.js';
import { welcomeConfig, type FederationPlan } from './config.js';
import { DEFAULT_MAX_CHUNK_BYTES, type ModelServer } from './modelServer.js';

/** The verdict on a hello. */
export type Admission =
  | {
    readonly ok: true; readonly minor: number; readonly uplinkDtype: FloatWireDType;
    /** Admitted without the base model, to fetch it: never sampled for a round. */
    readonly fetching: boolean;
  }
  | { readonly ok: false; readonly code: ProtocolErrorCode; readonly message: string; readonly retryAfterMs?: number };

/** What the coordinator knows when a hello arrives. */
export interface AdmissionContext {
  readonly plan: FederationPlan;
  readonly token: string;
  /** Clients joined or fetching now, not counting an older connection of the same client. */
  readonly joined: number;
  /** Whether the coordinator offers the base model over model_request. */
  readonly offersModel: boolean;
}

/** Checks a hello: E_VERSION, E_AUTH, E_BASE_MISMATCH, E_FULL, in that order. */
export function admitHello(hello: ParamsOf<'hello'>, ctx: AdmissionContext): Admission {
  let minor: number;
  try {
    minor = negotiateVersion(hello, PROTOCOL_MINOR);
  } catch (err) {
    if (isProtocolError(err)) return { ok: false, code: err.code, message: err.message };
    throw err;
  }
  if (!tokensEqual(hello.token, ctx.token)) return { ok: false, code: 'E_AUTH', message: 'the join token is wrong; ask the coordinator\'s operator for the current token' };
  const fetching = hello.baseModelHash !== ctx.plan.baseModelHash;
  if (fetching && !(ctx.offersModel && hello.capabilities.modelTransfer)) {
    const has = hello.baseModelHash === undefined ? 'no base model' : `base model ${hello.baseModelHash.slice(0, 12)}…`;
    const why = ctx.offersModel ? 'the client does not fetch models (capabilities.modelTransfer is false)' : 'this coordinator does not transfer models';
    return { ok: false, code: 'E_BASE_MISMATCH', message: `this federation uses base model ${ctx.plan.baseModelHash.slice(0, 12)}…, the client has ${has}, and ${why}` };
  }
  if (ctx.joined >= ctx.plan.maxClients) return { ok: false, code: 'E_FULL', message: `the federation is full (${ctx.plan.maxClients} clients)`, retryAfterMs: 30_000 };
  const wanted = ctx.plan.uplinkDtype;
  const uplinkDtype: FloatWireDType = hello.capabilities.uplinkDtypes.includes(wanted) ? wanted : 'float32';
  return { ok: true, minor, uplinkDtype, fetching };
}

/** The welcome for an admitted client; `baseModel` is in it whenever the coordinator offers the model. */
export function welcomeParams(plan: FederationPlan, args: { sessionId: string; minor: number; currentRound: number; uplinkDtype: FloatWireDType }, models?: ModelServer): ParamsOf<'welcome'> {
  return {
    sessionId: args.sessionId,
    protocolMinor: args.minor,
    currentRound: args.currentRound,
    config: welcomeConfig(plan, args.uplinkDtype),
    limits: {
      maxFrameBytes: plan.limits.maxFrameBytes,
      maxChunkBytes: models?.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES,
      heartbeatMs: plan.limits.heartbeatMs,
      ...(plan.maxUpdateNorm !== undefined ? { maxUpdateNorm: plan.maxUpdateNorm } : {}),
      // Fields of protocol 1.1: only for clients that negotiated it.
      ...(args.minor >= 1 ? { maxHeaderBytes: DEFAULT_LIMITS.maxHeaderBytes, maxTensors: DEFAULT_LIMITS.maxTensors, maxProtocolErrors: plan.limits.maxProtocolErrors } : {}),
    },
    ...(models !== undefined ? { baseModel: models.manifest } : {}),
  };
}
