// Session descriptors across a server restart (docs/server.md "Sessions across restarts"):
// tokens are derived from the session id and --session-secret-file, so a restarted server
// revives the sessions it minted when a descriptor comes back on callTool or the
// WebSocket; anything else is refused as an unknown session always was.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';

import {
  callTool, createSession, expectNoSandboxProcesses, openWs, post, startServer, streamRun,
} from './harness.mjs';

// This file's own sandbox uids: no other test file may use them.
const UID_BASE = 61700;
const SECRET_BYTES = 32;
const NOT_FOUND = 'InvalidSession.NotFound';

let dir;
const running = new Set();

async function start(opts = {}) {
  const server = await startServer({ uidBase: UID_BASE, ...opts });
  running.add(server);
  return server;
}

async function stop(server) {
  const code = await server.stop();
  running.delete(server);
  return code;
}

before(() => { dir = mkdtempSync(join(tmpdir(), 'codepane-revival-')); });
after(async () => {
  for (const server of running) await server.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A WebSocket upgrade's outcome: 101, or the refusal's status and body. */
function wsAttempt(url, { headers = {}, protocols } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers });
    ws.once('open', () => { ws.close(); resolve({ status: 101, body: '' }); });
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => { req.destroy(); resolve({ status: res.statusCode, body }); });
    });
    ws.once('error', reject);
  });
}

/** The descriptor of session `sessionId` on `server`, carrying `token`. */
function descriptor(server, sessionId, token) {
  return {
    sessionId, token,
    linkUrl: `${server.base}/link/${sessionId}`,
    wsUrl: `ws://127.0.0.1:${server.port}/ws/${sessionId}`,
  };
}

/** callTool and the WebSocket both refuse `d` with the answers a session that is not
 * there always got: 404 InvalidSession.NotFound "session <id> not found" (or "has been
 * released" while the server remembers the release), and a 404 upgrade refusal. */
async function assertRefused(d, reason = 'not found') {
  const r = await callTool(d, 'print(1)', 'python');
  assert.equal(r.status, 404, r.raw.text);
  assert.equal(r.raw.json.success, false);
  assert.equal(r.raw.json.code, NOT_FOUND);
  assert.equal(r.raw.json.message, `session ${d.sessionId} ${reason}`);
  const w = await wsAttempt(d.wsUrl, { headers: { 'X-Access-Token': d.token } });
  assert.deepEqual(w, { status: 404, body: `session ${reason}\n` });
}

async function sessionStatus(server, sessionId) {
  const r = await post(`${server.base}/mcp/getSessionInfo`, { sessionId });
  return { status: r.status, code: r.json.code, state: r.json.data?.status ?? null };
}

