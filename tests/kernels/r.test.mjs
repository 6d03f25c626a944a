// The R kernel (src/server/kernels/r_kernel.R) over protocol 1 of
// src/server/kernels/README.md, driven directly through the harness (no sandbox, no
// server): values, output streams, plots, errors, interrupts and fd-level output of cells
// run one after another in one R process.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startKernel, streamText } from './harness.mjs';

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const INTERRUPT_AFTER_MS = 500;
const INTERRUPT_WITHIN_MS = 2000;
const IDLE_SIGNAL_GAP_MS = 100;
const EXIT_WITHIN_MS = 10000;
// The loop below sleeps 0.3 s after each of 3 lines, so a streamed first line leads its
// cell's done by ~0.6 s; unstreamed, it would arrive with it.
const STREAM_LEAD_MS = 400;
// The server's catalogue test C7: a loop that prints, sleeps 1 s, prints; the first line
// must arrive at least 0.8 s before the run ends.
const C7_LEAD_MS = 800;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const displays = (cell, main) => cell.events.filter((e) => e.type === 'display' && e.main === main);
const errors = (cell) => cell.events.filter((e) => e.type === 'error');
/** The cell's only main result, asserting there is exactly one. */
const mainData = (cell) => {
  const mains = displays(cell, true);
  assert.equal(mains.length, 1, `one main display in ${JSON.stringify(cell.events)}`);
  return mains[0].data;
};
/**
 * Runs a cell and records when each line of `lines` first showed on the kernel's fd 1
 * (performance.now(), as the `at` of events): {cell, seen: [ms per line]}.
 */
const execWatchingStdout = async (kernel, code, lines) => {
  const from = kernel.raw.stdout.length;
  const seen = lines.map(() => null);
  const watch = () => {
    const text = kernel.raw.stdout.slice(from);
    lines.forEach((line, i) => { if (seen[i] === null && text.includes(line)) seen[i] = performance.now(); });
  };
  kernel.listeners.add(watch);
  try {
    const cell = await kernel.exec(code);
    watch();
    return { cell, seen };
  } finally {
    kernel.listeners.delete(watch);
  }
};
const isPng = (b64) => Buffer.from(b64, 'base64').subarray(0, PNG_MAGIC.length).equals(PNG_MAGIC);

// One kernel for every block but the last, which needs fresh ones. The harness reads each
// FIFO with blocking reads on libuv's thread pool (4 threads by default), so two kernels
// alive at once (6 reads) starve it and events stop arriving: the last block closes the
// shared kernel first.
let k;
before(async () => { k = await startKernel('r'); });
after(async () => { await k?.close(); });

describe('cells share one R session', () => {
  test('ready_announces_protocol_1_and_r', () => {
    const { at, ...ready } = k.events[0];
    assert.deepEqual(ready, { type: 'ready', protocol: 1, language: 'r' });
  });

  test('assignment_persists_and_value_is_the_main_result', async () => {
    const set = await k.exec('x <- 42');
    assert.deepEqual(set.events.map((e) => e.type), ['done']);
    assert.equal(set.done.status, 'ok');
    const get = await k.exec('x');
    assert.equal(mainData(get)['text/plain'], '[1] 42');
    assert.equal(get.done.status, 'ok');
    assert.equal(get.done.count, set.done.count + 1);
    for (const e of get.events) assert.equal(e.id, get.id);
  });

  test('count_counts_every_cell_errors_included', async () => {
    const a = await k.exec('1');
    const b = await k.exec('stop("x")');
    const c = await k.exec('2');
    assert.deepEqual([b.done.count, c.done.count], [a.done.count + 1, a.done.count + 2]);
  });

  test('invisible_value_gives_no_main_result', async () => {
    const cell = await k.exec('invisible(5)');
    assert.deepEqual(cell.events.map((e) => e.type), ['done']);
  });

  test('earlier_visible_values_are_shown_but_only_the_last_is_main', async () => {
    const cell = await k.exec('1\n2\ny <- 3');
    assert.deepEqual(displays(cell, false).map((e) => e.data['text/plain']), ['[1] 1', '[1] 2']);
    assert.deepEqual(displays(cell, true), []);
    const last = await k.exec('1\n2');
    assert.equal(mainData(last)['text/plain'], '[1] 2');
  });

  test('data_frame_result_has_text_and_html_table', async () => {
    const data = mainData(await k.exec("data.frame(a = 1:2, b = c('x', 'y'))"));
    assert.equal(data['text/plain'], '  a b\n1 1 x\n2 2 y');
    assert.match(data['text/html'], /<table/);
  });
});

