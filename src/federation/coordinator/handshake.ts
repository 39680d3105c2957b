/**
 * The coordinator's answer to a hello (docs/protocol.md §6.1–6.3, §7.2), as pure functions: version,
 * credential (the shared token in constant time, or an enrolled key and its signed challenge), base
 * model, capacity; then the welcome it sends. A client without the
 * federation's base model is admitted only to fetch it (§8), when the coordinator offers it and
 * the client declared `modelTransfer`.
 */
import { DEFAULT_LIMITS, PROTOCOL_MINOR } from '../protocol/constants.js';
import type { FloatWireDType } from '../protocol/dtypes.js';
import { isProtocolError, type ProtocolErrorCode } from '../protocol/errors.js';
import type { ParamsOf } from '../protocol/messages.js';
import { negotiateVersion } from '../protocol/sessionState.js';
import { tokensEqual } from '../protocol/tokens.js';
import { MAX_CLOCK_SKEW_MS, verifyChallenge } from '../protocol/identity.js';
import type { KeyObject } from 'node:crypto';
import type { ClientKeys } from './enrollment.js';
import { welcomeConfig, type FederationPlan } from './config.js';
import { DEFAULT_MAX_CHUNK_BYTES, type ModelServer } from './modelServer.js';

/** The verdict on a hello. */
export type Admission =
  | {
    readonly ok: true;
    readonly minor: number;
    readonly uplinkDtype: FloatWireDType;
    /** The rank the client trains at when it asked for one (protocol 1.3; absent: the global rank). */
    readonly rank?: number;
    /** Admitted without the base model, to fetch it: never sampled for a round. */
    readonly fetching: boolean;
  }
  | Refusal;

/** A refused hello (or challenge response). */
export type Refusal = { readonly ok: false; readonly code: ProtocolErrorCode; readonly message: string; readonly retryAfterMs?: number };

/** How clients prove who they are: the shared token (trial mode), or enrolled keys (§7.2, 1.2). */
export type Authentication =
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'keys'; readonly keys: ClientKeys };

/** What the coordinator knows when a hello arrives. */
export interface AdmissionContext {
  readonly plan: FederationPlan;
  readonly auth: Authentication;
  /** Clients joined or fetching now, not counting an older connection of the same client. */
  readonly joined: number;
  /** Whether the coordinator offers the base model over model_request. */
  readonly offersModel: boolean;
}

/** The first half of the verdict: version and credential; a keyed client must still answer a challenge. */
export type Credential =
  | { readonly ok: true; readonly minor: number; readonly challenge: null }
  | { readonly ok: true; readonly minor: number; readonly challenge: { readonly key: KeyObject; readonly publicKey: string } }
  | Refusal;

/**
 * Checks a hello's version and credential: E_VERSION, then E_AUTH. With a token the check is done;
 * with enrolled keys the hello must name an enrolled, unrevoked client and its key, and the client
 * must then sign a challenge (`verifyResponse`).
 */
export function authenticateHello(hello: ParamsOf<'hello'>, auth: Authentication): Credential {
  let minor: number;
  try {
    minor = negotiateVersion(hello, PROTOCOL_MINOR);
  } catch (err) {
    if (isProtocolError(err)) return { ok: false, code: err.code, message: err.message };
    throw err;
  }
  if (auth.kind === 'token') {
    if (hello.identity !== undefined) return { ok: false, code: 'E_AUTH', message: 'this coordinator admits clients by its shared join token, not by key; ask its operator for the token' };
    if (!tokensEqual(hello.token, auth.token)) return { ok: false, code: 'E_AUTH', message: "the join token is wrong; ask the coordinator's operator for the current token" };
    return { ok: true, minor, challenge: null };
  }
  if (hello.identity === undefined || hello.clientId === undefined) {
    return { ok: false, code: 'E_AUTH', message: 'this coordinator admits enrolled clients only: make a key with fedex keygen, have the operator enroll its public key, and join with --identity' };
  }
  const found = auth.keys.lookup(hello.clientId);
  if (found.status === 'unknown') return { ok: false, code: 'E_AUTH', message: `client '${hello.clientId}' is not enrolled at this coordinator; send its operator your public key (.pub)` };
  if (found.status === 'revoked') return { ok: false, code: 'E_AUTH', message: `client '${hello.clientId}' was revoked on ${found.revokedAt}` };
  if (found.publicKey !== hello.identity.publicKey) return { ok: false, code: 'E_AUTH', message: `the key presented is not the one enrolled for client '${hello.clientId}'` };
  return { ok: true, minor, challenge: { key: found.key, publicKey: found.publicKey } };
}

