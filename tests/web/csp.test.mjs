// <code-pane> on a page with a strict Content-Security-Policy, as a docs site may send.
// The policy docs/embedding.md gives (scripts from the page's origin plus
// 'wasm-unsafe-eval', images also from data:, nothing inline) must be enough for
// everything: the widget's styles, the editor, every kind of output frame (a srcdoc frame
// inherits the page's policy, so nothing of ours in a frame may be inline) and charts,
// with no CSP violation reported. Without 'wasm-unsafe-eval' a run fails at once with a
// message that says what to add, and nothing hangs.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { ROOT } from '../server/harness.mjs';
import { runWidget, SITE, startWeb } from './helpers.mjs';

const STRICT = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; img-src 'self' data:";
const NO_WASM = "default-src 'self'";

const CODE = [
  'from IPython.display import display, HTML, Markdown, Latex',
  'import matplotlib.pyplot as plt',
  "display(HTML('<table><tr><td>cell</td></tr></table>'))",
  "display(Markdown('# Title'))",
  "display(Latex(r'$$\\frac{a}{b}$$'))",
  "spec = {'data': {'values': [{'a': 'x', 'b': 3}, {'a': 'y', 'b': 5}]}, 'mark': 'bar',",
  "        'encoding': {'x': {'field': 'a', 'type': 'nominal'}, 'y': {'field': 'b', 'type': 'quantitative'}}}",
  "display({'application/vnd.vegalite.v5+json': spec, 'text/plain': '<chart>'}, raw=True)",
  'plt.plot([1, 2, 3]); plt.show()',
  "print('done')",
].join('\n');

function page(csp) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>CSP</title>
<meta http-equiv="Content-Security-Policy" content="${csp}">
<link rel="icon" href="data:,">
<script type="module" src="/dist/code-pane.mjs"></script></head><body>
<code-pane language="python" id="w"><pre><code>${CODE.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</code></pre></code-pane>
</body></html>`;
}

let site, web;
before(async () => {
  site = mkdtempSync(join(ROOT, 'build', 'csp-site-'));
  cpSync(SITE, site, { recursive: true });
  writeFileSync(join(site, 'strict.html'), page(STRICT));
  writeFileSync(join(site, 'no-wasm.html'), page(NO_WASM));
  web = await startWeb({ uidBase: 65300, site });
}, { timeout: 60_000 });

after(async () => {
  await web?.stop();
  if (site) rmSync(site, { recursive: true, force: true });
});

/** A page of the site, with every console message and page error it reports. */
async function open(path) {
  const p = await web.page(path, { width: 1000, height: 1200 });
  const messages = [];
  p.on('console', (m) => messages.push(`${m.type()}: ${m.text()}`));
  p.on('pageerror', (e) => messages.push(`pageerror: ${e.message}`));
  await p.waitForFunction(() => customElements.get('code-pane') !== undefined);
  return { p, messages };
}

test('under the documented strict policy, styles, the editor, every output frame and charts work, with no violation', { timeout: 60_000 }, async () => {
  const { p, messages } = await open('/strict.html');
  const done = await runWidget(p, '#w', () => p.click('#w [part=run]'));
  assert.equal(done.status, 'finished', done.result.errorMessage);
  assert.deepEqual(done.result.logs.stdout, ['done\n']);
  const out = p.locator('#w [part=output]');
  // The widget's own styles apply (constructed sheets, no <style>).
  assert.equal(await p.locator('#w [part=run]').evaluate((b) => getComputedStyle(b).color), 'rgb(255, 255, 255)');
  // Four frames (HTML, Markdown, LaTeX, chart), each sized to its content by frame.js.
  const frames = out.locator('iframe');
  await p.waitForFunction(() => document.querySelector('#w').shadowRoot.querySelectorAll('[part=output] iframe').length === 4);
  await frames.nth(0).contentFrame().locator('td').waitFor();
  assert.equal(await frames.nth(0).contentFrame().locator('td').innerText(), 'cell');
  assert.equal(await frames.nth(1).contentFrame().locator('h1').innerText(), 'Title');
  await frames.nth(2).contentFrame().locator('math mfrac').waitFor();
  const chart = frames.nth(3).contentFrame();
  await chart.locator('#chart svg').waitFor();
  assert.equal(await chart.locator('.mark-rect path').count(), 2);
  for (let i = 0; i < 4; i++) {
    await p.waitForFunction((n) => {
      const f = document.querySelector('#w').shadowRoot.querySelectorAll('[part=output] iframe')[n];
      return parseFloat(f.style.height) > 24;
    }, i);
  }
  // The table frame is styled by frame.js (borders on cells).
  assert.equal(await frames.nth(0).contentFrame().locator('td').evaluate((td) => getComputedStyle(td).borderTopStyle), 'solid');
  // The plot: a PNG from a data: URL.
  const img = out.locator('img.cp-image');
  await img.waitFor();
  assert.ok(await img.evaluate((i) => i.complete && i.naturalWidth > 100), 'the PNG decodes');
  // The editor loads (when the widget is seen, or on a click) and is styled: CodeMirror's
  // own sheets are constructed too.
  await p.locator('#w .cm-content, #w [part=source]').first().click();
  await p.locator('#w .cm-editor').waitFor();
  assert.equal(await p.locator('#w .cm-editor').evaluate((e) => getComputedStyle(e).display), 'flex');
  await p.waitForTimeout(300); // late reports (a frame's styles, images) have come in
  assert.deepEqual(messages.filter((m) => /Content.Security.Policy|pageerror/i.test(m)), []);
  await p.context().close();
});

test("without 'wasm-unsafe-eval' a run fails at once and says what the policy needs", { timeout: 30_000 }, async () => {
  const { p, messages } = await open('/no-wasm.html');
  const done = await runWidget(p, '#w', () => p.click('#w [part=run]'));
  assert.equal(done.status, 'failed');
  assert.match(done.result.errorMessage,
    /^codepane: this page's Content-Security-Policy does not allow WebAssembly \(add 'wasm-unsafe-eval' to its script-src\): /);
  assert.match(await p.locator('#w [part=status]').innerText(), /^Failed · \d+ ms: codepane: this page's Content-Security-Policy/);
  assert.deepEqual(messages.filter((m) => m.startsWith('pageerror')), []);
  await p.context().close();
});
