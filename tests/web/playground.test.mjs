// The playground (web/index.html, served at / as `npm start` serves it) in Debian's
// Chromium against a real codepane-server with every language in kernels: typing and
// running code in each language, live streaming, Stop, rich results, the sandboxed HTML
// output, keyboard-only use, 320 px, huge output, share links, kept edits, and the
// screenshots a reviewer looks at (build/screenshots/).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { ROOT } from '../server/harness.mjs';
import { outputText, runWidget, startWeb, typeCode } from './helpers.mjs';

const T = { timeout: 60_000 };
const PANE = '#pane';
let web, page;

before(async () => {
  // 16 MiB of output per run, so that 10 MB streams whole.
  web = await startWeb({ uidBase: 65100, args: ['--max-output-bytes', '16M'] });
  page = await openPlayground();
}, { timeout: 60_000 });

after(async () => {
  await web?.stop();
  assert.deepEqual(web?.problems ?? [], [], 'no console errors or page errors');
});

/** A playground page of its own (own context), once its script is ready. */
async function openPlayground(path = '/', options = {}) {
  const p = await web.page(path, options);
  await p.waitForFunction(() => window.playgroundReady === true);
  return p;
}

/** Type `code` into the playground's pane and run it with Ctrl+Enter. */
async function typeAndRun(code) {
  await typeCode(page, PANE, code);
  return runWidget(page, PANE, () => page.keyboard.press('Control+Enter'));
}

async function pick(language) {
  await page.selectOption('#language', language);
  await page.waitForFunction((l) => document.querySelector('#pane').language === l, language);
}

describe('each language, typed and run', () => {
  for (const [language, code, expected] of [
    ['python', 'print(6 * 7)', '42'],
    ['javascript', 'console.log(6 * 7)', '42'],
    ['java', 'System.out.println(6 * 7);', '42'],
    ['r', 'cat(6 * 7, "\\n")', '42'],
  ]) {
    test(`${language}: typed code runs, its output and a finished status show`, T, async () => {
      await pick(language);
      const done = await typeAndRun(code);
      assert.equal(done.status, 'finished', JSON.stringify(done.result));
      assert.deepEqual(done.result.logs.stdout.join('').trim(), expected);
      assert.equal((await outputText(page, PANE)).trim(), expected);
      const status = await page.locator(`${PANE} [part=status]`).innerText();
      assert.match(status, /^Finished · \d+(\.\d+)? (ms|s) · run \d+$/);
    });
  }
});

test('streamed lines appear before the run ends', T, async () => {
  await pick('python');
  // Each line's arrival, seen by a MutationObserver in the page.
  await page.evaluate(() => {
    const out = document.querySelector('#pane').shadowRoot.querySelector('[part=output]');
    window.__seen = [];
    const t0 = performance.now();
    window.__obs = new MutationObserver(() => {
      const text = out.innerText;
      const last = window.__seen.at(-1);
      if (!last || last.text !== text) window.__seen.push({ text, at: performance.now() - t0 });
    });
    window.__obs.observe(out, { childList: true, subtree: true, characterData: true });
  });
  const done = await typeAndRun('import time\nfor i in range(3):\n    print("line", i, flush=True)\n    time.sleep(0.6)');
  const seen = await page.evaluate(() => { window.__obs.disconnect(); return window.__seen; });
  assert.equal(done.status, 'finished');
  const firstLine = seen.find((s) => s.text.includes('line 0'));
  assert.ok(firstLine, JSON.stringify(seen));
  assert.ok(!firstLine.text.includes('line 1'), 'line 0 shows alone first');
  assert.ok(firstLine.at + 1000 < done.ms, `line 0 at ${firstLine.at} ms, the run ended at ${done.ms} ms`);
  assert.equal((await outputText(page, PANE)).trim(), 'line 0\nline 1\nline 2');
});

