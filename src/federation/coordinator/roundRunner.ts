/**
 * The round loop of the coordinator: sampling, round_start, collecting uploads, closing, the
 * aggregation, persistence and the broadcasts (see coordinator.ts for the overview). Everything a
 * session reports about the running round goes through here.
 */
import { safeText } from '../protocol/codec.js';
import type { Message } from '../protocol/envelope.js';
import { adapterFromTensors } from '../shared/adapterWire.js';
import { adapterFormOf, layoutAtRank, ROLE_LORA_A, ROLE_LORA_B, tensorName } from '../protocol/adapterTensors.js';
import { truncateFactors } from '../../core/clientRanks.js';
import type { LoraFactors } from '../../core/lora.js';
import { firstDifference, firstNonFinite, frobeniusNorm } from '../../core/tensor.js';
import { ruleLabel } from '../../core/robust.js';
import { accumulatedModules, UploadAccumulator } from './accumulator.js';
import { aggregateRound, type AcceptedUpdate, type RoundAggregate } from './aggregate.js';
import { GlobalFrames } from './broadcast.js';
import { DEFAULT_MAX_UPDATE_RATIO, moduleSpecs, quorumCount, sampleSize, type FederationPlan } from './config.js';
import { roundHeatmap } from './roundFigures.js';
import type { ProductBackend } from '../../core/product.js';
import type { AggregationStrategy } from '../../core/strategies/types.js';
import type { CoordinatorState } from './coordinator.js';
import type { TrafficMeter } from './traffic.js';
import { CoordinatorError } from './errors.js';
import type { CoordinatorEventMap, CoordinatorEventName, RoundRecord } from './events.js';
import { RoundTracker, sampleClients } from './roundState.js';
import type { ResidualHistory, ResidualStep } from './residuals.js';
import type { CoordinatorSession } from './clientSession.js';
import { RunStore } from './store.js';
import { PrivacyLedger } from './privateRound.js';

type ClosedBy = RoundRecord['closedBy'];

/** What `Coordinator.startNextRound` did with the operator's request for a round. */
export interface RoundGrant {
  /** True when the round starts now: `minClients` have joined and no round runs. */
  readonly started: boolean;
  /** True when the grant was kept: the round started, or starts once the clients have joined / the running round closed. */
  readonly granted: boolean;
  /** The round the grant is for (null when there is none left). */
  readonly round: number | null;
  /** Why the round did not start now (one sentence, for the operator). */
  readonly reason?: string;
}

/**
 * What the round loop needs from its coordinator, and nothing more: the plan and state, the joined
 * sessions, the shared services (backend, strategy, residual history, traffic, store), the event
 * and wake-up plumbing, and the stop flags.
 */
export interface RoundHost {
  readonly plan: FederationPlan;
  readonly state: CoordinatorState;
  readonly runDir: string;
  readonly manualRounds: boolean;
  readonly stopping: boolean;
  readonly killed: boolean;
  readonly joined: ReadonlyMap<string, CoordinatorSession>;
  readonly backend: ProductBackend;
  readonly strategy: AggregationStrategy;
  readonly history: ResidualHistory;
  readonly traffic: TrafficMeter;
  readonly store: Pick<RunStore, 'load'>;
  readonly uploadObserver: ((round: number, clientId: string, adapter: ReadonlyMap<string, LoraFactors>) => void) | undefined;
  publish<K extends CoordinatorEventName>(type: K, payload: CoordinatorEventMap[K][0]): void;
  /** Resolves at the next change (a client joined, left, uploaded…) or after `timeoutMs`. */
  nextChange(timeoutMs?: number): Promise<void>;
  wake(): void;
  persist(files: Parameters<RunStore['commit']>[1]): Promise<void>;
}

/**
 * The coordinator state after round `round` closed, from what its aggregation produced (null: not
 * aggregated). Pure: returns the new state and the base step to record (FedEx, when the base
 * changed); the caller persists and broadcasts. The round counts even when nothing aggregated.
 */
