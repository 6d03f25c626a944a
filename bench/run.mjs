#!/usr/bin/env node
// bench/run.mjs: codepane side by side with Jupyter Server (issue 7). Not a test: run it
// with `npm run bench` (bench/run.sh installs and builds what is missing first) or
// `node bench/run.mjs [options]`. It writes docs/benchmarks.md, docs/benchmarks.png (made
// by bench/chart.py) and bench/results/benchmarks.json (every sample).
//
// Servers, all on 127.0.0.1, every one stopped by pid at the end, on an error and on
// Ctrl-C (Jupyter as a process group, its kernels by pid):
//   codepane A   codepane-server, kernels for every language, the shipped pool (python=1),
//                uid base 64800 (24 slots): ARGS_A below
//   codepane B   the same with --kernel-pool none, uid base 64832 (8 slots): cold start
//                without a pre-started kernel
//   jupyter      Jupyter Server 1.23 as shipped (Nagle on, IOPub rate limit 1 MB/s)
//   jupyter+nd   the same with bench/jupyter_nodelay.py (a server extension: TCP_NODELAY
//                on every kernel WebSocket)
//   jupyter+nd, no limit   the same with --ServerApp.iopub_data_rate_limit=0 (10 MB only)
//
// Clients: codepane through the package's Node entry (dist/node.mjs, `code.run` with
// streamBeta) and through raw `ws` frames; Jupyter through raw `ws` frames of the kernel
// WebSocket protocol (bench/jupyter.mjs); both in headless Chromium (bench/browser.mjs).
// The workloads and what each sample is are described where they are measured and again
// in the report (bench/report.mjs).
//
// Options: --quick (few samples, writes to build/bench-quick/ instead of docs/), --runs N
// (warm samples), --paced N (warm samples 300 ms apart), --cold N, --window S and --windows N (runs-per-second windows), --big N
// (10 MB samples), --plot N, --browser-runs N, --no-browser, --no-weight, --out DIR;
// --report FILE.json writes the report and the chart again from the samples of an earlier
// run (no server is started).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  ROOT, createSession, expectOnlyKernels, invocationId, kernelProcesses, openWs, releaseSession, runFrame, startServer,
} from '../tests/server/harness.mjs';
import {
  closeWs, cpuTicks, cpuTicksOf, log, machine, memoryOf, pipeFloor, shellVariants, sleep, spawnFloor, startEcho, waitIdle, waitPoolReady,
  wasmSections, withTimeout, wsEchoFloor,
} from './common.mjs';
import { clientHops, epoch, serverHops } from './hops.mjs';
import { JupyterKernel, startJupyter } from './jupyter.mjs';
import { summarize, writeReport } from './report.mjs';

// ---- options ------------------------------------------------------------------------------

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
function option(name, dflt) {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === name) return argv[i + 1];
    if (argv[i].startsWith(`${name}=`)) return argv[i].slice(name.length + 1);
  }
  return dflt;
}
const num = (name, dflt, min = 1) => {
  const v = Number(option(name, dflt));
  if (!Number.isFinite(v) || v < min) {
    console.error(`bad option ${name}: ${option(name, dflt)}\nusage: node bench/run.mjs [--quick] [--runs N] [--cold N] ` +
      '[--window S] [--windows N] [--big N] [--plot N] [--browser-runs N] [--no-browser] [--no-weight] [--out DIR]');
    process.exit(2);
  }
  return v;
};
const O = {
  quick: QUICK,
  runs: num('--runs', QUICK ? 8 : 100),
  cold: num('--cold', QUICK ? 3 : 8),
  windowS: num('--window', QUICK ? 0.5 : 2, 0.1),
  windows: num('--windows', 3),
  big: num('--big', QUICK ? 2 : 3),
  plot: num('--plot', QUICK ? 3 : 10),
  browserRuns: num('--browser-runs', QUICK ? 5 : 30),
  browser: !argv.includes('--no-browser'),
  weight: !argv.includes('--no-weight'),
  paced: num('--paced', QUICK ? 3 : 15),
  gapMs: 5,
  parallel: [4, 16],
  out: fileURLToPath(new URL(option('--out', QUICK ? '../build/bench-quick/' : '../docs/'), import.meta.url)).replace(/\/?$/, '/'),
};

// ---- the servers ----------------------------------------------------------------------------

const UID_A = 64800, SLOTS_A = 24;
const UID_B = 64832, SLOTS_B = 8;
const ARGS_A = ['--kernels', 'all', '--kernel-pool', 'python=1', '--max-runs', String(SLOTS_A),
  '--max-output-bytes', '16M', '--max-sessions', '64', '--kernels-per-session', '4', '--max-conns-per-ip', '64'];
