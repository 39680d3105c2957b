/**
 * The message catalogue: every wire message declared once as a typed descriptor (method, sender,
 * params schema, which tensors it carries), shared by coordinator and client. Types come from the
 * schemas (`ParamsOf<'hello'>`), guards from the same schemas (`descriptor.is(params)`), and the
 * field tables of docs/protocol.md are checked against them by a test.
 */
import { optional, required, s } from './schema.js';
import { checkFields, type Fields, type InferFields, type ObjectSchema } from './schema.js';

/** Who may send a message. */
export type Sender = 'client' | 'coordinator' | 'both';

/**
 * Which tensors a message carries: `none`; `adapter` (a full adapter, `lora_A`/`lora_B` per layout
 * module, float32/float16/bfloat16); `global` (the global adapter in float32 plus the residual
 * tensors its `baseUpdate` announces); `blob` (exactly one uint8 tensor named `chunk`).
 */
export type TensorPolicy = 'none' | 'adapter' | 'global' | 'blob';

/** A typed message descriptor. */
export interface MessageDescriptor<M extends string = string, F extends Fields = Fields> {
  readonly method: M;
  readonly sender: Sender;
  readonly tensors: TensorPolicy;
  readonly params: ObjectSchema<F>;
  readonly doc: string;
  /** Cross-field rules the schema cannot say; returns a message or `undefined`. */
  refine?(params: InferFields<F>): string | undefined;
  /** Structural type guard for this message's params. */
  is(params: unknown): params is InferFields<F>;
}

function defineMessage<const M extends string, F extends Fields>(spec: {
  method: M;
  sender: Sender;
  tensors: TensorPolicy;
  doc: string;
  fields: F;
  refine?: (params: InferFields<F>) => string | undefined;
}): MessageDescriptor<M, F> {
  const params = s.object(spec.fields);
  const refine = spec.refine;
  return {
    method: spec.method,
    sender: spec.sender,
    tensors: spec.tensors,
    params,
    doc: spec.doc,
    ...(refine ? { refine } : {}),
    is(value: unknown): value is InferFields<F> {
      return checkFields(spec.fields, value, 'params') === undefined && (refine === undefined || refine(value as InferFields<F>) === undefined);
    },
  };
}

// Shared field schemas.
const round = s.integer(1, 1_000_000);
const revision = s.integer(0, 1_000_000);
const errorCode = s.string(3, 64, 'code');
const humanText = s.text(0, 1024);
const hash = s.string(64, 64, 'hex64');
const modulePath = s.string(1, 256, 'module');
const dtype = s.enum('float32', 'float16', 'bfloat16');
const nonNegative = s.number({ min: 0 });
const epochMs = s.integer(0);
const minorVersion = s.integer(0, 65_535);
const id = s.string(1, 64, 'id');
const loraRank = s.integer(1, 4096);
const uint32 = s.integer(0, 0xffffffff);
const frameBytes = s.integer(4096);
/** 32 bytes in base64url (a key, a nonce). */
const base64url32 = s.string(43, 43, 'base64url');

const residualModule = s.object({
  module: required(modulePath, 'Module whose base weight receives the residual.'),
  form: required(s.enum('factored', 'dense'), 'factored: tensors `<module>.residual_P` and `.residual_Q`; dense: `<module>.residual`.'),
  innerDim: required(s.integer(0, 1_048_576), 'Factored: inner dimension k of P (out × k) and Q (k × in), ≥ 1. Dense: 0.'),
  scale: required(s.number(), 'Scale s applied by the receiver: W0 ← W0 + s·P·Q (or + s·D).'),
});
const baseUpdate = s.object({
  fromRevision: required(revision, 'Base revision this update applies to (0 = the pristine base named by its hash).'),
  modules: required(s.array(residualModule, 0, 100_000), 'One entry per module whose base weight changes.'),
});

function residualsAreConsistent(p: { baseRevision: number; baseUpdate?: { fromRevision: number; modules: readonly { module: string; form: string; innerDim: number }[] } }): string | undefined {
  const u = p.baseUpdate;
  if (u === undefined) return undefined;
  if (u.fromRevision >= p.baseRevision) return `params.baseUpdate.fromRevision ${u.fromRevision} must be < baseRevision ${p.baseRevision}`;
  const seen = new Set<string>();
  for (const m of u.modules) {
    if (seen.has(m.module)) return `params.baseUpdate.modules: module ${m.module} appears twice`;
    seen.add(m.module);
    if (m.form === 'factored' && m.innerDim < 1) return `params.baseUpdate.modules: factored module ${m.module} needs innerDim ≥ 1`;
    if (m.form === 'dense' && m.innerDim !== 0) return `params.baseUpdate.modules: dense module ${m.module} must have innerDim 0`;
  }
  return undefined;
}

