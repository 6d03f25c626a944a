"""codepane Python kernel: one long-lived IPython interpreter per session (protocol 1).

Started by codepane-server inside the session's sandbox as
`python3 -I -B python_kernel.py`, with requests on fd 3 and events out on fd 4, as
src/server/kernels/README.md specifies. This module owns:

- the request loop (one `exec` at a time; `interrupt` requests are read between cells,
  when they no longer apply, and ignored: Python acts on SIGINT instead);
- the SIGINT policy: KeyboardInterrupt inside a running cell, nothing while idle;
- sys.stdout / sys.stderr, replaced by one capture that turns writes into ordered
  `stream` events (fd 1 and fd 2 stay the process's own, for what Python cannot see);
- IPython's display hook and display publisher, turned into `display` events, and its
  traceback display, turned into `error` events;
- the end of a cell: pending output, the sync markers on fd 1/2, then `done`.

It runs cells with IPython's InteractiveShell (no ZMQ, no ipykernel). matplotlib is not
imported here: MPLBACKEND makes the first `import matplotlib.pyplot` in a cell choose the
inline backend, which hooks itself into the shell. See /work/shared/notes/kernels.md §2
for the measurements behind these choices.
"""

import os

# Before anything can import matplotlib: pyplot reads this when it picks a backend, and
# matplotlib_inline then registers its figure flush with the running shell by itself.
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

import signal  # noqa: E402  (the environment above must be set first)


def _on_sigint(signum, frame):
    """SIGINT: interrupt the running cell, or nothing at all.

    While idle (also while blocked reading the next request) the handler returns, so the
    interrupted read is retried (PEP 475) and no request is lost. Inside the kernel's own
    critical sections (an event half written to fd 4, a traceback being formatted) the
    interrupt is held back and raised, or dropped, when the section ends (`_Hold`)."""
    global _int_pending
    if not _executing:
        return
    if _held:
        _int_pending = True
        return
    raise KeyboardInterrupt


# Installed first: a SIGINT during start-up must not kill the kernel.
_executing = False  # a cell is inside shell.run_cell
_held = 0  # depth of _Hold sections on the main thread
_int_pending = False  # a SIGINT arrived inside a _Hold section
signal.signal(signal.SIGINT, _on_sigint)

import base64  # noqa: E402
import codecs  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import select  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
import warnings  # noqa: E402

PROTOCOL = 1
REQUEST_FD = 3
EVENT_FD = 4
STDOUT_FD = 1
STDERR_FD = 2
READ_CHUNK = 65536
# A partial line (no newline, no flush) goes out after at most this long.
STREAM_TICK_S = 0.050
# A line goes out at once unless text went out less than this long ago; then it waits for
# at most this long, so that a loop of prints becomes a few large events, not one per line.
LINE_BATCH_S = 0.002
# Longer output is split into several stream events, so that no event line is huge.
STREAM_CHUNK_CHARS = 65536
# Output written by another thread between cells waits for the next cell; past this
# much, those threads block until a cell starts (memory stays bounded).
IDLE_PENDING_CAP_CHARS = 1 << 20
SYNC_MARKER = "\x1ecodepane-sync {}\n"
KERNEL_FILE = os.path.abspath(__file__)
# IPython warns on SystemExit that one should use exit() instead; here neither ends the
# kernel, so the advice is wrong.
EXIT_ADVICE = r"To exit: use 'exit', 'quit', or Ctrl-D\."
# MIME types whose values are JSON values (README, Events); every other value is a string.
JSON_MIME = re.compile(r"application/json|application/vnd\.vegalite\.v\d+\+json")
# Binary types travel base64-encoded.
BINARY_MIME = frozenset(("image/png", "image/jpeg", "image/gif", "application/pdf"))
ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")

_MAIN_THREAD = threading.get_ident()
_KERNEL_PID = os.getpid()  # a process with another pid is a fork of the kernel

