// Persistent kernels (src/server/kernels/README.md) behind the real server: state kept
// from run to run on both routes, the lifecycle (interrupt keeps the state, a cell that
// will not stop and a kernel that dies cost it, and the run says so), the pool, the idle
// reaper and a session's end. Python is the kernel under test here; tests/kernels drives
// every kernel directly.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  callTool, createSession, expectNoSandboxProcesses, openWs, post, sandboxProcesses, startServer, streamRun,
} from './harness.mjs';

const UID_BASE = 61800;      // the main server of this file
const BARE_BASE = 61864;     // a second one: no pool, a short idle time
const LOST = '; the kernel was restarted and its state (variables, definitions, imports) was lost';
// Enough slots that no test's kernel is evicted to make room for another's.
const KERNEL_ARGS = ['--kernels', 'python', '--interrupt-grace', '1', '--memory', '256M',
  '--max-output-bytes', '65536', '--max-runs', '8'];

let server, bare;
before(async () => {
  [server, bare] = await Promise.all([
    startServer({ uidBase: UID_BASE, args: [...KERNEL_ARGS, '--kernel-pool', 'python=1'] }),
    startServer({ uidBase: BARE_BASE, args: [...KERNEL_ARGS, '--kernel-pool', 'none', '--kernel-idle', '1'] }),
  ]);
});
after(async () => {
  await Promise.all([server?.stop(), bare?.stop()]);
  await expectNoSandboxProcesses(2000, UID_BASE);
  await expectNoSandboxProcesses(2000, BARE_BASE);
});

const made = []; // sessions of `server`, released before the pool test
async function newSession(srv = server) {
  const s = await createSession(srv);
  if (srv === server) made.push(s);
  return s;
}

/** callTool reduced to what a run shows. */
async function run(session, code, timeout = 30) {
  const r = await callTool(session, code, 'python', timeout);
  assert.equal(r.status, 200, r.text);
  const p = r.payload;
  return {
    stdout: p.stdout, results: p.result, error: p.executionError, count: p.execution_count,
  };
}

/** The pids of the python kernels under a server's slot uids (entries "pid(uid comm state)"). */
const pythonKernels = (base) =>
  sandboxProcesses(64, base).filter((p) => p.includes(' python3 ')).map((p) => Number.parseInt(p, 10));

test('the pool is started with the server, before any session asks', async () => {
  for (let t = 0; pythonKernels(UID_BASE).length !== 1; t += 50) {
    assert.ok(t < 10000, `pooled kernels: ${pythonKernels(UID_BASE)}`);
    await sleep(50);
  }
});

describe('state', () => {
  test('a variable set in one run is there in the next, on both routes, and counts go on', async () => {
    const s = await newSession();
    assert.deepEqual(await run(s, 'x = 42\nprint("set")'), { stdout: ['set\n'], results: [], error: undefined, count: 1 });
    assert.deepEqual(await run(s, 'x'), { stdout: [], results: [{ 'text/plain': '42', isMainResult: true }], error: undefined, count: 2 });
    const ws = await openWs(s);
    try {
      const r = await streamRun(ws, 'x += 8\nprint(x)', 'python').done;
      assert.deepEqual(r.stdout, ['50\n']);
      assert.equal(r.end.status, 'finished');
      assert.equal(r.end.executionCount, 3);
    } finally {
      ws.close();
    }
  });

  test('both routes give the same result for the same code', async () => {
    const code = "from IPython.display import display, HTML\nprint('a')\ndisplay(HTML('<b>b</b>'))\n1 + 1";
    const [a, b] = [await newSession(), await newSession()];
    const http = await run(a, code);
    const ws = await openWs(b);
    try {
      const st = await streamRun(ws, code, 'python').done;
      assert.deepEqual(http.stdout, st.stdout);
      assert.deepEqual(http.results, [
        { 'text/plain': '<IPython.core.display.HTML object>', 'text/html': '<b>b</b>', isMainResult: false },
        { 'text/plain': '2', isMainResult: true },
      ]);
      assert.deepEqual(st.results, [
        { mime: { 'text/plain': '<IPython.core.display.HTML object>', 'text/html': '<b>b</b>' }, isMainResult: false },
        { mime: { 'text/plain': '2' }, isMainResult: true },
      ]);
      assert.equal(http.count, st.end.executionCount);
    } finally {
      ws.close();
    }
  });
});

