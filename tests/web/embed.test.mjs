// The embedding demo (web/embed-demo.html): a docs-like page with widgets in several
// languages. Widgets of a page share one session and so one WebSocket (counted here),
// python widgets share their variables, an isolated widget has its own session, a
// read-only widget cannot be edited, upgrade() turns a plain code block into a widget,
// and the editor loads only when needed.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { outputText, runWidget, startWeb } from './helpers.mjs';

const T = { timeout: 60_000 };
let web, page;
const sockets = [];  // every WebSocket the page opened
const requests = []; // every URL the page asked for

before(async () => {
  web = await startWeb({ uidBase: 65200 });
  const context = await web.browser.newContext({ viewport: { width: 1000, height: 800 } });
  page = await context.newPage();
  page.on('websocket', (ws) => sockets.push(ws.url()));
  page.on('request', (r) => requests.push(new URL(r.url()).pathname));
  page.on('pageerror', (e) => web.problems.push(`pageerror: ${e.stack ?? e}`));
  page.on('console', (m) => { if (m.type() === 'error') web.problems.push(`console.error: ${m.text()}`); });
  await page.goto(`${web.server.base}/embed-demo.html`);
  await page.waitForFunction(() => window.demoReady === true);
}, { timeout: 60_000 });

after(async () => {
  await web?.stop();
  assert.deepEqual(web?.problems ?? [], []);
});

const run = (id) => runWidget(page, `#${id}`, () => page.click(`#${id} [part=run]`));

test('before any run or scroll, the page loaded no editor chunk and opened no socket', T, async () => {
  // The first widgets are visible: their editor may load once the page is idle, but
  // nothing runs and nothing connects until Run.
  assert.deepEqual(sockets, []);
  assert.ok(requests.includes('/dist/code-pane.mjs'));
});

test('two python widgets share one session and one WebSocket: the second sees the first one\'s variable', T, async () => {
  const first = await run('py-define');
  assert.equal(first.status, 'finished', first.result.errorMessage);
  const second = await run('py-use');
  assert.equal(second.status, 'finished', second.result.errorMessage);
  assert.ok(second.result.logs.stdout.join('').length > 0, 'py-use printed something');
  const own = sockets.filter((u) => u.includes('/ws/'));
  assert.equal(own.length, 1, `WebSockets opened: ${JSON.stringify(sockets)}`);
});

test('the javascript, java and r widgets run on that same WebSocket', { timeout: 90_000 }, async () => {
  for (const id of ['js', 'java', 'r']) {
    const done = await run(id);
    assert.equal(done.status, 'finished', `${id}: ${done.result.errorMessage}`);
    assert.ok((await outputText(page, `#${id}`)).trim().length > 0, `${id} shows output`);
  }
  assert.equal(sockets.length, 1, JSON.stringify(sockets));
});

test('an isolated widget has a session (and a WebSocket) of its own', T, async () => {
  const done = await run('isolated');
  assert.equal(done.status, 'finished', done.result.errorMessage);
  assert.equal(sockets.length, 2, JSON.stringify(sockets));
  assert.notEqual(sockets[0], sockets[1]);
});

test('a read-only widget runs but cannot be edited', T, async () => {
  const sel = '#readonly';
  const before = await page.evaluate((s) => document.querySelector(s).code, sel);
  await page.locator(`${sel} [part=source], ${sel} .cm-content`).first().click();
  await page.locator(`${sel} .cm-content`).waitFor();
  await page.keyboard.type('zzz');
  assert.equal(await page.evaluate((s) => document.querySelector(s).code, sel), before);
  const done = await run('readonly');
  assert.equal(done.status, 'finished', done.result.errorMessage);
});

test('upgrade() made a widget of a plain code block, which runs', T, async () => {
  const tag = await page.evaluate(() => {
    const el = document.querySelector('#upgraded');
    return { tag: el.tagName, language: el.language, code: el.code, pre: el.querySelector('pre > code.language-python') !== null };
  });
  assert.deepEqual({ ...tag, code: undefined }, { tag: 'CODE-PANE', language: 'python', code: undefined, pre: true });
  assert.ok(tag.code.length > 0);
  const done = await run('upgraded');
  assert.equal(done.status, 'finished', done.result.errorMessage);
  assert.ok((await outputText(page, '#upgraded')).trim().length > 0);
});