const ARGS_B = ['--kernels', 'all', '--kernel-pool', 'none', '--max-runs', String(SLOTS_B)];

const BIG_LOOP = "line = 'x' * 99\nfor i in range(100000):\n    print(line)\n"; // 100,000 lines of 100 bytes
const CODE = {
  python: "print('x')",
  javascript: "console.log('x')",
  big: BIG_LOOP,
  // The same loop, timed from inside (written to stderr at the end): the profile.
  bigTimed: `import sys, time\n_t0 = time.perf_counter()\n${BIG_LOOP}sys.stdout.flush()\n` +
    "sys.stderr.write('loop_ms %.3f\\n' % ((time.perf_counter() - _t0) * 1000))\n",
  plot: 'import matplotlib.pyplot as plt\nplt.figure(figsize=(4, 3))\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()\n',
  // 10 MB in one write (the kernel's capture does one event per 64 Ki characters), and
  // 100,000 os.write calls on fd 1 (past the capture: the server reads the pipe): profiles.
  bigOneWrite: "import sys, time\n_t0 = time.perf_counter()\nsys.stdout.write(('x' * 99 + '\\n') * 100000)\nsys.stdout.flush()\n" +
    "sys.stderr.write('loop_ms %.3f\\n' % ((time.perf_counter() - _t0) * 1000))\n",
  bigFd: "import os, sys, time\n_t0 = time.perf_counter()\nb = ('x' * 99 + '\\n').encode()\nfor i in range(100000):\n    os.write(1, b)\n" +
    "sys.stderr.write('loop_ms %.3f\\n' % ((time.perf_counter() - _t0) * 1000))\n",
  // First output of a cell that goes on running.
  live: "import time\nprint('x')\ntime.sleep(0.3)",
  // The modules an idle kernel has loaded (memory profile).
  modules: "import sys\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules if not m.startswith('_')})))",
};
const BIG_BYTES = 10_000_000;

const codepaneServers = [];
const jupyterServers = [];
const children = new Set();
let cleaning = null;
function cleanup() {
  cleaning ??= (async () => {
    for (const c of children) { try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } }
    await Promise.all([...codepaneServers, ...jupyterServers].map((s) => s.stop().catch((e) => log(`stop: ${e.message}`))));
  })();
  return cleaning;
}
for (const ev of ['uncaughtException', 'unhandledRejection']) {
  process.once(ev, (e) => { console.error(ev, e); cleanup().finally(() => process.exit(1)); });
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => { log(`${sig}: stopping every server`); cleanup().finally(() => process.exit(130)); });
}

async function jupyter(opts) {
  const s = await startJupyter(opts);
  jupyterServers.push(s);
  log(`${opts.label}: pid ${s.pid} at ${s.base}`);
  return s;
}
async function stopJupyter(s) {
  await s.stop();
  jupyterServers.splice(jupyterServers.indexOf(s), 1);
}

// ---- codepane: one session over raw ws ----------------------------------------------------

/** A codepane session and its WebSocket, driven with raw frames (docs/protocol.md). */
class CodepaneWs {
  constructor(server, session, ws) {
    Object.assign(this, { server, session, ws, pending: new Map() });
    ws.on('message', (buf) => {
      const at = performance.now();
      const fr = JSON.parse(buf.toString());
      this.pending.get(fr.invocationId)?.(fr.data, at);
    });
    ws.on('error', () => {});
  }

  static async open(server) {
    const session = await createSession(server);
    return new CodepaneWs(server, session, await openWs(session));
  }

  /** One streaming run; times in ms from ws.send (see JupyterKernel.execute). */
  run(code, language, { timeoutMs = 120000 } = {}) {
    const id = invocationId();
    return new Promise((resolve, reject) => {
      let t0 = 0, first = null, png = null, pngBytes = 0, bytes = 0, stdout = '', stderr = '';
      const chunks = [];
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`codepane ${language}: no end frame within ${timeoutMs} ms (stdout ${bytes} bytes)`));
      }, timeoutMs);
      this.pending.set(id, (d, at) => {
        const t = at - t0;
        if (d.phase === 'event') {
          if (d.eventType === 'stdout') {
            if (first === null) first = t;
            const n = Buffer.byteLength(d.chunk);
            bytes += n;
            chunks.push([t, n]);
            if (stdout.length < 4096) stdout += d.chunk;
          } else if (d.eventType === 'stderr') {
            stderr += d.chunk;
          } else if (d.eventType === 'result' && png === null && d.result?.mime?.['image/png']) {
            png = t;
            pngBytes = Buffer.from(d.result.mime['image/png'], 'base64').length;
          }
          return;
        }
        clearTimeout(timer);
        this.pending.delete(id);
        const refused = d.phase === 'error' || typeof d.error === 'string';
        resolve({
          first, png, pngBytes, end: t, bytes, chunks, stdout, stderr,
          ok: !refused && d.status === 'finished', error: refused ? String(d.error) : (d.executionError ?? null),
        });
      });
      const frame = runFrame(id, code, language);
      t0 = performance.now();
      this.ws.send(frame);
    });
  }

  async close() {
    await closeWs(this.ws);
    await releaseSession(this.server, this.session).catch(() => {});
  }
}

