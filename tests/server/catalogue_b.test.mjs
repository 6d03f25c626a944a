// Attack catalogue, group B: confinement and information leaks (shared/spec/sandbox.md §2
// B1–B23), against the real codepane-server. The server runs with host canaries: secret
// values in its environment (SERVER_SECRET), in its argv (the API key) and in host files
// (/root, /etc, /tmp, /var/tmp, /dev/shm); none may ever appear in a frame (P5). After
// every test the harness also checks P1, P2 and P3; the last test checks P4.
//
// Network rule of this workplace: the tests only ever send traffic to loopback. The
// sandbox's network isolation is shown without trying to reach anything outside: it sees
// only `lo` and no route (B4), its name lookups fail at once (B7, guarded so that a broken
// sandbox never sends a query), and its connects to the host's loopback services fail (B5).
//
// Under CP_TEST_KERNELS (harness.mjs) the runs of those languages go to the session's
// persistent kernel, and the unit of isolation is the session: what a cell starts or
// writes lives on into the session's next cell (as in Jupyter) and must be gone once the
// session is released; another session never sees any of it, while both kernels live or
// afterwards. The tests that leave such state say so and end the session (P1 at session
// scope); the other sessions a test opens are released at its end.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import net from 'node:net';
import { describe, test } from 'node:test';

import {
  inKernel, kernelProcesses, runText, sandboxProcesses, streamRun, useCatalogueServer,
} from './harness.mjs';

/** Every test gets a deadline, so a server that never answers fails instead of hanging. */
const T = { timeout: 60_000 };

const UID_BASE = 61300;
const ctx = useCatalogueServer({
  uidBase: UID_BASE,
  // The API key is the argv canary: the server's argv must not reach the sandbox either.
  serverArgs: (canaries) => ['--api-key', canaries.argSecret],
  apiKey: (canaries) => canaries.argSecret,
});

/** A second session with its own socket (for the two-session cases), tapped for canaries;
 * released with ctx.release(other) at the test's end (its kernels go with it). */
const otherSession = () => ctx.otherSession();

/** Resolves once `run` has produced a stdout chunk containing `text`. */
function outputSeen(run, text) {
  return new Promise((resolve) => {
    const i = setInterval(() => {
      if (run.frames.some((f) => f.data.eventType === 'stdout' && f.data.chunk.includes(text))) {
        clearInterval(i);
        resolve();
      }
    }, 10);
  });
}

/** The end of an executionError whose kernel had to be replaced (runner.c). */
const LOST = '; the kernel was restarted and its state (variables, definitions, imports) was lost';

/** A kernel killed by what its cell did (a signal) fails the cell saying its state was
 * lost, and the session's next run gets a new kernel (nothing to check without kernels). */
async function killedKernelReplaced(r) {
  if (!inKernel('python')) return;
  assert.ok(r.end.executionError.endsWith(LOST), r.end.executionError);
  const next = await ctx.run("print('next')");
  assert.equal(next.out, 'next\n');
  assert.equal(next.end.executionCount, 1, 'a new kernel counts from 1');
}

/** Python helpers the probes share: errno names for failures, ctypes syscalls with every
 * argument passed as a C long (so negative values and pointers arrive intact). */
const PY_PRELUDE = [
  'import ctypes, errno, os',
  'libc = ctypes.CDLL(None, use_errno=True)',
  'def ename(e):',
  '    return errno.errorcode.get(e, str(e))',
  'def sc(nr, *args):',
  '    ctypes.set_errno(0)',
  '    r = libc.syscall(ctypes.c_long(nr), *[a if isinstance(a, ctypes._SimpleCData) else ctypes.c_long(a) for a in args])',
  "    return 'ok' if r != -1 else ename(ctypes.get_errno())",
  'def attempt(fn):',
  '    try:',
  '        fn()',
  "        return 'ok'",
  '    except OSError as e:',
  '        return ename(e.errno)',
  '',
].join('\n');

