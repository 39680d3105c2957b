/**
 * The coordinator: the server loop around a pure aggregation strategy (as Flower's `Server` around
 * its `Strategy`). It owns the sockets, the sampling, the round deadline, the quorum, the float32
 * master copy of the adapted base weights and the run directory; the strategy only does the math.
 *
 * Round r: wait for `minClients` (with `manualRounds`, also for the operator's `startNextRound`;
 * `round_ready` says it waits) → sample (seeded) → `round_start` (global adapter + the base update
 * each client needs) → collect validated `client_update`s → close when every sampled client is
 * accounted for, or the quorum delivered and nobody is still working, or at the deadline →
 * aggregate module by module, fold the residual into the master base → persist atomically →
 * `round_closed` to everyone → next round; `federation_done` at the end.
 *
 * With a `modelOffer`, clients without the base model are welcomed to fetch it (modelServer.ts,
 * docs/protocol.md §8); they are not joined (never sampled) until they reconnect with its hash.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import type { LoraFactors } from '../../core/lora.js';
import type { ProductBackend } from '../../core/product.js';
import { createStrategy } from '../../core/strategies/registry.js';
import type { AggregationStrategy } from '../../core/strategies/types.js';
import type { Matrix } from '../../core/tensor.js';
import { createOrtProductBackend } from '../../runtime/kernels/factoredUpdate.js';
import type { Message } from '../protocol/envelope.js';
import type { ParamsOf } from '../protocol/messages.js';
import { adapterFormOf, layoutAtRank } from '../protocol/adapterTensors.js';
import { copyStandardAdapter } from '../shared/adapterFolders.js';
import { protocolError, type ProtocolError } from '../protocol/errors.js';
import { generateToken } from '../protocol/tokens.js';
import { createTransportServer } from '../transport/server.js';
import type { Connection, TransportServer } from '../transport/types.js';
import type { CoordinatorConfig, FederationPlan, ListenOptions } from './config.js';
import { CoordinatorError } from './errors.js';
import { EventLog, type CoordinatorEventMap, type CoordinatorEventName } from './events.js';
import { RoundRunner, type RoundGrant, type RoundHost } from './roundRunner.js';
import { CoordinatorSession, type PendingChallenge, type SessionHost } from './clientSession.js';
import { RunStore, type ClientRecord } from './store.js';
import { ResidualHistory } from './residuals.js';
import { admitAuthenticated, admitHello, authenticateHello, verifyResponse, welcomeParams, type Admission, type Authentication, type Credential, type Refusal } from './handshake.js';
import { ClientKeys } from './enrollment.js';
import { newNonce } from '../protocol/identity.js';
import { AdmissionLimits, admissionSettings } from './admissionLimits.js';
import { TrafficMeter } from './traffic.js';
import { initialState } from './initialState.js';
import { checkOffer, ModelServer, type ModelOffer } from './modelServer.js';

/** How often a coordinator admitting clients by key re-reads its registry (revocations). */
const REGISTRY_POLL_MS = 1_000;

/** How this process runs the rounds; not persisted (a resumed run chooses again). */
export interface RuntimeOptions {
  /**
   * Rounds start only when the operator asks (`startNextRound`), once `minClients` have joined;
   * default false (each round starts as soon as they have).
   */
  readonly manualRounds?: boolean;
  /**
   * Offer the base model over model_request (its manifest must hash to the plan's base model hash);
   * default none: clients must already hold the model.
   */
  readonly modelOffer?: ModelOffer;
  /**
   * Admit clients by enrolled Ed25519 key (the client registry at this path, `fedex clients`)
   * instead of the shared token. Recorded in the run directory: a resumed run keeps it.
   */
  readonly clients?: string;
}

