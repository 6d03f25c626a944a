// bench/report.mjs: turns the samples bench/run.mjs collected into docs/benchmarks.md and
// into the summary bench/chart.py draws. Every figure is a median with its min and max
// over the samples; ratios are codepane over the peer (for times lower is better, for
// rates higher). Missing workloads (a failure, --no-browser) show as n/a.
import { stats } from './common.mjs';

const J = 'jupyter';
const JN = 'jupyter+nodelay';
const JNL = 'jupyter+nodelay, no rate limit';

const fx = (x, d) => {
  if (x === null || x === undefined || !Number.isFinite(x)) return 'n/a';
  return x.toFixed(d ?? (Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2));
};
const cell = (st, d, unit = '') => (st ? `${fx(st.median, d)}${unit} (${fx(st.min, d)}–${fx(st.max, d)})` : 'n/a');
const ratio = (a, b) => (a && b && Number.isFinite(a / b) ? a / b : null);
const rx = (r) => (r === null ? 'n/a' : `${r >= 10 ? r.toFixed(1) : r >= 0.1 ? r.toFixed(2) : r.toFixed(3)}×`);
const MB = 1e6;
const MiB = 2 ** 20;
const verdict = (ok) => (ok === null || ok === undefined ? 'n/a' : ok ? '**met**' : '**missed**');

/** Medians and ranges of everything, in one object: the report reads it and so does
 * bench/chart.py (written into the JSON as `summary`). */
export function summarize(R) {
  const S = {};
  const st = (xs) => (xs ? stats(xs) : null);
  const w = R.warm ?? {};
  S.floor = { ws: st(R.floor?.ws?.samples), wsInterleaved: st(R.warm?.floor), bwrap: st(R.floor?.spawn?.bwrap), bwrapExit: st(R.floor?.spawn?.bwrapExit),
    python: st(R.floor?.spawn?.bare) };
  // The floor the targets use: taken in turn with the warm runs, else the one on its own.
  S.floor.warm = S.floor.wsInterleaved ?? S.floor.ws;
  const pipe = R.floor?.pipe ?? [];
  S.floor.pipeLast = st(pipe.map((p) => p.last));
  S.floor.pipeLoop = st(pipe.map((p) => Number(/loop_ms ([\d.]+)/.exec(p.stderr)?.[1])));
  S.floor.pipeMBps = st(pipe.map((p) => p.bytes / MB / ((p.last - p.first) / 1000)));
  const b = (k) => R.browser?.[k];
  S.warm = {
    clientPy: st(w.clientPy?.first), rawPy: st(w.rawPy?.first), clientJs: st(w.clientJs?.first), rawJs: st(w.rawJs?.first),
    [J]: st(w[J]?.first), [JN]: st(w[JN]?.first),
    pacedJ: st(w[`${J}:paced`]?.first), pacedJN: st(w[`${JN}:paced`]?.first), pacedRaw: st(w['rawPy:paced']?.first),
    clientPyEnd: st(w.clientPy?.end), rawPyEnd: st(w.rawPy?.end), jEnd: st(w[J]?.end), jnEnd: st(w[JN]?.end),
    browserPy: st(b(JN)?.codepane?.python ?? b(J)?.codepane?.python),
    browserJs: st(b(JN)?.codepane?.javascript ?? b(J)?.codepane?.javascript),
    browserJN: st(b(JN)?.jupyter?.python), browserJ: st(b(J)?.jupyter?.python),
  };
  const rps = (k) => (R.rps?.[k] ? { ...stats(R.rps[k].samples), cpu: R.rps[k].cpu ?? null } : null);
  S.rps = { client: { 1: rps('client1') }, codepane: {}, [JN]: {}, [J]: {} };
  for (const n of [1, ...(R.options?.parallel ?? [4, 16])]) {
    S.rps.codepane[n] = rps(`raw${n}`);
    S.rps[JN][n] = rps(`${JN}:${n}`);
    S.rps[J][n] = rps(`${J}:${n}`);
  }
  const c = R.cold ?? {};
  const cold = (x) => (x ? { total: st(x.total), create: st(x.create), open: st(x.open), run: st(x.run) } : null);
  S.cold = { client: cold(c.client), raw: cold(c.raw), rawNoPool: cold(c.rawNoPool), [JN]: cold(c[JN]), [J]: cold(c[J]) };
  const big = (xs) => (xs ? {
    n: xs.length, whole: xs.every((x) => x.whole), bytes: st(xs.map((x) => x.bytes)), mbps: st(xs.map((x) => x.mbps)),
    first: st(xs.map((x) => x.first)), gap: st(xs.map((x) => x.gap)), last: st(xs.map((x) => x.last)),
    end: st(xs.map((x) => x.end)), chunks: st(xs.map((x) => x.chunks)), rateLimited: xs.some((x) => x.rateLimited),
  } : null);
  S.big = { raw: big(R.big?.raw), client: big(R.big?.client), [J]: big(R.big?.[J]), [JN]: big(R.big?.[JN]), [JNL]: big(R.big?.[JNL]) };
  const plot = (x) => (x ? { png: st(x.png), end: st(x.end), pngBytes: x.pngBytes } : null);
  S.plot = { raw: plot(R.plot?.raw), client: plot(R.plot?.client), [JN]: plot(R.plot?.[JN]), [J]: plot(R.plot?.[J]) };
  S.live = { raw: st(R.live?.raw?.first), [JN]: st(R.live?.[JN]?.first), [J]: st(R.live?.[J]?.first) };
  S.memory = R.memory ? {
    codepane: { rss: R.memory.codepane.rss, pss: R.memory.codepane.pss, anon: R.memory.codepane.anon },
    jupyter: { rss: R.memory.jupyter.rss, pss: R.memory.jupyter.pss, anon: R.memory.jupyter.anon },
  } : null;
  const wt = R.weight;
  S.weight = wt ? {
    codepane: wt.codepane?.gzip ?? null,
    e2b: wt.e2b?.gzipExternalNode ?? null,
    e2bVersion: wt.e2b?.version ?? null,
    bundlesWithoutExternals: wt.e2b?.bundlesWithoutExternals ?? null,
    e2bError: wt.e2b?.errorSummary ?? null,
    files: wt.codepane?.files ?? null,
  } : null;
  return S;
}

