// The web tests' common parts: a real codepane-server (every language in kernels, as
// `npm start` runs it) serving the site ./build.sh web assembled (build/web), and Debian's
// Chromium driven by playwright-core. The element's parts are in its open shadow root,
// which playwright's CSS locators pierce: `#pane [part=run]`.
import { chromium } from 'playwright-core';

import { ROOT, expectNoSandboxProcesses, startServer } from '../server/harness.mjs';

export const CHROMIUM = '/usr/bin/chromium';
export const SITE = `${ROOT}build/web`;
const DEFENCES = /violates the following Content Security Policy|The frame attempting navigation of the top-level window is sandboxed/;

/**
 * Start a server and a browser; `ctx.page()` opens a page that records console problems.
 * @param {{uidBase: number, args?: string[], site?: string}} opts (site: the web root,
 *   default the built site, build/web)
 */
export async function startWeb({ uidBase, args = [], site = SITE }) {
  // A slot per language's kernel and a spare, so that a page using all four languages in
  // one session never evicts one of them (the default is a slot per core).
  const server = await startServer({ uidBase, args: ['--kernels', 'all', '--max-runs', '6', '--web-root', site, ...args] });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const problems = [];
  const ctx = {
    server, browser, problems, uidBase,
    /** A fresh page (own context: own localStorage, clipboard allowed). */
    async page(path = '/', { width = 1100, height = 900, colorScheme = 'light' } = {}) {
      const context = await browser.newContext({ viewport: { width, height }, colorScheme, acceptDownloads: true });
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.base });
      const page = await context.newPage();
      page.on('console', (m) => {
        // The output frame's CSP refusing a script of untrusted HTML, and its sandbox
        // refusing to navigate the page, are the defences working (the attack tests).
        if (m.type() === 'error' && !DEFENCES.test(m.text())) problems.push(`console.error: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.stack ?? e}`));
      await page.goto(`${server.base}${path}`);
      return page;
    },
    async stop() {
      await browser.close();
      await server.stop();
      await expectNoSandboxProcesses(3000, uidBase);
    },
  };
  return ctx;
}

/**
 * Start a run of the widget `sel` with `trigger` (a function that clicks or types) and
 * resolve with what the widget reported: {status, result, ms} from its codepane-done
 * event, `ms` after the trigger.
 */
export async function runWidget(page, sel, trigger) {
  await page.evaluate((s) => {
    const el = document.querySelector(s);
    window.__done = new Promise((resolve) => {
      const t0 = performance.now();
      el.addEventListener('codepane-done', (e) => resolve({ ...e.detail, ms: performance.now() - t0 }), { once: true });
    });
  }, sel);
  await trigger();
  return page.evaluate(() => window.__done);
}

/** The text of the widget's output pane. */
export const outputText = (page, sel) => page.locator(`${sel} [part=output]`).innerText();

/** Replace the widget's code by typing it into the editor (it loads on focus). */
export async function typeCode(page, sel, code) {
  // The plain source until the editor is there (a click on it loads the editor).
  await page.locator(`${sel} .cm-content, ${sel} [part=source]`).first().click();
  const content = page.locator(`${sel} .cm-content`);
  await content.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  // insertText, as a paste would: the editor's auto-indent and bracket closing would
  // otherwise rewrite multi-line code as it is typed.
  if (code.includes('\n')) await page.keyboard.insertText(code);
  else await page.keyboard.type(code);
}
