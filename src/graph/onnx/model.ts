/**
 * ONNX ModelProto encoding from plain data. Field numbers follow onnx/onnx.proto (IR version 8).
 * This module is the single place that knows the ONNX wire format; src/graph builds the plain
 * structures and src/runtime hands the bytes to onnxruntime.
 */
import { ProtoWriter } from './protobuf.js';

/** ONNX TensorProto.DataType codes for the element types this project uses. */
export const OnnxDataType = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int32: 6,
  uint32: 12,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
  bfloat16: 16,
  uint4: 21,
  int4: 22,
} as const;

export type OnnxElemType = keyof typeof OnnxDataType;

/** A dimension: a fixed size or a symbolic name (dim_param). */
export type OnnxDim = number | string;

export interface OnnxValueInfo {
  name: string;
  elemType: OnnxElemType;
  /** Dimensions; `undefined` leaves the rank unknown (no shape field is written). */
  shape: readonly OnnxDim[] | undefined;
}

/** An initializer or constant tensor. `raw` holds little-endian bytes, or `externalPath` names a file. */
export interface OnnxTensor {
  name: string;
  elemType: OnnxElemType;
  dims: readonly number[];
  raw?: Uint8Array;
  external?: { location: string; offset: number; length: number };
}

export type OnnxAttributeValue =
  | { kind: 'float'; value: number }
  | { kind: 'int'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'floats'; value: readonly number[] }
  | { kind: 'ints'; value: readonly number[] }
  | { kind: 'tensor'; value: OnnxTensor };

export interface OnnxNode {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  domain?: string;
  attributes?: Readonly<Record<string, OnnxAttributeValue>>;
}

export interface OnnxGraph {
  name: string;
  nodes: readonly OnnxNode[];
  inputs: readonly OnnxValueInfo[];
  outputs: readonly OnnxValueInfo[];
  initializers?: readonly OnnxTensor[];
}

export interface OnnxModel {
  graph: OnnxGraph;
  /** Default-domain opset; 18 has ReduceSum/Mean with axes as inputs, LayerNormalization, Gelu needs 20. */
  opset?: number;
  /** Opsets of other operator domains the nodes use, e.g. `{ 'com.microsoft': 1 }` (onnxruntime's contrib ops). */
  domains?: Readonly<Record<string, number>>;
  producerName?: string;
}

const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;

function encodeTensor(t: OnnxTensor): Uint8Array {
  const w = new ProtoWriter(64 + (t.raw?.length ?? 0));
  if (t.dims.length > 0) w.packedInts(1, t.dims);
  w.int(2, OnnxDataType[t.elemType]);
  w.string(8, t.name);
  if (t.raw !== undefined) w.bytes(9, t.raw);
  if (t.external !== undefined) {
    const entry = (key: string, value: string): Uint8Array => new ProtoWriter().string(1, key).string(2, value).finish().slice();
    w.bytes(13, entry('location', t.external.location));
    w.bytes(13, entry('offset', String(t.external.offset)));
    w.bytes(13, entry('length', String(t.external.length)));
    w.int(14, 1);
  }
  return w.finish().slice();
}

function encodeValueInfo(v: OnnxValueInfo): Uint8Array {
  const tensorTypeWriter = new ProtoWriter().int(1, OnnxDataType[v.elemType]);
  if (v.shape !== undefined) {
    const shape = new ProtoWriter();
    for (const d of v.shape) {
      const dim = new ProtoWriter();
      if (typeof d === 'number') dim.int(1, d);
      else dim.string(2, d);
      shape.bytes(1, dim.finish());
    }
    tensorTypeWriter.bytes(2, shape.finish());
  }
  const tensorType = tensorTypeWriter.finish().slice();
  const type = new ProtoWriter().bytes(1, tensorType).finish().slice();
  return new ProtoWriter().string(1, v.name).bytes(2, type).finish().slice();
}

function encodeAttribute(name: string, a: OnnxAttributeValue): Uint8Array {
  const w = new ProtoWriter().string(1, name);
  switch (a.kind) {
    case 'float':
      w.float(2, a.value);
      break;
    case 'int':
      w.int(3, a.value);
      break;
    case 'string':
      w.string(4, a.value);
      break;
    case 'tensor':
      w.bytes(5, encodeTensor(a.value));
      break;
    case 'floats':
      w.packedFloats(7, a.value);
      break;
    case 'ints':
      w.packedInts(8, a.value);
      break;
  }
  w.int(20, ATTR_TYPE[a.kind]);
  return w.finish().slice();
}

function encodeNode(n: OnnxNode): Uint8Array {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name !== undefined) w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes ?? {})) w.bytes(5, encodeAttribute(k, v));
  if (n.domain !== undefined) w.string(7, n.domain);
  return w.finish().slice();
}

/** Serialises a model to ONNX protobuf bytes, ready for `InferenceSession.create(bytes)`. */
export function encodeModel(model: OnnxModel): Uint8Array {
  const g = new ProtoWriter();
  for (const n of model.graph.nodes) g.bytes(1, encodeNode(n));
  g.string(2, model.graph.name);
  for (const t of model.graph.initializers ?? []) g.bytes(5, encodeTensor(t));
  for (const v of model.graph.inputs) g.bytes(11, encodeValueInfo(v));
  for (const v of model.graph.outputs) g.bytes(12, encodeValueInfo(v));
  const opset = new ProtoWriter().string(1, '').int(2, model.opset ?? 18).finish().slice();
  const m = new ProtoWriter();
  m.int(1, 8);
  m.string(2, model.producerName ?? 'fedex');
  m.bytes(7, g.finish());
  m.bytes(8, opset);
  for (const [domain, version] of Object.entries(model.domains ?? {})) m.bytes(8, new ProtoWriter().string(1, domain).int(2, version).finish().slice());
  return m.finish().slice();
}
