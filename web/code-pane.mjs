// <code-pane>: a runnable code block. Wrap a <pre><code> block (or call upgrade() on a
// docs page's code blocks) and it gets an editor, Run / Stop / Clear / Copy output, live
// output panes and a status line, running through codepane-server or an AGB session the
// site's backend hands out (docs/embedding.md). The editor (CodeMirror) and the
// renderers of rare results load only when needed.
import css from './code-pane.css';
import { OutputView, outputCss } from './output.mjs';
import { dropShared, sessionGone, sessionSource, sharedSession } from './sessions.mjs';

export { connect, resultText } from '../src/client/browser.mjs';

/** Canonical language → what the widget calls it. Aliases as in the AGB SDKs. */
const LANGUAGES = { python: 'Python', javascript: 'JavaScript', java: 'Java', r: 'R' };
const ALIASES = { py: 'python', python3: 'python', js: 'javascript', node: 'javascript', nodejs: 'javascript' };

/** The canonical name of a language (any case, aliases), or null. */
export function canonicalLanguage(name) {
  const l = String(name ?? '').trim().toLowerCase();
  const c = ALIASES[l] ?? l;
  return c in LANGUAGES ? c : null;
}

// The scripts of the sandboxed output frames, files of their own beside the element's
// chunks (scripts/build-web.mjs) that each frame loads by URL: frame.js styles and sizes
// every frame, chart-frame.js draws a Vega-Lite chart.
const FRAME_SCRIPTS = Object.freeze({
  frame: new URL('./chunks/frame.js', import.meta.url).href,
  chart: new URL('./chunks/chart-frame.js', import.meta.url).href,
});

const MAC = typeof navigator !== 'undefined' && /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);
const RUN_KEYS = MAC ? '⌘+Enter' : 'Ctrl+Enter';
const RUN_SHORTCUT = MAC ? 'Meta+Enter' : 'Control+Enter';

