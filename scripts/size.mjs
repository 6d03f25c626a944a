// npm run size: the gzip size (level 9) of each file given, and their total, in bytes and KB.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { gzipSync } from 'node:zlib';

let total = 0;
for (const file of process.argv.slice(2)) {
  const raw = readFileSync(file);
  const gz = gzipSync(raw, { level: 9 }).length;
  total += gz;
  console.log(`${basename(file).padEnd(16)} ${String(raw.length).padStart(7)} B raw  ${String(gz).padStart(6)} B gzip`);
}
console.log(`${'total'.padEnd(16)} ${' '.repeat(13)} ${String(total).padStart(6)} B gzip (${(total / 1024).toFixed(1)} KB)`);
