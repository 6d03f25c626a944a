// bench/weight.mjs: client weight, the gzip size of what a browser loads for the codepane
// client core against the E2B SDK (`@e2b/code-interpreter`) bundled for the browser.
// Imported by bench/run.mjs; not a test.
//
//   codepane  dist/codepane.mjs + dist/core.wasm, each gzip -9 (as `npm run size` counts
//             them: scripts/size.mjs).
//   E2B       the latest `@e2b/code-interpreter`, installed with npm into build/bench-e2b
//             (kept between runs; reinstalled only when npm reports a newer version), then
//             bundled with esbuild's JS API the way a page would bundle it:
//               import { Sandbox } from '@e2b/code-interpreter'; globalThis.S = Sandbox;
//             (platform browser, bundle, minify, esm). First with nothing external: whether
//             it bundles at all, and if not a one-line summary of why. Then with Node's
//             built-ins marked external (node:module builtinModules and node:*), which is
//             the smallest it can be made to bundle: raw and gzip -9 size of that output.
//   ratio     codepane gzip / E2B gzip with Node built-ins external.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import * as esbuild from 'esbuild';

import { CLIENT_FILES, gzipSize } from '../scripts/size.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const E2B_PACKAGE = '@e2b/code-interpreter';
const E2B_DIR = join(ROOT, 'build', 'bench-e2b');
const E2B_ENTRY = `import { Sandbox } from '${E2B_PACKAGE}'; globalThis.S = Sandbox;\n`;
const NPM_TIMEOUT_MS = 5 * 60 * 1000;
/** How many distinct unresolved imports the one-line error summary names before "…". */
const SUMMARY_NAMES = 12;

const run = promisify(execFile);

function codepaneWeight() {
  const files = CLIENT_FILES.map((rel) => {
    const path = join(ROOT, rel);
    if (!existsSync(path)) throw new Error(`${rel} is missing: build the client first (./build.sh client)`);
    const bytes = readFileSync(path);
    return { name: basename(rel), raw: bytes.length, gzip: gzipSize(bytes) };
  });
  return { files, gzip: files.reduce((sum, f) => sum + f.gzip, 0) };
}

function installedVersion() {
  try {
    return JSON.parse(readFileSync(join(E2B_DIR, 'node_modules', E2B_PACKAGE, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

/** Install the latest E2B SDK into build/bench-e2b unless that version is there already.
 * When the registry cannot be asked (offline), an installed copy is used as it is. */
async function ensureE2b() {
  mkdirSync(E2B_DIR, { recursive: true });
  const pkgJson = join(E2B_DIR, 'package.json');
  if (!existsSync(pkgJson)) writeFileSync(pkgJson, `${JSON.stringify({ name: 'codepane-bench-e2b', private: true }, null, 2)}\n`);
  const have = installedVersion();
  let latest = null;
  try {
    const { stdout } = await run('npm', ['view', E2B_PACKAGE, 'version'], { cwd: E2B_DIR, timeout: NPM_TIMEOUT_MS });
    latest = stdout.trim();
  } catch (e) {
    if (!have) throw new Error(`cannot ask npm for ${E2B_PACKAGE}: ${e.message}`);
  }
  if (have && (latest === null || have === latest)) return have;
  await run('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', `${E2B_PACKAGE}@${latest}`],
    { cwd: E2B_DIR, timeout: NPM_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 });
  const now = installedVersion();
  if (!now) throw new Error(`npm install of ${E2B_PACKAGE}@${latest} left no package in ${E2B_DIR}`);
  return now;
}

function bundle(external) {
  return esbuild.build({
    stdin: { contents: E2B_ENTRY, resolveDir: E2B_DIR, sourcefile: 'entry.mjs', loader: 'js' },
    bundle: true, minify: true, format: 'esm', platform: 'browser', target: 'es2022',
    external, write: false, logLevel: 'silent', legalComments: 'none',
  });
}

/** One line out of esbuild's errors: the imports it could not resolve (most are Node
 * built-ins), then any other messages. */
function summarize(error) {
  const errors = error.errors ?? [];
  if (!errors.length) return String(error.message ?? error).split('\n')[0];
  const unresolved = new Set(), importers = new Set();
  const other = [];
  for (const m of errors) {
    const hit = /^Could not resolve "([^"]+)"/.exec(m.text);
    if (hit) {
      unresolved.add(hit[1]);
      if (m.location?.file) importers.add(m.location.file.replace(/^.*node_modules\//, ''));
    } else {
      other.push(m.text.split('\n')[0]);
    }
  }
  const parts = [];
  if (unresolved.size) {
    const names = [...unresolved];
    const shown = names.slice(0, SUMMARY_NAMES).map((n) => `"${n}"`).join(', ');
    const builtin = names.every((n) => n.startsWith('node:') || builtinModules.includes(n));
    parts.push(`could not resolve ${names.length} ${builtin ? 'Node built-in ' : ''}module${names.length === 1 ? '' : 's'}: ` +
      `${shown}${names.length > SUMMARY_NAMES ? ', …' : ''}` +
      (importers.size ? ` (imported by ${[...importers].slice(0, SUMMARY_NAMES).join(', ')})` : ''));
  }
  if (other.length) parts.push(`${other.length} other error${other.length === 1 ? '' : 's'}, first: ${other[0]}`);
  return `${errors.length} error${errors.length === 1 ? '' : 's'}: ${parts.join('; ')}`;
}

async function e2bWeight() {
  const version = await ensureE2b();
  let bundlesWithoutExternals = true, errorSummary = '';
  try {
    await bundle([]);
  } catch (e) {
    bundlesWithoutExternals = false;
    errorSummary = summarize(e);
  }
  const external = [...new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`), 'node:*'])];
  let out;
  try {
    out = await bundle(external);
  } catch (e) {
    throw new Error(`${E2B_PACKAGE}@${version} does not bundle for the browser even with Node built-ins external: ${summarize(e)}`);
  }
  const js = out.outputFiles.filter((f) => /\.m?js$/.test(f.path) || f.path.endsWith('<stdout>'));
  const bytes = Buffer.concat((js.length ? js : out.outputFiles).map((f) => Buffer.from(f.contents)));
  return { version, bundlesWithoutExternals, errorSummary, gzipExternalNode: gzipSize(bytes), raw: bytes.length };
}

/**
 * The client weight workload.
 * @returns {Promise<{ codepane: { files: { name: string, raw: number, gzip: number }[], gzip: number },
 *   e2b: { version: string, bundlesWithoutExternals: boolean, errorSummary: string, gzipExternalNode: number, raw: number },
 *   ratio: number }>} sizes in bytes
 */
export async function clientWeight() {
  const codepane = codepaneWeight();
  const e2b = await e2bWeight();
  return { codepane, e2b, ratio: codepane.gzip / e2b.gzipExternalNode };
}
