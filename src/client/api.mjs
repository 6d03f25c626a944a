// codepane JS API: the only public surface of the client. It mirrors the AGB TypeScript
// SDK's Code API (session.code.run) on top of the WASM core (client.c), which owns the
// wire: request bodies, frames, replies, results and the session WebSocket. This file
// owns ids, Promises, timers and the user's callbacks.
//
// Rules that keep the two sides apart:
// - C reports through the handlers below, synchronously, inside a C call. They copy what
//   they need and defer everything user-visible to a microtask, so user code never runs
//   inside C and may call back into it (run, cancel, close) freely.
// - Every string passed to C is allocated here and freed after the call.

/** @typedef {import('./codepane.d.ts').EnhancedCodeExecutionResult} EnhancedCodeExecutionResult */
/** @typedef {import('./codepane.d.ts').ExecutionResult} ExecutionResult */
/** @typedef {import('./codepane.d.ts').RunOptions} RunOptions */
/** @typedef {import('./codepane.d.ts').ConnectOptions} ConnectOptions */

// Event kinds of the core's invocation table (cp_event_kind in src/core/stream.h).
const STDOUT = 0, STDERR = 1, RESULT = 2, ERROR = 3, FAILED = 4, DONE = 5;
// Failure kinds (cp_fail_kind), named as the SDKs name their exceptions.
const FAIL_NAMES = ['WsRemoteError', 'WsProtocolError', 'WsConnectionClosedError', 'WsCancelledError',
  'WsHandshakeRejectedError'];
// Connection states (client.c), as session.streamState reports them.
const STATES = ['idle', 'connecting', 'open', 'reconnecting', 'closed'];

const DEFAULT_IMAGE = 'agb-code-space-1';
const NO_WS_URL = 'wsUrl is not set on this session. Ensure the session was created with WebSocket support enabled.';

const encoder = new TextEncoder();

/** Report an exception thrown by a user callback without letting it break anything. */
function report(e) {
  if (typeof globalThis.reportError === 'function') globalThis.reportError(e);
  else console.error('codepane: a callback threw:', e);
}

function call(fn, arg) {
  if (typeof fn !== 'function') return;
  try {
    fn(arg);
  } catch (e) {
    report(e);
  }
}

