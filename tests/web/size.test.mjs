// The size budgets of issue 6, from the files ./build.sh web wrote (scripts/size.mjs is
// what `npm run size` prints): the element with the client core before its editor loads,
// and everything the playground loads for a plain python run. Sizes are gzip level 9.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';

import { BUDGETS, webSets } from '../../scripts/size.mjs';
import { ROOT } from '../server/harness.mjs';

const sets = webSets(join(ROOT, 'build/web-meta.json'));
const gz = (file) => gzipSync(readFileSync(file), { level: 9 }).length;
const total = (files) => files.reduce((n, f) => n + gz(f), 0);

test('the element and the client core, before the editor loads: at most 40 KB gzip', () => {
  const files = sets.element.map((f) => join(sets.dist, f));
  assert.ok(files.some((f) => f.endsWith('core.wasm')) && files.some((f) => f.endsWith('code-pane.mjs')));
  assert.ok(!sets.element.some((f) => /editor|lang-python/.test(f)), `no editor in ${sets.element}`);
  const size = total(files);
  assert.ok(size <= BUDGETS.element, `${size} B gzip`);
});

test('the playground for a plain python run (page, element, core, editor, grammar): at most 250 KB gzip', () => {
  const files = [join(ROOT, 'web/index.html'), ...sets.python.map((f) => join(sets.dist, f))];
  const size = total(files);
  assert.ok(size <= BUDGETS.python, `${size} B gzip`);
  assert.ok(sets.python.length > sets.element.length);
});
