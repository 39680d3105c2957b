/**
 * End-to-end: in code-server with the packaged VSIX installed, run `FedEx: Run Local Simulation` from
 * the Command Palette, watch the FedEx tree views fill, open the dashboard and check, inside the
 * webview iframe, that its charts render data from that run. Screenshots go to the artifacts folder.
 * Run through scripts/e2e/run.sh (`npm run test:e2e`), never by scripts/test.mjs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { e2eEnvironment, findFrame, openWorkbench, runCommand, screenshot, showFedexSideBar, treeRows, waitUntil } from './workbench.js';

/**
 * Small run: the shipped default model (fedex.model empty = models/tiny-gpt2 inside the VSIX), a few
 * rounds of a few steps (settings of the manifest). FEDEX_E2E_MODEL overrides the model (e.g.
 * `synthetic`, the CLI's model-free mode, to exercise the editor side alone).
 */
const ROUNDS = 2;
const WORKSPACE_SETTINGS = {
  'fedex.model': process.env.FEDEX_E2E_MODEL ?? '',
  'fedex.rounds': ROUNDS,
  'fedex.localSteps': 2,
  'fedex.rank': 4,
  'fedex.method': 'fedex',
  'fedex.device': 'cpu',
};

/** How long the simulation may take on a 2-core CI machine. */
const RUN_TIMEOUT_MS = 240_000;

/** Charts of the dashboard (webview/: `data-testid` on the container, `data-points` = points drawn). */
const REQUIRED_CHARTS = ['loss-chart', 'deviation-chart'];

interface ChartState {
  readonly testId: string;
  readonly points: number;
  /** Canvas pixels with any ink (alpha > 0): the chart library really drew something. */
  readonly inked: number;
}

/** Reads every `[data-testid$="-chart"]` of the dashboard frame. */
async function readCharts(frame: Frame): Promise<ChartState[]> {
  return frame.evaluate(() => {
    const out: { testId: string; points: number; inked: number }[] = [];
    for (const el of Array.from(document.querySelectorAll<HTMLElement>('[data-testid$="-chart"]'))) {
      const canvas = el.querySelector('canvas');
      let inked = 0;
      if (canvas !== null && canvas.width > 0 && canvas.height > 0) {
        const data = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data;
        if (data !== undefined) { for (let i = 3; i < data.length; i += 4) if (data[i] > 0) inked++; }
      }
      out.push({ testId: el.dataset.testid ?? '', points: Number(el.dataset.points ?? '0'), inked });
    }
    return out;
  });
}

function prepareWorkspace(folder: string): void {
  mkdirSync(join(folder, '.vscode'), { recursive: true });
  writeFileSync(join(folder, '.vscode', 'settings.json'), `${JSON.stringify(WORKSPACE_SETTINGS, null, 2)}\n`);
}

/** A reason to stop waiting: the federation row says the run failed (the FedEx log says why). */
async function simulationFailure(page: Page): Promise<string | null> {
  const labels = await treeRows(page, /^federations$/i).evaluateAll((rows) => rows.map((r) => r.getAttribute('aria-label') ?? r.textContent ?? ''));
  const failed = labels.find((l) => /failed/i.test(l));
  return failed === undefined ? null : `the simulation failed ('${failed}'; see the FedEx log under vscode-logs/ in the artifacts)`;
}

test('FedEx: Run Local Simulation fills the views and the dashboard charts', { timeout: RUN_TIMEOUT_MS + 180_000 }, async () => {
  // prepare
  const env = e2eEnvironment();
  prepareWorkspace(env.workspace);
  const workbench = await openWorkbench(env, env.workspace);
  const { page } = workbench;
  try {
    await screenshot(page, env, '01-workbench');

    // act: start the simulation from the Command Palette
    await runCommand(page, 'FedEx: Run Local Simulation');
    await showFedexSideBar(page);

    // assert: the tree views fill (clients with their status, rounds with their metrics)
    const clients = await waitUntil('client rows in the Clients view', () => treeRows(page, /clients/i).count(), (n) => n >= 2, RUN_TIMEOUT_MS, () => simulationFailure(page));
    const rounds = await waitUntil(`${ROUNDS} rows in the Rounds view`, () => treeRows(page, /rounds/i).count(), (n) => n >= ROUNDS, RUN_TIMEOUT_MS, () => simulationFailure(page));
    assert.ok(clients >= 2, `expected at least 2 clients, saw ${clients}`);
    assert.ok(rounds >= ROUNDS, `expected ${ROUNDS} rounds, saw ${rounds}`);
    await screenshot(page, env, '02-tree-views');

    // act: open the dashboard
    await runCommand(page, 'FedEx: Open Dashboard');
    const frame = await findFrame(page, '[data-testid="loss-chart"]', 60_000);

    // assert: the charts hold points from this run and the canvas shows them
    const charts = await waitUntil('data points drawn in the loss and deviation charts', () => readCharts(frame),
      // Both: a chart that just received data may be between a clear and its next frame for a moment.
      (list) =>
        REQUIRED_CHARTS.every((id) => {
          const c = list.find((x) => x.testId === id);
          return c !== undefined && c.points > 0 && c.inked > 0;
        }), RUN_TIMEOUT_MS);
    for (const id of REQUIRED_CHARTS) {
      const chart = charts.find((c) => c.testId === id)!;
      assert.ok(chart.points > 0, `${id}: no data points`);
      assert.ok(chart.inked > 0, `${id}: the canvas is blank`);
    }
    // The deviation chart has one point per finished round (per series): never more than the run made.
    const deviation = charts.find((c) => c.testId === 'deviation-chart')!;
    assert.ok(deviation.points >= 1, `deviation-chart: ${deviation.points} points`);
    console.log(`e2e: charts ${charts.map((c) => `${c.testId}=${c.points}`).join(', ')}`);
    assert.equal(await frame.locator('#fedex-loading').count(), 0, 'the "Loading the FedEx dashboard…" placeholder is still shown');
    await screenshot(page, env, '03-dashboard');
  } catch (err) {
    await screenshot(page, env, 'failure').catch(() => undefined);
    throw err;
  } finally {
    await workbench.close();
  }
});