describe('B1–B3 file system', () => {
  test('B1 host secrets are not there: /etc/shadow, /root, /home, /var, /run, /sys and the canary files', T, async () => {
    const paths = ['/etc/shadow', '/etc/gshadow', '/etc/ssh', '/etc/sudoers', '/root', '/home', '/var', '/run',
      '/sys', '/sys/fs/cgroup', '/boot', '/srv', '/mnt', '/work', ...ctx.canaries.files];
    const code = PY_PRELUDE + [
      `paths = ${JSON.stringify(paths)}`,
      'print([p for p in paths if os.path.exists(p)])',
      "print(attempt(lambda: open('/etc/shadow').read()))",
      "print(sorted(os.listdir('/')))",
      "print(sorted(os.listdir('/etc')))",
      // Walk the regular files outside /usr, /proc, /dev and the snippet's own /w, and print
      // any that holds a canary (the needle is assembled so this source does not hold it).
      "import stat",
      "needle = b'cpcan' + b'ary-'",
      "for top in [d for d in os.listdir('/') if d not in ('usr', 'proc', 'dev', 'w', 'bin', 'sbin', 'lib', 'lib64')]:",
      "    for root, dirs, files in os.walk('/' + top):",
      '        for f in files:',
      '            p = os.path.join(root, f)',
      '            try:',
      '                if not stat.S_ISREG(os.stat(p).st_mode):',
      '                    continue',
      "                with open(p, 'rb') as fh:",
      '                    data = fh.read(1 << 20)',
      '                if needle in data:',
      "                    print('FOUND', p, data[:200])",
      '            except OSError:',
      '                pass',
    ].join('\n');
    const r = await ctx.run(code, 'python', { timeoutS: 10 });
    const lines = r.out.split('\n');
    assert.equal(lines[0], '[]', 'none of the host paths exists in the sandbox');
    assert.equal(lines[1], 'ENOENT');
    // A kernel's sandbox has no /w: it gets no code file (cells arrive on its request pipe).
    const w = inKernel('python') ? '' : ", 'w'";
    assert.equal(lines[2], `['bin', 'dev', 'etc', 'lib', 'lib64', 'opt', 'proc', 'sbin', 'tmp', 'usr'${w}]`);
    // Only the pieces of /etc the spec allows (§3.2): loader cache, alternatives, time
    // zone, the synthetic passwd/group, and Python's matplotlibrc/fonts when present.
    const etc = JSON.parse(lines[3].replace(/'/g, '"'));
    const allowed = ['alternatives', 'fonts', 'group', 'ld.so.cache', 'localtime', 'matplotlibrc', 'passwd'];
    assert.deepEqual(etc.filter((e) => !allowed.includes(e)), [], `unexpected /etc entries: ${etc}`);
    assert.ok(!r.out.includes('FOUND'), r.out);
    assert.equal(r.end.status, 'finished');
  });

  test('B2 the sandbox runs as uid 1000 inside and as a non-root slot uid on the host', T, async () => {
    const run = streamRun(ctx.ws, [
      'import os, time',
      "print(os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups(), flush=True)",
      "print(open('/proc/self/uid_map').read().split(), flush=True)",
      "print('up', flush=True)",
      'time.sleep(1.5)',
    ].join('\n'), 'python', { timeoutS: 5 });
    await outputSeen(run, 'up');
    // Host side: every process of the run (the server's descendants) has real, effective,
    // saved and fs uid in the slot range, never 0.
    const byParent = new Map();
    for (const pid of readdirNumeric('/proc')) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (!byParent.has(ppid)) byParent.set(ppid, []);
        byParent.get(ppid).push(pid);
      } catch { /* gone */ }
    }
    const descendants = [];
    const stack = [ctx.server.pid];
    while (stack.length) for (const c of byParent.get(stack.pop()) ?? []) { descendants.push(c); stack.push(c); }
    assert.ok(descendants.length >= 2, `the run's processes are visible (${descendants})`);
    for (const pid of descendants) {
      const uids = /^Uid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1].split(/\s+/).map(Number);
      for (const u of uids) assert.ok(u >= UID_BASE && u < UID_BASE + 64, `pid ${pid} has uids ${uids}`);
    }
    const r = await run.done;
    const lines = r.stdout.join('').split('\n');
    assert.equal(lines[0], '1000 1000 1000 1000 []');
    // One id mapped, not a range: the inner uid 1000 is a single outer id.
    const map = JSON.parse(lines[1].replace(/'/g, '"'));
    assert.equal(map[0], '1000');
    assert.equal(map[2], '1');
  });

  test('B3 writes outside /tmp fail: /usr, /etc, /, /bin, the code file, the runner, the interpreter', T, async () => {
    const code = PY_PRELUDE + [
      'argv = [a.decode() for a in open("/proc/self/cmdline", "rb").read().split(b"\\0") if a]',
      "targets = ['/usr/x', '/etc/x', '/x', '/bin/x', '/w/x', '/w/main.py', '/etc/passwd', '/usr/bin/python3', '/opt/x']",
      "targets += [a for a in argv if a.startswith('/') and a.endswith('.py')]",
      'def write(p):',
      "    with open(p, 'a') as f:",
      "        f.write('x')",
      'for t in targets:',
      '    print(t, attempt(lambda: write(t)))',
      "print('cwd', os.getcwd(), attempt(lambda: write('cwdfile')))",
    ].join('\n');
    const r = await ctx.run(code, 'python');
    const lines = r.out.trim().split('\n');
    const results = Object.fromEntries(lines.slice(0, -1).map((l) => l.split(' ')));
    const kernel = inKernel('python');
    const program = kernel ? '/opt/codepane/kernel/python_kernel.py' : '/opt/codepane/runners/python.py';
    assert.ok(Object.keys(results).includes(program), r.out);
    for (const [path, result] of Object.entries(results)) {
      // EROFS where the mount refuses first; EACCES where the file's owner (root outside
      // the user namespace) does — both leave the file untouched. A kernel's sandbox has
      // no /w at all (ENOENT): there is nothing to write into.
      const allowed = kernel && path.startsWith('/w/') ? ['ENOENT'] : ['EROFS', 'EACCES'];
      assert.ok(allowed.includes(result), `${path}: ${result}`);
    }
    // The working directory is /tmp, the one writable place (spec §3.2 --chdir /tmp).
    assert.equal(lines.at(-1), 'cwd /tmp ok');
  });
});

describe('B4–B8 network', () => {
  test('B4 only the loopback interface exists and the routing table is empty', T, async () => {
    // (socket.if_nameindex() cannot be used: glibc asks over AF_NETLINK, which the
    // filter refuses — see B8; /proc/net shows the run's own namespace.)
    const code = [
      "print([l.split(':')[0].strip() for l in open('/proc/net/dev').read().split('\\n')[2:] if l])",
      "print(open('/proc/net/route').read().strip().split('\\n')[1:])",
      "print(sorted(set(l.split()[-1] for l in open('/proc/net/if_inet6').read().split('\\n') if l)))",
      // The kernel keeps its local routes on lo in ipv6_route; nothing else may be there.
      "print(sorted(set(l.split()[-1] for l in open('/proc/net/ipv6_route').read().split('\\n') if l)))",
    ].join('\n');
    const r = await ctx.run(code);
    assert.equal(r.out, "['lo']\n[]\n['lo']\n['lo']\n");
  });

  test('B5 the host\'s loopback services (a harness listener, the server\'s own port) are unreachable', T, async () => {
    let accepted = 0;
    const listener = net.createServer((s) => { accepted++; s.destroy(); });
    const v6 = net.createServer((s) => { accepted++; s.destroy(); });
    await new Promise((r) => listener.listen(0, '127.0.0.1', r));
    const hasV6 = await new Promise((r) => { v6.once('error', () => r(false)); v6.listen(0, '::1', () => r(true)); });
    try {
      const p4 = listener.address().port;
      const p6 = hasV6 ? v6.address().port : p4;
      const code = [
        'import errno, socket',
        'def connect(family, host, port):',
        '    s = socket.socket(family, socket.SOCK_STREAM)',
        '    s.settimeout(1)',
        '    try:',
        '        s.connect((host, port))',
        "        return 'connected'",
        '    except OSError as e:',
        '        return errno.errorcode.get(e.errno, repr(e))',
        '    finally:',
        '        s.close()',
        `print(connect(socket.AF_INET, '127.0.0.1', ${p4}), connect(socket.AF_INET, '127.0.0.1', ${ctx.server.port}),`,
        `      connect(socket.AF_INET6, '::1', ${p6}), connect(socket.AF_INET6, '::1', ${ctx.server.port}))`,
      ].join('\n');
      const r = await ctx.run(code);
      assert.equal(r.out, 'ECONNREFUSED ECONNREFUSED ECONNREFUSED ECONNREFUSED\n');
      assert.equal(accepted, 0);
    } finally {
      listener.close();
      if (hasV6) v6.close();
    }
  });

  test('B6 a host abstract unix socket is unreachable (network namespace, not mount namespace)', T, async () => {
    const name = `\0codepane-canary-${randomBytes(6).toString('hex')}`;
    let accepted = 0;
    const listener = net.createServer((s) => { accepted++; s.destroy(); });
    await new Promise((r) => listener.listen(name, r));
    try {
      // Sanity: the harness itself can reach it.
      await new Promise((resolve, reject) => { const c = net.connect(name, () => { c.destroy(); resolve(); }); c.on('error', reject); });
      const before = accepted;
      const code = [
        'import errno, socket',
        's = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
        'try:',
        `    s.connect(${JSON.stringify(name).replace('\\u0000', '\\0')})`,
        "    print('connected')",
        'except OSError as e:',
        '    print(errno.errorcode[e.errno])',
      ].join('\n');
      const r = await ctx.run(code);
      assert.equal(r.out, 'ECONNREFUSED\n');
      assert.equal(accepted, before);
    } finally {
      listener.close();
    }
  });

  test('B7 there is no resolv.conf and a name lookup fails within a second', T, async () => {
    const code = [
      'import os, socket, time',
      "print(os.path.exists('/etc/resolv.conf'), os.path.exists('/etc/hosts'), os.path.exists('/etc/nsswitch.conf'))",
      // Guard: only look a name up when nothing could leave the sandbox (no resolver
      // configured, no interface but lo), so a broken sandbox never sends a query.
      "ifaces = [l.split(':')[0].strip() for l in open('/proc/net/dev').read().split('\\n')[2:] if l]",
      "if ifaces != ['lo'] or os.path.exists('/etc/resolv.conf'):",
      "    print('UNSAFE: not looking up')",
      'else:',
      '    t = time.monotonic()',
      '    try:',
      "        socket.getaddrinfo('codepane-test.invalid', 80)",
      "        print('resolved')",
      '    except socket.gaierror as e:',
      "        print('gaierror', time.monotonic() - t < 1.0)",
    ].join('\n');
    const r = await ctx.run(code);
    assert.equal(r.out, 'False False False\ngaierror True\n');
  });

  test('B8 netlink, packet, vsock, alg and bluetooth sockets are refused; raw inet needs a capability', T, async () => {
    const code = [
      'import errno, socket',
      'def make(fam, typ, proto=0):',
      '    try:',
      '        socket.socket(fam, typ, proto).close()',
      "        return 'created'",
      '    except OSError as e:',
      '        return errno.errorcode[e.errno]',
      'print(make(socket.AF_NETLINK, socket.SOCK_RAW), make(socket.AF_PACKET, socket.SOCK_RAW),',
      '      make(socket.AF_VSOCK, socket.SOCK_STREAM), make(38, socket.SOCK_SEQPACKET), make(31, socket.SOCK_STREAM),',
      '      make(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),',
      '      make(socket.AF_INET, socket.SOCK_STREAM), make(socket.AF_INET6, socket.SOCK_DGRAM), make(socket.AF_UNIX, socket.SOCK_STREAM))',
    ].join('\n');
    const r = await ctx.run(code);
    assert.equal(r.out, 'EAFNOSUPPORT EAFNOSUPPORT EAFNOSUPPORT EAFNOSUPPORT EAFNOSUPPORT EPERM created created created\n');
  });
});

describe('B9–B11 process lifetime', () => {
  test('B9 setsid, nohup &, and a double fork all die when the run ends', T, async () => {
    const code = [
      'import os, subprocess, time',
      "subprocess.Popen(['setsid', 'sleep', '300'])",
      "os.system('nohup sleep 300 >/dev/null 2>&1 &')",
      'if os.fork() == 0:',
      '    if os.fork() == 0:',
      '        os.setsid()',
      '        time.sleep(300)',
      '    os._exit(0)',
      'time.sleep(0.2)',
      "print('spawned', flush=True)",
    ].join('\n');
    const r = await ctx.run(code, 'python', { timeoutS: 10 });
    assert.equal(r.out, 'spawned\n');
    assert.equal(r.end.status, 'finished');
    assert.equal(r.end.reason, 'exit');
    assert.ok(r.ms < 3000, `${r.ms.toFixed(0)} ms`);
    if (!inKernel('python')) {
      await ctx.p1(1000);
      return;
    }
    // In a kernel the cell ends, and what it started in the background belongs to the
    // session, which lives on (as in Jupyter): the sleeps are there after the cell, and
    // everything the session started dies within 1 s of its release.
    const left = kernelProcesses(UID_BASE).others;
    assert.ok(left.filter((p) => p.includes(' sleep ')).length >= 2, `the background sleeps outlive the cell: ${left}`);
    await ctx.renewSession({ ms: 1000 });
  });

  test('B9 a java non-daemon thread still looping after main returns keeps the JVM up until the timeout, then dies', T, async () => {
    // As with `java Main.java` by hand, the JVM lives while a non-daemon thread runs; the
    // wall limit ends it, and nothing of it survives.
    const code = [
      'Thread t = new Thread(() -> { while (true) { try { Thread.sleep(100); } catch (InterruptedException e) { } } });',
      't.start();',
      'System.out.println("main returns");',
    ].join('\n');
    const r = await ctx.run(code, 'java', { timeoutS: 3 });
    assert.equal(r.out, 'main returns\n');
    if (!inKernel('java')) {
      assert.equal(r.end.status, 'failed');
      assert.equal(r.end.reason, 'timeout');
      await ctx.p1(1000); // (the sessions' idle kernels of other languages may stay)
      return;
    }
    // In a kernel (JShell) the cell ends when its code returns; the thread lives on in the
    // session's JVM, and dies with the session (within 1 s of its release).
    assert.equal(r.end.status, 'finished');
    await ctx.renewSession({ ms: 1000 });
  });

  test('B10 a process that SIGSTOPs itself is still killed at the wall limit', T, async () => {
    const code = "import os, signal\nprint('stopping', flush=True)\nos.kill(os.getpid(), signal.SIGSTOP)\nprint('resumed')";
    const r = await ctx.run(code, 'python', { timeoutS: 2 });
    assert.equal(r.out, 'stopping\n');
    assert.equal(r.end.reason, 'timeout');
    if (!inKernel('python')) {
      assert.ok(r.end.executionTime >= 2 && r.end.executionTime <= 2.5);
      return;
    }
    // The server continues a stopped kernel (SIGCONT) before it interrupts it, so the cell
    // ends at the wall limit like any other and the kernel keeps its state.
    assert.ok(r.end.executionTime >= 2 && r.end.executionTime <= 2.5, `executionTime ${r.end.executionTime}`);
    assert.equal(r.end.executionError, 'TimeoutError: the run exceeded its time limit of 2 s');
    assert.equal((await ctx.run("print('next')")).out, 'next\n');
  });

  test('B10 a stopped child left behind by an exiting parent is killed', T, async () => {
    const code = [
      'import os, signal, time',
      'if os.fork() == 0:',
      '    os.kill(os.getpid(), signal.SIGSTOP)',
      '    os._exit(0)',
      'time.sleep(0.2)',
      "print('parent exits', flush=True)",
    ].join('\n');
    const r = await ctx.run(code, 'python', { timeoutS: 5 });
    assert.equal(r.out, 'parent exits\n');
    assert.equal(r.end.reason, 'exit');
    if (!inKernel('python')) {
      await ctx.p1(1000);
      return;
    }
    // In a kernel the stopped child is the session's until it ends; then it is killed.
    const left = kernelProcesses(UID_BASE).others;
    assert.ok(left.some((p) => / python3 T\)$/.test(p)), `the stopped child outlives the cell: ${left}`);
    await ctx.renewSession({ ms: 1000 });
  });

  test('B11 kill -9 1, killing every pid and kill(-1) only reach the sandbox; another session finishes normally', T, async () => {
    const other = await otherSession();
    try {
      const bystander = streamRun(other.ws, "import time\ntime.sleep(1.5)\nprint('other ok')", 'python', { timeoutS: 10 });
      const code = [
        'import os, signal',
        'os.kill(1, signal.SIGKILL)',
        "print('alive after kill 1', flush=True)",
        // (Not its own threads either: a tid names its whole process to kill().)
        "own = {int(t) for t in os.listdir('/proc/self/task')}",
        'for pid in range(2, 32769):',
        '    if pid not in own:',
        '        try:',
        '            os.kill(pid, signal.SIGKILL)',
        '        except OSError:',
        '            pass',
        "print('alive after sweep', flush=True)",
        // kill(-1) reaches every process the caller may signal except itself and the
        // namespace's init: here a child started for it.
        'import subprocess',
        "child = subprocess.Popen(['sleep', '30'])",
        'os.kill(-1, signal.SIGKILL)',
        "print('alive after kill -1, child', child.wait(), flush=True)",
      ].join('\n');
      const r = await ctx.run(code, 'python', { timeoutS: 10 });
      assert.equal(r.out, 'alive after kill 1\nalive after sweep\nalive after kill -1, child -9\n');
      assert.equal(r.end.status, 'finished');
      const b = await bystander.done;
      assert.equal(b.stdout.join(''), 'other ok\n');
      assert.equal(b.end.status, 'finished');
      assert.equal(ctx.server.proc.exitCode, null, 'the server is alive');
    } finally {
      await ctx.release(other);
    }
  });
});

