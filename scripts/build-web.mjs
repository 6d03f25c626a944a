// ./build.sh web: bundle the <code-pane> element (web/code-pane.mjs) into dist/, with every
// dynamic import() (the editor, each language's grammar, the renderers of rare results)
// split into dist/chunks/. CSS files are imported as text, minified here (esbuild's text
// loader would keep them as written). Run from the repository root: the metafile's paths
// (build/web-meta.json, read by scripts/size.mjs) are relative to it.
import { readFile, writeFile } from 'node:fs/promises';

import * as esbuild from 'esbuild';

/** `import css from './x.css'` gives the file's CSS, minified, as a string. */
const minifiedCss = {
  name: 'minified-css-text',
  setup(build) {
    build.onLoad({ filter: /\.css$/ }, async (args) => {
      const { code } = await esbuild.transform(await readFile(args.path, 'utf8'), { loader: 'css', minify: true });
      return { contents: code.trim(), loader: 'text' };
    });
  },
};

const result = await esbuild.build({
  entryPoints: ['web/code-pane.mjs'],
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  minify: true,
  // Private class members and fields as they are (es2020 would lower them to WeakMaps).
  target: 'es2022',
  entryNames: '[name]',
  chunkNames: 'chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
  plugins: [minifiedCss],
});
await writeFile('build/web-meta.json', JSON.stringify(result.metafile));

// The scripts of the output frames: web/frame.mjs (every frame's styles, size reports,
// theme and links) and web/chart-frame.mjs (vega-embed, vega and vega-lite). Classic
// scripts, since each frame's CSP allows them by their URL and they are not modules of
// the element's graph; the element finds them in ./chunks/ beside itself.
await esbuild.build({
  entryPoints: ['web/frame.mjs', 'web/chart-frame.mjs'],
  outdir: 'dist/chunks',
  entryNames: '[name]',
  bundle: true,
  format: 'iife',
  minify: true,
  target: 'es2020',
  legalComments: 'none',
  logLevel: 'warning',
});