/** Checks a challenge response: a fresh signature by the enrolled key, signed within the allowed clock skew. */
export function verifyResponse(hello: ParamsOf<'hello'>, nonce: string, key: KeyObject, response: ParamsOf<'challenge_response'>, now: number = Date.now()): Refusal | null {
  const skew = response.signedAt - now;
  if (Math.abs(skew) > MAX_CLOCK_SKEW_MS) {
    return { ok: false, code: 'E_AUTH',
      message: `the challenge was signed at a time ${Math.round(Math.abs(skew) / 1000)} s ${skew > 0 ? 'ahead of' : 'behind'} the coordinator's clock (at most ${MAX_CLOCK_SKEW_MS / 1000} s allowed); check the client's clock` };
  }
  const context = { nonce, clientId: hello.clientId ?? '', publicKey: hello.identity?.publicKey ?? '', baseModelHash: hello.baseModelHash ?? '', signedAt: response.signedAt };
  if (!verifyChallenge(key, context, response.signature)) return { ok: false, code: 'E_AUTH', message: `the challenge signature does not verify with the key enrolled for client '${hello.clientId ?? ''}'` };
  return null;
}

/**
 * What protocol 1.3 added, checked: a federation of method flora or fedsb needs a 1.3 client (older ones cannot
 * read the method), and a hello's `rank` must be the global rank or one of the plan's client ranks (E_RANK).
 */
function checkRank(hello: ParamsOf<'hello'>, minor: number, plan: FederationPlan): Refusal | null {
  if ((plan.method === 'flora' || plan.method === 'fedsb') && minor < 3) return { ok: false, code: 'E_VERSION', message: `this federation uses method ${plan.method}, which needs protocol 1.3; the client speaks 1.${hello.protocolMinor}` };
  const r = hello.rank;
  if (r === undefined || r === plan.lora.rank) return null;
  const allowed = [...(plan.clientRanks ?? []), plan.lora.rank];
  if (!allowed.includes(r)) {
    return { ok: false, code: 'E_RANK', message: `this federation trains at rank ${plan.lora.rank}${plan.clientRanks !== undefined ? ` and lets clients train at ${plan.clientRanks.join(', ')}` : ' only'}; the client asked for rank ${r}` };
  }
  return null;
}

/** Checks an authenticated hello against the federation: E_VERSION and E_RANK (1.3), E_BASE_MISMATCH, then E_FULL. */
export function admitAuthenticated(hello: ParamsOf<'hello'>, minor: number, ctx: Omit<AdmissionContext, 'auth'>): Admission {
  const rankRefusal = checkRank(hello, minor, ctx.plan);
  if (rankRefusal !== null) return rankRefusal;
  const fetching = hello.baseModelHash !== ctx.plan.baseModelHash;
  if (fetching && !(ctx.offersModel && hello.capabilities.modelTransfer)) {
    const has = hello.baseModelHash === undefined ? 'no base model' : `base model ${hello.baseModelHash.slice(0, 12)}…`;
    const why = ctx.offersModel ? 'the client does not fetch models (capabilities.modelTransfer is false)' : 'this coordinator does not transfer models';
    return { ok: false, code: 'E_BASE_MISMATCH', message: `this federation uses base model ${ctx.plan.baseModelHash.slice(0, 12)}…, the client has ${has}, and ${why}` };
  }
  if (ctx.joined >= ctx.plan.maxClients) return { ok: false, code: 'E_FULL', message: `the federation is full (${ctx.plan.maxClients} clients)`, retryAfterMs: 30_000 };
  const wanted = ctx.plan.uplinkDtype;
  const uplinkDtype: FloatWireDType = hello.capabilities.uplinkDtypes.includes(wanted) ? wanted : 'float32';
  return { ok: true, minor, uplinkDtype, fetching, ...(hello.rank !== undefined ? { rank: hello.rank } : {}) };
}

/** Checks a token hello completely: E_VERSION, E_AUTH, E_BASE_MISMATCH, E_FULL, in that order (keyed hellos need `authenticateHello` and a challenge). */
export function admitHello(hello: ParamsOf<'hello'>, ctx: AdmissionContext): Admission {
  const credential = authenticateHello(hello, ctx.auth);
  if (!credential.ok) return credential;
  if (credential.challenge !== null) throw new Error('admitHello: a keyed client must answer a challenge first (authenticateHello, verifyResponse)');
  return admitAuthenticated(hello, credential.minor, ctx);
}

/** The welcome for an admitted client; `baseModel` is in it whenever the coordinator offers the model. */
export function welcomeParams(plan: FederationPlan, args: { sessionId: string; minor: number; currentRound: number; uplinkDtype: FloatWireDType; rank?: number }, models?: ModelServer): ParamsOf<'welcome'> {
  return {
    sessionId: args.sessionId,
    protocolMinor: args.minor,
    currentRound: args.currentRound,
    config: welcomeConfig(plan, args.uplinkDtype, args.minor),
    // Protocol 1.3: the rank the client asked for (checkRank admitted it, so the minor is ≥ 3).
    ...(args.rank !== undefined ? { rank: args.rank } : {}),
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
