/**
 * End-to-end: the editor flow of a real federation. In code-server with the packaged VSIX installed,
 * run `FedEx: Host Federation` from the Command Palette (settings seeded in the workspace's
 * settings.json, so it asks nothing), take the URL from its notification and the join token with its
 * 'Copy Join Token' button (the clipboard), checked against the run folder's `token` file and the
 * `listening` event of its `events.jsonl`. Then start two real `fedex join` processes (the
 * repository's bin/fedex.cjs, shards 1/2 and 2/2 of task:arith, base model fetched from the host)
 * and check that the FedEx views show both clients and every round aggregated, that the status bar
 * says the federation is done, and that the dashboard shows round 3/3 with a loss chart that holds
 * points. Screenshots go to the artifacts folder. Run through scripts/e2e/run.sh (`npm run test:e2e`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Frame, Page } from 'playwright-core';
import {
  allowClipboard,
  clickNotificationButton,
  e2eEnvironment,
  findFrame,
  findNotification,
  freePort,
  freshWorkspace,
  openWorkbench,
  readClipboard,
  runCommand,
  screenshot,
  showFedexSideBar,
  treeRows,
  waitUntil,
} from './workbench.js';
import type { E2eEnvironment } from './workbench.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The repository's `fedex` command (dist/cli.cjs once built, else the sources through tsx). */
const FEDEX_BIN = join(ROOT, 'bin', 'fedex.cjs');

const ROUNDS = 3;
const CLIENTS = 2;
/** FEDEX_E2E_MODEL (e.g. `synthetic`) overrides the host's model as in simulation.e2e.ts; the clients then use it too. */
const MODEL = process.env.FEDEX_E2E_MODEL ?? '';

/** How long the federation (model fetch, 3 rounds of 2 steps on 2 clients) may take on a 2-core CI machine. */
const RUN_TIMEOUT_MS = 240_000;

/** A `fedex join` child of this test, its output in the artifacts folder. */
interface JoinProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly log: string;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  code: number | null | undefined;
}

function startJoin(env: E2eEnvironment, url: string, token: string, shard: number, cacheDir: string): JoinProcess {
  const name = `e2e-client-${shard}`;
  const log = join(env.artifacts, `host-${name}.log`);
  const args = [
    FEDEX_BIN,
    'join',
    url,
    '--data',
    'task:arith',
    '--shard',
    `${shard}/${CLIENTS}`,
    '--name',
    name,
    ...(MODEL !== '' ? ['--model', MODEL] : ['--model-cache', cacheDir]),
    '--events',
    join(env.artifacts, `host-${name}.events.jsonl`),
  ];
  // The token in FEDEX_TOKEN, as the host's printed join command says (never on the command line).
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FEDEX_TOKEN: token } });
  const out = createWriteStream(log);
  child.stdout!.pipe(out, { end: false });
  child.stderr!.pipe(out, { end: false });
  const proc: JoinProcess = {
    name,
    child,
    log,
    code: undefined,
    exited: new Promise((done) => child.once('close', (code, signal) => {
      out.end(`\n[e2e] ${name} exited with ${code ?? signal}\n`);
      proc.code = code;
      done(code);
    })),
  };
  return proc;
}

/** `promise`'s value, or `fallback` after `ms` (the timer is cleared: it keeps no test file alive). */
async function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<F>((r) => {
      timer = setTimeout(() => r(fallback), ms);
    })]);
  } finally {
    clearTimeout(timer);
  }
}

async function stopJoin(p: JoinProcess): Promise<void> {
  if (p.code !== undefined) return;
  p.child.kill('SIGTERM');
  if (await within(p.exited.then(() => true), 5_000, false)) return;
  p.child.kill('SIGKILL');
  await within(p.exited, 5_000, null);
}

function tail(path: string, lines = 8): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no output)';
  }
}

/** The host's run folder: `<workspace>/.fedex/runs/host-<stamp>` (the extension's `newRunDir('host')`). */
function hostRunDir(workspace: string): string | null {
  const runs = join(workspace, '.fedex', 'runs');
  if (!existsSync(runs)) return null;
  const hosts = readdirSync(runs).filter((d) => d.startsWith('host-')).sort();
  return hosts.length === 0 ? null : join(runs, hosts.at(-1)!);
}

