/**
 * The explicit list of gradient rules, one per differentiable op type. Ops not listed here
 * (comparisons, Range, Mod, ReduceMax, the Scatter ops, Shape, …) are not differentiable; autodiff
 * reports them by name if one ever lies between a parameter and the loss.
 */
import type { GradRule } from '../gradRule.js';
import type { OpName } from '../opTable.js';
import { addGrad } from './add.js';
import { castGrad } from './cast.js';
import { concatGrad } from './concat.js';
import { divGrad } from './div.js';
import { erfGrad } from './erf.js';
import { expGrad } from './exp.js';
import { gatherGrad } from './gather.js';
import { gatherElementsGrad } from './gatherElements.js';
import { gemmGrad } from './gemm.js';
import { layerNormalizationGrad } from './layerNormalization.js';
import { logGrad } from './log.js';
import { logSoftmaxGrad } from './logSoftmax.js';
import { matMulGrad } from './matMul.js';
import { maximumGrad } from './maximum.js';
import { minimumGrad } from './minimum.js';
import { mulGrad } from './mul.js';
import { negGrad } from './neg.js';
import { powGrad } from './pow.js';
import { reduceMeanGrad } from './reduceMean.js';
import { reduceSumGrad } from './reduceSum.js';
import { reshapeGrad } from './reshape.js';
import { sigmoidGrad } from './sigmoid.js';
import { sliceGrad } from './slice.js';
import { softmaxGrad } from './softmax.js';
import { splitGrad } from './split.js';
import { sqrtGrad } from './sqrt.js';
import { squeezeGrad } from './squeeze.js';
import { subGrad } from './sub.js';
import { tanhGrad } from './tanh.js';
import { transposeGrad } from './transpose.js';
import { unsqueezeGrad } from './unsqueeze.js';
import { whereGrad } from './where.js';

const RULES: readonly GradRule[] = [
  addGrad,
  subGrad,
  mulGrad,
  divGrad,
  powGrad,
  negGrad,
  sqrtGrad,
  expGrad,
  logGrad,
  tanhGrad,
  erfGrad,
  sigmoidGrad,
  castGrad,
  minimumGrad,
  maximumGrad,
  whereGrad,
  matMulGrad,
  gemmGrad,
  reshapeGrad,
  transposeGrad,
  sliceGrad,
  splitGrad,
  concatGrad,
  unsqueezeGrad,
  squeezeGrad,
  gatherGrad,
  gatherElementsGrad,
  reduceSumGrad,
  reduceMeanGrad,
  softmaxGrad,
  logSoftmaxGrad,
  layerNormalizationGrad,
];

function index(rules: readonly GradRule[]): ReadonlyMap<OpName, GradRule> {
  const map = new Map<OpName, GradRule>();
  for (const r of rules) {
    if (map.has(r.op)) throw new Error(`registry: two gradient rules for ${r.op}`);
    map.set(r.op, r);
  }
  return map;
}

/** Gradient rules by ONNX op type. */
export const GRADIENTS: ReadonlyMap<OpName, GradRule> = index(RULES);
