import { waitTimeoutMs } from '../types.ts';
import { lazyCredential } from '../common.ts';
import { Secret, fingerprint } from '../../core/secret.ts';
import { TargetError, toTargetError, type TargetErrorKind } from '../../core/errors.ts';
import { absentOn404, createProviderHttp, type Described, type ProviderFailure } from '../../runtime/provider-http.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import { poll } from '../../runtime/poll.ts';
import { credentialOrDefault } from '../../inventory/credentials.ts';
import { formatDuration } from '../../inventory/duration.ts';
import type { CommonTargetConfig, OpContext, PreflightResult, ReadResult, RedeployPurpose, Target, TargetContext, VerifyResult } from '../types.ts';
import { VERCEL_API, VERCEL_TOKEN_ENV, type VercelConfig, type VercelReceipt } from './index.ts';

/**
 * Vercel project environment variables over the REST API with plain fetch (httpJson): the
 * official @vercel/sdk takes ~1.6 s to import and its response schemas reject shapes the API
 * really sends (vercel/sdk#104; README "Provider facts"), so keyrot speaks the few routes it needs itself.
 * Routes and shapes: vercel/sdk 1.28.21 (@426eb4b) src/funcs/projects{FilterProjectEnvs,
 * GetProjectEnv,EditProjectEnv,CreateProjectEnv,RemoveProjectEnv}.ts, deployments{GetDeployments,
 * CreateDeployment,GetDeployment}.ts; the redeploy body is the one `vercel redeploy` sends
 * (vercel/vercel packages/cli/src/commands/redeploy/index.ts).
 */

const TARGETS = ['production', 'preview', 'development'] as const;
type EnvTarget = (typeof TARGETS)[number];

interface EnvEntry {
  id: string;
  key: string;
  type: string;
  target: EnvTarget[];
  gitBranch?: string;
  comment?: string;
  updatedAt?: number;
  createdAt?: number;
  value?: string;
  decrypted?: boolean;
}

interface Deployment {
  id: string;
  createdAt: number;
  readyState: string;
  meta: Record<string, string>;
  errorMessage?: string;
}

/** `target` is an array, or (older entries) a single string (getprojectenvop.ts). */
function targetsOf(raw: unknown): EnvTarget[] {
  const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
  return list.filter((t): t is EnvTarget => (TARGETS as readonly string[]).includes(t));
}

function toEntry(raw: Record<string, unknown>): EnvEntry {
  return {
    id: String(raw.id),
    key: String(raw.key),
    type: String(raw.type),
    target: targetsOf(raw.target),
    ...(typeof raw.gitBranch === 'string' && raw.gitBranch ? { gitBranch: raw.gitBranch } : {}),
    ...(typeof raw.comment === 'string' ? { comment: raw.comment } : {}),
    ...(typeof raw.updatedAt === 'number' ? { updatedAt: raw.updatedAt } : {}),
    ...(typeof raw.createdAt === 'number' ? { createdAt: raw.createdAt } : {}),
    ...(typeof raw.value === 'string' ? { value: raw.value } : {}),
    ...(typeof raw.decrypted === 'boolean' ? { decrypted: raw.decrypted } : {}),
  };
}

function toDeployment(raw: Record<string, unknown>): Deployment {
  return {
    id: String(raw.uid ?? raw.id),
    createdAt: Number(raw.createdAt ?? raw.created ?? 0),
    readyState: String(raw.readyState ?? raw.state ?? ''),
    meta: (raw.meta && typeof raw.meta === 'object' ? raw.meta : {}) as Record<string, string>,
    ...(typeof raw.errorMessage === 'string' ? { errorMessage: raw.errorMessage } : {}),
  };
}

/** readyStates of a deployment that never served traffic and never will by itself. */
const NEVER_LIVE: readonly string[] = ['ERROR', 'CANCELED', 'BLOCKED'];

/** Orders entries so the one serving production is read first. */
function rank(e: EnvEntry): number {
  return e.target.includes('production') ? 0 : e.target.includes('preview') ? 1 : 2;
}

/** Marks an entry keyrot created during a rotation, so a resumed restore can find and remove it. */
function creationMarker(rotationId: string): string {
  return `created by keyrot rotation ${rotationId}`;
}

