// `npm run build` (and `npm pack`, through scripts/prepack.mjs): the published package's code in
// dist/, what bin/keyrot.js runs outside a clone.
//
// One bundle (rolldown) instead of a file per module: start-up is dominated by loading modules, and
// `keyrot plan` loaded ~290 of them (zod ~95, yaml ~72, keyrot's own ~120). Bundled, the same run
// costs about a third less CPU (README, "Speed and memory"). What the bundle holds:
// - keyrot's own code (src/, and emulators/ for `keyrot demo`), TypeScript types stripped, nothing
//   else transformed: the syntax stays what Node >= 22.12 runs (the `engines` floor);
// - zod, yaml and commander, the pure-JavaScript libraries every command loads (their licences in
//   dist/THIRD-PARTY-LICENSES.md);
// - every lazily loaded part (a target's adapter and SDK, the demo's emulators) as its own chunk,
//   still loaded only when used.
// The provider SDKs and the other dependencies stay in node_modules, installed by npm as
// package.json pins them: they load only when an inventory uses them, and `npm audit` sees them.
// Plain JS: it runs on whatever Node npm uses.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The oldest Node the package supports (package.json `engines`). */
const TARGET = 'node22.12';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
// What stays in node_modules: the package's `dependencies`. zod, yaml and commander are
// devDependencies precisely because the bundle carries them.
const external = Object.keys(pkg.dependencies);
const isExternal = (id) => id.startsWith('node:') || external.some((d) => id === d || id.startsWith(`${d}/`));

export async function build() {
  const { rolldown } = await import('rolldown');
  const dist = join(root, 'dist');
  rmSync(dist, { recursive: true, force: true });
  const bundle = await rolldown({
    input: { keyrot: join(root, 'src/cli/main.ts') },
    platform: 'node',
    external: isExternal,
    transform: { target: TARGET },
    // The sources import each other with `.ts` extensions (they run as they are in a clone).
    resolve: { extensions: ['.ts', '.js'] },
  });
  try {
    const { output } = await bundle.write({ dir: dist, format: 'esm', entryFileNames: '[name].js', chunkFileNames: 'chunks/[name]-[hash].js', comments: { legal: true } });
    writeFileSync(join(dist, 'THIRD-PARTY-LICENSES.md'), licences(bundledPackages(output)));
  } finally {
    await bundle.close();
  }
}

/** The npm packages whose modules ended up inside the bundle. */
function bundledPackages(output) {
  const names = new Set();
  for (const chunk of output) for (const id of chunk.moduleIds ?? []) {
    const m = /[\\/]node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)/.exec(id);
    if (m) names.add(m[1].replace('\\', '/'));
  }
  return [...names].sort();
}

/** The licence text of every library inside the bundle, as each one's licence asks. */
function licences(bundled) {
  const parts = bundled.map((name) => {
    const dir = join(root, 'node_modules', name);
    const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const file = ['LICENSE', 'LICENSE.md', 'license'].map((f) => join(dir, f)).find((f) => existsSync(f));
    if (!file) throw new Error(`${name} has no licence file to ship with the bundle`);
    return `## ${name} ${meta.version} (${meta.license})\n\n${readFileSync(file, 'utf8').trim()}\n`;
  });
  return `# Libraries bundled into dist/\n\n${parts.join('\n')}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await build();
