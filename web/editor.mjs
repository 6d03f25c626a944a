// codepane web: the source editor of <code-pane>, a CodeMirror 6 view in the element's shadow
// root. code-pane.mjs imports this file lazily (it is its own chunk), and this file imports each
// language's grammar lazily in turn, so a page of Python snippets loads the editor core and the
// Python grammar and nothing else.
//
// Ownership: createEditor() returns a handle that owns the EditorView it mounts into `parent`
// for the life of the element; the caller owns `parent` and `root`. The language-support
// cache below is the only module state: it holds immutable extensions, shared by every
// editor on the page.
//
// The setup is a lean subset of CodeMirror's basicSetup, chosen for a docs widget:
// - kept: line numbers, history, bracket matching, close brackets, indent on input, syntax
//   highlighting, active-line highlight, special-character display, the default keymap;
// - dropped: the completion popup (autocompletion() costs about 10 KB gzip, and a list that
//   opens while a reader types takes Enter from them), code folding, search panel
//   (@codemirror/search; the page's own find covers short snippets), lint, multiple selections
//   with drawn cursors (drawSelection), rectangular selection, selection-match highlighting.
//   Without drawSelection the browser draws the caret and the selection, which screen
//   magnifiers can follow.
// Core plus the Python grammar is about 133 KB gzip; basicSetup would be about 162 KB.
//
// Keyboard (playground-anchors §4 items 8 and 9):
// - Mod-Enter (Ctrl-Enter, Cmd-Enter on macOS) calls onRun. It has the highest precedence, so
//   it wins over the default keymap's insertBlankLine.
// - Tab and Shift-Tab indent (indentWithTab). That is a keyboard trap unless there is a way
//   out, and there are three: Esc calls onEscape (the element moves focus to its Run button);
//   after an Esc that nothing else took, Tab and Shift-Tab move focus for two seconds
//   (CodeMirror's tab-focus mode, which this file keeps when it calls onEscape, so Esc then Tab
//   leaves even if onEscape did not move focus); Ctrl-M (Shift-Alt-M on macOS) toggles
//   tab-focus mode until toggled back.
// - Esc has the lowest precedence: anything else bound to it comes first (today the default
//   keymap's simplifySelection, which collapses a selection), and only an Esc nothing else
//   wanted calls onEscape.

import { Annotation, Compartment, EditorState, Prec } from '@codemirror/state';
import {
  EditorView, highlightActiveLine, highlightActiveLineGutter, highlightSpecialChars, keymap,
  lineNumbers,
} from '@codemirror/view';
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import {
  StreamLanguage, bracketMatching, defaultHighlightStyle, indentOnInput, indentUnit,
  syntaxHighlighting,
} from '@codemirror/language';
import { closeBrackets, closeBracketsKeymap } from '@codemirror/autocomplete';
import { oneDarkHighlightStyle } from '@codemirror/theme-one-dark';

// How long Tab and Shift-Tab move focus after an Esc this file handled (CodeMirror uses the same
// two seconds after an Esc nobody handled).
const TAB_ESCAPE_MS = 2000;
const FONT_SIZE = '14px';
const LINE_HEIGHT = 1.45;
const MIN_LINES = 3;
const PADDING_PX = 4;
// Taller snippets scroll inside the editor; the page keeps the rest of the viewport.
const MAX_HEIGHT = '60vh';
const MONO_FALLBACK = 'ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace';

/**
 * Each language loads its CodeMirror support in its own chunk. `indent` is the unit that
 * Tab and auto-indent insert, following each language's usual style guide.
 * @type {Record<string, {name: string, indent: string, load: () => Promise<import('@codemirror/state').Extension>}>}
 */
