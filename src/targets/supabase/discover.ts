import { laneOf, lazyCredential } from '../common.ts';
import { tokenRateLimitKey } from '../token-client.ts';
import { discoveryAccess, entryFor, paced, type DiscoveryAccess } from '../discovery.ts';
import type { DiscoverContext, DiscoverResult, DiscoveredPlace } from '../types.ts';
import { supabase } from './index.ts';
import { unreadable } from './adapter.ts';
import { TOKEN_HELP, holdsValue, supabaseClient } from './client.ts';

/**
 * `keyrot discover` for Supabase: every project the token reaches (`GET /v1/projects`) and, in
 * each, the Edge Function secrets named like a variable of interest. Values are write-only: each
 * place is `unreadable`, and `matches(key)` compares the listed SHA-256 digest in memory.
 */
export async function discoverSupabase(ctx: DiscoverContext): Promise<DiscoverResult> {
  const places: DiscoveredPlace[] = [];
  let projects = 0;
  for (const access of discoveryAccess(ctx, ['SUPABASE_ACCESS_TOKEN'])) {
    const found = await searchWith(ctx, access);
    projects += found.projects;
    places.push(...found.places);
  }
  return { scope: `${projects} Supabase project${projects === 1 ? '' : 's'} the access token reaches`, count: projects, places };
}

async function searchWith(ctx: DiscoverContext, access: DiscoveryAccess): Promise<{ projects: number; places: DiscoveredPlace[] }> {
  const credName = access.token.kind === 'env' ? access.token.name : access.token.raw;
  const api = supabaseClient({
    endpoint: access.endpoint,
    credential: lazyCredential({ ...ctx, name: 'supabase' }, access.token, (m) => `Supabase access token: ${m} (${TOKEN_HELP})`),
    credName,
    // The lane a rotation with this token uses.
    lane: laneOf(ctx, tokenRateLimitKey('supabase', access.endpoint, credName), supabase),
    clock: ctx.clock,
    target: 'supabase',
  });
  const projects = await paced(ctx, () => api.projects('discover', ctx.signal));
  const places: DiscoveredPlace[] = [];
  for (const p of projects) {
    const secrets = await paced(ctx, () => api.secrets(p.ref, 'discover', ctx.signal));
    for (const name of ctx.varNames) {
      const entry = secrets.find((s) => s.name === name);
      if (!entry) continue;
      places.push({
        location: `supabase project ${p.ref}${p.name ? ` (${p.name})` : ''} secret ${name}`,
        target: entryFor('supabase', { project: p.ref }, name, ctx, access),
        holds: unreadable(name, p.ref),
        matches: (value) => holdsValue(entry, value),
      });
    }
  }
  return { projects: projects.length, places };
}
