// The JavaScript kernel (src/server/kernels/node_kernel.cjs) over protocol 1 of
// src/server/kernels/README.md, driven directly through tests/kernels/harness.mjs (no
// server, no sandbox). Most tests share one kernel, so state carries across them as it
// does in a session; the ones that end a kernel start their own.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { closeSync, createReadStream, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { inspect } from 'node:util';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { COMMANDS, startKernel, streamText } from './harness.mjs';

/** Every test gets a deadline, so a kernel that never answers fails instead of hanging. */
const T = { timeout: 15_000 };
const INTERRUPT_BUDGET_MS = 1000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** The events without the harness's arrival times, for exact comparison. */
const plain = (events) => events.map(({ at, ...e }) => e);
const done = (id, count, status = 'ok') => ({ type: 'done', id, status, count });
const result = (id, text) => ({ type: 'display', id, data: { 'text/plain': text }, main: true });

let k;
before(async () => { k = await startKernel('javascript'); });
after(async () => { await k.close(); });

/** Run a cell; assert it ended `ok` and return its main result's text (or undefined). */
async function value(code) {
  const r = await k.exec(code);
  assert.equal(r.done.status, 'ok', `${code}: ${JSON.stringify(plain(r.events))}`);
  return r.events.find((e) => e.type === 'display' && e.main)?.data['text/plain'];
}

/** Start a cell, interrupt it after `afterMs`, and return the cell and the interrupt latency. */
async function interrupted(code, afterMs = 300) {
  const id = 1000 + k.events.filter((e) => e.type === 'done').length;
  const running = k.exec(code, { id });
  await sleep(afterMs);
  assert.equal(k.events.find((e) => e.type === 'done' && e.id === id), undefined, 'still running when interrupted');
  const sent = performance.now();
  k.send({ op: 'interrupt', id });
  const r = await running;
  return { r, id, latency: r.done.at - sent };
}

describe('start', () => {
  test('ready_is_the_first_event_with_protocol_1', T, () => {
    assert.deepEqual(plain(k.events.slice(0, 1)), [{ type: 'ready', protocol: 1, language: 'javascript' }]);
  });
});

describe('state across cells', () => {
  test('let_persists_and_the_last_expression_is_the_main_result', T, async () => {
    const first = await k.exec('let x = 42');
    assert.deepEqual(plain(first.events), [done(first.id, first.done.count)]);
    const second = await k.exec('x');
    assert.deepEqual(plain(second.events), [result(second.id, '42'), done(second.id, first.done.count + 1)]);
  });

  test('const_can_be_declared_again_in_a_later_cell', T, async () => {
    assert.equal(await value('const c = 1'), undefined);
    assert.equal(await value('const c = 2; c'), '2');
    assert.equal(await value('c'), '2');
  });

  test('functions_and_classes_persist_and_can_be_redefined', T, async () => {
    await value('function twice(n) { return 2 * n }\nclass Box { constructor(v) { this.v = v } }');
    assert.equal(await value('twice(21)'), '42');
    assert.equal(await value('class Box { constructor(v) { this.w = v } }\nnew Box(twice(2))'), 'Box { w: 4 }');
  });

  test('top_level_await_gives_the_settled_value', T, async () => {
    assert.equal(await value('await new Promise(r => setTimeout(() => r(7), 50))'), '7');
  });

  test('a_const_declared_with_await_persists_as_const', T, async () => {
    assert.equal(await value('const a = await Promise.resolve(5)'), undefined);
    assert.equal(await value('a'), '5');
    const r = await k.exec('a = 6');
    assert.equal(r.events[0].ename, 'TypeError');
    assert.equal(r.events[0].evalue, 'Assignment to constant variable.');
  });

  test('a_cell_starting_with_a_brace_is_an_object_literal_when_it_parses_as_one', T, async () => {
    assert.equal(await value('{a: 1}'), '{ a: 1 }');
    assert.equal(await value('{ let inner = 3; inner }'), '3');
  });

  test('values_are_shown_as_util_inspect_shows_them', T, async () => {
    assert.equal(await value("'str'"), "'str'");
    assert.equal(await value('NaN'), 'NaN');
    assert.equal(await value('-0'), '-0');
    assert.equal(await value('10n'), '10n');
    assert.equal(await value("Symbol('s')"), 'Symbol(s)');
    assert.equal(await value('null'), 'null');
    const nested = { d: { e: { f: { g: { h: { i: 1 } } } } } };
    assert.equal(await value(`(${JSON.stringify(nested)})`), inspect(nested, { depth: 4 }));
    assert.notEqual(inspect(nested, { depth: 4 }), inspect(nested), 'deeper than the default depth');
    assert.equal(await value('void 0'), undefined);
  });

  test('count_counts_every_cell_errors_included', T, async () => {
    const a = await k.exec('1');
    const b = await k.exec('let broken = ;');
    const c = await k.exec('throw 1');
    const d = await k.exec('2');
    assert.deepEqual([b.done.count, c.done.count, d.done.count], [a.done.count + 1, a.done.count + 2, a.done.count + 3]);
    assert.deepEqual([a.done.status, b.done.status, c.done.status, d.done.status], ['ok', 'error', 'error', 'ok']);
  });

  test('require_and_dynamic_import_work', T, async () => {
    assert.equal(await value("require('path').join('a', 'b')"), "'a/b'");
    assert.equal(await value("const { basename } = await import('node:path'); basename('/x/y.js')"), "'y.js'");
    assert.equal(await value("'import(' + `import(` + /import\\(/.source // import("), "'import(import(import\\\\('");
  });

  test('objects_are_of_the_main_realm', T, async () => {
    assert.equal(await value("require('fs').readdirSync('/') instanceof Array && Buffer.from('a') instanceof Uint8Array"), 'true');
  });
});

