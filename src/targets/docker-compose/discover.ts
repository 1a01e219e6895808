import { readdir, readFile } from 'node:fs/promises';
import { plural } from '../../render/plural.ts';
import { basename, dirname, extname, isAbsolute, join, relative, resolve } from 'node:path';
import { parse } from 'yaml';
import { createDotenvTarget } from '../dotenv/adapter.ts';
import { createFileTarget } from '../file/adapter.ts';
import type { DiscoverContext, DiscoveredPlace, DiscoverResult } from '../types.ts';

/*
 * `keyrot discover` for Compose: the Compose files of the working tree (the directory of
 * targets.yaml and below), and in them the places a service gets one of the variables from:
 * - `env_file:` files that assign it (compose-spec 05-services.md, "env_file": a string, a list,
 *   or `{path, required}` entries, relative to the Compose file's directory);
 * - the project's `.env` when `environment:` passes the variable through (`VAR: ${VAR}`,
 *   `- VAR=${VAR}`, `- VAR`): Compose reads that file for interpolation (12-interpolation.md);
 * - secret files (`secrets:` with `file:`, mounted at /run/secrets/<target>) whose name, target or
 *   file name is the variable's (`openai_api_key` for OPENAI_API_KEY), or that the service points
 *   `VAR_FILE` at.
 * Each place comes with a ready `docker-compose` target: the file, the project (the top-level
 * `name:`, else the directory's name as Compose normalizes it) and the services that use it.
 */

/** compose-spec 03-compose-file.md: the default names, and the override files Compose merges in. */
const COMPOSE_FILE = /^(docker-)?compose(\.override)?\.ya?ml$/;
const SKIP_DIRS = new Set(['node_modules', '.git', 'vendor', 'dist', 'build', '.keyrot']);
const MAX_DEPTH = 6;

interface Found {
  mode: 'file' | 'env_file';
  path: string;
  varName: string;
  project: string;
  services: Set<string>;
}

export async function discoverCompose(ctx: DiscoverContext): Promise<DiscoverResult> {
  const files = await composeFiles(ctx.baseDir, 0);
  const found = new Map<string, Found>();
  let unreadable = 0;
  for (const f of files) {
    const doc = await readFile(f, 'utf8').then(parse, () => undefined).catch(() => undefined);
    if (!isObject(doc) || !isObject(doc.services)) {
      unreadable++;
      continue;
    }
    for (const place of placesIn(doc, f, ctx.varNames)) {
      const key = `${place.mode}\0${place.path}\0${place.varName}\0${place.project}`;
      const seen = found.get(key);
      if (seen) for (const s of place.services) seen.services.add(s);
      else found.set(key, place);
    }
  }
  const places: DiscoveredPlace[] = [];
  for (const p of found.values()) {
    const place = await describePlace(p, ctx);
    if (place.holds.kind !== 'absent') places.push(place);
  }
  const where = relative(process.cwd(), ctx.baseDir) || '.';
  return {
    scope: `${plural(files.length, 'Compose file')} under ${where}${unreadable ? ` (${unreadable} not readable as Compose files)` : ''}`,
    count: files.length,
    places,
  };
}

async function composeFiles(dir: string, depth: number): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) {
    if (e.isFile() && COMPOSE_FILE.test(e.name)) out.push(join(dir, e.name));
    else if (e.isDirectory() && depth < MAX_DEPTH && !SKIP_DIRS.has(e.name) && !e.name.startsWith('.')) out.push(...(await composeFiles(join(dir, e.name), depth + 1)));
  }
  return out.sort();
}