/** The targets of issue 7, each with its measured value and whether it is met. */
function targets(S) {
  const T = [];
  const fl = S.floor.warm?.median;
  const jn = S.warm[JN]?.median;
  for (const [label, v] of [['Node client', S.warm.clientPy], ['raw WebSocket', S.warm.rawPy], ['Chromium (WASM client)', S.warm.browserPy]]) {
    const peer = label.startsWith('Chromium') ? S.warm.browserJN?.median : jn;
    const r = ratio(v?.median, peer);
    T.push({
      what: `warm python first output ≤ 0.6 × Jupyter+nodelay (${label})`, value: `${fx(v?.median)} ms vs ${fx(peer)} ms = ${rx(r)}`,
      ok: r === null ? null : r <= 0.6, by: r !== null && r > 0.6 ? `${fx(v.median - 0.6 * peer)} ms over 0.6 × the peer` : '',
    });
    if (label.startsWith('Chromium')) continue;
    const over = v && fl !== undefined ? v.median - fl : null;
    T.push({
      what: `warm python first output within 1 ms of the WebSocket floor (${label})`,
      value: `${fx(v?.median)} ms − ${fx(fl, 3)} ms = ${fx(over)} ms`,
      ok: over === null ? null : over <= 1, by: over !== null && over > 1 ? `${fx(over - 1)} ms too slow` : '',
    });
  }
  const r1 = ratio(S.rps.codepane[1]?.median, S.rps[JN][1]?.median);
  T.push({
    what: 'serial runs per second ≥ 2.5 × Jupyter+nodelay', value: `${fx(S.rps.codepane[1]?.median, 0)} vs ${fx(S.rps[JN][1]?.median, 0)} runs/s = ${rx(r1)}`,
    ok: r1 === null ? null : r1 >= 2.5, by: r1 !== null && r1 < 2.5 ? `${fx(2.5 - r1)}× short` : '',
  });
  for (const n of Object.keys(S.rps.codepane).filter((k) => k !== '1')) {
    const sc = ratio(S.rps.codepane[n]?.median, S.rps.codepane[1]?.median);
    const sj = ratio(S.rps[JN][n]?.median, S.rps[JN][1]?.median);
    T.push({
      what: `parallel scaling (${n} sessions over 1) no worse than Jupyter+nodelay's`, value: `codepane ${rx(sc)}, Jupyter ${rx(sj)}`,
      ok: sc === null || sj === null ? null : sc >= sj * 0.95, by: sc !== null && sj !== null && sc < sj * 0.95 ? `${fx(100 * (1 - sc / sj), 0)} % less` : '',
    });
  }
  const cr = ratio(S.cold.client?.total?.median, S.cold[JN]?.total?.median);
  T.push({
    what: 'cold session → first output ≤ 0.2 × Jupyter kernel start (Node client, shipped pool)',
    value: `${fx(S.cold.client?.total?.median)} ms vs ${fx(S.cold[JN]?.total?.median)} ms = ${rx(cr)}`,
    ok: cr === null ? null : cr <= 0.2, by: cr !== null && cr > 0.2 ? `${fx(cr / 0.2)}× the allowance` : '',
  });
  const crn = ratio(S.cold.rawNoPool?.total?.median, S.cold[JN]?.total?.median);
  T.push({
    what: 'the same without the pool (--kernel-pool none; not the shipped setting)',
    value: `${fx(S.cold.rawNoPool?.total?.median)} ms vs ${fx(S.cold[JN]?.total?.median)} ms = ${rx(crn)}`,
    ok: crn === null ? null : crn <= 0.2, by: crn !== null && crn > 0.2 ? `${fx(crn / 0.2)}× the allowance` : '',
  });
  for (const [label, x] of [['raw WebSocket', S.big.raw], ['Node client', S.big.client]]) {
    if (!x) { T.push({ what: `10 MB (${label})`, value: 'n/a', ok: null, by: '' }); continue; }
    T.push({ what: `10 MB delivered whole (${label})`, value: `${x.whole ? 'all' : 'not all'} ${x.n} samples whole`, ok: x.whole, by: '' });
    T.push({ what: `10 MB: first chunk ≤ 50 ms (${label})`, value: `${fx(x.first.max)} ms at worst`, ok: x.first.max <= 50, by: x.first.max > 50 ? `${fx(x.first.max - 50)} ms late` : '' });
    T.push({ what: `10 MB: no gap over 100 ms (${label})`, value: `${fx(x.gap.max)} ms largest gap`, ok: x.gap.max <= 100, by: x.gap.max > 100 ? `${fx(x.gap.max - 100)} ms over` : '' });
    T.push({
      what: `10 MB: ≥ 100 MB/s (${label})`, value: `${fx(x.mbps.median)} MB/s`, ok: x.mbps.median >= 100,
      by: x.mbps.median < 100 ? `${fx(100 / x.mbps.median, 1)}× too slow` : '',
    });
  }
  const mr = S.memory ? ratio(S.memory.codepane.rss, S.memory.jupyter.rss) : null;
  T.push({
    what: 'idle python session ≤ 0.6 × idle ipykernel (RSS)',
    value: S.memory ? `${fx(S.memory.codepane.rss / MiB, 1)} MiB vs ${fx(S.memory.jupyter.rss / MiB, 1)} MiB = ${rx(mr)}` : 'n/a',
    ok: mr === null ? null : mr <= 0.6, by: mr !== null && mr > 0.6 ? `${fx((S.memory.codepane.rss - 0.6 * S.memory.jupyter.rss) / MiB, 1)} MiB over` : '',
  });
  const wr = S.weight ? ratio(S.weight.codepane, S.weight.e2b) : null;
  T.push({
    what: 'browser client core ≤ 0.15 × the E2B SDK (gzip)',
    value: S.weight ? `${fx(S.weight.codepane / 1000, 1)} kB vs ${fx(S.weight.e2b / 1000, 1)} kB = ${rx(wr)}` : 'n/a',
    ok: wr === null ? null : wr <= 0.15, by: wr !== null && wr > 0.15 ? `${fx((S.weight.codepane - 0.15 * S.weight.e2b) / 1000, 1)} kB over` : '',
  });
  return T;
}

