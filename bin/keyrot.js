#!/usr/bin/env node
// keyrot's entry point, in plain JavaScript so that any Node can at least say what it needs.
// Installed (npm install -g, a project dependency, npx, the container image), the package holds the
// code bundled into JavaScript in dist/ (made by `npm pack`), which any Node >= 22.12 runs: Node
// never strips types under node_modules. In a clone, src/ is present and runs directly through
// Node's type stripping, so `npx keyrot` works right after `npm install` with no build step.
import { existsSync } from 'node:fs';

const sources = new URL('../src/cli/main.ts', import.meta.url);
const inClone = existsSync(sources);
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(
    `keyrot needs Node >= 22.12 (found ${process.versions.node}).\n` +
      (inClone
        ? 'In this clone, run it through npm (`npx keyrot ...`): npm puts the Node pinned in devDependencies first on PATH.\n'
        : 'Install Node 22.12 or later (https://nodejs.org/, or `nvm install 24`), then run keyrot again.\n'),
  );
  process.exit(2);
}
if (inClone && !process.features.typescript) {
  // Node 22.12–22.17 strip types only behind a flag: run once more with it.
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync(process.execPath, ['--experimental-strip-types', '--no-warnings', ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
// Node's process warnings are not for keyrot's users: a library's notice (google-auth-library's
// MetadataLookupWarning when no Google credentials are found, SDK deprecations) or Node's own about
// how keyrot runs (type stripping is "experimental" on Node 22). They would interleave with the
// output and read like a problem. --verbose (or KEYROT_LOG_LEVEL=debug) shows them.
const args = process.argv.slice(2);
const verbose = args.includes('--verbose') || args.includes('-v') || /^debug$/i.test(process.env.KEYROT_LOG_LEVEL ?? '');
if (!verbose) process.removeAllListeners('warning');
// Cache compiled code on disk: start-up is dominated by loading modules.
// KEYROT_NO_COMPILE_CACHE=1 turns it off (the bench measures both).
if (!process.env.KEYROT_NO_COMPILE_CACHE) (await import('node:module')).enableCompileCache?.();
const { main } = inClone ? await import('../src/cli/main.ts') : await import('../dist/keyrot.js');
process.exitCode = await main(process.argv.slice(2));
