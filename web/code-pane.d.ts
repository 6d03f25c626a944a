// codepane/element: the <code-pane> custom element (docs/embedding.md). Importing the
// module defines the element. Hand-written types.
import type { EnhancedCodeExecutionResult } from './codepane.js';

export { connect, resultText } from './codepane.js';
export type * from './codepane.js';

/** How a settled run ended, as the status line says it. */
export type RunStatus = 'finished' | 'failed' | 'cancelled' | 'timed out';

export interface CodePaneDoneDetail {
  result: EnhancedCodeExecutionResult;
  status: RunStatus;
}

export declare class CodePane extends HTMLElement {
  /** The language, canonical ("python") when it is one of the four; an alias attribute reads canonical. */
  language: string;
  /** The code as it is now, edits included. Setting it replaces the code. */
  code: string;
  /** The code Reset goes back to: the page's, unless set. */
  defaultCode: string;
  readOnly: boolean;
  /** Seconds a run may take (the timeout attribute, default 60). */
  timeout: number;
  /** False when the stream attribute is "off" (runs then go through callTool). */
  readonly streaming: boolean;
  readonly running: boolean;
  /** The last settled run's result, or null. */
  lastResult: EnhancedCodeExecutionResult | null;
  /** Run the code (a run in progress is stopped first). Never rejects. */
  run(): Promise<EnhancedCodeExecutionResult>;
  /** Stop the run in progress: it settles as cancelled, its output kept. */
  stop(): void;
  /** Clear the output and the status line. */
  clear(): void;
  /** Back to defaultCode, forgetting the kept edit. */
  reset(): void;
}

/** The canonical name of a language (any case, aliases py, python3, js, node, nodejs), or null. */
export declare function canonicalLanguage(name: string): 'python' | 'javascript' | 'java' | 'r' | null;

/**
 * Wrap the code blocks matching `selector` (default `pre > code[class*="language-"]`) in
 * <code-pane> widgets, their language taken from the language-* class; `attributes` go on
 * every widget.
 */
export declare function upgrade(selector?: string, attributes?: Record<string, string>): CodePane[];

declare global {
  interface HTMLElementTagNameMap {
    'code-pane': CodePane;
  }
  interface HTMLElementEventMap {
    'codepane-start': CustomEvent<void>;
    'codepane-done': CustomEvent<CodePaneDoneDetail>;
    'codepane-change': CustomEvent<{ edited: boolean }>;
  }
}
