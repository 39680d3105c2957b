/**
 * Drives a code-server workbench from the end-to-end tests: opens it in Debian's Chromium through
 * playwright-core, runs commands from the Command Palette, reads tree views and finds elements inside
 * webview iframes. The environment comes from scripts/e2e/run.sh (FEDEX_E2E_*).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext, Frame, Locator, Page } from 'playwright-core';

/** What scripts/e2e/run.sh hands to the tests. */
export interface E2eEnvironment {
  /** code-server's base URL, e.g. http://127.0.0.1:43123. */
  readonly url: string;
  /** An empty folder the tests may fill and open as the workspace. */
  readonly workspace: string;
  /** Where screenshots go (kept as CI artifacts). */
  readonly artifacts: string;
  readonly chromium: string;
  /** A fresh folder for the browser profile. */
  readonly browserDir: string;
}

/** Reads FEDEX_E2E_* (set by scripts/e2e/run.sh); throws naming the missing variable. */
export function e2eEnvironment(env: NodeJS.ProcessEnv = process.env): E2eEnvironment {
  const need = (name: string): string => {
    const value = env[name];
    if (value === undefined || value === '') throw new Error(`e2e: ${name} is not set; run the tests through scripts/e2e/run.sh (npm run test:e2e)`);
    return value;
  };
  return {
    url: need('FEDEX_E2E_URL'),
    workspace: need('FEDEX_E2E_WORKSPACE'),
    artifacts: need('FEDEX_E2E_ARTIFACTS'),
    chromium: env.FEDEX_E2E_CHROMIUM ?? '/usr/bin/chromium',
    browserDir: need('FEDEX_E2E_BROWSER_DIR'),
  };
}

/** Chromium flags of ../shared/E2E.md: no GPU, no sandbox (root in CI), nothing reaching the network. */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** An open workbench: the browser context and its page. */
export interface Workbench {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Closes the browser. */
  close(): Promise<void>;
}

/** Launches Chromium on a fresh profile and opens `folder` in code-server; resolves once the workbench is drawn. */
export async function openWorkbench(env: E2eEnvironment, folder: string): Promise<Workbench> {
  mkdirSync(env.browserDir, { recursive: true });
  const context = await chromium.launchPersistentContext(env.browserDir, {
    executablePath: env.chromium,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1600, height: 1000 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`${env.url}/?folder=${encodeURIComponent(folder)}`);
  await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: 90_000 });
  return { context, page, close: () => context.close() };
}

/**
 * Runs `title` (e.g. "FedEx: Open Dashboard") from the Command Palette. Just after load the palette can
 * miss commands that are not registered yet: then Escape, wait a little longer each time, and retry.
 */
export async function runCommand(page: Page, title: string, attempts = 6): Promise<void> {
  const input = page.locator('.quick-input-widget .quick-input-box input');
  for (let attempt = 1; attempt <= attempts; attempt++) {
    await page.keyboard.press('Escape');
    await page.keyboard.press('F1');
    try {
      await input.waitFor({ state: 'visible', timeout: 10_000 });
      await input.fill(`>${title}`);
      const row = page.locator('.quick-input-widget .monaco-list-row', { has: page.locator('.label-name', { hasText: title }) }).first();
      await row.waitFor({ state: 'visible', timeout: 5_000 });
      await row.click();
      await input.waitFor({ state: 'hidden', timeout: 5_000 });
      return;
    } catch {
      await page.keyboard.press('Escape');
      await page.waitForTimeout(1_000 * attempt);
    }
  }
  throw new Error(`e2e: command '${title}' not found in the Command Palette after ${attempts} attempts`);
}

/** The rows of the tree view titled `title` (a pane in the side bar). */
export function treeRows(page: Page, title: string | RegExp): Locator {
  const pane = page.locator('.pane', { has: page.locator('.pane-header .title', { hasText: title }) });
  return pane.locator('.pane-body .monaco-list-row');
}

/**
 * Polls `read` until `done` accepts its value; throws `what` with the last value after `timeoutMs`, or
 * at once when `failure` (checked on every poll) names a reason to stop waiting.
 */