/** Options when resuming a run from its directory. */
export interface ResumeOptions extends Omit<RuntimeOptions, 'modelOffer'> {
  /** As in `RuntimeOptions`, or chosen once the run's base model hash is known. */
  readonly modelOffer?: ModelOffer | ((baseModelHash: string, plan: FederationPlan) => Promise<ModelOffer | undefined>);
  readonly listen?: ListenOptions;
  readonly backend?: ProductBackend;
  /** The join token; read from the run directory when absent. */
  readonly token?: string;
  /** As in `RuntimeOptions`; absent: the registry the run recorded, if any. */
  readonly clients?: string;
}

/** How a federation ended. */
export interface FederationSummary {
  readonly roundsCompleted: number;
  readonly rounds: number;
  readonly baseRevision: number;
  readonly runDir: string;
}

/** The mutable state that is persisted after every round. */
export interface CoordinatorState {
  round: number;
  revision: number;
  roundsCompleted: number;
  global: Map<string, LoraFactors>;
  base: Map<string, Matrix<Float32Array>>;
  registry: Map<string, ClientRecord>;
  history: CoordinatorEventMap['round_closed'][0][];
  globalFile: string;
  baseFile: string;
  done: { reason: 'completed' | 'failed'; at: number } | null;
}

/** What a coordinator is made of (`create` and `resume` assemble it). */
interface CoordinatorParts {
  readonly plan: FederationPlan;
  readonly store: RunStore;
  readonly state: CoordinatorState;
  readonly token: string;
  /** The round a resumed run continues after (null for a new run). */
  readonly resumedFrom: number | null;
  readonly modelOffer: ModelOffer | undefined;
  /** Enrolled keys, when clients are admitted by key. */
  readonly keys: ClientKeys | undefined;
}

/** How a coordinator runs, new or resumed: the options' backend (default: onnxruntime's, which it then disposes of), listener and rounds. */
interface RunSettings {
  readonly backend?: ProductBackend;
  readonly listen?: ListenOptions;
  readonly manualRounds?: boolean;
}

/** The coordinator; create with `Coordinator.create` (new run) or `Coordinator.resume` (after a crash). */
export class Coordinator extends EventEmitter<CoordinatorEventMap> implements SessionHost, RoundHost {
  private server: TransportServer | undefined;
  private readonly sessions = new Set<CoordinatorSession>();
  /** The live session of each joined client. */
  readonly joined = new Map<string, CoordinatorSession>();
  /** The live session of each client fetching the base model (admitted, not joined). */
  readonly fetching = new Map<string, CoordinatorSession>();
  /** Serves the base model when it is offered. */
  readonly models: ModelServer | undefined;
  readonly traffic = new TrafficMeter();
  /** Sees every accepted upload (its adapter is the coordinator's: copy it to keep it); for `fedex host --save-adapters`. */
  uploadObserver: ((round: number, clientId: string, adapter: ReadonlyMap<string, LoraFactors>) => void) | undefined;
  readonly strategy: AggregationStrategy;
  readonly history: ResidualHistory;
  readonly runner: RoundRunner;
  private readonly log: EventLog;
  /** Limits before authentication: failed joins throttled per address, rejections logged sparingly (admissionLimits.ts). */
  readonly admissionLimits = new AdmissionLimits(() => admissionSettings(this.plan.limits, this.plan.maxClients), {
    log: (e) => {
      if (!this.stopping) this.publish('client_rejected', e);
    },
  });
  private readonly waiters = new Set<() => void>();
  private revocationTimer: NodeJS.Timeout | undefined;
  stopping = false;
  killed = false;

  readonly plan: FederationPlan;
  readonly store: RunStore;
  readonly state: CoordinatorState;
  readonly token: string;
  /** The enrolled clients' keys when the run admits clients by key (then the token admits no one). */
  readonly keys: ClientKeys | undefined;
  readonly backend: ProductBackend;
  /** Rounds wait for `startNextRound` (see `RuntimeOptions`). */
  readonly manualRounds: boolean;
  private readonly ownsBackend: boolean;
  private readonly listen: ListenOptions;
  private readonly resumedFrom: number | null;