describe('with --session-secret-file', () => {
  let secretPath, first, second, secret;
  let viaHttp, viaWs, untouched, other;

  test('a missing secret file is created with 32 random bytes, mode 0600, and said so', async () => {
    secretPath = join(dir, 'session.secret');
    first = await start({ args: ['--session-secret-file', secretPath] });
    const st = statSync(secretPath);
    assert.equal(st.mode & 0o7777, 0o600);
    assert.equal(st.size, SECRET_BYTES);
    secret = readFileSync(secretPath);
    assert.match(first.output().err, new RegExp(`created the session secret file ${secretPath} \\(32 random bytes, mode 0600\\)`));
  });

  test('a descriptor from before a restart runs code on callTool after it', async () => {
    [viaHttp, viaWs, untouched, other] = await Promise.all([1, 2, 3, 4].map(() => createSession(first)));
    const beforeRestart = await callTool(viaHttp, 'print(1)', 'python');
    assert.equal(beforeRestart.status, 200, beforeRestart.raw.text);
    assert.deepEqual(beforeRestart.payload.stdout, ['1\n']);
    assert.equal(await stop(first), 0);

    second = await start({ port: first.port, args: ['--session-secret-file', secretPath] });
    assert.deepEqual(readFileSync(secretPath), secret, 'the secret file is read, not replaced');
    assert.doesNotMatch(second.output().err, /created the session secret file/);

    const r = await callTool(viaHttp, 'print(1)', 'python');
    assert.equal(r.status, 200, r.raw.text);
    assert.equal(r.isError, false);
    assert.deepEqual(r.payload.stdout, ['1\n']);
    assert.match(second.output().err, new RegExp(`session ${viaHttp.sessionId} revived on callTool \\(unknown to this process`));
    assert.deepEqual(await sessionStatus(second, viaHttp.sessionId), { status: 200, code: 'ok', state: 'RUNNING' });
  });

  test('a descriptor from before a restart opens the WebSocket (browser subprotocol form) and streams a run', async () => {
    const ws = await openWs(viaWs, { headers: {}, protocols: ['codepane.v1', `codepane.token.${viaWs.token}`] });
    try {
      const run = await streamRun(ws, 'print(1)', 'python').done;
      assert.equal(run.failure, null);
      assert.equal(run.end.status, 'finished');
      assert.deepEqual(run.stdout, ['1\n']);
    } finally {
      ws.close();
    }
    assert.match(second.output().err, new RegExp(`session ${viaWs.sessionId} revived on the WebSocket`));
  });

  test('the control API does not revive: an old id stays not found there until a descriptor comes back', async () => {
    assert.deepEqual(await sessionStatus(second, untouched.sessionId), { status: 404, code: NOT_FOUND, state: null });
    const g = await post(`${second.base}/mcp/getSession`, { sessionId: untouched.sessionId });
    assert.equal(g.status, 404);
    assert.equal(g.json.message, `session ${untouched.sessionId} not found`);
  });

  test('another session\'s token, a wrong token or none is refused as an unknown session', async () => {
    const id = untouched.sessionId;
    await assertRefused(descriptor(second, id, other.token));
    await assertRefused(descriptor(second, id, `t-${'0'.repeat(32)}`));
    await assertRefused(descriptor(second, id, untouched.token.slice(0, -1))); // one digit short
    // No token at all, neither header nor body.
    const r = await post(`${second.base}/link/${id}/callTool`, { args: { code: 'print(1)', language: 'python' } });
    assert.equal(r.status, 404);
    assert.equal(r.json.message, `session ${id} not found`);
    assert.deepEqual(await wsAttempt(descriptor(second, id, '').wsUrl), { status: 404, body: 'session not found\n' });
    // None of that revived it; its own token still does (here in the body only).
    assert.deepEqual(await sessionStatus(second, id), { status: 404, code: NOT_FOUND, state: null });
    const own = await post(`${second.base}/link/${id}/callTool`, {
      args: { code: 'print(2)', language: 'python' }, tool: 'run_code', token: untouched.token,
    });
    assert.equal(own.status, 200, own.text);
    assert.deepEqual(JSON.parse(JSON.parse(own.json.data).result.content[0].text).stdout, ['2\n']);
  });

  test('a released session is refused on callTool and the WebSocket for the rest of the process', async () => {
    const fresh = await createSession(second);
    for (const s of [fresh, viaHttp]) { // one minted by this process, one revived by it
      const rel = await post(`${second.base}/mcp/releaseSessionAsync`, { sessionId: s.sessionId });
      assert.equal(rel.status, 200, rel.text);
      await assertRefused(s, 'has been released');
      assert.deepEqual(await sessionStatus(second, s.sessionId), { status: 200, code: 'ok', state: 'FINISH' });
    }
    // Released before this process knew it: still refused afterwards.
    const rel = await post(`${second.base}/mcp/releaseSessionAsync`, { sessionId: other.sessionId });
    assert.equal(rel.status, 404);
    assert.equal(rel.json.message, `session ${other.sessionId} not found`);
    await assertRefused(descriptor(second, other.sessionId, other.token));
    await stop(second);
  });
});

