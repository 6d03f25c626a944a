// bench/browser.mjs: warm time to first output measured inside a browser page, codepane's
// WASM client against a Jupyter kernel WebSocket. Imported by bench/run.mjs; not a test.
//
// Debian's Chromium (/usr/bin/chromium, headless), driven by playwright-core as in
// tests/browser/client.test.mjs. Each side gets its own page, a real page of its own server
// (so nothing crosses origins, and Chromium's local-network checks see a loopback page
// talking to loopback; a document playwright makes up with page.route counts as public
// and has its WebSockets to 127.0.0.1 blocked). Each page runs its whole loop inside one
// page.evaluate and times with the page's performance.now(), so no DevTools round trip
// falls inside a sample.
//
//   codepane  on the playground (codepane-server's web root, build/web): import { connect }
//             from '/dist/code-pane.mjs' (the browser entry, which the playground has loaded
//             already), connect({ server: location.origin }); per language
//             one warm-up run, then `runs` runs of print('x') / console.log('x') with
//             { streamBeta: true, onStdout }. Sample: from calling code.run() to the first
//             onStdout call (what a page sees; the client calls it from a microtask after it
//             has handled the frame). Each run is awaited before the next.
//   Jupyter   on Jupyter Server's /login page (plain HTML, no CSP beyond frame-ancestors;
//             its /api pages have default-src 'none', which would block the socket). The
//             kernel is created and deleted from Node (POST/DELETE /api/kernels with
//             `Authorization: token …`, so no _xsrf cookie is needed); the page opens
//             /api/kernels/<id>/channels?session_id=…&token=… and sends execute_request
//             messages (messaging protocol 5.3, JSON text frames). Sample: from ws.send() to
//             the first iopub `stream` (stdout) message whose parent is ours. The next request
//             goes out only after both its execute_reply and its iopub status idle.
// Samples are `gapMs` apart (default 10 ms, as bench/kernels.mjs), in milliseconds. After
// each warm-up the page waits `settleMs` (default 1500 ms) before the first sample, so that
// what the warm-up set off is over: a session that adopts codepane-server's pooled kernel
// makes the server start a replacement, which competes for the CPU for a few hundred ms
// (without the pause the first python sample took 22-58 ms on 2 cores, the rest ~2 ms).
import { randomUUID } from 'node:crypto';

import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu'];
const DEFAULT_GAP_MS = 10;
const DEFAULT_SETTLE_MS = 1500;
/** A warm-up run may wait for a kernel to start; a measured run should take milliseconds. */
const WARMUP_TIMEOUT_MS = 60000;
const RUN_TIMEOUT_MS = 20000;
const HTTP_TIMEOUT_MS = 60000;

const trimBase = (url) => url.replace(/\/+$/, '');

/** A page at `url`, loaded; page errors and console errors are collected. */
async function openPage(browser, url) {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console.error: ${m.text()}`); });
  const res = await page.goto(url, { waitUntil: 'load' });
  if (!res?.ok()) throw new Error(`${url.replace(/token=[^&]*/, 'token=…')}: HTTP ${res?.status()}`);
  return { page, problems };
}

/** Run `fn` in the page; a failure names the side and whatever the page logged. */
async function inPage({ page, problems }, what, fn, arg) {
  try {
    return await page.evaluate(fn, arg);
  } catch (e) {
    throw new Error(`${what}: ${e.message.split('\n')[0]}${problems.length ? ` (page: ${problems.join('; ')})` : ''}`);
  }
}

// ---- codepane ------------------------------------------------------------------------------

/** In the page: the codepane loop. Returns { python: number[], javascript: number[] }. */
async function codepaneLoop({ runs, gapMs, settleMs, warmupMs, runMs }) {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const within = (p, ms, what) => Promise.race([p,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms))]);
  const { connect } = await import('/dist/code-pane.mjs');
  const session = await connect({ server: location.origin });
  const out = {};
  try {
    for (const [lang, code] of [['python', "print('x')"], ['javascript', "console.log('x')"]]) {
      const samples = [];
      for (let i = 0; i <= runs; i++) { // i = 0 is the warm-up
        await sleep(gapMs);
        let first = null;
        const chunks = [];
        const onStdout = (chunk) => {
          if (first === null) first = performance.now() - t0;
          chunks.push(chunk);
        };
        const t0 = performance.now();
        const r = await within(session.code.run(code, lang, 60, { streamBeta: true, onStdout }),
          i === 0 ? warmupMs : runMs, `${lang} run ${i}`);
        if (!r.success || chunks.join('') !== 'x\n' || first === null) {
          throw new Error(`${lang} run ${i}: success ${r.success}, stdout ${JSON.stringify(chunks)}, ` +
            `error ${JSON.stringify(r.errorMessage)}`);
        }
        if (i > 0) samples.push(first);
        else await sleep(settleMs);
      }
      out[lang] = samples;
    }
  } finally {
    await session.close();
  }
  return out;
}

// ---- Jupyter -------------------------------------------------------------------------------

async function jupyterFetch(base, token, method, path, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `token ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`Jupyter ${method} ${path}: ${res.status} ${text.slice(0, 200)}`);
  return text ? JSON.parse(text) : null;
}