export function applyRoundOutcome(
  s: Readonly<CoordinatorState>,
  round: number,
  outcome: Pick<RoundAggregate, 'global' | 'stepModules'> | null,
  participants: readonly string[],
  closedAt: number,
): { state: CoordinatorState; step: ResidualStep | undefined } {
  if (outcome === null) return { state: { ...s, round }, step: undefined };
  const changed = outcome.stepModules.length > 0;
  const revision = changed ? s.revision + 1 : s.revision;
  const registry = new Map(s.registry);
  for (const id of participants) {
    const r = registry.get(id);
    if (r !== undefined) registry.set(id, { ...r, roundsParticipated: r.roundsParticipated + 1, lastSeen: closedAt });
  }
  const files = RunStore.fileNames(round, revision);
  return {
    state: {
      ...s,
      round,
      global: outcome.global,
      roundsCompleted: s.roundsCompleted + 1,
      registry,
      revision,
      globalFile: files.globalFile,
      baseFile: changed ? files.baseFile : s.baseFile,
    },
    step: changed ? { revision, round, modules: outcome.stepModules } : undefined,
  };
}

export class RoundRunner {
  /** Last round started (welcome.currentRound). */
  startedRound: number;
  private tracker: RoundTracker | null = null;
  private closing = false;
  private updates = new Map<string, AcceptedUpdate>();
  private frames: GlobalFrames | null = null;
  private doneFrames: GlobalFrames | null = null;
  private normRef: Map<string, Float32Array> | undefined;
  /** `normRef` truncated to each client rank asked for this round. */
  private normRefAtRank = new Map<number, Map<string, Float32Array>>();
  private bound: number | undefined;
  /** The round's update ratio and the norm of the global adapter it started from (for the bound and the check at close). */
  private growth = { ratio: DEFAULT_MAX_UPDATE_RATIO, globalNorm: 0 };
  private accumulator: UploadAccumulator | null = null;
  private pending: { round: number; from: number; bytes: number; aggregationMs: number; persistMs: number; queuedAt: number } | null = null;
  /** The last aggregated round's heatmap inputs, computed after its broadcast. */
  private heatmapJob: { round: number; previous: ReadonlyMap<string, LoraFactors>; outcome: RoundAggregate } | null = null;
  private heatmapTask: Promise<void> = Promise.resolve();
  /** Manual rounds: the operator let the next round start and it has not started yet (one grant at most). */
  private granted = false;
  /** The round `round_ready` was published for (once per round). */
  private readyRound = 0;
  /** Client-level DP (plan.privacy): the noise source and the accountant's count of released rounds. */
  private readonly privacy: PrivacyLedger | null;

  constructor(private readonly c: RoundHost) {
    this.startedRound = c.state.round;
    this.privacy = c.plan.privacy !== undefined ? new PrivacyLedger(c.plan, c.plan.privacy, c.state.history) : null;
  }

  /** Rounds until the plan's count; then federation_done. Throws `STOPPED` when stopped first. */
  async runAll(): Promise<void> {
    const c = this.c;
    if (c.state.done === null) {
      while (c.state.round < c.plan.rounds) {
        await this.waitForClients();
        await this.runRound(c.state.round + 1);
      }
      await this.finish('completed');
    }
  }

  private stopped(): CoordinatorError {
    return new CoordinatorError('STOPPED', `coordinator stopped after round ${this.c.state.round} of ${this.c.plan.rounds}; resume from ${this.c.runDir}`);
  }

  /** Waits for `minClients` and, with manual rounds, for the operator's grant, which it consumes. */
  private async waitForClients(): Promise<void> {
    const c = this.c;
    const round = c.state.round + 1;
    for (;;) {
      if (c.stopping) throw this.stopped();
      const enough = c.joined.size >= c.plan.minClients;
      if (enough && (!c.manualRounds || this.granted)) break;
      if (enough && this.readyRound !== round) {
        this.readyRound = round;
        c.publish('round_ready', { round, clients: c.joined.size, minClients: c.plan.minClients });
      }
      await c.nextChange();
    }
    this.granted = false;
  }