export async function waitUntil<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number, failure?: () => Promise<string | null>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    try {
      last = await read();
      if (done(last)) return last;
    } catch {
      // The element may be (re)rendering; try again.
    }
    const reason = failure === undefined ? null : await failure().catch(() => null);
    if (reason !== null) throw new Error(`e2e: gave up waiting for ${what}: ${reason}`);
    if (Date.now() > deadline) throw new Error(`e2e: timed out after ${timeoutMs} ms waiting for ${what} (last value: ${JSON.stringify(last)})`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/**
 * The frame (webviews are nested iframes) holding an element that matches `selector`, searched over
 * `page.frames()` until `timeoutMs`.
 */
export async function findFrame(page: Page, selector: string, timeoutMs: number): Promise<Frame> {
  const found = await waitUntil(`a frame with ${selector}`, async () => {
    for (const frame of page.frames()) {
      if (frame.isDetached()) continue;
      if ((await frame.locator(selector).count().catch(() => 0)) > 0) return frame;
    }
    return null;
  }, (frame) => frame !== null, timeoutMs);
  return found!;
}

/** Writes a PNG of the whole page (webviews included) to the artifacts folder; returns its path. */
export async function screenshot(page: Page, env: E2eEnvironment, name: string): Promise<string> {
  mkdirSync(env.artifacts, { recursive: true });
  const path = join(env.artifacts, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  return path;
}

/**
 * A fresh folder beside the run's workspace (`<run folder>/workspace-<name>`), for a spec that must
 * not share its workspace settings or `.fedex/runs` with another spec.
 */
export function freshWorkspace(env: E2eEnvironment, name: string): string {
  const folder = join(dirname(env.workspace), `workspace-${name}`);
  rmSync(folder, { recursive: true, force: true });
  mkdirSync(folder, { recursive: true });
  return folder;
}

/** A TCP port free on 127.0.0.1 right now (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * The notification whose message matches `message`: its toast, or (once the toast hid itself, as
 * information toasts do after a while) its entry in the Notifications center, which this opens.
 */
export async function findNotification(page: Page, message: RegExp, timeoutMs: number): Promise<Locator> {
  const item = (scope: string): Locator => page.locator(`${scope} .notification-list-item`, { has: page.locator('.notification-list-item-message', { hasText: message }) }).first();
  const toast = item('.notifications-toasts');
  const center = item('.notifications-center');
  const started = Date.now();
  let opened = false;
  const found = await waitUntil(`a notification matching ${message}`, async () => {
    if (await toast.isVisible()) return toast;
    if (await center.isVisible()) return center;
    // Not shown as a toast for a while (it hid, or toasts are off): look in the Notifications center.
    if (!opened && (await center.count() > 0 || Date.now() - started > 15_000)) {
      opened = true;
      await runCommand(page, 'Notifications: Show Notifications');
    }
    return null;
  }, (l) => l !== null, timeoutMs);
  return found!;
}

/** Clicks the button labelled `label` of a notification (found by `findNotification`). */
export async function clickNotificationButton(notification: Locator, label: string): Promise<void> {
  await notification.hover();
  await notification.locator('.notification-list-item-buttons-container .monaco-button', { hasText: label }).first().click();
}

/**
 * The text on the browser's clipboard (what the workbench copied with `vscode.env.clipboard`). The
 * context must have been granted 'clipboard-read' (`allowClipboard`).
 */
export async function readClipboard(page: Page): Promise<string> {
  await page.bringToFront();
  return page.evaluate(() => navigator.clipboard.readText());
}

/** Lets the page read and write the clipboard (headless Chromium otherwise refuses `readText`). */
export async function allowClipboard(workbench: Workbench, env: E2eEnvironment): Promise<void> {
  await workbench.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(env.url).origin });
}

/** Opens the FedEx view container in the activity bar (its title names it), or through the Command Palette. */
export async function showFedexSideBar(page: Page): Promise<void> {
  const entry = page.locator('.activitybar .action-item a[aria-label^="FedEx"], .activitybar .action-item[aria-label^="FedEx"]').first();
  if (await entry.count() > 0) {
    const checked = await entry.getAttribute('aria-checked').catch(() => null);
    if (checked !== 'true') await entry.click();
    return;
  }
  await runCommand(page, 'View: Show FedEx');
}
