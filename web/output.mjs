// The output view of <code-pane>: streamed stdout/stderr, rich results and errors of one
// run, rendered into a container inside the element's shadow root. OutputView owns every
// node it puts in that container and the iframes' message routing; the caller owns the
// container itself.
//
// Everything shown here is untrusted: a shared link or prefilled code did not come from
// the reader (playground-anchors.md §3). So: text only through text nodes, never
// innerHTML; ANSI colours become class names; PNG/JPEG/SVG are <img> data: URLs (SVG is
// never inlined); HTML, Markdown and LaTeX go into an opaque-origin iframe
// (sandbox="allow-scripts", never allow-same-origin) whose srcdoc carries a CSP with no
// network; Vega-Lite charts too, drawn by a script of ours that the frame's CSP allows by
// its URL (chart-frame.mjs); JSON becomes a tree of text nodes.
import Anser from 'anser';

import outputCss from './output.css';

export { outputCss };

/** Every size, count and delay of the view, in one place. */
const LIMITS = Object.freeze({
  headLines: 2000,             // a stream keeps its first lines in the DOM...
  headChars: 200 * 1024,       // ...or its first characters, whichever comes first
  tailChars: 64 * 1024,        // and its last characters
  tailRuns: 3000,              // and at most this many styled pieces (spans are costly to lay out)
  tailAlignChars: 16 * 1024,   // the tail starts at a line start if one is this close
  tailTrickleChars: 2048,      // a tail that got at most this much since it was drawn...
  tailTrickleRuns: 256,        // ...in at most this many runs is drawn at the next frame;
  tailRefreshMs: 200,          // more (a flood) waits this long between draws
  blockLines: 50,              // lines per block element (see RunList)
  runsPerFrame: 1000,          // new nodes a frame builds (flush() builds all)
  styledShowAllChars: 1024 * 1024, // "Show all" keeps colours up to this size...
  styledShowAllRuns: 20000,    // ...and this many styled pieces; above either it is plain
  escapeChars: 4096,           // an unfinished escape sequence longer than this is text
  hiddenTabFlushMs: 100,       // rAF does not fire in a hidden tab; this timer does
  frameMinHeight: 24,          // px, an iframe before its first size report
  frameMaxHeight: 800,         // px, then the iframe scrolls
  jsonOpenDepth: 2,            // levels of a JSON tree open at first
  jsonItems: 100,              // entries of an array/object shown before "… N more"
});

const ESC = '\x1b';
/** Stands between two runs where a lone carriage return wipes the current line. */
const ERASE_LINE = Object.freeze({ erase: true });

// ---------------------------------------------------------------------------------------
// ANSI: what reaches anser is text plus SGR (colour) sequences only.

const CSI_RE = /\x1b\[([0-?]*)([ -/]*)([@-~])/y;
const CSI_OPEN_RE = /\x1b\[[0-?]*[ -/]*$/y;
const STRING_SEQ_RE = /\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)/y; // OSC, DCS, SOS, PM, APC
const STRING_SEQ_OPEN_RE = /\x1b[\]PX^_][^\x07\x1b]*\x1b?$/y;
const SHORT_SEQ_RE = /\x1b(?![[\]PX^_])[ -/]*[0-~]/y; // ESC 7, ESC ( B, ESC =…
const SHORT_SEQ_OPEN_RE = /\x1b[ -/]*$/y;
const CONTROL_RE = /[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]/g;

/** The match of a sticky regex at index i (the *_OPEN ones only match up to the end), or null. */
function matchAt(re, text, i) {
  re.lastIndex = i;
  return re.exec(text);
}

/**
 * SGR parameters in the form anser reads: ISO 8613-6 colon sub-parameters
 * (38:2::r:g:b, 38:5:n, 4:3) become the common semicolon form.
 * @param {string} params
 * @returns {string}
 */
function normalizeSgr(params) {
  if (!params.includes(':')) return params;
  return params.split(';').map((p) => {
    if (!p.includes(':')) return p;
    const [head, mode, ...rest] = p.split(':');
    if ((head === '38' || head === '48') && mode === '2') return [head, 2, ...rest.slice(-3)].join(';');
    if ((head === '38' || head === '48') && mode === '5') return [head, 5, rest[0] ?? ''].join(';');
    return head === '58' ? '' : head; // underline colour: no CSS for it; 4:3 → 4
  }).filter((p) => p !== '').join(';');
}

/**
 * Splits text into what can be parsed now and what to hold back for the next chunk: an
 * unfinished escape sequence, or a trailing CR or high surrogate (the first half of a
 * pair). Keeps SGR sequences; drops every other escape sequence (cursor moves, erase,
 * OSC links, charset switches) and stray control characters; CR LF becomes LF.
 * @param {string} text
 * @returns {{clean: string, carry: string}}
 */
function keepSgrOnly(text) {
  let clean = '';
  let carry = '';
  let pos = 0;
  for (let i = text.indexOf(ESC); i !== -1; i = text.indexOf(ESC, pos)) {
    clean += text.slice(pos, i);
    const csi = matchAt(CSI_RE, text, i);
    if (csi) {
      if (csi[3] === 'm' && !csi[2] && /^[\d;:]*$/.test(csi[1])) clean += `${ESC}[${normalizeSgr(csi[1])}m`;
      pos = i + csi[0].length;
      continue;
    }
    const other = matchAt(STRING_SEQ_RE, text, i) || matchAt(SHORT_SEQ_RE, text, i);
    if (other) {
      pos = i + other[0].length;
      continue;
    }
    const open = text.length - i <= LIMITS.escapeChars &&
      (matchAt(CSI_OPEN_RE, text, i) || matchAt(STRING_SEQ_OPEN_RE, text, i) || matchAt(SHORT_SEQ_OPEN_RE, text, i));
    if (open) {
      carry = text.slice(i);
      pos = text.length;
      break;
    }
    pos = i + 1; // a malformed sequence: drop the ESC, keep what follows as text
  }
  clean += text.slice(pos);
  // Held back as well: a CR that may be half of CR LF, and half of a surrogate pair.
  if (!carry && /[\r\ud800-\udbff]$/.test(clean)) {
    carry = clean.slice(-1);
    clean = clean.slice(0, -1);
  }
  clean = clean.replace(CONTROL_RE, '');
  if (clean.includes('\r')) clean = clean.replace(/\r+\n/g, '\n');
  return { clean, carry };
}

