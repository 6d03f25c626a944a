// session.code.run for every language, over both routes (LinkUrl HTTP, spec §3, and the
// session WebSocket, spec §6), against the real codepane-server: the exact shape of the
// result object, UTF-8 output, language aliases (spec §7), errors and main results.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { HELLO, HTTP_REQUEST_ID, INVOCATION_ID, resultText, useSession } from './helpers.mjs';

const UID_BASE = 64000;
const ctx = useSession(UID_BASE);

const ROUTES = [
  { route: 'HTTP', opts: () => ({}), requestId: HTTP_REQUEST_ID },
  { route: 'streaming', opts: (o) => ({ streamBeta: true, ...o }), requestId: INVOCATION_ID },
];

/** Every key of a successful run without rich results or error, in the SDK's names. */
const SUCCESS_KEYS = ['errorMessage', 'executionCount', 'executionTime', 'logs', 'requestId', 'results', 'success'];

/** Assert the exact shape of a successful run with no rich results. */
function assertSuccess(r, { stdout, requestId }) {
  assert.deepEqual(Object.keys(r).sort(), SUCCESS_KEYS, JSON.stringify(r));
  assert.equal(r.success, true);
  assert.equal(r.errorMessage, '');
  assert.equal(r.error, undefined);
  assert.deepEqual(Object.keys(r.logs).sort(), ['stderr', 'stdout']);
  assert.ok(r.logs.stdout.every((c) => typeof c === 'string' && c.length > 0), JSON.stringify(r.logs.stdout));
  assert.equal(r.logs.stdout.join(''), stdout);
  assert.deepEqual(r.logs.stderr, []);
  assert.deepEqual(r.results, []);
  assert.match(r.requestId, requestId);
  assert.equal(typeof r.executionCount, 'number');
  assert.ok(Number.isInteger(r.executionCount) && r.executionCount >= 1, `executionCount ${r.executionCount}`);
  assert.equal(typeof r.executionTime, 'number');
  assert.ok(r.executionTime > 0 && r.executionTime < 30, `executionTime ${r.executionTime}`);
}

const PROGRAMS = {
  python: `print('${HELLO}')\nprint('second line')`,
  javascript: `console.log('${HELLO}');\nconsole.log('second line');`,
  java: `System.out.println("${HELLO}");\nSystem.out.println("second line");`,
  r: `cat("${HELLO}\\n")\ncat("second line\\n")`,
};
const EXPECTED = `${HELLO}\nsecond line\n`;

describe('every language, both routes: UTF-8 stdout and the exact result shape', () => {
  for (const [language, code] of Object.entries(PROGRAMS)) {
    test(`${language}, HTTP: success, stdout, link-… requestId, count and time`, async () => {
      const r = await ctx.session.code.run(code, language);
      assertSuccess(r, { stdout: EXPECTED, requestId: HTTP_REQUEST_ID });
    });

    test(`${language}, streaming: onStdout chunks are logs.stdout, 32-hex requestId`, async () => {
      const chunks = [];
      let settled = false, late = 0;
      const r = await ctx.session.code.run(code, language, 60, {
        streamBeta: true,
        onStdout: (c) => { if (settled) late++; chunks.push(c); },
      }).finally(() => { settled = true; });
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(late, 0, 'onStdout called after the run settled');
      assertSuccess(r, { stdout: EXPECTED, requestId: INVOCATION_ID });
      assert.equal(chunks.join(''), r.logs.stdout.join(''));
      assert.deepEqual(chunks, r.logs.stdout); // each chunk exactly as the server sent it
      assert.equal(ctx.session.streamState, 'open');
    });
  }
});

