/**
 * The LoRA trainer on the calling thread: builds the model's training and evaluation graphs once,
 * loads the frozen weights once (fed as zero-copy float32 tensors each run), compiles the sessions,
 * and runs training and evaluation. `baseOverrides` swap the W0 tensors of adapted modules for one
 * call without rebuilding anything. onnxruntime's run blocks the thread: in an application, use
 * the worker (createTrainer) instead.
 */
import type { LoraFactors } from '../core/lora.js';
import { loraScaling } from '../core/lora.js';
import type { OptimizerConfig } from '../graph/trainStep.js';
import { initAdaptedModules } from '../model/loraInit.js';
import { moduleLora } from '../model/targetModules.js';
import type { FullTrainable, ModelGraph, ModelTask } from '../model/types.js';
import { ortTensor } from '../runtime/session.js';
import type { OrtSession, OrtTensor } from '../runtime/session.js';
import { BatchStream } from './batchStream.js';
import { compileApply, compileEval, compileGenerate, compileGrads, compileStep } from './compile.js';
import type { SessionSettings, StepSettings } from './compile.js';
import { padIdFor, splitBatch } from './data/batching.js';
import { encodeDataset } from './data/encode.js';
import type { EncodedDataset } from './data/encode.js';
import { loadSpec, prepareData } from './data/pipeline.js';
import type { PreparedData } from './data/pipeline.js';
import { deriveSeed } from './data/sampling.js';
import { isTaskSpec } from './data/tasks.js';
import { checkTokenizerMatchesModel } from './data/tokenizer.js';
import type { TextTokenizer } from './data/tokenizer.js';
import { throwIfAborted } from './errors.js';
import type { AbortLike } from './errors.js';
import { DROPOUT_SIZES, deviceForm } from './deviceForm.js';
import type { DeviceForm } from './deviceForm.js';
import { batchFeeds, evaluateExamples } from './evaluate.js';
import type { BatchInputNames, FeedLayout } from './evaluate.js';
import type { ModelSource } from './modelSource.js';
import { systemMemoryProbe } from './memoryBudget.js';
import type { MemoryProbe } from './memoryBudget.js';
import { planForSetup, StepMemoryModel } from './memoryPlan.js';
import type { BatchPlan } from './memoryPlan.js';
import { FrozenWeights } from './frozenWeights.js';
import { savedInitialValue } from './initialValues.js';
import { learningRate } from './schedule.js';
import { checkLearningRate, checkSeqLen, checkSetup } from './setup.js';
import { StepRunner } from './stepRunner.js';
import type { Feeds, MicroBatch } from './stepRunner.js';
import type { AdapterTensors, EvalOptions, EvalResult, LoraTrainer, TrainerInfo, TrainerSetup, TrainHooks, TrainOutcome, TrainProgress, TrainRun, TrainStart } from './types.js';

type BaseOverrides = ReadonlyMap<string, Float32Array>;

/** TrainHooks whose signal may be any abort flag (the worker's shared one). */
export interface InProcessHooks extends Omit<TrainHooks, 'signal'> {
  readonly signal?: AbortLike;
}

/** EvalOptions whose signal may be any abort flag. */
export interface InProcessEvalOptions extends Omit<EvalOptions, 'signal'> {
  readonly signal?: AbortLike;
}

function numel(shape: readonly (number | string)[]): number {
  return shape.reduce<number>((a, b) => a * (b as number), 1);
}

function optimizerConfig(setup: Pick<TrainerSetup, 'optimizer' | 'weightDecay'>): OptimizerConfig {
  const weightDecay = setup.weightDecay ?? 0;
  return setup.optimizer === 'adamw' ? { kind: 'adamw', weightDecay } : { kind: 'sgd', weightDecay };
}

/** The optimizer and clipping of a setup's train step. */
export function stepSettings(setup: Pick<TrainerSetup, 'optimizer' | 'weightDecay' | 'maxGradNorm'>): StepSettings {
  return { optimizer: optimizerConfig(setup), ...(setup.maxGradNorm !== undefined ? { maxGradNorm: setup.maxGradNorm } : {}) };
}

