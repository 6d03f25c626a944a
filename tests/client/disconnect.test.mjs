// The session WebSocket losing its server (spec §6.8): codepane-server stopped in the
// middle of a streaming run, restarted on the same port with the same
// --session-secret-file (so it accepts the old session's token), and down for good. The
// client runs in a child process (driver.mjs): an uncaught exception there is recorded and
// asserted on instead of killing the test runner.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, test } from 'node:test';

import { spawnDriver } from './driver.mjs';
import { expectNoSandboxProcesses, INVOCATION_ID, startServer, until, within } from './helpers.mjs';

const UID_BASE = 64192;
// Prints every 0.2 s for 30 s.
const TICKER = "import time\nfor i in range(150):\n    print('tick', i, flush=True)\n    time.sleep(0.2)";
// A failure of the stream, as onError receives it, by the errorMessage's prefix: a socket
// lost after it opened, or one that never opened (spec §6.1, §6.8, §6.13).
const FAILURE_NAME = [['connection closed', 'WsConnectionClosedError'], ['WS connection failed', 'WsHandshakeRejectedError']];
function assertStreamFailure(run, r, prefixes) {
  assert.equal(run.rejected, null, 'the run\'s promise rejected');
  assert.equal(r.success, false);
  const [, name] = FAILURE_NAME.find(([p]) => prefixes.includes(p) && r.errorMessage.startsWith(p)) ?? [];
  assert.ok(name, `errorMessage ${JSON.stringify(r.errorMessage)} starts with none of ${JSON.stringify(prefixes)}`);
  assert.equal(r.requestId, '');
  assert.equal(r.executionTime, 0);
  assert.deepEqual(run.errors, [{ isError: true, name, message: r.errorMessage }]);
}

let dir, args;
const servers = new Set(), drivers = new Set();

