'use strict';
/* codepane JavaScript kernel: protocol 1 of README.md in this folder.
 *
 * Command line (the server puts the sandbox around it; the path is where the kernel dir is
 * bound):
 *
 *   /usr/bin/node --no-force-async-hooks-checks /kernel/node_kernel.cjs
 *
 * The flag is required. An interrupt that stops JS running inside a callback (a timer, an
 * I/O callback) unwinds Node's own callback code too; with the async-hook checks on, Node
 * then aborts the whole process ("async hook stack has become corrupted").
 *
 * Two threads:
 * - main runs the cells. Each cell is one `Runtime.evaluate` with `replMode: true` and
 *   `awaitPromise: true` on an in-process inspector session, in the main context: `let`,
 *   `const`, functions and classes persist, a later cell may declare them again, and
 *   top-level `await` works. console.*, process.stdout/stderr.write and display() become
 *   events on fd 4, written synchronously with fs.writeSync in call order.
 * - a worker (this file again) owns fd 3. It forwards `exec` to main and handles
 *   `interrupt` itself, because main may be spinning in the cell's JS. To interrupt, it
 *   evaluates interruptCheck() on main through its own inspector session. The inspector
 *   runs that either between tasks (main was idle: the cell is awaiting, so it is simply
 *   abandoned) or inside the running JS (main was busy: the check asks V8 to terminate
 *   it). The decision is taken on main, from main's own stack, so it cannot race with the
 *   cell ending; the worker repeats the check until the cell is over.
 *
 * The kernel writes nothing of its own to fd 1/2 except the sync markers. SIGINT is
 * ignored: the server's signal comes with an `interrupt` request, which does the work. */

const fs = require('fs');
const { isMainThread } = require('worker_threads');

const PROTOCOL = 1;
const LANGUAGE = 'javascript';
const REQUEST_FD = 3;
const EVENT_FD = 4;
const INSPECT_OPTIONS = Object.freeze({ depth: 4, colors: false });
/* Exit status when the request thread dies (the kernel can no longer hear the server). */
const EXIT_WORKER_FAILED = 70;
/* Output and display() calls made while no cell runs (callbacks that outlive their cell)
 * are kept, up to this many characters, and reported as the next cell's. */
const HELD_OUTPUT_CHARS = 1 << 20;
/* Worker: pause between two interrupt checks while the cell is not over yet. */
const INTERRUPT_RETRY_MS = 10;
/* Worker: request ids remembered for `interrupt` (the server runs one cell at a time). */
const REMEMBERED_IDS = 16;
/* Frames looked at to tell user code from the kernel's own when an interrupt lands. */
const FRAME_SCAN_LIMIT = 100;
/* The dynamic import helper. Same length as `import`, so columns in tracebacks stay the
 * user's. */
const IMPORT_HELPER = '__kimp';
const CAPTURE = Symbol.for('codepane.kernel.capture');
const INTERRUPT_HOOK = Symbol.for('codepane.kernel.interrupt');
/* Called with `this` set to a cell's result or thrown value, so the kernel gets the real
 * object behind a RemoteObject: it hands `this` to the kernel's receiver (a fixed global
 * that a cell cannot replace, even by freezing globalThis). Strict, or a primitive `this`
 * (a Symbol) comes boxed. */
const CAPTURE_FUNCTION = `function () { "use strict"; globalThis[Symbol.for('codepane.kernel.capture')](this); }`;
/* interruptCheck() answers: */
const CHECK_OVER = 'over'; // the cell has finished (or was never ours): stop
const CHECK_PENDING = 'pending'; // not started yet
const CHECK_BUSY = 'busy'; // only kernel or Node code on the stack right now
const CHECK_TERMINATING = 'terminating'; // user code was running; V8 was asked to end it

if (isMainThread) mainThread();
else workerThread();

/* ------------------------------------------------------------------------------------ */
/* Worker thread: requests.                                                              */
/* ------------------------------------------------------------------------------------ */

