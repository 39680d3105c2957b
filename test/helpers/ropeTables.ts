// Plain RoPE cos/sin tables (HF Llama's default RoPE: no scaling, every dim rotated) in float64, for
// graph tests that feed rope() their own tables. Imports nothing from src/.

/** cos/sin tables `[seqLen, headDim]` (row-major, float64): angle(t, i) = t / base^(2(i mod d/2)/d). */
export function ropeTables(seqLen: number, headDim: number, base = 10000): { cos: Float64Array; sin: Float64Array } {
  if (headDim % 2 !== 0) throw new RangeError(`ropeTables: headDim ${headDim} must be even`);
  const half = headDim / 2;
  const cos = new Float64Array(seqLen * headDim);
  const sin = new Float64Array(seqLen * headDim);
  for (let t = 0; t < seqLen; t++) {
    for (let i = 0; i < headDim; i++) {
      const angle = t / base ** ((2 * (i % half)) / headDim);
      cos[t * headDim + i] = Math.cos(angle);
      sin[t * headDim + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