describe('B12–B14 kernel interfaces', () => {
  test('B12 ptrace, process_vm_readv and /proc/1/mem are refused', T, async () => {
    const code = PY_PRELUDE + [
      'import signal, time',
      'child = os.fork()',
      'if child == 0:',
      '    time.sleep(30)',
      '    os._exit(0)',
      'buf = ctypes.create_string_buffer(8)',
      'iov = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 8)',
      "print('ptrace', sc(101, 16, child, 0, 0))",
      "print('process_vm_readv', sc(310, child, ctypes.cast(iov, ctypes.c_void_p), 1, ctypes.cast(iov, ctypes.c_void_p), 1, 0))",
      "print('mem', attempt(lambda: open('/proc/1/mem', 'rb').read(1)))",
      "print('child mem', attempt(lambda: open(f'/proc/{child}/mem', 'rb').read(1)))",
      'os.kill(child, signal.SIGKILL)',
      'os.waitpid(child, 0)',
    ].join('\n');
    const r = await ctx.run(code);
    const lines = r.out.trim().split('\n');
    assert.equal(lines[0], 'ptrace EPERM');
    assert.equal(lines[1], 'process_vm_readv EPERM');
    assert.ok(['mem EACCES', 'mem EPERM', 'mem EIO'].includes(lines[2]), lines[2]);
    assert.equal(r.end.status, 'finished');
  });

  test('B13 user namespaces, unshare, mount, setns, pivot_root, chroot, clone3 and the new mount API are refused', T, async () => {
    const code = PY_PRELUDE + [
      'import subprocess',
      'CLONE_NEWUSER, CLONE_NEWNS, SIGCHLD = 0x10000000, 0x20000, 17',
      "print('unshare_user', sc(272, CLONE_NEWUSER))",
      "print('unshare_ns', sc(272, CLONE_NEWNS))",
      "print('setns', sc(308, 0, 0))",
      "print('mount', sc(165, ctypes.c_char_p(b'none'), ctypes.c_char_p(b'/tmp'), ctypes.c_char_p(b'tmpfs'), 0, 0))",
      "print('umount2', sc(166, ctypes.c_char_p(b'/tmp'), 0))",
      "print('pivot_root', sc(155, ctypes.c_char_p(b'/tmp'), ctypes.c_char_p(b'/tmp')))",
      "print('chroot', sc(161, ctypes.c_char_p(b'/tmp')))",
      'ctypes.set_errno(0)',
      'r = libc.syscall(ctypes.c_long(56), ctypes.c_long(CLONE_NEWUSER | SIGCHLD), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0))',
      'if r == 0:',
      '    os._exit(0)  # a child: the filter let a user-namespace clone through',
      "print('clone_newuser', 'ok' if r != -1 else ename(ctypes.get_errno()))",
      "print('clone3', sc(435, 0, 0))",
      "print('open_tree', sc(428, -100, ctypes.c_char_p(b'/'), 0))",
      "print('move_mount', sc(429, -1, ctypes.c_char_p(b''), -1, ctypes.c_char_p(b''), 0))",
      "print('fsopen', sc(430, ctypes.c_char_p(b'tmpfs'), 0))",
      "print('fsconfig', sc(431, -1, 0, 0, 0, 0))",
      "print('fsmount', sc(432, -1, 0, 0))",
      "print('fspick', sc(433, -100, ctypes.c_char_p(b'/'), 0))",
      "print('mount_setattr', sc(442, -100, ctypes.c_char_p(b'/'), 0, 0, 0))",
      "p = subprocess.run(['unshare', '-Ur', 'id', '-u'], capture_output=True, text=True)",
      "print('unshare_cmd', p.returncode != 0, p.stdout.strip() != '0')",
    ].join('\n');
    const r = await ctx.run(code);
    assert.equal(r.out, [
      'unshare_user EPERM', 'unshare_ns EPERM', 'setns EPERM', 'mount EPERM', 'umount2 EPERM', 'pivot_root EPERM',
      'chroot EPERM', 'clone_newuser EPERM', 'clone3 ENOSYS', 'open_tree ENOSYS', 'move_mount ENOSYS',
      'fsopen ENOSYS', 'fsconfig ENOSYS', 'fsmount ENOSYS', 'fspick ENOSYS', 'mount_setattr ENOSYS',
      'unshare_cmd True True', '',
    ].join('\n'));
  });

  test('B14 TIOCSTI and TIOCLINUX are refused (also with high bits set) and there is no controlling tty', T, async () => {
    const code = PY_PRELUDE + [
      'TIOCSTI, TIOCLINUX = 0x5412, 0x541C',
      'ch = ctypes.c_char(b"x")',
      "print('TIOCSTI', sc(16, 0, TIOCSTI, ctypes.cast(ctypes.pointer(ch), ctypes.c_void_p)))",
      "print('TIOCSTI|1<<32', sc(16, 0, TIOCSTI | (1 << 32), ctypes.cast(ctypes.pointer(ch), ctypes.c_void_p)))",
      "print('TIOCLINUX', sc(16, 0, TIOCLINUX, ctypes.cast(ctypes.pointer(ch), ctypes.c_void_p)))",
      "print('tty', attempt(lambda: open('/dev/tty', 'rb')))",
    ].join('\n');
    const r = await ctx.run(code);
    assert.equal(r.out, 'TIOCSTI EPERM\nTIOCSTI|1<<32 EPERM\nTIOCLINUX EPERM\ntty ENXIO\n');
  });
});

