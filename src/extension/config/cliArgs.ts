/**
 * The `fedex.*` settings, read and checked, and their mapping onto `fedex` CLI arguments for
 * simulate, host, join, aggregate and export. No vscode here: `readSettings` takes a getter.
 */
import type { BasePrecision } from '../../model/basePrecision.js';
import type { RecomputeMode } from '../../trainer/memoryPlan.js';
import type { ExportKind } from '../../federation/export/exportFederation.js';

/** A remote federation listed in settings. */
export interface RemoteFederation {
  readonly name: string;
  readonly url: string;
}

/** The extension's settings (`fedex.*`), with defaults filled in. */
export interface FedexSettings {
  readonly device: string;
  /** Precision the frozen base weights are held in while training (`--base-precision`; docs/devices.md). */
  readonly basePrecision: BasePrecision;
  /** Activation recomputation per transformer block while training (`--recompute`; docs/devices.md). */
  readonly recompute: RecomputeMode;
  /** Model folder; empty = the CLI's default tiny model. */
  readonly model: string;
  /** Data spec (`task:NAME` or a JSONL path); empty = the CLI's default synthetic task. */
  readonly data: string;
  readonly rank: number;
  readonly alpha: number;
  /** Empty = the model's default target modules. */
  readonly targetModules: readonly string[];
  readonly port: number;
  readonly bindAddress: string;
  readonly rounds: number;
  /** Clients a hosted federation waits for before each round starts. */
  readonly minClients: number;
  /** A hosted federation runs each round only when asked (FedEx: Start Round), once `minClients` have joined. */
  readonly manualRounds: boolean;
  readonly localSteps: number;
  readonly method: 'fedex' | 'fedit' | 'ffa' | 'flora' | 'fedsb';
  /** A hosted federation refuses an update farther than this × the global adapter's norm from it (0: off). */
  readonly maxUpdateRatio: number;
  /** FedEx with each round's residual truncated to this rank (the paper's best inexact variant); 0: exact. */
  readonly residualRank: number;
  /** Client-level DP for hosted federations and simulations: clip each client's update to this L2 norm (0: DP off). */
  readonly dpClip: number;
  /** DP noise multiplier σ (noise std σ·C/m); used when `dpClip` > 0. */
  readonly dpNoise: number;
  /** δ of the (ε, δ) reported per round; used when `dpClip` > 0. */
  readonly dpDelta: number;
  /** How hosted federations, simulations and Aggregate Adapters combine client adapters: the mean, or the coordinate-wise median / trimmed mean. */
  readonly aggregation: 'mean' | 'median' | 'trimmed-mean';
  /** `trimmed-mean`: the share of clients dropped at each end of every coordinate, in [0, 0.5). */
  readonly aggregationTrim: number;
  readonly remoteFederations: readonly RemoteFederation[];
  /** TLS certificate and key (PEM paths) a hosted federation serves wss:// with; empty: ws://. */
  readonly hostCert: string;
  readonly hostKey: string;
  /** Mutual TLS: a hosted federation admits only clients with a certificate this CA (PEM path) signed; empty: none asked for. */
  readonly hostClientCa: string;
  /** A hosted federation admits only the clients enrolled in this registry (JSON path), each by its own key; empty: the shared join token. */
  readonly hostClients: string;
  /** Ranks clients may train at below the global rank (`fedex host --ranks`); empty: every client at `rank`. */
  readonly hostRanks: readonly number[];
  /** The rank this client trains at when joining (`fedex join --rank`); 0: the coordinator's global rank. */
  readonly joinRank: number;
  /** The identity key file (`fedex keygen`) a joining client presents instead of a token; empty: the token. */
  readonly joinIdentity: string;
  /** A CA certificate (PEM path) a joining client trusts in addition to the system's. */
  readonly joinCa: string;
  /** Mutual TLS: the client certificate and key (PEM paths) a joining client presents; empty: none. */
  readonly joinClientCert: string;
  readonly joinClientKey: string;
}

/** Defaults (also written as the defaults of `contributes.configuration` in package.json). */
export const DEFAULT_SETTINGS: FedexSettings = {
  device: 'cpu',
  basePrecision: 'fp32',
  recompute: 'auto',
  model: '',
  data: '',
  rank: 8,
  alpha: 16,
  targetModules: [],
  port: 8765,
  bindAddress: '127.0.0.1',
  rounds: 5,
  minClients: 2,
  manualRounds: false,
  localSteps: 10,
  method: 'fedex',
  maxUpdateRatio: 1000,
  residualRank: 0,
  remoteFederations: [],
  aggregation: 'mean',
  aggregationTrim: 0.2,
  dpClip: 0,
  dpNoise: 1,
  dpDelta: 1e-5,
  hostCert: '',
  hostKey: '',
  hostClientCa: '',
  hostClients: '',
  hostRanks: [],
  joinRank: 0,
  joinIdentity: '',
  joinCa: '',
  joinClientCert: '',
  joinClientKey: '',
};

