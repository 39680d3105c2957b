// Shared assertions and measures of the split tests.
import assert from 'node:assert/strict';

/** Every item in exactly one part, each part in the original relative order. */
export function assertPartition<T>(items: readonly T[], parts: readonly (readonly T[])[]): void {
  const position = new Map(items.map((item, i) => [item, i]));
  const seen = new Set<T>();
  for (const part of parts) {
    let last = -1;
    for (const item of part) {
      assert.ok(position.has(item), 'an item not in the input');
      assert.ok(!seen.has(item), 'an item in two parts');
      seen.add(item);
      assert.ok(position.get(item)! > last, 'order not kept');
      last = position.get(item)!;
    }
  }
  assert.equal(seen.size, items.length, 'items lost');
}

/** Per part, how many items of each group (the record's `group`) it holds. */
export function groupHistogram(parts: readonly (readonly { readonly group?: string }[])[]): Array<Record<string, number>> {
  return parts.map((part) => {
    const h: Record<string, number> = {};
    for (const item of part) {
      assert.ok(item.group !== undefined, 'an item without a group');
      h[item.group] = (h[item.group] ?? 0) + 1;
    }
    return h;
  });
}

/**
 * How far the parts' group mixes are from the pooled one: the mean over non-empty parts of the
 * total variation distance ½·Σ_g |p_part(g) − p_all(g)|, in [0, 1). 0 for parts mixed exactly like
 * the whole; near 1 − 1/G when each part holds one of G equal groups.
 */
export function groupSkew(parts: readonly (readonly { readonly group?: string }[])[]): number {
  const hist = groupHistogram(parts);
  const total: Record<string, number> = {};
  let n = 0;
  for (const h of hist)
    for (const [g, c] of Object.entries(h)) {
      total[g] = (total[g] ?? 0) + c;
      n += c;
    }
  const distances = hist.flatMap((h, i) => {
    const size = parts[i].length;
    if (size === 0) return [];
    return [0.5 * Object.keys(total).reduce((s, g) => s + Math.abs((h[g] ?? 0) / size - total[g] / n), 0)];
  });
  return distances.length === 0 ? 0 : distances.reduce((a, b) => a + b, 0) / distances.length;
}
