// Sessions for <code-pane> widgets. Widgets of a page that name the same endpoint share
// one session: one WebSocket for all their streams, and one kernel per language, so the
// python widgets of a page are cells of one notebook. An `isolated` widget gets a
// session of its own. A session that the server no longer knows (expired, released, a
// server restarted without its secret) is dropped, and the next run connects afresh.
import { connect } from '../src/client/browser.mjs';

/** endpoint key → Promise<Session> of the page's shared sessions. */
const shared = new Map();

/**
 * Where a widget's session comes from: `session-endpoint` (the site's backend answers a
 * POST with {sessionId, linkUrl, wsUrl, token, toolList}, e.g. an AGB cloud session) or
 * `server` (a codepane-server base URL, default the page's own origin).
 * @param {{server?: string|null, sessionEndpoint?: string|null}} where
 * @returns {{key: string, open: () => Promise<import('../src/client/codepane.d.ts').Session>}}
 */
export function sessionSource({ server, sessionEndpoint }) {
  if (sessionEndpoint) {
    const url = new URL(sessionEndpoint, document.baseURI).href;
    return { key: `endpoint ${url}`, open: () => track(adopt(url)) };
  }
  // The server's base URL: an origin, or one with a path prefix (a server behind a proxy).
  const base = new URL(server || '/', document.baseURI).href.replace(/\/+$/, '');
  return { key: `server ${base}`, open: () => track(connect({ server: base })) };
}

/** Ask the site's backend for a session and adopt it. */
async function adopt(url) {
  let res;
  try {
    res = await fetch(url, { method: 'POST', credentials: 'same-origin', headers: { accept: 'application/json' } });
  } catch (e) {
    throw new Error(`could not reach the session endpoint ${url}: ${e.message}`);
  }
  if (!res.ok) throw new Error(`the session endpoint ${url} answered HTTP ${res.status}`);
  const s = await res.json();
  return connect({ sessionId: s.sessionId, linkUrl: s.linkUrl, wsUrl: s.wsUrl, token: s.token, toolList: s.toolList });
}

/** Every session this page opened (shared or isolated), closed when the page goes. */
const opened = new Set();
function track(p) {
  p.then((s) => opened.add(s), () => {});
  return p;
}

/**
 * The page's shared session for a source (an isolated widget opens its own instead, in
 * code-pane.mjs, and closes it itself).
 * @returns {Promise<import('../src/client/codepane.d.ts').Session>}
 */
export function sharedSession(source) {
  let p = shared.get(source.key);
  if (!p) {
    p = source.open();
    shared.set(source.key, p);
    // A failed connect is not cached: the next run tries again.
    p.catch(() => { if (shared.get(source.key) === p) shared.delete(source.key); });
  }
  return p;
}

/** Forget a shared session the server no longer knows, and close it. */
export function dropShared(source, session) {
  const p = shared.get(source.key);
  if (!p) return;
  p.then((s) => {
    if (s !== session) return;
    if (shared.get(source.key) === p) shared.delete(source.key);
    opened.delete(s);
    s.close().catch(() => {});
  }, () => {});
}

/** Whether a failed run's message says the session is gone, so that a new one may run it. */
export function sessionGone(result) {
  return /InvalidSession|session \S+ not found|session not found/i.test(result.errorMessage || '');
}

// Leaving the page releases its sessions (best effort: the server's idle TTL does the rest).
addEventListener('pagehide', (e) => {
  if (e.persisted) return;
  for (const s of opened) s.close().catch(() => {});
  opened.clear();
  shared.clear();
});
