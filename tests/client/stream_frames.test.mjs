// The streaming run_code path end to end: JS API → WASM core → Emscripten WebSocket (npm
// ws, token in the X-Access-Token header) → the fixture server's WebSocket side, which
// checks the client's run frame exactly (spec §6.1, §6.2) and plays scripted server
// frames back. Every outcome of §6.3–§6.6, §6.8 and §6.10 is checked as the final
// EnhancedCodeExecutionResult and as the callbacks the user saw (the expectations of
// tests/core/test_stream.c, which restate the SDKs' unit tests), plus codepane's cancel
// extension (a cancel frame) and the TS SDK's JSON heartbeat.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, beforeEach, describe, mock, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '../../dist/node.mjs';
import { startFixtureServer } from './fixture_server.mjs';

const TARGET = 'wuying_codespace';
const TOOLS = JSON.stringify([{ name: 'run_code', server: TARGET }]);
const HEX32 = /^[0-9a-f]{32}$/;

let srv;
const live = new Set(); // sessions not yet closed (a test that dies early leaves its own)
before(async () => { srv = await startFixtureServer(); });
after(async () => {
  for (const s of live) await s.close();
  await srv?.close();
});
beforeEach(() => srv.reset());

/** Adopt a session with a WebSocket (and, unused here, a LinkUrl route). */
function streamSession(extra = {}) {
  return connect({ sessionId: 's-1', linkUrl: `${srv.base}/link/s-1`, wsUrl: srv.wsUrl(), token: 't-1', toolList: TOOLS, ...extra });
}

/** A server frame for invocation `inv`, as a real server sends it (§12.9). */
const frame = (inv, data, extra = {}) => ({ invocationId: inv, source: TARGET, target: 'SDK', data, ...extra });
const ev = (eventType, more = {}) => ({ method: 'run_code', mode: 'stream', phase: 'event', eventType, ...more });
const send = (ws, f, { binary = false } = {}) => ws.send(typeof f === 'string' ? f : JSON.stringify(f), { binary });

/** Call handler(runFrame, ws) for every run_code frame the client sends. */
function onRun(handler) {
  srv.onFrame = (f, ws) => { if (f?.data?.method === 'run_code') handler(f, ws); };
}

/** Run options that record every callback, in order. */
function recorder() {
  const rec = { stdout: [], stderr: [], results: [], errors: [], order: [] };
  rec.options = {
    streamBeta: true,
    onStdout: (c) => { rec.stdout.push(c); rec.order.push(['stdout', c]); },
    onStderr: (c) => { rec.stderr.push(c); rec.order.push(['stderr', c]); },
    onResult: (r) => { rec.results.push(r); rec.order.push(['result', r]); },
    onError: (e) => { rec.errors.push(e); rec.order.push(['error', e]); },
  };
  return rec;
}

/** §6.2: exactly {invocationId, source:"SDK", target, data:{method, mode, params}}, as text. */
function checkRunFrame(f, { target = TARGET, language = 'python', timeoutS = 60, code }) {
  assert.deepEqual(Object.keys(f), ['invocationId', 'source', 'target', 'data']);
  assert.match(f.invocationId, HEX32);
  assert.deepStrictEqual(f, {
    invocationId: f.invocationId, source: 'SDK', target,
    data: { method: 'run_code', mode: 'stream', params: { language, timeoutS, code } },
  });
  const entry = srv.frames.find((e) => e.frame === f);
  assert.equal(entry.isBinary, false, 'the run frame is a text frame');
  assert.match(entry.raw, new RegExp(`"timeoutS":${timeoutS}[,}]`), 'timeoutS is an integer literal');
}

/** The final result of a run the stream itself failed (§6.6): the SDKs hand the failure
 * to the error handler, so it is the error too. */
const failed = (msg, stdout = [], stderr = [], results = []) => ({
  requestId: '', success: false, executionTime: 0, logs: { stdout, stderr }, results,
  error: { name: 'ExecutionError', value: msg, traceback: '' }, errorMessage: msg,
});

function checkStreamError(e, name, message) {
  assert.ok(e instanceof Error, `onError got an Error (${String(e)})`);
  assert.equal(e.name, name);
  if (message instanceof RegExp) assert.match(e.message, message);
  else assert.equal(e.message, message);
}

async function withSession(extra, fn) {
  const s = await streamSession(extra);
  live.add(s);
  try {
    return await fn(s);
  } finally {
    await s.close();
    live.delete(s);
  }
}

