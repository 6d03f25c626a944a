// Every example in the user docs runs. A fenced block whose info string has the word
// `run` (```js run, ```sh run) is an example: this test extracts each one from README.md,
// docs/*.md and src/server/runners/README.md and runs it against a real codepane-server
// (CODEPANE_URL points at it). A block must exit 0; examples check their own outcomes.
// An ```html run block is a page: served by that server beside the site build/web holds,
// opened in Debian's Chromium, where every <code-pane> on it must run to "finished"
// with no page error.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { chromium } from 'playwright-core';

import { ROOT, startServer } from '../server/harness.mjs';

const run = promisify(execFile);
const DOCS = ['README.md', 'src/server/runners/README.md',
  ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

function examples(file) {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const found = [];
  const re = /^```(\w+)([^\n]*)\n([\s\S]*?)^```$/gm;
  for (let m; (m = re.exec(text));) {
    if (!/\brun\b/.test(m[2])) continue;
    const line = text.slice(0, m.index).split('\n').length;
    found.push({ lang: m[1], code: m[3], where: `${file}:${line}` });
  }
  return found;
}

let server, scratch, browser;
before(async () => {
  // Scripts run from a folder inside the checkout so `import 'ws'` resolves; HTML
  // examples are pages of a copy of the site.
  scratch = mkdtempSync(join(ROOT, 'build', 'doc-examples-'));
  cpSync(join(ROOT, 'build', 'web'), join(scratch, 'web'), { recursive: true });
  // The server as users get it: every language in kernels (the server's default).
  server = await startServer({ uidBase: 62000, args: ['--kernels', 'all', '--web-root', join(scratch, 'web')] });
});
after(async () => {
  await browser?.close();
  await server?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** Open an HTML example as a page and run each of its widgets in turn. */
async function runPage(ex) {
  browser ??= await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox'] });
  const name = `ex-${ex.where.replace(/[^\w]/g, '_')}.html`;
  const html = /<html[\s>]/i.test(ex.code) ? ex.code : `<!doctype html><meta charset="utf-8"><title>${ex.where}</title>\n${ex.code}`;
  writeFileSync(join(scratch, 'web', name), html);
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(String(e)));
  try {
    await page.goto(`${server.base}/${name}`);
    await page.waitForFunction(() => customElements.get('code-pane'));
    const count = await page.locator('code-pane').count();
    assert.ok(count >= 1, `${ex.where}: no <code-pane> on the page`);
    for (let i = 0; i < count; i++) {
      const done = await page.evaluate(async (n) => {
        const pane = document.querySelectorAll('code-pane')[n];
        const result = await pane.run();
        return { status: pane.shadowRoot.querySelector('[part=status]').dataset.state, result, output: pane.shadowRoot.querySelector('[part=output]').innerText };
      }, i);
      assert.equal(done.status, 'finished', `${ex.where}, widget ${i + 1}: ${done.result.errorMessage}`);
      assert.ok(done.output.trim().length > 0, `${ex.where}, widget ${i + 1} shows output`);
    }
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
}

const all = DOCS.flatMap(examples);

test('the docs hold runnable examples', () => {
  assert.ok(all.length >= 3, `only ${all.length} examples found`);
});

for (const ex of all) {
  test(`example at ${ex.where} runs`, async () => {
    const env = { ...process.env, CODEPANE_URL: server.base };
    const opts = { env, cwd: ROOT, timeout: 60000 };
    if (ex.lang === 'js') {
      const file = join(scratch, `ex-${ex.where.replace(/[^\w]/g, '_')}.mjs`);
      writeFileSync(file, ex.code);
      await run(process.execPath, [file], opts);
    } else if (ex.lang === 'html') {
      await runPage(ex);
    } else if (ex.lang === 'sh') {
      await run('bash', ['-euo', 'pipefail', '-c', ex.code], opts);
    } else {
      assert.fail(`${ex.where}: no runner for \`${ex.lang}\` examples`);
    }
  });
}

