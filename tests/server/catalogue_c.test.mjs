// Attack catalogue, group C: output encoding (shared/spec/sandbox.md §2 C1–C7). Whatever
// bytes a snippet writes, every text frame is valid UTF-8 (the npm `ws` client validates
// it and would fail the connection with 1007), invalid bytes become U+FFFD, multibyte
// characters split across writes arrive whole, and the rest is delivered verbatim. C6
// (UTF-8 from all four languages on stdout) and C7 (python print/sleep/print latency)
// are in stream.test.mjs; here they are extended to stderr and to the other runtimes.
//
// Under CP_TEST_KERNELS (harness.mjs) the runs go to the session's persistent kernel,
// with the server's default kernel pool (the session adopts a pre-started kernel), and a
// cell's output must be its own: nothing a cell leaves half-written may surface in the
// next one.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { callTool, streamRun, useCatalogueServer } from './harness.mjs';

/** Every test gets a deadline, so a server that never answers fails instead of hanging. */
const T = { timeout: 60_000 };

const ctx = useCatalogueServer({ uidBase: 61400, kernelPool: null });
const REPL = '\uFFFD';

let socketErrors = 0, socketCloses = 0;
test('setup: watch the socket for UTF-8 errors and closes', T, () => {
  ctx.ws.on('error', () => { socketErrors++; });
  ctx.ws.on('close', () => { socketCloses++; });
});

describe('C1–C3 invalid and split UTF-8', () => {
  test('C1 invalid bytes on stdout become U+FFFD; the socket stays open', T, async () => {
    const r = await ctx.run("import sys\nsys.stdout.buffer.write(b'\\xff\\xfe\\x00A\\n')");
    assert.equal(r.out, `${REPL}${REPL}\u0000A\n`);
    assert.equal(r.end.status, 'finished');
    assert.equal(ctx.ws.readyState, 1);
  });

  test('C1 invalid bytes on stderr, overlong forms and surrogate encodings are replaced too', T, async () => {
    // 0xC0 0xAF is an overlong '/', 0xED 0xA0 0x80 an encoded surrogate, 0xF8 never valid.
    const r = await ctx.run("import sys\nsys.stderr.buffer.write(b'a\\xc0\\xafb\\xed\\xa0\\x80c\\xf8d\\n')");
    assert.match(r.err, /^a\uFFFD+b\uFFFD+c\uFFFDd\n$/);
    assert.equal(ctx.ws.readyState, 1);
  });

  test('C1 a lone surrogate in an exception message reaches the client as valid UTF-8', T, async () => {
    const r = await ctx.run("raise ValueError('bad \\udcff end')");
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0].code, 'ValueError');
    assert.match(r.errors[0].message, /^bad .{1,3} end$/u);
    assert.equal(r.end.status, 'failed');
  });

  test('C1 the non-streaming route answers invalid bytes as U+FFFD inside valid JSON', T, async () => {
    const r = await callTool(ctx.session, "import sys\nsys.stdout.buffer.write(b'ok\\xff\\n')", 'python', 10);
    assert.equal(r.status, 200);
    assert.deepEqual(r.payload.stdout, [`ok${REPL}\n`]);
  });

  test('C2 an emoji split across two writes 200 ms apart arrives whole', T, async () => {
    const code = [
      'import sys, time',
      "e = '😀'.encode()",
      'sys.stdout.buffer.write(e[:2]); sys.stdout.buffer.flush()',
      'time.sleep(0.2)',
      "sys.stdout.buffer.write(e[2:] + b'\\n'); sys.stdout.buffer.flush()",
    ].join('\n');
    const r = await ctx.run(code);
    assert.equal(r.out, '😀\n');
    assert.ok(r.stdout.every((c) => !c.includes(REPL)), JSON.stringify(r.stdout));
  });

  test('C2 every 1-, 2-, 3- and 4-byte character split at every byte boundary arrives intact', T, async () => {
    const text = 'aé✓😀ü€𝄞z';
    const code = [
      'import sys, time',
      `data = ${JSON.stringify(text)}.encode()`,
      'for i in range(len(data)):',
      '    sys.stdout.buffer.write(data[i:i + 1]); sys.stdout.buffer.flush()',
      '    time.sleep(0.01)',
    ].join('\n');
    const r = await ctx.run(code);
    assert.equal(r.out, text);
  });

  test('C3 an incomplete sequence at EOF becomes exactly one U+FFFD', T, async () => {
    const r = await ctx.run("import sys\nsys.stdout.buffer.write(b'ok\\xf0\\x9f')");
    assert.equal(r.out, `ok${REPL}`);
    // The run's end is the end of its output: nothing of it reaches the next run (in a
    // kernel, the session's next cell), whose bytes complete no sequence of the last one.
    const next = await ctx.run("import sys\nsys.stdout.buffer.write(b'\\x98\\x80next')");
    assert.equal(next.out, `${REPL}${REPL}next`);
  });
});

describe('C4–C5 data passes through verbatim, per stream', () => {
  test('C4 NUL, ANSI colours, \\r progress bars and a 10 KB escape sequence round-trip exactly', T, async () => {
    const text = `a\u0000b\u001b[31mred\u001b[0m\r10%\r100%\n\u001b[${'1;'.repeat(5000)}m\u0007\u0008\u007f end\n`;
    const code = `import sys\nsys.stdout.write(${JSON.stringify(text)})`;
    const r = await ctx.run(code);
    assert.equal(r.out, text);
  });

  test('C5 interleaved stdout and stderr keep their per-stream order; seq is strictly increasing', T, async () => {
    const code = "import sys\nfor i in range(300):\n    print(f'o{i}')\n    print(f'e{i}', file=sys.stderr)";
    const r = await ctx.run(code);
    assert.equal(r.out, Array.from({ length: 300 }, (_, i) => `o${i}\n`).join(''));
    assert.equal(r.err, Array.from({ length: 300 }, (_, i) => `e${i}\n`).join(''));
    const seqs = r.frames.map((f) => f.data.seq);
    assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), 'seq increases');
    for (const f of r.frames.filter((x) => x.data.eventType === 'stdout')) assert.ok(!f.data.chunk.includes('e'), f.data.chunk);
  });
});