describe('the run frame and the upgrade (§6.1, §6.2)', () => {
  test('exact run frame, X-Access-Token on the upgrade, target from toolList, default 60 s', async () => {
    onRun((f, ws) => send(ws, frame(f.invocationId, { phase: 'end', status: 'finished' })));
    await withSession({ toolList: [{ name: 'run_code', server: 'my_code_server' }] }, async (s) => {
      const result = await s.code.run("print('hello')", 'python', undefined, { streamBeta: true });
      const [f] = srv.frames.map((e) => e.frame);
      checkRunFrame(f, { target: 'my_code_server', code: "print('hello')" });
      assert.deepStrictEqual(result, {
        requestId: f.invocationId, success: true, executionTime: 0, logs: { stdout: [], stderr: [] }, results: [], errorMessage: '',
      });
    });
    assert.equal(srv.upgrades.length, 1);
    assert.equal(srv.upgrades[0].url, '/ws/s-1', 'wsUrl is used as it is');
    assert.equal(srv.upgrades[0].headers['x-access-token'], 't-1');
    assert.equal(srv.upgrades[0].headers['sec-websocket-protocol'], undefined, 'no subprotocol in header mode');
  });

  test('default target wuying_codespace; canonical language; timeoutS whole seconds rounded up; code untouched', async () => {
    onRun((f, ws) => send(ws, frame(f.invocationId, { phase: 'end', status: 'finished' })));
    const cases = [ // session options, language, timeoutS, then the expected target, language, timeoutS
      [{ toolList: undefined }, 'py', 2.5, TARGET, 'python', 3],
      [{ toolList: [{ name: 'read_file', server: 'fs' }] }, ' Node ', 600, TARGET, 'javascript', 600],
      [{ toolList: [{ name: 'run_code', server: '' }] }, 'js', 1, TARGET, 'javascript', 1],
      [{ toolList: [{ Name: 'run_code', Server: 'srv_pascal' }] }, 'R', 0.2, 'srv_pascal', 'r', 1],
      [{}, 'JAVA', 60, TARGET, 'java', 60],
    ];
    const code = '  x = "é ✓ 😀"\n\tprint(x)\n';
    for (const [extra, language, timeoutS, target, canonical, seconds] of cases) {
      srv.frames.length = 0;
      await withSession(extra, async (s) => {
        const result = await s.code.run(code, language, timeoutS, { streamBeta: true });
        const [f] = srv.frames.map((e) => e.frame);
        checkRunFrame(f, { target, language: canonical, timeoutS: seconds, code });
        assert.equal(result.requestId, f.invocationId);
      });
    }
  });

  test('each run has a fresh invocationId; runs of one session share one socket', async () => {
    onRun((f, ws) => send(ws, frame(f.invocationId, { phase: 'end', status: 'finished' })));
    await withSession({}, async (s) => {
      for (let i = 0; i < 3; i++) await s.code.run('1', 'python', 60, { streamBeta: true });
      assert.equal(s.streamState, 'open');
    });
    const ids = srv.frames.map((e) => e.frame.invocationId);
    assert.equal(new Set(ids).size, 3);
    assert.equal(srv.upgrades.length, 1);
  });
});

