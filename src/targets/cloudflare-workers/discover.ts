import { TargetError } from '../../core/errors.ts';
import { plural } from '../../render/plural.ts';
import type { CredentialRef } from '../../inventory/credentials.ts';
import { withRetry } from '../../runtime/retry.ts';
import type { DiscoverContext, DiscoveredPlace, DiscoverResult } from '../types.ts';
import { createWorkersClient, type WorkersClient } from './client.ts';
import { workerApi } from './worker.ts';

/**
 * `keyrot discover` for Cloudflare: every Worker of the accounts the inventory names (or, when it
 * names none, every account the token reaches: `GET /accounts`) whose secrets include one of the
 * variables (`GET …/workers/scripts`, then each script's `GET …/secrets`: names only). Values
 * are write-only: every place `holds` is `unreadable`. Bounded: MAX_SCRIPTS Workers per account.
 */

export const MAX_SCRIPTS = 200;

interface CredentialSet {
  endpoint?: string;
  token?: CredentialRef;
  requestTimeout?: string | number;
  accounts: Set<string>;
}

export async function discoverCloudflareWorkers(ctx: DiscoverContext): Promise<DiscoverResult> {
  const places: DiscoveredPlace[] = [];
  const scopes: string[] = [];
  let count = 0;
  for (const creds of credentialSets(ctx)) {
    const client = createWorkersClient(creds, { ...ctx, name: 'discover:cloudflare-workers' });
    const accounts = creds.accounts.size ? [...creds.accounts] : await listAccounts(client, ctx);
    let more = false;
    for (const account of accounts) {
      const scripts = await listScripts(client, account, ctx);
      more ||= scripts.length > MAX_SCRIPTS;
      for (const script of scripts.slice(0, MAX_SCRIPTS)) {
        count++;
        places.push(...(await placesIn(client, creds, account, script, ctx)));
      }
    }
    scopes.push(`${plural(count, 'Worker')} of ${plural(accounts.length, 'Cloudflare account')} (${client.credName})${more ? ` (stopped at ${MAX_SCRIPTS} per account)` : ''}`);
  }
  return { scope: scopes.join('; '), count, places };
}

/** One search per distinct endpoint + token among the inventory's cloudflare-workers targets (the defaults when none). */
function credentialSets(ctx: DiscoverContext): CredentialSet[] {
  const sets = new Map<string, CredentialSet>();
  for (const c of ctx.configs.length ? ctx.configs : [{}]) {
    const key = `${c.endpoint ?? ''} ${c.token?.raw ?? ''}`;
    const set = sets.get(key) ?? { endpoint: c.endpoint, token: c.token, requestTimeout: c.requestTimeout, accounts: new Set() };
    if (typeof c.account === 'string') set.accounts.add(c.account);
    sets.set(key, set);
  }
  return [...sets.values()];
}

/** A read retried like a rotation's calls (rate limits, 5xx); a rejected token ends the provider's search. */
function retried<T>(ctx: DiscoverContext, fn: () => Promise<T>): Promise<T> {
  return withRetry(fn, { clock: ctx.clock, signal: ctx.signal });
}

async function listAccounts(client: WorkersClient, ctx: DiscoverContext): Promise<string[]> {
  const about = { subject: 'the accounts of the token', notFound: 'the token lists no account' };
  return retried(ctx, () =>
    client.call('discover', about, async (cf, s) => {
      const ids: string[] = [];
      for await (const a of cf.accounts.list({ per_page: 50 }, { signal: s })) ids.push(a.id);
      return ids;
    }, ctx.signal),
  );
}

async function listScripts(client: WorkersClient, account: string, ctx: DiscoverContext): Promise<string[]> {
  const about = { subject: `the Workers of account ${account}`, notFound: 'check `account:` in targets.yaml' };
  return retried(ctx, () =>
    client.call('discover', about, async (cf, s) => {
      const names: string[] = [];
      for await (const w of cf.workers.scripts.list({ account_id: account }, { signal: s })) if (w.id) names.push(w.id);
      return names;
    }, ctx.signal),
  );
}

async function placesIn(client: WorkersClient, creds: CredentialSet, account: string, script: string, ctx: DiscoverContext): Promise<DiscoveredPlace[]> {
  const names = await retried(ctx, () => workerApi(client, account, script, '').secrets('discover', ctx.signal)).catch((err: unknown) => {
    // A Worker the token may not read is passed over; a refused token ends the search.
    if (err instanceof TargetError && err.kind === 'not-found') return [];
    throw err;
  });
  return names
    .filter((s) => s.type === 'secret_text' && ctx.varNames.includes(s.name))
    .map((s) => {
      const target: Record<string, unknown> = { type: 'cloudflare-workers', account, script };
      if (s.name !== ctx.varName) target.var = s.name;
      if (creds.endpoint) target.endpoint = creds.endpoint;
      if (creds.token) target.token = creds.token.raw;
      return { location: `${account}/${script}`, target, holds: { kind: 'unreadable', reason: 'Cloudflare Worker secrets are write-only' } };
    });
}
