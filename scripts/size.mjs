// npm run size: gzip sizes (level 9) of what a browser loads, against the budgets.
//   node scripts/size.mjs FILE...        each file and the total
//   node scripts/size.mjs --client       the client alone, what `import 'codepane'` loads in a
//                                        browser: dist/codepane.mjs + dist/core.wasm (budget
//                                        16 KB, issue 4)
//   node scripts/size.mjs --web META     the <code-pane> sets, from esbuild's metafile of
//                                        the element build (./build.sh web):
//     element   the element and the client core, before the editor loads (budget 40 KB)
//     python    everything the playground loads for a plain python run: the page, the
//               element, the core, the editor and the python grammar (budget 250 KB)
// `--json` prints the sets as JSON instead (tests compare them with what a page loaded).
import { readFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';

const KB = 1024;
export const BUDGETS = { client: 16 * KB, element: 40 * KB, python: 250 * KB };

/** What `import 'codepane'` loads in a browser, relative to the repository root. */
export const CLIENT_FILES = ['dist/codepane.mjs', 'dist/core.wasm'];

/** Gzip size (level 9) of some bytes. */
export const gzipSize = (bytes) => gzipSync(bytes, { level: 9 }).length;

function table(files, label, budget) {
  let total = 0;
  for (const file of files) {
    const bytes = readFileSync(file);
    const raw = bytes.length, g = gzipSize(bytes);
    total += g;
    console.log(`  ${basename(file).padEnd(34)} ${String(raw).padStart(8)} B raw  ${String(g).padStart(7)} B gzip`);
  }
  const verdict = budget ? `  budget ${(budget / KB).toFixed(0)} KB: ${total <= budget ? 'within' : `OVER by ${((total - budget) / KB).toFixed(1)} KB`}` : '';
  console.log(`  ${label.padEnd(34)} ${' '.repeat(14)} ${String(total).padStart(7)} B gzip (${(total / KB).toFixed(1)} KB)${verdict}`);
  return total;
}

/**
 * The files of each set, as paths relative to the metafile's output folder (dist/).
 * An output's static imports load with it; a dynamic import loads when asked for.
 */
export function webSets(metaPath) {
  const meta = JSON.parse(readFileSync(metaPath, 'utf8'));
  const root = process.cwd();
  const outputs = meta.outputs;
  const closure = (start) => {
    const seen = new Set();
    const walk = (out) => {
      if (seen.has(out)) return;
      seen.add(out);
      for (const i of outputs[out].imports) if (i.kind === 'import-statement') walk(i.path);
    };
    walk(start);
    return seen;
  };
  const byEntry = (suffix) => {
    const hit = Object.keys(outputs).find((o) => outputs[o].entryPoint?.replaceAll('\\', '/').endsWith(suffix));
    if (!hit) throw new Error(`no output for ${suffix} in ${metaPath}`);
    return hit;
  };
  const element = byEntry('web/code-pane.mjs');
  const elementSet = closure(element);
  const pythonSet = new Set([...elementSet, ...closure(byEntry('web/editor.mjs')), ...closure(byEntry('@codemirror/lang-python/dist/index.js'))]);
  const dist = dirname(join(root, element));
  const rel = (set) => [...set].filter((o) => o.endsWith('.js') || o.endsWith('.mjs')).map((o) => relative(dist, join(root, o)));
  return { dist, element: [...rel(elementSet), 'core.wasm'], python: [...rel(pythonSet), 'core.wasm'] };
}

const main = process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href;
const args = main ? process.argv.slice(2) : [];
if (args[0] === '--web') {
  const sets = webSets(args[1]);
  if (args.includes('--json')) {
    console.log(JSON.stringify({ element: sets.element, python: sets.python }));
  } else {
    console.log('<code-pane> before the editor loads (element + client core):');
    table(sets.element.map((f) => join(sets.dist, f)), 'total', BUDGETS.element);
    console.log('The playground, a plain python run (page + element + core + editor + python grammar):');
    const page = join(sets.dist, '..', 'web', 'index.html');
    table([page, ...sets.python.map((f) => join(sets.dist, f))], 'total', BUDGETS.python);
  }
} else if (args[0] === '--client') {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  table(CLIENT_FILES.map((f) => join(root, f)), 'total', BUDGETS.client);
} else if (args.length) {
  table(args, 'total');
}
