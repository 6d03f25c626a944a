// The non-streaming run_code path end to end: JS API → WASM core → XHR (npm xhr2) → a
// fixture server playing recorded AGB replies (tests/client/fixtures/*.json) → back to an
// EnhancedCodeExecutionResult. Every payload form of spec §5 and every route outcome of
// §3 (LinkUrl) and §4 (gateway) is checked against the exact result the SDKs would give
// (the expectations of tests/core/test_payload.c, restated as fixtures), and the request
// the client sent is checked byte for byte against §2–§4.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { connect, resultText } from '../../dist/node.mjs';
import { startServer } from '../server/harness.mjs';
import { loadFixture, startFixtureServer } from './fixture_server.mjs';

const TOOLS = JSON.stringify([{ name: 'run_code', server: 'wuying_codespace' }]);
const LINK_ID = /^link-(\d{13})-(\d{9})$/;
const CODE = "print('x')";

let srv;
before(async () => { srv = await startFixtureServer(); });
after(async () => { await srv?.close(); });

/** Adopt a session whose run_code goes the LinkUrl route (§2). */
function linkSession(extra = {}) {
  return connect({ sessionId: 's-1', linkUrl: `${srv.base}/link/s-1/`, wsUrl: srv.wsUrl(), token: 't-1', toolList: TOOLS, ...extra });
}

/** Adopt a session whose run_code goes the gateway route (no linkUrl route). */
function gatewaySession(extra = {}) {
  return connect({ sessionId: 's-1', endpoint: srv.base, apiKey: 'k-1', ...extra });
}

/** Run once on a fresh session with `reply` scripted; returns the result and the one request. */
async function runOnce(session, reply, { code = CODE, language = 'python', timeoutS } = {}) {
  srv.requests.length = 0;
  srv.reply = reply;
  const s = await session;
  try {
    const t0 = Date.now();
    const result = await (timeoutS === undefined ? s.code.run(code, language) : s.code.run(code, language, timeoutS));
    const t1 = Date.now();
    assert.equal(srv.requests.length, 1, 'exactly one HTTP request per run');
    return { result, req: srv.requests[0], t0, t1 };
  } finally {
    await s.close();
  }
}

/** §3: POST {linkUrl minus one trailing '/'}/callTool, two headers, the exact body. */
function checkLinkRequest(req, { t0, t1, path = '/link/s-1/callTool', code = CODE, language = 'python', timeout_s = 60, server = 'wuying_codespace', token = 't-1' }) {
  assert.equal(req.method, 'POST');
  assert.equal(req.url, path);
  assert.equal(req.headers['content-type'], 'application/json');
  assert.equal(req.headers['x-access-token'], token);
  assert.equal(req.headers.authorization, undefined, 'no API key on the LinkUrl route');
  const body = JSON.parse(req.body);
  assert.deepEqual(Object.keys(body), ['args', 'server', 'requestId', 'tool', 'token']);
  assert.deepEqual(Object.keys(body.args), ['code', 'language', 'timeout_s']);
  const m = LINK_ID.exec(body.requestId);
  assert.ok(m, `requestId ${body.requestId} is link-<13 digits>-<9 digits>`);
  const ms = Number(m[1]);
  assert.ok(ms >= t0 && ms <= t1, `requestId carries the send time in ms (${ms} in [${t0}, ${t1}])`);
  assert.deepStrictEqual(body, { args: { code, language, timeout_s }, server, requestId: body.requestId, tool: 'run_code', token });
  assert.match(req.body, new RegExp(`"timeout_s":${timeout_s}[,}]`), 'timeout_s is an integer literal on the wire');
  return body;
}

