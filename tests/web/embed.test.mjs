// The embedding demo (web/embed-demo.html): a docs-like page with widgets in several
// languages. Widgets of a page share one session and so one WebSocket (counted here),
// python widgets share their variables, an isolated widget has its own session, a
// read-only widget cannot be edited, upgrade() turns a plain code block into a widget,
// and the editor loads only when needed.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { createSession } from '../server/harness.mjs';
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

test('an edit is kept across a reload (localStorage, per snippet) until Reset', T, async () => {
  const p = await page.context().newPage();
  await p.goto(`${web.server.base}/embed-demo.html`);
  await p.waitForFunction(() => window.demoReady === true);
  const original = await p.evaluate(() => document.querySelector('#js').code);
  await p.locator('#js [part=source], #js .cm-content').first().click();
  await p.locator('#js .cm-content').click();
  await p.keyboard.press('Control+End');
  await p.keyboard.type('\n// kept');
  assert.equal(await p.locator('#js [part=reset]').isVisible(), true);
  await p.waitForTimeout(500); // the edit is saved 300 ms after the last keystroke
  await p.reload();
  await p.waitForFunction(() => window.demoReady === true);
  assert.equal(await p.evaluate(() => document.querySelector('#js').code), `${original}\n// kept`);
  assert.equal(await p.locator('#js [part=reset]').isVisible(), true);
  await p.click('#js [part=reset]');
  assert.equal(await p.evaluate(() => document.querySelector('#js').code), original);
  assert.equal(await p.locator('#js [part=reset]').isVisible(), false);
  await p.waitForTimeout(500);
  await p.reload();
  await p.waitForFunction(() => window.demoReady === true);
  assert.equal(await p.evaluate(() => document.querySelector('#js').code), original);
  await p.close();
});

test('session-endpoint: the widget adopts the session a site\'s backend hands out', T, async () => {
  // The site's backend, as docs/embedding.md describes it: it creates a session on the
  // server (here: the real codepane-server) and answers the widget's POST with it.
  const context = await web.browser.newContext();
  const p = await context.newPage();
  const handed = [];
  const opened = [];
  p.on('websocket', (ws) => opened.push(ws.url()));
  await p.route('**/api/codepane-session', async (route) => {
    assert.equal(route.request().method(), 'POST');
    const s = await createSession(web.server);
    handed.push(s);
    await route.fulfill({ json: { sessionId: s.sessionId, linkUrl: s.linkUrl, wsUrl: s.wsUrl, token: s.token, toolList: s.toolList } });
  });
  // The widget goes into a page the server serves (a page playwright fulfils itself gets
  // no WebSocket through Chromium).
  await p.goto(`${web.server.base}/embed-demo.html`);
  await p.waitForFunction(() => window.demoReady === true);
  await p.evaluate(() => {
    const w = document.createElement('code-pane');
    w.id = 'w';
    w.setAttribute('language', 'python');
    w.setAttribute('session-endpoint', '/api/codepane-session');
    w.textContent = 'print("handed out")';
    document.body.prepend(w);
  });
  const done = await runWidget(p, '#w', () => p.click('#w [part=run]'));
  assert.equal(done.status, 'finished', JSON.stringify(done.result));
  assert.equal(done.result.logs.stdout.join(''), 'handed out\n');
  assert.equal(handed.length, 1);
  assert.equal(opened.length, 1);
  assert.equal(new URL(opened[0]).pathname, new URL(handed[0].wsUrl).pathname);
  await context.close();
});

test('a widget follows the reader\'s colour scheme, also after it moved in the page', T, async () => {
  const theme = () => page.evaluate(() => document.querySelector('#readonly').shadowRoot.querySelector('.cp').dataset.theme);
  try {
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.waitForFunction(() => document.querySelector('#readonly').shadowRoot.querySelector('.cp').dataset.theme === 'dark');
    // Moving an element disconnects and connects it again.
    await page.evaluate(() => { const w = document.querySelector('#readonly'); w.parentNode.insertBefore(w, w.parentNode.firstChild); });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.waitForFunction(() => document.querySelector('#readonly').shadowRoot.querySelector('.cp').dataset.theme === 'light', null, { timeout: 5000 });
    assert.equal(await theme(), 'light');
  } finally {
    await page.emulateMedia({ colorScheme: 'light' });
  }
});
