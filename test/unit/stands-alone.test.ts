import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The repository stands alone: no tracked file points at the team's reference notes outside it,
 * and every relative link in the project's docs leads to a file that is in the repository.
 * The forbidden names are spelled in pieces so that this file does not match itself.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const OUTSIDE_REFERENCES = [['PRODUCT', '.md'].join(''), ['provider', '-apis'].join(''), ['..', 'shared'].join('/')];

function trackedFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' });
  return out.split('\0').filter((f) => f !== '' && !f.startsWith('node_modules/') && existsSync(join(ROOT, f)));
}

function docsWithLinks(): string[] {
  const targetsDir = join(ROOT, 'src/targets');
  const targetReadmes = readdirSync(targetsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(targetsDir, d.name, 'README.md')))
    .map((d) => `src/targets/${d.name}/README.md`);
  const docs = readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
  return ['README.md', ...docs, ...targetReadmes];
}

/** `[text](target)` links whose target is not a URL, a mail address or an anchor in the same page. */
function relativeLinks(markdown: string): string[] {
  const links: string[] = [];
  for (const m of markdown.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    const target = m[1]!;
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) continue;
    links.push(target.split('#')[0]!);
  }
  return links;
}

describe('the repository stands alone', () => {
  it('no tracked file cites the reference notes kept outside the repository', () => {
    const files = trackedFiles();
    expect(files.length).toBeGreaterThan(100);
    const offenders: string[] = [];
    for (const f of files) {
      const text = readFileSync(join(ROOT, f), 'latin1');
      for (const ref of OUTSIDE_REFERENCES) if (text.includes(ref)) offenders.push(`${f}: ${ref}`);
    }
    expect(offenders).toEqual([]);
  });

  it('every relative markdown link in README.md, docs/ and the target READMEs resolves in the repository', () => {
    const tracked = new Set(trackedFiles());
    const broken: string[] = [];
    let checked = 0;
    for (const doc of docsWithLinks()) {
      for (const link of relativeLinks(readFileSync(join(ROOT, doc), 'utf8'))) {
        checked++;
        const path = resolve(ROOT, dirname(doc), decodeURIComponent(link));
        const inside = path.startsWith(ROOT + '/') ? path.slice(ROOT.length + 1).replace(/\/$/, '') : undefined;
        const isTrackedDir = inside !== undefined && [...tracked].some((f) => f.startsWith(inside + '/'));
        if (inside === undefined || (!tracked.has(inside) && !isTrackedDir)) broken.push(`${doc}: ${link}`);
      }
    }
    expect(checked).toBeGreaterThan(0);
    expect(broken).toEqual([]);
  });

  it('links to URLs and same-page anchors are skipped, a path keeps no #fragment', () => {
    expect(relativeLinks('[a](../outside.md) [b](https://x.test/y) [c](#here) [d](docs/x.md#s)')).toEqual(['../outside.md', 'docs/x.md']);
  });
});