/** Where each trainable input's value comes from. */
interface ParamRole {
  readonly name: string;
  readonly shape: readonly number[];
  readonly module?: string;
  readonly factor: 'a' | 'b' | 'r' | 'saved';
  readonly saved?: FullTrainable;
}

/** See the module comment. Create with {@link InProcessTrainer.create}. */
export class InProcessTrainer implements LoraTrainer {
  private runner: StepRunner | null = null;
  private evalSession: OrtSession | null = null;
  private generateSession: OrtSession | null = null;
  private readonly savedInit = new Map<string, Float32Array>();
  private disposed = false;
  /** Micro-batches run by this trainer (seeds dropout, so no two micro-batches share a mask). */
  private microBatches = 0;
  /** How this device's sessions are compiled and fed (deviceForm.ts). */
  private readonly form: DeviceForm;
  readonly info: TrainerInfo;

  private constructor(
    private readonly setup: TrainerSetup,
    private readonly source: ModelSource,
    private readonly tokenizer: TextTokenizer | null,
    private readonly data: PreparedData,
    private readonly trainModel: ModelGraph,
    private readonly evalModel: ModelGraph,
    private readonly roles: readonly ParamRole[],
    private readonly stream: BatchStream,
    private readonly plan: BatchPlan,
    /** The frozen base weights, in the precision they are held in (frozenWeights.ts). */
    private readonly frozen: FrozenWeights,
  ) {
    const modules = trainModel.modules;
    this.form = setup.form ?? deviceForm(setup.device);
    this.info = {
      modules,
      saved: roles.flatMap((r) => (r.saved === undefined ? [] : [{ name: r.saved.name, input: r.name, shape: r.shape, ...(r.saved.key !== undefined ? { key: r.saved.key } : {}) }])),
      task: trainModel.task,
      lora: setup.lora,
      scaling: loraScaling(setup.lora.alpha, setup.lora.r, setup.lora.useRslora),
      trainExamples: data.train.examples.length,
      evalExamples: data.eval.examples.length,
      ...(data.labelNames !== undefined ? { labelNames: data.labelNames } : {}),
      device: setup.device,
      memory: plan,
      data: data.report,
      base: frozen.summary(),
    };
  }

  get modules(): TrainerInfo['modules'] {
    return this.info.modules;
  }

  /**
   * Loads tokenizer and data, builds the training graph, plans the micro-batches that fit the
   * memory budget (`probe` says what is available when the setup gives no budget), loads the
   * frozen weights, compiles the training sessions.
   */
  static async create(given: TrainerSetup, source: ModelSource, probe: MemoryProbe = systemMemoryProbe()): Promise<InProcessTrainer> {
    checkSetup(given);
    checkSeqLen(given, source);
    const targetModules = given.lora.targetModules.length > 0 ? given.lora.targetModules : source.architecture.defaultTargetModules;
    const setup: TrainerSetup = { ...given, lora: { ...given.lora, targetModules } };
    const tokenizer = await source.loadTokenizer();
    const vocab = source.config.vocab_size;
    if (tokenizer !== null && typeof vocab === 'number') checkTokenizerMatchesModel(tokenizer, vocab);
    const data = await prepareData(setup, tokenizer);
    const task: ModelTask = setup.task ?? (data.kind === 'classification' ? 'sequence-classification' : 'causal-lm');
    if ((task === 'sequence-classification') !== (data.kind === 'classification')) {
      throw new Error(`trainer: task ${task} does not fit ${data.kind} data from ${setup.data}`);
    }
    const buildAs = (training: boolean): ModelGraph => source.architecture.build({ config: source.config, tensors: source.tensors, lora: setup.lora, task, training, trainAll: setup.trainAll === true });
    // Graphs with the frozen weights held in setup.basePrecision, widened where they are used.
    const frozen = FrozenWeights.forSetup(setup);
    const build = (training: boolean): ModelGraph => frozen.store(buildAs(training));
    const model = build(true);
    checkClasses(model, data.labelNames);
    const evalModel = build(false);
    // Before any weight is loaded: a setup that cannot fit fails here, with the figures.
    const plan = planForSetup(setup, model, (recompute) => new StepMemoryModel(build(true), evalModel, { ...stepSettings(setup), recompute }, setup.form ?? deviceForm(setup.device)), probe);
    const roles = paramRoles(model);
    const padId = tokenizer !== null ? padIdFor(tokenizer.special) : 0;
    const eosId = tokenizer?.special.eos ?? undefined;
    const stream = new BatchStream(data.train.examples, {
      batchSize: setup.batchSize,
      seqLen: setup.seqLen,
      padId,
      seed: setup.seed,
      mode: setup.packing === true ? 'pack' : 'pad',
      ...(eosId !== undefined ? { eosId } : {}),
    });
    await frozen.load(model, source);
    const trainer = new InProcessTrainer(setup, source, tokenizer, data, model, evalModel, roles, stream, plan, frozen);
    await trainer.loadSavedInit();
    await trainer.compileTraining();
    return trainer;
  }