/** §4: POST {endpoint}/mcp?autoGenSession=false, Bearer key, args as a JSON string. */
function checkGatewayRequest(req, { code = CODE, language = 'python', timeout_s = 60, sessionId = 's-1', key = 'k-1' } = {}) {
  assert.equal(req.method, 'POST');
  assert.equal(req.url, '/mcp?autoGenSession=false');
  assert.equal(req.headers.authorization, `Bearer ${key}`);
  assert.equal(req.headers['content-type'], 'application/json');
  assert.equal(req.headers['x-access-token'], undefined, 'no session token on the gateway route');
  const body = JSON.parse(req.body);
  assert.deepEqual(Object.keys(body), ['args', 'sessionId', 'name']);
  assert.equal(typeof body.args, 'string', 'args is serialised as a JSON string');
  assert.deepStrictEqual(JSON.parse(body.args), { code, language, timeout_s });
  assert.deepEqual(Object.keys(JSON.parse(body.args)), ['code', 'language', 'timeout_s']);
  assert.deepStrictEqual(body, { args: body.args, sessionId, name: 'run_code' });
}

/** The fixture's expected result, with the client-generated requestId filled in. */
function expectedOf(fx, requestId) {
  return JSON.parse(JSON.stringify(fx.expected).replaceAll('"$requestId"', JSON.stringify(requestId)));
}

const FIXTURES = readdirSync(new URL('./fixtures/', import.meta.url))
  .filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();

describe('LinkUrl route: every payload form (§5) and route outcome (§3), from recorded replies', () => {
  for (const name of FIXTURES) {
    const fx = loadFixture(name);
    if (fx.route !== 'linkurl') continue;
    test(`${name}: ${fx.description}`, async () => {
      const { result, req, t0, t1 } = await runOnce(linkSession(), fx.reply);
      const body = checkLinkRequest(req, { t0, t1 });
      assert.deepStrictEqual(result, expectedOf(fx, body.requestId));
    });
  }

  test('new format: resultText gives the main result, else the first result, else stdout (§8.1)', async () => {
    let { result } = await runOnce(linkSession(), loadFixture('new_format_every_mime_key').reply);
    assert.equal(resultText(result), '2');
    ({ result } = await runOnce(linkSession(), loadFixture('new_format_print').reply));
    assert.equal(resultText(result), 'x\n');
    ({ result } = await runOnce(linkSession(), loadFixture('new_format_invalid_json_item').reply));
    assert.equal(resultText(result), 'not json {');
  });

  test('connection refused: "HTTP request failed: <transport error>", requestId is the link id', async () => {
    const probe = net.createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const { port } = probe.address();
    probe.close();
    await once(probe, 'close');
    const s = await connect({ sessionId: 's-1', linkUrl: `http://127.0.0.1:${port}/link/s-1`, token: 't-1', toolList: TOOLS });
    try {
      const result = await s.code.run(CODE, 'python');
      assert.match(result.errorMessage, /^HTTP request failed: ./);
      assert.match(result.requestId, LINK_ID);
      assert.deepStrictEqual(result, {
        requestId: result.requestId, success: false, executionTime: 0, logs: { stdout: [], stderr: [] }, results: [],
        errorMessage: result.errorMessage,
      });
    } finally {
      await s.close();
    }
  });
});

