// Streaming run_code over the session WebSocket (spec §6, §10.1, §12 items 7–10) against
// the real codepane-server with real sandboxes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  createSession, expectNoSandboxProcesses, health, invocationId, openWs, startServer, streamRun,
} from './harness.mjs';

const HELLO = 'héllo ✓ 😀';
let server, session, ws;

before(async () => {
  server = await startServer();
  session = await createSession(server);
  ws = await openWs(session);
});
after(async () => {
  ws?.close();
  await server?.stop();
});

describe('streaming', () => {
  test('python chunks of print/sleep/print arrive separately, at least 0.8 s apart (spec §10.1)', async () => {
    const code = "import time\nprint('hello', flush=True)\ntime.sleep(1)\nprint(2, flush=True)\n";
    const t0 = performance.now();
    const run = streamRun(ws, code, 'python');
    const r = await run.done;
    const total = performance.now() - t0;
    assert.deepEqual(r.stdout, ['hello\n', '2\n']);
    const [first, second] = run.frames.filter((f) => f.data.eventType === 'stdout');
    assert.ok(second.at - first.at >= 800, `gap ${second.at - first.at} ms`);
    assert.ok(total >= 1000);
    assert.equal(r.end.status, 'finished');
    assert.equal(r.end.executionCount >= 1, true);
    assert.equal(typeof r.end.executionTime, 'number');
    assert.equal(r.end.executionError, undefined);
    // The first chunk arrives long before the run ends.
    assert.ok(run.frames.find((f) => f.data.phase === 'end').at - first.at >= 800);
  });

  test('frames carry the AGB envelope: echoed id, source server, target SDK, increasing seq', async () => {
    const r = await streamRun(ws, "print('a')\nprint('b')", 'python').done;
    for (const f of r.frames) {
      assert.equal(f.source, 'wuying_codespace');
      assert.equal(f.target, 'SDK');
    }
    const seqs = r.frames.map((f) => f.data.seq);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1));
    assert.equal(r.frames.filter((f) => f.data.phase === 'end').length, 1);
    assert.equal(r.frames.at(-1).data.phase, 'end');
  });

  for (const [language, code] of [
    ['python', `print('${HELLO}')`],
    ['javascript', `console.log('${HELLO}')`],
    ['java', `System.out.println("${HELLO}");`],
    ['r', `cat("${HELLO}\\n")`],
  ]) {
    test(`${language}: UTF-8 output is identical (sandbox.md C6)`, async () => {
      const r = await streamRun(ws, code, language).done;
      assert.equal(r.stdout.join(''), `${HELLO}\n`);
      assert.equal(r.end.status, 'finished');
    });
  }

  test('aliases and case are accepted (py, NodeJS, JS)', async () => {
    for (const [lang, code] of [['py', 'print(1)'], ['NodeJS', 'console.log(1)'], [' JS ', 'console.log(1)']]) {
      const r = await streamRun(ws, code, lang).done;
      assert.equal(r.stdout.join(''), '1\n', lang);
    }
  });

  test('python exception: error event with name, value, traceback; end failed with executionError', async () => {
    const r = await streamRun(ws, "print('before')\n1/0\n", 'python').done;
    assert.deepEqual(r.stdout, ['before\n']);
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0].code, 'ZeroDivisionError');
    assert.equal(r.errors[0].message, 'division by zero');
    assert.match(r.errors[0].traceback, /ZeroDivisionError: division by zero/);
    assert.equal(r.end.status, 'failed');
    assert.equal(r.end.executionError, 'ZeroDivisionError: division by zero');
  });

  test('javascript exception becomes an error event with the stack', async () => {
    const r = await streamRun(ws, 'null.x', 'javascript').done;
    assert.equal(r.errors[0].code, 'TypeError');
    assert.match(r.errors[0].message, /Cannot read properties of null/);
    assert.match(r.errors[0].traceback, /TypeError/);
    assert.equal(r.end.status, 'failed');
  });

  test('java: bare statements run; exceptions and compile errors are error events', async () => {
    const ok = await streamRun(ws, 'int x = 6 * 7;\nSystem.out.println(x);', 'java').done;
    assert.equal(ok.stdout.join(''), '42\n');
    const full = await streamRun(ws,
      'public class Hello { public static void main(String[] a) { System.out.println("full"); } }', 'java').done;
    assert.equal(full.stdout.join(''), 'full\n');
    const ex = await streamRun(ws, 'int z = 0;\nSystem.out.println(1 / z);', 'java').done;
    assert.equal(ex.errors[0].code, 'java.lang.ArithmeticException');
    assert.equal(ex.errors[0].message, '/ by zero');
    assert.equal(ex.end.status, 'failed');
    const ce = await streamRun(ws, 'int y = "no";', 'java').done;
    assert.equal(ce.errors[0].code, 'CompilationError');
    assert.match(ce.errors[0].message, /incompatible types/);
    assert.equal(ce.end.status, 'failed');
  });

  test('r: stop() becomes an error event with the message', async () => {
    const r = await streamRun(ws, 'cat("a\\n")\nstop("broken")', 'r').done;
    assert.deepEqual(r.stdout.join(''), 'a\n');
    assert.equal(r.errors[0].message, 'broken');
    assert.equal(r.end.status, 'failed');
  });

  test('several invocations in flight on one socket each get their own output', async () => {
    const runs = [0, 1, 2, 3].map((i) =>
      streamRun(ws, `import time\nfor k in range(3):\n    print('run${i}', k, flush=True)\n    time.sleep(0.1)`, 'python'));
    const results = await Promise.all(runs.map((r) => r.done));
    results.forEach((r, i) => {
      assert.equal(r.stdout.join(''), `run${i} 0\nrun${i} 1\nrun${i} 2\n`);
      assert.equal(r.end.status, 'finished');
    });
  });

  test('cancel frame kills the run and ends it cancelled with the output so far', async () => {
    const run = streamRun(ws, "import time\nprint(0, flush=True)\ntime.sleep(10)\nprint(1)", 'python');
    await new Promise((resolve) => { const i = setInterval(() => { if (run.frames.length) { clearInterval(i); resolve(); } }, 10); });
    const t0 = performance.now();
    ws.send(JSON.stringify({ invocationId: run.id, source: 'SDK', target: 'wuying_codespace', data: { method: 'cancel' } }));
    const r = await run.done;
    assert.ok(performance.now() - t0 < 2000);
    assert.deepEqual(r.stdout, ['0\n']);
    assert.equal(r.end.status, 'cancelled');
    assert.equal(r.end.reason, 'cancelled');
    await expectNoSandboxProcesses();
  });

  test('a timeout ends the run with partial output and the reason', async () => {
    const r = await streamRun(ws, "import time\nprint('started', flush=True)\ntime.sleep(30)", 'python', { timeoutS: 1 }).done;
    assert.deepEqual(r.stdout, ['started\n']);
    assert.equal(r.end.status, 'failed');
    assert.equal(r.end.reason, 'timeout');
    assert.match(r.end.executionError, /TimeoutError/);
    await expectNoSandboxProcesses();
  });

  test('JSON pings and frames without invocationId are ignored; the socket keeps working', async () => {
    ws.send('{"type":"ping"}');
    ws.send('{"hello":1}');
    const r = await streamRun(ws, 'print(5)', 'python').done;
    assert.deepEqual(r.stdout, ['5\n']);
  });
});

