// The npm package in a real browser: Debian's headless Chromium, driven by playwright-core
// (which downloads no browser), opens a page served by codepane-server itself
// (--web-root). The web root holds the page (fixture/) and node_modules/codepane unpacked
// from `npm pack` of the checkout, so the page loads exactly what the package ships:
// dist/codepane.mjs through an import map, and dist/core.wasm from beside it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { chromium } from 'playwright-core';

import { expectNoSandboxProcesses, startServer } from '../server/harness.mjs';
import { pack, run } from '../package/packed.mjs';

const UID_BASE = 64576;
const CHROMIUM = '/usr/bin/chromium';
const FIXTURE = fileURLToPath(new URL('./fixture/', import.meta.url));
const DIST = ['dist/codepane.mjs', 'dist/core.wasm'];
// page.evaluate has no timeout of its own: a run that never settles fails its test, not the file.
const T = { timeout: 20000 };

const PY_STREAM = 'import time\nfor i in range(3):\n print(i, flush=True); time.sleep(0.4)';
const JS_STREAM = "for (let i=0;i<3;i++){console.log('js'+i); await new Promise(r=>setTimeout(r,400));}";

let tmp, server, browser, page;
const consoleProblems = []; // console errors/warnings and uncaught page errors
const responses = [];       // every response the page (and its workers) got

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'codepane-browser-'));
  const { tarball } = await pack(tmp);
  const web = join(tmp, 'web');
  cpSync(FIXTURE, web, { recursive: true });
  const pkgDir = join(web, 'node_modules', 'codepane');
  mkdirSync(pkgDir, { recursive: true });
  await run('tar', ['-xzf', tarball, '-C', pkgDir, '--strip-components=1']);

  server = await startServer({ uidBase: UID_BASE, args: ['--web-root', web, '--max-sessions', '8'] });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  page = await browser.newPage();
  const onConsole = (where) => (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') consoleProblems.push(`${where} console.${msg.type()}: ${msg.text()}`);
  };
  page.on('console', onConsole('page')); // a dedicated worker's console comes here too
  page.on('pageerror', (e) => consoleProblems.push(`pageerror: ${e.stack ?? e}`));
  page.on('requestfailed', (r) => consoleProblems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => responses.push({ url: r.url(), status: r.status(), type: r.headers()['content-type'] }));
  await page.goto(`${server.base}/`);
  await page.waitForFunction(() => window.cpReady === true, null, { timeout: 15000 });
}, { timeout: 45000 });

