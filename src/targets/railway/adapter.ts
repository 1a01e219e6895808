import { waitTimeoutMs } from '../types.ts';
import { Secret, fingerprint } from '../../core/secret.ts';
import { toTargetError } from '../../core/errors.ts';
import { poll } from '../../runtime/poll.ts';
import { formatDuration } from '../../inventory/duration.ts';
import type { CommonTargetConfig, OpContext, PreflightResult, ReadResult, RedeployPurpose, Target, TargetContext, VerifyResult } from '../types.ts';
import type { RailwayConfig, RailwayReceipt } from './index.ts';
import { RailwayApi, type DeploymentNode } from './api.ts';

/**
 * A Railway service variable over the public GraphQL API (README "Provider facts"), with plain fetch.
 * Operations and their signatures follow the official CLI (railwayapp/cli @df3838b:
 * src/gql/schema.json, src/gql/{queries,mutations}/strings/*.graphql, src/client.rs for the two
 * auth headers and error handling). Rotation follows Railway's own advice for secrets
 * (docs integrations/api/manage-variables, "Rotate secrets"): upsert with `skipDeploys: true`,
 * then deploy deliberately — here exactly one `serviceInstanceRedeploy`, watched to SUCCESS.
 */


type Status = string;

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

const NOT_RETRYABLE = { retryable: false } as const;

/** The variable as the service has it: absent, sealed (value null), or readable. */
type Current = { exists: boolean; value: string | null };

