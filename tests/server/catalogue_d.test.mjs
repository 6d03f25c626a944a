// Attack catalogue, group D: protocol, server and input validation (shared/spec/sandbox.md
// §2 D1–D18), against the real codepane-server. Malformed input goes through raw sockets
// (harness rawHttp / rawWs / wsFrame), because fetch and npm `ws` refuse to send it. The
// server runs with an API key, two run slots and a queue of two, an extra allowed origin
// and a web root holding a symlink that points out of it. After every test the harness
// checks P1, P2, P3 and P5; the last test checks P4. D18 kills a server of its own.
//
// Client IPs: the per-IP caps and the auth-failure rate limit count by address, so the
// floods come from other loopback addresses (127.0.0.2 and up) than the test's own
// well-behaved client (127.0.0.1) — all of it stays on loopback.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { after, describe, test } from 'node:test';

import {
  closePayload, createSession, expectNoSandboxProcesses, health, invocationId, openWs, post, procStats, rawHttp, resetPeak,
  rawWs, runCgroups, cgroupParents, startServer, streamRun, useCatalogueServer, wsFrame,
  CATALOGUE_ARGS, expectP1, inKernel, kernelArgs, releaseSession,
} from './harness.mjs';

/** Every test gets a deadline, so a server that never answers fails instead of hanging. */
const T = { timeout: 60_000 };

const UID_BASE = 61500;
const GOOD_ORIGIN = 'http://good.example';
const MAX_BODY = 2 << 20;
const MAX_CODE = 1 << 20;

// The web root for D12: an index, a page in a subdirectory, and symlinks pointing out.
const WEB_PARENT = mkdtempSync(`${tmpdir()}/codepane-d12-`);
const WEB_ROOT = `${WEB_PARENT}/web`;
mkdirSync(`${WEB_ROOT}/sub`, { recursive: true });
writeFileSync(`${WEB_ROOT}/index.html`, '<h1>codepane test root</h1>\n');
writeFileSync(`${WEB_ROOT}/sub/page.html`, '<p>sub page</p>\n');
after(() => rmSync(WEB_PARENT, { recursive: true, force: true }));

