import { toTargetError } from '../core/errors.ts';
import { redact } from '../core/redact.ts';
import type { Secret } from '../core/secret.ts';
import { resolveCredential } from '../inventory/credentials.ts';
import type { Environment, Inventory } from '../inventory/load.ts';
import type { Clock } from '../runtime/clock.ts';
import { Semaphore } from '../runtime/concurrency.ts';
import type { Logger } from '../runtime/logger.ts';
import { Pacer } from '../runtime/pacer.ts';
import { keyFormat } from '../scan/patterns.ts';
import { REGISTERED_IDS, loadTargetDefinitions, targetType } from '../targets/index.ts';
import { pacingOf, type CommonTargetConfig, type DiscoverResult, type DiscoveredPlace, type TargetDefinition } from '../targets/types.ts';
import { inInventory, localFileOf } from './discover-inventory.ts';
import { searchTree, type TreePlace } from './discover-tree.ts';

/**
 * `keyrot discover`: where does a key live? Every target type whose definition can list its
 * provider (`discover`) is searched with the credentials the inventory gives for that type (or,
 * for the command, the ecosystem's default ones), concurrently and bounded; the working tree and
 * the given directories are searched for files. Each place is classified by fingerprint, in
 * memory: the key (found: in this environment's inventory or not), another OpenAI-format key
 * (hint and fingerprint only), or a value that cannot be read. Read-only everywhere.
 */
export interface DiscoverOptions {
  inventory: Inventory;
  env: Environment;
  processEnv: NodeJS.ProcessEnv;
  clock: Clock;
  logger: Logger;
  key: Secret;
  /** Directories searched for key files ([]: none, as in `plan`'s pass). */
  dirs: string[];
  /** `plan`'s pass: only the types this environment's targets use, with their configs, never default credentials. */
  inventoryTypesOnly?: boolean;
  /** A provider still searching after this long is reported as not searched. */
  providerDeadlineMs: number;
  /** Providers searched at once. */
  concurrency?: number;
  progress?: (provider: string, phase: 'searching' | 'searched' | 'skipped', detail?: string) => void;
  /** What the pacing lanes say (a provider throttling: fewer at once, a pause it asked for). */
  notice?: (message: string) => void;
  signal?: AbortSignal;
}

export interface FoundPlace {
  type: string;
  location: string;
  inInventory: boolean;
  /** The targets.yaml entry that would rotate it; null when no target type can (a key inside JSON config or a JSON secret's field). */
  target: Record<string, unknown> | null;
}

export interface DiscoveryReport {
  key: { hint: string; fingerprint: string };
  found: FoundPlace[];
  otherKeys: Array<{ type: string; location: string; hint: string; fingerprint: string }>;
  searched: Array<{ provider: string; scope: string; count: number }>;
  skipped: Array<{ provider: string; reason: string }>;
}

/** The working tree's pseudo-provider in `searched`. */
export const FILES = 'files';

export async function discover(o: DiscoverOptions): Promise<DiscoveryReport> {
  const report: DiscoveryReport = { key: o.key.toJSON(), found: [], otherKeys: [], searched: [], skipped: [] };
  const limit = new Semaphore(o.concurrency ?? 4);
  const pacer = new Pacer(o.clock, o.notice);
  const searches = (await providersToSearch(o)).map(([id, def]) =>
    limit.run(async () => {
      const why = missingCredentials(o, id, def);
      if (why) return skip(o, report, id, why);
      o.progress?.(id, 'searching');
      try {
        const res = await withinDeadline(o, (signal) => def.discover!(discoverContext(o, id, def, pacer, signal)));
        if (!res) return skip(o, report, id, `did not finish within ${Math.round(o.providerDeadlineMs / 1000)} s: not searched`);
        report.searched.push({ provider: id, scope: res.scope, count: res.count });
        for (const p of res.places) classify(o, report, id, p);
        o.progress?.(id, 'searched', res.scope);
      } catch (err) {
        skip(o, report, id, reasonOf(err));
      }
    }),
  );
  if (o.dirs.length) searches.push(searchFiles(o, report));
  await Promise.all(searches);
  report.found.sort(byLocation);
  report.otherKeys.sort(byLocation);
  report.searched.sort((a, b) => a.provider.localeCompare(b.provider));
  report.skipped.sort((a, b) => a.provider.localeCompare(b.provider));
  return report;
}

/** The definitions of the types that can list their provider (plan's pass: those the inventory uses), loaded. */
async function providersToSearch(o: DiscoverOptions): Promise<Array<[string, TargetDefinition<any>]>> {
  const used = new Set(searchedWith(o).map((t) => t.type));
  const ids = REGISTERED_IDS.filter((id) => targetType(id)?.discover && (!o.inventoryTypesOnly || used.has(id)));
  return [...(await loadTargetDefinitions(ids))];
}

/**
 * The targets whose configs (credentials, endpoints) the search uses: every environment's for the
 * full search, only this environment's for the quick one (another environment's provider, a
 * Docker Engine say, is not contacted by `plan -e local`).
 */
function searchedWith(o: DiscoverOptions) {
  return o.inventoryTypesOnly ? o.env.targets : [...o.inventory.environments.values()].flatMap((e) => e.targets);
}

function configsOf(o: DiscoverOptions, id: string): Array<CommonTargetConfig & Record<string, unknown>> {
  return searchedWith(o)
    .filter((t) => t.type === id)
    .map((t) => t.config);
}

