import { waitTimeoutMs } from '../types.ts';
import { lazyCredential } from '../common.ts';
import { Secret, fingerprint } from '../../core/secret.ts';
import { TargetError, toTargetError, type TargetErrorKind } from '../../core/errors.ts';
import { createProviderHttp, type Described, type ProviderFailure } from '../../runtime/provider-http.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import { poll } from '../../runtime/poll.ts';
import type { CredentialRef } from '../../inventory/credentials.ts';
import { formatDuration } from '../../inventory/duration.ts';
import type { CommonTargetConfig, OpContext, PreflightResult, ReadResult, RedeployPurpose, Target, TargetContext, VerifyResult } from '../types.ts';
import { RAILWAY_API, type RailwayConfig, type RailwayReceipt } from './index.ts';

/**
 * A Railway service variable over the public GraphQL API (README "Provider facts"), with plain fetch.
 * Operations and their signatures follow the official CLI (railwayapp/cli @df3838b:
 * src/gql/schema.json, src/gql/{queries,mutations}/strings/*.graphql, src/client.rs for the two
 * auth headers and error handling). Rotation follows Railway's own advice for secrets
 * (docs integrations/api/manage-variables, "Rotate secrets"): upsert with `skipDeploys: true`,
 * then deploy deliberately — here exactly one `serviceInstanceRedeploy`, watched to SUCCESS.
 */


type Status = string;
interface DeploymentNode {
  id: string;
  status: Status;
  createdAt: string;
}

const FAILED: readonly Status[] = ['FAILED', 'CRASHED', 'REMOVED', 'SKIPPED'];
/**
 * A deployment that went live. SLEEPING is one App Sleeping put to sleep after it went live: the
 * CLI counts it with SUCCESS as a settled, deployed state (railwayapp/cli @df3838b
 * src/commands/output/service_summary.rs `is_stable_status`), and a service that sleeps soon after
 * deploying may never be seen as SUCCESS between two polls.
 */
const LIVE: readonly Status[] = ['SUCCESS', 'SLEEPING'];
/**
 * Ended without ever serving: the deployment before it kept running. CRASHED did serve, then
 * died; REMOVED may have served before it was replaced (conservatively: it did).
 */
const NEVER_LIVE: readonly Status[] = ['FAILED', 'SKIPPED'];

/**
 * Railway's cadence for waits, gentler than the default: every look spends the token's hourly
 * request budget (100/hour on the Free plan per Railway's public API docs, "Rate Limits").
 */
const RAILWAY_POLL = { intervalMs: 2000, backoff: 1.5, maxIntervalMs: 15_000 } as const;

const Q = {
  projectToken: 'query KeyrotProjectToken { projectToken { project { id name } environment { id name } } }',
  project:
    'query KeyrotProject($id: String!) { project(id: $id) { id name environments { edges { node { id name } } } services { edges { node { id name } } } } }',
  variables:
    'query KeyrotVariables($projectId: String!, $environmentId: String!, $serviceId: String) { variables(projectId: $projectId, environmentId: $environmentId, serviceId: $serviceId) }',
  upsert: 'mutation KeyrotVariableUpsert($input: VariableUpsertInput!) { variableUpsert(input: $input) }',
  delete: 'mutation KeyrotVariableDelete($input: VariableDeleteInput!) { variableDelete(input: $input) }',
  deployments:
    'query KeyrotDeployments($input: DeploymentListInput!, $first: Int) { deployments(input: $input, first: $first) { edges { node { id status createdAt } } } }',
  deployment: 'query KeyrotDeployment($id: String!) { deployment(id: $id) { id status createdAt } }',
  redeploy: 'mutation KeyrotRedeploy($environmentId: String!, $serviceId: String!) { serviceInstanceRedeploy(environmentId: $environmentId, serviceId: $serviceId) }',
} as const;

