#!/usr/bin/env node
// bench/kernels.mjs: first-output latency of codepane-server with persistent kernels
// against one sandboxed process per run, next to the floor (a bare loopback WebSocket
// round trip). Not a test: run it by hand, `node bench/kernels.mjs [--runs N]` (or
// `npm run bench:kernels -- --runs N`). It prints a markdown report and writes the same
// to bench/results/kernels.md.
//
// Two servers on loopback, started with tests/server/harness.mjs and stopped by pid at the
// end (also on error or Ctrl-C):
//   A  --kernels all --kernel-pool python=1,javascript=1,java=1,r=1 --max-runs 8  (uid base 64900)
//   B  --kernels none --max-runs 8                                                 (uid base 64964)
//
// Per language (one line that prints "x"):
//   warm  A: one session, one WebSocket, one warm-up run, then N runs; each sample is the
//            time from ws.send(run frame) to the 'message' event of the first stdout frame.
//   cold  A: per sample a new session + a new WebSocket; time from the createSession
//            request to the first stdout frame (and, separately, from the run frame). Before
//            each sample the bench waits until the pool holds a ready kernel of the language
//            again (see waitPoolReady in bench/common.mjs), so every sample adopts a
//            started kernel.
//   warm  B: as warm A, one sandboxed process per run.
// Floor: npm `ws` echo server on 127.0.0.1 in a separate Node process (like the codepane
// server, another process), median of round trips of a 200-byte text frame; the same
// in-process is shown for reference.
//
// Options: --runs N (warm runs per language, default 30), --cold N (cold python samples,
// default 10), --cold-other N (cold samples of the other languages, default 5),
// --gap MS (pause between samples of the warm and floor loops, default 10).
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  ROOT, createSession, invocationId, kernelProcesses, openWs, releaseSession, runFrame, startServer,
} from '../tests/server/harness.mjs';
import {
  closeWs, log, machine, sleep, stats, waitPoolReady, wsEchoFloor, // log: progress, on stderr
} from './common.mjs';

// ---- options ------------------------------------------------------------------------------

function option(name, dflt) {
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === name) return Number(argv[i + 1]);
    if (argv[i].startsWith(`${name}=`)) return Number(argv[i].slice(name.length + 1));
  }
  return dflt;
}
const RUNS = option('--runs', 30);
const COLD_PY = Math.max(10, option('--cold', 10));
const COLD_OTHER = Math.max(5, option('--cold-other', 5));
const GAP_MS = option('--gap', 10);
const FLOOR_TRIPS = 300;
for (const [k, v] of Object.entries({ RUNS, COLD_PY, COLD_OTHER, GAP_MS })) {
  if (!Number.isFinite(v) || v < 0 || (k === 'RUNS' && v < 1)) {
    console.error(`bad option ${k}: ${v}\nusage: node bench/kernels.mjs [--runs N] [--cold N] [--cold-other N] [--gap MS]`);
    process.exit(2);
  }
}

const UID_A = 64900;
const UID_B = 64964;
const SLOTS = 64; // the two uid ranges [64900, 64964) and [64964, 65028) do not overlap
const ARGS_A = ['--kernels', 'all', '--kernel-pool', 'python=1,javascript=1,java=1,r=1', '--max-runs', '8'];
const ARGS_B = ['--kernels', 'none', '--max-runs', '8'];

const LANGS = [
  { lang: 'python', code: "print('x')", label: 'python' },
  { lang: 'javascript', code: "console.log('x')", label: 'javascript' },
  { lang: 'java', code: 'System.out.println("x");', label: 'java' },
  { lang: 'r', code: "cat('x\\n')", label: 'r' },
];

const OUT_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const OUT_FILE = `${OUT_DIR}kernels.md`;

// ---- formatting ---------------------------------------------------------------------------

const f = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? '–' : x.toFixed(d));
const cell = (st) => (st ? `${f(st.median)} (${f(st.min)}–${f(st.max)})` : 'n/a');

// ---- one run on an open session WebSocket ------------------------------------------------

/** Send one stream run; resolve with {first, end, stdout, status, error}: ms from the
 * ws.send of the run frame to the 'message' event of the first stdout frame and of the
 * end frame. */