export const Hello = defineMessage({
  method: 'hello',
  sender: 'client',
  tensors: 'none',
  doc: 'First message of a connection: who the client is and what it can do.',
  fields: {
    protocolMajor: required(s.integer(1, 65_535), "Protocol major version the client speaks; must equal the coordinator's."),
    protocolMinor: required(minorVersion, 'Highest minor version the client speaks.'),
    token: optional(s.string(1, 512, 'token'), "Shared join token given by the coordinator's operator; absent when `identity` is given (1.2)."),
    clientName: required(s.text(1, 64), 'Display name, plain text (never a path or HTML).'),
    clientId: optional(id, 'Stable random id kept across reconnects, to recognise the same client.'),
    resumeSessionId: optional(id, 'Session id from an earlier welcome, when reconnecting.'),
    device: required(s.string(1, 64, 'device'), 'Where the client trains: cpu, cuda, cuda:1, webgpu, …'),
    baseModelHash: optional(hash, 'Content hash of the base model the client already holds; absent if none.'),
    baseRevision: optional(revision, 'Base revision the client holds (0 = pristine); absent means 0.'),
    rank: optional(loraRank, 'The LoRA rank the client trains at (1.3): one of welcome.config.clientRanks, at most config.rank; absent: config.rank.'),
    identity: optional(s.object({
      scheme: required(s.enum('ed25519'), 'Signature scheme of the key.'),
      publicKey: required(base64url32, "The client's public key: its 32 raw Ed25519 bytes."),
    }), 'Per-client identity (1.2): the key the coordinator enrolled for clientId; the client proves it holds it by answering `challenge`.'),
    capabilities: required(s.object({
      uplinkDtypes: required(s.array(dtype, 1, 3), 'Dtypes the client can send adapters in; float32 must be listed.'),
      factoredResidual: required(s.boolean(), 'Whether the client applies factored (P, Q) residuals; otherwise it gets dense ones.'),
      modelTransfer: required(s.boolean(), 'Whether the client can fetch the base model with model_request.'),
      maxFrameBytes: required(frameBytes, 'Largest frame the client accepts.'),
    }), 'What the client supports.'),
  },
  refine: (p) => {
    if (!p.capabilities.uplinkDtypes.includes('float32')) return 'params.capabilities.uplinkDtypes: must include float32';
    if ((p.token === undefined) === (p.identity === undefined)) return 'params: exactly one of token and identity must be given';
    if (p.identity !== undefined && p.clientId === undefined) return 'params.clientId: required with identity';
    return undefined;
  },
});

export const Challenge = defineMessage({
  method: 'challenge',
  sender: 'coordinator',
  tensors: 'none',
  doc: 'Answers a hello with `identity` (1.2): a fresh nonce for the client to sign.',
  fields: {
    nonce: required(base64url32, '32 random bytes, never sent twice.'),
    issuedAt: required(epochMs, "The coordinator's clock when it sent the challenge (ms since the epoch)."),
  },
});

export const ChallengeResponse = defineMessage({
  method: 'challenge_response',
  sender: 'client',
  tensors: 'none',
  doc: "The client's Ed25519 signature of the challenge (1.2, §7.2).",
  fields: {
    signature: required(s.string(86, 86, 'base64url'), 'The 64-byte Ed25519 signature of the bytes in §7.2.'),
    signedAt: required(epochMs, "The client's clock when it signed (ms since the epoch); signed too."),
  },
});

const layoutItem = s.object({
  module: required(modulePath, 'PEFT module path (`transformer.h.0.attn.c_attn`).'),
  in: required(s.integer(1, 1 << 24), 'Input features of the linear.'),
  out: required(s.integer(1, 1 << 24), 'Output features of the linear.'),
  rank: required(loraRank, 'LoRA rank r of this module.'),
  fanInFanOut: required(s.boolean(), 'True when the base stores W0 as in × out (GPT-2 Conv1D).'),
});