// ---- codepane: the package's Node client --------------------------------------------------

/** One run through session.code.run with streamBeta; times in ms from the call. */
async function clientRun(session, code, language) {
  let first = null, png = null, pngBytes = 0, bytes = 0, stdout = '';
  const chunks = [];
  const t0 = performance.now();
  const r = await session.code.run(code, language, 60, {
    streamBeta: true,
    onStdout: (c) => {
      const t = performance.now() - t0;
      if (first === null) first = t;
      const n = Buffer.byteLength(c);
      bytes += n;
      chunks.push([t, n]);
      if (stdout.length < 4096) stdout += c;
    },
    onResult: (res) => {
      if (png === null && res.png) { png = performance.now() - t0; pngBytes = Buffer.from(res.png, 'base64').length; }
    },
  });
  return {
    t0, first, png, pngBytes, end: performance.now() - t0, bytes, chunks, stdout, stderr: r.logs.stderr.join(''),
    ok: r.success, error: r.errorMessage || null,
  };
}

// ---- drivers: one interface over the three ways of running code ---------------------------

/** A driver runs code of one language and returns {first, png, end, bytes, chunks, stdout,
 * ok, error}; `label` names it in errors. */
const drivers = {
  raw: (cp, language) => ({ label: `codepane ws ${language}`, run: (code) => cp.run(code, language) }),
  client: (session, language) => ({ label: `codepane client ${language}`, run: (code) => clientRun(session, code, language) }),
  jupyter: (k) => ({
    label: `${k.server.label} python`,
    run: async (code) => {
      const r = await k.execute(code);
      return { ...r, ok: r.status === 'ok', error: r.status === 'ok' ? null : JSON.stringify(r.reply) };
    },
  }),
};

function expectX(r, what) {
  if (!r.ok || r.first === null || r.stdout !== 'x\n') {
    throw new Error(`${what}: stdout ${JSON.stringify(r.stdout)}, error ${r.error}`);
  }
}

// ---- workloads ------------------------------------------------------------------------------

/** Warm time to first output, interleaved: each entry of `list` ([key, driver, code]) has
 * one warm-up run, then server A's sandboxes are left to settle (the warm-ups adopted the
 * pooled kernel, whose replacement starts), then O.runs rounds: in each, one echo round
 * trip (the floor, under the same conditions) and one run of every driver, gapMs apart.
 * Sample: request sent → first stdout chunk received; also → end of the run. */
async function warmRounds(list, echo, A) {
  for (const [key, d, code] of list) expectX(await d.run(code), `${d.label} warm-up (${key})`);
  await waitQuiet(A, SLOTS_A);
  const out = { floor: [] };
  for (const [key] of list) out[key] = { first: [], end: [] };
  for (let i = 0; i < O.runs; i++) {
    await sleep(O.gapMs);
    out.floor.push(await echo.rtt());
    for (const [key, d, code] of list) {
      await sleep(O.gapMs);
      const r = await d.run(code);
      expectX(r, `${d.label} run ${i + 1}`);
      out[key].first.push(r.first);
      out[key].end.push(r.end);
    }
  }
  return out;
}

/** Warm time to first output of one system on its own: `n` runs, `gapMs` apart. */
async function warmSerial(driver, code, n, gapMs) {
  expectX(await driver.run(code), `${driver.label} warm-up`);
  const first = [], end = [];
  for (let i = 0; i < n; i++) {
    await sleep(gapMs);
    const r = await driver.run(code);
    expectX(r, `${driver.label} run ${i + 1}`);
    first.push(r.first);
    end.push(r.end);
  }
  return { first, end };
}

/** Wait until no process of server A's sandbox slots uses CPU (≤ 1 tick in 300 ms, all of
 * them together): the pool's refill and the warm-ups are over. */
async function waitQuiet(server, slots, timeoutMs = 20000) {
  const t0 = Date.now();
  const total = () => cpuTicksOf(pidsOfUid(server.uidBase, slots));
  let last = total(), since = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    await sleep(100);
    const now = total();
    if (now - last > 1) { last = now; since = Date.now(); } else if (Date.now() - since >= 300) return;
  }
}

/** Runs per second: every driver runs print('x') back to back for O.windowS seconds
 * (each waits for its run's end before sending the next); a sample is the runs completed
 * within the window, over all drivers, divided by its length. O.windows windows.
 * `pids` ({server: [...], kernels: [...]}) are charged for the CPU they use meanwhile:
 * the result's `cpu` is ms of CPU per run for the client (this process) and each set. */