/** The base precisions (`fedex.basePrecision`), as src/model/basePrecision.ts lists them (a type import keeps the graph code out of the extension). */
export const BASE_PRECISIONS: readonly BasePrecision[] = ['fp32', 'fp16', 'bf16', 'int4'];

/** The recomputation modes (`fedex.recompute`), as src/trainer/memoryPlan.ts lists them. */
export const RECOMPUTE_MODES: readonly RecomputeMode[] = ['auto', 'on', 'off'];

/** The aggregation rules (`fedex.aggregation`). */
export const AGGREGATIONS: readonly FedexSettings['aggregation'][] = ['mean', 'median', 'trimmed-mean'];

/** The federated methods (`fedex.method`). */
export const METHODS: readonly FedexSettings['method'][] = ['fedex', 'fedit', 'ffa', 'flora', 'fedsb'];

/** Settings and the problems found while reading them (each names the setting and the bad value). */
export interface SettingsRead {
  readonly settings: FedexSettings;
  readonly problems: readonly string[];
}

/** Reads every `fedex.*` setting through `get('rank')` etc.; bad values fall back to the default and are reported. */
export function readSettings(get: (key: string) => unknown): SettingsRead {
  const problems: string[] = [];
  const d = DEFAULT_SETTINGS;
  const str = (key: keyof FedexSettings, fallback: string): string => {
    const v = get(key);
    if (v === undefined || v === null) return fallback;
    if (typeof v === 'string') return v.trim();
    problems.push(`fedex.${key} must be a string, got ${JSON.stringify(v)}; using '${fallback}'`);
    return fallback;
  };
  const int = (key: keyof FedexSettings, fallback: number, min: number, max: number): number => {
    const v = get(key);
    if (v === undefined || v === null) return fallback;
    if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
    problems.push(`fedex.${key} must be an integer in ${min}..${max}, got ${JSON.stringify(v)}; using ${fallback}`);
    return fallback;
  };
  const bool = (key: keyof FedexSettings, fallback: boolean): boolean => {
    const v = get(key);
    if (v === undefined || v === null) return fallback;
    if (typeof v === 'boolean') return v;
    problems.push(`fedex.${key} must be true or false, got ${JSON.stringify(v)}; using ${fallback}`);
    return fallback;
  };
  const nonNegative = (key: keyof FedexSettings, fallback: number): number => {
    const v = get(key);
    if (v === undefined || v === null) return fallback;
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
    problems.push(`fedex.${key} must be a number ≥ 0, got ${JSON.stringify(v)}; using ${fallback}`);
    return fallback;
  };
  const alphaRaw = get('alpha');
  let alpha = d.alpha;
  if (alphaRaw !== undefined && alphaRaw !== null) {
    if (typeof alphaRaw === 'number' && alphaRaw > 0 && Number.isFinite(alphaRaw)) alpha = alphaRaw;
    else problems.push(`fedex.alpha must be a number > 0, got ${JSON.stringify(alphaRaw)}; using ${d.alpha}`);
  }
  const precisionRaw = str('basePrecision', d.basePrecision);
  const basePrecision = (BASE_PRECISIONS as readonly string[]).includes(precisionRaw) ? (precisionRaw as BasePrecision) : d.basePrecision;
  if (basePrecision !== precisionRaw) problems.push(`fedex.basePrecision must be one of ${BASE_PRECISIONS.join(', ')}, got '${precisionRaw}'; using ${d.basePrecision}`);
  const recomputeRaw = str('recompute', d.recompute);
  const recompute = (RECOMPUTE_MODES as readonly string[]).includes(recomputeRaw) ? (recomputeRaw as RecomputeMode) : d.recompute;
  if (recompute !== recomputeRaw) problems.push(`fedex.recompute must be one of ${RECOMPUTE_MODES.join(', ')}, got '${recomputeRaw}'; using ${d.recompute}`);
  const methodRaw = str('method', d.method);
  const method = (METHODS as readonly string[]).includes(methodRaw) ? (methodRaw as FedexSettings['method']) : d.method;
  if (method !== methodRaw) problems.push(`fedex.method must be one of ${METHODS.join(', ')}, got '${methodRaw}'; using ${d.method}`);
  const aggregationRaw = str('aggregation', d.aggregation);
  const aggregation = (AGGREGATIONS as readonly string[]).includes(aggregationRaw) ? (aggregationRaw as FedexSettings['aggregation']) : d.aggregation;
  if (aggregation !== aggregationRaw) problems.push(`fedex.aggregation must be one of ${AGGREGATIONS.join(', ')}, got '${aggregationRaw}'; using ${d.aggregation}`);
  const trimRaw = get('aggregationTrim');
  let aggregationTrim = d.aggregationTrim;
  if (trimRaw !== undefined && trimRaw !== null) {
    if (typeof trimRaw === 'number' && trimRaw >= 0 && trimRaw < 0.5) aggregationTrim = trimRaw;
    else problems.push(`fedex.aggregationTrim must be a number in [0, 0.5), got ${JSON.stringify(trimRaw)}; using ${d.aggregationTrim}`);
  }
  const targetsRaw = get('targetModules');
  let targetModules: string[] = [];
  if (Array.isArray(targetsRaw) && targetsRaw.every((t) => typeof t === 'string')) targetModules = (targetsRaw as string[]).map((t) => t.trim()).filter((t) => t !== '');
  else if (typeof targetsRaw === 'string') targetModules = targetsRaw.split(',').map((t) => t.trim()).filter((t) => t !== '');
  else if (targetsRaw !== undefined && targetsRaw !== null) problems.push(`fedex.targetModules must be a list of module names, got ${JSON.stringify(targetsRaw)}`);
  return {
    settings: {
      device: str('device', d.device) || d.device,
      basePrecision,
      recompute,
      model: str('model', d.model),
      data: str('data', d.data),
      rank: int('rank', d.rank, 1, 4096),
      alpha,
      targetModules,
      port: int('port', d.port, 0, 65535),
      bindAddress: str('bindAddress', d.bindAddress) || d.bindAddress,
      rounds: int('rounds', d.rounds, 1, 1_000_000),
      minClients: int('minClients', d.minClients, 1, 1_000_000),
      manualRounds: bool('manualRounds', d.manualRounds),
      localSteps: int('localSteps', d.localSteps, 1, 100_000_000),
      method,
      maxUpdateRatio: nonNegative('maxUpdateRatio', d.maxUpdateRatio),
      residualRank: int('residualRank', d.residualRank, 0, 1_000_000),
      dpClip: nonNegative('dpClip', d.dpClip),
      dpNoise: nonNegative('dpNoise', d.dpNoise),
      dpDelta: readDelta(get('dpDelta'), d.dpDelta, problems),
      aggregation,
      aggregationTrim,
      remoteFederations: readRemotes(get('remoteFederations'), problems),
      hostCert: str('hostCert', d.hostCert),
      hostKey: str('hostKey', d.hostKey),
      hostClientCa: str('hostClientCa', d.hostClientCa),
      hostClients: str('hostClients', d.hostClients),
      hostRanks: readRanks(get('hostRanks'), problems),
      joinRank: int('joinRank', d.joinRank, 0, 4096),
      joinIdentity: str('joinIdentity', d.joinIdentity),
      joinCa: str('joinCa', d.joinCa),
      joinClientCert: str('joinClientCert', d.joinClientCert),
      joinClientKey: str('joinClientKey', d.joinClientKey),
    },
    problems,
  };
}

