// bench/common.mjs: what bench/run.mjs needs beside the two servers: statistics, the
// floors (a loopback WebSocket echo round trip, a bare bwrap spawn, a plain pipe), memory
// and CPU of a process set from /proc, the wait for codepane's kernel pool, and the facts
// about the machine. bench/kernels.mjs takes the echo floor and the pool wait from here.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import os from 'node:os';
import WebSocket, { WebSocketServer } from 'ws';
import { ROOT, kernelProcesses } from '../tests/server/harness.mjs';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const log = (...a) => console.error('[bench]', ...a);

/** Close a WebSocket, terminating it when the close handshake takes over 2 s. */
export function closeWs(ws) {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    const t = setTimeout(() => { ws.terminate(); resolve(); }, 2000);
    ws.once('close', () => { clearTimeout(t); resolve(); });
    ws.close();
  });
}

// ---- statistics ---------------------------------------------------------------------------

/** median, min, max (and n, p90) of samples; null for none. */
export function stats(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x));
  if (!v.length) return null;
  const s = [...v].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  const p90 = s[Math.min(s.length - 1, Math.ceil(0.9 * s.length) - 1)];
  return { n: s.length, median, min: s[0], max: s[s.length - 1], p90 };
}

/** A promise that rejects after `ms` with `what` in its message. */
export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms); }),
  ]);
}

// ---- floor 1: a loopback WebSocket echo round trip (npm ws, server in another process) ---
// (or, for reference, in this one: bench/kernels.mjs shows both)

const ECHO_CHILD = `
import { WebSocketServer } from 'ws';
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
wss.on('connection', (ws) => ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary })));
wss.on('listening', () => process.stdout.write('port ' + wss.address().port + '\\n'));
`;

// About the size of a codepane run frame for print('x').
const ECHO_PAYLOAD = JSON.stringify({ invocationId: 'f'.repeat(32), data: { pad: 'y'.repeat(130) } });

/** The echo server in a child Node process (as the servers are other processes), registered
 * in `children`: { port, stop() }. */
async function echoServerChild(children) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', ECHO_CHILD], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(child);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid, 'SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    children.delete(child);
  };
  try {
    const port = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        const m = /port (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (c) => reject(new Error(`echo server exited with ${c}`)));
    });
    return { port, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** The same echo server in this process, for reference (what the other process costs):
 * { port, stop() }. */
async function echoServerHere() {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise((r) => wss.once('listening', r));
  wss.on('connection', (ws) => ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary })));
  const stop = async () => {
    for (const c of wss.clients) c.terminate();
    await new Promise((r) => wss.close(r));
  };
  return { port: wss.address().port, stop };
}

/** Start the echo server (in a child process unless `inProcess`; `children` is the caller's
 * registry of processes to stop on an early exit), connect to it and make `warmup` round
 * trips, `warmupGapMs` apart (0: back to back). Returns { rtt() → ms of one round trip,
 * bytes, close() }. */
