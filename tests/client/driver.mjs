// A codepane client in a child process, driven over IPC (see Driver in disconnect.test.mjs
// and spawnDriver below). Scenarios where the client could throw an uncaught exception (a
// failed WebSocket handshake in Node once did: npm ws's unhandled 'error' event) run here,
// so that such an exception is recorded and asserted on instead of killing the test
// runner's process.
//
// Parent → child: {id, op: 'connect', options} | {id, op: 'run', run, code, language,
// timeoutS, streamBeta} | {id, op: 'state'} | {id, op: 'close'}; the child answers
// {id, ok, value | error}. Child → parent events: {event: 'stdout' | 'stderr' | 'error' |
// 'result' | 'rejected', run, ...} and {event: 'uncaught', name, message, code}.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const isChild = process.argv[2] === '--codepane-driver';

if (isChild) {
  const { connect } = await import('../../dist/node.mjs');
  let session = null;
  const send = (m) => process.send?.(m);
  process.on('uncaughtException', (e) => send({ event: 'uncaught', name: e?.name, message: e?.message, code: e?.code }));
  process.on('unhandledRejection', (e) => send({ event: 'uncaught', name: 'unhandledRejection', message: String(e?.message ?? e) }));
  const describeError = (e) => (e instanceof Error
    ? { isError: true, name: e.name, message: e.message }
    : { isError: false, payload: e });
  const ops = {
    async connect({ options }) {
      session = await connect(options);
      return { sessionId: session.sessionId, wsUrl: session.wsUrl };
    },
    run({ run, code, language, timeoutS, streamBeta }) {
      session.code.run(code, language, timeoutS, {
        streamBeta,
        onStdout: (chunk) => send({ event: 'stdout', run, chunk }),
        onStderr: (chunk) => send({ event: 'stderr', run, chunk }),
        onError: (e) => send({ event: 'error', run, error: describeError(e) }),
      }).then(
        (result) => send({ event: 'result', run, result }),
        (e) => send({ event: 'rejected', run, message: String(e?.message ?? e) }),
      );
      return null;
    },
    state: () => session?.streamState ?? null,
    async close() { await session?.close(); return session?.streamState ?? null; },
  };
  process.on('message', async ({ id, op, ...args }) => {
    try {
      send({ id, ok: true, value: await ops[op](args) });
    } catch (e) {
      send({ id, ok: false, error: String(e?.message ?? e) });
    }
  });
  process.on('disconnect', () => process.exit(0));
}

/** Start a driver child; its recorded events are in `.events`, `.uncaught`. */
export function spawnDriver() {
  const child = fork(fileURLToPath(import.meta.url), ['--codepane-driver'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending = new Map();
  const listeners = new Set();
  let nextId = 1, nextRun = 1;
  const driver = {
    child,
    events: [],
    uncaught: [],
    exited: null,
    call(op, args = {}) {
      if (driver.exited) return Promise.reject(new Error(`driver exited (${JSON.stringify(driver.exited)})`));
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        child.send({ id, op, ...args });
      });
    },
    connect: (options) => driver.call('connect', { options }),
    state: () => driver.call('state'),
    close: () => driver.call('close'),
    /** Start a run; returns {run, stdout (chunks so far), errors, result: Promise}. */
    run(code, language, timeoutS = 60, { streamBeta = true } = {}) {
      const run = nextRun++;
      const handle = { run, stdout: [], stderr: [], errors: [], rejected: null, settledAt: null };
      handle.result = new Promise((resolve) => {
        const on = (m) => {
          if (m.run !== run) return;
          if (m.event === 'stdout') handle.stdout.push(m.chunk);
          else if (m.event === 'stderr') handle.stderr.push(m.chunk);
          else if (m.event === 'error') handle.errors.push(m.error);
          else if (m.event === 'rejected' || m.event === 'result') {
            handle.settledAt = performance.now();
            if (m.event === 'rejected') handle.rejected = m.message;
            listeners.delete(on);
            resolve(m.result ?? null);
          }
        };
        listeners.add(on);
      });
      handle.started = driver.call('run', { run, code, language, timeoutS, streamBeta });
      return handle;
    },
    async stop() {
      if (!driver.exited) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
  child.on('message', (m) => {
    if (m.id !== undefined) {
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.ok) p?.resolve(m.value);
      else p?.reject(new Error(m.error));
      return;
    }
    m.at = performance.now();
    driver.events.push(m);
    if (m.event === 'uncaught') driver.uncaught.push(m);
    for (const on of [...listeners]) on(m);
  });
  child.on('exit', (code, signal) => {
    driver.exited = { code, signal };
    for (const p of pending.values()) p.reject(new Error(`driver exited (code ${code}, signal ${signal})`));
    pending.clear();
  });
  return driver;
}