function timedRun(ws, code, language, { timeoutMs = 60000 } = {}) {
  const id = invocationId();
  return new Promise((resolve, reject) => {
    let t0 = 0, first = null, stdout = '';
    const errors = [];
    const timer = setTimeout(() => {
      ws.off('message', onMessage);
      reject(new Error(`${language}: no end frame within ${timeoutMs} ms (stdout so far ${JSON.stringify(stdout)})`));
    }, timeoutMs);
    const onMessage = (buf) => {
      const at = performance.now();
      const fr = JSON.parse(buf.toString());
      if (fr.invocationId !== id) return;
      const d = fr.data;
      if (d.phase === 'event' && d.eventType === 'stdout') {
        if (first === null) first = at - t0;
        stdout += d.chunk;
      } else if (d.phase === 'event' && d.eventType === 'error') {
        errors.push(d.error);
      } else if (d.phase === 'end' || d.phase === 'error' || typeof d.error === 'string') {
        clearTimeout(timer);
        ws.off('message', onMessage);
        resolve({
          first, end: at - t0, sentAt: t0, firstAt: first === null ? null : t0 + first,
          stdout, status: d.status ?? d.phase, errors,
          refusal: d.phase === 'error' || typeof d.error === 'string' ? (d.error ?? 'refused') : null,
          executionError: d.executionError ?? null,
        });
      }
    };
    ws.on('message', onMessage);
    const frame = runFrame(id, code, language);
    t0 = performance.now();
    ws.send(frame);
  });
}

/** A run whose output is not exactly "x\n" (or that failed) is a broken sample. */
function checkRun(r, what) {
  if (r.refusal) throw new Error(`${what}: refused: ${JSON.stringify(r.refusal)}`);
  if (r.first === null || r.stdout !== 'x\n') {
    throw new Error(`${what}: stdout ${JSON.stringify(r.stdout)}, status ${r.status}, ` +
      `error ${JSON.stringify(r.executionError ?? r.errors)}`);
  }
}

const release = (server, session) => releaseSession(server, session).catch(() => {});

// ---- measurements -----------------------------------------------------------------------------

/** Warm: one session, one WebSocket, a warm-up run, then RUNS runs. `beforeRuns` is awaited
 * after the warm-up (on A: the pool refill the warm-up's adoption triggered settles first). */
async function warm(server, { lang, code }, { beforeRuns } = {}) {
  const session = await createSession(server);
  const ws = await openWs(session);
  try {
    const w = await timedRun(ws, code, lang);
    checkRun(w, `${lang} warm-up`);
    if (beforeRuns) await beforeRuns();
    const first = [], end = [];
    for (let i = 0; i < RUNS; i++) {
      await sleep(GAP_MS);
      const r = await timedRun(ws, code, lang);
      checkRun(r, `${lang} run ${i + 1}`);
      first.push(r.first);
      end.push(r.end);
    }
    return { warmup: w.first, second: first[0], first: stats(first), end: stats(end), raw: first };
  } finally {
    await closeWs(ws);
    await release(server, session);
  }
}

/** Wait until server A's pool holds a started, idle kernel of `lang` and no session holds
 * one of it (the other languages' pools may be refilling meanwhile), at least `minMs`
 * (default 1 s) after the call. Returns the pooled kernel's pid. */
function poolReady(server, lang, options = {}) {
  return waitPoolReady(server, SLOTS, { lang, otherLangs: true, minMs: 1000, ...options });
}

/** Cold: per sample a new session and WebSocket; the pool is refilled in between. */
async function cold(server, { lang, code }, samples) {
  const total = [], runPart = [], create = [], open = [], adopted = [];
  for (let i = 0; i < samples; i++) {
    const pooledPid = await poolReady(server, lang);
    const t0 = performance.now();
    const session = await createSession(server);
    const t1 = performance.now();
    const ws = await openWs(session);
    const t2 = performance.now();
    try {
      const r = await timedRun(ws, code, lang);
      checkRun(r, `${lang} cold sample ${i + 1}`);
      total.push(r.firstAt - t0); // createSession request → first stdout frame
      runPart.push(r.first); // run frame sent → first stdout frame
      create.push(t1 - t0);
      open.push(t2 - t1);
      // The session's kernel should be the one that was pooled (adopted, not started).
      const { kernels } = kernelProcesses(server.uidBase, { slots: SLOTS, serverPid: server.pid });
      adopted.push(kernels.some((k) => k.pid === pooledPid));
    } finally {
      await closeWs(ws);
      await release(server, session);
    }
  }
  return {
    total: stats(total), run: stats(runPart), create: stats(create), open: stats(open),
    adopted: adopted.filter(Boolean).length, samples,
  };
}

// ---- the floor ------------------------------------------------------------------------------

/** The echo floor (bench/common.mjs), FLOOR_TRIPS round trips after 50 warm-up round trips,
 * all GAP_MS apart: in another Node process, or (`inProcess`) in this one. */