describe('lifecycle', () => {
  test('a timeout interrupts the cell and keeps the state', async () => {
    const s = await newSession();
    await run(s, 'x = 42');
    const t = await run(s, 'while True: pass', 1);
    assert.equal(t.error, 'TimeoutError: the run exceeded its time limit of 1 s');
    assert.deepEqual((await run(s, 'x')).results, [{ 'text/plain': '42', isMainResult: true }]);
  });

  test('a cell that does not stop when interrupted costs the kernel, and the run says the state was lost', async () => {
    const s = await newSession();
    await run(s, 'x = 42');
    const code = 'import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass';
    const t = await run(s, code, 1);
    assert.equal(t.error, 'TimeoutError: the run exceeded its time limit of 1 s; it did not stop when ' +
      'interrupted, so the kernel was restarted and its state (variables, definitions, imports) was lost');
    assert.equal(t.count, undefined);
    const after = await run(s, 'x');
    assert.equal(after.error, "NameError: name 'x' is not defined");
    assert.equal(after.count, 1); // a new kernel counts from 1
  });

  test('a kernel that exits fails its cell with the lost state, and the next run gets a new one', async () => {
    const s = await newSession();
    await run(s, 'x = 1');
    const t = await run(s, 'import os\nos._exit(3)');
    assert.equal(t.error, `KernelDied: the kernel exited with code 3${LOST}`);
    assert.deepEqual(await run(s, 'print("back")'), { stdout: ['back\n'], results: [], error: undefined, count: 1 });
  });

  test('a memory kill restarts the kernel the same way (reason memory)', async () => {
    const s = await newSession();
    const ws = await openWs(s);
    try {
      // Pages written 50 MiB at a time: the 256 MiB cgroup limit is hit long before the
      // data rlimit, so the kernel is killed rather than getting a MemoryError.
      const code = 'x = 1\na = []\nwhile True: a.append(b"x" * (50 << 20))';
      const r = await streamRun(ws, code, 'python', { timeoutS: 30 }).done;
      assert.equal(r.end.reason, 'memory');
      assert.equal(r.end.executionError, `MemoryError: the run exceeded its memory limit${LOST}`);
    } finally {
      ws.close();
    }
    assert.equal((await run(s, 'print("alive")')).stdout[0], 'alive\n');
  });

  test('a cancel interrupts the cell and keeps the state', async () => {
    const s = await newSession();
    const ws = await openWs(s);
    try {
      const first = streamRun(ws, "x = 5\nimport time\nprint('go', flush=True)\nwhile True: time.sleep(0.05)", 'python', {
        onFrame: (f) => {
          if (f.data.eventType === 'stdout') {
            ws.send(JSON.stringify({ invocationId: first.id, source: 'SDK', target: 'wuying_codespace', data: { method: 'cancel' } }));
          }
        },
      });
      const r = await first.done;
      assert.deepEqual(r.stdout, ['go\n']);
      assert.equal(r.end.status, 'cancelled');
      assert.equal(r.end.reason, 'cancelled');
      const x = await streamRun(ws, 'x', 'python').done;
      assert.deepEqual(x.results, [{ mime: { 'text/plain': '5' }, isMainResult: true }]);
    } finally {
      ws.close();
    }
  });

  test('the output cap interrupts the cell with a visible marker and keeps the state', async () => {
    const s = await newSession();
    await run(s, 'y = 7');
    const ws = await openWs(s);
    try {
      const r = await streamRun(ws, "while True: print('x' * 1000)", 'python').done;
      assert.equal(r.end.reason, 'output_limit');
      assert.equal(r.stderr.at(-1), '\n[codepane: output limit of 65536 bytes reached; the run was stopped]\n');
      const y = await streamRun(ws, 'y', 'python').done;
      assert.deepEqual(y.results, [{ mime: { 'text/plain': '7' }, isMainResult: true }]);
    } finally {
      ws.close();
    }
  });
});

