/**
 * A small structural schema for message params: declared once, it gives the TypeScript type
 * (`Infer`), the runtime guard (`checkValue`), and the field table of docs/protocol.md
 * (`flattenFields` + `typeLabel`). Validation walks the schema, never the data, so its depth is
 * bounded by the catalogue whatever a peer sends. Strings are measured in Unicode code points.
 */

/** Named string formats; each is a pattern a peer can implement from docs/protocol.md. */
export const STRING_FORMATS = {
  /** Opaque identifiers: session ids, client ids. */
  id: /^[A-Za-z0-9_-]+$/,
  /** PEFT module paths: dot-separated segments, no empty segment (`transformer.h.0.attn.c_attn`). */
  module: /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/,
  /** Lower-case hexadecimal SHA-256 digests. */
  hex64: /^[0-9a-f]{64}$/,
  /** Join tokens: printable ASCII without spaces. */
  token: /^[\x21-\x7e]+$/,
  /** Binary values (keys, nonces, signatures): base64url without padding (RFC 4648 §5). */
  base64url: /^[A-Za-z0-9_-]+$/,
  /** Advisory file names of the base model manifest (never used as a path by a receiver). */
  filename: /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/,
  /** Error codes, known or from a newer peer. */
  code: /^E_[A-Z0-9_]+$/,
  /** Device names such as `cpu`, `cuda:0`, `webgpu`. */
  device: /^[A-Za-z0-9_.:-]+$/,
  /** Human-readable text: any Unicode except control, bidi-override and separator characters. */
  text: /^[^\p{Cc}\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]*$/u,
} as const;

export type StringFormat = keyof typeof STRING_FORMATS;

export interface StringSchema {
  readonly kind: 'string';
  readonly min: number;
  readonly max: number;
  readonly format?: StringFormat;
}
export interface IntegerSchema {
  readonly kind: 'integer';
  readonly min: number;
  readonly max: number;
}
export interface NumberSchema {
  readonly kind: 'number';
  readonly min?: number;
  readonly exclusiveMin?: boolean;
  readonly max?: number;
}
export interface BooleanSchema {
  readonly kind: 'boolean';
}
export interface EnumSchema<V extends string = string> {
  readonly kind: 'enum';
  readonly values: readonly V[];
}
export interface ArraySchema<I extends Schema = Schema> {
  readonly kind: 'array';
  readonly item: I;
  readonly min: number;
  readonly max: number;
}
export interface ObjectSchema<F extends Fields = Fields> {
  readonly kind: 'object';
  readonly fields: F;
}
export interface RecordSchema<V extends Schema = Schema> {
  readonly kind: 'record';
  readonly value: V;
  readonly max: number;
}

export type Schema = StringSchema | IntegerSchema | NumberSchema | BooleanSchema | EnumSchema | ArraySchema | ObjectSchema | RecordSchema;

/** One field of an object: its schema, whether it must be present, and a one-line description. */
export interface FieldSpec<S extends Schema = Schema, R extends boolean = boolean> {
  readonly schema: S;
  readonly required: R;
  readonly doc: string;
}
export type Fields = Readonly<Record<string, FieldSpec>>;

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type RequiredKeys<F extends Fields> = { [K in keyof F]: F[K] extends { readonly required: true } ? K : never }[keyof F];
type OptionalKeys<F extends Fields> = Exclude<keyof F, RequiredKeys<F>>;

/** The TypeScript type a schema describes (read-only, as received). */
export type Infer<S> = S extends StringSchema ? string
  : S extends IntegerSchema | NumberSchema ? number
  : S extends BooleanSchema ? boolean
  : S extends EnumSchema<infer V> ? V
  : S extends ArraySchema<infer I> ? readonly Infer<I>[]
  : S extends ObjectSchema<infer F> ? InferFields<F>
  : S extends RecordSchema<infer V> ? Readonly<Record<string, Infer<V>>>
  : never;

/** The object type of a field list: required fields plain, optional ones with `?`. */
export type InferFields<F extends Fields> = Simplify<
  { readonly [K in RequiredKeys<F>]: Infer<F[K]['schema']> } & { readonly [K in OptionalKeys<F>]?: Infer<F[K]['schema']> }
>;