describe('B15–B16 between sessions', () => {
  test('B15 session B finds nothing session A left in /tmp, /dev/shm, SysV shm, a POSIX queue or /proc', T, async () => {
    const kernel = inKernel('python');
    // With kernels B's sandbox is its session's: a new session, so that B's own /tmp is
    // just what a fresh kernel keeps there.
    if (kernel) await ctx.renewSession();
    const other = await otherSession();
    try {
      const writer = streamRun(other.ws, [
        'import ctypes, os, time',
        "open('/tmp/cpshared-a', 'w').write('TOKEN-A')",
        "open('/dev/shm/cpshared-a', 'w').write('TOKEN-A')",
        'libc = ctypes.CDLL(None, use_errno=True)',
        'shm = libc.shmget(0x43500001, 4096, 0o1666)',
        "rt = ctypes.CDLL('librt.so.1', use_errno=True)",
        "mq = rt.mq_open(b'/cpshared', 0o100 | 2, 0o666, None)",
        "print('A ready', shm >= 0, mq >= 0, flush=True)",
        'time.sleep(3)',
      ].join('\n'), 'python', { timeoutS: 10 });
      await outputSeen(writer, 'A ready');
      const code = PY_PRELUDE + [
        "print(sorted(os.listdir('/tmp')), sorted(os.listdir('/dev/shm')))",
        "print('shm', 'found' if libc.shmget(0x43500001, 0, 0) >= 0 else ename(ctypes.get_errno()))",
        "rt = ctypes.CDLL('librt.so.1', use_errno=True)",
        "print('mq', 'found' if rt.mq_open(b'/cpshared', 0) >= 0 else ename(ctypes.get_errno()))",
        'seen = []',
        "for p in [p for p in os.listdir('/proc') if p.isdigit()]:",
        "    for sub in ('root/tmp', 'cwd', 'root/dev/shm'):",
        '        try:',
        "            seen += os.listdir(f'/proc/{p}/{sub}')",
        '        except OSError:',
        '            pass',
        "print('proc', [s for s in seen if 'cpshared' in s])",
      ].join('\n');
      const r = await ctx.run(code);
      const nothing = `${kernel ? `${ctx.freshTmp} ${ctx.freshShm}` : '[] []'}\nshm ENOENT\nmq ENOENT\nproc []\n`;
      assert.equal(r.out, nothing);
      assert.match(writer.frames.find((f) => f.data.eventType === 'stdout').data.chunk, /^A ready True/);
      await writer.done;
      if (kernel) {
        // Both kernels live on after their cells: B still finds nothing, while A's next
        // cell finds all of it (a session's files, shm and queues persist, as in Jupyter).
        assert.equal((await ctx.run(code)).out, nothing);
        const own = await runText(other.ws, PY_PRELUDE + [
          "print(open('/tmp/cpshared-a').read(), open('/dev/shm/cpshared-a').read())",
          "print('shm', 'found' if libc.shmget(0x43500001, 0, 0) >= 0 else ename(ctypes.get_errno()))",
          "rt = ctypes.CDLL('librt.so.1', use_errno=True)",
          "print('mq', 'found' if rt.mq_open(b'/cpshared', 0) >= 0 else ename(ctypes.get_errno()))",
        ].join('\n'));
        // (RLIMIT_MSGQUEUE is 0 in the sandbox: A could create no queue.)
        const mq = / True True/.test(writer.frames.find((f) => f.data.eventType === 'stdout').data.chunk) ? 'found' : 'ENOENT';
        assert.equal(own.out, `TOKEN-A TOKEN-A\nshm found\nmq ${mq}\n`);
        // A ends; a new session (its own new kernel) never sees what an old one left.
        await ctx.release(other);
        const next = await otherSession();
        assert.equal((await runText(next.ws, code)).out, nothing);
        await ctx.release(next);
      }
    } finally {
      if (ctx.sessions.includes(other)) await ctx.release(other);
    }
  });

  test('B15 a second run of the same session does not see the first run\'s files', T, async () => {
    const first = await ctx.run("open('/tmp/persist', 'w').write('x')\nopen('/dev/shm/persist', 'w').write('x')\nprint('written')");
    assert.equal(first.out, 'written\n');
    const probe = "import os\nprint(os.path.exists('/tmp/persist'), os.path.exists('/dev/shm/persist'))";
    const second = await ctx.run(probe);
    if (!inKernel('python')) {
      assert.equal(second.out, 'False False\n');
      return;
    }
    // In a kernel the session's next cell sees them (its files persist, as in Jupyter);
    // another session never does, nor a new one once this one is over.
    assert.equal(second.out, 'True True\n');
    const other = await otherSession();
    assert.equal((await runText(other.ws, probe)).out, 'False False\n');
    await ctx.renewSession();
    assert.equal((await ctx.run(probe)).out, 'False False\n');
  });

  test('B16 flock on a shared read-only inode: a residual covert channel, pinned as the server behaves', T, async () => {
    // sandbox.md §3.6 makes the flock/F_SETLK rules optional and §2 B16 accepts the
    // channel "as a documented residual risk"; docs/server.md ("Residual risks: Shared
    // read-only inodes") documents it. The server's filter (syscall_filter.c) does not
    // deny flock, so a lock taken in one sandbox on /usr/bin/python3 (the same inode,
    // bound read-only into every sandbox) is seen by a concurrent one as EWOULDBLOCK: one
    // bit per round trip between two runs. Pinned exactly, so that adding the rule (EPERM
    // for both) is a deliberate change of this test.
    const other = await otherSession();
    try {
      const holder = streamRun(other.ws, [
        'import fcntl, os, time',
        "fd = os.open('/usr/bin/python3', os.O_RDONLY)",
        'fcntl.flock(fd, fcntl.LOCK_EX)',
        "print('locked', flush=True)",
        'time.sleep(2)',
      ].join('\n'), 'python', { timeoutS: 10 });
      await outputSeen(holder, 'locked');
      const code = PY_PRELUDE + [
        'import fcntl',
        "fd = os.open('/usr/bin/python3', os.O_RDONLY)",
        "print(attempt(lambda: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)))",
      ].join('\n');
      const r = await ctx.run(code);
      assert.equal(r.out, 'EAGAIN\n');
      const h = await holder.done;
      assert.equal(h.stdout.join(''), 'locked\n');
    } finally {
      await ctx.release(other);
    }
  });
});

