// codepane, Node entry (package.json "exports" node): Emscripten 3.1.6 ES modules cannot
// load their own .wasm under Node ≥ 18, so the bytes are read here and handed over
// (wasmBinary). Node 20 has neither XMLHttpRequest nor WebSocket: npm `xhr2` and npm `ws`
// stand in, passed to the module rather than set on Node's globals. With `ws` the session
// token goes in the X-Access-Token header of the upgrade, exactly as the AGB SDKs send it.
import { readFile } from 'node:fs/promises';
import WebSocket from 'ws';
import XMLHttpRequest from 'xhr2';
import createCore from '../../build/client/core.mjs';
import { makeApi } from './api.mjs';

const tokens = new Map(); // wsUrl → session token

class HeaderWebSocket extends WebSocket {
  constructor(url, protocols) {
    const token = tokens.get(url);
    super(url, protocols ?? [], token ? { headers: { 'X-Access-Token': token } } : {});
  }
}

export const { connect, resultText, heapInUse } = makeApi({
  headerAuth: true,
  setWsToken: (url, token) => tokens.set(url, token),
  load: async (handlers) => createCore({
    ...handlers,
    wasmBinary: await readFile(new URL('./core.wasm', import.meta.url)),
    WebSocket: HeaderWebSocket,
    XMLHttpRequest,
  }),
});
