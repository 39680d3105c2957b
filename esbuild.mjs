// Bundles the entry points: the CLI (dist/cli.cjs) now; the extension host, the trainer worker and
// the webview join as they land. onnxruntime-node stays external (native binaries).
import { build } from 'esbuild';

const watch = process.argv.includes('--watch');
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  external: ['onnxruntime-node', 'vscode', 'bufferutil', 'utf-8-validate'],
  logLevel: 'info',
};

const entries = [
  { entryPoints: ['src/cli/bin.ts'], outfile: 'dist/cli.cjs' },
];

await Promise.all(entries.map((e) => build({ ...common, ...e, ...(watch ? {} : {}) })));
