/**
 * docs/architecture.md names every folder of the tree a newcomer reads: each folder of src/ and
 * webview/ (as `name/` or its path), and each top-level folder git tracks, so that a folder added
 * without a word about what it owns fails here.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const doc = readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8');

function folders(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).flatMap((e) => {
    const path = join(dir, e.name);
    return [path, ...folders(path)];
  });
}

/** Whether the doc names the folder: its path from the root, from its top folder, or `name/`. */
function named(folder: string): boolean {
  const path = relative(ROOT, folder);
  const below = path.split('/').slice(1).join('/');
  const name = path.split('/').pop()!;
  return doc.includes(`${path}/`) || doc.includes(`\`${path}\``) || (below !== '' && doc.includes(`${below}/`)) || doc.includes(`\`${name}/`) || doc.includes(` ${name}/`);
}

describe('docs/architecture.md', () => {
  test('names every folder of src/ and webview/', () => {
    const missing = ['src', 'webview'].flatMap((top) => folders(join(ROOT, top))).filter((f) => !named(f)).map((f) => relative(ROOT, f));
    assert.deepEqual(missing, [], `folders docs/architecture.md does not name:\n${missing.join('\n')}`);
  });

  test('names every top-level folder git tracks', () => {
    const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter((f) => f.includes('/') && !f.startsWith('.'));
    const tops = [...new Set(tracked.map((f) => f.split('/')[0]))].sort();
    const missing = tops.filter((t) => !doc.includes(`\`${t}/\``));
    assert.deepEqual(missing, [], `top-level folders docs/architecture.md does not name:\n${missing.join('\n')}`);
  });
});
