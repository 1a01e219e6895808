import type { SecretListEntry } from '@aws-sdk/client-secrets-manager';
import { TargetError } from '../../core/errors.ts';
import { Secret } from '../../core/secret.ts';
import { envRegion } from '../aws-client.ts';
import { asDiscoverAuth, matchesVarName } from '../common.ts';
import { paced } from '../discovery.ts';
import { StoreSearch, resultOf, valuesOfInterest } from '../secret-values.ts';
import type { CommonTargetConfig, DiscoverContext, DiscoverResult, DiscoveredPlace } from '../types.ts';
import { CURRENT, SecretsManagerApi, regionOfArn } from './api.ts';

/** At most this many ListSecrets pages (100 secrets each) per region. */
export const MAX_PAGES = 50;
interface Source {
  region: string | undefined;
  /** The region as targets.yaml writes it (kept in found entries, so they compare equal to the inventory's). */
  written: string | undefined;
  config: CommonTargetConfig;
}

/**
 * `keyrot discover`: every secret ListSecrets shows in each region the inventory's
 * aws-secrets-manager targets use (else AWS_REGION / the SDK's default), its AWSCURRENT value read
 * when its name is one of the variables (the whole SecretString) or, up to MAX_OTHER_READS
 * (secret-values.ts) per region, to find the fields of a JSON SecretString named like one. Read-only.
 */
export async function discoverSecretsManager(ctx: DiscoverContext): Promise<DiscoverResult> {
  const searches: Array<{ where: string; search: StoreSearch }> = [];
  for (const source of sourcesOf(ctx)) searches.push({ where: `in ${source.region ?? 'the default region'}`, search: await searchRegion(ctx, source) });
  return resultOf(searches);
}

/** One search per distinct region and endpoint among the inventory's targets (a secret ARN names its region). */
function sourcesOf(ctx: DiscoverContext): Source[] {
  const configs = ctx.configs.length ? ctx.configs : [{}];
  const seen = new Map<string, Source>();
  for (const c of configs) {
    const written = typeof c.region === 'string' ? c.region : undefined;
    const region = written ?? (typeof c.secret === 'string' ? regionOfArn(c.secret) : undefined) ?? envRegion(ctx.env);
    const key = `${region ?? ''}|${c.endpoint ?? ''}`;
    if (!seen.has(key)) seen.set(key, { region, written, config: { endpoint: c.endpoint, requestTimeout: c.requestTimeout } });
  }
  return [...seen.values()];
}

async function searchRegion(ctx: DiscoverContext, source: Source): Promise<StoreSearch> {
  const found = new StoreSearch(MAX_PAGES * 100);
  // The inventory's own secrets (by name or ARN) are read like a secret named like the variable,
  // whatever their name (`prod/openai`): as discover reads the environment's own local files.
  const listed = new Set(ctx.configs.map((c) => c.secret).filter((x): x is string => typeof x === 'string'));
  // ListSecrets is not on one secret (its IAM resource is `*`): errors name "all secrets (region)".
  const lister = api(ctx, source, 'all secrets');
  try {
    let next: string | undefined;
    let pages = 0;
    do {
      const page = await paced(ctx, () => lister.listPage(next, 'discover', ctx.signal)).catch(asDiscoverAuth);
      for (const s of page.SecretList ?? []) {
        if (!s.Name || !hasCurrent(s)) {
          found.listed++;
          continue;
        }
        const named = matchesVarName(s.Name, ctx.varNames) || listed.has(s.Name) || (s.ARN !== undefined && listed.has(s.ARN));
        if (found.take(named)) found.places.push(...(await placesOf(ctx, source, s, named)));
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
    ...(source.written ? { region: source.written } : {}),
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
  return valuesOfInterest(text, named, ctx.varNames).map(({ field, value }) => ({
    location: `${locationOf(name, source)}${field ? `[${field}]` : ''}`,
    target: entry(field),
    holds: { kind: 'value', value: new Secret(value) },
  }));
}

function locationOf(name: string, source: Source): string {
  return `${name}${source.region ? ` (${source.region})` : ''}`;
}

function api(ctx: DiscoverContext, source: Source, secret: string): SecretsManagerApi {
  return new SecretsManagerApi({ secret, ...(source.region ? { region: source.region } : {}), ...source.config }, { ...ctx, name: 'discover' });
}