describe('output streams', () => {
  // Printed text is on fd 1 and messages on fd 2, written as they happen; there are no
  // stream events.
  test('cat_goes_to_fd_1_and_message_to_fd_2', async () => {
    const cell = await k.exec('cat("a\\n"); message("m"); cat("b\\n")');
    assert.equal(cell.out, 'a\nb\n');
    assert.equal(cell.err, 'm\n');
    assert.deepEqual(cell.events.map((e) => e.type), ['done']);
  });

  test('print_and_partial_line_are_on_fd_1_as_written', async () => {
    const cell = await k.exec('print(1:3); cat("no newline")');
    assert.equal(cell.out, '[1] 1 2 3\nno newline');
    assert.equal(streamText(cell), '');
  });

  test('warning_goes_to_stderr_as_a_warning_message', async () => {
    const cell = await k.exec("warning('careful')");
    assert.equal(cell.err, 'Warning message:\ncareful\n');
    const inner = await k.exec("f <- function() warning('inner'); f()");
    assert.equal(inner.err, 'Warning message:\nIn f() : inner\n');
    assert.equal(cell.done.status, 'ok');
  });

  test('flush_console_in_a_loop_streams_each_line_before_the_cell_ends', async () => {
    const { cell, seen } = await execWatchingStdout(k,
      'for (i in 1:3) { cat(i, "\\n"); flush.console(); Sys.sleep(0.3) }', ['1 \n']);
    assert.equal(cell.out, '1 \n2 \n3 \n');
    const lead = cell.done.at - seen[0];
    assert.ok(lead >= STREAM_LEAD_MS, `first line only ${lead} ms before done`);
    // The mask is on the search path, not among the user's variables.
    const own = await k.exec('exists("flush.console", envir = globalenv(), inherits = FALSE)');
    assert.equal(mainData(own)['text/plain'], '[1] FALSE');
  });

  // Catalogue C7: text is live without flush.console().
  test('loop_output_streams_live_without_flush', async () => {
    const { cell, seen } = await execWatchingStdout(k,
      'for (w in c("first","second")) { cat(w, "\\n", sep=""); if (w == "first") Sys.sleep(1) }',
      ['first\n', 'second\n']);
    assert.equal(cell.out, 'first\nsecond\n');
    assert.equal(cell.done.status, 'ok');
    const lead = cell.done.at - seen[0];
    assert.ok(lead >= C7_LEAD_MS, `first line only ${lead} ms before done`);
  });

  test('subprocess_output_is_on_fd_1_of_its_cell', async () => {
    const cell = await k.exec("system('echo fd-level')");
    assert.equal(cell.out, 'fd-level\n');
    assert.equal(cell.err, '');
    assert.equal(streamText(cell), '');
  });
});

describe('rich output', () => {
  test('plot_gives_one_png_display', async () => {
    const cell = await k.exec('plot(1:10)');
    const shown = displays(cell, false);
    assert.equal(shown.length, 1);
    assert.deepEqual(Object.keys(shown[0].data), ['image/png']);
    assert.ok(isPng(shown[0].data['image/png']));
    assert.deepEqual(displays(cell, true), []);
  });

  test('plot_then_lines_gives_two_pngs', async () => {
    const shown = displays(await k.exec('plot(1:5); lines(5:1)'), false);
    assert.equal(shown.length, 2);
    for (const d of shown) assert.ok(isPng(d.data['image/png']));
    assert.notEqual(shown[0].data['image/png'], shown[1].data['image/png']);
  });

  test('each_plot_of_a_loop_is_a_png', async () => {
    const shown = displays(await k.exec('for (i in 1:2) plot(i)'), false);
    assert.equal(shown.length, 2);
    for (const d of shown) assert.ok(isPng(d.data['image/png']));
  });

  test('display_html_is_a_display_between_the_text_around_it', async () => {
    // The text is on fd 1, the display on fd 4: two pipes, so only each one's order holds.
    const cell = await k.exec('{ cat("a\\n"); IRdisplay::display_html("<b>hi</b>"); cat("c\\n") }');
    const seq = cell.events.filter((e) => e.type !== 'done').map((e) => e.data);
    assert.deepEqual(seq, [{ 'text/html': '<b>hi</b>' }]);
    assert.equal(cell.out, 'a\nc\n');
  });
});

describe('errors', () => {
  test('stop_is_an_error_event_and_status_error', async () => {
    const cell = await k.exec("stop('boom')");
    const [err, ...rest] = errors(cell);
    assert.deepEqual(rest, []);
    assert.deepEqual([err.ename, err.evalue, err.traceback],
      ['simpleError', 'boom', 'Error: boom']);
    assert.equal(cell.done.status, 'error');
  });

  test('traceback_lists_the_user_calls_innermost_first', async () => {
    const cell = await k.exec('f <- function() g()\ng <- function() stop("deep")\nf()');
    assert.equal(errors(cell)[0].traceback, 'Error in g() : deep\nTraceback:\n2: g()\n1: f()');
  });

  test('parse_error_is_an_error_and_runs_nothing', async () => {
    const cell = await k.exec('cat("not run\\n")\nx <- (1 +');
    const [err] = errors(cell);
    assert.equal(err.ename, 'simpleError');
    assert.match(err.evalue, /^<code>:3:0: unexpected end of input/);
    assert.equal(cell.out, '');
    assert.equal(cell.done.status, 'error');
  });

  test('an_error_ends_the_cell_even_mid_line', async () => {
    const cell = await k.exec('z <- 1; stop("a"); z <- 2; cat("after\\n")\ncat("next line\\n")');
    assert.equal(errors(cell).length, 1);
    assert.equal(cell.out, '');
    assert.equal(mainData(await k.exec('z'))['text/plain'], '[1] 1');
  });
});