  private constructor(o: CoordinatorParts, run: RunSettings) {
    super();
    const { plan, store, modelOffer } = o;
    this.plan = plan;
    this.store = store;
    this.state = o.state;
    this.token = o.token;
    this.keys = o.keys;
    this.backend = run.backend ?? createOrtProductBackend();
    this.ownsBackend = run.backend === undefined;
    this.listen = run.listen ?? {};
    this.resumedFrom = o.resumedFrom;
    this.manualRounds = run.manualRounds === true;
    if (modelOffer !== undefined) checkOffer(modelOffer, plan.baseModelHash);
    this.models = modelOffer === undefined ? undefined : new ModelServer(modelOffer, (e) => this.publish('model_transfer', e));
    this.log = new EventLog(store.eventsPath);
    // Deviation metrics are computed by aggregate.ts through the backend (bounded cost for many clients).
    // A robust rule (plan.aggregation) forms its own dense s·(rule_i(B_i A_i) − B̄Ā), which the deviation metrics then use.
    this.strategy = createStrategy(plan.method, {
      weighting: plan.weighting,
      deviationMetrics: false,
      residualForm: plan.residualForm,
      seed: plan.seed,
      ...(plan.residualRank !== undefined ? { residualRank: plan.residualRank } : {}),
      ...(plan.aggregation !== undefined ? { aggregation: plan.aggregation, deviationMetrics: plan.deviationMetrics } : {}),
    });
    this.history = new ResidualHistory((rev) => store.loadStep(rev));
    this.runner = new RoundRunner(this);
  }

  /** Starts a new federation in `config.runDir` (which must not hold one) and persists round 0. */
  static async create(config: CoordinatorConfig & RuntimeOptions): Promise<Coordinator> {
    const { plan, state } = await initialState(config);
    if (config.modelOffer !== undefined) checkOffer(config.modelOffer, plan.baseModelHash);
    const store = await RunStore.create(config.runDir);
    const token = config.token ?? generateToken();
    const keys = await openKeys(config.clients, store);
    await store.writeToken(token);
    if (keys !== undefined) await store.writeAuth(keys.path);
    const c = new Coordinator({ plan, store, state, token, resumedFrom: null, modelOffer: config.modelOffer, keys }, config);
    await c.persist({ global: state.global, base: state.base });
    return c;
  }

  /** Continues the federation persisted in `runDir` after its last completed round. */
  static async resume(runDir: string, options: ResumeOptions = {}): Promise<Coordinator> {
    const store = await RunStore.open(runDir);
    const { state: saved, global, base } = await store.load();
    const token = options.token ?? await store.readToken();
    const state: CoordinatorState = {
      round: saved.round,
      revision: saved.revision,
      roundsCompleted: saved.roundsCompleted,
      global,
      base,
      registry: new Map(saved.registry.map((r) => [r.clientId, r])),
      history: [...saved.history],
      globalFile: saved.globalFile,
      baseFile: saved.baseFile,
      done: saved.done,
    };
    const offer = typeof options.modelOffer === 'function' ?
      await options.modelOffer(saved.plan.baseModelHash, saved.plan).catch(async (err: unknown) => {
        await store.unlock();
        throw err;
      }) :
      options.modelOffer;
    const keys = await openKeys(options.clients ?? await store.readAuth(), store);
    if (keys !== undefined) await store.writeAuth(keys.path);
    return new Coordinator({ plan: saved.plan, store, state, token, resumedFrom: saved.round, modelOffer: offer, keys }, options);
  }

  get runDir(): string {
    return this.store.dir;
  }

  /** The URL clients connect to (after `start`). */
  get url(): string {
    if (this.server === undefined) throw new CoordinatorError('NOT_STARTED', 'coordinator.url: call start() first');
    return this.server.url;
  }