describe('language names are trimmed, case-folded and aliased (spec §7)', () => {
  // Each program only runs in its own language: an alias that went elsewhere would fail.
  const cases = [
    ['PY', 'python', 'print(2 ** 10)', '1024\n'],
    [' Python3 ', 'python', 'print(2 ** 10)', '1024\n'],
    ['js', 'javascript', "console.log([1, 2].map((x) => x * 2).join(','))", '2,4\n'],
    ['Node', 'javascript', "console.log([1, 2].map((x) => x * 2).join(','))", '2,4\n'],
    ['nodejs', 'javascript', "console.log([1, 2].map((x) => x * 2).join(','))", '2,4\n'],
    ['JAVA', 'java', 'System.out.println(6 * 7);', '42\n'],
    ['R', 'r', 'cat(6 * 7, "\\n", sep = "")', '42\n'],
  ];
  for (const { route, opts, requestId } of ROUTES) {
    for (const [alias, , code, stdout] of cases) {
      test(`${JSON.stringify(alias)} over ${route}`, async () => {
        const r = await ctx.session.code.run(code, alias, 60, opts());
        assertSuccess(r, { stdout, requestId });
      });
    }
  }
});

describe('python errors', () => {
  test('HTTP: 1/0 fails with the executionError of the payload (spec §5.2)', async () => {
    const r = await ctx.session.code.run("print('before')\n1/0", 'python');
    assert.equal(r.success, false);
    assert.match(r.errorMessage, /ZeroDivisionError/);
    assert.equal(r.errorMessage, 'ZeroDivisionError: division by zero');
    assert.deepEqual(r.error, { name: 'ExecutionError', value: 'ZeroDivisionError: division by zero', traceback: '' });
    assert.equal(r.logs.stdout.join(''), 'before\n');
    assert.deepEqual(r.results, []);
    assert.match(r.requestId, HTTP_REQUEST_ID);
    assert.ok(Number.isInteger(r.executionCount));
    assert.ok(r.executionTime > 0);
  });

  test('streaming: 1/0 fails with the error event and the end\'s executionError (spec §6.6)', async () => {
    const errors = [];
    const r = await ctx.session.code.run("print('before')\n1/0", 'python', 60, { streamBeta: true, onError: (e) => errors.push(e) });
    assert.equal(r.success, false);
    assert.match(r.errorMessage, /ZeroDivisionError/);
    assert.equal(r.errorMessage, 'ZeroDivisionError: division by zero');
    assert.equal(r.error.name, 'ZeroDivisionError');
    assert.equal(r.error.value, 'division by zero');
    assert.match(r.error.traceback, /ZeroDivisionError: division by zero\n$/);
    assert.deepEqual(r.logs.stdout, ['before\n']);
    assert.match(r.requestId, INVOCATION_ID);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, 'ZeroDivisionError');
  });
});

describe('main results and resultText', () => {
  for (const { route, opts, requestId } of ROUTES) {
    test(`${route}: a python last expression is the main result; resultText is its text`, async () => {
      const r = await ctx.session.code.run("x = 6\nprint('side')\nx * 7", 'python', 60, opts());
      assert.equal(r.success, true);
      assert.deepEqual(r.results, [{ text: '42', isMainResult: true }]);
      assert.deepEqual(r.logs.stdout, ['side\n']);
      assert.match(r.requestId, requestId);
      assert.equal(resultText(r), '42');
    });

    test(`${route}: resultText of a stdout-only run is every stdout chunk joined`, async () => {
      const r = await ctx.session.code.run("import time\nprint('a', flush=True)\ntime.sleep(0.2)\nprint('b', flush=True)", 'python', 60, opts());
      assert.equal(r.success, true);
      assert.deepEqual(r.results, []);
      assert.equal(r.logs.stdout.join(''), 'a\nb\n');
      assert.equal(resultText(r), 'a\nb\n');
    });
  }

  test('streaming: flushed prints 0.2 s apart are separate chunks, and resultText joins them', async () => {
    const r = await ctx.session.code.run("import time\nprint('a', flush=True)\ntime.sleep(0.2)\nprint('b', flush=True)", 'python', 60, { streamBeta: true });
    assert.deepEqual(r.logs.stdout, ['a\n', 'b\n']);
    assert.equal(resultText(r), 'a\nb\n');
  });

  test('resultText of an empty result is ""', () => {
    assert.equal(resultText({ success: true, logs: { stdout: [], stderr: [] }, results: [], executionTime: 0, errorMessage: '' }), '');
  });
});