after(async () => {
  await browser?.close();
  await server?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Streaming output is live: the exact chunks, each ≥ 0.3 s after the one before (the
 * code sleeps 0.4 s between prints), and the first well before the run resolves. */
function assertLive(got, expected) {
  assert.deepEqual(got.chunks.map(({ stream, chunk }) => ({ stream, chunk })),
    expected.map((chunk) => ({ stream: 'stdout', chunk })));
  const at = got.chunks.map((c) => c.at);
  for (let i = 1; i < at.length; i++)
    assert.ok(at[i] - at[i - 1] >= 300, `chunk ${i} came ${at[i] - at[i - 1]} ms after the one before: ${JSON.stringify(at)}`);
  assert.ok(at[0] + 700 <= got.resolvedAt, `first chunk at ${at[0]} ms, run resolved at ${got.resolvedAt} ms`);
  assert.ok(at.at(-1) <= got.resolvedAt);
  const { executionTime, executionCount, requestId, ...rest } = got.result;
  assert.deepEqual(rest, { success: true, logs: { stdout: expected, stderr: [] }, results: [], errorMessage: '' });
  assert.equal(typeof executionCount, 'number');
  assert.equal(typeof executionTime, 'number');
  assert.match(requestId, /^[0-9a-f]{32}$/);
}

test('the page connects to the server it came from, and loads core.wasm as application/wasm', T, async () => {
  const opened = await page.evaluate(() => window.cp.open());
  assert.match(opened.sessionId, /.+/);
  assert.equal(new URL(opened.wsUrl).host, new URL(server.base).host);
  assert.equal(opened.state, 'idle');
  const wasm = responses.filter((r) => r.url === `${server.base}/node_modules/codepane/dist/core.wasm`);
  assert.equal(wasm.length, 1, JSON.stringify(responses));
  assert.equal(wasm[0].status, 200);
  assert.equal(wasm[0].type, 'application/wasm');
  const entry = responses.find((r) => r.url === `${server.base}/node_modules/codepane/dist/codepane.mjs`);
  assert.equal(entry?.status, 200);
  assert.match(entry.type, /^text\/javascript/);
});

test('python streams live in the browser', T, async () => {
  const got = await page.evaluate((code) => window.cp.streamed(code, 'python'), PY_STREAM);
  assertLive(got, ['0\n', '1\n', '2\n']);
  assert.equal(await page.evaluate(() => window.cp.state()), 'open');
});

test('javascript streams live in the browser', T, async () => {
  const got = await page.evaluate((code) => window.cp.streamed(code, 'javascript'), JS_STREAM);
  assertLive(got, ['js0\n', 'js1\n', 'js2\n']);
});

test('a non-streaming python run gives resultText "2" for 1+1', T, async () => {
  const { result, text } = await page.evaluate(() => window.cp.run('1+1', 'python'));
  assert.equal(text, '2');
  assert.equal(result.success, true);
  assert.equal(result.errorMessage, '');
  assert.equal(typeof result.executionCount, 'number');
  assert.deepEqual(result.results.filter((r) => r.isMainResult).map((r) => r.text), ['2']);
});

test('an unsupported language fails locally with the exact message', T, async () => {
  const seen = responses.length;
  const { result, text } = await page.evaluate(() => window.cp.run('puts 1', 'ruby'));
  assert.deepEqual(result, {
    requestId: '', success: false, executionTime: 0, logs: { stdout: [], stderr: [] }, results: [],
    errorMessage: 'Unsupported language: ruby. Supported: java, javascript, python, r',
  });
  assert.equal(text, '');
  assert.equal(responses.length, seen, 'the ruby run reached the network');
});

test('the same streaming python run works in a module Worker importing the package by URL', T, async () => {
  const wasmUrl = `${server.base}/node_modules/codepane/dist/core.wasm`;
  const seen = responses.filter((r) => r.url === wasmUrl).length;
  const got = await page.evaluate((code) => window.cp.inWorker(code, 'python'), PY_STREAM);
  assertLive(got, ['0\n', '1\n', '2\n']);
  // The worker loaded its own copy of the core, from beside the module it imported.
  const wasm = responses.filter((r) => r.url === wasmUrl).slice(seen);
  assert.deepEqual(wasm.map((r) => [r.status, r.type]), [[200, 'application/wasm']]);
});

// The minimal runtime cannot report a module that fails to instantiate: the browser entry
// checks the bytes itself, so connect() rejects with a message instead of hanging, and the
// next connect() loads the module again.
for (const [what, reply, message] of [
  ['missing (404)', { status: 404, contentType: 'text/html', body: '<h1>Not Found</h1>' },
    /^codepane: could not load http:\/\/[^ ]+\/dist\/core\.wasm: HTTP 404$/],
  ['an HTML page served as 200', { status: 200, contentType: 'text/html', body: '<!doctype html><p>hi' },
    /^codepane: http:\/\/[^ ]+\/dist\/core\.wasm is not codepane's WebAssembly module \(20 bytes, text\/html\)$/],
]) {
  test(`connect() rejects with a clear error when core.wasm is ${what}`, T, async () => {
    const other = await browser.newPage();
    try {
      await other.route('**/core.wasm', (route) => route.fulfill(reply));
      await other.goto(`${server.base}/`);
      await other.waitForFunction(() => window.cpReady === true, null, { timeout: 15000 });
      const got = await other.evaluate(() => window.cp.open().then(() => 'connected', (e) => e.message));
      assert.match(got, message);
      await other.unroute('**/core.wasm');
      const again = await other.evaluate(() => window.cp.open().then((o) => o.state, (e) => e.message));
      assert.equal(again, 'idle');
      assert.equal(await other.evaluate(() => window.cp.close()), 'closed');
    } finally {
      await other.close();
    }
  });
}

test('closing the session ends its sandbox; the page logged no error', T, async () => {
  assert.equal(await page.evaluate(() => window.cp.close()), 'closed');
  await expectNoSandboxProcesses(3000, UID_BASE);
  assert.deepEqual(consoleProblems, []);
  const failed = responses.filter((r) => r.status >= 400);
  assert.deepEqual(failed, []);
});
