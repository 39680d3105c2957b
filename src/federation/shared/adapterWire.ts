/**
 * Adapters between the wire (named float32 tensors, docs/protocol.md §5) and the core's
 * `LoraFactors` by module, in layout order. Shared by the coordinator and the client.
 */
import type { LoraFactors } from '../../core/lora.js';
import type { Matrix } from '../../core/tensor.js';
import { ROLE_LORA_A, ROLE_LORA_B, ROLE_LORA_R, tensorName, type AdapterForm, type AdapterLayout } from '../protocol/adapterTensors.js';
import { tensorMap, type NamedTensor } from '../protocol/envelope.js';
import { protocolError } from '../protocol/errors.js';

/** The named tensor as a matrix (no copy); throws `E_TENSOR_NAME`/`E_TENSOR_SHAPE` when missing or not rows × cols. */
export function tensorMatrix(tensors: ReadonlyMap<string, NamedTensor>, name: string, rows: number, cols: number): Matrix<Float32Array> {
  const t = tensors.get(name);
  if (t === undefined) throw protocolError('E_TENSOR_NAME', `missing tensor ${name}`);
  if (t.shape.length !== 2 || t.shape[0] !== rows || t.shape[1] !== cols) {
    throw protocolError('E_TENSOR_SHAPE', `tensor ${name} has shape [${t.shape.join(', ')}], expected [${rows}, ${cols}]`);
  }
  return { shape: [rows, cols], data: t.data };
}

/**
 * The adapter carried by a message's tensors (`<m>.lora_A`, `<m>.lora_B` for every layout module), in
 * layout order. Fed-SB (`form` `sb`, docs/protocol.md §5.7): `<m>.lora_R` for every module, with A and
 * B from the message when it carries them, else from `frozen` (the ones a session received before, or
 * the coordinator's global adapter); throws `E_TENSOR_NAME` when neither has them.
 */
export function adapterFromTensors(layout: AdapterLayout, tensors: readonly NamedTensor[], form: AdapterForm = 'lora', frozen?: ReadonlyMap<string, LoraFactors>): Map<string, LoraFactors> {
  const byName = tensorMap(tensors);
  const adapter = new Map<string, LoraFactors>();
  for (const m of layout) {
    const carried = form === 'lora' || byName.has(tensorName(m.module, ROLE_LORA_A));
    const held = carried ? undefined : frozen?.get(m.module);
    if (!carried && held === undefined) throw protocolError('E_TENSOR_NAME', `Fed-SB module ${m.module}: the message carries no lora_A and lora_B and none were received before`);
    adapter.set(m.module, {
      a: held?.a ?? tensorMatrix(byName, tensorName(m.module, ROLE_LORA_A), m.rank, m.in),
      b: held?.b ?? tensorMatrix(byName, tensorName(m.module, ROLE_LORA_B), m.out, m.rank),
      ...(form === 'sb' ? { r: tensorMatrix(byName, tensorName(m.module, ROLE_LORA_R), m.rank, m.rank) } : {}),
    });
  }
  return adapter;
}

/**
 * The wire tensors of Fed-SB factors: `<m>.lora_R` of every module, preceded by `lora_A` and
 * `lora_B` when `withFrozen` (a global message to a session that has not received them yet).
 */
export function sbAdapterToTensors(layout: AdapterLayout, adapter: ReadonlyMap<string, LoraFactors>, withFrozen: boolean): NamedTensor[] {
  const tensors: NamedTensor[] = withFrozen ? adapterToTensors(layout, adapter) : [];
  for (const m of layout) {
    const r = adapter.get(m.module)?.r;
    if (r === undefined) throw protocolError('E_TENSOR_NAME', `Fed-SB adapter has no lora_R for module ${m.module}`);
    if (r.shape[0] !== m.rank || r.shape[1] !== m.rank) throw protocolError('E_TENSOR_SHAPE', `module ${m.module}: lora_R [${r.shape.join(', ')}], layout needs [${m.rank}, ${m.rank}]`);
    tensors.push({ name: tensorName(m.module, ROLE_LORA_R), shape: [m.rank, m.rank], data: r.data });
  }
  return tensors;
}

/** The wire tensors of an adapter, in layout order (A then B per module); throws naming a missing or misshapen module. */
export function adapterToTensors(layout: AdapterLayout, adapter: ReadonlyMap<string, LoraFactors>): NamedTensor[] {
  const tensors: NamedTensor[] = [];
  for (const m of layout) {
    const f = adapter.get(m.module);
    if (f === undefined) throw protocolError('E_TENSOR_NAME', `adapter has no factors for module ${m.module}`);
    const [ar, ac] = f.a.shape;
    const [br, bc] = f.b.shape;
    if (ar !== m.rank || ac !== m.in || br !== m.out || bc !== m.rank) {
      throw protocolError('E_TENSOR_SHAPE', `module ${m.module}: lora_A [${ar}, ${ac}] and lora_B [${br}, ${bc}], layout needs [${m.rank}, ${m.in}] and [${m.out}, ${m.rank}]`);
    }
    tensors.push({ name: tensorName(m.module, ROLE_LORA_A), shape: [ar, ac], data: f.a.data });
    tensors.push({ name: tensorName(m.module, ROLE_LORA_B), shape: [br, bc], data: f.b.data });
  }
  return tensors;
}

/** Raw float32 bytes of an upload (what the wire overhead is measured against): r·(in + out) per module, r² for Fed-SB. */
export function adapterBytes(layout: AdapterLayout, form: AdapterForm = 'lora'): number {
  return layout.reduce((n, m) => n + 4 * m.rank * (form === 'sb' ? m.rank : m.in + m.out), 0);
}
