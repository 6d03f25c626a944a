/* codepane Java kernel: everything the kernel tells the server on fd 4, and the capture of
 * System.out / System.err into `stream` events.
 *
 * One lock (`lock`) orders every event line: a line is built in memory and written with a
 * single write() while the lock is held, so lines never interleave and a blocked fd 4
 * (the server reading slowly) holds back every writer, which is the back-pressure the
 * README asks for. Text printed by the program waits in one pending buffer, tagged with
 * its stream, and is sent (README "stream" rules):
 *   - when a write contains a newline, or on an explicit flush();
 *   - before a write to the other stream, and before any other event;
 *   - by the ticker thread PARTIAL_LINE_DELAY_MS after the first unsent byte;
 *   - when it grows past MAX_PENDING_BYTES.
 * Between cells (no cell id) nothing is sent: what background threads print or display
 * is kept, in order, for the next cell, up to IDLE_OUTPUT_CAP bytes and IDLE_DISPLAY_CAP
 * displays (more is dropped, and the next cell says so on stderr). */
package codepane.kernel;

import java.io.ByteArrayOutputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

final class Events {
    /** A partial line is sent this long after its first byte; under the README's 50 ms with room for scheduling. */
    static final long PARTIAL_LINE_DELAY_MS = 40;
    /** Pending text is sent once it is this large, newline or not. */
    static final int MAX_PENDING_BYTES = 64 * 1024;
    /** Size of the pending buffer kept between writes (it grows for a large write, then shrinks back). */
    static final int PENDING_KEEP_BYTES = 8192;
    /** Output written while no cell runs is kept up to this size for the next cell. */
    static final int IDLE_OUTPUT_CAP = 1024 * 1024;
    /** display() calls made while no cell runs that are kept for the next cell. */
    static final int IDLE_DISPLAY_CAP = 32;
    /** How long a shutdown (System.exit in a cell) waits for the lock to send what is pending. */
    static final long SHUTDOWN_FLUSH_WAIT_MS = 500;

    static final String STDOUT = "stdout";
    static final String STDERR = "stderr";

    private static volatile Events current;

    private final FileOutputStream wire; // fd 4
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition tick = lock.newCondition();

    // All guarded by lock.
    private long cellId; // 0 while idle
    private String pendingName; // stream of the pending bytes, null when none
    private byte[] pending = new byte[PENDING_KEEP_BYTES];
    private int pendingLen;
    private long pendingSince; // System.nanoTime() of the oldest unsent byte
    private boolean tailHeld; // all that is pending is an incomplete UTF-8 sequence: wait for the rest
    private final List<Object> idle = new ArrayList<>(); // IdleOutput or display JSON, in order
    private int idleBytes, idleDisplays;
    private boolean idleOverflow;

    /** Output written to one stream while no cell ran (consecutive writes merged). */
    private static final class IdleOutput {
        final String name;
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();

        IdleOutput(String name) {
            this.name = name;
        }
    }

    Events(FileOutputStream wire) {
        this.wire = wire;
    }

    /** The kernel's event writer, or null outside a kernel (Display uses it). */
    static Events current() {
        return current;
    }

    /** Make this the writer Display reaches, and start the ticker thread. */
    void install() {
        current = this;
        Thread t = new Thread(this::tickerLoop, "jkernel-ticker");
        t.setDaemon(true);
        t.start();
    }

    /** An OutputStream (for System.setOut/setErr) whose bytes become `stream` events of `name`. */
    OutputStream capture(String name) {
        return new OutputStream() {
            @Override
            public void write(int b) {
                write(new byte[] {(byte) b}, 0, 1);
            }

            @Override
            public void write(byte[] b, int off, int len) {
                append(name, b, off, len);
            }

            @Override
            public void flush() {
                flushStream(name);
            }
        };
    }

    // ---- cells -------------------------------------------------------------------------

    /** Start attributing output to cell `id`; sends what was held back while idle. */
    void beginCell(long id) {
        lock.lock();
        try {
            cellId = id;
            for (Object o : idle) {
                if (o instanceof IdleOutput) {
                    IdleOutput out = (IdleOutput) o;
                    byte[] b = out.bytes.toByteArray();
                    appendLocked(out.name, b, 0, b.length);
                } else {
                    sendDisplay((String) o, false);
                }
            }
            idle.clear();
            idleBytes = idleDisplays = 0;
            if (idleOverflow) {
                idleOverflow = false;
                stream(STDERR, "[kernel: output written between cells was cut short]\n");
            }
        } finally {
            lock.unlock();
        }
    }

