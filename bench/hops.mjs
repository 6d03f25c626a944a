// bench/hops.mjs: where the time of one warm print('x') goes, hop by hop. Two profiles
// for bench/run.mjs:
//
//   clientHops   the package's Node client, with npm ws's WebSocket.prototype.send and
//                .emit('message') wrapped for the duration: code.run() called → frame
//                handed to ws.send → stdout frame's 'message' event → onStdout called.
//   serverHops   codepane-server and the session's kernel under strace (-f -ttt, only
//                read/write/recvfrom/sendmsg): client ws.send → the server's WebSocket
//                thread reads the frame → the runner writes the exec request to the
//                kernel → the kernel reads it → the kernel writes the stream event → the
//                kernel writes `done` → the server sends the stdout frame → the client's
//                'message' event. strace stops the traced threads at every one of those
//                calls, so every hop is inflated (the totals are given next to the
//                untraced ones); read it for where the time goes, not for how much.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import WebSocket from 'ws';
import { sleep, stats } from './common.mjs';

const epoch = () => performance.timeOrigin + performance.now();

/** `run()` must make one streaming print('x') through the Node client and return
 * { t0, first } (performance.now() of the call and ms to the first onStdout). */
export async function clientHops(run, runs) {
  const sends = [], msgs = [];
  const send = WebSocket.prototype.send, emit = WebSocket.prototype.emit;
  WebSocket.prototype.send = function (...a) { sends.push(performance.now()); return send.apply(this, a); };
  WebSocket.prototype.emit = function (ev, ...a) {
    if (ev === 'message') msgs.push(performance.now());
    return emit.call(this, ev, ...a);
  };
  const call = [], wire = [], deliver = [], total = [];
  try {
    for (let i = 0; i < runs; i++) {
      await sleep(5);
      sends.length = 0;
      msgs.length = 0;
      const r = await run();
      const firstAt = r.t0 + r.first;
      const msg = msgs.find((t) => t <= firstAt + 1e-6 && t >= sends[0]);
      if (sends[0] === undefined || msg === undefined) continue;
      call.push(sends[0] - r.t0);
      wire.push(msg - sends[0]);
      deliver.push(firstAt - msg);
      total.push(r.first);
    }
  } finally {
    WebSocket.prototype.send = send;
    WebSocket.prototype.emit = emit;
  }
  return { call: stats(call), wire: stats(wire), deliver: stats(deliver), total: stats(total) };
}

function tids(pid) {
  try { return readdirSync(`/proc/${pid}/task`).map(Number); } catch { return []; }
}

/** One strace line: tid, epoch seconds, the rest. */
function parseLine(line) {
  const m = /^(\d+)\s+(\d+\.\d+)\s+(.*)$/.exec(line);
  return m ? { tid: Number(m[1]), t: Number(m[2]) * 1000, rest: m[3] } : null;
}

/**
 * `run()` sends one raw-ws print('x') and returns { sent, first } as epoch ms (send, first
 * stdout frame received). `serverPid`, `kernelPid`: the codepane-server and the session's
 * python kernel. Returns per hop stats (ms) and the untraced-looking totals, or throws
 * when strace is missing.
 */
export async function serverHops({ run, serverPid, kernelPid, runs, children }) {
  const file = `${os.tmpdir()}/codepane-bench-strace-${process.pid}.txt`;
  const kernelTids = new Set(tids(kernelPid));
  const st = spawn('strace', ['-f', '-ttt', '-s', '200', '-o', file,
    '-e', 'trace=read,write,recvfrom,sendmsg,sendto,writev',
    '-p', String(serverPid), '-p', String(kernelPid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(st);
  let err = '';
  st.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((r) => st.once('exit', r));
  try {
    // strace attaches to every thread of the server (civetweb's worker pool): wait for it.
    for (let i = 0; i < 100 && !/attached/.test(err); i++) await sleep(50);
    await sleep(1500);
    if (st.exitCode !== null) throw new Error(`strace exited: ${err.slice(0, 300)}`);
    const samples = [];
    for (let i = 0; i < runs + 2; i++) {
      await sleep(30);
      const r = await run();
      if (i >= 2) samples.push(r);
    }
    st.kill('SIGINT');
    await exited;
    children.delete(st);
    const lines = readFileSync(file, 'utf8').split('\n').map(parseLine).filter(Boolean);
    const hops = { recv: [], toKernel: [], pipe: [], exec: [], hold: [], back: [], total: [], doneAfterStream: [] };
    let afterDone = 0; // runs whose stdout frame left the server after the kernel wrote `done`
    for (const s of samples) {
      const win = lines.filter((l) => l.t >= s.sent - 0.05 && l.t <= s.first + 0.5);
      const srv = win.filter((l) => !kernelTids.has(l.tid));
      const ker = win.filter((l) => kernelTids.has(l.tid));
      const recv = srv.find((l) => /recvfrom\(\d+, .*\) = [1-9]/.test(l.rest));
      const req = srv.find((l) => l.t >= (recv?.t ?? Infinity) && /write\(\d+, "\{\\"op\\":\\"exec\\"/.test(l.rest));
      const kread = ker.find((l) => /\{\\"op\\":\\"exec\\"/.test(l.rest) && /read/.test(l.rest) && !/unfinished/.test(l.rest));
      const kstream = ker.find((l) => /write\(4, "\{\\"type\\":\\"stream\\"/.test(l.rest));
      const kdone = ker.find((l) => /write\(4, "\{\\"type\\":\\"done\\"/.test(l.rest));
      const out = srv.find((l) => l.t >= (kstream?.t ?? Infinity) && /(sendmsg|sendto|writev|write)\(\d+, .*eventType\\":\\"stdout/.test(l.rest));
      if (!recv || !req || !kread || !kstream || !out) continue;
      hops.recv.push(recv.t - s.sent);
      hops.toKernel.push(req.t - recv.t);
      hops.pipe.push(kread.t - req.t);
      hops.exec.push(kstream.t - kread.t);
      hops.hold.push(out.t - kstream.t);
      hops.back.push(s.first - out.t);
      hops.total.push(s.first - s.sent);
      if (kdone) hops.doneAfterStream.push(kdone.t - kstream.t);
      if (kdone && out.t > kdone.t) afterDone++;
    }
    const out = Object.fromEntries(Object.entries(hops).map(([k, v]) => [k, stats(v)]));
    out.matched = hops.total.length;
    out.afterDone = afterDone;
    out.runs = samples.length;
    return out;
  } finally {
    if (st.exitCode === null && st.signalCode === null) { try { st.kill('SIGKILL'); } catch { /* gone */ } await exited; }
    children.delete(st);
    rmSync(file, { force: true });
  }
}

export { epoch };
