// The npm package as a user gets it: `npm pack` of the checkout (prepack skipped: dist/ is
// already built), the tarball's exact contents, then an install into an empty project and
// a Node script there that imports 'codepane' by name and runs code on a real
// codepane-server. Nothing here imports from the checkout's dist/: only the installed copy.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

import { ROOT, expectNoSandboxProcesses, startServer } from '../server/harness.mjs';
import { NPM_ENV, PKG, pack, run } from './packed.mjs';

const UID_BASE = 64512;
// The element's lazily loaded chunks, as the build named them (content hashes).
const CHUNKS = readdirSync(join(ROOT, 'dist/chunks')).map((f) => `dist/chunks/${f}`);
// Exactly what the tarball must hold: package.json "files" plus what npm always adds.
const EXPECTED_FILES = [
  'LICENSE',
  'README.md',
  'dist/code-pane.d.ts',
  'dist/code-pane.mjs',
  'dist/codepane.d.ts',
  'dist/codepane.mjs',
  'dist/core.wasm',
  'dist/node.mjs',
  'package.json',
  ...CHUNKS,
].sort();

let tmp, tarball, packed, app, server;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'codepane-pack-'));
  ({ packed, tarball } = await pack(tmp));
  app = join(tmp, 'app');
  mkdirSync(app);
  await run('npm', ['init', '-y'], { cwd: app, env: NPM_ENV });
  await run('npm', ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline'],
    { cwd: app, env: NPM_ENV, timeout: 60000 });
  server = await startServer({ uidBase: UID_BASE, args: ['--max-sessions', '8'] });
}, { timeout: 50000 });

after(async () => {
  await server?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('the tarball holds exactly the files package.json lists, plus package.json and README.md', async () => {
  assert.equal(packed.name, 'codepane');
  assert.equal(packed.version, PKG.version);
  assert.equal(packed.filename, `codepane-${PKG.version}.tgz`);
  const listed = packed.files.map((f) => f.path).sort();
  assert.deepEqual(listed, EXPECTED_FILES);
  const named = PKG.files.filter((f) => !f.endsWith('/'));
  assert.deepEqual([...named, ...CHUNKS, 'LICENSE', 'README.md', 'package.json'].sort(), EXPECTED_FILES);
  assert.equal(packed.bundled.length, 0);
  // What is really in the tarball, not only what npm said it put there.
  const { stdout } = await run('tar', ['-tzf', tarball]);
  assert.deepEqual(stdout.trim().split('\n').sort(), EXPECTED_FILES.map((f) => `package/${f}`));
  for (const f of packed.files) assert.ok(f.size > 0, `${f.path} is empty`);
});

test('the installed package has its files, its dependencies and a valid wasm', () => {
  const dir = join(app, 'node_modules', 'codepane');
  const installed = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  assert.deepEqual(installed.exports, PKG.exports);
  assert.deepEqual(installed.dependencies, PKG.dependencies);
  for (const f of [...PKG.files, ...CHUNKS]) assert.ok(existsSync(join(dir, f)), `${f} is not installed`);
  // Node's entry needs ws and xhr2; npm brought them from the registry.
  for (const dep of Object.keys(PKG.dependencies))
    assert.ok(existsSync(join(app, 'node_modules', dep, 'package.json')), `${dep} is not installed`);
  const wasm = readFileSync(join(dir, 'dist/core.wasm'));
  assert.deepEqual([...wasm.subarray(0, 4)], [0, 0x61, 0x73, 0x6d]); // \0asm
  assert.ok(WebAssembly.validate(wasm), 'dist/core.wasm does not validate');
  // The browser entry is the "default" condition and needs nothing from node_modules.
  assert.equal(installed.exports['.'].default, './dist/codepane.mjs');
  const browser = readFileSync(join(dir, 'dist/codepane.mjs'), 'utf8');
  assert.doesNotMatch(browser, /from\s*["'](?:ws|xhr2|node:[^"']*)["']/);
  assert.match(browser, /new URL\(["']core\.wasm["']\s*,\s*import\.meta\.url\)/);
});

test("import 'codepane' resolves to dist/node.mjs under Node, and the types are where package.json says", async () => {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e',
    "const m = await import('codepane'); console.log(JSON.stringify({ url: import.meta.resolve('codepane'), keys: Object.keys(m).sort() }))"],
  { cwd: app, timeout: 30000 });
  const got = JSON.parse(stdout);
  assert.equal(got.url, pathToFileURL(join(app, 'node_modules/codepane/dist/node.mjs')).href);
  assert.deepEqual(got.keys, ['connect', 'heapInUse', 'resultText']);
  const dir = join(app, 'node_modules', 'codepane');
  const installed = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  for (const types of [installed.exports['.'].types, installed.types]) {
    assert.equal(types, './dist/codepane.d.ts');
    const dts = readFileSync(join(dir, types), 'utf8');
    for (const name of ['connect', 'resultText', 'heapInUse'])
      assert.match(dts, new RegExp(`export function ${name}\\(`), `${types} does not declare ${name}`);
  }
  // "types" must come first in the condition object, or TypeScript never sees it.
  assert.equal(Object.keys(installed.exports['.'])[0], 'types');
});

test('a Node script in the installing project runs python through the package (HTTP and streaming)', async () => {
  const script = join(app, 'run.mjs');
  writeFileSync(script, `
import { connect, resultText } from 'codepane';
const session = await connect({ server: process.env.CODEPANE_URL });
const plain = await session.code.run('print(6*7)', 'python');
const chunks = [];
const streamed = await session.code.run("print('s')", 'python', 30, {
  streamBeta: true,
  onStdout: (c) => chunks.push(c),
  onStderr: (c) => chunks.push({ stderr: c }),
});
const state = session.streamState;
await session.close();
console.log(JSON.stringify({ plain, plainText: resultText(plain), streamed, chunks, state, after: session.streamState }));
`);
  const t0 = performance.now();
  const { stdout, stderr } = await run(process.execPath, [script],
    { cwd: app, env: { ...process.env, CODEPANE_URL: server.base }, timeout: 30000 });
  const ms = performance.now() - t0;
  assert.equal(stderr, '');
  const out = JSON.parse(stdout);

  assert.equal(out.plainText, '42\n');
  const { executionTime: t1, executionCount: n1, requestId: id1, ...plain } = out.plain;
  assert.deepEqual(plain, { success: true, logs: { stdout: ['42\n'], stderr: [] }, results: [], errorMessage: '' });
  assert.equal(typeof n1, 'number');
  assert.ok(t1 >= 0, `executionTime ${t1}`);
  assert.match(id1, /^link-\d+-\d{9}$/);

  assert.deepEqual(out.chunks, ['s\n']);
  const { executionTime: t2, executionCount: n2, requestId: id2, ...streamed } = out.streamed;
  assert.deepEqual(streamed, { success: true, logs: { stdout: ['s\n'], stderr: [] }, results: [], errorMessage: '' });
  assert.equal(typeof n2, 'number');
  assert.ok(n2 > n1, `executionCount ${n1} then ${n2}`);
  assert.ok(t2 >= 0, `executionTime ${t2}`);
  assert.match(id2, /^[0-9a-f]{32}$/);

  assert.equal(out.state, 'open');
  assert.equal(out.after, 'closed');
  // The script exits by itself once the session is closed (no handle keeps Node alive).
  assert.ok(ms < 20000, `the script took ${Math.round(ms)} ms`);
  await expectNoSandboxProcesses(3000, UID_BASE);
});