/** A short stable hash (FNV-1a, 32 bits) of a string, as 8 hex digits. */
function hash(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/** Code taken from markup: common indentation and the blank first and last lines removed. */
function dedent(text) {
  const lines = text.replace(/\r\n?/g, '\n').replace(/^\s*\n/, '').replace(/\s+$/, '').split('\n');
  const indents = lines.filter((l) => l.trim()).map((l) => l.match(/^[ \t]*/)[0].length);
  const cut = indents.length ? Math.min(...indents) : 0;
  return lines.map((l) => l.slice(cut)).join('\n');
}

/** localStorage that may be missing or refuse (private modes, sandboxed frames). */
const store = {
  get(key) { try { return localStorage.getItem(key); } catch { return null; } },
  set(key, value) { try { localStorage.setItem(key, value); } catch { /* not kept */ } },
  remove(key) { try { localStorage.removeItem(key); } catch { /* nothing kept */ } },
};

/** The editor chunk, loaded once per page on first need. */
let editorModule = null;
const loadEditor = () => (editorModule ??= import('./editor.mjs'));

/** What a settled run was: finished, failed, cancelled or timed out. */
function outcome(result, cancelled) {
  if (cancelled) return 'cancelled';
  if (result.success) return 'finished';
  if (/^TimeoutError\b/.test(result.errorMessage)) return 'timed out';
  if (/^cancelled\b|WsCancelledError/.test(result.errorMessage)) return 'cancelled';
  return 'failed';
}

/** "0.42 s" or "12 ms". */
function seconds(s) {
  if (typeof s !== 'number' || !Number.isFinite(s)) return '';
  return s < 1 ? `${Math.max(1, Math.round(s * 1000))} ms` : `${s.toFixed(2)} s`;
}

/**
 * The shadow roots' styles: one constructed sheet shared by every widget where the browser
 * has them (no <style> element, so a page's Content-Security-Policy needs no 'unsafe-inline'
 * for styles, and the CSS is parsed once), else a <style> per widget.
 */
let sharedSheet = null;
function adoptStyles(root) {
  const text = `${css}\n${outputCss}`;
  if ('adoptedStyleSheets' in root && typeof CSSStyleSheet.prototype.replaceSync === 'function') {
    if (!sharedSheet) {
      sharedSheet = new CSSStyleSheet();
      sharedSheet.replaceSync(text);
    }
    root.adoptedStyleSheets = [sharedSheet];
    return '';
  }
  return `<style>${text}</style>`;
}

/** A run that failed before it reached a session, as a result of the client's shape. */
function failedRun(errorMessage) {
  return { success: false, executionTime: 0, logs: { stdout: [], stderr: [] }, results: [], errorMessage };
}

const TEMPLATE = `
<div part="root" class="cp">
  <div part="editor" class="editor"><pre part="source" class="source" tabindex="0"></pre></div>
  <div part="toolbar" class="toolbar" role="toolbar">
    <button part="run" type="button" class="run" title="Run (${RUN_KEYS})" aria-keyshortcuts="${RUN_SHORTCUT}"><span aria-hidden="true">▶</span> Run</button>
    <button part="stop" type="button" disabled><span aria-hidden="true">■</span> Stop</button>
    <button part="clear" type="button">Clear</button>
    <button part="copy" type="button">Copy output</button>
    <button part="reset" type="button" hidden>Reset</button>
    <span class="spacer"></span>
    <span part="language" class="language"></span>
  </div>
  <div part="status" class="status" role="status" aria-live="polite" aria-atomic="true"></div>
  <div part="output" class="output" role="region" tabindex="0"></div>
</div>`;

export class CodePane extends HTMLElement {
  static observedAttributes = ['language', 'readonly', 'theme', 'html-scripts'];

  #root;
  #parts = {};
  #original = '';
  #code = '';
  #editor = null;
  #editorLoading = null;
  #output = null;
  #run = null;          // {controller, promise} of the run in progress
  #isolated = null;     // Promise<Session> of an isolated widget
  #saveTimer = 0;
  #visibility = null;
  /** The reader's colour-scheme preference, followed while the widget is in a document. */
  #darkQuery = matchMedia('(prefers-color-scheme: dark)');
  lastResult = null;

  constructor() {
    super();
    this.#root = this.attachShadow({ mode: 'open' });
    this.#root.innerHTML = adoptStyles(this.#root) + TEMPLATE;
    for (const el of this.#root.querySelectorAll('[part]')) this.#parts[el.getAttribute('part')] = el;
    const p = this.#parts;
    p.run.addEventListener('click', () => { this.run(); });
    p.stop.addEventListener('click', () => this.stop());
    p.clear.addEventListener('click', () => this.clear());
    p.copy.addEventListener('click', () => this.#copy());
    p.reset.addEventListener('click', () => this.reset());
    p.source.addEventListener('focus', () => this.#startEditor(true));
    p.source.addEventListener('pointerdown', () => this.#startEditor(true));
    p.source.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); this.run(); }
    });
    this.#output = new OutputView(p.output, { htmlScripts: this.hasAttribute('html-scripts'), frameScripts: FRAME_SCRIPTS });
  }

  connectedCallback() {
    if (!this.#original) this.#takeCode();
    this.#label();
    // Added again when the widget moves (disconnected, then connected): the same function,
    // so never twice.
    this.#darkQuery.addEventListener('change', this.#onSchemeChange);
    this.#applyTheme();
    const mode = this.getAttribute('editor') || 'lazy';
    if (mode === 'eager') this.#startEditor(false);
    else if (mode === 'lazy' && 'IntersectionObserver' in window) {
      this.#visibility = new IntersectionObserver((entries) => {
        if (!entries.some((e) => e.isIntersecting)) return;
        this.#visibility.disconnect();
        const idle = window.requestIdleCallback ?? ((f) => setTimeout(f, 200));
        idle(() => this.#startEditor(false));
      });
      this.#visibility.observe(this);
    }
  }

  disconnectedCallback() {
    this.#visibility?.disconnect();
    this.#darkQuery.removeEventListener('change', this.#onSchemeChange);
  }

  attributeChangedCallback(name) {
    if (name === 'language') {
      this.#label();
      this.#editor?.setLanguage(this.language);
    } else if (name === 'readonly') {
      this.#editor?.setReadOnly(this.readOnly);
    } else if (name === 'theme') {
      this.#applyTheme();
    } else if (name === 'html-scripts') {
      this.#output.htmlScripts = this.hasAttribute('html-scripts');
    }
  }

  /** The widget's language, canonical ("python") when it is one of the four; an unknown
   * name stays as it is, and a run then says the language is not supported. */
  get language() {
    const raw = this.getAttribute('language') || 'python';
    return canonicalLanguage(raw) ?? raw;
  }
  set language(v) { this.setAttribute('language', v); }

  get readOnly() { return this.hasAttribute('readonly'); }
  set readOnly(v) { this.toggleAttribute('readonly', Boolean(v)); }

  /** The code Reset goes back to: the page's, unless set (the playground sets its examples). */
  get defaultCode() { return this.#original; }
  set defaultCode(text) {
    this.#original = String(text);
    this.code = this.#kept() ?? this.#original;
  }

  /** Seconds a run may take (the timeout attribute, default 60). */
  get timeout() {
    const t = Number(this.getAttribute('timeout') ?? 60);
    return Number.isFinite(t) && t > 0 ? t : 60;
  }
  set timeout(v) { this.setAttribute('timeout', String(v)); }

  /** Whether runs stream over the session WebSocket (stream="off" uses callTool). */
  get streaming() { return this.getAttribute('stream') !== 'off'; }

  get running() { return this.#run !== null; }

  /** The code as it is now (edits included). */
  get code() { return this.#editor ? this.#editor.code : this.#code; }
  set code(text) {
    this.#code = String(text);
    if (this.#editor) this.#editor.code = this.#code;
    else this.#parts.source.textContent = this.#code;
    this.#edited(this.#code);
  }

  /** Back to the code of the page, forgetting the kept edit. */
  reset() {
    this.code = this.#original;
    store.remove(this.#storeKey());
  }

  /** Clear the output and the status. */
  clear() {
    this.#output.clear();
    this.#status('', '');
  }

  /** Stop the run in progress (it settles as cancelled, its output kept). */
  stop() {
    this.#run?.controller.abort();
  }

  /**
   * Run the code. Resolves with the EnhancedCodeExecutionResult (never rejects); a run
   * already in progress is stopped first.
   */
  async run() {
    if (this.#run) {
      this.stop();
      await this.#run?.promise;
    }
    const controller = new AbortController();
    const promise = this.#execute(controller);
    this.#run = { controller, promise };
    try {
      return await promise;
    } finally {
      if (this.#run?.promise === promise) this.#run = null;
      this.#busy(false);
    }
  }

  async #execute(controller) {
    const code = this.code, language = this.language;
    this.#output.clear();
    this.#busy(true);
    this.#status('running', 'Running…');
    this.dispatchEvent(new CustomEvent('codepane-start', { bubbles: true, composed: true }));
    const started = performance.now();
    let result;
    for (let attempt = 0; ; attempt++) {
      let session;
      try {
        session = await this.#session();
      } catch (e) {
        result = failedRun(e.message);
        break;
      }
      if (controller.signal.aborted) {
        result = failedRun('cancelled');
        break;
      }
      const out = this.#output;
      let shown = false;
      const live = this.streaming ? {
        streamBeta: true,
        onStdout: (t) => { shown = true; out.stdout(t); },
        onStderr: (t) => { shown = true; out.stderr(t); },
        onResult: (r) => { shown = true; out.result(r); },
      } : {};
      result = await session.code.run(code, language, this.timeout, { ...live, signal: controller.signal });
      // A session the server forgot (expired, or a restart): once more on a new one.
      if (attempt === 0 && !shown && !result.success && sessionGone(result)) {
        this.#forget(session);
        continue;
      }
      if (!this.streaming) this.#showAll(result);
      break;
    }
    const status = outcome(result, controller.signal.aborted);
    // A cancelled run's error only repeats what the status line says.
    if (result.error && status !== 'cancelled') this.#output.error(result.error);
    this.#output.flush();
    this.lastResult = result;
    this.#finished(status, result, (performance.now() - started) / 1000);
    this.dispatchEvent(new CustomEvent('codepane-done', { bubbles: true, composed: true, detail: { result, status } }));
    return result;
  }

  /** A non-streaming run's output, all at once. */
  #showAll(result) {
    for (const t of result.logs?.stdout ?? []) this.#output.stdout(t);
    for (const t of result.logs?.stderr ?? []) this.#output.stderr(t);
    for (const r of result.results ?? []) this.#output.result(r);
  }

  /** The status line of a settled run: what happened, how long, which run, and why. */
  #finished(status, result, wallS) {
    const bits = [];
    const time = seconds(result.executionTime || (status === 'cancelled' ? wallS : 0));
    if (time) bits.push(time);
    if (result.executionCount) bits.push(`run ${result.executionCount}`);
    let head = { finished: 'Finished', failed: 'Failed', cancelled: 'Cancelled', 'timed out': 'Timed out' }[status];
    if (bits.length) head += ` · ${bits.join(' · ')}`;
    const why = status === 'finished' || status === 'cancelled' ? '' : result.errorMessage;
    this.#status(status, head, why);
  }

  #status(state, text, why = '') {
    const s = this.#parts.status;
    s.dataset.state = state;
    s.textContent = text;
    if (why) {
      const w = document.createElement('span');
      w.className = 'why';
      w.textContent = `: ${why}`;
      s.append(w);
    }
  }

  #busy(on) {
    this.#parts.run.disabled = on;
    this.#parts.stop.disabled = !on;
    this.#parts.root.classList.toggle('busy', on);
    // Focus on a control that gets disabled would fall to the body.
    const active = this.#root.activeElement;
    if (on && active === this.#parts.run) this.#parts.stop.focus();
    if (!on && active === this.#parts.stop) this.#parts.run.focus();
  }

  /** Where this widget's session comes from (its server or session-endpoint attribute). */
  #source() {
    return sessionSource({ server: this.getAttribute('server'), sessionEndpoint: this.getAttribute('session-endpoint') });
  }

  #session() {
    const source = this.#source();
    if (!this.hasAttribute('isolated')) return sharedSession(source);
    if (!this.#isolated) {
      this.#isolated = source.open();
      this.#isolated.catch(() => { this.#isolated = null; });
    }
    return this.#isolated;
  }

  #forget(session) {
    if (this.hasAttribute('isolated')) {
      this.#isolated = null;
      session.close().catch(() => {});
    } else {
      dropShared(this.#source(), session);
    }
  }

  async #copy() {
    const text = this.#output.text();
    const b = this.#parts.copy;
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = 'Copied';
    } catch {
      b.textContent = 'Copy failed';
    }
    setTimeout(() => { b.textContent = 'Copy output'; }, 1500);
  }

  /** The code from the markup: a <pre><code> child, a <textarea>, or the text itself. */
  #takeCode() {
    const holder = this.querySelector('code') ?? this.querySelector('pre') ?? this.querySelector('textarea');
    const text = holder ? (holder.value ?? holder.textContent) : this.textContent;
    this.#original = dedent(text);
    const kept = this.#kept();
    this.#code = kept ?? this.#original;
    this.#parts.source.textContent = this.#code;
    this.#parts.reset.hidden = kept === null || kept === this.#original;
  }

  /** The edit kept for this snippet, or null (a read-only widget keeps none). */
  #kept() {
    return this.readOnly ? null : store.get(this.#storeKey());
  }

  #storeKey() {
    const id = this.getAttribute('snippet') || hash(`${location.pathname}\n${this.language}\n${this.#original}`);
    return `codepane:${id}`;
  }

  /** An edit: kept in localStorage (debounced), and Reset shown while it differs. */
  #edited(text) {
    this.#code = text;
    const changed = text !== this.#original;
    this.#parts.reset.hidden = !changed;
    this.dispatchEvent(new CustomEvent('codepane-change', { bubbles: true, composed: true, detail: { edited: changed } }));
    clearTimeout(this.#saveTimer);
    this.#saveTimer = setTimeout(() => {
      if (changed) store.set(this.#storeKey(), text);
      else store.remove(this.#storeKey());
    }, 300);
  }

  #label() {
    const name = LANGUAGES[this.language] ?? this.language;
    const p = this.#parts;
    p.language.textContent = name;
    p.toolbar.setAttribute('aria-label', `${name} code`);
    p.source.setAttribute('aria-label', `${name} code`);
    p.output.setAttribute('aria-label', `${name} output`);
  }

  #dark() {
    const t = this.getAttribute('theme');
    if (t === 'dark') return true;
    if (t === 'light') return false;
    return this.#darkQuery.matches;
  }

  #onSchemeChange = () => this.#applyTheme();

  #applyTheme() {
    const dark = this.#dark();
    this.#parts.root.dataset.theme = dark ? 'dark' : 'light';
    this.#output.setDark(dark);
    this.#editor?.setDark(dark);
  }

  /** Load the editor and put it in place of the plain source (focus follows if asked). */
  #startEditor(focus) {
    if (this.getAttribute('editor') === 'none') return;
    if (this.#editor) { if (focus) this.#editor.focus(); return; }
    this.#editorLoading ??= (async () => {
      const { createEditor } = await loadEditor();
      const source = this.#parts.source;
      const hadFocus = this.#root.activeElement === source;
      const start = { language: this.language, readOnly: this.readOnly, dark: this.#dark() };
      const editor = await createEditor({
        parent: this.#parts.editor,
        root: this.#root,
        doc: this.#code,
        ...start,
        onRun: () => { this.run(); },
        onEscape: () => this.#parts.run.focus(),
        onChange: (text) => this.#edited(text),
      });
      // What changed while the editor loaded (code, language, read-only, theme).
      if (editor.code !== this.#code) editor.code = this.#code;
      if (this.language !== start.language) editor.setLanguage(this.language);
      if (this.readOnly !== start.readOnly) editor.setReadOnly(this.readOnly);
      if (this.#dark() !== start.dark) editor.setDark(this.#dark());
      source.remove();
      this.#editor = editor;
      if (hadFocus || this.#wantFocus) editor.focus();
      return editor;
    })();
    this.#editorLoading.catch((e) => {
      this.#editorLoading = null;
      this.#status('failed', 'The editor did not load', e.message);
    });
    if (focus) this.#wantFocus = true;
  }

  #wantFocus = false;
}

/**
 * Turn the code blocks of a page into widgets: each element matching `selector` (a
 * <code> with a class such as language-python, or its <pre>) is wrapped in a
 * <code-pane> whose language comes from that class. `attributes` go on every widget.
 * @returns {CodePane[]}
 */
export function upgrade(selector = 'pre > code[class*="language-"]', attributes = {}) {
  const made = [];
  for (const el of document.querySelectorAll(selector)) {
    const pre = el.closest('pre') ?? el;
    if (pre.closest('code-pane')) continue;
    const cls = [...(el.classList ?? [])].find((c) => c.startsWith('language-'));
    const language = canonicalLanguage(cls?.slice('language-'.length) ?? attributes.language);
    if (!language) continue;
    const pane = document.createElement('code-pane');
    for (const [k, v] of Object.entries(attributes)) pane.setAttribute(k, v);
    pane.setAttribute('language', language);
    // The code goes in before the widget is in the page, where it reads its code.
    const [parent, next] = [pre.parentNode, pre.nextSibling];
    pane.append(pre);
    parent.insertBefore(pane, next);
    made.push(pane);
  }
  return made;
}

if (!customElements.get('code-pane')) customElements.define('code-pane', CodePane);
