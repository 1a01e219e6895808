/**
 * A small .gitignore matcher for trees that are not git work trees (inside one, `git ls-files`
 * answers instead). Supports what gitignore(5) defines: comments, `\#` / `\!` escapes, trailing
 * spaces, `!` negation, a trailing `/` for directories only, patterns anchored by a `/` at the
 * start or middle, `*`, `?`, `[...]` and `**`. The walker does not descend into an ignored
 * directory, so (as in git) a file cannot be re-included below one.
 */
export interface IgnoreRule {
  re: RegExp;
  negate: boolean;
  dirOnly: boolean;
  /** Matched against the path relative to the .gitignore's directory (true) or the basename. */
  anchored: boolean;
}

export function parseGitignore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (let line of text.split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    // Trailing spaces are ignored unless escaped.
    line = line.replace(/(?<!\\)\s+$/, '');
    if (!line) continue;
    let negate = false;
    if (line.startsWith('!')) {
      negate = true;
      line = line.slice(1);
    } else if (line.startsWith('\\!') || line.startsWith('\\#')) {
      line = line.slice(1);
    }
    let dirOnly = false;
    if (line.endsWith('/')) {
      dirOnly = true;
      line = line.slice(0, -1);
    }
    if (!line) continue;
    const anchored = line.includes('/');
    if (line.startsWith('/')) line = line.slice(1);
    rules.push({ re: new RegExp(`^${globToRegex(line)}$`), negate, dirOnly, anchored });
  }
  return rules;
}

function globToRegex(glob: string): string {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        const atStart = i === 0 || glob[i - 1] === '/';
        const atEnd = i + 2 === glob.length || glob[i + 2] === '/';
        if (atStart && atEnd) {
          if (i + 2 === glob.length) {
            re += '.*'; // `foo/**`: everything inside
          } else {
            re += '(?:.*/)?'; // `**/` : zero or more directories
            i += 2; // skip `*` and `/`
            continue;
          }
          i += 1;
          continue;
        }
      }
      re += '[^/]*';
      while (glob[i + 1] === '*') i++;
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end === -1) {
        re += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, end);
      if (body.startsWith('!')) body = '^' + body.slice(1);
      re += `[${body.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (c === '\\' && i + 1 < glob.length) {
      re += escapeRe(glob[++i]!);
    } else {
      re += escapeRe(c);
    }
  }
  return re;
}

function escapeRe(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}

/** The rules of one .gitignore and the directory (relative to the walk root, '' = root) it sits in. */
export interface IgnoreLevel {
  base: string;
  rules: IgnoreRule[];
}

/** Whether `rel` (relative to the walk root, '/'-separated) is ignored: the last matching rule wins. */
export function isIgnored(levels: readonly IgnoreLevel[], rel: string, isDir: boolean): boolean {
  let ignored = false;
  for (const level of levels) {
    if (level.base && !rel.startsWith(level.base + '/')) continue;
    const sub = level.base ? rel.slice(level.base.length + 1) : rel;
    const name = sub.slice(sub.lastIndexOf('/') + 1);
    for (const r of level.rules) {
      if (r.dirOnly && !isDir) continue;
      if (r.re.test(r.anchored ? sub : name)) ignored = !r.negate;
    }
  }
  return ignored;
}
