#!/usr/bin/env node
// keyrot runs its TypeScript sources directly through Node's type stripping, so a fresh clone
// works right after `npm install` with no build step (start-up cost: see `npm run bench`).
import { spawnSync } from 'node:child_process';

const [major] = process.versions.node.split('.').map(Number);
if (major < 22) {
  process.stderr.write(
    `keyrot needs Node >= 22.12 (found ${process.versions.node}).\n` +
      'Run it through npm (`npx keyrot ...`), which uses the Node 24 pinned in devDependencies.\n',
  );
  process.exit(2);
}
if (!process.features.typescript) {
  // Node 22.12–22.17 strip types only behind a flag: run once more with it.
  const r = spawnSync(process.execPath, ['--experimental-strip-types', '--no-warnings', ...process.argv.slice(1)], {
    stdio: 'inherit',
  });
  process.exit(r.status ?? 1);
}
// Cache compiled code (and stripped TypeScript) on disk: start-up is dominated by loading modules.
// KEYROT_NO_COMPILE_CACHE=1 turns it off (the bench measures both).
if (!process.env.KEYROT_NO_COMPILE_CACHE) (await import('node:module')).enableCompileCache?.();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