  private get sessionSettings(): SessionSettings {
    return {
      device: this.setup.device,
      ...(this.setup.threads !== undefined ? { threads: this.setup.threads } : {}),
      ...(this.setup.ortLogLevel !== undefined ? { logLevel: this.setup.ortLogLevel } : {}),
      form: this.form,
    };
  }

  /** Feeds of `rows`-row batches: padded to rows × seqLen where the device's sessions have fixed shapes. */
  private layout(rows: number): FeedLayout {
    const padId = this.tokenizer !== null ? padIdFor(this.tokenizer.special) : 0;
    return { int32: this.form.int32Batch, padId, ...(this.form.fixedShapes ? { fixed: { rows, seq: this.setup.seqLen } } : {}) };
  }

  private async loadFrozen(model: ModelGraph): Promise<void> {
    await this.frozen.load(model, this.source);
  }

  /** Initial values of modules_to_save tensors: the checkpoint's, or N(0, initStd²) seeded by (setup seed, name) for a new head. */
  private async loadSavedInit(): Promise<void> {
    for (const r of this.roles) {
      if (r.saved !== undefined) this.savedInit.set(r.saved.name, await savedInitialValue(r.saved, this.setup.seed, this.source));
    }
  }

  private async compileTraining(): Promise<void> {
    const step = { ...stepSettings(this.setup), recompute: this.plan.recompute };
    const params = this.roles.map((r) => ({ name: r.name, shape: r.shape }));
    const shape = { batch: this.plan.microBatchSize, seq: this.setup.seqLen };
    const sessions = this.plan.gradAccumulation === 1
      ? { step: await compileStep(this.trainModel, step, this.sessionSettings, shape) }
      : { grads: await compileGrads(this.trainModel, this.sessionSettings, shape, this.plan.recompute), apply: await compileApply(params, step, this.sessionSettings) };
    this.runner = new StepRunner(params, step.optimizer, sessions);
  }

  private get names(): BatchInputNames {
    return { inputIds: this.trainModel.inputIds.name, attentionMask: this.trainModel.attentionMask.name, labels: this.trainModel.labels.name };
  }

  initialAdapter(seed: number): AdapterTensors {
    const modules = initAdaptedModules(this.modules, this.setup.lora, seed);
    return { modules, saved: new Map([...this.savedInit].map(([k, v]) => [k, v.slice()])) };
  }

  /** Frozen weights with the overrides in place (by module path → the module's base tensor). */
  private baseFeeds(overrides: BaseOverrides | undefined, model: ModelGraph): Record<string, OrtTensor> {
    return this.frozen.withOverrides(overrides, model, this.modules);
  }

