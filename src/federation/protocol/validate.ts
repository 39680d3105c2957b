/**
 * Message-level validation of a decoded frame: method known and allowed from this peer, params
 * schema, the tensor set the method carries (names, shapes, dtypes against the adapter layout),
 * finite values, and the optional update-norm bound. Everything bad becomes a `ProtocolError`.
 */
import {
  adapterTensorShapes,
  parseTensorName,
  residualTensorShapes,
  sbRTensorShapes,
  ROLE_LORA_A,
  ROLE_LORA_B,
  ROLE_RESIDUAL_DENSE,
  ROLE_RESIDUAL_P,
  ROLE_RESIDUAL_Q,
  type AdapterForm,
  type AdapterLayout,
  type ModuleLayout,
  type ResidualEntry,
} from './adapterTensors.js';
import type { FrameLimits } from './constants.js';
import { decodeFloatTensor, viewFloat32Tensor, firstNonFiniteIndex, FLOAT_WIRE_DTYPES, type FloatWireDType, type WireDType } from './dtypes.js';
import type { AnyMessage, NamedTensor } from './envelope.js';
import { protocolError } from './errors.js';
import { entryBytes, type RawFrame } from './frame.js';
import { descriptorFor, maySend, type AnyDescriptor } from './messages.js';
import { checkFields } from './schema.js';

/** What a receiver knows and enforces. Everything is optional; more knowledge, stricter checks. */
export interface ReceiveOptions {
  /** Who is decoding: a coordinator accepts only client-sent methods and vice versa. */
  readonly receiver?: 'client' | 'coordinator';
  readonly limits?: Partial<FrameLimits>;
  /** The federation's adapter layout (welcome.config.layout): exact tensor names and shapes. */
  readonly layout?: AdapterLayout;
  /** How adapters travel (adapterTensors.ts `adapterFormOf(config.method)`); default `lora`. `sb` needs `layout`. */
  readonly adapterForm?: AdapterForm;
  /** Dtypes accepted for client_update tensors (default: float32, float16, bfloat16). */
  readonly uplinkDtypes?: readonly FloatWireDType[];
  /** Bound on the L2 norm of a client_update over all its tensors (of the difference to `normReference`). */
  readonly maxUpdateNorm?: number;
  /** Tensors to subtract before taking the norm (e.g. the round's global adapter), by name. */
  readonly normReference?: ReadonlyMap<string, Float32Array>;
  /**
   * Return the float32 residual tensors (`residual_P`, `residual_Q`, `residual`) of a frame as views
   * of its bytes when aligned, not copies (they are the bulk of a FedEx downlink and are only read).
   * Adapter tensors are always copied.
   */
  readonly viewResiduals?: boolean;
}

/** The name, dtype and shape of a tensor, before or after encoding. */
export interface TensorSignature {
  readonly name: string;
  readonly dtype: WireDType;
  readonly shape: readonly number[];
}

/** The name of the single tensor of a `model_chunk`. */
export const BLOB_TENSOR = 'chunk';