async function rps(list, pids = {}) {
  const samples = [];
  const ticks = () => Object.fromEntries(Object.entries(pids).map(([k, ps]) => [k, cpuTicksOf(ps)]));
  let runs = 0;
  const before = ticks();
  const c0 = process.cpuUsage();
  for (let w = 0; w < O.windows; w++) {
    await sleep(200);
    const t0 = performance.now();
    const deadline = t0 + O.windowS * 1000;
    const counts = await Promise.all(list.map(async (d) => {
      let n = 0;
      while (performance.now() < deadline) {
        const r = await d.run(CODE.python);
        expectX(r, `${d.label} (runs per second)`);
        if (performance.now() <= deadline) n++;
      }
      return n;
    }));
    samples.push(counts.reduce((a, b) => a + b, 0) / O.windowS);
    runs += counts.reduce((a, b) => a + b, 0) + list.length; // and the one past the deadline
  }
  const c1 = process.cpuUsage(c0);
  const after = ticks();
  const cpu = { client: (c1.user + c1.system) / 1000 / runs };
  for (const k of Object.keys(pids)) cpu[k] = ((after[k] - before[k]) * 10) / runs; // 100 ticks/s
  return { samples, cpu, cores: os.cpus().length };
}

/** 10 MB of stdout: one warm-up run, then O.big runs. Per sample: bytes delivered, ms to
 * the first chunk and to the last, the largest gap between two chunks, the number of
 * chunks, MB/s (10^6 bytes over request sent → last chunk), and whether it was whole. */
async function big(driver) {
  const one = async () => {
    const r = await driver.run(CODE.big);
    let gap = 0;
    for (let i = 1; i < r.chunks.length; i++) gap = Math.max(gap, r.chunks[i][0] - r.chunks[i - 1][0]);
    const last = r.chunks.length ? r.chunks[r.chunks.length - 1][0] : null;
    return {
      bytes: r.bytes, first: r.first, last, end: r.end, gap, chunks: r.chunks.length,
      mbps: last ? r.bytes / 1e6 / (last / 1000) : 0, whole: r.bytes === BIG_BYTES,
      rateLimited: /IOPub data rate exceeded/.test(r.stderr ?? ''), ok: r.ok, error: r.error,
    };
  };
  await one(); // warm-up
  const samples = [];
  for (let i = 0; i < O.big; i++) { await sleep(200); samples.push(await one()); }
  return samples;
}

/** A matplotlib figure to a PNG result, warm: one warm-up run (imports matplotlib), then
 * O.plot runs. Sample: request sent → the result carrying image/png; also → end. */
async function plot(driver) {
  const w = await driver.run(CODE.plot);
  if (w.png === null) throw new Error(`${driver.label}: the plot gave no PNG (${w.error ?? w.stderr})`);
  const png = [], end = [];
  let pngBytes = 0;
  for (let i = 0; i < O.plot; i++) {
    await sleep(O.gapMs);
    const r = await driver.run(CODE.plot);
    if (r.png === null) throw new Error(`${driver.label} plot ${i + 1}: no PNG (${r.error})`);
    png.push(r.png);
    end.push(r.end);
    pngBytes = r.pngBytes;
  }
  return { png, end, pngBytes };
}

/** First output of a cell that keeps running (print, then sleep 0.3 s): O.plot runs. */
async function live(driver) {
  await driver.run(CODE.live);
  const first = [];
  for (let i = 0; i < O.plot; i++) {
    await sleep(O.gapMs);
    const r = await driver.run(CODE.live);
    expectX(r, `${driver.label} live ${i + 1}`);
    first.push(r.first);
  }
  return { first };
}

// ---- codepane's pool ------------------------------------------------------------------------

/** Wait until a server has no sandbox process at all (B between cold samples). */
const waitNoKernels = (server) => expectOnlyKernels(server.uidBase, { max: 0, ms: 15000, serverPid: server.pid });

/** Pids whose real uid is in [uid, uid + count), from one pass over /proc. */
function pidsOfUid(uid, count) {
  const out = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue;
    try {
      const u = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
      if (u >= uid && u < uid + count) out.push(Number(pid));
    } catch { /* gone */ }
  }
  return out;
}

// ---- cold start -------------------------------------------------------------------------------

/** codepane, the Node client: connect({server}) → first onStdout of print('x'). The pool
 * holds a ready kernel before each sample (as on a server that is not flooded). */