export function createRailwayTarget(config: RailwayConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target<RailwayReceipt> {
  const endpoint = config.endpoint ?? RAILWAY_API;
  // Railway's conventions (CLI consts.rs / client.rs): RAILWAY_API_TOKEN is an account or workspace
  // token (Authorization: Bearer), RAILWAY_TOKEN a project token (Project-Access-Token header).
  const envName = ctx.env.RAILWAY_API_TOKEN ? 'RAILWAY_API_TOKEN' : ctx.env.RAILWAY_TOKEN ? 'RAILWAY_TOKEN' : 'RAILWAY_API_TOKEN';
  const tokenRef: CredentialRef = config.token ?? { kind: 'env', name: envName, raw: `env:${envName}` };
  const tokenType = config.tokenType ?? (config.token ? 'account' : envName === 'RAILWAY_TOKEN' ? 'project' : 'account');
  const timeoutMs = waitTimeoutMs(config.timeout, 15 * 60_000);
  const ids = { projectId: config.project, environmentId: config.environment, serviceId: config.service };
  const where = `Railway service ${config.service} (project ${config.project}, environment ${config.environment})`;

  const credential = lazyCredential(ctx, tokenRef);
  let pauseUntil = 0;
  /** Per rotation: the value this process wrote (fingerprint), what the variable held before, the deployments it started. */
  const written = new Map<string, string>();
  const before = new Map<string, { exists: boolean; value: string | null }>();
  const triggered = new Map<string, string>();

  function fail(message: string, kind: TargetErrorKind, op: string, extra: { retryAfterMs?: number; status?: number; retryable?: boolean } = {}): TargetError {
    return new TargetError(message, { target: ctx.name, op, kind, ...extra });
  }

  function authFailure(detail: string): Described {
    const how =
      tokenType === 'project'
        ? `a project token for environment ${config.environment} (Project settings → Tokens), sent as Project-Access-Token`
        : 'an account or workspace token with access to the project (railway.com/account/tokens)';
    return { message: `Railway rejected the token from ${tokenRef.raw} (${detail}): use ${how}`, kind: 'auth', retryable: false };
  }

  /** A failed HTTP answer. */
  function describe(f: ProviderFailure): Described {
    if (f.status === 429) {
      // Railway sends Retry-After (seconds) on every 429 (CLI client.rs).
      const secs = f.rateLimit.retryAfterMs !== undefined ? ` for ${formatDuration(f.rateLimit.retryAfterMs)}` : '';
      return `Railway rate-limited ${f.op} on ${where}${secs}`;
    }
    if (/not authorized/i.test(f.message) || f.status === 401) return authFailure(f.message || `HTTP ${f.status}`);
    if (f.status === 403) {
      // Cloudflare answers abusive traffic with an HTML "Access denied" page (station.railway.com).
      return { message: `Railway refused ${f.op} on ${where} (HTTP 403${f.message ? `: ${f.message.slice(0, 120)}` : ''}); wait a while before retrying`, kind: 'rate-limited', retryable: true, retryAfterMs: 60_000 };
    }
    if (f.status >= 500) return `Railway failed ${f.op} on ${where} (HTTP ${f.status}); try again later`;
    return { message: `Railway rejected keyrot's ${f.op} request for ${where} (HTTP ${f.status}${f.message ? `: ${f.message}` : ''})`, kind: 'invalid', retryable: false };
  }

  /** A GraphQL error (they arrive with HTTP 200). */
  function describeGraphQL(message: string, op: string): Described {
    if (/project token not found/i.test(message)) return authFailure('project token not found: revoked or mistyped');
    if (/two factor authentication required/i.test(message)) {
      return { message: `Railway requires two-factor authentication for this workspace before ${op} on ${where}: enable 2FA for the token's owner`, kind: 'permission' };
    }
    // Railway says "Not Authorized" both for a dead token and for one that cannot see the
    // resource (the CLI treats it as an auth failure, client.rs auth_failure_error): say both.
    if (/not authorized/i.test(message)) {
      return authFailure(`Not Authorized: the token is invalid, expired or revoked, or cannot reach project ${config.project}${tokenType === 'project' ? ` environment ${config.environment}` : ''}`);
    }
    if (/rate limit|too many requests/i.test(message)) return { message: `Railway rate-limited ${op} on ${where}`, kind: 'rate-limited' };
    if (/not found/i.test(message)) return { message: `${where}: ${message}; check project, environment and service ids in targets.yaml`, kind: 'not-found' };
    return { message: `Railway refused ${op} on ${where}: ${message}`, kind: 'invalid', retryable: false };
  }

  const http = createProviderHttp({
    provider: 'Railway',
    baseUrl: endpoint,
    target: ctx.name,
    clock: ctx.clock,
    timeoutMs: waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS),
    headers: { 'user-agent': 'keyrot' },
    // Railway's conventions (CLI client.rs): an account/workspace token as Bearer, a project token as Project-Access-Token.
    auth: async (op): Promise<Record<string, string>> => {
      const token = (await credential(op)).reveal();
      return tokenType === 'project' ? { 'project-access-token': token } : { authorization: `Bearer ${token}` };
    },
    before: async (signal) => {
      const wait = pauseUntil - ctx.clock.now();
      if (wait > 0) await ctx.clock.sleep(wait, signal);
    },
    endpointHint: 'set `endpoint:` of this target to Railway’s GraphQL URL (or remove it for https://backboard.railway.com/graphql/v2)',
    describe,
    describeGraphQL,
    onResponse: ({ rateLimit }) => {
      if (rateLimit.remaining === 0 && rateLimit.resetAt !== undefined) pauseUntil = Math.min(rateLimit.resetAt, ctx.clock.now() + 60_000);
    },
  });

  async function variables(op: string, serviceId: string | null = config.service): Promise<Record<string, string | null>> {
    const d = await http.graphql<{ variables: Record<string, string | null> }>(op, Q.variables, { projectId: config.project, environmentId: config.environment, serviceId });
    return d.variables ?? {};
  }

  async function current(op: string): Promise<{ exists: boolean; value: string | null }> {
    const vars = await variables(op);
    if (!Object.hasOwn(vars, ctx.varName)) return { exists: false, value: null };
    const value = vars[ctx.varName] ?? null;
    // Sealed variables come back with a null value: set, but unreadable by anyone (railwayapp/cli src/controllers/variables.rs).
    return { exists: true, value };
  }

  async function read(): Promise<ReadResult> {
    const c = await current('read');
    if (!c.exists) return { kind: 'absent' };
    if (c.value === null) return { kind: 'unreadable', reason: `${ctx.varName} is a sealed Railway variable: its value cannot be read back` };
    return c.value ? { kind: 'value', value: new Secret(c.value) } : { kind: 'absent' };
  }

  async function latestDeployment(op: string, signal?: AbortSignal): Promise<DeploymentNode | null> {
    const d = await http.graphql<{ deployments: { edges: Array<{ node: DeploymentNode }> } }>(op, Q.deployments, { input: ids, first: 1 }, signal);
    return d.deployments.edges[0]?.node ?? null;
  }

  async function upsert(op: string, value: string): Promise<void> {
    const d = await http.graphql<{ variableUpsert: boolean }>(op, Q.upsert, { input: { ...ids, name: ctx.varName, value, skipDeploys: true } });
    if (d.variableUpsert !== true) throw fail(`Railway did not confirm the upsert of ${ctx.varName} on ${where}`, 'unavailable', op);
  }

  /** Polls one deployment until it is live (SUCCESS or SLEEPING); FAILED/CRASHED/REMOVED/SKIPPED or the timeout fail. */
  function watch(op: string, id: string, signal?: AbortSignal): Promise<DeploymentNode> {
    return poll({
      check: async () => (await http.graphql<{ deployment: DeploymentNode }>(op, Q.deployment, { id }, signal)).deployment,
      until: (d) => {
        if (FAILED.includes(d.status)) {
          throw fail(`${where}: deployment ${id} ended ${d.status}; see its logs in the Railway dashboard, then resume`, 'unavailable', op, { retryable: false });
        }
        if (d.status === 'NEEDS_APPROVAL') {
          throw fail(`${where}: deployment ${id} waits for approval in the Railway dashboard; approve it, then resume`, 'unavailable', op, { retryable: false });
        }
        return LIVE.includes(d.status);
      },
      deadlineMs: timeoutMs,
      ...RAILWAY_POLL,
      clock: ctx.clock,
      signal,
      target: ctx.name,
      op,
      describe: (d) => `${where}: deployment ${id} is still ${d?.status ?? 'unknown'} after ${formatDuration(timeoutMs)}; raise timeout: or check it in the Railway dashboard`,
    });
  }

  /**
   * One redeploy for `key` (a rotation's write or its restore): reuses the deployment this process
   * started, or one created after `since` (any deployment created after the upsert runs the new
   * variables), else triggers serviceInstanceRedeploy and picks up the deployment it created.
   */
  async function ensureDeployment(op: string, key: string, since: string | null | undefined, signal?: AbortSignal): Promise<DeploymentNode | null> {
    let id = triggered.get(key);
    if (!id) {
      const latest = await latestDeployment(op, signal);
      if (!latest) return null;
      if (since !== undefined && latest.id !== since && !FAILED.includes(latest.status)) {
        id = latest.id;
      } else {
        const r = await http.graphql<{ serviceInstanceRedeploy: boolean }>(op, Q.redeploy, { environmentId: config.environment, serviceId: config.service }, signal);
        if (r.serviceInstanceRedeploy !== true) throw fail(`Railway did not accept the redeploy of ${where}`, 'unavailable', op, { retryable: false });
        // The mutation answers a Boolean: the new deployment is the next one to appear in the list.
        const appeared = await poll({
          check: () => latestDeployment(op, signal),
          until: (now) => now !== null && now.id !== latest.id,
          deadlineMs: Math.min(timeoutMs, 120_000),
          ...RAILWAY_POLL,
          clock: ctx.clock,
          signal,
          target: ctx.name,
          op,
          describe: () => `${where}: Railway accepted the redeploy but no new deployment appeared`,
        });
        id = appeared!.id;
        ctx.logger.info(`${ctx.name}: redeploying ${where} (deployment ${id})`);
      }
      triggered.set(key, id);
    }
    return watch(op, id, signal);
  }

  return {
    id: 'railway',
    name: ctx.name,
    location: `${where} ${ctx.varName}`,
    lockKey: `railway:${config.project}/${config.environment}/${config.service}/${ctx.varName}`,

    async preflight(signal) {
      try {
        let label = `service ${config.service}`;
        if (tokenType === 'project') {
          // A project token is bound to one environment: check it is this one (the CLI's ProjectToken query).
          const t = await http.graphql<{ projectToken: { project: { id: string; name: string }; environment: { id: string; name: string } } }>('preflight', Q.projectToken, {}, signal);
          if (t.projectToken.project.id !== config.project || t.projectToken.environment.id !== config.environment) {
            return {
              status: 'blocked',
              reason: `the project token from ${tokenRef.raw} belongs to project ${t.projectToken.project.id} environment ${t.projectToken.environment.id}, not ${config.project} / ${config.environment}: use a token of that environment`,
              current: { kind: 'absent' },
            };
          }
          label = `service ${config.service} in ${t.projectToken.project.name}/${t.projectToken.environment.name}`;
        } else {
          const p = await http.graphql<{ project: { name: string; environments: { edges: Array<{ node: { id: string; name: string } }> }; services: { edges: Array<{ node: { id: string; name: string } }> } } }>(
            'preflight',
            Q.project,
            { id: config.project },
            signal,
          );
          const env = p.project.environments.edges.map((e) => e.node).find((e) => e.id === config.environment);
          const svc = p.project.services.edges.map((e) => e.node).find((s) => s.id === config.service);
          if (!env || !svc) {
            const missing = !env
              ? `environment ${config.environment} is not in project ${p.project.name} (environments: ${p.project.environments.edges.map((e) => `${e.node.name}=${e.node.id}`).join(', ')})`
              : `service ${config.service} is not in project ${p.project.name} (services: ${p.project.services.edges.map((e) => `${e.node.name}=${e.node.id}`).join(', ')})`;
            return { status: 'blocked', reason: `Railway: ${missing}`, current: { kind: 'unreadable', reason: missing } };
          }
          label = `service ${svc.name} in ${p.project.name}/${env.name}`;
        }
        const c = await current('preflight');
        const shared = await variables('preflight', null);
        const latest = await latestDeployment('preflight', signal);
        const notes: string[] = [];
        notes.push(c.exists ? `upserts ${ctx.varName} on ${label} with skipDeploys` : `creates ${ctx.varName} on ${label} (not set yet) with skipDeploys`);
        if (!c.exists && Object.hasOwn(shared, ctx.varName)) notes.push(`a shared ${ctx.varName} exists in this environment: the new service variable overrides it for this service only`);
        notes.push(
          c.exists && c.value === null
            ? 'sealed: Railway never returns the value; verified by metadata (the variable is present after an acknowledged upsert), then by the redeploy reaching SUCCESS'
            : 'verified by reading the value back',
        );
        notes.push(
          latest
            ? `then redeploys the service once (serviceInstanceRedeploy) and waits up to ${formatDuration(timeoutMs)} for SUCCESS`
            : 'the service has never been deployed: no redeploy, its first deployment uses the new key',
        );
        const cur: ReadResult = !c.exists
          ? { kind: 'absent' }
          : c.value === null
            ? { kind: 'unreadable', reason: `${ctx.varName} is a sealed Railway variable: its value cannot be read back` }
            : c.value
              ? { kind: 'value', value: new Secret(c.value) }
              : { kind: 'absent' };
        return { status: 'ready', current: cur, willCreate: !c.exists, notes } satisfies PreflightResult;
      } catch (e) {
        const err = toTargetError(e, ctx.name, 'preflight');
        // Transient (429, 5xx, timeout): not an answer; the engine retries it, bounded.
        if (err.retryable) throw err;
        return { status: 'blocked', reason: err.message, current: { kind: 'unreadable', reason: err.message } };
      }
    },

    read: () => read(),

    async write(value: Secret, op: OpContext): Promise<RailwayReceipt> {
      const c = await current('write');
      const sealed = c.exists && c.value === null;
      // Idempotent: the same value already there (or, sealed, written by this rotation) → no upsert.
      const already = c.value === value.reveal() || (sealed && written.get(op.rotationId) === value.fingerprint);
      if (!already) {
        // What the variable held before this rotation (only while it does not hold the new key).
        if (!before.has(op.rotationId)) before.set(op.rotationId, c);
        await upsert('write', value.reveal());
        written.set(op.rotationId, value.fingerprint);
      }
      // The service's latest deployment once the variable is written: any later one runs the new
      // value (a deployment snapshots the variables when it is created).
      const latest = await latestDeployment('write');
      return { upserted: !already, created: !already && !c.exists, sealed, deploymentBefore: latest?.id ?? null };
    },

    async verify(value: Secret, op: OpContext, receipt: RailwayReceipt | undefined): Promise<VerifyResult> {
      const c = await current('verify');
      if (!c.exists) throw fail(`${ctx.varName} is missing on ${where} after the write`, 'mismatch', 'verify', { retryable: false });
      if (c.value !== null) {
        if (c.value === value.reveal()) return { method: 'read-back', detail: `${ctx.varName} on ${where} holds the new key` };
        throw fail(`read-back mismatch: ${ctx.varName} on ${where} holds ${c.value ? `a different key (${fingerprint(c.value)})` : 'an empty value'}, not the new key (${value.fingerprint})`, 'mismatch', 'verify', { retryable: false });
      }
      if (written.get(op.rotationId) !== value.fingerprint && receipt?.upserted !== true) {
        throw fail(`${ctx.varName} on ${where} is sealed and keyrot has no record of writing it in this rotation: run the write again`, 'mismatch', 'verify', { retryable: false });
      }
      return {
        method: 'metadata',
        detail: `${ctx.varName} on ${where} is sealed: present after Railway acknowledged keyrot's upsert; the value cannot be read back, the redeploy proves it`,
      };
    },

    async redeploy(op: OpContext, receipt: RailwayReceipt | undefined, purpose: RedeployPurpose = 'write'): Promise<VerifyResult> {
      if (purpose === 'restore') return redeployRestored(op, receipt);
      const d = await ensureDeployment('redeploy', `write:${op.rotationId}`, receipt ? receipt.deploymentBefore : undefined, op.signal);
      if (!d) return { method: 'metadata', detail: `${where} has never been deployed: its first deployment uses the new key` };
      return { method: 'redeploy', detail: `deployment ${d.id} of ${where} reached ${d.status} after the upsert` };
    },

    async restore(previous: Secret | null, op: OpContext, receipt: RailwayReceipt | undefined): Promise<void> {
      const c = await current('restore');
      const prior = before.get(op.rotationId);
      // This process's memory of the value before the write wins (exact); else the engine's `previous`.
      const target = prior ? (prior.exists ? (prior.value ?? previous?.reveal() ?? null) : null) : (previous?.reveal() ?? null);
      // Only the variable: the engine redeploys afterwards (redeploy with purpose 'restore').
      if (target === null) {
        // Nothing was there before this rotation: remove only what it created.
        const createdHere = prior?.exists === false || receipt?.created === true || (receipt === undefined && prior === undefined && previous === null);
        if (c.exists && createdHere) {
          await http.graphql('restore', Q.delete, { input: { ...ids, name: ctx.varName } }).catch((e: unknown) => {
            if (!(e instanceof TargetError && e.kind === 'not-found')) throw e;
          });
        }
      } else if (c.value !== target && !(c.value === null && written.get(`restore:${op.rotationId}`) === fingerprint(target))) {
        await upsert('restore', target);
        written.set(`restore:${op.rotationId}`, fingerprint(target));
      }
    },
  };

  /**
   * After a restore: a deployment created after the write snapshotted the new key, so unless none
   * of those went live (a FAILED build never served), the service is deployed again (and waited
   * for) to run the restored value. Read from Railway, so it works after a crash too.
   */
  async function redeployRestored(op: OpContext, receipt: RailwayReceipt | undefined): Promise<VerifyResult> {
    const since = await deploymentsAfter(receipt?.deploymentBefore, op.signal);
    if (since === null) return { method: 'metadata', detail: `${where} has never been deployed: nothing runs the new key` };
    const wentLive = since.some((d) => !NEVER_LIVE.includes(d.status));
    if (!wentLive) return { method: 'redeploy', detail: `no deployment of ${where} since the write went live: it still runs the old value` };
    const d = await ensureDeployment('redeploy', `restore:${op.rotationId}`, undefined, op.signal);
    return { method: 'redeploy', detail: `deployment ${d?.id ?? '?'} of ${where} reached ${d?.status ?? '?'} with the restored value` };
  }

  /**
   * The deployments created after `before` (the one live before the write), newest first; all the
   * recent ones when `before` is unknown (no receipt: assume they may run the new key). null: never deployed.
   */
  async function deploymentsAfter(before: string | null | undefined, signal?: AbortSignal): Promise<DeploymentNode[] | null> {
    const d = await http.graphql<{ deployments: { edges: Array<{ node: DeploymentNode }> } }>('redeploy', Q.deployments, { input: ids, first: 20 }, signal);
    const all = d.deployments.edges.map((e) => e.node);
    if (!all.length) return null;
    const cut = before ? all.findIndex((x) => x.id === before) : -1;
    return cut >= 0 ? all.slice(0, cut) : all;
  }
}
