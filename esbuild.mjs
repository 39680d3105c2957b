// Bundles every entry point: the CLI, the trainer worker, the VS Code extension host and the
// dashboard webview. onnxruntime-node stays external (native binaries), and so does vscode (given by
// the editor). An entry whose source does not exist yet is skipped with a note.
import { existsSync } from 'node:fs';
import { build } from 'esbuild';

const node = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  external: ['onnxruntime-node', 'vscode', 'bufferutil', 'utf-8-validate'],
  logLevel: 'info',
};

const browser = {
  bundle: true,
  platform: 'browser',
  target: 'es2022',
  format: 'iife',
  sourcemap: true,
  logLevel: 'info',
};

const entries = [
  { ...node, entryPoints: ['src/cli/bin.ts'], outfile: 'dist/cli.cjs' },
  { ...node, entryPoints: ['src/trainer/worker/entry.ts'], outfile: 'dist/trainerWorker.cjs' },
  { ...node, entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.cjs' },
  { ...browser, entryPoints: ['webview/main.ts'], outfile: 'dist/webview/dashboard.js' },
  { ...browser, entryPoints: ['webview/dashboard.css'], outfile: 'dist/webview/dashboard.css' },
];

const present = entries.filter((e) => {
  const ok = existsSync(e.entryPoints[0]);
  if (!ok) console.log(`esbuild: skipping ${e.entryPoints[0]} (not written yet)`);
  return ok;
});
await Promise.all(present.map((e) => build(e)));
