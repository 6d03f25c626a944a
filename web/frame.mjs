// The script of every output frame (dist/chunks/frame.js, a classic script). output.mjs
// shows untrusted HTML, Markdown, LaTeX and charts in opaque-origin iframes whose CSP
// allows this script by its URL and no inline code: a srcdoc frame also inherits the
// page's own Content-Security-Policy, which may forbid inline scripts and styles, so the
// frame's styles come from here too (a constructed sheet, which no CSP blocks).
//
// It reports the content's height whenever it changes (plus a horizontal scrollbar),
// follows theme messages from the parent, and hands link clicks to the parent (a
// sandboxed frame cannot open tabs; navigating itself would be useless). Messages carry
// {codepaneFrame: id}, the id output.mjs put on <html data-frame>.
const FRAME_CSS = `
:root{color-scheme:light;color:#1f2328;font:14px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif}
:root[data-theme=dark]{color-scheme:dark;color:#e6edf3}
html,body{margin:0;background:transparent}
body{padding:8px 12px;overflow-wrap:break-word}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{border:1px solid #8886;padding:3px 8px}
thead th{background:#8881}
img,svg,video{max-width:100%;height:auto}
pre,code{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace}
math[display=block]{font-size:1.2em;margin:.3em 0}
`;

const root = document.documentElement;
const id = root.dataset.frame;
const post = (message) => parent.postMessage({ codepaneFrame: id, ...message }, '*');

const sheet = new CSSStyleSheet();
sheet.replaceSync(FRAME_CSS);
document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];

let last = -1;
function size() {
  const height = Math.ceil(root.getBoundingClientRect().height + (innerHeight - root.clientHeight));
  if (height !== last) {
    last = height;
    post({ height });
  }
}
new ResizeObserver(size).observe(root);
addEventListener('load', size);
addEventListener('resize', size);

addEventListener('message', (event) => {
  const data = event.data;
  if (event.source === parent && data && data.codepaneFrame === id && typeof data.theme === 'string') root.dataset.theme = data.theme;
});

addEventListener('click', (event) => {
  const a = event.target.closest?.('a[href]');
  if (a && !a.getAttribute('href').startsWith('#')) {
    event.preventDefault();
    post({ open: a.href });
  }
});
