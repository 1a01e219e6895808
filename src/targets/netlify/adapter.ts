import { waitTimeoutMs } from '../types.ts';
import { lazyCredential } from '../common.ts';
import { Secret, fingerprint } from '../../core/secret.ts';
import { TargetError, toTargetError } from '../../core/errors.ts';
import { absentOn404, createProviderHttp } from '../../runtime/provider-http.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import { poll } from '../../runtime/poll.ts';
import { credentialOrDefault, type CredentialRef } from '../../inventory/credentials.ts';
import { formatDuration } from '../../inventory/duration.ts';
import type { CommonTargetConfig, PreflightResult, ReadResult, RedeployPurpose, Target, TargetContext, VerifyResult } from '../types.ts';
import { NETLIFY_API, NETLIFY_TOKEN_ENV, netlifyContexts, type NetlifyConfig, type NetlifyReceipt } from './index.ts';

/**
 * Netlify API (`/api/v1`), spoken directly (no SDK). Facts relied on (README "Provider facts";
 * netlify/open-api swagger.yml 2.55.0; netlify/cli src/commands/env/env-set.ts, env-unset.ts,
 * src/utils/env/index.ts):
 * - `GET /accounts/{account_id}/env/{key}?site_id=` reads ONE site-level var (no merging with the
 *   team's). We never use getSiteEnvVars: @netlify/api builds `/api/v1/api/v1/...` for it (404).
 * - `PATCH /accounts/{account_id}/env/{key}?site_id=` body `{context, value[, context_parameter]}`
 *   (setEnvVarValue) sets one context's value and leaves the other contexts alone — the narrowest write.
 *   Several contexts are one PATCH each; every write (PATCH or DELETE) moves the variable's `updated_at`.
 * - A new variable gets one value for `all` contexts by default (the CLI's `env:set KEY VALUE`).
 * - `account_id` is the team slug (the CLI passes `siteInfo.account_slug`) or id.
 * - `is_secret` values are only readable in the `dev` context; the CLI refuses secrets in `all`/`dev`.
 * - Env values are baked into a deploy: `POST /sites/{site_id}/builds` (empty body; `branch` for a
 *   branch deploy) and wait until `GET /sites/{site_id}/deploys/{deploy_id}` is `ready` (`error` fails).
 * - `X-RateLimit-Reset` (epoch seconds) on 429 is turned into retryAfterMs by runtime/http.ts (only once the budget is spent).
 */

const USER_AGENT = 'keyrot';
const DEFAULT_TIMEOUT_MS = 15 * 60_000;
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

/** One deploy context as configured (`production`, `branch:staging`) and as the API names it. */
interface Ctx {
  /** The config / receipt name: `production`, `branch:staging`. */
  name: string;
  /** The API's `context`: `production`, `branch`. */
  context: string;
  /** The API's `context_parameter` for `branch`. */
  branch?: string;
  /** For messages: `production`, `branch staging`. */
  label: string;
}

function parseCtx(name: string): Ctx {
  if (name.startsWith('branch:')) {
    const branch = name.slice('branch:'.length);
    return { name, context: 'branch', branch, label: `branch ${branch}` };
  }
  return { name, context: name, label: name };
}

const ALL = parseCtx('all');
const PRODUCTION = parseCtx('production');

/** `production`, `production and deploy-preview`, `production, deploy-preview and branch staging`. */
function listLabel(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}
const labels = (ctxs: Ctx[]) => listLabel(ctxs.map((c) => c.label));
const plural = (ctxs: Ctx[], one: string, many: string) => (ctxs.length === 1 ? one : many);

/** What a context held before this rotation's first write: the value, nothing, or a write-only secret. */
type Before = { kind: 'value'; value: Secret } | { kind: 'absent' } | { kind: 'unreadable' };

/** Progress of this process's writes in one rotation: per context the value id written, and the var's updated_at after the last one. */
interface Progress {
  updatedAt: string | null;
  ids: Map<string, string | null>;
  receipt?: NetlifyReceipt;
}

function credentialName(ref: CredentialRef): string {
  return ref.kind === 'env' ? ref.name : ref.raw;
}

