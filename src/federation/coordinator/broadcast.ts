/**
 * Frames that carry the global adapter (`round_start`, `federation_done`), encoded once per group of
 * clients that need the same bytes — the same base revision and the same residual capability — so
 * a broadcast to 100 clients encodes one or two frames, not 100.
 */
import type { LoraFactors } from '../../core/lora.js';
import type { ProductBackend } from '../../core/product.js';
import { encodeMessage } from '../protocol/codec.js';
import type { AnyOutgoingMessage, NamedTensor } from '../protocol/envelope.js';
import type { ParamsOf } from '../protocol/messages.js';
import { adapterFormOf, ROLE_LORA_A, ROLE_LORA_B, parseTensorName, type AdapterForm } from '../protocol/adapterTensors.js';
import { adapterToTensors, sbAdapterToTensors } from '../shared/adapterWire.js';
import type { FederationPlan } from './config.js';
import type { ResidualHistory } from './residuals.js';

/** An encoded frame with the params it carries (for the session state machine) and its raw tensor bytes. */
export interface EncodedFrame<M extends Method> {
  readonly frame: Uint8Array;
  readonly params: ParamsOf<M>;
  readonly rawBytes: number;
}

type Method = 'round_start' | 'federation_done';
type Fixed<M extends Method> = Omit<ParamsOf<M>, 'baseRevision' | 'baseUpdate'>;
interface Built {
  readonly frame: Uint8Array;
  readonly params: unknown;
  readonly rawBytes: number;
}

/** Builds and caches the frames of one broadcast (one round's start, or the end). */
export class GlobalFrames {
  private readonly globalTensors: NamedTensor[];
  private readonly form: AdapterForm;
  private readonly cache = new Map<string, Promise<Built>>();

  constructor(
    private readonly plan: FederationPlan,
    global: ReadonlyMap<string, LoraFactors>,
    private readonly history: ResidualHistory,
    /** The coordinator's base revision. */
    readonly revision: number,
    private readonly backend: ProductBackend,
  ) {
    this.form = adapterFormOf(plan.method);
    // Fed-SB: A, B and R; a session that already holds the frozen A and B gets R only (docs/protocol.md §5.7).
    this.globalTensors = this.form === 'sb' ? sbAdapterToTensors(plan.layout, global, true) : adapterToTensors(plan.layout, global);
  }

  /** The global tensors by name (the norm-bound reference for this round's uploads). */
  globalByName(): Map<string, Float32Array> {
    return new Map(this.globalTensors.map((t) => [t.name, t.data]));
  }

  /**
   * The round_start for a client at base revision `clientRevision`: no base update when it is
   * current, the update from its revision when behind, from 0 (pristine) when it claims a revision
   * this coordinator never made. `cache: false` for params that differ per client (a late round_start).
   * `frozenHeld`: a Fed-SB session that already received the frozen A and B gets R only.
   */
  async roundStart(fixed: Fixed<'round_start'>, clientRevision: number, factoredOk: boolean, cache = true, frozenHeld = false): Promise<EncodedFrame<'round_start'>> {
    return (await this.frame('round_start', fixed, clientRevision, factoredOk, cache, frozenHeld)) as EncodedFrame<'round_start'>;
  }

  /** The federation_done for a client at base revision `clientRevision` (as `roundStart`). */
  async federationDone(fixed: Fixed<'federation_done'>, clientRevision: number, factoredOk: boolean, frozenHeld = false): Promise<EncodedFrame<'federation_done'>> {
    return (await this.frame('federation_done', fixed, clientRevision, factoredOk, true, frozenHeld)) as EncodedFrame<'federation_done'>;
  }

  /** True when the frames carry Fed-SB's frozen A and B only for sessions that do not hold them. */
  get sendsFrozenOnce(): boolean {
    return this.form === 'sb';
  }

  private frame(method: Method, fixed: object, clientRevision: number, factoredOk: boolean, cache: boolean, frozenHeld: boolean): Promise<Built> {
    const target = this.revision;
    const from = clientRevision === target ? target : clientRevision < target ? clientRevision : 0;
    const rOnly = this.form === 'sb' && frozenHeld;
    const key = `${method}:${from}:${factoredOk}:${rOnly}`;
    const hit = cache ? this.cache.get(key) : undefined;
    if (hit !== undefined) return hit;
    const built = this.build(method, fixed, from, factoredOk, rOnly);
    if (cache) this.cache.set(key, built);
    return built;
  }

  private async build(method: Method, fixed: object, from: number, factoredOk: boolean, rOnly: boolean): Promise<Built> {
    let tensors = rOnly ? this.globalTensors.filter((t) => !isFrozenFactor(t.name)) : this.globalTensors;
    let params: object = { ...fixed, baseRevision: this.revision };
    if (from !== this.revision) {
      const update = await this.history.updateBetween(from, this.revision, this.plan.layout, factoredOk, this.backend);
      params = { ...params, baseUpdate: { fromRevision: from, modules: update.entries } };
      tensors = [...tensors, ...update.tensors];
    }
    const message = { method, params, tensors } as AnyOutgoingMessage;
    const frame = encodeMessage(message, { layout: this.plan.layout, adapterForm: this.form });
    return { frame, params, rawBytes: tensors.reduce((n, t) => n + 4 * t.data.length, 0) };
  }
}

function isFrozenFactor(name: string): boolean {
  const role = parseTensorName(name)?.role;
  return role === ROLE_LORA_A || role === ROLE_LORA_B;
}
