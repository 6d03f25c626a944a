// The Java kernel (src/server/kernels/JKernel.java, built into build/server/kernels/jkernel.jar)
// over protocol 1 of src/server/kernels/README.md, driven directly by the kernel harness.
// One kernel serves most tests, in order, so state carries between them as it does in a
// session; System.exit gets a kernel of its own. Timings (start, per-snippet latency) are
// reported as test diagnostics.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { JKERNEL_JAR, KERNELS, ROOT, startKernel, streamText } from './harness.mjs';

/** Longest time an interrupt may take, from request or signal to `done`. */
const INTERRUPT_MS = 2000;
/** A partial line must reach the server this soon after it was written (README: 50 ms). */
const PARTIAL_LINE_MS = 150;

/** Build the jar with ./build.sh kernels when it is missing or older than a .java source. */
function buildJarIfStale() {
  const newest = Math.max(...readdirSync(KERNELS).filter((f) => f.endsWith('.java'))
    .map((f) => statSync(`${KERNELS}${f}`).mtimeMs));
  if (existsSync(JKERNEL_JAR) && statSync(JKERNEL_JAR).mtimeMs >= newest) return;
  try {
    execFileSync('./build.sh', ['kernels'], { cwd: ROOT, stdio: 'pipe' });
  } catch (e) {
    throw new Error(`./build.sh kernels failed:\n${e.stdout}${e.stderr}`);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ofType = (cell, type) => cell.events.filter((e) => e.type === type);
/** The cell's main result (text/plain), or undefined when it has none. */
const mainText = (cell) => ofType(cell, 'display').find((e) => e.main)?.data['text/plain'];
/** Events without the harness's arrival time. */
const bare = (events) => events.map(({ at, ...e }) => e);
/** [name, text] of each stream event, adjacent chunks of one stream joined. */
function streams(cell) {
  const out = [];
  for (const e of ofType(cell, 'stream')) {
    if (out.length && out.at(-1)[0] === e.name) out.at(-1)[1] += e.text;
    else out.push([e.name, e.text]);
  }
  return out;
}
/** Run a cell that must succeed, and return it. */
async function ok(code) {
  const cell = await k.exec(code);
  assert.equal(cell.done.status, 'ok', `${code}\n${JSON.stringify(bare(cell.events))}`);
  return cell;
}

let k;
let startMs;

before(async () => {
  buildJarIfStale();
  const t0 = performance.now();
  k = await startKernel('java');
  startMs = performance.now() - t0;
});

after(async () => {
  await k?.close();
});

test('ready: protocol 1, language java, before any cell', () => {
  assert.deepEqual(bare(k.events), [{ type: 'ready', protocol: 1, language: 'java' }]);
});

test('an assignment expression is the main result: the counter example gives 50', async () => {
  const decl = await ok('int counter = 42;');
  assert.deepEqual(ofType(decl, 'display'), [], 'a declaration has no main result');
  const assign = await ok('counter = counter + 8;');
  assert.deepEqual(bare(assign.events), [
    { type: 'display', id: assign.id, data: { 'text/plain': '50' }, main: true },
    { type: 'done', id: assign.id, status: 'ok', count: assign.done.count },
  ]);
  assert.equal(mainText(await ok('counter')), '50');
});

test('variables, methods, classes and imports persist across cells', async () => {
  await ok('String greeting = "hello";\nint twice(int n) { return 2 * n; }');
  await ok('class Point { final int x, y; Point(int x, int y) { this.x = x; this.y = y; } int sum() { return x + y; } }');
  await ok('import java.time.*;');
  assert.equal(mainText(await ok('greeting.length() + twice(3) + new Point(1, 2).sum()')), '14');
  assert.equal(mainText(await ok('LocalDate.of(2020,1,2)')), '2020-01-02');
  // The jshell tool's default imports are there from the start.
  assert.equal(mainText(await ok('new ArrayList<>(List.of(3, 1, 2)).stream().sorted().map(String::valueOf).collect(Collectors.joining(","))')), '"1,2,3"');
});

test('the main result is JShell\'s value string: strings quoted, only the last snippet counts', async () => {
  assert.equal(mainText(await ok('"hi"')), '"hi"');
  assert.equal(mainText(await ok('"a\\tb"')), '"a\\tb"');
  assert.equal(mainText(await ok('int six = 3;\nsix * 2')), '6');
  assert.equal(mainText(await ok('six * 2;\nint seven = 7;')), undefined);
  assert.equal(mainText(await ok('System.out.println(six)')), undefined, 'a void call is a statement');
  assert.equal(mainText(await ok('new int[]{1, 2}')), 'int[2] { 1, 2 }');
});

test('System.out and System.err arrive as stream events in call order', async () => {
  const cell = await ok('System.out.println("o1"); System.err.println("e1"); System.out.print("o2");\n'
    + 'System.err.print("e2"); System.out.println(); System.out.print("é😀\\n");');
  assert.deepEqual(streams(cell), [
    ['stdout', 'o1\n'], ['stderr', 'e1\n'], ['stdout', 'o2'], ['stderr', 'e2'], ['stdout', '\né😀\n'],
  ]);
  assert.equal(cell.out, '', 'nothing of the language\'s own printing reaches fd 1');
  assert.equal(cell.err, '');
});

test('a partial line is sent while the cell still runs', async () => {
  const cell = await ok('{ System.err.println("t"); System.out.print("a"); Thread.sleep(1200); System.out.print("b"); }');
  const [t, a, b] = ofType(cell, 'stream');
  assert.deepEqual([t.text, a.text, b.text], ['t\n', 'a', 'b']);
  // "t\n" is sent at its newline, right before "a" is written: "a" waits only for the ticker.
  assert.ok(a.at - t.at < PARTIAL_LINE_MS, `"a" came ${(a.at - t.at).toFixed(0)} ms after "t"`);
  assert.ok(cell.done.at - a.at > 1000, '"a" came before the sleep, not at the end of the cell');
});

test('a UTF-8 character written in two parts arrives whole', async () => {
  const cell = await ok('byte[] e = "é".getBytes(java.nio.charset.StandardCharsets.UTF_8);\n'
    + '{ System.out.write(e[0]); Thread.sleep(200); System.out.write(e[1]); System.out.println(); }');
  assert.equal(streamText(cell), 'é\n'); // not two U+FFFD: the first byte waited for the second
});

test('an exception is an error event with its class name, message and the snippet\'s cell and line', async () => {
  const cell = await k.exec('int before = 1;\nInteger.parseInt("zz");\nint after = 2;');
  const n = cell.done.count;
  assert.equal(cell.done.status, 'error');
  const [err] = ofType(cell, 'error');
  assert.equal(err.ename, 'java.lang.NumberFormatException');
  assert.equal(err.evalue, 'For input string: "zz"');
  assert.equal(err.traceback, [
    'java.lang.NumberFormatException: For input string: "zz"',
    '\tat java.base/java.lang.NumberFormatException.forInputString(NumberFormatException.java:67)',
    '\tat java.base/java.lang.Integer.parseInt(Integer.java:668)',
    '\tat java.base/java.lang.Integer.parseInt(Integer.java:786)',
    `\tat cell ${n}, line 2`,
  ].join('\n'));
  // The first error ends the cell: `after` was never declared, `before` was.
  assert.equal(mainText(await ok('before')), '1');
  const later = await k.exec('after');
  assert.equal(ofType(later, 'error')[0].ename, 'CompilationError');
});

test('frames of methods declared in earlier cells name that cell and line', async () => {
  const decl = await ok('// helpers\nvoid boom() {\n  throw new IllegalStateException("boom", new RuntimeException("root"));\n}');
  const call = await k.exec('\n\n  boom()');
  assert.equal(ofType(call, 'error')[0].traceback, [
    'java.lang.IllegalStateException: boom',
    `\tat boom(cell ${decl.done.count}, line 3)`,
    `\tat cell ${call.done.count}, line 3`,
    'Caused by: java.lang.RuntimeException: root',
    `\tat boom(cell ${decl.done.count}, line 3)`,
    `\tat cell ${call.done.count}, line 3`,
  ].join('\n'));
});

test('a compile error is a CompilationError with javac\'s message, the source line and a caret', async () => {
  const cell = await k.exec('int fine = 1;\nint x = "s";');
  assert.equal(cell.done.status, 'error');
  assert.deepEqual(bare(ofType(cell, 'error')), [{
    type: 'error', id: cell.id, ename: 'CompilationError',
    evalue: 'incompatible types: java.lang.String cannot be converted to int',
    traceback: `cell ${cell.done.count}, line 2: incompatible types: java.lang.String cannot be converted to int\nint x = "s";\n        ^`,
  }]);
  const missing = await k.exec('nowhere + 1');
  assert.equal(ofType(missing, 'error')[0].evalue, 'cannot find symbol\n  symbol:   variable nowhere');
  const cut = await k.exec('1 +');
  assert.equal(ofType(cut, 'error')[0].evalue, 'reached end of file while parsing');
});

test('a call into a method with an unresolved reference is an UnresolvedReferenceException', async () => {
  const cell = await k.exec('void later() { notYet(); }\nlater()');
  assert.deepEqual(streams(cell), [
    ['stderr', 'created method later(), however, it cannot be invoked until method notYet() is declared\n'],
  ]);
  const [err] = ofType(cell, 'error');
  assert.equal(err.ename, 'UnresolvedReferenceException');
  assert.equal(err.evalue, 'method later() cannot be invoked until method notYet() is declared');
  await ok('void notYet() { System.out.println("now"); }');
  assert.equal(streamText(await ok('later()')), 'now\n');
});

test('an interrupt request stops a busy loop within 2 s and keeps the state', async () => {
  const id = 1001;
  const running = k.exec('long spins = 0;\nwhile (true) { spins++; }', { id });
  await sleep(500);
  const t = performance.now();
  k.send({ op: 'interrupt', id });
  const cell = await running;
  assert.ok(performance.now() - t < INTERRUPT_MS, `took ${(performance.now() - t).toFixed(0)} ms`);
  assert.deepEqual(bare(cell.events), [
    { type: 'error', id, ename: 'Interrupted', evalue: 'interrupted', traceback: '' },
    { type: 'done', id, status: 'interrupted', count: cell.done.count },
  ]);
  assert.equal(mainText(await ok('spins > 0 && counter == 50')), 'true');
});

test('an interrupt that lands while JShell still compiles the snippet stops it too', async () => {
  // JDK 17's JShell.stop() does nothing until the snippet's code runs; the kernel repeats
  // it. The delays spread the request over reading, analysis and compilation of the cell.
  for (const delay of [0, 4, 8, 12, 16, 20, 25, 30, 40]) {
    const id = 2000 + delay;
    const running = k.exec('while (true) {}', { id, ms: INTERRUPT_MS + 1000 });
    await sleep(delay);
    k.send({ op: 'interrupt', id });
    assert.equal((await running).done.status, 'interrupted', `interrupt after ${delay} ms`);
  }
});

test('SIGINT stops a sleeping cell within 2 s and keeps the state', async () => {
  const running = k.exec('Thread.sleep(60_000);');
  await sleep(500);
  const t = performance.now();
  k.signal('SIGINT');
  const cell = await running;
  assert.ok(performance.now() - t < INTERRUPT_MS, `took ${(performance.now() - t).toFixed(0)} ms`);
  assert.equal(cell.done.status, 'interrupted');
  assert.deepEqual(ofType(cell, 'error').map((e) => [e.ename, e.evalue]), [['Interrupted', 'interrupted']]);
  const busy = k.exec('while (true) {}');
  await sleep(500);
  k.signal('SIGINT');
  assert.equal((await busy).done.status, 'interrupted');
  assert.equal(mainText(await ok('counter')), '50');
});

test('SIGINT while idle and a late interrupt request are ignored', async () => {
  const last = await ok('int idle = 1;');
  k.signal('SIGINT');
  await sleep(100);
  k.signal('SIGINT');
  k.send({ op: 'interrupt', id: last.id });
  await sleep(100);
  assert.equal(k.exited, null);
  const cell = await ok('idle + counter');
  assert.equal(mainText(cell), '51');
});

test('rich output helpers send display events that are not the main result', async () => {
  const cell = await ok('html("<b>x</b>")');
  assert.deepEqual(bare(cell.events), [
    { type: 'display', id: cell.id, data: { 'text/html': '<b>x</b>' }, main: false },
    { type: 'done', id: cell.id, status: 'ok', count: cell.done.count },
  ]);
  const more = await ok('svg("<svg/>"); png(new byte[]{1, 2, 3}); markdown("# hi"); json("{\\"a\\": [1, 2.5, null]}");\n'
    + 'display(Map.of("text/plain", "plain")); display(Map.of("application/vnd.vegalite.v5+json", List.of(1)))');
  assert.deepEqual(ofType(more, 'display').map((e) => [e.data, e.main]), [
    [{ 'image/svg+xml': '<svg/>' }, false],
    [{ 'image/png': 'AQID' }, false],
    [{ 'text/markdown': '# hi' }, false],
    [{ 'application/json': { a: [1, 2.5, null] } }, false],
    [{ 'text/plain': 'plain' }, false],
    [{ 'application/vnd.vegalite.v5+json': [1] }, false],
  ]);
  const bad = await k.exec('json("{not json")');
  assert.deepEqual(bare(ofType(bad, 'error')), [{
    type: 'error', id: bad.id, ename: 'java.lang.IllegalArgumentException',
    evalue: 'application/json: invalid JSON: expected a key at offset 1',
    traceback: `java.lang.IllegalArgumentException: application/json: invalid JSON: expected a key at offset 1\n\tat cell ${bad.done.count}, line 1`,
  }]);
  assert.deepEqual(ofType(bad, 'display'), []);
});

test('count counts every cell, failed ones too', async () => {
  const a = await k.exec('1');
  const b = await k.exec('undefinedThing');
  const c = await k.exec('2');
  assert.deepEqual([b.done.count - a.done.count, c.done.count - b.done.count], [1, 1]);
  assert.equal(b.done.status, 'error');
});

test('a subprocess with inheritIO writes to the kernel\'s fd 1, within its cell', async () => {
  const cell = await ok('new ProcessBuilder("echo","fd-level").inheritIO().start().waitFor()');
  assert.equal(cell.out, 'fd-level\n');
  assert.equal(streamText(cell), '');
  assert.equal(mainText(cell), '0');
});

test('a cell that declares a class with main runs it, as the one-shot Java path does', async () => {
  const cell = await ok('import java.util.*;\n\npublic class Main {\n  public static void main(String[] args) {\n'
    + '    System.out.println("from main " + args.length);\n  }\n}');
  assert.equal(streamText(cell), 'from main 0\n');
  // Declaring a class without main, or with main next to statements, runs nothing.
  assert.equal(streamText(await ok('class Quiet { static void main(String[] a) { System.out.println("no"); } }\nint q = 1;')), '');
});

test('an OutOfMemoryError fails the cell, and the kernel goes on', async () => {
  const cell = await k.exec('long[] huge = new long[100_000_000];');
  assert.deepEqual(ofType(cell, 'error').map((e) => [e.ename, e.evalue]), [['java.lang.OutOfMemoryError', 'Java heap space']]);
  assert.equal(mainText(await ok('counter')), '50');
});

test('what a background thread prints or displays between cells goes to the next cell, in order', async () => {
  await ok('new Thread(() -> { try { Thread.sleep(200); } catch (InterruptedException e) {}\n'
    + '  System.out.print("late"); System.err.println("lateErr"); html("<i>late</i>"); System.out.println("!"); }).start();');
  await sleep(400);
  const cell = await ok('int next = 1;');
  assert.deepEqual(bare(cell.events), [
    { type: 'stream', id: cell.id, name: 'stdout', text: 'late' },
    { type: 'stream', id: cell.id, name: 'stderr', text: 'lateErr\n' },
    { type: 'display', id: cell.id, data: { 'text/html': '<i>late</i>' }, main: false },
    { type: 'stream', id: cell.id, name: 'stdout', text: '!\n' },
    { type: 'done', id: cell.id, status: 'ok', count: cell.done.count },
  ]);
});

test('an exception in a thread a cell started is printed on stderr, as Java does', async () => {
  await ok('new Thread(() -> { try { Thread.sleep(100); } catch (InterruptedException e) {}\n'
    + '  throw new IllegalStateException("bg"); }, "worker").start();');
  await sleep(300);
  const cell = await ok('int afterWorker = 1;');
  assert.match(streamText(cell, 'stderr'), /^Exception in thread "worker" java\.lang\.IllegalStateException: bg\n\tat /);
});

test('timings: start and per-snippet latency', async (t) => {
  const expr = [], print = [];
  for (let i = 0; i < 15; i++) {
    let s = performance.now();
    await k.exec('1 + 1');
    expr.push(performance.now() - s);
    s = performance.now();
    const cell = await k.exec('System.out.println("x")');
    print.push(ofType(cell, 'stream')[0].at - s);
  }
  t.diagnostic(`start (spawn → ready): ${startMs.toFixed(0)} ms`);
  t.diagnostic(`1 + 1 (request → done incl. sync markers): median ${median(expr).toFixed(1)} ms, max ${Math.max(...expr).toFixed(1)} ms`);
  t.diagnostic(`println (request → first stdout event): median ${median(print).toFixed(1)} ms`);
  assert.ok(median(expr) < 500);
});

test('System.exit ends the kernel, after sending what the cell printed', async (t) => {
  const t0 = performance.now();
  const own = await startKernel('java');
  const start = performance.now() - t0;
  try {
    own.send({ op: 'exec', id: 1, code: 'System.out.print("bye"); System.exit(3);' });
    await own.until(() => own.exited, 10000, 'exit');
    await sleep(300); // the exit can be seen before the last lines on fd 4 are read
    assert.deepEqual(own.exited, { code: 3, signal: null });
    assert.deepEqual(bare(own.events.slice(1)), [{ type: 'stream', id: 1, name: 'stdout', text: 'bye' }]);
  } finally {
    await own.close();
  }
  t.diagnostic(`start of a second kernel: ${start.toFixed(0)} ms`);
});
