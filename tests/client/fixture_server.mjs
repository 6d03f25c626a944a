// A scripted stand-in for the AGB cloud, for the client tests: node:http on 127.0.0.1
// (port 0) with an npm `ws` WebSocketServer on the same server. It records every HTTP
// request (method, URL, headers, body) and every WebSocket upgrade and client frame, and
// answers with whatever the test scripts: an HTTP reply (a recorded fixture of
// tests/client/fixtures/) and, on the WebSocket, server frames played in reply to the
// client's frames. It knows nothing of the protocol itself, so the tests can assert the
// client's side byte for byte.
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import http from 'node:http';
import { WebSocketServer } from 'ws';

const FIXTURES = new URL('./fixtures/', import.meta.url);

/** A recorded reply: {name, description, route, reply:{status, headers, body}, expected}. */
export function loadFixture(name) {
  return JSON.parse(readFileSync(new URL(`${name}.json`, FIXTURES), 'utf8'));
}

/**
 * Start the fixture server. `srv.reply` answers HTTP requests: a {status, headers, body}
 * object (body is raw text), a function(request) returning one, or 'hang' (no answer);
 * `srv.onFrame(frame, ws, raw)` is called for every client frame (parsed JSON, or null
 * when it is not JSON) and `srv.onConnection(ws, req)` for every accepted upgrade. Stop it
 * with `await srv.close()`.
 */
export async function startFixtureServer() {
  const requests = [];  // {method, url, headers, body}
  const upgrades = [];  // {url, headers, rejected}: every upgrade request
  const frames = [];    // {frame, raw, isBinary} from the client, in arrival order
  const sockets = new Set();
  const waiters = [];   // {pred, resolve}

  const srv = {
    requests, upgrades, frames, sockets,
    reply: { status: 500, headers: {}, body: 'no reply scripted' },
    onFrame: null,
    onConnection: null,
    rejectUpgrade: null,
    base: '',
    port: 0,
    /** The ws: URL of `path` on this server. */
    wsUrl(path = '/ws/s-1') { return `ws://127.0.0.1:${srv.port}${path}`; },
    /** Resolve once a client frame satisfying pred has arrived (including earlier ones). */
    waitFrame(pred = () => true, ms = 5000) {
      const hit = frames.find((f) => pred(f.frame, f));
      if (hit) return Promise.resolve(hit.frame);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve };
        w.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`no matching client frame within ${ms} ms; frames: ${JSON.stringify(frames.map((f) => f.raw))}`));
        }, ms);
        waiters.push(w);
      });
    },
    /** Send a server frame to every open socket (objects are JSON-encoded). */
    broadcast(frame, { binary = false } = {}) {
      const text = typeof frame === 'string' ? frame : JSON.stringify(frame);
      for (const ws of sockets) ws.send(binary ? Buffer.from(text) : text, { binary });
    },
    reset() {
      requests.length = 0;
      upgrades.length = 0;
      frames.length = 0;
      srv.onFrame = null;
      srv.onConnection = null;
      srv.rejectUpgrade = null;
    },
    async close() {
      for (const w of waiters.splice(0)) clearTimeout(w.timer);
      for (const ws of sockets) ws.terminate();
      await new Promise((resolve) => wss.close(resolve));
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const request = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(request);
      const r = typeof srv.reply === 'function' ? srv.reply(request) : srv.reply;
      if (r === 'hang') return; // never answer: the client's own abort or timeout settles it
      res.writeHead(r.status, { 'content-type': 'application/json', ...(r.headers ?? {}) });
      res.end(r.body ?? '');
    });
  });

  // Every upgrade request is recorded; `srv.rejectUpgrade` (an HTTP status) refuses it.
  const wss = new WebSocketServer({
    server,
    verifyClient: (info, done) => {
      upgrades.push({ url: info.req.url, headers: info.req.headers, rejected: srv.rejectUpgrade ?? null });
      if (srv.rejectUpgrade) done(false, srv.rejectUpgrade);
      else done(true);
    },
  });
  wss.on('connection', (ws, req) => {
    sockets.add(ws);
    ws.on('close', () => sockets.delete(ws));
    ws.on('message', (buf, isBinary) => {
      const raw = buf.toString('utf8');
      let frame = null;
      try { frame = JSON.parse(raw); } catch { /* recorded as null */ }
      const entry = { frame, raw, isBinary };
      frames.push(entry);
      for (const w of [...waiters]) {
        if (w.pred(frame, entry)) {
          clearTimeout(w.timer);
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(frame);
        }
      }
      srv.onFrame?.(frame, ws, raw);
    });
    srv.onConnection?.(ws, req);
  });

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  srv.port = server.address().port;
  srv.base = `http://127.0.0.1:${srv.port}`;
  return srv;
}
