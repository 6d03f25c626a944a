// The control API and the non-streaming routes (spec §1, §3, §4, §12 items 1–6) against
// the real codepane-server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { callTool, createSession, post, startServer } from './harness.mjs';

const API_KEY = 'k-test-0123456789abcdef';
let server, open;

before(async () => {
  [server, open] = await Promise.all([
    startServer({ args: ['--api-key', API_KEY] }),
    startServer({ uidBase: 61500 }), // no API key: loopback callers only
  ]);
});
after(async () => { await Promise.all([server?.stop(), open?.stop()]); });

describe('control API', () => {
  test('createSession answers the SDK envelope with linkUrl, wsUrl, token and a toolList string', async () => {
    const r = await post(`${server.base}/mcp/createSession?imageId=agb-code-space-1&sdkStats=%7B%7D`, {},
      { authorization: `Bearer ${API_KEY}` });
    assert.equal(r.status, 200);
    assert.equal(r.json.success, true);
    assert.equal(typeof r.json.requestId, 'string');
    const d = r.json.data;
    assert.match(d.sessionId, /^s-[0-9a-f]{24}$/);
    assert.match(d.token, /^t-[0-9a-f]{32}$/);
    assert.equal(d.linkUrl, `${server.base}/link/${d.sessionId}`);
    assert.equal(d.wsUrl, `ws://127.0.0.1:${server.port}/ws/${d.sessionId}`);
    assert.equal(typeof d.toolList, 'string');
    const tools = JSON.parse(d.toolList);
    assert.equal(tools.find((t) => t.name === 'run_code').server, 'wuying_codespace');
  });

  test('every answer tells keep-alive clients the idle timeout (Keep-Alive: timeout=2)', async () => {
    // Without the hint Node's fetch (4 s) and http agent (5 s) reuse a socket the server
    // closes after 2 s idle, and a POST sent on it fails.
    const api = await post(`${open.base}/mcp/createSession`, {});
    assert.equal(api.headers.get('keep-alive'), 'timeout=2');
    const page = await fetch(`${open.base}/`);
    await page.arrayBuffer();
    assert.equal(page.headers.get('keep-alive'), 'timeout=2');
    const missing = await fetch(`${open.base}/no-such-file.html`);
    await missing.arrayBuffer();
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('keep-alive'), 'timeout=2');
  });

  test('a wrong or missing API key is refused with 401 and no session', async () => {
    for (const headers of [{}, { authorization: 'Bearer nope' }, { authorization: API_KEY }]) {
      const r = await post(`${server.base}/mcp/createSession`, {}, headers);
      assert.equal(r.status, 401);
      assert.equal(r.json.success, false);
      assert.equal(r.json.data?.sessionId, undefined);
    }
  });

  test('without an API key, loopback callers may create sessions', async () => {
    const s = await createSession(open);
    assert.match(s.sessionId, /^s-/);
  });

  test('getSession returns the same data plus status; getSessionInfo and release follow the SDK poll', async () => {
    const auth = { authorization: `Bearer ${API_KEY}` };
    const s = await createSession(server, { apiKey: API_KEY });
    const g = await post(`${server.base}/mcp/getSession`, { sessionId: s.sessionId }, auth);
    assert.equal(g.status, 200);
    assert.equal(g.json.data.sessionId, s.sessionId);
    assert.equal(g.json.data.token, s.token);
    assert.equal(g.json.data.linkUrl, s.linkUrl);
    assert.equal(g.json.data.wsUrl, s.wsUrl);
    assert.equal(g.json.data.status, 'RUNNING');
    const k = await post(`${server.base}/mcp/refreshSessionIdleTime?sessionId=${s.sessionId}`, {}, auth);
    assert.equal(k.status, 200);
    assert.equal(k.json.success, true);
    const rel = await post(`${server.base}/mcp/releaseSessionAsync`, { sessionId: s.sessionId }, auth);
    assert.equal(rel.json.success, true);
    const info = await post(`${server.base}/mcp/getSessionInfo`, { sessionId: s.sessionId }, auth);
    assert.ok(info.json.data?.status === 'FINISH' || info.status === 404, info.text);
    // A released session's token no longer runs code.
    const run = await callTool(s, 'print(1)', 'python');
    assert.notEqual(run.status, 200);
  });

  test('unknown session ids are NotFound', async () => {
    const r = await post(`${server.base}/mcp/getSession`, { sessionId: 's-000000000000000000000000' },
      { authorization: `Bearer ${API_KEY}` });
    assert.equal(r.status, 404);
    assert.equal(r.json.success, false);
    assert.equal(r.json.code, 'InvalidSession.NotFound');
  });
});

