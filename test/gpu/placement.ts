/**
 * onnxruntime's node placement, read from its verbose session log (`--ort-log verbose`, session
 * option `logSeverityLevel: 0`). When a session is created, onnxruntime logs one block
 * (session_state.cc, VerifyEachNodeIsAssignedToAnEp):
 *
 *   … VerifyEachNodeIsAssignedToAnEp] Node placements
 *   … VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [CPUExecutionProvider]. Number of nodes: 33
 *   … VerifyEachNodeIsAssignedToAnEp]   Shape (shape_12)
 *   … VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [WebGpuExecutionProvider]. Number of nodes: 578
 *   …
 * or, when one provider has them all, `All nodes placed on [WebGpuExecutionProvider]. Number of nodes: 527`.
 */

/** The nodes one execution provider runs in one session. */
export interface ProviderNodes {
  readonly count: number;
  /** `Op (name)` of each node, as logged. */
  readonly nodes: readonly string[];
}

/** One session's placement: execution provider name → its nodes. */
export type SessionPlacement = ReadonlyMap<string, ProviderNodes>;

const MARK = 'VerifyEachNodeIsAssignedToAnEp] ';
const PLACED = /^\s*(?:All nodes|Node\(s\)) placed on \[(\w+)\]\. Number of nodes: (\d+)$/;

/** Every session's placement in a log, in the order the sessions were created. */
export function nodePlacements(log: string): SessionPlacement[] {
  const sessions: Map<string, { count: number; nodes: string[] }>[] = [];
  let provider: { count: number; nodes: string[] } | undefined;
  for (const line of log.split('\n')) {
    const at = line.indexOf(MARK);
    if (at < 0) continue;
    const text = line.slice(at + MARK.length).trimEnd();
    if (text === 'Node placements') {
      sessions.push(new Map());
      provider = undefined;
      continue;
    }
    const session = sessions[sessions.length - 1];
    if (session === undefined) continue;
    const placed = PLACED.exec(text);
    if (placed !== null) {
      provider = { count: Number(placed[2]), nodes: [] };
      session.set(placed[1], provider);
    } else if (provider !== undefined && text.trim() !== '') {
      provider.nodes.push(text.trim());
    }
  }
  return sessions;
}
