// codepane: run Python, JavaScript, Java and R from a web page or Node, through the AGB
// Code API (against codepane-server or the AGB cloud). Hand-written types of the public
// API; the field names are those of the AGB TypeScript SDK.

/** One rich result of a run: a MIME bundle reduced to the SDK's fields. */
export interface ExecutionResult {
  text?: string;
  html?: string;
  markdown?: string;
  /** Base64 PNG. */
  png?: string;
  /** Base64 JPEG. */
  jpeg?: string;
  svg?: string;
  latex?: string;
  /** application/json, as a JSON value. */
  json?: unknown;
  /** A Vega-Lite spec (application/vnd.vegalite.v4+json or v5+json). */
  chart?: unknown;
  /** True for the value of the run's last expression. */
  isMainResult: boolean;
}

export interface ExecutionLogs {
  /** Chunks in arrival order, exactly as the server sent them. */
  stdout: string[];
  stderr: string[];
}

export interface ExecutionError {
  name: string;
  value: string;
  traceback: string;
}

/** The outcome of code.run: a plain object, as in the AGB TypeScript SDK. */
export interface EnhancedCodeExecutionResult {
  /** LinkUrl request id, or the invocationId of a streaming run; "" for a local failure. */
  requestId?: string;
  success: boolean;
  executionCount?: number;
  /** Seconds. */
  executionTime: number;
  logs: ExecutionLogs;
  results: ExecutionResult[];
  error?: ExecutionError;
  /** "" on success. */
  errorMessage: string;
}

/** The payload of an `eventType: "error"` stream event, as the server sent it. */
export interface StreamErrorPayload {
  code?: string;
  message?: string;
  traceId?: string;
  /** codepane-server extension: the language's own traceback. */
  traceback?: string;
  [key: string]: unknown;
}

/** A failure of the stream itself; `name` says which, as the SDKs name their exceptions. */
export interface StreamError extends Error {
  name: 'WsRemoteError' | 'WsProtocolError' | 'WsConnectionClosedError' | 'WsCancelledError'
    | 'WsHandshakeRejectedError';
}

export interface RunOptions {
  /** Stream the run over the session WebSocket (needs wsUrl and token). Default false. */
  streamBeta?: boolean;
  /** Each stdout chunk as it arrives (streaming only). */
  onStdout?: (chunk: string) => void;
  /** Each stderr chunk as it arrives (streaming only). */
  onStderr?: (chunk: string) => void;
  /** Each error event's payload, and the stream's own failure (streaming only). */
  onError?: (error: StreamErrorPayload | StreamError) => void;
  /** codepane extension: each rich result as it arrives (streaming only). */
  onResult?: (result: ExecutionResult) => void;
  /** codepane extension: cancel the run. It settles at once (success false); a streaming
   * run is also stopped on codepane-server. */
  signal?: AbortSignal;
}

export interface CodeApi {
  /**
   * Run code. Languages: python, javascript, java, r (any case; aliases py, python3, js,
   * node, nodejs). Never rejects for a failed run: the result has success false and an
   * errorMessage.
   * @param timeoutS seconds, default 60; sent as whole seconds, rounded up.
   */
  run(code: string, language: string, timeoutS?: number, options?: RunOptions): Promise<EnhancedCodeExecutionResult>;
}

export interface Session {
  readonly sessionId: string;
  readonly linkUrl: string;
  readonly wsUrl: string;
  readonly token: string;
  /** The session's toolList as JSON text. */
  readonly toolList: string;
  readonly code: CodeApi;
  /** The session WebSocket's state. */
  readonly streamState: 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';
  /** Settle every pending run, close the WebSocket, release a session connect() created. */
  close(): Promise<void>;
}

/** How the session token reaches the WebSocket server. */
export type WsAuth =
  /** X-Access-Token header, as the AGB SDKs send it (Node only; the default there). */
  | 'header'
  /** Subprotocols "codepane.v1" and "codepane.token.<token>" (browser default). */
  | 'protocol'
  /** ?token=<token> appended to wsUrl. */
  | 'query'
  /** wsUrl used as it is (browser default when it already has a token parameter). */
  | 'none';

export interface ConnectOptions {
  /** A codepane-server base URL ("http://127.0.0.1:8080"): a session is created there. */
  server?: string;
  /** The server's API key (server-side use; never ship one to a browser). */
  apiKey?: string;
  /** imageId for createSession. Default "agb-code-space-1". */
  imageId?: string;
  /** An existing session, e.g. an AGB cloud session created by the host site's backend. */
  sessionId?: string;
  linkUrl?: string;
  wsUrl?: string;
  token?: string;
  /** The session's toolList: JSON text, or the parsed array. */
  toolList?: string | unknown[];
  /** Control API base for the gateway route (POST {endpoint}/mcp), with apiKey; used only
   * when the session has no linkUrl route. */
  endpoint?: string;
  wsAuth?: WsAuth;
}

export function connect(options: ConnectOptions): Promise<Session>;

/** What the Python SDK's `result` property returns for a result. */
export function resultText(result: EnhancedCodeExecutionResult): string;

/** Bytes of the WASM heap in use (0 before the first connect): a leak check. */
export function heapInUse(): number;
