/** Float64 TypeScript references for the optimizer tests. */

/** torch.optim.AdamW for one step, in float64. */
export function adamWRef(p: readonly number[], gr: readonly number[], m: readonly number[], v: readonly number[],
  o: { lr: number; step: number; beta1: number; beta2: number; eps: number; weightDecay: number }): { p: number[]; m: number[]; v: number[] } {
  const bc1 = 1 - o.beta1 ** o.step;
  const bc2 = 1 - o.beta2 ** o.step;
  const m2 = m.map((mi, i) => o.beta1 * mi + (1 - o.beta1) * gr[i]);
  const v2 = v.map((vi, i) => o.beta2 * vi + (1 - o.beta2) * gr[i] * gr[i]);
  const p2 = p.map((pi, i) => pi * (1 - o.lr * o.weightDecay) - (o.lr / bc1) * m2[i] / (Math.sqrt(v2[i]) / Math.sqrt(bc2) + o.eps));
  return { p: p2, m: m2, v: v2 };
}