  /**
   * Manual rounds: the operator lets the next round start. One grant is kept at most: given before
   * the clients are there, or while a round runs, it waits for them / for that round to close; a
   * second request before it is used is refused (each grant runs exactly one round).
   */
  grant(): RoundGrant {
    const c = this.c;
    const refuse = (round: number | null, reason: string): RoundGrant => ({ started: false, granted: false, round, reason });
    if (!c.manualRounds) return refuse(null, 'rounds start by themselves once enough clients have joined (the coordinator was not started with manual rounds)');
    if (c.stopping) return refuse(null, 'the coordinator is stopping');
    const running = this.tracker !== null;
    const next = (running ? this.startedRound : c.state.round) + 1;
    if (c.state.done !== null || next > c.plan.rounds) return refuse(null, `no round is left: the federation has ${c.plan.rounds} round${c.plan.rounds === 1 ? '' : 's'}`);
    const joined = c.joined.size;
    const min = c.plan.minClients;
    const waiting = `waiting for clients (${joined} of ${min} joined)`;
    const when = running ? `when round ${this.startedRound} has closed` : joined < min ? `when ${min} clients have joined` : 'now';
    if (this.granted) return refuse(next, `round ${next} was already requested: it starts ${when}${!running && joined < min ? `; ${waiting}` : ''}`);
    this.granted = true;
    if (running) return { started: false, granted: true, round: next, reason: `round ${this.startedRound} is still running: round ${next} starts ${when}` };
    if (joined < min) return { started: false, granted: true, round: next, reason: `${waiting}: round ${next} starts ${when}` };
    return { started: true, granted: true, round: next };
  }

  private async runRound(round: number): Promise<void> {
    const c = this.c;
    const plan = c.plan;
    const ids = [...c.joined.keys()];
    const sampled = sampleClients(ids, sampleSize(plan, ids.length), plan.seed, round);
    const startedAt = Date.now();
    const tracker = new RoundTracker(round, sampled, quorumCount(plan.quorum, sampled.length), startedAt, startedAt + plan.roundTimeoutMs);
    this.tracker = tracker;
    this.closing = false;
    this.updates = new Map();
    this.startedRound = round;
    c.traffic.reset();
    this.frames = new GlobalFrames(plan, c.state.global, c.history, c.state.revision, c.backend);
    // This round's bound on ‖update − global‖: the operator's absolute bound and/or a multiple of ‖global‖.
    const ratio = plan.maxUpdateRatio ?? DEFAULT_MAX_UPDATE_RATIO;
    this.growth = { ratio, globalNorm: adapterNorm(c.state.global) };
    const relative = ratio > 0 ? ratio * this.growth.globalNorm : Infinity;
    const bound = Math.min(plan.maxUpdateNorm ?? Infinity, relative > 0 ? relative : Infinity);
    this.bound = Number.isFinite(bound) ? bound : undefined;
    this.normRef = this.bound !== undefined ? this.frames.globalByName() : undefined;
    this.normRefAtRank = new Map();
    this.accumulator?.dispose();
    this.privacy?.begin(sampled.length);
    const accumulated = new Set(accumulatedModules(plan.layout, c.strategy, plan.deviationMetrics, sampled.length, plan.incrementalAggregation ?? 'auto').map((m) => m.module));
    this.accumulator = new UploadAccumulator(moduleSpecs(plan).filter((s) => accumulated.has(s.name)), c.strategy, plan.weighting, c.backend);
    c.publish('round_started', { round, sampled, quorum: tracker.quorum, deadline: tracker.deadline, baseRevision: c.state.revision });
    await Promise.all(sampled.map((id) => this.sendRoundStart(id, true)));
    this.broadcastDone();
    this.startHeatmap();
    let closedBy: ClosedBy;
    for (;;) {
      if (c.stopping) throw this.stopped();
      const d = tracker.decide(Date.now());
      if (d !== 'wait') {
        closedBy = d;
        break;
      }
      await c.nextChange(tracker.deadline - Date.now() + 1);
    }
    await this.closeRound(tracker, closedBy);
  }

