// The script of a chart's frame (dist/chunks/chart-frame.js, a classic script bundled with
// vega-embed, vega and vega-lite). output.mjs puts each Vega-Lite result into an
// opaque-origin iframe (sandbox="allow-scripts", never allow-same-origin) whose CSP allows
// this one script URL and nothing else from the network; the spec arrives by postMessage
// from the parent and is drawn here, so whatever Vega's expressions reach is the frame,
// not the page.
//
// Messages, all tagged {codepaneFrame: id} (the id is the <html> element's data-frame):
//   parent → frame  {chart: spec, theme}   draw (again, when the theme changes)
//                   {theme}                 the theme changed: draw again in it
//   frame → parent  {chartDrawn: true}      the chart is drawn (the parent shows the frame)
//                   {chartFailed: text}     it could not be drawn (the parent keeps the text)
//                   {chartError: text}      an error Vega logged, to show under the chart
// The frame's height goes to the parent through the resizer every frame of output.mjs has.
import embed from 'vega-embed';

const root = document.documentElement;
const id = root.dataset.frame;
const post = (message) => parent.postMessage({ codepaneFrame: id, ...message }, '*');

// The chart's own styles, after frame.js's (a constructed sheet, as no CSP blocks one).
const CHART_CSS = `#chart{overflow-x:auto}
.tip{position:fixed;z-index:1;pointer-events:none;max-width:20rem;padding:.3rem .5rem;border:1px solid #8886;
border-radius:4px;background:Canvas;color:CanvasText;font-size:12px;white-space:pre-wrap;box-shadow:0 2px 6px #0003}`;
const sheet = new CSSStyleSheet();
sheet.replaceSync(CHART_CSS);
document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];

/** A loader that refuses every URL: chart data must be inline (no network, no files). */
async function refuseUrl(uri) {
  throw new Error(`refused ${String(uri)}: chart data must be inline`);
}
const REFUSING_LOADER = Object.freeze({ load: refuseUrl, sanitize: refuseUrl, http: refuseUrl, file: refuseUrl });

/**
 * A Vega logger that reports errors, and data that failed to load (Vega logs a refused URL
 * as a warning); other warnings (a spec's older $schema) stay quiet.
 */
function logger() {
  let level = 1; // vega.Error
  const text = (args) => args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ');
  const self = {
    level(l) {
      if (l === undefined) return level;
      level = l;
      return self;
    },
    error(...args) { post({ chartError: text(args) }); return self; },
    warn(...args) {
      if (args[0] === 'Loading failed') post({ chartError: text(args.slice(2)) });
      return self;
    },
    info() { return self; },
    debug() { return self; },
  };
  return self;
}

/** A tooltip that writes text (vega-tooltip's default sets innerHTML, and loads images). */
function tooltip() {
  let tip = null;
  return (_handler, event, _item, value) => {
    if (value === null || value === undefined || value === '') {
      tip?.remove();
      tip = null;
      return;
    }
    if (!tip?.isConnected) {
      tip = document.body.appendChild(document.createElement('div'));
      tip.className = 'tip';
    }
    tip.textContent = value !== null && typeof value === 'object'
      ? Object.entries(value).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join('\n')
      : String(value);
    tip.style.left = `${Math.min(event.clientX + 12, innerWidth - tip.offsetWidth - 4)}px`;
    tip.style.top = `${event.clientY + 12}px`;
  };
}

/** A copy of a spec without usermeta.embedOptions, which vega-embed would let override ours. */
function safeSpec(chart) {
  const spec = typeof chart === 'string' ? JSON.parse(chart) : chart;
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) throw new Error('the chart is not a Vega-Lite spec object');
  if (!spec.usermeta?.embedOptions) return spec;
  const { embedOptions: _dropped, ...usermeta } = spec.usermeta;
  return { ...spec, usermeta };
}

let spec = null;
let view = null;
let drawing = Promise.resolve();

/** Draws the spec in the theme, as SVG, with the AST interpreter (the CSP has no eval). */
function draw(theme) {
  drawing = drawing.then(async () => {
    view?.finalize();
    view = null;
    const target = document.getElementById('chart');
    target.replaceChildren();
    try {
      const result = await embed(target, safeSpec(spec), {
        renderer: 'svg',
        actions: false,
        defaultStyle: false, // its CSS is for the actions menu; a <style> a page's CSP may refuse
        ast: true,
        loader: REFUSING_LOADER,
        logger: logger(),
        tooltip: tooltip(),
        theme: theme === 'dark' ? 'dark' : undefined,
      });
      view = result.view;
      post({ chartDrawn: true });
    } catch (error) {
      post({ chartFailed: error?.message ?? String(error) });
    }
  });
}

addEventListener('message', (event) => {
  const data = event.data;
  if (event.source !== parent || !data || data.codepaneFrame !== id) return;
  if (data.chart !== undefined) {
    spec = data.chart;
    draw(data.theme);
  } else if (typeof data.theme === 'string' && spec !== null) {
    draw(data.theme);
  }
});