test('Stop ends a running loop: cancelled, the output so far kept, the kernel ready again', T, async () => {
  await pick('python');
  await typeCode(page, PANE, 'import time\ni = 0\nwhile True:\n    print("tick", i, flush=True)\n    i += 1\n    time.sleep(0.2)');
  const stopped = runWidget(page, PANE, () => page.click(`${PANE} [part=run]`));
  await page.locator(`${PANE} [part=output]`).getByText('tick 2').waitFor();
  const t0 = Date.now();
  await page.click(`${PANE} [part=stop]`);
  const done = await stopped;
  assert.ok(Date.now() - t0 < 2000, `settled ${Date.now() - t0} ms after Stop`);
  assert.equal(done.status, 'cancelled');
  assert.match(await page.locator(`${PANE} [part=status]`).innerText(), /^Cancelled/);
  assert.match(await outputText(page, PANE), /^tick 0\ntick 1\ntick 2\n/);
  // The kernel was interrupted, not lost: `i` is still there.
  const next = await typeAndRun('print(i > 2)');
  assert.equal(next.status, 'finished');
  assert.equal(next.result.logs.stdout.join(''), 'True\n');
});

test('a matplotlib PNG renders as an image and a pandas table as HTML in a sandboxed frame', T, async () => {
  await pick('python');
  const done = await typeAndRun([
    'import matplotlib.pyplot as plt, pandas as pd',
    'plt.plot([1, 3, 2])',
    'plt.show()',
    "pd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})",
  ].join('\n'));
  assert.equal(done.status, 'finished', JSON.stringify(done.result.errorMessage));
  const img = page.locator(`${PANE} [part=output] img`);
  await img.waitFor();
  const { w, h, src } = await img.evaluate((el) => ({ w: el.naturalWidth, h: el.naturalHeight, src: el.src.slice(0, 22) }));
  assert.equal(src, 'data:image/png;base64,');
  assert.ok(w > 100 && h > 100, `image ${w}×${h}`);
  const frame = page.locator(`${PANE} [part=output] iframe`);
  assert.equal(await frame.getAttribute('sandbox'), 'allow-scripts');
  const cells = await frame.contentFrame().locator('td').allInnerTexts();
  assert.deepEqual(cells, ['1', 'x', '2', 'y']);
});

describe('untrusted HTML output', () => {
  // The script tries everything a hostile output would: the host's DOM, its storage and
  // cookies, navigating the top page; it writes what it could do into its own body.
  const ATTACK = [
    'from IPython.display import HTML, display',
    'display(HTML("""<p id=r>start</p><script>',
    'const r = [];',
    'for (const [name, f] of Object.entries({',
    "  title: () => { parent.document.title = 'pwned'; },",
    "  body: () => parent.document.body.innerHTML,",
    "  storage: () => localStorage.getItem('x'),",
    "  parentStorage: () => parent.localStorage.getItem('x'),",
    "  cookie: () => document.cookie,",
    "  topLocation: () => { top.location.href = 'about:blank#pwned'; },",
    '})) { try { f(); r.push(name + ":open"); } catch (e) { r.push(name + ":" + e.name); } }',
    "document.getElementById('r').textContent = r.join(' ');",
    '</script>"""))',
  ].join('\n');

  test('with scripts allowed (html-scripts) a script runs, but cannot read or change the host page', T, async () => {
    await pick('python');
    await page.evaluate(() => {
      document.title = 'codepane playground';
      localStorage.setItem('x', 'host secret');
      document.cookie = 'sid=host-secret';
      document.querySelector('#pane').setAttribute('html-scripts', '');
    });
    const url = page.url();
    try {
      const done = await typeAndRun(ATTACK);
      assert.equal(done.status, 'finished', done.result.errorMessage);
      const frame = page.locator(`${PANE} [part=output] iframe`).contentFrame();
      await frame.locator('#r').filter({ hasNotText: 'start' }).waitFor();
      const report = await frame.locator('#r').innerText();
      for (const name of ['title', 'body', 'storage', 'parentStorage', 'cookie', 'topLocation'])
        assert.match(report, new RegExp(`\\b${name}:(SecurityError|TypeError)`), report);
      assert.equal(await page.title(), 'codepane playground');
      assert.equal(page.url(), url);
      assert.equal(await page.evaluate(() => localStorage.getItem('x')), 'host secret');
    } finally {
      await page.evaluate(() => document.querySelector('#pane').removeAttribute('html-scripts'));
    }
  });

  test('by default a script in HTML output does not run at all (CSP), the HTML still shows', T, async () => {
    await pick('python');
    const done = await typeAndRun(ATTACK);
    assert.equal(done.status, 'finished');
    const frame = page.locator(`${PANE} [part=output] iframe`).contentFrame();
    await frame.locator('#r').waitFor();
    await page.waitForTimeout(300);
    assert.equal(await frame.locator('#r').innerText(), 'start');
  });
});

