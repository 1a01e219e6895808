import { spawn } from 'node:child_process';
import { childEnv } from '../core/redact.ts';
import { createInterface } from 'node:readline';

/**
 * The whole history of a git repository, streamed: `git log --all -p --unified=0` and every
 * ADDED line of every commit, with the file and its line number in that commit. A key committed
 * and removed later was added once: it is found at the commit that added it. Memory stays bounded
 * by one line of output.
 */
export interface AddedLine {
  commit: string;
  file: string;
  line: number;
  text: string;
}

export interface HistoryScan {
  commits: number;
}

const COMMIT_MARK = '\x01keyrot-commit ';

/** C-style quoted path of `git diff` headers ("a/caf\303\251"), when core.quotePath cannot avoid it. */
function unquote(path: string): string {
  if (!path.startsWith('"') || !path.endsWith('"')) return path;
  const body = path.slice(1, -1);
  const bytes: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== '\\') {
      bytes.push(...Buffer.from(c, 'utf8'));
      continue;
    }
    const n = body[++i]!;
    if (/[0-7]/.test(n)) {
      bytes.push(parseInt(body.slice(i, i + 3), 8));
      i += 2;
    } else {
      bytes.push(({ n: 10, t: 9, r: 13, b: 8, f: 12, v: 11, a: 7 } as Record<string, number>)[n] ?? n.charCodeAt(0));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * Streams the added lines of every commit reachable from any ref in `repo` (optionally limited
 * to `pathspecs`, relative to the repository's top directory) to `onLine`.
 */
export async function scanHistory(
  repo: string,
  pathspecs: string[],
  onLine: (l: AddedLine) => void,
  signal?: AbortSignal,
): Promise<HistoryScan> {
  const args = [
    '-c',
    'core.quotePath=false',
    'log',
    '--all',
    '-p',
    '--no-color',
    '--unified=0',
    '--no-ext-diff',
    '--no-textconv',
    '--no-renames',
    `--format=${COMMIT_MARK}%H`,
    '--',
    ...pathspecs,
  ];
  const child = spawn('git', args, { cwd: repo, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'], signal });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 4000) stderr += d.toString('utf8');
  });
  const closed = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  const rl = createInterface({ input: child.stdout, crlfDelay: Infinity });
  let commits = 0;
  let commit = '';
  let file: string | null = null;
  let inHunk = false;
  let newLine = 0;
  for await (const line of rl) {
    if (line.startsWith(COMMIT_MARK)) {
      commit = line.slice(COMMIT_MARK.length).trim();
      commits++;
      file = null;
      inHunk = false;
      continue;
    }
    if (line.startsWith('diff --git ')) {
      file = null;
      inHunk = false;
      continue;
    }
    if (!inHunk) {
      if (line.startsWith('+++ ')) {
        // git ends a name that has a space with a TAB (for patch(1)).
        const p = line.slice(4).replace(/\t$/, '');
        file = p === '/dev/null' ? null : unquote(p).replace(/^b\//, '');
      } else if (line.startsWith('@@')) {
        const m = /^@@+ (?:-\d+(?:,\d+)? )+\+(\d+)(?:,\d+)? @@/.exec(line);
        if (m) {
          inHunk = true;
          newLine = Number(m[1]);
        }
      }
      continue;
    }
    // Inside a hunk (unified=0: only removed and added lines, plus "\ No newline").
    if (line.startsWith('@@')) {
      const m = /^@@+ (?:-\d+(?:,\d+)? )+\+(\d+)(?:,\d+)? @@/.exec(line);
      if (m) newLine = Number(m[1]);
      continue;
    }
    if (line.startsWith('+')) {
      if (file) onLine({ commit, file, line: newLine, text: line.slice(1) });
      newLine++;
    }
    // '-' lines (removed) and '\ No newline at end of file' do not advance the new side.
  }
  const code = await closed;
  // An empty repository (no commit yet) is a clean history, not an error.
  if (code !== 0 && !/does not have any commits|bad default revision/i.test(stderr)) {
    throw new Error(`git log failed in ${repo} (exit ${code}): ${stderr.trim().split('\n')[0] ?? ''}`);
  }
  return { commits };
}
