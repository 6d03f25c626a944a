// codepane, browser entry (package.json "exports" default): the WASM core's bytes are
// fetched from beside this file (new URL('core.wasm', import.meta.url), the form bundlers
// recognise as an asset), and the browser's own XMLHttpRequest and WebSocket carry the
// traffic.
import createCore from '../../build/client/core.mjs';
import { makeApi } from './api.mjs';

// The minimal runtime's instantiate has no error path (its promise would never settle),
// so what would make it fail is checked here first: bytes that are not a module (an HTML
// error page served as 200), and a page whose Content-Security-Policy forbids compiling
// WebAssembly (probed with the smallest module there is).
const EMPTY_MODULE = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

async function wasmBytes() {
  const url = new URL('core.wasm', import.meta.url);
  const res = await fetch(url);
  if (!res.ok) throw new Error(`codepane: could not load ${url}: HTTP ${res.status}`);
  const bytes = await res.arrayBuffer();
  if (!WebAssembly.validate(bytes))
    throw new Error(`codepane: ${url} is not codepane's WebAssembly module (${bytes.byteLength} bytes, ${res.headers.get('content-type') ?? 'no content type'})`);
  try {
    await WebAssembly.compile(EMPTY_MODULE);
  } catch (e) {
    throw new Error(`codepane: this page's Content-Security-Policy does not allow WebAssembly (add 'wasm-unsafe-eval' to its script-src): ${e.message}`);
  }
  return bytes;
}

export const { connect, resultText, heapInUse } = makeApi({
  headerAuth: false,
  load: async (handlers) => createCore({ ...handlers, wasm: await wasmBytes() }),
});
