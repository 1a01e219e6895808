import { SSMClient } from '@aws-sdk/client-ssm';
import { plural } from '../../render/plural.ts';
import { Secret } from '../../core/secret.ts';
import { awsRateLimitKey, awsSetup, envRegion } from '../aws-client.ts';
import { asDiscoverAuth, laneOf, matchesVarName } from '../common.ts';
import { paced } from '../discovery.ts';
import type { CommonTargetConfig, DiscoverContext, DiscoverResult, DiscoveredPlace } from '../types.ts';
import { PARAMETER_STORE } from './errors.ts';
import { awsSsmParameter } from './index.ts';
import { parametersByPath } from './store.ts';

/** At most this many GetParametersByPath pages (10 parameters each) per region and path. */
export const MAX_PAGES = 100;

interface Source {
  region: string | undefined;
  config: CommonTargetConfig;
  paths: string[];
}

/**
 * `keyrot discover`: every parameter under `/` (or the `paths` a caller gives) in each region the
 * inventory's aws-ssm-parameter targets use (else AWS_REGION), read with decryption, whose last
 * name segment is one of the variables. Read-only; bounded to MAX_PAGES pages per region.
 */
export async function discoverSsmParameters(ctx: DiscoverContext): Promise<DiscoverResult> {
  const places: DiscoveredPlace[] = [];
  const scopes: string[] = [];
  let count = 0;
  for (const source of sourcesOf(ctx)) {
    for (const path of source.paths) {
      const found = await searchPath(ctx, source, path);
      count += found.count;
      places.push(...found.places);
      scopes.push(`${plural(found.count, 'parameter')} under ${path} in ${source.region ?? 'the default region'}${found.truncated ? ` (first ${MAX_PAGES * 10} only)` : ''}`);
    }
  }
  return { scope: scopes.join('; '), count, places };
}

/** One search per distinct region and endpoint among the inventory's targets. */
function sourcesOf(ctx: DiscoverContext): Source[] {
  const configs = ctx.configs.length ? ctx.configs : [{}];
  const seen = new Map<string, Source>();
  for (const c of configs) {
    const region = (typeof c.region === 'string' ? c.region : undefined) ?? envRegion(ctx.env);
    const paths = Array.isArray(c.paths) && c.paths.length ? c.paths.map(String) : ['/'];
    const key = `${region ?? ''}|${c.endpoint ?? ''}`;
    const prev = seen.get(key);
    if (prev) prev.paths = [...new Set([...prev.paths, ...paths])];
    else seen.set(key, { region, config: { endpoint: c.endpoint, requestTimeout: c.requestTimeout }, paths });
  }
  return [...seen.values()];
}

async function searchPath(ctx: DiscoverContext, source: Source, path: string): Promise<{ count: number; places: DiscoveredPlace[]; truncated: boolean }> {
  const aws = awsSetup(PARAMETER_STORE, source.config, ctx.env, source.region);
  const client = new SSMClient(aws.clientConfig);
  // The lane a rotation of these parameters would use: the account's `get` rate per region.
  const lane = laneOf(ctx, awsRateLimitKey(awsSsmParameter.id, aws, ctx.env), awsSsmParameter);
  const places: DiscoveredPlace[] = [];
  let count = 0;
  let next: string | undefined;
  let pages = 0;
  try {
    do {
      const page = await paced(ctx, () => parametersByPath(client, aws, lane, path, next, ctx.signal)).catch(asDiscoverAuth);
      for (const p of page.Parameters ?? []) {
        count++;
        if (!p.Name || !matchesVarName(p.Name, ctx.varNames)) continue;
        const target = { type: 'aws-ssm-parameter', parameter: p.Name, ...(source.region ? { region: source.region } : {}), ...(source.config.endpoint ? { endpoint: source.config.endpoint } : {}) };
        places.push({ location: p.Name, target, holds: p.Value ? { kind: 'value', value: new Secret(p.Value) } : { kind: 'absent' } });
      }
      next = page.NextToken || undefined;
    } while (next && ++pages < MAX_PAGES);
  } finally {
    client.destroy();
  }
  return { count, places, truncated: Boolean(next) };
}
