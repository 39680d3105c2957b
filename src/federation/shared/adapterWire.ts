/**
 * Adapters between the wire (named float32 tensors, docs/protocol.md §5) and the core's
 * `LoraFactors` by module, in layout order. Shared by the coordinator and the client.
 */
import type { LoraFactors } from '../../core/lora.js';
import type { Matrix } from '../../core/tensor.js';
import { ROLE_LORA_A, ROLE_LORA_B, tensorName, type AdapterLayout } from '../protocol/adapterTensors.js';
import type { NamedTensor } from '../protocol/envelope.js';
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

/** The adapter carried by a message's tensors (`<m>.lora_A`, `<m>.lora_B` for every layout module), in layout order. */
export function adapterFromTensors(layout: AdapterLayout, tensors: readonly NamedTensor[]): Map<string, LoraFactors> {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const adapter = new Map<string, LoraFactors>();
  for (const m of layout) {
    adapter.set(m.module, {
      a: tensorMatrix(byName, tensorName(m.module, ROLE_LORA_A), m.rank, m.in),
      b: tensorMatrix(byName, tensorName(m.module, ROLE_LORA_B), m.out, m.rank),
    });
  }
  return adapter;
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

/** Raw float32 bytes of an adapter (what the wire overhead is measured against). */
export function adapterBytes(layout: AdapterLayout): number {
  return layout.reduce((n, m) => n + 4 * m.rank * (m.in + m.out), 0);
}