/** `fedex.dpDelta`: a number in (0, 1). */
function readDelta(raw: unknown, fallback: number, problems: string[]): number {
  if (raw === undefined || raw === null) return fallback;
  if (typeof raw === 'number' && raw > 0 && raw < 1) return raw;
  problems.push(`fedex.dpDelta must be a number in (0, 1), got ${JSON.stringify(raw)}; using ${fallback}`);
  return fallback;
}

function readRemotes(raw: unknown, problems: string[]): RemoteFederation[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    problems.push('fedex.remoteFederations must be a list of {name, url}');
    return [];
  }
  const out: RemoteFederation[] = [];
  raw.forEach((item: unknown, i) => {
    const r = item as Partial<Record<'name' | 'url', unknown>> | null;
    const url = typeof r?.url === 'string' ? r.url.trim() : '';
    const problem = validateFederationUrl(url);
    if (problem !== null) {
      problems.push(`fedex.remoteFederations[${i}]: ${problem}`);
      return;
    }
    out.push({ name: typeof r?.name === 'string' && r.name.trim() !== '' ? r.name.trim() : url, url });
  });
  return out;
}

/** Null when `url` is a ws:// or wss:// URL with a host, else why not. */
export function validateFederationUrl(url: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `'${url}' is not a URL (expected ws://host:port or wss://host:port)`;
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') return `'${url}' must start with ws:// or wss://`;
  if (parsed.hostname === '') return `'${url}' has no host`;
  return null;
}