describe('stream events (§6.3–§6.5)', () => {
  test('stdout/stderr chunks in order, verbatim (NUL, non-ASCII, empty); non-string chunks and unknown events ignored', async () => {
    onRun((f, ws) => {
      const id = f.invocationId;
      send(ws, frame(id, ev('stdout', { seq: 1, chunk: 'hello\n' })));
      send(ws, frame(id, ev('stderr', { seq: 2, chunk: 'warn\n' })));
      send(ws, frame(id, ev('stdout', { seq: 3, chunk: 'a\u0000b' })));
      send(ws, frame(id, ev('stdout', { seq: 4, chunk: 'héllo ✓ 😀\n' })));
      send(ws, frame(id, ev('stdout', { seq: 5, chunk: 5 })));
      send(ws, frame(id, ev('stderr', { seq: 6, chunk: null })));
      send(ws, frame(id, ev('stdout', { seq: 7 })));
      send(ws, frame(id, ev('progress', { seq: 8, chunk: 'not output' })));
      send(ws, frame(id, { phase: 'event', seq: 9, chunk: 'no eventType' }));
      send(ws, frame(id, ev('stdout', { seq: 10, chunk: '' })));
      send(ws, frame(id, ev('stderr', { seq: 11, chunk: 'e2' })));
      send(ws, frame(id, { method: 'run_code', mode: 'stream', phase: 'end', seq: 12, status: 'finished', executionCount: 1, executionTime: 0.5 }));
    });
    await withSession({}, async (s) => {
      const rec = recorder();
      const result = await s.code.run('x', 'python', 60, rec.options);
      const stdout = ['hello\n', 'a\u0000b', 'héllo ✓ 😀\n', ''], stderr = ['warn\n', 'e2'];
      assert.deepStrictEqual(result, {
        requestId: srv.frames[0].frame.invocationId, success: true, executionCount: 1, executionTime: 0.5,
        logs: { stdout, stderr }, results: [], errorMessage: '',
      });
      assert.deepStrictEqual(rec.stdout, stdout);
      assert.deepStrictEqual(rec.stderr, stderr);
      assert.deepStrictEqual(rec.order.slice(0, 3), [['stdout', 'hello\n'], ['stderr', 'warn\n'], ['stdout', 'a\u0000b']]);
      assert.equal(rec.errors.length, 0);
    });
  });

  test('result events: MIME keys only, isMainResult / is_main_result (first truthy), v5 chart, non-object result → text', async () => {
    onRun((f, ws) => {
      const id = f.invocationId;
      send(ws, frame(id, ev('result', { result: { mime: {
        'text/plain': '3', 'text/html': '<b>3</b>', 'text/markdown': '**3**', 'image/png': 'iVBO', 'image/jpeg': '/9j/',
        'image/svg+xml': '<svg/>', 'application/json': { a: [1, 2] }, 'text/latex': '$3$',
        'application/vnd.vegalite.v4+json': { mark: 'bar' }, text: 'short keys are ignored', 'application/pdf': 'dropped',
      }, isMainResult: true } })));
      send(ws, frame(id, ev('result', { result: { mime: { 'text/plain': 'alias' }, is_main_result: true } })));
      send(ws, frame(id, ev('result', { result: { mime: { 'text/plain': 'both' }, isMainResult: false, is_main_result: true } })));
      send(ws, frame(id, ev('result', { result: { mime: { 'application/vnd.vegalite.v5+json': { v: 5 } } } })));
      send(ws, frame(id, ev('result', { result: 'plain' })));
      send(ws, frame(id, ev('result', { result: 42 })));
      send(ws, frame(id, { phase: 'end', status: 'finished', executionCount: 2, executionTime: 0.25 }));
    });
    await withSession({}, async (s) => {
      const rec = recorder();
      const result = await s.code.run('x', 'python', 60, rec.options);
      const results = [
        { text: '3', html: '<b>3</b>', markdown: '**3**', png: 'iVBO', jpeg: '/9j/', svg: '<svg/>', json: { a: [1, 2] }, latex: '$3$', chart: { mark: 'bar' }, isMainResult: true },
        { text: 'alias', isMainResult: true },
        { text: 'both', isMainResult: true },
        { chart: { v: 5 }, isMainResult: false },
        { text: 'plain', isMainResult: false },
        { text: '42', isMainResult: false },
      ];
      assert.deepStrictEqual(result, {
        requestId: srv.frames[0].frame.invocationId, success: true, executionCount: 2, executionTime: 0.25,
        logs: { stdout: [], stderr: [] }, results, errorMessage: '',
      });
      assert.deepStrictEqual(rec.results, results, 'onResult sees each result as it arrives');
    });
  });

  test('error event {code, message, traceId}: error {name, value, traceback:"traceId=<id>"}, onError(payload), stream goes on', async () => {
    const payload = { code: 'NameError', message: "name 'x' is not defined", traceId: 't-42' };
    onRun((f, ws) => {
      const id = f.invocationId;
      send(ws, frame(id, ev('error', { seq: 1, error: payload })));
      send(ws, frame(id, ev('stdout', { seq: 2, chunk: 'after\n' })));
      send(ws, frame(id, { phase: 'end', seq: 3, status: 'finished', executionCount: 1, executionTime: 0.5 }));
    });
    await withSession({}, async (s) => {
      const rec = recorder();
      const result = await s.code.run('x', 'python', 60, rec.options);
      assert.deepStrictEqual(result, {
        requestId: srv.frames[0].frame.invocationId, success: false, executionCount: 1, executionTime: 0.5,
        logs: { stdout: ['after\n'], stderr: [] }, results: [],
        error: { name: 'NameError', value: "name 'x' is not defined", traceback: 'traceId=t-42' },
        errorMessage: "name 'x' is not defined",
      });
      assert.deepStrictEqual(rec.errors, [payload], 'onError once, with the error object');
    });
  });

  test('error event with a null error: the whole data is the payload, name ExecutionError, empty message', async () => {
    const data = { phase: 'event', eventType: 'error', error: null };
    onRun((f, ws) => {
      send(ws, frame(f.invocationId, data));
      send(ws, frame(f.invocationId, { phase: 'end', status: 'finished' }));
    });
    await withSession({}, async (s) => {
      const rec = recorder();
      const result = await s.code.run('x', 'python', 60, rec.options);
      assert.deepStrictEqual(result, {
        requestId: srv.frames[0].frame.invocationId, success: false, executionTime: 0, logs: { stdout: [], stderr: [] }, results: [],
        error: { name: 'ExecutionError', value: '', traceback: '' }, errorMessage: '',
      });
      assert.deepStrictEqual(rec.errors, [data]);
    });
  });

  test('end with executionError: failure with that text, count and time kept, no onError', async () => {
    onRun((f, ws) => send(ws, frame(f.invocationId, {
      phase: 'end', status: 'finished', executionCount: 2, executionTime: 1.25, executionError: 'NameError: x',
    })));
    await withSession({}, async (s) => {
      const rec = recorder();
      const result = await s.code.run('x', 'python', 60, rec.options);
      assert.deepStrictEqual(result, {
        requestId: srv.frames[0].frame.invocationId, success: false, executionCount: 2, executionTime: 1.25,
        logs: { stdout: [], stderr: [] }, results: [],
        error: { name: 'ExecutionError', value: 'NameError: x', traceback: '' }, errorMessage: 'NameError: x',
      });
      assert.equal(rec.errors.length, 0);
    });
  });

  test('end status "failed" alone: success false with an empty message and no error', async () => {
    onRun((f, ws) => send(ws, frame(f.invocationId, { phase: 'end', status: 'failed' })));
    await withSession({}, async (s) => {
      const rec = recorder();
      const result = await s.code.run('x', 'python', 60, rec.options);
      assert.deepStrictEqual(result, {
        requestId: srv.frames[0].frame.invocationId, success: false, executionTime: 0,
        logs: { stdout: [], stderr: [] }, results: [], errorMessage: '',
      });
      assert.equal(rec.errors.length, 0);
    });
  });

  test('executionCount only when integral; executionTime only when a number', async () => {
    const ends = [
      [{ executionCount: '3', executionTime: '1' }, {}],
      [{ executionCount: 1.5, executionTime: null }, {}],
      [{ executionCount: 0, executionTime: 2 }, { executionCount: 0, executionTime: 2 }],
    ];
    for (const [members, expect] of ends) {
      onRun((f, ws) => send(ws, frame(f.invocationId, { phase: 'end', status: 'finished', ...members })));
      await withSession({}, async (s) => {
        const result = await s.code.run('x', 'python', 60, { streamBeta: true });
        assert.deepStrictEqual(result, {
          requestId: result.requestId, success: true, executionTime: 0, ...expect,
          logs: { stdout: [], stderr: [] }, results: [], errorMessage: '',
        });
      });
    }
  });
});

