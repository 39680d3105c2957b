// Runs every test/**/*.test.ts with Node's built-in runner (TypeScript through tsx).
// Usage: node scripts/test.mjs [substring-filter…]   (e.g. `node scripts/test.mjs formats`)
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const skipDirs = new Set(['e2e', 'fixtures', 'vscode']);

function collect(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return skipDirs.has(entry.name) ? [] : collect(path);
    return entry.name.endsWith('.test.ts') ? [relative(root, path)] : [];
  });
}

const filters = process.argv.slice(2);
const files = collect(join(root, 'test')).filter((f) => filters.length === 0 || filters.some((s) => f.includes(s))).sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ') || '(all)'}`);
  process.exit(1);
}
// A test that hangs fails after 10 minutes instead of holding CI, and a test file whose finished or
// timed-out tests leave a socket or timer behind still ends (--test-force-exit).
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=600000', '--test-force-exit', ...files], { cwd: root, stdio: 'inherit' });
process.exit(result.status ?? 1);
