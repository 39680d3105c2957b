// Lint rules, including the layer boundaries of docs/architecture.md: imports only point down.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Restricts imports in `files` to keep a layer honest (a pattern that is an array is one group: `!` re-allows in it). */
function boundary(files, patterns, message) {
  return {
    files,
    rules: {
      'no-restricted-imports': ['error', { patterns: patterns.map((group) => ({ group: Array.isArray(group) ? group : [group], message })) }],
    },
  };
}

const io = ['node:fs*', 'fs', 'fs/*', 'node:net', 'node:http*', 'node:child_process', 'node:worker_threads'];
/** What code bundled into the webview may not import. */
const browserSafe = ['vscode', 'onnxruntime-node', 'onnxruntime-*', 'ws', 'node:*'];
const sharedWithWebview = 'src/extension/state and dashboard/messages.ts are bundled into the webview too: no vscode, no node, nothing of the extension host.';
/** What no part of src/federation but the transport may import. */
const federationBase = ['vscode', 'onnxruntime-node', 'onnxruntime-*', 'ws', '**/cli/**', '**/extension/**'];

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'out/', '.e2e/', 'bench/results/', '**/*.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    files: ['**/*.ts', '**/*.mjs'],
    languageOptions: { globals: { console: 'readonly', process: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', performance: 'readonly', URL: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', queueMicrotask: 'readonly', structuredClone: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly' } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'webview/**/*.ts'],
    rules: {
      'no-restricted-exports': ['error', { restrictDefaultExports: { direct: true, named: true, defaultFrom: true, namedFrom: true, namespaceFrom: true } }],
    },
  },
  // Only src/runtime talks to onnxruntime; only src/extension talks to VS Code; only the transport talks ws.
  boundary(['src/**/*.ts', 'webview/**/*.ts'], ['vscode', 'onnxruntime-node', 'onnxruntime-*', 'ws'],
    'Layer boundary: onnxruntime only in src/runtime, vscode only in src/extension, ws only in src/federation/transport.'),
  {
    files: ['src/runtime/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['vscode', 'ws'], message: 'src/runtime may import onnxruntime-node only.' }, { group: ['**/extension/**', '**/federation/**', '**/cli/**', '**/trainer/**', '**/model/**'], message: 'src/runtime sits below model, trainer, federation, cli and extension.' }] }] },
  },
  {
    files: ['src/extension/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['onnxruntime-node', 'onnxruntime-*', 'ws'], message: 'The extension reaches onnxruntime through src/runtime (in a worker) and ws through src/federation/transport.' }] }] },
  },
  {
    files: ['src/federation/transport/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['vscode', 'onnxruntime-node', 'onnxruntime-*'], message: 'The transport imports ws only.' }] }] },
  },
  // The numeric core is pure: no I/O, no runtime, no upper layers.
  boundary(['src/core/**/*.ts'], ['vscode', 'onnxruntime-node', 'onnxruntime-*', 'ws', ...io, '**/formats/**', '**/graph/**', '**/runtime/**', '**/model/**', '**/trainer/**', '**/federation/**', '**/cli/**', '**/extension/**'],
    'src/core is pure math: no I/O and no imports from other layers.'),
  boundary(['src/formats/**/*.ts'], ['vscode', 'onnxruntime-node', 'onnxruntime-*', 'ws', '**/graph/**', '**/runtime/**', '**/model/**', '**/trainer/**', '**/federation/**', '**/cli/**', '**/extension/**'],
    'src/formats sits on src/core only.'),
  boundary(['src/graph/**/*.ts'], ['vscode', 'onnxruntime-node', 'onnxruntime-*', 'ws', ...io, '**/runtime/**', '**/model/**', '**/trainer/**', '**/federation/**', '**/cli/**', '**/extension/**'],
    'src/graph builds ONNX graphs: pure, no runtime, no upper layers.'),
  boundary(['src/model/**/*.ts'], ['vscode', 'onnxruntime-node', 'onnxruntime-*', 'ws', '**/trainer/**', '**/federation/**', '**/cli/**', '**/extension/**'],
    'src/model sits below trainer, federation, cli and extension.'),
  boundary(['src/trainer/**/*.ts'], ['vscode', 'onnxruntime-node', 'onnxruntime-*', 'ws', '**/federation/**', '**/cli/**', '**/extension/**'],
    'src/trainer sits below federation, cli and extension.'),
  boundary(['src/federation/!(transport)/**/*.ts', 'src/federation/*.ts'], ['vscode', 'onnxruntime-node', 'onnxruntime-*', 'ws', '**/cli/**', '**/extension/**'],
    'src/federation sits below cli and extension; ws only in src/federation/transport.'),
  // Inside src/federation: the coordinator and the client share code only through protocol/, shared/
  // and events/ (a rule, not a habit: a client path and a coordinator path that diverge were a bug).
  boundary(['src/federation/coordinator/**/*.ts'], [...federationBase, '**/client/**', '**/simulation/**', '**/offline/**'],
    'The coordinator does not import the client or the simulation: shared code lives in federation/shared, events in federation/events.'),
  boundary(['src/federation/client/**/*.ts'], [...federationBase, '**/coordinator/**', '**/simulation/**', '**/offline/**'],
    'The client does not import the coordinator or the simulation: shared code lives in federation/shared.'),
  boundary(['src/federation/shared/**/*.ts', 'src/federation/protocol/**/*.ts'], [...federationBase, '**/client/**', '**/coordinator/**', '**/simulation/**', '**/offline/**', '**/events/**'],
    'federation/shared and federation/protocol sit below the client, the coordinator and the simulation.'),
  boundary(['src/cli/**/*.ts'], ['vscode', 'onnxruntime-node', 'onnxruntime-*', 'ws', '**/extension/**'],
    'The CLI does not import the VS Code glue.'),
  // fedex host and fedex join are the path users run: they must not lean on the simulation's code.
  boundary(['src/cli/commands/host.ts', 'src/cli/commands/join.ts', 'src/cli/commands/federationCommon.ts'], ['vscode', 'onnxruntime-node', 'onnxruntime-*', 'ws', '**/extension/**', '**/federation/simulation/**'],
    'fedex host/join build on federation/client, coordinator, shared and events, never on federation/simulation.'),
  // What the webview bundles of the extension: the federation fold (state/) and the dashboard's messages.
  boundary(['src/extension/state/**/*.ts'], [...browserSafe, ['../*.js', '../*/**', '!../../**', '!../state/**', '!../dashboard/messages.js']], sharedWithWebview),
  boundary(['src/extension/dashboard/messages.ts'], [...browserSafe, ['./*.js', '../*.js', '../*/**', '!../../**', '!../state/**']], sharedWithWebview),
  boundary(['webview/**/*.ts'], ['vscode', 'onnxruntime-node', 'onnxruntime-*', 'ws', 'node:*', '**/src/runtime/**', '**/src/federation/**', '**/src/trainer/**',
    ['**/src/extension/*.js', '**/src/extension/*/**', '!**/src/extension/state/**', '!**/src/extension/dashboard/messages.js']],
    'The webview is a browser bundle: of the extension it shares only the federation fold (src/extension/state) and the typed messages.'),
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.mjs', 'esbuild.mjs'],
    rules: { 'no-restricted-imports': 'off' },
  },
);
