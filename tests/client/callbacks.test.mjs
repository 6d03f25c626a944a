// The streaming callbacks (RunOptions onStdout/onStderr/onError/onResult) against the
// real codepane-server: a throwing callback breaks nothing (spec §11: "do not tear down
// the socket if a user callback fails"), callbacks are optional, concurrent runs are
// multiplexed on the one session WebSocket (spec §6.1), results and error events arrive
// through their callbacks with the shapes of spec §6.5/§6.6.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { INVOCATION_ID, useSession } from './helpers.mjs';

const UID_BASE = 64256;
// Enough sandboxes that the concurrent runs below really run at the same time.
const ctx = useSession(UID_BASE, ['--max-runs', '6']);

const lines = (tag, n, sleepS, language = 'python') => language === 'python'
  ? `import time\nfor k in range(${n}):\n    print('${tag}', k, flush=True)\n    time.sleep(${sleepS})`
  : `(async () => { for (let k = 0; k < ${n}; k++) { console.log('${tag}', k); await new Promise((r) => setTimeout(r, ${sleepS * 1000})); } })();\nundefined;`;
const expected = (tag, n) => Array.from({ length: n }, (_, k) => `${tag} ${k}\n`).join('');

/** Capture console.error (where api.mjs reports a throwing callback when there is no
 * globalThis.reportError, as in Node) while fn runs. */
async function capturingConsoleError(fn) {
  const seen = [];
  const original = console.error;
  console.error = (...args) => seen.push(args);
  try {
    return { value: await fn(), seen };
  } finally {
    console.error = original;
  }
}

describe('a throwing callback', () => {
  test('a throwing onStdout breaks neither the socket nor a concurrent run on the ctx.session', async () => {
    const boom = new Error('callback failure');
    let thrown = 0;
    const other = [];
    const otherCalls = { stdout: 0, stderr: 0, error: 0, result: 0 };
    const { value: [a, b], seen } = await capturingConsoleError(() => Promise.all([
      ctx.session.code.run(lines('A', 5, 0.1), 'python', 30, {
        streamBeta: true, onStdout: () => { thrown++; throw boom; },
      }),
      ctx.session.code.run(`${lines('B', 5, 0.1)}\nimport sys\nprint('warn', file=sys.stderr, flush=True)\n7`, 'python', 30, {
        streamBeta: true,
        onStdout: (c) => { otherCalls.stdout++; other.push(c); },
        onStderr: (c) => { otherCalls.stderr++; assert.equal(c, 'warn\n'); },
        onResult: (x) => { otherCalls.result++; assert.deepEqual(x, { text: '7', isMainResult: true }); },
        onError: () => { otherCalls.error++; },
      }),
    ]));
    // Both complete with all their chunks.
    assert.equal(a.success, true, a.errorMessage);
    assert.equal(a.logs.stdout.join(''), expected('A', 5));
    assert.equal(thrown, a.logs.stdout.length, 'onStdout was not called for every chunk');
    assert.equal(b.success, true, b.errorMessage);
    assert.equal(b.logs.stdout.join(''), expected('B', 5));
    // Every callback of the other run fired, once per event.
    assert.deepEqual(other, b.logs.stdout);
    assert.deepEqual(b.logs.stderr, ['warn\n']);
    assert.deepEqual(b.results, [{ text: '7', isMainResult: true }]);
    assert.deepEqual(otherCalls, { stdout: b.logs.stdout.length, stderr: 1, error: 0, result: 1 });
    // Each throw was reported, not swallowed.
    assert.equal(seen.length, thrown);
    for (const args of seen) assert.deepEqual(args, ['codepane: a callback threw:', boom]);
    // The socket is still the open one and carries the next run.
    assert.equal(ctx.session.streamState, 'open');
    const next = await ctx.session.code.run("print('next')", 'python', 30, { streamBeta: true });
    assert.deepEqual(next.logs.stdout, ['next\n']);
  });

  test('throwing onResult and onError lose neither the result nor the error', async () => {
    const { value: [ok, bad], seen } = await capturingConsoleError(() => Promise.all([
      ctx.session.code.run('6 * 7', 'python', 30, { streamBeta: true, onResult: () => { throw new Error('r'); } }),
      ctx.session.code.run("raise KeyError('k')", 'python', 30, { streamBeta: true, onError: () => { throw new Error('e'); } }),
    ]));
    assert.equal(ok.success, true);
    assert.deepEqual(ok.results, [{ text: '42', isMainResult: true }]);
    assert.equal(bad.success, false);
    assert.equal(bad.error.name, 'KeyError');
    assert.equal(seen.length, 2);
    assert.equal(ctx.session.streamState, 'open');
  });
});