describe('output', () => {
  test('console_and_process_writes_interleave_in_call_order', T, async () => {
    const r = await k.exec("console.log('1'); console.error('2'); process.stdout.write('3'); process.stderr.write('4\\n'); console.log('5', {six: 6}); 7");
    const s = (name, text) => ({ type: 'stream', id: r.id, name, text });
    assert.deepEqual(plain(r.events), [
      s('stdout', '1\n'), s('stderr', '2\n'), s('stdout', '3'), s('stderr', '4\n'), s('stdout', '5 { six: 6 }\n'),
      result(r.id, '7'), done(r.id, r.done.count),
    ]);
    assert.equal(r.out, '');
    assert.equal(r.err, '');
  });

  test('a_partial_write_arrives_while_the_cell_still_runs', T, async () => {
    // The main thread spins after the write, so no timer could flush it: it must go at once.
    const sent = performance.now();
    const r = await k.exec("process.stdout.write('a'); const t0 = Date.now(); while (Date.now() - t0 < 400) {}; 'end'");
    const first = r.events[0];
    assert.deepEqual(plain([first]), [{ type: 'stream', id: r.id, name: 'stdout', text: 'a' }]);
    assert.ok(first.at - sent < 200, `partial write after ${(first.at - sent).toFixed(0)} ms`);
    assert.ok(r.done.at - first.at > 300, `arrived ${(r.done.at - first.at).toFixed(0)} ms before done`);
  });

  test('empty_writes_send_no_event', T, async () => {
    const r = await k.exec("process.stdout.write(''); process.stderr.write(Buffer.alloc(0)); undefined");
    assert.deepEqual(plain(r.events), [done(r.id, r.done.count)]);
  });

  test('a_character_split_across_buffer_writes_arrives_whole', T, async () => {
    const r = await k.exec('process.stdout.write(Buffer.from([0xe2, 0x82])); process.stdout.write(Buffer.from([0xac, 0x0a])); undefined');
    assert.equal(streamText(r), '€\n');
  });

  test('fd_level_output_of_a_child_is_the_cells_fd_1_text', T, async () => {
    const r = await k.exec("require('child_process').execSync('echo fd-level', {stdio: 'inherit'})");
    assert.equal(r.out, 'fd-level\n');
    assert.deepEqual(plain(r.events), [result(r.id, 'null'), done(r.id, r.done.count)]);
  });

  test('children_do_not_inherit_the_request_or_event_pipe', T, async () => {
    const listing = await value("require('child_process').execSync('ls -l /proc/self/fd/', {encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit']})");
    assert.ok(listing.includes(join(k.dir, 'err')), `the listing names the FIFOs it has (fd 2): ${listing}`);
    assert.ok(!listing.includes(join(k.dir, 'req')) && !listing.includes(join(k.dir, 'ev')), listing);
  });

  test('output_written_between_cells_is_reported_with_the_next_cell', T, async () => {
    await value("setTimeout(() => console.log('late'), 20); 'scheduled'");
    await sleep(100);
    const r = await k.exec('2');
    assert.deepEqual(plain(r.events), [
      { type: 'stream', id: r.id, name: 'stdout', text: 'late\n' }, result(r.id, '2'), done(r.id, r.done.count),
    ]);
  });
});

