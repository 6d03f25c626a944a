// Test harness for codepane-server: starts the real server binary on a free loopback
// port, talks AGB to it over HTTP and WebSocket (npm `ws`), and checks the harness
// post-conditions of shared/spec/sandbox.md §2 (no leftover sandbox processes, server
// healthy). Every server it starts it stops by pid.
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { after, afterEach, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SERVER_BIN = `${ROOT}build/server/codepane-server`;
export const UID_BASE = 61000; // distinct from the default so tests never meet a dev server

// ---------------------------------------------------------------------------------------
// Persistent kernels (src/server/kernels/README.md). CP_TEST_KERNELS=<--kernels value>
// (python, all, a list) makes every catalogue server run those languages in kernels
// (useCatalogueServer; a file's own servers add kernelArgs()); unset (or "none") keeps
// one sandboxed process per run, as before. Other test files are not affected. With
// kernels the unit of isolation is the session: a cell's background process or /tmp file
// legitimately lives on into the session's next cell, so P1 is checked at two scopes —
// between runs only kernels' own processes may exist, and once a session is released
// nothing it started may be left (expectP1, kernelProcesses, useCatalogueServer).

export const LANGS = ['python', 'javascript', 'java', 'r'];
/** The interpreter a kernel of each language runs as (its /proc comm). */
export const KERNEL_COMM = { python: 'python3', javascript: 'node', java: 'java', r: 'R' };

/** A --kernels value as a list of languages ([] for none). */
export function parseKernelLangs(value) {
  if (value === null || value === undefined) return [];
  const v = String(value).trim().toLowerCase();
  if (!v || v === 'none') return [];
  if (v === 'all') return [...LANGS];
  return v.split(',').map((x) => x.trim()).filter((x) => LANGS.includes(x));
}

/** A --kernel-pool value ("python=1,r=2", "none") as the number of pooled kernels among
 * the languages that run in kernels. */
export function parsePool(value, langs) {
  const v = String(value).trim().toLowerCase();
  if (!v || v === 'none') return 0;
  let n = 0;
  for (const part of v.split(',')) {
    const [lang, count] = part.split('=');
    if (langs.includes(lang.trim())) n += Number(count) || 0;
  }
  return n;
}

/** The switch: the --kernels value every catalogue server gets, or null. */
export const TEST_KERNELS = parseKernelLangs(process.env.CP_TEST_KERNELS).length ? process.env.CP_TEST_KERNELS.trim() : null;
/** The languages that run in kernels under the switch ([] without it). */
export const TEST_KERNEL_LANGS = parseKernelLangs(TEST_KERNELS);
/** Whether runs of `lang` go to a kernel under the switch. */
export const inKernel = (lang) => TEST_KERNEL_LANGS.includes(lang);

/** The arguments the switch adds to a catalogue server: --kernels and its pool (default
 * none, so that a released session leaves no process at all; a string is passed as is,
 * null leaves the server's default pool). Nothing without the switch. */
export function kernelArgs(pool = 'none') {
  if (!TEST_KERNELS) return [];
  // A slot per kernel a session may hold (and a spare), so that one session's kernels of
  // different languages do not evict each other (a file's own --max-runs, later in argv,
  // still wins).
  return ['--kernels', TEST_KERNELS, '--max-runs', '6', ...(pool === null ? [] : ['--kernel-pool', pool])];
}

/** Release a session (POST /mcp/releaseSessionAsync); its kernels are stopped. */
export async function releaseSession(server, session, { apiKey } = {}) {
  const headers = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
  const r = await post(`${server.base}/mcp/releaseSessionAsync`, { sessionId: session.sessionId }, headers);
  if (r.status !== 200) throw new Error(`releaseSessionAsync failed: ${r.status} ${r.text}`);
  return r;
}

/** The slot-uid processes of a server, sorted into live kernels and the rest. A kernel is
 * exactly one slot uid's whole process set: bwrap's monitor (a child of the server), the
 * namespace's init (a child of the monitor) and the kernel's interpreter (a child of the
 * init), none a zombie or stopped. Anything else (a background process a cell left, a
 * one-off run, a dying kernel) is in `others`. A kernel: {uid, pid (the interpreter's),
 * pids (all three), lang}. */
export function kernelProcesses(base = UID_BASE, { slots = 64, serverPid = null } = {}) {
  const byUid = new Map();
  for (const pid of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue;
    let status;
    try { status = readFileSync(`/proc/${pid}/status`, 'utf8'); } catch { continue; }
    const [, real, eff] = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status) ?? [];
    const uid = [Number(real), Number(eff)].find((u) => u >= base && u < base + slots);
    if (uid === undefined) continue;
    const p = {
      pid: Number(pid), uid, name: /^Name:\s+(.*)$/m.exec(status)?.[1], state: /^State:\s+(\S)/m.exec(status)?.[1],
      ppid: Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]),
    };
    if (!byUid.has(uid)) byUid.set(uid, []);
    byUid.get(uid).push(p);
  }
  const comms = Object.values(KERNEL_COMM);
  const kernels = [], others = [];
  for (const [uid, ps] of byUid) {
    const monitor = ps.find((p) => p.name === 'bwrap' && !ps.some((q) => q.pid === p.ppid));
    const init = monitor && ps.find((p) => p.name === 'bwrap' && p.ppid === monitor.pid);
    const interp = init && ps.find((p) => comms.includes(p.name) && p.ppid === init.pid);
    let cmdline = '';
    try { cmdline = interp ? readFileSync(`/proc/${interp.pid}/cmdline`, 'latin1') : ''; } catch { /* gone */ }
    const ok = ps.length === 3 && interp && ps.every((p) => 'SR'.includes(p.state)) &&
      cmdline.includes('/opt/codepane/kernel/') && (serverPid === null || monitor.ppid === serverPid);
    if (ok) {
      kernels.push({
        uid, pid: interp.pid, pids: ps.map((p) => p.pid),
        lang: Object.keys(KERNEL_COMM).find((l) => KERNEL_COMM[l] === interp.name),
      });
    }
    else others.push(...ps.map((p) => `${p.pid}(${p.uid} ${p.name} ${p.state})`));
  }
  return { kernels, others };
}