export const Welcome = defineMessage({
  method: 'welcome',
  sender: 'coordinator',
  tensors: 'none',
  doc: 'Accepts a hello: the session, the federation config and the adapter layout.',
  fields: {
    sessionId: required(id, "Identifies this client's session; send it back as resumeSessionId when reconnecting."),
    protocolMinor: required(minorVersion, 'Negotiated minor version: min(client, coordinator).'),
    currentRound: required(s.integer(0, 1_000_000), 'Last round started (0 before the first).'),
    config: required(s.object({
      method: required(s.enum('fedex', 'fedit', 'ffa', 'flora', 'fedsb'), 'Aggregation strategy (flora, fedsb: 1.3).'),
      rounds: required(s.integer(1, 1_000_000), 'Number of rounds.'),
      localSteps: optional(s.integer(1, 100_000_000), 'Optimizer steps per round; absent when localEpochs is given.'),
      localEpochs: optional(s.number({ min: 0, exclusiveMin: true, max: 10_000 }), 'Passes over the local data per round; absent when localSteps is given.'),
      batchSize: required(s.integer(1, 65_536), 'Examples per step.'),
      rank: required(loraRank, 'Default LoRA rank r (per-module ranks are in layout).'),
      alpha: required(s.number({ min: 0, exclusiveMin: true }), 'lora_alpha; scaling s = alpha / r (alpha / √r with rsLora).'),
      rsLora: required(s.boolean(), 'Use rank-stabilised scaling.'),
      targetModules: required(s.array(s.string(1, 128, 'module'), 1, 1024), 'PEFT target_modules names (e.g. c_attn, q_proj).'),
      lr: required(s.number({ min: 0, exclusiveMin: true, max: 10 }), 'Learning rate.'),
      seed: required(uint32, 'Seed of the shared adapter init (FFA keeps A at this init).'),
      weighting: required(s.enum('uniform', 'examples'), 'Client weights w_i: uniform, or by number of examples.'),
      resetOptimizer: required(s.boolean(), 'Reset optimizer state at the start of every round.'),
      uplinkDtype: required(dtype, 'Dtype the client must use for client_update tensors.'),
      baseModelHash: required(hash, 'Content hash of the pristine base model.'),
      layout: required(s.array(layoutItem, 1, 100_000), 'Adapted modules in wire order; fixes every adapter tensor name and shape.'),
      clientRanks: optional(s.array(loraRank, 1, 64), 'Ranks below config.rank that clients may train at (1.3, heterogeneous ranks; §5.6); absent: every client trains at config.rank.'),
    }), 'Federation settings, fixed for the whole federation.'),
    rank: optional(loraRank, 'The rank this client trains at (1.3): its hello.rank, sent when it asked for one; a module of lower rank in layout keeps its own.'),
    limits: required(s.object({
      maxFrameBytes: required(frameBytes, 'Largest frame the coordinator accepts.'),
      maxChunkBytes: required(s.integer(1), 'Largest length a model_request may ask for.'),
      heartbeatMs: required(s.integer(100, 3_600_000), 'Send something (ping if idle) at least this often.'),
      maxUpdateNorm: optional(s.number({ min: 0, exclusiveMin: true }), 'Bound on the L2 norm of an update, if the coordinator enforces one.'),
      maxHeaderBytes: optional(s.integer(1), 'Protocol 1.1: largest JSON header (H) the coordinator accepts.'),
      maxTensors: optional(s.integer(1), 'Protocol 1.1: most tensor table entries the coordinator accepts in one frame.'),
      maxProtocolErrors: optional(s.integer(1), 'Protocol 1.1: non-fatal protocol errors tolerated per connection; the next one is fatal.'),
    }), 'Limits the coordinator enforces.'),
    baseModel: optional(s.object({
      hash: required(hash, 'Content hash of the base model (see §Base model); equals config.baseModelHash.'),
      files: required(s.array(s.object({
        name: required(s.string(1, 128, 'filename'), 'Advisory name (e.g. model.safetensors); receivers never use it as a path.'),
        bytes: required(s.integer(0), 'File size in bytes.'),
        sha256: required(hash, 'SHA-256 of the file contents.'),
      }), 1, 1024), 'Files of the base model, in hash order.'),
    }), 'Present when the coordinator offers the base model over model_request.'),
  },
  refine: (p) => {
    const c = p.config;
    if ((c.localSteps === undefined) === (c.localEpochs === undefined)) return 'params.config: exactly one of localSteps and localEpochs must be given';
    const names = new Set(c.layout.map((m) => m.module));
    if (names.size !== c.layout.length) return 'params.config.layout: a module appears twice';
    if (p.baseModel !== undefined && p.baseModel.hash !== c.baseModelHash) return 'params.baseModel.hash differs from config.baseModelHash';
    if (c.clientRanks !== undefined && c.clientRanks.some((r) => r > c.rank)) return `params.config.clientRanks: every rank must be at most config.rank ${c.rank}`;
    if (p.rank !== undefined && p.rank > c.rank) return `params.rank ${p.rank} is above config.rank ${c.rank}`;
    return undefined;
  },
});

