// Packages the VS Code extension as one VSIX per platform (`vsce package --target T`).
// Usage: node scripts/package.mjs [--target linux-x64[,win32-x64…]] [--out out/vsix]
// (`npm run package` builds first, then runs this for every target onnxruntime-node has binaries for.)
//
// The bundle (dist/) holds everything except onnxruntime-node, which stays external because it loads
// a native binary. Each target gets a staging folder with:
//   - a generated package.json: the root manifest without scripts and devDependencies, whose only
//     dependency is onnxruntime-node, so vsce's `npm list --production` finds nothing else;
//   - the files that .vscodeignore lets through (dist/ without source maps, media/, the default
//     model models/tiny-gpt2/, README.md);
//   - node_modules/onnxruntime-node with its run-time JS and only bin/napi-v*/<os>/<arch>/ (its
//     package.json pruned of the install script and the install-only dependencies), and
//     node_modules/onnxruntime-common (CommonJS build only).
// After packaging, every VSIX is opened and checked (nothing from src/, test/, bench/, webview/, other
// platforms' binaries, other models or other node_modules) and its size printed.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listZipEntries } from './packaging/zipEntries.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ortDir = join(root, 'node_modules', 'onnxruntime-node');
const ortCommonDir = join(root, 'node_modules', 'onnxruntime-common');

/** vsce target → onnxruntime-node's bin/napi-v*\/<os>/<arch> folder names. */
const TARGETS = {
  'linux-x64': ['linux', 'x64'],
  'linux-arm64': ['linux', 'arm64'],
  'darwin-arm64': ['darwin', 'arm64'],
  'darwin-x64': ['darwin', 'x64'],
  'win32-x64': ['win32', 'x64'],
  'win32-arm64': ['win32', 'arm64'],
};

/** Top-level entries copied into each stage; .vscodeignore then filters them. */
const STAGED = ['dist', 'media', 'models', 'README.md', 'LICENSE', 'LICENSE.md', 'CHANGELOG.md'];
/** The only model shipped: the extension's default (fedex.model). */
const SHIPPED_MODEL = 'models/tiny-gpt2';

function parseArgs(argv) {
  const opts = { targets: null, out: join(root, 'out', 'vsix') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--target' || a === '--targets') opts.targets = [...(opts.targets ?? []), ...argv[++i].split(',')];
    else if (a === '--out') opts.out = join(process.cwd(), argv[++i]);
    else throw new Error(`package: unknown argument ${a} (expected --target T[,T…] or --out DIR)`);
  }
  return opts;
}

/** The napi-v* folders of onnxruntime-node that hold binaries for os/arch. */
function ortBinaryDirs(os, arch) {
  const bin = join(ortDir, 'bin');
  if (!existsSync(bin)) return [];
  return readdirSync(bin)
    .filter((napi) => /^napi-v\d+$/.test(napi) && existsSync(join(bin, napi, os, arch)))
    .map((napi) => join('bin', napi, os, arch));
}

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** The extension manifest for the stage: the root one, run-time dependency onnxruntime-node only. */
function stageManifest() {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { scripts, devDependencies, allowScripts, bin, overrides, dependencies, ...manifest } = readJson(join(root, 'package.json'));
  return { ...manifest, dependencies: { 'onnxruntime-node': readJson(join(ortDir, 'package.json')).version } };
}

/** Copies onnxruntime-node (run-time files and one platform's binaries) and onnxruntime-common. */
function stageOnnxruntime(stage, binaryDirs) {
  const ortPkg = readJson(join(ortDir, 'package.json'));
  const commonPkg = readJson(join(ortCommonDir, 'package.json'));
  if (ortPkg.dependencies?.['onnxruntime-common'] !== commonPkg.version) {
    throw new Error(`package: onnxruntime-node ${ortPkg.version} wants onnxruntime-common ${ortPkg.dependencies?.['onnxruntime-common']}, node_modules has ${commonPkg.version}`);
  }
  const ortStage = join(stage, 'node_modules', 'onnxruntime-node');
  mkdirSync(ortStage, { recursive: true });
  cpSync(join(ortDir, 'dist'), join(ortStage, 'dist'), { recursive: true, filter: (src) => !src.endsWith('.map') });
  for (const dir of binaryDirs) cpSync(join(ortDir, dir), join(ortStage, dir), { recursive: true });
  for (const file of ['README.md', 'LICENSE', 'ThirdPartyNotices.txt']) {
    if (existsSync(join(ortDir, file))) cpSync(join(ortDir, file), join(ortStage, file));
  }
  // adm-zip and global-agent serve only the install script (CUDA download), which is not shipped.
  const pruned = {
    name: ortPkg.name,
    version: ortPkg.version,
    license: ortPkg.license,
    description: ortPkg.description,
    repository: ortPkg.repository,
    main: ortPkg.main,
    types: ortPkg.types,
    os: ortPkg.os,
    binary: ortPkg.binary,
    dependencies: { 'onnxruntime-common': commonPkg.version },
  };
  writeFileSync(join(ortStage, 'package.json'), `${JSON.stringify(pruned, null, 2)}\n`);

  const commonStage = join(stage, 'node_modules', 'onnxruntime-common');
  mkdirSync(join(commonStage, 'dist'), { recursive: true });
  // onnxruntime-node's dist requires onnxruntime-common: the CommonJS build is the one loaded.
  cpSync(join(ortCommonDir, 'dist', 'cjs'), join(commonStage, 'dist', 'cjs'), { recursive: true, filter: (src) => !src.endsWith('.map') && !src.endsWith('.d.ts') });
  for (const file of ['package.json', 'README.md', 'LICENSE']) {
    if (existsSync(join(ortCommonDir, file))) cpSync(join(ortCommonDir, file), join(commonStage, file));
  }
}