async function echoFloor(children, { inProcess = false } = {}) {
  const { samples, bytes } = await wsEchoFloor(children, {
    trips: FLOOR_TRIPS, gapMs: GAP_MS, warmup: 50, warmupGapMs: GAP_MS, inProcess,
  });
  return { stats: stats(samples), bytes };
}

// ---- the report -----------------------------------------------------------------------------

function report({ results, floor, floorSame, mach, started, elapsedS }) {
  const L = [];
  L.push('# codepane-server: kernels vs one process per run (first-output latency)');
  L.push('');
  L.push(`Run ${started.toISOString()} by \`node bench/kernels.mjs --runs ${RUNS}\` ` +
    `(${elapsedS.toFixed(0)} s), commit ${mach.commit}${mach.dirty ? ' (with uncommitted changes)' : ''}.`);
  L.push('');
  L.push('## Machine');
  L.push('');
  L.push(`- cores: ${mach.cores} (${mach.model})${mach.governor ? `, governor ${mach.governor}` : ''}`);
  L.push(`- memory: ${mach.memGiB.toFixed(1)} GiB`);
  L.push(`- kernel: ${mach.kernel}`);
  L.push(`- node: ${mach.node}`);
  const load = (l) => l.map((x) => x.toFixed(2)).join(' ');
  L.push(`- load average (1, 5, 15 min) at the start: ${load(mach.loadStart)}; at the end: ${load(mach.loadEnd)}` +
    (mach.loadStart[0] > mach.cores || mach.loadEnd[0] > mach.cores
      ? ' (**busy machine: other work ran during the bench; the figures are noisier than they should be**)' : ''));
  L.push('');
  L.push('## First stdout frame, ms: median (min–max)');
  L.push('');
  L.push('Code: python `print(\'x\')`, javascript `console.log(\'x\')`, java `System.out.println("x");`, ' +
    'r `cat(\'x\\n\')`.');
  L.push('');
  L.push('| language | warm kernel (A) | cold kernel via pool (A), createSession → first stdout | ' +
    'cold: run frame → first stdout | one process per run (B) |');
  L.push('|---|---|---|---|---|');
  for (const r of results) {
    L.push(`| ${r.lang} | ${cell(r.warmA?.first)} | ${cell(r.coldA?.total)} | ${cell(r.coldA?.run)} | ` +
      `${cell(r.warmB?.first)} |`);
  }
  L.push('');
  L.push(`Samples: warm ${RUNS} runs per language after one warm-up run (${GAP_MS} ms apart, ` +
    'timed from `ws.send` of the run frame to the `message` event of the first stdout frame); ' +
    `cold ${COLD_PY} (python) / ${COLD_OTHER} (others) new sessions, each timed from the ` +
    'createSession request, after waiting for the pool to hold a ready kernel again.');
  L.push('');
  L.push('**Floor** (bare loopback WebSocket round trip, npm `ws`, ' +
    `${floor.bytes}-byte text frame, ${floor.stats.n} round trips, ${GAP_MS} ms apart): ` +
    `echo server in another Node process ${f(floor.stats.median, 3)} ms median ` +
    `(${f(floor.stats.min, 3)}–${f(floor.stats.max, 3)}); in the same process ` +
    `${f(floorSame.stats.median, 3)} ms (${f(floorSame.stats.min, 3)}–${f(floorSame.stats.max, 3)}).`);
  L.push('');
  const py = results.find((r) => r.lang === 'python');
  L.push('## The goals (python)');
  L.push('');
  if (py?.warmA?.first) {
    const diff = py.warmA.first.median - floor.stats.median;
    L.push(`- Warm first output within 5 ms of the bare WS round trip: ${f(py.warmA.first.median)} ms ` +
      `− ${f(floor.stats.median, 3)} ms = **${f(diff)} ms** over the floor → ` +
      `**${diff <= 5 ? 'pass' : 'miss'}**.`);
  } else {
    L.push('- Warm first output within 5 ms of the bare WS round trip: not measured (failed).');
  }
  if (py?.coldA?.total) {
    const c = py.coldA.total.median;
    L.push(`- Cold first output under 150 ms with the pool: **${f(c)} ms** median ` +
      `(max ${f(py.coldA.total.max)}) → **${c < 150 ? 'pass' : 'miss'}**` +
      `${py.coldA.total.max >= 150 && c < 150 ? ' (the median; not every sample)' : ''}.`);
  } else {
    L.push('- Cold first output under 150 ms with the pool: not measured (failed).');
  }
  L.push('');
  L.push('## Details');
  L.push('');
  L.push('| language | warm A: first stdout p90 | warm A: end frame median | warm A: warm-up run | warm A: 1st measured run | ' +
    'cold A: createSession | cold A: WS open | cold A: adopted the pooled kernel | warm B: p90 | warm B: end frame median |');
  L.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    L.push(`| ${r.lang} | ${f(r.warmA?.first?.p90)} | ${f(r.warmA?.end?.median)} | ${f(r.warmA?.warmup)} | ${f(r.warmA?.second)} | ` +
      `${f(r.coldA?.create?.median)} | ${f(r.coldA?.open?.median)} | ` +
      `${r.coldA ? `${r.coldA.adopted}/${r.coldA.samples}` : '–'} | ${f(r.warmB?.first?.p90)} | ${f(r.warmB?.end?.median)} |`);
  }
  const failed = results.flatMap((r) => r.errors.map((e) => `- ${r.lang}: ${e}`));
  if (failed.length) {
    L.push('');
    L.push('## Failures');
    L.push('');
    L.push(...failed);
  }
  L.push('');
  L.push('Servers: A `' + ARGS_A.join(' ') + '` (uid base ' + UID_A + '), B `' + ARGS_B.join(' ') +
    '` (uid base ' + UID_B + '), both on 127.0.0.1. All figures in milliseconds.');
  L.push('');
  return L.join('\n');
}