export const Reject = defineMessage({
  method: 'reject',
  sender: 'coordinator',
  tensors: 'none',
  doc: 'Refuses a hello; the coordinator closes the connection after it.',
  fields: {
    code: required(errorCode, 'Stable error code (E_AUTH, E_VERSION, E_FULL, E_BASE_MISMATCH, …).'),
    message: required(humanText, 'Human-readable reason.'),
    retryAfterMs: optional(s.integer(0), 'When retrying may succeed (e.g. E_FULL), after this many milliseconds.'),
  },
});

export const RoundStart = defineMessage({
  method: 'round_start',
  sender: 'coordinator',
  tensors: 'global',
  doc: 'Starts a round for this client: the global adapter and the base update to apply first.',
  fields: {
    round: required(round, 'Round number, from 1.'),
    deadline: required(epochMs, 'Coordinator clock: uploads arriving after this time (ms since the Unix epoch, UTC) are refused.'),
    timeLimitMs: required(s.integer(0), 'Time from sending this message to the deadline; clients budget with it (immune to clock skew).'),
    baseRevision: required(revision, 'Base revision the client holds after applying baseUpdate (the coordinator bumps it whenever the base changes).'),
    baseUpdate: optional(baseUpdate, 'Residual to apply to the base first; absent when the base is unchanged for this client.'),
  },
  refine: residualsAreConsistent,
});

export const ClientUpdate = defineMessage({
  method: 'client_update',
  sender: 'client',
  tensors: 'adapter',
  doc: "The client's trained adapter for a round.",
  fields: {
    round: required(round, 'Round this update belongs to.'),
    examples: required(s.integer(0), 'Training examples seen this round (used by examples weighting).'),
    trainLoss: required(s.number(), 'Mean training loss over the round.'),
    steps: optional(s.integer(0), 'Optimizer steps taken.'),
    durationMs: optional(s.integer(0), 'Wall time of local training.'),
    metrics: optional(s.record(s.number(), 64), 'Other scalar metrics (eval loss, accuracy, …).'),
  },
});

export const ClientFailed = defineMessage({
  method: 'client_failed',
  sender: 'client',
  tensors: 'none',
  doc: "Protocol 1.1: the client's training for a round failed; it sends no update for that round.",
  fields: {
    round: required(round, 'Round the client was training for.'),
    reason: required(humanText, 'What went wrong, for the operator (plain text).'),
  },
});

export const UpdateAck = defineMessage({
  method: 'update_ack',
  sender: 'coordinator',
  tensors: 'none',
  doc: 'The update was validated and counts for the round.',
  fields: { round: required(round, 'Round of the accepted update.') },
});

export const UpdateRejected = defineMessage({
  method: 'update_rejected',
  sender: 'coordinator',
  tensors: 'none',
  doc: 'The update does not count (round closed, shape mismatch, non-finite, norm bound, …).',
  fields: {
    round: required(round, 'Round the rejected update named.'),
    code: required(errorCode, 'Stable error code (E_ROUND_CLOSED, E_TENSOR_SHAPE, E_NON_FINITE, …).'),
    reason: required(humanText, 'Human-readable reason.'),
  },
});

export const RoundClosed = defineMessage({
  method: 'round_closed',
  sender: 'coordinator',
  tensors: 'none',
  doc: 'A round ended (every sampled client accounted for, or the deadline); its summary. Sent to every joined client.',
  fields: {
    round: required(round, 'Round that closed.'),
    participants: required(s.integer(0), 'Updates aggregated.'),
    dropped: required(s.integer(0), 'Sampled clients that delivered no accepted update (failed, rejected, left, disconnected or late).'),
    durationMs: required(s.integer(0), 'From round_start to close.'),
    baseRevision: required(revision, 'Base revision after this round.'),
    aggregated: optional(s.boolean(), 'Protocol 1.1: whether the round aggregated (false: the global model is unchanged). Sent when the negotiated minor is ≥ 1.'),
    loss: optional(s.object({
      mean: required(s.number(), 'Weighted mean train loss of the participants.'),
      min: required(s.number(), 'Smallest participant train loss.'),
      max: required(s.number(), 'Largest participant train loss.'),
    }), 'Train losses; absent when no update was aggregated.'),
    modules: required(s.array(s.object({
      module: required(modulePath, 'Module path.'),
      deviation: required(nonNegative, '‖s·ΔR‖_F: what plain averaging loses.'),
      relativeDeviation: required(nonNegative, '‖s·ΔR‖_F / ‖s·Σ w_i B_i A_i‖_F (0 when the ideal update is 0).'),
      residualNorm: required(nonNegative, '‖ΔR‖_F, unscaled.'),
    }), 0, 100_000), 'Per-module deviation metrics (empty when nothing was aggregated).'),
  },
});