function machineSection(R) {
  const m = R.machine;
  const p = m.pkgs ?? {};
  const load = (l) => (l ? l.map((x) => x.toFixed(2)).join(' ') : '?');
  const busy = (m.loadStart?.[0] ?? 0) > m.cores || (m.loadEnd?.[0] ?? 0) > m.cores;
  return [
    '## Machine',
    '',
    `- ${m.cores} cores (${m.model})${m.governor ? `, governor ${m.governor}` : ''}, ${m.memGiB.toFixed(1)} GiB of memory`,
    `- ${m.kernel}; Debian ${m.debian ?? '?'}`,
    `- python3 ${p.python3 ?? '?'} (${m.python ?? '?'}), jupyter-server ${p['jupyter-server'] ?? '?'} ` +
      `(python3-jupyter-server ${p['python3-jupyter-server'] ?? '?'}), python3-ipykernel ${p['python3-ipykernel'] ?? '?'}, ` +
      `python3-tornado ${p['python3-tornado'] ?? '?'}, python3-zmq ${p['python3-zmq'] ?? '?'}, python3-matplotlib ${p['python3-matplotlib'] ?? '?'}`,
    `- node ${m.node} (nodejs ${p.nodejs ?? '?'}), chromium ${p.chromium ?? '?'}, bubblewrap ${p.bubblewrap ?? '?'}`,
    `- codepane commit ${m.commit}${m.dirty ? ' (with uncommitted changes)' : ''}`,
    `- load average (1, 5, 15 min): ${load(m.loadStart)} at the start, ${load(m.loadEnd)} at the end` +
      (busy ? ' (**the machine was busy with other work; figures are noisier than they should be**)' : ''),
    '',
  ];
}

