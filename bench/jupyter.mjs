// bench/jupyter.mjs: the peer of bench/run.mjs. Starts a Jupyter Server (Debian's
// jupyter-server 1.23 with python3-ipykernel) on loopback, isolated from the user's own
// Jupyter setup, and talks the Jupyter kernel WebSocket protocol to it directly (JSON text
// frames, protocol 5.3; not the binary v1.kernel.websocket.jupyter.org subprotocol, which
// 1.23 does not offer) with npm `ws`, the way JupyterLab's services do.
//
// Each server is one process group of its own (detached): stop() sends SIGTERM to the
// group, which lets Jupyter shut its kernels down, then SIGKILL to the group and to every
// kernel still alive (jupyter_client starts each kernel in a session of its own, so they
// are not in the server's group; their pids are collected while the server lives).
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { freePort } from '../tests/server/harness.mjs';
import { closeWs, sleep } from './common.mjs';

const BENCH_DIR = fileURLToPath(new URL('./', import.meta.url));
const PYTHON = '/usr/bin/python3'; // Debian's, which has jupyter_server (a pyenv one may not)
const READY_MS = 30000;
const STOP_GRACE_MS = 8000;

/** Pids of every process below `root` (children, their children, ...). */
function descendants(root) {
  const kids = new Map();
  for (const pid of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue;
    let stat;
    try { stat = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { continue; }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!kids.has(ppid)) kids.set(ppid, []);
    kids.get(ppid).push(Number(pid));
  }
  const out = [];
  const walk = (p) => { for (const c of kids.get(p) ?? []) { out.push(c); walk(c); } };
  walk(root);
  return out;
}

function cmdline(pid) {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' '); } catch { return null; }
}

const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };

/**
 * Start a Jupyter Server. `nodelay` loads bench/jupyter_nodelay.py (TCP_NODELAY on the
 * kernel WebSockets); `rateLimit` sets --ServerApp.iopub_data_rate_limit (null keeps the
 * shipped default, 1e6 bytes/s). Resolves once GET /api/status answers.
 */