  /** Every adapter tensor by input name, checked against the modules. */
  private adapterValues(adapter: AdapterTensors): Map<string, Float32Array> {
    const values = new Map<string, Float32Array>();
    for (const m of this.modules) {
      const f: LoraFactors | undefined = adapter.modules.get(m.path);
      if (f === undefined) throw new Error(`trainer: the adapter has no factors for module '${m.path}'`);
      const r = moduleLora(this.setup.lora, m.path).rank;
      if (f.a.shape[0] !== r || f.a.shape[1] !== m.inFeatures || f.a.data.length !== r * m.inFeatures) {
        throw new Error(`trainer: module '${m.path}': A is [${f.a.shape.join(', ')}], expected [${r}, ${m.inFeatures}]`);
      }
      if (f.b.shape[0] !== m.outFeatures || f.b.shape[1] !== r || f.b.data.length !== r * m.outFeatures) {
        throw new Error(`trainer: module '${m.path}': B is [${f.b.shape.join(', ')}], expected [${m.outFeatures}, ${r}]`);
      }
      values.set(m.aInput, f.a.data);
      values.set(m.bInput, f.b.data);
      if (m.rInput !== undefined) {
        // LoRA-SB: R is fed as well; a plain LoRA adapter has none to give, and an R given to a plain graph would be dropped.
        if (f.r === undefined) throw new Error(`trainer: module '${m.path}': the trainer was built for LoRA-SB (Fed-SB) and the adapter has no R`);
        if (f.r.shape[0] !== r || f.r.shape[1] !== r || f.r.data.length !== r * r) throw new Error(`trainer: module '${m.path}': R is [${f.r.shape.join(', ')}], expected [${r}, ${r}]`);
        values.set(m.rInput, f.r.data);
      } else if (f.r !== undefined) {
        throw new Error(`trainer: module '${m.path}': the adapter carries a LoRA-SB R but the trainer was built for plain LoRA (set lora.loraSb, or pass the factors (A, B·R))`);
      }
    }
    for (const s of this.info.saved) {
      const v = adapter.saved?.get(s.name) ?? this.savedInit.get(s.name)!;
      if (v.length !== numel(s.shape)) throw new Error(`trainer: saved tensor ${s.name} has ${v.length} values, [${s.shape.join(', ')}] needs ${numel(s.shape)}`);
      values.set(s.input, v);
    }
    return values;
  }

  private static tensorFeeds(values: ReadonlyMap<string, Float32Array>, model: ModelGraph): Record<string, OrtTensor> {
    const feeds: Record<string, OrtTensor> = {};
    for (const v of model.graph.inputs) {
      const data = values.get(v.name);
      if (data !== undefined) feeds[v.name] = ortTensor('float32', data, v.shape as number[]);
    }
    return feeds;
  }

  private checkOpen(): void {
    if (this.disposed) throw new Error('trainer: used after dispose()');
  }

