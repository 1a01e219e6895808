import type { SecretListEntry } from '@aws-sdk/client-secrets-manager';
import { TargetError } from '../../core/errors.ts';
import { Secret } from '../../core/secret.ts';
import { envRegion } from '../aws-client.ts';
import { asDiscoverAuth, matchesVarName } from '../common.ts';
import { paced } from '../discovery.ts';
import type { CommonTargetConfig, DiscoverContext, DiscoverResult, DiscoveredPlace } from '../types.ts';
import { CURRENT, SecretsManagerApi, regionOfArn } from './api.ts';

/** At most this many ListSecrets pages (100 secrets each) per region. */
export const MAX_PAGES = 50;
/**
 * Secrets whose NAME is not one of the variables are read (GetSecretValue) only to look for a JSON
 * field named like one, and only this many per region: each read is a billed API call (AWS bills
 * per 10,000 calls) and decrypts with the secret's KMS key. Secrets named like a variable are
 * always read.
 */
export const MAX_OTHER_READS = 100;

interface Source {
  region: string | undefined;
  config: CommonTargetConfig;
}

interface RegionSearch {
  listed: number;
  read: number;
  unread: number;
  truncated: boolean;
  places: DiscoveredPlace[];
}

/**
 * `keyrot discover`: every secret ListSecrets shows in each region the inventory's
 * aws-secrets-manager targets use (else AWS_REGION / the SDK's default), its AWSCURRENT value read
 * when its name is one of the variables (the whole SecretString) or, up to MAX_OTHER_READS per
 * region, to find the fields of a JSON SecretString named like one. Read-only.
 */
export async function discoverSecretsManager(ctx: DiscoverContext): Promise<DiscoverResult> {
  const places: DiscoveredPlace[] = [];
  const scopes: string[] = [];
  let count = 0;
  for (const source of sourcesOf(ctx)) {
    const found = await searchRegion(ctx, source);
    count += found.listed;
    places.push(...found.places);
    const bounds = [
      found.truncated ? `first ${MAX_PAGES * 100} listed only` : '',
      found.unread ? `${found.unread} not named like the variable left unread (at most ${MAX_OTHER_READS} are read for JSON fields)` : '',
    ].filter(Boolean);
    scopes.push(`${found.listed} secrets in ${source.region ?? 'the default region'}, ${found.read} read${bounds.length ? ` (${bounds.join('; ')})` : ''}`);
  }
  return { scope: scopes.join('; '), count, places };
}

/** One search per distinct region and endpoint among the inventory's targets (a secret ARN names its region). */
function sourcesOf(ctx: DiscoverContext): Source[] {
  const configs = ctx.configs.length ? ctx.configs : [{}];
  const seen = new Map<string, Source>();
  for (const c of configs) {
    const region = (typeof c.region === 'string' ? c.region : undefined) ?? (typeof c.secret === 'string' ? regionOfArn(c.secret) : undefined) ?? envRegion(ctx.env);
    const key = `${region ?? ''}|${c.endpoint ?? ''}`;
    if (!seen.has(key)) seen.set(key, { region, config: { endpoint: c.endpoint, requestTimeout: c.requestTimeout } });
  }
  return [...seen.values()];
}

async function searchRegion(ctx: DiscoverContext, source: Source): Promise<RegionSearch> {
  const found: RegionSearch = { listed: 0, read: 0, unread: 0, truncated: false, places: [] };
  // ListSecrets is not on one secret (its IAM resource is `*`): errors name "all secrets (region)".
  const lister = api(ctx, source, 'all secrets');
  let otherReads = 0;
  try {
    let next: string | undefined;
    let pages = 0;
    do {
      const page = await paced(ctx, () => lister.listPage(next, 'discover', ctx.signal)).catch(asDiscoverAuth);
      for (const s of page.SecretList ?? []) {
        found.listed++;
        if (!s.Name || !hasCurrent(s)) continue;
        const named = matchesVarName(s.Name, ctx.varNames);
        if (!named && otherReads >= MAX_OTHER_READS) {
          found.unread++;
          continue;
        }
        if (!named) otherReads++;
        found.read++;
        found.places.push(...(await placesOf(ctx, source, s, named)));
      }
      next = page.NextToken || undefined;
    } while (next && ++pages < MAX_PAGES);
    found.truncated = Boolean(next);
  } finally {
    lister.close();
  }
  return found;
}

/**
 * A secret with no AWSCURRENT version has nothing to read: created without a value, AWS leaves
 * SecretVersionsToStages out of its entry (as DescribeSecret leaves VersionIdsToStages out).
 */
function hasCurrent(s: SecretListEntry): boolean {
  return Object.values(s.SecretVersionsToStages ?? {}).some((l) => l?.includes(CURRENT));
}

/**
 * The places one secret gives: each top-level field of a JSON object named like a variable
 * (`field:`), else the whole SecretString when the secret's name is a variable's. A name match
 * the credentials may not read is still a place (unreadable, with the reason); any other secret
 * denied to them is passed over (a resource policy may hide it from this identity).
 */
async function placesOf(ctx: DiscoverContext, source: Source, s: SecretListEntry, named: boolean): Promise<DiscoveredPlace[]> {
  const name = s.Name!;
  const entry = (field?: string): Record<string, unknown> => ({
    type: 'aws-secrets-manager',
    secret: name,
    ...(source.region ? { region: source.region } : {}),
    ...(field ? { field } : {}),
    ...(source.config.endpoint ? { endpoint: source.config.endpoint } : {}),
  });
  const reader = api(ctx, source, s.ARN ?? name);
  let text: string | undefined;
  try {
    const out = await paced(ctx, () => reader.getValue({ VersionStage: CURRENT }, 'discover', ctx.signal));
    text = out?.SecretString;
  } catch (err) {
    if (!(err instanceof TargetError) || err.kind !== 'permission') throw err;
    return named ? [{ location: locationOf(name, source), target: entry(), holds: { kind: 'unreadable', reason: err.message } }] : [];
  } finally {
    reader.close();
  }
  if (text === undefined) return [];
  const fields = jsonFields(text).filter(([field]) => matchesVarName(field, ctx.varNames));
  if (fields.length) return fields.map(([field, value]) => ({ location: `${locationOf(name, source)}[${field}]`, target: entry(field), holds: { kind: 'value', value: new Secret(value) } }));
  return named && text ? [{ location: locationOf(name, source), target: entry(), holds: { kind: 'value', value: new Secret(text) } }] : [];
}

/** The string fields of a JSON object SecretString ("key/value" secrets); none for any other text. */
function jsonFields(text: string): Array<[string, string]> {
  if (!text.trimStart().startsWith('{')) return [];
  try {
    const parsed: unknown = JSON.parse(text);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return [];
    return Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== '');
  } catch {
    return [];
  }
}

function locationOf(name: string, source: Source): string {
  return `${name}${source.region ? ` (${source.region})` : ''}`;
}

function api(ctx: DiscoverContext, source: Source, secret: string): SecretsManagerApi {
  return new SecretsManagerApi({ secret, ...(source.region ? { region: source.region } : {}), ...source.config }, { ...ctx, name: 'discover' });
}