describe('pool, idle and the end of a session', () => {
  test('a new session adopts the pooled kernel and the pool is refilled', async () => {
    // The earlier tests' sessions end, so that only the pooled kernel is left.
    for (const s of made.splice(0)) await post(`${server.base}/mcp/releaseSessionAsync`, { sessionId: s.sessionId });
    for (let t = 0; pythonKernels(UID_BASE).length !== 1; t += 50) {
      assert.ok(t < 10000, `kernels left: ${pythonKernels(UID_BASE)}`);
      await sleep(50);
    }
    const before = pythonKernels(UID_BASE);
    const s = await newSession();
    assert.equal((await run(s, 'print("pooled")')).count, 1);
    await sleep(1500); // the refill starts a new kernel
    const after = pythonKernels(UID_BASE);
    for (const p of before) assert.ok(after.includes(p), `pooled kernel ${p} is gone: ${after}`);
    assert.ok(after.length > before.length, `no refill: ${before} → ${after}`);
    await post(`${server.base}/mcp/releaseSessionAsync`, { sessionId: s.sessionId });
  });

  test('releasing a session stops its kernel', async () => {
    const s = await createSession(bare);
    await run(s, 'x = 1');
    assert.equal(pythonKernels(BARE_BASE).length, 1);
    const r = await post(`${bare.base}/mcp/releaseSessionAsync`, { sessionId: s.sessionId });
    assert.equal(r.status, 200);
    await expectNoSandboxProcesses(3000, BARE_BASE);
  });

  test('an idle kernel is stopped after --kernel-idle, and the session gets a new one', async () => {
    const s = await createSession(bare);
    await run(s, 'x = 1');
    await expectNoSandboxProcesses(4000, BARE_BASE);
    const again = await callTool(s, 'print("fresh")', 'python');
    assert.deepEqual(again.payload.stdout, ['fresh\n']);
    assert.equal(again.payload.execution_count, 1);
    // The run says the state is gone, once.
    assert.deepEqual(again.payload.stderr, ["[codepane: this session's python kernel was stopped while idle " +
      '(idle for longer than the server keeps kernels); this run starts a new one, so earlier variables, ' +
      'definitions and imports are gone]\n']);
    assert.deepEqual((await callTool(s, 'print(2)', 'python')).payload.stderr, []);
  });
});