/** The `listening` event's URL in the run folder's events.jsonl (null until it is there). */
function listeningUrl(runDir: string): string | null {
  const path = join(runDir, 'events.jsonl');
  if (!existsSync(path)) return null;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.includes('"listening"')) continue;
    try {
      const e = JSON.parse(line) as { type?: string; url?: string };
      if (e.type === 'listening' && typeof e.url === 'string') return e.url;
    } catch {
      // A line still being written.
    }
  }
  return null;
}

/** One row of a tree view: its label, description, codicon and nesting level. */
interface Row {
  readonly label: string;
  readonly description: string;
  readonly icon: string;
  readonly level: number;
}

async function readRows(page: Page, title: RegExp): Promise<Row[]> {
  return treeRows(page, title).evaluateAll((rows) => rows.map((r) => ({
    label: r.querySelector('.label-name')?.textContent?.trim() ?? '',
    description: r.querySelector('.label-description')?.textContent?.trim() ?? '',
    icon: [...(r.querySelector('.custom-view-tree-node-item-icon')?.classList ?? [])].find((c) => c.startsWith('codicon-')) ?? '',
    level: Number(r.getAttribute('aria-level') ?? '0'),
  })));
}

async function statusBarText(page: Page): Promise<string> {
  const item = page.locator('.statusbar-item', { hasText: /FedEx/ }).first();
  return (await item.textContent())?.trim() ?? '';
}

interface DashboardProgress {
  readonly round: string;
  readonly totalRounds: string;
  readonly phase: string;
  readonly label: string;
  readonly lossPoints: number;
  readonly lossInked: number;
}

async function readDashboard(frame: Frame): Promise<DashboardProgress> {
  return frame.evaluate(() => {
    const box = document.querySelector<HTMLElement>('[data-testid="round-progress"]');
    const loss = document.querySelector<HTMLElement>('[data-testid="loss-chart"]');
    const canvas = loss?.querySelector('canvas');
    let inked = 0;
    if (canvas !== null && canvas !== undefined && canvas.width > 0 && canvas.height > 0) {
      const data = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data;
      if (data !== undefined) { for (let i = 3; i < data.length; i += 4) if (data[i] > 0) inked++; }
    }
    return {
      round: box?.dataset.round ?? '',
      totalRounds: box?.dataset.totalRounds ?? '',
      phase: box?.dataset.phase ?? '',
      label: document.querySelector('[data-testid="round-label"]')?.textContent ?? '',
      lossPoints: Number(loss?.dataset.points ?? '0'),
      lossInked: inked,
    };
  });
}

/** Stops a federation left running by a failed test (the extension host outlives the browser in code-server). */
async function stopHostedFederation(page: Page): Promise<void> {
  const live = (await readRows(page, /^federations$/i).catch(() => [])).some((r) => /^Hosted/.test(r.label) && !/\b(done|failed|stopped)\b/.test(r.description));
  if (!live) return;
  await runCommand(page, 'FedEx: Stop Federation');
  const stop = page.locator('.monaco-dialog-box .monaco-button', { hasText: /^Stop$/ }).first();
  await stop.waitFor({ state: 'visible', timeout: 5_000 }).then(() => stop.click()).catch(() => undefined);
  await page.waitForTimeout(2_000);
}