const ctx = useCatalogueServer({
  uidBase: UID_BASE,
  args: ['--max-runs', '2', '--max-queue', '2', '--max-code-bytes', String(MAX_CODE), '--max-body-bytes', String(MAX_BODY),
    '--allow-origin', GOOD_ORIGIN, '--web-root', WEB_ROOT],
  serverArgs: (canaries) => {
    // Plant the outside secret next to the web root, and links to it inside.
    writeFileSync(`${WEB_PARENT}/outside-secret.txt`, `${canaries.fileSecret}\n`);
    symlinkSync(`${WEB_PARENT}/outside-secret.txt`, `${WEB_ROOT}/escape.txt`);
    symlinkSync(WEB_PARENT, `${WEB_ROOT}/escape-dir`);
    return ['--api-key', canaries.argSecret];
  },
  apiKey: (canaries) => canaries.argSecret,
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const wsPath = () => `/ws/${ctx.session.sessionId}`;
const auth = () => ({ 'X-Access-Token': ctx.session.token });

/** An AGB run_code request frame as JSON text; `params` overrides fields. */
function request(id, params = {}, data = {}) {
  return JSON.stringify({
    invocationId: id, source: 'SDK', target: 'wuying_codespace',
    data: { method: 'run_code', mode: 'stream', params: { language: 'python', timeoutS: 5, code: 'print(1)', ...params }, ...data },
  });
}

/** Send raw text on the file's socket and collect the frames of invocation `id` until its
 * end or error frame, or until `ms` passed (then `timedOut`). */
function sendRaw(text, id, ms = 5000, ws = ctx.ws) {
  return new Promise((resolve) => {
    const frames = [];
    const done = (timedOut) => { ws.off('message', on); clearTimeout(t); resolve({ frames, timedOut, last: frames.at(-1)?.data }); };
    const on = (buf) => {
      const f = JSON.parse(buf.toString());
      if (f.invocationId !== id) return;
      frames.push(f);
      if (f.data.phase === 'end' || f.data.phase === 'error' || typeof f.data.error === 'string') done(false);
    };
    const t = setTimeout(() => done(true), ms);
    ws.on('message', on);
    ws.send(text);
  });
}

/** A raw WebSocket on the session, upgraded with the token header. */
async function rawSession(opts = {}) {
  const c = await rawWs(ctx.server, wsPath(), { headers: { ...auth(), ...opts.headers }, ...opts });
  assert.equal(c.status, 101, c.response);
  return c;
}

describe('D1–D3 payload size and shape', () => {
  test('D1 a 10 MB WebSocket message is refused with close 1009 without being buffered', T, async () => {
    const ws = await openWs(ctx.session);
    await sleep(100);
    resetPeak(ctx.server.pid);
    const before = procStats(ctx.server.pid).rssBytes;
    const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
    ws.on('error', () => {});
    ws.send(request(invocationId(), { code: `# ${'x'.repeat(10 << 20)}` }));
    assert.equal(await closed, 1009);
    // The peak, not the RSS afterwards: a buffer freed right after the refusal still counts.
    const grew = procStats(ctx.server.pid).peakBytes - before;
    assert.ok(grew < 2 * MAX_BODY, `server peak RSS grew by ${(grew / 2 ** 20).toFixed(1)} MiB for a ${MAX_BODY >> 20} MiB cap`);
  });

  test('D1 a frame header declaring 1 GiB is refused with close 1009 at once, before its payload arrives', T, async () => {
    const c = await rawSession();
    try {
      resetPeak(ctx.server.pid);
      const before = procStats(ctx.server.pid).rssBytes;
      c.send(wsFrame({ opcode: 1, payload: '{"invocationId":', len: 1n << 30n }));
      assert.equal(await c.waitClose(1000), 1009, 'close 1009 within 1 s');
      assert.ok(procStats(ctx.server.pid).peakBytes - before < 2 * MAX_BODY);
    } finally {
      c.destroy();
    }
  });

  test('D1 code over --max-code-bytes (but under the message cap) gets one error frame; the socket stays open', T, async () => {
    const id = invocationId();
    const r = await sendRaw(request(id, { code: `# ${'y'.repeat(MAX_CODE + 10)}` }), id);
    assert.equal(r.frames.length, 1);
    assert.equal(r.last.phase, 'error');
    assert.match(r.last.error, /code/i);
    assert.equal(ctx.ws.readyState, 1);
  });

  test('D1 HTTP: a 10 MB callTool body is 413; a declared 1 GiB body is refused before it is read', T, async () => {
    const head = (len) => [
      `POST /link/${ctx.session.sessionId}/callTool HTTP/1.1`, `Host: 127.0.0.1:${ctx.server.port}`,
      `X-Access-Token: ${ctx.session.token}`, 'Content-Type: application/json', `Content-Length: ${len}`, '', '',
    ].join('\r\n');
    const body = JSON.stringify({
      args: { code: `# ${'z'.repeat(10 << 20)}`, language: 'python', timeout_s: 5 }, server: 'wuying_codespace',
      requestId: 'link-1-000000001', tool: 'run_code', token: ctx.session.token,
    });
    resetPeak(ctx.server.pid);
    const rss0 = procStats(ctx.server.pid).rssBytes;
    const big = await rawHttp(ctx.server, head(Buffer.byteLength(body)), { body });
    assert.ok(procStats(ctx.server.pid).peakBytes - rss0 < 2 * MAX_BODY, 'the body was not buffered');
    // The server answers 413 from the declared length and closes without reading the body;
    // the kernel may then reset the connection before the client reads the answer. Either
    // way the body was refused unread (the RSS checks below and P3 show the server is fine).
    assert.ok(big.status === 413 || (big.status === 0 && big.closed), `status ${big.status}`);
    const before = procStats(ctx.server.pid).rssBytes;
    const t0 = performance.now();
    const r = await rawHttp(ctx.server, head(2 ** 30), { body: '{"args":' });
    assert.equal(r.status, 413);
    assert.ok(performance.now() - t0 < 1000);
    assert.ok(procStats(ctx.server.pid).rssBytes - before < 2 * MAX_BODY);
    const control = await rawHttp(ctx.server, [
      'POST /mcp/createSession HTTP/1.1', `Host: 127.0.0.1:${ctx.server.port}`, `authorization: Bearer ${ctx.apiKey}`,
      'Content-Type: application/json', `Content-Length: ${100 << 10}`, '', '',
    ].join('\r\n'), { body: `{"labels":"${'x'.repeat((100 << 10) - 13)}"}` });
    assert.equal(control.status, 413);
  });

  test('D2 a 200 KB snippet runs whole; code never travels in argv', T, async () => {
    const r = await ctx.run(`x = """${'a'.repeat(200000)}"""\nprint(len(x))`);
    assert.equal(r.out, '200000\n');
    const marker = `MARKER${Date.now()}`;
    const argv = await ctx.run(`# ${marker}\nimport sys\nprint(open('/proc/self/cmdline','rb').read().replace(b'\\0', b' ').decode())`);
    assert.ok(!argv.out.includes(marker), argv.out);
  });

  test('D2 NUL in the source is refused up front with one error frame, in any language', T, async () => {
    // The server refuses a frame carrying U+0000 anywhere (a C string would cut the code
    // there); the run never starts. A definite, sane answer for D2's NUL case.
    for (const [language, code] of [['javascript', 'console.log("a\u0000b".length)'], ['python', 'print(1)\u0000']]) {
      const id = invocationId();
      const r = await sendRaw(request(id, { language, code }), id);
      assert.equal(r.frames.length, 1, language);
      assert.equal(r.last.phase, 'error');
      assert.equal(r.last.error, 'NUL characters (\\u0000) are not accepted in a frame');
    }
  });

  test('D3 a million-deep JSON array is ignored like any frame without an id; the server and the socket survive', T, async () => {
    const ws = await openWs(ctx.session);
    const other = [];
    ws.on('message', (b) => other.push(b.toString()));
    ws.send('['.repeat(1_000_000));
    ws.send(`{"invocationId":"deep","data":${'['.repeat(100000)}${']'.repeat(100000)}}`);
    const r = await new Promise((resolve) => {
      const id = invocationId();
      const frames = [];
      ws.on('message', (b) => { const f = JSON.parse(b); if (f.invocationId === id) { frames.push(f); if (f.data.phase === 'end') resolve(frames); } });
      ws.send(request(id));
    });
    assert.equal(r.at(-1).data.status, 'finished');
    assert.equal((await health(ctx.server)).status, 200);
    ws.close();
  });

  test('D3 a request nested deeper than the parser allows is dropped like any unparseable frame; the socket keeps working', T, async () => {
    // The parser stops at CP_JSON_MAX_DEPTH (128) before it could read the id, so there
    // is no invocation to answer: the frame counts as garbage (ws.h) and is ignored.
    const id = invocationId();
    const deep = `${'['.repeat(500)}${']'.repeat(500)}`;
    const text = request(id).replace('"code":"print(1)"', `"code":"print(1)","extra":${deep}`);
    const r = await sendRaw(text, id, 1000);
    assert.equal(r.timedOut, true);
    assert.equal(r.frames.length, 0);
    assert.equal((await ctx.run('print(3)')).out, '3\n');
  });

  test('D3 huge numbers, duplicate keys and a lone surrogate are answered definitely', T, async () => {
    const big = invocationId();
    const r1 = await sendRaw(request(big).replace('"timeoutS":5', '"timeoutS":1e400'), big);
    assert.equal(r1.last.phase, 'error');
    assert.match(r1.last.error, /timeoutS/);
    const dup = invocationId();
    const r2 = await sendRaw(request(dup).replace('"code":"print(1)"', '"code":"print(1)","code":"print(2)"'), dup);
    assert.equal(r2.last.phase, 'end');
    assert.deepEqual(r2.frames.filter((f) => f.data.eventType === 'stdout').map((f) => f.data.chunk), ['1\n']);
    // A lone surrogate escape: cJSON refuses the text, so the frame is dropped unanswered
    // like any unparseable one (no id could be read); a valid pair runs.
    const sur = invocationId();
    const r3 = await sendRaw(request(sur).replace('"code":"print(1)"', '"code":"print(\'\\ud800\')"'), sur, 1000);
    assert.equal(r3.timedOut, true);
    const pair = invocationId();
    const r4 = await sendRaw(request(pair).replace('"code":"print(1)"', '"code":"print(\'\\ud83d\\ude00\')"'), pair);
    assert.deepEqual(r4.frames.filter((f) => f.data.eventType === 'stdout').map((f) => f.data.chunk), ['😀\n']);
  });

  test('D3 HTTP: deeply nested and malformed JSON bodies get a tool-level parse error', T, async () => {
    // The LinkUrl route reports request errors the way the SDKs read them: HTTP 200 with
    // result.isError and the reason as content[0].text.
    const h = { 'x-access-token': ctx.session.token };
    for (const [body, message] of [
      ['['.repeat(100000), 'the request body is not valid JSON (JSON nested too deeply)'],
      ['{"args":', 'the request body is not valid JSON (invalid JSON)'],
      ['{"args":{"code":"\\ud800"}}', 'the request body is not valid JSON (invalid JSON)'],
      ['null', 'the request body must be a JSON object'],
      ['"str"', 'the request body must be a JSON object'],
    ]) {
      const r = await post(`${ctx.session.linkUrl}/callTool`, body, h);
      assert.equal(r.status, 200, body.slice(0, 20));
      const data = JSON.parse(r.json.data);
      assert.equal(data.result.isError, true);
      assert.equal(data.result.content[0].text, message);
    }
  });
});

describe('D4 malformed WebSocket frames fail the connection (RFC 6455)', () => {
  const text = (s) => Buffer.from(s);
  const cases = [
    ['an unmasked client frame', wsFrame({ payload: text('{"type":"ping"}'), mask: false }), [1002]],
    ['RSV1 set without an extension', wsFrame({ payload: text('{}'), rsv: 4 }), [1002]],
    ['an unknown opcode 0x3', wsFrame({ opcode: 3, payload: text('x') }), [1002]],
    ['an unknown control opcode 0xB', wsFrame({ opcode: 0xb, payload: text('x') }), [1002]],
    ['a fragmented ping', wsFrame({ opcode: 9, payload: text('x'), fin: false }), [1002]],
    ['a ping of 126 bytes', wsFrame({ opcode: 9, payload: Buffer.alloc(126, 1) }), [1002]],
    ['a continuation without a start', wsFrame({ opcode: 0, payload: text('x') }), [1002]],
    ['a 64-bit length with the MSB set', wsFrame({ payload: text('x'), len: 1n << 63n }), [1002, 1009]],
    ['a close frame with a 1-byte body', wsFrame({ opcode: 8, payload: Buffer.from([3]) }), [1002]],
    ['a close frame with code 1005', wsFrame({ opcode: 8, payload: closePayload(1005) }), [1002]],
    ['a close frame with code 999', wsFrame({ opcode: 8, payload: closePayload(999) }), [1002]],
    ['invalid UTF-8 in a text frame', wsFrame({ payload: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) }), [1007]],
    ['invalid UTF-8 in a close reason', wsFrame({ opcode: 8, payload: closePayload(1000, Buffer.from([0xff])) }), [1007, 1002]],
    ['a new text frame inside a fragmented message', Buffer.concat([
      wsFrame({ opcode: 1, payload: text('{"a":'), fin: false }), wsFrame({ opcode: 1, payload: text('1}') })]), [1002]],
  ];
  for (const [label, bytes, codes] of cases) {
    test(`${label}: the server fails the connection (${codes.join('/')}) and stays healthy`, T, async () => {
      const c = await rawSession();
      try {
        c.send(bytes);
        const code = await c.waitClose(2000);
        assert.notEqual(code, null, 'the server sent a close frame or dropped the connection within 2 s');
        if (code !== 0) {
          assert.ok(codes.includes(code), `close code ${code}`);
          // Closing handshake: after our answering close frame the TCP connection ends.
          c.send(wsFrame({ opcode: 8, payload: closePayload(code) }));
          assert.equal(await c.waitClosed(2000), true, 'TCP closed after the closing handshake');
        }
      } finally {
        c.destroy();
      }
      assert.equal((await health(ctx.server)).status, 200);
    });
  }

  test('a valid close frame is answered with the same code and the connection ends', T, async () => {
    const c = await rawSession();
    c.send(wsFrame({ opcode: 8, payload: closePayload(1000, 'bye') }));
    assert.equal(await c.waitClosed(2000), true);
    assert.equal(c.closeCode, 1000);
  });

  test('a ping control frame gets a pong with the same payload', T, async () => {
    const c = await rawSession();
    c.send(wsFrame({ opcode: 9, payload: text('hello') }));
    await sleep(300);
    const pong = c.frames.find((f) => f.opcode === 10);
    assert.ok(pong, 'pong received');
    assert.equal(pong.payload.toString(), 'hello');
    c.destroy();
  });
});

describe('D5 bad handshakes are HTTP errors, never 101', () => {
  const cases = [
    ['no Sec-WebSocket-Key', { headers: { 'Sec-WebSocket-Key': null } }, 400],
    ['Sec-WebSocket-Version 8', { headers: { 'Sec-WebSocket-Version': '8' } }, 426],
    ['POST instead of GET', { method: 'POST' }, 400],
    ['no Sec-WebSocket-Version', { headers: { 'Sec-WebSocket-Version': null } }, 426],
    ['no Upgrade header', { headers: { Upgrade: null, Connection: null } }, 426],
    // civetweb answers an oversized request head with 400 (not 431): an error all the same.
    ['a 16 KiB header', { headers: { 'X-Pad': 'p'.repeat(16 << 10) } }, 400],
    ['an unknown session', { path: '/ws/s-000000000000000000000000' }, 404],
    ['no token', { headers: { 'X-Access-Token': null } }, 401],
  ];
  for (const [label, opt, status] of cases) {
    test(`${label}: ${status}`, T, async () => {
      const headers = { ...auth(), ...opt.headers };
      const c = await rawWs(ctx.server, opt.path ?? wsPath(), { headers, method: opt.method });
      try {
        assert.equal(c.status, status, c.response || '(the server closed the connection without an HTTP response)');
        if (status === 426) assert.match(c.response, /\r\nSec-WebSocket-Version: 13/i);
      } finally {
        c.destroy();
      }
    });
  }
});

test('D6 slowloris: 100 dripping header sockets and a stalled frame do not delay a normal client; the server drops them at its deadline', T, async () => {
  // Its own server: the attack may tie up worker threads, which must not leak into the
  // other tests' timings.
  // With kernels the normal client's session adopts a pooled kernel, as a first run on a
  // kernel server does: s0's run before the attack has the pool filled.
  await withServer(UID_BASE + 128, ['--max-runs', '2', '--max-queue', '2'], async (srv) => {
    const s0 = await createSession(srv);
    if (inKernel('python')) {
      const w = await openWs(s0);
      assert.equal((await streamRun(w, 'print(0)', 'python').done).end.status, 'finished');
      w.close();
    }
    const slow = [];
    const started = Date.now();
    for (let i = 0; i < 100; i++) {
      const s = rawSocket(srv, '127.0.0.2');
      await new Promise((resolve) => { s.once('connect', resolve); s.once('error', resolve); });
      s.write(`GET /health HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\nX-Slow: `);
      slow.push(s);
    }
    const drip = setInterval(() => { for (const s of slow) if (!s.destroyed) s.write('a'); }, 1000);
    let stalled;
    try {
      // The normal client: /health, a new session, its WebSocket and a run.
      const t0 = performance.now();
      const lap = [];
      const h = await fetch(`${srv.base}/health`);
      lap.push(performance.now() - t0);
      const s = await createSession(srv);
      lap.push(performance.now() - t0);
      const ws = await openWs(s);
      lap.push(performance.now() - t0);
      const r = await streamRun(ws, 'print("normal")', 'python').done;
      lap.push(performance.now() - t0);
      const totalMs = lap.at(-1);
      ws.close();
      // A WebSocket that sends a frame header and then nothing.
      stalled = await rawWs(srv, `/ws/${s0.sessionId}`, { headers: { 'X-Access-Token': s0.token }, localAddress: '127.0.0.3' });
      stalled.send(wsFrame({ payload: Buffer.from('{"invocationId":"x"}') }).subarray(0, 3));
      // The request deadline (CP_SRV_REQUEST_TIMEOUT_MS, 10 s) must end every request head
      // that never completes, even one that keeps trickling: allow two deadlines (a socket
      // may wait for a worker first) and a little.
      while (slow.some((x) => !x.closedByPeer) && Date.now() - started < 23000) await sleep(200);
      const open = slow.filter((x) => !x.closedByPeer).length;
      assert.equal(h.status, 200);
      assert.equal(r.end.status, 'finished');
      const [healthAt, sessionAt, wsAt] = lap.map((x) => x.toFixed(0));
      const problems = [];
      if (totalMs >= 1000) {
        problems.push(`the normal client waited: /health done at ${healthAt} ms, createSession at ${sessionAt} ms, ` +
          `WebSocket open at ${wsAt} ms, run ended at ${totalMs.toFixed(0)} ms`);
      }
      if (open) problems.push(`${open} of 100 slow header sockets still open 23 s after the attack began`);
      assert.deepEqual(problems, []);
    } finally {
      clearInterval(drip);
      for (const s of slow) s.destroy();
      stalled?.destroy();
    }
  }, { pool: 'python=1' });
});

describe('D7–D8 load and disconnects', () => {
  test('D7 eight runs on a server with 2 slots and a queue of 2: at most 2 sandboxes, 4 runs, 4 answered busy', T, async () => {
    let peak = 0;
    const sampler = setInterval(() => { peak = Math.max(peak, runCgroups(ctx.server).filter((c) => c.path.includes('/memory/')).length); }, 20);
    const runs = Array.from({ length: 8 }, (_, i) => streamRun(ctx.ws, `import time\ntime.sleep(1)\nprint(${i})`, 'python', { timeoutS: 10 }));
    const results = await Promise.all(runs.map((r) => r.done));
    clearInterval(sampler);
    const finished = results.filter((r) => r.end?.status === 'finished');
    const busy = results.filter((r) => r.failure);
    assert.equal(finished.length, 4);
    assert.equal(busy.length, 4);
    for (const b of busy) assert.match(b.failure.error, /busy/i);
    assert.ok(peak <= 2, `peak ${peak} run cgroups`);
    assert.ok(peak >= 1);
  });

  test('D7 the same from eight sessions at once: at most 2 sandboxes (kernels included), 4 runs, 4 busy', T, async () => {
    // With kernels the runs of one session are cells of one kernel, so the case above can
    // no longer fill the slots: here each run is another session's, and kernels (which
    // hold a slot while they live) must still fit in the 2 slots — idle ones make room.
    const sessions = await Promise.all(Array.from({ length: 8 }, () => ctx.otherSession()));
    try {
      let peak = 0;
      const sampler = setInterval(() => { peak = Math.max(peak, runCgroups(ctx.server).filter((c) => c.path.includes('/memory/')).length); }, 20);
      const runs = sessions.map((o, i) => streamRun(o.ws, `import time\ntime.sleep(1)\nprint(${i})`, 'python', { timeoutS: 10 }));
      const results = await Promise.all(runs.map((r) => r.done));
      clearInterval(sampler);
      const finished = results.filter((r) => r.end?.status === 'finished');
      const busy = results.filter((r) => r.failure);
      assert.equal(finished.length, 4, JSON.stringify(results.map((r) => r.end ?? r.failure)));
      assert.equal(busy.length, 4);
      for (const b of busy) assert.match(b.failure.error, /busy/i);
      assert.ok(peak <= 2, `peak ${peak} run cgroups`);
      assert.ok(peak >= 1);
    } finally {
      for (const o of sessions) await ctx.release(o);
    }
  });

  test('D7 connections past the per-IP cap are refused with 429; every one gets an answer', T, async () => {
    const conns = [];
    for (let i = 0; i < 40; i++) conns.push(await rawWs(ctx.server, wsPath(), { headers: auth(), localAddress: '127.0.0.4' }));
    const statuses = conns.map((c) => c.status);
    for (const c of conns) c.destroy();
    assert.equal(statuses.filter((s) => s === 101).length, 32, statuses.join(' '));
    assert.equal(statuses.filter((s) => s === 429).length, 8, statuses.join(' '));
    await sleep(300);
    const again = await rawWs(ctx.server, wsPath(), { headers: auth(), localAddress: '127.0.0.4' });
    assert.equal(again.status, 101, 'a closed connection frees its place');
    again.destroy();
  });

  test('D8 1000 abrupt TCP connects, 20 disconnects mid-run, 800 send-and-vanish clients: runs killed, nothing left (no zombie either)', T, async () => {
    // Its own server (2 slots, queue of 2), so whatever the storm leaves behind is its own.
    // With kernels every run is a cell of the one session's kernel: a vanished client's
    // cell is interrupted (or dropped from the queue), the kernel stays until the session
    // is released, and then nothing is left.
    const base = UID_BASE + 192;
    const kernel = inKernel('python');
    await withServer(base, ['--max-runs', '2', '--max-queue', '2'], async (srv) => {
      const s = await createSession(srv);
      const session = (localAddress) => rawWs(srv, `/ws/${s.sessionId}`, { headers: { 'X-Access-Token': s.token }, localAddress });
      const fds0 = procStats(srv.pid).fds;
      for (let i = 0; i < 1000; i += 50) {
        await Promise.all(Array.from({ length: 50 }, () => new Promise((resolve) => {
          const c = rawSocket(srv, '127.0.0.5');
          c.once('connect', () => { c.destroy(); resolve(); });
          c.once('error', resolve);
        })));
      }
      for (let i = 0; i < 20; i++) {
        const c = await session('127.0.0.5');
        assert.equal(c.status, 101);
        c.send(wsFrame({ payload: Buffer.from(request(invocationId(), { code: "import time\nprint('started', flush=True)\ntime.sleep(30)", timeoutS: 20 })) }));
        const until = Date.now() + 5000;
        while (!c.frames.some((f) => f.text?.includes('started')) && Date.now() < until) await sleep(10);
        assert.ok(c.frames.some((f) => f.text?.includes('started')), 'the run started');
        c.destroy();
        // (In a kernel: the next round's cell starting within 5 s shows that this one stopped.)
        if (kernel) await expectP1(srv, { maxKernels: 1, ms: 1000 });
        else await expectNoSandboxProcesses(1000, base);
      }
      // Bursts of 20 clients that each send a run and vanish at once: 800 in all (a
      // cancel racing the spawn of a sandbox is what this is after).
      for (let i = 0; i < 800; i += 20) {
        await Promise.all(Array.from({ length: 20 }, async () => {
          const c = await session('127.0.0.5');
          c.send(wsFrame({ payload: Buffer.from(request(invocationId(), { code: 'import time\ntime.sleep(30)', timeoutS: 20 })) }));
          c.destroy();
        }));
      }
      if (kernel) {
        // No cell of a vanished client is left running or queued: the session's next cell
        // runs at once; then the session ends, and its kernel with it.
        const ws = await openWs(s);
        const after = await Promise.race([streamRun(ws, "print('after the storm')", 'python').done, sleep(5000).then(() => null)]);
        ws.close();
        assert.deepEqual(after?.stdout, ['after the storm\n'], 'the kernel is idle after the storm');
        await releaseSession(srv, s);
      }
      await expectNoSandboxProcesses(2000, base);
      // The last burst's clients have only just vanished: the server may still be killing
      // a run it was spawning for one of them (its cgroup exists for a few ms without a
      // process). P1's allowance (2 s) applies to the cgroups as to the processes.
      const until = Date.now() + 2000;
      while (runCgroups(srv).length && Date.now() < until) await sleep(20);
      assert.deepEqual(runCgroups(srv), []);
      const h = await health(srv);
      assert.equal(h.body.running, 0);
      assert.equal(h.body.queued, 0);
      await sleep(500);
      assert.ok(procStats(srv.pid).fds <= fds0 + 4, `server fds ${fds0} -> ${procStats(srv.pid).fds}`);
    });
  });
});

describe('D9–D11 parameters and source text', () => {
  // timeoutS as raw JSON text → 'run' (prints 1) or 'refused' (one error frame naming timeoutS).
  const table = [
    ['0', 'refused'], ['-1', 'refused'], ['-0', 'refused'], ['1e309', 'refused'], ['"5"', 'refused'], ['true', 'refused'],
    ['[]', 'refused'], ['{}', 'refused'], ['5.5', 'run'], ['9223372036854775808', 'run'], ['null', 'run'], [undefined, 'run'],
  ];
  for (const [raw, want] of table) {
    test(`D9 WebSocket timeoutS ${raw ?? '(missing)'}: ${want}`, T, async () => {
      const id = invocationId();
      let text = request(id);
      text = raw === undefined ? text.replace(',"timeoutS":5', '') : text.replace('"timeoutS":5', `"timeoutS":${raw}`);
      const r = await sendRaw(text, id, 8000);
      if (want === 'refused') {
        assert.equal(r.last.phase, 'error');
        assert.match(r.last.error, /timeoutS/);
      } else {
        assert.equal(r.last.phase, 'end', JSON.stringify(r.last));
        assert.deepEqual(r.frames.filter((f) => f.data.eventType === 'stdout').map((f) => f.data.chunk), ['1\n']);
      }
    });
  }

  test('D9 WebSocket timeoutS NaN is not JSON: the frame is ignored and the socket keeps working', T, async () => {
    const id = invocationId();
    const r = await sendRaw(request(id).replace('"timeoutS":5', '"timeoutS":NaN'), id, 1000);
    assert.equal(r.timedOut, true);
    assert.equal((await ctx.run('print(2)')).out, '2\n');
  });

  test('D9 HTTP timeout_s: the same table through callTool', T, async () => {
    for (const [raw, want] of table) {
      const args = raw === undefined ? '{"code":"print(1)","language":"python"}' : `{"code":"print(1)","language":"python","timeout_s":${raw}}`;
      const body = `{"args":${args},"server":"wuying_codespace","requestId":"link-1-000000001","tool":"run_code","token":"${ctx.session.token}"}`;
      const r = await post(`${ctx.session.linkUrl}/callTool`, body, { 'x-access-token': ctx.session.token });
      const data = typeof r.json?.data === 'string' ? JSON.parse(r.json.data) : r.json?.data;
      const text = data?.result?.content?.[0]?.text ?? r.text;
      if (want === 'refused') {
        assert.ok(r.status === 400 || data?.result?.isError === true, `${raw}: ${r.status} ${r.text}`);
        assert.match(text, /timeout_s/, String(raw));
      } else {
        assert.equal(r.status, 200, `${raw}: ${r.text}`);
        assert.deepEqual(JSON.parse(text).stdout, ['1\n'], String(raw));
      }
    }
  });

  test('D10 odd language values are refused by table lookup; no sandbox is started', T, async () => {
    const long = 'x'.repeat(10240);
    const unsupported = (shown) => `Unsupported language: ${shown}. Supported: java, javascript, python, r`;
    const cases = [
      ['../../bin/sh', unsupported('../../bin/sh')],
      ['python;id', unsupported('python;id')],
      ['', unsupported('')],
      ['pyth\u043en', unsupported('pyth\u043en')], // Cyrillic o
      [long, unsupported(`${'x'.repeat(64)}...`)], // the echo is cut (CP_LANG_ECHO_MAX)
      [null, unsupported('')],
      [undefined, unsupported('')],
      [123, unsupported('123')],
      [['python'], unsupported('["python"]')],
      [{ name: 'python' }, unsupported('{"name":"python"}')],
      ['python\u0000', 'NUL characters (\\u0000) are not accepted in a frame'],
    ];
    // Each spawn takes the next run number (cgroup "run-<slot>-<n>"): the number of a run
    // before and after the refusals proves that none of them spawned anything. In a
    // kernel both probes are cells of the session's kernel: the same sandbox (cgroup) and
    // consecutive execution counts prove that nothing was spawned, and nothing reached the
    // kernel either.
    const kernel = inKernel('python');
    const runNumber = async () => {
      const run = streamRun(ctx.ws, 'import time\ntime.sleep(0.3)', 'python', { timeoutS: 5 });
      let names = [];
      const until = Date.now() + 3000;
      while (!names.length && Date.now() < until) { names = runCgroups(ctx.server).map((c) => c.name); await sleep(5); }
      const r = await run.done;
      if (kernel) return { cgroups: [...new Set(names)].sort().join(' '), count: r.end.executionCount };
      return Number(/^run-\d+-(\d+)$/.exec(names[0])[1]);
    };
    const first = await runNumber();
    for (const [language, message] of cases) {
      const id = invocationId();
      const r = await sendRaw(request(id, { language }), id);
      assert.equal(r.frames.length, 1, JSON.stringify(language));
      assert.equal(r.last.phase, 'error', JSON.stringify(language));
      assert.equal(r.last.error, message);
    }
    if (kernel) {
      assert.deepEqual(await runNumber(), { cgroups: first.cgroups, count: first.count + 1 }, 'no sandbox, no cell between the probes');
    } else {
      assert.equal(await runNumber(), first + 1, 'no run was spawned between the two probes');
    }
  });

  // Run by hand, python3 and node skip a leading BOM, javac refuses it ("illegal
  // character: '\ufeff'") and Rscript refuses it too; codepane must match python, node and
  // javac, and its R runner skips the BOM (friendlier than Rscript, pinned as is).
  for (const [language, bom, crlf] of [
    ['python', '\uFEFFprint(1)', 'print(1)\r\nprint(2)\r\n'],
    ['javascript', '\uFEFFconsole.log(1)', 'console.log(1)\r\nconsole.log(2)\r\n'],
    ['r', '\uFEFFcat(1, "\\n")', 'cat(1, "\\n")\r\ncat(2, "\\n")\r\n'],
  ]) {
    test(`D11 ${language}: a leading BOM is skipped and CRLF line ends work, as in a file run by hand`, T, async () => {
      const b = await ctx.run(bom, language, { timeoutS: 10 });
      assert.equal(b.out.replace(/ \n/g, '\n'), '1\n', JSON.stringify(b.errors));
      const c = await ctx.run(crlf, language, { timeoutS: 10 });
      assert.equal(c.out.replace(/ \n/g, '\n'), '1\n2\n');
    });
  }

  test('D11 java: a leading BOM is a compile error exactly as javac gives it by hand; CRLF works', T, async () => {
    const b = await ctx.run('\uFEFFSystem.out.println(1);', 'java', { timeoutS: 10 });
    assert.equal(b.errors.length, 1);
    assert.equal(b.errors[0].code, 'CompilationError');
    // In a kernel the compiler is JShell's, on a snippet (no Main.java): the same error,
    // as jshell gives it by hand.
    if (inKernel('java')) assert.match(b.errors[0].message, /^illegal character: '\\ufeff'(\n|$)/);
    else assert.equal(b.errors[0].message, "Main.java:1: error: illegal character: '\\ufeff'");
    assert.equal(b.end.status, 'failed');
    const c = await ctx.run('System.out.println(1);\r\nSystem.out.println(2);\r\n', 'java', { timeoutS: 10 });
    assert.equal(c.out, '1\n2\n');
  });

  test('D11 RTL overrides pass through; non-BMP identifiers work where the language allows them', T, async () => {
    const rtl = await ctx.run("print('a\\u202eb\\u2066c')");
    assert.equal(rtl.out, 'a\u202eb\u2066c\n');
    const py = await ctx.run('𝑥 = 5\nprint(x)'); // NFKC folds 𝑥 to x (PEP 3131)
    assert.equal(py.out, '5\n');
    const js = await ctx.run('const 𝑥 = 6; console.log(𝑥)', 'javascript');
    assert.equal(js.out, '6\n');
    const java = await ctx.run('int 𝑥 = 7; System.out.println(𝑥);', 'java', { timeoutS: 10 });
    assert.equal(java.out, '7\n');
  });
});

describe('D12–D15 HTTP surface', () => {
  test('D12 the web root serves its own files', T, async () => {
    const index = await rawHttp(ctx.server, `GET / HTTP/1.1\r\nHost: 127.0.0.1:${ctx.server.port}\r\nConnection: close\r\n\r\n`);
    assert.equal(index.status, 200);
    assert.match(index.body, /codepane test root/);
    const sub = await rawHttp(ctx.server, `GET /sub/page.html HTTP/1.1\r\nHost: 127.0.0.1:${ctx.server.port}\r\nConnection: close\r\n\r\n`);
    assert.equal(sub.status, 200);
  });

  test('D12 40 traversal payloads never return a file from outside the web root', T, async () => {
    const payloads = [
      '/../etc/passwd', '/../../../../etc/passwd', '/%2e%2e/etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/..%2fetc%2fpasswd',
      '/%2e%2e%2f%2e%2e%2fetc%2fpasswd', '/%252e%252e/etc/passwd', '/..%5c..%5cetc%5cpasswd', '/..\\..\\etc\\passwd',
      '/index.html%00.txt', '/%00', '/sub/../../etc/passwd', '/sub/%2e%2e/%2e%2e/etc/passwd', '/%c0%ae%c0%ae/etc/passwd',
      '/%c0%af..%c0%afetc/passwd', '/%e0%80%ae%e0%80%ae/etc/passwd', '//etc/passwd', '///etc/passwd', '/./../etc/passwd',
      '/sub/./../../etc/passwd', '/.%2e/etc/passwd', '/%2e./etc/passwd', '/..;/etc/passwd', '/escape.txt', '/escape-dir/outside-secret.txt',
      '/escape-dir/web/index.html', '/sub/../escape.txt', '/%65scape.txt', '/ESCAPE.TXT', '/escape.txt/', '/escape.txt%20',
      '/../web/../outside-secret.txt', '/../outside-secret.txt', '/%2e%2e/outside-secret.txt', '/..%2foutside-secret.txt',
      `/${'a/'.repeat(20000)}index.html`, `/${'../'.repeat(1000)}etc/passwd`, '/proc/self/environ', '/%2fetc%2fpasswd',
      'http://127.0.0.1/../etc/passwd',
    ];
    assert.equal(payloads.length, 40);
    for (const p of payloads) {
      const r = await rawHttp(ctx.server, `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1:${ctx.server.port}\r\nConnection: close\r\n\r\n`);
      assert.ok([400, 403, 404, 414, 431].includes(r.status) || r.closed && r.status === 0, `${p.slice(0, 60)}: ${r.status}`);
      assert.ok(!r.body.includes(ctx.canaries.fileSecret), `${p.slice(0, 60)} returned the outside secret`);
      assert.ok(!r.body.includes('root:x:0:0'), `${p.slice(0, 60)} returned /etc/passwd`);
    }
  });

  test('D13 WebSocket Origin checks: a foreign or null Origin is 403; none, our own and an allowed one upgrade', T, async () => {
    for (const [origin, status] of [
      ['https://evil.example', 403], ['null', 403], [`http://127.0.0.1:${ctx.server.port}.evil.example`, 403],
      [null, 101], [GOOD_ORIGIN, 101], [`http://127.0.0.1:${ctx.server.port}`, 101],
    ]) {
      const c = await rawWs(ctx.server, wsPath(), { headers: { ...auth(), Origin: origin } });
      c.destroy();
      assert.equal(c.status, status, `Origin ${origin}: ${c.response}`);
    }
    const api = await post(`${ctx.server.base}/mcp/createSession`, {}, { authorization: `Bearer ${ctx.apiKey}`, origin: 'https://evil.example' });
    assert.equal(api.status, 403);
  });

  test('D14 DNS rebinding: a foreign Host header is 421 on the WebSocket and the API', T, async () => {
    const host = `evil.example:${ctx.server.port}`;
    const c = await rawWs(ctx.server, wsPath(), { headers: { ...auth(), Host: host, Origin: `http://${host}` } });
    c.destroy();
    assert.equal(c.status, 421, c.response);
    const r = await rawHttp(ctx.server, [
      'POST /mcp/createSession HTTP/1.1', `Host: ${host}`, `authorization: Bearer ${ctx.apiKey}`,
      'Content-Type: application/json', 'Content-Length: 2', 'Connection: close', '', '{}',
    ].join('\r\n'));
    assert.equal(r.status, 421);
    const ok = await rawHttp(ctx.server, `GET /health HTTP/1.1\r\nHost: localhost:${ctx.server.port}\r\nConnection: close\r\n\r\n`);
    assert.equal(ok.status, 200, 'localhost is one of the server\'s own names');
  });

  test('D15 CORS: no ACAO for a foreign origin; the allowed origin is echoed (never *) with the SDK headers', T, async () => {
    const pre = (origin) => rawHttp(ctx.server, [
      'OPTIONS /mcp/createSession HTTP/1.1', `Host: 127.0.0.1:${ctx.server.port}`, `Origin: ${origin}`,
      'Access-Control-Request-Method: POST', 'Access-Control-Request-Headers: authorization, content-type',
      'Connection: close', '', '',
    ].join('\r\n'));
    const evil = await pre('https://evil.example');
    assert.equal(evil.headers['access-control-allow-origin'], undefined);
    assert.ok(evil.status >= 400, `preflight from a foreign origin: ${evil.status}`);
    const good = await pre(GOOD_ORIGIN);
    assert.ok(good.status === 200 || good.status === 204, String(good.status));
    assert.equal(good.headers['access-control-allow-origin'], GOOD_ORIGIN);
    for (const h of ['authorization', 'x-access-token', 'content-type']) {
      assert.match(good.headers['access-control-allow-headers'].toLowerCase(), new RegExp(h));
    }
    const run = await post(`${ctx.session.linkUrl}/callTool`, {
      args: { code: 'print(1)', language: 'python', timeout_s: 5 }, server: 'wuying_codespace',
      requestId: 'link-1-000000002', tool: 'run_code', token: ctx.session.token,
    }, { 'x-access-token': ctx.session.token, origin: 'https://evil.example' });
    assert.equal(run.status, 403);
    assert.equal(run.headers.get('access-control-allow-origin'), null);
  });
});

describe('D16–D17 credentials and protocol misuse', () => {
  test('D16 1000 wrong session tokens are all refused, rate limited to 429 after 20; the valid token keeps working', T, async () => {
    const statuses = [];
    for (let i = 0; i < 1000; i++) {
      const wrong = `t-${i.toString(16).padStart(32, '0')}`;
      const r = await rawHttp(ctx.server, [
        `POST /link/${ctx.session.sessionId}/callTool HTTP/1.1`, `Host: 127.0.0.1:${ctx.server.port}`, `X-Access-Token: ${wrong}`,
        'Content-Type: application/json', 'Content-Length: 2', 'Connection: close', '', '{}',
      ].join('\r\n'), { localAddress: '127.0.0.6' });
      statuses.push(r.status);
    }
    assert.equal(statuses.filter((s) => s === 200).length, 0);
    assert.deepEqual(statuses.slice(0, 20), Array(20).fill(401));
    assert.deepEqual(statuses.slice(20), Array(980).fill(429));
    const ws = [];
    for (let i = 0; i < 30; i++) {
      const c = await rawWs(ctx.server, wsPath(), { headers: { 'X-Access-Token': `t-bad${i}` }, localAddress: '127.0.0.6' });
      ws.push(c.status);
      c.destroy();
    }
    assert.deepEqual(ws, Array(30).fill(429));
    // The valid token, from the same address, still works.
    const good = await rawWs(ctx.server, wsPath(), { headers: auth(), localAddress: '127.0.0.6' });
    assert.equal(good.status, 101);
    good.destroy();
    const run = await ctx.run('print("still works")');
    assert.equal(run.out, 'still works\n');
  });

  test('D16 1000 wrong API keys are refused and rate limited; the valid key keeps working', T, async () => {
    let ok = 0, limited = 0;
    for (let i = 0; i < 1000; i++) {
      const r = await rawHttp(ctx.server, [
        'POST /mcp/createSession HTTP/1.1', `Host: 127.0.0.1:${ctx.server.port}`, `authorization: Bearer k-wrong-${i}`,
        'Content-Type: application/json', 'Content-Length: 2', 'Connection: close', '', '{}',
      ].join('\r\n'), { localAddress: '127.0.0.7' });
      if (r.status === 200) ok++;
      if (r.status === 429) limited++;
    }
    assert.equal(ok, 0);
    assert.equal(limited, 980);
    const good = await rawHttp(ctx.server, [
      'POST /mcp/createSession HTTP/1.1', `Host: 127.0.0.1:${ctx.server.port}`, `authorization: Bearer ${ctx.apiKey}`,
      'Content-Type: application/json', 'Content-Length: 2', 'Connection: close', '', '{}',
    ].join('\r\n'), { localAddress: '127.0.0.7' });
    assert.equal(good.status, 200);
  });

  test('D16 a wrong first character and a wrong last character take the same time to refuse', T, async () => {
    const token = ctx.session.token;
    const first = `${token[0] === 'a' ? 'b' : 'a'}${token.slice(1)}`;
    const last = `${token.slice(0, -1)}${token.at(-1) === 'a' ? 'b' : 'a'}`;
    const times = { first: [], last: [] };
    // 20 failures per address before 429: spread the samples over fresh loopback addresses.
    for (let ip = 0; ip < 8; ip++) {
      for (let i = 0; i < 10; i++) {
        for (const [k, t] of [['first', first], ['last', last]]) {
          const t0 = performance.now();
          const r = await rawHttp(ctx.server, [
            `POST /link/${ctx.session.sessionId}/callTool HTTP/1.1`, `Host: 127.0.0.1:${ctx.server.port}`, `X-Access-Token: ${t}`,
            'Content-Type: application/json', 'Content-Length: 2', 'Connection: close', '', '{}',
          ].join('\r\n'), { localAddress: `127.0.1.${ip + 1}` });
          times[k].push(performance.now() - t0);
          assert.equal(r.status, 401);
        }
      }
    }
    const median = (a) => a.sort((x, y) => x - y)[a.length >> 1];
    const diff = Math.abs(median(times.first) - median(times.last));
    assert.ok(diff < 0.5, `median refusal times differ by ${diff.toFixed(3)} ms`);
  });

  test('D17 protocol misuse gets a definite answer per case', T, async () => {
    // A second request reusing an in-flight invocationId is refused with one error frame
    // (on that id); the first run goes on and ends normally.
    const id = invocationId();
    const frames = [];
    const onDup = (b) => { const f = JSON.parse(b); if (f.invocationId === id) frames.push(f.data); };
    ctx.ws.on('message', onDup);
    ctx.ws.send(request(id, { code: "import time\ntime.sleep(0.5)\nprint('first')" }));
    await sleep(100);
    ctx.ws.send(request(id, { code: "print('second')" }));
    const until = Date.now() + 5000;
    while (!frames.some((d) => d.phase === 'end') && Date.now() < until) await sleep(10);
    ctx.ws.off('message', onDup);
    assert.deepEqual(frames.filter((d) => d.phase === 'error'), [{ phase: 'error', error: 'invocationId is already in use by a running invocation' }]);
    assert.deepEqual(frames.filter((d) => d.eventType === 'stdout').map((d) => d.chunk), ['first\n']);
    assert.equal(frames.find((d) => d.phase === 'end').status, 'finished');
    // Cancel of an unknown id, and after the end: ignored (no frame at all).
    const unknown = invocationId();
    const c1 = await sendRaw(JSON.stringify({ invocationId: unknown, source: 'SDK', target: 'wuying_codespace', data: { method: 'cancel' } }), unknown, 500);
    assert.equal(c1.frames.length, 0);
    // Unknown target, unknown mode, missing data, data not an object: one error frame each.
    for (const [label, text] of [
      ['target', (i) => request(i).replace('"target":"wuying_codespace"', '"target":"other_server"')],
      ['mode', (i) => request(i).replace('"mode":"stream"', '"mode":"sync"')],
      ['data', (i) => JSON.stringify({ invocationId: i, source: 'SDK', target: 'wuying_codespace' })],
      ['data', (i) => JSON.stringify({ invocationId: i, source: 'SDK', target: 'wuying_codespace', data: 5 })],
    ]) {
      const i = invocationId();
      const r = await sendRaw(text(i), i, 2000);
      assert.equal(r.timedOut, false, label);
      assert.equal(r.last.phase, 'error', label);
      assert.match(r.last.error, new RegExp(label, 'i'));
    }
    // An over-long (> CP_ID_MAX) or non-string invocationId cannot be answered: dropped.
    const longId = 'i'.repeat(300);
    const r2 = await sendRaw(request(longId), longId, 1000);
    assert.equal(r2.frames.length, 0);
    // data as a JSON string holding the request object, and a missing target: accepted
    // (the tolerance spec §6.3 gives the client, mirrored), the run happens.
    for (const text of [
      (i) => JSON.stringify({ invocationId: i, source: 'SDK', target: 'wuying_codespace', data: JSON.parse(request(i)).data }).replace(/"data":(\{.*\})\}$/, (_, d) => `"data":${JSON.stringify(d)}}`),
      (i) => request(i).replace('"target":"wuying_codespace",', ''),
    ]) {
      const i = invocationId();
      const r = await sendRaw(text(i), i);
      assert.equal(r.last.phase, 'end', JSON.stringify(r.last));
      assert.deepEqual(r.frames.filter((f) => f.data.eventType === 'stdout').map((f) => f.data.chunk), ['1\n']);
    }
    // A binary frame carrying a request is run like a text frame.
    const bid = invocationId();
    const bin = await new Promise((resolve) => {
      const frames = [];
      const on = (b) => { const f = JSON.parse(b); if (f.invocationId === bid) { frames.push(f); if (f.data.phase === 'end') { ctx.ws.off('message', on); resolve(frames); } } };
      ctx.ws.on('message', on);
      ctx.ws.send(Buffer.from(request(bid)), { binary: true });
    });
    assert.equal(bin.at(-1).data.status, 'finished');
  });

  test('D17 16 frames in a row that are not JSON objects close the connection with 1003', T, async () => {
    const c = await rawSession();
    for (let i = 0; i < 17; i++) c.send(wsFrame({ payload: Buffer.from('not json') }));
    assert.equal(await c.waitClose(2000), 1003);
    c.send(wsFrame({ opcode: 8, payload: closePayload(1003) }));
    assert.equal(await c.waitClosed(2000), true);
  });
});

