import { basename, extname, relative, sep } from 'node:path';
import { KEYROT_TEMP_RE } from '../runtime/atomic.ts';
import { DEFAULT_MAX_FILE_BYTES, displayPath, listFiles, readForScan } from '../scan/files.ts';
import { findCandidates, positions } from '../scan/patterns.ts';
import { Secret } from '../core/secret.ts';
import type { DiscoveredPlace } from '../targets/types.ts';

/**
 * `keyrot discover` in files: the working tree and the `--path` directories, listed by the leak
 * scanner's walker (.gitignore honoured, except for `.env` files outside ignored directories;
 * node_modules and .git skipped), keeping the files a key is kept in: `.env*`, key files, Compose
 * files, JSON/YAML/TOML/INI config. Each key-like value found is a place: a `.env`-style
 * assignment gets a dotenv entry, a file holding only the key a file entry; a key inside JSON/YAML
 * config has no target type that rewrites it (entry: none).
 */
const CONFIG_EXT = new Set(['.json', '.yaml', '.yml', '.toml', '.ini', '.cfg', '.conf', '.properties', '.key', '.txt', '.secret']);
const KEY_FILE_NAME = /key|secret|token|credential/i;
/** At most this many files are read per search: a huge tree is reported as bounded, not walked for ever. */
export const MAX_TREE_FILES = 20_000;

/** A place in a file: its target entry is null when no target type can rewrite the key where it is. */
export type TreePlace = Omit<DiscoveredPlace, 'target' | 'matches'> & { target: Record<string, unknown> | null; file: string };

export interface TreeSearch {
  places: TreePlace[];
  files: number;
  truncated: boolean;
}

const isEnvFile = (name: string) => name.startsWith('.env') || name.endsWith('.env');
/** `.env` files are what .gitignore hides most: listed even when ignored (never inside an ignored directory). */
const envFilesToo = (p: string) => KEYROT_TEMP_RE.test(p) || isEnvFile(basename(p));

/** Whether a file is one a key is kept in (by its name). */
export function keepsKeys(path: string): boolean {
  const name = basename(path);
  if (isEnvFile(name)) return true;
  if (/^(docker-)?compose(\.[\w-]+)?\.ya?ml$/.test(name)) return true;
  const ext = extname(name).toLowerCase();
  return CONFIG_EXT.has(ext) || (ext === '' && KEY_FILE_NAME.test(name));
}

export interface TreeOptions {
  baseDir: string;
  varName: string;
  isKey: (fp: string) => boolean;
  /**
   * Files always read, wherever they are and whatever .gitignore says: the inventory's own local
   * targets (a `sandbox/.env` in an ignored directory is still a place the key lives).
   */
  files?: string[];
  signal?: AbortSignal;
}

export async function searchTree(dirs: string[], o: TreeOptions): Promise<TreeSearch> {
  const out: TreeSearch = { places: [], files: 0, truncated: false };
  const seen = new Set<string>();
  for await (const abs of listFiles(dirs, envFilesToo)) {
    o.signal?.throwIfAborted();
    if (!keepsKeys(abs)) continue;
    if (out.files >= MAX_TREE_FILES) {
      out.truncated = true;
      break;
    }
    seen.add(abs);
    await searchFile(abs, o, out);
  }
  for (const abs of o.files ?? []) {
    o.signal?.throwIfAborted();
    if (!seen.has(abs)) await searchFile(abs, o, out);
    seen.add(abs);
  }
  return out;
}

/** Reads one file (a missing or binary one is passed over) and adds the places of the key-like values in it. */
async function searchFile(abs: string, o: TreeOptions, out: TreeSearch): Promise<void> {
  const r = await readForScan(abs, DEFAULT_MAX_FILE_BYTES);
  if (r.kind !== 'text') return;
  out.files++;
  const cands = findCandidates(r.text, o.isKey, { assignments: true });
  const pos = positions(r.text, cands.map((c) => c.index));
  const rel = relative(o.baseDir, abs).split(sep).join('/');
  cands.forEach((c, i) => {
    out.places.push({
      location: `${displayPath(abs)}:${pos[i]!.line}`,
      target: entryFor(r.text, c.index, c.token, rel, o.varName),
      holds: { kind: 'value', value: new Secret(c.token) },
      file: abs,
    });
  });
}

/** The entry that would rotate the key at `index` of a file, or null when no target type can. */
function entryFor(text: string, index: number, token: string, path: string, varName: string): Record<string, unknown> | null {
  if (text.trim() === token) return { type: 'file', path };
  const lineStart = text.lastIndexOf('\n', index - 1) + 1;
  const assigned = /^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.]*)[ \t]*=/.exec(text.slice(lineStart, index));
  const name = extname(path) === '' || isEnvFile(basename(path)) ? assigned?.[1] : undefined;
  if (!name) return null;
  return { type: 'dotenv', path, ...(name !== varName ? { var: name } : {}) };
}
