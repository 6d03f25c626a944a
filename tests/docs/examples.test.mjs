// Every example in the user docs runs. A fenced block whose info string has the word
// `run` (```js run, ```sh run) is an example: this test extracts each one from README.md,
// docs/*.md and src/server/runners/README.md and runs it against a real codepane-server
// (CODEPANE_URL points at it). A block must exit 0; examples check their own outcomes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { ROOT, startServer } from '../server/harness.mjs';

const run = promisify(execFile);
const DOCS = ['README.md', 'src/server/runners/README.md',
  ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

function examples(file) {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const found = [];
  const re = /^```(\w+)([^\n]*)\n([\s\S]*?)^```$/gm;
  for (let m; (m = re.exec(text));) {
    if (!/\brun\b/.test(m[2])) continue;
    const line = text.slice(0, m.index).split('\n').length;
    found.push({ lang: m[1], code: m[3], where: `${file}:${line}` });
  }
  return found;
}

let server, scratch;
before(async () => {
  // The server as users get it: every language in kernels (the server's default).
  server = await startServer({ uidBase: 62000, args: ['--kernels', 'all'] });
  // Scripts run from a folder inside the checkout so `import 'ws'` resolves.
  scratch = mkdtempSync(join(ROOT, 'build', 'doc-examples-'));
});
after(async () => {
  await server?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

const all = DOCS.flatMap(examples);

test('the docs hold runnable examples', () => {
  assert.ok(all.length >= 3, `only ${all.length} examples found`);
});

for (const ex of all) {
  test(`example at ${ex.where} runs`, async () => {
    const env = { ...process.env, CODEPANE_URL: server.base };
    const opts = { env, cwd: ROOT, timeout: 60000 };
    if (ex.lang === 'js') {
      const file = join(scratch, `ex-${ex.where.replace(/[^\w]/g, '_')}.mjs`);
      writeFileSync(file, ex.code);
      await run(process.execPath, [file], opts);
    } else if (ex.lang === 'sh') {
      await run('bash', ['-euo', 'pipefail', '-c', ex.code], opts);
    } else {
      assert.fail(`${ex.where}: no runner for \`${ex.lang}\` examples`);
    }
  });
}