function randomHex(bytes) {
  const b = globalThis.crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/**
 * What the Python SDK's `result` property returns: the text of the first main result with
 * non-empty text, else the first result's text when non-empty, else every stdout chunk
 * joined, else "".
 * @param {EnhancedCodeExecutionResult} result
 * @returns {string}
 */
export function resultText(result) {
  const results = result?.results ?? [];
  const main = results.find((r) => r.isMainResult && r.text);
  if (main) return main.text;
  if (results[0]?.text) return results[0].text;
  return (result?.logs?.stdout ?? []).join('');
}

/**
 * Build the API over one environment: `env.load(handlers)` instantiates the WASM core
 * with the handlers (and whatever the environment adds: wasm bytes, transports);
 * `env.headerAuth` says the environment's WebSocket can send an X-Access-Token header,
 * and `env.setWsToken(url, token)` registers the token for a URL (null forgets it).
 */
export function makeApi(env) {
  let loading = null;
  /** @type {any} the Emscripten module */
  let core = null;
  let nextId = 1;
  const httpRuns = new Map(); // run id → function(result JSON text or null)
  const conns = new Map();    // connection id → Connection

  function loadCore() {
    loading ??= env.load({
      onRunDone(id, json) {
        const settle = httpRuns.get(id);
        if (settle) {
          httpRuns.delete(id);
          settle(json);
        }
      },
      onStream(connId, kind, inv, data, extra) {
        conns.get(connId)?.event(kind, inv, data, extra);
      },
      onConnState(connId, state) {
        const c = conns.get(connId);
        if (c) c.state = STATES[state];
      },
      onTimer(connId, ms) {
        conns.get(connId)?.timer(ms);
      },
    }).then((m) => (core = m), (e) => {
      loading = null; // a failed load (network, a bad module) is tried again by the next connect
      throw e;
    });
    return loading;
  }

  /** Call fn with each string as a NUL-terminated UTF-8 copy on the WASM heap: [ptr, bytes]. */
  function withStrings(strings, fn) {
    const ptrs = [];
    try {
      const args = strings.map((s) => {
        const bytes = encoder.encode(s);
        const p = core._malloc(bytes.length + 1);
        if (!p) throw new Error('out of memory');
        ptrs.push(p);
        const heap = core.heap(); // read after malloc: growth replaces the view
        heap.set(bytes, p);
        heap[p + bytes.length] = 0;
        return [p, bytes.length];
      });
      return fn(...args);
    } finally {
      ptrs.forEach((p) => core._free(p));
    }
  }

  /** Read and free a heap string C returned. */
  function takeString(p) {
    if (!p) return null;
    const heap = core.heap();
    let end = p;
    while (heap[end]) end++;
    const s = new TextDecoder().decode(heap.subarray(p, end));
    core._free(p);
    return s;
  }

  /** A failed run that never reached the network. */
  function failure(message) {
    const json = withStrings([message], ([m]) => takeString(core._cp_client_failure(m)));
    return json ? JSON.parse(json) : { requestId: '', success: false, executionTime: 0, logs: { stdout: [], stderr: [] }, results: [], errorMessage: message };
  }

  /** The session WebSocket: one per session, every streaming run multiplexed on it. */
  class Connection {
    constructor(url, protocols) {
      this.id = nextId++;
      this.state = 'idle';
      this.runs = new Map(); // invocationId → run
      this.handle = null;
      conns.set(this.id, this);
      this.ptr = withStrings([url, protocols], ([u], [p]) => core._cp_conn_new(this.id, u, p));
      if (!this.ptr) {
        conns.delete(this.id);
        throw new Error('out of memory');
      }
    }

    timer(ms) {
      clearTimeout(this.handle);
      this.handle = null;
      if (ms < 0) return;
      this.handle = setTimeout(() => {
        this.handle = null;
        if (this.ptr) core._cp_conn_on_timer(this.ptr);
      }, ms);
      // A heartbeat or reconnect alone must not keep a Node process alive.
      this.handle.unref?.();
    }

    // The core's final result of a streaming run holds no logs and no results
    // (cp_stream_keep_output): they are collected here from the events, in order.
    event(kind, inv, data, extra) {
      const run = this.runs.get(inv);
      if (!run) return;
      let deliver;
      switch (kind) {
        case STDOUT: run.stdout.push(data); deliver = () => call(run.onStdout, data); break;
        case STDERR: run.stderr.push(data); deliver = () => call(run.onStderr, data); break;
        case RESULT: {
          const item = JSON.parse(data);
          run.results.push(item);
          deliver = () => call(run.onResult, structuredClone(item));
          break;
        }
        case ERROR: { const payload = JSON.parse(data); deliver = () => call(run.onError, payload); break; }
        case FAILED: {
          const err = new Error(data);
          err.name = FAIL_NAMES[extra] ?? 'WsError';
          deliver = () => call(run.onError, err);
          break;
        }
        case DONE: {
          this.runs.delete(inv);
          const result = JSON.parse(data);
          result.logs = { stdout: run.stdout, stderr: run.stderr };
          result.results = run.results;
          deliver = () => run.resolve(result);
          break;
        }
        default: return;
      }
      queueMicrotask(deliver);
    }

    run(inv, target, lang, timeoutS, code, callbacks) {
      return new Promise((resolve) => {
        const run = { ...callbacks, resolve, stdout: [], stderr: [], results: [] };
        this.runs.set(inv, run);
        const rc = withStrings([inv, target, code], ([i], [t], [c, n]) =>
          core._cp_conn_run(this.ptr, i, t, lang, timeoutS, c, n));
        if (rc !== 0) {
          this.runs.delete(inv);
          resolve(failure('Failed to run code: out of memory'));
        }
      });
    }

    cancel(inv, target) {
      if (this.ptr && this.runs.has(inv))
        withStrings([inv, target], ([i], [t]) => core._cp_conn_cancel(this.ptr, i, t));
    }

    close() {
      if (!this.ptr) return;
      const p = this.ptr;
      this.ptr = 0;
      clearTimeout(this.handle);
      core._cp_conn_close(p); // settles every pending run through event()
      conns.delete(this.id);
      this.onClose?.();
    }
  }

  class Session {
    #conn = null;
    #closed = false;
    #server;     // run_code's tool server from toolList, or null
    #apiKey;
    #endpoint;   // the control API base, for the gateway route and release
    #owned;      // created by connect({server}): close() releases it
    #wsAuth;
    #httpRuns = new Set();

    constructor(desc, { apiKey, endpoint, owned, wsAuth }) {
      /** @type {string} */ this.sessionId = desc.sessionId ?? '';
      /** @type {string} */ this.linkUrl = desc.linkUrl ?? '';
      /** @type {string} */ this.wsUrl = desc.wsUrl ?? '';
      /** @type {string} */ this.token = desc.token ?? '';
      const list = desc.toolList;
      /** @type {string} */ this.toolList = typeof list === 'string' ? list : list ? JSON.stringify(list) : '';
      this.#server = this.toolList
        ? withStrings([this.toolList], ([l]) => takeString(core._cp_client_tool_server(l)))
        : null;
      this.#apiKey = apiKey ?? '';
      this.#endpoint = endpoint ?? '';
      this.#owned = owned;
      this.#wsAuth = wsAuth;
      Object.defineProperty(this, 'code', {
        value: Object.freeze({
          /**
           * Run code in the session (AGB Code API). Never rejects for a failed run.
           * @param {string} code
           * @param {string} language
           * @param {number} [timeoutS=60]
           * @param {RunOptions} [options]
           * @returns {Promise<EnhancedCodeExecutionResult>}
           */
          run: (code, language, timeoutS = 60, options = {}) => this.#run(code, language, timeoutS, options),
        }),
        enumerable: true,
      });
    }

    /** State of the session WebSocket: idle, connecting, open, reconnecting or closed. */
    get streamState() {
      return this.#closed ? 'closed' : this.#conn?.state ?? 'idle';
    }

    async #run(code, language, timeoutS, options) {
      const { streamBeta = false, onStdout, onStderr, onError, onResult, signal } = options ?? {};
      if (this.#closed) return failure('Failed to run code: the session is closed');
      if (typeof code !== 'string') return failure(`Failed to run code: code must be a string, got ${typeof code}`);
      const raw = language == null ? '' : String(language);
      const lang = withStrings([raw], ([l]) => core._cp_client_lang(l));
      if (!lang) return JSON.parse(withStrings([raw], ([l]) => takeString(core._cp_client_unsupported(l))));
      if (typeof timeoutS !== 'number' || !(timeoutS > 0) || !Number.isFinite(timeoutS))
        return failure(`Failed to run code: timeoutS must be a positive number of seconds, got ${String(timeoutS)}`);
      // The wire carries whole seconds; round up so a short timeout never becomes 0.
      const seconds = Math.min(Math.ceil(timeoutS), 0x7fffffff);
      if (signal?.aborted) return failure('Failed to run code: the run was cancelled before it started');
      if (streamBeta) {
        if (!this.wsUrl || !this.token) return failure(`Failed to run code: ${NO_WS_URL}`);
        return this.#stream(code, lang, seconds, { onStdout, onStderr, onError, onResult }, signal);
      }
      return this.#http(code, lang, seconds, signal);
    }

    #connection() {
      if (this.#conn) return this.#conn;
      let url = this.wsUrl, protocols = '';
      const mode = this.#wsAuth ?? (env.headerAuth ? 'header' : /[?&]token=/.test(url) ? 'none' : 'protocol');
      if (mode === 'header') {
        if (!env.headerAuth) throw new Error('wsAuth "header" needs a WebSocket that can send headers (Node)');
        env.setWsToken(url, this.token);
      } else if (mode === 'protocol') {
        protocols = `codepane.v1,codepane.token.${this.token}`;
      } else if (mode === 'query') {
        url += `${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(this.token)}`;
      }
      const parsed = new URL(url); // the WebSocket constructor would throw inside C
      if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') throw new Error(`wsUrl must be a ws: or wss: URL, got ${parsed.protocol}`);
      this.#conn = new Connection(url, protocols);
      if (mode === 'header') this.#conn.onClose = () => env.setWsToken(url, null);
      return this.#conn;
    }

    #stream(code, lang, seconds, callbacks, signal) {
      let conn;
      try {
        conn = this.#connection();
      } catch (e) {
        return failure(`Failed to run code: ${e.message}`);
      }
      const inv = randomHex(16);
      const abort = () => conn.cancel(inv, this.#server ?? '');
      signal?.addEventListener('abort', abort, { once: true });
      return conn.run(inv, this.#server ?? '', lang, seconds, code, callbacks)
        .finally(() => signal?.removeEventListener('abort', abort));
    }

    #http(code, lang, seconds, signal) {
      const linkUrl = !!(this.linkUrl && this.token && this.#server);
      if (!linkUrl && !(this.#endpoint && this.#apiKey))
        return failure('Failed to run code: the session has neither a linkUrl route (linkUrl, token and a run_code server in toolList) nor an API gateway (endpoint and apiKey)');
      const id = nextId++;
      const requestId = `link-${Date.now()}-${String(globalThis.crypto.getRandomValues(new Uint32Array(1))[0] % 1e9).padStart(9, '0')}`;
      const abort = (why) => core._cp_client_http_abort(id, why);
      return new Promise((resolve) => {
        const onAbort = () => withStrings(['Run was cancelled by caller'], ([w]) => abort(w));
        httpRuns.set(id, (json) => {
          this.#httpRuns.delete(id);
          signal?.removeEventListener('abort', onAbort);
          const result = json ? JSON.parse(json) : failure('Failed to run code: out of memory');
          queueMicrotask(() => resolve(result));
        });
        this.#httpRuns.add(id);
        const rc = withStrings(
          linkUrl ? [this.linkUrl, this.token, this.#server, requestId, code]
                  : [this.#endpoint, this.#apiKey, this.sessionId, requestId, code],
          ([b], [a], [t], [r], [c, n]) => core._cp_client_http_run(id, linkUrl ? 0 : 1, b, a, t, r, lang, seconds, c, n));
        if (rc !== 0) {
          httpRuns.get(id)(null);
          return;
        }
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }

    /**
     * Close the session: every pending run settles at once (success false), the
     * WebSocket closes, and a session that connect({server}) created is released on the
     * server. Idempotent.
     */
    async close() {
      if (this.#closed) return;
      this.#closed = true;
      for (const id of [...this.#httpRuns])
        withStrings(['Failed to run code: the session was closed before the run finished'], ([w]) => core._cp_client_http_abort(id, w));
      this.#conn?.close();
      if (this.#owned && this.sessionId) {
        try {
          await fetch(`${this.#endpoint}/mcp/releaseSessionAsync`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...(this.#apiKey ? { authorization: `Bearer ${this.#apiKey}` } : {}) },
            body: JSON.stringify({ sessionId: this.sessionId }),
          });
        } catch { /* the server's idle timeout releases it */ }
      }
    }
  }

  /**
   * Open a session: create one on a codepane-server (`{server}`, optionally `apiKey`), or
   * adopt one minted elsewhere (`{linkUrl, wsUrl, token, toolList}`), e.g. an AGB cloud
   * session handed over by the host site's backend.
   * @param {ConnectOptions} options
   */
  async function connect(options = {}) {
    await loadCore();
    const { server, apiKey, endpoint, wsAuth, imageId = DEFAULT_IMAGE } = options;
    if (wsAuth !== undefined && !['header', 'protocol', 'query', 'none'].includes(wsAuth))
      throw new TypeError(`wsAuth must be "header", "protocol", "query" or "none", got ${String(wsAuth)}`);
    if (!server) return new Session(options, { apiKey, endpoint, owned: false, wsAuth });
    const base = String(server).replace(/\/+$/, '');
    let res, body;
    try {
      res = await fetch(`${base}/mcp/createSession?imageId=${encodeURIComponent(imageId)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
        body: '{}',
      });
      body = await res.json();
    } catch (e) {
      throw new Error(`codepane: could not create a session on ${base}: ${res ? `HTTP ${res.status}, reply is not JSON` : e.message}`);
    }
    const data = body?.data ?? {};
    if (data.success === false || !data.sessionId)
      throw new Error(`codepane: could not create a session on ${base}: ${data.errMsg || body?.message || `HTTP ${res.status}`}`);
    return new Session(data, { apiKey, endpoint: base, owned: true, wsAuth });
  }

  /** Bytes of the WASM heap in use (0 before the first connect): for leak checks. */
  function heapInUse() {
    return core ? core._cp_client_heap_in_use() >>> 0 : 0;
  }

  return { connect, resultText, heapInUse };
}