/**
 * @typedef {{className: string, color: string, background: string}} Style
 * @typedef {{text: string, style: Style|null}} Run   a piece of text in one style
 */

/** An xterm 256-colour palette entry (16…255) as CSS. */
function paletteColor(n) {
  if (n < 232) {
    const levels = [0, 95, 135, 175, 215, 255];
    const i = n - 16;
    return `rgb(${levels[Math.floor(i / 36)]}, ${levels[Math.floor(i / 6) % 6]}, ${levels[i % 6]})`;
  }
  const grey = 8 + (n - 232) * 10;
  return `rgb(${grey}, ${grey}, ${grey})`;
}

/**
 * One anser colour (a class name, "ansi-palette-N" or "ansi-truecolor" with "r, g, b")
 * as a CSS class or an inline colour. Inline colours are rebuilt from parsed numbers,
 * never copied from the output.
 * @returns {{className?: string, css?: string}}
 */
function colorOf(name, truecolor, layer) {
  if (!name) return {};
  if (name === 'ansi-truecolor') {
    const rgb = String(truecolor).split(',').map((v) => Number.parseInt(v, 10));
    const ok = rgb.length === 3 && rgb.every((v) => v >= 0 && v <= 255);
    return ok ? { css: `rgb(${rgb.join(', ')})` } : {};
  }
  const palette = /^ansi-palette-(\d+)$/.exec(name);
  if (palette) {
    const n = Number(palette[1]);
    return n >= 16 && n <= 255 ? { css: paletteColor(n) } : {};
  }
  return /^ansi-(bright-)?[a-z]+$/.test(name) ? { className: `${name}-${layer}` } : {};
}

/**
 * The style of one anser JSON entry, or null for plain text. A reverse of the default
 * colours (anser makes it black on white) becomes ansi-reverse, the theme's colours
 * swapped; any background adds ansi-bg, so that white and black text on it can be real
 * white and black (the themes tone them down for the pane's own background).
 */
function styleOf(entry) {
  const defaultReverse = entry.isInverted && entry.fg === 'ansi-black' && entry.bg === 'ansi-white';
  const fg = defaultReverse ? {} : colorOf(entry.fg, entry.fg_truecolor, 'fg');
  const bg = defaultReverse ? {} : colorOf(entry.bg, entry.bg_truecolor, 'bg');
  const classes = [fg.className, bg.className, ...entry.decorations.map((d) => `ansi-${d}`)].filter(Boolean);
  if (defaultReverse) classes.push('ansi-reverse');
  else if (bg.className || bg.css) classes.push('ansi-bg');
  if (!classes.length && !fg.css && !bg.css) return null;
  return { className: classes.join(' '), color: fg.css ?? '', background: bg.css ?? '' };
}

/**
 * The ANSI state of one output stream (stdout and stderr each have their own): the SGR
 * style in effect and the unfinished escape sequence held back from the last chunk.
 */
class AnsiParser {
  #anser = new Anser();
  #carry = '';
  /** @type {Style|null} */
  #style = null;