test('keyboard only: Tab to the editor, type, Esc to Run, Enter, Tab to the output and read it', T, async () => {
  const kb = await openPlayground('/');
  const focused = () => kb.evaluate(() => {
    let a = document.activeElement;
    while (a?.shadowRoot?.activeElement) a = a.shadowRoot.activeElement;
    return a ? (a.getAttribute('part') || a.className || a.tagName).toString() : null;
  });
  // From the top of the page, Tab until the editor has focus.
  let steps = 0;
  while (!/cm-content/.test(await focused()) && steps++ < 30) await kb.keyboard.press('Tab');
  assert.match(await focused(), /cm-content/, 'Tab reaches the editor');
  await kb.keyboard.press('Control+A');
  await kb.keyboard.type('print("by keyboard")');
  await kb.keyboard.press('Escape');
  assert.equal(await focused(), 'run', 'Esc leaves the editor for the Run button');
  // The shortcut is in Run's tooltip and in its accessibility tree entry.
  assert.equal(await kb.locator(`${PANE} [part=run]`).getAttribute('title'), 'Run (Ctrl+Enter)');
  assert.equal(await kb.locator(`${PANE} [part=run]`).getAttribute('aria-keyshortcuts'), 'Control+Enter');
  // Focus is visible: the focused Run button has an outline.
  const outline = await kb.locator(`${PANE} [part=run]`).evaluate((b) => getComputedStyle(b).outlineStyle);
  assert.notEqual(outline, 'none');
  const done = await runWidget(kb, PANE, () => kb.keyboard.press('Enter'));
  assert.equal(done.status, 'finished');
  // Run gave focus back to itself; Tab on to the output region.
  steps = 0;
  while ((await focused()) !== 'output' && steps++ < 10) await kb.keyboard.press('Tab');
  assert.equal(await focused(), 'output');
  const out = kb.locator(`${PANE} [part=output]`);
  assert.match(await out.getAttribute('aria-label'), /output/i);
  assert.equal((await out.innerText()).trim(), 'by keyboard');
  // The status line is a live region: screen readers hear the outcome.
  const status = kb.locator(`${PANE} [part=status]`);
  assert.equal(await status.getAttribute('role'), 'status');
  assert.equal(await status.getAttribute('aria-live'), 'polite');
  await kb.context().close();
});

test('every control of the page and the widget has an accessible name', T, async () => {
  const names = await page.evaluate(() => {
    const all = [...document.querySelectorAll('button, select, input, a[href], textarea')];
    const pane = document.querySelector('#pane').shadowRoot;
    all.push(...pane.querySelectorAll('button:not([hidden])'));
    return all.map((el) => {
      const label = el.labels?.[0]?.innerText || el.getAttribute('aria-label') || el.innerText || el.title;
      return { el: el.id || el.getAttribute('part') || el.tagName, label: (label || '').trim() };
    });
  });
  const unnamed = names.filter((n) => !n.label);
  assert.deepEqual(unnamed, []);
});