/** Builds the staging folder for one target. */
function stage(target, dir, binaryDirs) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const entry of STAGED) {
    if (!existsSync(join(root, entry))) continue;
    // Only the shipped model: other checkpoints under models/ stay out of the copy altogether.
    const filter = entry === 'models' ? (src) => { const rel = relative(root, src); return rel === 'models' || rel === SHIPPED_MODEL || rel.startsWith(`${SHIPPED_MODEL}/`); } : undefined;
    cpSync(join(root, entry), join(dir, entry), { recursive: true, filter });
  }
  cpSync(join(root, '.vscodeignore'), join(dir, '.vscodeignore'));
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(stageManifest(), null, 2)}\n`);
  stageOnnxruntime(dir, binaryDirs);
}

function vsce(args, cwd) {
  const bin = join(root, 'node_modules', '@vscode', 'vsce', 'vsce');
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`package: vsce ${args.join(' ')} failed in ${relative(root, cwd)} (exit ${r.status})`);
}

/** Throws when the VSIX holds something it must not; returns the entry names. */
function checkVsix(file, target) {
  const [os, arch] = TARGETS[target];
  const names = listZipEntries(readFileSync(file)).filter((n) => n.startsWith('extension/')).map((n) => n.slice('extension/'.length));
  const problems = [];
  for (const n of names) {
    const top = n.split('/')[0];
    if (['src', 'test', 'bench', 'webview', 'scripts', 'docs', '.e2e', 'out', 'bin'].includes(top)) problems.push(`${n} (source or tooling)`);
    if (n.endsWith('.map') || n.endsWith('.ts') && !n.endsWith('.d.ts')) problems.push(`${n} (source map or TypeScript)`);
    if (top === 'models' && !n.startsWith(`${SHIPPED_MODEL}/`)) problems.push(`${n} (only ${SHIPPED_MODEL} ships)`);
    if (top === 'node_modules') {
      const pkg = n.split('/')[1];
      if (pkg !== 'onnxruntime-node' && pkg !== 'onnxruntime-common') problems.push(`${n} (not needed at run time)`);
      const m = /^node_modules\/onnxruntime-node\/bin\/[^/]+\/([^/]+)\/([^/]+)\//.exec(n);
      if (m && (m[1] !== os || m[2] !== arch)) problems.push(`${n} (binary of another platform)`);
    }
  }
  for (const required of ['package.json', 'dist/extension.cjs']) {
    if (!names.includes(required)) problems.push(`${required} missing`);
  }
  if (!names.some((n) => n.startsWith(`node_modules/onnxruntime-node/bin/`) && n.endsWith('onnxruntime_binding.node'))) problems.push(`onnxruntime_binding.node for ${os}/${arch} missing`);
  if (problems.length > 0) throw new Error(`package: ${relative(root, file)} is wrong:\n  ${problems.slice(0, 20).join('\n  ')}`);
  return names;
}

function formatMiB(bytes) {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(join(root, 'dist', 'extension.cjs'))) {
    throw new Error('package: dist/extension.cjs is missing; run `npm run build` first (or `npm run package`, which does)');
  }
  if (!existsSync(join(root, SHIPPED_MODEL))) console.warn(`package: warning: ${SHIPPED_MODEL} is missing; the VSIX ships no default model`);
  const requested = opts.targets ?? Object.keys(TARGETS);
  const version = readJson(join(root, 'package.json')).version;
  const name = readJson(join(root, 'package.json')).name;
  mkdirSync(opts.out, { recursive: true });
  const results = [];
  for (const target of requested) {
    if (!TARGETS[target]) throw new Error(`package: unknown target ${target} (known: ${Object.keys(TARGETS).join(', ')})`);
    const binaryDirs = ortBinaryDirs(...TARGETS[target]);
    if (binaryDirs.length === 0) {
      const msg = `package: onnxruntime-node ships no binaries for ${target}`;
      if (opts.targets) throw new Error(msg);
      console.log(`${msg}: skipped`);
      continue;
    }
    const dir = join(root, 'out', 'vsix-stage', target);
    const file = join(opts.out, `${name}-${target}-${version}.vsix`);
    console.log(`== package ${target}`);
    const started = performance.now();
    stage(target, dir, binaryDirs);
    // No LICENSE file and no repository in the manifest yet; README links are relative to the repo.
    vsce(['package', '--target', target, '--out', file, '--skip-license', '--allow-missing-repository', '--no-rewrite-relative-links'], dir);
    const names = checkVsix(file, target);
    results.push({ target, file: relative(root, file), bytes: statSync(file).size, files: names.length, seconds: (performance.now() - started) / 1000 });
  }
  console.log('\ntarget         size        files  time   file');
  for (const r of results) console.log(`${r.target.padEnd(14)} ${formatMiB(r.bytes).padEnd(11)} ${String(r.files).padEnd(6)} ${r.seconds.toFixed(1).padStart(4)} s ${r.file}`);
  writeFileSync(join(opts.out, 'sizes.json'), `${JSON.stringify(results, null, 2)}\n`);
}

try {
  main();
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}