async function coldClient(A) {
  const { connect } = await import('../dist/node.mjs');
  const total = [];
  for (let i = 0; i < O.cold; i++) {
    await waitPoolReady(A, SLOTS_A);
    const t0 = performance.now();
    const session = await connect({ server: A.base });
    try {
      const r = await clientRun(session, CODE.python, 'python');
      expectX(r, `codepane client cold ${i + 1}`);
      total.push(r.t0 + r.first - t0);
    } finally {
      await session.close();
    }
  }
  return { total };
}

/** Cold starts of python, O.cold samples, each timed in parts: start (a session, a kernel)
 * → WebSocket open → run → first stdout. Per sample: `prepare()`, then `start()` → h,
 * `connect(h)` → a driver with close(); close() also follows a failed run. `what` names
 * the system in errors. */
async function coldSamples(what, { prepare, start, connect }) {
  const total = [], create = [], open = [], run = [];
  for (let i = 0; i < O.cold; i++) {
    await prepare();
    const t0 = performance.now();
    const h = await start();
    const t1 = performance.now();
    const c = await connect(h);
    const t2 = performance.now();
    try {
      const r = await c.run(CODE.python);
      expectX(r, `${what} cold ${i + 1}`);
      total.push(t2 - t0 + r.first);
      create.push(t1 - t0);
      open.push(t2 - t1);
      run.push(r.first);
    } finally {
      await c.close();
    }
  }
  return { total, create, open, run };
}

/** codepane, raw: createSession → WebSocket open → run → first stdout.
 * `prepare` runs before each sample (pool ready on A, nothing left on B). */
async function coldRaw(server, prepare) {
  return coldSamples('codepane', {
    prepare,
    start: () => createSession(server),
    connect: async (session) => {
      const cp = new CodepaneWs(server, session, await openWs(session));
      return { ...drivers.raw(cp, 'python'), close: () => cp.close() };
    },
  });
}

/** Jupyter: POST /api/kernels → channels WebSocket open (the server answers once the kernel
 * replied to kernel_info) → execute → first stdout; then DELETE, and wait for the process
 * to be gone before the next sample. */
async function coldJupyter(J) {
  return coldSamples(J.label, {
    prepare: () => sleep(300),
    start: () => JupyterKernel.start(J),
    connect: async (k) => {
      await k.connect();
      return {
        ...drivers.jupyter(k),
        close: async () => {
          const pid = k.pid(); // a walk of /proc: after the timed part
          await k.shutdown();
          for (let t = 0; pid && t < 100; t++) { try { process.kill(pid, 0); } catch { break; } await sleep(50); }
        },
      };
    },
  });
}

// ---- profiles ---------------------------------------------------------------------------------

/** CPU seconds a run costs each process: the client (this Node process), the server and
 * the kernel (all of its sandbox's processes, or the ipykernel), from /proc deltas. */
async function cpuProfile(driver, code, pids) {
  const hz = 100; // USER_HZ on Linux
  const before = Object.fromEntries(Object.entries(pids).map(([k, ps]) => [k, cpuTicksOf(ps)]));
  const c0 = process.cpuUsage();
  const r = await driver.run(code);
  const c1 = process.cpuUsage(c0);
  const loop = /loop_ms ([\d.]+)/.exec(r.stderr ?? '');
  const out = {
    wallMs: r.end, lastMs: r.chunks?.at(-1)?.[0] ?? null, chunks: r.chunks?.length ?? 0, bytes: r.bytes,
    loopMs: loop ? Number(loop[1]) : null, clientMs: (c1.user + c1.system) / 1000,
  };
  for (const [k, ps] of Object.entries(pids)) out[`${k}Ms`] = ((cpuTicksOf(ps) - before[k]) * 1000) / hz;
  return out;
}

// ---- main -------------------------------------------------------------------------------------

function pick(what, fn) {
  return fn().catch((e) => {
    log(`${what} failed: ${e.stack ?? e.message}`);
    failures.push(`${what}: ${e.message}`);
    return null;
  });
}
const failures = [];