  private async sendRoundStart(clientId: string, cache: boolean): Promise<void> {
    const tracker = this.tracker!;
    const session = this.c.joined.get(clientId);
    if (session === undefined) {
      tracker.disconnect(clientId);
      return;
    }
    try {
      const fixed = { round: tracker.round, deadline: tracker.deadline, timeLimitMs: Math.max(0, tracker.deadline - Date.now()) };
      const f = await this.frames!.roundStart(fixed, session.revision, session.factoredOk, cache, session.sbFrozenSent);
      if (this.tracker !== tracker || !session.isOpen) return;
      const sent = session.sendFrame(f.frame, 'round_start', f.params, f.rawBytes);
      session.revision = f.params.baseRevision;
      if (this.frames!.sendsFrozenOnce) session.sbFrozenSent = true;
      if (this.pending !== null) {
        this.pending.bytes += f.frame.length;
        this.pending.queuedAt = Date.now();
      }
      await sent;
    } catch (err) {
      tracker.fail(clientId, `round_start could not be delivered: ${(err as Error).message}`);
      this.c.wake();
    }
  }

  private async closeRound(tracker: RoundTracker, closedBy: ClosedBy): Promise<void> {
    const c = this.c;
    const s = c.state;
    const round = tracker.round;
    this.closing = true;
    const closedAt = Date.now();
    const failures = tracker.failures(closedBy);
    for (const f of failures) c.publish('client_failed', { round, ...f });
    const participants = tracker.reported.sort();
    const updates = participants.map((id) => this.updates.get(id)!);
    let outcome: RoundAggregate | null = null;
    const t0 = performance.now();
    if (participants.length >= tracker.quorum) {
      try {
        outcome = this.privacy !== null
          ? await this.privacy.aggregate(s.global, s.base, updates, c.backend)
          : await aggregateRound(c.plan, c.strategy, round, s.global, s.base, updates, failures.map((f, i) => ({ client: participants.length + i, ...f })), c.backend, { accumulator: this.accumulator ?? undefined });
        // Never persist or broadcast a broken global model: roll the round back instead.
        const broken = outcome === null ? null : brokenGlobal(this.growth.globalNorm, outcome, s.base, this.growth.ratio);
        if (broken !== null) throw new Error(`the new global model is refused (${broken}); the round is rolled back`);
      } catch (err) {
        outcome = null;
        c.publish('warning', { message: `round ${round}: aggregation failed, the global model is unchanged: ${(err as Error).message}` });
        // A failure halfway may have touched the master base: go back to the last persisted one.
        s.base = (await c.store.load()).base;
      }
    } else {
      c.publish('warning', { message: `round ${round}: ${participants.length} update(s), quorum ${tracker.quorum}: nothing aggregated` });
    }
    const aggregationMs = performance.now() - t0;
    this.accumulator?.dispose();
    this.accumulator = null;
    if (c.killed) throw this.stopped();
    if (outcome !== null && c.plan.updateHeatmap !== false) this.heatmapJob = { round, previous: s.global, outcome };
    const applied = applyRoundOutcome(s, round, outcome, participants, closedAt);
    Object.assign(s, applied.state);
    const step = applied.step;
    if (step !== undefined) {
      c.history.add(step);
      c.history.evictUpTo(s.revision - 4);
    }
    const plain = this.record(tracker, closedBy, closedAt, participants, updates, failures, outcome, aggregationMs);
    const record = this.privacy !== null ? { ...plain, privacy: this.privacy.figures() } : plain;
    s.history.push(record);
    const t1 = performance.now();
    await c.persist({ ...(outcome !== null ? { global: s.global } : {}), ...(step !== undefined ? { base: s.base, step } : {}) });
    const persistMs = performance.now() - t1;
    c.publish('round_closed', record);
    this.pending = { round, from: closedBy === 'all_reported' ? tracker.lastUploadAt : closedAt, bytes: 0, aggregationMs, persistMs, queuedAt: Date.now() };
    const modules = record.modules.every((m) => m.deviation !== null && m.relativeDeviation !== null && m.residualNorm !== null)
      ? record.modules.map((m) => ({ module: m.module, deviation: m.deviation!, relativeDeviation: m.relativeDeviation!, residualNorm: m.residualNorm! }))
      : [];
    const params = {
      round,
      participants: outcome !== null ? participants.length : 0,
      dropped: failures.length,
      durationMs: record.durationMs,
      baseRevision: s.revision,
      // Under DP the participants' losses are not released to clients (they are not covered by ε).
      ...(record.loss !== null && record.privacy === undefined ? { loss: record.loss } : {}),
      modules,
    };
    // `aggregated` exists from protocol 1.1 on: only sessions that negotiated it get it.
    await Promise.all([...c.joined.values()].map(async (session) => {
      const message = { method: 'round_closed' as const, params: session.minor >= 1 ? { ...params, aggregated: outcome !== null } : params };
      this.pending!.bytes += await session.send(message).catch(() => 0);
    }));
    this.tracker = null;
    this.closing = false;
  }

