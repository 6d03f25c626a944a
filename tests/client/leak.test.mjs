// The WASM heap does not grow with the number of runs: every request, frame, result and
// invocation the core allocates for a run is freed when the run settles (heapInUse() is
// emmalloc's own count of bytes in use, src/client/client.c).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { heapInUse, useSession } from './helpers.mjs';

const UID_BASE = 64320;
const CONCURRENCY = 10;
const ctx = useSession(UID_BASE, ['--max-runs', '4']);

/** Run runs [from, to) CONCURRENCY at a time; run i is `make(i)` → [promise, check]. */
async function runAll(from, to, make) {
  const failures = [];
  for (let start = from; start < to; start += CONCURRENCY) {
    const batch = [];
    for (let i = start; i < Math.min(start + CONCURRENCY, to); i++) {
      const [promise, check] = make(i);
      batch.push(promise.then((r) => { const why = check(r); if (why) failures.push(`run ${i}: ${why}`); }));
    }
    await Promise.all(batch);
  }
  return failures;
}

/** print(i), every other run streaming; each must succeed with exactly its output. */
function printRun(i) {
  const streamBeta = i % 2 === 1;
  return [
    ctx.session.code.run(`print(${i})`, 'python', 30, { streamBeta, onStdout: () => {} }),
    (r) => (r.success && r.logs.stdout.join('') === `${i}\n` ? null : JSON.stringify(r)),
  ];
}

test('1,000 runs (half streaming) leave the WASM heap exactly as it was', async () => {
  // Warm-up in the same pattern: the connection, its invocation table at full width, the
  // glue's buffers are allocated once and kept.
  assert.deepEqual(await runAll(0, 20, printRun), []);
  const warm = heapInUse();
  assert.ok(warm > 0);
  const t0 = performance.now();
  const failures = await runAll(20, 1020, printRun);
  const seconds = (performance.now() - t0) / 1000;
  assert.deepEqual(failures, [], `${failures.length} runs failed`);
  assert.equal(heapInUse(), warm, `heap in use grew from ${warm} to ${heapInUse()} bytes over 1,000 runs (${seconds.toFixed(1)} s)`);
});

test('200 failing, cancelled and refused runs leave the heap exactly as it was', async () => {
  const kinds = [
    // a python exception, over both routes
    (i) => [ctx.session.code.run(`print(${i})\nraise ValueError('v${i}')`, 'python', 30, { streamBeta: i % 2 === 1 }),
      (r) => (!r.success && r.error?.value.includes(`v${i}`) ? null : JSON.stringify(r))],
    // a streaming run cancelled before its end
    (i) => {
      const ac = new AbortController();
      return [ctx.session.code.run(`import time\nprint(${i}, flush=True)\ntime.sleep(5)`, 'python', 30, {
        streamBeta: true, signal: ac.signal, onStdout: () => ac.abort(),
      }), (r) => (/^Stream [0-9a-f]{32} was cancelled by caller$/.test(r.errorMessage) ? null : JSON.stringify(r))];
    },
    // an HTTP run cancelled while in flight
    (i) => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 20);
      return [ctx.session.code.run(`import time\ntime.sleep(5)\nprint(${i})`, 'python', 30, { signal: ac.signal }),
        (r) => (r.errorMessage === 'Run was cancelled by caller' ? null : JSON.stringify(r))];
    },
    // refused locally
    (i) => [ctx.session.code.run('x', i % 2 ? 'ruby' : 'python', i % 2 ? 60 : -1, { streamBeta: i % 4 === 1 }),
      (r) => (!r.success && r.requestId === '' ? null : JSON.stringify(r))],
    // a main result and stderr
    (i) => [ctx.session.code.run(`import sys\nprint('e', file=sys.stderr)\n${i} * 2`, 'python', 30, { streamBeta: i % 2 === 1 }),
      (r) => (r.success && r.results[0]?.text === String(i * 2) && r.logs.stderr.join('') === 'e\n' ? null : JSON.stringify(r))],
  ];
  const make = (i) => kinds[i % kinds.length](i);
  assert.deepEqual(await runAll(0, 20, make), []);
  const warm = heapInUse();
  const failures = await runAll(20, 220, make);
  assert.deepEqual(failures, [], `${failures.length} runs did not end as expected`);
  assert.equal(heapInUse(), warm, `heap in use grew from ${warm} to ${heapInUse()} bytes over 200 runs`);
});