async function main() {
  const started = new Date();
  const tStart = performance.now();
  const mach = machine();
  const R = { options: O, started: started.toISOString(), machine: mach, args: { A: ARGS_A, B: ARGS_B } };

  log(`codepane A (uid base ${UID_A}) and B (uid base ${UID_B})`);
  const A = await startServer({ args: ARGS_A, uidBase: UID_A });
  codepaneServers.push(A);
  const B = await startServer({ args: ARGS_B, uidBase: UID_B });
  codepaneServers.push(B);
  log(`A pid ${A.pid} at ${A.base}, B pid ${B.pid} at ${B.base}`);
  const J0 = await jupyter({ label: 'jupyter' });
  const J1 = await jupyter({ label: 'jupyter+nodelay', nodelay: true });
  await waitPoolReady(A, SLOTS_A, { minMs: 0 });

  // Floors first, while nothing else runs.
  log('floors: WebSocket echo, bwrap spawn');
  R.floor = {
    ws: await wsEchoFloor(children, { trips: QUICK ? 50 : 200, gapMs: O.gapMs }),
    spawn: await spawnFloor(children, { runs: QUICK ? 3 : 10 }),
    pipe: [],
  };
  for (let i = 0; i < (QUICK ? 2 : 3); i++) R.floor.pipe.push(await pipeFloor(CODE.bigTimed, children));

  // ---- warm time to first output: every system in turn, round after round ----------------
  // The machine is shared, so the systems (and the floor) are sampled interleaved: noise
  // from other work falls on all of them alike. The same sessions then serve the other
  // warm workloads, one system at a time.
  const { connect } = await import('../dist/node.mjs');
  R.rps = {};
  R.plot = {};
  R.big = {};
  R.hops = {};
  R.live = {};
  R.profile = {};
  const session = await connect({ server: A.base });
  const cp = await CodepaneWs.open(A);
  const k0 = await (await JupyterKernel.start(J0)).connect();
  const k1 = await (await JupyterKernel.start(J1)).connect();
  const echo = await startEcho(children);
  R.floor.wsBytes = echo.bytes;
  try {
    log(`warm: codepane (Node client, raw ws) and ${J1.label} in turn, ${O.runs} rounds`);
    R.warm = (await pick('warm', () => warmRounds([
      ['clientPy', drivers.client(session, 'python'), CODE.python],
      ['rawPy', drivers.raw(cp, 'python'), CODE.python],
      [J1.label, drivers.jupyter(k1), CODE.python],
      ['clientJs', drivers.client(session, 'javascript'), CODE.javascript],
      ['rawJs', drivers.raw(cp, 'javascript'), CODE.javascript],
    ], echo, A))) ?? {};
    // Jupyter as shipped on its own: what Nagle's algorithm costs depends on the pacing
    // (the client delays its ACKs only while replies come back within 40 ms of its sends).
    log(`warm: ${J0.label}, back to back and paced`);
    R.warm[J0.label] = await pick(`warm ${J0.label}`, () => warmSerial(drivers.jupyter(k0), CODE.python, O.runs, O.gapMs));
    R.warm[`${J0.label}:paced`] = await pick(`warm ${J0.label} paced`, () => warmSerial(drivers.jupyter(k0), CODE.python, O.paced, 300));
    R.warm[`${J1.label}:paced`] = await pick(`warm ${J1.label} paced`, () => warmSerial(drivers.jupyter(k1), CODE.python, O.paced, 300));
    R.warm['rawPy:paced'] = await pick('warm codepane ws paced', () => warmSerial(drivers.raw(cp, 'python'), CODE.python, O.paced, 300));

    log('profile: the Node client\'s own hops');
    R.hops.client = await pick('client hops', () => clientHops(() => clientRun(session, CODE.python, 'python'), O.runs));
    log('runs per second: codepane (Node client), serial');
    R.rps.client1 = await pick('rps codepane client', () => rps([drivers.client(session, 'python')]));
    log('plot and 10 MB: codepane (Node client)');
    R.plot.client = await pick('plot codepane client', () => plot(drivers.client(session, 'python')));
    R.big.client = await pick('10 MB codepane client', () => big(drivers.client(session, 'python')));

    log('plot, 10 MB, a running cell: codepane (raw ws)');
    R.plot.raw = await pick('plot codepane ws', () => plot(drivers.raw(cp, 'python')));
    R.big.raw = await pick('10 MB codepane ws', () => big(drivers.raw(cp, 'python')));
    R.live.raw = await pick('live codepane ws', () => live(drivers.raw(cp, 'python')));
    log('profile: CPU per process of a 10 MB run');
    const kernelsA = kernelProcesses(A.uidBase, { slots: SLOTS_A, serverPid: A.pid }).kernels;
    const pythonKernels = kernelsA.filter((k) => k.lang === 'python').map((k) => k.pid);
    const pids = { server: [A.pid], kernel: kernelsA.flatMap((k) => k.pids) };
    R.profile.bigRaw = await pick('profile 10 MB ws', () => cpuProfile(drivers.raw(cp, 'python'), CODE.bigTimed, pids));
    R.profile.bigOneWriteRaw = await pick('profile 10 MB in one write, ws', () => cpuProfile(drivers.raw(cp, 'python'), CODE.bigOneWrite, pids));
    R.profile.bigFdRaw = await pick('profile 10 MB by os.write, ws', () => cpuProfile(drivers.raw(cp, 'python'), CODE.bigFd, pids));
    // The raw session's python kernel: the one that gets busy when the session runs a cell.
    const before = new Map(pythonKernels.map((p) => [p, cpuTicks(p)]));
    await cp.run('sum(range(3000000))', 'python');
    const kpid = pythonKernels.sort((a, b) => (cpuTicks(b) - before.get(b)) - (cpuTicks(a) - before.get(a)))[0];
    log('profile: codepane-server and the kernel under strace, hop by hop');
    await sleep(500);
    R.hops.server = await pick('server hops (strace)', () => serverHops({
      serverPid: A.pid, kernelPid: kpid, runs: QUICK ? 8 : 20, children,
      run: async () => { const r = await cp.run(CODE.python, 'python'); return { sent: epoch() - r.end, first: epoch() - r.end + r.first }; },
    }));

    for (const [J, k] of [[J0, k0], [J1, k1]]) {
      log(`plot, 10 MB, a running cell: ${J.label}`);
      const d = drivers.jupyter(k);
      R.plot[J.label] = await pick(`plot ${J.label}`, () => plot(d));
      R.big[J.label] = await pick(`10 MB ${J.label}`, () => big(d));
      R.live[J.label] = await pick(`live ${J.label}`, () => live(d));
    }
  } finally {
    await echo.close();
    await Promise.all([session.close(), cp.close(), k0.shutdown(), k1.shutdown()]);
  }
  {
    const J2 = await jupyter({ label: 'jupyter+nodelay, no rate limit', nodelay: true, rateLimit: 0 });
    try {
      const k = await (await JupyterKernel.start(J2)).connect();
      try {
        R.big[J2.label] = await pick(`10 MB ${J2.label}`, () => big(drivers.jupyter(k)));
        const jp = { server: [J2.pid], kernel: [k.pid()] };
        R.profile.bigJupyter = await pick('profile 10 MB jupyter', () => cpuProfile(drivers.jupyter(k), CODE.bigTimed, jp));
        R.profile.bigOneWriteJupyter = await pick('profile 10 MB in one write, jupyter', () => cpuProfile(drivers.jupyter(k), CODE.bigOneWrite, jp));
      } finally {
        await k.shutdown();
      }
    } finally {
      await stopJupyter(J2);
    }
  }

  // ---- runs per second: 1, 4 and 16 sessions (kernels) -------------------------------------
  {
    log(`runs per second: codepane (raw ws), 1, ${O.parallel.join(', ')} sessions`);
    await waitPoolReady(A, SLOTS_A);
    const n = Math.max(...O.parallel);
    const cps = [];
    try {
      for (let i = 0; i < n; i++) {
        const cp = await CodepaneWs.open(A);
        cps.push(cp);
        expectX(await cp.run(CODE.python, 'python'), `codepane session ${i + 1} warm-up`);
      }
      await sleep(1500); // the pool's refill settles
      const ds = cps.map((cp) => drivers.raw(cp, 'python'));
      const pids = {
        server: [A.pid],
        kernels: kernelProcesses(A.uidBase, { slots: SLOTS_A, serverPid: A.pid }).kernels.flatMap((k) => k.pids),
      };
      R.rps.raw1 = await pick('rps codepane 1', () => rps(ds.slice(0, 1), pids));
      for (const p of O.parallel) R.rps[`raw${p}`] = await pick(`rps codepane ${p}`, () => rps(ds.slice(0, p), pids));
    } finally {
      await Promise.all(cps.map((cp) => cp.close()));
    }
  }
  for (const J of [J0, J1]) {
    log(`runs per second: ${J.label}, 1, ${O.parallel.join(', ')} kernels`);
    const n = Math.max(...O.parallel);
    const ks = [];
    try {
      for (let i = 0; i < n; i++) {
        const k = await (await JupyterKernel.start(J)).connect();
        ks.push(k);
        expectX(await drivers.jupyter(k).run(CODE.python), `${J.label} kernel ${i + 1} warm-up`);
      }
      await sleep(1000);
      const ds = ks.map((k) => drivers.jupyter(k));
      const pids = { server: [J.pid], kernels: ks.map((k) => k.pid()).filter(Boolean) };
      R.rps[`${J.label}:1`] = await pick(`rps ${J.label} 1`, () => rps(ds.slice(0, 1), pids));
      for (const p of O.parallel) R.rps[`${J.label}:${p}`] = await pick(`rps ${J.label} ${p}`, () => rps(ds.slice(0, p), pids));
    } finally {
      await Promise.all(ks.map((k) => k.shutdown()));
    }
  }

  // ---- cold start ---------------------------------------------------------------------------
  R.cold = {};
  log('cold: codepane A (pool), Node client and raw');
  R.cold.client = await pick('cold codepane client', () => coldClient(A));
  R.cold.raw = await pick('cold codepane ws', () => coldRaw(A, () => waitPoolReady(A, SLOTS_A)));
  log('cold: codepane B (no pool)');
  await waitNoKernels(B);
  R.cold.rawNoPool = await pick('cold codepane B', () => coldRaw(B, () => waitNoKernels(B)));
  for (const J of [J0, J1]) {
    log(`cold: ${J.label}`);
    R.cold[J.label] = await pick(`cold ${J.label}`, () => coldJupyter(J));
  }

  // ---- memory of one idle python session ----------------------------------------------------
  log('memory: one idle python session');
  R.memory = await pick('memory', async () => {
    const pooled = await waitPoolReady(A, SLOTS_A);
    const cp = await CodepaneWs.open(A);
    const k = await (await JupyterKernel.start(J1)).connect();
    try {
      expectX(await cp.run(CODE.python, 'python'), 'codepane memory session');
      expectX(await drivers.jupyter(k).run(CODE.python), 'jupyter memory kernel');
      const modules = {
        codepane: (await cp.run(CODE.modules, 'python')).stdout.trim().split(' '),
        jupyter: (await drivers.jupyter(k).run(CODE.modules)).stdout.trim().split(' '),
      };
      const mine = kernelProcesses(A.uidBase, { slots: SLOTS_A, serverPid: A.pid }).kernels.find((x) => x.pid === pooled);
      if (!mine) throw new Error('the session did not adopt the pooled kernel');
      await waitPoolReady(A, SLOTS_A, { sessionKernels: [mine.pid] }); // the refill is idle too
      const jpid = k.pid();
      await waitIdle(mine.pid);
      await waitIdle(jpid);
      await sleep(500);
      return {
        codepane: memoryOf(mine.pids),
        jupyter: memoryOf([jpid]),
        codepaneServer: memoryOf([A.pid]),
        jupyterServer: memoryOf([J1.pid]),
        modules,
        variants: shellVariants(),
      };
    } finally {
      await k.shutdown();
      await cp.close();
    }
  });

  // ---- the browser ---------------------------------------------------------------------------
  if (O.browser) {
    R.browser = {};
    const { browserFirstOutput } = await import('./browser.mjs');
    for (const J of [J1, J0]) {
      log(`browser: headless Chromium, codepane and ${J.label}`);
      await waitPoolReady(A, SLOTS_A).catch(() => {});
      R.browser[J.label] = await pick(`browser (${J.label})`, () => withTimeout(
        browserFirstOutput({ codepaneBase: A.base, jupyter: { base: J.base, token: J.token }, runs: O.browserRuns }),
        300000, 'browserFirstOutput'));
    }
  }

  // ---- client weight --------------------------------------------------------------------------
  if (O.weight) {
    log('client weight');
    const { clientWeight } = await import('./weight.mjs');
    R.weight = await pick('client weight', () => withTimeout(clientWeight(), 600000, 'clientWeight'));
    R.wasmSections = wasmSections(fileURLToPath(new URL('../dist/core.wasm', import.meta.url)));
  }

  R.failures = failures;
  R.elapsedS = (performance.now() - tStart) / 1000;
  mach.loadEnd = os.loadavg();
  R.serverLogs = { A: A.output().err.slice(-4000), jupyter: J1.log().slice(-4000) };
  return R;
}