const LANGUAGES = {
  python: {
    name: 'Python', indent: '    ',
    load: () => import('@codemirror/lang-python').then((m) => m.python()),
  },
  javascript: {
    name: 'JavaScript', indent: '  ',
    load: () => import('@codemirror/lang-javascript').then((m) => m.javascript()),
  },
  java: {
    name: 'Java', indent: '    ',
    load: () => import('@codemirror/lang-java').then((m) => m.java()),
  },
  r: {
    name: 'R', indent: '  ',
    load: () => import('@codemirror/legacy-modes/mode/r').then((m) => StreamLanguage.define(m.r)),
  },
};
/** @type {Map<string, Promise<import('@codemirror/state').Extension>>} */
const loaded = new Map();

/**
 * The extensions for one language (canonical, as the element gives it: "python"), its
 * grammar and its indent unit. An unknown language is
 * plain text with a 4-space indent, not an error. A failed chunk load rejects and is not
 * cached, so a later call retries.
 */
function languageSupport(lang) {
  const spec = LANGUAGES[lang];
  if (!spec) return Promise.resolve(indentUnit.of('    '));
  let p = loaded.get(lang);
  if (!p) {
    p = spec.load().then((support) => [support, indentUnit.of(spec.indent)]);
    p.catch(() => loaded.delete(lang));
    loaded.set(lang, p);
  }
  return p;
}

function defaultLabel(lang) {
  return `${LANGUAGES[lang]?.name ?? 'Source'} code`;
}

/**
 * The editor's look, from the element's palette (--fg, --bg, --muted, --border, --accent,
 * which code-pane.css sets on the widget from the --cp-* custom properties, per theme).
 * `dark` picks the active-line tints and tells CodeMirror's base theme which of its own
 * defaults to use (matching brackets, tooltips).
 */
function paneTheme(dark) {
  const c = dark
    ? { active: '#ffffff0f', gutterActive: '#ffffff14' }
    : { active: '#0000000a', gutterActive: '#00000012' };
  // --cp-editor-min-height lets a page give its editor more room (the playground does).
  const contentMin = `var(--cp-editor-min-height, calc(${MIN_LINES * LINE_HEIGHT}em + ${2 * PADDING_PX}px))`;
  return EditorView.theme({
    '&': {
      color: 'var(--fg)',
      backgroundColor: 'var(--bg)',
      fontSize: FONT_SIZE,
      maxHeight: MAX_HEIGHT,
      // A flex or grid parent must not grow to the longest line: the editor scrolls instead.
      minWidth: '0',
    },
    // Replaces CodeMirror's dotted outline; inset so a parent with overflow: hidden keeps it.
    '&.cm-focused': {
      outline: '2px solid var(--accent)',
      outlineOffset: '-2px',
    },
    '.cm-scroller': {
      fontFamily: `var(--cp-mono, ${MONO_FALLBACK})`,
      lineHeight: String(LINE_HEIGHT),
      overflow: 'auto',
    },
    '.cm-content': {
      caretColor: 'var(--fg)',
      padding: `${PADDING_PX}px 0`,
      minHeight: contentMin,
    },
    '.cm-gutters': {
      backgroundColor: 'var(--bg)',
      color: 'var(--muted)',
      borderRight: '1px solid var(--border)',
      minHeight: contentMin,
    },
    '.cm-activeLine': { backgroundColor: c.active },
    '.cm-activeLineGutter': { backgroundColor: c.gutterActive, color: 'var(--fg)' },
    '.cm-tooltip': {
      fontFamily: `var(--cp-mono, ${MONO_FALLBACK})`,
      borderColor: 'var(--border)',
    },
  }, { dark });
}

const LIGHT = [paneTheme(false), syntaxHighlighting(defaultHighlightStyle)];
const DARK = [paneTheme(true), syntaxHighlighting(oneDarkHighlightStyle)];

// Marks the transactions of the `code` setter, which do not call onChange.
const fromSetter = Annotation.define();

/** Call a user callback; an exception is reported and does not break the editor's key handling. */
function call(fn, arg) {
  if (typeof fn !== 'function') return;
  try {
    fn(arg);
  } catch (e) {
    if (typeof globalThis.reportError === 'function') globalThis.reportError(e);
    else console.error('codepane: a callback threw:', e);
  }
}

