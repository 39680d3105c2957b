// Runs the FedEx extension's integration suite (test/vscode/suite.ts) inside a desktop VS Code with
// @vscode/test-electron. Not part of `npm test` (scripts/test.mjs skips test/vscode): desktop VS Code
// cannot be downloaded on the CI machines; there the end-to-end tests run in code-server instead.
//
//   npm run build                                   # dist/extension.cjs, dist/cli.cjs, dist/webview/*
//   node test/vscode/runTest.mjs --vscode "/path/to/code"     # a VS Code ≥ 1.95 you have
//   VSCODE_EXECUTABLE="/Applications/Visual Studio Code.app/Contents/MacOS/Electron" node test/vscode/runTest.mjs
//   node test/vscode/runTest.mjs --download         # lets test-electron download VS Code (needs the internet)
//
// The path is VS Code's executable: `code` on Linux (e.g. /usr/share/code/code), `Code.exe` on
// Windows, `…/Visual Studio Code.app/Contents/MacOS/Electron` on macOS. The run uses a fresh
// user-data and extensions folder under out/vscode-test/, opens an empty temporary workspace, and
// the suite runs a one-round local simulation with the model-free `synthetic` workload.
import { build } from 'esbuild';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTests } from '@vscode/test-electron';

const root = fileURLToPath(new URL('../..', import.meta.url));
const args = process.argv.slice(2);
const flag = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const vscodeExecutablePath = flag('--vscode') ?? process.env.VSCODE_EXECUTABLE;
if (vscodeExecutablePath === undefined && !args.includes('--download')) {
  console.error('test/vscode: give --vscode <path to the VS Code executable> (or VSCODE_EXECUTABLE), or --download to let @vscode/test-electron fetch one.');
  process.exit(2);
}
for (const file of ['dist/extension.cjs', 'dist/cli.cjs']) {
  if (!existsSync(join(root, file))) {
    console.error(`test/vscode: ${file} is missing; run 'npm run build' first.`);
    process.exit(2);
  }
}

const outDir = join(root, 'out', 'vscode-test');
mkdirSync(outDir, { recursive: true });
// The extension host loads the suite with require(): bundle it as CommonJS, vscode left to the host.
await build({
  entryPoints: [join(root, 'test/vscode/suite.ts')], outfile: join(outDir, 'suite.cjs'), bundle: true, platform: 'node',
  target: 'node20', format: 'cjs', external: ['vscode'], logLevel: 'warning', sourcemap: 'inline',
});

const workspace = mkdtempSync(join(tmpdir(), 'fedex-vscode-test-'));
try {
  await runTests({
    ...(vscodeExecutablePath !== undefined ? { vscodeExecutablePath } : { version: '1.95.0' }),
    extensionDevelopmentPath: root,
    extensionTestsPath: join(outDir, 'suite.cjs'),
    launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust', '--skip-welcome', '--skip-release-notes',
      '--user-data-dir', join(outDir, 'user-data'), '--extensions-dir', join(outDir, 'extensions')],
  });
} catch (err) {
  console.error(`test/vscode: the suite failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
