/**
 * Defensive readers of JSON payloads: a field of the wrong type reads as null (or empty), never
 * throws. The federation fold reads a JSON stream from a CLI (and the dashboard a state sent as
 * JSON): one odd field must not blank the sidebar or the charts.
 */

/** A JSON object's fields. */
export type Fields = Readonly<Record<string, unknown>>;

/** `value` as an object's fields, or null when it is not a (non-array) object. */
export function fields(value: unknown): Fields | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Fields) : null;
}

/** A finite number, or null. */
export function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** A string, or null. */
export function str(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/** An array, or an empty one. */
export function arr(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

/** The strings of an array (other entries dropped). */
export function strings(value: unknown): string[] {
  return arr(value).filter((x): x is string => typeof x === 'string');
}

/**
 * Entries of a JSON object as [key, value] pairs (own enumerable keys only). JSON.parse makes
 * `__proto__` an own key like any other; it stays a plain string here.
 */
export function entries(value: unknown): [string, unknown][] {
  const f = fields(value);
  return f === null ? [] : Object.keys(f).map((k) => [k, f[k]]);
}