describe('stream failures (§6.4, §6.6)', () => {
  test('data.error string (gateway rejection, no phase): WsRemoteError with the serialised data', async () => {
    onRun((f, ws) => send(ws, { invocationId: f.invocationId, source: 'WEBSOCKET_SERVER', data: { error: 'bad request' } }));
    await withSession({}, async (s) => {
      const rec = recorder();
      const result = await s.code.run('x', 'python', 60, rec.options);
      const msg = '{"error":"bad request"}';
      assert.deepStrictEqual(result, failed(msg));
      assert.equal(rec.errors.length, 1);
      checkStreamError(rec.errors[0], 'WsRemoteError', msg);
    });
  });

  test('data.error string aborts even on an event frame, before anything else', async () => {
    onRun((f, ws) => {
      send(ws, frame(f.invocationId, ev('stdout', { chunk: 'kept\n' })));
      send(ws, frame(f.invocationId, { phase: 'event', eventType: 'error', error: 'quota' }));
      send(ws, frame(f.invocationId, { phase: 'end', status: 'finished' })); // too late
    });
    await withSession({}, async (s) => {
      const rec = recorder();
      const result = await s.code.run('x', 'python', 60, rec.options);
      const msg = '{"phase":"event","eventType":"error","error":"quota"}';
      assert.deepStrictEqual(result, failed(msg, ['kept\n']));
      assert.equal(rec.errors.length, 1, 'no error-event call, one failure call');
      checkStreamError(rec.errors[0], 'WsRemoteError', msg);
    });
  });

  test('a remote error text is cut at 2000 characters and marked "..."', async () => {
    onRun((f, ws) => send(ws, frame(f.invocationId, { error: 'x'.repeat(3000) })));
    await withSession({}, async (s) => {
      const rec = recorder();
      const result = await s.code.run('x', 'python', 60, rec.options);
      const msg = `{"error":"${'x'.repeat(3000)}"}`.slice(0, 2000) + '...';
      assert.equal(result.errorMessage.length, 2003);
      assert.deepStrictEqual(result, failed(msg));
      checkStreamError(rec.errors[0], 'WsRemoteError', msg);
    });
  });

  test('phase "error": WsRemoteError', async () => {
    onRun((f, ws) => send(ws, frame(f.invocationId, { phase: 'error', message: 'boom' })));
    await withSession({}, async (s) => {
      const rec = recorder();
      const result = await s.code.run('x', 'python', 60, rec.options);
      const msg = '{"phase":"error","message":"boom"}';
      assert.deepStrictEqual(result, failed(msg));
      assert.equal(rec.errors.length, 1);
      checkStreamError(rec.errors[0], 'WsRemoteError', msg);
    });
  });

  test('missing phase and unknown phase: WsProtocolError with the SDK texts', async () => {
    const cases = [
      [{ eventType: 'stdout', chunk: 'a' }, (id) => `WS message missing required data.phase; invocationId=${id}, data={"eventType":"stdout","chunk":"a"}`],
      [{ phase: 'progress' }, (id) => `WS message has unsupported data.phase; invocationId=${id}, phase="progress", data={"phase":"progress"}`],
    ];
    for (const [data, text] of cases) {
      srv.frames.length = 0;
      onRun((f, ws) => send(ws, frame(f.invocationId, data)));
      await withSession({}, async (s) => {
        const rec = recorder();
        const result = await s.code.run('x', 'python', 60, rec.options);
        const msg = text(srv.frames[0].frame.invocationId);
        assert.deepStrictEqual(result, failed(msg));
        assert.equal(rec.errors.length, 1);
        checkStreamError(rec.errors[0], 'WsProtocolError', msg);
      });
    }
  });

  test('an invalid frame for an in-flight id fails it; frames with no readable id are ignored', async () => {
    onRun((f, ws) => {
      send(ws, { source: TARGET, target: 'SDK', data: { phase: 'end', status: 'finished' } }); // no id: ignored
      send(ws, 'not json');
      send(ws, '[1]');
      send(ws, { invocationId: 7, data: {} });
      send(ws, frame(f.invocationId, ev('stdout', { chunk: 'still running\n' })));
      send(ws, { invocationId: f.invocationId, source: TARGET, target: 'SDK' }); // no data
    });
    await withSession({}, async (s) => {
      const rec = recorder();
      const result = await s.code.run('x', 'python', 60, rec.options);
      const msg = 'data is required and must be an object';
      assert.deepStrictEqual(result, failed(msg, ['still running\n']));
      checkStreamError(rec.errors[0], 'WsProtocolError', msg);
      assert.equal(rec.errors.length, 1);
    });
  });

  test('an error event then a remote error: exactly 2 onError calls; the failure is the final error', async () => {
    const payload = { code: 'E', message: 'm' };
    onRun((f, ws) => {
      send(ws, frame(f.invocationId, ev('stdout', { chunk: 'partial' })));
      send(ws, frame(f.invocationId, ev('error', { error: payload })));
      send(ws, frame(f.invocationId, { error: 'backend gone' }));
      send(ws, frame(f.invocationId, { phase: 'end', status: 'finished' })); // too late: a push
    });
    await withSession({}, async (s) => {
      const rec = recorder();
      const result = await s.code.run('x', 'python', 60, rec.options);
      const msg = '{"error":"backend gone"}';
      assert.deepStrictEqual(result, failed(msg, ['partial']));
      assert.equal(rec.errors.length, 2);
      assert.deepStrictEqual(rec.errors[0], payload);
      checkStreamError(rec.errors[1], 'WsRemoteError', msg);
      await sleep(50); // the late end frame changes nothing
      assert.equal(rec.errors.length, 2);
    });
  });
});