test('D18 kill -9 of the server mid-run: no sandbox survives; a restart sweeps stale run cgroups and serves again', T, async () => {
  const uidBase = UID_BASE + 64;
  // (With kernels the run is a cell of the session's kernel: the same must hold.)
  const first = await startServer({ uidBase, args: [...CATALOGUE_ARGS, ...kernelArgs()], env: ctx.canaries.env });
  let second;
  try {
    const s = await createSession(first);
    const ws = await openWs(s);
    ws.on('error', () => {});
    const run = streamRun(ws, [
      'import subprocess, time',
      "subprocess.Popen(['setsid', 'sleep', '300'])",
      "print('started', flush=True)",
      'time.sleep(60)',
    ].join('\n'), 'python', { timeoutS: 20 });
    const until = Date.now() + 5000;
    while (!run.frames.length && Date.now() < until) await sleep(10);
    assert.ok(run.frames.length, 'the run started');
    const parents = cgroupParents(first);
    assert.ok(parents.length > 0, 'the server has cgroup parents');
    assert.ok(runCgroups(first).length > 0, 'the run has cgroups');
    first.proc.kill('SIGKILL');
    await new Promise((r) => first.proc.once('exit', r));
    await expectNoSandboxProcesses(2000, uidBase);
    second = await startServer({ uidBase, port: first.port, args: [...CATALOGUE_ARGS, ...kernelArgs()], env: ctx.canaries.env });
    assert.deepEqual(cgroupParents(second), parents);
    assert.deepEqual(runCgroups(second), [], 'the restart swept the stale run cgroups');
    const s2 = await createSession(second);
    const ws2 = await openWs(s2);
    const r = await streamRun(ws2, 'print("after restart")', 'python').done;
    assert.equal(r.stdout.join(''), 'after restart\n');
    ws2.close();
    if (inKernel('python')) await releaseSession(second, s2); // its kernel goes with it
    await expectNoSandboxProcesses(2000, uidBase);
  } finally {
    await first.stop();
    await second?.stop();
  }
});

test('P4: after the whole group the server\'s fds and RSS are back near the baseline', T, async () => {
  await ctx.finalChecks();
});

/** A plain TCP socket to `srv` from a given loopback address; `closedByPeer` turns true
 * when the server ends it (FIN or reset), not when we destroy it. */
function rawSocket(srv, localAddress) {
  const s = net.connect({ host: '127.0.0.1', port: srv.port, localAddress });
  s.on('error', () => { s.closedByPeer = true; });
  s.on('end', () => { s.closedByPeer = true; });
  return s;
}

/** Run `fn` against a server of its own (catalogue limits plus `args`, slot uids from
 * `uidBase`; under CP_TEST_KERNELS kernels with the pool `pool`), stopped by pid
 * afterwards; its sandboxes must all be gone by then. */
async function withServer(uidBase, args, fn, { pool = 'none' } = {}) {
  const srv = await startServer({ uidBase, args: [...CATALOGUE_ARGS, ...kernelArgs(pool), ...args], env: ctx.canaries.env });
  try {
    await fn(srv);
  } finally {
    await srv.stop();
  }
}