describe('callbacks are optional', () => {
  for (const [label, options] of [
    ['no callbacks at all', { streamBeta: true }],
    ['callbacks null or undefined', { streamBeta: true, onStdout: null, onStderr: undefined, onError: null, onResult: undefined }],
    ['callbacks that are not functions', { streamBeta: true, onStdout: 'x', onStderr: 1, onError: {}, onResult: true }],
  ]) {
    test(label, async () => {
      const r = await ctx.session.code.run("import sys\nprint('out', flush=True)\nprint('err', file=sys.stderr, flush=True)\n1 + 1", 'python', 30, options);
      assert.equal(r.success, true, r.errorMessage);
      assert.deepEqual(r.logs.stdout, ['out\n']);
      assert.deepEqual(r.logs.stderr, ['err\n']);
      assert.deepEqual(r.results, [{ text: '2', isMainResult: true }]);
      const bad = await ctx.session.code.run('1/0', 'python', 30, options);
      assert.equal(bad.success, false);
      assert.equal(bad.errorMessage, 'ZeroDivisionError: division by zero');
    });
  }
});

describe('several streaming runs multiplexed on one ctx.session', () => {
  test('5 concurrent runs (python and javascript) each get exactly their own output', async () => {
    const order = []; // [run index, chunk] in arrival order over all runs
    const runs = [0, 1, 2, 3, 4].map((i) => {
      const language = i % 2 ? 'javascript' : 'python';
      const chunks = [];
      const promise = ctx.session.code.run(lines(`run${i}`, 4, 0.15, language), language, 30, {
        streamBeta: true,
        onStdout: (c) => { chunks.push(c); order.push([i, c]); },
      });
      return { i, language, chunks, promise };
    });
    const results = await Promise.all(runs.map((r) => r.promise));
    const ids = new Set();
    for (const { i, language, chunks } of runs) {
      const r = results[i];
      assert.equal(r.success, true, `${language} run${i}: ${r.errorMessage}`);
      assert.equal(r.logs.stdout.join(''), expected(`run${i}`, 4), `${language} run${i}`);
      assert.deepEqual(chunks, r.logs.stdout);
      assert.deepEqual(r.results, []);
      assert.match(r.requestId, INVOCATION_ID);
      ids.add(r.requestId);
    }
    assert.equal(ids.size, 5, 'invocation ids are not distinct');
    // They were in flight together: some run's chunk arrived between two of another's.
    const first = new Map(), last = new Map();
    order.forEach(([i], at) => { if (!first.has(i)) first.set(i, at); last.set(i, at); });
    const interleaved = order.some(([i], at) => [...first.keys()].some((j) => j !== i && first.get(j) < at && at < last.get(j)));
    assert.ok(interleaved, `runs did not overlap: ${JSON.stringify(order)}`);
  });
});

describe('onResult and onError', () => {
  test('onResult receives the main result of a python last expression before the run settles', async () => {
    const got = [];
    let settled = false;
    const r = await ctx.session.code.run("x = 1\nx + 1", 'python', 30, {
      streamBeta: true, onResult: (item) => got.push({ item, settled }),
    }).finally(() => { settled = true; });
    assert.deepEqual(got, [{ item: { text: '2', isMainResult: true }, settled: false }]);
    assert.deepEqual(r.results, [{ text: '2', isMainResult: true }]);
    assert.equal(r.success, true);
  });

  test("python raise ValueError('boom'): onError gets the server's error payload; result.error from it", async () => {
    const errors = [], out = [];
    const r = await ctx.session.code.run("print('before', flush=True)\nraise ValueError('boom')", 'python', 30, {
      streamBeta: true, onError: (e) => errors.push(e), onStdout: (c) => out.push(c),
    });
    const traceback = 'Traceback (most recent call last):\n  File "<code>", line 2, in <module>\n' +
      "    raise ValueError('boom')\nValueError: boom\n";
    // codepane-server's error event: {code, message, traceback} (spec §6.5 names
    // {code, message, traceId}; traceback is codepane's extension, docs/protocol.md).
    assert.equal(errors.length, 1);
    assert.equal(errors[0] instanceof Error, false);
    assert.deepEqual(errors[0], { code: 'ValueError', message: 'boom', traceback });
    // Spec §6.5/§6.6: name = code, value = message; the traceback extension is kept.
    assert.deepEqual(r.error, { name: 'ValueError', value: 'boom', traceback });
    assert.equal(r.success, false);
    // error_message = the end's executionError when present (spec §6.6).
    assert.equal(r.errorMessage, 'ValueError: boom');
    assert.deepEqual(r.logs.stdout, ['before\n']);
    assert.deepEqual(out, ['before\n']);
    assert.match(r.requestId, INVOCATION_ID); // a run that ended (failed) keeps its id
    assert.ok(Number.isInteger(r.executionCount));
    assert.ok(r.executionTime > 0);
  });

  test('javascript throw: the same mapping', async () => {
    const errors = [];
    const r = await ctx.session.code.run("throw new RangeError('out of range')", 'javascript', 30, {
      streamBeta: true, onError: (e) => errors.push(e),
    });
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, 'RangeError');
    assert.equal(errors[0].message, 'out of range');
    assert.match(errors[0].traceback, /RangeError: out of range/);
    assert.deepEqual(r.error, { name: 'RangeError', value: 'out of range', traceback: errors[0].traceback });
    assert.equal(r.success, false);
    assert.match(r.errorMessage, /RangeError: out of range/);
  });
});
