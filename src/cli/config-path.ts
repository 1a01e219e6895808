import { existsSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** The inventory keyrot uses, and how it was found (for the note on stderr). */
export interface ConfigLocation {
  path: string;
  how: 'flag' | 'env' | 'found' | 'default';
}

const NAME = 'targets.yaml';

const isFile = (p: string) => {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
};

/**
 * `-c`, then KEYROT_CONFIG, then targets.yaml in the current directory or a parent, up to the
 * repository root (the directory holding `.git`): from a subdirectory of a repository keyrot finds
 * the repository's inventory, as git finds its own. Outside a repository only the current
 * directory is looked at (a targets.yaml in some parent of an unrelated directory is not this
 * project's). Nothing found: ./targets.yaml (whose absence the loader reports with what to do).
 */
export function locateConfig(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ConfigLocation {
  if (flag) return { path: resolve(cwd, flag), how: 'flag' };
  if (env.KEYROT_CONFIG) return { path: resolve(cwd, env.KEYROT_CONFIG), how: 'env' };
  const here = resolve(cwd, NAME);
  if (isFile(here)) return { path: here, how: 'default' };
  const root = repositoryRoot(cwd);
  if (root) {
    for (let dir = dirname(resolve(cwd)); ; dir = dirname(dir)) {
      if (isFile(join(dir, NAME))) return { path: join(dir, NAME), how: 'found' };
      if (dir === root || dir === dirname(dir)) break;
    }
  }
  return { path: here, how: 'default' };
}

/** The closest directory at or above `cwd` holding `.git` (a directory, or a worktree's file). */
export function repositoryRoot(cwd: string): string | undefined {
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    if (existsSync(join(dir, '.git'))) return dir;
    if (dir === dirname(dir)) return undefined;
  }
}

/** The line saying which inventory is used, when it is not ./targets.yaml or the one -c named. */
export function configNote(loc: ConfigLocation, cwd = process.cwd()): string | undefined {
  if (loc.how === 'found') return `keyrot: using ${relative(cwd, loc.path)} (found in ${dirname(loc.path)})`;
  if (loc.how === 'env' && dirname(loc.path) !== resolve(cwd)) return `keyrot: using ${loc.path} (from KEYROT_CONFIG)`;
  return undefined;
}
