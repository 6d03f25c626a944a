// codepane, browser entry (package.json "exports" default): the WASM core's bytes are
// fetched from beside this file (new URL('core.wasm', import.meta.url), the form bundlers
// recognise as an asset), and the browser's own XMLHttpRequest and WebSocket carry the
// traffic.
import createCore from '../../build/client/core.mjs';
import { makeApi } from './api.mjs';

// The minimal runtime's instantiate has no error path (its promise would never settle),
// so bytes that are not a module (an HTML error page served as 200) are refused here.
async function wasmBytes() {
  const url = new URL('core.wasm', import.meta.url);
  const res = await fetch(url);
  if (!res.ok) throw new Error(`codepane: could not load ${url}: HTTP ${res.status}`);
  const bytes = await res.arrayBuffer();
  if (!WebAssembly.validate(bytes))
    throw new Error(`codepane: ${url} is not codepane's WebAssembly module (${bytes.byteLength} bytes, ${res.headers.get('content-type') ?? 'no content type'})`);
  return bytes;
}

export const { connect, resultText, heapInUse } = makeApi({
  headerAuth: false,
  load: async (handlers) => createCore({ ...handlers, wasm: await wasmBytes() }),
});
