// Load check (issue 3): 200 runs from 20 concurrent sessions, each on its own socket,
// several in flight per socket. Every run's output must reach its own invocation: none
// lost, none mixed, none duplicated.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { createSession, expectNoSandboxProcesses, health, openWs, startServer, streamRun } from './harness.mjs';

const SESSIONS = 20;
const RUNS_PER_SESSION = 10;
let server;

before(async () => { server = await startServer({ args: ['--max-queue', '256'] }); });
after(async () => { await server?.stop(); });

test('200 runs from 20 sessions: every output delivered to the right invocation', async () => {
  const sessions = await Promise.all(Array.from({ length: SESSIONS }, () => createSession(server)));
  const sockets = await Promise.all(sessions.map((s) => openWs(s)));
  const runs = [];
  sockets.forEach((ws, si) => {
    for (let k = 0; k < RUNS_PER_SESSION; k++) {
      const tag = `s${si}r${k}`;
      const code = `for i in range(3):\n    print('${tag}', i, flush=True)\n`;
      runs.push({ tag, run: streamRun(ws, code, 'python') });
    }
  });
  const results = await Promise.all(runs.map(({ run }) => run.done));
  let delivered = 0;
  results.forEach((r, i) => {
    const { tag } = runs[i];
    assert.equal(r.end?.status, 'finished', `${tag}: ${JSON.stringify(r.failure ?? r.end)}`);
    assert.equal(r.stdout.join(''), `${tag} 0\n${tag} 1\n${tag} 2\n`, tag);
    assert.equal(r.frames.filter((f) => f.data.phase === 'end').length, 1, tag);
    delivered++;
  });
  assert.equal(delivered, SESSIONS * RUNS_PER_SESSION);
  sockets.forEach((ws) => ws.close());
  await expectNoSandboxProcesses();
  const h = await health(server);
  assert.equal(h.body.running, 0);
  assert.equal(h.body.queued, 0);
});
