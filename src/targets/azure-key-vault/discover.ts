import type { SecretProperties } from '@azure/keyvault-secrets';
import { TargetError } from '../../core/errors.ts';
import { Secret } from '../../core/secret.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS, deadlineSignal } from '../../runtime/deadline.ts';
import { asDiscoverAuth, matchesVarName } from '../common.ts';
import { paced } from '../discovery.ts';
import { StoreSearch, resultOf, valuesOfInterest } from '../secret-values.ts';
import { waitTimeoutMs, type CommonTargetConfig, type DiscoverContext, type DiscoverResult, type DiscoveredPlace } from '../types.ts';
import { VaultConnection } from './connection.ts';
import { translateVaultError, type VaultFacts } from './errors.ts';
import { STATIC_TOKEN_ENV } from './index.ts';
import { SecretVersions } from './versions.ts';

/** At most this many Get Secrets pages (25 secrets each, the service's maximum) per vault. */
export const MAX_PAGES = 200;

const NOT_ROTATABLE = 'a field inside a JSON secret: the azure-key-vault target writes whole values, so move the key into a secret of its own to rotate it';

interface Vault {
  /** As targets.yaml writes it (`vault:`), kept in the entries. */
  vault: string;
  url: URL;
  config: CommonTargetConfig;
}

/**
 * `keyrot discover`: every secret Get Secrets lists in each vault of the inventory's
 * azure-key-vault targets (there is no default vault), with the same credential; the latest
 * version read when the secret's name is one of the variables (`openai-api-key`: Key Vault names
 * have no `_`), or, up to MAX_OTHER_READS (secret-values.ts) per vault, to find the fields of a
 * JSON value named like one. Certificate-backed (managed) secrets are skipped. Read-only.
 */
export async function discoverKeyVaults(ctx: DiscoverContext): Promise<DiscoverResult> {
  const searches: Array<{ where: string; search: StoreSearch }> = [];
  for (const v of vaultsOf(ctx)) searches.push({ where: `in vault ${v.url.host}`, search: await searchVault(ctx, v) });
  return resultOf(searches);
}

/** The vault URL a target's config points at (`endpoint:`, else `vault:`), if it is one. */
function vaultUrlOf(c: DiscoverContext['configs'][number]): URL | undefined {
  const raw = (c.endpoint ?? (typeof c.vault === 'string' ? c.vault : '')).replace(/\/+$/, '');
  return URL.canParse(raw) ? new URL(raw) : undefined;
}

function vaultsOf(ctx: DiscoverContext): Vault[] {
  const seen = new Map<string, Vault>();
  for (const c of ctx.configs) {
    const url = vaultUrlOf(c);
    if (!url || typeof c.vault !== 'string') continue;
    const key = `${url.href}|${c.token?.raw ?? ''}`;
    if (!seen.has(key)) seen.set(key, { vault: c.vault, url, config: { endpoint: c.endpoint, token: c.token, requestTimeout: c.requestTimeout } });
  }
  if (!seen.size) {
    throw new TargetError('no Azure Key Vault to search: list an azure-key-vault target (its `vault:` URL) in targets.yaml', { op: 'discover', kind: 'auth', retryable: false });
  }
  return [...seen.values()];
}

function sameVault(c: DiscoverContext['configs'][number], v: Vault): boolean {
  return vaultUrlOf(c)?.href === v.url.href;
}

async function searchVault(ctx: DiscoverContext, v: Vault): Promise<StoreSearch> {
  const found = new StoreSearch(MAX_PAGES * 25);
  // The inventory's own secrets in this vault are read whatever their name (`prod-openai`).
  // Key Vault secret names are case-insensitive.
  const listed = new Set(ctx.configs.filter((c) => typeof c.secret === 'string' && sameVault(c, v)).map((c) => (c.secret as string).toLowerCase()));
  const named = { ...ctx, name: 'discover' };
  const conn = new VaultConnection({ vault: v.vault, secret: '-', ...v.config }, named, v.url.origin, v.url);
  const facts = (secretName: string): VaultFacts => ({
    target: 'discover',
    host: v.url.host,
    hostname: v.url.hostname,
    secretName,
    where: `secret ${secretName} in vault ${v.url.host}`,
    timeoutMs: waitTimeoutMs(v.config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS),
    clock: ctx.clock,
    staticToken: () => (conn.usesStaticToken ? (v.config.token?.raw ?? `env:${STATIC_TOKEN_ENV}`) : undefined),
  });
  try {
    // The whole listing is retried on a transient failure: the SDK's pages do not hand out their
    // continuation token (mapPagedAsyncIterable maps each page into a new array), so a page cannot be resumed.
    const listing = await paced(ctx, () => listSecrets(conn, facts('-'), ctx.signal)).catch((err: unknown) => asDiscoverAuth(listRefusal(err, v)));
    found.truncated = listing.truncated;
    for (const p of listing.items) {
      const isNamed = matchesVarName(p.name, ctx.varNames) || listed.has(p.name.toLowerCase());
      if (p.managed) {
        found.listed++; // a certificate's secret: rotated with the certificate, never here
        continue;
      }
      if (found.take(isNamed)) found.places.push(...(await placesOf(ctx, v, new SecretVersions(conn, facts(p.name)), p, isNamed)));
    }
  } finally {
    conn.close();
  }
  return found;
}

