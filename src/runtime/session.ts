/**
 * The one door to onnxruntime-node. Creates sessions from ONNX bytes, maps device names to
 * execution providers, checks feeds against the session's inputs, and names the shapes and dtypes
 * of the feeds when onnxruntime throws.
 */
import ort from 'onnxruntime-node';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';

export type Device = 'cpu' | 'cuda' | 'webgpu';
export const DEVICES: readonly Device[] = ['cpu', 'cuda', 'webgpu'];

export type OrtTensor = ort.Tensor;
export type OrtSession = ort.InferenceSession;

/** Raised when a device is requested that this installation cannot provide. */
export class DeviceUnavailableError extends Error {
  readonly code = 'DEVICE_UNAVAILABLE';
  /** `failedHere`: the device is installed but could not start on this machine (left out of the list). */
  constructor(device: string, detail: string, failedHere = false) {
    super(`device '${device}' is not available: ${detail}. Available here: ${availableDevices().filter((d) => !(failedHere && d === device)).join(', ')}.`);
    this.name = 'DeviceUnavailableError';
  }
}

/**
 * The CUDA provider is not bundled in the npm package: onnxruntime-node's installer puts
 * libonnxruntime_providers_cuda.so beside the runtime (see README "GPU"). True when it is there.
 */
export function cudaProviderInstalled(): boolean {
  if (process.platform !== 'linux' && process.platform !== 'win32') return false;
  try {
    const pkg = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
    const lib = process.platform === 'linux' ? 'libonnxruntime_providers_cuda.so' : 'onnxruntime_providers_cuda.dll';
    return existsSync(join(pkg, 'bin', 'napi-v6', process.platform, process.arch, lib));
  } catch {
    return false;
  }
}

/** Devices whose execution provider is compiled into, or installed beside, this onnxruntime-node. */
export function availableDevices(): Device[] {
  const backends = ort.listSupportedBackends();
  return DEVICES.filter((d) => d === 'cpu' || backends.some((b) => b.name === d && (b.bundled || (d === 'cuda' && cudaProviderInstalled()))));
}

/**
 * SwiftShader, the software Vulkan driver in Debian's chromium-common package: WebGPU without a GPU
 * (CI, tests) on Linux x64. Both variables must be set when the process starts.
 */
export const SWIFTSHADER_ENV: Readonly<Record<'VK_ICD_FILENAMES' | 'LD_LIBRARY_PATH', string>> = {
  VK_ICD_FILENAMES: '/usr/lib/chromium/vk_swiftshader_icd.json',
  LD_LIBRARY_PATH: '/usr/lib/chromium',
};

/**
 * Why the WebGPU provider found no adapter: a Vulkan driver manifest named in the environment that
 * does not exist (the usual slip), what a real GPU needs per platform, and the software route.
 */
export function noWebGpuAdapter(env: Readonly<Record<string, string | undefined>>, fileExists: (path: string) => boolean): string {
  // The Vulkan loader reads VK_DRIVER_FILES (newer name) or VK_ICD_FILENAMES: manifest paths, PATH-style.
  const missing = ['VK_DRIVER_FILES', 'VK_ICD_FILENAMES'].flatMap((name) => (env[name] ?? '').split(delimiter).filter((f) => f !== '' && !fileExists(f)).map((f) => ` ${name} names ${f}, which does not exist.`));
  const software = Object.entries(SWIFTSHADER_ENV).map(([k, v]) => `${k}=${v}`).join(' ');
  return 'the WebGPU provider is installed but found no GPU adapter on this machine.' + missing.join('')
    + " It needs Linux x64 with the Vulkan loader (libvulkan.so.1) and the GPU driver's Vulkan ICD (NVIDIA: nvidia_icd.json;"
    + ' in a container NVIDIA_DRIVER_CAPABILITIES must include graphics), Windows with D3D12, or macOS on Apple silicon (Metal).'
    + " Without a GPU (CI, testing), Linux x64 runs it on SwiftShader, the software Vulkan driver in Debian's chromium-common package:"
    + ` start the process with ${software} (scripts/webgpu/setup.sh in the FedEx repository fetches it)`;
}

/** Why an installed provider could not start, in one line (onnxruntime's text keeps its source location). */
function startFailure(device: string, message: string): string {
  if (device === 'webgpu' && /adapter/i.test(message)) return noWebGpuAdapter(process.env, existsSync);
  const line = message.split('\n').map((l) => l.trim()).filter((l) => l !== '').pop() ?? message;
  return `the ${device} provider failed to start: ${line}`;
}

/** Execution providers for a device name; throws a clear error for unknown or unsupported ones. */
export function executionProviders(device: string): string[] {
  if (!(DEVICES as readonly string[]).includes(device)) {
    throw new DeviceUnavailableError(device, `unknown device (expected one of ${DEVICES.join(', ')})`);
  }
  const backends = ort.listSupportedBackends();
  const entry = backends.find((b) => b.name === device);
  if (entry === undefined) throw new DeviceUnavailableError(device, 'onnxruntime-node has no such backend on this platform');
  if (device === 'cuda' && !cudaProviderInstalled()) {
    throw new DeviceUnavailableError(device, 'the CUDA provider library is not installed (run: ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js)');
  }
  return [device];
}

/**
 * onnxruntime's log severities, most detailed first. `verbose` prints, among much else, where each
 * node runs ("Node placements": the nodes placed on each execution provider).
 */