test('at 320 px wide nothing scrolls sideways and the controls stay usable', T, async () => {
  const narrow = await openPlayground('/', { width: 320, height: 700 });
  const widths = await narrow.evaluate(() => ({ doc: document.documentElement.scrollWidth, body: document.body.scrollWidth }));
  assert.ok(widths.doc <= 320 && widths.body <= 320, JSON.stringify(widths));
  const run = narrow.locator(`${PANE} [part=run]`);
  const box = await run.boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 320, JSON.stringify(box));
  const done = await runWidget(narrow, PANE, () => run.click());
  assert.equal(done.status, 'finished', done.result.errorMessage);
  await narrow.context().close();
});

test('10 MB of output: the page stays responsive, head and tail show with a marker, Download gives it all', { timeout: 120_000 }, async (t) => {
  await pick('python');
  // 163,840 lines of 65 bytes (10.6 MB), written in 66,560-byte blocks.
  const code = [
    'import sys',
    "line = 'x' * 57",
    "block = ''.join(f'{i:06d} {line}\\n' for i in range(1024))",
    'for _ in range(160):',
    '    sys.stdout.write(block)',
  ].join('\n');
  await typeCode(page, PANE, code);
  // The page's longest stall while the output streams, seen by a 20 ms ticker.
  await page.evaluate(() => {
    window.__stall = 0;
    let last = performance.now();
    window.__ticker = setInterval(() => {
      const now = performance.now();
      window.__stall = Math.max(window.__stall, now - last);
      last = now;
    }, 20);
  });
  // The run's result stays in the page: carrying its 10 MB of logs over to the test would
  // itself stall the page it measures.
  await page.evaluate((sel) => {
    window.__summary = new Promise((resolve) => {
      const t0 = performance.now();
      document.querySelector(sel).addEventListener('codepane-done', ({ detail: { status, result } }) => resolve({
        status, ms: performance.now() - t0, errorMessage: result.errorMessage,
        bytes: result.logs.stdout.reduce((n, c) => n + c.length, 0),
      }), { once: true });
    });
  }, PANE);
  await page.click(`${PANE} [part=run]`);
  const done = await page.evaluate(() => window.__summary);
  const stall = await page.evaluate(() => { clearInterval(window.__ticker); return window.__stall; });
  assert.equal(done.status, 'finished', done.errorMessage);
  assert.equal(done.bytes, 160 * 1024 * 65);
  // Responsive: the page's event loop never stalled for a second.
  t.diagnostic(`10 MB streamed in ${done.ms.toFixed(0)} ms; the page's longest stall: ${stall.toFixed(0)} ms`);
  assert.ok(stall < 1000, `longest stall ${stall.toFixed(0)} ms`);
  const out = page.locator(`${PANE} [part=output]`);
  const text = await out.innerText();
  assert.ok(text.startsWith(`000000 ${'x'.repeat(57)}\n000001 `), text.slice(0, 80));
  assert.ok(text.trimEnd().endsWith(`001023 ${'x'.repeat(57)}`), text.slice(-80));
  assert.match(text, /hidden/);
  assert.ok(text.length < 1_000_000, `${text.length} characters in the page`);
  const [download] = await Promise.all([page.waitForEvent('download'), out.getByRole('button', { name: /download/i }).click()]);
  const file = await download.path();
  assert.equal(statSync(file).size, 160 * 1024 * 65);
  assert.equal(readFileSync(file, 'utf8').slice(0, 7), '000000 ');
  await page.click(`${PANE} [part=clear]`);
});

