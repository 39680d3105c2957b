// The reader of onnxruntime's node-placement log (test/gpu/placement.ts), on log lines as
// onnxruntime 1.30 writes them (the first from the WebGPU training session before its graphs were
// lowered, docs/devices.md). Runs without a GPU.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { nodePlacements } from './placement.js';

const V = '2026-12-06 20:48:17.659146301 [V:onnxruntime:, session_state.cc:1377 VerifyEachNodeIsAssignedToAnEp]';
const LOG = [
  '2026-12-06 20:48:17.656248328 [I:onnxruntime:, graph_transformer.cc:15 Apply] GraphTransformer MemcpyTransformer modified: 1 with status: OK',
  `${V} Node placements`,
  `${V}  Node(s) placed on [CPUExecutionProvider]. Number of nodes: 2`,
  `${V}   Shape ()`,
  `${V}   LogSoftmax (logSoftmax_737)`,
  `${V}  Node(s) placed on [WebGpuExecutionProvider]. Number of nodes: 578`,
  `${V}   Gather (gather_3)`,
  '2026-12-06 20:48:17.660 [V:onnxruntime:, session_state.cc:186 CreateGraphInfo] SaveMLValueNameIndexMapping',
  `${V} Node placements`,
  `${V}  All nodes placed on [WebGpuExecutionProvider]. Number of nodes: 168`,
].join('\n');

describe('nodePlacements', () => {
  test('reads one placement per session: providers, node counts and the nodes listed', () => {
    const sessions = nodePlacements(LOG);

    assert.equal(sessions.length, 2);
    assert.deepEqual([...sessions[0].keys()], ['CPUExecutionProvider', 'WebGpuExecutionProvider']);
    assert.deepEqual(sessions[0].get('CPUExecutionProvider'), { count: 2, nodes: ['Shape ()', 'LogSoftmax (logSoftmax_737)'] });
    assert.equal(sessions[0].get('WebGpuExecutionProvider')?.count, 578);
    assert.deepEqual([...sessions[1].entries()], [['WebGpuExecutionProvider', { count: 168, nodes: [] }]]);
  });

  test('a log without placements (not verbose) has none', () => {
    assert.deepEqual(nodePlacements('2026-12-06 [W:onnxruntime:, x.cc:1 f] something\n'), []);
  });
});
