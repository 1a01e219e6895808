// `npm pack` / `npm publish` (the postpack script): puts back the package.json that
// scripts/prepack.mjs set aside. dist/ stays (git-ignored; the clone runs src/).
// Plain JS: it runs on whatever Node npm uses.
import { existsSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const original = join(root, 'package.json.prepack');
if (existsSync(original)) renameSync(original, join(root, 'package.json'));