/** In the page: the Jupyter loop on one kernel's channels socket. Returns number[]. */
async function jupyterLoop({ wsUrl, session, runs, gapMs, settleMs, warmupMs, runMs }) {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const hex = () => Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
  const ws = new WebSocket(wsUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`WebSocket ${wsUrl.replace(/token=[^&]*/, 'token=…')} failed to open`));
  });
  const waiters = new Map(); // parent msg_id -> handler(message, receivedAt)
  let closed = null;
  ws.onmessage = (ev) => {
    const at = performance.now();
    if (typeof ev.data !== 'string') return; // binary frames carry buffers, never a stream message
    const m = JSON.parse(ev.data);
    waiters.get(m.parent_header?.msg_id)?.(m, at);
  };
  ws.onclose = (ev) => {
    closed = `closed: code ${ev.code} ${ev.reason}`;
    for (const h of waiters.values()) h(null, 0);
  };

  const execute = (code, timeoutMs, what) => new Promise((resolve, reject) => {
    const msgId = hex();
    let t0 = 0, first = null, text = '', idle = false, reply = null;
    const done = (fn, v) => { clearTimeout(timer); waiters.delete(msgId); fn(v); };
    const timer = setTimeout(() => done(reject, new Error(`${what}: no reply and idle within ${timeoutMs} ms ` +
      `(stdout so far ${JSON.stringify(text)})`)), timeoutMs);
    waiters.set(msgId, (m, at) => {
      if (!m) return done(reject, new Error(`${what}: socket ${closed}`));
      const type = m.header?.msg_type ?? m.msg_type;
      if (m.channel === 'iopub' && type === 'stream' && m.content?.name === 'stdout') {
        if (first === null) first = at - t0;
        text += m.content.text;
      } else if (m.channel === 'iopub' && type === 'status' && m.content?.execution_state === 'idle') {
        idle = true;
      } else if (m.channel === 'shell' && type === 'execute_reply') {
        reply = m.content;
      }
      if (idle && reply) done(resolve, { first, text, status: reply.status, reply });
    });
    const msg = {
      header: { msg_id: msgId, username: 'bench', session, msg_type: 'execute_request', version: '5.3', date: new Date().toISOString() },
      parent_header: {}, metadata: {},
      content: { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true },
      channel: 'shell', buffers: [],
    };
    const frame = JSON.stringify(msg);
    t0 = performance.now();
    ws.send(frame);
  });

  const samples = [];
  try {
    for (let i = 0; i <= runs; i++) { // i = 0 is the warm-up
      await sleep(gapMs);
      const r = await execute("print('x')", i === 0 ? warmupMs : runMs, `Jupyter run ${i}`);
      if (r.status !== 'ok' || r.text !== 'x\n' || r.first === null) {
        throw new Error(`Jupyter run ${i}: status ${r.status}, stdout ${JSON.stringify(r.text)}` +
          (r.reply?.ename ? `, ${r.reply.ename}: ${r.reply.evalue}` : ''));
      }
      if (i > 0) samples.push(r.first);
      else await sleep(settleMs);
    }
  } finally {
    ws.onclose = null;
    ws.close();
  }
  return samples;
}

async function jupyterFirstOutput(browser, { base, token }, opts) {
  base = trimBase(base);
  const kernel = await jupyterFetch(base, token, 'POST', '/api/kernels', { name: 'python3' });
  try {
    const session = randomUUID();
    const wsUrl = `${base.replace(/^http/, 'ws')}/api/kernels/${encodeURIComponent(kernel.id)}/channels` +
      `?session_id=${encodeURIComponent(session)}&token=${encodeURIComponent(token)}`;
    const page = await openPage(browser, `${base}/login`);
    try {
      return await inPage(page, 'Jupyter in the browser', jupyterLoop, { wsUrl, session, ...opts });
    } finally {
      await page.page.close();
    }
  } finally {
    await jupyterFetch(base, token, 'DELETE', `/api/kernels/${encodeURIComponent(kernel.id)}`);
  }
}

// ---- the workload --------------------------------------------------------------------------

/**
 * Warm time to first output inside headless Chromium, in ms per sample.
 * @param {{ codepaneBase: string, jupyter: { base: string, token: string }, runs?: number, gapMs?: number,
 *   settleMs?: number }} options
 *   codepaneBase: a codepane-server (with --web-root build/web and kernels for python and
 *   javascript); jupyter: a Jupyter Server's base URL and token.
 * @returns {Promise<{ codepane: { python: number[], javascript: number[] }, jupyter: { python: number[] } }>}
 */
export async function browserFirstOutput({
  codepaneBase, jupyter, runs = 30, gapMs = DEFAULT_GAP_MS, settleMs = DEFAULT_SETTLE_MS,
}) {
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`runs must be a positive integer, got ${runs}`);
  const opts = { runs, gapMs, settleMs, warmupMs: WARMUP_TIMEOUT_MS, runMs: RUN_TIMEOUT_MS };
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const page = await openPage(browser, `${trimBase(codepaneBase)}/`);
    let codepane;
    try {
      codepane = await inPage(page, 'codepane in the browser', codepaneLoop, opts);
    } finally {
      await page.page.close();
    }
    const python = await jupyterFirstOutput(browser, jupyter, opts);
    return { codepane, jupyter: { python } };
  } finally {
    await browser.close();
  }
}