export async function startJupyter({ label, nodelay = false, rateLimit = null } = {}) {
  const dir = mkdtempSync(`${os.tmpdir()}/codepane-bench-jupyter-`);
  const sub = (name) => { mkdirSync(`${dir}/${name}`, { recursive: true }); return `${dir}/${name}`; };
  const [root, runtime, config, data, home, ipython, mpl] =
    ['root', 'runtime', 'config', 'data', 'home', 'ipython', 'mpl'].map(sub);
  if (nodelay) {
    writeFileSync(`${config}/jupyter_server_config.json`,
      JSON.stringify({ ServerApp: { jpserver_extensions: { jupyter_nodelay: true } } }));
  }
  const port = await freePort();
  const token = randomBytes(24).toString('hex');
  const args = ['-m', 'jupyter_server', '--allow-root', '--no-browser', '--ip=127.0.0.1', `--port=${port}`,
    '--port-retries=0', `--ServerApp.token=${token}`, `--ServerApp.root_dir=${root}`];
  if (rateLimit !== null) args.push(`--ServerApp.iopub_data_rate_limit=${rateLimit}`);
  // A fresh environment: no JUPYTER_PATH, no user config dirs, no pyenv.
  const env = {
    PATH: '/usr/local/bin:/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8',
    JUPYTER_RUNTIME_DIR: runtime, JUPYTER_CONFIG_DIR: config, JUPYTER_DATA_DIR: data,
    IPYTHONDIR: ipython, MPLCONFIGDIR: mpl, PYTHONDONTWRITEBYTECODE: '1',
    ...(nodelay ? { PYTHONPATH: BENCH_DIR } : {}),
  };
  const proc = spawn(PYTHON, args, { env, cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  const base = `http://127.0.0.1:${port}`;
  const kernelPids = new Set();
  const server = {
    label, base, port, token, pid: proc.pid, dir, nodelay, rateLimit,
    log: () => log,
    headers: { authorization: `token ${token}` },
    /** Remember the kernels' pids (they live outside the server's process group). */
    noteKernels() { for (const p of descendants(proc.pid)) kernelPids.add(p); },
    async stop() {
      server.noteKernels();
      if (proc.exitCode === null && proc.signalCode === null) {
        try { process.kill(-proc.pid, 'SIGTERM'); } catch { /* gone */ }
        const t = setTimeout(() => { try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ } }, STOP_GRACE_MS);
        await exited;
        clearTimeout(t);
      }
      for (const p of kernelPids) {
        if (alive(p) && (cmdline(p) ?? '').includes(runtime)) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const t0 = Date.now();
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`jupyter server (${label}) exited before it was ready:\n${log}`);
    }
    try {
      const r = await fetch(`${base}/api/status`, { headers: server.headers });
      if (r.status === 200) break;
    } catch { /* not listening yet */ }
    if (Date.now() - t0 > READY_MS) {
      await server.stop();
      throw new Error(`jupyter server (${label}) not ready after ${READY_MS} ms:\n${log}`);
    }
    await sleep(50);
  }
  if (nodelay) {
    // The extension logs its marker when it loads; without it the comparison is void.
    for (let i = 0; i < 40 && !log.includes('jupyter_nodelay: TCP_NODELAY'); i++) await sleep(50);
    if (!log.includes('jupyter_nodelay: TCP_NODELAY')) {
      await server.stop();
      throw new Error(`jupyter server (${label}): bench/jupyter_nodelay.py did not load:\n${log}`);
    }
  }
  return server;
}

/** A kernel of a Jupyter Server and its WebSocket (the channels endpoint). */
export class JupyterKernel {
  constructor(server, id) {
    this.server = server;
    this.id = id;
    this.session = randomUUID();
    this.ws = null;
    this.pending = new Map(); // msg_id of an execute_request → handler(msg, at)
  }

  /** POST /api/kernels: returns once the server has started the kernel process. */
  static async start(server, name = 'python3') {
    const r = await fetch(`${server.base}/api/kernels`, {
      method: 'POST', headers: { ...server.headers, 'content-type': 'application/json' }, body: JSON.stringify({ name }),
    });
    const text = await r.text();
    if (r.status !== 201) throw new Error(`POST /api/kernels: ${r.status} ${text}`);
    server.noteKernels();
    return new JupyterKernel(server, JSON.parse(text).id);
  }

  /** Open the channels WebSocket. The server answers the upgrade only once the kernel has
   * replied to a kernel_info_request, so this includes the kernel's start-up. */
  async connect() {
    const url = `ws://127.0.0.1:${this.server.port}/api/kernels/${this.id}/channels?session_id=${this.session}`;
    const ws = new WebSocket(url, { headers: this.server.headers, perMessageDeflate: false });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
      ws.once('unexpected-response', (_q, res) => reject(new Error(`channels WebSocket: HTTP ${res.statusCode}`)));
    });
    ws.on('error', () => {});
    ws.on('message', (buf, isBinary) => {
      const at = performance.now();
      if (isBinary) return; // messages with buffers; none of the workloads makes one
      const msg = JSON.parse(buf.toString());
      const h = this.pending.get(msg.parent_header?.msg_id);
      if (h) h(msg, at);
    });
    this.ws = ws;
    return this;
  }

  /**
   * Send one execute_request on the shell channel; resolve when both its execute_reply and
   * its iopub status idle have arrived. Times are ms from ws.send: `first` (first stdout
   * stream message), `png` (first display_data/execute_result with image/png), `end`.
   * `chunks` holds [at, bytes] of every stdout message; `onStdout(text, at)` sees each.
   */
  execute(code, { timeoutMs = 120000, onStdout } = {}) {
    const msgId = randomUUID();
    const msg = {
      header: {
        msg_id: msgId, msg_type: 'execute_request', username: 'bench', session: this.session,
        date: new Date().toISOString(), version: '5.3',
      },
      parent_header: {}, metadata: {}, channel: 'shell', buffers: [],
      content: { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true },
    };
    return new Promise((resolve, reject) => {
      let t0 = 0, first = null, png = null, pngBytes = 0, reply = null, idle = false, bytes = 0, stderr = '', stdout = '';
      const chunks = [];
      const timer = setTimeout(() => {
        this.pending.delete(msgId);
        reject(new Error(`jupyter: no execute_reply + idle within ${timeoutMs} ms (stdout ${bytes} bytes)`));
      }, timeoutMs);
      this.pending.set(msgId, (m, at) => {
        const t = at - t0;
        switch (m.msg_type) {
          case 'stream':
            if (m.content.name === 'stdout') {
              if (first === null) first = t;
              const n = Buffer.byteLength(m.content.text);
              bytes += n;
              chunks.push([t, n]);
              if (stdout.length < 4096) stdout += m.content.text;
              onStdout?.(m.content.text, t);
            } else {
              stderr += m.content.text;
            }
            break;
          case 'display_data': case 'execute_result':
            if (png === null && m.content.data?.['image/png']) {
              png = t;
              pngBytes = Buffer.from(m.content.data['image/png'], 'base64').length;
            }
            break;
          case 'execute_reply': reply = m.content; break;
          case 'status': if (m.content.execution_state === 'idle') idle = true; break;
          default: break;
        }
        if (reply && idle) {
          clearTimeout(timer);
          this.pending.delete(msgId);
          resolve({ first, png, pngBytes, end: t, bytes, chunks, stdout, stderr, status: reply.status, reply });
        }
      });
      t0 = performance.now();
      this.ws.send(JSON.stringify(msg));
    });
  }

  /** The kernel's process: the server's descendant whose argv names this kernel's
   * connection file (kernel-<id>.json). */
  pid() {
    return descendants(this.server.pid).find((p) => (cmdline(p) ?? '').includes(`kernel-${this.id}.json`)) ?? null;
  }

  async close() {
    const ws = this.ws;
    this.ws = null;
    if (ws) await closeWs(ws);
  }

  /** Close the WebSocket and DELETE the kernel. */
  async shutdown() {
    await this.close();
    await fetch(`${this.server.base}/api/kernels/${this.id}`, { method: 'DELETE', headers: this.server.headers })
      .then((r) => r.text()).catch(() => {});
  }
}