async function server(opts = {}) {
  const s = await startServer({ uidBase: UID_BASE, args, ...opts });
  servers.add(s);
  return s;
}
function driver() {
  const d = spawnDriver();
  drivers.add(d);
  return d;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'codepane-disconnect-'));
  args = ['--session-secret-file', join(dir, 'secret')];
});
afterEach(async () => {
  for (const d of drivers) { await d.close().catch(() => {}); await d.stop(); }
  drivers.clear();
  for (const s of servers) await s.stop();
  servers.clear();
  await expectNoSandboxProcesses(3000, UID_BASE);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Start the ticker on `d`'s session, wait for its first chunk, stop `srv`: the run's
 * outcome and how long after the stop began it settled. */
async function stopMidRun(d, srv) {
  const run = d.run(TICKER, 'python', 60);
  await run.started;
  await within(until(() => run.stdout.length > 0, 15000, 'the first chunk'), 16000);
  const t0 = performance.now();
  const stopped = srv.stop();
  const result = await within(run.result, 2000, 'the run after its server stopped');
  const ms = run.settledAt - t0;
  await stopped;
  return { run, result, ms };
}

function assertClosedMidRun({ run, result, ms }) {
  assert.ok(ms < 2000, `settled ${ms.toFixed(0)} ms after the stop`);
  assert.equal(run.rejected, null, 'the run\'s promise rejected');
  assert.equal(result.success, false);
  assert.ok(result.errorMessage.startsWith('connection closed'), `errorMessage ${JSON.stringify(result.errorMessage)}`);
  assert.equal(result.requestId, '');
  assert.equal(result.executionTime, 0);
  // The chunks received so far are kept, and they are exactly those delivered.
  assert.ok(result.logs.stdout.length >= 1);
  assert.deepEqual(result.logs.stdout, run.stdout);
  assert.match(result.logs.stdout.join(''), /^(tick \d+\n)+$/);
  assert.equal(result.logs.stdout.join('').split('\n')[0], 'tick 0');
  assert.deepEqual(run.errors, [{ isError: true, name: 'WsConnectionClosedError', message: result.errorMessage }]);
}

test('server stopped mid-run: the run settles within 2 s as "connection closed…", keeping its chunks', async () => {
  const srv = await server();
  const d = driver();
  await d.connect({ server: srv.base });
  const outcome = await stopMidRun(d, srv);
  assertClosedMidRun(outcome);
  // The stopped server took its sandboxes with it.
  await expectNoSandboxProcesses(2000, UID_BASE);
});

test('server restarted on the same port with the same secret: the next streaming run on the Session succeeds', async () => {
  const first = await server();
  const d = driver();
  await d.connect({ server: first.base });
  const warm = d.run("print('warm')", 'python', 60);
  assert.equal((await within(warm.result, 10000)).success, true);
  assertClosedMidRun(await stopMidRun(d, first));
  servers.delete(first);
  // Lost after being open: reconnecting in the background (spec §6.8).
  assert.ok(['reconnecting', 'connecting'].includes(await d.state()), `streamState ${await d.state()}`);

  await server({ port: first.port });
  // The next run on the same Session: the client reconnects by itself.
  const next = d.run("print('again')", 'python', 60);
  const r = await within(next.result, 10000, 'the run after the restart');
  assert.equal(next.rejected, null);
  assert.equal(r.success, true, r.errorMessage);
  assert.deepEqual(r.logs.stdout, ['again\n']);
  assert.match(r.requestId, INVOCATION_ID);
  assert.equal(await d.state(), 'open');
  assert.deepEqual(d.uncaught, [], 'uncaught exceptions in the client');
});

test('server down for good: streaming runs fail cleanly within 3 s and never reject', async () => {
  const srv = await server();
  const d = driver();
  await d.connect({ server: srv.base });
  const warm = d.run("print('warm')", 'python', 60);
  assert.equal((await within(warm.result, 10000)).success, true);
  await srv.stop();
  servers.delete(srv);

  for (let k = 0; k < 3; k++) {
    const t0 = performance.now();
    const run = d.run("print('unreachable')", 'python', 60);
    const r = await within(run.result, 3000, `run ${k} while the server is down`);
    assert.ok(run.settledAt - t0 < 3000);
    assertStreamFailure(run, r, ['WS connection failed', 'connection closed']);
    assert.deepEqual(r.logs, { stdout: [], stderr: [] });
    await new Promise((resolve) => setTimeout(resolve, 700)); // let a background reconnect try too
  }
  assert.deepEqual(d.uncaught, [], 'uncaught exceptions in the client');
});

test('never reachable: the first streaming run of a session whose server is gone fails cleanly', async () => {
  const srv = await server();
  const d = driver();
  await d.connect({ server: srv.base }); // created, but no socket opened yet
  await srv.stop();
  servers.delete(srv);
  const t0 = performance.now();
  const run = d.run("print('x')", 'python', 60);
  const r = await within(run.result, 3000, 'the run');
  assert.ok(run.settledAt - t0 < 3000);
  assertStreamFailure(run, r, ['WS connection failed']);
  assert.equal(await d.state(), 'idle'); // a first connect is not retried in the background (spec §6.1)
  assert.deepEqual(d.uncaught, [], 'uncaught exceptions in the client');
});

test('a refused handshake (HTTP 404: unknown session) fails the run cleanly', async () => {
  const srv = await server();
  const d = driver();
  const wsUrl = `ws://127.0.0.1:${srv.port}/ws/s-doesnotexist`;
  await d.connect({ wsUrl, token: 't-nope', toolList: '[{"name":"run_code","server":"wuying_codespace"}]' });
  const run = d.run("print('x')", 'python', 60);
  const r = await within(run.result, 3000, 'the run');
  assertStreamFailure(run, r, ['WS connection failed']);
  assert.deepEqual(d.uncaught, [], 'uncaught exceptions in the client');
});

test('a failed handshake\'s errorMessage does not reveal the session token (wsAuth "query")', async () => {
  const srv = await server();
  const d = driver();
  const token = 't-0123456789abcdef-secret';
  await d.connect({ wsUrl: `ws://127.0.0.1:${srv.port}/ws/s-doesnotexist`, token, wsAuth: 'query' });
  const run = d.run("print('x')", 'python', 60);
  const r = await within(run.result, 3000, 'the run');
  assertStreamFailure(run, r, ['WS connection failed']);
  // The SDKs scrub token= from a wsUrl before showing it (spec §6.1).
  assert.equal(r.errorMessage,
    `WS connection failed: ws://127.0.0.1:${srv.port}/ws/s-doesnotexist could not be opened (code=1006)`);
  assert.equal(run.errors[0].message, r.errorMessage);
});
