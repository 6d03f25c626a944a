"""codepane Python runner: runs one snippet inside the sandbox.

Started by codepane-server as `python3 -I -u -B /<runners>/python.py [code-path]`; the code
path defaults to /w/main.py (the sandbox binds the snippet there read-only). The snippet
runs as __main__ with the file name '<code>'. stdout and stderr are the sandbox's pipes
(unbuffered through -u); events go to fd 3 as JSON lines, which runner.c reads:

  {"type":"result","mime":{"text/plain":"..."},"isMainResult":true}
  {"type":"error","name":"ZeroDivisionError","value":"division by zero","traceback":"..."}

If the last top-level statement is an expression, it is evaluated on its own and, when
not None, its value becomes the main result (text/plain repr, plus the richer MIME types
an object offers through the IPython display protocol). Exit status: 1 after an error,
the SystemExit code when the snippet calls sys.exit, else 0.
"""

import ast
import base64
import builtins
import io
import json
import linecache
import os
import select
import sys
import traceback
import types

DEFAULT_CODE_PATH = "/w/main.py"
CODE_FILENAME = "<code>"
EVENT_FD = 3
RUNNER_FILE = os.path.abspath(__file__)

# IPython's display protocol: method name -> MIME type. Values of binary types may be
# bytes (base64-encoded here) or already base64 text.
REPR_METHODS = (
    ("_repr_html_", "text/html"),
    ("_repr_markdown_", "text/markdown"),
    ("_repr_svg_", "image/svg+xml"),
    ("_repr_png_", "image/png"),
    ("_repr_jpeg_", "image/jpeg"),
    ("_repr_latex_", "text/latex"),
    ("_repr_json_", "application/json"),
)
BINARY_MIME = ("image/png", "image/jpeg")


def _open_events():
    try:
        os.fstat(EVENT_FD)
    except OSError:
        return None  # run by hand without fd 3: events are dropped
    return EVENT_FD


_EV = _open_events()


def _write_all(fd, data):
    """Write every byte, also when the pipe is non-blocking (wait for room instead)."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        except InterruptedError:
            continue
        view = view[n:]


def emit(event):
    """Send one event line. stdout/stderr are flushed first so the server sees the
    output printed before the event ahead of it."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # the snippet may have replaced or closed them
            pass
    if _EV is None:
        return
    try:
        line = json.dumps(event, ensure_ascii=False, default=str, allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        # Not expressible as JSON (NaN in a _repr_json_, a cycle...): keep the text parts.
        mime = event.get("mime")
        if not isinstance(mime, dict):
            return
        event = dict(event, mime={k: v for k, v in mime.items() if isinstance(v, str)})
        line = json.dumps(event, ensure_ascii=False)
    line += "\n"
    try:
        _write_all(_EV, line.encode("utf-8", "replace"))
    except OSError:
        pass  # the server went away; nothing useful left to do


def _mime_bundle(value):
    bundle = {"text/plain": repr(value)}
    method = getattr(type(value), "_repr_mimebundle_", None)
    if method is not None:
        try:
            data = value._repr_mimebundle_()
            if isinstance(data, tuple):
                data = data[0]
            if isinstance(data, dict):
                for key, item in data.items():
                    if isinstance(key, str):
                        bundle[key] = _mime_value(key, item)
        except Exception:
            pass
    for name, mime in REPR_METHODS:
        if mime in bundle or getattr(type(value), name, None) is None:
            continue
        try:
            data = getattr(value, name)()
        except Exception:
            continue
        if isinstance(data, tuple):
            data = data[0]
        if data is not None:
            bundle[mime] = _mime_value(mime, data)
    return bundle


def _mime_value(mime, data):
    if mime in BINARY_MIME and isinstance(data, (bytes, bytearray)):
        return base64.b64encode(bytes(data)).decode("ascii")
    if isinstance(data, (bytes, bytearray)):
        return bytes(data).decode("utf-8", "replace")
    return data


def _user_tb(tb):
    """Drop the runner's own frames from the front of a traceback."""
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) == RUNNER_FILE:
        tb = tb.tb_next
    return tb


def emit_error(exc):
    tb = _user_tb(exc.__traceback__)
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    emit({"type": "error", "name": type(exc).__name__, "value": str(exc), "traceback": text})


def source_lines(source):
    """The snippet's lines as the tokenizer numbers them: split at \\n, \\r\\n and \\r only
    (universal newlines, as linecache reads a file), not at the other line boundaries
    str.splitlines knows (\\f, \\x1c-\\x1e, \\x85, \\u2028, \\u2029), which may appear
    inside a line of Python and would shift every traceback line after them."""
    return io.StringIO(source, newline=None).readlines()


def run(source):
    # Register the source so tracebacks show the snippet's lines.
    linecache.cache[CODE_FILENAME] = (len(source), None, source_lines(source), CODE_FILENAME)
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    main.__dict__["__file__"] = CODE_FILENAME
    sys.modules["__main__"] = main
    g = main.__dict__
    try:
        tree = ast.parse(source, CODE_FILENAME, "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        body = compile(tree, CODE_FILENAME, "exec")
        tail = compile(last, CODE_FILENAME, "eval") if last is not None else None
    except SyntaxError as exc:
        text = "".join(traceback.format_exception_only(type(exc), exc))
        emit({"type": "error", "name": type(exc).__name__, "value": str(exc), "traceback": text})
        return 1
    try:
        exec(body, g)
        if tail is not None:
            value = eval(tail, g)
            if value is not None:
                emit({"type": "result", "mime": _mime_bundle(value), "isMainResult": True})
    except SystemExit:
        raise
    except BaseException as exc:  # KeyboardInterrupt, GeneratorExit... are errors too
        emit_error(exc)
        return 1
    return 0


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_CODE_PATH
    with open(path, "rb") as f:
        raw = f.read()
    # The code is UTF-8 (it arrives as JSON text). A leading BOM is skipped, as
    # `python3 file.py` does; a coding cookie is not honoured (the bytes are UTF-8
    # whatever it says); invalid bytes become U+FFFD rather than a decode error.
    source = raw.decode("utf-8-sig", "replace")
    sys.argv = [path]
    code = run(source)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    return code


if __name__ == "__main__":
    sys.exit(main())