/** The JSON, the chart and the report of a run, into O.out (and bench/results/ for a full run). */
function writeOutputs(R, { json } = {}) {
  mkdirSync(O.out, { recursive: true });
  if (!json) {
    const resultsDir = QUICK ? O.out : fileURLToPath(new URL('./results/', import.meta.url));
    mkdirSync(resultsDir, { recursive: true });
    json = `${resultsDir}benchmarks.json`;
  }
  R.summary = summarize(R);
  writeFileSync(json, JSON.stringify(R, null, 1));
  log(`samples written to ${json}`);
  const png = `${O.out}benchmarks.png`;
  try {
    execFileSync('/usr/bin/python3', [fileURLToPath(new URL('./chart.py', import.meta.url)), json, png], { stdio: 'inherit' });
  } catch (e) {
    failures.push(`chart: ${e.message}`);
  }
  const rel = json.startsWith(ROOT) ? json.slice(ROOT.length) : json;
  writeFileSync(`${O.out}benchmarks.md`, writeReport(R, { png: 'benchmarks.png', json: rel }));
  log(`report written to ${O.out}benchmarks.md, chart to ${png}`);
}

const again = option('--report', null);
if (again) {
  const R = JSON.parse(readFileSync(again, 'utf8'));
  writeOutputs(R, { json: again });
  process.exit(failures.length ? 1 : 0);
}

let code = 1;
try {
  const R = await main();
  await cleanup();
  writeOutputs(R);
  log(`done in ${R.elapsedS.toFixed(0)} s`);
  code = failures.length ? 1 : 0;
} catch (e) {
  console.error(e);
} finally {
  await cleanup();
}
process.exit(code);