/** Every (file, variable) a service of this Compose file takes one of `varNames` from. */
function placesIn(doc: Record<string, unknown>, file: string, varNames: string[]): Found[] {
  const dir = dirname(file);
  const project = typeof doc.name === 'string' && doc.name ? doc.name : projectNameOf(dir);
  const at = (p: string) => (isAbsolute(p) ? p : resolve(dir, p));
  const out: Found[] = [];
  const add = (mode: Found['mode'], path: string, varName: string, service: string) =>
    out.push({ mode, path: at(path), varName, project, services: new Set([service]) });
  for (const [service, raw] of Object.entries(doc.services as Record<string, unknown>)) {
    if (!isObject(raw)) continue;
    const env = environmentOf(raw.environment);
    for (const v of varNames) {
      for (const f of envFilesOf(raw.env_file)) add('env_file', f, v, service);
      if (env.passThrough.has(v)) add('env_file', '.env', v, service);
    }
    for (const s of secretsOf(raw.secrets)) {
      const def = isObject(doc.secrets) ? (doc.secrets as Record<string, unknown>)[s.source] : undefined;
      const path = isObject(def) && typeof def.file === 'string' ? def.file : undefined;
      if (!path) continue;
      const mountedAt = s.target.startsWith('/') ? s.target : `/run/secrets/${s.target}`;
      const v = varNames.find(
        (n) => [s.source, basename(s.target), basename(path, extname(path))].some((x) => same(x, n)) || env.values.get(`${n}_FILE`) === mountedAt,
      );
      if (v) add('file', path, v, service);
    }
  }
  return out;
}

/** The place with what it holds now (read like the target would), and its ready targets.yaml entry. */
async function describePlace(p: Found, ctx: DiscoverContext): Promise<DiscoveredPlace> {
  const rel = relative(ctx.baseDir, p.path) || p.path;
  const services = [...p.services].sort();
  const tctx = { ...ctx, name: 'discover', varName: p.varName };
  const target = p.mode === 'file' ? createFileTarget({ path: p.path }, tctx) : createDotenvTarget({ path: p.path }, tctx);
  const holds = await target.read().catch((err: Error) => ({ kind: 'unreadable' as const, reason: err.message }));
  return {
    location: `${rel} (Compose project ${p.project}: ${services.join(', ')})`,
    target: { type: 'docker-compose', [p.mode]: rel, project: p.project, services, ...(p.varName !== ctx.varName ? { var: p.varName } : {}) },
    holds,
  };
}

/** Compose's default project name: the directory's name, lowercased, keeping only [a-z0-9_-], starting with a letter or digit. */
export function projectNameOf(dir: string): string {
  return basename(dir).toLowerCase().replace(/[^a-z0-9_-]/g, '').replace(/^[^a-z0-9]+/, '');
}

function envFilesOf(v: unknown): string[] {
  const list = Array.isArray(v) ? v : v === undefined ? [] : [v];
  return list.flatMap((e) => (typeof e === 'string' ? [e] : isObject(e) && typeof e.path === 'string' ? [e.path] : []));
}

/** `environment:` as a map or a list: literal values, and the variables passed through from the interpolation environment. */
function environmentOf(v: unknown): { values: Map<string, string>; passThrough: Set<string> } {
  const entries: Array<[string, unknown]> = Array.isArray(v)
    ? v.filter((e): e is string => typeof e === 'string').map((e) => (e.includes('=') ? [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)] : [e, null]))
    : isObject(v)
      ? Object.entries(v)
      : [];
  const values = new Map<string, string>();
  const passThrough = new Set<string>();
  for (const [name, value] of entries) {
    if (value === null || value === undefined) passThrough.add(name);
    else if (typeof value === 'string') {
      const ref = /^\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::?[-?+][^}]*)?\}?$/.exec(value.trim());
      if (ref && ref[1] === name) passThrough.add(name);
      else values.set(name, value);
    }
  }
  return { values, passThrough };
}

function secretsOf(v: unknown): Array<{ source: string; target: string }> {
  if (!Array.isArray(v)) return [];
  return v.flatMap((s) => {
    if (typeof s === 'string') return [{ source: s, target: s }];
    if (isObject(s) && typeof s.source === 'string') return [{ source: s.source, target: typeof s.target === 'string' ? s.target : s.source }];
    return [];
  });
}

/** `openai_api_key`, `openai-api-key` and `OPENAI_API_KEY` name the same thing. */
function same(a: string, b: string): boolean {
  const norm = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '_');
  return norm(a) === norm(b);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