/** Checks params against the method's schema and cross-field rules; throws `E_SCHEMA`. */
export function validateParams(descriptor: AnyDescriptor, params: unknown): void {
  const err = checkFields(descriptor.params.fields, params, 'params');
  if (err !== undefined) throw protocolError('E_SCHEMA', `${descriptor.method}: ${err}`);
  const refine = descriptor.refine as ((p: unknown) => string | undefined) | undefined;
  const rule = refine?.(params);
  if (rule !== undefined) throw protocolError('E_SCHEMA', `${descriptor.method}: ${rule}`);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Derives module layout from the lora_A/lora_B pairs of a frame (when the receiver has none). */
function inferLayout(method: string, entries: readonly TensorSignature[]): AdapterLayout {
  const parts = new Map<string, { a?: readonly number[]; b?: readonly number[] }>();
  for (const e of entries) {
    const parsed = parseTensorName(e.name);
    if (parsed === undefined) throw protocolError('E_TENSOR_NAME', `${method}: tensor ${e.name} is not <module>.<role> with a known role`);
    if (parsed.role !== ROLE_LORA_A && parsed.role !== ROLE_LORA_B) continue;
    const p = parts.get(parsed.module) ?? {};
    if (parsed.role === ROLE_LORA_A) p.a = e.shape;
    else p.b = e.shape;
    parts.set(parsed.module, p);
  }
  const layout: ModuleLayout[] = [];
  for (const [module, { a, b }] of parts) {
    if (a === undefined || b === undefined) throw protocolError('E_TENSOR_NAME', `${method}: module ${module} needs both lora_A and lora_B`);
    if (a.length !== 2 || b.length !== 2 || a[0] !== b[1] || a[0] < 1) {
      throw protocolError('E_TENSOR_SHAPE', `${method}: module ${module} has lora_A [${a.join(', ')}] and lora_B [${b.join(', ')}], expected [r, in] and [out, r] with r ≥ 1`);
    }
    layout.push({ module, in: a[1], out: b[0], rank: a[0] });
  }
  return layout;
}

/**
 * Checks that `entries` are exactly the tensors `descriptor` carries: dtypes allowed, names and
 * shapes as the layout (given, or inferred from the lora pairs) and the residual entries demand.
 */
export function validateTensorSet(
  descriptor: AnyDescriptor,
  params: unknown,
  entries: readonly TensorSignature[],
  options: Pick<ReceiveOptions, 'layout' | 'uplinkDtypes' | 'adapterForm'> = {},
): void {
  const method = descriptor.method;
  if (descriptor.tensors === 'none') {
    if (entries.length > 0) throw protocolError('E_TENSOR_NAME', `${method} carries no tensors, got ${entries.length} (first: ${entries[0].name})`);
    return;
  }
  if (descriptor.tensors === 'blob') {
    const [e] = entries;
    if (entries.length !== 1 || e.name !== BLOB_TENSOR) throw protocolError('E_TENSOR_NAME', `${method} carries exactly one tensor named ${BLOB_TENSOR}`);
    if (e.dtype !== 'uint8') throw protocolError('E_TENSOR_DTYPE', `${method}: tensor ${BLOB_TENSOR} must be uint8, got ${e.dtype}`);
    if (e.shape.length !== 1 || e.shape[0] < 1) throw protocolError('E_TENSOR_SHAPE', `${method}: tensor ${BLOB_TENSOR} must be 1-D and non-empty, got [${e.shape.join(', ')}]`);
    return;
  }
  const allowed: readonly WireDType[] = descriptor.tensors === 'adapter' ? (options.uplinkDtypes ?? FLOAT_WIRE_DTYPES) : ['float32'];
  for (const e of entries) {
    if (!allowed.includes(e.dtype)) throw protocolError('E_TENSOR_DTYPE', `${method}: tensor ${e.name} is ${e.dtype}, allowed: ${allowed.join(', ')}`);
  }
  const sb = options.adapterForm === 'sb';
  if (sb && options.layout === undefined) throw protocolError('E_INTERNAL', `${method}: Fed-SB tensors cannot be checked without the layout`);
  const layout = options.layout ?? inferLayout(method, entries);
  // Fed-SB: uploads carry R only; a global message carries R, and the frozen A and B all or none (§5.7).
  const expected = sb ? sbRTensorShapes(layout) : adapterTensorShapes(layout);
  const frozen = sb && descriptor.tensors === 'global' ? adapterTensorShapes(layout) : new Map<string, readonly number[]>();
  const frozenSent = entries.filter((e) => frozen.has(e.name)).length;
  if (frozenSent > 0 && frozenSent < frozen.size) {
    const present = new Set(entries.map((e) => e.name));
    const missing = [...frozen.keys()].filter((n) => !present.has(n));
    throw protocolError('E_TENSOR_NAME',
      `${method}: a Fed-SB message carries the frozen lora_A and lora_B of every module or of none; missing ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ` and ${missing.length - 3} more` : ''}`);
  }
  if (frozenSent > 0) { for (const [name, shape] of frozen) expected.set(name, shape); }
  const update = (params as { baseUpdate?: { modules: readonly ResidualEntry[] } }).baseUpdate;
  if (descriptor.tensors === 'global' && update !== undefined) {
    for (const [name, shape] of residualTensorShapes(update.modules, layout)) expected.set(name, shape);
  }
  for (const e of entries) {
    const shape = expected.get(e.name);
    if (shape === undefined) throw protocolError('E_TENSOR_NAME', `${method}: unexpected tensor ${e.name}`);
    if (!sameShape(shape, e.shape)) throw protocolError('E_TENSOR_SHAPE', `${method}: tensor ${e.name} has shape [${e.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
  if (entries.length !== expected.size) {
    const present = new Set(entries.map((e) => e.name));
    const missing = [...expected.keys()].filter((n) => !present.has(n));
    throw protocolError('E_TENSOR_NAME', `${method}: missing tensor${missing.length > 1 ? 's' : ''} ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ` and ${missing.length - 3} more` : ''}`);
  }
}

/** Throws `E_NORM_BOUND` when the L2 norm of `tensors` (minus `reference`) exceeds `bound`. */
export function checkUpdateNorm(method: string, tensors: readonly NamedTensor[], bound: number, reference?: ReadonlyMap<string, Float32Array>): void {
  let sumSq = 0;
  for (const t of tensors) {
    const ref = reference?.get(t.name);
    const r = ref !== undefined && ref.length === t.data.length ? ref : undefined;
    for (let i = 0; i < t.data.length; i++) {
      const d = r === undefined ? t.data[i] : t.data[i] - r[i];
      sumSq += d * d;
    }
  }
  const norm = Math.sqrt(sumSq);
  if (!(norm <= bound)) throw protocolError('E_NORM_BOUND', `${method}: update norm ${norm.toPrecision(6)} exceeds the bound ${bound}`);
}

function isResidualTensor(name: string): boolean {
  const role = parseTensorName(name)?.role;
  return role === ROLE_RESIDUAL_P || role === ROLE_RESIDUAL_Q || role === ROLE_RESIDUAL_DENSE;
}

/** Turns a decoded frame into a typed message, checking everything `options` knows about. */
export function validateFrame(frame: RawFrame, options: ReceiveOptions = {}): AnyMessage {
  const descriptor = descriptorFor(frame.method);
  if (descriptor === undefined) throw protocolError('E_UNKNOWN_METHOD', `unknown method ${frame.method}`);
  if (options.receiver !== undefined) {
    const sender = options.receiver === 'client' ? 'coordinator' : 'client';
    if (!maySend(descriptor, sender)) throw protocolError('E_DIRECTION', `${frame.method} may not be sent by a ${sender}`);
  }
  validateParams(descriptor, frame.params);
  validateTensorSet(descriptor, frame.params, frame.tensors, options);

  const tensors: NamedTensor[] = [];
  let blob: Uint8Array | undefined;
  for (const e of frame.tensors) {
    const bytes = entryBytes(frame, e);
    if (e.dtype === 'uint8') {
      blob = new Uint8Array(bytes);
      continue;
    }
    const data = options.viewResiduals === true && e.dtype === 'float32' && isResidualTensor(e.name) ? viewFloat32Tensor(bytes) : decodeFloatTensor(bytes, e.dtype);
    const bad = firstNonFiniteIndex(data);
    if (bad >= 0) throw protocolError('E_NON_FINITE', `${frame.method}: tensor ${e.name} holds ${data[bad]} at flat index ${bad}`);
    tensors.push({ name: e.name, shape: e.shape, data });
  }
  if (descriptor.tensors === 'adapter' && options.maxUpdateNorm !== undefined) {
    checkUpdateNorm(frame.method, tensors, options.maxUpdateNorm, options.normReference);
  }
  const message = { method: frame.method, params: frame.params, tensors, ...(blob !== undefined ? { blob } : {}) };
  return message as AnyMessage;
}
