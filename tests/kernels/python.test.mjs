// The Python kernel (src/server/kernels/python_kernel.py) against protocol 1 of
// src/server/kernels/README.md, driven directly through tests/kernels/harness.mjs: no
// sandbox and no server. Most tests share one kernel and run in file order; the ones that
// pin counts or start-up use a fresh kernel of their own.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMMANDS, startKernel, streamText } from './harness.mjs';

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47];
const TICK_MS = 50; // the README's bound for a partial line
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** An event without the harness's arrival time. */
const plain = ({ at, ...rest }) => rest;
const plainEvents = (cell) => cell.events.map(plain);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ofType = (cell, type) => cell.events.filter((e) => e.type === type);
const done = (id, status, count) => ({ type: 'done', id, status, count });

describe('python kernel', () => {
  let k;
  before(async () => { k = await startKernel('python'); });
  after(async () => { await k.close(); });

  test('ready_is_the_first_event_and_names_protocol_1', () => {
    assert.deepEqual(plain(k.events[0]), { type: 'ready', protocol: 1, language: 'python' });
  });

  test('state_persists_between_cells', async () => {
    const set = await k.exec('x = 42');
    assert.deepEqual(plainEvents(set), [done(set.id, 'ok', set.done.count)]);
    const get = await k.exec('x');
    assert.deepEqual(plainEvents(get), [
      { type: 'display', id: get.id, data: { 'text/plain': '42' }, main: true },
      done(get.id, 'ok', set.done.count + 1),
    ]);
  });

  test('stdout_and_stderr_interleave_in_call_order', async () => {
    const r = await k.exec([
      'import sys',
      "print('out1')",
      "print('err1', file=sys.stderr)",
      "print('out2'); print('out3')",
      "sys.stderr.write('err2\\n')",
      "print('a', end=''); print('b', end='', file=sys.stderr); print('c')",
    ].join('\n'));
    // Lines written in quick succession may share an event (LINE_BATCH_S): the runs of
    // one stream between switches are what is exact.
    const runs = [];
    for (const e of ofType(r, 'stream')) {
      if (runs.at(-1)?.[0] === e.name) runs.at(-1)[1] += e.text;
      else runs.push([e.name, e.text]);
    }
    assert.deepEqual(runs, [
      ['stdout', 'out1\n'], ['stderr', 'err1\n'], ['stdout', 'out2\nout3\n'],
      ['stderr', 'err2\n'], ['stdout', 'a'], ['stderr', 'b'], ['stdout', 'c\n'],
    ]);
    assert.equal(r.done.status, 'ok');
  });

  test('output_comes_before_the_display_that_follows_it', async () => {
    const r = await k.exec("print('p', end='')\ndisplay('d')\nprint('q')\n5");
    assert.deepEqual(plainEvents(r), [
      { type: 'stream', id: r.id, name: 'stdout', text: 'p' },
      { type: 'display', id: r.id, data: { 'text/plain': "'d'" }, main: false },
      { type: 'stream', id: r.id, name: 'stdout', text: 'q\n' },
      { type: 'display', id: r.id, data: { 'text/plain': '5' }, main: true },
      done(r.id, 'ok', r.done.count),
    ]);
  });

  test('a_partial_line_goes_out_after_the_tick_while_the_cell_runs', async () => {
    const from = k.events.length;
    const sent = performance.now();
    const cell = k.exec("print('a', end='', flush=False)\nimport time\ntime.sleep(0.6)\nprint('b')");
    const a = await k.until(() => k.events.slice(from).find((e) => e.type === 'stream'), 2000, 'partial line');
    const r = await cell;
    assert.equal(a.text, 'a');
    const ms = a.at - sent;
    assert.ok(ms >= TICK_MS - 5 && ms <= 150, `partial line after ${ms.toFixed(1)} ms`);
    assert.ok(r.done.at - a.at > 300, 'the partial line came while the cell was still running');
    assert.deepEqual(ofType(r, 'stream').map((e) => e.text), ['a', 'b\n']);
  });

  test('an_explicit_flush_goes_out_at_once', async () => {
    const from = k.events.length;
    const sent = performance.now();
    const cell = k.exec("print('f', end='', flush=True)\nimport time\ntime.sleep(0.3)");
    const f = await k.until(() => k.events.slice(from).find((e) => e.type === 'stream'), 2000, 'flushed text');
    await cell;
    assert.equal(f.text, 'f');
    assert.ok(f.at - sent < TICK_MS - 5, `flushed text after ${(f.at - sent).toFixed(1)} ms`);
  });

  test('three_displays_and_a_value_give_four_results', async () => {
    // The AGB docs' multi-result demo: "3 displays + 1 return value = 4 results".
    const r = await k.exec([
      'from IPython.display import display',
      "display('first')",
      "display({'second': 2})",
      'display(3)',
      "'value'",
    ].join('\n'));
    assert.deepEqual(ofType(r, 'display').map((e) => [e.data['text/plain'], e.main]), [
      ["'first'", false], ["{'second': 2}", false], ['3', false], ["'value'", true],
    ]);
  });

  test('two_figures_and_a_value_give_three_results_with_png', async () => {
    const r = await k.exec([
      'import matplotlib.pyplot as plt',
      'plt.plot([1, 2, 3]); plt.show()',
      'plt.figure(); plt.bar([1, 2], [3, 4]); plt.show()',
      '42',
    ].join('\n'), { ms: 60000 });
    const displays = ofType(r, 'display');
    assert.deepEqual(displays.map((e) => e.main), [false, false, true]);
    for (const fig of displays.slice(0, 2)) {
      assert.equal(fig.data['text/plain'], '<Figure size 640x480 with 1 Axes>');
      const png = Buffer.from(fig.data['image/png'], 'base64');
      assert.deepEqual([...png.subarray(0, 4)], PNG_MAGIC);
    }
    assert.deepEqual(displays[2].data, { 'text/plain': '42' });
    assert.equal(r.done.status, 'ok');
  });

  test('a_figure_left_open_is_shown_after_the_value', async () => {
    const r = await k.exec("plt.plot([3, 2, 1])\n'left open'");
    const displays = ofType(r, 'display');
    assert.deepEqual(displays.map((e) => e.main), [true, false]);
    assert.deepEqual(displays[0].data, { 'text/plain': "'left open'" });
    assert.deepEqual([...Buffer.from(displays[1].data['image/png'], 'base64').subarray(0, 4)], PNG_MAGIC);
  });

  test('a_dataframe_value_has_html_and_plain_text', async () => {
    const r = await k.exec("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})");
    const [d] = ofType(r, 'display');
    assert.equal(d.main, true);
    assert.match(d.data['text/html'], /<table/);
    assert.equal(d.data['text/plain'], '   a  b\n0  1  x\n1  2  y');
  });

  test('rich_display_objects_keep_their_mime_types', async () => {
    const r = await k.exec([
      'from IPython.display import HTML, Markdown, SVG, JSON, Latex',
      "display(HTML('<b>x</b>'))",
      "display(Markdown('# title'))",
      "display(SVG('<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1\" height=\"1\"/>'))",
      "display(JSON({'a': 1}))",
      "display(Latex('$x^2$'))",
    ].join('\n'));
    assert.deepEqual(ofType(r, 'display').map((e) => [e.main, e.data]), [
      [false, { 'text/plain': '<IPython.core.display.HTML object>', 'text/html': '<b>x</b>' }],
      [false, { 'text/plain': '<IPython.core.display.Markdown object>', 'text/markdown': '# title' }],
      [false, { 'text/plain': '<IPython.core.display.SVG object>', 'image/svg+xml': '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>' }],
      [false, { 'text/plain': '<IPython.core.display.JSON object>', 'application/json': { a: 1 } }],
      [false, { 'text/plain': '<IPython.core.display.Latex object>', 'text/latex': '$x^2$' }],
    ]);
  });

  test('vega_lite_and_json_stay_json_values_other_types_strings', async () => {
    const r = await k.exec([
      'class Chart:',
      '    def _repr_mimebundle_(self, include=None, exclude=None):',
      "        return {'application/vnd.vegalite.v5+json': {'mark': 'bar', 'n': [1, 2]},",
      "                'image/png': b'\\x89PNG', 'text/plain': 'chart'}",
      'Chart()',
    ].join('\n'));
    assert.deepEqual(plain(ofType(r, 'display')[0]), {
      type: 'display', id: r.id, main: true,
      data: { 'application/vnd.vegalite.v5+json': { mark: 'bar', n: [1, 2] }, 'image/png': 'iVBORw==', 'text/plain': 'chart' },
    });
  });

  test('a_trailing_semicolon_hides_the_value', async () => {
    const r = await k.exec('1 + 1;');
    assert.deepEqual(plainEvents(r), [done(r.id, 'ok', r.done.count)]);
  });

  test('an_exception_is_an_error_with_a_plain_traceback', async () => {
    const r = await k.exec('def f():\n    return 1/0\nf()');
    const errors = ofType(r, 'error');
    assert.equal(errors.length, 1);
    const [e] = errors;
    assert.equal(e.ename, 'ZeroDivisionError');
    assert.equal(e.evalue, 'division by zero');
    assert.match(e.traceback, /ZeroDivisionError/);
    assert.match(e.traceback, /return 1\/0/);
    assert.doesNotMatch(e.traceback, /\x1b/);
    assert.doesNotMatch(e.traceback, /python_kernel|interactiveshell/);
    assert.equal(r.done.status, 'error');
  });

  test('a_syntax_error_is_an_error_of_the_cell', async () => {
    const r = await k.exec('def f(:');
    const [e] = ofType(r, 'error');
    assert.equal(e.ename, 'SyntaxError');
    assert.match(e.traceback, /def f\(:/);
    assert.doesNotMatch(e.traceback, /\x1b/);
    assert.deepEqual(r.events.map((ev) => ev.type), ['error', 'done']);
    assert.equal(r.done.status, 'error');
  });

  test('sys_exit_and_exit_do_not_end_the_kernel', async () => {
    const r = await k.exec('import sys\nsys.exit(3)');
    assert.deepEqual(ofType(r, 'error').map((e) => [e.ename, e.evalue]), [['SystemExit', '3']]);
    assert.equal(r.done.status, 'error');
    assert.equal(streamText(r, 'stderr'), ''); // no "To exit: use 'exit'" advice
    const q = await k.exec('exit()');
    assert.deepEqual(ofType(q, 'error').map((e) => e.ename), ['SystemExit']);
    const alive = await k.exec('x');
    assert.deepEqual(ofType(alive, 'display')[0].data, { 'text/plain': '42' });
    assert.equal(k.exited, null);
  });

  test('input_gives_eof_error', async () => {
    const r = await k.exec('input()');
    assert.deepEqual(ofType(r, 'error').map((e) => [e.ename, e.evalue]), [['EOFError', 'EOF when reading a line']]);
  });

  test('sigint_interrupts_a_busy_cell_and_keeps_state', async () => {
    const cell = k.exec('while True: pass');
    await sleep(300);
    const signalled = performance.now();
    k.signal('SIGINT');
    const r = await cell;
    assert.ok(r.done.at - signalled < 1000, `done ${(r.done.at - signalled).toFixed(0)} ms after SIGINT`);
    const errors = ofType(r, 'error');
    assert.deepEqual(errors.map((e) => [e.ename, e.evalue]), [['KeyboardInterrupt', 'interrupted']]);
    assert.doesNotMatch(errors[0].traceback, /python_kernel/);
    assert.equal(r.done.status, 'interrupted');
    const after = await k.exec('x');
    assert.deepEqual(ofType(after, 'display')[0].data, { 'text/plain': '42' });
  });

  test('sigint_interrupts_a_printing_loop_without_breaking_an_event', async () => {
    // Lines longer than a pipe's buffer: the interrupt finds the kernel in the middle of
    // writing an event to fd 4 more often than not.
    const cell = k.exec("while True: print('y' * 200_000)");
    await sleep(200);
    k.signal('SIGINT');
    const r = await cell;
    assert.equal(r.events.filter((e) => e.type === 'unparseable').length, 0);
    const errors = ofType(r, 'error');
    assert.deepEqual(errors.map((e) => e.ename), ['KeyboardInterrupt']);
    // The interrupt may land inside print(): the capture's frames are not the user's.
    assert.doesNotMatch(errors[0].traceback, /python_kernel/);
    assert.equal(r.done.status, 'interrupted');
    // Every write arrives whole; the interrupt may fall between print's text and its
    // newline (as in any Python), so the last line may lack its '\n'.
    const lines = streamText(r).split('\n');
    assert.ok(['', 'y'.repeat(200_000)].includes(lines.pop()), 'the last write arrived whole');
    assert.ok(lines.length > 0 && lines.every((l) => l === 'y'.repeat(200_000)), 'no text lost or garbled');
  });

  test('sigint_while_idle_is_ignored', async () => {
    for (let i = 0; i < 3; i++) k.signal('SIGINT');
    await sleep(100);
    const r = await k.exec('x + 1');
    assert.deepEqual(ofType(r, 'display')[0].data, { 'text/plain': '43' });
    assert.equal(r.done.status, 'ok');
    assert.equal(k.exited, null);
  });

  test('sigint_racing_a_request_never_loses_it', async () => {
    // The signal lands while the kernel waits for the request, reads it, or starts it.
    for (let i = 0; i < 30; i++) {
      k.signal('SIGINT');
      const r = await k.exec(`${i}`, { ms: 5000 });
      assert.ok(['ok', 'interrupted'].includes(r.done.status), r.done.status);
      if (r.done.status === 'ok') assert.deepEqual(ofType(r, 'display')[0].data, { 'text/plain': `${i}` });
    }
    const r = await k.exec('x');
    assert.deepEqual(ofType(r, 'display')[0].data, { 'text/plain': '42' });
  });

  test('an_interrupt_request_between_cells_is_ignored', async () => {
    const prev = await k.exec('pass');
    k.send({ op: 'interrupt', id: prev.id });
    const r = await k.exec('x');
    assert.deepEqual(plainEvents(r), [
      { type: 'display', id: r.id, data: { 'text/plain': '42' }, main: true },
      done(r.id, 'ok', prev.done.count + 1),
    ]);
    assert.equal(k.events.indexOf(prev.done) + 1, k.events.indexOf(r.events[0]), 'no event between the cells');
  });

  test('fd_level_output_arrives_on_fd_1_before_done', async () => {
    const r = await k.exec("import os\n_ = os.system('echo fd-level')");
    assert.equal(r.out, 'fd-level\n');
    assert.deepEqual(plainEvents(r), [done(r.id, 'ok', r.done.count)]);
    const sub = await k.exec("import subprocess, sys\n_ = subprocess.run(['echo', 'sub'], stdout=sys.stdout)");
    assert.equal(sub.out, 'sub\n');
    const bang = await k.exec('!echo bang');
    assert.equal(bang.out, 'bang\n');
  });

  test('a_forked_child_prints_to_fd_1', async () => {
    const r = await k.exec([
      'import os',
      'pid = os.fork()',
      "if pid == 0:\n    print('child'); os._exit(0)",
      "os.waitpid(pid, 0); print('parent')",
    ].join('\n'));
    assert.equal(r.out, 'child\n');
    assert.equal(streamText(r), 'parent\n');
  });

  test('ten_megabytes_of_output_arrive_complete', async () => {
    const lines = await k.exec("for i in range(100_000): print('x' * 99)", { ms: 20000 });
    const text = streamText(lines);
    assert.equal(Buffer.byteLength(text), 10_000_000);
    assert.equal(text, `${'x'.repeat(99)}\n`.repeat(100_000));
    assert.equal(lines.done.status, 'ok');
    const one = await k.exec("import sys\n_ = sys.stdout.write('é' * 5_000_000)", { ms: 20000 });
    assert.equal(Buffer.byteLength(streamText(one)), 10_000_000);
    assert.equal(streamText(one), 'é'.repeat(5_000_000));
  });

  test('a_thread_printing_between_cells_reports_in_the_next_cell', async () => {
    const first = await k.exec("import threading, time\nthreading.Thread(target=lambda: (time.sleep(0.2), print('late'))).start()");
    await sleep(400);
    const next = await k.exec('pass');
    assert.equal(k.events.indexOf(first.done) + 1, k.events.indexOf(next.events[0]), 'nothing after done');
    assert.deepEqual(plainEvents(next), [
      { type: 'stream', id: next.id, name: 'stdout', text: 'late\n' },
      done(next.id, 'ok', next.done.count),
    ]);
  });

  test('print_latency', async (t) => {
    const lat = [];
    for (let i = 0; i < 20; i++) {
      const from = k.events.length;
      const sent = performance.now();
      const cell = k.exec("print('x')");
      const ev = await k.until(() => k.events.slice(from).find((e) => e.type === 'stream'), 5000, 'stdout');
      lat.push(ev.at - sent);
      await cell;
    }
    t.diagnostic(`print('x') request → first stream event: median ${median(lat).toFixed(3)} ms`);
    assert.ok(median(lat) < 20, `median ${median(lat)} ms`);
  });
});

test('a_fresh_kernel_counts_every_cell_once_from_1', async (t) => {
  const started = performance.now();
  const k = await startKernel('python');
  t.diagnostic(`start (spawn → ready): ${(performance.now() - started).toFixed(0)} ms`);
  try {
    const counts = [];
    for (const code of ['a = 1', 'a', '', '1/0', 'def f(:', 'a;']) counts.push((await k.exec(code)).done.count);
    assert.deepEqual(counts, [1, 2, 3, 4, 5, 6]);
  } finally {
    await k.close();
  }
});

test('eof_on_fd_3_ends_the_kernel_with_status_0', async () => {
  // The harness keeps the request FIFO open read-write, so it cannot show EOF: here
  // fd 3 and fd 4 are plain pipes of our own.
  const [cmd, ...args] = COMMANDS.python;
  const home = mkdtempSync(join(tmpdir(), 'cp-kernel-python-eof-'));
  const child = spawn(cmd, args, {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
    env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', HOME: home },
    cwd: home,
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  try {
    let events = '';
    await new Promise((resolve, reject) => {
      child.stdio[4].on('data', (d) => { events += d; if (events.includes('"ready"')) resolve(); });
      child.on('exit', () => reject(new Error('exited before ready')));
    });
    child.stdio[3].end();
    let timer;
    const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve('timeout'), 5000); });
    assert.deepEqual(await Promise.race([exited, timeout]), { code: 0, signal: null });
    clearTimeout(timer);
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(home, { recursive: true, force: true });
  }
});