  async train(start: TrainStart, run: TrainRun, hooks: InProcessHooks = {}): Promise<TrainOutcome> {
    this.checkOpen();
    const runner = this.runner!;
    const k = this.setup.gradAccumulation ?? 1;
    const totalSteps = run.steps ?? Math.ceil(((run.epochs ?? 1) * this.stream.batchesPerEpoch) / k);
    if (!Number.isInteger(totalSteps) || totalSteps < 0) throw new RangeError(`train: steps must be a non-negative integer, got ${totalSteps}`);
    const lr = run.lr ?? this.setup.lr;
    checkLearningRate(lr, 'train');
    const schedule = { kind: this.setup.schedule ?? 'constant', lr, totalSteps, warmupSteps: this.setup.warmupSteps ?? 0 } as const;
    const values = this.adapterValues(start.adapter);
    runner.setValues(values);
    if (run.resetOptimizer !== false) runner.resetOptimizer();
    const constants = { ...this.baseFeeds(start.baseOverrides, this.trainModel), ...InProcessTrainer.tensorFeeds(values, this.trainModel) };
    const seedInput = this.trainModel.dropoutSeed?.name;
    const layout = this.layout(this.plan.microBatchSize);
    const started = performance.now();
    let tokens = 0;
    let examples = 0;
    let lossSum = 0;
    let lossTokens = 0;
    for (let step = 0; step < totalSteps; step++) {
      const batches: MicroBatch[] = [];
      let epoch = 0;
      for (let i = 0; i < k; i++) {
        throwIfAborted(hooks.signal, 'training');
        const next = this.stream.next();
        epoch = next.epoch;
        // A batch too large for the memory budget runs as several micro-batches of the same step.
        for (const part of splitBatch(next.batch, this.plan.microBatchSize)) {
          const feeds: Feeds = batchFeeds(part, this.names, layout);
          if (seedInput !== undefined) {
            // deriveSeed is below 2³²: the same seed as uint32 where the form narrows it (lower.ts).
            const seed = deriveSeed(this.setup.seed, 'dropout', this.microBatches);
            feeds[seedInput] = this.form.int32Batch ? ortTensor('uint32', Uint32Array.of(seed), []) : ortTensor('int64', BigInt64Array.of(BigInt(seed)), []);
            // Fixed shapes: the masks of the batch as it is, not as padded.
            if (this.form.fixedShapes) feeds[DROPOUT_SIZES] = ortTensor('uint32', Uint32Array.from(part.shape), [2]);
          }
          this.microBatches++;
          batches.push({ feeds, lossTokens: part.lossTokens });
        }
        tokens += next.batch.attentionMask.reduce((s, x) => s + x, 0);
        examples += next.batch.shape[0];
      }
      const stepLr = learningRate(schedule, step);
      const losses = await runner.step(batches, stepLr, constants);
      const stepTokens = batches.reduce((s, b) => s + b.lossTokens, 0);
      const stepLoss = stepTokens > 0 ? losses.reduce((s, l, i) => s + l * batches[i].lossTokens, 0) / stepTokens : losses.reduce((a, b) => a + b, 0) / losses.length;
      lossSum += stepLoss * stepTokens;
      lossTokens += stepTokens;
      if (!Number.isFinite(stepLoss)) throw new Error(`training diverged: the loss is ${stepLoss} at step ${step + 1} (lower the learning rate or set maxGradNorm)`);
      if (hooks.onProgress !== undefined) {
        const elapsed = (performance.now() - started) / 1000;
        const progress: TrainProgress = {
          step: step + 1,
          totalSteps,
          loss: stepLoss,
          lr: stepLr,
          epoch,
          tokensPerSecond: elapsed > 0 ? tokens / elapsed : 0,
          etaSeconds: (elapsed / (step + 1)) * (totalSteps - step - 1),
        };
        hooks.onProgress(progress);
      }
    }
    return {
      adapter: this.adapterFromRunner(start.adapter, totalSteps === 0),
      numExamples: examples,
      trainLoss: lossTokens > 0 ? lossSum / lossTokens : Number.NaN,
      steps: totalSteps,
      tokens,
      seconds: (performance.now() - started) / 1000,
    };
  }

  /** The runner's values as an adapter (fresh arrays; frozen A — and LoRA-SB's frozen A, B — copied from the start adapter). */
  private adapterFromRunner(start: AdapterTensors, copy: boolean): AdapterTensors {
    const runner = this.runner!;
    const trainable = new Set(this.roles.map((r) => r.name));
    const take = (name: string, fallback: Float32Array): Float32Array => {
      const v = trainable.has(name) ? runner.value(name) : fallback;
      return copy || !trainable.has(name) ? v.slice() : v;
    };
    const modules = new Map<string, LoraFactors>();
    for (const m of this.modules) {
      const f = start.modules.get(m.path)!;
      const r = m.rInput !== undefined && f.r !== undefined ? { r: { shape: f.r.shape, data: take(m.rInput, f.r.data) } } : {};
      modules.set(m.path, { a: { shape: f.a.shape, data: take(m.aInput, f.a.data) }, b: { shape: f.b.shape, data: take(m.bInput, f.b.data) }, ...r });
    }
    const saved = new Map<string, Float32Array>();
    for (const s of this.info.saved) saved.set(s.name, take(s.input, start.saved?.get(s.name) ?? this.savedInit.get(s.name)!));
    return { modules, saved };
  }

