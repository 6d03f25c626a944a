// Drives one kernel process directly (no sandbox, no server) over the kernel protocol of
// src/server/kernels/README.md: requests on its fd 3, events from its fd 4, and its raw
// fd 1/2. All four fds are FIFOs (named pipes in a temp folder), not sockets, so a kernel
// may reopen /proc/self/fd/N as it will inside the sandbox. Every kernel started here is
// killed by pid in close() (and at exit, for a test that dies early).
import { spawn, execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const KERNELS = `${ROOT}src/server/kernels/`;
export const JKERNEL_JAR = `${ROOT}build/server/kernels/jkernel.jar`;
const JAVA = '/usr/lib/jvm/java-17-openjdk-amd64/bin/java';

/** How each kernel is started outside the sandbox (the server adds the sandbox around it). */
export const COMMANDS = {
  python: ['/usr/bin/python3', '-I', '-B', `${KERNELS}python_kernel.py`],
  javascript: ['/usr/bin/node', '--no-force-async-hooks-checks', `${KERNELS}node_kernel.cjs`],
  java: [JAVA, '-Xmx256m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-XX:-UsePerfData', '-Xss1m',
    '--add-opens', 'java.base/java.io=ALL-UNNAMED', '-cp', JKERNEL_JAR, 'codepane.kernel.JKernel'],
  r: ['/usr/bin/Rscript', '--vanilla', `${KERNELS}r_kernel.R`],
};

const SYNC = /\x1ecodepane-sync (\d+)\n/g;
const live = new Set();
process.on('exit', () => { for (const k of live) try { process.kill(k.pid, 'SIGKILL'); } catch { /* gone */ } });

/**
 * Start a kernel. Resolves once it sent `ready` (rejects if it exits first, or after
 * `readyMs`). The kernel object:
 * - events: every event object so far, in order; raw: {stdout, stderr} text of fd 1/2
 *   with the sync markers removed; syncs: {stdout: [ids], stderr: [ids]} markers seen.
 * - exec(code, {id}) → Promise of {events, done, out, err}: the cell's events through its
 *   `done` and the fd 1/2 text seen up to both sync markers of the cell.
 * - send(obj): one raw request line; signal(sig): kill(pid, sig); close(): kill, clean up.
 */
export async function startKernel(language, { env = {}, readyMs = 30000, args = [] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), `cp-kernel-${language}-`));
  const paths = {};
  for (const name of ['req', 'ev', 'out', 'err']) {
    paths[name] = join(dir, name);
    execFileSync('mkfifo', ['-m', '600', paths[name]]);
  }
  // O_RDWR opens of a FIFO never block; the child gets these as fds 1..4.
  const fds = Object.fromEntries(Object.entries(paths).map(([k, p]) => [k, openSync(p, 'r+')]));
  const [cmd, ...cmdArgs] = COMMANDS[language];
  const child = spawn(cmd, [...cmdArgs, ...args], {
    stdio: ['ignore', fds.out, fds.err, fds.req, fds.ev],
    env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', HOME: dir, ...env },
    cwd: dir,
  });
  // Our read ends; the child's copies of ev/out/err are then the only writers, so their
  // streams end when it dies. The request FIFO stays open read-write on our side.
  const readers = {};
  for (const name of ['ev', 'out', 'err']) {
    // A non-blocking read end on the event loop (fs streams would each hold one of
    // libuv's four pool threads in a blocking read, and two kernels would stall).
    readers[name] = new net.Socket({ fd: openSync(paths[name], constants.O_RDONLY | constants.O_NONBLOCK), readable: true, writable: false });
    readers[name].setEncoding('utf8');
    closeSync(fds[name]);
  }
  const k = {
    pid: child.pid, child, dir, events: [], raw: { stdout: '', stderr: '' },
    syncs: { stdout: [], stderr: [] }, exited: null, listeners: new Set(),
  };
  live.add(k);
  const notify = () => { for (const l of [...k.listeners]) l(); };
  child.on('exit', (code, signal) => { k.exited = { code, signal }; notify(); });

  let evBuf = '';
  readers.ev.on('data', (chunk) => {
    evBuf += chunk;
    let nl;
    while ((nl = evBuf.indexOf('\n')) >= 0) {
      const line = evBuf.slice(0, nl);
      evBuf = evBuf.slice(nl + 1);
      if (!line) continue;
      let ev;
      try { ev = JSON.parse(line); } catch { ev = { type: 'unparseable', line }; }
      ev.at = performance.now();
      k.events.push(ev);
    }
    notify();
  });
  for (const [name, stream] of [['stdout', readers.out], ['stderr', readers.err]]) {
    let pending = '';
    stream.on('data', (chunk) => {
      pending += chunk;
      // Markers are whole lines; keep a possible partial marker for the next chunk.
      let cut = pending.lastIndexOf('\x1e');
      if (cut >= 0 && pending.indexOf('\n', cut) >= 0) cut = -1;
      const ready = cut >= 0 ? pending.slice(0, cut) : pending;
      pending = cut >= 0 ? pending.slice(cut) : '';
      k.raw[name] += ready.replace(SYNC, (_, id) => { k.syncs[name].push(Number(id)); return ''; });
      notify();
    });
  }

  /** Resolve when pred() holds; reject when the kernel exits first or after ms. */
  k.until = (pred, ms = 30000, what = 'condition') => new Promise((resolve, reject) => {
    const check = () => {
      let v;
      try { v = pred(); } catch (e) { cleanup(); reject(e); return; }
      if (v) { cleanup(); resolve(v); } else if (k.exited) {
        cleanup();
        reject(new Error(`kernel exited (${JSON.stringify(k.exited)}) before ${what}`));
      }
    };
    const timer = setTimeout(() => { cleanup(); reject(new Error(`timed out after ${ms} ms waiting for ${what}`)); }, ms);
    const cleanup = () => { clearTimeout(timer); k.listeners.delete(check); };
    k.listeners.add(check);
    check();
  });

  k.send = (obj) => writeSync(fds.req, `${JSON.stringify(obj)}\n`);
  k.signal = (sig) => process.kill(child.pid, sig);
  let nextId = 1;
  k.exec = async (code, { id = nextId++, ms = 30000 } = {}) => {
    nextId = Math.max(nextId, id + 1);
    const from = k.events.length;
    const outFrom = k.raw.stdout.length, errFrom = k.raw.stderr.length;
    k.send({ op: 'exec', id, code });
    const done = await k.until(() => k.events.slice(from).find((e) => e.type === 'done' && e.id === id), ms, `done of cell ${id}`);
    await k.until(() => k.syncs.stdout.includes(id) && k.syncs.stderr.includes(id), 5000, `sync markers of cell ${id}`);
    const events = k.events.slice(from, k.events.indexOf(done) + 1);
    return { id, events, done, out: k.raw.stdout.slice(outFrom), err: k.raw.stderr.slice(errFrom) };
  };
  k.close = async () => {
    if (!live.has(k)) return;
    live.delete(k);
    if (!k.exited) {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    for (const r of Object.values(readers)) r.destroy();
    closeSync(fds.req);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await k.until(() => k.events.find((e) => e.type === 'ready'), readyMs, 'ready');
  } catch (e) {
    await k.close();
    throw new Error(`${e.message}\nstderr: ${k.raw.stderr}`);
  }
  return k;
}

/** The text of every `stream` event of `name` in a cell, joined. */
export const streamText = (cell, name = 'stdout') =>
  cell.events.filter((e) => e.type === 'stream' && e.name === name).map((e) => e.text).join('');
