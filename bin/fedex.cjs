#!/usr/bin/env node
// Entry point of the `fedex` command: the bundled CLI (npm run build) or, in a source checkout
// without a build, the TypeScript sources through tsx.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const bundled = join(__dirname, '..', 'dist', 'cli.cjs');
if (existsSync(bundled)) {
  require(bundled);
} else {
  const { spawn } = require('node:child_process');
  const { pathToFileURL } = require('node:url');
  // tsx from this package's node_modules, whatever the working directory is (`--import tsx` would
  // resolve it from the working directory).
  const tsx = pathToFileURL(require.resolve('tsx', { paths: [join(__dirname, '..')] })).href;
  const child = spawn(process.execPath, ['--import', tsx, join(__dirname, '..', 'src', 'cli', 'bin.ts'), ...process.argv.slice(2)], { stdio: 'inherit' });
  // Ctrl-C in a terminal reaches the child through the terminal's process group, so from a terminal
  // SIGINT is not passed on again (the coordinator would take a second one as "stop now"); a SIGINT
  // sent to this process alone (no terminal: scripts, the extension, tests) and SIGTERM are.
  process.on('SIGINT', () => {
    if (!process.stdin.isTTY) child.kill('SIGINT');
  });
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('exit', (code, signal) => process.exit(code ?? (signal === 'SIGINT' ? 130 : 1)));
}