function workerThread() {
  const net = require('net');
  const { parentPort, workerData } = require('worker_threads');

  let session = null; // connected only while an interrupt is in progress (see interrupt)
  const ordinals = new Map(); // request id → ordinal of the exec (= main's execution count)
  let forwarded = 0;
  const interrupting = new Set();

  const isId = (v) => Number.isSafeInteger(v) && v > 0;

  function onLine(line) {
    let req;
    try {
      req = JSON.parse(line);
    } catch {
      return; // not a request
    }
    if (!req || typeof req !== 'object') return;
    if (req.op === 'exec' && isId(req.id) && typeof req.code === 'string') {
      forwarded += 1;
      ordinals.delete(req.id);
      ordinals.set(req.id, forwarded);
      if (ordinals.size > REMEMBERED_IDS) ordinals.delete(ordinals.keys().next().value);
      parentPort.postMessage({ op: 'exec', id: req.id, code: req.code, ordinal: forwarded });
    } else if (req.op === 'interrupt' && isId(req.id)) {
      interrupt(req.id);
    }
  }

  /* Ask main whether cell `ordinal` still runs and stop it if so (see interruptCheck). */
  function check(ordinal) {
    const expression = `globalThis[Symbol.for('codepane.kernel.interrupt')](${ordinal})`;
    return new Promise((resolve) => {
      session.post('Runtime.evaluate', { expression, returnByValue: true, silent: true }, (err, reply) => {
        // An error here means the check itself was caught by a termination: try again.
        resolve(err || reply.exceptionDetails ? CHECK_BUSY : reply.result.value);
      });
    });
  }

  /* The session to main is opened here and closed when no interrupt is left: one still
   * connected when the process exits makes Node print "Waiting for the debugger to
   * disconnect..." on fd 2. Connecting works while main spins. */
  async function interrupt(id) {
    const ordinal = ordinals.get(id);
    if (ordinal === undefined || interrupting.has(ordinal)) return; // unknown, or already on it
    interrupting.add(ordinal);
    if (!session) {
      session = new (require('inspector').Session)();
      session.connectToMainThread();
    }
    try {
      while ((await check(ordinal)) !== CHECK_OVER) {
        await new Promise((resolve) => setTimeout(resolve, INTERRUPT_RETRY_MS));
      }
    } finally {
      interrupting.delete(ordinal);
      if (interrupting.size === 0) {
        session.disconnect();
        session = null;
      }
    }
  }

  // Event-loop reads (not a blocking readSync), so the worker stays free to interrupt.
  const input = new net.Socket({ fd: workerData.requestFd, readable: true, writable: false });
  input.setEncoding('utf8');
  let partial = [];
  input.on('data', (chunk) => {
    let start = 0;
    let nl;
    while ((nl = chunk.indexOf('\n', start)) >= 0) {
      partial.push(chunk.slice(start, nl));
      onLine(partial.join(''));
      partial = [];
      start = nl + 1;
    }
    if (start < chunk.length) partial.push(chunk.slice(start));
  });
  const eof = () => parentPort.postMessage({ op: 'eof' });
  input.on('end', eof);
  input.on('error', eof);
}

/* ------------------------------------------------------------------------------------ */
/* Main thread: cells.                                                                   */
/* ------------------------------------------------------------------------------------ */