describe('LinkUrl route: POST {linkUrl}/callTool', () => {
  let s;
  before(async () => { s = await createSession(server, { apiKey: API_KEY }); });

  test('answers data as a JSON string holding the MCP result with the new-format payload', async () => {
    const r = await callTool(s, "print('hello')", 'python');
    assert.equal(r.status, 200);
    assert.equal(typeof r.raw.json.data, 'string');
    assert.equal(r.isError, false);
    assert.deepEqual(r.payload.stdout, ['hello\n']);
    assert.deepEqual(r.payload.stderr, []);
    assert.deepEqual(r.payload.result, []);
    assert.equal(r.payload.executionError, undefined);
    assert.equal(typeof r.payload.execution_time, 'number');
    assert.equal(Number.isInteger(r.payload.execution_count), true);
  });

  test('all four languages run; execution_count counts per session and language', async () => {
    const fresh = await createSession(server, { apiKey: API_KEY });
    const a = await callTool(fresh, 'print(1)', 'python');
    const b = await callTool(fresh, 'print(2)', 'python3');
    const c = await callTool(fresh, 'console.log(3)', 'js');
    const d = await callTool(fresh, 'System.out.println(4);', 'java');
    const e = await callTool(fresh, 'cat(5)', 'R');
    assert.deepEqual([a, b, c, d, e].map((x) => x.payload.stdout.join('')), ['1\n', '2\n', '3\n', '4\n', '5']);
    assert.deepEqual([a, b, c, d, e].map((x) => x.payload.execution_count), [1, 2, 1, 1, 1]);
  });

  test('a failing run carries executionError and stays a tool success (isError false)', async () => {
    const r = await callTool(s, 'undefined_variable + 1', 'python');
    assert.equal(r.isError, false);
    assert.equal(r.payload.executionError, "NameError: name 'undefined_variable' is not defined");
  });

  test('an unsupported language is a tool error with the SDK message', async () => {
    const r = await callTool(s, 'puts 1', 'ruby');
    assert.equal(r.status, 200);
    assert.equal(r.isError, true);
    assert.equal(r.text, 'Unsupported language: ruby. Supported: java, javascript, python, r');
  });

  test('a wrong token is refused with 401', async () => {
    const r = await callTool({ ...s, token: 't-00000000000000000000000000000000' }, 'print(1)', 'python');
    assert.equal(r.status, 401);
  });

  test('timeout_s is validated: 0, negative and strings are refused; over the max is clamped', async () => {
    for (const t of [0, -5, '5']) {
      const r = await callTool(s, 'print(1)', 'python', t);
      assert.equal(r.isError === true || r.status === 400, true, `timeout ${t}: ${r.raw.text}`);
      assert.match(r.text ?? r.raw.text, /timeout_s/);
    }
    const big = await callTool(s, 'print(1)', 'python', 2 ** 63);
    assert.deepEqual(big.payload.stdout, ['1\n']);
  });
});

describe('gateway route: POST /mcp?autoGenSession=false', () => {
  test('runs with the account key and answers the gateway envelope', async () => {
    const s = await createSession(server, { apiKey: API_KEY });
    const r = await post(`${server.base}/mcp?autoGenSession=false`, {
      args: JSON.stringify({ code: "print('gw')", language: 'python', timeout_s: 60 }),
      sessionId: s.sessionId, name: 'run_code',
    }, { authorization: `Bearer ${API_KEY}` });
    assert.equal(r.status, 200);
    assert.equal(r.json.success, true);
    assert.equal(r.json.data.isError, false);
    const payload = JSON.parse(r.json.data.content[0].text);
    assert.deepEqual(payload.stdout, ['gw\n']);
  });

  test('without the key it is refused', async () => {
    const r = await post(`${server.base}/mcp?autoGenSession=false`, { args: '{}', sessionId: 'x', name: 'run_code' });
    assert.equal(r.status, 401);
    assert.equal(r.json.success, false);
  });
});

describe('static files', () => {
  test('the site ./build.sh web assembled (build/web) is the default web root: the playground at /, the element and its wasm', async () => {
    const res = await fetch(`${open.base}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    assert.match(await res.text(), /<title>codepane playground<\/title>/);
    const element = await fetch(`${open.base}/dist/code-pane.mjs`);
    assert.equal(element.status, 200);
    assert.equal(element.headers.get('content-type'), 'text/javascript; charset=utf-8');
    const wasm = await fetch(`${open.base}/dist/core.wasm`);
    assert.equal(wasm.headers.get('content-type'), 'application/wasm');
    assert.ok(WebAssembly.validate(new Uint8Array(await wasm.arrayBuffer())));
  });

  test('a missing file is 404 and a traversal never leaves the web root', async () => {
    assert.equal((await fetch(`${open.base}/nope.html`)).status, 404);
    for (const path of ['/../package.json', '/%2e%2e/package.json', '/..%2fpackage.json']) {
      const res = await fetch(`${open.base}${path}`);
      assert.notEqual(res.status, 200, path);
      assert.doesNotMatch(await res.text(), /"name": "codepane"/, path);
    }
  });
});