/**
 * Get Secrets, every page up to MAX_PAGES (names and attributes, never values). Each page has its
 * own deadline: the SDK takes one signal for the whole iteration, so a page's deadline aborts it.
 */
async function listSecrets(conn: VaultConnection, f: VaultFacts, signal?: AbortSignal): Promise<{ items: SecretProperties[]; truncated: boolean }> {
  const items: SecretProperties[] = [];
  const stop = new AbortController();
  let page = deadlineSignal(f.timeoutMs, signal);
  const abort = () => stop.abort(page.reason);
  page.addEventListener('abort', abort);
  try {
    const client = await conn.client();
    for await (const secrets of client.listPropertiesOfSecrets({ abortSignal: stop.signal }).byPage({ maxPageSize: 25 })) {
      items.push(...secrets);
      if (items.length >= MAX_PAGES * 25) return { items, truncated: true };
      page.removeEventListener('abort', abort);
      page = deadlineSignal(f.timeoutMs, signal);
      page.addEventListener('abort', abort);
    }
    return { items, truncated: false };
  } catch (err) {
    throw translateVaultError(err, 'discover', 'list', f);
  } finally {
    page.removeEventListener('abort', abort);
  }
}

/** A refused list names what to grant on the VAULT (the adapter's message names one secret). */
function listRefusal(err: unknown, v: Vault): unknown {
  if (!(err instanceof TargetError) || err.kind !== 'permission') return err;
  return new TargetError(
    `Azure Key Vault denied listing the secrets of vault ${v.url.host} (Microsoft.KeyVault/vaults/secrets/readMetadata/action): assign "Key Vault Secrets User" on the vault to the identity keyrot runs as, or, on a vault that uses access policies, grant secret permissions List and Get`,
    { op: 'discover', kind: 'permission', retryable: false, cause: err },
  );
}

/**
 * The places one secret gives, from its latest version. A secret named like a variable that
 * cannot be read (disabled, denied) is still a place, unreadable with the reason; any other is
 * passed over.
 */
async function placesOf(ctx: DiscoverContext, v: Vault, versions: SecretVersions, p: SecretProperties, named: boolean): Promise<DiscoveredPlace[]> {
  const location = `${v.url.host}/secrets/${p.name}`;
  const target = { type: 'azure-key-vault', vault: v.vault, secret: p.name, ...(v.config.endpoint ? { endpoint: v.config.endpoint } : {}), ...(v.config.token ? { token: v.config.token.raw } : {}) };
  const unreadable = (reason: string): DiscoveredPlace[] => (named ? [{ location, target, holds: { kind: 'unreadable', reason } }] : []);
  if (p.enabled === false) return unreadable(`the current version of ${p.name} in vault ${v.url.host} is disabled`);
  let latest;
  try {
    latest = await paced(ctx, () => versions.latest('discover', ctx.signal));
  } catch (err) {
    if (err instanceof TargetError && err.kind === 'permission') return unreadable(err.message);
    throw err;
  }
  if (latest.kind === 'disabled') return unreadable(`the current version of ${p.name} in vault ${v.url.host} is disabled`);
  if (latest.kind !== 'value') return [];
  return valuesOfInterest(latest.value, named, ctx.varNames).map(({ field, value }) => ({
    location: `${location}${field ? `[${field}]` : ''}`,
    // `field:` is not a field of this type: the inventory refuses the entry if it is pasted anyway.
    target: field ? { ...target, field } : target,
    holds: { kind: 'value', value: new Secret(value) },
    ...(field ? { notRotatable: NOT_ROTATABLE } : {}),
  }));
}
