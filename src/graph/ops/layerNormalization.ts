/**
 * LayerNormalization (opset 17) over the trailing axes from `axis`. For float32 the node also
 * returns Mean and InvStdDev, which the gradient reuses; onnxruntime stashes those in float32 even
 * for float64 inputs, so for float64 the gradient recomputes them in float64 instead.
 */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import type { GradRule } from '../gradRule.js';
import { dyOf, inputOf } from '../gradRule.js';
import { formatShape, normalizeAxis, shapeEquals } from '../shape.js';
import { add } from './add.js';
import { checkFloatOperands, graphOf, iota } from './common.js';
import { div } from './div.js';
import { mul } from './mul.js';
import { reduceMean } from './reduceMean.js';
import { sqrt } from './sqrt.js';
import { sub } from './sub.js';

export interface LayerNormOptions {
  /** First normalized axis (default -1: the last axis only). */
  axis?: number;
  epsilon?: number;
}

/** `(x − mean) / √(var + ε) · scale + bias`, statistics over the axes from `axis` on. */
export function layerNormalization(x: Value, scale: Value, bias?: Value, options: LayerNormOptions = {}): Value {
  const g = graphOf('layerNormalization', x, scale, bias);
  checkFloatOperands('layerNormalization', { x, scale, bias });
  const axis = normalizeAxis('layerNormalization', 'axis', options.axis ?? -1, x.rank);
  const normShape = x.shape.slice(axis);
  check(shapeEquals(scale.shape, normShape), () => `layerNormalization: scale ${formatShape(scale.shape)} must be ${formatShape(normShape)} (x ${formatShape(x.shape)}, axis ${axis})`);
  if (bias !== undefined) check(shapeEquals(bias.shape, normShape), () => `layerNormalization: bias ${formatShape(bias.shape)} must be ${formatShape(normShape)}`);
  const stats = [...x.shape.slice(0, axis), ...normShape.map(() => 1)];
  const outputs = x.dtype === 'float32'
    ? [{ dtype: x.dtype, shape: x.shape }, { dtype: x.dtype, shape: stats }, { dtype: x.dtype, shape: stats }]
    : [{ dtype: x.dtype, shape: x.shape }];
  const attrs = { axis, epsilon: options.epsilon ?? 1e-5 };
  return g.node('LayerNormalization', bias === undefined ? [x, scale] : [x, scale, bias], attrs, outputs, 'layerNorm')[0];
}

/**
 * With x̂ = (x − μ)·r, r = 1/√(σ² + ε) and g = dy·scale:
 * dx = r·(g − mean(g) − x̂·mean(g·x̂)), dscale = Σ dy·x̂, dbias = Σ dy (sums over the leading axes).
 */
export const layerNormalizationGrad: GradRule = {
  op: 'LayerNormalization',
  grad: (ctx) => {
    const x = inputOf(ctx, 0);
    const scale = inputOf(ctx, 1);
    const bias = ctx.inputs[2];
    check(ctx.dys[1] === undefined && ctx.dys[2] === undefined, () => 'layerNormalization: Mean and InvStdDev outputs cannot be differentiated');
    const dy = dyOf(ctx);
    const axis = ctx.node.attrs.axis as number;
    const axes = iota(x.rank).slice(axis);
    let mean: Value;
    let invStd: Value;
    if (ctx.outputs.length === 3) {
      [, mean, invStd] = ctx.outputs;
    } else {
      mean = reduceMean(x, axes, true);
      const xc = sub(x, mean);
      invStd = div(1, sqrt(add(reduceMean(mul(xc, xc), axes, true), ctx.node.attrs.epsilon as number)));
    }
    const xHat = mul(sub(x, mean), invStd);
    let dx: Value | undefined;
    if (ctx.needs[0]) {
      const gHat = mul(dy, scale);
      dx = mul(invStd, sub(sub(gHat, reduceMean(gHat, axes, true)), mul(xHat, reduceMean(mul(gHat, xHat), axes, true))));
    }
    return [
      dx,
      ctx.needs[1] ? mul(dy, xHat) : undefined,
      bias !== undefined && ctx.needs[2] ? dy : undefined,
    ];
  },
};