    /** Send all pending output of the cell (an incomplete UTF-8 tail included). */
    void flushAll() {
        lock.lock();
        try {
            sendPending(true);
        } finally {
            lock.unlock();
        }
    }

    /** The cell's last event: pending output, then `done`; the kernel is idle after it. */
    void done(long id, String status, long count) {
        lock.lock();
        try {
            sendPending(true);
            StringBuilder sb = head("done", id);
            sb.append(",\"status\":");
            Json.quote(sb, status);
            sb.append(",\"count\":").append(count).append('}');
            cellId = 0;
            writeLine(sb);
        } finally {
            lock.unlock();
        }
    }

    void ready() {
        lock.lock();
        try {
            writeLine(new StringBuilder("{\"type\":\"ready\",\"protocol\":1,\"language\":\"java\"}"));
        } finally {
            lock.unlock();
        }
    }

    void error(String ename, String evalue, String traceback) {
        lock.lock();
        try {
            sendPending(true);
            StringBuilder sb = head("error", cellId);
            sb.append(",\"ename\":");
            Json.quote(sb, ename);
            sb.append(",\"evalue\":");
            Json.quote(sb, evalue);
            sb.append(",\"traceback\":");
            Json.quote(sb, traceback);
            sb.append('}');
            writeLine(sb);
        } finally {
            lock.unlock();
        }
    }

    /** A rich output; `data` is the MIME bundle's JSON text (an object, no raw newline). */
    void display(String data, boolean main) {
        lock.lock();
        try {
            if (cellId == 0) {
                if (idleDisplays < IDLE_DISPLAY_CAP) {
                    idle.add(data);
                    idleDisplays++;
                } else {
                    idleOverflow = true;
                }
                return;
            }
            sendDisplay(data, main);
        } finally {
            lock.unlock();
        }
    }

    /** Text the kernel itself reports on a stream (warnings such as unresolved references). */
    void stream(String name, String text) {
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        append(name, b, 0, b.length);
    }

    /** At JVM exit (System.exit in a cell): send what is pending, unless the lock stays busy. */
    void flushAtExit() {
        try {
            if (!lock.tryLock(SHUTDOWN_FLUSH_WAIT_MS, TimeUnit.MILLISECONDS)) return;
        } catch (InterruptedException e) {
            return;
        }
        try {
            if (cellId != 0) sendPending(true);
        } finally {
            lock.unlock();
        }
    }

    // ---- internals (lock held) ---------------------------------------------------------

    private void append(String name, byte[] b, int off, int len) {
        lock.lock();
        try {
            appendLocked(name, b, off, len);
        } finally {
            lock.unlock();
        }
    }

    private void appendLocked(String name, byte[] b, int off, int len) {
        if (len <= 0) return;
        if (cellId == 0) {
            int keep = Math.min(len, IDLE_OUTPUT_CAP - idleBytes);
            if (keep < len) idleOverflow = true;
            if (keep > 0) {
                Object last = idle.isEmpty() ? null : idle.get(idle.size() - 1);
                IdleOutput out = last instanceof IdleOutput && ((IdleOutput) last).name.equals(name)
                        ? (IdleOutput) last : new IdleOutput(name);
                if (out != last) idle.add(out);
                out.bytes.write(b, off, keep);
                idleBytes += keep;
            }
            return;
        }
        if (pendingLen > 0 && !name.equals(pendingName)) sendPending(true);
        if (pendingLen == 0) pendingSince = System.nanoTime();
        if (pendingLen == 0 || tailHeld) {
            tailHeld = false;
            tick.signal();
        }
        pendingName = name;
        if (pendingLen + len > pending.length) {
            pending = Arrays.copyOf(pending, Math.max(pending.length * 2, pendingLen + len));
        }
        System.arraycopy(b, off, pending, pendingLen, len);
        pendingLen += len;
        boolean newline = false;
        for (int i = off; i < off + len; i++) {
            if (b[i] == '\n') {
                newline = true;
                break;
            }
        }
        if (newline || pendingLen >= MAX_PENDING_BYTES) sendPending(false);
    }