describe('B17–B19 what the sandbox can learn about the host', () => {
  test('B17 no server secret in os.environ, /proc/self/environ or /proc/1/environ', T, async () => {
    const code = PY_PRELUDE + [
      'print(sorted(os.environ))',
      "print(open('/proc/self/environ', 'rb').read())",
      'def read(p):',
      "    with open(p, 'rb') as f:",
      '        return f.read()',
      "for p in ('/proc/1/environ', '/proc/2/environ'):",
      '    try:',
      '        print(p, read(p))',
      '    except OSError as e:',
      '        print(p, ename(e.errno))',
    ].join('\n');
    const r = await ctx.run(code);
    for (const s of ctx.canaries.secrets) assert.ok(!r.out.includes(s), `${s} leaked`);
    const lines = r.out.split('\n');
    // The server's fixed list (spec §3.2) plus PWD, which bwrap's --chdir sets itself.
    assert.equal(lines[0], "['HOME', 'LANG', 'LC_ALL', 'MPLBACKEND', 'MPLCONFIGDIR', 'PATH', 'PWD', 'TMPDIR']");
    assert.ok(!/SECRET/.test(lines[1]), lines[1]);
    // bwrap's own pid 1 was exec'd with an empty environment (spec finding 2).
    assert.ok(["/proc/1/environ b''", '/proc/1/environ EACCES'].includes(lines[2]), lines[2]);
  });

  test('B17 the javascript and java runtimes see the same clean environment', T, async () => {
    const js = await ctx.run('console.log(Object.keys(process.env).sort().join(","))', 'javascript');
    assert.equal(js.out, 'HOME,LANG,LC_ALL,PATH,PWD,TMPDIR\n');
    const java = await ctx.run('System.out.println(new java.util.TreeSet<>(System.getenv().keySet()));', 'java', { timeoutS: 10 });
    for (const s of ctx.canaries.secrets) assert.ok(!java.out.includes(s));
    assert.ok(!java.out.includes('SECRET'), java.out);
  });

  test('B18 /proc shows only the sandbox\'s own few processes; cmdline and mountinfo carry no secrets', T, async () => {
    const code = [
      'import os',
      "pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())",
      "print(len(pids), sorted(set(open(f'/proc/{p}/comm').read().strip() for p in pids)))",
      "print(open('/proc/1/cmdline', 'rb').read().replace(b'\\0', b' ').decode())",
      "print(open('/proc/self/mountinfo').read())",
    ].join('\n');
    const r = await ctx.run(code);
    const [counts, cmdline, ...mountinfo] = r.out.split('\n');
    const [n, names] = [Number(counts.split(' ')[0]), counts.slice(counts.indexOf(' ') + 1)];
    assert.ok(n >= 2 && n <= 3, counts);
    assert.equal(names, "['bwrap', 'python3']");
    assert.match(cmdline, /^\/usr\/bin\/bwrap /);
    const text = [cmdline, ...mountinfo].join('\n');
    for (const secret of [...ctx.canaries.secrets, ctx.session.token, ctx.session.sessionId]) {
      assert.ok(!text.includes(secret), `${secret} visible in /proc`);
    }
    assert.ok(!text.includes('codepane-server'), 'the server binary is not named');
  });

  test('B19 python sees only fds 0–3 (plus the one listing them); none is a socket', T, async () => {
    const code = [
      'import os',
      "fds = sorted(os.listdir('/proc/self/fd'), key=int)",
      'print(fds)',
      "print([os.readlink(f'/proc/self/fd/{fd}').split(':')[0] for fd in ('0', '1', '2', '3')])",
    ].join('\n');
    const r = await ctx.run(code);
    if (!inKernel('python')) {
      assert.equal(r.out, "['0', '1', '2', '3', '4']\n['/dev/null', 'pipe', 'pipe', 'pipe']\n");
      return;
    }
    // A kernel holds fds 0-4 as its protocol says (kernels/README.md: /dev/null, its
    // stdout and stderr, requests, events): pipes whose other ends the server holds. Any
    // other fd is the kernel's own, made inside the sandbox: no socket, no host file, and
    // nothing shared with the server. (A new session: fds earlier cells left open, such
    // as B16's, are the session's own business.)
    await ctx.renewSession();
    const listing = await ctx.run([
      'import json, os',
      'links = {}',
      "for fd in sorted(os.listdir('/proc/self/fd'), key=int):",
      '    try:',
      "        links[fd] = os.readlink(f'/proc/self/fd/{fd}')",
      '    except OSError:',
      '        pass',
      'print(json.dumps(links))',
    ].join('\n'));
    const links = JSON.parse(listing.out);
    const server = new Set(fdTargets(ctx.server.pid));
    assert.equal(links['0'], '/dev/null');
    for (const fd of ['1', '2', '3', '4']) {
      assert.match(links[fd], /^pipe:\[\d+\]$/, `fd ${fd}`);
      assert.ok(server.has(links[fd]), `fd ${fd} (${links[fd]}) is a pipe to the server`);
    }
    for (const [fd, link] of Object.entries(links).filter(([fd]) => Number(fd) > 4)) {
      if (/^\/proc\/\d+\/fd$/.test(link)) continue; // the listing's own
      assert.ok(/^(\/dev\/null|pipe:\[\d+\]|anon_inode:.*)$/.test(link), `fd ${fd}: ${link}`);
      if (/\[\d+\]$/.test(link)) assert.ok(!server.has(link), `fd ${fd} (${link}) is shared with the server`);
    }
  });

  test('B19 node and java hold no inherited socket and no host file outside /usr and /dev', T, async () => {
    // A socket fd is acceptable only if the runtime made it inside the sandbox: then its
    // inode is listed in the run's own /proc/net tables (an fd inherited from the server
    // would belong to the host's network namespace and be missing there). The JVM keeps
    // one such connected unix socket of its own.
    const js = await ctx.run([
      "const fs = require('fs');",
      "const own = ['unix', 'tcp', 'tcp6', 'udp', 'udp6', 'netlink'].map((t) => fs.readFileSync('/proc/net/' + t, 'utf8')).join('\\n');",
      "const links = fs.readdirSync('/proc/self/fd').map((fd) => { try { return fs.readlinkSync('/proc/self/fd/' + fd); } catch { return 'gone'; } });",
      "console.log(JSON.stringify(links.filter((l) => { const m = /^socket:\\[(\\d+)\\]$/.exec(l);",
      "  if (m) return !new RegExp('\\\\s' + m[1] + '(\\\\s|$)', 'm').test(own);",
      "  return l.startsWith('/') && !/^\\/(usr|dev|proc|opt\\/codepane|w)\\//.test(l); })));",
    ].join('\n'), 'javascript');
    assert.equal(js.out, '[]\n');
    const java = await ctx.run([
      'StringBuilder own = new StringBuilder();',
      'for (String t : new String[]{"unix", "tcp", "tcp6", "udp", "udp6", "netlink"})',
      '  own.append(new String(java.nio.file.Files.readAllBytes(java.nio.file.Path.of("/proc/net/" + t)))).append("\\n");',
      'java.util.List<String> odd = new java.util.ArrayList<>();',
      'int sockets = 0;',
      'for (java.io.File f : new java.io.File("/proc/self/fd").listFiles()) {',
      '  String l;',
      '  try { l = java.nio.file.Files.readSymbolicLink(f.toPath()).toString(); } catch (Exception e) { continue; }',
      '  if (l.startsWith("socket:[")) {',
      '    sockets++;',
      '    String inode = l.substring(8, l.length() - 1);',
      '    if (!java.util.regex.Pattern.compile("\\\\s" + inode + "(\\\\s|$)", java.util.regex.Pattern.MULTILINE).matcher(own).find()) odd.add(l);',
      '  } else if (l.startsWith("/") && !l.matches("^/(usr|dev|proc|tmp|w|opt/codepane)/.*")) odd.add(l);',
      '}',
      'System.out.println(odd + " " + (sockets <= 2));',
    ].join('\n'), 'java', { timeoutS: 10 });
    assert.equal(java.out, '[] true\n');
    // And none of the unix sockets in the run's namespace is listening (flag 00010000).
    const listening = await ctx.run("print([l for l in open('/proc/net/unix').read().split('\\n')[1:] if l and l.split()[3] == '00010000'])");
    assert.equal(listening.out, '[]\n');
  });
});