/** The markdown report. `files` names the chart and the JSON relative to the repo. */
export function writeReport(R, files) {
  const S = R.summary ?? summarize(R);
  const T = targets(S);
  const O = R.options;
  const L = [];
  const w = S.warm;
  const par = Object.keys(S.rps.codepane).filter((k) => k !== '1');

  L.push('# Benchmarks: codepane side by side with Jupyter Server');
  L.push('');
  L.push(`Measured ${R.started} by \`npm run bench\`${O.quick ? ' --quick' : ''} in ${R.elapsedS.toFixed(0)} s ` +
    '(bench/run.mjs; every sample is in ' + `\`${files.json}\`). Each figure is the median with the min–max range ` +
    'over repeated runs, next to the peer measured in the same run on the same machine, and the ratio codepane ÷ peer ' +
    '(for times lower is better, for rates higher).');
  L.push('');
  L.push(`![codepane vs Jupyter Server](${files.png})`);
  L.push('');
  L.push(...machineSection(R));

  L.push('## What runs');
  L.push('');
  L.push(`- **codepane-server** \`${R.args.A.join(' ')}\` (uid base 64800). For the cold start without a pre-started kernel, a second one with \`${R.args.B.join(' ')}\` (uid base 64832).`);
  L.push('- **Jupyter Server** 1.23 (`python3 -m jupyter_server --allow-root --no-browser --ip=127.0.0.1`, a random port, a generated ' +
    'token, a temporary root dir, and temporary `JUPYTER_CONFIG_DIR`, `JUPYTER_DATA_DIR`, `JUPYTER_RUNTIME_DIR`, `IPYTHONDIR`, ' +
    '`MPLCONFIGDIR` and `HOME`, so nothing of a user\'s setup leaks in), kernel `python3` (ipykernel). Three instances:');
  L.push('  - **Jupyter** as shipped: Nagle\'s algorithm on for the kernel WebSockets, IOPub data rate limit 1 MB/s;');
  L.push('  - **Jupyter+nodelay**: the same plus `bench/jupyter_nodelay.py`, a **server extension** (enabled through ' +
    '`jpserver_extensions` in the private config dir) that wraps `ZMQChannelsHandler.open` to call tornado\'s ' +
    '`set_nodelay(True)`, i.e. `TCP_NODELAY` on each kernel WebSocket. The fair peer: the targets compare against it;');
  L.push('  - **Jupyter+nodelay, no rate limit**: also `--ServerApp.iopub_data_rate_limit=0`, for the 10 MB workload only.');
  L.push('- **Clients**, all in one Node process on the same machine: codepane through the package\'s Node entry ' +
    '(`dist/node.mjs`: `session.code.run(code, lang, 60, { streamBeta: true, onStdout })`, first output = the first ' +
    '`onStdout` call) and through raw `ws` frames of the AGB protocol; Jupyter through raw `ws` frames of the kernel ' +
    'WebSocket protocol (JSON messages, protocol 5.3: `execute_request` on the shell channel, first output = the first ' +
    'iopub `stream` stdout message, end = `execute_reply` and iopub `status: idle`), the least a Jupyter client can do. ' +
    'In headless Chromium (`bench/browser.mjs`): codepane\'s WASM client on its own page, and a page of Jupyter Server ' +
    'speaking the same kernel protocol. Jupyter runs as root (`--allow-root`; its kernels unsandboxed), codepane\'s ' +
    'kernels as unprivileged slot uids inside bubblewrap.');
  L.push('');

  // ---- headline table -------------------------------------------------------------------
  L.push('## Results');
  L.push('');
  L.push('| workload | codepane | Jupyter+nodelay | ratio | Jupyter as shipped | ratio |');
  L.push('|---|---|---|---|---|---|');
  const row = (what, cp, jn, j, { d } = {}) => {
    const r1 = ratio(cp?.median, jn?.median), r2 = ratio(cp?.median, j?.median);
    L.push(`| ${what} | ${cell(cp, d)} | ${cell(jn, d)} | ${rx(r1)} | ${cell(j, d)} | ${rx(r2)} |`);
  };
  row('warm first output, python, ms: Node client', w.clientPy, w[JN], w[J]);
  row('… raw WebSocket', w.rawPy, w[JN], w[J]);
  row('… headless Chromium (WASM client)', w.browserPy, w.browserJN, w.browserJ);
  L.push(`| warm first output, javascript, ms: Node client / raw / Chromium | ${cell(w.clientJs)} / ${cell(w.rawJs)} / ${cell(w.browserJs)} | (no peer) | | | |`);
  row('warm run to its end, python, ms: raw WebSocket', w.rawPyEnd, w.jnEnd, w.jEnd);
  row('warm first output, python, runs 300 ms apart, ms: raw WebSocket', w.pacedRaw, w.pacedJN, w.pacedJ);
  row('runs per second, 1 session, raw WebSocket', S.rps.codepane[1], S.rps[JN][1], S.rps[J][1], { d: 0 });
  row('… Node client', S.rps.client[1], S.rps[JN][1], S.rps[J][1], { d: 0 });
  for (const n of par) row(`runs per second, ${n} sessions (Jupyter: ${n} kernels)`, S.rps.codepane[n], S.rps[JN][n], S.rps[J][n], { d: 0 });
  row('cold: new session → first output, ms (Node client; pool of 1 python kernel)', S.cold.client?.total, S.cold[JN]?.total, S.cold[J]?.total);
  row('… raw WebSocket', S.cold.raw?.total, S.cold[JN]?.total, S.cold[J]?.total);
  row('… raw WebSocket, no pool (`--kernel-pool none`)', S.cold.rawNoPool?.total, S.cold[JN]?.total, S.cold[J]?.total);
  const bj = S.big[JNL];
  L.push(`| 10 MB stdout: MB/s (raw WebSocket) | ${cell(S.big.raw?.mbps)} | ${cell(bj?.mbps)} (no rate limit) | ${rx(ratio(S.big.raw?.mbps?.median, bj?.mbps?.median))} | ${cell(S.big[J]?.mbps)} (rate limit) | |`);
  L.push(`| … bytes delivered | ${cell(S.big.raw?.bytes, 0)} | ${cell(bj?.bytes, 0)} | | ${cell(S.big[J]?.bytes, 0)} | |`);
  L.push(`| … first chunk, ms | ${cell(S.big.raw?.first)} | ${cell(bj?.first)} | ${rx(ratio(S.big.raw?.first?.median, bj?.first?.median))} | ${cell(S.big[J]?.first)} | |`);
  L.push(`| … largest gap between chunks, ms | ${cell(S.big.raw?.gap)} | ${cell(bj?.gap)} (${fx(bj?.chunks?.median, 0)} chunk(s)) | | ${cell(S.big[J]?.gap)} | |`);
  L.push(`| … MB/s through the Node client | ${cell(S.big.client?.mbps)} | | ${rx(ratio(S.big.client?.mbps?.median, bj?.mbps?.median))} | | |`);
  row('matplotlib figure → PNG result, warm, ms (raw WebSocket)', S.plot.raw?.png, S.plot[JN]?.png, S.plot[J]?.png);
  row('… Node client', S.plot.client?.png, S.plot[JN]?.png, S.plot[J]?.png);
  row('first output of a cell that goes on running (`print` then `sleep(0.3)`), ms', S.live.raw, S.live[JN], S.live[J]);
  if (S.memory) {
    L.push(`| idle python session, RSS MiB (codepane: kernel + its sandbox; Jupyter: the ipykernel) | ${fx(S.memory.codepane.rss / MiB, 1)} | ${fx(S.memory.jupyter.rss / MiB, 1)} | ${rx(ratio(S.memory.codepane.rss, S.memory.jupyter.rss))} | (same) | |`);
    L.push(`| … PSS MiB | ${fx(S.memory.codepane.pss / MiB, 1)} | ${fx(S.memory.jupyter.pss / MiB, 1)} | ${rx(ratio(S.memory.codepane.pss, S.memory.jupyter.pss))} | | |`);
  }
  if (S.weight) {
    L.push(`| client weight, gzip -9, kB (codepane: codepane.mjs + core.wasm; E2B: @e2b/code-interpreter ${S.weight.e2bVersion ?? ''} bundled by esbuild, Node built-ins external) | ${fx(S.weight.codepane / 1000, 1)} | ${fx(S.weight.e2b / 1000, 1)} (E2B) | ${rx(ratio(S.weight.codepane, S.weight.e2b))} | | |`);
  }
  L.push('');
  const fl = S.floor;
  L.push(`**Floors**, same run: a loopback WebSocket echo round trip (npm \`ws\`, echo server in another Node process, ` +
    `${R.floor?.ws?.bytes ?? '?'}-byte text frame): ${cell(fl.wsInterleaved, 3)} ms taken in turn with the warm runs ` +
    `(the floor the targets use), ${cell(fl.ws, 3)} ms on its own before the workloads. A bare \`bwrap --ro-bind / / --dev /dev --proc /proc ` +
    `--unshare-all --die-with-parent python3 -c 'print(1)'\`: ${cell(fl.bwrap)} ms to its output (${cell(fl.bwrapExit)} ms to its ` +
    `exit); the same python3 without bwrap ${cell(fl.python)} ms. The 10 MB loop in a plain \`python3\` writing to a pipe: ` +
    `${cell(fl.pipeLoop)} ms inside the loop, ${cell(fl.pipeMBps)} MB/s through the pipe.`);
  L.push('');
  L.push('Samples: warm ' + `${O.runs} rounds after a warm-up run of each, every round one echo round trip and one run of ` +
    `codepane (Node client, raw) and Jupyter+nodelay in turn, ${O.gapMs} ms apart; Jupyter as shipped on its own, ` +
    `${O.runs} runs back to back (${O.gapMs} ms apart); paced: ${O.paced} runs 300 ms apart (Chromium: ${O.browserRuns} ` +
    'runs per side, 10 ms apart); runs per second: ' +
    `${O.windows} windows of ${O.windowS} s, each session running \`print('x')\` back to back; cold: ${O.cold} new sessions ` +
    `(Jupyter: kernels); 10 MB: ${O.big} runs of \`for i in range(100000): print('x' * 99)\` after a warm-up run, ` +
    `MB/s = 10^6 bytes ÷ (request sent → last chunk); plot: ${O.plot} runs of a 4×3 in figure, each side's inline backend ` +
    `(PNG of ${S.plot.raw?.pngBytes ?? '?'} bytes from codepane, ${S.plot[JN]?.pngBytes ?? '?'} from Jupyter); a cell that ` +
    `keeps running: ${O.plot} runs of \`print('x')\` then \`time.sleep(0.3)\`.`);
  L.push('');

  // ---- targets ----------------------------------------------------------------------------
  L.push('## Targets (issue 7)');
  L.push('');
  L.push('| target | measured | verdict | by how much |');
  L.push('|---|---|---|---|');
  for (const t of T) L.push(`| ${t.what} | ${t.value} | ${verdict(t.ok)} | ${t.by} |`);
  L.push('');

  // ---- profiles ---------------------------------------------------------------------------
  L.push('## Where the time goes');
  L.push('');
  const hc = R.hops?.client, hs = R.hops?.server;
  L.push('### Warm first output, hop by hop');
  L.push('');
  if (hc) {
    L.push(`Through the Node client (ws.send and the 'message' event wrapped; ${hc.total?.n ?? 0} runs): code.run() called → ` +
      `frame handed to \`ws.send\` ${cell(hc.call, 3)} ms; → stdout frame's 'message' event ${cell(hc.wire, 3)} ms ` +
      `(the server, the kernel and two trips over loopback); → \`onStdout\` called ${cell(hc.deliver, 3)} ms ` +
      `(the WASM core decodes the frame, the callback runs from a microtask); total ${cell(hc.total, 3)} ms. ` +
      `The floor is ${fx(fl.warm?.median, 3)} ms, so the server and kernel take about ` +
      `${fx((hc.wire?.median ?? NaN) - (fl.warm?.median ?? NaN), 3)} ms of the wire time and the client ` +
      `${fx((hc.call?.median ?? NaN) + (hc.deliver?.median ?? NaN), 3)} ms.`);
    L.push('');
  }
  if (hs && hs.matched) {
    L.push(`Inside codepane-server and the kernel, under \`strace -f -ttt\` (${hs.matched} runs; strace stops each traced thread ` +
      `at every traced call, so every hop is inflated: the whole run took ${cell(hs.total)} ms traced against ` +
      `${fx(w.rawPy?.median)} ms untraced; read the split, not the sizes):`);
    L.push('');
    L.push('| hop | ms, traced |');
    L.push('|---|---|');
    L.push(`| client \`ws.send\` → the server's WebSocket thread reads the frame | ${cell(hs.recv, 3)} |`);
    L.push(`| → the runner thread writes the \`exec\` request to the kernel's pipe (eventfd hand-off between threads) | ${cell(hs.toKernel, 3)} |`);
    L.push(`| → the kernel reads it | ${cell(hs.pipe, 3)} |`);
    L.push(`| → the kernel writes the \`stream\` event (IPython compiles and runs the cell) | ${cell(hs.exec, 3)} |`);
    L.push(`| → the server sends the stdout frame | ${cell(hs.hold, 3)} |`);
    L.push(`|   (of which: stream event → the kernel's \`done\` event) | ${cell(hs.doneAfterStream, 3)} |`);
    L.push(`| → the client's 'message' event | ${cell(hs.back, 3)} |`);
    L.push('');
    L.push(`In ${hs.afterDone ?? '?'} of ${hs.matched} runs the stdout frame left the server after the kernel had written \`done\`: ` +
      'the runner holds output for up to ' +
      '`CP_RUNNER_COALESCE_MS` (5 ms, src/server/runner.c) to merge bursts, and a quick cell ends first, so its ' +
      '`print` waits for IPython\'s post-cell work, the sync markers on fd 1/2 and `done`. ' +
      `A cell that keeps running shows the full hold: its first output comes after ${cell(S.live.raw)} ms ` +
      `(Jupyter: ${cell(S.live[JN])} ms, ipykernel's 0.2 s flush interval).`);
    L.push('');
  }
  const pr = R.profile ?? {};
  L.push('### 10 MB of stdout');
  L.push('');
  L.push('CPU time per process for one 10 MB run (from /proc, 10 ms ticks), and the loop\'s own time measured inside the cell:');
  L.push('');
  L.push('| run | wall to last chunk, ms | loop inside the cell, ms | kernel CPU, ms | server CPU, ms | client CPU, ms | chunks |');
  L.push('|---|---|---|---|---|---|---|');
  const prow = (label, p) => p && L.push(`| ${label} | ${fx(p.lastMs)} | ${fx(p.loopMs)} | ${fx(p.kernelMs, 0)} | ${fx(p.serverMs, 0)} | ${fx(p.clientMs, 0)} | ${p.chunks} |`);
  prow('codepane: 100,000 `print` calls', pr.bigRaw);
  prow('codepane: one `sys.stdout.write` of 10 MB', pr.bigOneWriteRaw);
  prow('codepane: 100,000 `os.write(1, …)` (past the kernel\'s capture)', pr.bigFdRaw);
  prow('Jupyter (no rate limit): 100,000 `print` calls', pr.bigJupyter);
  prow('Jupyter (no rate limit): one `sys.stdout.write` of 10 MB', pr.bigOneWriteJupyter);
  if (fl.pipeLoop) L.push(`| plain python3 into a pipe (floor) | ${fx(fl.pipeLast?.median)} | ${fx(fl.pipeLoop.median)} | | | | |`);
  L.push('');
  if (pr.bigRaw && pr.bigRaw.loopMs) {
    L.push(`The codepane kernel is the bottleneck: the loop itself runs ${fx(pr.bigRaw.loopMs / (fl.pipeLoop?.median ?? NaN), 0)}× ` +
      'slower than into a plain pipe, because the kernel\'s `sys.stdout` (`_Capture` → `_Streams.write` in ' +
      'src/server/kernels/python_kernel.py) is Python code that takes an RLock and a `_Hold` section for each write ' +
      '(`print` makes two). Lines written within 2 ms of the last send share one `stream` event (LINE_BATCH_S), so ' +
      `the server parses a few hundred JSON event lines (${fx(pr.bigRaw.serverMs, 0)} ms of CPU) to send ` +
      `${pr.bigRaw.chunks} frames. With the same bytes in one write (${fx(pr.bigOneWriteRaw?.lastMs)} ms), or written ` +
      `past the capture with \`os.write\` (${fx(pr.bigFdRaw?.lastMs)} ms), the rest of the path (server, WebSocket, ` +
      'client) shows what it can carry: about 100 MB/s. The fix that is left is a cheaper write path in the kernel ' +
      '(no `_Hold` section and no lock for a write that only appends to the pending text).');
    L.push('');
  }
  if (R.rps?.raw1?.cpu) {
    L.push('### Runs per second');
    L.push('');
    L.push(`CPU per run (ms) while the runs-per-second windows ran (client = this Node process; a ${R.rps.raw1.cores}-core machine ` +
      'carries the clients, the servers and the kernels at once):');
    L.push('');
    L.push('| sessions | codepane: client / server / kernels | cores busy | Jupyter+nodelay: client / server / kernels | cores busy |');
    L.push('|---|---|---|---|---|');
    const cpu = (x) => (x?.cpu ? `${fx(x.cpu.client, 3)} / ${fx(x.cpu.server, 3)} / ${fx(x.cpu.kernels, 3)}` : 'n/a');
    const busy = (x) => (x?.cpu ? (x.median * (x.cpu.client + x.cpu.server + x.cpu.kernels)) / 1000 : null);
    for (const n of ['1', ...par]) {
      L.push(`| ${n} | ${cpu(S.rps.codepane[n])} | ${fx(busy(S.rps.codepane[n]))} | ${cpu(S.rps[JN][n])} | ${fx(busy(S.rps[JN][n]))} |`);
    }
    L.push('');
    L.push('(cores busy = runs per second × CPU per run: the share of the machine the two systems and the client used; ' +
      'the rest went to other processes on the machine.)');
    L.push('');
    const n = par.at(-1);
    const tot = (x) => (x?.cpu ? x.cpu.client + x.cpu.server + x.cpu.kernels : null);
    const c1 = S.rps.codepane[1], cn = S.rps.codepane[n], j1 = S.rps[JN][1], jn = S.rps[JN][n];
    L.push(`A Jupyter run costs ${fx(tot(j1))} ms of CPU with one kernel and ${fx(tot(jn))} ms with ${n} (its server ` +
      `${fx(j1?.cpu?.server)} ms of it, whatever the number of kernels; the kernels' share includes the idle ones' background ` +
      `work); a codepane run costs ${fx(tot(c1))} ms with one session and ${fx(tot(cn))} ms with ${n}, the growth being the ` +
      `kernels' share (${fx(c1?.cpu?.kernels, 3)} → ${fx(cn?.cpu?.kernels, 3)} ms: ${n} IPython processes taking turns on ` +
      `${R.rps.raw1.cores} cores, with more context switches and colder caches). With ${n} sessions codepane keeps ` +
      `${fx(busy(cn))} cores busy (${fx(busy(c1))} with one), Jupyter ${fx(busy(jn))} (${fx(busy(j1))}). By the definitions above, ` +
      'scaling = (cores busy with n ÷ with 1) × (CPU per run with 1 ÷ with n): on a machine this small it measures the room ' +
      'one session leaves idle and how much dearer a run gets, more than either server.');
    L.push('');
  }
  if (R.memory) {
    const m = R.memory;
    L.push('### Memory');
    L.push('');
    L.push(`codepane's idle python session: ${m.codepane.each.map((p) => `${p.comm} (pid ${p.pid}) RSS ${fx(p.rss / MiB, 1)} MiB, ` +
      `PSS ${fx(p.pss / MiB, 1)}, anonymous ${fx(p.anon / MiB, 1)}`).join('; ')}. The ipykernel: RSS ${fx(m.jupyter.rss / MiB, 1)} MiB, ` +
      `PSS ${fx(m.jupyter.pss / MiB, 1)}, anonymous ${fx(m.jupyter.anon / MiB, 1)}. For scale, the servers themselves: ` +
      `codepane-server RSS ${fx(m.codepaneServer.rss / MiB, 1)} MiB, Jupyter Server RSS ${fx(m.jupyterServer.rss / MiB, 1)} MiB. ` +
      `PSS splits pages shared with other processes (codepane's pooled kernel, Jupyter's server) among them.`);
    L.push('');
    if (m.modules) {
      const onlyJ = m.modules.jupyter.filter((x) => !m.modules.codepane.includes(x));
      const onlyC = m.modules.codepane.filter((x) => !m.modules.jupyter.includes(x));
      L.push(`Top-level modules loaded at idle: codepane ${m.modules.codepane.length}, ipykernel ${m.modules.jupyter.length}. ` +
        `Only in ipykernel: ${onlyJ.join(', ') || 'none'}. Only in codepane: ${onlyC.join(', ') || 'none'}. ` +
        'Both are IPython shells; ipykernel adds ZMQ, tornado, jupyter_client and the debugger (debugpy/pydevd). ' +
        `jedi is ${m.modules.codepane.includes('jedi') ? '' : 'not '}loaded by the codepane kernel, prompt_toolkit ` +
        `${m.modules.codepane.includes('prompt_toolkit') ? 'is' : 'is not'} (IPython/__init__.py imports the terminal shell).`);
      L.push('');
    }
    if (m.variants) {
      L.push('What an IPython shell costs in a plain `python3 -I` on this machine (VmRSS after `InteractiveShell.instance()`), ' +
        'and what leaving parts out would save:');
      L.push('');
      L.push('| variant | RSS MiB | modules |');
      L.push('|---|---|---|');
      for (const v of m.variants) L.push(`| ${v.label} | ${v.rss ? fx(v.rss / MiB, 1) : `failed: ${v.error}`} | ${v.modules ?? ''} |`);
      L.push('');
    }
  }
  if (S.weight) {
    L.push('### Client weight');
    L.push('');
    L.push(`\`@e2b/code-interpreter\` ${S.weight.e2bVersion ?? ''} ` +
      (S.weight.bundlesWithoutExternals === false
        ? `does not bundle for the browser without externals (esbuild: ${S.weight.e2bError ?? '?'}); with Node's built-ins marked external it is ${fx(S.weight.e2b / 1000, 1)} kB gzipped.`
        : `bundles for the browser; ${fx(S.weight.e2b / 1000, 1)} kB gzipped with Node's built-ins external.`) +
      (S.weight.files ? ` codepane: ${S.weight.files.map((x) => `${x.name} ${fx(x.gzip / 1000, 1)} kB`).join(' + ')}.` : ''));
    L.push('');
  }

  if (R.failures?.length) {
    L.push('## Failures in this run');
    L.push('');
    for (const x of R.failures) L.push(`- ${x}`);
    L.push('');
  }
  L.push(...closingNote(S, T, R));
  return L.join('\n');
}