  private record(
    tracker: RoundTracker,
    closedBy: ClosedBy,
    closedAt: number,
    participants: string[],
    updates: AcceptedUpdate[],
    failures: { clientId: string; reason: string }[],
    outcome: RoundAggregate | null,
    aggregationMs: number,
  ): RoundRecord {
    const clients: Record<string, { trainLoss: number; examples: number; weight: number }> = {};
    updates.forEach((u, i) => (clients[u.clientId] = { trainLoss: u.trainLoss, examples: u.numExamples, weight: outcome?.weights[i] ?? 0 }));
    return {
      round: tracker.round,
      aggregated: outcome !== null,
      sampled: tracker.sampled,
      quorum: tracker.quorum,
      participants,
      failures,
      startedAt: tracker.startedAt,
      closedAt,
      durationMs: closedAt - tracker.startedAt,
      closedBy,
      baseRevision: this.c.state.revision,
      loss: outcome?.loss ?? null,
      clients,
      modules: outcome?.modules ?? [],
      traffic: this.c.traffic.snapshot(),
      aggregationMs,
      aggregation: ruleLabel(this.c.plan.aggregation),
    };
  }

  private broadcastDone(): void {
    const p = this.pending;
    if (p === null) return;
    this.pending = null;
    this.c.publish('round_broadcast', {
      round: p.round,
      overheadMs: Date.now() - p.from,
      aggregationMs: p.aggregationMs,
      persistMs: p.persistMs,
      clients: this.c.joined.size,
      bytes: p.bytes,
      queuedMs: p.queuedAt - p.from,
    });
  }

  /** Computes the last aggregated round's `update_heatmap` in the background (after its broadcast). */
  private startHeatmap(): void {
    const job = this.heatmapJob;
    this.heatmapJob = null;
    if (job === null) return;
    this.heatmapTask = this.heatmapTask.then(() => this.heatmap(job)).catch((err: unknown) => {
      this.c.publish('warning', { message: `round ${job.round}: update heatmap failed: ${(err as Error).message}` });
    });
  }

  private async heatmap(job: { round: number; previous: ReadonlyMap<string, LoraFactors>; outcome: RoundAggregate }): Promise<void> {
    const c = this.c;
    const heatmap = await roundHeatmap(c.plan, job.round, job.previous, job.outcome.global, job.outcome.stepModules, c.backend, () => c.killed);
    if (heatmap !== null) c.publish('update_heatmap', heatmap);
  }

  /** Resolves when the pending heatmap (if any) was published. */
  heatmapsDone(): Promise<void> {
    return this.heatmapTask;
  }

  private async finish(reason: 'completed' | 'failed'): Promise<void> {
    const c = this.c;
    c.state.done = { reason, at: Date.now() };
    await c.persist({});
    this.doneFrames = new GlobalFrames(c.plan, c.state.global, c.history, c.state.revision, c.backend);
    await Promise.all([...c.joined.values()].map((session) => this.sendDone(session)));
    this.broadcastDone();
    this.startHeatmap();
    await this.heatmapTask;
    c.publish('federation_done', { roundsCompleted: c.state.roundsCompleted, reason, baseRevision: c.state.revision });
  }

