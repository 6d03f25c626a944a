/* codepane Java kernel: one JShell (local execution engine, so snippets run in this JVM)
 * that runs cell after cell over protocol 1 of README.md in this directory: requests on
 * fd 3, events on fd 4, the process's own fd 1/2 left to subprocesses and the sync markers.
 *
 * Threads:
 *   - main: warm-up, then runs the queued cells one at a time (JShell is not thread-safe);
 *   - jkernel-requests: owns fd 3, queues `exec` and acts on `interrupt` itself;
 *   - jkernel-stopper: calls JShell.stop() for a cell that should stop, again every
 *     STOP_RETRY_MS until the cell is over (a stop that lands while javac still compiles
 *     the snippet does nothing in JDK 17);
 *   - jkernel-ticker (Events): sends partial output lines;
 *   - the JVM's SIGINT handler thread: a signal during a cell stops it, one while idle is ignored.
 *
 * A cell is cut into snippets with SourceCodeAnalysis.analyzeCompletion and each is
 * evaluated in turn; the first compile error or exception ends the cell. The value of the
 * last snippet, when it is an expression, is the cell's main result: JShell's value
 * string as text/plain, so strings come quoted and escaped ("a\tb") as jshell shows them.
 * Like the one-shot Java path (java_wrap.c), a cell that only declares types (and imports)
 * and whose types include one with `static void main(String[])` runs that main.
 * JDK 17's JShell.stop() reports nothing, so the kernel keeps its own stop flags and
 * reports `Interrupted` itself. System.exit() in a cell ends the kernel (the server then
 * starts a new one); output still pending is sent from a shutdown hook. */
package codepane.kernel;

import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import jdk.jshell.DeclarationSnippet;
import jdk.jshell.JShell;
import jdk.jshell.Snippet;
import jdk.jshell.SnippetEvent;
import jdk.jshell.SourceCodeAnalysis;
import jdk.jshell.TypeDeclSnippet;

/** Entry point of the codepane Java kernel (see the file comment). */
public final class JKernel {
    /** Requests come in on this fd, events go out on the next. */
    static final int FD_REQUESTS = 3;
    static final int FD_EVENTS = 4;
    /** Exit status when fd 4 breaks (the server is gone). */
    static final int EXIT_WIRE_LOST = 3;
    /** Exit status after JShell shut down (its execution engine failed): no cell can run. */
    static final int EXIT_SHELL_DEAD = 4;
    /** JShell.stop() is repeated this often until the cell being stopped is over. */
    static final long STOP_RETRY_MS = 50;
    /**
     * A SIGINT in the first milliseconds of a cell is taken to be a late one meant for the
     * previous cell (a signal carries no cell id); the `interrupt` request, which names its
     * cell, still stops the new cell.
     */
    static final long SIGINT_GRACE_MS = 20;

    /** The jshell tool's default imports, evaluated at start (the JShell API has none). */
    static final List<String> WARM_UP = List.of(
            "import java.io.*;",
            "import java.math.*;",
            "import java.net.*;",
            "import java.nio.file.*;",
            "import java.util.*;",
            "import java.util.concurrent.*;",
            "import java.util.function.*;",
            "import java.util.prefs.*;",
            "import java.util.regex.*;",
            "import java.util.stream.*;",
            "import static codepane.kernel.Display.*;");

    /**
     * Evaluated at start and then dropped: the first expression runs javac's analysis and
     * the execution engine cold (about 100 ms more); a pre-started kernel pays that here,
     * not in the user's first cell.
     */
    static final String WARM_UP_EXPRESSION = "1 + 1";

    /** One `exec` request; a null code marks the end of the requests (EOF on fd 3). */
    private record Request(long id, String code) {}

    private static final Request END = new Request(0, null);

    private final JShell shell;
    private final Events events;
    private final Reports reports;
    private final PrintStream originalOut, originalErr; // the JVM's own fd 1/2 streams
    private final FileOutputStream fd1 = new FileOutputStream(FileDescriptor.out);
    private final FileOutputStream fd2 = new FileOutputStream(FileDescriptor.err);
    private final BlockingQueue<Request> queue = new LinkedBlockingQueue<>();
    private final Set<Long> queued = ConcurrentHashMap.newKeySet(); // cells received, not yet done
    private final Set<Long> stopRequested = ConcurrentHashMap.newKeySet();
    private final Object stopLock = new Object();
    private long runningId; // guarded by stopLock; 0 while no cell runs
    private long runningSince; // guarded by stopLock; System.nanoTime()
    private long count; // cells run (main thread only)
    private volatile boolean shellDead;

