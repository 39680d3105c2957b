import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../src/graph/builder.js';
import { adamW, clipByGlobalNorm, sgd } from '../../src/graph/optim.js';
import { assertClose, random, runGraph } from './gradCheck.js';
import { adamWRef } from './references.js';

describe('optimizers in the graph (float64 against float64 TypeScript references)', () => {
  test('AdamW: two steps with lr and step as inputs match torch.optim.AdamW', async () => {
    const g = new GraphBuilder();
    const p = g.input('p', 'float64', [2, 3]);
    const grd = g.input('g', 'float64', [2, 3]);
    const m = g.input('m', 'float64', [2, 3]);
    const v = g.input('v', 'float64', [2, 3]);
    const lr = g.input('lr', 'float64', []);
    const step = g.input('step', 'float64', []);
    const hyper = { beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0.1 };
    const [next] = adamW([{ param: p, grad: grd, m, v }], { lr, step, ...hyper });
    let state = { p: random(6, 1), m: new Array<number>(6).fill(0), v: new Array<number>(6).fill(0) };
    for (const t of [1, 2]) {
      const gradient = random(6, 10 + t);
      const out = await runGraph(g, [
        { value: p, data: Float64Array.from(state.p), dims: [2, 3] },
        { value: grd, data: Float64Array.from(gradient), dims: [2, 3] },
        { value: m, data: Float64Array.from(state.m), dims: [2, 3] },
        { value: v, data: Float64Array.from(state.v), dims: [2, 3] },
        { value: lr, data: Float64Array.of(0.01), dims: [] },
        { value: step, data: Float64Array.of(t), dims: [] },
      ], { p2: next.param, m2: next.m, v2: next.v });
      const ref = adamWRef(state.p, gradient, state.m, state.v, { lr: 0.01, step: t, ...hyper });
      assertClose(out.p2.data, ref.p, 1e-12, 1e-15, `param after step ${t}`);
      assertClose(out.m2.data, ref.m, 1e-12, 1e-15, `m after step ${t}`);
      assertClose(out.v2.data, ref.v, 1e-12, 1e-15, `v after step ${t}`);
      state = { p: out.p2.data, m: out.m2.data, v: out.v2.data };
    }
  });

  for (const nesterov of [false, true]) {
    test(`SGD with momentum 0.9, weight decay 0.01, nesterov=${nesterov}: two steps match torch.optim.SGD`, async () => {
      const g = new GraphBuilder();
      const p = g.input('p', 'float64', [4]);
      const grd = g.input('g', 'float64', [4]);
      const vel = g.input('vel', 'float64', [4]);
      const [next] = sgd([{ param: p, grad: grd, velocity: vel }], { lr: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov });
      let pv = random(4, 3);
      let buf = [0, 0, 0, 0];
      for (const t of [1, 2]) {
        const gradient = random(4, 20 + t);
        const out = await runGraph(g, [
          { value: p, data: Float64Array.from(pv), dims: [4] },
          { value: grd, data: Float64Array.from(gradient), dims: [4] },
          { value: vel, data: Float64Array.from(buf), dims: [4] },
        ], { p2: next.param, vel2: next.velocity! });
        const d = gradient.map((gi, i) => gi + 0.01 * pv[i]);
        const buf2 = buf.map((b, i) => 0.9 * b + d[i]);
        const step = nesterov ? d.map((di, i) => di + 0.9 * buf2[i]) : buf2;
        const ref = pv.map((pi, i) => pi - 0.1 * step[i]);
        assertClose(out.p2.data, ref, 1e-13, 1e-15, `sgd step ${t}`);
        assertClose(out.vel2.data, buf2, 1e-13, 1e-15, `velocity step ${t}`);
        pv = out.p2.data;
        buf = out.vel2.data;
      }
    });
  }

  test('clipByGlobalNorm scales by maxNorm/(norm + 1e-6) only when the norm is larger', async () => {
    const g = new GraphBuilder();
    const a = g.input('a', 'float64', [2]);
    const b = g.input('b', 'float64', [1, 2]);
    const clipped = clipByGlobalNorm([a, b], 1);
    const loose = clipByGlobalNorm([a, b], 100);
    const out = await runGraph(g, [{ value: a, data: Float64Array.of(3, 0), dims: [2] }, { value: b, data: Float64Array.of(0, 4), dims: [1, 2] }], { norm: clipped.norm, a2: clipped.grads[0], b2: clipped.grads[1], a3: loose.grads[0] });
    assert.equal(out.norm.data[0], 5);
    const c = 1 / (5 + 1e-6);
    assertClose([...out.a2.data, ...out.b2.data], [3 * c, 0, 0, 4 * c], 1e-14, 0, 'clipped');
    assert.deepEqual(out.a3.data, [3, 0]);
  });

  test('a state tensor that does not match its parameter is a build error', () => {
    const g = new GraphBuilder();
    const p = g.input('p', 'float32', [2, 3]);
    const wrong = g.input('m', 'float32', [3, 2]);
    const step = g.input('step', 'float32', []);
    assert.throws(() => adamW([{ param: p, grad: p, m: wrong, v: p }], { lr: 0.1, step }), /adamW: m: float32\[3, 2\] does not match parameter p: float32\[2, 3\]/);
  });
});
