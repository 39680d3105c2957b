/**
 * The complementary error function for the privacy accountant: erfc and log(erfc) in float64 with
 * relative accuracy near machine precision over the whole real line, including far in the upper
 * tail where erfc underflows (log erfc(40) ≈ −1604.9) and the accountant needs its logarithm.
 * Below x = 2: erfc = 1 − erf with erf's Maclaurin series (its terms stay below ~3, so about 15
 * digits survive the subtraction); from x = 2: the continued fraction
 * erfc(x) = e^(−x²)/√π · 1/(x + ½/(x + 1/(x + (3/2)/(x + …)))) evaluated by the modified Lentz method.
 */

const SERIES_LIMIT = 2;
const MAX_TERMS = 500;
const TINY = 1e-300;

/** erf(x) for |x| < 2 by its Maclaurin series. */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < MAX_TERMS; n++) {
    term *= -x2 / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) <= 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/** The continued fraction f(x) = x + ½/(x + 1/(x + (3/2)/(x + …))) with erfc(x) = e^(−x²)/(√π·f), for x ≥ 2. */
function erfcFraction(x: number): number {
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < MAX_TERMS; n++) {
    const a = n / 2;
    d = x + a * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = x + a / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) return f;
  }
  throw new Error(`erfc: the continued fraction did not converge at x = ${x}`);
}

/** erfc(x) = 1 − erf(x). */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < SERIES_LIMIT) return 1 - erfSeries(x);
  if (x > 27.3) return 0; // below the smallest subnormal
  return Math.exp(-x * x) / (Math.sqrt(Math.PI) * erfcFraction(x));
}

/** log(erfc(x)), finite for every finite x (−x² − log(x√π) − … in the upper tail). */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === Infinity) return -Infinity;
  if (x < SERIES_LIMIT) return Math.log(erfc(x));
  return -x * x - 0.5 * Math.log(Math.PI) - Math.log(erfcFraction(x));
}