  get limits(): FederationPlan['limits'] {
    return this.plan.limits;
  }

  /** Copies of the global adapter (Fed-SB's as the standard LoRA factors (A, B·R̄) it equals) and the master base weights (for checks and export). */
  snapshot(): { round: number; revision: number; global: Map<string, LoraFactors>; base: Map<string, Matrix<Float32Array>> } {
    const copy = (m: Matrix<Float32Array>): Matrix<Float32Array> => ({ shape: [m.shape[0], m.shape[1]], data: Float32Array.from(m.data) });
    return {
      round: this.state.round,
      revision: this.state.revision,
      // Fed-SB's (A, B, R̄) as the standard LoRA factors it equals, (A, B·R̄): what evaluations and PEFT folders read.
      global: copyStandardAdapter(this.state.global),
      base: new Map([...this.state.base].map(([k, m]) => [k, copy(m)])),
    };
  }

  /** Starts listening; resolves with the URL. */
  async start(): Promise<string> {
    if (this.server !== undefined) return this.server.url;
    this.server = await createTransportServer({
      ...this.listen,
      maxFrameBytes: this.plan.limits.maxFrameBytes,
      heartbeatMs: this.plan.limits.heartbeatMs,
      preAuth: this.admissionLimits.preAuthOptions(this.plan.limits.helloTimeoutMs),
    });
    this.server.on('connection', (conn) => this.accept(conn));
    if (this.keys !== undefined) this.watchRevocations(this.keys);
    this.publish('listening', { url: this.server.url, runDir: this.runDir, resumedFromRound: this.resumedFrom, method: this.plan.method, rounds: this.plan.rounds });
    return this.server.url;
  }

  /** Re-reads the client registry every second; clients revoked while connected are disconnected (E_AUTH). */
  private watchRevocations(keys: ClientKeys): void {
    keys.onError = (message) => this.publish('warning', { message });
    const timer = setInterval(() => {
      void keys.refresh().then((changed) => {
        if (!changed || this.stopping) return;
        for (const session of [...this.joined.values(), ...this.fetching.values()]) {
          const id = session.clientId ?? '';
          if (keys.lookup(id).status !== 'enrolled') session.fatal(protocolError('E_AUTH', `client '${id}' was revoked at the coordinator`));
        }
      });
    }, REGISTRY_POLL_MS);
    timer.unref();
    this.revocationTimer = timer;
  }

  /** Runs the remaining rounds; resolves when federation_done was sent, rejects `STOPPED` when stopped first. */
  async run(): Promise<FederationSummary> {
    await this.start();
    await this.runner.runAll();
    return { roundsCompleted: this.state.roundsCompleted, rounds: this.plan.rounds, baseRevision: this.state.revision, runDir: this.runDir };
  }

  /**
   * Manual rounds: lets the next round start — now when `minClients` have joined and no round runs,
   * else as soon as they have joined or the running round has closed. One grant is kept at most (a
   * second request before the round started is refused), so each call runs at most one round.
   * Without `manualRounds` it changes nothing and says so.
   */
  startNextRound(): RoundGrant {
    const grant = this.runner.grant();
    if (grant.granted) this.wake();
    return grant;
  }

  /** Stops gracefully: clients get `error` E_SHUTDOWN (they reconnect with backoff); the run directory stays resumable. */
  async close(): Promise<void> {
    // Rejections still waiting for their per-minute summary are logged now, not lost.
    if (!this.stopping) this.admissionLimits.flushSummaries();
    this.stopping = true;
    this.wake();
    for (const s of this.sessions) s.closeAfter(this.state.done !== null ? null : { method: 'error', params: { code: 'E_SHUTDOWN', message: 'the coordinator is shutting down', fatal: true } }, 1001, 'coordinator shutting down');
    await this.server?.close();
    await this.shutdown();
  }

