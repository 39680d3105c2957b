// Shared pieces of the trainer tests: a small TrainerSetup to spread overrides over, the shipped
// model's folder, and byte-level views of adapters (determinism is checked bit for bit).
import { fileURLToPath } from 'node:url';
import { defaultLoraSettings } from '../../src/trainer/setup.js';
import type { AdapterTensors, TrainerSetup } from '../../src/trainer/types.js';

/** models/tiny-gpt2 of this checkout. */
export const SHIPPED_MODEL = fileURLToPath(new URL('../../models/tiny-gpt2', import.meta.url));

/** A valid setup: r 4, batch 8, seqLen 32, AdamW, one onnxruntime thread. `modelDir` is a placeholder unless overridden. */
export function smallSetup(overrides: Partial<TrainerSetup> = {}): TrainerSetup {
  return {
    modelDir: 'in-memory',
    data: 'task:sentiment?count=64&evalCount=32',
    lora: defaultLoraSettings({ r: 4, alpha: 8 }),
    batchSize: 8,
    seqLen: 32,
    seed: 1,
    optimizer: 'adamw',
    lr: 1e-2,
    device: 'cpu',
    threads: 1,
    ...overrides,
  };
}

/** Every tensor of an adapter as raw bytes, in a fixed order (module path, A then B; then saved tensors by name). */
export function adapterBytes(adapter: AdapterTensors): Buffer {
  const parts: Buffer[] = [];
  for (const path of [...adapter.modules.keys()].sort()) {
    const f = adapter.modules.get(path)!;
    for (const t of [f.a.data, f.b.data]) parts.push(Buffer.from(t.buffer, t.byteOffset, t.byteLength));
  }
  for (const name of [...(adapter.saved?.keys() ?? [])].sort()) {
    const t = adapter.saved!.get(name)!;
    parts.push(Buffer.from(t.buffer, t.byteOffset, t.byteLength));
  }
  return Buffer.concat(parts);
}

/** Largest |a − b| over all tensors of two adapters with the same layout. */
export function maxAdapterDiff(a: AdapterTensors, b: AdapterTensors): number {
  const x = new Float32Array(Uint8Array.from(adapterBytes(a)).buffer);
  const y = new Float32Array(Uint8Array.from(adapterBytes(b)).buffer);
  if (x.length !== y.length) throw new Error(`maxAdapterDiff: ${x.length} vs ${y.length} values`);
  let max = 0;
  for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs(x[i] - y[i]));
  return max;
}