export function createVercelTarget(config: VercelConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target<VercelReceipt> {
  const base = (config.endpoint ?? VERCEL_API).replace(/\/+$/, '');
  const wanted: EnvTarget[] = [...new Set<EnvTarget>(config.targets ?? ['production'])];
  const tokenRef = credentialOrDefault(config.token, VERCEL_TOKEN_ENV, ctx.env);
  const scopeQuery: Record<string, string> = config.team ? (config.team.startsWith('team_') ? { teamId: config.team } : { slug: config.team }) : {};
  const scopeWords = config.team ? `team ${config.team}` : 'the token owner’s personal account';
  const where = `Vercel project ${config.project}${config.team ? ` (team ${config.team})` : ''}`;
  const timeoutMs = waitTimeoutMs(config.timeout, 20 * 60_000);
  const redeployOn = config.redeploy === true && wanted.includes('production');

  const credential = lazyCredential(ctx, tokenRef);
  let projectP: Promise<{ id: string; name: string }> | undefined;
  let pauseUntil = 0;
  /** Sensitive entries this process wrote: entry id → fingerprint and the updatedAt Vercel returned. */
  const written = new Map<string, { fingerprint: string; updatedAt: number }>();
  /** Per rotation: what each entry held before keyrot touched it (undefined = unreadable). */
  const before = new Map<string, Map<string, string | undefined>>();
  /** Per rotation: the deployment keyrot triggered. */
  const triggered = new Map<string, string>();

  function fail(message: string, kind: TargetErrorKind, op: string, extra: { retryAfterMs?: number; status?: number; retryable?: boolean; cause?: unknown } = {}): TargetError {
    return new TargetError(message, { target: ctx.name, op, kind, ...extra });
  }

  /**
   * A failed answer in product words. A missing, expired or revoked token is a 403 "Not authorized"
   * on Vercel (docs rest-api/errors; the CLI's getUser() turns any 403 of /v2/user into "The
   * specified token is not valid"); the body flags it with `invalidToken: true` / `missingToken:
   * true`, observed both with and without a `message` (`{"error":{"code":"forbidden","invalidToken":true}}`).
   */
  function describe(f: ProviderFailure<string>): Described {
    const what = f.about ?? where;
    const said = f.message ? ` (Vercel said: ${f.message})` : '';
    const flags = (f.body as { error?: { invalidToken?: unknown; missingToken?: unknown } } | undefined)?.error;
    const badToken =
      f.status === 401 ||
      (f.status === 403 &&
        (/^not authorized\.?$/i.test(f.message) || /missing an authentication token/i.test(f.message) || flags?.invalidToken === true || flags?.missingToken === true));
    if (badToken) {
      return {
        message: `Vercel rejected the token from ${tokenRef.raw}: it is missing, expired or revoked. Create a token at https://vercel.com/account/tokens with access to ${scopeWords} and export it as VERCEL_TOKEN (or point token: at it)`,
        kind: 'auth',
      };
    }
    if (f.status === 403) return `Vercel denied ${f.op} on ${what}${said}: use a token whose scope includes ${scopeWords} and this project`;
    if (f.status === 404) return `${what} was not found in ${scopeWords}${said}: check project and team in targets.yaml`;
    if (f.status === 429) {
      const secs = f.rateLimit.retryAfterMs !== undefined ? ` for ${formatDuration(f.rateLimit.retryAfterMs)}` : '';
      return `Vercel rate-limited ${f.op} on ${what}${secs}`;
    }
    if (f.status >= 500) return `Vercel failed ${f.op} on ${what} (HTTP ${f.status})${said}; try again later`;
    return `Vercel refused ${f.op} on ${what} (HTTP ${f.status})${said}`;
  }

  const http = createProviderHttp<string>({
    provider: 'Vercel',
    baseUrl: base,
    target: ctx.name,
    clock: ctx.clock,
    timeoutMs: waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS),
    headers: { 'user-agent': 'keyrot' },
    query: scopeQuery,
    auth: async (op) => ({ authorization: `Bearer ${(await credential(op)).reveal()}` }),
    before: async (signal) => {
      const wait = pauseUntil - ctx.clock.now();
      if (wait > 0) await ctx.clock.sleep(wait, signal);
    },
    endpointHint: 'set `endpoint:` of this target to the Vercel API’s URL (or remove it for https://api.vercel.com)',
    describe,
    // Vercel limits each endpoint separately; when a window is spent, wait for its reset before
    // the next call instead of spending a request on a 429 (X-RateLimit-Reset is epoch seconds).
    onResponse: ({ rateLimit }) => {
      if (rateLimit.remaining === 0 && rateLimit.resetAt !== undefined) pauseUntil = Math.min(rateLimit.resetAt, ctx.clock.now() + 60_000);
    },
  });

  async function project(op: string): Promise<{ id: string; name: string }> {
    projectP ??= http.json({ op, path: `/v9/projects/${encodeURIComponent(config.project)}` }).then(
      (r) => ({ id: String(r.body.id), name: String(r.body.name) }),
      (e: unknown) => {
        projectP = undefined;
        throw e;
      },
    );
    return projectP;
  }

  /**
   * Every entry of the project, following `pagination.next` (a timestamp passed back as `until`).
   * The documented request has no cursor parameter (vercel/sdk @426eb4b filterprojectenvsop.ts
   * `FilterProjectEnvsRequest`; the CLI reads the list in one call, get-env-records.ts), so the
   * cursor is followed only while it brings entries not seen yet: a server that ignores `until`
   * cannot make keyrot loop or count an entry twice.
   */
  async function listEntries(op: string, projectId: string): Promise<EnvEntry[]> {
    const out: EnvEntry[] = [];
    const seen = new Set<string>();
    let until: string | undefined;
    for (let page = 0; page < 100; page++) {
      const r = await http.json<{ envs?: Array<Record<string, unknown>>; pagination?: { next?: number | string | null } } & Record<string, unknown>>({
        op,
        path: `/v10/projects/${encodeURIComponent(projectId)}/env`,
        query: until ? { until } : {},
      });
      // Three documented shapes: {envs, pagination}, {envs, hiddenProductionEnvCount}, or one env object.
      const envs = Array.isArray(r.body.envs) ? r.body.envs : r.body.id ? [r.body as Record<string, unknown>] : [];
      const fresh = envs.map(toEntry).filter((e) => !seen.has(e.id));
      for (const e of fresh) seen.add(e.id);
      out.push(...fresh);
      const next = r.body.pagination?.next;
      if (next === null || next === undefined || fresh.length === 0 || String(next) === until) break;
      until = String(next);
    }
    return out;
  }

  /** The entries of this key that serve the configured targets, and the targets nobody serves. */
  function select(entries: EnvEntry[]): { covering: EnvEntry[]; uncovered: EnvTarget[]; branchOnly: number } {
    const mine = entries.filter((e) => e.key === ctx.varName);
    // Branch-specific preview entries and custom-environment-only entries are other variables
    // as far as the configured targets go: never touched.
    const general = mine.filter((e) => !e.gitBranch && e.target.length > 0);
    const covering = general.filter((e) => e.target.some((t) => wanted.includes(t))).sort((a, b) => rank(a) - rank(b));
    const covered = new Set(covering.flatMap((e) => e.target));
    return { covering, uncovered: wanted.filter((t) => !covered.has(t)), branchOnly: mine.length - general.length };
  }

  function checkTypes(covering: EnvEntry[], op: string): void {
    for (const e of covering) {
      if (e.type === 'secret' || e.type === 'system') {
        throw fail(
          `${where}: ${ctx.varName} entry ${e.id} (${e.target.join(', ')}) is of type "${e.type}", which keyrot cannot write: re-create it as a sensitive or encrypted variable`,
          'unsupported',
          op,
        );
      }
    }
  }

  /** One entry with its decrypted value (GET /v1/.../env/{id}); `value` null when Vercel will not give it. */
  async function readEntry(op: string, projectId: string, id: string): Promise<{ entry: EnvEntry; value: string | null }> {
    const r = await http.json({ op, path: `/v1/projects/${encodeURIComponent(projectId)}/env/${encodeURIComponent(id)}`, about: `${ctx.varName} entry ${id} of ${where}` });
    const entry = toEntry(r.body);
    // Sensitive entries come back without `value` (getprojectenvop.ts GetProjectEnvResponseBody1);
    // an entry marked decrypted:false still holds ciphertext: neither is a readable value.
    const readable = entry.type !== 'sensitive' && typeof entry.value === 'string' && entry.decrypted !== false;
    return { entry, value: readable ? entry.value! : null };
  }

  async function read(): Promise<ReadResult> {
    const p = await project('read');
    const { covering } = select(await listEntries('read', p.id));
    if (covering.length === 0) return { kind: 'absent' };
    const values: Array<{ e: EnvEntry; value: string | null }> = [];
    for (const e of covering) values.push({ e, value: (await readEntry('read', p.id, e.id)).value });
    const hidden = values.find((v) => v.value === null);
    if (hidden) {
      return {
        kind: 'unreadable',
        reason: `${ctx.varName} entry ${hidden.e.id} (${hidden.e.target.join(', ')}) is sensitive: Vercel never returns its value`,
      };
    }
    const v = values[0]!.value!;
    return v ? { kind: 'value', value: new Secret(v) } : { kind: 'absent' };
  }

  async function deploymentsList(op: string, projectId: string, query: Record<string, string>): Promise<Deployment[]> {
    const r = await http.json<{ deployments?: Array<Record<string, unknown>> }>({ op, path: '/v7/deployments', query: { projectId, target: 'production', ...query } });
    return (r.body.deployments ?? []).map(toDeployment);
  }

  /**
   * Polls one deployment until READY; ERROR/CANCELED/BLOCKED or the timeout fail the target.
   * BLOCKED is a readyState of its own (vercel/sdk @426eb4b getdeploymentresponsebody.ts
   * `GetDeploymentResponseBodyDeploymentsReadyState`): the deployment will not build until someone
   * acts on it, so waiting out the timeout would only hide why.
   */
  function watch(op: string, id: string, signal?: AbortSignal): Promise<Deployment> {
    return poll({
      check: async () => toDeployment((await http.json({ op, path: `/v13/deployments/${encodeURIComponent(id)}`, about: `deployment ${id} of ${where}`, signal })).body),
      until: (d) => {
        if (d.readyState === 'BLOCKED') {
          throw fail(
            `${where}: production deployment ${id} is BLOCKED: it will not build until it is unblocked in the Vercel dashboard (for example a commit author without access to the team); the previous deployment keeps serving. Unblock or redeploy it, then resume`,
            'unavailable',
            op,
            { retryable: false },
          );
        }
        if (d.readyState === 'ERROR' || d.readyState === 'CANCELED') {
          throw fail(
            `${where}: production deployment ${id} ended ${d.readyState}${d.errorMessage ? ` (${d.errorMessage})` : ''}; the previous deployment keeps serving. Fix the build in the Vercel dashboard, then resume`,
            'unavailable',
            op,
            { retryable: false },
          );
        }
        return d.readyState === 'READY';
      },
      deadlineMs: timeoutMs,
      clock: ctx.clock,
      signal,
      target: ctx.name,
      op,
      describe: (d) =>
        `${where}: production deployment ${id} is still ${d?.readyState ?? 'unknown'} after ${formatDuration(timeoutMs)}; raise timeout: or check the build in the Vercel dashboard`,
    });
  }

  /**
   * Makes sure a production deployment carrying `marker` exists and is READY: reuses one this
   * rotation already started (meta marker, so a retried or resumed call never deploys twice),
   * else redeploys the latest READY production deployment (`forceNew=1` so it is not
   * deduplicated to the old one). Returns null when the project has nothing in production.
   */
  async function ensureDeployment(op: string, projectId: string, projectName: string, marker: string, rotationId: string, signal?: AbortSignal): Promise<Deployment | null> {
    const remembered = triggered.get(`${marker}:${rotationId}`);
    let id = remembered;
    if (!id) {
      const recent = await deploymentsList(op, projectId, { limit: '20' });
      const ours = recent.find((d) => d.meta[marker] === rotationId && !NEVER_LIVE.includes(d.readyState));
      if (ours) id = ours.id;
    }
    if (!id) {
      const [source] = await deploymentsList(op, projectId, { state: 'READY', limit: '1' });
      if (!source) return null;
      const r = await http.json({
        op,
        method: 'POST',
        path: '/v13/deployments',
        query: { forceNew: '1' },
        body: { name: projectName, deploymentId: source.id, target: 'production', meta: { action: 'redeploy', [marker]: rotationId } },
        about: `the redeploy of ${where}`,
        signal,
      });
      id = String(r.body.id);
      triggered.set(`${marker}:${rotationId}`, id);
      ctx.logger.info(`${ctx.name}: redeploying production of ${where} (${id} from ${source.id})`);
    }
    return watch(op, id, signal);
  }

  function beforeOf(rotationId: string): Map<string, string | undefined> {
    let m = before.get(rotationId);
    if (!m) before.set(rotationId, (m = new Map()));
    return m;
  }

  function stampsOf(receipt: VercelReceipt | undefined): Map<string, number> {
    const out = new Map<string, number>();
    for (const s of receipt?.stamps ?? []) {
      const at = s.lastIndexOf('@');
      if (at > 0) out.set(s.slice(0, at), Number(s.slice(at + 1)));
    }
    return out;
  }

  async function patchValue(op: string, projectId: string, id: string, value: string): Promise<number> {
    const r = await http.json({
      op,
      method: 'PATCH',
      path: `/v9/projects/${encodeURIComponent(projectId)}/env/${encodeURIComponent(id)}`,
      body: { value },
      about: `${ctx.varName} entry ${id} of ${where}`,
    });
    return typeof r.body.updatedAt === 'number' ? r.body.updatedAt : ctx.clock.now();
  }

  const target: Target<VercelReceipt> = {
    id: 'vercel',
    name: ctx.name,
    location: `${where} ${ctx.varName} (${wanted.join(', ')})`,
    lockKey: `vercel:${config.team ?? ''}/${config.project}/${ctx.varName}`,

    async preflight() {
      if (config.redeploy && !wanted.includes('production')) {
        return {
          status: 'blocked',
          reason: `${where}: redeploy: true redeploys production, but targets is ${wanted.join(', ')}; add production or drop redeploy`,
          current: { kind: 'absent' },
        };
      }
      try {
        // The project read doubles as the credential check: a bad token is a bare 403 "Not authorized",
        // a token without the team is "Not authorized: Trying to access resource under scope …"
        // (/v2/user is not used: a team- or project-scoped token need not be allowed to read it).
        const p = await project('preflight');
        const entries = await listEntries('preflight', p.id);
        const { covering, uncovered, branchOnly } = select(entries);
        checkTypes(covering, 'preflight');
        const notes: string[] = [];
        const values: Array<{ e: EnvEntry; value: string | null }> = [];
        for (const e of covering) values.push({ e, value: (await readEntry('preflight', p.id, e.id)).value });
        for (const { e } of values) {
          const extra = e.target.filter((t) => !wanted.includes(t));
          notes.push(`updates ${ctx.varName} entry ${e.id} (${e.type}, ${e.target.join(' + ')})${extra.length ? `: it also serves ${extra.join(', ')}, which gets the new key too` : ''}`);
        }
        const anySensitive = covering.some((e) => e.type === 'sensitive');
        if (uncovered.length) {
          const type = anySensitive && !uncovered.includes('development') ? 'sensitive' : 'encrypted';
          notes.push(`creates a new ${type} ${ctx.varName} entry for ${uncovered.join(', ')} (no entry covers ${uncovered.length > 1 ? 'them' : 'it'} yet)`);
        }
        if (branchOnly) notes.push(`${branchOnly} branch-specific or custom-environment ${ctx.varName} entr${branchOnly > 1 ? 'ies are' : 'y is'} left unchanged`);
        const distinct = new Set(values.filter((v) => v.value !== null).map((v) => v.value));
        if (distinct.size > 1) notes.push(`the covered entries disagree today (${distinct.size} different values): all get the new key`);
        if (values.some((v) => v.value === null)) {
          notes.push(
            redeployOn
              ? 'sensitive: Vercel never returns the value; verified by metadata (the entry’s updatedAt after keyrot’s write), then by the production redeploy reaching READY'
              : 'sensitive: Vercel never returns the value; verified by metadata only (the entry’s updatedAt after keyrot’s write): set redeploy: true to prove it through a deployment',
          );
        } else {
          notes.push('verified by reading the decrypted value back');
        }
        if (redeployOn) {
          const [latest] = await deploymentsList('preflight', p.id, { state: 'READY', limit: '1' });
          notes.push(
            latest
              ? `then redeploys the latest production deployment (${latest.id}) and waits up to ${formatDuration(timeoutMs)} for READY`
              : 'redeploy: true, but the project has no READY production deployment: nothing to redeploy, the next deployment uses the new key',
          );
        } else {
          notes.push('no redeploy: running deployments keep the old key until the next deployment (set redeploy: true), so revoke the old key only after one');
        }
        const hidden = values.find((v) => v.value === null);
        const current: ReadResult =
          covering.length === 0
            ? { kind: 'absent' }
            : hidden
              ? { kind: 'unreadable', reason: `${ctx.varName} entry ${hidden.e.id} is sensitive: Vercel never returns its value` }
              : values[0]!.value
                ? { kind: 'value', value: new Secret(values[0]!.value!) }
                : { kind: 'absent' };
        return { status: 'ready', current, willCreate: uncovered.length > 0, notes } satisfies PreflightResult;
      } catch (e) {
        const err = toTargetError(e, ctx.name, 'preflight');
        // Transient (429, 5xx, timeout): not an answer; the engine retries it, bounded.
        if (err.retryable) throw err;
        return { status: 'blocked', reason: err.message, current: { kind: 'unreadable', reason: err.message } };
      }
    },

    read: () => read(),

    async write(value: Secret, op: OpContext): Promise<VercelReceipt> {
      const p = await project('write');
      const { covering, uncovered } = select(await listEntries('write', p.id));
      checkTypes(covering, 'write');
      const prior = beforeOf(op.rotationId);
      const marker = creationMarker(op.rotationId);
      /** Every pre-existing entry this write leaves on the new key (restore walks these). */
      const entries: string[] = [];
      const patched: string[] = [];
      const created: string[] = [];
      const stamps: string[] = [];
      let sensitive = false;
      for (const e of covering) {
        // An entry this rotation created on an earlier attempt: already ours, restore removes it.
        if (e.comment === marker) created.push(e.id);
        else entries.push(e.id);
        const { entry, value: current } = await readEntry('write', p.id, e.id);
        if (entry.type === 'sensitive') sensitive = true;
        // What the entry held before this rotation: recorded only when it does not hold the new key
        // yet (a resumed write must not mistake the new key for the old one).
        if (!prior.has(e.id) && e.comment !== marker && current !== value.reveal()) prior.set(e.id, current ?? undefined);
        if (current !== null) {
          if (current === value.reveal()) continue; // idempotent: already the new key
        } else {
          // Write-only: skip only when this process wrote this very key and nobody changed it since.
          const w = written.get(e.id);
          if (w && w.fingerprint === value.fingerprint && w.updatedAt === entry.updatedAt) {
            stamps.push(`${e.id}@${w.updatedAt}`);
            continue;
          }
        }
        const updatedAt = await patchValue('write', p.id, e.id, value.reveal());
        written.set(e.id, { fingerprint: value.fingerprint, updatedAt });
        patched.push(e.id);
        stamps.push(`${e.id}@${updatedAt}`);
      }
      if (uncovered.length) {
        // Keep the user's choice: a key kept sensitive elsewhere is created sensitive too
        // (not allowed for development: docs sensitive-environment-variables).
        const type = sensitive && !uncovered.includes('development') ? 'sensitive' : 'encrypted';
        const r = await http.json<{ created?: unknown; failed?: Array<{ error?: { code?: string; message?: string } }> }>({
          op: 'write',
          method: 'POST',
          path: `/v10/projects/${encodeURIComponent(p.id)}/env`,
          body: { key: ctx.varName, value: value.reveal(), type, target: uncovered, comment: marker },
          about: `${ctx.varName} on ${where}`,
        });
        // A 201 can carry failures (createprojectenvop.ts `failed`): it is not a success. Only the
        // code and message are used: the error object may echo the value.
        const failed = Array.isArray(r.body.failed) ? r.body.failed : [];
        if (failed.length) {
          const f = failed[0]?.error ?? {};
          throw fail(
            `Vercel did not create ${ctx.varName} for ${uncovered.join(', ')} on ${where}: ${f.code ?? 'error'}${f.message ? ` (${f.message})` : ''}`,
            f.code === 'ENV_CONFLICT' || f.code === 'ENV_ALREADY_EXISTS' ? 'conflict' : 'invalid',
            'write',
            { status: r.status, retryable: false },
          );
        }
        const list = (Array.isArray(r.body.created) ? r.body.created : [r.body.created]).filter(Boolean) as Array<Record<string, unknown>>;
        const made = list.map(toEntry).find((x) => x.key === ctx.varName);
        if (!made) throw fail(`Vercel answered ${r.status} but created no ${ctx.varName} entry on ${where}`, 'invalid', 'write', { retryable: false });
        created.push(made.id);
        const updatedAt = made.updatedAt ?? ctx.clock.now();
        if (type === 'sensitive') sensitive = true;
        written.set(made.id, { fingerprint: value.fingerprint, updatedAt });
        stamps.push(`${made.id}@${updatedAt}`);
      }
      const times = stamps.map((s) => Number(s.slice(s.lastIndexOf('@') + 1)));
      return {
        project: p.id,
        entries,
        patched,
        created,
        stamps,
        writtenAt: times.length ? Math.max(...times) : null,
        sensitive,
      };
    },

    async verify(value: Secret, op: OpContext, receipt: VercelReceipt | undefined): Promise<VerifyResult> {
      const p = await project('verify');
      const { covering, uncovered } = select(await listEntries('verify', p.id));
      if (uncovered.length) {
        throw fail(`${where}: no ${ctx.varName} entry serves ${uncovered.join(', ')} after the write`, 'mismatch', 'verify', { retryable: false });
      }
      const stamps = stampsOf(receipt);
      let metadata = 0;
      for (const e of covering) {
        const { entry, value: current } = await readEntry('verify', p.id, e.id);
        const label = `${ctx.varName} entry ${e.id} (${e.target.join(', ')})`;
        if (current !== null) {
          if (current !== value.reveal()) {
            const found = current ? `a different key (${fingerprint(current)})` : 'an empty value';
            throw fail(`read-back mismatch: ${label} of ${where} holds ${found}, not the new key (${value.fingerprint})`, 'mismatch', 'verify', { retryable: false });
          }
          continue;
        }
        // Sensitive: the value is write-only, so the proof is that the entry is exactly as keyrot's
        // write left it (Vercel stamps updatedAt on every change).
        const mine = written.get(e.id);
        const stamp = stamps.get(e.id) ?? (mine?.fingerprint === value.fingerprint ? mine.updatedAt : undefined);
        if (stamp === undefined) {
          throw fail(`${label} of ${where} is sensitive and keyrot has no record of writing it in this rotation: run the write again`, 'mismatch', 'verify', { retryable: false });
        }
        if (entry.updatedAt !== stamp) {
          throw fail(`${label} of ${where} changed after keyrot wrote it (updatedAt ${entry.updatedAt ?? 'unknown'}, expected ${stamp}): someone else edited it`, 'mismatch', 'verify', { retryable: false });
        }
        metadata++;
      }
      if (metadata === 0) return { method: 'read-back', detail: `${covering.length} ${ctx.varName} entr${covering.length > 1 ? 'ies' : 'y'} of ${where} hold the new key` };
      return {
        method: 'metadata',
        detail: `${metadata} sensitive ${ctx.varName} entr${metadata > 1 ? 'ies' : 'y'} of ${where} unchanged since keyrot’s write (updatedAt); the value cannot be read back${redeployOn ? ', the redeploy proves it' : ''}`,
      };
    },

    async redeploy(op: OpContext, receipt: VercelReceipt | undefined, purpose: RedeployPurpose = 'write'): Promise<VerifyResult> {
      if (purpose === 'restore') return redeployRestored(op, receipt);
      const p = await project('redeploy');
      const d = await ensureDeployment('redeploy', p.id, p.name, 'keyrotRotation', op.rotationId, op.signal);
      if (!d) return { method: 'metadata', detail: `${where} has no READY production deployment: the next deployment uses the new key` };
      // The deployment's environment is taken when it is created: it must postdate the write.
      const writtenAt = receipt?.writtenAt ?? undefined;
      if (writtenAt !== undefined && d.createdAt < writtenAt) {
        throw fail(`${where}: deployment ${d.id} was created before keyrot’s write: it cannot hold the new key`, 'mismatch', 'redeploy', { retryable: false });
      }
      return { method: 'redeploy', detail: `production deployment ${d.id} of ${where} is READY, built after the write` };
    },

    async restore(previous: Secret | null, op: OpContext, receipt: VercelReceipt | undefined): Promise<void> {
      const p = await project('restore');
      const { covering } = select(await listEntries('restore', p.id));
      const marker = creationMarker(op.rotationId);
      const prior = before.get(op.rotationId);
      const createdIds = new Set<string>([...(receipt?.created ?? []), ...covering.filter((e) => e.comment === marker).map((e) => e.id)]);
      // The entries the write set: from the receipt and this process's memory; with neither (a
      // resumed restore after a crash before the journal got the receipt) every covering entry.
      const known = new Set<string>([...(receipt?.entries ?? []), ...(prior?.keys() ?? [])]);
      const trustKnown = receipt !== undefined || prior !== undefined;
      for (const e of covering) {
        if (createdIds.has(e.id)) {
          // keyrot created this entry: nothing served these targets before.
          await http
            .json({ op: 'restore', method: 'DELETE', path: `/v9/projects/${encodeURIComponent(p.id)}/env/${encodeURIComponent(e.id)}`, about: `${ctx.varName} entry ${e.id} of ${where}` })
            .catch(absentOn404);
          continue;
        }
        if (trustKnown && !known.has(e.id)) continue;
        const own = prior?.get(e.id);
        const target = own ?? previous?.reveal();
        if (target === undefined) continue; // nothing known to put back: the engine reports it
        const { entry, value: current } = await readEntry('restore', p.id, e.id);
        if (current !== null && current === target) continue;
        if (current === null) {
          const w = written.get(e.id);
          if (w && w.fingerprint === fingerprint(target) && w.updatedAt === entry.updatedAt) continue;
        }
        const updatedAt = await patchValue('restore', p.id, e.id, target);
        if (current === null) written.set(e.id, { fingerprint: fingerprint(target), updatedAt });
      }
    },
  };
  // Redeploying is what a config asks for (redeploy: true): then it is there, after writes and restores.
  if (!redeployOn) delete (target as Partial<typeof target>).redeploy;
  return target;

  /**
   * After a restore: production may run the new key if this rotation's redeploy went live, or if
   * any deployment was built after keyrot's write (a deployment takes its environment when it is
   * created); then production is deployed again with the old value back. Read from Vercel (the
   * deployment's meta, its createdAt), so it works after a crash too.
   */
  async function redeployRestored(op: OpContext, receipt: VercelReceipt | undefined): Promise<VerifyResult> {
    const p = await project('redeploy');
    const recent = await deploymentsList('redeploy', p.id, { limit: '20' });
    const ours = recent.find((d) => d.meta.keyrotRotation === op.rotationId);
    const [liveNow] = await deploymentsList('redeploy', p.id, { state: 'READY', limit: '1' });
    const builtAfterWrite = Boolean(liveNow && receipt?.writtenAt != null && liveNow.createdAt >= receipt.writtenAt);
    if (!builtAfterWrite && !(ours && (await wentLive(ours, op.signal)))) {
      return { method: 'redeploy', detail: `no deployment of ${where} ran the new key: production still runs the old value` };
    }
    const d = await ensureDeployment('redeploy', p.id, p.name, 'keyrotRestore', op.rotationId, op.signal);
    return { method: 'redeploy', detail: `production deployment ${d?.id ?? '?'} of ${where} is READY with the old value back` };
  }

  /** Did this deployment serve traffic (READY, or READY once it settles)? ERROR/CANCELED/BLOCKED never did. */
  async function wentLive(d: Deployment, signal?: AbortSignal): Promise<boolean> {
    if (NEVER_LIVE.includes(d.readyState)) return false;
    if (d.readyState === 'READY') return true;
    await watch('redeploy', d.id, signal).catch((err: unknown) => {
      if (!(err instanceof TargetError && err.kind === 'unavailable')) throw err;
    });
    const now = await http.json({ op: 'redeploy', path: `/v13/deployments/${encodeURIComponent(d.id)}`, signal });
    return toDeployment(now.body).readyState === 'READY';
  }
}