// ---- main -----------------------------------------------------------------------------------

const servers = [];
const children = new Set();
let cleaning = null;
async function cleanup() {
  cleaning ??= (async () => {
    for (const c of children) { try { process.kill(c.pid, 'SIGTERM'); } catch { /* gone */ } }
    await Promise.all(servers.map((s) => s.stop().catch(() => {})));
  })();
  return cleaning;
}
for (const ev of ['uncaughtException', 'unhandledRejection']) {
  process.once(ev, (e) => { console.error(ev, e); cleanup().finally(() => process.exit(1)); });
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => { log(`${sig}: stopping the servers`); cleanup().finally(() => process.exit(130)); });
}

async function main() {
  const started = new Date();
  const t0 = performance.now();
  const mach = machine();
  log(`starting server A (uid base ${UID_A}) and B (uid base ${UID_B})`);
  servers.push(await startServer({ args: ARGS_A, uidBase: UID_A }));
  servers.push(await startServer({ args: ARGS_B, uidBase: UID_B }));
  const [A, B] = servers;
  log(`A pid ${A.pid} at ${A.base}, B pid ${B.pid} at ${B.base}`);

  // The pool: the server starts it at start-up; wait until every language's is ready.
  for (const L of LANGS) await poolReady(A, L.lang, { minMs: 0 });
  log('pool ready: ' + kernelProcesses(A.uidBase, { slots: SLOTS, serverPid: A.pid }).kernels.map((k) => `${k.lang} ${k.pid}`).join(', '));

  // The floor first, while nothing else runs.
  log('floor: WebSocket echo round trips');
  const floor = await echoFloor(children);
  const floorSame = await echoFloor(children, { inProcess: true });

  const results = [];
  for (const L of LANGS) {
    const r = { lang: L.lang, errors: [] };
    results.push(r);
    try {
      log(`${L.lang}: warm on A (waiting for the pool)`);
      await poolReady(A, L.lang);
      r.warmA = await warm(A, L, { beforeRuns: () => poolReady(A, L.lang, { minMs: 300 }).catch(() => {}) });
    } catch (e) { r.errors.push(`warm A: ${e.message}`); log(e.message); }
    try {
      log(`${L.lang}: cold on A`);
      r.coldA = await cold(A, L, L.lang === 'python' ? COLD_PY : COLD_OTHER);
    } catch (e) { r.errors.push(`cold A: ${e.message}`); log(e.message); }
    try {
      log(`${L.lang}: warm on B (one process per run)`);
      r.warmB = await warm(B, L);
    } catch (e) { r.errors.push(`warm B: ${e.message}`); log(e.message); }
  }

  mach.loadEnd = os.loadavg();
  const md = report({ results, floor, floorSame, mach, started, elapsedS: (performance.now() - t0) / 1000 });
  mkdirSync(OUT_DIR, { recursive: true });
  writeFileSync(OUT_FILE, md);
  process.stdout.write(md);
  log(`written to ${OUT_FILE}`);
  return results.some((r) => r.errors.length) ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (e) {
  console.error(e);
} finally {
  await cleanup();
}
process.exit(code);