describe('C6 non-ASCII on stderr and in errors, all four languages', () => {
  const HELLO = 'héllo ✓ 😀';
  for (const [language, code] of [
    ['python', `import sys\nprint('${HELLO}', file=sys.stderr)`],
    ['javascript', `console.error('${HELLO}')`],
    ['java', `System.err.println("${HELLO}");`],
    ['r', `message("${HELLO}")`],
  ]) {
    test(`${language}: UTF-8 on stderr is identical`, T, async () => {
      const r = await ctx.run(code, language, { timeoutS: 10 });
      assert.equal(r.err, `${HELLO}\n`);
    });
  }

  for (const [language, code] of [
    ['python', `raise ValueError('${HELLO}')`],
    ['javascript', `throw new Error('${HELLO}')`],
    ['java', `throw new IllegalStateException("${HELLO}");`],
    ['r', `stop("${HELLO}")`],
  ]) {
    test(`${language}: a non-ASCII error message arrives intact`, T, async () => {
      const r = await ctx.run(code, language, { timeoutS: 10 });
      assert.equal(r.errors.length, 1);
      assert.equal(r.errors[0].message, HELLO);
      assert.equal(r.end.status, 'failed');
    });
  }
});

describe('C7 output streams while the program runs', () => {
  test('python: the first chunk arrives within 300 ms of the request', T, async () => {
    const run = streamRun(ctx.ws, "import time\nprint('first', flush=True)\ntime.sleep(1)\nprint('second')", 'python', { timeoutS: 5 });
    const r = await run.done;
    const first = run.frames.find((f) => f.data.eventType === 'stdout');
    assert.equal(first.data.chunk, 'first\n');
    assert.ok(first.at < 300, `first chunk after ${first.at.toFixed(0)} ms`);
    assert.equal(r.stdout.join(''), 'first\nsecond\n');
  });

  for (const [language, code] of [
    ['javascript', "console.log('first');\nconst t = Date.now(); while (Date.now() - t < 1000);\nconsole.log('second');"],
    ['java', 'System.out.println("first");\nThread.sleep(1000);\nSystem.out.println("second");'],
    ['r', 'cat("first\\n")\nSys.sleep(1)\ncat("second\\n")'],
    ['python', "import sys, time\nsys.stderr.write('first\\n')\ntime.sleep(1)\nsys.stderr.write('second\\n')"],
  ]) {
    test(`${language}: print, 1 s of work, print — the first line is not held back until the end`, T, async () => {
      const run = streamRun(ctx.ws, code, language, { timeoutS: 10 });
      const r = await run.done;
      const chunks = run.frames.filter((f) => f.data.eventType === 'stdout' || f.data.eventType === 'stderr');
      assert.equal(chunks.map((f) => f.data.chunk).join(''), 'first\nsecond\n');
      const end = run.frames.find((f) => f.data.phase === 'end');
      assert.ok(end.at - chunks[0].at >= 800, `first chunk ${(end.at - chunks[0].at).toFixed(0)} ms before the end`);
      assert.equal(r.end.status, 'finished');
    });
  }
});

describe('C7 output streams while one long statement runs (a loop)', () => {
  // The same inside a single statement: a runtime (or a kernel) that hands output on only
  // when a top-level statement ends would hold the first line until the loop is over, and
  // would lose it if the run were killed inside the loop.
  for (const [language, code] of [
    ['python', "import time\nfor w in ('first', 'second'):\n    print(w)\n    if w == 'first':\n        time.sleep(1)"],
    ['javascript', "for (const w of ['first', 'second']) {\n  console.log(w);\n  if (w === 'first') { const t = Date.now(); while (Date.now() - t < 1000); }\n}"],
    ['java', 'for (String w : new String[] {"first", "second"}) {\n  System.out.println(w);\n  if (w.equals("first")) Thread.sleep(1000);\n}'],
    ['r', 'for (w in c("first", "second")) {\n  cat(w, "\\n", sep = "")\n  if (w == "first") Sys.sleep(1)\n}'],
  ]) {
    test(`${language}: a loop that prints, works 1 s, prints — the first line is not held back until the loop ends`, T, async () => {
      const run = streamRun(ctx.ws, code, language, { timeoutS: 10 });
      const r = await run.done;
      const chunks = run.frames.filter((f) => f.data.eventType === 'stdout' || f.data.eventType === 'stderr');
      assert.equal(chunks.map((f) => f.data.chunk).join(''), 'first\nsecond\n', JSON.stringify(r.end));
      const end = run.frames.find((f) => f.data.phase === 'end');
      assert.ok(end.at - chunks[0].at >= 800, `first chunk ${(end.at - chunks[0].at).toFixed(0)} ms before the end`);
      assert.equal(r.end.status, 'finished');
    });
  }
});

test('the socket never saw a UTF-8 error or a close during the group', T, () => {
  assert.equal(socketErrors, 0);
  assert.equal(socketCloses, 0);
  assert.equal(ctx.ws.readyState, 1);
});

test('P4: after the whole group the server\'s fds and RSS are back near the baseline', T, async () => {
  await ctx.finalChecks();
});