export function createRailwayTarget(config: RailwayConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target<RailwayReceipt> {
  return new RailwayTarget(config, ctx);
}

/** One variable of one Railway service; written with skipDeploys, then the service redeployed once. */
class RailwayTarget implements Target<RailwayReceipt> {
  readonly id = 'railway' as const;
  readonly name: string;
  readonly location: string;
  readonly lockKey: string;
  readonly rateLimitKey: string;
  private readonly api: RailwayApi;
  private readonly config: RailwayConfig & CommonTargetConfig;
  private readonly ctx: TargetContext & { name: string };
  private readonly varName: string;
  private readonly where: string;
  private readonly timeoutMs: number;
  /** Per rotation: the value this process wrote (fingerprint), what the variable held before, the deployments it started. */
  private readonly written = new Map<string, string>();
  private readonly before = new Map<string, Current>();
  private readonly triggered = new Map<string, string>();

  constructor(config: RailwayConfig & CommonTargetConfig, ctx: TargetContext & { name: string }) {
    this.config = config;
    this.ctx = ctx;
    this.name = ctx.name;
    this.varName = ctx.varName;
    this.api = new RailwayApi(config, ctx);
    this.where = this.api.where;
    this.timeoutMs = waitTimeoutMs(config.timeout, 15 * 60_000);
    this.location = `${this.where} ${ctx.varName}`;
    this.rateLimitKey = this.api.rateLimitKey;
    this.lockKey = `railway:${config.project}/${config.environment}/${config.service}/${ctx.varName}`;
  }

  private async current(op: string): Promise<Current> {
    const vars = await this.api.variables(op);
    if (!Object.hasOwn(vars, this.varName)) return { exists: false, value: null };
    // Sealed variables come back with a null value: set, but unreadable by anyone (railwayapp/cli src/controllers/variables.rs).
    return { exists: true, value: vars[this.varName] ?? null };
  }

  private asRead(c: Current): ReadResult {
    if (!c.exists) return { kind: 'absent' };
    if (c.value === null) return { kind: 'unreadable', reason: `${this.varName} is a sealed Railway variable: its value cannot be read back` };
    return c.value ? { kind: 'value', value: new Secret(c.value) } : { kind: 'absent' };
  }

  async read(): Promise<ReadResult> {
    return this.asRead(await this.current('read'));
  }

  async preflight(signal?: AbortSignal): Promise<PreflightResult> {
    try {
      const scope = await this.scope(signal);
      if ('blocked' in scope) return scope.blocked;
      const c = await this.current('preflight');
      const shared = await this.api.variables('preflight', null);
      const [latest] = await this.api.deployments('preflight', 1, signal);
      const { varName } = this;
      const notes: string[] = [];
      notes.push(c.exists ? `upserts ${varName} on ${scope.label} with skipDeploys` : `creates ${varName} on ${scope.label} (not set yet) with skipDeploys`);
      if (!c.exists && Object.hasOwn(shared, varName)) notes.push(`a shared ${varName} exists in this environment: the new service variable overrides it for this service only`);
      notes.push(
        c.exists && c.value === null
          ? 'sealed: Railway never returns the value; verified by metadata (the variable is present after an acknowledged upsert), then by the redeploy reaching SUCCESS'
          : 'verified by reading the value back',
      );
      notes.push(
        latest
          ? `then redeploys the service once (serviceInstanceRedeploy) and waits up to ${formatDuration(this.timeoutMs)} for SUCCESS`
          : 'the service has never been deployed: no redeploy, its first deployment uses the new key',
      );
      return { status: 'ready', current: this.asRead(c), willCreate: !c.exists, notes } satisfies PreflightResult;
    } catch (e) {
      const err = toTargetError(e, this.name, 'preflight');
      // Transient (429, 5xx, timeout): not an answer; the engine retries it, bounded.
      if (err.retryable) throw err;
      return { status: 'blocked', reason: err.message, current: { kind: 'unreadable', reason: err.message } };
    }
  }

  /** Checks the token reaches this project, environment and service; names them for the plan. */
  private async scope(signal?: AbortSignal): Promise<{ label: string } | { blocked: PreflightResult }> {
    const { config } = this;
    if (this.api.tokenType === 'project') {
      // A project token is bound to one environment: check it is this one (the CLI's ProjectToken query).
      const t = await this.api.projectToken(signal);
      if (t.project.id !== config.project || t.environment.id !== config.environment) {
        const reason = `the project token from ${this.api.tokenRef.raw} belongs to project ${t.project.id} environment ${t.environment.id}, not ${config.project} / ${config.environment}: use a token of that environment`;
        return { blocked: { status: 'blocked', reason, current: { kind: 'absent' } } };
      }
      return { label: `service ${config.service} in ${t.project.name}/${t.environment.name}` };
    }
    const p = await this.api.project(signal);
    const env = p.environments.edges.map((e) => e.node).find((e) => e.id === config.environment);
    const svc = p.services.edges.map((e) => e.node).find((s) => s.id === config.service);
    if (env && svc) return { label: `service ${svc.name} in ${p.name}/${env.name}` };
    const missing = !env
      ? `environment ${config.environment} is not in project ${p.name} (environments: ${p.environments.edges.map((e) => `${e.node.name}=${e.node.id}`).join(', ')})`
      : `service ${config.service} is not in project ${p.name} (services: ${p.services.edges.map((e) => `${e.node.name}=${e.node.id}`).join(', ')})`;
    return { blocked: { status: 'blocked', reason: `Railway: ${missing}`, current: { kind: 'unreadable', reason: missing } } };
  }

  async write(value: Secret, op: OpContext): Promise<RailwayReceipt> {
    const c = await this.current('write');
    const sealed = c.exists && c.value === null;
    // Idempotent: the same value already there (or, sealed, written by this rotation) → no upsert.
    const already = c.value === value.reveal() || (sealed && this.written.get(op.rotationId) === value.fingerprint);
    if (!already) {
      // What the variable held before this rotation (only while it does not hold the new key).
      if (!this.before.has(op.rotationId)) this.before.set(op.rotationId, c);
      await this.api.upsert('write', value.reveal());
      this.written.set(op.rotationId, value.fingerprint);
    }
    // The service's latest deployment once the variable is written: any later one runs the new
    // value (a deployment snapshots the variables when it is created).
    const [latest] = await this.api.deployments('write', 1);
    return { upserted: !already, created: !already && !c.exists, sealed, deploymentBefore: latest?.id ?? null };
  }

  async verify(value: Secret, op: OpContext, receipt: RailwayReceipt | undefined): Promise<VerifyResult> {
    const { varName, where } = this;
    const c = await this.current('verify');
    if (!c.exists) throw this.api.fail(`${varName} is missing on ${where} after the write`, 'mismatch', 'verify', NOT_RETRYABLE);
    if (c.value !== null) {
      if (c.value === value.reveal()) return { method: 'read-back', detail: `${varName} on ${where} holds the new key` };
      const holds = c.value ? `a different key (${fingerprint(c.value)})` : 'an empty value';
      throw this.api.fail(`read-back mismatch: ${varName} on ${where} holds ${holds}, not the new key (${value.fingerprint})`, 'mismatch', 'verify', NOT_RETRYABLE);
    }
    if (this.written.get(op.rotationId) !== value.fingerprint && receipt?.upserted !== true) {
      throw this.api.fail(`${varName} on ${where} is sealed and keyrot has no record of writing it in this rotation: run the write again`, 'mismatch', 'verify', NOT_RETRYABLE);
    }
    return {
      method: 'metadata',
      detail: `${varName} on ${where} is sealed: present after Railway acknowledged keyrot's upsert; the value cannot be read back, the redeploy proves it`,
    };
  }

  async redeploy(op: OpContext, receipt: RailwayReceipt | undefined, purpose: RedeployPurpose = 'write'): Promise<VerifyResult> {
    if (purpose === 'restore') return this.redeployRestored(op, receipt);
    const d = await this.ensureDeployment('redeploy', `write:${op.rotationId}`, receipt ? receipt.deploymentBefore : undefined, op.signal);
    if (!d) return { method: 'metadata', detail: `${this.where} has never been deployed: its first deployment uses the new key` };
    return { method: 'redeploy', detail: `deployment ${d.id} of ${this.where} reached ${d.status} after the upsert` };
  }

  async restore(previous: Secret | null, op: OpContext, receipt: RailwayReceipt | undefined): Promise<void> {
    const c = await this.current('restore');
    const prior = this.before.get(op.rotationId);
    // This process's memory of the value before the write wins (exact); else the engine's `previous`.
    const target = prior ? (prior.exists ? (prior.value ?? previous?.reveal() ?? null) : null) : (previous?.reveal() ?? null);
    // Only the variable: the engine redeploys afterwards (redeploy with purpose 'restore').
    if (target === null) {
      // Nothing was there before this rotation: remove only what it created.
      const createdHere = prior?.exists === false || receipt?.created === true || (receipt === undefined && prior === undefined && previous === null);
      if (c.exists && createdHere) await this.api.deleteVariable('restore');
    } else if (c.value !== target && !(c.value === null && this.written.get(`restore:${op.rotationId}`) === fingerprint(target))) {
      await this.api.upsert('restore', target);
      this.written.set(`restore:${op.rotationId}`, fingerprint(target));
    }
  }

  /**
   * After a restore: a deployment created after the write snapshotted the new key, so unless none
   * of those went live (a FAILED build never served), the service is deployed again (and waited
   * for) to run the restored value. Read from Railway, so it works after a crash too.
   */
  private async redeployRestored(op: OpContext, receipt: RailwayReceipt | undefined): Promise<VerifyResult> {
    const since = await this.deploymentsAfter(receipt?.deploymentBefore, op.signal);
    if (since === null) return { method: 'metadata', detail: `${this.where} has never been deployed: nothing runs the new key` };
    const wentLive = since.some((d) => !NEVER_LIVE.includes(d.status));
    if (!wentLive) return { method: 'redeploy', detail: `no deployment of ${this.where} since the write went live: it still runs the old value` };
    const d = await this.ensureDeployment('redeploy', `restore:${op.rotationId}`, undefined, op.signal);
    return { method: 'redeploy', detail: `deployment ${d?.id ?? '?'} of ${this.where} reached ${d?.status ?? '?'} with the restored value` };
  }

  /**
   * The deployments created after `before` (the one live before the write), newest first; all the
   * recent ones when `before` is unknown (no receipt: assume they may run the new key). null: never deployed.
   */
  private async deploymentsAfter(before: string | null | undefined, signal?: AbortSignal): Promise<DeploymentNode[] | null> {
    const all = await this.api.deployments('redeploy', 20, signal);
    if (!all.length) return null;
    const cut = before ? all.findIndex((x) => x.id === before) : -1;
    return cut >= 0 ? all.slice(0, cut) : all;
  }

  /**
   * One redeploy for `key` (a rotation's write or its restore): reuses the deployment this process
   * started, or one created after `since` (any deployment created after the upsert runs the new
   * variables), else triggers serviceInstanceRedeploy and picks up the deployment it created.
   */
  private async ensureDeployment(op: string, key: string, since: string | null | undefined, signal?: AbortSignal): Promise<DeploymentNode | null> {
    let id = this.triggered.get(key);
    if (!id) {
      const [latest] = await this.api.deployments(op, 1, signal);
      if (!latest) return null;
      id = since !== undefined && latest.id !== since && !FAILED.includes(latest.status) ? latest.id : await this.triggerRedeploy(op, latest.id, signal);
      this.triggered.set(key, id);
    }
    return this.watch(op, id, signal);
  }

  /** The mutation answers a Boolean: the new deployment is the next one to appear in the list. */
  private async triggerRedeploy(op: string, latestId: string, signal?: AbortSignal): Promise<string> {
    await this.api.redeployService(op, signal);
    const appeared = await poll({
      check: async () => (await this.api.deployments(op, 1, signal))[0] ?? null,
      until: (now) => now !== null && now.id !== latestId,
      deadlineMs: Math.min(this.timeoutMs, 120_000),
      ...RAILWAY_POLL,
      clock: this.ctx.clock,
      signal,
      target: this.name,
      op,
      describe: () => `${this.where}: Railway accepted the redeploy but no new deployment appeared`,
    });
    this.ctx.logger.info(`${this.name}: redeploying ${this.where} (deployment ${appeared!.id})`);
    return appeared!.id;
  }

  /** Polls one deployment until it is live (SUCCESS or SLEEPING); FAILED/CRASHED/REMOVED/SKIPPED or the timeout fail. */
  private watch(op: string, id: string, signal?: AbortSignal): Promise<DeploymentNode> {
    const { where, timeoutMs } = this;
    const ended = (message: string) => this.api.fail(message, 'unavailable', op, NOT_RETRYABLE);
    return poll({
      check: () => this.api.deployment(op, id, signal),
      until: (d) => {
        if (FAILED.includes(d.status)) throw ended(`${where}: deployment ${id} ended ${d.status}; see its logs in the Railway dashboard, then resume`);
        if (d.status === 'NEEDS_APPROVAL') throw ended(`${where}: deployment ${id} waits for approval in the Railway dashboard; approve it, then resume`);
        return LIVE.includes(d.status);
      },
      deadlineMs: timeoutMs,
      ...RAILWAY_POLL,
      clock: this.ctx.clock,
      signal,
      target: this.name,
      op,
      describe: (d) => `${where}: deployment ${id} is still ${d?.status ?? 'unknown'} after ${formatDuration(timeoutMs)}; raise timeout: or check it in the Railway dashboard`,
    });
  }
}
