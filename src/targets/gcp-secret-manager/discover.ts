import type { SecretManagerServiceClient } from '@google-cloud/secret-manager';
import { TargetError } from '../../core/errors.ts';
import { Secret } from '../../core/secret.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import { asDiscoverAuth, laneOf, matchesVarName } from '../common.ts';
import { paced } from '../discovery.ts';
import { StoreSearch, resultOf, valuesOfInterest } from '../secret-values.ts';
import { waitTimeoutMs, type CommonTargetConfig, type DiscoverContext, type DiscoverResult, type DiscoveredPlace } from '../types.ts';
import { makeClient, parseEndpoint, projectRateLimitKey } from './client.ts';
import { gcpSecretManager } from './index.ts';
import { GcpVersions, decode } from './versions.ts';

/** At most this many ListSecrets pages (100 secrets each) per project. */
export const MAX_PAGES = 50;

/** Where the project comes from when the inventory has no gcp-secret-manager target (the gcloud/ADC variables). */
const PROJECT_ENV = ['GOOGLE_CLOUD_PROJECT', 'CLOUDSDK_CORE_PROJECT', 'GCLOUD_PROJECT'];

const NOT_ROTATABLE = 'a field inside a JSON secret: the gcp-secret-manager target writes whole values, so move the key into a secret of its own to rotate it';

interface Source {
  project: string;
  config: CommonTargetConfig;
}

/**
 * `keyrot discover`: every secret ListSecrets shows in each project of the inventory's
 * gcp-secret-manager targets (else GOOGLE_CLOUD_PROJECT), with the same credentials and endpoint;
 * the latest version read when the secret id is one of the variables, or, up to MAX_OTHER_READS
 * (secret-values.ts) per project, to find the fields of a JSON payload named like one. Read-only.
 */
export async function discoverGcpSecrets(ctx: DiscoverContext): Promise<DiscoverResult> {
  const searches: Array<{ where: string; search: StoreSearch }> = [];
  for (const source of sourcesOf(ctx)) searches.push({ where: `of project ${source.project}`, search: await searchProject(ctx, source) });
  return resultOf(searches);
}

function sourcesOf(ctx: DiscoverContext): Source[] {
  const seen = new Map<string, Source>();
  for (const c of ctx.configs) {
    if (typeof c.project !== 'string') continue;
    const key = `${c.project}|${c.endpoint ?? ''}|${c.token?.raw ?? ''}`;
    if (!seen.has(key)) seen.set(key, { project: c.project, config: { endpoint: c.endpoint, token: c.token, requestTimeout: c.requestTimeout } });
  }
  if (seen.size) return [...seen.values()];
  const project = PROJECT_ENV.map((v) => ctx.env[v]).find(Boolean);
  if (!project) {
    throw new TargetError(`no Google Cloud project to search: list a gcp-secret-manager target in targets.yaml, or set ${PROJECT_ENV[0]}`, { op: 'discover', kind: 'auth', retryable: false });
  }
  return [{ project, config: {} }];
}

async function searchProject(ctx: DiscoverContext, source: Source): Promise<StoreSearch> {
  const found = new StoreSearch(MAX_PAGES * 100);
  // The inventory's own secrets in this project are read whatever their name (`prod-openai`).
  const listed = new Set(ctx.configs.filter((c) => c.project === source.project && typeof c.secret === 'string').map((c) => c.secret as string));
  const timeoutMs = waitTimeoutMs(source.config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS);
  const endpoint = source.config.endpoint ? parseEndpoint(source.config.endpoint) : undefined;
  const clientP = makeClient({ project: source.project, secret: '-', ...source.config }, ctx, endpoint, timeoutMs).catch(asDiscoverAuth);
  const client = () => clientP;
  const endpointText = endpoint ? `${endpoint.protocol}://${endpoint.host}:${endpoint.port}` : 'secretmanager.googleapis.com';
  // The lane a rotation in this project uses: the project's read and access quotas.
  const lane = laneOf(ctx, projectRateLimitKey(endpointText, source.project), gcpSecretManager);
  const facts = (parent: string) => ({
    target: 'discover',
    parent,
    credential: source.config.token ? `token ${source.config.token.raw}` : 'Application Default Credentials',
    endpointText,
    timeoutMs,
    now: () => ctx.clock.now(),
    lane,
  });
  const project = new GcpVersions(client, facts(`projects/${source.project}`));
  let pageToken: string | undefined;
  let pages = 0;
  try {
    do {
      const [secrets, , resp] = await paced(ctx, () =>
        project.call('discover', 'secretmanager.secrets.list', (c) => c.listSecrets({ parent: `projects/${source.project}`, pageSize: 100, pageToken }, { retry: null, autoPaginate: false }), ctx.signal),
      ).catch(asDiscoverAuth);
      for (const s of secrets) {
        const id = s.name?.split('/secrets/')[1] ?? '';
        const named = matchesVarName(id, ctx.varNames) || listed.has(id);
        if (id && found.take(named)) found.places.push(...(await placesOf(ctx, source, new GcpVersions(client, facts(`projects/${source.project}/secrets/${id}`)), id, named)));
      }
      pageToken = resp?.nextPageToken || undefined;
    } while (pageToken && ++pages < MAX_PAGES);
    found.truncated = Boolean(pageToken);
  } finally {
    await clientP.then((c: SecretManagerServiceClient) => c.close(), () => undefined);
  }
  return found;
}

/**
 * The places one secret gives, from its latest version (what consumers of `latest` read). A
 * secret named like a variable that cannot be read (denied, latest version disabled) is still a
 * place, unreadable with the reason; any other denied secret is passed over.
 */
async function placesOf(ctx: DiscoverContext, source: Source, versions: GcpVersions, id: string, named: boolean): Promise<DiscoveredPlace[]> {
  const location = `projects/${source.project}/secrets/${id}`;
  const target = { type: 'gcp-secret-manager', project: source.project, secret: id, ...(source.config.endpoint ? { endpoint: source.config.endpoint } : {}), ...(source.config.token ? { token: source.config.token.raw } : {}) };
  // access() answers failures as outcomes: the transient ones are thrown so they are retried.
  const r = await paced(ctx, async () => {
    const o = await versions.access('latest', 'discover', ctx.signal);
    if (!o.ok && o.error.retryable) throw o.error;
    return o;
  });
  if (!r.ok) {
    if (r.status === 'NOT_FOUND') return []; // no version yet
    if (r.status !== 'PERMISSION_DENIED' && r.status !== 'FAILED_PRECONDITION') throw r.error;
    return named ? [{ location, target, holds: { kind: 'unreadable', reason: r.error.message } }] : [];
  }
  return valuesOfInterest(decode(r.value.data), named, ctx.varNames).map(({ field, value }) => ({
    location: `${location}${field ? `[${field}]` : ''}`,
    // `field:` is not a field of this type: the inventory refuses the entry if it is pasted anyway.
    target: field ? { ...target, field } : target,
    holds: { kind: 'value', value: new Secret(value) },
    ...(field ? { notRotatable: NOT_ROTATABLE } : {}),
  }));
}
