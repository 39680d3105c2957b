/**
 * The layer boundaries of docs/architecture.md are ESLint rules; this checks that they bite, by
 * linting small snippets as if they lived in each folder.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ESLint } from 'eslint';

const eslint = new ESLint({ cwd: new URL('../..', import.meta.url).pathname });

async function restricted(code: string, filePath: string): Promise<boolean> {
  const [result] = await eslint.lintText(code, { filePath });
  return result.messages.some((m) => m.ruleId === 'no-restricted-imports');
}

describe('layer boundaries', () => {
  const cases: [string, string, boolean][] = [
    ["import ort from 'onnxruntime-node'; export const x = ort;", 'src/runtime/probe.ts', false],
    ["import ort from 'onnxruntime-node'; export const x = ort;", 'src/core/probe.ts', true],
    ["import ort from 'onnxruntime-node'; export const x = ort;", 'src/federation/probe.ts', true],
    ["import ort from 'onnxruntime-node'; export const x = ort;", 'src/extension/probe.ts', true],
    ["import * as vscode from 'vscode'; export const x = vscode;", 'src/extension/probe.ts', false],
    ["import * as vscode from 'vscode'; export const x = vscode;", 'src/cli/probe.ts', true],
    ["import { WebSocket } from 'ws'; export const x = WebSocket;", 'src/federation/transport/probe.ts', false],
    ["import { WebSocket } from 'ws'; export const x = WebSocket;", 'src/federation/coordinator/probe.ts', true],
    ["import { readFile } from 'node:fs/promises'; export const x = readFile;", 'src/core/probe.ts', true],
    ["import { readFile } from 'node:fs/promises'; export const x = readFile;", 'src/formats/probe.ts', false],
    ["import { readFile } from 'node:fs/promises'; export const x = readFile;", 'src/graph/probe.ts', true],
    ["import { runCli } from '../cli/main.js'; export const x = runCli;", 'src/core/probe.ts', true],
    ["import { runCli } from '../cli/main.js'; export const x = runCli;", 'src/runtime/probe.ts', true],
    ["import { isAllZero } from '../core/tensor.js'; export const x = isAllZero;", 'src/formats/probe.ts', false],
    ["import { BaseCopy } from '../client/baseCopy.js'; export const x = BaseCopy;", 'src/federation/coordinator/probe.ts', true],
    ["import { moduleLayout } from '../shared/baseWeights.js'; export const x = moduleLayout;", 'src/federation/coordinator/probe.ts', false],
    ["import { Coordinator } from '../coordinator/coordinator.js'; export const x = Coordinator;", 'src/federation/client/probe.ts', true],
    ["import { moduleLayout } from '../shared/baseWeights.js'; export const x = moduleLayout;", 'src/federation/client/probe.ts', false],
    ["import { BaseCopy } from '../client/baseCopy.js'; export const x = BaseCopy;", 'src/federation/shared/probe.ts', true],
    ["import { runSimulation } from '../../federation/simulation/simulate.js'; export const x = runSimulation;", 'src/cli/commands/host.ts', true],
    ["import { runSimulation } from '../../federation/simulation/simulate.js'; export const x = runSimulation;", 'src/cli/commands/join.ts', true],
    ["import { runSimulation } from '../../federation/simulation/simulate.js'; export const x = runSimulation;", 'src/cli/commands/simulate.ts', false],
    ["import { WebSocket } from 'ws'; export const x = WebSocket;", 'src/federation/client/probe.ts', true],
    // The webview bundles the extension's federation fold (state/) and its typed messages, nothing else of the extension.
    ["import { reduceFederation } from '../src/extension/state/federationState.js'; export const x = reduceFederation;", 'webview/probe.ts', false],
    ["import { checkExtensionToWebview } from '../src/extension/dashboard/messages.js'; export const x = checkExtensionToWebview;", 'webview/probe.ts', false],
    ["import { DashboardController } from '../src/extension/dashboard/panel.js'; export const x = DashboardController;", 'webview/probe.ts', true],
    ["import { LineSplitter } from '../src/extension/process/jsonlLines.js'; export const x = LineSplitter;", 'webview/probe.ts', true],
    ["import { createServices } from '../src/extension/services.js'; export const x = createServices;", 'webview/probe.ts', true],
    ["import * as vscode from 'vscode'; export const x = vscode;", 'src/extension/state/probe.ts', true],
    ["import { readFile } from 'node:fs/promises'; export const x = readFile;", 'src/extension/state/probe.ts', true],
    ["import { LineSplitter } from '../process/jsonlLines.js'; export const x = LineSplitter;", 'src/extension/state/probe.ts', true],
    ["import { isFederationState } from '../state/stateGuard.js'; export const x = isFederationState;", 'src/extension/dashboard/messages.ts', false],
    ["import { exportReport } from './exportReport.js'; export const x = exportReport;", 'src/extension/dashboard/messages.ts', true],
    ["import { classifyModule } from '../../core/moduleNames.js'; export const x = classifyModule;", 'src/extension/state/probe.ts', false],
  ];
  for (const [code, file, expected] of cases) {
    test(`${file}: ${code.slice(0, code.indexOf(';'))} is ${expected ? 'refused' : 'allowed'}`, async () => {
      assert.equal(await restricted(code, file), expected);
    });
  }
});