/** The largest integer every JSON implementation reads exactly (2^53 − 1). */
export const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Schema builders. */
export const s = {
  string: (min: number, max: number, format?: StringFormat): StringSchema => ({ kind: 'string', min, max, ...(format ? { format } : {}) }),
  text: (min: number, max: number): StringSchema => ({ kind: 'string', min, max, format: 'text' }),
  integer: (min = 0, max: number = MAX_SAFE): IntegerSchema => ({ kind: 'integer', min, max }),
  number: (range: { min?: number; exclusiveMin?: boolean; max?: number } = {}): NumberSchema => ({ kind: 'number', ...range }),
  boolean: (): BooleanSchema => ({ kind: 'boolean' }),
  enum: <const V extends string>(...values: V[]): EnumSchema<V> => ({ kind: 'enum', values }),
  array: <I extends Schema>(item: I, min: number, max: number): ArraySchema<I> => ({ kind: 'array', item, min, max }),
  object: <F extends Fields>(fields: F): ObjectSchema<F> => ({ kind: 'object', fields }),
  record: <V extends Schema>(value: V, max: number): RecordSchema<V> => ({ kind: 'record', value, max }),
};

/** A field that must be present. */
export function required<S extends Schema>(schema: S, doc: string): FieldSpec<S, true> {
  return { schema, required: true, doc };
}

/** A field that may be absent (absent and `undefined` are the same; JSON has no `undefined`). */
export function optional<S extends Schema>(schema: S, doc: string): FieldSpec<S, false> {
  return { schema, required: false, doc };
}

/** Keys of `record` fields: short, plain, and never a prototype name. */
const RECORD_KEY = /^[A-Za-z0-9_.:/-]{1,64}$/;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function checkString(schema: StringSchema, value: string, path: string): string | undefined {
  // Code points ≤ UTF-16 units ≤ 2 × code points: reject huge strings before spreading them.
  if (value.length > 2 * schema.max) return `${path}: longer than ${schema.max} characters`;
  if (LONE_SURROGATE.test(value)) return `${path}: contains a lone surrogate`;
  const n = [...value].length;
  if (n < schema.min || n > schema.max) return `${path}: length ${n} is outside ${schema.min}..${schema.max}`;
  if (schema.format !== undefined && !STRING_FORMATS[schema.format].test(value)) return `${path}: not a valid ${schema.format} string`;
  return undefined;
}

function checkNumber(schema: IntegerSchema | NumberSchema, value: number, path: string): string | undefined {
  if (!Number.isFinite(value)) return `${path}: must be a finite number`;
  if (schema.kind === 'integer') {
    if (!Number.isInteger(value)) return `${path}: must be an integer, got ${value}`;
    if (value < schema.min || value > schema.max) return `${path}: ${value} is outside ${schema.min}..${schema.max}`;
    return undefined;
  }
  if (schema.min !== undefined && (schema.exclusiveMin ? value <= schema.min : value < schema.min)) {
    return `${path}: ${value} must be ${schema.exclusiveMin ? '>' : '≥'} ${schema.min}`;
  }
  if (schema.max !== undefined && value > schema.max) return `${path}: ${value} must be ≤ ${schema.max}`;
  return undefined;
}

/**
 * Checks `value` against `schema`; returns a message naming the first bad field (its dotted
 * path), or `undefined` when the value conforms. Never throws.
 */
export function checkValue(schema: Schema, value: unknown, path: string): string | undefined {
  switch (schema.kind) {
    case 'string':
      return typeof value === 'string' ? checkString(schema, value, path) : `${path}: expected string, got ${kindOf(value)}`;
    case 'integer':
    case 'number':
      return typeof value === 'number' ? checkNumber(schema, value, path) : `${path}: expected ${schema.kind}, got ${kindOf(value)}`;
    case 'boolean':
      return typeof value === 'boolean' ? undefined : `${path}: expected boolean, got ${kindOf(value)}`;
    case 'enum':
      return typeof value === 'string' && (schema.values as readonly string[]).includes(value)
        ? undefined
        : `${path}: expected one of ${schema.values.join(', ')}, got ${typeof value === 'string' ? JSON.stringify(value.slice(0, 40)) : kindOf(value)}`;
    case 'array': {
      if (!Array.isArray(value)) return `${path}: expected array, got ${kindOf(value)}`;
      if (value.length < schema.min || value.length > schema.max) return `${path}: ${value.length} items, expected ${schema.min}..${schema.max}`;
      for (let i = 0; i < value.length; i++) {
        const err = checkValue(schema.item, value[i], `${path}[${i}]`);
        if (err !== undefined) return err;
      }
      return undefined;
    }
    case 'object':
      return checkFields(schema.fields, value, path);
    case 'record': {
      if (!isPlainObject(value)) return `${path}: expected object, got ${kindOf(value)}`;
      const keys = Object.keys(value);
      if (keys.length > schema.max) return `${path}: ${keys.length} entries, at most ${schema.max} allowed`;
      for (const key of keys) {
        if (!RECORD_KEY.test(key) || FORBIDDEN_KEYS.has(key)) return `${path}: key ${JSON.stringify(key.slice(0, 70))} is not allowed`;
        const err = checkValue(schema.value, value[key], `${path}.${key}`);
        if (err !== undefined) return err;
      }
      return undefined;
    }
  }
}

