// Cancelling runs (RunOptions.signal, a codepane extension; spec §6.9 for the stream's
// "Stream <id> was cancelled by caller") and closing a session with runs in flight,
// against the real codepane-server: runs settle promptly, never reject, and leave no
// sandbox process behind.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  connect, expectNoSandboxProcesses, HTTP_REQUEST_ID, INVOCATION_ID, localFailure, sandboxProcesses,
  startCountingServer, startServer, until, within,
} from './helpers.mjs';

const UID_BASE = 64128;
const LOOP = "import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.1)";
const BUSY = 'while True:\n    pass';
const CANCELLED = /^Stream ([0-9a-f]{32}) was cancelled by caller$/;
let server, session, doomed;

before(async () => {
  server = await startServer({ uidBase: UID_BASE });
  session = await connect({ server: server.base });
  doomed = await connect({ server: server.base }); // closed with runs in flight
});
after(async () => {
  await doomed?.close();
  await session?.close();
  await server?.stop();
});

describe('AbortSignal on a streaming run', () => {
  test('aborted after the first chunk: settles within 2 s as "Stream <id> was cancelled by caller"', async () => {
    const ac = new AbortController();
    const chunks = [], errors = [];
    let abortedAt = 0;
    const run = session.code.run(LOOP, 'python', 60, {
      streamBeta: true, signal: ac.signal,
      onStdout: (c) => chunks.push(c),
      onError: (e) => errors.push(e),
    });
    await until(() => chunks.length > 0, 10000, 'the first chunk');
    abortedAt = performance.now();
    ac.abort();
    const r = await within(run, 2000, 'the cancelled run');
    assert.ok(performance.now() - abortedAt < 2000);

    assert.equal(r.success, false);
    const [, id] = CANCELLED.exec(r.errorMessage) ?? [];
    assert.ok(id, `errorMessage ${JSON.stringify(r.errorMessage)}`);
    assert.match(id, INVOCATION_ID);
    assert.equal(r.requestId, '');
    assert.equal(r.executionTime, 0);
    assert.equal(r.executionCount, undefined);
    // What arrived before the abort is kept; nothing arrives after it.
    assert.ok(r.logs.stdout.length >= 1);
    assert.ok(r.logs.stdout.every((c) => /^(tick\n)+$/.test(c)), JSON.stringify(r.logs.stdout));
    assert.deepEqual(chunks, r.logs.stdout);
    // As the TS SDK does, the stream's failure is also the result's error.
    assert.deepEqual(r.error, { name: 'ExecutionError', value: r.errorMessage, traceback: '' });
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof Error);
    assert.equal(errors[0].name, 'WsCancelledError');
    assert.equal(errors[0].message, r.errorMessage);

    // The cancel frame stops the sandbox on codepane-server.
    await expectNoSandboxProcesses(2000, UID_BASE);
    const late = chunks.length;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(chunks.length, late, 'onStdout called after the cancel');
  });

  test('a busy loop without output, aborted mid-way, is cancelled and killed the same way', async () => {
    const ac = new AbortController();
    const run = session.code.run(BUSY, 'python', 60, { streamBeta: true, signal: ac.signal });
    await until(() => sandboxProcesses(64, UID_BASE).some((p) => p.includes('python3')), 10000, 'the sandbox to start');
    const t0 = performance.now();
    ac.abort();
    const r = await within(run, 2000, 'the cancelled run');
    assert.ok(performance.now() - t0 < 2000);
    assert.equal(r.success, false);
    assert.match(r.errorMessage, CANCELLED);
    await expectNoSandboxProcesses(2000, UID_BASE);
  });

  test('the next runs on the same session work (streaming and HTTP)', async () => {
    const s = await session.code.run("print('after')", 'python', 60, { streamBeta: true });
    assert.equal(s.success, true, s.errorMessage);
    assert.deepEqual(s.logs.stdout, ['after\n']);
    assert.match(s.requestId, INVOCATION_ID);
    assert.equal(session.streamState, 'open');
    const h = await session.code.run("print('after')", 'python');
    assert.equal(h.success, true, h.errorMessage);
    assert.deepEqual(h.logs.stdout, ['after\n']);
    assert.match(h.requestId, HTTP_REQUEST_ID);
  });

  test('aborting after the run finished changes nothing', async () => {
    const ac = new AbortController();
    const r = await session.code.run("print('done')", 'python', 60, { streamBeta: true, signal: ac.signal });
    ac.abort();
    assert.equal(r.success, true);
    const next = await session.code.run("print('next')", 'python', 60, { streamBeta: true });
    assert.deepEqual(next.logs.stdout, ['next\n']);
  });
});

