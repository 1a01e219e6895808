import { realpathSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import type { Inventory } from '../inventory/load.ts';
import { hint } from '../core/secret.ts';
import { KEYROT_TEMP_RE } from '../runtime/atomic.ts';
import type { DockerEngine } from '../targets/docker-engine.ts';
import { DEFAULT_MAX_FILE_BYTES, displayPath, gitTopLevel, listFiles, readForScan, type Skipped } from './files.ts';
import { scanHistory } from './git.ts';
import { engineFromEnv, readImage } from './image.ts';
import { describeKnown, type KnownKey, type KnownKeys } from './known.ts';
import { FORMAT_LABEL, findCandidates, positions, type Candidate, type KeyFormat } from './patterns.ts';

export { EngineUnreachableError, ImageNotFoundError } from './image.ts';
export { loadKnownKeys, knownKeysFromEvents, type KnownKey, type KnownKeys } from './known.ts';
export type { KeyFormat } from './patterns.ts';

/**
 * `keyrot scan`: OpenAI key formats and the fingerprints of keys keyrot knows, in files (the
 * working tree, honouring .gitignore), the git history (`git`) and Docker images (`images`).
 * A finding carries a location, a kind, the key's hint and fingerprint: never the key.
 */
export type FindingKind = KeyFormat | 'retired' | 'current';

export const KIND_LABEL: Record<FindingKind, string> = {
  ...FORMAT_LABEL,
  retired: 'retired key',
  current: 'current key',
};

export interface Finding {
  source: 'file' | 'git' | 'image';
  /** `src/app.ts:12`, `3f9c2a1b4d5e:src/app.ts:12` or `image NAME layer 3`. */
  location: string;
  file?: string;
  line?: number;
  column?: number;
  commit?: string;
  image?: string;
  /** Row of `docker history` (1 = newest). */
  layer?: number;
  field?: string;
  kind: FindingKind;
  /** The key format matched, if any (a retired key may also be a project key...). */
  format: KeyFormat | null;
  hint: string;
  fingerprint: string;
  retired?: { rotation: string; env: string };
  current?: { rotation: string; env: string };
  /** In a file that is a dotenv/file target of the inventory: where the key lives legitimately. */
  expected?: { target: string; env: string };
  /** Counts as a leak (exit 1). */
  leak: boolean;
  /** Human explanation: `a retired key (rotation X of env Y)`, `expected (inventory target X)`. */
  note: string;
}

export interface ScanResult {
  findings: Finding[];
  leaks: number;
  expected: number;
  scanned: { files: number; binaries: number; commits: number; images: number };
  skipped: Skipped[];
}

export interface ExpectedFile {
  target: string;
  env: string;
}

export interface ScanOptions {
  /** Files and directories; default the working directory. */
  paths?: string[];
  git?: boolean;
  images?: string[];
  /** Keys known by fingerprint (retired and current), from the journals. */
  known?: KnownKeys;
  /** Absolute paths of the inventory's dotenv/file targets. */
  expectedFiles?: Map<string, ExpectedFile>;
  maxFileBytes?: number;
  /** Files read at once. */
  concurrency?: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** The Docker Engine for `images` (default: DOCKER_HOST, else /var/run/docker.sock). */
  engine?: DockerEngine;
  signal?: AbortSignal;
}

/** The inventory's local key files (dotenv, file, docker-compose targets; every environment), by absolute path. */
export function expectedFilesOf(inv: Inventory): Map<string, ExpectedFile> {
  const out = new Map<string, ExpectedFile>();
  for (const env of inv.environments.values()) {
    for (const t of env.targets) {
      const p = t.definition.localFile?.(t.config) ?? '';
      if (!p) continue;
      const abs = isAbsolute(p) ? p : resolve(inv.baseDir, p);
      // A symlinked target (Capistrano's current/.env): the file at the end of the link holds the key too.
      for (const path of [abs, realPathOrNull(abs)]) {
        if (path && !out.has(path)) out.set(path, { target: t.name, env: env.name });
      }
    }
  }
  return out;
}

function realPathOrNull(path: string): string | null {
  try {
    return realpathSync(path);
  } catch {
    return null;
  }
}

/** A path that does not exist, or `--git` outside a git work tree: exit 2. */
export class ScanUsageError extends Error {
  override name = 'ScanUsageError';
}

/** Where a candidate was found: the location fields of a Finding, plus the inventory target it sits in. */
type Where = Pick<Finding, 'source' | 'location' | 'file' | 'line' | 'column' | 'commit' | 'image' | 'layer' | 'field'> & {
  expected?: ExpectedFile;
};

function toFinding(c: Candidate, where: Where, known: KnownKeys): Finding {
  const k: KnownKey | undefined = known.get(c.fingerprint);
  const kind: FindingKind = k?.status === 'retired' ? 'retired' : (c.format ?? 'current');
  const { expected, ...at } = where;
  const f: Finding = {
    ...at,
    kind,
    format: c.format,
    hint: hint(c.token),
    fingerprint: c.fingerprint,
    leak: true,
    note: '',
  };
  const notes: string[] = [];
  if (k) {
    if (k.status === 'retired') f.retired = { rotation: k.rotation, env: k.env };
    else f.current = { rotation: k.rotation, env: k.env };
    notes.push(describeKnown(k));
  }
  // The inventory's own files hold the current key legitimately; a retired key there is still a leak.
  if (expected && kind !== 'retired') {
    f.expected = expected;
    f.leak = false;
    notes.unshift(`expected (inventory target ${expected.target})`);
  } else if (expected) {
    notes.push(`in inventory target ${expected.target}`);
  }
  if (where.source === 'file' && KEYROT_TEMP_RE.test(where.file ?? '')) {
    notes.push('a temp file of an interrupted keyrot write: delete it (`keyrot rotate` and `keyrot resume` remove those of their targets)');
  }
  f.note = notes.join('; ');
  return f;
}

/** Finds key candidates in one text (a file, an added line, an image field). */
function candidatesIn(text: string, known: KnownKeys): Candidate[] {
  return findCandidates(text, (fp) => known.has(fp), { assignments: known.size > 0 });
}

async function checkPaths(paths: string[], cwd: string): Promise<string[]> {
  const abs: string[] = [];
  for (const p of paths) {
    const a = resolve(cwd, p);
    try {
      await lstat(a);
    } catch {
      throw new ScanUsageError(`no such file or directory: ${p}`);
    }
    abs.push(a);
  }
  return abs;
}

/** Git repositories of the paths, each with the pathspecs to limit its history to ([] = all). */
async function repositoriesOf(paths: string[]): Promise<Map<string, string[] | null>> {
  const repos = new Map<string, string[] | null>();
  for (const p of paths) {
    const st = await lstat(p);
    const dir = st.isDirectory() ? p : dirname(p);
    const top = await gitTopLevel(dir);
    if (!top) throw new ScanUsageError(`--git: ${displayPath(p)} is not in a git work tree`);
    const rel = relative(top, p).split(sep).join('/');
    const specs = repos.get(top);
    if (!rel || specs === null) repos.set(top, null);
    else repos.set(top, [...(specs ?? []), `:(literal)${rel}`]);
  }
  return repos;
}

export async function runScan(opts: ScanOptions = {}): Promise<ScanResult> {
  const cwd = opts.cwd ?? process.cwd();
  const known: KnownKeys = opts.known ?? new Map();
  const expectedFiles = opts.expectedFiles ?? new Map<string, ExpectedFile>();
  const maxBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const paths = await checkPaths(opts.paths?.length ? opts.paths : ['.'], cwd);
  const repos = opts.git ? await repositoriesOf(paths) : new Map<string, string[] | null>();

  const result: ScanResult = {
    findings: [],
    leaks: 0,
    expected: 0,
    scanned: { files: 0, binaries: 0, commits: 0, images: 0 },
    skipped: [],
  };

  // Images first: an unreachable Engine or a missing image fails before the long part.
  const imageFindings: Finding[] = [];
  if (opts.images?.length) {
    const engine = opts.engine ?? engineFromEnv(opts.env ?? process.env);
    try {
      for (const name of opts.images) {
        const texts = await readImage(engine, name, opts.signal);
        for (const t of texts) {
          for (const c of candidatesIn(t.text, known)) {
            imageFindings.push(
              toFinding(c, { source: 'image', location: `image ${name} ${t.where}`, image: name, layer: t.layer, field: t.field }, known),
            );
          }
        }
        result.scanned.images++;
      }
    } finally {
      if (!opts.engine) engine.close();
    }
  }

  // Files: a pool of readers pulling from the listing, which is streamed.
  const fileFindings: Finding[] = [];
  const files = listFiles(paths);
  const worker = async () => {
    for (;;) {
      opts.signal?.throwIfAborted();
      const next = await files.next();
      if (next.done) return;
      const abs = next.value;
      const r = await readForScan(abs, maxBytes);
      const shown = displayPath(abs, cwd);
      if (r.kind === 'absent') continue;
      if (r.kind === 'binary') {
        result.scanned.binaries++;
        continue;
      }
      if (r.kind === 'skipped') {
        result.skipped.push({ path: shown, reason: r.reason });
        continue;
      }
      result.scanned.files++;
      const cands = candidatesIn(r.text, known);
      if (!cands.length) continue;
      const pos = positions(
        r.text,
        cands.map((c) => c.index),
      );
      const expected = expectedFiles.get(abs);
      cands.forEach((c, i) => {
        const { line, column } = pos[i]!;
        fileFindings.push(toFinding(c, { source: 'file', location: `${shown}:${line}`, file: shown, line, column, expected }, known));
      });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 16) }, worker));
  fileFindings.sort((a, b) => (a.file! < b.file! ? -1 : a.file! > b.file! ? 1 : a.line! - b.line! || a.column! - b.column!));
  result.skipped.sort((a, b) => (a.path < b.path ? -1 : 1));

  // History: every added line of every commit, streamed.
  const gitFindings: Finding[] = [];
  for (const [repo, specs] of repos) {
    const h = await scanHistory(
      repo,
      specs ?? [],
      (l) => {
        for (const c of candidatesIn(l.text, known)) {
          gitFindings.push(
            toFinding(
              c,
              {
                source: 'git',
                location: `${l.commit.slice(0, 12)}:${l.file}:${l.line}`,
                commit: l.commit,
                file: l.file,
                line: l.line,
                column: c.index + 1,
              },
              known,
            ),
          );
        }
      },
      opts.signal,
    );
    result.scanned.commits += h.commits;
  }

  result.findings = [...fileFindings, ...gitFindings, ...imageFindings];
  result.leaks = result.findings.filter((f) => f.leak).length;
  result.expected = result.findings.length - result.leaks;
  return result;
}