# ---- interrupts --------------------------------------------------------------------


class _Hold:
    """A section of kernel code that SIGINT must not cut in two (main thread only; the
    handler never runs on other threads). With raise_after, an interrupt that arrived
    inside is raised when the outermost section ends, as if it came just after: that is
    for code the user's cell called (print, display), which must stay interruptible.
    Without, it is dropped: the cell is already ending or failing."""

    __slots__ = ("raise_after", "active")

    def __init__(self, raise_after):
        self.raise_after = raise_after
        self.active = False

    def __enter__(self):
        global _held
        self.active = threading.get_ident() == _MAIN_THREAD
        if self.active:
            _held += 1
        return self

    def __exit__(self, *exc):
        global _held, _int_pending
        if not self.active:
            return False
        _held -= 1
        if _held == 0 and _int_pending:
            _int_pending = False
            if self.raise_after and _executing and exc[0] is None:
                raise KeyboardInterrupt
        return False


# ---- events ------------------------------------------------------------------------

# One lock for fd 4 and for the pending stream text, so that stream events and the
# other events leave in exactly the order the cell produced them.
_lock = threading.RLock()
_cond = threading.Condition(_lock)
_cell_id = None  # id of the running cell; None between cells


def _write_all(fd, data):
    """Write every byte; wait for room if the pipe is non-blocking."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        view = view[n:]


def _json_default(value):
    """numpy scalars and arrays in a JSON-valued MIME entry, as plain JSON values."""
    for method in ("tolist", "item"):
        convert = getattr(value, method, None)
        if callable(convert):
            return convert()
    raise TypeError("not JSON serializable: %s" % type(value).__name__)


def _encode(event):
    """One event as a JSON line. A bundle that is still not valid JSON (NaN, a cycle,
    other objects in a JSON-valued MIME entry) keeps its string entries only."""
    try:
        line = json.dumps(event, ensure_ascii=False, allow_nan=False, separators=(",", ":"),
                          default=_json_default)
    except (ValueError, TypeError, RecursionError):
        data = event.get("data")
        if not isinstance(data, dict):
            raise
        event = dict(event, data={k: v for k, v in data.items() if isinstance(v, str)})
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    # A lone surrogate (from surrogateescape'd bytes, say) cannot be UTF-8: it becomes '?'.
    return (line + "\n").encode("utf-8", "replace")


def _write_event(event):
    """Write one event line to fd 4; the caller holds _lock. A server that is gone
    leaves nothing to do: the kernel exits."""
    try:
        _write_all(EVENT_FD, _encode(event))
    except BrokenPipeError:
        os._exit(0)


def emit(event, raise_after=True):
    """Send one event of the running cell, after the output written before it.

    A thread other than the main one that emits between cells waits for the next cell
    (its output belongs there, not to the cell that just ended)."""
    if _Capture.forked:
        return  # a forked child has no cell to report to (its prints go to fd 1/2)
    with _Hold(raise_after), _lock:
        if _cell_id is None:
            if threading.get_ident() == _MAIN_THREAD:
                return  # nothing of the kernel's own is ever emitted between cells
            while _cell_id is None:
                _cond.wait()
        _streams.flush_locked()
        event["id"] = _cell_id
        _write_event(event)


# ---- stdout / stderr ---------------------------------------------------------------


class _Streams:
    """The text written to sys.stdout and sys.stderr that has not been sent yet.

    Both streams share one pending buffer, so their events keep the order of the writes:
    a write to the other stream first sends what is pending. Pending text is sent at a
    newline (at once, or LINE_BATCH_S after the last send when that was very recent), on
    flush(), before any other event, and by a ticker thread once it is due (a partial
    line STREAM_TICK_S after it started). All state is guarded by _lock."""

    def __init__(self):
        self.name = None  # stream of the pending text
        self.parts = []
        self.size = 0
        self.due = 0.0  # when the pending text must go out
        self.sent_at = 0.0  # when text last went out
        self.idle_runs = []  # (name, text) runs written between cells, before `parts`
        self.ticker = None

    def write(self, name, text):
        with _Hold(True), _lock:
            if _cell_id is None:
                self._write_idle(name, text)
                return
            if self.parts and self.name != name:
                self.flush_locked()
            now = time.monotonic()
            if not self.parts:
                self.name = name
                self.due = now + STREAM_TICK_S
                if "\n" not in text:
                    _cond.notify_all()  # wake the ticker for this partial line
            self.parts.append(text)
            self.size += len(text)
            if "\n" in text:
                if now - self.sent_at >= LINE_BATCH_S or self.size >= STREAM_CHUNK_CHARS:
                    self.flush_locked()
                elif self.sent_at + LINE_BATCH_S < self.due:
                    self.due = self.sent_at + LINE_BATCH_S
                    _cond.notify_all()  # the ticker sends it when due

    def _write_idle(self, name, text):
        """Between cells (a thread of the user's still printing): keep the text for the
        next cell. Only other threads can get here."""
        if threading.get_ident() != _MAIN_THREAD:
            while _cell_id is None and self.size > IDLE_PENDING_CAP_CHARS:
                _cond.wait()
        if _cell_id is not None:
            self.write(name, text)  # a cell started while we waited
            return
        if self.parts and self.name != name:
            # A stream switch between cells: close the run, to keep the order.
            self.idle_runs.append((self.name, "".join(self.parts)))
            self.parts, self.size = [], 0
        self.name = name
        self.parts.append(text)
        self.size += len(text)

    def flush_locked(self):
        """Send what is pending; the caller holds _lock and a cell is running."""
        if self.idle_runs:
            runs, self.idle_runs = self.idle_runs, []
            for name, text in runs:
                self._send(name, text)
        if not self.parts:
            return
        text = "".join(self.parts)
        self.parts, self.size = [], 0
        self._send(self.name, text)

    def _send(self, name, text):
        self.sent_at = time.monotonic()
        for at in range(0, len(text), STREAM_CHUNK_CHARS):
            _write_event({"type": "stream", "id": _cell_id, "name": name,
                          "text": text[at:at + STREAM_CHUNK_CHARS]})

    def flush(self):
        with _Hold(True), _lock:
            if _cell_id is not None:
                self.flush_locked()

    def start_ticker(self):
        self.ticker = threading.Thread(target=self._tick, name="codepane-stream-ticker",
                                       daemon=True)
        self.ticker.start()

    def _tick(self):
        # SIGINT is for the main thread: a cell sleeping there must see it at once.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        with _lock:
            while True:
                if _cell_id is None or not self.parts:
                    _cond.wait()
                    continue
                left = self.due - time.monotonic()
                if left > 0:
                    _cond.wait(left)
                    continue
                self.flush_locked()

    def after_fork_in_child(self):
        """A forked child (multiprocessing) must not write to fd 4: the parent owns it,
        and the child has no ticker and maybe a lock copied while held. Its prints go
        to fd 1/2 instead, which the server forwards as the running cell's output."""
        global _lock, _cond
        _lock = threading.RLock()
        _cond = threading.Condition(_lock)
        self.parts, self.size, self.idle_runs = [], 0, []
        _Capture.forked = True


_streams = _Streams()


class _Capture(io.TextIOBase):
    """sys.stdout or sys.stderr of the kernel: writes become `stream` events.

    fileno() is the real fd 1 or 2, so that `subprocess.run(..., stdout=sys.stdout)`
    works; what the child writes there takes the fd path and the server forwards it."""

    forked = False  # set in a forked child: write straight to the fd

    def __init__(self, name, fd):
        super().__init__()
        self._name = name
        self._fd = fd
        self._child_buf = []  # a forked child's partial line
        self.buffer = _CaptureBytes(self)

    encoding = "utf-8"
    errors = "strict"
    newlines = None
    line_buffering = True

    @property
    def name(self):
        return "<%s>" % self._name

    @property
    def closed(self):
        return False  # close() is ignored: later prints must keep working

    def close(self):
        pass

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        return self._fd

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        if s:
            if _Capture.forked:
                # Whole lines, so that two children's prints do not mix mid-line.
                self._child_buf.append(s)
                if "\n" in s:
                    self.flush()
            else:
                _streams.write(self._name, s)
        return len(s)

    def flush(self):
        if not _Capture.forked:
            _streams.flush()
        elif self._child_buf:
            data = "".join(self._child_buf).encode("utf-8", "replace")
            self._child_buf.clear()
            _write_all(self._fd, data)


class _CaptureBytes(io.RawIOBase):
    """sys.stdout.buffer: bytes are decoded as UTF-8 (a character split across writes
    is kept for the next one) and go the same way as text."""

    def __init__(self, text):
        super().__init__()
        self._text = text
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def writable(self):
        return True

    def fileno(self):
        return self._text.fileno()

    def write(self, b):
        data = bytes(b)
        self._text.write(self._decoder.decode(data))
        return len(data)

    def flush(self):
        self._text.flush()

    def end_cell(self):
        """A character left incomplete at the end of a cell is U+FFFD in that cell; it must
        not complete with the next cell's bytes."""
        tail = self._decoder.decode(b"", final=True)
        self._decoder.reset()
        if tail:
            self._text.write(tail)


# The kernel's own sys.stdout and sys.stderr (a cell may replace the sys attributes).
_CAPTURES = []


# ---- IPython -----------------------------------------------------------------------

# Imported after the SIGINT handler and the environment are in place; this import is
# most of the start-up time. IPython's completer imports jedi (about 40 ms of a 200 ms
# start) only to offer completions, which this kernel never asks for: a None entry in
# sys.modules makes that import fail, the completer goes without, and the entry is
# removed again so that a cell can still `import jedi`.
_JEDI_BLOCKED = "jedi" not in sys.modules
if _JEDI_BLOCKED:
    sys.modules["jedi"] = None
from IPython.core.displayhook import DisplayHook  # noqa: E402
from IPython.core.displaypub import DisplayPublisher  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from traitlets.config import Config  # noqa: E402

if _JEDI_BLOCKED and sys.modules.get("jedi", 0) is None:
    del sys.modules["jedi"]


class _Cell:
    """What the kernel tracks about the running cell."""

    def __init__(self):
        self.main_sent = False
        self.errors = []  # ename of every error event sent


_cell = None


def _is_binary(mime):
    kind = mime.split("/", 1)[0]
    return mime in BINARY_MIME or (kind in ("image", "audio", "video")
                                   and not mime.endswith("+xml"))


def _mime_value(mime, value):
    if JSON_MIME.fullmatch(mime):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value)
        if _is_binary(mime):
            return base64.b64encode(value).decode("ascii")
        return value.decode("utf-8", "replace")  # SVG, HTML... handed over as bytes
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return str(value)


