import { lazyCredential } from '../common.ts';
import { Secret, fingerprint } from '../../keys/secret.ts';
import { TargetError, toTargetError } from '../../engine/errors.ts';
import { httpJson, type HttpResponse } from '../../engine/http.ts';
import { credentialOrDefault, type CredentialRef } from '../../inventory/credentials.ts';
import { formatDuration, parseDuration } from '../../inventory/duration.ts';
import type { CommonTargetConfig, PreflightResult, ReadResult, Receipt, Target, TargetContext, VerifyResult } from '../types.ts';
import type { NetlifyConfig } from './index.ts';

/**
 * Netlify API (`/api/v1`), spoken directly (no SDK). Facts relied on (provider-apis.md §3, §11.1;
 * netlify/open-api swagger.yml 2.55.0; netlify/cli src/commands/env/env-set.ts, env-unset.ts,
 * src/utils/env/index.ts):
 * - `GET /accounts/{account_id}/env/{key}?site_id=` reads ONE site-level var (no merging with the
 *   team's). We never use getSiteEnvVars: @netlify/api builds `/api/v1/api/v1/...` for it (404).
 * - `PATCH /accounts/{account_id}/env/{key}?site_id=` body `{context, value[, context_parameter]}`
 *   (setEnvVarValue) sets one context's value and leaves the other contexts alone — the narrowest write.
 * - `account_id` is the team slug (the CLI passes `siteInfo.account_slug`) or id.
 * - `is_secret` values are only readable in the `dev` context; the CLI refuses secrets in `all`/`dev`.
 * - Env values are baked into a deploy: `POST /sites/{site_id}/builds` (empty body; `branch` for a
 *   branch deploy) and wait until `GET /sites/{site_id}/deploys/{deploy_id}` is `ready` (`error` fails).
 * - `X-RateLimit-Reset` (epoch seconds) on 429 is turned into retryAfterMs by engine/http.ts.
 */

const USER_AGENT = 'keyrot';
const DEFAULT_TIMEOUT_MS = 15 * 60_000;
const POLL_FIRST_MS = 250;
const POLL_MAX_MS = 5_000;
/** Deploy states that end a deploy without it going live. */
const FAILED_STATES = new Set(['error', 'rejected']);

interface EnvValue {
  id?: string;
  value?: string;
  context?: string;
  context_parameter?: string;
}
interface EnvVar {
  key: string;
  scopes?: string[];
  values?: EnvValue[];
  is_secret?: boolean;
  updated_at?: string;
}
interface SiteInfo {
  id: string;
  name?: string;
  account_id?: string;
  account_slug?: string;
  admin_url?: string;
}
interface Build {
  id: string;
  deploy_id?: string | null;
  done?: boolean;
  error?: string | null;
}
interface Deploy {
  id: string;
  state?: string;
  error_message?: string | null;
}

function credentialName(ref: CredentialRef): string {
  return ref.kind === 'env' ? ref.name : ref.raw;
}