describe('display', () => {
  test('display_sends_one_event_per_call_with_the_mime_bundle', T, async () => {
    const r = await k.exec([
      "display('<b>hi</b>', 'text/html')",
      "display('<svg xmlns=\"http://www.w3.org/2000/svg\"/>', 'image/svg+xml')",
      "display(Buffer.from([137, 80, 78, 71]), 'image/png')",
      "display('iVBORw==', 'png')",
      "display({a: [1, 2]}, 'application/json')",
      "display('[3]', 'json')",
      "display('# T', 'text/markdown')",
      "display('x^2', 'latex')",
      "display({'text/html': '<i>i</i>', 'text/plain': 'i'}, 'bundle')",
      'display(new Map([[1, 2]]))',
    ].join('\n'));
    const d = (data) => ({ type: 'display', id: r.id, data, main: false });
    assert.deepEqual(plain(r.events), [
      d({ 'text/html': '<b>hi</b>' }),
      d({ 'image/svg+xml': '<svg xmlns="http://www.w3.org/2000/svg"/>' }),
      d({ 'image/png': 'iVBORw==' }),
      d({ 'image/png': 'iVBORw==' }),
      d({ 'application/json': { a: [1, 2] } }),
      d({ 'application/json': [3] }),
      d({ 'text/markdown': '# T' }),
      d({ 'text/latex': 'x^2' }),
      d({ 'text/html': '<i>i</i>', 'text/plain': 'i' }),
      d({ 'text/plain': 'Map(1) { 1 => 2 }' }),
      done(r.id, r.done.count),
    ]);
  });

  test('display_with_bad_data_is_an_error_of_the_cell', T, async () => {
    for (const [code, evalue] of [
      ["display('x', 'nope')", "display: not a MIME type: 'nope'"],
      ["display('not base64!', 'image/png')", 'display: image/png needs a Buffer or a base64 string'],
      ["display(42, 'text/html')", 'display: text/html needs a string, got 42'],
    ]) {
      const r = await k.exec(code);
      assert.deepEqual([r.events[0].ename, r.events[0].evalue, r.done.status], ['TypeError', evalue, 'error'], code);
    }
  });
});