test('Share puts the code in the URL fragment; opening the link restores it', T, async () => {
  await pick('r');
  await typeCode(page, PANE, 'cat("shared ✓\\n")');
  await page.click('#share');
  await page.locator('#share-status').getByText('Link copied').waitFor();
  const link = await page.evaluate(() => navigator.clipboard.readText());
  assert.match(link, /^http:\/\/127\.0\.0\.1:\d+\/#/);
  const other = await openPlayground(new URL(link).pathname + new URL(link).hash);
  assert.equal(await other.evaluate(() => document.querySelector('#pane').language), 'r');
  assert.equal(await other.evaluate(() => document.querySelector('#pane').code), 'cat("shared ✓\\n")');
  const done = await runWidget(other, PANE, () => other.click(`${PANE} [part=run]`));
  assert.equal(done.result.logs.stdout.join(''), 'shared ✓\n');
  await other.context().close();
});

test('screenshots of the playground after a plot, light and dark, go to build/screenshots', { timeout: 90_000 }, async () => {
  mkdirSync(`${ROOT}build/screenshots`, { recursive: true });
  for (const scheme of ['light', 'dark']) {
    const p = await openPlayground('/', { colorScheme: scheme, width: 1100, height: 1000 });
    await p.selectOption('#theme', scheme);
    await typeCode(p, PANE, 'import matplotlib.pyplot as plt\nplt.plot([1, 4, 2, 5])\nplt.title("codepane")\nplt.show()');
    const done = await runWidget(p, PANE, () => p.keyboard.press('Control+Enter'));
    assert.equal(done.status, 'finished', done.result.errorMessage);
    await p.locator(`${PANE} [part=output] img`).waitFor();
    const theme = await p.evaluate(() => document.querySelector('#pane').shadowRoot.querySelector('[part=root]').dataset.theme);
    assert.equal(theme, scheme);
    const file = `${ROOT}build/screenshots/playground-${scheme}.png`;
    await p.screenshot({ path: file, fullPage: true });
    assert.deepEqual([...readFileSync(file).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    await p.context().close();
  }
});

test('what the playground loads for a plain python run is exactly the set `npm run size` counts', T, async () => {
  const { webSets } = await import('../../scripts/size.mjs');
  const sets = webSets(`${ROOT}build/web-meta.json`);
  const fresh = await web.page('/', { width: 1000, height: 800 });
  const loaded = new Set();
  fresh.on('request', (r) => { const p = new URL(r.url()).pathname; if (p.startsWith('/dist/')) loaded.add(p.slice('/dist/'.length)); });
  await fresh.reload();
  await fresh.waitForFunction(() => window.playgroundReady === true);
  await typeCode(fresh, PANE, 'print("plain")');
  const done = await runWidget(fresh, PANE, () => fresh.keyboard.press('Control+Enter'));
  assert.equal(done.status, 'finished');
  assert.deepEqual([...loaded].sort(), [...sets.python].sort());
  await fresh.context().close();
});

test('rare results load their renderer only when they arrive: Markdown, LaTeX, JSON tree, Vega-Lite chart, SVG', { timeout: 90_000 }, async () => {
  const fresh = await web.page('/', { width: 1000, height: 900 });
  const loaded = [];
  fresh.on('request', (r) => loaded.push(new URL(r.url()).pathname));
  await fresh.waitForFunction(() => window.playgroundReady === true);
  await typeCode(fresh, PANE, 'print("plain")');
  await runWidget(fresh, PANE, () => fresh.keyboard.press('Control+Enter'));
  const before = loaded.length;
  const code = [
    'from IPython.display import display, Markdown, Latex, JSON, SVG',
    "display(Markdown('# Title\\n\\n*emphasis* and `code`'))",
    "display(Latex(r'$$\\frac{a}{b}$$'))",
    "display(JSON({'name': 'codepane', 'list': [1, 2, 3]}))",
    "display(SVG('<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"40\" height=\"20\"><rect width=\"40\" height=\"20\" fill=\"red\"/></svg>'))",
    "spec = {'$schema': 'https://vega.github.io/schema/vega-lite/v5.json', 'data': {'values': [{'a': '<b>x</b>', 'b': 3}, {'a': 'y', 'b': 5}]},",
    "        'mark': {'type': 'bar', 'tooltip': True}, 'encoding': {'x': {'field': 'a', 'type': 'nominal'}, 'y': {'field': 'b', 'type': 'quantitative'}}}",
    "display({'application/vnd.vegalite.v5+json': spec, 'text/plain': '<chart>'}, raw=True)",
  ].join('\n');
  await typeCode(fresh, PANE, code);
  const done = await runWidget(fresh, PANE, () => fresh.keyboard.press('Control+Enter'));
  assert.equal(done.status, 'finished', done.result.errorMessage);
  assert.equal(done.result.results.length, 5);
  const out = fresh.locator(`${PANE} [part=output]`);
  // Markdown, LaTeX and the chart: in sandboxed frames (LaTeX as MathML).
  const frames = out.locator('iframe');
  await fresh.waitForFunction(() => document.querySelector('#pane').shadowRoot.querySelectorAll('[part=output] iframe').length === 3);
  assert.equal(await frames.nth(0).contentFrame().locator('h1').innerText(), 'Title');
  assert.equal(await frames.nth(0).contentFrame().locator('em').innerText(), 'emphasis');
  await frames.nth(1).contentFrame().locator('math mfrac').waitFor();
  for (let i = 0; i < 3; i++) assert.equal(await frames.nth(i).getAttribute('sandbox'), 'allow-scripts');
  // JSON: a tree of text, with the keys shown.
  const tree = await out.locator('details').first().innerText();
  assert.match(tree, /name/);
  assert.match(tree, /codepane/);
  // SVG: an image, never inline markup.
  const svgImg = out.locator('img[src^="data:image/svg+xml"]');
  assert.equal(await svgImg.count(), 1);
  assert.equal(await out.locator('svg rect[fill="red"]').count(), 0, 'the SVG result is not inlined');
  // The chart: drawn by vega-embed inside its frame (an opaque origin), two bars; nothing
  // of Vega is in the page itself.
  const chart = frames.nth(2).contentFrame();
  await chart.locator('#chart svg').waitFor();
  assert.equal(await chart.locator('.mark-rect path').count(), 2);
  assert.equal(await frames.nth(2).evaluate((f) => f.style.visibility), '');
  assert.equal(await chart.locator('html').evaluate(() => origin), 'null');
  assert.equal(await fresh.evaluate(() => document.querySelector('#pane').shadowRoot.querySelectorAll('[part=output] svg').length), 0);
  assert.equal(await fresh.evaluate(() => ['vega', 'vl', 'vegaEmbed'].filter((k) => k in window).length), 0);
  // Its tooltip is text: markup in the data stays characters. (A pointer that arrives just
  // as the chart is shown can come before Vega listens: move it until the tip shows.)
  const tip = chart.locator('.tip');
  for (let i = 0; i < 30 && !(await tip.count()); i++) {
    await chart.locator('.mark-rect path').first().hover({ position: { x: 4 + (i % 8), y: 10 + i } });
    await fresh.waitForTimeout(100);
  }
  assert.equal(await chart.locator('.tip').innerText(), 'a: <b>x</b>\nb: 3');
  assert.equal(await chart.locator('.tip b').count(), 0);
  // A theme switch draws it again, in Vega's dark theme (its background is #333).
  const background = () => chart.locator('#chart svg').evaluate((svg) => svg.style.backgroundColor);
  assert.equal(await background(), 'white');
  await fresh.selectOption('#theme', 'dark');
  await chart.locator('#chart svg[style*="rgb(51, 51, 51)"]').waitFor();
  assert.equal(await chart.locator('.mark-rect path').count(), 2);
  await fresh.selectOption('#theme', 'light');
  await chart.locator('#chart svg[style*="white"]').waitFor();
  const lazy = loaded.slice(before).filter((p) => p.startsWith('/dist/chunks/'));
  assert.ok(lazy.length >= 2, `renderers loaded on demand: ${JSON.stringify(lazy)}`);
  // The chart frame loaded its two scripts, and nothing else.
  const chartLoads = await chart.locator('html').evaluate(() => performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname));
  assert.deepEqual(chartLoads, ['/dist/chunks/frame.js', '/dist/chunks/chart-frame.js']);
  assert.ok(!loaded.slice(0, before).some((p) => /katex|marked|vega/i.test(p)), JSON.stringify(loaded.slice(0, before)));
  await fresh.context().close();
});

test('a chart that names a data URL is drawn without it and says so; a chart that is not a spec keeps its text', { timeout: 60_000 }, async () => {
  const fresh = await openPlayground('/', { width: 1000, height: 900 });
  const code = [
    'from IPython.display import display',
    "spec = {'data': {'url': 'http://127.0.0.1:9/cars.json'}, 'mark': 'point',",
    "        'encoding': {'x': {'field': 'a', 'type': 'quantitative'}}}",
    "display({'application/vnd.vegalite.v5+json': spec, 'text/plain': '<remote chart>'}, raw=True)",
    "display({'application/vnd.vegalite.v5+json': [1, 2], 'text/plain': '<not a chart>'}, raw=True)",
  ].join('\n');
  await typeCode(fresh, PANE, code);
  const done = await runWidget(fresh, PANE, () => fresh.keyboard.press('Control+Enter'));
  assert.equal(done.status, 'finished', done.result.errorMessage);
  const results = fresh.locator(`${PANE} [part=result]`);
  await results.nth(0).locator('.cp-note').waitFor();
  assert.equal(await results.nth(0).locator('.cp-note').innerText(),
    'Chart: refused http://127.0.0.1:9/cars.json: chart data must be inline');
  const frame = results.nth(0).locator('iframe');
  assert.equal(await frame.getAttribute('sandbox'), 'allow-scripts');
  await frame.contentFrame().locator('#chart svg').waitFor();
  const loads = await frame.contentFrame().locator('html').evaluate(() => performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname));
  assert.deepEqual(loads, ['/dist/chunks/frame.js', '/dist/chunks/chart-frame.js']);
  await results.nth(1).locator('.cp-note').waitFor();
  assert.equal(await results.nth(1).locator('.cp-note').innerText(), 'Could not render the chart: the chart is not a Vega-Lite spec object');
  assert.equal(await results.nth(1).locator('pre').innerText(), '<not a chart>');
  assert.equal(await results.nth(1).locator('iframe').count(), 0);
  await fresh.context().close();
});

test('Copy output puts the output on the clipboard; Clear empties the output and the status', T, async () => {
  await pick('python');
  const done = await typeAndRun('print("first")\nprint("second")');
  assert.equal(done.status, 'finished');
  await page.click(`${PANE} [part=copy]`);
  await page.locator(`${PANE} [part=copy]`).getByText('Copied').waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'first\nsecond\n');
  await page.click(`${PANE} [part=clear]`);
  assert.equal(await outputText(page, PANE), '');
  assert.equal(await page.locator(`${PANE} [part=status]`).innerText(), '');
});

