// Loads the wasm link test with its bytes read here (wasmBinary: Emscripten 3.1.6 ES
// modules cannot load their own .wasm under Node 18+) and checks that the core, compiled
// to WebAssembly, gives exactly the native outcome.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';

const dir = new URL('../../build/wasm/', import.meta.url);
const { default: create } = await import(new URL('link_test.mjs', dir));
const mod = await create({ wasmBinary: await readFile(new URL('link_test.wasm', dir)) });

function run(language, payload) {
  const enc = (s) => {
    const n = mod.lengthBytesUTF8(s) + 1;
    const p = mod._malloc(n);
    mod.stringToUTF8(s, p, n);
    return p;
  };
  const l = enc(language), d = enc(payload);
  const out = mod._cp_link_test(l, d);
  const json = mod.UTF8ToString(out);
  mod._free(l); mod._free(d); mod._free(out);
  return JSON.parse(json);
}

test('wasm core parses a new-format payload like the native build', () => {
  const payload = JSON.stringify({
    result: [{ 'text/plain': '42', 'application/json': { a: [1, 2.5] }, isMainResult: true }],
    stdout: ['héllo ✓ 😀\n'], stderr: [], execution_count: 3, execution_time: 0.25,
  });
  assert.deepEqual(run('Python3', payload), {
    requestId: '', success: true, executionCount: 3, executionTime: 0.25,
    logs: { stdout: ['héllo ✓ 😀\n'], stderr: [] },
    results: [{ text: '42', json: { a: [1, 2.5] }, isMainResult: true }],
    errorMessage: '',
  });
});

test('wasm core refuses an unsupported language with the SDK message', () => {
  const r = run('ruby', '{}');
  assert.equal(r.success, false);
  assert.equal(r.errorMessage, 'Unsupported language: ruby. Supported: java, javascript, python, r');
});

test('the wasm build formats messages with its own small snprintf, exactly like libc for what it supports', () => {
  const out = mod.UTF8ToString(mod._cp_link_format());
  assert.deepEqual(out.split('|'), [
    '3:abc', '10:abcdefg', '3:xy!', '0:', '11:-214748', '4:0', '42', '3:0.1', '7:-2.5e-8', '4:100%',
    '3:%x%', '6:(null)', '4',
  ]);
});