def _bundle(data):
    """IPython's format dict as the protocol's MIME bundle (README, Events)."""
    return {mime: _mime_value(mime, value) for mime, value in (data or {}).items()
            if isinstance(mime, str) and value is not None}


def _emit_display(data, main):
    emit({"type": "display", "data": _bundle(data), "main": main})


class _ResultHook(DisplayHook):
    """The value of the cell's last expression: the main result, with every
    representation IPython's formatters produce."""

    def start_displayhook(self):
        pass

    def write_output_prompt(self):
        pass

    def write_format_data(self, format_dict, md_dict=None):
        # At most one main result per cell; a second call (sys.displayhook by hand,
        # ast_node_interactivity='all') is shown, but not as the main one.
        main = _cell is not None and not _cell.main_sent
        if main:
            _cell.main_sent = True
        _emit_display(format_dict, main)

    def finish_displayhook(self):
        pass


class _Publisher(DisplayPublisher):
    """display(...), inline figures and display handles. The protocol has no update or
    clear: an update is shown as a new display, clear_output is ignored (the base
    class would print a terminal escape sequence)."""

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False,
                **kwargs):
        _emit_display(data, False)

    def clear_output(self, wait=False):
        pass


class _Shell(InteractiveShell):
    def enable_gui(self, gui=None):
        pass  # the base class raises NotImplementedError; `%matplotlib inline` calls it

    def ask_exit(self):
        # exit() and quit: a SystemExit like sys.exit(), reported as the cell's error.
        # The kernel lives on: the session's state is worth more than obeying it.
        raise SystemExit

    def system(self, cmd):
        # `!cmd` without the pty of system_piped: the command writes to fd 1/2 like any
        # subprocess, with plain \n line ends and no 100 ms pexpect start.
        sys.stdout.flush()
        return self.system_raw(cmd)

    def _get_exc_info(self, exc_tuple=None):
        etype, value, tb = super()._get_exc_info(exc_tuple)
        tb = _strip_kernel_frames(tb)
        sys.last_traceback = tb
        return etype, value, tb

    def showtraceback(self, *args, **kwargs):
        with _Hold(False):
            super().showtraceback(*args, **kwargs)

    def showsyntaxerror(self, *args, **kwargs):
        with _Hold(False):
            super().showsyntaxerror(*args, **kwargs)

    def _showtraceback(self, etype, evalue, stb):
        text = ANSI_ESCAPE.sub("", self.InteractiveTB.stb2text(stb))
        ename = getattr(etype, "__name__", str(etype))
        evalue_text = str(evalue)
        if issubclass(etype, KeyboardInterrupt) and not evalue_text:
            evalue_text = "interrupted"
        if _cell is not None:
            _cell.errors.append(ename)
        emit({"type": "error", "ename": ename, "evalue": evalue_text, "traceback": text},
             raise_after=False)