    private JKernel(JShell shell, Events events, PrintStream originalOut, PrintStream originalErr) {
        this.shell = shell;
        this.events = events;
        this.reports = new Reports(shell);
        this.originalOut = originalOut;
        this.originalErr = originalErr;
    }

    public static void main(String[] args) throws Exception {
        PrintStream originalOut = System.out, originalErr = System.err;
        FileOutputStream wire = openOut(FD_EVENTS);
        InputStream requests = openIn(FD_REQUESTS);
        Events events = new Events(wire);

        JShell shell = JShell.builder()
                .executionEngine("local")
                .in(InputStream.nullInputStream())
                .out(originalOut)
                .err(originalErr)
                .build();
        shell.addToClasspath(ownJar());
        for (String s : WARM_UP) {
            for (SnippetEvent e : shell.eval(s)) {
                if (e.status() == Snippet.Status.REJECTED) originalErr.println("jkernel: warm-up failed: " + s);
            }
        }
        for (SnippetEvent e : shell.eval(WARM_UP_EXPRESSION)) shell.drop(e.snippet());

        JKernel k = new JKernel(shell, events, originalOut, originalErr);
        shell.onShutdown(dead -> k.shellDead = true);
        events.install();
        Runtime.getRuntime().addShutdownHook(new Thread(events::flushAtExit, "jkernel-exit"));
        System.setOut(new PrintStream(events.capture(Events.STDOUT), false, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(events.capture(Events.STDERR), false, StandardCharsets.UTF_8));
        k.installSigint();
        daemon("jkernel-stopper", k::stopperLoop);
        daemon("jkernel-requests", () -> k.readRequests(requests));
        events.ready();

        while (true) {
            Request r = k.queue.take();
            if (r == END) break;
            k.runCell(r.id(), r.code());
            if (k.shellDead) {
                originalErr.println("jkernel: JShell shut down; exiting");
                System.exit(EXIT_SHELL_DEAD);
            }
        }
        // EOF on fd 3: finish. exit() also ends threads a cell left running.
        System.exit(0);
    }

    // ---- cells --------------------------------------------------------------------------

    private void runCell(long id, String code) {
        int cell = (int) Math.min(Integer.MAX_VALUE, count + 1);
        events.beginCell(id);
        synchronized (stopLock) {
            runningId = id;
            runningSince = System.nanoTime();
            stopLock.notifyAll(); // an interrupt may have come before the cell started
        }
        String status;
        try {
            status = evaluate(id, cell, code);
        } catch (Throwable t) {
            // The kernel's own failure (JShell threw, or memory ran out outside the snippet).
            status = "error";
            try {
                events.error(t.getClass().getName(), String.valueOf(t.getMessage()),
                        "kernel: " + t + " while running cell " + cell);
            } catch (Throwable ignored) {
                // Nothing more can be reported; `done` still goes out.
            }
        } finally {
            synchronized (stopLock) {
                runningId = 0;
            }
        }
        // A stop that came after the last snippet had run finds the cell complete: it stays ok.
        stopRequested.remove(id);
        queued.remove(id);
        events.flushAll();
        syncFds(id);
        count++;
        events.done(id, status, count);
        releaseHeap();
    }

    /**
     * After a cell that grew the heap to most of -Xmx (one that ran out of memory, say),
     * collect and let the heap shrink, so that the garbage it left does not keep the
     * kernel's resident size near the sandbox's memory limit, where compiling the next
     * cell would get the whole kernel killed.
     */
    private static void releaseHeap() {
        Runtime rt = Runtime.getRuntime();
        if (rt.totalMemory() > rt.maxMemory() / 4 * 3) System.gc();
    }

    /** Run the snippets of one cell; returns the `done` status. */
    private String evaluate(long id, int cell, String code) {
        int offset = 0, line = 1, lineCounted = 0;
        String mainValue = null;
        boolean declarationsOnly = true; // imports and type declarations only
        TypeDeclSnippet mainType = null;
        while (true) {
            if (stopRequested.contains(id)) return interrupted();
            offset = Snippets.skipTrivia(code, offset);
            if (offset >= code.length()) break;
            for (; lineCounted < offset; lineCounted++) {
                if (code.charAt(lineCounted) == '\n') line++;
            }
            String rest = code.substring(offset);
            SourceCodeAnalysis.CompletionInfo info = shell.sourceCodeAnalysis().analyzeCompletion(rest);
            if (info.completeness() == SourceCodeAnalysis.Completeness.EMPTY) break;
            boolean complete = info.completeness().isComplete();
            // An incomplete tail is evaluated as it is, so that javac says what is missing.
            String source = complete ? info.source() : rest;
            List<SnippetEvent> results = eval(source);
            if (stopRequested.contains(id)) return interrupted();
            mainValue = null;
            for (SnippetEvent e : results) {
                if (e.causeSnippet() == null) reports.register(e.snippet(), cell, line);
            }
            for (SnippetEvent e : results) {
                if (e.causeSnippet() != null) continue; // a dependent declaration being updated
                Snippet s = e.snippet();
                if (e.status() == Snippet.Status.REJECTED) {
                    return fail(reports.compileError(s, source, cell, line));
                }
                if (e.exception() != null) return fail(reports.exception(e.exception()));
                if (s instanceof DeclarationSnippet && (e.status() == Snippet.Status.RECOVERABLE_DEFINED
                        || e.status() == Snippet.Status.RECOVERABLE_NOT_DEFINED)) {
                    String warning = reports.recoverableWarning((DeclarationSnippet) s,
                            e.status() == Snippet.Status.RECOVERABLE_DEFINED);
                    if (warning != null) events.stream(Events.STDERR, warning);
                }
                Snippet.Kind kind = s.kind();
                boolean isValue = kind == Snippet.Kind.EXPRESSION
                        || (kind == Snippet.Kind.VAR && s.subKind() == Snippet.SubKind.TEMP_VAR_EXPRESSION_SUBKIND);
                mainValue = isValue ? e.value() : null;
                if (kind == Snippet.Kind.TYPE_DECL) {
                    if (mainType == null && Snippets.declaresMain(s.source())) mainType = (TypeDeclSnippet) s;
                } else if (kind != Snippet.Kind.IMPORT) {
                    declarationsOnly = false;
                }
            }
            if (!complete) break;
            offset += rest.length() - info.remaining().length();
        }
        if (mainValue != null) {
            Map<String, Object> data = new LinkedHashMap<>();
            data.put("text/plain", mainValue);
            StringBuilder sb = new StringBuilder();
            Json.write(sb, data);
            events.display(sb.toString(), true);
        }
        if (declarationsOnly && mainType != null) return runMain(id, mainType);
        return "ok";
    }

    /**
     * Run `static void main(String[])` of a type the cell declared, as the one-shot path
     * would run the program. The call is the kernel's snippet: hidden from tracebacks, and
     * a call that does not compile (main was in a nested class, say) is dropped silently.
     */
    private String runMain(long id, TypeDeclSnippet type) {
        List<SnippetEvent> results = eval(type.name() + ".main(new String[0]);");
        if (stopRequested.contains(id)) return interrupted();
        for (SnippetEvent e : results) {
            if (e.causeSnippet() != null) continue;
            reports.hide(e.snippet());
            if (e.status() == Snippet.Status.REJECTED) return "ok";
            if (e.exception() != null) return fail(reports.exception(e.exception()));
        }
        return "ok";
    }

    /**
     * JShell.eval, then undo what JDK 17's local engine does to the whole JVM on every
     * snippet: it installs a default uncaught-exception handler that silently swallows
     * the exceptions of other threads. Without it, a thread a cell started that dies after
     * the snippet prints `Exception in thread ...` on stderr, as in any Java program.
     */
    private List<SnippetEvent> eval(String source) {
        try {
            return shell.eval(source);
        } finally {
            Thread.setDefaultUncaughtExceptionHandler(null);
        }
    }

    private String fail(Reports.Failure f) {
        events.error(f.ename, f.evalue, f.traceback);
        return "error";
    }

    private String interrupted() {
        events.error("Interrupted", "interrupted", "");
        return "interrupted";
    }

    /**
     * The README's sync markers: flush what the JVM buffers for fd 1/2, then one raw write
     * of the marker line to each, so the server knows it has all fd output of this cell.
     */
    private void syncFds(long id) {
        byte[] marker = ("\u001ecodepane-sync " + id + "\n").getBytes(StandardCharsets.US_ASCII);
        originalOut.flush();
        originalErr.flush();
        for (OutputStream fd : new OutputStream[] {fd1, fd2}) {
            try {
                fd.write(marker);
            } catch (IOException e) {
                // The server closed fd 1/2; it will notice the kernel when fd 4 breaks.
            }
        }
    }

    // ---- requests and interrupts ----------------------------------------------------------

    /** The fd 3 loop: one JSON request per line; EOF ends the kernel after the queued cells. */
    private void readRequests(InputStream in) {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                if (!line.isBlank()) handleRequest(line);
            }
        } catch (IOException e) {
            originalErr.println("jkernel: reading requests failed: " + e);
        } finally {
            queue.add(END);
        }
    }

    private void handleRequest(String line) {
        Object op, id, code;
        try {
            Object parsed = Json.parse(line);
            if (!(parsed instanceof Map)) throw new IllegalArgumentException("not an object");
            Map<?, ?> req = (Map<?, ?>) parsed;
            op = req.get("op");
            id = req.get("id");
            code = req.get("code");
        } catch (IllegalArgumentException e) {
            originalErr.println("jkernel: ignoring a bad request: " + e.getMessage());
            return;
        }
        long cellId = positiveId(id);
        if (cellId == 0) {
            originalErr.println("jkernel: ignoring a request without a positive integer id");
        } else if ("exec".equals(op) && code instanceof String) {
            queued.add(cellId);
            queue.add(new Request(cellId, (String) code));
        } else if ("interrupt".equals(op)) {
            requestStop(cellId);
        } else {
            originalErr.println("jkernel: ignoring an unknown request: " + op);
        }
    }

    private static long positiveId(Object id) {
        if (!(id instanceof BigDecimal)) return 0;
        try {
            long v = ((BigDecimal) id).longValueExact();
            return v > 0 ? v : 0;
        } catch (ArithmeticException e) {
            return 0;
        }
    }

    /** Stop cell `id` if it was received and is not done; anything else is a late request. */
    private void requestStop(long id) {
        if (!queued.contains(id)) return;
        synchronized (stopLock) {
            stopRequested.add(id);
            stopLock.notifyAll();
        }
    }

    /** SIGINT: stop the running cell; ignored while idle and in a cell's first SIGINT_GRACE_MS. */
    private void onSigint() {
        synchronized (stopLock) {
            if (runningId == 0 || System.nanoTime() - runningSince < SIGINT_GRACE_MS * 1_000_000L) return;
            stopRequested.add(runningId);
            stopLock.notifyAll();
        }
    }

    /**
     * Call JShell.stop() while the running cell is asked to stop. The check and the call
     * happen under stopLock, which the main thread takes to end a cell, so a stop meant
     * for one cell can never reach the next.
     */
    private void stopperLoop() {
        synchronized (stopLock) {
            while (true) {
                try {
                    if (runningId != 0 && stopRequested.contains(runningId)) {
                        try {
                            shell.stop();
                        } catch (RuntimeException e) {
                            // JShell closed or between snippets; the main thread sees the flag.
                        }
                        stopLock.wait(STOP_RETRY_MS);
                    } else {
                        stopLock.wait();
                    }
                } catch (InterruptedException e) {
                    // Nothing interrupts this thread; keep going.
                }
            }
        }
    }

    /**
     * Handle SIGINT with sun.misc.Signal, reached by reflection: javac -Werror rejects a
     * direct use ("internal proprietary API"), and jdk.unsupported exports it at run time.
     */
    private void installSigint() {
        try {
            Class<?> signal = Class.forName("sun.misc.Signal");
            Class<?> handlerType = Class.forName("sun.misc.SignalHandler");
            Object handler = Proxy.newProxyInstance(JKernel.class.getClassLoader(), new Class<?>[] {handlerType},
                    (proxy, m, a) -> {
                        switch (m.getName()) {
                            case "handle": onSigint(); return null;
                            case "hashCode": return System.identityHashCode(proxy);
                            case "equals": return proxy == a[0];
                            default: return "jkernel SIGINT handler";
                        }
                    });
            Method handle = signal.getMethod("handle", signal, handlerType);
            handle.invoke(null, signal.getConstructor(String.class).newInstance("INT"), handler);
        } catch (ReflectiveOperationException | RuntimeException e) {
            originalErr.println("jkernel: no SIGINT handler (interrupt requests still work): " + e);
        }
    }

    // ---- start-up helpers -------------------------------------------------------------------

    private static void daemon(String name, Runnable body) {
        Thread t = new Thread(body, name);
        t.setDaemon(true);
        t.start();
    }

    /** The jar (or classes directory) this class came from, for JShell's class path. */
    private static String ownJar() throws Exception {
        return Path.of(JKernel.class.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
    }

    /**
     * An inherited fd as a FileDescriptor, set by reflection (needs --add-opens
     * java.base/java.io=ALL-UNNAMED); null when that is not allowed.
     */
    private static FileDescriptor inherited(int fd) {
        try {
            Field f = FileDescriptor.class.getDeclaredField("fd");
            f.setAccessible(true);
            FileDescriptor d = new FileDescriptor();
            f.setInt(d, fd);
            return d;
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null;
        }
    }

    /** Without the reflection, reopen /proc/self/fd/N (README: the server fchowns the pipes). */
    private static FileOutputStream openOut(int fd) throws IOException {
        FileDescriptor d = inherited(fd);
        return d != null ? new FileOutputStream(d) : new FileOutputStream("/proc/self/fd/" + fd, true);
    }

    private static InputStream openIn(int fd) throws IOException {
        FileDescriptor d = inherited(fd);
        return d != null ? new FileInputStream(d) : new FileInputStream("/proc/self/fd/" + fd);
    }
}