describe('refused requests get one error frame for their invocation (spec §6.4, §12.9)', () => {
  const send = (data) => {
    const id = invocationId();
    const p = new Promise((resolve) => {
      const on = (buf) => {
        const f = JSON.parse(buf.toString());
        if (f.invocationId === id) { ws.off('message', on); resolve(f); }
      };
      ws.on('message', on);
    });
    ws.send(JSON.stringify({ invocationId: id, source: 'SDK', target: 'wuying_codespace', data }));
    return p;
  };
  const params = (p) => ({ method: 'run_code', mode: 'stream', params: { language: 'python', timeoutS: 5, code: 'print(1)', ...p } });

  test('unsupported language: the SDK message', async () => {
    const f = await send(params({ language: 'ruby' }));
    assert.equal(f.data.phase, 'error');
    assert.equal(f.data.error, 'Unsupported language: ruby. Supported: java, javascript, python, r');
  });

  for (const [label, timeoutS] of [['zero', 0], ['negative', -1], ['a string', '5'], ['huge', 1e309 /* → null */]]) {
    test(`timeoutS ${label} is refused or defaulted, never unlimited`, async () => {
      const f = await send(params({ timeoutS }));
      if (timeoutS === 1e309) {
        // JSON.stringify turns Infinity into null: a missing value means the default.
        assert.notEqual(f.data.phase, 'error');
      } else {
        assert.equal(f.data.phase, 'error');
        assert.match(f.data.error, /timeoutS/);
      }
    });
  }

  test('unknown method and missing code are refused', async () => {
    const m = await send({ method: 'run_shell', mode: 'stream', params: {} });
    assert.equal(m.data.phase, 'error');
    assert.match(m.data.error, /method/);
    const c = await send({ method: 'run_code', mode: 'stream', params: { language: 'python', timeoutS: 5 } });
    assert.equal(c.data.phase, 'error');
    assert.match(c.data.error, /code/);
  });

  test('the server stays healthy', async () => {
    const h = await health(server);
    assert.equal(h.status, 200);
    assert.equal(h.body.status, 'ok');
  });
});