  /**
   * One chunk as runs, in order; ERASE_LINE marks a lone CR.
   * @param {string} chunk
   * @returns {Array<Run|typeof ERASE_LINE>}
   */
  push(chunk) {
    const { clean, carry } = keepSgrOnly(this.#carry + chunk);
    this.#carry = carry;
    const out = [];
    clean.split('\r').forEach((line, i) => {
      if (i > 0) out.push(ERASE_LINE);
      this.#parse(line, out);
    });
    return out;
  }

  /** Appends the runs of text that has no CR to out, carrying the style across calls. */
  #parse(text, out) {
    if (!text) return;
    if (!text.includes(ESC)) {
      out.push({ text, style: this.#style });
      return;
    }
    // anser leaves the text before the first sequence unstyled, even when its own state
    // (kept across calls on this instance) says otherwise; that state is this.#style.
    this.#anser.ansiToJson(text, { use_classes: true }).forEach((entry, i) => {
      if (i > 0) this.#style = styleOf(entry);
      if (entry.content) out.push({ text: entry.content, style: this.#style });
    });
  }
}

/**
 * Text with runs applied: the style dropped, each ERASE_LINE wiping back to the last LF.
 * @param {Array<Run|typeof ERASE_LINE>} runs
 */
function runsToText(runs) {
  let text = '';
  for (const run of runs) {
    text = run === ERASE_LINE ? text.slice(0, text.lastIndexOf('\n') + 1) : text + run.text;
  }
  return text;
}

/** Text with every escape sequence and control character removed. */
function stripAnsi(text) {
  return runsToText(new AnsiParser().push(text)); // an unfinished escape at the end is dropped
}

// ---------------------------------------------------------------------------------------
// Small DOM and text helpers.

/** A new element with a class name and, optionally, text. */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The DOM node of a run: a text node, or a span when it has a style or is stderr. */
function runNode(text, style, stream) {
  if (!style && stream !== 'stderr') return document.createTextNode(text);
  const span = el('span', [stream === 'stderr' ? 'stderr' : '', style?.className ?? ''].join(' ').trim(), text);
  if (style?.color) span.style.color = style.color;
  if (style?.background) span.style.backgroundColor = style.background;
  return span;
}

/** How many LF characters text holds. */
function countLines(text) {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/** The UTF-8 size of a string, without encoding it. */
function utf8Length(text) {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c < 0xd800 || c > 0xdbff) n += 2; // a high surrogate adds 0, its low one 2
  }
  return n;
}

/** "9.7 MB" style sizes (binary multiples, as file managers show them). */
function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** A random hex id, for iframe ids. */
function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Base64 of a string's UTF-8 bytes. */
function base64Utf8(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** Saves text parts as a file through a temporary object URL. */
function download(parts, fileName) {
  // One string: a Blob encodes each part alone, and a part may end in half a surrogate pair.
  const url = URL.createObjectURL(new Blob([parts.join('')], { type: 'text/plain;charset=utf-8' }));
  const link = el('a');
  link.href = url;
  link.download = fileName;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

// ---------------------------------------------------------------------------------------
// Streams: one <pre part="stream"> per run of consecutive stdout/stderr chunks.

/** The index just after the k-th LF of text (k ≥ 1), or text.length if it has fewer. */
function afterLineBreaks(text, k) {
  let i = -1;
  while (k-- > 0) {
    i = text.indexOf('\n', i + 1);
    if (i === -1) return text.length;
  }
  return i + 1;
}

/** Cuts runs (in place) down to their first n characters. */
function keepFirstChars(runs, n) {
  let i = 0;
  for (; i < runs.length && n > 0; i++) {
    if (runs[i].text.length > n) runs[i] = { ...runs[i], text: runs[i].text.slice(0, n) };
    n -= runs[i].text.length;
  }
  runs.length = i;
}

/**
 * Runs shown in one element, kept in step with its DOM lazily: edits change the entries,
 * render() brings the nodes up to date (so a frame that receives 1 MB only builds nodes
 * for what is still there at its end). The nodes sit in blocks of whole lines: appending
 * to one big inline box makes the browser lay all of it out again (35 ms a frame for
 * 200 KB of coloured text), appending a block costs only that block.
 */
class RunList {
  /**
   * @type {Array<{text: string, style: Style|null, stream: string, node: Node|null,
   *   block: {el: HTMLElement|null, lines: number, count: number, full: boolean}}>}
   */
  entries = [];
  chars = 0;
  #rendered = 0;          // entries[0…#rendered) have nodes; the ones after do not
  #dirty = new Set();     // rendered entries whose text changed
  #removed = [];          // nodes and blocks to take out of the DOM
  #completed = [];        // blocks whose `full` changed since the last render

  /** @param {HTMLElement} element */
  constructor(element) {
    this.element = element;
  }

  /** Appends text, split where a block of lines ends. */
  append(text, style, stream) {
    this.chars += text.length;
    while (text) {
      const last = this.entries[this.entries.length - 1];
      let block = last?.block;
      if (!block || (block.lines >= LIMITS.blockLines && last.text.endsWith('\n'))) {
        if (block) {
          block.full = true;
          this.#completed.push(block);
        }
        block = { el: null, lines: 0, count: 0, full: false };
      }
      const piece = text.slice(0, afterLineBreaks(text, Math.max(1, LIMITS.blockLines - block.lines)));
      block.lines += countLines(piece);
      block.count++;
      this.entries.push({ text: piece, style, stream, node: null, block });
      text = text.slice(piece.length);
    }
  }

  /** Forgets an entry that left the list; its node (and block, if now empty) go at render. */
  #drop(entry) {
    this.#dirty.delete(entry);
    if (entry.node) this.#removed.push(entry.node);
    if (--entry.block.count === 0 && entry.block.el) this.#removed.push(entry.block.el);
  }

  /** Changes an entry's text (cutting `cut` off it); its block no longer has 50 lines. */
  #edit(entry, text, cut) {
    const { block } = entry;
    block.lines -= countLines(cut);
    entry.text = text;
    if (entry.node) this.#dirty.add(entry);
    if (block.full) {
      block.full = false;
      this.#completed.push(block);
    }
  }

  /** How many entries have no node yet. */
  get pending() {
    return this.entries.length - this.#rendered;
  }

  /**
   * Removes n characters from the front.
   * @returns {string} the last character removed ('' if none)
   */
  dropFront(n) {
    let k = 0;
    let last = '';
    for (; n > 0 && k < this.entries.length; k++) {
      const e = this.entries[k];
      if (e.text.length > n) {
        last = e.text[n - 1];
        this.#edit(e, e.text.slice(n), e.text.slice(0, n));
        this.chars -= n;
        break;
      }
      n -= e.text.length;
      this.chars -= e.text.length;
      last = e.text.slice(-1) || last;
      this.#drop(e);
    }
    this.entries.splice(0, k);
    this.#rendered = Math.max(0, this.#rendered - k);
    return last;
  }

  /** How many characters the first k entries hold. */
  charsOfFirst(k) {
    let n = 0;
    for (let i = 0; i < k && i < this.entries.length; i++) n += this.entries[i].text.length;
    return n;
  }

  /** Removes up to n characters from the end; returns how many it removed. */
  eraseBack(n) {
    let erased = 0;
    while (erased < n && this.entries.length) {
      const e = this.entries[this.entries.length - 1];
      const cut = Math.min(n - erased, e.text.length);
      erased += cut;
      if (cut < e.text.length) {
        this.#edit(e, e.text.slice(0, e.text.length - cut), e.text.slice(e.text.length - cut));
      } else {
        this.entries.pop();
        this.#drop(e);
      }
    }
    this.#rendered = Math.min(this.#rendered, this.entries.length);
    this.chars -= erased;
    return erased;
  }

  /** The index in the text of the first LF within the first `within` characters, or -1. */
  firstLineBreak(within) {
    let offset = 0;
    for (const e of this.entries) {
      if (offset >= within) break;
      const i = e.text.indexOf('\n');
      if (i !== -1) return offset + i < within ? offset + i : -1;
      offset += e.text.length;
    }
    return -1;
  }

  text() {
    return this.entries.map((e) => e.text).join('');
  }

  clear() {
    for (const e of this.entries) this.#drop(e);
    this.entries = [];
    this.chars = 0;
    this.#rendered = 0;
  }

  /**
   * Brings the DOM up to date with the entries, building at most `limit` new nodes.
   * @returns {boolean} whether entries are left without nodes
   */
  render(limit = Infinity) {
    for (const node of this.#removed) node.remove();
    this.#removed = [];
    for (const e of this.#dirty) e.node.textContent = e.text;
    this.#dirty.clear();
    for (const b of this.#completed) b.el?.classList.toggle('cp-full', b.full);
    this.#completed = [];
    let block = null;
    let fresh = null;
    const end = Math.min(this.entries.length, this.#rendered + limit);
    for (let i = this.#rendered; i < end; i++) {
      const e = this.entries[i];
      if (e.block !== block) {
        if (fresh) block.el.append(fresh);
        block = e.block;
        block.el ??= this.element.appendChild(el('span', block.full ? 'cp-block cp-full' : 'cp-block'));
        fresh = document.createDocumentFragment();
      }
      e.node = runNode(e.text, e.style, e.stream);
      fresh.append(e.node);
    }
    if (fresh) block.el.append(fresh);
    this.#rendered = end;
    return end < this.entries.length;
  }
}

/**
 * One stream pane: all its text in memory, a head and a tail of it in the DOM, and a
 * marker between them once the middle no longer fits ("… N lines (X MB) hidden …").
 */
class StreamView {
  /**
   * Everything, as shown (CR already applied): each chunk's text, and its runs while the
   * whole is small enough for "Show all" to keep colours (runs cost several times their
   * text in memory, spans cost layout time).
   * @type {Array<{stream: string, text: string, runs: Run[]|null}>}
   */
  #record = [];
  #recordChars = 0;
  #recordRuns = 0;
  #keepRuns = true;
  #head;
  #tail;
  #headLines = 0;
  #headEndsLine = true;
  #headFull = false;
  #unlimited = false;
  #rest = { chars: 0, lines: 0, bytes: 0 }; // what came after the head
  #tailFresh = 0;      // characters added to the tail since it was last drawn
  #tailDrawnAt = -Infinity;
  #marker = null;
  #markerText = null;
  #live = null;
  #announced = '';
  #onDownload;

  /**
   * @param {HTMLElement} pre the element to fill; the caller places it
   * @param {() => string[]} onDownload the text parts "Download" saves
   */
  constructor(pre, onDownload) {
    this.pre = pre;
    this.#onDownload = onDownload;
    this.#head = new RunList(pre.appendChild(el('span', 'cp-head')));
    this.#tail = new RunList(el('span', 'cp-tail'));
  }

  /** Adds parsed runs of one stream; render() shows them. */
  add(stream, runs) {
    let chunk = null;
    let parts = [];
    // One join per chunk: `+=` per run would keep a tree of thousands of small strings.
    const seal = () => {
      if (parts.length) chunk.text += parts.join('');
      parts = [];
    };
    for (const run of runs) {
      if (run === ERASE_LINE) {
        seal();
        this.#eraseLine();
        chunk = null;
        continue;
      }
      if (!chunk) {
        chunk = { stream, text: '', runs: this.#keepRuns ? [] : null };
        this.#record.push(chunk);
      }
      parts.push(run.text);
      chunk.runs?.push(run); // never changed in place (keepFirstChars replaces entries)
      this.#recordChars += run.text.length;
      this.#recordRuns++;
      this.#place(run, stream);
    }
    seal();
    if (this.#keepRuns && (this.#recordChars > LIMITS.styledShowAllChars || this.#recordRuns > LIMITS.styledShowAllRuns)) {
      this.#keepRuns = false;
      for (const c of this.#record) c.runs = null;
    }
  }

  /** Puts a run in the head while it has room, the rest in the tail. */
  #place(run, stream) {
    let { text } = run;
    if (!this.#headFull || this.#unlimited) {
      const take = this.#unlimited ? text.length : this.#headRoom(text);
      if (take > 0) {
        const part = text.slice(0, take);
        this.#head.append(part, run.style, stream);
        this.#headLines += countLines(part);
        this.#headEndsLine = part.endsWith('\n');
      }
      if (take === text.length) return;
      this.#headFull = true;
      text = text.slice(take);
    }
    this.#rest.chars += text.length;
    this.#rest.lines += countLines(text);
    this.#rest.bytes += utf8Length(text);
    this.#tailFresh += text.length;
    this.#tail.append(text, run.style, stream);
  }

  /**
   * How many characters of text still fit in the head: up to its headLines-th LF, or
   * headChars, then back to a line end if there is one (the tail starts a new line).
   */
  #headRoom(text) {
    if (this.#headLines >= LIMITS.headLines) return 0;
    const chars = Math.max(0, LIMITS.headChars - this.#head.chars);
    const byLines = afterLineBreaks(text, LIMITS.headLines - this.#headLines);
    if (byLines <= chars) return byLines;
    if (chars === 0) return 0;
    let room = text.lastIndexOf('\n', chars - 1) + 1 || (this.#headEndsLine ? 0 : chars);
    if (/[\ud800-\udbff]/.test(text[room - 1])) room--; // keep a pair whole
    return room;
  }

  /** A lone CR: the text since the last LF goes, from the record and from the view. */
  #eraseLine() {
    let erased = '';
    while (this.#record.length) {
      const chunk = this.#record[this.#record.length - 1];
      const cut = chunk.text.lastIndexOf('\n') + 1;
      erased = chunk.text.slice(cut) + erased;
      chunk.text = chunk.text.slice(0, cut);
      if (chunk.runs) keepFirstChars(chunk.runs, cut);
      if (cut) break;
      this.#record.pop();
    }
    this.#recordChars -= erased.length;
    this.#forget(erased);
  }

  /** Takes the erased end of the text off the tail (then the head) and the counts. */
  #forget(erased) {
    let n = erased.length;
    if (this.#headFull && !this.#unlimited) {
      const fromRest = Math.min(n, this.#rest.chars);
      this.#rest.chars -= fromRest;
      this.#rest.bytes -= utf8Length(erased.slice(erased.length - fromRest));
      this.#tail.eraseBack(fromRest);
      n -= fromRest;
    }
    if (this.#head.eraseBack(n)) this.#headEndsLine = true; // back to a line start
  }

  get truncated() {
    return this.#rest.chars > this.#tail.chars;
  }

  /**
   * Brings the DOM up to date, except (unless `force`) more than runsPerFrame new nodes
   * and a flooded tail drawn less than tailRefreshMs ago. `force` also tells screen
   * readers what is hidden.
   * @returns {boolean} whether something was left for a later frame
   */
  render(force = false) {
    if (this.#head.render(force ? Infinity : LIMITS.runsPerFrame)) return true;
    if (!this.#headFull || this.#unlimited) return false;
    this.#trimTail();
    const now = performance.now();
    const flood = this.#tailFresh > LIMITS.tailTrickleChars || this.#tail.pending > LIMITS.tailTrickleRuns;
    if (!force && flood && now - this.#tailDrawnAt < LIMITS.tailRefreshMs) return true;
    this.#tailFresh = 0;
    this.#tailDrawnAt = now;
    this.#tail.render();
    if (!this.#tail.element.isConnected) this.pre.append(this.#tail.element);
    this.#updateMarker(force);
    return false;
  }

  /** Keeps the tail to its last ~64 KB (or tailRuns runs), starting at a line start when one is near. */
  #trimTail() {
    const extraRuns = this.#tail.entries.length - LIMITS.tailRuns;
    const over = Math.max(this.#tail.chars - LIMITS.tailChars, extraRuns > 0 ? this.#tail.charsOfFirst(extraRuns) : 0);
    if (over <= 0) return;
    const last = this.#tail.dropFront(over);
    if (last === '\n') return;
    const lf = this.#tail.firstLineBreak(LIMITS.tailAlignChars);
    if (lf !== -1) this.#tail.dropFront(lf + 1);
  }

  /** Shows, updates or hides the "… hidden …" marker between head and tail. */
  #updateMarker(announce) {
    if (!this.truncated) {
      if (this.#marker) this.#marker.hidden = true;
      return;
    }
    if (!this.#marker) this.#buildMarker();
    const tailText = this.#tail.text();
    const lines = this.#rest.lines - countLines(tailText);
    const bytes = this.#rest.bytes - utf8Length(tailText);
    const label = `… ${lines.toLocaleString('en-US')} ${lines === 1 ? 'line' : 'lines'} (${formatBytes(bytes)}) hidden …`;
    this.#marker.hidden = false;
    if (this.#markerText.textContent !== label) this.#markerText.textContent = label;
    if (announce && this.#announced !== label) {
      this.#announced = label;
      this.#live.textContent = `Long output: ${label.replace(/…/g, '').trim()}. Show all or Download it.`;
    }
  }

  #buildMarker() {
    const marker = el('span', 'cp-marker');
    marker.setAttribute('role', 'note');
    this.#markerText = el('span', 'cp-marker-text');
    const showAll = el('button', 'cp-marker-button', 'Show all');
    showAll.type = 'button';
    showAll.addEventListener('click', () => this.showAll());
    const save = el('button', 'cp-marker-button', 'Download');
    save.type = 'button';
    save.title = 'Download the whole output as output.txt';
    save.addEventListener('click', () => download(this.#onDownload(), 'output.txt'));
    this.#live = el('span', 'cp-sr-only');
    this.#live.setAttribute('aria-live', 'polite');
    marker.append(this.#markerText, ' ', showAll, ' ', save, this.#live);
    this.#marker = marker;
    this.pre.insertBefore(marker, this.#tail.element);
  }

  /** Replaces head, marker and tail with the whole text (colours only up to a size). */
  showAll() {
    this.#unlimited = true;
    this.pre.classList.add('cp-all');
    this.#head.clear();
    this.#tail.clear();
    this.#head.render();
    this.#tail.render();
    this.#marker?.remove();
    this.#tail.element.remove();
    this.#marker = null;
    for (let i = 0; i < this.#record.length; i++) {
      const { stream, text, runs } = this.#record[i];
      if (runs) {
        for (const run of runs) this.#head.append(run.text, run.style, stream);
        continue;
      }
      const parts = [text]; // plain: a stream's consecutive chunks in one run
      while (this.#record[i + 1]?.stream === stream) parts.push(this.#record[++i].text);
      this.#head.append(parts.join(''), null, stream);
    }
    this.#head.render();
    this.pre.tabIndex = -1;
    this.pre.focus({ preventScroll: true }); // the button that had focus is gone
  }

  /** All text of the pane, escape sequences removed: one part per chunk. */
  textParts() {
    return this.#record.map((c) => c.text);
  }
}

// ---------------------------------------------------------------------------------------
// Sandboxed frames for HTML, Markdown, LaTeX and charts (their script: frame.mjs).

/** The iframes that may report their height, by id; one window listener serves them all. */
const frames = new Map();
/** A chart frame's handler of its reports ({chartDrawn}, {chartFailed}, {chartError}), by id. */
const chartReports = new Map();
let frameListener = false;

/** Resizes a registered frame or opens a link it reports; anything else is ignored. */
function onFrameMessage(event) {
  const data = event.data;
  if (!data || typeof data !== 'object' || typeof data.codepaneFrame !== 'string') return;
  const iframe = frames.get(data.codepaneFrame);
  if (!iframe || event.source !== iframe.contentWindow) return;
  if (!iframe.isConnected) {
    frames.delete(data.codepaneFrame);
    chartReports.delete(data.codepaneFrame);
    return;
  }
  chartReports.get(data.codepaneFrame)?.(data);
  if (typeof data.height === 'number' && Number.isFinite(data.height)) {
    const height = Math.min(Math.max(Math.ceil(data.height), LIMITS.frameMinHeight), LIMITS.frameMaxHeight);
    iframe.style.height = `${height}px`;
  }
  if (typeof data.open === 'string') {
    let url = null;
    try { url = new URL(data.open); } catch { /* not a URL: ignored */ }
    if (url && (url.protocol === 'https:' || url.protocol === 'http:')) window.open(url.href, '_blank', 'noopener,noreferrer');
  }
}

/**
 * An opaque-origin iframe showing untrusted HTML: sandbox="allow-scripts" without
 * allow-same-origin, and a CSP that allows no network at all. Its scripts are ours, by URL
 * (`scripts`: frame.js, which styles and sizes it, and for a chart chart-frame.js); with
 * htmlScripts inline scripts of the HTML run too. A page's own CSP applies on top (a srcdoc
 * frame inherits it), which is why nothing of ours in the frame is inline.
 * @param {string[]} scripts absolute URLs
 * @returns {{iframe: HTMLIFrameElement, id: string}}
 */
function sandboxFrame(html, { htmlScripts, dark, title, scripts }) {
  if (!frameListener) {
    window.addEventListener('message', onFrameMessage);
    frameListener = true;
  }
  const id = randomId();
  const scriptSrc = [...(htmlScripts ? ["'unsafe-inline'"] : []), ...scripts].join(' ') || "'none'";
  const csp = `default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; ` +
    `script-src ${scriptSrc}; form-action 'none'; base-uri 'none'`;
  const iframe = el('iframe', 'cp-frame');
  iframe.setAttribute('sandbox', 'allow-scripts');
  iframe.title = title;
  iframe.style.height = `${LIMITS.frameMinHeight}px`;
  iframe.srcdoc = `<!doctype html><html data-theme="${dark ? 'dark' : 'light'}" data-frame="${id}"><head>` +
    `<meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="${escapeAttr(csp)}">` +
    scripts.map((url) => `<script src="${escapeAttr(url)}"></script>`).join('') +
    `</head><body>${html}</body></html>`;
  frames.set(id, iframe);
  return { iframe, id };
}

function escapeAttr(text) {
  return text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

// ---------------------------------------------------------------------------------------
// Rich results.

/** Result fields from richest to plainest: the first one present is shown. */
const RESULT_KINDS = ['chart', 'html', 'markdown', 'svg', 'png', 'jpeg', 'latex', 'json', 'text'];
const KIND_MIME = {
  chart: 'application/vnd.vegalite+json', html: 'text/html', markdown: 'text/markdown', svg: 'image/svg+xml',
  png: 'image/png', jpeg: 'image/jpeg', latex: 'text/latex', json: 'application/json', text: 'text/plain',
};
const KIND_NAME = { chart: 'chart', markdown: 'Markdown', latex: 'LaTeX' };

/** Whether result r has a usable value for kind. */
function hasKind(r, kind) {
  const v = r[kind];
  return kind === 'json' || kind === 'chart' ? v !== undefined && v !== null : typeof v === 'string' && v !== '';
}

/** A result's text for "Copy output": text/plain, JSON text, or "[mime]". */
function resultText(r, kind) {
  if (hasKind(r, 'text')) return stripAnsi(r.text);
  if (kind === 'json') return JSON.stringify(r.json, null, 2);
  return kind ? `[${KIND_MIME[kind]}]` : '';
}

/**
 * A <pre> with ANSI-coloured text, head/tail truncated like a stream.
 * @param {() => string[]} onDownload the text its "Download" button saves
 */
function ansiPre(text, className, onDownload) {
  const pre = el('pre', className);
  const view = new StreamView(pre, onDownload);
  view.add('stdout', new AnsiParser().push(text));
  view.render(true);
  return pre;
}

/** An <img> for base64 PNG/JPEG or SVG text, or null when the data is not base64. */
function imageElement(r, kind) {
  let src;
  if (kind === 'svg') {
    src = `data:image/svg+xml;base64,${base64Utf8(r.svg)}`;
  } else {
    const data = r[kind].replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data)) return null;
    src = `data:image/${kind};base64,${data}`;
  }
  const img = el('img', 'cp-image');
  img.alt = hasKind(r, 'text') ? stripAnsi(r.text) : `${kind.toUpperCase()} image`;
  img.src = src;
  return img;
}

/** LaTeX without its math delimiters ($$…$$, $…$, \[…\], \(…\)). */
function stripMathDelimiters(latex) {
  const t = latex.trim();
  for (const [open, close] of [['$$', '$$'], ['\\[', '\\]'], ['\\(', '\\)'], ['$', '$']]) {
    if (t.length >= open.length + close.length && t.startsWith(open) && t.endsWith(close)) {
      return t.slice(open.length, t.length - close.length).trim();
    }
  }
  return t;
}

/** Markdown as HTML (marked is loaded on first use). */
async function markdownToHtml(markdown) {
  const { marked } = await import('marked');
  return marked.parse(markdown, { async: false, gfm: true });
}

/** LaTeX as MathML (KaTeX is loaded on first use; it never throws on bad input). */
async function latexToMathml(latex) {
  const katex = await import('katex');
  return (katex.default ?? katex).renderToString(stripMathDelimiters(latex), {
    output: 'mathml', displayMode: true, throwOnError: false, trust: false,
  });
}

// JSON tree: <details>/<summary> with text nodes only.

/** One JSON value as a tree node (objects and arrays open lazily below jsonOpenDepth). */
function jsonNode(key, value, depth) {
  const label = key === null ? null : el('span', 'cp-json-key', `${key}: `);
  if (value === null || typeof value !== 'object') {
    const line = el('div', 'cp-json-line');
    if (label) line.append(label);
    line.append(jsonLeaf(value));
    return line;
  }
  const isArray = Array.isArray(value);
  const keys = isArray ? null : Object.keys(value);
  const size = isArray ? value.length : keys.length;
  if (size === 0) {
    const line = el('div', 'cp-json-line');
    if (label) line.append(label);
    line.append(el('span', 'cp-json-punct', isArray ? '[]' : '{}'));
    return line;
  }
  const details = el('details', 'cp-json-node');
  const summary = el('summary');
  if (label) summary.append(label);
  const count = isArray ? `${size} ${size === 1 ? 'item' : 'items'}` : `${size} ${size === 1 ? 'key' : 'keys'}`;
  summary.append(el('span', 'cp-json-punct', isArray ? '[' : '{'), el('span', 'cp-json-count', ` ${count} `),
    el('span', 'cp-json-punct', isArray ? ']' : '}'));
  details.append(summary);
  const fill = () => {
    const children = el('div', 'cp-json-children');
    const shown = Math.min(size, LIMITS.jsonItems);
    for (let i = 0; i < shown; i++) {
      children.append(isArray ? jsonNode(i, value[i], depth + 1) : jsonNode(keys[i], value[keys[i]], depth + 1));
    }
    if (size > shown) children.append(el('div', 'cp-json-more', `… ${(size - shown).toLocaleString('en-US')} more`));
    details.append(children);
  };
  if (depth < LIMITS.jsonOpenDepth) {
    details.open = true;
    fill();
  } else {
    details.addEventListener('toggle', fill, { once: true });
  }
  return details;
}

/** A JSON scalar, coloured by type. */
function jsonLeaf(value) {
  const type = value === null ? 'null' : typeof value;
  return el('span', `cp-json-${type}`, type === 'string' ? JSON.stringify(value) : String(value));
}

// ---------------------------------------------------------------------------------------
// The view.

/**
 * The output of <code-pane>: streamed text, rich results and errors, in arrival order.
 * DOM work for streams is batched per animation frame; results and errors are placed at
 * once (after the stream text that came before them).
 */
export class OutputView {
  #box;
  #htmlScripts;
  #dark;
  #parsers = { stdout: new AnsiParser(), stderr: new AnsiParser() };
  /** @type {Array<{textParts(): string[], separate?: boolean}>} everything shown, in order */
  #items = [];
  /** @type {StreamView|null} where the next stream text goes */
  #stream = null;
  #frame = 0;
  #timer = 0;
  #frameIds = new Set();
  #frameScripts;
  #generation = 0;

  /** Whether scripts may run in the frames of HTML and Markdown results shown from now on. */
  set htmlScripts(on) { this.#htmlScripts = Boolean(on); }

  /**
   * @param {HTMLElement} container an element inside the shadow root; the view fills it
   * @param {{htmlScripts?: boolean, dark?: boolean,
   *   frameScripts?: {frame: string, chart: string}|null}} [options]
   *   frameScripts: the absolute URLs of dist/chunks/frame.js and chart-frame.js, the
   *   scripts of the output frames (without them, HTML, Markdown, LaTeX and charts show
   *   as text)
   */
  constructor(container, { htmlScripts = false, dark = false, frameScripts = null } = {}) {
    this.#box = container;
    this.#htmlScripts = htmlScripts;
    this.#dark = dark;
    this.#frameScripts = frameScripts;
    container.classList.add('cp-output');
    container.dataset.theme = dark ? 'dark' : 'light';
  }

  /** A chunk of stdout (ANSI colours allowed). */
  stdout(text) {
    this.#streamText('stdout', text);
  }

  /** A chunk of stderr (ANSI colours allowed). */
  stderr(text) {
    this.#streamText('stderr', text);
  }

  #streamText(stream, text) {
    const runs = this.#parsers[stream].push(String(text ?? ''));
    if (!runs.length) return;
    if (!this.#stream) {
      const pre = el('pre', 'cp-stream');
      pre.setAttribute('part', 'stream');
      this.#stream = new StreamView(pre, () => this.#textParts());
      this.#items.push(this.#stream);
      this.#box.append(pre);
    }
    this.#stream.add(stream, runs);
    this.#schedule();
  }

  /** Renders pending stream text at the next frame, or soon when the tab is hidden. */
  #schedule() {
    if (this.#frame) return;
    const render = () => this.#render(false);
    this.#frame = requestAnimationFrame(render);
    this.#timer = setTimeout(render, LIMITS.hiddenTabFlushMs);
  }

  /** Renders pending stream text; `force` renders all of it (see StreamView.render). */
  #render(force) {
    cancelAnimationFrame(this.#frame);
    clearTimeout(this.#timer);
    this.#frame = 0;
    this.#timer = 0;
    if (this.#stream?.render(force)) this.#schedule(); // more than a frame's worth
  }

  /** Renders what is pending now (the element calls it when a run ends). */
  flush() {
    this.#render(true);
  }

  /**
   * A rich result (an ExecutionResult): the richest safe representation of it.
   * @param {{text?: string, html?: string, markdown?: string, png?: string, jpeg?: string,
   *   svg?: string, latex?: string, json?: unknown, chart?: unknown, isMainResult?: boolean}} r
   */
  result(r) {
    if (!r || typeof r !== 'object') return;
    this.#endStream();
    const kind = RESULT_KINDS.find((k) => hasKind(r, k)) ?? null;
    const box = el('div', 'cp-result');
    box.setAttribute('part', 'result');
    if (kind) box.dataset.kind = kind;
    if (r.isMainResult) box.append(el('span', 'cp-result-label', 'Out:'));
    const body = el('div', 'cp-result-body');
    box.append(body);
    this.#box.append(box);
    this.#items.push({ textParts: () => [resultText(r, kind)], separate: true });
    this.#fillResult(box, body, r, kind);
  }

  /** Puts the representation of kind into body; lazy ones show text/plain until loaded. */
  #fillResult(box, body, r, kind) {
    switch (kind) {
      case 'png': case 'jpeg': case 'svg': {
        const img = imageElement(r, kind);
        if (img) body.append(img);
        else this.#fallback(box, body, r, `The ${kind.toUpperCase()} data is not valid base64.`);
        return;
      }
      case 'html':
        body.append(this.#sandbox(r.html, 'HTML output'));
        return;
      case 'json':
        body.appendChild(el('div', 'cp-json')).append(jsonNode(null, r.json, 0));
        return;
      case 'text':
        body.append(this.#textPre(r.text, 'cp-text'));
        return;
      case 'markdown':
        this.#lazy(box, body, r, kind, async () => this.#sandbox(await markdownToHtml(r.markdown), 'Markdown output'));
        return;
      case 'latex':
        this.#lazy(box, body, r, kind, async () => this.#sandbox(await latexToMathml(r.latex), 'Formula'));
        return;
      case 'chart':
        this.#lazy(box, body, r, kind, () => this.#chart(box, body, r.chart));
        return;
      default:
        body.append(el('span', 'cp-note', '(an empty result)'));
    }
  }

  /**
   * Shows text/plain while `build` loads and renders; on failure keeps it and says why.
   * @param {() => Promise<Node>} build
   */
  #lazy(box, body, r, kind, build) {
    const generation = this.#generation;
    this.#fallback(box, body, r, null);
    box.setAttribute('aria-busy', 'true');
    build().then((node) => {
      if (generation !== this.#generation) return;
      // A node already in place (a chart's frame, which must not be moved: moving an
      // iframe reloads it) stays; what was shown meanwhile goes.
      if (node.parentNode === body) {
        for (const child of [...body.childNodes]) if (child !== node) child.remove();
      } else {
        body.replaceChildren(node);
      }
    }, (error) => {
      if (generation !== this.#generation) return;
      const what = KIND_NAME[kind] ?? kind;
      this.#fallback(box, body, r, `Could not render the ${what}: ${error?.message ?? error}`);
    }).finally(() => box.removeAttribute('aria-busy'));
  }

  /** text/plain (or nothing) in body, with an optional message under it. */
  #fallback(box, body, r, message) {
    body.replaceChildren(hasKind(r, 'text') ? this.#textPre(r.text, 'cp-text') : el('span'));
    box.querySelector(':scope > .cp-note')?.remove();
    if (message) box.append(el('p', 'cp-note', message));
  }

  /** Text with ANSI colours in a <pre>; its "Download" (if it is long) saves the whole output. */
  #textPre(text, className) {
    return ansiPre(text, className, () => this.#textParts());
  }

  /**
   * A sandboxed frame, registered so that clear() and setDark() reach it. Once loaded it is
   * told the current theme (it may have changed meanwhile) and, for a chart, the spec.
   * @returns {{iframe: HTMLIFrameElement, id: string}}
   */
  #openFrame(html, title, { chart } = {}) {
    if (!this.#frameScripts) throw new Error('no frame scripts were given to the output view');
    const charting = chart !== undefined;
    const { iframe, id } = sandboxFrame(html, {
      htmlScripts: !charting && this.#htmlScripts, dark: this.#dark, title,
      scripts: charting ? [this.#frameScripts.frame, this.#frameScripts.chart] : [this.#frameScripts.frame],
    });
    this.#frameIds.add(id);
    iframe.addEventListener('load', () => {
      const theme = this.#dark ? 'dark' : 'light';
      iframe.contentWindow?.postMessage(charting ? { codepaneFrame: id, chart, theme } : { codepaneFrame: id, theme }, '*');
    });
    return { iframe, id };
  }

  /** A sandboxed frame for HTML (Markdown and LaTeX become HTML first). */
  #sandbox(html, title) {
    return this.#openFrame(html, title).iframe;
  }

  /**
   * A chart, drawn in its own sandboxed frame by chart-frame.js (vega-embed). The frame
   * waits, invisible, over the text/plain fallback until the chart is drawn; errors Vega
   * logs (a refused URL) show under it.
   * @returns {Promise<HTMLIFrameElement>}
   */
  async #chart(box, body, chart) {
    const { iframe, id } = this.#openFrame('<div id="chart"></div>', 'Chart', { chart });
    // Out of the flow and unseen until drawn (at the body's width, which Vega sizes from).
    Object.assign(iframe.style, { position: 'absolute', top: '0', visibility: 'hidden' });
    return new Promise((resolve, reject) => {
      chartReports.set(id, (data) => {
        if (data.chartDrawn) {
          Object.assign(iframe.style, { position: '', top: '', visibility: '' });
          resolve(iframe);
        } else if (typeof data.chartFailed === 'string') {
          iframe.remove();
          reject(new Error(data.chartFailed));
        } else if (typeof data.chartError === 'string') {
          box.querySelector(':scope > .cp-note')?.remove();
          box.append(el('p', 'cp-note', `Chart: ${data.chartError}`));
        }
      });
      body.append(iframe);
    });
  }

  /** An error (name, value, traceback with ANSI colours). */
  error(e) {
    if (!e || typeof e !== 'object') return;
    this.#endStream();
    const name = stripAnsi(String(e.name ?? ''));
    const value = stripAnsi(String(e.value ?? ''));
    const traceback = String(e.traceback ?? '');
    const box = el('div', 'cp-error');
    box.setAttribute('part', 'error');
    box.setAttribute('role', 'group');
    box.setAttribute('aria-label', 'Error');
    const title = el('p', 'cp-error-title');
    title.append(el('strong', '', name || 'Error'));
    if (value) title.append(': ', el('strong', '', value));
    box.append(title);
    if (traceback) box.append(this.#textPre(traceback, 'cp-traceback'));
    this.#box.append(box);
    const text = [name && value ? `${name}: ${value}` : name || value, stripAnsi(traceback)].filter(Boolean).join('\n');
    this.#items.push({ textParts: () => [text], separate: true });
  }

  /** Renders the open stream pane now, so what follows comes after it. */
  #endStream() {
    this.flush();
    this.#stream = null;
  }

  /** Removes all output and resets the ANSI state. */
  clear() {
    this.#generation++;
    cancelAnimationFrame(this.#frame);
    clearTimeout(this.#timer);
    this.#frame = 0;
    this.#timer = 0;
    for (const id of this.#frameIds) {
      frames.delete(id);
      chartReports.delete(id);
    }
    this.#frameIds.clear();
    this.#items = [];
    this.#stream = null;
    this.#parsers = { stdout: new AnsiParser(), stderr: new AnsiParser() };
    this.#box.replaceChildren();
  }

  /** Switches between the light and the dark colours (frames and charts follow). */
  setDark(dark) {
    dark = Boolean(dark);
    if (dark === this.#dark) return;
    this.#dark = dark;
    this.#box.dataset.theme = dark ? 'dark' : 'light';
    const theme = dark ? 'dark' : 'light';
    // Charts draw again in the theme (Vega themes are set when a chart is drawn).
    for (const id of this.#frameIds) frames.get(id)?.contentWindow?.postMessage({ codepaneFrame: id, theme }, '*');
  }

  /** Everything shown, as plain text: streams, results' text/plain, errors. */
  text() {
    return this.#textParts().join('');
  }

  /** text() as parts: a stream's chunks, each result's and error's text, LFs between. */
  #textParts() {
    const parts = [];
    let endsLine = true;
    for (const item of this.#items) {
      const own = item.textParts().filter((p) => p !== '');
      if (!own.length) continue;
      if (item.separate && !endsLine) parts.push('\n');
      for (const part of own) parts.push(part);
      if (item.separate && !own[own.length - 1].endsWith('\n')) parts.push('\n');
      endsLine = parts[parts.length - 1].endsWith('\n');
    }
    return parts;
  }
}