export const ORT_LOG_LEVELS = ['verbose', 'info', 'warning', 'error', 'fatal'] as const;
export type OrtLogLevel = (typeof ORT_LOG_LEVELS)[number];

export interface SessionOptions {
  device?: Device;
  /**
   * onnxruntime's own log for this session, written by the native library to the process's stderr
   * (default `fatal`: failures are rethrown with the feeds' shapes and dtypes instead).
   */
  logLevel?: OrtLogLevel;
  /** Threads for one operator; onnxruntime's default is all cores. */
  intraOpThreads?: number;
  /**
   * onnxruntime's memory-pattern planning (default on). It pays off for fixed input shapes; with
   * symbolic batch/sequence dims (training and evaluation sessions) it only adds planning runs and
   * memory, so those sessions turn it off.
   */
  memoryPattern?: boolean;
  /**
   * onnxruntime graph optimizers to leave out, by name. Graphs that widen a frozen weight once per
   * use (src/graph/nn/storedWeight.ts) turn off `CommonSubexpressionElimination`, which would merge
   * the copies into one held from the forward pass to the backward.
   */
  disabledOptimizers?: readonly string[];
}

/** Creates a session from ONNX model bytes on the given device. */
export async function createSession(model: Uint8Array, options: SessionOptions = {}): Promise<OrtSession> {
  const device = options.device ?? 'cpu';
  const providers = executionProviders(device);
  try {
    return await ort.InferenceSession.create(model, {
      executionProviders: providers,
      graphOptimizationLevel: 'all',
      // Failures are rethrown with the feeds' shapes and dtypes; onnxruntime's own log would print them twice.
      logSeverityLevel: ORT_LOG_LEVELS.indexOf(options.logLevel ?? 'fatal') as 0 | 1 | 2 | 3 | 4,
      ...(options.intraOpThreads !== undefined ? { intraOpNumThreads: options.intraOpThreads } : {}),
      ...(options.memoryPattern !== undefined ? { enableMemPattern: options.memoryPattern } : {}),
      ...(options.disabledOptimizers !== undefined && options.disabledOptimizers.length > 0
        ? { extra: { optimization: { disable_specified_optimizers: options.disabledOptimizers.join(',') } } } :
        {}),
    });
  } catch (err) {
    if (device !== 'cpu') throw new DeviceUnavailableError(device, startFailure(device, (err as Error).message), true);
    throw err;
  }
}

/**
 * The element types the project feeds onnxruntime, each with the typed array it wraps: float32 and
 * float64 values, float16 and bf16 as their bits (uint16: reinterpreted in the graph), 4-bit codes
 * two per byte (uint8), and int32/uint32 where int64 has no GPU kernels.
 */
export type OrtFeedType = 'float32' | 'float64' | 'float16' | 'uint16' | 'uint8' | 'int32' | 'uint32' | 'int64';

/** Wraps `data` as an onnxruntime tensor of `type` and shape `dims`, without copying. */
export function ortTensor<T extends OrtFeedType>(type: T, data: ort.Tensor.DataTypeMap[T], dims: readonly number[]): OrtTensor {
  return new ort.Tensor(type, data, dims);
}

function describeFeeds(feeds: Record<string, OrtTensor>): string {
  return Object.entries(feeds)
    .map(([name, t]) => `${name}: ${t.type}[${t.dims.join(', ')}]`)
    .join('; ');
}

/**
 * Runs a session after checking that the feeds name exactly the session's inputs. `fetches` may
 * hold preallocated output tensors (onnxruntime writes into them, no copy).
 */
export async function runSession(
  session: OrtSession,
  feeds: Record<string, OrtTensor>,
  fetches?: Record<string, OrtTensor>,
): Promise<Record<string, OrtTensor>> {
  const missing = session.inputNames.filter((n) => !(n in feeds));
  const extra = Object.keys(feeds).filter((n) => !session.inputNames.includes(n));
  if (missing.length > 0 || extra.length > 0) {
    throw new Error(`runSession: feeds do not match the model inputs (missing: ${missing.join(', ') || 'none'}; unexpected: ${extra.join(', ') || 'none'})`);
  }
  try {
    return fetches === undefined ? await session.run(feeds) : await session.run(feeds, fetches);
  } catch (err) {
    const message = (err as Error).message;
    // WebGPU adapters without the shader-f16 feature (SwiftShader, some integrated GPUs) fail at the first run.
    const hint = /requires f16 but the device does not support it/.test(message)
      ? ' (this GPU adapter has no float16 shaders (WebGPU feature shader-f16): use --base-precision fp32 or int4 on it)' :
      '';
    throw new Error(`onnxruntime failed with feeds ${describeFeeds(feeds)}: ${message}${hint}`, { cause: err });
  }
}

/**
 * Sessions of small cached kernels, built on first use and keyed by a string. A failed build is not
 * cached: the next call retries and reports its own error.
 */
export class SessionCache {
  private readonly sessions = new Map<string, Promise<OrtSession>>();

  get(id: string, build: () => Promise<OrtSession>): Promise<OrtSession> {
    let s = this.sessions.get(id);
    if (s === undefined) {
      s = build();
      this.sessions.set(id, s);
      s.catch(() => this.sessions.delete(id));
    }
    return s;
  }

  /** Releases every session built so far. */
  async dispose(): Promise<void> {
    const pending = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of pending) {
      try {
        await (await s).release();
      } catch {
        // A session that failed to build has nothing to release.
      }
    }
  }
}
