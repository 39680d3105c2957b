/**
 * The coordinator's answer to a hello (docs/protocol.md §6.1–6.3), as pure functions: version,
 * token (constant time), base model, capacity; then the welcome it sends.
 */
import { PROTOCOL_MINOR } from '../protocol/constants.js';
import type { FloatWireDType } from '../protocol/dtypes.js';
import { isProtocolError, type ProtocolErrorCode } from '../protocol/errors.js';
import type { ParamsOf } from '../protocol/messages.js';
import { negotiateVersion } from '../protocol/session.js';
import { tokensEqual } from '../protocol/tokens.js';
import { welcomeConfig, type FederationPlan } from './config.js';

/** The verdict on a hello. */
export type Admission =
  | { readonly ok: true; readonly minor: number; readonly uplinkDtype: FloatWireDType }
  | { readonly ok: false; readonly code: ProtocolErrorCode; readonly message: string; readonly retryAfterMs?: number };

/** What the coordinator knows when a hello arrives. */
export interface AdmissionContext {
  readonly plan: FederationPlan;
  readonly token: string;
  /** Clients joined now, not counting an older connection of the same client. */
  readonly joined: number;
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
  if (hello.baseModelHash !== ctx.plan.baseModelHash) {
    const has = hello.baseModelHash === undefined ? 'no base model' : `base model ${hello.baseModelHash.slice(0, 12)}…`;
    return { ok: false, code: 'E_BASE_MISMATCH', message: `this federation uses base model ${ctx.plan.baseModelHash.slice(0, 12)}…, the client has ${has}, and this coordinator does not transfer models` };
  }
  if (ctx.joined >= ctx.plan.maxClients) return { ok: false, code: 'E_FULL', message: `the federation is full (${ctx.plan.maxClients} clients)`, retryAfterMs: 30_000 };
  const wanted = ctx.plan.uplinkDtype;
  const uplinkDtype: FloatWireDType = hello.capabilities.uplinkDtypes.includes(wanted) ? wanted : 'float32';
  return { ok: true, minor, uplinkDtype };
}

/** The welcome for an admitted client. */
export function welcomeParams(plan: FederationPlan, args: { sessionId: string; minor: number; currentRound: number; uplinkDtype: FloatWireDType }): ParamsOf<'welcome'> {
  return {
    sessionId: args.sessionId,
    protocolMinor: args.minor,
    currentRound: args.currentRound,
    config: welcomeConfig(plan, args.uplinkDtype),
    limits: {
      maxFrameBytes: plan.limits.maxFrameBytes,
      maxChunkBytes: 1 << 20,
      heartbeatMs: plan.limits.heartbeatMs,
      ...(plan.maxUpdateNorm !== undefined ? { maxUpdateNorm: plan.maxUpdateNorm } : {}),
    },
  };
}
