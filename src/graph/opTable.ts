/**
 * The central table of ONNX operators the builder can emit: input names (a trailing `?` marks an
 * optional input), output names and typed attributes. `GraphBuilder.node` is typed from this
 * table, so an attribute of the wrong kind or a misspelt attribute does not compile, and a wrong
 * number of inputs fails at build time with the op's name.
 */
import type { OnnxTensor } from './onnx/model.js';

export type AttrKind = 'int' | 'float' | 'ints' | 'floats' | 'string' | 'tensor';

export interface OpSpec {
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs: Readonly<Record<string, AttrKind>>;
  /** Operator domain other than ONNX's default (`com.microsoft`: onnxruntime's contrib ops, opset 1). */
  readonly domain?: string;
  /** The default-domain opset that introduced the op; a graph using it is emitted at that opset or later. */
  readonly since?: number;
}

const y = ['Y'] as const;
const none = {} as const;

/**
 * Every operator the builder emits (default ONNX domain, opset 18 unless an op's `since` needs
 * more; contrib ops name their domain).
 */
export const OPS = {
  // Elementwise arithmetic (numpy broadcasting).
  Add: { inputs: ['A', 'B'], outputs: ['C'], attrs: none },
  Sub: { inputs: ['A', 'B'], outputs: ['C'], attrs: none },
  Mul: { inputs: ['A', 'B'], outputs: ['C'], attrs: none },
  Div: { inputs: ['A', 'B'], outputs: ['C'], attrs: none },
  Pow: { inputs: ['X', 'Y'], outputs: ['Z'], attrs: none },
  Mod: { inputs: ['A', 'B'], outputs: ['C'], attrs: { fmod: 'int' } },
  Min: { inputs: ['A', 'B'], outputs: ['C'], attrs: none },
  Max: { inputs: ['A', 'B'], outputs: ['C'], attrs: none },
  // Elementwise unary.
  Neg: { inputs: ['X'], outputs: y, attrs: none },
  Sqrt: { inputs: ['X'], outputs: y, attrs: none },
  Exp: { inputs: ['X'], outputs: y, attrs: none },
  Log: { inputs: ['X'], outputs: y, attrs: none },
  Tanh: { inputs: ['X'], outputs: y, attrs: none },
  Erf: { inputs: ['X'], outputs: y, attrs: none },
  Sigmoid: { inputs: ['X'], outputs: y, attrs: none },
  Cast: { inputs: ['X'], outputs: y, attrs: { to: 'int' } },
  /** Reinterprets the bits (same element width): bfloat16 weights travel as uint16. */
  BitCast: { inputs: ['X'], outputs: y, attrs: { to: 'int' }, since: 26 },
  // Comparisons and logic (not differentiable).
  Equal: { inputs: ['A', 'B'], outputs: ['C'], attrs: none },
  Less: { inputs: ['A', 'B'], outputs: ['C'], attrs: none },
  GreaterOrEqual: { inputs: ['A', 'B'], outputs: ['C'], attrs: none },
  Not: { inputs: ['X'], outputs: y, attrs: none },
  And: { inputs: ['A', 'B'], outputs: ['C'], attrs: none },
  Where: { inputs: ['condition', 'X', 'Y'], outputs: ['output'], attrs: none },
  // Linear algebra.
  MatMul: { inputs: ['A', 'B'], outputs: y, attrs: none },
  Gemm: { inputs: ['A', 'B', 'C?'], outputs: y, attrs: { alpha: 'float', beta: 'float', transA: 'int', transB: 'int' } },
  // Shape manipulation.
  Reshape: { inputs: ['data', 'shape'], outputs: ['reshaped'], attrs: { allowzero: 'int' } },
  Transpose: { inputs: ['data'], outputs: ['transposed'], attrs: { perm: 'ints' } },
  Slice: { inputs: ['data', 'starts', 'ends', 'axes?', 'steps?'], outputs: ['output'], attrs: none },
  Split: { inputs: ['input', 'split?'], outputs: ['outputs...'], attrs: { axis: 'int', num_outputs: 'int' } },
  Concat: { inputs: ['inputs...'], outputs: ['concat_result'], attrs: { axis: 'int' } },
  Unsqueeze: { inputs: ['data', 'axes'], outputs: ['expanded'], attrs: none },
  Squeeze: { inputs: ['data', 'axes?'], outputs: ['squeezed'], attrs: none },
  Expand: { inputs: ['input', 'shape'], outputs: ['output'], attrs: none },
  Pad: { inputs: ['data', 'pads', 'constant_value?', 'axes?'], outputs: ['output'], attrs: { mode: 'string' } },
  Shape: { inputs: ['data'], outputs: ['shape'], attrs: { start: 'int', end: 'int' } },
  Size: { inputs: ['data'], outputs: ['size'], attrs: none },
  Range: { inputs: ['start', 'limit', 'delta'], outputs: ['output'], attrs: none },
  ConstantOfShape: { inputs: ['input'], outputs: ['output'], attrs: { value: 'tensor' } },
  Constant: { inputs: [], outputs: ['output'], attrs: { value: 'tensor' } },
  // Indexing.
  Gather: { inputs: ['data', 'indices'], outputs: ['output'], attrs: { axis: 'int' } },
  GatherElements: { inputs: ['data', 'indices'], outputs: ['output'], attrs: { axis: 'int' } },
  ScatterND: { inputs: ['data', 'indices', 'updates'], outputs: ['output'], attrs: { reduction: 'string' } },
  ScatterElements: { inputs: ['data', 'indices', 'updates'], outputs: ['output'], attrs: { axis: 'int', reduction: 'string' } },
  /** onnxruntime's gather of block-quantised rows, dequantised (4-bit codes packed two per uint8; nn/storedWeight.ts). */
  GatherBlockQuantized: {
    inputs: ['data', 'indices', 'scales', 'zero_points?'],
    outputs: ['output'],
    attrs: { gather_axis: 'int', quantize_axis: 'int', block_size: 'int', bits: 'int' },
    domain: 'com.microsoft',
  },
  // Reductions (opset 18: axes are an input).
  ReduceSum: { inputs: ['data', 'axes?'], outputs: ['reduced'], attrs: { keepdims: 'int', noop_with_empty_axes: 'int' } },
  ReduceMean: { inputs: ['data', 'axes?'], outputs: ['reduced'], attrs: { keepdims: 'int', noop_with_empty_axes: 'int' } },
  ReduceMax: { inputs: ['data', 'axes?'], outputs: ['reduced'], attrs: { keepdims: 'int', noop_with_empty_axes: 'int' } },
  // Normalisation and activations over an axis.
  Softmax: { inputs: ['input'], outputs: ['output'], attrs: { axis: 'int' } },
  LogSoftmax: { inputs: ['input'], outputs: ['output'], attrs: { axis: 'int' } },
  LayerNormalization: { inputs: ['X', 'Scale', 'B?'], outputs: ['Y', 'Mean?', 'InvStdDev?'], attrs: { axis: 'int', epsilon: 'float', stash_type: 'int' } },
} as const satisfies Record<string, OpSpec>;

export type OpName = keyof typeof OPS;

/** The TypeScript type of an attribute of a given kind. */
export type AttrValue<K extends AttrKind> = K extends 'int' | 'float' ? number
  : K extends 'ints' | 'floats' ? readonly number[]
  : K extends 'string' ? string
  : OnnxTensor;

/** The attributes an op accepts, all optional (ONNX defaults apply), each with its typed value. */
export type AttrsOf<N extends OpName> = {
  readonly [A in keyof (typeof OPS)[N]['attrs']]?: (typeof OPS)[N]['attrs'][A] extends AttrKind ? AttrValue<(typeof OPS)[N]['attrs'][A]> : never;
};

/** The attribute kind of `attr` on `op`, for emission. */
export function attrKind(op: OpName, attr: string): AttrKind | undefined {
  const attrs: Readonly<Record<string, AttrKind>> = OPS[op].attrs;
  return attrs[attr];
}