describe('every language, in its sandbox, through the server', () => {
  let all;
  before(async () => {
    all = await startServer({ uidBase: 61900, args: ['--kernels', 'all', '--kernel-pool', 'none', '--max-runs', '6',
      '--interrupt-grace', '3', '--memory', '768M'] });
  });
  after(async () => {
    await all?.stop();
    await expectNoSandboxProcesses(2000, 61900);
  });

  /** Run cells in one session over the WebSocket; resolve with each cell's summary. */
  async function cells(language, codes, timeoutS = 30) {
    const s = await createSession(all);
    const ws = await openWs(s);
    try {
      const out = [];
      for (const code of codes) out.push(await streamRun(ws, code, language, { timeoutS }).done);
      return out;
    } finally {
      ws.close();
      await post(`${all.base}/mcp/releaseSessionAsync`, { sessionId: s.sessionId });
    }
  }
  const main = (r) => r.results.filter((x) => x.isMainResult).map((x) => x.mime['text/plain']);
  const isPng = (b64) => Buffer.from(b64, 'base64').subarray(0, 4).toString('hex') === '89504e47';

  test('python: persistence, the AGB docs\' multi-result examples, a matplotlib PNG, a pandas table', async () => {
    const [set, get, four, three, table] = await cells('python', [
      'x = 42',
      'x',
      "from IPython.display import display, HTML, Markdown\ndisplay(HTML('<p>1</p>'))\ndisplay(Markdown('**2**'))\ndisplay(HTML('<p>3</p>'))\n'value'",
      "import matplotlib.pyplot as plt\nplt.plot([1, 2]); plt.show()\nplt.bar([1], [2]); plt.show()\n7",
      "import pandas as pd\npd.DataFrame({'a': [1, 2]})",
    ], 60);
    assert.equal(set.end.status, 'finished');
    assert.deepEqual(main(get), ['42']);
    assert.deepEqual(four.results.map((r) => r.isMainResult), [false, false, false, true]);
    assert.deepEqual(three.results.map((r) => r.isMainResult), [false, false, true]);
    assert.ok(three.results.slice(0, 2).every((r) => isPng(r.mime['image/png'])));
    assert.match(table.results[0].mime['text/html'], /<table/);
    assert.deepEqual(main(table), ['   a\n0  1\n1  2']);
  });

  test('a cell writing far more than one read at once arrives whole (no overflow in the server)', async () => {
    const [big, bom] = await cells('python', ["print('é' * 200000)", '\ufeffprint(1)']);
    assert.equal(big.stdout.join(''), `${'é'.repeat(200000)}\n`);
    assert.ok(big.stdout.length > 1);
    assert.equal(big.end.status, 'finished');
    assert.deepEqual(bom.stdout, ['1\n']); // a leading BOM is skipped, as in a file
  });

  test('javascript: let persists, top-level await, display', async () => {
    const [a, b, c, d] = await cells('javascript', [
      'let x = 42',
      'x',
      'const y = await new Promise((r) => setTimeout(() => r(x + 1), 50)); y',
      "display('<b>b</b>', 'text/html')",
    ]);
    assert.equal(a.end.status, 'finished');
    assert.deepEqual(main(b), ['42']);
    assert.deepEqual(main(c), ['43']);
    assert.deepEqual(d.results, [{ mime: { 'text/html': '<b>b</b>' }, isMainResult: false }]);
  });

  test('java: int counter = 42; then counter = counter + 8; gives 50', async () => {
    const [a, b, c] = await cells('java', ['int counter = 42;', 'counter = counter + 8;', 'counter']);
    assert.equal(a.end.status, 'finished');
    assert.deepEqual(main(b), ['50']);
    assert.deepEqual(main(c), ['50']);
    assert.equal(c.end.executionCount, 3);
  });

  test('r: persistence, a plot as PNG, a data frame as HTML', async () => {
    const [a, b, plot, df] = await cells('r', ['x <- 42', 'x', 'plot(1:10)', "data.frame(a = 1:2, b = c('x', 'y'))"]);
    assert.equal(a.end.status, 'finished');
    assert.deepEqual(main(b), ['[1] 42']);
    assert.equal(plot.results.length, 1);
    assert.ok(isPng(plot.results[0].mime['image/png']));
    assert.match(df.results[0].mime['text/html'], /<table/);
  });

  for (const [language, set, spin, get, value] of [
    ['python', 'x = 42', 'while True: pass', 'x', '42'],
    ['javascript', 'let x = 42', 'while (true) {}', 'x', '42'],
    ['java', 'int x = 42;', 'while (true) {}', 'x', '42'],
    ['r', 'x <- 42', 'while (TRUE) {}', 'x', '[1] 42'],
  ]) {
    test(`${language}: a timeout interrupts the cell and the state stays`, async () => {
      const s = await createSession(all);
      const ws = await openWs(s);
      try {
        await streamRun(ws, set, language).done;
        const t = await streamRun(ws, spin, language, { timeoutS: 1 }).done;
        assert.equal(t.end.reason, 'timeout');
        assert.equal(t.end.executionError, 'TimeoutError: the run exceeded its time limit of 1 s');
        assert.deepEqual(main(await streamRun(ws, get, language).done), [value]);
      } finally {
        ws.close();
        await post(`${all.base}/mcp/releaseSessionAsync`, { sessionId: s.sessionId });
      }
    });
  }
});

test('a kernel that cannot start fails the run with the reason, and its pool is not refilled', async () => {
  const { mkdtempSync, writeFileSync, rmSync, chmodSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(`${tmpdir()}/cp-broken-kernels-`);
  chmodSync(dir, 0o755);
  writeFileSync(`${dir}/python_kernel.py`, 'import sys\nsys.exit(5)\n');
  const srv = await startServer({ uidBase: 61950, args: ['--kernels', 'python', '--kernels-dir', dir, '--kernel-pool', 'python=1'] });
  try {
    const s = await createSession(srv);
    const r = await run(s, 'print(1)');
    assert.equal(r.error, 'the python kernel did not start (exit code 5)');
    // The pooled kernel (or, if the run adopted it, its replacement) dies too, once.
    const said = /the pooled python kernel died before it was ready \(exit code 5\); no more pooled python kernels\n/g;
    for (let t = 0; !said.test(srv.output().err); t += 50) {
      assert.ok(t < 5000, `stderr: ${srv.output().err}`);
      await sleep(50);
    }
    await sleep(500);
    assert.equal(srv.output().err.match(said).length, 1);
    const health = await fetch(`${srv.base}/health`);
    assert.equal(health.status, 200);
  } finally {
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  await expectNoSandboxProcesses(2000, 61950);
});
