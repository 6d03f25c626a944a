// The package's hand-written types (src/client/codepane.d.ts, shipped as dist/codepane.d.ts
// and found through package.json "exports" → "types") accept what the docs show and refuse
// misuse: tsc --strict compiles good.ts cleanly and reports exactly one error on each
// marked line of bad.ts.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TSC = `${ROOT}node_modules/.bin/tsc`;
const DIR = fileURLToPath(new URL('types/', import.meta.url));
const FLAGS = ['--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext',
  '--moduleResolution', 'nodenext', '--lib', 'es2022,dom'];

async function tsc(file) {
  try {
    await run(TSC, [...FLAGS, `${DIR}${file}`], { cwd: ROOT });
    return [];
  } catch (e) {
    return e.stdout.split('\n').filter((l) => l.includes('error TS'));
  }
}

test('good.ts compiles under --strict against the package types', async () => {
  assert.deepEqual(await tsc('good.ts'), []);
});

test('every misuse in bad.ts is a type error on its own line', async () => {
  const lines = readFileSync(`${DIR}bad.ts`, 'utf8').split('\n');
  const expected = lines.flatMap((l, i) => (l.includes('// error:') ? [i + 1] : []));
  const errors = await tsc('bad.ts');
  const got = errors.map((l) => Number(/bad\.ts\((\d+),/.exec(l)?.[1]));
  assert.deepEqual(got, expected, errors.join('\n'));
});