/** Checks an object against a field list: no unknown field, every required one present and valid. */
export function checkFields(fields: Fields, value: unknown, path: string): string | undefined {
  if (!isPlainObject(value)) return `${path}: expected object, got ${kindOf(value)}`;
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(fields, key) && value[key] !== undefined) return `${path}: unknown field ${JSON.stringify(key.slice(0, 70))}`;
  }
  for (const [key, spec] of Object.entries(fields)) {
    const v = Object.hasOwn(value, key) ? value[key] : undefined;
    if (v === undefined) {
      if (spec.required) return `${path}: missing required field ${key}`;
      continue;
    }
    const err = checkValue(spec.schema, v, `${path}.${key}`);
    if (err !== undefined) return err;
  }
  return undefined;
}

function rangeLabel(min: number, max: number): string {
  return max === MAX_SAFE ? `≥ ${min}` : min === max ? `${min}` : `${min}..${max}`;
}

/** The type column of docs/protocol.md for a schema, e.g. `integer 1..1000000`, `enum(fedex, fedit, ffa)`. */
export function typeLabel(schema: Schema): string {
  switch (schema.kind) {
    case 'string':
      if (schema.format === 'hex64') return 'hex64';
      if (schema.format === 'text') return `text ${rangeLabel(schema.min, schema.max)}`;
      return `string ${rangeLabel(schema.min, schema.max)}${schema.format !== undefined ? ` (${schema.format})` : ''}`;
    case 'integer':
      return `integer ${rangeLabel(schema.min, schema.max)}`;
    case 'number': {
      if (schema.min !== undefined && !schema.exclusiveMin && schema.max !== undefined) return `number ${schema.min}..${schema.max}`;
      const parts: string[] = [];
      if (schema.min !== undefined) parts.push(`${schema.exclusiveMin ? '>' : '≥'} ${schema.min}`);
      if (schema.max !== undefined) parts.push(`≤ ${schema.max}`);
      return parts.length === 0 ? 'number' : `number ${parts.join(', ')}`;
    }
    case 'boolean':
      return 'boolean';
    case 'enum':
      return `enum(${schema.values.join(', ')})`;
    case 'array':
      return `array ${rangeLabel(schema.min, schema.max)} of ${typeLabel(schema.item)}`;
    case 'object':
      return 'object';
    case 'record':
      return `record ≤ ${schema.max} of ${typeLabel(schema.value)}`;
  }
}

/** One row of a message's field table. */
export interface FieldRow {
  /** Dotted path; `[]` marks the items of an array (`config.layout[].module`). */
  readonly path: string;
  readonly type: string;
  readonly required: boolean;
  readonly doc: string;
}

/** Flattens a field list into table rows, parents before children, in declaration order. */
export function flattenFields(fields: Fields, prefix = ''): FieldRow[] {
  const rows: FieldRow[] = [];
  for (const [key, spec] of Object.entries(fields)) {
    const path = `${prefix}${key}`;
    rows.push({ path, type: typeLabel(spec.schema), required: spec.required, doc: spec.doc });
    const inner = spec.schema.kind === 'array' ? spec.schema.item : spec.schema;
    if (inner.kind === 'object') rows.push(...flattenFields(inner.fields, spec.schema.kind === 'array' ? `${path}[].` : `${path}.`));
  }
  return rows;
}
