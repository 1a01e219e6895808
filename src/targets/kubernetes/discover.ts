import type * as K8s from '@kubernetes/client-node';
import { plural } from '../../render/plural.ts';
import { TargetError } from '../../core/errors.ts';
import { Secret } from '../../core/secret.ts';
import { asDiscoverAuth, matchesVarName } from '../common.ts';
import { paced } from '../discovery.ts';
import type { DiscoverContext, DiscoverResult, DiscoveredPlace } from '../types.ts';
import { Cluster } from './cluster.ts';

/** At most this many list pages (100 Secrets each) per context, and per namespace when listed one by one. */
export const MAX_PAGES = 50;

/**
 * Secret types that never hold an application's key: service-account tokens, and Helm's release
 * records (a gzipped manifest under `release`) (kubernetes.io/docs/concepts/configuration/secret/#secret-types).
 */
const SKIPPED_TYPES = new Set(['kubernetes.io/service-account-token', 'helm.sh/release.v1']);

interface Source {
  /** The kubeconfig context as targets.yaml names it (undefined: the current context). */
  context: string | undefined;
  /** The namespaces the inventory's targets use: searched one by one when listing all namespaces is denied. */
  namespaces: Set<string>;
  requestTimeout: string | number | undefined;
}

interface Listing {
  secrets: K8s.V1Secret[];
  truncated: boolean;
}

/**
 * `keyrot discover`: every Secret the credentials may list in each kubeconfig context of the
 * inventory's kubernetes targets (else the current context): across all namespaces when a
 * ClusterRole allows it, else in the namespaces the targets name (or the context's namespace);
 * each data key named like a variable is a place. Read-only: list calls only.
 */
export async function discoverKubernetes(ctx: DiscoverContext): Promise<DiscoverResult> {
  const k8s = await import('@kubernetes/client-node');
  const places: DiscoveredPlace[] = [];
  const scopes: string[] = [];
  let count = 0;
  for (const source of sourcesOf(ctx)) {
    const cluster = new Cluster(k8s, { namespace: 'default', secret: '-', context: source.context, requestTimeout: source.requestTimeout }, { ...ctx, name: 'discover' }, undefined);
    let contextName: string;
    try {
      contextName = cluster.context();
    } catch (err) {
      throw new TargetError((err as Error).message, { op: 'discover', kind: 'auth', retryable: false, cause: err });
    }
    const { listing, where } = await searchContext(ctx, cluster, source, contextName);
    count += listing.secrets.length;
    places.push(...listing.secrets.flatMap((s) => placesIn(s, source, ctx)));
    scopes.push(`${plural(listing.secrets.length, 'secret')} ${where}${listing.truncated ? ' (bounded: not every page was listed)' : ''}`);
  }
  return { scope: scopes.join('; '), count, places };
}

function sourcesOf(ctx: DiscoverContext): Source[] {
  const seen = new Map<string, Source>();
  for (const c of ctx.configs.length ? ctx.configs : [{}]) {
    const context = typeof c.context === 'string' ? c.context : undefined;
    const source = seen.get(context ?? '') ?? { context, namespaces: new Set<string>(), requestTimeout: c.requestTimeout };
    if (typeof c.namespace === 'string') source.namespaces.add(c.namespace);
    seen.set(context ?? '', source);
  }
  return [...seen.values()];
}

/** All namespaces, or, when that is denied, the namespaces the credentials may list one by one. */
async function searchContext(ctx: DiscoverContext, cluster: Cluster, source: Source, contextName: string): Promise<{ listing: Listing; where: string }> {
  try {
    return { listing: await listAll(ctx, cluster, undefined), where: `in all namespaces of context ${contextName}` };
  } catch (err) {
    if (!(err instanceof TargetError) || err.kind !== 'permission') throw asDiscoverAuth(err);
  }
  const namespaces = source.namespaces.size ? [...source.namespaces] : [cluster.contextNamespace() ?? 'default'];
  const listing: Listing = { secrets: [], truncated: false };
  const denied: string[] = [];
  for (const ns of namespaces) {
    try {
      const one = await listAll(ctx, cluster, ns);
      listing.secrets.push(...one.secrets);
      listing.truncated ||= one.truncated;
    } catch (err) {
      if (!(err instanceof TargetError) || err.kind !== 'permission') throw err;
      denied.push(ns);
    }
  }
  if (denied.length === namespaces.length) {
    throw new TargetError(
      `Kubernetes denied listing secrets in context ${contextName}, in all namespaces and in ${namespaces.join(', ')}: grant "list" on secrets (a ClusterRole, or a Role in each namespace) to the identity keyrot runs as`,
      { op: 'discover', kind: 'auth', retryable: false },
    );
  }
  const searched = namespaces.filter((ns) => !denied.includes(ns));
  const note = `listing all namespaces was denied${denied.length ? `; listing ${denied.join(', ')} too` : ''}`;
  return { listing, where: `in namespace${searched.length > 1 ? 's' : ''} ${searched.join(', ')} of context ${contextName} (${note})` };
}

async function listAll(ctx: DiscoverContext, cluster: Cluster, namespace: string | undefined): Promise<Listing> {
  const secrets: K8s.V1Secret[] = [];
  let cont: string | undefined;
  let pages = 0;
  do {
    const page = await paced(ctx, () => cluster.listSecrets(namespace, cont, ctx.signal));
    secrets.push(...page.items);
    cont = page.metadata?._continue || undefined;
  } while (cont && ++pages < MAX_PAGES);
  return { secrets, truncated: Boolean(cont) };
}

/**
 * The variables, and the data keys the inventory's Kubernetes targets name (`key: api-key`): a
 * Secret the inventory stores under its own key name holds the key there in other Secrets too.
 */
function namesOfInterest(ctx: DiscoverContext): string[] {
  const keys = ctx.configs.map((c) => c.key).filter((k): k is string => typeof k === 'string');
  return [...new Set([...ctx.varNames, ...keys])];
}

/** The data keys of one Secret named like a variable, each a place holding its decoded value. */
function placesIn(s: K8s.V1Secret, source: Source, ctx: DiscoverContext): DiscoveredPlace[] {
  const namespace = s.metadata?.namespace;
  const name = s.metadata?.name;
  if (!namespace || !name || SKIPPED_TYPES.has(s.type ?? '')) return [];
  return Object.entries(s.data ?? {})
    .filter(([key]) => matchesVarName(key, namesOfInterest(ctx)))
    .flatMap(([key, raw]) => {
      const value = Buffer.from(raw ?? '', 'base64').toString('utf8');
      if (!value) return [];
      // `key:` defaults to the target's variable: written only when it differs, so the entry
      // compares equal to an inventory target that leaves it out.
      const target = { type: 'kubernetes', namespace, secret: name, ...(key !== ctx.varName ? { key } : {}), ...(source.context ? { context: source.context } : {}) };
      const location = `${source.context ? `${source.context}:` : ''}${namespace}/${name}[${key}]`;
      return [{ location, target, holds: { kind: 'value' as const, value: new Secret(value) } }];
    });
}