describe('frame forms (§6.1, §6.3, §6.10)', () => {
  test('requestId alias and data as a JSON string', async () => {
    onRun((f, ws) => {
      send(ws, { requestId: f.invocationId, source: TARGET, target: 'SDK', data: JSON.stringify(ev('stderr', { chunk: 'warn' })) });
      send(ws, { requestId: f.invocationId, data: { phase: 'event', eventType: 'stdout', chunk: 'o' } });
      send(ws, { invocationId: f.invocationId, data: '{"phase":"end","status":"finished","executionCount":4}' });
    });
    await withSession({}, async (s) => {
      const result = await s.code.run('x', 'python', 60, { streamBeta: true });
      assert.deepStrictEqual(result, {
        requestId: srv.frames[0].frame.invocationId, success: true, executionCount: 4, executionTime: 0,
        logs: { stdout: ['o'], stderr: ['warn'] }, results: [], errorMessage: '',
      });
    });
  });

  test('binary frames carrying JSON are read like text frames', async () => {
    onRun((f, ws) => {
      send(ws, frame(f.invocationId, ev('stdout', { chunk: 'bin ✓ a\u0000b\n' })), { binary: true });
      send(ws, frame(f.invocationId, ev('result', { result: { mime: { 'text/plain': 'r' }, isMainResult: true } })), { binary: true });
      send(ws, frame(f.invocationId, { phase: 'end', status: 'finished', executionCount: 1 }), { binary: true });
    });
    await withSession({}, async (s) => {
      const result = await s.code.run('x', 'python', 60, { streamBeta: true });
      assert.deepStrictEqual(result, {
        requestId: srv.frames[0].frame.invocationId, success: true, executionCount: 1, executionTime: 0,
        logs: { stdout: ['bin ✓ a\u0000b\n'], stderr: [] }, results: [{ text: 'r', isMainResult: true }], errorMessage: '',
      });
    });
  });

  test('frames for unknown ids (push messages) and frames after the end are ignored', async () => {
    const other = 'f'.repeat(32);
    onRun((f, ws) => {
      send(ws, frame(other, ev('stdout', { chunk: 'push to source' })));
      send(ws, { invocationId: other, source: 'x', data: ev('stdout', { chunk: 'no target: dropped' }) });
      send(ws, { invocationId: other, target: 'SDK', data: { phase: 'end', status: 'failed' } });
      send(ws, frame(f.invocationId, ev('stdout', { chunk: 'mine\n' })));
      send(ws, frame(other, { error: 'not mine' }));
      send(ws, frame(f.invocationId, { phase: 'end', status: 'finished' }));
      send(ws, frame(f.invocationId, ev('stdout', { chunk: 'after the end' })));
      send(ws, frame(f.invocationId, { error: 'after the end' }));
    });
    await withSession({}, async (s) => {
      const rec = recorder();
      const result = await s.code.run('x', 'python', 60, rec.options);
      assert.deepStrictEqual(result, {
        requestId: srv.frames[0].frame.invocationId, success: true, executionTime: 0,
        logs: { stdout: ['mine\n'], stderr: [] }, results: [], errorMessage: '',
      });
      await sleep(50);
      assert.deepStrictEqual(rec.stdout, ['mine\n']);
      assert.equal(rec.errors.length, 0);
      // The socket is still good for the next run.
      onRun((f, ws) => send(ws, frame(f.invocationId, { phase: 'end', status: 'finished', executionCount: 2 })));
      assert.equal((await s.code.run('y', 'python', 60, { streamBeta: true })).executionCount, 2);
      assert.equal(srv.upgrades.length, 1);
    });
  });

  test('two concurrent invocations, interleaved, stay apart', async () => {
    const runs = [];
    onRun((f, ws) => {
      runs.push(f);
      if (runs.length < 2) return;
      const [a, b] = runs.map((r) => r.invocationId);
      send(ws, frame(b, ev('stdout', { chunk: 'Y1' })));
      send(ws, frame(a, ev('stdout', { chunk: 'X1' })));
      send(ws, frame(a, ev('result', { result: { mime: { 'text/plain': 'A' }, isMainResult: true } })));
      send(ws, frame(b, ev('stderr', { chunk: 'Yerr' })));
      send(ws, frame(a, { phase: 'end', status: 'finished', executionCount: 1 }));
      send(ws, frame(b, ev('stdout', { chunk: 'Y2' })));
      send(ws, frame(b, { phase: 'end', status: 'failed', executionError: 'B failed', executionCount: 2 }));
    });
    await withSession({}, async (s) => {
      const ra = recorder(), rb = recorder();
      const [a, b] = await Promise.all([s.code.run('a', 'python', 60, ra.options), s.code.run('b', 'javascript', 60, rb.options)]);
      const [fa, fb] = srv.frames.map((e) => e.frame);
      checkRunFrame(fa, { code: 'a' });
      checkRunFrame(fb, { code: 'b', language: 'javascript' });
      assert.notEqual(fa.invocationId, fb.invocationId);
      assert.deepStrictEqual(a, {
        requestId: fa.invocationId, success: true, executionCount: 1, executionTime: 0,
        logs: { stdout: ['X1'], stderr: [] }, results: [{ text: 'A', isMainResult: true }], errorMessage: '',
      });
      assert.deepStrictEqual(b, {
        requestId: fb.invocationId, success: false, executionCount: 2, executionTime: 0,
        logs: { stdout: ['Y1', 'Y2'], stderr: ['Yerr'] }, results: [],
        error: { name: 'ExecutionError', value: 'B failed', traceback: '' }, errorMessage: 'B failed',
      });
      assert.deepStrictEqual(ra.stdout, ['X1']);
      assert.deepStrictEqual(rb.stdout, ['Y1', 'Y2']);
    });
    assert.equal(srv.upgrades.length, 1);
  });
});