export async function startEcho(children, { inProcess = false, warmup = 20, warmupGapMs = 0 } = {}) {
  const server = inProcess ? await echoServerHere() : await echoServerChild(children);
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`, { perMessageDeflate: false });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    const rtt = async () => {
      const t0 = performance.now();
      const ok = await new Promise((resolve) => {
        ws.once('message', (buf) => resolve(buf.toString() === ECHO_PAYLOAD));
        ws.send(ECHO_PAYLOAD);
      });
      const dt = performance.now() - t0;
      if (!ok) throw new Error('echo mismatch');
      return dt;
    };
    for (let i = 0; i < warmup; i++) {
      if (warmupGapMs) await sleep(warmupGapMs);
      await rtt();
    }
    return { rtt, bytes: Buffer.byteLength(ECHO_PAYLOAD), close: async () => { ws.terminate(); await server.stop(); } };
  } catch (e) {
    await server.stop();
    throw e;
  }
}

/** The floor on its own: `trips` round trips, `gapMs` apart, after startEcho's warm-up (the
 * other options are startEcho's). Returns { samples (ms), bytes }. */
export async function wsEchoFloor(children, { trips = 200, gapMs = 5, ...echoOptions } = {}) {
  const echo = await startEcho(children, echoOptions);
  const samples = [];
  try {
    for (let i = 0; i < trips; i++) {
      await sleep(gapMs);
      samples.push(await echo.rtt());
    }
  } finally {
    await echo.close();
  }
  return { samples, bytes: echo.bytes };
}

// ---- floor 2: a bare bwrap spawn of python3 ---------------------------------------------

const BWRAP_ARGV = ['bwrap', '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--unshare-all',
  '--die-with-parent', '/usr/bin/python3', '-c', 'print(1)'];

/** Spawn `argv` and time it: ms to the first stdout byte and to the exit. */
function timeSpawn(argv, children) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin' } });
    children.add(child);
    let first = null, out = '', err = '';
    child.stdout.on('data', (d) => { first ??= performance.now() - t0; out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.once('error', reject);
    child.once('close', (code) => {
      children.delete(child);
      if (code !== 0 || out !== '1\n') reject(new Error(`${argv.join(' ')}: exit ${code}, stdout ${JSON.stringify(out)}, ${err}`));
      else resolve({ first, exit: performance.now() - t0 });
    });
  });
}

/** The bwrap floor and, for reference, python3 -c 'print(1)' without bwrap. */
export async function spawnFloor(children, { runs = 10 } = {}) {
  const bwrap = [], bwrapExit = [], bare = [];
  await timeSpawn(BWRAP_ARGV, children); // warm the page cache
  for (let i = 0; i < runs; i++) {
    const r = await timeSpawn(BWRAP_ARGV, children);
    bwrap.push(r.first);
    bwrapExit.push(r.exit);
    bare.push((await timeSpawn(['/usr/bin/python3', '-c', 'print(1)'], children)).first);
  }
  return { bwrap, bwrapExit, bare };
}

// ---- memory ---------------------------------------------------------------------------------

/** RSS and PSS (bytes) of a set of pids, from /proc/<pid>/smaps_rollup; each process too. */
export function memoryOf(pids) {
  const each = [];
  for (const pid of pids) {
    let text, comm = '?';
    try {
      text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch { continue; }
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
    each.push({ pid, comm, rss: kb('Rss'), pss: kb('Pss'), anon: kb('Anonymous') });
  }
  const sum = (k) => each.reduce((a, p) => a + p[k], 0);
  return { rss: sum('rss'), pss: sum('pss'), anon: sum('anon'), each };
}

/** CPU time (ticks) of a process, or null once it is gone. */
export function cpuTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14, 15)
  } catch { return null; }
}

/** CPU time (ticks) of a set of processes together; those gone count 0. */
export function cpuTicksOf(pids) {
  return pids.reduce((a, p) => a + (cpuTicks(p) ?? 0), 0);
}

/** Wait until `pid` has used at most one tick of CPU in `quietMs` (idle), or `maxMs`. */
export async function waitIdle(pid, { quietMs = 500, maxMs = 10000 } = {}) {
  const t0 = Date.now();
  let ticks = cpuTicks(pid), since = Date.now();
  while (Date.now() - t0 < maxMs) {
    await sleep(100);
    const now = cpuTicks(pid);
    if (now === null) return false;
    if (now - ticks > 1) { ticks = now; since = Date.now(); } else if (Date.now() - since >= quietMs) return true;
  }
  return false;
}

// ---- codepane's kernel pool -------------------------------------------------------------------

/** Wait until a codepane server's pool (its sandbox slots: uid base, `slots`) holds a started,
 * idle kernel of `lang` and nothing else is around: exactly one kernel process set of the
 * language that no live session holds (`sessionKernels`: the pids of those sessions'
 * kernels, which must all be there), no other kernel unless `otherLangs` (a server that
 * pools several languages), no other sandbox process (a released session's dying kernel),
 * and the pooled interpreter's CPU time has stopped growing (≤ 1 tick in 300 ms: it has said
 * `ready` and waits on its request pipe), and at least `minMs` since the call. Returns the
 * pooled kernel's pid. */
export async function waitPoolReady(server, slots, {
  lang = 'python', otherLangs = false, sessionKernels = [], minMs = 300, timeoutMs = 30000,
} = {}) {
  const t0 = Date.now();
  let pid = null, ticks = null, stableSince = 0;
  for (;;) {
    const { kernels, others } = kernelProcesses(server.uidBase, { slots, serverPid: server.pid });
    if (Date.now() - t0 > timeoutMs) {
      throw new Error(`codepane pool of ${lang} not ready after ${timeoutMs} ms: kernels ${JSON.stringify(kernels)}, ` +
        `others ${others.join(' ')}`);
    }
    const free = kernels.filter((k) => !sessionKernels.includes(k.pid));
    const mine = free.filter((k) => k.lang === lang);
    if (mine.length === 1 && (otherLangs || free.length === 1) && kernels.length === free.length + sessionKernels.length &&
      others.length === 0) {
      const now = cpuTicks(mine[0].pid);
      if (mine[0].pid !== pid || now === null) {
        pid = mine[0].pid; ticks = now; stableSince = Date.now();
      } else if (now - ticks > 1) {
        ticks = now; stableSince = Date.now();
      } else if (Date.now() - stableSince >= 300 && Date.now() - t0 >= minMs) {
        return pid;
      }
    } else {
      pid = null;
    }
    await sleep(50);
  }
}

// ---- the machine ----------------------------------------------------------------------------

function debVersion(pkg) {
  try {
    return execFileSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null;
  } catch { return null; }
}

function firstLine(cmd, args) {
  try { return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0].trim(); } catch { return null; }
}

export function machine() {
  const cpus = os.cpus();
  let commit = '?', dirty = false;
  try {
    commit = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    dirty = execFileSync('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
  } catch { /* not a checkout */ }
  let debian = null;
  try { debian = readFileSync('/etc/debian_version', 'utf8').trim(); } catch { /* not Debian */ }
  let governor = null;
  try { governor = readFileSync('/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor', 'utf8').trim(); } catch { /* none */ }
  const pkgs = {};
  for (const p of ['python3', 'jupyter-server', 'python3-jupyter-server', 'python3-ipykernel', 'python3-tornado',
    'python3-zmq', 'python3-matplotlib', 'nodejs', 'chromium', 'bubblewrap']) pkgs[p] = debVersion(p);
  return {
    cores: cpus.length, model: cpus[0]?.model ?? '?', memGiB: os.totalmem() / 2 ** 30,
    kernel: `${os.type()} ${os.release()}`, debian, node: process.version, governor,
    python: firstLine('/usr/bin/python3', ['--version']), chromium: firstLine('chromium', ['--version']),
    pkgs, commit, dirty, loadStart: os.loadavg(),
  };
}

// ---- floor 3: the 10 MB loop into a plain pipe --------------------------------------------

/** python3 (no sandbox, no kernel) runs `code` with its stdout on a pipe that this process
 * drains: ms to the first and the last byte from the spawn, bytes, and what the code
 * itself wrote on stderr (the bench's loop timing). */
export function pipeFloor(code, children) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('/usr/bin/python3', ['-c', code], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin' } });
    children.add(child);
    let first = null, last = null, bytes = 0, err = '';
    child.stdout.on('data', (d) => { const t = performance.now() - t0; first ??= t; last = t; bytes += d.length; });
    child.stderr.on('data', (d) => { err += d; });
    child.once('error', reject);
    child.once('close', (c) => {
      children.delete(child);
      if (c !== 0) reject(new Error(`python3 pipe floor: exit ${c}: ${err}`));
      else resolve({ first, last, bytes, stderr: err });
    });
  });
}

// ---- memory profile: what an IPython shell costs, and what could be left out ------------------

const RSS_TAIL = "\nimport re as _re, sys as _sys\n" +
  "print(_re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read()).group(1), len(_sys.modules))\n";
const SHELL = 'from IPython.core.interactiveshell import InteractiveShell\nInteractiveShell.instance()\n';
// IPython/__init__.py imports the terminal shell (prompt_toolkit); a package stub that
// only carries get_ipython lets IPython.core load without it.
const NO_INIT = 'import importlib.util, sys, types\nspec = importlib.util.find_spec("IPython")\n' +
  'pkg = types.ModuleType("IPython"); pkg.__path__ = list(spec.submodule_search_locations)\n' +
  'pkg.__spec__ = spec; pkg.__file__ = spec.origin\n' +
  'sys.modules["IPython"] = pkg\nimport IPython.core.getipython as g\npkg.get_ipython = g.get_ipython\n';
const SHELL_VARIANTS = [
  { label: 'python3 -I, nothing imported', code: 'pass\n' },
  { label: 'an IPython InteractiveShell (what the codepane kernel starts)', code: SHELL },
  { label: 'the same with jedi blocked (sys.modules["jedi"] = None)', code: `import sys\nsys.modules["jedi"] = None\n${SHELL}` },
  { label: 'the same, also without IPython/__init__ (no prompt_toolkit)', code: `import sys\nsys.modules["jedi"] = None\n${NO_INIT}${SHELL}` },
];

/** VmRSS (bytes) and module count of a plain python3 -I running each variant. */
export function shellVariants() {
  return SHELL_VARIANTS.map((v) => {
    try {
      const out = execFileSync('/usr/bin/python3', ['-I', '-c', v.code + RSS_TAIL],
        { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] });
      const [kb, modules] = out.trim().split('\n').at(-1).split(' ').map(Number);
      return { label: v.label, rss: kb * 1024, modules };
    } catch (e) {
      return { label: v.label, rss: null, error: String(e.stderr ?? e.message).trim().split('\n').at(-1) };
    }
  });
}

// ---- client weight profile: what core.wasm is made of --------------------------------------

const WASM_SECTIONS = ['custom', 'type', 'import', 'function', 'table', 'memory', 'global', 'export', 'start',
  'element', 'code', 'data', 'data count'];

/** The sections of a .wasm file: name, raw bytes and gzip -9 bytes of each. */
export function wasmSections(path) {
  const b = readFileSync(path);
  const out = [];
  let i = 8; // magic + version
  const leb = () => {
    let v = 0, shift = 0, byte;
    do { byte = b[i++]; v += (byte & 0x7f) * 2 ** shift; shift += 7; } while (byte & 0x80);
    return v;
  };
  while (i < b.length) {
    const id = b[i++];
    const size = leb();
    const start = i;
    let name = WASM_SECTIONS[id] ?? `section ${id}`;
    if (id === 0) { const n = leb(); name = `custom "${b.subarray(i, i + n).toString('latin1')}"`; }
    out.push({ name, size, gzip: gzipSync(b.subarray(start, start + size), { level: 9 }).length });
    i = start + size;
  }
  return out;
}