/** A type the inventory does not use, whose ecosystem variables are not set either: nothing to search with. */
function missingCredentials(o: DiscoverOptions, id: string, def: TargetDefinition<any>): string | undefined {
  // keyrot's own variables (KEYROT_…) are not how a provider's users sign in: Azure's usual way is
  // DefaultAzureCredential, and its discover says itself what it needs (a vault to search).
  const usual = (def.credentialEnv ?? []).filter((v) => !v.startsWith('KEYROT_'));
  if (configsOf(o, id).length || !usual.length) return undefined;
  if (usual.some((v) => o.processEnv[v])) return undefined;
  return `no credentials: set ${usual.join(' or ')}, or list a ${id} target in targets.yaml`;
}

function discoverContext(o: DiscoverOptions, id: string, def: TargetDefinition<any>, pacer: Pacer, signal: AbortSignal) {
  const limits = pacingOf(def);
  return {
    baseDir: o.inventory.baseDir,
    varName: o.env.key.name,
    varNames: [...new Set([o.env.key.name, ...o.env.targets.flatMap((t) => (t.config.var ? [t.config.var] : []))])],
    env: o.processEnv,
    clock: o.clock,
    logger: o.logger,
    resolve: (ref: Parameters<typeof resolveCredential>[0]) => resolveCredential(ref, o.inventory.baseDir, o.processEnv),
    // One lane per provider; most keys already start with the type, which a notice need not say twice.
    lane: (key: string) => pacer.lane(key.startsWith(`${id}:`) ? key : `${id}:${key}`, limits),
    configs: configsOf(o, id),
    signal,
  };
}

/** Runs `fn` until it ends or the provider's deadline passes (then undefined, and `fn` is aborted). */
async function withinDeadline(o: DiscoverOptions, fn: (signal: AbortSignal) => Promise<DiscoverResult>): Promise<DiscoverResult | undefined> {
  const stop = new AbortController();
  const timer = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, stop.signal]) : stop.signal;
  const late = o.clock.sleep(o.providerDeadlineMs, timer.signal).then(
    () => undefined,
    () => undefined,
  );
  const work = fn(signal);
  try {
    const res = await Promise.race([work, late.then(() => 'late' as const)]);
    if (res !== 'late') return res;
    stop.abort();
    work.catch(() => {});
    return undefined;
  } finally {
    timer.abort();
  }
}

function skip(o: DiscoverOptions, report: DiscoveryReport, provider: string, reason: string): void {
  report.skipped.push({ provider, reason });
  o.progress?.(provider, 'skipped', reason);
}

/** Why a provider could not be searched, in the words of its error (already redacted by the adapters). */
function reasonOf(err: unknown): string {
  const e = toTargetError(err, undefined, 'discover');
  const msg = redact(e.message);
  if (e.kind === 'auth' || e.kind === 'permission') return `credentials missing or refused: ${msg}`;
  if (e.kind === 'unavailable' || e.kind === 'timeout' || e.kind === 'rate-limited') return `unreachable: ${msg}`;
  return msg;
}

/** Sorts one place into found, other keys or unreadable, comparing values in memory only. */
function classify(o: DiscoverOptions, report: DiscoveryReport, type: string, p: DiscoveredPlace | TreePlace): void {
  const h = p.holds;
  if (h.kind === 'value') {
    if (h.value.fingerprint === o.key.fingerprint) return addFound(o, report, type, p);
    if (keyFormat(h.value.reveal())) report.otherKeys.push({ type, location: p.location, hint: h.value.hint, fingerprint: h.value.fingerprint });
    return;
  }
  if (h.kind !== 'unreadable') return;
  const matches = 'matches' in p ? p.matches : undefined;
  if (matches) {
    if (matches(o.key)) addFound(o, report, type, p);
    return;
  }
  report.skipped.push({ provider: type, reason: `${p.location}: its value cannot be read back (write-only): not compared` });
}

function addFound(o: DiscoverOptions, report: DiscoveryReport, type: string, p: DiscoveredPlace | TreePlace): void {
  // A key inside a file no target type rewrites is still in the inventory when a target writes that file.
  const entry = p.target ?? { type: 'file', path: 'file' in p ? p.file : '' };
  if (report.found.some((f) => f.type === type && f.location === p.location)) return;
  // A place no target type can rotate (a field inside a JSON secret) gets no entry to paste.
  const rotatable = !('notRotatable' in p && p.notRotatable);
  report.found.push({ type, location: p.location, inInventory: inInventory(entry, o.env, o.inventory.baseDir), target: rotatable ? p.target : null });
}

/** The local files the environment's targets write (read even where .gitignore hides them). */
function inventoryFiles(o: DiscoverOptions): string[] {
  return o.env.targets.flatMap((t) => localFileOf(t, o.inventory.baseDir) ?? []);
}

async function searchFiles(o: DiscoverOptions, report: DiscoveryReport): Promise<void> {
  o.progress?.(FILES, 'searching');
  try {
    const res = await searchTree(o.dirs, { baseDir: o.inventory.baseDir, varName: o.env.key.name, isKey: (fp) => fp === o.key.fingerprint, files: inventoryFiles(o), signal: o.signal });
    const scope = `${res.files} key, .env and config file${res.files === 1 ? '' : 's'} of ${o.dirs.length} director${o.dirs.length === 1 ? 'y' : 'ies'}${res.truncated ? ' (bounded: stopped early)' : ''}`;
    report.searched.push({ provider: FILES, scope, count: res.files });
    for (const p of res.places) classify(o, report, p.target ? String(p.target.type) : 'file', p);
    o.progress?.(FILES, 'searched', scope);
  } catch (err) {
    skip(o, report, FILES, (err as Error).message);
  }
}

const byLocation = (a: { type: string; location: string }, b: { type: string; location: string }) =>
  a.type.localeCompare(b.type) || a.location.localeCompare(b.location);