describe('connection loss and reconnect (§6.8)', () => {
  test('the server closing the socket fails every in-flight run, then the client reconnects after ~0.5 s', async () => {
    const runs = [];
    let closedAt = 0;
    onRun((f, ws) => {
      runs.push(f);
      if (runs.length === 1) send(ws, frame(f.invocationId, ev('stdout', { chunk: 'partial\n' })));
      if (runs.length === 2) setTimeout(() => { closedAt = performance.now(); ws.close(1001); }, 20);
    });
    const upgradeTimes = [];
    srv.onConnection = () => upgradeTimes.push(performance.now());
    await withSession({}, async (s) => {
      const ra = recorder(), rb = recorder();
      const [a, b] = await Promise.all([s.code.run('a', 'python', 60, ra.options), s.code.run('b', 'python', 60, rb.options)]);
      const msg = 'connection closed: code=1001';
      assert.deepStrictEqual(a, failed(msg, ['partial\n']));
      assert.deepStrictEqual(b, failed(msg));
      for (const rec of [ra, rb]) {
        assert.equal(rec.errors.length, 1);
        checkStreamError(rec.errors[0], 'WsConnectionClosedError', msg);
      }
      assert.equal(s.streamState, 'reconnecting');
      // The background reconnect: first after 0.5 s (+ up to 0.1 s jitter); nothing resubmitted.
      const until = performance.now() + 3000;
      while (srv.upgrades.length < 2 && performance.now() < until) await sleep(20);
      assert.equal(srv.upgrades.length, 2, 'the client reconnected');
      const delay = upgradeTimes[1] - closedAt;
      assert.ok(delay >= 450 && delay < 2000, `reconnected after ${delay.toFixed(0)} ms`);
      assert.equal(srv.upgrades[1].headers['x-access-token'], 't-1');
      await sleep(30);
      assert.equal(s.streamState, 'open');
      assert.equal(srv.frames.length, 2, 'nothing was resubmitted');
      // A run on the new socket works, and a socket cut without a close frame reads code=1006.
      onRun((f, ws) => send(ws, frame(f.invocationId, { phase: 'end', status: 'finished' })));
      assert.equal((await s.code.run('c', 'python', 60, { streamBeta: true })).success, true);
      onRun((f, ws) => setTimeout(() => ws.terminate(), 20));
      const rc = recorder();
      assert.deepStrictEqual(await s.code.run('d', 'python', 60, rc.options), failed('connection closed: code=1006'));
      checkStreamError(rc.errors[0], 'WsConnectionClosedError', 'connection closed: code=1006');
    });
    assert.equal(srv.upgrades.length, 2, 'close() stops the reconnect loop');
  });
});

