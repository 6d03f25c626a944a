// Shared helpers of the client suites (tests/client/*.test.mjs): the built npm package's
// Node entry, the real server's harness, and a local stand-in server that counts every
// connection, request and WebSocket upgrade it sees (to prove "no network").
import { once } from 'node:events';
import http from 'node:http';
import { after, before } from 'node:test';
import { WebSocketServer } from 'ws';

import { connect } from '../../dist/node.mjs';
import { startServer } from '../server/harness.mjs';

export { connect, resultText, heapInUse } from '../../dist/node.mjs';
export {
  expectNoSandboxProcesses, sandboxProcesses, startServer,
} from '../server/harness.mjs';

/** A real codepane-server (on `uidBase`, with `args`) and one session on it for the whole
 * test file: ctx.server and ctx.session, set before the first test, closed and stopped
 * after the last. */
export function useSession(uidBase, args = []) {
  const ctx = {};
  before(async () => {
    ctx.server = await startServer({ uidBase, args });
    ctx.session = await connect({ server: ctx.server.base });
  });
  after(async () => {
    await ctx.session?.close();
    await ctx.server?.stop();
  });
  return ctx;
}

export const HELLO = 'héllo ✓ 😀';
export const HTTP_REQUEST_ID = /^link-\d+-\d{9}$/;
export const INVOCATION_ID = /^[0-9a-f]{32}$/;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The toolList codepane-server hands out, reduced to what the client reads. */
export const TOOL_LIST = '[{"name":"run_code","server":"wuying_codespace"}]';

/** Resolve when `predicate()` holds (polled every 5 ms); reject after `ms`. */
export async function until(predicate, ms = 5000, what = 'condition') {
  const end = performance.now() + ms;
  while (!predicate()) {
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Settle `promise` or fail after `ms`: a hanging run must fail the test, not the suite. */
export function within(promise, ms, what = 'the run') {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * A stand-in AGB session server on 127.0.0.1 (port 0): it counts every TCP connection,
 * HTTP request and WebSocket upgrade. POST /link/<id>/callTool answers a successful
 * run_code whose stdout is "stand-in\n"; a run_code frame on the WebSocket gets one stdout
 * event "stand-in\n" and an end. `session` is what connect() adopts.
 */
export async function startCountingServer() {
  const counts = { connections: 0, requests: 0, upgrades: 0, frames: 0 };
  const server = http.createServer((req, res) => {
    counts.requests++;
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const payload = JSON.stringify({ result: [], stdout: ['stand-in\n'], stderr: [], execution_count: 1, execution_time: 0.001 });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ data: { result: { isError: false, content: [{ type: 'text', text: payload }] } } }));
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  const sockets = new Set();
  server.on('connection', (sock) => {
    counts.connections++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });
  server.on('upgrade', (req, sock, head) => {
    counts.upgrades++;
    wss.handleUpgrade(req, sock, head, (ws) => {
      ws.on('message', (buf) => {
        counts.frames++;
        let f;
        try { f = JSON.parse(buf.toString()); } catch { return; }
        if (!f.invocationId) return; // a JSON ping
        const reply = (data) => ws.send(JSON.stringify({ invocationId: f.invocationId, source: 'wuying_codespace', target: 'SDK', data }));
        reply({ phase: 'event', seq: 1, eventType: 'stdout', chunk: 'stand-in\n' });
        reply({ phase: 'end', seq: 2, status: 'finished', executionCount: 1, executionTime: 0.001 });
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  const base = `http://127.0.0.1:${port}`;
  return {
    port, counts,
    session: { sessionId: 's-standin', linkUrl: `${base}/link/s-standin`, wsUrl: `ws://127.0.0.1:${port}/ws/s-standin`, token: 't-standin', toolList: TOOL_LIST },
    total: () => counts.connections + counts.requests + counts.upgrades,
    async stop() {
      for (const ws of wss.clients) ws.terminate();
      for (const s of sockets) s.destroy();
      wss.close();
      server.close();
      await once(server, 'close');
    },
  };
}

/** The exact result of a run that failed locally, before any network. */
export function localFailure(errorMessage) {
  return { requestId: '', success: false, executionTime: 0, logs: { stdout: [], stderr: [] }, results: [], errorMessage };
}