  private async sendDone(session: CoordinatorSession): Promise<void> {
    const c = this.c;
    this.doneFrames ??= new GlobalFrames(c.plan, c.state.global, c.history, c.state.revision, c.backend);
    try {
      const reason = c.state.done?.reason ?? 'completed';
      const f = await this.doneFrames.federationDone({ roundsCompleted: c.state.roundsCompleted, reason }, session.revision, session.factoredOk, session.sbFrozenSent);
      const sent = session.sendFrame(f.frame, 'federation_done', f.params, f.rawBytes);
      session.revision = f.params.baseRevision;
      if (this.doneFrames.sendsFrozenOnce) session.sbFrozenSent = true;
      if (this.pending !== null) {
        this.pending.bytes += f.frame.length;
        this.pending.queuedAt = Date.now();
      }
      await sent;
    } catch {
      // The client is gone; it can reconnect and get federation_done then.
    }
    session.closeAfter(null, 1000, 'federation done');
  }

  // ---- events from sessions ----

  /** A client joined (or rejoined): finish it, or restart the round for it if it owes an update. */
  onJoined(session: CoordinatorSession): void {
    if (this.c.state.done !== null) {
      void this.sendDone(session);
      return;
    }
    const t = this.tracker;
    if (t !== null && !this.closing && t.reconnect(session.clientId!)) void this.sendRoundStart(session.clientId!, false);
  }

  onUpdate(session: CoordinatorSession, update: Message<'client_update'>, frameBytes: number): void {
    const c = this.c;
    const id = session.clientId!;
    const round = update.params.round;
    const t = this.tracker;
    const reject = (code: string, reason: string): void => {
      c.publish('update_rejected', { round, clientId: id, code, reason });
      void session.send({ method: 'update_rejected', params: { round, code, reason: safeText(reason) } }).catch(() => undefined);
    };
    if (t === null || t.round !== round || this.closing) return reject('E_ROUND_CLOSED', `round ${round} is closed (the update arrived after the round ended)`);
    if (Date.now() > t.deadline) {
      t.fail(id, 'update arrived after the deadline');
      return reject('E_ROUND_CLOSED', `round ${round} is closed: the update arrived after the deadline`);
    }
    const state = t.stateOf(id);
    if (state === undefined) return reject('E_ROUND_MISMATCH', `client ${id} was not sampled for round ${round}`);
    if (state === 'reported') return reject('E_DUPLICATE', `a second update from ${id} for round ${round}`);
    if (state === 'failed') return reject('E_STATE', `round ${round} already counts ${id} as failed`);
    // Fed-SB uploads carry R only: A and B are the global adapter's (frozen), filled in here.
    const adapter = adapterFromTensors(layoutAtRank(c.plan.layout, session.rank), update.tensors, adapterFormOf(c.plan.method), c.state.global);
    // The coordinator decides what an update weighs: a reported example count above the bound counts as the bound.
    const maxExamples = c.plan.maxExamples ?? null;
    const examples = maxExamples !== null && update.params.examples > maxExamples ? maxExamples : update.params.examples;
    if (examples !== update.params.examples) {
      c.publish('warning', { message: `round ${round}: ${id} reported ${update.params.examples} examples; counted as ${examples}, the most a client can see in a round (local steps × batch size)` });
    }
    if (c.strategy.frozenA === true) {
      const changed = frozenAChange(c.state.global, adapter);
      if (changed !== null) {
        // A rejected upload uses up the client's round (docs/protocol.md §7.3).
        t.fail(id, `update rejected (E_FROZEN_A): ${changed}`);
        return reject('E_FROZEN_A', changed);
      }
    }
    this.updates.set(id, { clientId: id, adapter, numExamples: examples, trainLoss: update.params.trainLoss });
    this.accumulator?.add(id, adapter, examples);
    c.uploadObserver?.(round, id, adapter);
    t.report(id, Date.now());
    void session.send({ method: 'update_ack', params: { round } }).catch(() => undefined);
    c.publish('update_accepted', { round, clientId: id, examples, trainLoss: update.params.trainLoss, bytes: frameBytes });
  }

  onRejected(session: CoordinatorSession, round: number, code: string, reason: string): void {
    const id = session.clientId ?? session.conn.remote;
    this.c.publish('update_rejected', { round, clientId: id, code, reason });
    const t = this.tracker;
    if (t !== null && t.round === round && !this.closing) t.fail(id, `update rejected (${code}): ${reason}`);
  }