export function createNetlifyTarget(config: NetlifyConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target {
  const base = `${(config.endpoint ?? 'https://api.netlify.com').replace(/\/+$/, '')}/api/v1`;
  const siteId = config.site;
  const varName = ctx.varName;
  const contextName = config.context ?? 'production';
  const isBranch = contextName.startsWith('branch:');
  const context = isBranch ? 'branch' : contextName;
  const branch = isBranch ? contextName.slice('branch:'.length) : undefined;
  const contextLabel = isBranch ? `branch ${branch}` : contextName;
  const redeployWanted = config.redeploy === true;
  const timeoutMs = config.timeout !== undefined ? (parseDuration(config.timeout) ?? DEFAULT_TIMEOUT_MS) : DEFAULT_TIMEOUT_MS;
  const ref = credentialOrDefault(config.token, ['NETLIFY_AUTH_TOKEN'], ctx.env);
  const credName = credentialName(ref);
  // readBack turns false once keyrot sees the variable is a secret (write-only outside `dev`).
  const caps = { readBack: true, redeploy: redeployWanted, versioned: false, finalize: false };
  let account = config.account;
  let siteLabel = siteId;
  /** Writes this process made, per rotation: a repeated secret write is recognised without reading the value. */
  const memo = new Map<string, { valueId: string | null; updatedAt: string | null; receipt: Receipt }>();
  /** Builds started per rotation: a retried redeploy watches the same build instead of starting another. */
  const builds = new Map<string, Build>();
  /** Rotations whose restore still owes a successful rebuild (an earlier restore's build failed). */
  const restoreBuildOwed = new Set<string>();

  function fail(message: string, op: string, kind: TargetError['kind'], extra: { retryable?: boolean; cause?: unknown } = {}): TargetError {
    return new TargetError(message, { target: ctx.name, op, kind, ...extra });
  }

  const credential = lazyCredential(
    ctx,
    ref,
    (m) => `Netlify access token: ${m} (create a personal access token under User settings → Applications)`,
  );

  function describe(status: number, message: string, op: string, about: 'site' | 'env' | 'deploy'): string {
    // Netlify's own words go last, so the message leads with what is wrong and what to do.
    const said = message ? ` (Netlify said: ${message})` : '';
    if (status === 401) {
      return `Netlify rejected the access token (${credName}): create a personal access token under User settings → Applications → Personal access tokens and put it in ${credName}${said}`;
    }
    if (status === 403) {
      return `Netlify denied ${about === 'deploy' ? 'starting a build' : `changing ${varName}`} on site ${siteLabel}: the token's user must be an Owner or Developer of the team that owns the site${said}`;
    }
    if (status === 404) {
      if (about === 'site') {
        return `Netlify site ${siteId} not found: check \`site:\` (the Site ID under Site configuration → Site details) and that the token's user is on the site's team${said}`;
      }
      if (about === 'deploy') return `Netlify could not find the build keyrot is watching on site ${siteLabel}${said}`;
      return `Netlify team ${account ?? '(unknown)'} or site ${siteLabel} not found: check \`account:\` (or leave it out to use the site's own team)${said}`;
    }
    if (status === 429) {
      return `Netlify rate limit reached (500 requests/minute, 3 deploys/minute): keyrot will wait until it resets${said}`;
    }
    if (status === 400 || status === 409 || status === 422) return `Netlify refused to change ${varName} (${contextLabel}) on site ${siteLabel}${said}`;
    if (status >= 500) return `Netlify API unavailable (HTTP ${status}) during ${op} on site ${siteLabel}${said}`;
    return `Netlify answered ${status} during ${op} on site ${siteLabel}${said}`;
  }

  async function call<T>(
    op: string,
    method: string,
    path: string,
    about: 'site' | 'env' | 'deploy',
    opts: { body?: unknown; signal?: AbortSignal; allow404?: boolean } = {},
  ): Promise<HttpResponse<T> | undefined> {
    const tok = await credential(op);
    try {
      return await httpJson<T>(
        {
          method,
          url: base + path,
          headers: { authorization: `Bearer ${tok.reveal()}`, 'user-agent': USER_AGENT },
          body: opts.body,
          signal: opts.signal,
        },
        { clock: ctx.clock, provider: 'Netlify', describe: (s, m) => describe(s, m, op, about) },
      );
    } catch (err) {
      const e = toTargetError(err);
      if (opts.allow404 && e.status === 404) return undefined;
      throw new TargetError(e.message, {
        target: ctx.name,
        op,
        kind: e.kind,
        retryable: e.retryable,
        retryAfterMs: e.retryAfterMs,
        status: e.status,
        cause: err,
      });
    }
  }

  async function must<T>(p: Promise<HttpResponse<T> | undefined>): Promise<T> {
    return (await p)!.body;
  }

  async function getSite(op: string, signal?: AbortSignal): Promise<SiteInfo> {
    const site = await must(call<SiteInfo>(op, 'GET', `/sites/${encodeURIComponent(siteId)}`, 'site', { signal }));
    if (site.name) siteLabel = `${site.name} (${siteId})`;
    return site;
  }

  async function accountId(op: string, signal?: AbortSignal): Promise<string> {
    if (account) return account;
    const site = await getSite(op, signal);
    // The CLI addresses the env API with the team slug; the id works too.
    account = site.account_slug || site.account_id;
    if (!account) throw fail(`Netlify did not say which team owns site ${siteLabel}: set \`account:\` in targets.yaml`, op, 'invalid', { retryable: false });
    return account;
  }

  const envPath = (acct: string, suffix = '') =>
    `/accounts/${encodeURIComponent(acct)}/env/${encodeURIComponent(varName)}${suffix}?site_id=${encodeURIComponent(siteId)}`;

  async function getVar(op: string, signal?: AbortSignal): Promise<EnvVar | undefined> {
    const acct = await accountId(op, signal);
    const res = await call<EnvVar>(op, 'GET', envPath(acct), 'env', { signal, allow404: true });
    const v = res?.body;
    if (v) caps.readBack = !isWriteOnly(v);
    return v;
  }

  const isWriteOnly = (v: EnvVar) => v.is_secret === true && context !== 'dev';

  function entryFor(v: EnvVar | undefined): EnvValue | undefined {
    return v?.values?.find((x) => x.context === context && (context !== 'branch' || x.context_parameter === branch));
  }

  /** Shapes keyrot will not rewrite, because doing so would change other contexts' values. */
  function shapeProblem(v: EnvVar): string | undefined {
    const values = v.values ?? [];
    const contexts = values.map((x) => (x.context === 'branch' ? `branch:${x.context_parameter}` : x.context));
    if (context !== 'all' && contexts.includes('all')) {
      return `${varName} on Netlify site ${siteLabel} has one value for all deploy contexts: set \`context: all\` on this target to rotate that value, or give it separate values per context in the Netlify UI first`;
    }
    if (context === 'all' && contexts.some((c) => c !== 'all')) {
      return `${varName} on Netlify site ${siteLabel} has separate values per deploy context (${contexts.join(', ')}): set \`context:\` to the one keyrot should rotate (one target per context)`;
    }
    if (v.is_secret && (context === 'all' || context === 'dev')) {
      return `${varName} on Netlify site ${siteLabel} is a secret, and Netlify secrets take values only in non-dev contexts: set \`context:\` to production, deploy-preview, branch-deploy or branch:NAME`;
    }
    return undefined;
  }

  function current(v: EnvVar | undefined): ReadResult {
    const entry = entryFor(v) ?? (context !== 'all' ? v?.values?.find((x) => x.context === 'all') : undefined);
    if (!v || !entry) return { kind: 'absent' };
    if (isWriteOnly(v)) return { kind: 'unreadable', reason: `${varName} is a Netlify secret: its ${contextLabel} value is write-only` };
    return entry.value ? { kind: 'value', value: new Secret(entry.value) } : { kind: 'absent' };
  }

  function valueBody(value: string): Record<string, string> {
    return branch !== undefined ? { context, context_parameter: branch, value } : { context, value };
  }

  /** Sets this target's context value: creates the variable when it does not exist. */
  async function put(value: string, op: string, v: EnvVar | undefined, signal?: AbortSignal): Promise<{ after: EnvVar; created: boolean }> {
    const acct = await accountId(op, signal);
    if (!v) {
      // Not secret, every scope: what the CLI's `env:set KEY VALUE` creates.
      const body = [{ key: varName, values: [valueBody(value)] }];
      const created = await must(
        call<EnvVar[]>(op, 'POST', `/accounts/${encodeURIComponent(acct)}/env?site_id=${encodeURIComponent(siteId)}`, 'env', { body, signal }),
      );
      const after = Array.isArray(created) ? created.find((x) => x.key === varName) : undefined;
      if (!after) throw fail(`Netlify did not return ${varName} after creating it on site ${siteLabel}`, op, 'unavailable');
      return { after, created: true };
    }
    const after = await must(call<EnvVar>(op, 'PATCH', envPath(acct), 'env', { body: valueBody(value), signal }));
    return { after, created: false };
  }

  function check(v: EnvVar | undefined, value: string): boolean {
    return !!v && !isWriteOnly(v) && entryFor(v)?.value === value;
  }

  async function triggerAndWait(op: OpLike, why: 'redeploy' | 'restore'): Promise<Deploy> {
    if (!redeployWanted) throw fail(`redeploy is off for this target`, why, 'unsupported', { retryable: false });
    let build = builds.get(`${why}:${op.rotationId}`);
    if (!build) {
      // Production builds for production/all; a branch deploy for branch:NAME (preflight refused the rest).
      const q = branch !== undefined ? `?branch=${encodeURIComponent(branch)}` : '';
      build = await must(call<Build>(why, 'POST', `/sites/${encodeURIComponent(siteId)}/builds${q}`, 'deploy', { signal: op.signal }));
      builds.set(`${why}:${op.rotationId}`, build);
    }
    const deadline = ctx.clock.now() + timeoutMs;
    let delay = POLL_FIRST_MS;
    let deployId = build.deploy_id ?? undefined;
    for (;;) {
      if (!deployId) {
        const b = await must(call<Build>(why, 'GET', `/builds/${encodeURIComponent(build.id)}`, 'deploy', { signal: op.signal }));
        deployId = b.deploy_id ?? undefined;
        if (b.done && b.error) {
          builds.delete(`${why}:${op.rotationId}`);
          throw fail(`Netlify build ${build.id} of site ${siteLabel} failed (${b.error}): the site still serves its previous deploy`, why, 'unavailable', {
            retryable: false,
          });
        }
      }
      if (deployId) {
        const d = await must(call<Deploy>(why, 'GET', `/sites/${encodeURIComponent(siteId)}/deploys/${encodeURIComponent(deployId)}`, 'deploy', { signal: op.signal }));
        if (d.state === 'ready') return d;
        if (d.state && FAILED_STATES.has(d.state)) {
          builds.delete(`${why}:${op.rotationId}`);
          throw fail(
            `Netlify deploy ${d.id} of site ${siteLabel} ended in state ${d.state}${d.error_message ? ` (${d.error_message})` : ''}: the site still serves its previous deploy; see the deploy log in the Netlify UI`,
            why,
            'unavailable',
            { retryable: false },
          );
        }
      }
      if (ctx.clock.now() + delay > deadline) {
        throw fail(
          `Netlify deploy ${deployId ?? `of build ${build.id}`} of site ${siteLabel} is not ready after ${formatDuration(timeoutMs)}: check it in the Netlify UI (raise \`timeout:\` for slow builds)`,
          why,
          'timeout',
          { retryable: false },
        );
      }
      await ctx.clock.sleep(delay, op.signal);
      delay = Math.min(POLL_MAX_MS, delay * 2);
    }
  }

  const target: Target = {
    id: 'netlify',
    name: ctx.name,
    location: `netlify site ${siteId} ${contextLabel}`,
    capabilities: caps,
    // One site's variable and builds: serialise targets on the same site.
    lockKey: `netlify:${base}:${siteId}`,

    async preflight(signal) {
      try {
        const site = await getSite('preflight', signal);
        const owner = site.account_slug || site.account_id;
        if (config.account && config.account !== site.account_slug && config.account !== site.account_id) {
          return {
            status: 'error',
            reason: `Netlify site ${siteLabel} belongs to team ${owner}, not ${config.account}: fix \`account:\` or leave it out`,
            current: { kind: 'unreadable', reason: 'team mismatch' },
          };
        }
        account ??= owner;
        const v = await getVar('preflight', signal);
        const cur = current(v);
        const problem = v ? shapeProblem(v) : undefined;
        if (problem) return { status: 'error', reason: problem, current: cur };
        if (redeployWanted && !['production', 'all', 'branch'].includes(context)) {
          return {
            status: 'error',
            reason: `keyrot cannot trigger a ${contextLabel} deploy of Netlify site ${siteLabel} (those come from pull requests or local runs): set \`redeploy: false\` or use context production, all or branch:NAME`,
            current: cur,
          };
        }
        const secret = !!v && isWriteOnly(v);
        const notes = [
          `sets the ${contextLabel} value of ${varName} on Netlify site ${siteLabel} (team ${account}) with a single-context PATCH; other contexts and variables are untouched`,
          redeployWanted
            ? `then starts a ${branch !== undefined ? `branch deploy of ${branch}` : 'production build'} and waits until its deploy is ready (up to ${formatDuration(timeoutMs)})`
            : `no redeploy (redeploy: false): deployed functions keep the old value until the site's next deploy`,
          secret
            ? `${varName} is a Netlify secret (write-only): verified by metadata (the value keyrot wrote is the one Netlify holds, unchanged since)${redeployWanted ? ' and by the new deploy reaching ready' : ''}`
            : `verified by reading the ${contextLabel} value back`,
        ];
        const willCreate = !v || !entryFor(v);
        if (!v) notes.push(`${varName} does not exist on the site: keyrot will create it (not secret, all scopes) with a ${contextLabel} value, and delete it again on rollback`);
        else if (willCreate) notes.push(`${varName} has no ${contextLabel} value yet: keyrot will add one (and remove it again on rollback)`);
        return { status: 'ready', current: cur, willCreate, notes } satisfies PreflightResult;
      } catch (err) {
        const e = toTargetError(err, ctx.name, 'preflight');
        return { status: e.retryable ? 'unknown' : 'error', reason: e.message, current: { kind: 'unreadable', reason: e.message } };
      }
    },

    async read(signal) {
      return current(await getVar('read', signal));
    },

    async write(value, op) {
      const v = await getVar('write', op.signal);
      if (v) {
        const problem = shapeProblem(v);
        if (problem) throw fail(problem, 'write', 'invalid', { retryable: false });
      }
      const acct = await accountId('write', op.signal);
      const entry = entryFor(v);
      // The fingerprint (never the value) ties the receipt to the key it wrote: metadata verification needs it.
      const common: Receipt = { site: siteId, account: acct, context: contextName, secret: !!v && isWriteOnly(v), fingerprint: value.fingerprint };
      // Idempotent: a readable value that already matches is not written again...
      if (check(v, value.reveal())) return { ...common, changed: false, createdVar: false, addedValue: false, valueId: entry?.id ?? null, updatedAt: v?.updated_at ?? null };
      // ...and a secret this process already wrote for this rotation, untouched since, neither.
      const key = `write:${op.rotationId}:${value.fingerprint}`;
      const m = memo.get(key);
      if (m && v && entry && (entry.id ?? null) === m.valueId && (v.updated_at ?? null) === m.updatedAt) return m.receipt;
      const { after, created } = await put(value.reveal(), 'write', v, op.signal);
      const afterEntry = entryFor(after);
      if (!isWriteOnly(after) && afterEntry?.value !== value.reveal()) {
        throw fail(`Netlify accepted ${varName} (${contextLabel}) on site ${siteLabel} but its answer does not hold the new key`, 'write', 'mismatch', { retryable: true });
      }
      const receipt: Receipt = {
        ...common,
        secret: isWriteOnly(after),
        changed: true,
        createdVar: created,
        addedValue: !entry,
        valueId: afterEntry?.id ?? null,
        updatedAt: after.updated_at ?? null,
      };
      memo.set(key, { valueId: afterEntry?.id ?? null, updatedAt: after.updated_at ?? null, receipt });
      return receipt;
    },

    async verify(value, op, receipt): Promise<VerifyResult> {
      const v = await getVar('verify', op.signal);
      const entry = entryFor(v);
      if (!v || !entry) {
        throw fail(`${varName} on Netlify site ${siteLabel} has no ${contextLabel} value, not the new key (${value.fingerprint})`, 'verify', 'mismatch', { retryable: false });
      }
      if (!isWriteOnly(v)) {
        if (entry.value === value.reveal()) return { method: 'read-back', detail: `${contextLabel} value of ${varName} on ${siteLabel} holds the new key` };
        const found = entry.value ? `a different key (${fingerprint(entry.value)})` : 'an empty value';
        throw fail(`read-back mismatch: ${contextLabel} value of ${varName} on ${siteLabel} holds ${found}, not the new key (${value.fingerprint})`, 'verify', 'mismatch', {
          retryable: false,
        });
      }
      // A secret: Netlify never returns the value, so prove the write by its metadata — the value
      // entry keyrot's write produced is still there and the variable has not changed since.
      if (!receipt || typeof receipt.updatedAt !== 'string') {
        throw fail(
          `${varName} on Netlify site ${siteLabel} is a secret (write-only) and keyrot has no record of its write (no receipt): write it again to verify`,
          'verify',
          'mismatch',
          { retryable: false },
        );
      }
      if (receipt.fingerprint !== value.fingerprint) {
        throw fail(
          `keyrot's record of the write to secret ${varName} on ${siteLabel} is for key ${String(receipt.fingerprint)}, not the new key (${value.fingerprint}): write it again to verify`,
          'verify',
          'mismatch',
          { retryable: false },
        );
      }
      if (typeof receipt.valueId === 'string' && entry.id !== receipt.valueId) {
        throw fail(`the ${contextLabel} value of secret ${varName} on ${siteLabel} was replaced after keyrot wrote the new key (${value.fingerprint})`, 'verify', 'mismatch', {
          retryable: false,
        });
      }
      if (v.updated_at !== receipt.updatedAt) {
        throw fail(
          `secret ${varName} on ${siteLabel} changed at ${v.updated_at} after keyrot's write at ${receipt.updatedAt}: Netlify cannot show secret values, so keyrot cannot tell whether the ${contextLabel} value is still the new key; rotate again`,
          'verify',
          'mismatch',
          { retryable: false },
        );
      }
      return {
        method: 'metadata',
        detail: `secret ${varName} on ${siteLabel}: the ${contextLabel} value keyrot wrote (id ${entry.id}, ${receipt.updatedAt}) is unchanged${redeployWanted ? '; the redeploy confirms the build' : ''}`,
      };
    },

    async redeploy(op): Promise<VerifyResult> {
      const d = await triggerAndWait(op, 'redeploy');
      return { method: 'redeploy', detail: `deploy ${d.id} of ${siteLabel} is ready, built after the new ${varName} was set` };
    },

    async restore(previous, op) {
      const v = await getVar('restore', op.signal);
      const entry = entryFor(v);
      let changed = false;
      if (previous === null) {
        // There was no value for this context before keyrot: take ours out again.
        if (v && entry) {
          const acct = await accountId('restore', op.signal);
          // Ours is the only value: the variable did not exist (or had no values) before keyrot.
          if ((v.values ?? []).length === 1) {
            await call('restore', 'DELETE', envPath(acct), 'env', { signal: op.signal, allow404: true });
          } else if (entry.id) {
            await call('restore', 'DELETE', envPath(acct, `/value/${encodeURIComponent(entry.id)}`), 'env', { signal: op.signal, allow404: true });
          }
          changed = true;
        }
      } else if (!check(v, previous.reveal())) {
        const key = `restore:${op.rotationId}:${previous.fingerprint}`;
        const m = memo.get(key);
        const untouched = m && v && entry && (entry.id ?? null) === m.valueId && (v.updated_at ?? null) === m.updatedAt;
        if (!untouched) {
          const { after } = await put(previous.reveal(), 'restore', v, op.signal);
          memo.set(key, { valueId: entryFor(after)?.id ?? null, updatedAt: after.updated_at ?? null, receipt: {} });
          changed = true;
        }
      }
      // The live deploy may run the new key (redeploy happened, or a crash hides whether it did):
      // build again so the site runs the restored value.
      if (!redeployWanted) return;
      if (changed) restoreBuildOwed.add(op.rotationId);
      if (restoreBuildOwed.has(op.rotationId)) {
        await triggerAndWait(op, 'restore');
        restoreBuildOwed.delete(op.rotationId);
        builds.delete(`restore:${op.rotationId}`);
      }
    },
  };

  return target;
}

type OpLike = { rotationId: string; signal?: AbortSignal };