test('FedEx: Host Federation with two fedex join clients fills the views, the status bar and the dashboard', { timeout: RUN_TIMEOUT_MS + 240_000 }, async () => {
  // prepare: a workspace of its own whose settings make Host Federation ask nothing
  const env = e2eEnvironment();
  const workspace = freshWorkspace(env, 'host');
  const port = await freePort();
  const settings = {
    'fedex.rounds': ROUNDS,
    'fedex.minClients': CLIENTS,
    'fedex.localSteps': 2,
    'fedex.port': port,
    ...(MODEL !== '' ? { 'fedex.model': MODEL } : {}),
  };
  mkdirSync(join(workspace, '.vscode'), { recursive: true });
  writeFileSync(join(workspace, '.vscode', 'settings.json'), `${JSON.stringify(settings, null, 2)}\n`);
  const cacheDir = join(dirname(env.workspace), 'join-model-cache');
  const workbench = await openWorkbench(env, workspace);
  await allowClipboard(workbench, env);
  const { page } = workbench;
  const joins: JoinProcess[] = [];
  let runDir: string | null = null;
  const started = Date.now();
  const step = (what: string): void => console.log(`e2e host: ${what} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  try {
    // act: host from the Command Palette
    await runCommand(page, 'FedEx: Host Federation');
    await showFedexSideBar(page);
    const hosting = await findNotification(page, /FedEx: hosting at/, 90_000);
    const message = (await hosting.locator('.notification-list-item-message').textContent()) ?? '';
    const url = /hosting at (wss?:\/\/\S+) \(/.exec(message)?.[1];
    assert.ok(url !== undefined, `no URL in the notification '${message}'`);
    assert.match(url, new RegExp(`^ws://127\\.0\\.0\\.1:${port}/?$`), `the URL should use fedex.port ${port}`);
    await screenshot(page, env, 'host-01-hosting');
    await clickNotificationButton(hosting, 'Copy Join Token');
    const token = (await waitUntil('the join token on the clipboard', () => readClipboard(page), (t) => t.trim() !== '' && !t.includes(' '), 10_000)).trim();
    step(`hosting at ${url}; token copied (${token.length} characters)`);

    // The run folder tells the same (what a user reads when the notification is gone).
    runDir = await waitUntil('the host run folder with its token and events.jsonl', async () => hostRunDir(workspace), (d) => d !== null && existsSync(join(d, 'token')) && listeningUrl(d) !== null, 30_000);
    assert.equal(readFileSync(join(runDir!, 'token'), 'utf8').trim(), token, "the copied token differs from the run folder's token file");
    assert.equal(listeningUrl(runDir!), url, "the notification's URL differs from the listening event of events.jsonl");

    // act: two clients join from outside the editor, as participants would
    for (let shard = 1; shard <= CLIENTS; shard++) joins.push(startJoin(env, url, token, shard, cacheDir));
    const joinFailed = async (): Promise<string | null> => {
      const bad = joins.find((j) => j.code !== undefined && j.code !== 0);
      if (bad !== undefined) return `${bad.name} exited with ${bad.code}:\n${tail(bad.log)}`;
      const rows = await readRows(page, /^federations$/i).catch(() => []);
      const failed = rows.find((r) => /^Hosted/.test(r.label) && /failed/.test(r.description));
      return failed === undefined ? null : `the hosted federation failed ('${failed.description}'; see the FedEx log under vscode-logs/ in the artifacts)`;
    };

    // assert: the clients appear in the Clients view while the federation runs
    const hostedLabel = `Hosted :${port}`;
    await waitUntil(`both clients in the Clients view`, () => readRows(page, /^clients$/i), (rows) => joins.every((j) => rows.some((r) => r.label === j.name)), RUN_TIMEOUT_MS, joinFailed);
    step('both clients joined');
    await screenshot(page, env, 'host-02-clients-joined');

    // assert: the federation finishes (the views say done, round 3/3)
    const federations = await waitUntil(`'${hostedLabel}' done in the Federations view`, () => readRows(page, /^federations$/i), (rows) => rows.some((r) => r.label === hostedLabel && /^done\b/.test(r.description)), RUN_TIMEOUT_MS,
      joinFailed);
    step('federation done');
    const hosted = federations.find((r) => r.label === hostedLabel)!;
    assert.match(hosted.description, new RegExp(`round ${ROUNDS}/${ROUNDS}`), `Federations view: '${hosted.description}'`);
    assert.equal(hosted.icon, 'codicon-pass', `Federations view: the hosted federation's icon is ${hosted.icon}`);

    // Both clients exit 0 once the coordinator says the federation is complete.
    const codes = await within(Promise.all(joins.map((j) => j.exited)), 60_000, null);
    assert.ok(codes !== null, `the join processes did not exit within 60 s after the federation finished: ${joins.map((j) => `${j.name}: ${j.code ?? 'running'}`).join(', ')}`);
    joins.forEach((j, i) => assert.equal(codes[i], 0, `${j.name} exited with ${codes[i]}:\n${tail(j.log)}`));
    step('both join processes exited 0');

    const clients = await waitUntil('both clients listed under the hosted federation', () => readRows(page, /^clients$/i), (rows) => joins.every((j) => rows.some((r) => r.label === j.name)), 10_000);
    const group = clients.find((r) => r.label === hostedLabel);
    assert.ok(group !== undefined, `Clients view: no '${hostedLabel}' group in ${JSON.stringify(clients)}`);
    for (const j of joins) {
      const row = clients.find((r) => r.label === j.name)!;
      assert.ok(row.level > group.level, `Clients view: ${j.name} is not under '${hostedLabel}'`);
      assert.ok(!/failed|rejected/.test(row.description), `Clients view: ${j.name} is '${row.description}'`);
    }

    const rounds = await waitUntil(`${ROUNDS} aggregated rounds in the Rounds view`, () => readRows(page, /^rounds$/i),
      (rows) => Array.from({ length: ROUNDS }, (_, i) => rows.find((r) => r.label === `Round ${i + 1}`)).every((r) => r !== undefined && r.icon === 'codicon-check'), 10_000);
    const roundGroup = rounds.find((r) => r.label === hostedLabel);
    assert.ok(roundGroup !== undefined && roundGroup.description === `round ${ROUNDS}/${ROUNDS}`, `Rounds view: ${JSON.stringify(roundGroup)}`);
    for (let round = 1; round <= ROUNDS; round++) {
      const row = rounds.find((r) => r.label === `Round ${round}`)!;
      // `2/2 clients`: both sampled clients took part; the check icon (not a warning) says it aggregated.
      assert.match(row.description, new RegExp(`\\b${CLIENTS}/${CLIENTS} clients\\b`), `Rounds view, round ${round}: '${row.description}'`);
      assert.match(row.description, /\bloss \d/, `Rounds view, round ${round}: no loss in '${row.description}'`);
    }

    // assert: the status bar says the federation finished
    const status = await waitUntil('the status bar to say done', () => statusBarText(page), (t) => /done/.test(t), 10_000);
    assert.match(status, new RegExp(`FedEx round ${ROUNDS}/${ROUNDS} · done`), `status bar: '${status}'`);
    console.log(`e2e host: status bar '${status}'; rounds ${rounds.filter((r) => r.label.startsWith('Round')).map((r) => `${r.label}: ${r.description}`).join('; ')}`);
    await screenshot(page, env, 'host-03-tree-views');

    // act: open the dashboard
    await runCommand(page, 'FedEx: Open Dashboard');
    const frame = await findFrame(page, '[data-testid="round-progress"]', 60_000);

    // assert: round progress 3/3, done; the loss chart holds points and its canvas shows them
    const dashboard = await waitUntil('the dashboard at round 3, done, with loss points drawn', () => readDashboard(frame), (d) => d.round === String(ROUNDS) && d.phase === 'done' && d.lossPoints > 0 && d.lossInked > 0, 60_000);
    console.log(`e2e host: dashboard '${dashboard.label}' (${dashboard.phase}, total rounds '${dashboard.totalRounds}'), loss-chart ${dashboard.lossPoints} points`);
    await screenshot(page, env, 'host-04-dashboard');
    assert.equal(dashboard.totalRounds, String(ROUNDS), `the dashboard's round progress does not know the hosted federation's ${ROUNDS} rounds (headline '${dashboard.label}')`);
    assert.match(dashboard.label, new RegExp(`Round ${ROUNDS} / ${ROUNDS}`), `dashboard headline: '${dashboard.label}'`);
    // The global mean train loss has one point per closed round (and each client one per round it reported).
    assert.ok(dashboard.lossPoints >= ROUNDS, `loss-chart: ${dashboard.lossPoints} points, expected at least ${ROUNDS}`);
    step('done');
  } catch (err) {
    await screenshot(page, env, 'host-failure').catch(() => undefined);
    await stopHostedFederation(page).catch(() => undefined);
    throw err;
  } finally {
    await Promise.all(joins.map(stopJoin));
    if (runDir !== null && existsSync(join(runDir, 'events.jsonl'))) copyFileSync(join(runDir, 'events.jsonl'), join(env.artifacts, 'host-events.jsonl'));
    await workbench.close();
  }
});