  private async evalSessions(): Promise<{ model: ModelGraph; session: OrtSession }> {
    if (this.evalSession === null) {
      await this.loadFrozen(this.evalModel);
      this.evalSession = await compileEval(this.evalModel, this.sessionSettings, { batch: this.plan.evalBatchSize, seq: this.setup.seqLen });
    }
    return { model: this.evalModel, session: this.evalSession };
  }

  async evaluate(state: { adapter: AdapterTensors; baseOverrides?: BaseOverrides }, options: InProcessEvalOptions = {}): Promise<EvalResult> {
    this.checkOpen();
    throwIfAborted(options.signal, 'evaluation');
    const { model, session } = await this.evalSessions();
    const data = options.data === undefined ? this.data.eval : await this.loadEvalData(options.data);
    const values = this.adapterValues(state.adapter);
    const constants = { ...this.baseFeeds(state.baseOverrides, model), ...InProcessTrainer.tensorFeeds(values, model) };
    return evaluateExamples({
      names: this.names,
      evalSession: session,
      generateSession: async () => (this.generateSession ??= await compileGenerate(model, this.sessionSettings, { batch: this.plan.evalBatchSize, seq: this.setup.seqLen })),
      layout: this.layout(this.plan.evalBatchSize),
      constants,
      tokenizer: this.tokenizer,
      padId: this.tokenizer !== null ? padIdFor(this.tokenizer.special) : 0,
      eosId: this.tokenizer?.special.eos ?? null,
      batchSize: this.plan.evalBatchSize,
      seqLen: this.setup.seqLen,
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
    }, data, { ...(options.maxExamples !== undefined ? { maxExamples: options.maxExamples } : {}), ...(options.exactMatch !== undefined ? { exactMatch: options.exactMatch } : {}) });
  }

  private async loadEvalData(spec: string): Promise<EncodedDataset> {
    const dataset = await loadSpec(spec, this.setup.seed, isTaskSpec(spec) ? 'eval' : undefined);
    if (dataset.kind !== this.data.kind) throw new Error(`evaluate: ${spec} holds ${dataset.kind} records, the trainer was built for ${this.data.kind} data`);
    return encodeDataset(dataset, this.tokenizer, { seqLen: this.setup.seqLen });
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.source.close();
  }
}

/** Trainable inputs and where their values come from (A, B of a module, or a saved tensor). */
function paramRoles(model: ModelGraph): ParamRole[] {
  const full = model.fullTrainable ?? [];
  return model.trainable.map((p) => {
    const shape = p.shape as number[];
    const a = model.modules.find((m) => m.aInput === p.name);
    if (a !== undefined) return { name: p.name, shape, module: a.path, factor: 'a' as const };
    const b = model.modules.find((m) => m.bInput === p.name);
    if (b !== undefined) return { name: p.name, shape, module: b.path, factor: 'b' as const };
    const r = model.modules.find((m) => m.rInput === p.name);
    if (r !== undefined) return { name: p.name, shape, module: r.path, factor: 'r' as const };
    const f = full.find((x) => x.input === p.name);
    if (f === undefined) throw new Error(`trainer: trainable input ${p.name} is neither a LoRA factor nor listed in the model's fullTrainable`);
    return { name: p.name, shape, factor: 'saved' as const, saved: f };
  });
}

function checkClasses(model: ModelGraph, labelNames: readonly string[] | undefined): void {
  if (model.task !== 'sequence-classification' || labelNames === undefined) return;
  const classes = model.logits.shape[model.logits.rank - 1];
  if (typeof classes === 'number' && classes < labelNames.length) {
    throw new Error(`trainer: the data has ${labelNames.length} classes (${labelNames.join(', ')}) but the model's head has ${classes} (set num_labels in config.json)`);
  }
}