describe('revival and --max-sessions', () => {
  test('a revival that finds no room gets createSession\'s refusal, on callTool and the WebSocket', async () => {
    const secretPath = join(dir, 'limit.secret');
    const args = ['--session-secret-file', secretPath, '--max-sessions', '1'];
    const first = await start({ args });
    const old = await createSession(first);
    assert.equal(await stop(first), 0);
    const second = await start({ port: first.port, args });
    await createSession(second); // the one session there is room for
    const refusal = 'session limit reached: 1 sessions are open (--max-sessions); release one or wait for an idle one to expire';
    const full = await post(`${second.base}/mcp/createSession`, {});
    assert.equal(full.status, 503);
    assert.equal(full.json.code, 'SessionLimitExceeded');
    assert.equal(full.json.message, refusal);
    const r = await callTool(old, 'print(1)', 'python');
    assert.equal(r.status, 503, r.raw.text);
    assert.equal(r.raw.json.code, 'SessionLimitExceeded');
    assert.equal(r.raw.json.message, refusal);
    assert.deepEqual(await wsAttempt(old.wsUrl, { headers: { 'X-Access-Token': old.token } }), { status: 503, body: `${refusal}\n` });
    await stop(second);
  });
});

describe('without --session-secret-file', () => {
  test('a restart invalidates every descriptor', async () => {
    const first = await start();
    const s = await createSession(first);
    const r = await callTool(s, 'print(1)', 'python');
    assert.deepEqual(r.payload.stdout, ['1\n']);
    assert.equal(await stop(first), 0);
    const second = await start({ port: first.port });
    await assertRefused(s);
    assert.doesNotMatch(second.output().err, /revived/);
    await stop(second);
  });

  test('a session that expired by idle time is revived by its descriptor, its execution count carrying on', async () => {
    const server = await start({ args: ['--session-idle', '1'] });
    const s = await createSession(server);
    const r1 = await callTool(s, 'print(1)', 'python');
    assert.equal(r1.payload.execution_count, 1);
    // Idle 1 s, reaped within the next 1 s tick. Asking for the status of a live session
    // touches it, so look only after a pause longer than both.
    let state;
    for (let i = 0; i < 4 && state !== 'FINISH'; i++) {
      await new Promise((r) => setTimeout(r, 2500));
      state = (await sessionStatus(server, s.sessionId)).state;
    }
    assert.equal(state, 'FINISH');
    const r2 = await callTool(s, 'print(2)', 'python');
    assert.equal(r2.status, 200, r2.raw.text);
    assert.deepEqual(r2.payload.stdout, ['2\n']);
    assert.equal(r2.payload.execution_count, 2);
    assert.match(server.output().err, new RegExp(`session ${s.sessionId} revived on callTool \\(it had expired\\)`));
    await stop(server);
  });
});

describe('a secret file that is not fit is a refusal to start', () => {
  test('readable by group or others', async () => {
    const path = join(dir, 'open.secret');
    writeFileSync(path, Buffer.alloc(SECRET_BYTES, 7));
    chmodSync(path, 0o644);
    await assert.rejects(start({ args: ['--session-secret-file', path] }),
      (e) => e.message.includes(`--session-secret-file: permissions 0644 for ${path} are too open`));
  });

  test('shorter than 32 bytes', async () => {
    const path = join(dir, 'short.secret');
    writeFileSync(path, Buffer.alloc(SECRET_BYTES - 1, 7), { mode: 0o600 });
    await assert.rejects(start({ args: ['--session-secret-file', path] }),
      (e) => e.message.includes(`--session-secret-file: ${path} holds 31 bytes; a session secret needs at least 32`));
  });

  test('not creatable', async () => {
    const path = join(dir, 'no-such-dir', 'session.secret');
    await assert.rejects(start({ args: ['--session-secret-file', path] }),
      (e) => e.message.includes(`--session-secret-file: cannot create ${path}: No such file or directory`));
  });
});

test('no sandbox process is left', async () => {
  for (const server of running) await stop(server);
  await expectNoSandboxProcesses(2000, UID_BASE);
});