/** Wait (up to `ms`) until the only slot-uid processes are at most `max` idle kernels
 * (P1 with kernels; max 0 is expectNoSandboxProcesses). */
export async function expectOnlyKernels(base = UID_BASE, { max = Infinity, ms = 2000, serverPid = null } = {}) {
  const until = Date.now() + ms;
  for (;;) {
    const { kernels, others } = kernelProcesses(base, { serverPid });
    if (others.length === 0 && kernels.length <= max) return kernels;
    if (Date.now() > until) {
      throw new Error(`sandbox processes left: ${others.join(' ') || '(none but kernels)'}; ` +
        `${kernels.length} kernel(s) (at most ${max} expected): ${kernels.map((k) => `${k.pid}(${k.uid} ${k.lang})`).join(' ')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

/** Start codepane-server; resolves once it prints its listening line. */
export async function startServer({ args = [], env = {}, uidBase = UID_BASE, port: fixedPort } = {}) {
  const port = fixedPort ?? await freePort(); // a fixed port restarts a server where it was
  // Two servers never share sandbox uids (or the cgroups named after them). A test server
  // runs one process per run unless its args ask for kernels (a later flag wins): the
  // tests of that path stay what they were, and kernels are tested where they say so.
  const proc = spawn(SERVER_BIN, ['--listen', `127.0.0.1:${port}`, '--uid-base', String(uidBase),
    '--kernels', 'none', ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '', err = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { err += d; });
  const ready = new Promise((resolve, reject) => {
    const check = () => { if (out.includes('listening on')) resolve(); };
    proc.stdout.on('data', check);
    proc.once('exit', (code) => reject(new Error(`server exited with ${code} before listening:\n${out}\n${err}`)));
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 20000);
  await ready.finally(() => clearTimeout(timer));
  // A server that dies on its own (a crash, an ASan abort) would otherwise show up only
  // as a refused connection in whichever test came next: say so, with its stderr.
  let stopping = false;
  proc.once('exit', (code, signal) => {
    if (stopping || signal === 'SIGKILL' || (code === 0 && !signal)) return;
    process.stderr.write(`codepane-server (pid ${proc.pid}) died: code ${code}, signal ${signal}\n${err}\n`);
  });
  const base = `http://127.0.0.1:${port}`;
  // What the server runs in kernels (--kernels) and keeps pooled (--kernel-pool), as its
  // argv says: the post-conditions are scoped by them (checkPostconditions).
  const opt = (name) => { const i = args.lastIndexOf(name); return i >= 0 ? String(args[i + 1]) : null; };
  const kernels = parseKernelLangs(opt('--kernels'));
  const pool = kernels.length ? parsePool(opt('--kernel-pool') ?? 'python=1', kernels) : 0;
  return {
    port, base, proc, pid: proc.pid, uidBase, kernels, pool,
    output: () => ({ out, err }),
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      stopping = true;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
      const [code] = await once(proc, 'exit');
      clearTimeout(t);
      return code;
    },
  };
}

export async function post(url, body, headers = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, json };
}

/** POST /mcp/createSession as the SDKs do; returns data (sessionId, linkUrl, wsUrl, token, toolList). */
export async function createSession(server, { apiKey } = {}) {
  const headers = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
  const r = await post(`${server.base}/mcp/createSession?imageId=agb-code-space-1`, {}, headers);
  if (r.status !== 200 || !r.json?.success) throw new Error(`createSession failed: ${r.status} ${r.text}`);
  return r.json.data;
}

/** The LinkUrl route exactly as the SDKs call it; returns the decoded run_code payload. */
export async function callTool(session, code, language, timeout_s = 60) {
  const requestId = `link-${Date.now()}-${String(Math.floor(Math.random() * 1e9)).padStart(9, '0')}`;
  const r = await post(`${session.linkUrl}/callTool`, {
    args: { code, language, timeout_s }, server: 'wuying_codespace', requestId, tool: 'run_code',
    token: session.token,
  }, { 'x-access-token': session.token });
  const data = typeof r.json?.data === 'string' ? JSON.parse(r.json.data) : r.json?.data;
  const result = data?.result;
  const text = result?.content?.[0]?.text;
  let payload = null;
  try { payload = JSON.parse(text); } catch { /* tool error text */ }
  return { status: r.status, isError: result?.isError, text, payload, raw: r };
}

/** Open the session WebSocket with the SDKs' header auth (or the given options). */
export async function openWs(session, { headers, protocols, url } = {}) {
  const ws = new WebSocket(url ?? session.wsUrl, protocols, {
    headers: headers ?? { 'X-Access-Token': session.token },
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  return ws;
}

let idCounter = 0;
export function invocationId() {
  return (Date.now().toString(16) + (idCounter++).toString(16)).padEnd(32, '0').slice(0, 32);
}

/**
 * Send one run_code stream request and collect every frame of that invocation until
 * its end (or an error frame). Each frame is recorded with its arrival time (ms).
 */
export function streamRun(ws, code, language, { timeoutS = 60, id = invocationId(), onFrame } = {}) {
  const frames = [];
  const t0 = performance.now();
  const done = new Promise((resolve) => {
    const onMessage = (buf) => {
      const f = JSON.parse(buf.toString());
      if (f.invocationId !== id) return;
      f.at = performance.now() - t0;
      frames.push(f);
      onFrame?.(f);
      if (f.data.phase === 'end' || f.data.phase === 'error' || typeof f.data.error === 'string') {
        ws.off('message', onMessage);
        resolve(summarise(frames));
      }
    };
    ws.on('message', onMessage);
  });
  ws.send(runFrame(id, code, language, timeoutS));
  return { id, done, frames };
}

/** The SDK's run_code stream request for invocation `id`, as JSON text (spec §6.2). */
export function runFrame(id, code, language, timeoutS = 60) {
  return JSON.stringify({
    invocationId: id, source: 'SDK', target: 'wuying_codespace',
    data: { method: 'run_code', mode: 'stream', params: { language, timeoutS, code } },
  });
}

function summarise(frames) {
  const ev = frames.filter((f) => f.data.phase === 'event');
  return {
    frames,
    stdout: ev.filter((f) => f.data.eventType === 'stdout').map((f) => f.data.chunk),
    stderr: ev.filter((f) => f.data.eventType === 'stderr').map((f) => f.data.chunk),
    results: ev.filter((f) => f.data.eventType === 'result').map((f) => f.data.result),
    errors: ev.filter((f) => f.data.eventType === 'error').map((f) => f.data.error),
    end: frames.find((f) => f.data.phase === 'end')?.data ?? null,
    failure: frames.find((f) => f.data.phase === 'error' || typeof f.data.error === 'string')?.data ?? null,
  };
}

/** Processes whose real or effective uid is a sandbox slot uid [base, base+slots), read
 * from /proc (one pass, no pgrep per uid). Each entry is "pid(uid comm state)"; a zombie
 * (state Z) counts: it still holds a slot uid's process entry. */
export function sandboxProcesses(slots = 64, base = UID_BASE) {
  const found = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue;
    let status;
    try { status = readFileSync(`/proc/${pid}/status`, 'utf8'); } catch { continue; } // gone
    const [, real, eff] = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status) ?? [];
    const uid = [Number(real), Number(eff)].find((u) => u >= base && u < base + slots);
    const state = /^State:\s+(\S)/m.exec(status)?.[1];
    if (uid !== undefined) found.push(`${pid}(${uid} ${/^Name:\s+(.*)$/m.exec(status)?.[1]} ${state})`);
  }
  return found;
}

/** Wait until no sandbox process is left (P1), failing after `ms`. */
export async function expectNoSandboxProcesses(ms = 2000, base = UID_BASE) {
  const until = Date.now() + ms;
  for (;;) {
    const left = sandboxProcesses(64, base);
    if (left.length === 0) return;
    if (Date.now() > until) throw new Error(`sandbox processes left: ${left.join(' ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** GET /health on a fresh connection that is closed afterwards (no keep-alive socket is
 * left in the server to skew its fd count). */
export async function health(server) {
  const t0 = performance.now();
  const { status, text } = await new Promise((resolve, reject) => {
    const req = http.get(`${server.base}/health`, { agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, text: body }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('/health timed out')));
  });
  let body = null;
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  return { status, body, ms: performance.now() - t0 };
}

// ---------------------------------------------------------------------------------------
// Catalogue helpers (sandbox.md §2): the harness post-conditions P1–P5, host canaries, a
// /health watcher for probes *during* an attack, and raw HTTP / WebSocket sockets for
// malformed input that well-behaved clients (fetch, npm ws) refuse to send.

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** What `pid`'s fds point at, counted by kind ("socket", "pipe", "anon_inode:[eventfd]",
 * or the path), for P4 failure messages. */
export function fdKinds(pid) {
  const kinds = {};
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target;
    try { target = readlinkSync(`/proc/${pid}/fd/${fd}`).replace(/:\[\d+\]$/, ''); } catch { continue; }
    kinds[target] = (kinds[target] ?? 0) + 1;
  }
  return kinds;
}

/** The server's own fd count and resident memory, from /proc (P4). */
export function procStats(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    kinds: fdKinds(pid),
    fds: readdirSync(`/proc/${pid}/fd`).length,
    rssBytes: Number(/^VmRSS:\s+(\d+) kB/m.exec(status)[1]) * 1024,
    peakBytes: Number(/^VmHWM:\s+(\d+) kB/m.exec(status)[1]) * 1024, // since resetPeak()
    threads: Number(/^Threads:\s+(\d+)/m.exec(status)[1]),
  };
}

/** Reset `pid`'s peak RSS (VmHWM) to its current RSS, so that procStats().peakBytes shows
 * the largest transient allocation from now on (a buffer freed again before anyone could
 * sample VmRSS still shows there). */
export function resetPeak(pid) {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/** Wait (up to `ms`) until the server's fds and RSS are back within the margins of
 * `baseline` (P4): connections the server has not yet noticed closing get a moment. */
export async function expectStatsNear(server, baseline, { fds = 4, rssBytes = 32 << 20, ms = 5000 } = {}) {
  const until = Date.now() + ms;
  for (;;) {
    const now = procStats(server.pid);
    if (now.fds <= baseline.fds + fds && now.rssBytes <= baseline.rssBytes + rssBytes) return now;
    if (Date.now() > until) {
      throw new Error(`server not back to baseline: fds ${baseline.fds} -> ${now.fds} (margin ${fds}), ` +
        `RSS ${baseline.rssBytes >> 20} -> ${now.rssBytes >> 20} MiB (margin ${rssBytes >> 20} MiB); ` +
        `fds then ${JSON.stringify(baseline.kinds)}, now ${JSON.stringify(now.kinds)}`);
    }
    await sleep(100);
  }
}

/** The directories that hold `server`'s run cgroups: "codepane-<uid base>" below the
 * server's own cgroup in every hierarchy (cgroup.h). Read from /proc/<pid>/cgroup once and
 * remembered, so they can still be inspected after the server died (D18). */
export function cgroupParents(server) {
  if (server.cgroupParents) return server.cgroupParents;
  const parents = [];
  for (const line of readFileSync(`/proc/${server.pid}/cgroup`, 'utf8').split('\n').filter(Boolean)) {
    const [, ctrls, path] = line.split(':');
    if (ctrls.startsWith('name=')) continue;
    const mounts = ctrls ? [`/sys/fs/cgroup/${ctrls}`, ...ctrls.split(',').map((c) => `/sys/fs/cgroup/${c}`)]
      : ['/sys/fs/cgroup/unified', '/sys/fs/cgroup'];
    for (const m of mounts) {
      // v2: the server may have moved itself into the leaf "<parent>-server" beside it.
      const own = path.replace(/\/codepane-\d+-server$/, '');
      const dir = `${m}${own === '/' ? '' : own}/codepane-${server.uidBase}`;
      if (existsSync(dir) && !parents.includes(dir)) parents.push(dir);
    }
  }
  server.cgroupParents = parents;
  return parents;
}

/** `server`'s run cgroups ("run-<slot>-<n>") in every hierarchy, with their task count. */
export function runCgroups(server) {
  const found = [];
  for (const dir of cgroupParents(server)) {
    let names = [];
    try { names = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name); } catch { /* gone */ }
    for (const name of names) {
      let procs = 0;
      try { procs = readFileSync(`${dir}/${name}/cgroup.procs`, 'utf8').split('\n').filter(Boolean).length; } catch { /* removed */ }
      found.push({ path: `${dir}/${name}`, name, procs });
    }
  }
  return found;
}

/** Files owned by a sandbox slot uid in the host's writable places (P2). The quick set is
 * cheap enough to check after every test; `thorough` adds /root, /home, /etc, /var/lib. */
export function strayHostFiles(base = UID_BASE, { slots = 64, thorough = false } = {}) {
  const roots = ['/tmp', '/var/tmp', '/dev/shm', '/run', ROOT];
  if (thorough) roots.push('/root', '/home', '/etc', '/var/lib');
  const args = [...roots.filter((p) => existsSync(p)), '-xdev', '(', '-uid', `+${base - 1}`, '-a', '-uid', `-${base + slots}`, ')', '-print'];
  try {
    return execFileSync('find', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n').filter(Boolean);
  } catch (e) {
    return (e.stdout ?? '').split('\n').filter(Boolean); // find exits 1 on unreadable dirs
  }
}

/**
 * Host canaries (P5): secret values planted in host files the sandbox must not see and in
 * the server's environment. `env` goes to startServer; `watch(ws)` taps every frame of a
 * socket; `scan(text)` checks anything else; `violations` lists where a secret surfaced.
 */
export function plantCanaries() {
  const tag = randomBytes(8).toString('hex');
  const fileSecret = `cpcanary-${tag}-file`;
  const envSecret = `cpcanary-${tag}-env`;
  const argSecret = `cpcanary-${tag}-arg`;
  const name = `codepane-canary-${randomBytes(6).toString('hex')}`;
  const files = [`/tmp/${name}`, `/var/tmp/${name}`, `/root/${name}`, `/etc/${name}`, `/dev/shm/${name}`];
  for (const f of files) writeFileSync(f, `${fileSecret}\n`, { mode: 0o644 });
  const secrets = [fileSecret, envSecret, argSecret];
  const violations = [];
  const scan = (text, where = 'output') => {
    for (const s of secrets) if (String(text).includes(s)) violations.push(`${s} in ${where}`);
  };
  return {
    files, secrets, fileSecret, envSecret, argSecret, violations, scan,
    env: { SERVER_SECRET: envSecret, CODEPANE_TEST_SECRET: envSecret },
    watch(ws) { ws.on('message', (buf) => scan(buf.toString(), 'a WebSocket frame')); },
    cleanup() { for (const f of files) rmSync(f, { force: true }); },
  };
}

/** Poll /health every `everyMs` until stop(); stop() resolves to every probe's status and
 * latency, so a test can assert the server stayed responsive *during* an attack (P3). */
export function watchHealth(server, everyMs = 100) {
  const probes = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const h = await health(server);
        probes.push({ status: h.status, ms: h.ms });
      } catch (e) {
        probes.push({ status: 0, ms: Infinity, error: String(e) });
      }
      await sleep(everyMs);
    }
  })();
  return {
    probes,
    async stop() {
      stopped = true;
      await loop;
      return { probes, maxMs: Math.max(0, ...probes.map((p) => p.ms)), failed: probes.filter((p) => p.status !== 200) };
    },
  };
}

/** P1: no slot-uid process is left and every run cgroup is removed (or empty) within
 * `ms`. With kernels (a server started with --kernels): only idle kernels, at most
 * `maxKernels`, and only their run cgroups (with their three processes). */
export async function expectP1(server, { ms: p1Ms = 2000, maxKernels = Infinity } = {}) {
  if (server.kernels?.length) {
    // P1 with kernels: only idle kernels (at most maxKernels) are left, and the only run
    // cgroups are theirs, with their three processes. (A pooled kernel may be starting
    // meanwhile: both are looked at together, until they agree or the time is up.)
    const until = Date.now() + p1Ms;
    for (;;) {
      const { kernels, others } = kernelProcesses(server.uidBase, { serverPid: server.pid });
      const slots = new Set(kernels.map((k) => k.uid - server.uidBase));
      const cgroups = runCgroups(server).filter((c) => !(slots.has(Number(/^run-(\d+)-/.exec(c.name)?.[1])) && c.procs === 3));
      if (others.length === 0 && kernels.length <= maxKernels && cgroups.length === 0) return;
      if (Date.now() > until) {
        if (others.length || kernels.length > maxKernels) {
          throw new Error(`sandbox processes left: ${others.join(' ') || '(none but kernels)'}; ${kernels.length} kernel(s) ` +
            `(at most ${maxKernels} expected): ${kernels.map((k) => `${k.pid}(${k.uid} ${k.lang})`).join(' ')}`);
        }
        throw new Error(`run cgroups left: ${cgroups.map((c) => `${c.path} (${c.procs} tasks)`).join(' ')}`);
      }
      await sleep(50);
    }
  } else {
    await expectNoSandboxProcesses(p1Ms, server.uidBase);
    // P1, cgroups: every run cgroup is removed (or at least empty) within the same time.
    const until = Date.now() + p1Ms;
    let left;
    while ((left = runCgroups(server)).length && Date.now() < until) await sleep(50);
    if (left.length) throw new Error(`run cgroups left: ${left.map((c) => `${c.path} (${c.procs} tasks)`).join(' ')}`);
  }
}

/** The post-conditions after an attack: P1 (no slot-uid process, no run cgroup with
 * tasks; with kernels: idle kernels only, see expectP1), P2 (no host file owned by a slot
 * uid), P3 (/health answers 200 fast) and P5 (no canary surfaced). */
export async function checkPostconditions(server, canaries, { p1Ms = 2000, healthMs = 200, maxKernels = Infinity } = {}) {
  await expectP1(server, { ms: p1Ms, maxKernels });
  const stray = strayHostFiles(server.uidBase);
  if (stray.length) throw new Error(`host files owned by sandbox uids: ${stray.join(' ')}`);
  const h = await health(server);
  if (h.status !== 200) throw new Error(`/health answered ${h.status}`);
  if (h.ms > healthMs) throw new Error(`/health took ${h.ms.toFixed(0)} ms`);
  if (canaries?.violations.length) throw new Error(`canary leaked: ${canaries.violations.join('; ')}`);
}

/** streamRun on `ws`, also returning stdout/stderr joined and the client-side wall time. */
export async function runText(ws, code, language = 'python', opts = {}) {
  const t0 = performance.now();
  const r = await streamRun(ws, code, language, opts).done;
  return { ...r, out: r.stdout.join(''), err: r.stderr.join(''), ms: performance.now() - t0 };
}

/**
 * One raw HTTP exchange over a fresh TCP socket: `head` is sent verbatim (nothing is
 * normalised), then `body`. Resolves when the server has sent a whole response (by
 * Content-Length), closed the socket, or `timeoutMs` passed.
 */
export function rawHttp(server, head, { body = '', localAddress, timeoutMs = 3000 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port: server.port, localAddress });
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const text = buf.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      const headers = {};
      for (const line of (end >= 0 ? text.slice(0, end) : text).split('\r\n').slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status: m ? Number(m[1]) : 0, headers, body: end >= 0 ? buf.subarray(end + 4).toString('utf8') : '', raw: text, closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const text = buf.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const len = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end));
      if (/^HTTP\/1\.1 101/.test(text) || (len && buf.length - end - 4 >= Number(len[1]))) finish(false);
    });
    sock.on('close', () => finish(true));
    sock.on('error', () => finish(true));
    sock.write(head);
    if (body) sock.write(body);
  });
}

/** A client→server WebSocket frame, built by hand so any field can be wrong. `len` forces
 * the declared payload length (e.g. 2n ** 63n); `mask: false` sends it unmasked. */
export function wsFrame({ opcode = 1, payload = Buffer.alloc(0), fin = true, rsv = 0, mask = true, len } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const n = BigInt(len ?? data.length);
  const head = [(fin ? 0x80 : 0) | (rsv << 4) | opcode];
  const m = mask ? 0x80 : 0;
  if (n < 126n) head.push(m | Number(n));
  else if (n < 65536n) head.push(m | 126, Number(n >> 8n), Number(n & 255n));
  else {
    head.push(m | 127);
    for (let i = 7n; i >= 0n; i--) head.push(Number((n >> (8n * i)) & 255n));
  }
  if (!mask) return Buffer.concat([Buffer.from(head), data]);
  const key = randomBytes(4);
  const masked = Buffer.from(data.map((b, i) => b ^ key[i % 4]));
  return Buffer.concat([Buffer.from(head), key, masked]);
}

/** A close frame body: a 2-byte code and a reason. */
export function closePayload(code, reason = '') {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return Buffer.concat([b, Buffer.isBuffer(reason) ? reason : Buffer.from(reason)]);
}

/**
 * A raw WebSocket connection: the upgrade request is built from `path` and `headers`
 * (null drops a default header), the answer's status is in `status`; afterwards `send`
 * writes raw bytes, `frames` collects the server's frames (opcode, payload, close code),
 * and `closed` resolves when the TCP connection ends.
 */
export async function rawWs(server, path, { headers = {}, method = 'GET', localAddress, timeoutMs = 3000 } = {}) {
  const defaults = {
    Host: `127.0.0.1:${server.port}`, Upgrade: 'websocket', Connection: 'Upgrade',
    'Sec-WebSocket-Key': randomBytes(16).toString('base64'), 'Sec-WebSocket-Version': '13',
  };
  const all = { ...defaults, ...headers };
  const head = `${method} ${path} HTTP/1.1\r\n` +
    Object.entries(all).filter(([, v]) => v !== null).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
  const sock = net.connect({ host: '127.0.0.1', port: server.port, localAddress });
  sock.on('error', () => {});
  const closed = new Promise((resolve) => sock.on('close', resolve));
  const conn = { sock, closed, frames: [], status: 0, response: '', closeCode: null, isClosed: false };
  closed.then(() => { conn.isClosed = true; });
  let buf = Buffer.alloc(0);
  let upgraded = false;
  const parse = () => {
    for (;;) {
      if (buf.length < 2) return;
      const opcode = buf[0] & 15;
      let len = buf[1] & 127, off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      if (buf.length < off + len) return;
      const payload = buf.subarray(off, off + len);
      const frame = { opcode, payload, text: opcode === 1 ? payload.toString('utf8') : undefined };
      if (opcode === 8) frame.code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      if (opcode === 8 && conn.closeCode === null) conn.closeCode = frame.code;
      conn.frames.push(frame);
      buf = buf.subarray(off + len);
    }
  };
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        conn.response = buf.subarray(0, end).toString('latin1');
        conn.status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(conn.response)?.[1] ?? 0);
        buf = buf.subarray(end + 4);
        upgraded = true;
        clearTimeout(timer);
        resolve();
      }
      parse();
    });
    closed.then(() => { clearTimeout(timer); resolve(); });
    sock.write(head);
  });
  conn.send = (bytes) => { if (!sock.destroyed) sock.write(bytes); };
  /** Wait until the server closes the TCP connection; false if it is still open after ms. */
  conn.waitClosed = (ms = 2000) => Promise.race([closed.then(() => true), sleep(ms).then(() => false)]);
  /** Wait until the server fails the connection: a close frame (its code, or 1005 when it
   * has no body) or the TCP connection ending without one (0). null if neither within ms. */
  conn.waitClose = async (ms = 2000) => {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      if (conn.closeCode !== null) return conn.closeCode;
      if (conn.isClosed) return 0;
      await sleep(10);
    }
    return conn.closeCode ?? (conn.isClosed ? 0 : null);
  };
  conn.destroy = () => sock.destroy();
  return conn;
}

/** The small limits the catalogue servers run with, so attacks end fast (sandbox.md §2). */
export const CATALOGUE_LIMITS = {
  memory: 268435456, pids: 64, tmpSize: 16777216, maxOutput: 1048576, timeoutMax: 20,
};
export const CATALOGUE_ARGS = [
  '--memory', String(CATALOGUE_LIMITS.memory), '--pids', String(CATALOGUE_LIMITS.pids),
  '--tmp-size', String(CATALOGUE_LIMITS.tmpSize), '--max-output-bytes', String(CATALOGUE_LIMITS.maxOutput),
  '--timeout-max', String(CATALOGUE_LIMITS.timeoutMax),
];

/**
 * One catalogue server for a test file: host canaries planted, the server started with
 * the catalogue limits (plus `args`, `env`) on its own slot uids, a session and its
 * WebSocket open and tapped for canaries, one warm-up run, then the baseline of its fds
 * and RSS taken. Registers the hooks: after every test the post-conditions P1, P2, P3,
 * P5; at the end the server stopped (by pid) and the canaries removed. A file calls
 * `ctx.finalChecks()` from its last test for P4 and the thorough P2 sweep. `serverArgs` and
 * `apiKey` may be functions of the canaries (to plant a secret in the server's argv).
 *
 * Under CP_TEST_KERNELS the server also gets --kernels and --kernel-pool `kernelPool`
 * (default none; null keeps the server's default pool). Then the warm-up runs in a
 * session of its own that is released at once (checking that a released session leaves
 * nothing), and records what a fresh kernel's /tmp and /dev/shm hold (ctx.freshTmp,
 * ctx.freshShm: python lists as printed); the baseline is taken with no session kernel.
 * After every test P1 allows idle kernels only (at most one per kernel language per live
 * session of the file, plus the pool). In both modes: `ctx.otherSession()` opens another
 * session of the file ({s, ws}); `ctx.release(entry)` releases one; `ctx.endSessions()`
 * releases them all and checks P1 at session scope (nothing left but pooled kernels);
 * `ctx.renewSession()` does that and opens a new, warmed-up ctx.session / ctx.ws;
 * `ctx.p1(ms)` checks P1 as after a test (idle kernels of live sessions allowed). With
 * kernels, finalChecks ends every session before P4.
 */
export function useCatalogueServer({ uidBase, args = [], env = {}, apiKey, serverArgs, kernelPool = 'none' } = {}) {
  const ctx = {
    canaries: null, server: null, session: null, ws: null, baseline: null,
    kernels: TEST_KERNEL_LANGS.length > 0, sessions: [], freshTmp: '[]', freshShm: '[]',
  };
  const open = async () => {
    const s = await createSession(ctx.server, { apiKey: ctx.apiKey });
    const ws = await openWs(s);
    ctx.canaries.watch(ws);
    const entry = { s, ws };
    ctx.sessions.push(entry);
    return entry;
  };
  const warmUp = async (ws) => {
    const warm = await runText(ws, 'print(1)');
    if (warm.out !== '1\n') throw new Error(`warm-up run failed: ${JSON.stringify(warm.end ?? warm.failure)}`);
  };
  before(async () => {
    ctx.canaries = plantCanaries();
    const extra = typeof serverArgs === 'function' ? serverArgs(ctx.canaries) : [];
    ctx.server = await startServer({
      uidBase, args: [...CATALOGUE_ARGS, ...kernelArgs(kernelPool), ...args, ...extra], env: { ...ctx.canaries.env, ...env },
    });
    ctx.apiKey = typeof apiKey === 'function' ? apiKey(ctx.canaries) : apiKey;
    if (ctx.kernels) {
      const w = await open();
      const warm = await runText(w.ws, "import os\nprint(1)\nprint(sorted(os.listdir('/tmp')))\nprint(sorted(os.listdir('/dev/shm')))");
      const [one, tmp, shm] = warm.out.split('\n');
      if (one !== '1') throw new Error(`warm-up run failed: ${JSON.stringify(warm.end ?? warm.failure)}`);
      [ctx.freshTmp, ctx.freshShm] = [tmp, shm];
      await ctx.endSessions();
    }
    const main = await open();
    [ctx.session, ctx.ws] = [main.s, main.ws];
    if (!ctx.kernels) await warmUp(ctx.ws);
    // With a pool, the baseline holds the pooled kernels (as the end will): wait for them.
    for (let t = 0; ctx.kernels && kernelProcesses(ctx.server.uidBase).kernels.length < ctx.server.pool && t < 10000; t += 50) await sleep(50);
    await sleep(200);
    ctx.baseline = procStats(ctx.server.pid);
  });
  /** How many idle kernels P1 allows between runs: one per kernel language per live
   * session of the file, plus the pool (0 without kernels). */
  const maxKernels = () => ctx.sessions.length * TEST_KERNEL_LANGS.length + ctx.server.pool;
  afterEach(async () => {
    if (!ctx.server) return;
    await checkPostconditions(ctx.server, ctx.canaries, { maxKernels: maxKernels() });
  });
  after(async () => {
    for (const e of ctx.sessions) e.ws.close();
    await ctx.server?.stop();
    ctx.canaries?.cleanup();
  });
  /** Run on the file's socket. */
  ctx.run = (code, language = 'python', opts = {}) => runText(ctx.ws, code, language, { timeoutS: 5, ...opts });
  /** P1 now, within `ms` (after a one-off run: its sandbox is gone; the sessions' idle
   * kernels may stay). Without kernels: expectNoSandboxProcesses. */
  ctx.p1 = (ms = 2000) => expectP1(ctx.server, { ms, maxKernels: maxKernels() });
  ctx.otherSession = () => open();
  ctx.release = async (entry) => {
    entry.ws.close();
    await releaseSession(ctx.server, entry.s, { apiKey: ctx.apiKey });
    ctx.sessions = ctx.sessions.filter((e) => e !== entry);
    if (entry.s === ctx.session) [ctx.session, ctx.ws] = [null, null];
  };
  /** Release every session of the file; then P1 at session scope within `ms`: no slot-uid
   * process but idle kernels no more than the pool holds (none without a pool), no run
   * cgroup with tasks but theirs. */
  ctx.endSessions = async ({ ms = 2000 } = {}) => {
    for (const e of [...ctx.sessions]) await ctx.release(e);
    await expectP1(ctx.server, { maxKernels: ctx.server.pool, ms });
  };
  ctx.renewSession = async (opts) => {
    await ctx.endSessions(opts);
    const main = await open();
    [ctx.session, ctx.ws] = [main.s, main.ws];
    await warmUp(ctx.ws);
  };
  ctx.finalChecks = async () => {
    if (ctx.kernels) await ctx.endSessions();
    const stray = strayHostFiles(ctx.server.uidBase, { thorough: true });
    if (stray.length) throw new Error(`host files owned by sandbox uids: ${stray.join(' ')}`);
    return expectStatsNear(ctx.server, ctx.baseline);
  };
  return ctx;
}