describe('errors', () => {
  test('a_thrown_error_reports_name_message_and_the_stack_without_kernel_frames', T, async () => {
    const r = await k.exec("throw new TypeError('boom')");
    const cell = `cell${r.done.count}`;
    assert.deepEqual(plain(r.events), [
      { type: 'error', id: r.id, ename: 'TypeError', evalue: 'boom', traceback: `TypeError: boom\n    at ${cell}:1:7` },
      done(r.id, r.done.count, 'error'),
    ]);
  });

  test('frames_name_the_cell_that_defined_the_function', T, async () => {
    const def = await k.exec('function fails() {\n  throw new RangeError("deep")\n}');
    const r = await k.exec('fails()');
    assert.equal(r.events[0].traceback, `RangeError: deep\n    at fails (cell${def.done.count}:2:9)\n    at cell${r.done.count}:1:1`);
  });

  test('a_syntax_error_points_at_the_cell_line_and_column', T, async () => {
    const r = await k.exec('let ok = 1\nlet q = ;');
    assert.deepEqual(plain(r.events), [
      {
        type: 'error', id: r.id, ename: 'SyntaxError', evalue: "Unexpected token ';'",
        traceback: `cell${r.done.count}:2\nlet q = ;\n        ^\n\nSyntaxError: Unexpected token ';'`,
      },
      done(r.id, r.done.count, 'error'),
    ]);
  });

  test('a_thrown_non_error_is_Uncaught_with_its_inspected_value', T, async () => {
    const r = await k.exec('throw 42');
    assert.deepEqual(plain(r.events.slice(0, 1)), [{ type: 'error', id: r.id, ename: 'Uncaught', evalue: '42', traceback: 'Uncaught 42' }]);
    const s = await k.exec("throw 'oops'");
    assert.deepEqual([s.events[0].ename, s.events[0].evalue], ['Uncaught', "'oops'"]);
  });

  test('a_rejected_await_is_an_error_of_the_cell', T, async () => {
    const r = await k.exec("await Promise.reject(new Error('rejected'))");
    assert.deepEqual([r.events[0].ename, r.events[0].evalue, r.done.status], ['Error', 'rejected', 'error']);
  });

  test('a_result_that_throws_while_shown_is_an_error_of_the_cell', T, async () => {
    const r = await k.exec("({ [require('util').inspect.custom]() { throw new RangeError('no show') } })");
    assert.deepEqual([r.events[0].type, r.events[0].ename, r.events[0].evalue, r.done.status], ['error', 'RangeError', 'no show', 'error']);
  });

  test('an_unhandled_rejection_after_the_cell_is_stderr_of_the_next_and_the_kernel_survives', T, async () => {
    const a = await k.exec("setTimeout(() => Promise.reject(new Error('late')), 20); 'scheduled'");
    assert.equal(a.done.status, 'ok');
    await sleep(100);
    const r = await k.exec('1 + 1');
    assert.equal(k.exited, null);
    assert.equal(r.events[0].name, 'stderr');
    assert.match(r.events[0].text, new RegExp(`^Uncaught \\(in promise\\) Error: late\\n    at Timeout._onTimeout \\(cell${a.done.count}:1:\\d+\\)\\n`));
    assert.deepEqual(plain(r.events.slice(1)), [result(r.id, '2'), done(r.id, r.done.count)]);
  });

  test('an_uncaught_exception_in_a_callback_during_the_cell_is_its_stderr', T, async () => {
    const r = await k.exec("setTimeout(() => { throw new Error('in timer') }, 5); await new Promise(r => setTimeout(r, 50)); 'after'");
    assert.match(streamText(r, 'stderr'), /^Uncaught Error: in timer\n    at Timeout\._onTimeout/);
    assert.deepEqual(plain(r.events.slice(-2)), [result(r.id, "'after'"), done(r.id, r.done.count)]);
  });
});

describe('interrupt', () => {
  test('interrupting_a_busy_loop_ends_the_cell_and_keeps_state', T, async () => {
    await value('let spins = 0');
    const { r, id, latency } = await interrupted('while (true) { spins++ }');
    assert.equal(r.events.length, 2);
    assert.deepEqual(plain(r.events.slice(1)), [done(id, r.done.count, 'interrupted')]);
    assert.deepEqual([r.events[0].type, r.events[0].ename, r.events[0].evalue], ['error', 'Interrupted', 'interrupted']);
    assert.match(r.events[0].traceback, new RegExp(`^Interrupted: interrupted\\n    at cell${r.done.count}:1:\\d+$`));
    assert.ok(latency < INTERRUPT_BUDGET_MS, `interrupt took ${latency.toFixed(0)} ms`);
    assert.equal(await value('spins > 0'), 'true');
  });

  test('interrupting_an_await_that_never_settles_ends_the_cell_and_keeps_state', T, async () => {
    await value('let before = 1');
    const { r, id, latency } = await interrupted('before = 2; await new Promise(() => {})');
    assert.deepEqual(plain(r.events), [
      { type: 'error', id, ename: 'Interrupted', evalue: 'interrupted', traceback: 'Interrupted: interrupted' },
      done(id, r.done.count, 'interrupted'),
    ]);
    assert.ok(latency < INTERRUPT_BUDGET_MS, `interrupt took ${latency.toFixed(0)} ms`);
    assert.equal(await value('before'), '2');
  });

  test('interrupting_a_loop_inside_a_timer_callback_keeps_the_kernel', T, async () => {
    // Without --no-force-async-hooks-checks Node aborts here.
    const { r, latency } = await interrupted('await new Promise(r => setTimeout(() => { while (true) {} }, 10))');
    assert.equal(r.done.status, 'interrupted');
    assert.match(r.events[0].traceback, /^Interrupted: interrupted\n    at Timeout\._onTimeout \(cell\d+:1:\d+\)/);
    assert.ok(latency < INTERRUPT_BUDGET_MS, `interrupt took ${latency.toFixed(0)} ms`);
    assert.equal(await value('setTimeout(() => {}, 1) && 3'), '3');
    assert.equal(await value("await new Promise(r => setTimeout(() => r('timers work'), 10))"), "'timers work'");
  });

  test('interrupting_an_endless_microtask_chain_keeps_the_kernel', T, async () => {
    const { r, latency } = await interrupted('while (true) await null');
    assert.equal(r.done.status, 'interrupted');
    assert.ok(latency < INTERRUPT_BUDGET_MS, `interrupt took ${latency.toFixed(0)} ms`);
    assert.equal(await value('1 + 2'), '3');
  });

  test('an_interrupt_for_a_finished_or_unknown_cell_is_ignored', T, async () => {
    const a = await k.exec('1');
    k.send({ op: 'interrupt', id: a.id });
    k.send({ op: 'interrupt', id: 987654 });
    k.send({ op: 'bogus' });
    const b = await k.exec("await new Promise(r => setTimeout(r, 50)); 'untouched'");
    assert.deepEqual(plain(b.events), [result(b.id, "'untouched'"), done(b.id, b.done.count)]);
  });

  test('sigint_is_ignored_while_idle_and_while_a_cell_runs', T, async () => {
    k.signal('SIGINT');
    await sleep(20);
    assert.equal(await value("await new Promise(r => setTimeout(r, 100, 'alive'))"), "'alive'");
    const running = k.exec("await new Promise(r => setTimeout(r, 150, 'still alive'))");
    await sleep(50);
    k.signal('SIGINT');
    const r = await running;
    assert.deepEqual(plain(r.events), [result(r.id, "'still alive'"), done(r.id, r.done.count)]);
    assert.equal(k.exited, null);
  });
});

