// Streaming delivers each flushed chunk when it is produced, not at the end of the run
// (spec §6.5, §10.1: the SDK integration tests' "genuinely incremental delivery").
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { INVOCATION_ID, useSession } from './helpers.mjs';

const UID_BASE = 64064;
const ctx = useSession(UID_BASE);

/** Run `code` streaming; every onStdout call and the settling, with arrival times (ms). */
async function timedRun(code, language) {
  const calls = [];
  const t0 = performance.now();
  const result = await ctx.session.code.run(code, language, 30, {
    streamBeta: true,
    onStdout: (chunk) => calls.push({ chunk, at: performance.now() - t0 }),
  });
  return { result, calls, settledAt: performance.now() - t0 };
}

function assertIncremental({ result, calls, settledAt }) {
  assert.equal(result.success, true, result.errorMessage);
  assert.match(result.requestId, INVOCATION_ID);
  assert.deepEqual(calls.map((c) => c.chunk), ['a\n', 'b\n']);
  assert.deepEqual(result.logs.stdout, ['a\n', 'b\n']);
  const [first, second] = calls;
  assert.ok(second.at - first.at >= 800, `chunks only ${(second.at - first.at).toFixed(0)} ms apart`);
  assert.ok(settledAt - first.at >= 800, `first chunk only ${(settledAt - first.at).toFixed(0)} ms before the run settled`);
  assert.ok(settledAt >= second.at, 'the run settled before its last chunk was delivered');
  assert.ok(settledAt >= 1000, `the run took ${settledAt.toFixed(0)} ms, less than its 1 s sleep`);
}

test('python print / sleep(1) / print: two onStdout calls ≥ 0.8 s apart, the first ≥ 0.8 s before the end', async () => {
  assertIncremental(await timedRun("import time\nprint('a', flush=True)\ntime.sleep(1)\nprint('b', flush=True)", 'python'));
});

test('javascript console.log / setTimeout(1000) / console.log: the same', async () => {
  // The trailing `undefined;` keeps the Timeout object from becoming the main result.
  const r = await timedRun("console.log('a');\nsetTimeout(() => console.log('b'), 1000);\nundefined;", 'javascript');
  assertIncremental(r);
  assert.deepEqual(r.result.results, []);
});