describe('handshake failures (§6.1, §6.13, §6.6)', () => {
  // npm ws emits 'error' as an EventEmitter event, which kills a Node process nobody
  // listens on; node.mjs listens, and the 'close' that follows fails the run.
  async function failedHandshake(wsUrl, countUpgrades) {
    await withSession({ wsUrl }, async (s) => {
      const rec = recorder();
      const result = await s.code.run('x', 'python', 60, rec.options);
      assert.equal(result.success, false);
      assert.equal(result.requestId, '');
      assert.ok(result.errorMessage.includes(wsUrl), `the message names the URL: ${result.errorMessage}`);
      assert.deepStrictEqual(result, failed(result.errorMessage));
      assert.equal(rec.errors.length, 1);
      assert.ok(rec.errors[0] instanceof Error);
      assert.equal(rec.errors[0].name, 'WsHandshakeRejectedError');
      // As in the SDKs, a failed first connect is not retried in the background.
      await sleep(800);
      assert.notEqual(s.streamState, 'reconnecting');
      if (countUpgrades) assert.equal(srv.upgrades.length, 1);
    });
  }

  test('an upgrade refused with HTTP 401 fails the run once and is not retried', { timeout: 5000 }, async () => {
    srv.rejectUpgrade = 401;
    await failedHandshake(srv.wsUrl('/ws/s-1'), true);
    assert.equal(srv.upgrades[0].headers['x-access-token'], 't-1');
  });

  test('a refused TCP connection fails the run once and is not retried', { timeout: 5000 }, async () => {
    const probe = net.createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const { port } = probe.address();
    probe.close();
    await once(probe, 'close');
    await failedHandshake(`ws://127.0.0.1:${port}/ws/s-1`, false);
  });
});

