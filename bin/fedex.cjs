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
  const { spawnSync } = require('node:child_process');
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, '..', 'src', 'cli', 'bin.ts'), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
