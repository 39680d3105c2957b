/**
 * From character positions in a text to positions in its token ids, without offsets (the
 * tokenizer library gives none): a boundary at character p falls after the tokens that the text's
 * own encoding shares with the encoding of `text.slice(0, p)` — how TRL finds where a prompt's
 * tokens end. Where BPE merges a token across the boundary (`"A: " + "Paris"` → `" Paris"`), that
 * token is counted on the side of the text that follows, so a span scores every token holding any
 * of its characters.
 */

/** Length of the longest common prefix of two id lists. */
export function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** A half-open range of characters `[start, end)`. */
export interface CharSpan {
  readonly start: number;
  readonly end: number;
}

/**
 * Which tokens of `ids` (the encoding of `text`) hold characters of each span: true for the tokens
 * from the span's first token (the first token not shared with the encoding of the text before
 * it) up to its last (the tokens shared with the encoding of the text up to its end, plus the
 * token that straddles the end when that encoding continues past them).
 */
export function tokenMaskOfSpans(text: string, ids: readonly number[], spans: readonly CharSpan[], encode: (text: string) => number[]): boolean[] {
  const mask = new Array<boolean>(ids.length).fill(false);
  const before = (p: number): { shared: number; own: number } => {
    if (p >= text.length) return { shared: ids.length, own: ids.length };
    const own = encode(text.slice(0, p));
    return { shared: commonPrefixLength(own, ids), own: own.length };
  };
  for (const span of spans) {
    if (span.end <= span.start) continue;
    const first = span.start === 0 ? 0 : before(span.start).shared;
    const end = before(span.end);
    const last = end.own > end.shared ? end.shared + 1 : end.shared;
    for (let t = first; t < Math.min(last, ids.length); t++) mask[t] = true;
  }
  return mask;
}