function mainThread() {
  const path = require('path');
  const util = require('util');
  const vm = require('vm');
  const inspector = require('inspector');
  const Module = require('module');
  const { Console } = require('console');
  const { StringDecoder } = require('string_decoder');
  const { pathToFileURL } = require('url');
  const { MessageChannel, Worker } = require('worker_threads');

  const { captureStackTrace } = Error;
  const pause = new Int32Array(new SharedArrayBuffer(4));

  /* Our own copies of fds 3 and 4, opened close-on-exec (Node opens every file with
   * O_CLOEXEC), and the inherited ones closed: a child process the user starts must not
   * hold the request or event pipe open (the server would not see the kernel die), nor
   * write into it. Where the reopen is not possible (no /proc; a socket), keep the fd. */
  function privateFd(fd, flags) {
    try {
      const copy = fs.openSync(`/proc/self/fd/${fd}`, flags);
      fs.closeSync(fd);
      return copy;
    } catch {
      return fd;
    }
  }
  const requestFd = privateFd(REQUEST_FD, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const eventFd = privateFd(EVENT_FD, fs.constants.O_WRONLY);

  // Started first: it boots in parallel with the rest of the set-up, and after `ready` (a
  // request sent before it reads fd 3 waits in the pipe).
  const worker = new Worker(__filename, { workerData: { requestFd } });

  /* --- writing ------------------------------------------------------------------------ */

  function writeAll(fd, text) {
    const buf = Buffer.from(text, 'utf8');
    let off = 0;
    while (off < buf.length) {
      try {
        off += fs.writeSync(fd, buf, off, buf.length - off);
      } catch (e) {
        if (e.code !== 'EAGAIN') throw e;
        Atomics.wait(pause, 0, 0, 1); // a non-blocking pipe that is full: let the reader catch up
      }
    }
  }

  /* One event, one line, from this thread only. Without the server there is nobody to
   * report to, so a failed write ends the kernel. */
  function emit(event) {
    try {
      writeAll(eventFd, `${JSON.stringify(event)}\n`);
    } catch {
      process.exit(1);
    }
  }

  /* --- the running cell and what arrives between cells ---------------------------------- */

  let count = 0; // cells run, this one included
  let current = null; // {id, count, group, source, interrupted, interruptedAt, probed}
  const queue = []; // exec requests not started yet (the server sends one at a time)
  let closing = false;
  let exiting = false; // process.exit() was called (by a cell, or at EOF)
  let held = []; // events without an id, made while no cell ran
  let heldChars = 0;
  let droppedChars = 0;

  /* Send an event of the running cell, or hold it for the next one. */
  function cellEvent(type, fields, size) {
    if (current) {
      emit({ type, id: current.id, ...fields });
    } else if (heldChars + size <= HELD_OUTPUT_CHARS) {
      held.push({ type, fields });
      heldChars += size;
    } else {
      droppedChars += size;
    }
  }

  function releaseHeld(cell) {
    for (const { type, fields } of held) emit({ type, id: cell.id, ...fields });
    if (droppedChars > 0) {
      const text = `[codepane: ${droppedChars} more characters of output written between cells were dropped]\n`;
      emit({ type: 'stream', id: cell.id, name: 'stderr', text });
    }
    held = [];
    heldChars = 0;
    droppedChars = 0;
  }

  /* --- output capture ----------------------------------------------------------------- */

  const decoders = { stdout: null, stderr: null }; // for Buffer writes split inside a character

  function flushDecoder(name) {
    const d = decoders[name];
    decoders[name] = null;
    return d ? d.end() : '';
  }

  function decode(name, buf) {
    if (!decoders[name]) decoders[name] = new StringDecoder('utf8');
    return decoders[name].write(buf);
  }

  function pushStream(name, text) {
    if (text) cellEvent('stream', { name, text }, text.length);
  }

  /* process.stdout/stderr.write and console's streams. Every non-empty chunk is one event,
   * at once: nothing waits, so a partial line is out as soon as it is written, and stdout
   * and stderr keep their call order. */
  function writeStream(name, chunk, encoding, callback) {
    if (typeof encoding === 'function') {
      callback = encoding;
      encoding = undefined;
    }
    let text;
    if (typeof chunk === 'string') {
      text = encoding && !/^utf-?8$/i.test(encoding)
        ? decode(name, Buffer.from(chunk, encoding))
        : flushDecoder(name) + chunk;
    } else if (ArrayBuffer.isView(chunk)) {
      text = decode(name, Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    } else {
      const shown = util.inspect(chunk, INSPECT_OPTIONS);
      throw new TypeError(`The "chunk" argument must be of type string or an instance of Buffer or Uint8Array. Received ${shown}`);
    }
    pushStream(name, text);
    if (typeof callback === 'function') process.nextTick(callback);
    return true;
  }

  function captureOutput() {
    const sink = (name) => ({ write: (chunk, encoding, cb) => writeStream(name, chunk, encoding, cb) });
    const ours = new Console({ stdout: sink('stdout'), stderr: sink('stderr'), ignoreErrors: false, colorMode: false });
    ours.Console = Console;
    Object.defineProperty(globalThis, 'console', { value: ours, writable: true, enumerable: false, configurable: true });
    // process.stdout/stderr are made on first use; patch them then, not at start-up.
    for (const name of ['stdout', 'stderr']) {
      const original = Object.getOwnPropertyDescriptor(process, name);
      let stream = null;
      Object.defineProperty(process, name, {
        configurable: true,
        enumerable: original.enumerable,
        get() {
          if (!stream) {
            stream = original.get ? original.get.call(process) : original.value;
            stream.write = (chunk, encoding, cb) => writeStream(name, chunk, encoding, cb);
          }
          return stream;
        },
      });
    }
  }

  /* --- values ------------------------------------------------------------------------- */

  const session = new inspector.Session();
  session.connect();
  // Only for Runtime.terminateExecution, which may have to be sent while `session` is in
  // the middle of the cell's evaluate.
  const haltSession = new inspector.Session();
  haltSession.connect();

  function fromUnserializable(text) {
    if (text.endsWith('n')) return BigInt(text.slice(0, -1));
    if (text === '-0') return -0;
    return Number(text); // NaN, Infinity, -Infinity
  }

  let captured;
  const receive = (value) => { captured = value; };

  /* The real value behind a RemoteObject of the main context (callFunctionOn answers
   * synchronously). Should it fail, a stand-in that inspects as the inspector's
   * description. */
  function fromRemote(remote) {
    if (remote.objectId === undefined) {
      return 'unserializableValue' in remote ? fromUnserializable(remote.unserializableValue) : remote.value;
    }
    let failed = true;
    captured = undefined;
    session.post('Runtime.callFunctionOn', { objectId: remote.objectId, functionDeclaration: CAPTURE_FUNCTION, silent: true },
      (err, reply) => { failed = Boolean(err || reply.exceptionDetails); });
    const value = captured;
    captured = undefined;
    return failed ? { [util.inspect.custom]: () => String(remote.description) } : value;
  }

  const inspect = (value) => util.inspect(value, INSPECT_OPTIONS);

  function isErrorLike(v) {
    return util.types.isNativeError(v) || v instanceof Error
      || (v !== null && typeof v === 'object' && typeof v.stack === 'string' && 'message' in v);
  }

  /* A stack without the kernel's frames: the ones above user code (display(), console)
   * are left out, and everything from the inspector call that ran the cell on is cut. */
  function userStack(stackText) {
    const out = [];
    for (const line of stackText.split('\n')) {
      if (/^\s+at /.test(line)) {
        if (line.includes('node:inspector')) break;
        if (line.includes(__filename)) continue;
      }
      out.push(line);
    }
    return out.join('\n');
  }

  /* What a compile error of the cell looks like at Node's own top level. */
  function syntaxTraceback(cell, source, details, message) {
    const lineText = source.split('\n')[details.lineNumber] ?? '';
    const caret = ' '.repeat(Math.max(0, details.columnNumber)) + '^';
    return `cell${cell.count}:${details.lineNumber + 1}\n${lineText}\n${caret}\n\n${message}`;
  }

  /* ename/evalue/traceback for any thrown value. A non-Error is `Uncaught` and the inspected
   * value, as Node's REPL prints it. */
  function describeThrown(value, cell, source, details) {
    if (!isErrorLike(value)) {
      const shown = inspect(value);
      return { ename: 'Uncaught', evalue: shown, traceback: `Uncaught ${shown}` };
    }
    const ename = String(value.name ?? 'Error');
    const evalue = String(value.message ?? '');
    const stack = typeof value.stack === 'string' ? value.stack : `${ename}: ${evalue}`;
    let traceback = userStack(stack);
    const compileError = value instanceof SyntaxError && !/\n\s+at /.test(traceback) && details;
    if (compileError) traceback = syntaxTraceback(cell, source, details, traceback);
    return { ename, evalue, traceback };
  }

  /* Same, for a thrown value whose own getters may throw (a hostile `name` or `stack`). */
  function safeDescribe(value, cell, source, details) {
    try {
      return describeThrown(value, cell, source, details);
    } catch (e) {
      return { ename: 'Error', evalue: 'the thrown value could not be described', traceback: String(e && e.message) };
    }
  }

  /* --- display() ---------------------------------------------------------------------- */

  const MIME_ALIASES = Object.freeze(Object.assign(Object.create(null), {
    text: 'text/plain',
    html: 'text/html',
    markdown: 'text/markdown',
    md: 'text/markdown',
    latex: 'text/latex',
    svg: 'image/svg+xml',
    png: 'image/png',
    jpeg: 'image/jpeg',
    jpg: 'image/jpeg',
    gif: 'image/gif',
    json: 'application/json',
  }));
  const BINARY_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'application/pdf']);
  const MIME_TYPE = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/i;
  const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

  const isBytes = (v) => ArrayBuffer.isView(v) || v instanceof ArrayBuffer;
  const toBuffer = (v) => (v instanceof ArrayBuffer ? Buffer.from(v) : Buffer.from(v.buffer, v.byteOffset, v.byteLength));

  function mimeData(type, value) {
    if (type === 'application/json' || type.endsWith('+json')) {
      if (typeof value === 'string') {
        try {
          return JSON.parse(value);
        } catch (e) {
          throw new TypeError(`display: the ${type} text is not JSON (${e.message})`);
        }
      }
      const text = JSON.stringify(value);
      if (text === undefined) throw new TypeError(`display: ${inspect(value)} has no ${type} form`);
      return JSON.parse(text);
    }
    if (BINARY_TYPES.has(type)) {
      if (isBytes(value)) return toBuffer(value).toString('base64');
      if (typeof value === 'string') {
        const b64 = value.replace(/^data:[^,]*;base64,/, '').replace(/\s+/g, '');
        if (b64.length % 4 === 0 && BASE64.test(b64)) return b64;
      }
      throw new TypeError(`display: ${type} needs a Buffer or a base64 string`);
    }
    if (typeof value === 'string') return value;
    if (isBytes(value)) return toBuffer(value).toString('utf8');
    throw new TypeError(`display: ${type} needs a string, got ${inspect(value)}`);
  }

  function mimeType(mime) {
    const type = typeof mime === 'string' ? (MIME_ALIASES[mime] ?? mime) : mime;
    if (typeof type !== 'string' || !MIME_TYPE.test(type)) throw new TypeError(`display: not a MIME type: ${inspect(mime)}`);
    return type;
  }

  /* display(value): text/plain, as util.inspect shows it.
   * display(value, mime): one representation. `mime` is a MIME type or one of the short
   *   names above. image/png and image/jpeg take a Buffer or a base64 string;
   *   application/json (and any +json type) a JSON value, or JSON text as a string.
   * display(bundle, 'bundle'): a whole MIME bundle, {type: data, …}, each as above. */
  function display(value, mime) {
    let data;
    if (mime === undefined) {
      data = { 'text/plain': inspect(value) };
    } else if (mime === 'bundle') {
      if (value === null || typeof value !== 'object') throw new TypeError('display: a bundle is an object of MIME type → data');
      data = {};
      for (const [key, v] of Object.entries(value)) data[mimeType(key)] = mimeData(mimeType(key), v);
      if (Object.keys(data).length === 0) throw new TypeError('display: the bundle is empty');
    } else {
      const type = mimeType(mime);
      data = { [type]: mimeData(type, value) };
    }
    cellEvent('display', { data, main: false }, JSON.stringify(data).length);
  }

  /* --- source preparation ------------------------------------------------------------- */

  const KEYWORDS_BEFORE_EXPRESSION = new Set(['return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete',
    'void', 'throw', 'case', 'do', 'else', 'yield', 'await']);
  const WORD = /[\p{ID_Start}$_][\p{ID_Continue}$\u200c\u200d]*/uy;

  /* Inspector-evaluated code has no dynamic import callback ("A dynamic import callback
   * was not specified"), so each dynamic `import(` of the cell becomes IMPORT_HELPER(. A
   * small scanner finds them: it skips strings, template text, comments and regular
   * expression literals (a `/` starts one where an expression may start), and leaves
   * `.import(` and `#import(` alone. */
  function rewriteDynamicImport(code) {
    if (!/\bimport\s*\(/.test(code)) return code;
    const n = code.length;
    const resume = []; // brace depth at which each open `${` goes back to template text
    let depth = 0;
    let regexOk = true;
    let prev = ''; // last significant character
    let out = '';
    let from = 0;
    let i = 0;

    const template = (j) => {
      while (j < n) {
        const t = code[j];
        if (t === '\\') j += 2;
        else if (t === '`') return j + 1;
        else if (t === '$' && code[j + 1] === '{') {
          resume.push(depth);
          regexOk = true;
          return j + 2;
        } else j += 1;
      }
      return n;
    };

    while (i < n) {
      const c = code[i];
      if (c === '/' && code[i + 1] === '/') {
        const e = code.indexOf('\n', i);
        i = e < 0 ? n : e;
      } else if (c === '/' && code[i + 1] === '*') {
        const e = code.indexOf('*/', i + 2);
        i = e < 0 ? n : e + 2;
      } else if (c === '"' || c === "'") {
        let j = i + 1;
        while (j < n && code[j] !== c && code[j] !== '\n') j += code[j] === '\\' ? 2 : 1;
        i = j + 1;
        regexOk = false;
        prev = c;
      } else if (c === '`' || (c === '}' && resume.length && resume[resume.length - 1] === depth)) {
        if (c === '}') resume.pop();
        regexOk = false;
        i = template(i + 1);
        prev = '`';
      } else if (c === '/' && regexOk) {
        let j = i + 1;
        let inClass = false;
        while (j < n && code[j] !== '\n' && (inClass || code[j] !== '/')) {
          if (code[j] === '\\') j += 1;
          else if (code[j] === '[') inClass = true;
          else if (code[j] === ']') inClass = false;
          j += 1;
        }
        WORD.lastIndex = j + 1;
        i = WORD.test(code) ? WORD.lastIndex : j + 1; // the flags
        regexOk = false;
        prev = '/';
      } else if (/\s/.test(c)) {
        i += 1;
      } else {
        WORD.lastIndex = i;
        if (WORD.test(code)) {
          const end = WORD.lastIndex;
          const word = code.slice(i, end);
          if (word === 'import' && prev !== '.' && prev !== '#' && /^\s*\(/.test(code.slice(end, end + 64))) {
            out += code.slice(from, i) + IMPORT_HELPER;
            from = end;
          }
          regexOk = KEYWORDS_BEFORE_EXPRESSION.has(word);
          prev = 'a';
          i = end;
        } else if (/[0-9]/.test(c)) {
          while (i < n && /[\w.]/.test(code[i])) i += 1;
          regexOk = false;
          prev = '0';
        } else {
          if (c === '{') depth += 1;
          else if (c === '}') depth -= 1;
          regexOk = c !== ')' && c !== ']';
          prev = c;
          i += 1;
        }
      }
    }
    return out + code.slice(from);
  }

  function compiles(source) {
    try {
      new vm.Script(source); // eslint-disable-line no-new
      return true;
    } catch {
      return false;
    }
  }

  /* The expression evaluated for a cell. A cell that starts with `{` is an object literal
   * when it compiles as one (the Node REPL's rule); the sourceURL names the cell in stack
   * traces (`at f (cell3:2:5)`). */
  function prepareSource(code, cellCount) {
    let source = rewriteDynamicImport(code);
    if (/^\s*\{/.test(source) && !/;\s*$/.test(source) && compiles(`(${source}\n)`)) source = `(${source}\n)`;
    return `${source}\n//# sourceURL=cell${cellCount}`;
  }

  /* --- dynamic import and require ----------------------------------------------------- */

  const cwdDir = path.join(process.cwd(), path.sep); // /tmp/ in the sandbox
  const userRequire = Module.createRequire(cwdDir);

  /* import() for the cells, resolving relative paths and packages from the working
   * directory (not from this file). */
  function dynamicImport(specifier, options) {
    let target = String(specifier);
    if (/^\.{0,2}\//.test(target)) {
      target = pathToFileURL(path.resolve(cwdDir, target)).href;
    } else if (!/^[a-z][a-z0-9+.-]*:/i.test(target) && !Module.isBuiltin(target)) {
      try {
        target = pathToFileURL(userRequire.resolve(target)).href;
      } catch {
        // leave it: import() reports the failure
      }
    }
    return options === undefined ? import(target) : import(target, options);
  }

  /* --- cells -------------------------------------------------------------------------- */

  function emitError(cell, { ename, evalue, traceback }) {
    emit({ type: 'error', id: cell.id, ename, evalue, traceback });
  }

  function startNext() {
    const req = queue.shift();
    if (!req) {
      if (closing) process.exit(0);
      return;
    }
    count += 1;
    const cell = {
      id: req.id, count, group: `cell${count}`, source: req.code, interrupted: false, interruptedAt: '', probed: false,
    };
    current = cell;
    releaseHeld(cell);
    const params = {
      expression: prepareSource(req.code, count),
      replMode: true,
      awaitPromise: true,
      objectGroup: cell.group,
      silent: true,
    };
    // Last: an interrupt may terminate the cell's synchronous part inside this call.
    session.post('Runtime.evaluate', params, (err, reply) => settled(cell, err, reply));
  }

  /* The cell's evaluate is over: result, error, or the end of a terminated run. */
  function settled(cell, err, reply) {
    if (exiting) return; // the cell called process.exit(): the server reports the lost state
    if (cell !== current) {
      session.post('Runtime.releaseObjectGroup', { objectGroup: cell.group }); // an abandoned cell settling late
      return;
    }
    if (cell.interrupted) {
      finishInterrupted(cell);
      return;
    }
    let status = 'ok';
    try {
      if (err) {
        status = 'error';
        emitError(cell, { ename: 'Error', evalue: err.message, traceback: `Error: ${err.message}` });
      } else if (reply.exceptionDetails) {
        status = 'error';
        const details = reply.exceptionDetails;
        const thrown = details.exception ? fromRemote(details.exception) : new Error(details.text);
        emitError(cell, safeDescribe(thrown, cell, cell.source, details));
      } else if (reply.result.type !== 'undefined') {
        const text = inspect(fromRemote(reply.result));
        emit({ type: 'display', id: cell.id, data: { 'text/plain': text }, main: true });
      }
    } catch (e) {
      // Showing the value ran user code that threw (a [util.inspect.custom], a getter).
      status = 'error';
      emitError(cell, safeDescribe(e, cell, cell.source, null));
    }
    if (cell === current) finish(cell, status); // else an interrupt finished it meanwhile
  }

  function finishInterrupted(cell) {
    const traceback = `Interrupted: interrupted${cell.interruptedAt}`;
    emitError(cell, { ename: 'Interrupted', evalue: 'interrupted', traceback });
    finish(cell, 'interrupted');
  }

  /* The end of every cell: sync markers on fd 1 and 2, then `done`. Kernel code only from
   * here on (interruptCheck leaves a cell alone once `current` is cleared). */
  function finish(cell, status) {
    pushStream('stdout', flushDecoder('stdout'));
    pushStream('stderr', flushDecoder('stderr'));
    current = null;
    const marker = `\x1ecodepane-sync ${cell.id}\n`;
    for (const fd of [1, 2]) {
      try {
        writeAll(fd, marker);
      } catch {
        // fd 1/2 closed by the cell: the server then sees no marker there, as it should
      }
    }
    emit({ type: 'done', id: cell.id, status, count: cell.count });
    session.post('Runtime.releaseObjectGroup', { objectGroup: cell.group });
    if (queue.length) setImmediate(startNext); // a request the server sent before `done`
    else if (closing) process.exit(0);
  }

  /* The stack of whoever called interruptCheck, below the worker's check expression. */
  function callerFrames() {
    const { prepareStackTrace, stackTraceLimit } = Error;
    const holder = {};
    try {
      Error.prepareStackTrace = (_, sites) => sites;
      Error.stackTraceLimit = FRAME_SCAN_LIMIT;
      captureStackTrace(holder, interruptCheck);
      return holder.stack.slice(1);
    } finally {
      Error.prepareStackTrace = prepareStackTrace;
      Error.stackTraceLimit = stackTraceLimit;
    }
  }

  const isUserFrame = (site) => {
    const file = site.getFileName();
    return file !== __filename && !(typeof file === 'string' && file.startsWith('node:'));
  };

  /* A message main sends itself during an interrupt check; handling it proves main got
   * back to its event loop with the cell still awaiting (see interruptCheck). */
  const probe = new MessageChannel();
  probe.port2.on('message', (ordinal) => {
    if (current && current.count === ordinal) finishInterrupted(current);
  });

  /* Run on main by the worker's inspector session, for an `interrupt` of cell `ordinal`;
   * the stack below us says what main was doing.
   * - User code: main was running it. V8 is asked to terminate it; the cell is finished
   *   when its evaluate returns, or by a later check.
   * - Only kernel or Node code: nothing now; the worker checks again 10 ms later.
   * - Nothing: main was idle (the cell awaits something), or between two microtasks of a
   *   chain that never ends (`while (true) await null`). The first check posts the probe
   *   message: an idle main handles it at once and finishes the cell as interrupted,
   *   abandoning what it awaited. If a later check still finds the cell running with an
   *   empty stack, the microtasks never let go: terminate them (V8 drops the microtask
   *   queue), and post the probe again in case the termination took the first one. */
  function interruptCheck(ordinal) {
    const cell = current;
    if (!cell || cell.count !== ordinal) return ordinal > count ? CHECK_PENDING : CHECK_OVER;
    const frames = callerFrames();
    if (frames.length === 0) {
      probe.port1.postMessage(ordinal);
      if (!cell.probed) {
        cell.probed = true;
        return CHECK_BUSY;
      }
    } else if (!frames.some(isUserFrame)) {
      return CHECK_BUSY;
    }
    if (!cell.interrupted) {
      cell.interrupted = true;
      const where = userStack(frames.map((site) => `    at ${site}`).join('\n'));
      cell.interruptedAt = where ? `\n${where}` : '';
    }
    haltSession.post('Runtime.terminateExecution');
    return CHECK_TERMINATING;
  }

  /* Errors and rejections nobody handles come from callbacks that outlive their cell (or
   * run beside it): stderr text of the running cell, or of the next one. */
  function strayThrown(prefix, value) {
    let text;
    try {
      text = isErrorLike(value) ? userStack(String(value.stack ?? `${value.name}: ${value.message}`)) : inspect(value);
    } catch {
      text = '(a value that could not be shown)';
    }
    pushStream('stderr', `${prefix} ${text}\n`);
  }

  function onWorkerMessage(msg) {
    if (msg.op === 'exec') {
      queue.push(msg);
      if (!current && queue.length === 1) startNext();
    } else if (msg.op === 'eof') {
      closing = true;
      if (!current && queue.length === 0) process.exit(0);
    }
  }

  /* --- set-up ------------------------------------------------------------------------- */

  const hidden = (name, value) =>
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
  hidden('require', userRequire);
  hidden('display', display);
  hidden(IMPORT_HELPER, dynamicImport);
  // These two must stay what they are whatever a cell does: neither writable nor configurable.
  Object.defineProperty(globalThis, CAPTURE, { value: receive });
  Object.defineProperty(globalThis, INTERRUPT_HOOK, { value: interruptCheck });
  captureOutput();

  process.on('SIGINT', () => {});
  process.on('uncaughtException', (err) => strayThrown('Uncaught', err));
  process.on('unhandledRejection', (reason) => strayThrown('Uncaught (in promise)', reason));
  process.on('exit', () => {
    exiting = true;
    // Connected sessions make Node print "Waiting for the debugger to disconnect...".
    session.disconnect();
    haltSession.disconnect();
  });
  worker.on('message', onWorkerMessage);
  worker.on('error', (e) => {
    fs.writeSync(2, `codepane kernel: request thread failed: ${e && e.stack}\n`);
    process.exit(EXIT_WORKER_FAILED);
  });
  emit({ type: 'ready', protocol: PROTOCOL, language: LANGUAGE });
}