describe('B20–B23 privilege and syscall filter', () => {
  test('B20 symlink and hardlink traps planted in every writable dir leave the host files untouched', T, async () => {
    const watched = ['/etc/passwd', '/etc/shadow', '/etc/group', ...ctx.canaries.files];
    const snapshot = () => watched.map((f) => {
      const st = statSync(f);
      return `${f} ${st.mtimeMs} ${st.mode} ${st.uid} ${createHash('sha256').update(readFileSync(f)).digest('hex')}`;
    });
    const before = snapshot();
    const code = PY_PRELUDE + [
      "before = set(os.listdir('/tmp'))  # a kernel's own files, or what the session's earlier cells left",
      `targets = ${JSON.stringify(watched)} + ['/proc/1/root/etc/passwd']`,
      "names = ['out', 'stdout', 'stderr', 'result', 'main.py', 'Main.java', 'Main.class', 'code', 'run.sh', 'output.txt', '.mpl', 'hsperfdata_sandbox']",
      "for d in ('/tmp', '/dev/shm'):",
      '    for i, t in enumerate(targets):',
      "        os.symlink(t, f'{d}/trap{i}')",
      '    for n in names:',
      "        os.symlink('/etc/passwd', f'{d}/{n}')",
      "print('hardlink', attempt(lambda: os.link('/etc/passwd', '/tmp/hard')))",
      "print('planted', len(set(os.listdir('/tmp')) - before), flush=True)",
    ].join('\n');
    const r = await ctx.run(code);
    assert.equal(r.out, `hardlink EXDEV\nplanted ${watched.length + 1 + 12}\n`);
    // Another run of each language in the same session, in case the server touches
    // anything of a previous run afterwards.
    for (const [lang, c] of [['python', 'print(1)'], ['java', 'System.out.println(1);'], ['r', 'cat(1)'], ['javascript', 'console.log(1)']]) {
      const again = await ctx.run(c, lang, { timeoutS: 10 });
      assert.equal(again.end.status, 'finished', lang);
    }
    // A kernel's sandbox (with the traps in it) is torn down when its session ends: the
    // server must not touch them then either.
    if (ctx.kernels) await ctx.renewSession();
    assert.deepEqual(snapshot(), before);
  });

  test('B21 no_new_privs is set, no capability is held, seccomp is on, /usr is nosuid, su fails', T, async () => {
    const code = [
      'import subprocess',
      "status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().strip().split('\\n'))",
      "print(status['NoNewPrivs'], status['Seccomp'], status['CapInh'], status['CapPrm'], status['CapEff'], status['CapBnd'], status['CapAmb'])",
      "usr = [l for l in open('/proc/self/mountinfo') if l.split()[4] == '/usr'][0]",
      "print('nosuid' in usr.split()[5])",
      "p = subprocess.run(['su', '-c', 'id -u'], capture_output=True, text=True, stdin=subprocess.DEVNULL)",
      "print(p.returncode != 0, p.stdout.strip() != '0')",
    ].join('\n');
    const r = await ctx.run(code);
    assert.equal(r.out, `1 2 ${'0'.repeat(16)} ${'0'.repeat(16)} ${'0'.repeat(16)} ${'0'.repeat(16)} ${'0'.repeat(16)}\nTrue\nTrue True\n`);
  });

  test('B22 dangerous syscalls are refused: EPERM, and ENOSYS for io_uring', T, async () => {
    const probes = {
      bpf: [321, 0, 0, 0], perf_event_open: [298, 0, 0, -1, -1, 0], userfaultfd: [323, 0],
      keyctl: [250, 0, -3, 0], add_key: [248, 0, 0, 0, 0, 0], request_key: [249, 0, 0, 0, 0],
      kexec_load: [246, 0, 0, 0, 0], kexec_file_load: [320, -1, -1, 0, 0, 0], init_module: [175, 0, 0, 0],
      finit_module: [313, -1, 0, 0], delete_module: [176, 0, 0], iopl: [172, 0], ioperm: [173, 0, 0, 0],
      reboot: [169, 0, 0, 0, 0], swapon: [167, 0, 0], swapoff: [168, 0], syslog: [103, 10, 0, 0], acct: [163, 0],
      quotactl: [179, 0, 0, 0, 0], settimeofday: [164, 0, 0], clock_settime: [227, 0, 0], clock_adjtime: [305, 0, 0],
      adjtimex: [159, 0], name_to_handle_at: [303, -100, 0, 0, 0, 0], open_by_handle_at: [304, -1, 0, 0],
      lookup_dcookie: [212, 0, 0, 0], uselib: [134, 0], fanotify_init: [300, 0, 0], move_pages: [279, 0, 0, 0, 0, 0, 0],
      migrate_pages: [256, 0, 0, 0, 0], mbind: [237, 0, 0, 0, 0, 0, 0], set_mempolicy: [238, 0, 0, 0],
      process_vm_writev: [311, 1, 0, 0, 0, 0, 0], kcmp: [312, 1, 1, 0, 0, 0], ptrace: [101, 16, 1, 0, 0],
      io_uring_setup: [425, 1, 0], io_uring_enter: [426, -1, 0, 0, 0, 0, 0], io_uring_register: [427, -1, 0, 0, 0],
    };
    const code = PY_PRELUDE + [
      `probes = ${JSON.stringify(probes)}`,
      'for name, (nr, *args) in probes.items():',
      '    print(name, sc(nr, *args))',
    ].join('\n');
    const r = await ctx.run(code);
    const got = Object.fromEntries(r.out.trim().split('\n').map((l) => l.split(' ')));
    const want = Object.fromEntries(Object.keys(probes).map((k) => [k, k.startsWith('io_uring') ? 'ENOSYS' : 'EPERM']));
    assert.deepEqual(got, want);
  });

  test('B23 a 32-bit int 0x80 syscall kills the process (SIGSYS): the run fails, nothing after it runs', T, async () => {
    const code = [
      'import ctypes, mmap',
      'buf = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)',
      "buf.write(b'\\xb8\\x14\\x00\\x00\\x00\\xcd\\x80\\xc3')  # mov eax, 20 (i386 getpid); int 0x80; ret",
      'f = ctypes.CFUNCTYPE(ctypes.c_long)(ctypes.addressof(ctypes.c_char.from_buffer(buf)))',
      "print('before', flush=True)",
      "print('returned', f(), flush=True)",
    ].join('\n');
    const r = await ctx.run(code);
    assert.equal(r.out, 'before\n');
    assert.equal(r.end.status, 'failed');
    assert.match(r.end.executionError, /SIGSYS|signal 31|Bad system call/i);
    await killedKernelReplaced(r);
  });

  test('B23 an x32-ABI syscall number kills the process too', T, async () => {
    const code = [
      'import ctypes',
      'libc = ctypes.CDLL(None, use_errno=True)',
      "print('before', flush=True)",
      "print('returned', libc.syscall(ctypes.c_long(0x40000000 | 39)), flush=True)",
    ].join('\n');
    const r = await ctx.run(code);
    assert.equal(r.out, 'before\n');
    assert.equal(r.end.status, 'failed');
    assert.match(r.end.executionError, /SIGSYS|signal 31|Bad system call/i);
    await killedKernelReplaced(r);
  });
});

test('P4: after the whole group the server\'s fds and RSS are back near the baseline', T, async () => {
  if (ctx.kernels) await ctx.endSessions(); // with kernels: nothing is left once every session is over
  assert.deepEqual(sandboxProcesses(64, UID_BASE), []);
  await ctx.finalChecks();
});

/** What every fd of `pid` points at (socket:[n], pipe:[n], paths). */
function fdTargets(pid) {
  const out = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try { out.push(readlinkSync(`/proc/${pid}/fd/${fd}`)); } catch { /* closed meanwhile */ }
  }
  return out;
}

function readdirNumeric(dir) {
  return readdirSync(dir).filter((p) => /^\d+$/.test(p)).map(Number);
}
