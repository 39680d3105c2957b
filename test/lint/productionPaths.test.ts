/**
 * Every test exercises a path production runs: no export of src/ is there only for the tests. An
 * export is used when a file of the product (src/, webview/), a script (scripts/) or a benchmark
 * (bench/) imports it, or its own file uses it; one that only tests import, or nobody, is test-only
 * or dead code. Imports are read from the syntax (TypeScript's parser): named, default, namespace
 * and re-exports; a namespace import or `export *` uses every export of the module.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import ts from 'typescript';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const FOLDERS = ['src', 'webview', 'scripts', 'bench', 'test'];
/** Folders whose imports count as use: the product, its scripts and its benchmarks. */
const USERS = ['src', 'webview', 'scripts', 'bench'];

/**
 * The entry points esbuild bundles (esbuild.mjs): what they export is used by whoever loads the
 * bundle, not through an import (VS Code calls the extension's `activate` and `deactivate`).
 */
function entryPoints(): Set<string> {
  const config = readFileSync(join(ROOT, 'esbuild.mjs'), 'utf8');
  return new Set([...config.matchAll(/entryPoints: \['([^']+\.ts)'\]/g)].map((m) => join(ROOT, m[1])));
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' || e.name === 'results' || e.name.startsWith('.') ? [] : sources(path);
    return /\.(ts|mts)$/.test(e.name) && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

interface Imports {
  /** Module file → the names imported from it ('*' for all), each with its importers. */
  readonly byModule: Map<string, Map<string, Set<string>>>;
  /** src/ file → its exported names, each with how many identifiers in the file's code name it (the declaration is one). */
  readonly exported: Map<string, Map<string, number>>;
}

function readImports(): Imports {
  const byModule = new Map<string, Map<string, Set<string>>>();
  const exported = new Map<string, Map<string, number>>();
  const note = (module: string, name: string, importer: string): void => {
    const names = byModule.get(module) ?? new Map<string, Set<string>>();
    byModule.set(module, names);
    const importers = names.get(name) ?? new Set<string>();
    names.set(name, importers);
    importers.add(importer);
  };
  for (const file of FOLDERS.flatMap((f) => sources(join(ROOT, f)))) {
    const text = readFileSync(file, 'utf8');
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      // import('…') in code: every export of the module counts as used.
      if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments.length === 1 && ts.isStringLiteral(node.arguments[0])) {
        const target = moduleFile(file, node.arguments[0].text);
        if (target !== null) note(target, '*', file);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
    for (const st of sf.statements) {
      if ((ts.isImportDeclaration(st) || ts.isExportDeclaration(st)) && st.moduleSpecifier !== undefined && ts.isStringLiteral(st.moduleSpecifier)) {
        const target = moduleFile(file, st.moduleSpecifier.text);
        if (target === null) continue;
        if (ts.isImportDeclaration(st)) {
          const clause = st.importClause;
          if (clause === undefined) continue;
          if (clause.name !== undefined) note(target, 'default', file);
          const bindings = clause.namedBindings;
          if (bindings === undefined) continue;
          if (ts.isNamespaceImport(bindings)) note(target, '*', file);
          else for (const el of bindings.elements) note(target, (el.propertyName ?? el.name).text, file);
        } else if (st.exportClause === undefined || !ts.isNamedExports(st.exportClause)) {
          note(target, '*', file);
        } else {
          for (const el of st.exportClause.elements) note(target, (el.propertyName ?? el.name).text, file);
        }
      }
    }
    if (!file.startsWith(join(ROOT, 'src') + '/')) continue;
    const names: string[] = [];
    for (const st of sf.statements) {
      const modifiers = ts.canHaveModifiers(st) ? ts.getModifiers(st) : undefined;
      if (modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword) !== true) continue;
      if (ts.isVariableStatement(st)) { for (const d of st.declarationList.declarations) names.push(d.name.getText(sf)); }
      else if ((ts.isFunctionDeclaration(st) || ts.isClassDeclaration(st) || ts.isInterfaceDeclaration(st) || ts.isTypeAliasDeclaration(st) || ts.isEnumDeclaration(st)) && st.name !== undefined) {
        names.push(modifiers.some((m) => m.kind === ts.SyntaxKind.DefaultKeyword) ? 'default' : st.name.text);
      }
    }
    // Identifiers in code only: a name in a string or a comment is no use.
    const mentions = new Map(names.map((n) => [n, 0]));
    const count = (node: ts.Node): void => {
      if (ts.isIdentifier(node) && mentions.has(node.text)) mentions.set(node.text, mentions.get(node.text)! + 1);
      ts.forEachChild(node, count);
    };
    count(sf);
    exported.set(file, mentions);
  }
  return { byModule, exported };
}

/** The .ts file a relative specifier names (`./x.js` → `x.ts`), or null for a package. */
function moduleFile(from: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  return resolve(dirname(from), specifier).replace(/\.(m?)js$/, '.$1ts');
}

const isUser = (file: string): boolean => USERS.some((f) => file.startsWith(join(ROOT, f) + '/'));

/** `file: name (imported by …)` for each export of src/ that nothing but tests uses. */
function testOnlyExports(): string[] {
  const { byModule, exported } = readImports();
  const entries = entryPoints();
  const found: string[] = [];
  for (const [file, mentions] of exported) {
    if (entries.has(file)) continue;
    const imports = byModule.get(file) ?? new Map<string, Set<string>>();
    if ([...(imports.get('*') ?? [])].some(isUser)) continue;
    for (const [name, count] of mentions) {
      const importers = [...(imports.get(name) ?? [])];
      if (importers.some(isUser)) continue;
      // Used in its own file: more than the one identifier that declares it.
      if (name !== 'default' && count > 1) continue;
      const by = importers.length === 0 ? 'nobody' : importers.map((f) => relative(ROOT, f)).sort().join(', ');
      found.push(`${relative(ROOT, file)}: ${name} (imported by ${by})`);
    }
  }
  return found.sort();
}

describe('production paths', () => {
  test('no export of src/ is used only by tests, or by nobody', () => {
    const found = testOnlyExports();
    assert.deepEqual(found, [], `exports that no product file, script or benchmark uses (move a test's helper into test/, make production use it, or delete it):\n${found.join('\n')}`);
  });

  test('the bundle entry points are read from esbuild.mjs', () => {
    const entries = entryPoints();
    for (const f of ['src/cli/bin.ts', 'src/trainer/worker/entry.ts', 'src/extension/extension.ts', 'webview/main.ts']) assert.ok(entries.has(join(ROOT, f)), f);
  });

  test('the check sees imports: a name imported by src/ is used, one imported only by a test is reported', () => {
    const { byModule } = readImports();
    const session = byModule.get(join(ROOT, 'src/runtime/session.ts'));
    assert.ok(session !== undefined);
    assert.ok([...(session.get('ortTensor') ?? [])].some(isUser), 'ortTensor is imported by the trainer');
    assert.ok([...(byModule.get(join(ROOT, 'test/helpers/tempDir.ts'))?.get('suiteTempDir') ?? [])].every((f) => !isUser(f)), 'suiteTempDir is imported by tests only');
  });
});
