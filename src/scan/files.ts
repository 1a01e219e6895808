import { spawn } from 'node:child_process';
import { childEnv } from '../core/redact.ts';
import { lstat, open, readdir, readFile } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { KEYROT_TEMP_RE } from '../runtime/atomic.ts';
import { isIgnored, parseGitignore, type IgnoreLevel } from './ignore.ts';

/** Directories never scanned, whatever the ignore files say. */
export const ALWAYS_SKIPPED_DIRS = new Set(['node_modules', '.git']);
export const DEFAULT_MAX_FILE_BYTES = 5 * 1024 * 1024;
/** As git does: a NUL byte in the first 8 KB makes a file binary. */
const BINARY_PROBE_BYTES = 8000;

export interface Skipped {
  path: string;
  reason: string;
}

/** Runs a command and gives its stdout (rejects on a non-zero exit). */
export function runCapture(cmd: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolvePromise(Buffer.concat(out).toString('utf8')) : reject(new Error(err.trim() || `${cmd} exited ${code}`)),
    );
  });
}

/** The git work tree's top directory containing `dir`, or null (not a work tree, or no git). */
export async function gitTopLevel(dir: string): Promise<string | null> {
  try {
    const inside = (await runCapture('git', ['rev-parse', '--is-inside-work-tree'], dir)).trim();
    if (inside !== 'true') return null;
    return (await runCapture('git', ['rev-parse', '--show-toplevel'], dir)).trim() || null;
  } catch {
    return null;
  }
}

function hasSkippedSegment(rel: string): boolean {
  return rel.split(/[\\/]/).some((s) => ALWAYS_SKIPPED_DIRS.has(s));
}

/**
 * The files under `dir` that git would consider (tracked, plus untracked not ignored:
 * `git ls-files -co --exclude-standard -z`), streamed, as absolute paths.
 */
async function* gitFiles(dir: string): AsyncGenerator<string> {
  const child = spawn('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: dir, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  let rest = '';
  const seen = new Set<string>();
  for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
    rest += chunk.toString('utf8');
    const parts = rest.split('\0');
    rest = parts.pop() ?? '';
    for (const rel of parts) {
      // An unmerged file is listed once per stage.
      if (!rel || seen.has(rel) || hasSkippedSegment(rel)) continue;
      seen.add(rel);
      yield join(dir, rel);
    }
  }
  if (rest && !hasSkippedSegment(rest)) yield join(dir, rest);
  const code = await closed;
  if (code !== 0) throw new Error(`git ls-files failed in ${dir}: ${stderr.trim()}`);
}

/**
 * keyrot's temp files that ignore rules hide (`.env.keyrot-…tmp` matches `.env*`): a crash left
 * each holding a copy of a key, so they are scanned even when ignored. Like the other files,
 * only outside ignored directories (`--directory` lists those as one entry, not descended).
 */
async function* ignoredKeyrotTemps(dir: string, keep: KeepIgnored): AsyncGenerator<string> {
  const out = await runCapture('git', ['ls-files', '-o', '-i', '--exclude-standard', '--directory', '-z'], dir);
  for (const rel of out.split('\0')) {
    if (rel && keep(rel) && !hasSkippedSegment(rel)) yield join(dir, rel);
  }
}

/** Ignored files listed anyway (outside ignored directories): keyrot's temp files, or what the caller names. */
export type KeepIgnored = (path: string) => boolean;
const keyrotTemps: KeepIgnored = (p) => KEYROT_TEMP_RE.test(p);

/** Walks `root` honouring the .gitignore files found on the way (not a git work tree). */
async function* walkFiles(root: string, keep: KeepIgnored): AsyncGenerator<string> {
  const stack: Array<{ dir: string; rel: string; levels: IgnoreLevel[] }> = [{ dir: root, rel: '', levels: [] }];
  while (stack.length) {
    const { dir, rel, levels: parentLevels } = stack.pop()!;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    let levels = parentLevels;
    if (entries.some((e) => e.name === '.gitignore' && e.isFile())) {
      const text = await readFile(join(dir, '.gitignore'), 'utf8').catch(() => '');
      levels = [...parentLevels, { base: rel, rules: parseGitignore(text) }];
    }
    const subdirs: Array<{ dir: string; rel: string; levels: IgnoreLevel[] }> = [];
    for (const e of entries) {
      const childRel = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (ALWAYS_SKIPPED_DIRS.has(e.name) || isIgnored(levels, childRel, true)) continue;
        subdirs.push({ dir: join(dir, e.name), rel: childRel, levels });
      } else if (e.isFile()) {
        if (isIgnored(levels, childRel, false) && !keep(e.name)) continue;
        yield join(dir, e.name);
      }
      // Symlinks, sockets, devices: not followed (a link may leave the tree or loop).
    }
    stack.push(...subdirs.reverse());
  }
}

/**
 * The files to scan under each path: a file given explicitly is scanned even if ignored; a
 * directory is listed by git when it is in a work tree, else walked with its .gitignore files;
 * keyrot's own temp files (or the ignored files `keep` names) are scanned even when ignored.
 */
export async function* listFiles(paths: string[], keep: KeepIgnored = keyrotTemps): AsyncGenerator<string> {
  const seen = new Set<string>();
  for (const p of paths) {
    const abs = resolve(p);
    const st = await lstat(abs);
    if (!st.isDirectory()) {
      if (!seen.has(abs)) {
        seen.add(abs);
        yield abs;
      }
      continue;
    }
    const top = await gitTopLevel(abs);
    const sources = top ? [gitFiles(abs), ignoredKeyrotTemps(abs, keep)] : [walkFiles(abs, keep)];
    for (const source of sources) {
      for await (const f of source) {
        if (seen.has(f)) continue;
        seen.add(f);
        yield f;
      }
    }
  }
}

export type ReadResult =
  | { kind: 'text'; text: string }
  | { kind: 'binary' }
  | { kind: 'skipped'; reason: string }
  | { kind: 'absent' };

/** Reads a file for scanning: only regular files, at most `maxBytes`, not binary. */
export async function readForScan(path: string, maxBytes: number): Promise<ReadResult> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Listed by git but deleted in the work tree, or gone since: nothing to scan.
    if (code === 'ENOENT') return { kind: 'absent' };
    return { kind: 'skipped', reason: `unreadable (${code ?? 'error'})` };
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { kind: 'absent' };
    if (st.size > maxBytes) return { kind: 'skipped', reason: `larger than ${formatBytes(maxBytes)} (${formatBytes(st.size)})` };
    const buf = await fh.readFile();
    const probe = buf.subarray(0, BINARY_PROBE_BYTES);
    if (probe.includes(0)) return { kind: 'binary' };
    return { kind: 'text', text: buf.toString('utf8') };
  } catch (err) {
    return { kind: 'skipped', reason: `unreadable (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
  } finally {
    await fh.close();
  }
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1).replace(/\.0$/, '')} MB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1).replace(/\.0$/, '')} KB`;
  return `${n} B`;
}

/** How a path is shown: relative to the working directory when under it. */
export function displayPath(abs: string, cwd: string = process.cwd()): string {
  const rel = relative(cwd, abs);
  if (!rel) return '.';
  if (rel.startsWith('..') || rel.startsWith(sep + sep)) return abs;
  return rel.split(sep).join('/');
}
