// A shared assertion of the split tests.
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
