// codepane, Node entry (package.json "exports" node): the core's .wasm is read here and
// handed to the module (its minimal runtime never loads the bytes itself). Node 20 has
// neither XMLHttpRequest nor WebSocket: npm `xhr2` and npm `ws` stand in, passed to the
// module rather than set on Node's globals. With `ws` the session
// token goes in the X-Access-Token header of the upgrade, exactly as the AGB SDKs send it.
import { readFile } from 'node:fs/promises';
import WebSocket from 'ws';
import XMLHttpRequest from 'xhr2';
import createCore from '../../build/client/core.mjs';
import { makeApi } from './api.mjs';

// wsUrl → {token, sessions}: two sessions adopted from one descriptor share an entry.
const tokens = new Map();

function setWsToken(url, token) {
  const entry = tokens.get(url);
  if (token) tokens.set(url, { token, sessions: (entry?.sessions ?? 0) + 1 });
  else if (entry && --entry.sessions === 0) tokens.delete(url);
}

class HeaderWebSocket extends WebSocket {
  constructor(url, protocols) {
    const token = tokens.get(url)?.token;
    super(url, protocols ?? [], token ? { headers: { 'X-Access-Token': token } } : {});
    // ws emits 'error' as an EventEmitter event, which kills the process when nobody
    // listens; a failed handshake is reported by the 'close' that follows.
    this.on('error', () => {});
  }
}

export const { connect, resultText, heapInUse } = makeApi({
  headerAuth: true,
  setWsToken,
  load: async (handlers) => createCore({
    ...handlers,
    wasm: await readFile(new URL('./core.wasm', import.meta.url)),
    WebSocket: HeaderWebSocket,
    XMLHttpRequest,
  }),
});