describe('ending the kernel', () => {
  test('process_exit_in_a_cell_ends_the_kernel_quietly', T, async () => {
    for (const code of ['process.exit(3)', 'await null; process.exit(3)']) {
      const own = await startKernel('javascript');
      try {
        await assert.rejects(own.exec(code), /kernel exited \(\{"code":3,"signal":null\}\) before done/);
        assert.deepEqual(own.events.filter((e) => e.type !== 'ready').map((e) => e.type), [], code);
        await sleep(100); // let the harness read whatever fd 1/2 still held
        assert.equal(own.raw.stderr, '', 'no "Waiting for the debugger to disconnect..."');
        assert.equal(own.raw.stdout, '');
      } finally {
        await own.close();
      }
    }
  });

  test('eof_on_requests_finishes_the_running_cell_then_exits_0', T, async () => {
    // The harness keeps its request FIFO open, so this drives the kernel over FIFOs of its own.
    const dir = mkdtempSync(join(tmpdir(), 'cp-kernel-eof-'));
    const fds = {};
    for (const name of ['req', 'ev', 'out', 'err']) {
      execFileSync('mkfifo', ['-m', '600', join(dir, name)]);
      fds[name] = openSync(join(dir, name), 'r+');
    }
    const [cmd, ...args] = COMMANDS.javascript;
    const child = spawn(cmd, args, { stdio: ['ignore', fds.out, fds.err, fds.req, fds.ev], cwd: dir });
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    const events = createReadStream(join(dir, 'ev'), { encoding: 'utf8' });
    closeSync(fds.ev); // the kernel is then the only writer: its exit ends the stream
    fds.ev = null;
    let text = '';
    const lines = () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    events.on('data', (chunk) => { text += chunk; });
    const drained = new Promise((resolve) => events.on('close', resolve));
    try {
      while (!lines().length) await sleep(5);
      writeSync(fds.req, `${JSON.stringify({ op: 'exec', id: 1, code: "await new Promise(r => setTimeout(r, 200)); 'finished'" })}\n`);
      closeSync(fds.req);
      fds.req = null;
      assert.deepEqual(await exited, { code: 0, signal: null });
      await drained;
      assert.deepEqual(lines().map(({ at, ...e }) => e), [
        { type: 'ready', protocol: 1, language: 'javascript' }, result(1, "'finished'"), done(1, 1),
      ]);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      for (const fd of Object.values(fds)) if (fd !== null) closeSync(fd);
      events.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