/** The `--events -` tail every long-running command gets: the JSONL stream on stdout. */
const EVENTS = ['--events', '-'] as const;

function loraArgs(s: FedexSettings): string[] {
  return [
    '--rank',
    String(s.rank),
    '--alpha',
    String(s.alpha),
    ...(s.targetModules.length > 0 ? ['--target-modules', s.targetModules.join(',')] : []),
  ];
}

function optional(flag: string, value: string): string[] {
  return value === '' ? [] : [flag, value];
}

/** `--aggregation` (with `--trim` for a trimmed mean), nothing for the mean (the CLI's default). */
function aggregationArgs(aggregation: FedexSettings['aggregation'] | undefined, trim: number | undefined): string[] {
  if (aggregation === undefined || aggregation === 'mean') return [];
  return ['--aggregation', aggregation, ...(aggregation === 'trimmed-mean' && trim !== undefined ? ['--trim', String(trim)] : [])];
}

/** `--dp-clip C --dp-noise σ --dp-delta δ` when client-level DP is on (`fedex.dpClip` > 0), else nothing. */
function privacyArgs(s: FedexSettings): string[] {
  return s.dpClip > 0 ? ['--dp-clip', String(s.dpClip), '--dp-noise', String(s.dpNoise), '--dp-delta', String(s.dpDelta)] : [];
}

/** `--base-precision P` unless it is the CLI's default (fp32). */
function precisionArgs(s: FedexSettings): string[] {
  return [...(s.basePrecision === 'fp32' ? [] : ['--base-precision', s.basePrecision]), ...(s.recompute === 'auto' ? [] : ['--recompute', s.recompute])];
}

/** `fedex.hostRanks`: a list of integers in 1..4096 (empty when absent); anything else is reported and ignored. */
function readRanks(raw: unknown, problems: string[]): number[] {
  if (raw === undefined || raw === null) return [];
  if (Array.isArray(raw) && raw.every((r) => Number.isInteger(r) && (r as number) >= 1 && (r as number) <= 4096)) return [...new Set(raw as number[])].sort((a, b) => a - b);
  problems.push(`fedex.hostRanks must be a list of integers in 1..4096 (e.g. [4, 8]), got ${JSON.stringify(raw)}; clients train at fedex.rank`);
  return [];
}

/**
 * `fedex simulate …` for a local simulation writing to `out`: one seed (the dashboard follows one
 * run; `fedex simulate --seeds N` in a terminal compares methods over seeds, docs/simulate.md).
 */
export function simulateArgs(s: FedexSettings, o: { out: string; methods?: readonly string[]; clients?: number }): string[] {
  return [
    'simulate',
    '--seeds',
    '1',
    ...(o.methods !== undefined && o.methods.length > 0 ? ['--methods', o.methods.join(',')] : []),
    ...(o.clients !== undefined ? ['--clients', String(o.clients)] : []),
    '--rounds',
    String(s.rounds),
    '--local-steps',
    String(s.localSteps),
    ...loraArgs(s),
    ...optional('--model', s.model),
    ...optional('--data', s.data),
    '--device',
    s.device,
    ...precisionArgs(s),
    ...(s.residualRank > 0 ? ['--residual-rank', String(s.residualRank)] : []),
    ...aggregationArgs(s.aggregation, s.aggregationTrim),
    ...privacyArgs(s),
    '--out',
    o.out,
    ...EVENTS,
  ];
}

/**
 * `fedex host …`: a coordinator on `bindAddress:port` writing its run folder to `out`. The join
 * token is never an argument (the process list shows arguments): it travels in the environment
 * (`tokenEnv`). With `manualRounds`, `--manual-rounds`: the CLI reads `start` lines on stdin.
 */
