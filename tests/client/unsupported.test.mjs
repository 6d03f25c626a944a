// Runs refused by the client itself (spec §7, §6.14, §5.7 "no network call"): an
// unsupported language, a bad timeoutS, streaming without wsUrl. Each settles at once with
// an exact failure and sends nothing: the session points at a local stand-in server that
// counts every TCP connection, HTTP request and WebSocket upgrade.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';

import { connect, localFailure, startCountingServer, TOOL_LIST } from './helpers.mjs';

let standin, session;
const NO_TRAFFIC = { connections: 0, requests: 0, upgrades: 0, frames: 0 };

before(async () => {
  standin = await startCountingServer();
  session = await connect(standin.session);
});
after(async () => {
  await session?.close();
  await standin?.stop();
});

const ROUTES = [['HTTP', false], ['streaming', true]];

/** Run with every callback recorded; assert it settled without calling any of them. */
async function runQuietly(code, language, timeoutS, streamBeta, s = session) {
  const calls = [];
  const record = (name) => (x) => calls.push([name, x]);
  const t0 = performance.now();
  const r = await s.code.run(code, language, timeoutS, {
    streamBeta, onStdout: record('stdout'), onStderr: record('stderr'), onError: record('error'), onResult: record('result'),
  });
  const ms = performance.now() - t0;
  assert.deepEqual(calls, [], 'a callback was called');
  assert.ok(ms < 200, `took ${ms.toFixed(1)} ms`);
  return r;
}

describe('unsupported languages fail locally with the TS SDK message (spec §7)', () => {
  afterEach(async () => {
    await new Promise((resolve) => setTimeout(resolve, 50)); // anything sent would have arrived
    assert.deepEqual(standin.counts, NO_TRAFFIC);
    assert.equal(session.streamState, 'idle');
  });

  // [language as passed, how the message echoes it]
  const cases = [['ruby', 'ruby'], ['bash', 'bash'], ['', ''], [null, ''], [undefined, ''], [' Ruby ', ' Ruby '], ['typescript', 'typescript']];
  for (const [route, streamBeta] of ROUTES) {
    for (const [language, echoed] of cases) {
      test(`${route}: ${JSON.stringify(language) ?? 'undefined'}`, async () => {
        const r = await runQuietly("print('x')", language, 60, streamBeta);
        assert.deepEqual(r, localFailure(`Unsupported language: ${echoed}. Supported: java, javascript, python, r`));
        assert.equal('executionCount' in r, false);
        assert.equal('error' in r, false);
      });
    }
  }
});

describe('a bad timeoutS fails locally', () => {
  afterEach(async () => {
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(standin.counts, NO_TRAFFIC);
  });

  // [timeoutS, String(timeoutS)]
  const cases = [[0, '0'], [-1, '-1'], [NaN, 'NaN'], ['5', '5'], [Infinity, 'Infinity'], [null, 'null'], [-0.5, '-0.5']];
  for (const [route, streamBeta] of ROUTES) {
    for (const [timeoutS, shown] of cases) {
      test(`${route}: ${typeof timeoutS === 'string' ? JSON.stringify(timeoutS) : shown}`, async () => {
        const r = await runQuietly("print('x')", 'python', timeoutS, streamBeta);
        assert.deepEqual(r, localFailure(`Failed to run code: timeoutS must be a positive number of seconds, got ${shown}`));
      });
    }
  }

  test('the language is checked before the timeout', async () => {
    const r = await runQuietly("print('x')", 'ruby', 0, false);
    assert.equal(r.errorMessage, 'Unsupported language: ruby. Supported: java, javascript, python, r');
  });

  test('code that is not a string fails locally', async () => {
    for (const [code, type] of [[42, 'number'], [null, 'object'], [undefined, 'undefined']]) {
      const r = await runQuietly(code, 'python', 60, false);
      assert.deepEqual(r, localFailure(`Failed to run code: code must be a string, got ${type}`));
    }
  });
});

describe('streaming without a WebSocket route (spec §6.14)', () => {
  const MESSAGE = 'Failed to run code: wsUrl is not set on this session. Ensure the session was created with WebSocket support enabled.';
  let noWs, noToken;
  before(async () => {
    const { wsUrl, token, ...rest } = standin.session;
    noWs = await connect({ ...rest, token });
    noToken = await connect({ ...rest, wsUrl });
  });
  after(async () => {
    await noWs?.close();
    await noToken?.close();
  });

  test('a session without wsUrl: success false, the TS SDK message, no rejection, no traffic', async () => {
    assert.equal(noWs.wsUrl, '');
    const r = await runQuietly("print('x')", 'python', 60, true, noWs); // awaited: a rejection fails here
    assert.deepEqual(r, localFailure(MESSAGE));
    assert.equal(noWs.streamState, 'idle');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(standin.counts, NO_TRAFFIC);
  });

  test('a session with wsUrl but no token fails the same way', async () => {
    assert.equal(noToken.token, '');
    const r = await runQuietly("print('x')", 'python', 60, true, noToken);
    assert.deepEqual(r, localFailure(MESSAGE));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(standin.counts, NO_TRAFFIC);
  });
});

// Last: the stand-in does see what a valid run sends, so the zero counts above mean
// something. (This file's other tests must run before it: node:test runs them in order.)
describe('control: valid runs do reach the stand-in', () => {
  test('an HTTP run makes one request to {linkUrl}/callTool', async () => {
    const r = await session.code.run("print('x')", 'python');
    assert.equal(r.success, true, r.errorMessage);
    assert.deepEqual(r.logs.stdout, ['stand-in\n']);
    assert.equal(standin.counts.requests, 1);
    assert.equal(standin.counts.upgrades, 0);
  });

  test('a streaming run makes one WebSocket upgrade and sends one frame', async () => {
    const r = await session.code.run("print('x')", 'python', 60, { streamBeta: true });
    assert.equal(r.success, true, r.errorMessage);
    assert.deepEqual(r.logs.stdout, ['stand-in\n']);
    assert.equal(standin.counts.upgrades, 1);
    assert.equal(standin.counts.frames, 1);
    assert.equal(session.streamState, 'open');
  });

  test('the toolList the stand-in session was adopted with names the run_code server', () => {
    assert.equal(session.toolList, TOOL_LIST);
  });
});
