// RoPE as transformers 5.18 computes it: inverse frequencies and cos/sin factor of real configs
// (Qwen3-0.6B with its model card's yarn block, Llama-2 with dynamic NTK, Llama-3.2's llama3,
// Phi-4-mini's LongRoPE in both regimes, Gemma 2, Gemma 3's two layer types in the transformers 4
// and 5 config formats) and yarn variants (mscale, beta_fast/slow, no truncation, an explicit
// attention factor, no original length), read from the models' own rotary modules by
// test/fixtures/rope/make_references.py, against fedex's config parsing.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGemmaConfig } from '../../../src/model/gemma/config.js';
import { parseLlamaConfig } from '../../../src/model/llama/config.js';
import type { RopeSpec } from '../../../src/model/llama/rope.js';
import { assertClose } from '../../graph/gradCheck.js';

interface RopeCase {
  readonly name: string;
  readonly config: Record<string, unknown>;
  readonly layerType: 'full_attention' | 'sliding_attention' | null;
  readonly seqLen: number | null;
  readonly invFreq: number[];
  readonly attentionScaling: number;
}

const here = dirname(fileURLToPath(import.meta.url));
const references = JSON.parse(readFileSync(join(here, '..', '..', 'fixtures', 'rope', 'references.json'), 'utf8')) as { generator: string; cases: RopeCase[] };

/** fedex's RoPE for the layers (and sequence length) a case describes. */
function fedexRope(c: RopeCase): { invFreq: Float64Array; attentionScaling: number } {
  const gemma = c.config.model_type === 'gemma2' || c.config.model_type === 'gemma3_text';
  const spec: RopeSpec = gemma ? parseGemmaConfig(c.config).rope[c.layerType === 'sliding_attention' ? 'sliding' : 'full'] : parseLlamaConfig(c.config).rope;
  const long = spec.long !== undefined && c.seqLen !== null && c.seqLen > spec.long.afterLength;
  return { invFreq: long ? spec.long!.invFreq : spec.invFreq, attentionScaling: spec.attentionScaling };
}

// transformers computes the frequencies in float32, fedex in float64: measured at most 3.2e-7
// relative (Phi-4-mini's long factors). The attention factors are Python floats on both sides.
const FREQ_RTOL = 1e-6;

describe(`RoPE frequencies and attention factor vs ${references.generator}`, () => {
  for (const c of references.cases) {
    test(c.name, () => {
      const got = fedexRope(c);

      assert.equal(got.invFreq.length, c.invFreq.length);
      assertClose(got.invFreq, c.invFreq, FREQ_RTOL, 0, 'inv_freq');
      assertClose([got.attentionScaling], [c.attentionScaling], 1e-12, 0, 'attention scaling');
    });
  }

  test("the cases tell the types apart: yarn, LongRoPE's two regimes and Gemma 3's two layer types all differ from plain RoPE", () => {
    const byName = (prefix: string): RopeCase => references.cases.find((c) => c.name.startsWith(prefix))!;
    const plainOf = (c: RopeCase): number[] => c.invFreq.map((_, i) => 1 / (c.config.rope_theta as number) ** ((2 * i) / (2 * c.invFreq.length)));
    const yarn = byName('Qwen3-0.6B with the yarn block');
    // Low frequencies are interpolated (÷ 4), the highest kept.
    assertClose([yarn.invFreq[0], yarn.invFreq[63]], [plainOf(yarn)[0], plainOf(yarn)[63] / 4], 1e-6, 0, 'yarn ends');
    assert.notDeepEqual(byName('Phi-4-mini longrope, short').invFreq, byName('Phi-4-mini longrope, long').invFreq);
    assert.notDeepEqual(byName('Gemma-3-1B full').invFreq, byName('Gemma-3-1B sliding').invFreq);
  });
});