export function hostArgs(s: FedexSettings, o: { out: string; port?: number }): string[] {
  return [
    'host',
    '--host',
    s.bindAddress,
    '--port',
    String(o.port ?? s.port),
    '--rounds',
    String(s.rounds),
    '--min-clients',
    String(s.minClients),
    '--method',
    s.method,
    '--local-steps',
    String(s.localSteps),
    '--max-update-ratio',
    String(s.maxUpdateRatio),
    ...(s.residualRank > 0 && s.method === 'fedex' ? ['--residual-rank', String(s.residualRank)] : []),
    ...aggregationArgs(s.aggregation, s.aggregationTrim),
    ...privacyArgs(s),
    ...optional('--cert', s.hostCert),
    ...optional('--key', s.hostKey),
    ...optional('--client-ca', s.hostClientCa),
    ...optional('--clients', s.hostClients),
    ...(s.hostRanks.length > 0 ? ['--ranks', s.hostRanks.join(',')] : []),
    ...loraArgs(s),
    ...optional('--model', s.model),
    ...(s.manualRounds ? ['--manual-rounds'] : []),
    '--out',
    o.out,
    ...EVENTS,
  ];
}

/** The environment that hands a `fedex host` or `fedex join` process its join token (FEDEX_TOKEN, never argv). */
export function tokenEnv(token: string): Record<string, string> {
  return { FEDEX_TOKEN: token };
}

/** `fedex join <url> …`: a client training on `data`; with `out`, the final global adapter is written there (PEFT). Its token goes in {@link tokenEnv}. */
export function joinArgs(s: FedexSettings, o: { url: string; name?: string; out?: string }): string[] {
  return [
    'join',
    o.url,
    ...optional('--data', s.data),
    ...optional('--model', s.model),
    '--device',
    s.device,
    ...precisionArgs(s),
    ...(s.joinRank > 0 ? ['--rank', String(s.joinRank)] : []),
    ...optional('--identity', s.joinIdentity),
    ...optional('--ca', s.joinCa),
    ...optional('--client-cert', s.joinClientCert),
    ...optional('--client-key', s.joinClientKey),
    ...(o.name !== undefined && o.name !== '' ? ['--name', o.name] : []),
    ...optional('--out', o.out ?? ''),
    ...EVENTS,
  ];
}

/** `fedex clients add <pub>|revoke <id>|list --clients <registry>` (list as JSON). */
export function clientsArgs(registry: string, action: { add: string } | { revoke: string } | 'list'): string[] {
  if (action === 'list') return ['clients', 'list', '--clients', registry, '--json'];
  return 'add' in action ? ['clients', 'add', action.add, '--clients', registry] : ['clients', 'revoke', action.revoke, '--clients', registry];
}

/** `fedex keygen --client-id <id> --out <file.key>`. */
export function keygenArgs(clientId: string, out: string): string[] {
  return ['keygen', '--client-id', clientId, '--out', out];
}

/** `fedex aggregate …` over PEFT adapter folders (a robust `aggregation` is unweighted: not with `weights`). */
export function aggregateArgs(o: {
  method: string;
  base: string;
  adapters: readonly string[];
  out: string;
  device: string;
  weights?: readonly number[];
  force?: boolean;
  aggregation?: FedexSettings['aggregation'];
  trim?: number;
}): string[] {
  if (o.adapters.length === 0) throw new Error('aggregateArgs: no adapter folders given');
  return [
    'aggregate',
    '--method',
    o.method,
    '--base',
    o.base,
    '--adapters',
    ...o.adapters,
    ...(o.weights !== undefined && o.weights.length > 0 ? ['--weights', o.weights.join(',')] : []),
    ...aggregationArgs(o.aggregation, o.trim),
    '--out',
    o.out,
    '--device',
    o.device,
    ...(o.force === true ? ['--force'] : []),
    '--json',
  ];
}

/**
 * `fedex export <source> …` of a finished federation: `source` is a run folder (`fedex host --out`,
 * or one `runs/<method>` of a simulation) or a `fedex simulate --out` folder, where `method` picks
 * the run. `device` is the onnxruntime device for the merged weights. The report comes as JSON.
 */
export function exportArgs(o: { source: string; out: string; as: ExportKind; method?: string; device: string; maxRank?: number; maxError?: number; force?: boolean }): string[] {
  return [
    'export',
    o.source,
    '--out',
    o.out,
    '--as',
    o.as,
    ...(o.method !== undefined ? ['--method', o.method] : []),
    ...(o.maxRank !== undefined ? ['--max-rank', String(o.maxRank)] : []),
    ...(o.maxError !== undefined ? ['--max-error', String(o.maxError)] : []),
    '--device',
    o.device,
    ...(o.force === true ? ['--force'] : []),
    '--json',
  ];
}