export function createNetlifyTarget(config: NetlifyConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target<NetlifyReceipt> {
  const base = `${(config.endpoint ?? NETLIFY_API).replace(/\/+$/, '')}/api/v1`;
  const siteId = config.site;
  const varName = ctx.varName;
  /** The configured contexts; undefined = follow the variable's shape (`all` or production). */
  const explicit = netlifyContexts(config)?.map(parseCtx);
  const redeployWanted = config.redeploy === true;
  /** The one build keyrot starts: production for production/all (and the default), else a single branch:NAME's deploy. */
  const build = buildFor(explicit ?? [PRODUCTION]);
  const timeoutMs = waitTimeoutMs(config.timeout, DEFAULT_TIMEOUT_MS);
  const ref = credentialOrDefault(config.token, NETLIFY_TOKEN_ENV, ctx.env);
  const credName = credentialName(ref);
  let account = config.account;
  let siteLabel = siteId;
  /** Writes this process made, per rotation and key: a repeated (secret) write is recognised without reading the value. */
  const memo = new Map<string, Progress>();
  /** Restores this process made, per rotation. */
  const restoreMemo = new Map<string, Progress>();
  /**
   * Each context's value before this rotation's first write (read in preflight, or by the first
   * write without one): restore puts each context back to its own old value.
   */
  let before: { rotation: string | undefined; map: Map<string, Before> } | undefined;
  /** Builds started per rotation: a retried redeploy watches the same build instead of starting another. */
  const builds = new Map<string, Build>();
  /** Rotations whose restore still owes a successful rebuild (an earlier restore's build failed). */

  function fail(message: string, op: string, kind: TargetError['kind'], extra: { retryable?: boolean; cause?: unknown } = {}): TargetError {
    return new TargetError(message, { target: ctx.name, op, kind, ...extra });
  }

  const credential = lazyCredential(
    ctx,
    ref,
    (m) => `Netlify access token: ${m} (create a personal access token under User settings → Applications)`,
  );

  function describe(status: number, message: string, op: string, about: About): string {
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
    if (status === 400 || status === 409 || status === 422) {
      return `Netlify refused to change ${varName}${explicit ? ` (${labels(explicit)})` : ''} on site ${siteLabel}${said}`;
    }
    if (status >= 500) return `Netlify API unavailable (HTTP ${status}) during ${op} on site ${siteLabel}${said}`;
    return `Netlify answered ${status} during ${op} on site ${siteLabel}${said}`;
  }

  const http = createProviderHttp<About>({
    provider: 'Netlify',
    baseUrl: base,
    target: ctx.name,
    clock: ctx.clock,
    timeoutMs: waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS),
    headers: { 'user-agent': USER_AGENT },
    auth: async (op) => ({ authorization: `Bearer ${(await credential(op)).reveal()}` }),
    endpointHint: 'set `endpoint:` of this target to the Netlify API’s URL (or remove it for https://api.netlify.com)',
    describe: (f) => describe(f.status, f.message, f.op, f.about ?? 'env'),
  });

  async function getSite(op: string, signal?: AbortSignal): Promise<SiteInfo> {
    const site = (await http.json<SiteInfo>({ op, path: `/sites/${encodeURIComponent(siteId)}`, about: 'site', signal })).body;
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
    const res = await http.json<EnvVar>({ op, path: envPath(acct), signal }).catch(absentOn404);
    const v = res?.body;
    return v;
  }

  /** A secret is write-only outside `dev` (a list of only dev contexts reads back). */
  const isWriteOnly = (v: EnvVar) => v.is_secret === true && !(explicit?.every((c) => c.context === 'dev') ?? false);

  function entryFor(v: EnvVar | undefined, c: Ctx): EnvValue | undefined {
    return v?.values?.find((x) => x.context === c.context && (c.context !== 'branch' || x.context_parameter === c.branch));
  }

  /** The contexts the variable has values for, as config names (`branch:NAME`). */
  function contextsOf(v: EnvVar | undefined): string[] {
    const names = (v?.values ?? []).map((x) => (x.context === 'branch' ? `branch:${x.context_parameter}` : String(x.context)));
    return [...new Set(names)];
  }

  /** Shapes keyrot will not rewrite, because doing so would change other contexts' values. */
  function shapeProblem(v: EnvVar, ctxs: Ctx[]): string | undefined {
    const contexts = contextsOf(v);
    const wantsAll = ctxs.some((c) => c.context === 'all');
    if (!wantsAll && contexts.includes('all')) {
      return `${varName} on Netlify site ${siteLabel} has one value for all deploy contexts: set \`context: all\` on this target to rotate that value (or leave \`context:\` out: keyrot then follows the variable), or give it separate values per context in the Netlify UI first`;
    }
    if (wantsAll && contexts.some((c) => c !== 'all')) {
      const per = contexts.filter((c) => c !== 'all');
      return `${varName} on Netlify site ${siteLabel} has separate values per deploy context (${contexts.join(', ')}): set \`context:\` to the context(s) keyrot should rotate, for example \`context: [${per.join(', ')}]\``;
    }
    if (v.is_secret && ctxs.some((c) => c.context === 'all' || c.context === 'dev')) {
      return `${varName} on Netlify site ${siteLabel} is a secret, and Netlify secrets take values only in non-dev contexts: set \`context:\` to production, deploy-preview, branch-deploy or branch:NAME (or a list of them)`;
    }
    return undefined;
  }

  /**
   * The contexts this target rotates. An explicit `context:` is taken as written (and refused on a
   * shape it would have to rewrite). Omitted, it follows the variable: one value for all contexts
   * (Netlify's default, and what keyrot creates) → that `all` value; per-context values → production.
   */
  function resolve(v: EnvVar | undefined): { ctxs: Ctx[]; problem?: string } {
    if (explicit) return { ctxs: explicit, problem: v ? shapeProblem(v, explicit) : undefined };
    const contexts = contextsOf(v);
    if (contexts.length === 0) {
      // No value yet: a new variable gets an `all` value; an empty secret can only take production.
      const ctxs = v?.is_secret ? [PRODUCTION] : [ALL];
      return { ctxs };
    }
    if (contexts.every((c) => c === 'all')) return { ctxs: [ALL], problem: shapeProblem(v!, [ALL]) };
    if (!contexts.includes('all')) return { ctxs: [PRODUCTION], problem: shapeProblem(v!, [PRODUCTION]) };
    return {
      ctxs: [PRODUCTION],
      problem: `${varName} on Netlify site ${siteLabel} has a value for all deploy contexts and separate values for ${listLabel(contexts.filter((c) => c !== 'all'))}: keyrot will not guess which to rotate; in the Netlify UI, make it one value for all contexts or separate values per context first`,
    };
  }

  function buildFor(ctxs: Ctx[]): { branch?: string } | undefined {
    if (ctxs.some((c) => c.context === 'production' || c.context === 'all')) return {};
    const branches = ctxs.filter((c) => c.context === 'branch');
    return branches.length === 1 ? { branch: branches[0]!.branch } : undefined;
  }

  function current(v: EnvVar | undefined, ctxs: Ctx[]): ReadResult {
    // A context without its own value runs the `all` value (shown for a refused shape).
    const entries = ctxs.map((c) => entryFor(v, c) ?? (c.context !== 'all' ? v?.values?.find((x) => x.context === 'all') : undefined));
    if (!v || entries.every((e) => !e)) return { kind: 'absent' };
    if (isWriteOnly(v)) return { kind: 'unreadable', reason: `${varName} is a Netlify secret: its ${labels(ctxs)} ${plural(ctxs, 'value is', 'values are')} write-only` };
    // Several contexts: the first listed one that has a value (preflight notes any other key found).
    const hit = entries.find((e) => e?.value);
    return hit?.value ? { kind: 'value', value: new Secret(hit.value) } : { kind: 'absent' };
  }

  function beforeOf(v: EnvVar | undefined, c: Ctx): Before {
    const e = entryFor(v, c);
    if (!v || !e) return { kind: 'absent' };
    // An empty readable value cannot be a Secret: treated like a secret's (restored from `previous`).
    return !isWriteOnly(v) && e.value ? { kind: 'value', value: new Secret(e.value) } : { kind: 'unreadable' };
  }

  /** The before-values for this rotation: preflight's, else recorded now, before its first write. */
  function beforeFor(rotationId: string, v: EnvVar | undefined, ctxs: Ctx[]): Map<string, Before> {
    if (!before || (before.rotation !== undefined && before.rotation !== rotationId)) before = { rotation: rotationId, map: new Map() };
    before.rotation = rotationId;
    for (const c of ctxs) if (!before.map.has(c.name)) before.map.set(c.name, beforeOf(v, c));
    return before.map;
  }

  function valueBody(c: Ctx, value: string): Record<string, string> {
    return c.branch !== undefined ? { context: c.context, context_parameter: c.branch, value } : { context: c.context, value };
  }

  /** Creates the missing variable with these contexts' values: not secret, every scope (the CLI's `env:set KEY VALUE`). */
  async function createVar(values: Array<{ c: Ctx; value: string }>, op: string, signal?: AbortSignal): Promise<EnvVar> {
    const acct = await accountId(op, signal);
    const body = [{ key: varName, values: values.map((x) => valueBody(x.c, x.value)) }];
    const created = (await http.json<EnvVar[]>({ op, method: 'POST', path: `/accounts/${encodeURIComponent(acct)}/env?site_id=${encodeURIComponent(siteId)}`, body, signal })).body;
    const after = Array.isArray(created) ? created.find((x) => x.key === varName) : undefined;
    if (!after) throw fail(`Netlify did not return ${varName} after creating it on site ${siteLabel}`, op, 'unavailable');
    return after;
  }

  /** Sets one context's value with a single-context PATCH. */
  async function patch(c: Ctx, value: string, op: string, signal?: AbortSignal): Promise<EnvVar> {
    const acct = await accountId(op, signal);
    return (await http.json<EnvVar>({ op, method: 'PATCH', path: envPath(acct), body: valueBody(c, value), signal })).body;
  }

  /** The contexts a receipt says were written (older receipts name one `context`). */
  function receiptContexts(receipt: NetlifyReceipt | undefined): Ctx[] | undefined {
    if (receipt?.contexts?.length) return receipt.contexts.map(parseCtx);
    return receipt?.context ? [parseCtx(receipt.context)] : undefined;
  }

  function receiptIds(receipt: NetlifyReceipt, ctxs: Ctx[]): Array<string | null> {
    if (receipt.valueIds) return ctxs.map((_, i) => receipt.valueIds![i] || null);
    return ctxs.map((_, i) => (i === 0 ? (receipt.valueId ?? null) : null));
  }

  function receiptAdded(receipt: NetlifyReceipt | undefined, c: Ctx): boolean {
    if (receipt?.added) return receipt.added.includes(c.name);
    return receipt?.addedValue === true;
  }

  async function triggerAndWait(op: OpLike, why: 'redeploy' | 'restore'): Promise<Deploy> {
    if (!redeployWanted) throw fail(`redeploy is off for this target`, why, 'unsupported', { retryable: false });
    if (!build) throw fail(`keyrot cannot start a deploy for the ${labels(explicit ?? [])} context of Netlify site ${siteLabel}`, why, 'unsupported', { retryable: false });
    let b = builds.get(`${why}:${op.rotationId}`);
    if (!b) {
      // A production build for production/all; a branch deploy for branch:NAME (preflight refused the rest).
      const q = build.branch !== undefined ? `?branch=${encodeURIComponent(build.branch)}` : '';
      b = (await http.json<Build>({ op: why, method: 'POST', path: `/sites/${encodeURIComponent(siteId)}/builds${q}`, about: 'deploy', signal: op.signal })).body;
      builds.set(`${why}:${op.rotationId}`, b);
    }
    const started = b;
    let deployId = started.deploy_id ?? undefined;
    const get = <T>(path: string) => http.json<T>({ op: why, path, about: 'deploy', signal: op.signal }).then((r) => r.body);
    return poll<Deploy | undefined>({
      // The build names its deploy once it has one; then the deploy's state is what counts.
      check: async () => {
        if (!deployId) {
          const cur = await get<Build>(`/builds/${encodeURIComponent(started.id)}`);
          deployId = cur.deploy_id ?? undefined;
          if (cur.done && cur.error) {
            builds.delete(`${why}:${op.rotationId}`);
            throw fail(`Netlify build ${started.id} of site ${siteLabel} failed (${cur.error}): the site still serves its previous deploy`, why, 'unavailable', { retryable: false });
          }
        }
        return deployId ? get<Deploy>(`/sites/${encodeURIComponent(siteId)}/deploys/${encodeURIComponent(deployId)}`) : undefined;
      },
      until: (d) => {
        if (d?.state && FAILED_STATES.has(d.state)) {
          builds.delete(`${why}:${op.rotationId}`);
          throw fail(
            `Netlify deploy ${d.id} of site ${siteLabel} ended in state ${d.state}${d.error_message ? ` (${d.error_message})` : ''}: the site still serves its previous deploy; see the deploy log in the Netlify UI`,
            why,
            'unavailable',
            { retryable: false },
          );
        }
        return d?.state === 'ready';
      },
      deadlineMs: timeoutMs,
      clock: ctx.clock,
      signal: op.signal,
      target: ctx.name,
      op: why,
      describe: () =>
        `Netlify deploy ${deployId ?? `of build ${started.id}`} of site ${siteLabel} is not ready after ${formatDuration(timeoutMs)}: check it in the Netlify UI (raise \`timeout:\` for slow builds)`,
    }) as Promise<Deploy>;
  }

  /** Plan notes: what changes, what does not, how it is verified. */
  function planNotes(v: EnvVar | undefined, ctxs: Ctx[]): string[] {
    const secret = !!v && isWriteOnly(v);
    const notes: string[] = [];
    const others = contextsOf(v).filter((n) => !ctxs.some((c) => c.name === n));
    if (!explicit) {
      notes.push(
        ctxs[0] === ALL
          ? v && contextsOf(v).length
            ? `\`context:\` not set: ${varName} has one value for all deploy contexts (Netlify's default), so keyrot rotates that value`
            : `\`context:\` not set: keyrot gives ${varName} one value for all deploy contexts (Netlify's default)`
          : `\`context:\` not set: ${varName} has separate values per deploy context, so keyrot rotates the production value only${others.length ? `; ${listLabel(others)} keep${others.length === 1 ? 's' : ''} ${others.length === 1 ? 'its' : 'their'} value (list the contexts to rotate in \`context:\`, e.g. \`context: [production, ${others[0]}]\`)` : ''}`,
      );
    }
    notes.push(
      `changes the ${labels(ctxs)} ${plural(ctxs, 'value', 'values')} of ${varName} on Netlify site ${siteLabel} (team ${account}) with ${plural(ctxs, 'a single-context PATCH', 'one single-context PATCH per context')}; ${others.length ? `the ${listLabel(others)} ${plural(others.map(parseCtx), 'value', 'values')} and the other variables are untouched` : 'the other variables are untouched'}`,
    );
    const b = build && buildFor(ctxs);
    const unbuilt = ctxs.filter((c) => !['production', 'all'].includes(c.context) && !(c.context === 'branch' && b?.branch === c.branch));
    notes.push(
      redeployWanted
        ? `then starts a ${b?.branch !== undefined ? `branch deploy of ${b.branch}` : 'production build'} and waits until its deploy is ready (up to ${formatDuration(timeoutMs)})${b && unbuilt.length ? `; keyrot cannot start ${labels(unbuilt)} deploys: they get the new value when they next build` : ''}`
        : `no redeploy (redeploy: false): deployed functions keep the old value until the site's next deploy`,
    );
    notes.push(
      secret
        ? `${varName} is a Netlify secret (write-only): verified by metadata (each rotated context still has the value keyrot wrote, and the variable is unchanged since keyrot's last write)${redeployWanted ? ' and by the new deploy reaching ready' : ''}`
        : `verified by reading the ${labels(ctxs)} ${plural(ctxs, 'value', 'values')} back`,
    );
    const missing = ctxs.filter((c) => !entryFor(v, c));
    if (!v) notes.push(`${varName} does not exist on the site: keyrot will create it (not secret, all scopes) with ${plural(ctxs, 'a value', 'values')} for ${labels(ctxs)}, and delete it again on rollback`);
    else if (missing.length) notes.push(`${varName} has no ${labels(missing)} value yet: keyrot will add ${plural(missing, 'one', 'them')} (and remove ${plural(missing, 'it', 'them')} again on rollback)`);
    if (v && !secret) {
      // Readable: say when the listed contexts hold different keys, or an unlisted one holds the same key.
      const held = ctxs.flatMap((c) => {
        const e = entryFor(v, c);
        return e?.value ? [{ c, fp: fingerprint(e.value) }] : [];
      });
      const fps = new Set(held.map((h) => h.fp));
      if (fps.size > 1) {
        notes.push(
          `the listed contexts hold different keys now (${held.map((h) => `${h.c.label}: ${h.fp}`).join(', ')}): all get the new key and each is restored to its own on rollback; the rotation reports ${held[0]!.fp} as the old key, so revoke the other one(s) yourself`,
        );
      }
      const same = others.filter((n) => {
        const val = entryFor(v, parseCtx(n))?.value;
        return val !== undefined && fps.has(fingerprint(val));
      });
      if (same.length) {
        notes.push(
          `WARNING: ${listLabel(same)} ${same.length === 1 ? 'holds' : 'hold'} the same key but ${same.length === 1 ? 'is' : 'are'} not rotated, and will break when the old key is revoked: add ${same.length === 1 ? 'it' : 'them'} to \`context:\` (one target, a list)`,
        );
      }
    } else if (v && secret && others.length) {
      notes.push(
        `${listLabel(others)} of secret ${varName} ${others.length === 1 ? 'keeps its' : 'keep their'} value; Netlify cannot show whether ${others.length === 1 ? 'it is' : 'they are'} the same key: if so, list ${others.length === 1 ? 'it' : 'them'} in \`context:\` (one target, a list)`,
      );
    }
    return notes;
  }

  const target: Target<NetlifyReceipt> = {
    id: 'netlify',
    name: ctx.name,
    location: `netlify site ${siteId} ${explicit ? labels(explicit) : '(context as the variable has it: all or production)'}`,
    // One site's variable and builds: serialise targets on the same site.
    lockKey: `netlify:${base}:${siteId}`,

    async preflight(signal): Promise<PreflightResult> {
      try {
        const site = await getSite('preflight', signal);
        const owner = site.account_slug || site.account_id;
        if (config.account && config.account !== site.account_slug && config.account !== site.account_id) {
          return {
            status: 'blocked',
            reason: `Netlify site ${siteLabel} belongs to team ${owner}, not ${config.account}: fix \`account:\` or leave it out`,
            current: { kind: 'unreadable', reason: 'team mismatch' },
          };
        }
        account ??= owner;
        const v = await getVar('preflight', signal);
        const { ctxs, problem } = resolve(v);
        const cur = current(v, ctxs);
        if (problem) return { status: 'blocked', reason: problem, current: cur };
        if (redeployWanted && !build) {
          const cannot = (explicit ?? []).filter((c) => !['production', 'all', 'branch'].includes(c.context));
          const branches = (explicit ?? []).filter((c) => c.context === 'branch');
          return {
            status: 'blocked',
            reason: cannot.length
              ? `keyrot cannot trigger a ${labels(cannot)} deploy of Netlify site ${siteLabel} (those come from pull requests or local runs): set \`redeploy: false\` or use context production, all or branch:NAME`
              : `keyrot starts one build per rotation, and the ${labels(branches)} deploys are ${branches.length} builds: set \`redeploy: false\`, add production to \`context:\`, or use one target per branch`,
            current: cur,
          };
        }
        // Each context's value now: restore puts each one back to its own.
        before = { rotation: undefined, map: new Map(ctxs.map((c) => [c.name, beforeOf(v, c)])) };
        const willCreate = !v || ctxs.some((c) => !entryFor(v, c));
        return { status: 'ready', current: cur, willCreate, notes: planNotes(v, ctxs) } satisfies PreflightResult;
      } catch (err) {
        const e = toTargetError(err, ctx.name, 'preflight');
        // Transient (429, 5xx, timeout): not an answer; the engine retries it, bounded.
        if (e.retryable) throw e;
        return { status: 'blocked', reason: e.message, current: { kind: 'unreadable', reason: e.message } };
      }
    },

    async read(signal) {
      const v = await getVar('read', signal);
      return current(v, resolve(v).ctxs);
    },

    async write(value, op) {
      const v = await getVar('write', op.signal);
      const { ctxs, problem } = resolve(v);
      if (problem) throw fail(problem, 'write', 'invalid', { retryable: false });
      const acct = await accountId('write', op.signal);
      const prior = beforeFor(op.rotationId, v, ctxs);
      const secret = !!v && isWriteOnly(v);
      const receiptOf = (after: EnvVar | undefined, changed: boolean, createdVar: boolean): NetlifyReceipt => {
        const added = ctxs.filter((c) => prior.get(c.name)?.kind === 'absent').map((c) => c.name);
        // Fingerprints and ids only, never a value.
        return {
          site: siteId,
          account: acct,
          context: ctxs.map((c) => c.name).join(','),
          contexts: ctxs.map((c) => c.name),
          secret: !!after && isWriteOnly(after),
          fingerprint: value.fingerprint,
          changed,
          createdVar,
          added,
          addedValue: added.length > 0,
          valueId: entryFor(after, ctxs[0]!)?.id ?? null,
          valueIds: ctxs.map((c) => entryFor(after, c)?.id ?? ''),
          updatedAt: after?.updated_at ?? null,
        };
      };
      const key = `write:${op.rotationId}:${value.fingerprint}`;
      const m = memo.get(key);
      const untouched = !!m && !!v && (v.updated_at ?? null) === m.updatedAt;
      // Idempotent: a readable value that already matches is not written again, and neither is a
      // secret context this process already wrote for this rotation, with the variable untouched since.
      const pending = ctxs.filter((c) => {
        const e = entryFor(v, c);
        if (!secret) return e?.value !== value.reveal();
        return !(untouched && e && m!.ids.get(c.name) === (e.id ?? null));
      });
      if (pending.length === 0) return secret && m?.receipt ? m.receipt : receiptOf(v, secret, false);
      const progress: Progress = untouched ? m! : { updatedAt: null, ids: new Map() };
      memo.set(key, progress);
      let after: EnvVar;
      let created = false;
      if (!v) {
        after = await createVar(ctxs.map((c) => ({ c, value: value.reveal() })), 'write', op.signal);
        created = true;
        for (const c of ctxs) progress.ids.set(c.name, entryFor(after, c)?.id ?? null);
        progress.updatedAt = after.updated_at ?? null;
      } else {
        after = v;
        // One PATCH per context, in order; each moves updated_at, the receipt keeps the last one.
        for (const c of pending) {
          after = await patch(c, value.reveal(), 'write', op.signal);
          progress.ids.set(c.name, entryFor(after, c)?.id ?? null);
          progress.updatedAt = after.updated_at ?? null;
        }
      }
      const wrong = isWriteOnly(after) ? [] : ctxs.filter((c) => entryFor(after, c)?.value !== value.reveal());
      if (wrong.length) {
        throw fail(`Netlify accepted ${varName} (${labels(wrong)}) on site ${siteLabel} but its answer does not hold the new key`, 'write', 'mismatch', { retryable: true });
      }
      const receipt = receiptOf(after, true, created);
      progress.receipt = receipt;
      return receipt;
    },

    async verify(value, op, receipt): Promise<VerifyResult> {
      const v = await getVar('verify', op.signal);
      const ctxs = receiptContexts(receipt) ?? resolve(v).ctxs;
      const missing = ctxs.filter((c) => !entryFor(v, c));
      if (!v || missing.length) {
        throw fail(`${varName} on Netlify site ${siteLabel} has no ${labels(v ? missing : ctxs)} value, not the new key (${value.fingerprint})`, 'verify', 'mismatch', { retryable: false });
      }
      if (!isWriteOnly(v)) {
        const wrong = ctxs.filter((c) => entryFor(v, c)!.value !== value.reveal());
        if (!wrong.length) return { method: 'read-back', detail: `${labels(ctxs)} ${plural(ctxs, 'value', 'values')} of ${varName} on ${siteLabel} ${plural(ctxs, 'holds', 'hold')} the new key` };
        const found = wrong.map((c) => {
          const val = entryFor(v, c)!.value;
          return `the ${c.label} value holds ${val ? `a different key (${fingerprint(val)})` : 'an empty value'}`;
        });
        throw fail(`read-back mismatch: ${found.join(', ')} of ${varName} on ${siteLabel}, not the new key (${value.fingerprint})`, 'verify', 'mismatch', { retryable: false });
      }
      // A secret: Netlify never returns the value, so prove the write by its metadata — every listed
      // context still has the value entry keyrot's write produced, and the variable has not changed
      // since keyrot's LAST write of this rotation (any later write, to any context, moves updated_at).
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
      const ids = receiptIds(receipt, ctxs);
      const replaced = ctxs.filter((c, i) => ids[i] !== null && entryFor(v, c)!.id !== ids[i]);
      if (replaced.length) {
        throw fail(`the ${labels(replaced)} ${plural(replaced, 'value', 'values')} of secret ${varName} on ${siteLabel} ${plural(replaced, 'was', 'were')} replaced after keyrot wrote the new key (${value.fingerprint})`, 'verify', 'mismatch', {
          retryable: false,
        });
      }
      if (v.updated_at !== receipt.updatedAt) {
        throw fail(
          `secret ${varName} on ${siteLabel} changed at ${v.updated_at} after keyrot's write at ${receipt.updatedAt}: Netlify cannot show secret values, so keyrot cannot tell whether the ${labels(ctxs)} ${plural(ctxs, 'value is', 'values are')} still the new key; rotate again`,
          'verify',
          'mismatch',
          { retryable: false },
        );
      }
      return {
        method: 'metadata',
        detail: `secret ${varName} on ${siteLabel}: the ${labels(ctxs)} ${plural(ctxs, 'value', 'values')} keyrot wrote (${ctxs.map((c) => `${c.name} id ${entryFor(v, c)!.id}`).join(', ')}; ${receipt.updatedAt}) ${plural(ctxs, 'is', 'are')} unchanged${redeployWanted ? '; the redeploy confirms the build' : ''}`,
      };
    },

    async redeploy(op, _receipt, purpose: RedeployPurpose = 'write'): Promise<VerifyResult> {
      // After a restore the live deploy may run the new key (its build happened, or a crash hides
      // whether it did): build again so the site runs the restored value.
      const d = await triggerAndWait(op, purpose === 'write' ? 'redeploy' : 'restore');
      const what = purpose === 'write' ? `the new ${varName}` : `${varName} back to its old value`;
      return { method: 'redeploy', detail: `deploy ${d.id} of ${siteLabel} is ready, built after ${what} was set` };
    },

    async restore(previous, op, receipt) {
      let v = await getVar('restore', op.signal);
      let ctxs = receiptContexts(receipt);
      const problem = v ? (ctxs ? shapeProblem(v, ctxs) : resolve(v).problem) : undefined;
      // A shape keyrot refuses was not made by its writes: changing it could touch other contexts.
      if (problem) throw fail(`cannot restore: ${problem}`, 'restore', 'invalid', { retryable: false });
      ctxs ??= resolve(v).ctxs;
      const prior = before && (before.rotation === undefined || before.rotation === op.rotationId) ? before.map : undefined;
      const newFp = receipt?.fingerprint ?? op.fingerprint;
      // What each context goes back to: its own old value, nothing (keyrot added it), or for a
      // secret the environment's old key (`previous`), which Netlify never showed keyrot.
      const wants = ctxs.map((c) => {
        const b = prior?.get(c.name);
        if (b?.kind === 'absent') return { c, want: null };
        if (b?.kind === 'value' && b.value.fingerprint !== newFp) return { c, want: b.value };
        if (receiptAdded(receipt, c) || previous === null) return { c, want: null };
        if (previous) return { c, want: previous };
        throw fail(
          `keyrot does not know the old ${c.label} value of ${varName} on ${siteLabel}: run \`keyrot resume --rollback --old-key SOURCE\``,
          'restore',
          'invalid',
          { retryable: false },
        );
      });
      const acct = await accountId('restore', op.signal);
      // Deletions first (contexts keyrot added): the PATCHes after them then record the final updated_at.
      const drop = v ? wants.filter((w) => w.want === null).flatMap((w) => entryFor(v, w.c) ?? []) : [];
      if (v && drop.length) {
        if (drop.length === (v.values ?? []).length) {
          // Only keyrot's values are left: the variable did not exist (or had no values) before keyrot.
          await http.json({ op: 'restore', method: 'DELETE', path: envPath(acct), signal: op.signal }).catch(absentOn404);
          v = undefined;
        } else {
          for (const e of drop) {
            if (e.id) await http.json({ op: 'restore', method: 'DELETE', path: envPath(acct, `/value/${encodeURIComponent(e.id)}`), signal: op.signal }).catch(absentOn404);
          }
        }
      }
      const puts = wants.filter((w): w is { c: Ctx; want: Secret } => w.want !== null);
      const rkey = `restore:${op.rotationId}`;
      let rm = restoreMemo.get(rkey);
      if (!rm || !v || (v.updated_at ?? null) !== rm.updatedAt) restoreMemo.set(rkey, (rm = { updatedAt: null, ids: new Map() }));
      const pending = puts.filter(({ c, want }) => {
        const e = entryFor(v, c);
        if (v && !isWriteOnly(v)) return e?.value !== want.reveal();
        // A secret: skip a context this restore already wrote, with the variable untouched since.
        return !(e && rm.ids.get(c.name) === `${e.id ?? ''}:${want.fingerprint}`);
      });
      if (pending.length && !v) {
        const after = await createVar(pending.map(({ c, want }) => ({ c, value: want.reveal() })), 'restore', op.signal);
        rm.updatedAt = after.updated_at ?? null;
        for (const { c, want } of pending) rm.ids.set(c.name, `${entryFor(after, c)?.id ?? ''}:${want.fingerprint}`);
      } else {
        for (const { c, want } of pending) {
          const after = await patch(c, want.reveal(), 'restore', op.signal);
          rm.updatedAt = after.updated_at ?? null;
          rm.ids.set(c.name, `${entryFor(after, c)?.id ?? ''}:${want.fingerprint}`);
          }
      }
      // The engine builds again afterwards (redeploy, purpose restore) when redeploy: true.
    },
  };

  if (!redeployWanted) delete (target as Partial<typeof target>).redeploy;
  return target;
}

type OpLike = { rotationId: string; signal?: AbortSignal };
/** What a Netlify call is about, for its error message. */
type About = 'site' | 'env' | 'deploy';