def _strip_kernel_frames(tb):
    """The traceback without this file's frames: the SIGINT handler, the stream capture
    a print was in when interrupted. The user should see only their own code."""
    kept = []
    t = tb
    while t is not None:
        if t.tb_frame.f_code.co_filename != KERNEL_FILE:
            kept.append(t)
        t = t.tb_next
    if not kept or len(kept) == _tb_len(tb):
        return tb
    new = None
    for t in reversed(kept):
        new = types.TracebackType(new, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return new


def _tb_len(tb):
    n = 0
    while tb is not None:
        n, tb = n + 1, tb.tb_next
    return n


def _make_shell():
    cfg = Config()
    # No sqlite file and no history thread; In, Out and _N still work.
    cfg.HistoryManager.enabled = False
    shell = _Shell.instance(config=cfg, displayhook_class=_ResultHook,
                            display_pub_class=_Publisher, colors="NoColor")
    warnings.filterwarnings("ignore", message=EXIT_ADVICE)
    return shell


# ---- cells -------------------------------------------------------------------------


_libc = None


def _flush_c_stdio():
    """printf from C extensions sits in libc's buffers; it belongs to this cell."""
    global _libc
    try:
        if _libc is None:
            import ctypes
            _libc = ctypes.CDLL(None)
        _libc.fflush(None)
    except (OSError, AttributeError, ImportError):
        _libc = False


def run_cell(shell, cell_id, code):
    """Run one cell and report it, through its `done`."""
    global _cell, _cell_id, _executing, _int_pending
    cell = _cell = _Cell()
    with _lock:
        _cell_id = cell_id
        _streams.flush_locked()  # what other threads printed between cells
        _cond.notify_all()
    before = shell.execution_count
    result = None
    escaped = False
    _int_pending = False
    try:
        try:
            _executing = True
            result = shell.run_cell(code, store_history=True)
        finally:
            _executing = False
    except KeyboardInterrupt:
        # The signal came while IPython itself was between steps, not in the cell's code.
        escaped = True
    if os.getpid() != _KERNEL_PID:
        # A child the cell forked (os.fork) and that got to the end of the cell: it must
        # not answer requests or write events; the parent does.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    if escaped and not cell.errors:  # a cell that failed already keeps its own error
        cell.errors.append("KeyboardInterrupt")
        emit({"type": "error", "ename": "KeyboardInterrupt", "evalue": "interrupted",
              "traceback": "KeyboardInterrupt: interrupted\n"}, raise_after=False)
    # IPython does not count an empty cell and counts a failed input transform twice;
    # the protocol counts every cell once.
    shell.execution_count = before + 1
    if "KeyboardInterrupt" in cell.errors:
        status = "interrupted"
    elif cell.errors or (result is not None and not result.success):
        status = "error"
    else:
        status = "ok"
    _finish(cell_id, {"type": "done", "status": status, "count": before})
    _cell = None


def _finish(cell_id, done):
    """Pending output, then the sync markers, then `done` (README, Events)."""
    global _cell_id
    for capture in _CAPTURES:
        capture.buffer.end_cell()
    with _lock:
        _streams.flush_locked()
        for stream in (sys.__stdout__, sys.__stderr__):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass  # closed or replaced by the cell
        _flush_c_stdio()
        marker = SYNC_MARKER.format(cell_id).encode("ascii")
        for fd in (STDOUT_FD, STDERR_FD):
            try:
                _write_all(fd, marker)
            except OSError:
                pass  # the cell closed the fd; the server will notice
        done["id"] = cell_id
        _write_event(done)
        _cell_id = None


def _reject(shell, cell_id, message):
    """An exec request the kernel cannot run still gets its error and done (the server
    waits for it); it ran no cell, so the count stays."""
    global _cell_id
    with _lock:
        _cell_id = cell_id
        _streams.flush_locked()
        _write_event({"type": "error", "id": cell_id, "ename": "ProtocolError",
                      "evalue": message, "traceback": message + "\n"})
    _finish(cell_id, {"type": "done", "status": "error", "count": shell.execution_count - 1})


def _requests():
    """Request objects from fd 3, one per line, until EOF."""
    buf = bytearray()
    start = 0
    while True:
        nl = buf.find(b"\n", start)
        if nl < 0:
            start = len(buf)
            chunk = os.read(REQUEST_FD, READ_CHUNK)  # retried after an idle SIGINT
            if not chunk:
                return
            buf += chunk
            continue
        line = bytes(buf[:nl])
        del buf[:nl + 1]
        start = 0
        try:
            req = json.loads(line.decode("utf-8", "replace"))
        except ValueError:
            continue  # not a request; nothing to answer
        if isinstance(req, dict):
            yield req


def main():
    shell = _make_shell()
    sys.stdout = _Capture("stdout", STDOUT_FD)
    sys.stderr = _Capture("stderr", STDERR_FD)
    _CAPTURES[:] = [sys.stdout, sys.stderr]
    os.register_at_fork(after_in_child=_streams.after_fork_in_child)
    _streams.start_ticker()
    with _lock:
        _write_event({"type": "ready", "protocol": PROTOCOL, "language": "python"})
    for req in _requests():
        if req.get("op") != "exec":
            continue  # an interrupt for a cell that is over, or an unknown op
        cell_id = req.get("id")
        if not isinstance(cell_id, int) or isinstance(cell_id, bool) or cell_id <= 0:
            continue  # no id to answer with
        code = req.get("code")
        if not isinstance(code, str):
            _reject(shell, cell_id, "exec request without code")
            continue
        run_cell(shell, cell_id, code)
    # EOF on fd 3: the server is done with this kernel. os._exit: a thread the user left
    # running must not keep the process alive (nor one blocked on a full fd 4 hold the
    # lock we would need), and there is no one left to report to.
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)


if __name__ == "__main__":
    main()