describe('LinkUrl route: the request (§2, §3, §7)', () => {
  const okReply = loadFixture('new_format_print').reply;

  test('canonical language, integer timeout_s (default 60, fractions rounded up)', async () => {
    const cases = [
      ['python', undefined, 'python', 60], ['PYTHON', 120, 'python', 120], ['python3', 2.5, 'python', 3],
      [' Py ', 0.1, 'python', 1], ['js', 60, 'javascript', 60], ['Node', 1, 'javascript', 1],
      ['nodejs', 600, 'javascript', 600], ['Java', 30, 'java', 30], ['R', 59.0001, 'r', 60],
    ];
    for (const [language, timeoutS, canonical, seconds] of cases) {
      const { req, t0, t1 } = await runOnce(linkSession(), okReply, { language, timeoutS });
      checkLinkRequest(req, { t0, t1, language: canonical, timeout_s: seconds });
    }
  });

  test('code goes through untouched: whitespace, quotes, non-ASCII, empty', async () => {
    for (const code of ['  x = "é ✓ 😀"\n\tprint(x)  \n', '', 'print("\\u0000")']) {
      const { req, t0, t1 } = await runOnce(linkSession(), okReply, { code });
      checkLinkRequest(req, { t0, t1, code });
    }
  });

  test('exactly one trailing "/" of linkUrl is removed', async () => {
    for (const [linkUrl, path] of [['/link/s-1', '/link/s-1/callTool'], ['/link/s-1/', '/link/s-1/callTool'], ['/link/s-1//', '/link/s-1//callTool']]) {
      const { req, t0, t1 } = await runOnce(linkSession({ linkUrl: `${srv.base}${linkUrl}` }), okReply);
      checkLinkRequest(req, { t0, t1, path });
    }
  });

  test('each run has a fresh requestId, and the result carries it', async () => {
    const ids = new Set();
    for (let i = 0; i < 3; i++) {
      const { result, req } = await runOnce(linkSession(), okReply);
      const { requestId } = JSON.parse(req.body);
      assert.equal(result.requestId, requestId);
      ids.add(requestId);
    }
    assert.equal(ids.size, 3);
  });

  test('an unsupported language fails locally, before any request (§7)', async () => {
    srv.requests.length = 0;
    const s = await linkSession();
    try {
      const result = await s.code.run(CODE, 'ruby');
      assert.deepStrictEqual(result, {
        requestId: '', success: false, executionTime: 0, logs: { stdout: [], stderr: [] }, results: [],
        errorMessage: 'Unsupported language: ruby. Supported: java, javascript, python, r',
      });
      assert.equal(srv.requests.length, 0);
    } finally {
      await s.close();
    }
  });
});

describe('Route choice (§2, §1.3)', () => {
  const linkReply = loadFixture('new_format_print').reply;
  const gwReply = loadFixture('gw_success').reply;
  const reply = (req) => (req.url.startsWith('/mcp') ? gwReply : linkReply);

  async function route(options) {
    const { req } = await runOnce(connect({ sessionId: 's-1', ...options }), reply);
    if (req.url === '/mcp?autoGenSession=false') {
      checkGatewayRequest(req);
      return { route: 'gateway' };
    }
    return { route: 'linkurl', server: JSON.parse(req.body).server, url: req.url };
  }

  test('linkUrl + token + run_code server → LinkUrl, with toolList as JSON text or as an array', async () => {
    const base = { linkUrl: `${srv.base}/link/s-1`, token: 't-1', endpoint: srv.base, apiKey: 'k-1' };
    assert.deepEqual(await route({ ...base, toolList: TOOLS }), { route: 'linkurl', server: 'wuying_codespace', url: '/link/s-1/callTool' });
    assert.deepEqual(await route({ ...base, toolList: [{ name: 'run_code', server: 'srv_array' }] }), { route: 'linkurl', server: 'srv_array', url: '/link/s-1/callTool' });
  });

  test('toolList fallbacks: Name, serverName, Server; the first run_code entry wins', async () => {
    const base = { linkUrl: `${srv.base}/link/s-1`, token: 't-1' };
    const cases = [
      [[{ Name: 'run_code', Server: 'srv_pascal' }], 'srv_pascal'],
      [[{ name: 'run_code', serverName: 'srv_sn', Server: 'srv_pascal' }], 'srv_sn'],
      [[{ name: 'run_code', server: 'srv_1', serverName: 'srv_sn' }], 'srv_1'],
      [[{ name: 'read_file', server: 'fs' }, { name: 'run_code', server: 'code_a' }, { name: 'run_code', server: 'code_b' }], 'code_a'],
      [JSON.stringify([{ name: 'execute_command', server: 'x' }, { Name: 'run_code', serverName: 'srv_text' }]), 'srv_text'],
    ];
    for (const [toolList, server] of cases) assert.deepEqual(await route({ ...base, toolList }), { route: 'linkurl', server, url: '/link/s-1/callTool' });
  });

  test('no run_code server, no token or no linkUrl → gateway', async () => {
    const gw = { endpoint: srv.base, apiKey: 'k-1' };
    const link = `${srv.base}/link/s-1`;
    const cases = [
      { linkUrl: link, token: 't-1' },                                                     // no toolList
      { linkUrl: link, token: 't-1', toolList: '[]' },
      { linkUrl: link, token: 't-1', toolList: [{ name: 'read_file', server: 'fs' }] },    // no run_code
      { linkUrl: link, token: 't-1', toolList: [{ name: 'run_code', server: '' }] },       // empty server
      { linkUrl: link, token: 't-1', toolList: [{ name: 'run_code' }] },                   // no server
      { linkUrl: link, token: 't-1', toolList: 'not json' },                               // unparseable → empty
      { linkUrl: link, token: '', toolList: TOOLS },                                       // no token
      { linkUrl: '', token: 't-1', toolList: TOOLS },                                      // no linkUrl
    ];
    for (const c of cases) assert.deepEqual(await route({ ...gw, ...c }), { route: 'gateway' }, JSON.stringify(c));
  });

  test('neither route: a local failure, no request', async () => {
    srv.requests.length = 0;
    const s = await connect({ sessionId: 's-1', linkUrl: `${srv.base}/link/s-1`, token: 't-1' });
    try {
      const result = await s.code.run(CODE, 'python');
      assert.equal(result.success, false);
      assert.equal(result.requestId, '');
      assert.match(result.errorMessage, /^Failed to run code: /);
      assert.equal(srv.requests.length, 0);
    } finally {
      await s.close();
    }
  });
});