/**
 * Mount a CodeMirror editor in `parent`. Resolves once the language's grammar has loaded (so the
 * code never shows unhighlighted); if the grammar fails to load, the editor is plain text.
 *
 * The editor's accessible name follows the language ("Python code"); setLanguage() updates it.
 * onChange(text) is called synchronously after every change made by the user (typing, paste,
 * undo); not for the `code` setter.
 *
 * @param {{
 *   parent: Element, root?: ShadowRoot | Document, doc?: string, language?: string,
 *   readOnly?: boolean, dark?: boolean,
 *   onRun?: () => void, onEscape?: () => void, onChange?: (text: string) => void,
 * }} options
 */
export async function createEditor({
  parent, root, doc = '', language, readOnly = false, dark = false,
  onRun, onEscape, onChange,
}) {
  const languageSlot = new Compartment();
  const themeSlot = new Compartment();
  const readOnlySlot = new Compartment();
  const labelSlot = new Compartment();

  let lang = language;
  let languageSeq = 0;
  const labelAttrs = () => EditorView.contentAttributes.of({ 'aria-label': defaultLabel(lang) });

  const run = () => {
    if (typeof onRun !== 'function') return false;
    call(onRun);
    return true;
  };
  const leave = (view) => {
    // Without a handler, CodeMirror's own Esc-then-Tab escape hatch applies unchanged.
    if (typeof onEscape !== 'function') return false;
    call(onEscape);
    // Focus usually left with onEscape; if it stayed, let the next Tab take it out.
    if (view.hasFocus) view.setTabFocusMode(TAB_ESCAPE_MS);
    return true;
  };

  const support = await languageSupport(lang).catch(() => []);

  const view = new EditorView({
    parent,
    root,
    state: EditorState.create({
      doc,
      extensions: [
        Prec.highest(keymap.of([{ key: 'Mod-Enter', run, preventDefault: true }])),
        lineNumbers(),
        highlightActiveLineGutter(),
        highlightSpecialChars(),
        history(),
        indentOnInput(),
        bracketMatching(),
        closeBrackets(),
        highlightActiveLine(),
        keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...historyKeymap, indentWithTab]),
        Prec.lowest(keymap.of([{ key: 'Escape', run: leave }])),
        languageSlot.of(support),
        themeSlot.of(dark ? DARK : LIGHT),
        readOnlySlot.of(EditorState.readOnly.of(Boolean(readOnly))),
        labelSlot.of(labelAttrs()),
        EditorView.updateListener.of((update) => {
          if (!update.docChanged || typeof onChange !== 'function') return;
          if (update.transactions.every((tr) => !tr.docChanged || tr.annotation(fromSetter))) return;
          call(onChange, update.state.doc.toString());
        }),
      ],
    }),
  });

  return {
    /** The current text. */
    get code() {
      return view.state.doc.toString();
    },
    /** Replace the whole text (undoable with Mod-Z; works when read-only; no onChange). */
    set code(text) {
      text = String(text ?? '');
      if (text === view.state.doc.toString()) return;
      view.dispatch({
        changes: { from: 0, to: view.state.doc.length, insert: text },
        annotations: fromSetter.of(true),
      });
    },
    /**
     * Switch the grammar (and the derived label). Resolves when it is in place; when calls
     * overlap, the last one wins. Rejects if the grammar's chunk fails to load.
     */
    async setLanguage(next) {
      const seq = ++languageSeq;
      const ext = await languageSupport(next);
      if (seq !== languageSeq) return;
      lang = next;
      view.dispatch({ effects: [languageSlot.reconfigure(ext), labelSlot.reconfigure(labelAttrs())] });
    },
    setDark(on) {
      view.dispatch({ effects: themeSlot.reconfigure(on ? DARK : LIGHT) });
    },
    /** Read-only still lets keyboard users focus, move, select and copy; only edits are blocked. */
    setReadOnly(on) {
      view.dispatch({ effects: readOnlySlot.reconfigure(EditorState.readOnly.of(Boolean(on))) });
    },
    focus() {
      view.focus();
    },
  };
}