describe('AbortSignal on an HTTP run', () => {
  test('aborted mid-way: settles within 2 s with "Run was cancelled by caller"', async () => {
    const ac = new AbortController();
    const run = session.code.run("import time\ntime.sleep(10)\nprint('never')", 'python', 60, { signal: ac.signal });
    await until(() => sandboxProcesses(64, UID_BASE).some((p) => p.includes('python3')), 10000, 'the sandbox to start');
    const t0 = performance.now();
    ac.abort();
    const r = await within(run, 2000, 'the aborted HTTP run');
    assert.ok(performance.now() - t0 < 2000);
    assert.deepEqual(r, localFailure('Run was cancelled by caller'));
    // codepane-server stops a run whose HTTP client went away.
    await expectNoSandboxProcesses(2000, UID_BASE);
  });
});

describe('a signal aborted before run()', () => {
  let standin, adopted;
  before(async () => {
    standin = await startCountingServer();
    adopted = await connect(standin.session);
  });
  after(async () => {
    await adopted?.close();
    await standin?.stop();
  });

  for (const streamBeta of [false, true]) {
    test(`${streamBeta ? 'streaming' : 'HTTP'}: fails at once, without any network traffic`, async () => {
      const calls = [];
      const r = await adopted.code.run("print('x')", 'python', 60, {
        streamBeta, signal: AbortSignal.abort(), onError: (e) => calls.push(e), onStdout: (c) => calls.push(c),
      });
      assert.deepEqual(r, localFailure('Failed to run code: the run was cancelled before it started'));
      assert.deepEqual(calls, []);
      assert.equal(adopted.streamState, 'idle');
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(standin.counts, { connections: 0, requests: 0, upgrades: 0, frames: 0 });
    });
  }

  test('on the real server too: no sandbox is started', async () => {
    const r = await session.code.run("import time\ntime.sleep(5)", 'python', 60, { streamBeta: true, signal: AbortSignal.abort() });
    assert.deepEqual(r, localFailure('Failed to run code: the run was cancelled before it started'));
    assert.deepEqual(sandboxProcesses(64, UID_BASE), []);
  });
});

describe('session.close() with runs in flight', () => {
  test('settles a pending streaming run and a pending HTTP run at once; later runs fail', async () => {
    const s = doomed;
    const chunks = [], errors = [];
    const streaming = s.code.run("import time\nprint('x', flush=True)\ntime.sleep(20)", 'python', 60, {
      streamBeta: true, onStdout: (c) => chunks.push(c), onError: (e) => errors.push(e),
    });
    const http = s.code.run("import time\ntime.sleep(20)", 'python');
    await until(() => chunks.length > 0, 10000, 'the streaming run\'s first chunk');
    await until(() => sandboxProcesses(64, UID_BASE).filter((p) => p.includes('python3')).length === 2, 10000, 'both sandboxes');
    const t0 = performance.now();
    const closing = s.close();
    const [rs, rh] = await within(Promise.all([streaming, http]), 1000, 'the pending runs');
    const ms = performance.now() - t0;
    await closing;
    assert.ok(ms < 1000, `settled after ${ms.toFixed(0)} ms`);

    assert.equal(rs.success, false);
    assert.equal(rs.errorMessage, 'WS client is closed');
    assert.equal(rs.requestId, '');
    assert.equal(rs.executionTime, 0);
    assert.deepEqual(rs.logs.stdout, ['x\n']);
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof Error);
    assert.equal(errors[0].name, 'WsConnectionClosedError');
    assert.equal(errors[0].message, 'WS client is closed');
    assert.deepEqual(rh, localFailure('Failed to run code: the session was closed before the run finished'));
    assert.equal(s.streamState, 'closed');
    // Both sandboxes stop: the socket closed and the HTTP request went away.
    await expectNoSandboxProcesses(2000, UID_BASE);

    for (const streamBeta of [false, true]) {
      const later = await s.code.run("print('x')", 'python', 60, { streamBeta });
      assert.deepEqual(later, localFailure('Failed to run code: the session is closed'));
    }
    await s.close(); // idempotent
    assert.equal(s.streamState, 'closed');
  });

  test('close() released the session on the server: its linkUrl no longer runs code', async () => {
    // The same credentials, adopted by a new Session object (no request to create it).
    const again = await connect({ linkUrl: doomed.linkUrl, token: doomed.token, toolList: doomed.toolList });
    const h = await again.code.run("print(1)", 'python');
    await again.close();
    assert.equal(h.success, false);
    assert.match(h.errorMessage, /^HTTP request failed with code: 4\d\d$/);
    assert.match(h.requestId, HTTP_REQUEST_ID);
  });
});