describe('interrupts', () => {
  test('sigint_stops_a_busy_loop_and_keeps_state', async () => {
    const running = k.exec('i <- 0; while (TRUE) i <- i + 1');
    await sleep(INTERRUPT_AFTER_MS);
    const sent = performance.now();
    k.signal('SIGINT');
    const cell = await running;
    const took = cell.done.at - sent;
    assert.ok(took < INTERRUPT_WITHIN_MS, `done ${took} ms after SIGINT`);
    const [err, ...rest] = errors(cell);
    assert.deepEqual(rest, []);
    assert.deepEqual([err.ename, err.evalue, cell.done.status],
      ['Interrupted', 'interrupted', 'interrupted']);
    assert.equal(mainData(await k.exec('i > 0'))['text/plain'], '[1] TRUE');
  });

  test('text_the_interrupted_expression_wrote_is_kept', async () => {
    const running = k.exec('{ cat("before\\n"); Sys.sleep(30) }');
    await sleep(INTERRUPT_AFTER_MS);
    k.signal('SIGINT');
    const cell = await running;
    assert.equal(cell.out, 'before\n');
    assert.equal(cell.done.status, 'interrupted');
  });

  test('three_idle_sigints_are_harmless', async () => {
    for (let n = 0; n < 3; n++) {
      k.signal('SIGINT');
      await sleep(IDLE_SIGNAL_GAP_MS);
    }
    const cell = await k.exec('1 + 1');
    assert.equal(cell.done.status, 'ok');
    assert.equal(mainData(cell)['text/plain'], '[1] 2');
  });

  test('sigint_just_before_a_request_never_loses_it', async () => {
    k.signal('SIGINT');
    const cell = await k.exec('"reached"');
    assert.ok(['ok', 'interrupted'].includes(cell.done.status), cell.done.status);
  });

  test('stale_interrupt_request_is_ignored', async () => {
    const prev = await k.exec('1');
    k.send({ op: 'interrupt', id: prev.id });
    const cell = await k.exec('"after"');
    assert.equal(cell.done.status, 'ok');
    assert.equal(mainData(cell)['text/plain'], '[1] "after"');
  });
});

describe('fresh sessions', () => {
  before(async () => { await k.close(); });
  /** Runs body with a kernel of its own, closed afterwards. */
  const withOwnKernel = async (body) => {
    const own = await startKernel('r');
    try { await body(own); } finally { await own.close(); }
  };

  // Whether a stray sink upsets R's sink stack depends on the session's history.
  test('a_sink_left_open_is_closed_when_its_cell_ends', () => withOwnKernel(async (own) => {
    await own.exec('sink("/dev/null")');
    const cell = await own.exec('cat("seen\\n"); 7');
    assert.equal(cell.out, 'seen\n');
    assert.equal(mainData(cell)['text/plain'], '[1] 7');
    // The kernel has no capture sink of its own.
    assert.equal(mainData(await own.exec('sink.number()'))['text/plain'], '[1] 0');
  }));

  // Catalogue A3: what a cell printed before the kernel was killed (memory limit) is kept.
  test('text_printed_before_a_kill_is_on_fd_1', () => withOwnKernel(async (own) => {
    own.send({ op: 'exec', id: 1, code: 'for (i in 1:5) { cat(i, "\\n"); Sys.sleep(0.2) }' });
    // Killed once two lines are out (not after a fixed time: a busy machine may start the
    // cell late), while the loop is still running.
    await own.until(() => own.raw.stdout.includes('2 \n'), EXIT_WITHIN_MS, 'the second line');
    own.signal('SIGKILL');
    await own.until(() => own.exited, EXIT_WITHIN_MS, 'exit after SIGKILL');
    await sleep(100); // the last bytes in the pipe
    assert.equal(own.exited.signal, 'SIGKILL');
    assert.equal(own.events.some((e) => e.type === 'done'), false);
    assert.match(own.raw.stdout, /^1 \n2 \n(3 \n)?$/);
  }));

  test('q_in_a_cell_ends_the_kernel', () => withOwnKernel(async (own) => {
    own.send({ op: 'exec', id: 1, code: 'q()' });
    const exited = await own.until(() => own.exited, EXIT_WITHIN_MS, 'exit after q()');
    assert.deepEqual(exited, { code: 0, signal: null });
    assert.equal(own.events.some((e) => e.type === 'done'), false);
  }));
});

test('crlf_line_ends_parse_as_in_a_file', async () => {
  const k = await startKernel('r');
  try {
    const c = await k.exec('cat(1, "\\n")\r\ncat(2, "\\n")\r\n');
    assert.equal(c.done.status, 'ok');
    assert.equal(c.out, '1 \n2 \n');
  } finally {
    await k.close();
  }
});