  /** Stops abruptly, as a crash would: sockets destroyed, nothing more written. For tests and drills. */
  async kill(): Promise<void> {
    this.killed = true;
    this.stopping = true;
    this.wake();
    await this.server?.close({ abrupt: true });
    await this.shutdown();
  }

  private async shutdown(): Promise<void> {
    clearInterval(this.revocationTimer);
    this.runner.dispose();
    await this.runner.heatmapsDone();
    await this.log.close();
    await this.store.unlock();
    if (this.ownsBackend) await this.backend.dispose?.();
  }

  /** Emits an event and appends it to events.jsonl. */
  publish<K extends CoordinatorEventName>(type: K, payload: CoordinatorEventMap[K][0]): void {
    this.log.write(type, payload);
    (this.emit as (t: K, p: CoordinatorEventMap[K][0]) => boolean)(type, payload);
  }

  /** Resolves at the next change (join, leave, upload, stop) or after `timeoutMs`. */
  nextChange(timeoutMs = 60_000): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      this.waiters.add(done);
    });
  }

  wake(): void {
    for (const l of [...this.waiters]) l();
  }

  /** Writes state.json (and the given tensor files). Skipped once killed: a crash writes nothing. */
  async persist(files: Parameters<RunStore['commit']>[1]): Promise<void> {
    if (this.killed) throw new CoordinatorError('STOPPED', 'the coordinator was killed');
    const s = this.state;
    await this.store.commit({
      format: 'fedex-coordinator-run',
      version: 1,
      plan: this.plan,
      round: s.round,
      revision: s.revision,
      roundsCompleted: s.roundsCompleted,
      globalFile: s.globalFile,
      baseFile: s.baseFile,
      registry: [...s.registry.values()],
      history: s.history,
      done: s.done,
      updatedAt: Date.now(),
    }, files);
  }

  private accept(conn: Connection): void {
    if (this.stopping) {
      conn.close(1001, 'coordinator shutting down');
      return;
    }
    const session = new CoordinatorSession(conn, this);
    this.sessions.add(session);
    this.traffic.track(conn);
  }

  // ---- SessionHost ----

  receiveOptions(session: CoordinatorSession): ReturnType<SessionHost['receiveOptions']> {
    return {
      // A client below the global rank uploads in the layout at its rank (docs/protocol.md §5.6).
      receiver: 'coordinator',
      limits: { maxFrameBytes: this.plan.limits.maxFrameBytes },
      layout: layoutAtRank(this.plan.layout, session.rank),
      uplinkDtypes: [session.uplinkDtype],
      adapterForm: adapterFormOf(this.plan.method),
      ...(this.runner.updateBound() !== undefined ? { maxUpdateNorm: this.runner.updateBound(), normReference: this.runner.normReference(session.rank) } : {}),
    };
  }

  onHello(session: CoordinatorSession, hello: Message<'hello'>): void {
    const p = hello.params;
    if (this.keys === undefined) {
      const auth: Authentication = { kind: 'token', token: this.token };
      const verdict = this.admissionLimits.screen(session.conn.remote, () => admitHello(p, { plan: this.plan, auth, offersModel: this.models !== undefined, joined: this.joinedBesides(p.clientId) }));
      this.decide(session, p, verdict);
      return;
    }
    // Enrolled keys: the registry as it is now (a revocation counts at once), then a challenge.
    const keys = this.keys;
    void keys.refresh().then(() => {
      if (!session.isOpen) return;
      let credential: Credential | undefined;
      const screened = this.admissionLimits.screen(session.conn.remote, () => {
        credential = authenticateHello(p, { kind: 'keys', keys });
        return credential.ok ? { ok: true, minor: credential.minor, uplinkDtype: 'float32', fetching: false } : credential;
      });
      if (!screened.ok) return this.refuseHello(session, screened);
      if (credential?.ok !== true || credential.challenge === null) return this.refuseHello(session, { ok: false, code: 'E_INTERNAL', message: 'a keyed hello was admitted without a challenge' });
      const nonce = newNonce();
      session.expectResponse({ hello: p, nonce, key: credential.challenge.key, minor: credential.minor });
      void session.send({ method: 'challenge', params: { nonce, issuedAt: Date.now() } }).catch(() => undefined);
    }, (err: unknown) => this.refuseHello(session, { ok: false, code: 'E_INTERNAL', message: `the client registry cannot be read: ${(err as Error).message}` }));
  }

  onChallengeResponse(session: CoordinatorSession, pending: PendingChallenge, response: Message<'challenge_response'>): void {
    const p = pending.hello;
    const verdict = this.admissionLimits.screen(session.conn.remote, () => {
      const refused = verifyResponse(p, pending.nonce, pending.key, response.params);
      if (refused !== null) return refused;
      // Revoked while the challenge was out: refused too.
      if (this.keys?.lookup(p.clientId ?? '').status !== 'enrolled') return { ok: false, code: 'E_AUTH', message: `client '${p.clientId ?? ''}' is no longer enrolled` };
      return admitAuthenticated(p, pending.minor, { plan: this.plan, offersModel: this.models !== undefined, joined: this.joinedBesides(p.clientId) });
    });
    this.decide(session, p, verdict);
  }

  /** Clients joined or fetching, not counting an older connection of `clientId`. */
  private joinedBesides(clientId: string | undefined): number {
    const previous = clientId !== undefined ? this.joined.get(clientId) ?? this.fetching.get(clientId) : undefined;
    return this.joined.size + this.fetching.size - (previous !== undefined ? 1 : 0);
  }

  private refuseHello(session: CoordinatorSession, refusal: Refusal): void {
    if (this.admissionLimits.shouldLog(session.conn.remote, refusal.code)) this.publish('client_rejected', { remote: session.conn.remote, code: refusal.code, message: refusal.message });
    session.closeAfter({ method: 'reject', params: { code: refusal.code, message: refusal.message, ...(refusal.retryAfterMs !== undefined ? { retryAfterMs: refusal.retryAfterMs } : {}) } }, 1008, refusal.code);
  }

  /** Welcomes an admitted hello (joined, or fetching the model) or refuses it. */
  private decide(session: CoordinatorSession, p: ParamsOf<'hello'>, admission: Admission): void {
    if (!admission.ok) return this.refuseHello(session, admission);
    const previous = p.clientId !== undefined ? this.joined.get(p.clientId) ?? this.fetching.get(p.clientId) : undefined;
    const clientId = p.clientId ?? `anon-${randomBytes(6).toString('hex')}`;
    // The same client on a new connection: the old one is dead or half-open; the new one wins.
    if (previous !== undefined) {
      if (this.joined.get(clientId) === previous) this.joined.delete(clientId);
      if (this.fetching.get(clientId) === previous) this.fetching.delete(clientId);
      previous.closeAfter(null, 4000, 'superseded by a new connection of the same client');
    }
    if (admission.fetching) {
      // Only here to fetch the base model: no registry entry, no round; it rejoins with the hash.
      session.admit({
        kind: 'fetching',
        clientId,
        name: p.clientName,
        sessionId: randomBytes(12).toString('base64url'),
        minor: admission.minor,
        uplinkDtype: admission.uplinkDtype,
        peerMaxFrameBytes: p.capabilities.maxFrameBytes,
        factoredOk: p.capabilities.factoredResidual,
        revision: 0,
      });
      this.fetching.set(clientId, session);
      void session.send({ method: 'welcome', params: welcomeParams(this.plan, { sessionId: session.sessionId, minor: admission.minor, currentRound: this.runner.startedRound, uplinkDtype: admission.uplinkDtype }, this.models) }).catch(() =>
        undefined
      );
      return;
    }
    const now = Date.now();
    const record = this.state.registry.get(clientId);
    const sessionId = record?.sessionId ?? randomBytes(12).toString('base64url');
    this.state.registry.set(clientId, { clientId, name: p.clientName, sessionId, firstSeen: record?.firstSeen ?? now, lastSeen: now, roundsParticipated: record?.roundsParticipated ?? 0 });
    session.admit({
      kind: 'joined',
      clientId,
      name: p.clientName,
      sessionId,
      minor: admission.minor,
      uplinkDtype: admission.uplinkDtype,
      peerMaxFrameBytes: p.capabilities.maxFrameBytes,
      factoredOk: p.capabilities.factoredResidual,
      revision: p.baseRevision ?? 0,
      ...(admission.rank !== undefined ? { rank: admission.rank } : {}),
    });
    this.joined.set(clientId, session);
    void session.send({
      method: 'welcome',
      params: welcomeParams(this.plan, { sessionId, minor: admission.minor, currentRound: this.runner.startedRound, uplinkDtype: admission.uplinkDtype, ...(admission.rank !== undefined ? { rank: admission.rank } : {}) }, this.models),
    }).catch(() => undefined);
    this.publish('client_joined', {
      clientId,
      name: p.clientName,
      sessionId,
      resumed: record !== undefined && p.resumeSessionId === record.sessionId,
      clients: this.joined.size,
      ...(session.conn.certificateSubject !== null ? { certificate: session.conn.certificateSubject } : {}),
    });
    this.runner.onJoined(session);
    this.wake();
  }

  onUpdate(session: CoordinatorSession, update: Message<'client_update'>, frameBytes: number): void {
    this.runner.onUpdate(session, update, frameBytes);
    this.wake();
  }

  onModelRequest(session: CoordinatorSession, request: Message<'model_request'>): void {
    if (this.models === undefined) session.refuse(protocolError('E_MODEL_TRANSFER', 'model_request: this coordinator does not offer the base model'));
    else this.models.request(session, request.params);
  }

  onUpdateRejected(session: CoordinatorSession, round: number, code: string, reason: string): void {
    this.runner.onRejected(session, round, code, reason);
    this.wake();
  }

  onClientFailed(session: CoordinatorSession, round: number, reason: string): void {
    this.runner.onClientFailed(session, round, reason);
    this.wake();
  }

  onLeave(session: CoordinatorSession, reason: string): void {
    if (session.clientId !== undefined && session.joined) this.runner.onGone(session.clientId, `left: ${reason}`, true);
    this.wake();
  }

  onProtocolError(session: CoordinatorSession, error: ProtocolError): void {
    this.publish('protocol_error', { clientId: session.clientId ?? null, remote: session.conn.remote, code: error.code, message: error.message });
  }

  onClosed(session: CoordinatorSession, reason: string): void {
    this.sessions.delete(session);
    this.traffic.untrack(session.conn);
    this.models?.closed(session);
    const id = session.clientId;
    if (id !== undefined && session.fetching && this.fetching.get(id) === session) this.fetching.delete(id);
    if (id !== undefined && session.joined && this.joined.get(id) === session) {
      this.joined.delete(id);
      this.runner.onGone(id, `connection closed: ${reason}`, false);
      this.publish('client_left', { clientId: id, name: session.name, reason, clients: this.joined.size });
    }
    this.wake();
  }

  countTraffic(direction: 'sent' | 'received', bytes: number, rawBytes: number): void {
    this.traffic.count(direction, bytes, rawBytes);
  }
}

/** The client registry at `path` (absolute in the run's record), or undefined; the run directory is unlocked when it cannot be opened. */
async function openKeys(path: string | undefined, store: RunStore): Promise<ClientKeys | undefined> {
  if (path === undefined) return undefined;
  try {
    return await ClientKeys.open(resolve(path));
  } catch (err) {
    await store.unlock();
    throw new CoordinatorError('CONFIG_INVALID', (err as Error).message, { cause: err });
  }
}
