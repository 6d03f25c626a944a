// The npm package as users get it: `npm pack` of the checkout (dist/ already built by
// ./build.sh client; --ignore-scripts keeps prepack from rebuilding it), for the tests that
// install it (pack.test.mjs) or serve it to a browser (tests/browser).
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { ROOT } from '../server/harness.mjs';

export const run = promisify(execFile);
export const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
export const NPM_ENV = {
  ...process.env,
  npm_config_ignore_scripts: 'true',
  npm_config_update_notifier: 'false',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_loglevel: 'error',
};

/** Pack the package into `dest`; resolves with npm's description of the tarball and its path. */
export async function pack(dest) {
  const missing = PKG.files.filter((f) => !existsSync(join(ROOT, f)));
  if (missing.length) throw new Error(`not built (run ./build.sh client): ${missing.join(' ')}`);
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dest],
    { cwd: ROOT, env: NPM_ENV, timeout: 60000 });
  const [packed] = JSON.parse(stdout);
  return { packed, tarball: join(dest, packed.filename) };
}