describe('Gateway route (§4), from recorded replies', () => {
  for (const name of FIXTURES) {
    const fx = loadFixture(name);
    if (fx.route !== 'gateway') continue;
    test(`${name}: ${fx.description}`, async () => {
      const { result, req } = await runOnce(gatewaySession(), fx.reply);
      checkGatewayRequest(req);
      assert.deepStrictEqual(result, fx.expected);
    });
  }

  test('connection refused: "Failed to call MCP tool run_code: <transport text>", no requestId', async () => {
    // Spec §4: an exception of the HTTP client (no answer at all) becomes
    // "Failed to call MCP tool run_code: <text>"; the text is the client's own.
    const probe = net.createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const { port } = probe.address();
    probe.close();
    await once(probe, 'close');
    const s = await connect({ sessionId: 's-1', endpoint: `http://127.0.0.1:${port}`, apiKey: 'k-1' });
    try {
      const result = await s.code.run(CODE, 'python');
      assert.deepStrictEqual(result, {
        requestId: '', success: false, executionTime: 0, logs: { stdout: [], stderr: [] }, results: [],
        errorMessage: 'Failed to call MCP tool run_code: network error (server unreachable, or the request was refused by CORS)',
      });
    } finally {
      await s.close();
    }
  });

  test('the request: args JSON text with canonical language and integer timeout_s', async () => {
    const reply = loadFixture('gw_success').reply;
    for (const [language, timeoutS, canonical, seconds] of [['PY', 2.5, 'python', 3], ['node', undefined, 'javascript', 60], ['r', 90, 'r', 90]]) {
      const { req } = await runOnce(gatewaySession(), reply, { language, timeoutS });
      checkGatewayRequest(req, { language: canonical, timeout_s: seconds });
      assert.match(JSON.parse(req.body).args, new RegExp(`"timeout_s":${seconds}[,}]`));
    }
  });
});

describe('A real codepane-server', () => {
  test("print('x') gives the new-format fixture's result", async () => {
    const server = await startServer({ uidBase: 64448 });
    try {
      const s = await connect({ server: server.base });
      try {
        const result = await s.code.run(CODE, 'python');
        const expected = expectedOf(loadFixture('new_format_print'), result.requestId);
        assert.match(result.requestId, LINK_ID);
        assert.equal(typeof result.executionTime, 'number');
        assert.ok(result.executionTime >= 0 && result.executionTime < 30, `executionTime ${result.executionTime}`);
        assert.deepStrictEqual(result, { ...expected, executionTime: result.executionTime });
        assert.equal(resultText(result), 'x\n');
      } finally {
        await s.close();
      }
    } finally {
      await server.stop();
    }
  });
});
