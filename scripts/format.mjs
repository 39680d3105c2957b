// The formatter: dprint's TypeScript plugin (npm @dprint/typescript, a Wasm file) run by
// @dprint/formatter in this process, with the settings of dprint.json. Nothing is downloaded and no
// platform binary is needed.
// Usage: node scripts/format.mjs            formats every file in place
//        node scripts/format.mjs --check    lists the files that are not formatted; exit 1 if any
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createContext } from '@dprint/formatter';

const root = new URL('..', import.meta.url).pathname;
const check = process.argv.includes('--check');
const unknown = process.argv.slice(2).filter((a) => a !== '--check');
if (unknown.length > 0) {
  console.error(`format: unknown argument ${unknown.join(' ')}; usage: node scripts/format.mjs [--check]`);
  process.exit(2);
}

// dprint.json is JSON with // line comments (as the dprint CLI and its editor extensions read it).
const config = JSON.parse(readFileSync(join(root, 'dprint.json'), 'utf8').split('\n').filter((l) => !l.trimStart().startsWith('//')).join('\n'));
const context = createContext({ lineWidth: config.lineWidth, indentWidth: config.indentWidth });
const plugin = readFileSync(join(root, 'node_modules', '@dprint', 'typescript', 'plugin.wasm'));
context.addPlugin(plugin, config.typescript);
const diagnostics = context.getConfigDiagnostics();
if (diagnostics.length > 0) {
  for (const d of diagnostics) console.error(`format: dprint.json: ${d.propertyName}: ${d.message}`);
  process.exit(2);
}

const excluded = new Set(config.excludes.map((p) => join(root, p)));
/** The .ts files under the folders dprint.json includes (`dir/**\/*.ts`), less its excludes. */
function collect(dir) {
  if (excluded.has(dir)) return [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : collect(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}
const folders = config.includes.map((pattern) => {
  if (!pattern.endsWith('/**/*.ts')) throw new Error(`format: dprint.json includes '${pattern}': only 'folder/**/*.ts' patterns are supported here`);
  return join(root, pattern.slice(0, -'/**/*.ts'.length));
});
const files = folders.flatMap(collect).sort();

const unformatted = [];
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  let formatted;
  try {
    formatted = context.formatText({ filePath: file, fileText: text });
  } catch (err) {
    console.error(`format: ${relative(root, file)}: ${err.message}`);
    process.exit(1);
  }
  if (formatted === text) continue;
  unformatted.push(relative(root, file));
  if (!check) writeFileSync(file, formatted);
}
if (check) {
  if (unformatted.length > 0) {
    console.error(`format: ${unformatted.length} of ${files.length} files are not formatted (run \`npm run format\`):\n  ${unformatted.join('\n  ')}`);
    process.exit(1);
  }
  console.log(`format: ${files.length} files formatted as dprint.json says`);
} else {
  console.log(`format: ${unformatted.length} of ${files.length} files rewritten`);
}