test('stream off: the run goes through callTool and its output shows when it ends', T, async () => {
  await pick('python');
  await page.uncheck('#stream');
  try {
    assert.equal(await page.evaluate(() => document.querySelector('#pane').getAttribute('stream')), 'off');
    const done = await typeAndRun('print("whole")\n1 + 1');
    assert.equal(done.status, 'finished');
    assert.equal(done.result.requestId.length > 0, true);
    assert.equal(await outputText(page, PANE), 'whole\n\nOut:\n2');
  } finally {
    await page.check('#stream');
  }
});

test('the timeout field limits a run: the status says it timed out, why, and the output is kept', T, async () => {
  await pick('python');
  await page.fill('#timeout', '2');
  try {
    const done = await typeAndRun('import time\nprint("before", flush=True)\ntime.sleep(30)');
    assert.equal(done.status, 'timed out');
    // The output so far, then where the interrupt found the code (IPython's traceback).
    const out = await outputText(page, PANE);
    assert.ok(out.startsWith('before\n'), out);
    assert.match(out, /KeyboardInterrupt[\s\S]*----> 3 time\.sleep\(30\)/);
    assert.match(await page.locator(`${PANE} [part=status]`).innerText(),
      /^Timed out · 2\.\d\d s · run \d+: TimeoutError: the run exceeded its time limit of 2 s$/);
  } finally {
    await page.fill('#timeout', '30');
  }
});