    private void flushStream(String name) {
        lock.lock();
        try {
            if (name.equals(pendingName)) sendPending(false);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Send the pending text as one `stream` event. Unless `all`, an incomplete UTF-8
     * sequence at the end stays pending for the bytes that complete it.
     */
    private void sendPending(boolean all) {
        if (pendingLen == 0 || cellId == 0) return;
        int cut = all ? pendingLen : completeUtf8Prefix(pending, pendingLen);
        if (cut == 0) return;
        tailHeld = false;
        CharsetDecoder dec = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPLACE)
                .onUnmappableCharacter(CodingErrorAction.REPLACE);
        String text;
        try {
            CharBuffer cb = dec.decode(ByteBuffer.wrap(pending, 0, cut));
            text = cb.toString();
        } catch (java.nio.charset.CharacterCodingException e) {
            text = new String(pending, 0, cut, StandardCharsets.UTF_8); // unreachable with REPLACE
        }
        String name = pendingName;
        System.arraycopy(pending, cut, pending, 0, pendingLen - cut);
        pendingLen -= cut;
        if (pendingLen == 0) {
            pendingName = null;
            if (pending.length > PENDING_KEEP_BYTES) pending = new byte[PENDING_KEEP_BYTES]; // after one huge write
        } else {
            pendingSince = System.nanoTime();
        }
        StringBuilder sb = head("stream", cellId);
        sb.append(",\"name\":");
        Json.quote(sb, name);
        sb.append(",\"text\":");
        Json.quote(sb, text);
        sb.append('}');
        writeLine(sb);
    }

    /** Length of the longest prefix of b[0..len) that does not end inside a UTF-8 sequence. */
    static int completeUtf8Prefix(byte[] b, int len) {
        for (int back = 1; back <= 3 && back <= len; back++) {
            int c = b[len - back] & 0xff;
            if (c < 0x80) return len; // ASCII: complete
            if (c >= 0xc0) { // lead byte: is its sequence all there?
                int need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
                return need > back ? len - back : len;
            }
        }
        return len; // only continuation bytes: malformed anyway, send as it is
    }

    private void sendDisplay(String data, boolean main) {
        sendPending(true);
        StringBuilder sb = head("display", cellId);
        sb.append(",\"data\":").append(data);
        sb.append(",\"main\":").append(main).append('}');
        writeLine(sb);
    }

    private static StringBuilder head(String type, long id) {
        return new StringBuilder(128).append("{\"type\":\"").append(type).append("\",\"id\":").append(id);
    }

    /**
     * One event line, one write(). A server that stopped reading (EPIPE) cannot be
     * reported to, so the kernel ends; halt() skips the shutdown hook that would try fd 4 again.
     */
    private void writeLine(StringBuilder sb) {
        sb.append('\n');
        byte[] line = sb.toString().getBytes(StandardCharsets.UTF_8);
        try {
            wire.write(line);
        } catch (IOException e) {
            Runtime.getRuntime().halt(JKernel.EXIT_WIRE_LOST);
        }
    }

    private void tickerLoop() {
        lock.lock();
        try {
            while (true) {
                try {
                    if (pendingLen == 0 || cellId == 0 || tailHeld) {
                        tick.await();
                        continue;
                    }
                    long due = pendingSince + TimeUnit.MILLISECONDS.toNanos(PARTIAL_LINE_DELAY_MS);
                    long wait = due - System.nanoTime();
                    if (wait > 0) {
                        tick.awaitNanos(wait);
                        continue;
                    }
                    int before = pendingLen;
                    sendPending(false);
                    // Only an incomplete UTF-8 sequence (at most 3 bytes) is left: it waits for
                    // the bytes that complete it, a flush, the other stream or the cell's end.
                    if (pendingLen == before) tailHeld = true;
                } catch (InterruptedException e) {
                    // Not expected (nothing interrupts this thread); keep ticking.
                } catch (Throwable t) {
                    // An OutOfMemoryError while building a line must not end the ticker.
                }
            }
        } finally {
            lock.unlock();
        }
    }
}
