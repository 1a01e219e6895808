// `npm pack` / `npm publish` (the prepack script): what the published package runs.
//  1. dist/: src/ and emulators/ (for `keyrot demo`) bundled into JavaScript from scratch
//     (scripts/build.mjs).
//  2. package.json without its `prepare` script (scripts/postpack.mjs puts the original back):
//     `prepare` seeds the clone's sandbox/ on `npm install`, but npm also runs a dependency's
//     `prepare` when it is installed from a tarball or a git URL (docs.npmjs.com, "Life Cycle
//     Scripts"), and scripts/sandbox.mjs is not shipped. The same idea as the `pinst` package.
// Plain JS: it runs on whatever Node npm uses.
import { copyFileSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from './build.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const manifest = join(root, 'package.json');
const original = join(root, 'package.json.prepack');
// A pack interrupted before its postpack left the original aside: put it back first.
if (existsSync(original)) renameSync(original, manifest);

await build();

copyFileSync(manifest, original);
const pkg = JSON.parse(readFileSync(manifest, 'utf8'));
delete pkg.scripts.prepare;
writeFileSync(manifest, JSON.stringify(pkg, null, 2) + '\n');
