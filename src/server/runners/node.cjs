'use strict';
/* codepane JavaScript runner: runs one snippet inside the sandbox.
 *
 * Started by codepane-server as `node /<runners>/node.cjs [code-path]`; the code path
 * defaults to /w/main.js. The snippet is a classic script run with vm in this very
 * context (so console, process, timers, Buffer, fetch are the real ones), with
 * `require` from module.createRequire, and with dynamic import() through Node's own
 * loader. stdout/stderr are the sandbox's pipes (synchronous on Linux); events go to
 * fd 3 as JSON lines:
 *
 *   {"type":"result","mime":{"text/plain":"42"},"isMainResult":true}
 *   {"type":"error","name":"TypeError","value":"boom","traceback":"TypeError: boom\n    at <code>:1:7"}
 *
 * Top-level await: the snippet is first compiled as a script. When that fails with a
 * SyntaxError and the code mentions `await`, it is compiled again wrapped in an async
 * function (on its own first line, with lineOffset -1 so positions stay the user's).
 * A script's completion value (what the REPL would echo) becomes the main result (a
 * promise is awaited first and its value shown); the async form has none (a function
 * body has no completion value), so it reports no main result.
 *
 * An uncaught exception or unhandled rejection sends one error event and exits 1. */

const fs = require('fs');
const path = require('path');
const util = require('util');
const vm = require('vm');
const { createRequire } = require('module');

const DEFAULT_CODE_PATH = '/w/main.js';
const CODE_FILENAME = '<code>';
const EVENT_FD = 3;
const INSPECT_OPTIONS = { depth: 4, colors: false, maxArrayLength: 100, maxStringLength: 10000 };
const ASYNC_PREFIX = '(async () => {\n';
const ASYNC_SUFFIX = '\n})()';

let eventsOpen = true;
try {
  fs.fstatSync(EVENT_FD);
} catch {
  eventsOpen = false; // run by hand without fd 3: events are dropped
}

function writeAll(fd, buf) {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
      // A non-blocking pipe that is full: wait a little for the server to read.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
    }
  }
}

function emit(event) {
  if (!eventsOpen) return;
  try {
    writeAll(EVENT_FD, Buffer.from(JSON.stringify(event) + '\n', 'utf8'));
  } catch {
    eventsOpen = false; // the server went away
  }
}

/* The stack without the runner's own frames (vm, this file, node internals). */
function userStack(err) {
  const stack = typeof err.stack === 'string' ? err.stack : String(err);
  return stack
    .split('\n')
    .filter((line) => {
      const t = line.trim();
      if (!t.startsWith('at ')) return true;
      return !(t.includes(__filename) || t.includes('node:vm') || t.includes('node:internal'));
    })
    .join('\n');
}

let failed = false;

function reportError(err) {
  if (failed) return;
  failed = true;
  let ev;
  if (err instanceof Error || (err && typeof err === 'object' && 'stack' in err && 'message' in err)) {
    ev = {
      type: 'error',
      name: String(err.name || 'Error'),
      value: String(err.message ?? ''),
      traceback: userStack(err),
    };
  } else {
    const shown = util.inspect(err, INSPECT_OPTIONS);
    ev = { type: 'error', name: 'Uncaught', value: shown, traceback: 'Uncaught ' + shown };
  }
  emit(ev);
  process.exitCode = 1;
}

function fail(err) {
  reportError(err);
  process.exit(1);
}

process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

/* Node warns that the main-context loader for vm's import() is experimental; the
 * warning is about us, not the snippet, so keep it off the user's stderr. */
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
  const text = typeof warning === 'string' ? warning : warning && warning.message;
  if (typeof text === 'string' && text.includes('USE_MAIN_CONTEXT_DEFAULT_LOADER')) return;
  return emitWarning.call(process, warning, ...rest);
};

function compile(source) {
  const options = { filename: CODE_FILENAME };
  if (vm.constants && vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER) {
    options.importModuleDynamically = vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER;
  }
  try {
    return { script: new vm.Script(source, options), isAsync: false };
  } catch (err) {
    if (!(err instanceof SyntaxError) || !/\bawait\b/.test(source)) throw err;
    try {
      const wrapped = ASYNC_PREFIX + source + ASYNC_SUFFIX;
      return { script: new vm.Script(wrapped, { ...options, lineOffset: -1 }), isAsync: true };
    } catch {
      throw err; // the original message is about the user's code as written
    }
  }
}

function showResult(value) {
  if (value === undefined) return;
  emit({ type: 'result', mime: { 'text/plain': util.inspect(value, INSPECT_OPTIONS) }, isMainResult: true });
}

function main() {
  const codePath = process.argv[2] || DEFAULT_CODE_PATH;
  // A leading BOM stays: `node file.js` keeps it too (Node 20 does not strip it for
  // scripts; V8 reads U+FEFF as white space), so error columns on line 1 and a BOM
  // before a hashbang (a SyntaxError) come out as they do by hand.
  const source = fs.readFileSync(codePath, 'utf8');
  const req = createRequire(path.join(path.dirname(codePath), 'main.js'));
  globalThis.require = req;
  globalThis.module = { exports: {}, require: req, filename: codePath };
  globalThis.exports = globalThis.module.exports;
  globalThis.__filename = codePath;
  globalThis.__dirname = path.dirname(codePath);
  process.argv = [process.argv[0], codePath];

  let compiled;
  try {
    compiled = compile(source);
  } catch (err) {
    reportError(err);
    return;
  }
  let value;
  try {
    value = compiled.script.runInThisContext({ displayErrors: false });
  } catch (err) {
    fail(err);
    return;
  }
  if (compiled.isAsync) {
    Promise.resolve(value).catch(fail);
  } else if (value instanceof Promise) {
    // A promise as the last value: show what it settles to (a rejection is an error).
    value.then(showResult).catch(fail);
  } else {
    try {
      showResult(value);
    } catch (err) {
      fail(err);
    }
  }
}

main();