describe('cancel (codepane extension of §6.9)', () => {
  async function cancelCase(extra, target) {
    let running;
    const started = new Promise((resolve) => { running = resolve; });
    onRun((f, ws) => send(ws, frame(f.invocationId, ev('stdout', { chunk: '0\n' }))));
    await withSession(extra, async (s) => {
      const ac = new AbortController();
      const rec = recorder();
      rec.options.onStdout = (c) => { rec.stdout.push(c); running(); };
      const pending = s.code.run('import time\nprint(0)\ntime.sleep(10)', 'python', 60, { ...rec.options, signal: ac.signal });
      await started;
      const t0 = performance.now();
      ac.abort();
      const result = await pending;
      assert.ok(performance.now() - t0 < 2000, 'settles promptly');
      const inv = srv.frames[0].frame.invocationId;
      const msg = `Stream ${inv} was cancelled by caller`;
      assert.deepStrictEqual(result, failed(msg, ['0\n']));
      assert.equal(rec.errors.length, 1);
      checkStreamError(rec.errors[0], 'WsCancelledError', msg);
      const cancel = await srv.waitFrame((f) => f?.data?.method === 'cancel', 2000);
      assert.deepEqual(Object.keys(cancel), ['invocationId', 'source', 'target', 'data']);
      assert.deepStrictEqual(cancel, { invocationId: inv, source: 'SDK', target, data: { method: 'cancel' } });
      // The server's late frames for the cancelled id are ignored; the socket stays usable.
      srv.broadcast(frame(inv, ev('stdout', { chunk: '1\n' })));
      srv.broadcast(frame(inv, { phase: 'end', status: 'cancelled' }));
      onRun((f, ws) => send(ws, frame(f.invocationId, { phase: 'end', status: 'finished' })));
      assert.equal((await s.code.run('1', 'python', 60, { streamBeta: true })).success, true);
      assert.deepStrictEqual(rec.stdout, ['0\n']);
      assert.equal(rec.errors.length, 1);
      // Aborting a finished run sends nothing.
      const ac2 = new AbortController();
      await s.code.run('2', 'python', 60, { streamBeta: true, signal: ac2.signal });
      ac2.abort();
      await sleep(50);
      assert.equal(srv.frames.filter((e) => e.frame?.data?.method === 'cancel').length, 1);
    });
  }

  test('abort sends {invocationId, source:"SDK", target, data:{method:"cancel"}} and settles as cancelled (default target)', async () => {
    await cancelCase({}, TARGET);
  });

  test('the cancel frame goes to the toolList server of run_code, like the run frame', async () => {
    await cancelCase({ toolList: [{ name: 'run_code', server: 'my_code_server' }] }, 'my_code_server');
  });
});

describe('heartbeat (§6.7, TS SDK form)', () => {
  /** Until every socket of earlier tests is gone: a closing npm ws client clears its
   * 30 s close timer with clearTimeout, which must not be the mocked one. */
  async function settleSockets() {
    while (srv.sockets.size) await sleep(10);
    await sleep(50);
  }

  test('every 20 s an open socket carries the text frame {"type":"ping"}; runs are unaffected', async () => {
    await settleSockets();
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      let inv;
      onRun((f) => { inv = f.invocationId; });
      await withSession({}, async (s) => {
        const rec = recorder();
        const pending = s.code.run('x', 'python', 60, rec.options);
        while (!inv) await new Promise((r) => setImmediate(r));
        const pings = () => srv.frames.filter((e) => e.raw === '{"type":"ping"}').length;
        mock.timers.tick(19999);
        await new Promise((r) => setImmediate(r));
        assert.equal(pings(), 0);
        mock.timers.tick(1);
        while (pings() < 1) await new Promise((r) => setImmediate(r));
        const entry = srv.frames.find((e) => e.raw === '{"type":"ping"}');
        assert.equal(entry.isBinary, false);
        mock.timers.tick(20000);
        while (pings() < 2) await new Promise((r) => setImmediate(r));
        srv.broadcast(frame(inv, { phase: 'end', status: 'finished', executionCount: 1 }));
        const result = await pending;
        assert.equal(result.success, true);
        assert.equal(result.executionCount, 1);
        assert.equal(rec.errors.length, 0);
      });
      while (srv.sockets.size) await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
    } finally {
      mock.timers.reset();
    }
  });
});
