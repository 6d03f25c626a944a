// codepane, browser entry (package.json "exports" default): the WASM core loads its
// core.wasm from beside this file (new URL('core.wasm', import.meta.url)), and the
// browser's own XMLHttpRequest and WebSocket carry the traffic.
import createCore from '../../build/client/core.mjs';
import { makeApi } from './api.mjs';

export const { connect, resultText, heapInUse } = makeApi({
  headerAuth: false,
  load: (handlers) => createCore(handlers),
});
