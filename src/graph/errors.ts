/**
 * Build-time errors of the graph builder. Every message names the op and the argument that is
 * wrong (`matMul: a has 3 dims, b has 2`), so a bad model fails while it is being built, not when
 * onnxruntime loads it.
 */

/** A shape, dtype or usage error found while building a graph. */
export class GraphError extends Error {
  readonly code = 'GRAPH_BUILD';
  constructor(message: string) {
    super(message);
    this.name = 'GraphError';
  }
}

/**
 * Throws a {@link GraphError} when `condition` is false. The message is built lazily, so callers
 * can format shapes freely without paying for it on the happy path.
 */
export function check(condition: boolean, message: () => string): asserts condition {
  if (!condition) throw new GraphError(message());
}