/** What to change, for each target this run missed (and the easy wins seen on the way). */
function closingNote(S, T, R) {
  const missed = (re) => T.some((t) => re.test(t.what) && t.ok === false);
  const L = ['## Closing note: what would close the gaps', ''];
  const hs = R.hops?.server, hc = R.hops?.client;
  const items = [];
  if (missed(/within 1 ms/) || (S.live.raw?.median ?? 0) > 2) {
    items.push('**Send a cell\'s first output at once.** codepane-server holds every chunk for up to 5 ms ' +
      '(`CP_RUNNER_COALESCE_MS`, `queue_text` in src/server/runner.c) to merge bursts. Coalescing on the leading edge ' +
      'instead (a chunk goes out at once when its stream has sent nothing in the last 5 ms; only what follows within ' +
      'the window is held and merged) keeps bursts merged and takes the hold off the latency path: the warm `print` would leave when its stream ' +
      `event is read instead of after the cell's \`done\`${hs?.doneAfterStream ? ` (${fx(hs.doneAfterStream.median, 3)} ms later under strace, ` +
        `${fx(100 * hs.doneAfterStream.median / hs.total.median, 0)} % of the traced run)` : ''}, ` +
      `and the first output of a running cell would drop from ${fx(S.live.raw?.median)} ms to about the warm figure.` +
      (hc ? ` The Node client adds ${fx((hc.call?.median ?? 0) + (hc.deliver?.median ?? 0), 3)} ms on top (building the frame in ` +
        'the WASM core before `ws.send`, decoding it before `onStdout`); what is left above the floor is the server\'s two ' +
        'thread hand-offs (WebSocket thread → runner thread → kernel and back) and IPython running the cell.' : ''));
  }
  if (missed(/10 MB/)) {
    const p = R.profile ?? {};
    items.push('**A cheaper write path in the python kernel.** Its stream events are batched already (lines written ' +
      'within 2 ms of the last send share one event, `LINE_BATCH_S` in src/server/kernels/python_kernel.py: 100,000 ' +
      '`print` calls went from 100,000 events and 5 MB/s to a few hundred events), but each write still runs Python code ' +
      `under an RLock and a \`_Hold\` section: the loop takes ${fx(p.bigRaw?.loopMs, 0)} ms in the kernel against ` +
      `${fx(S.floor.pipeLoop?.median)} ms into a plain pipe. A lock-free append for the common case (same stream, a cell ` +
      `running, the main thread) would cut that. The same 10 MB written at once reach the client in ${fx(p.bigOneWriteRaw?.lastMs)} ms ` +
      `(${fx(p.bigOneWriteRaw?.lastMs ? 10000 / p.bigOneWriteRaw.lastMs : null)} MB/s), which bounds what the server, ` +
      'the WebSocket and the client can carry today.');
  }
  if (missed(/idle python/)) {
    const v = R.memory?.variants ?? [];
    const mods = R.memory?.modules?.codepane ?? [];
    const jedi = mods.includes('jedi') && v[1]?.rss && v[2]?.rss ? v[1].rss - v[2].rss : 0;
    const pt = mods.includes('prompt_toolkit') && v[2]?.rss && v[3]?.rss ? v[2].rss - v[3].rss : 0;
    const est = S.memory && (jedi || pt) ? S.memory.codepane.rss - jedi - pt : null;
    items.push('**Leave the terminal shell (and jedi) out of the python kernel.** `IPython/__init__.py` imports IPython\'s ' +
      'terminal shell and with it prompt_toolkit, which a kernel without a terminal never uses; IPython\'s completer ' +
      `imports jedi${mods.includes('jedi') ? '' : ' (the codepane kernel already avoids it)'}. Loading \`IPython.core\` through a ` +
      'package stub that carries only `get_ipython` (and keeping `sys.modules["jedi"] = None`) saves ' +
      `${fx((jedi + pt) / MiB, 1)} MiB in a plain shell (table above)` +
      (est ? `: the idle session would be about ${fx(est / MiB, 1)} MiB, ${rx(est / S.memory.jupyter.rss)} the ipykernel. ` : '. ') +
      'Fewer imports also shorten a kernel\'s start, which is what the cold start without a pool is made of.');
  }
  if (missed(/client core/) && S.weight) {
    const ws = R.wasmSections ?? [];
    const code = ws.find((x) => x.name === 'code'), data = ws.find((x) => x.name === 'data');
    const js = S.weight.files?.find((x) => /\.mjs$/.test(x.name));
    items.push(`**Client weight.** The target is ${fx(0.15 * S.weight.e2b / 1000, 1)} kB against ${fx(S.weight.codepane / 1000, 1)} kB. ` +
      (code ? `core.wasm is mostly code (code section ${fx(code.size / 1000, 1)} kB raw, ${fx(code.gzip / 1000, 1)} kB gzipped on its own; ` +
        `data ${fx((data?.gzip ?? 0) / 1000, 1)} kB), ` : '') +
      (js ? `the JS ${fx(js.gzip / 1000, 1)} kB (the API and Emscripten's glue, which includes its FETCH and websocket.js libraries). ` : '') +
      'What would take the most out: the browser\'s own JSON.parse/JSON.stringify instead of cJSON in the wasm, ' +
      'a few transport hooks of the client\'s own (as src/client/hooks.js does for events) instead of Emscripten\'s `-sFETCH` and `-lwebsocket.js`, ' +
      'and the HTTP routes left to a lazily loaded part for pages that only stream. Closing the whole gap needs all three ' +
      'or a smaller protocol surface.');
  }
  if (missed(/parallel scaling/)) {
    const big = Object.keys(S.rps.codepane).filter((k) => k !== '1').at(-1);
    items.push(`**Parallel runs** are bounded by the machine here: every process of both systems shares ${R.rps?.raw1?.cores ?? '?'} ` +
      `cores with the benchmark client, and with ${big} sessions codepane still does ${rx(ratio(S.rps.codepane[big]?.median, S.rps[JN][big]?.median))} ` +
      'Jupyter\'s absolute rate; the ratio of ratios should be read again on a machine with more cores than sessions. ' +
      'What codepane can change is the kernels\' CPU per run (table above), i.e. the python kernel\'s per-cell work ' +
      'outside the user\'s code, which grows with the number of live kernels.');
  }
  if (missed(/without the pool/)) {
    items.push(`**Cold start without the pool** (${fx(S.cold.rawNoPool?.total?.median)} ms) is the python kernel's own start (IPython's ` +
      'import) inside a new sandbox; the shipped pool hides it, and a leaner kernel (above) shortens it.');
  }
  if (!items.length) items.push('Every target of issue 7 is met in this run.');
  for (const x of items) L.push(`- ${x}`);
  L.push('');
  L.push(`codepane-server sets \`TCP_NODELAY\` on its sockets (civetweb's \`tcp_nodelay\` option, src/server/main.c; its WebSocket ` +
    `layer writes on the same socket): the end frame of a warm run follows the stdout frame by ` +
    `${fx((S.warm.rawPyEnd?.median ?? NaN) - (S.warm.rawPy?.median ?? NaN), 3)} ms, where Jupyter as shipped loses ` +
    `${fx((S.warm[J]?.median ?? NaN) - (S.warm[JN]?.median ?? NaN))} ms per reply to Nagle's algorithm and the delayed ACK ` +
    `when runs follow each other closely. With runs 300 ms apart, Jupyter as shipped takes ${fx(S.warm.pacedJ?.median)} ms and ` +
    `with TCP_NODELAY ${fx(S.warm.pacedJN?.median)} ms: Linux delays ACKs, up to 40 ms, while a connection is in its ` +
    'interactive "pingpong" mode, which runs in quick succession keep it in, so Nagle\'s stall comes and goes with the ' +
    'pacing; TCP_NODELAY removes it either way.');
  L.push('');
  return L;
}
