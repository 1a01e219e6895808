import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { childEnv } from '../core/redact.ts';

/**
 * Could a local secret file be committed to git? For many files at once: the files are grouped
 * by the work tree holding them, and each work tree answers all of its files with two `git`
 * processes (`ls-files` for the tracked ones, `check-ignore --stdin` for the rest), where asking
 * file by file took three processes per file (`rev-parse`, `ls-files --error-unmatch`,
 * `check-ignore`).
 *
 * The work tree is found as git finds it (git-rev-parse(1), "discovery"): the nearest directory
 * upwards holding `.git` (a directory, or a file for linked work trees and submodules). A git that
 * then refuses the directory (safe.directory, a broken .git) answers nothing: no warning, as before.
 */

export type Exposure = 'tracked' | 'not-ignored';

export interface GitExposureOptions {
  /** The git executable (tests count its runs). */
  git?: string;
  timeoutMs?: number;
}

/** For each path (absolute, or relative to the process's directory): how it is exposed, or undefined when it is not. */
export async function gitExposures(paths: string[], o: GitExposureOptions = {}): Promise<Map<string, Exposure | undefined>> {
  const out = new Map<string, Exposure | undefined>(paths.map((p) => [p, undefined]));
  const byTree = new Map<string, Array<{ path: string; rel: string }>>();
  for (const path of new Set(paths)) {
    const abs = resolve(path);
    const top = workTreeOf(dirname(abs));
    if (top === undefined) continue;
    const rel = relative(top, abs);
    if (rel.startsWith('..') || isAbsolute(rel)) continue;
    let files = byTree.get(top);
    if (!files) byTree.set(top, (files = []));
    files.push({ path, rel });
  }
  await Promise.all([...byTree].map(async ([top, files]) => {
    for (const [path, e] of await exposuresIn(top, files, o)) out.set(path, e);
  }));
  return out;
}

/** The message plan shows for an exposure. */
export function exposureMessage(path: string, e: Exposure): string {
  return e === 'tracked'
    ? `${path} is TRACKED by git: the key is (or will be) in the repository history. Remove it (git rm --cached), add it to .gitignore, and treat the key as leaked`
    : `${path} is inside a git work tree but not ignored: add it to .gitignore so the key is never committed`;
}

function workTreeOf(dir: string): string | undefined {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(resolve(d, '.git'))) return d;
    if (dirname(d) === d) return undefined;
  }
}

async function exposuresIn(top: string, files: Array<{ path: string; rel: string }>, o: GitExposureOptions): Promise<Map<string, Exposure>> {
  const found = new Map<string, Exposure>();
  let tracked: Set<string>;
  try {
    // --literal-pathspecs: a file name is a name, never a glob.
    const r = await git(o, top, ['--literal-pathspecs', 'ls-files', '-z', '--', ...files.map((f) => f.rel)]);
    tracked = new Set(r.split('\0').filter(Boolean));
  } catch {
    return found; // git refuses this work tree (or is missing): nothing to warn about
  }
  const untracked = files.filter((f) => !tracked.has(f.rel));
  for (const f of files) if (tracked.has(f.rel)) found.set(f.path, 'tracked');
  if (!untracked.length) return found;
  // A check-ignore that fails says nothing is ignored: the warning stands (as it did file by file).
  const ignored = (await checkIgnore(o, top, untracked.map((f) => f.rel))) ?? new Set();
  for (const f of untracked) if (!ignored.has(f.rel)) found.set(f.path, 'not-ignored');
  return found;
}

/** The ignored ones among `rels`; undefined when git could not say. */
async function checkIgnore(o: GitExposureOptions, top: string, rels: string[]): Promise<Set<string> | undefined> {
  try {
    const r = await git(o, top, ['check-ignore', '--stdin', '-z'], rels.map((p) => `${p}\0`).join(''));
    return new Set(r.split('\0').filter(Boolean));
  } catch (err) {
    // Exit 1: none of them is ignored.
    if ((err as { code?: unknown }).code === 1) return new Set();
    return undefined;
  }
}

function git(o: GitExposureOptions, cwd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(o.git ?? 'git', ['-C', cwd, ...args], { timeout: o.timeoutMs ?? 5_000, env: childEnv(), maxBuffer: 64 * 1024 * 1024 }, (err, stdout) =>
      err ? reject(err) : resolvePromise(stdout),
    );
    // git may exit before reading its input (ls-files never reads it): its exit status speaks, not the pipe.
    child.stdin?.on('error', () => {});
    child.stdin?.end(input);
  });
}