export const Ping = defineMessage({
  method: 'ping',
  sender: 'both',
  tensors: 'none',
  doc: 'Heartbeat; the peer answers pong with the same nonce.',
  fields: {
    nonce: required(uint32, 'Echoed in pong.'),
    sentAt: required(epochMs, 'Sender clock, ms since the Unix epoch (for round-trip time).'),
  },
});

export const Pong = defineMessage({
  method: 'pong',
  sender: 'both',
  tensors: 'none',
  doc: 'Answer to ping.',
  fields: { nonce: required(uint32, "The ping's nonce.") },
});

export const Leave = defineMessage({
  method: 'leave',
  sender: 'client',
  tensors: 'none',
  doc: 'The client leaves for good; the coordinator stops counting on it.',
  fields: { reason: optional(s.text(0, 256), 'Why, for the operator.') },
});

export const FederationDone = defineMessage({
  method: 'federation_done',
  sender: 'coordinator',
  tensors: 'global',
  doc: 'The federation is over: the final global adapter and the residual that brings the base to its final revision.',
  fields: {
    roundsCompleted: required(s.integer(0, 1_000_000), 'Rounds that closed with an aggregate.'),
    reason: required(s.enum('completed', 'stopped', 'failed'), 'Why it ended.'),
    message: optional(humanText, 'Details for people.'),
    baseRevision: required(revision, 'Final base revision.'),
    baseUpdate: optional(baseUpdate, 'Residual to reach the final base; absent when the client already holds it.'),
  },
  refine: residualsAreConsistent,
});

export const ErrorMessage = defineMessage({
  method: 'error',
  sender: 'both',
  tensors: 'none',
  doc: 'A protocol error report; fatal ones are followed by closing the connection.',
  fields: {
    code: required(errorCode, 'Stable error code.'),
    message: required(humanText, 'Human-readable description.'),
    fatal: required(s.boolean(), 'Whether the sender closes the connection.'),
    round: optional(round, 'Round concerned, if any.'),
  },
});

/** Where a byte range of the offered base model starts: a model_request asks for it, its model_chunk says it. */
const modelByteRangeStart = {
  hash: required(hash, 'Base model content hash (must equal baseModel.hash).'),
  file: required(s.integer(0, 1023), 'Index into welcome.baseModel.files.'),
  offset: required(s.integer(0), 'First byte of the range in the file.'),
};

export const ModelRequest = defineMessage({
  method: 'model_request',
  sender: 'client',
  tensors: 'none',
  doc: 'Asks for a byte range of one base model file (when welcome offered baseModel).',
  fields: {
    ...modelByteRangeStart,
    length: required(s.integer(1, 0x7fffffff), 'Bytes wanted; at most limits.maxChunkBytes.'),
  },
});

export const ModelChunk = defineMessage({
  method: 'model_chunk',
  sender: 'coordinator',
  tensors: 'blob',
  doc: 'A byte range of a base model file, as one uint8 tensor named `chunk`.',
  fields: modelByteRangeStart,
});

/** Every message, in documentation order. */
export const MESSAGES = [
  Hello,
  Welcome,
  Reject,
  RoundStart,
  ClientUpdate,
  ClientFailed,
  UpdateAck,
  UpdateRejected,
  RoundClosed,
  Ping,
  Pong,
  Leave,
  FederationDone,
  ErrorMessage,
  ModelRequest,
  ModelChunk,
  Challenge,
  ChallengeResponse,
] as const;

/** The descriptor type of the catalogue. */
export type AnyDescriptor = (typeof MESSAGES)[number];
/** Every method name: `'hello' | 'welcome' | …`. */
export type Method = AnyDescriptor['method'];
/** The descriptor of one method. */
export type DescriptorOf<M extends Method> = Extract<AnyDescriptor, { method: M }>;
/** The params type of one method, derived from its schema. */
export type ParamsOf<M extends Method> = InferFields<DescriptorOf<M>['params']['fields']>;

const BY_METHOD = new Map<string, AnyDescriptor>(MESSAGES.map((d) => [d.method, d]));

/** The descriptor for a method name from the wire, or `undefined` for an unknown one. */
export function descriptorFor(method: string): AnyDescriptor | undefined {
  return BY_METHOD.get(method);
}

/** True when `sender` may send `descriptor`'s message. */
export function maySend(descriptor: AnyDescriptor, sender: 'client' | 'coordinator'): boolean {
  return descriptor.sender === 'both' || descriptor.sender === sender;
}