  /** The client says its training for `round` failed: it counts as failed now, so the round need not wait for it. */
  onClientFailed(session: CoordinatorSession, round: number, reason: string): void {
    const t = this.tracker;
    const id = session.clientId;
    if (id === undefined || t === null || t.round !== round || this.closing) return;
    if (t.stateOf(id) === 'pending') t.fail(id, `training failed: ${reason}`);
  }

  onGone(clientId: string, reason: string, permanent: boolean): void {
    const t = this.tracker;
    if (t === null || this.closing) return;
    if (permanent) t.fail(clientId, reason);
    else t.disconnect(clientId);
  }

  /**
   * The current global adapter by tensor name (the norm-bound reference); for a client of lower rank,
   * the global adapter truncated to that rank — what it started from.
   */
  normReference(rank?: number): Map<string, Float32Array> | undefined {
    if (this.normRef === undefined || rank === undefined) return this.normRef;
    const cached = this.normRefAtRank.get(rank);
    if (cached !== undefined) return cached;
    const ref = new Map<string, Float32Array>();
    for (const m of layoutAtRank(this.c.plan.layout, rank)) {
      const g = this.c.state.global.get(m.module);
      if (g === undefined) continue;
      const t = truncateFactors(g, m.rank);
      ref.set(tensorName(m.module, ROLE_LORA_A), t.a.data);
      ref.set(tensorName(m.module, ROLE_LORA_B), t.b.data);
    }
    this.normRefAtRank.set(rank, ref);
    return ref;
  }

  /** This round's bound on ‖update − global‖₂ (undefined: none). */
  updateBound(): number | undefined {
    return this.bound;
  }

  dispose(): void {
    this.tracker = null;
  }
}

/** FFA-LoRA: the first module whose uploaded lora_A differs (bitwise) from the global one, described; null when all match. */
export function frozenAChange(global: ReadonlyMap<string, LoraFactors>, upload: ReadonlyMap<string, LoraFactors>): string | null {
  for (const [module, g] of global) {
    const mine = upload.get(module);
    if (mine === undefined) continue;
    const a = g.a.data;
    const b = mine.a.data;
    const i = firstDifference(a, b, Object.is);
    if (i < 0) continue;
    const cols = g.a.shape[1];
    return `module ${module}: lora_A differs from the global (frozen) lora_A at [${Math.floor(i / cols)}, ${i % cols}] (${b[i]} instead of ${a[i]}); FFA-LoRA trains B only and must upload A unchanged`;
  }
  return null;
}

/** ‖adapter‖₂ over every module's A and B. */
export function adapterNorm(adapter: ReadonlyMap<string, LoraFactors>): number {
  let sum = 0;
  for (const f of adapter.values()) sum += frobeniusNorm(f.a.data) ** 2 + frobeniusNorm(f.b.data) ** 2 + (f.r !== undefined ? frobeniusNorm(f.r.data) ** 2 : 0);
  return Math.sqrt(sum);
}

/**
 * Why a round's new global model must not be kept, or null: a non-finite value in the new global
 * adapter or in a base weight the round changed, or a global adapter that grew past `ratio` times the
 * previous one's norm `previousNorm` (each update is bounded by the same ratio, so their average
 * cannot; 0: no check).
 */
export function brokenGlobal(previousNorm: number, outcome: Pick<RoundAggregate, 'global' | 'stepModules'>, base: ReadonlyMap<string, { readonly data: Float32Array }>, ratio: number): string | null {
  for (const [module, f] of outcome.global) {
    if (firstNonFinite(f.a.data) >= 0 || firstNonFinite(f.b.data) >= 0 || (f.r !== undefined && firstNonFinite(f.r.data) >= 0)) return `module ${module}: the averaged adapter holds a non-finite value`;
  }
  for (const step of outcome.stepModules) {
    const w = base.get(step.module);
    if (w !== undefined && firstNonFinite(w.data) >= 0) return `module ${step.module}: the base weight holds a non-finite value after the residual`;
  }
  const after = adapterNorm(outcome.global);
  if (ratio > 0 && previousNorm > 0 && after > ratio * previousNorm) return `its adapter norm ${after.toPrecision(4)} is over ${ratio} × the previous ${previousNorm.toPrecision(4)}`;
  return null;
}
