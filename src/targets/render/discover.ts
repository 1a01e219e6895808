import { Secret } from '../../core/secret.ts';
import { laneOf, lazyCredential } from '../common.ts';
import { tokenRateLimitKey } from '../token-client.ts';
import { discoveryAccess, entryFor, paced, type DiscoveryAccess } from '../discovery.ts';
import type { DiscoverContext, DiscoverResult, DiscoveredPlace } from '../types.ts';
import { render } from './index.ts';
import { KEY_HELP, renderClient, type RenderService } from './client.ts';

/**
 * `keyrot discover` for Render: every service the API key reaches (`GET /services`, all pages)
 * and, in each, the variables named like one of interest (`GET /services/{id}/env-vars`, all
 * pages). Render variables are readable: each place holds its value, compared by fingerprint.
 */
export async function discoverRender(ctx: DiscoverContext): Promise<DiscoverResult> {
  const places: DiscoveredPlace[] = [];
  let services = 0;
  for (const access of discoveryAccess(ctx, ['RENDER_API_KEY'])) {
    const found = await searchWith(ctx, access);
    services += found.services;
    places.push(...found.places);
  }
  return { scope: `${services} Render service${services === 1 ? '' : 's'} the API key reaches`, count: services, places };
}

async function searchWith(ctx: DiscoverContext, access: DiscoveryAccess): Promise<{ services: number; places: DiscoveredPlace[] }> {
  const credName = access.token.kind === 'env' ? access.token.name : access.token.raw;
  const api = renderClient({
    endpoint: access.endpoint,
    credential: lazyCredential({ ...ctx, name: 'render' }, access.token, (m) => `Render API key: ${m} (${KEY_HELP})`),
    credName,
    // The lane a rotation with this token uses.
    lane: laneOf(ctx, tokenRateLimitKey('render', access.endpoint, credName), render),
    clock: ctx.clock,
    target: 'render',
  });
  const services = await paced(ctx, () => api.all<{ service?: RenderService }>('discover', '/services', ctx.signal));
  const places: DiscoveredPlace[] = [];
  for (const { service } of services) {
    if (!service?.id) continue;
    const vars = await paced(ctx, () => api.all<{ envVar?: { key?: string; value?: unknown } }>('discover', `/services/${encodeURIComponent(service.id)}/env-vars`, ctx.signal));
    for (const name of ctx.varNames) {
      const v = vars.find((x) => x.envVar?.key === name)?.envVar?.value;
      if (typeof v !== 'string' || v === '') continue;
      places.push({
        location: `render service ${service.name && service.name !== service.id ? `${service.name} (${service.id})` : service.id} ${name}`,
        target: entryFor('render', { service: service.id }, name, ctx, access),
        holds: { kind: 'value', value: new Secret(v) },
      });
    }
  }
  return { services: services.length, places };
}
