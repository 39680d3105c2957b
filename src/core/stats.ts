/** Small statistics over figures that may be missing. */

/** Mean of the finite values, or null when there is none. */
export function meanOf(values: readonly (number | null)[]): number | null {
  const ok = values.filter((v): v is number => v !== null && Number.isFinite(v));
  return ok.length === 0 ? null : ok.reduce((a, b) => a + b, 0) / ok.length;
}
