import { waitTimeoutMs } from '../types.ts';
import { Secret, fingerprint } from '../../core/secret.ts';
import { TargetError } from '../../core/errors.ts';
import { poll } from '../../runtime/poll.ts';
import { formatDuration } from '../../inventory/duration.ts';
import { preflightFailed } from '../common.ts';
import type { CommonTargetConfig, OpContext, PreflightResult, ReadResult, RedeployPurpose, Target, TargetContext, VerifyResult } from '../types.ts';
import { netlifyContexts, type NetlifyConfig, type NetlifyReceipt } from './index.ts';
import { NetlifyApi, type Build, type Deploy } from './api.ts';
import {
  ALL,
  PRODUCTION,
  buildFor,
  contextsOf,
  entryFor,
  labels,
  listLabel,
  parseCtx,
  plural,
  receiptAdded,
  receiptContexts,
  receiptIds,
  type Ctx,
  type EnvValue,
  type EnvVar,
} from './contexts.ts';
import { planNotes } from './plan-notes.ts';

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

const DEFAULT_TIMEOUT_MS = 15 * 60_000;
/** Deploy states that end a deploy without it going live. */
const FAILED_STATES = new Set(['error', 'rejected']);

/** What a context held before this rotation's first write: the value, nothing, or a write-only secret. */
type Before = { kind: 'value'; value: Secret } | { kind: 'absent' } | { kind: 'unreadable' };

/** Progress of this process's writes in one rotation: per context the value id written, and the var's updated_at after the last one. */
interface Progress {
  updatedAt: string | null;
  ids: Map<string, string | null>;
  receipt?: NetlifyReceipt;
}

type OpLike = { rotationId: string; signal?: AbortSignal };
const NOT_RETRYABLE = { retryable: false } as const;

export function createNetlifyTarget(config: NetlifyConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target<NetlifyReceipt> {
  return new NetlifyTarget(config, ctx);
}

/** One variable of one Netlify site, in one or several deploy contexts. */
class NetlifyTarget implements Target<NetlifyReceipt> {
  readonly id = 'netlify' as const;
  readonly name: string;
  readonly location: string;
  readonly lockKey: string;
  readonly rateLimitKey: string;
  /** Present with `redeploy: true`: its presence is the capability. */
  readonly redeploy?: (op: OpContext, receipt: NetlifyReceipt | undefined, purpose?: RedeployPurpose) => Promise<VerifyResult>;

  private readonly api: NetlifyApi;
  private readonly varName: string;
  /** The configured contexts; undefined = follow the variable's shape (`all` or production). */
  private readonly explicit: Ctx[] | undefined;
  private readonly redeployWanted: boolean;
  /** The one build keyrot starts: production for production/all (and the default), else a single branch:NAME's deploy. */
  private readonly build: { branch?: string } | undefined;
  private readonly timeoutMs: number;
  /** Writes this process made, per rotation and key: a repeated (secret) write is recognised without reading the value. */
  private readonly memo = new Map<string, Progress>();
  /** Restores this process made, per rotation. */
  private readonly restoreMemo = new Map<string, Progress>();
  /** Each context's value before this rotation's first write: restore puts each context back to its own. */
  private before: { rotation: string | undefined; map: Map<string, Before> } | undefined;
  /** Builds started per rotation: a retried redeploy watches the same build instead of starting another. */
  private readonly builds = new Map<string, Build>();
  private readonly config: NetlifyConfig & CommonTargetConfig;
  private readonly ctx: TargetContext & { name: string };

  constructor(config: NetlifyConfig & CommonTargetConfig, ctx: TargetContext & { name: string }) {
    this.config = config;
    this.ctx = ctx;
    this.name = ctx.name;
    this.varName = ctx.varName;
    this.explicit = netlifyContexts(config)?.map(parseCtx);
    this.redeployWanted = config.redeploy === true;
    this.build = buildFor(this.explicit ?? [PRODUCTION]);
    this.timeoutMs = waitTimeoutMs(config.timeout, DEFAULT_TIMEOUT_MS);
    this.api = new NetlifyApi(config, ctx, this.varName, this.explicit && labels(this.explicit));
    this.location = `netlify site ${config.site} ${this.explicit ? labels(this.explicit) : '(context as the variable has it: all or production)'}`;
    // One site's variable and builds: serialise targets on the same site.
    this.lockKey = `netlify:${this.api.base}:${config.site}`;
    this.rateLimitKey = this.api.rateLimitKey;
    if (this.redeployWanted) this.redeploy = (op, _receipt, purpose) => this.rebuild(op, purpose ?? 'write');
  }

  private fail(message: string, op: string, kind: TargetError['kind'], extra: { retryable?: boolean; cause?: unknown } = {}): TargetError {
    return this.api.fail(message, op, kind, extra);
  }

  /** A secret is write-only outside `dev` (a list of only dev contexts reads back). */
  private isWriteOnly(v: EnvVar): boolean {
    return v.is_secret === true && !(this.explicit?.every((c) => c.context === 'dev') ?? false);
  }

  /** Shapes keyrot will not rewrite, because doing so would change other contexts' values. */
  private shapeProblem(v: EnvVar, ctxs: Ctx[]): string | undefined {
    const { varName } = this;
    const site = this.api.siteLabel;
    const contexts = contextsOf(v);
    const wantsAll = ctxs.some((c) => c.context === 'all');
    if (!wantsAll && contexts.includes('all')) {
      return `${varName} on Netlify site ${site} has one value for all deploy contexts: set \`context: all\` on this target to rotate that value (or leave \`context:\` out: keyrot then follows the variable), or give it separate values per context in the Netlify UI first`;
    }
    if (wantsAll && contexts.some((c) => c !== 'all')) {
      const per = contexts.filter((c) => c !== 'all');
      return `${varName} on Netlify site ${site} has separate values per deploy context (${contexts.join(', ')}): set \`context:\` to the context(s) keyrot should rotate, for example \`context: [${per.join(', ')}]\``;
    }
    if (v.is_secret && ctxs.some((c) => c.context === 'all' || c.context === 'dev')) {
      return `${varName} on Netlify site ${site} is a secret, and Netlify secrets take values only in non-dev contexts: set \`context:\` to production, deploy-preview, branch-deploy or branch:NAME (or a list of them)`;
    }
    return undefined;
  }

  /**
   * The contexts this target rotates. An explicit `context:` is taken as written (and refused on a
   * shape it would have to rewrite). Omitted, it follows the variable: one value for all contexts
   * (Netlify's default, and what keyrot creates) → that `all` value; per-context values → production.
   */
  private resolve(v: EnvVar | undefined): { ctxs: Ctx[]; problem?: string } {
    if (this.explicit) return { ctxs: this.explicit, problem: v ? this.shapeProblem(v, this.explicit) : undefined };
    const contexts = contextsOf(v);
    // No value yet: a new variable gets an `all` value; an empty secret can only take production.
    if (contexts.length === 0) return { ctxs: v?.is_secret ? [PRODUCTION] : [ALL] };
    if (contexts.every((c) => c === 'all')) return { ctxs: [ALL], problem: this.shapeProblem(v!, [ALL]) };
    if (!contexts.includes('all')) return { ctxs: [PRODUCTION], problem: this.shapeProblem(v!, [PRODUCTION]) };
    return {
      ctxs: [PRODUCTION],
      problem: `${this.varName} on Netlify site ${this.api.siteLabel} has a value for all deploy contexts and separate values for ${listLabel(contexts.filter((c) => c !== 'all'))}: keyrot will not guess which to rotate; in the Netlify UI, make it one value for all contexts or separate values per context first`,
    };
  }

  private current(v: EnvVar | undefined, ctxs: Ctx[]): ReadResult {
    // A context without its own value runs the `all` value (shown for a refused shape).
    const entries = ctxs.map((c) => entryFor(v, c) ?? (c.context !== 'all' ? v?.values?.find((x) => x.context === 'all') : undefined));
    if (!v || entries.every((e) => !e)) return { kind: 'absent' };
    if (this.isWriteOnly(v)) return { kind: 'unreadable', reason: `${this.varName} is a Netlify secret: its ${labels(ctxs)} ${plural(ctxs, 'value is', 'values are')} write-only` };
    // Several contexts: the first listed one that has a value (preflight notes any other key found).
    const hit = entries.find((e) => e?.value);
    return hit?.value ? { kind: 'value', value: new Secret(hit.value) } : { kind: 'absent' };
  }

  private beforeOf(v: EnvVar | undefined, c: Ctx): Before {
    const e = entryFor(v, c);
    if (!v || !e) return { kind: 'absent' };
    // An empty readable value cannot be a Secret: treated like a secret's (restored from `previous`).
    return !this.isWriteOnly(v) && e.value ? { kind: 'value', value: new Secret(e.value) } : { kind: 'unreadable' };
  }

  /** The before-values for this rotation: preflight's, else recorded now, before its first write. */
  private beforeFor(rotationId: string, v: EnvVar | undefined, ctxs: Ctx[]): Map<string, Before> {
    if (!this.before || (this.before.rotation !== undefined && this.before.rotation !== rotationId)) this.before = { rotation: rotationId, map: new Map() };
    this.before.rotation = rotationId;
    for (const c of ctxs) if (!this.before.map.has(c.name)) this.before.map.set(c.name, this.beforeOf(v, c));
    return this.before.map;
  }

  async preflight(signal?: AbortSignal): Promise<PreflightResult> {
    try {
      const site = await this.api.getSite('preflight', signal);
      const owner = site.account_slug || site.account_id;
      const { account } = this.config;
      if (account && account !== site.account_slug && account !== site.account_id) {
        return {
          status: 'blocked',
          reason: `Netlify site ${this.api.siteLabel} belongs to team ${owner}, not ${account}: fix \`account:\` or leave it out`,
          current: { kind: 'unreadable', reason: 'team mismatch' },
        };
      }
      this.api.account ??= owner;
      const v = await this.api.getVar('preflight', signal);
      const { ctxs, problem } = this.resolve(v);
      const cur = this.current(v, ctxs);
      if (problem) return { status: 'blocked', reason: problem, current: cur };
      const unbuildable = this.unbuildableReason();
      if (unbuildable) return { status: 'blocked', reason: unbuildable, current: cur };
      // Each context's value now: restore puts each one back to its own.
      this.before = { rotation: undefined, map: new Map(ctxs.map((c) => [c.name, this.beforeOf(v, c)])) };
      const willCreate = !v || ctxs.some((c) => !entryFor(v, c));
      const notes = planNotes(v, ctxs, {
        varName: this.varName,
        siteLabel: this.api.siteLabel,
        account: this.api.account,
        explicit: this.explicit,
        redeployWanted: this.redeployWanted,
        build: this.build,
        timeoutMs: this.timeoutMs,
        secret: !!v && this.isWriteOnly(v),
      });
      return { status: 'ready', current: cur, willCreate, notes } satisfies PreflightResult;
    } catch (err) {
      return preflightFailed(err, this.name);
    }
  }

  /** With `redeploy: true`, why keyrot cannot start the one build the configured contexts need. */
  private unbuildableReason(): string | undefined {
    if (!this.redeployWanted || this.build) return undefined;
    const explicit = this.explicit ?? [];
    const cannot = explicit.filter((c) => !['production', 'all', 'branch'].includes(c.context));
    const branches = explicit.filter((c) => c.context === 'branch');
    return cannot.length
      ? `keyrot cannot trigger a ${labels(cannot)} deploy of Netlify site ${this.api.siteLabel} (those come from pull requests or local runs): set \`redeploy: false\` or use context production, all or branch:NAME`
      : `keyrot starts one build per rotation, and the ${labels(branches)} deploys are ${branches.length} builds: set \`redeploy: false\`, add production to \`context:\`, or use one target per branch`;
  }

  async read(signal?: AbortSignal): Promise<ReadResult> {
    const v = await this.api.getVar('read', signal);
    return this.current(v, this.resolve(v).ctxs);
  }

  async write(value: Secret, op: OpContext): Promise<NetlifyReceipt> {
    const v = await this.api.getVar('write', op.signal);
    const { ctxs, problem } = this.resolve(v);
    if (problem) throw this.fail(problem, 'write', 'invalid', NOT_RETRYABLE);
    const acct = await this.api.accountId('write', op.signal);
    const prior = this.beforeFor(op.rotationId, v, ctxs);
    const secret = !!v && this.isWriteOnly(v);
    const receiptOf = (after: EnvVar | undefined, changed: boolean, createdVar: boolean) =>
      this.receiptOf({ after, ctxs, prior, acct, value, changed, createdVar });
    const key = `write:${op.rotationId}:${value.fingerprint}`;
    const m = this.memo.get(key);
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
    this.memo.set(key, progress);
    const after = v ? await this.patchEach(v, pending, value, progress, op) : await this.createWith(ctxs, value, progress, op);
    const wrong = this.isWriteOnly(after) ? [] : ctxs.filter((c) => entryFor(after, c)?.value !== value.reveal());
    if (wrong.length) {
      throw this.fail(`Netlify accepted ${this.varName} (${labels(wrong)}) on site ${this.api.siteLabel} but its answer does not hold the new key`, 'write', 'mismatch', { retryable: true });
    }
    const receipt = receiptOf(after, true, !v);
    progress.receipt = receipt;
    return receipt;
  }

  /** Creates the variable with the new key in every context, recording the value ids. */
  private async createWith(ctxs: Ctx[], value: Secret, progress: Progress, op: OpContext): Promise<EnvVar> {
    const after = await this.api.createVar(ctxs.map((c) => ({ c, value: value.reveal() })), 'write', op.signal);
    for (const c of ctxs) progress.ids.set(c.name, entryFor(after, c)?.id ?? null);
    progress.updatedAt = after.updated_at ?? null;
    return after;
  }

  /** One PATCH per context, in order; each moves updated_at, the receipt keeps the last one. */
  private async patchEach(v: EnvVar, pending: Ctx[], value: Secret, progress: Progress, op: OpContext): Promise<EnvVar> {
    let after = v;
    for (const c of pending) {
      after = await this.api.patchValue(c, value.reveal(), 'write', op.signal);
      progress.ids.set(c.name, entryFor(after, c)?.id ?? null);
      progress.updatedAt = after.updated_at ?? null;
    }
    return after;
  }

  /** Fingerprints and ids only, never a value. */
  private receiptOf(w: {
    after: EnvVar | undefined;
    ctxs: Ctx[];
    prior: Map<string, Before>;
    acct: string;
    value: Secret;
    changed: boolean;
    createdVar: boolean;
  }): NetlifyReceipt {
    const { after, ctxs } = w;
    const added = ctxs.filter((c) => w.prior.get(c.name)?.kind === 'absent').map((c) => c.name);
    return {
      site: this.api.siteId,
      account: w.acct,
      context: ctxs.map((c) => c.name).join(','),
      contexts: ctxs.map((c) => c.name),
      secret: !!after && this.isWriteOnly(after),
      fingerprint: w.value.fingerprint,
      changed: w.changed,
      createdVar: w.createdVar,
      added,
      addedValue: added.length > 0,
      valueId: entryFor(after, ctxs[0]!)?.id ?? null,
      valueIds: ctxs.map((c) => entryFor(after, c)?.id ?? ''),
      updatedAt: after?.updated_at ?? null,
    };
  }

  async verify(value: Secret, op: OpContext, receipt: NetlifyReceipt | undefined): Promise<VerifyResult> {
    const v = await this.api.getVar('verify', op.signal);
    const ctxs = receiptContexts(receipt) ?? this.resolve(v).ctxs;
    const site = this.api.siteLabel;
    const missing = ctxs.filter((c) => !entryFor(v, c));
    if (!v || missing.length) {
      throw this.fail(`${this.varName} on Netlify site ${site} has no ${labels(v ? missing : ctxs)} value, not the new key (${value.fingerprint})`, 'verify', 'mismatch', NOT_RETRYABLE);
    }
    if (this.isWriteOnly(v)) return this.verifySecret(v, ctxs, value, receipt);
    const wrong = ctxs.filter((c) => entryFor(v, c)!.value !== value.reveal());
    if (!wrong.length) return { method: 'read-back', detail: `${labels(ctxs)} ${plural(ctxs, 'value', 'values')} of ${this.varName} on ${site} ${plural(ctxs, 'holds', 'hold')} the new key` };
    const found = wrong.map((c) => {
      const val = entryFor(v, c)!.value;
      return `the ${c.label} value holds ${val ? `a different key (${fingerprint(val)})` : 'an empty value'}`;
    });
    throw this.fail(`read-back mismatch: ${found.join(', ')} of ${this.varName} on ${site}, not the new key (${value.fingerprint})`, 'verify', 'mismatch', NOT_RETRYABLE);
  }

  /**
   * A secret: Netlify never returns the value, so prove the write by its metadata — every listed
   * context still has the value entry keyrot's write produced, and the variable has not changed
   * since keyrot's LAST write of this rotation (any later write, to any context, moves updated_at).
   */
  private verifySecret(v: EnvVar, ctxs: Ctx[], value: Secret, receipt: NetlifyReceipt | undefined): VerifyResult {
    const { varName } = this;
    const site = this.api.siteLabel;
    const mismatch = (message: string) => this.fail(message, 'verify', 'mismatch', NOT_RETRYABLE);
    if (!receipt || typeof receipt.updatedAt !== 'string') {
      throw mismatch(`${varName} on Netlify site ${site} is a secret (write-only) and keyrot has no record of its write (no receipt): write it again to verify`);
    }
    if (receipt.fingerprint !== value.fingerprint) {
      throw mismatch(
        `keyrot's record of the write to secret ${varName} on ${site} is for key ${String(receipt.fingerprint)}, not the new key (${value.fingerprint}): write it again to verify`,
      );
    }
    const ids = receiptIds(receipt, ctxs);
    const replaced = ctxs.filter((c, i) => ids[i] !== null && entryFor(v, c)!.id !== ids[i]);
    if (replaced.length) {
      throw mismatch(
        `the ${labels(replaced)} ${plural(replaced, 'value', 'values')} of secret ${varName} on ${site} ${plural(replaced, 'was', 'were')} replaced after keyrot wrote the new key (${value.fingerprint})`,
      );
    }
    if (v.updated_at !== receipt.updatedAt) {
      throw mismatch(
        `secret ${varName} on ${site} changed at ${v.updated_at} after keyrot's write at ${receipt.updatedAt}: Netlify cannot show secret values, so keyrot cannot tell whether the ${labels(ctxs)} ${plural(ctxs, 'value is', 'values are')} still the new key; rotate again`,
      );
    }
    return {
      method: 'metadata',
      detail: `secret ${varName} on ${site}: the ${labels(ctxs)} ${plural(ctxs, 'value', 'values')} keyrot wrote (${ctxs.map((c) => `${c.name} id ${entryFor(v, c)!.id}`).join(', ')}; ${receipt.updatedAt}) ${plural(ctxs, 'is', 'are')} unchanged${this.redeployWanted ? '; the redeploy confirms the build' : ''}`,
    };
  }

  /**
   * After a write, or after a restore: the live deploy may run the new key (its build happened, or
   * a crash hides whether it did), so build again so the site runs the value stored now.
   */
  private async rebuild(op: OpContext, purpose: RedeployPurpose): Promise<VerifyResult> {
    const d = await this.triggerAndWait(op, purpose === 'write' ? 'redeploy' : 'restore');
    const what = purpose === 'write' ? `the new ${this.varName}` : `${this.varName} back to its old value`;
    return { method: 'redeploy', detail: `deploy ${d.id} of ${this.api.siteLabel} is ready, built after ${what} was set` };
  }

  private async triggerAndWait(op: OpLike, why: 'redeploy' | 'restore'): Promise<Deploy> {
    const { build } = this;
    if (!build) throw this.fail(`keyrot cannot start a deploy for the ${labels(this.explicit ?? [])} context of Netlify site ${this.api.siteLabel}`, why, 'unsupported', NOT_RETRYABLE);
    const key = `${why}:${op.rotationId}`;
    let started = this.builds.get(key);
    if (!started) {
      // A production build for production/all; a branch deploy for branch:NAME (preflight refused the rest).
      started = await this.api.startBuild(build.branch, why, op.signal);
      this.builds.set(key, started);
    }
    return this.watchDeploy(started, key, op, why);
  }

  /** Waits until the build's deploy is ready; a failed build or deploy ends the wait (and a retry starts a new build). */
  private watchDeploy(started: Build, key: string, op: OpLike, why: 'redeploy' | 'restore'): Promise<Deploy> {
    const site = this.api.siteLabel;
    let deployId = started.deploy_id ?? undefined;
    const failed = (message: string) => {
      this.builds.delete(key);
      return this.fail(message, why, 'unavailable', NOT_RETRYABLE);
    };
    return poll<Deploy | undefined>({
      // The build names its deploy once it has one; then the deploy's state is what counts.
      check: async () => {
        if (!deployId) {
          const cur = await this.api.getBuild(started.id, why, op.signal);
          deployId = cur.deploy_id ?? undefined;
          if (cur.done && cur.error) throw failed(`Netlify build ${started.id} of site ${site} failed (${cur.error}): the site still serves its previous deploy`);
        }
        return deployId ? this.api.getDeploy(deployId, why, op.signal) : undefined;
      },
      until: (d) => {
        if (d?.state && FAILED_STATES.has(d.state)) {
          throw failed(
            `Netlify deploy ${d.id} of site ${site} ended in state ${d.state}${d.error_message ? ` (${d.error_message})` : ''}: the site still serves its previous deploy; see the deploy log in the Netlify UI`,
          );
        }
        return d?.state === 'ready';
      },
      deadlineMs: this.timeoutMs,
      clock: this.ctx.clock,
      signal: op.signal,
      target: this.name,
      op: why,
      describe: () =>
        `Netlify deploy ${deployId ?? `of build ${started.id}`} of site ${site} is not ready after ${formatDuration(this.timeoutMs)}: check it in the Netlify UI (raise \`timeout:\` for slow builds)`,
    }) as Promise<Deploy>;
  }

  async restore(previous: Secret | null, op: OpContext, receipt: NetlifyReceipt | undefined): Promise<void> {
    let v = await this.api.getVar('restore', op.signal);
    let ctxs = receiptContexts(receipt);
    const problem = v ? (ctxs ? this.shapeProblem(v, ctxs) : this.resolve(v).problem) : undefined;
    // A shape keyrot refuses was not made by its writes: changing it could touch other contexts.
    if (problem) throw this.fail(`cannot restore: ${problem}`, 'restore', 'invalid', NOT_RETRYABLE);
    ctxs ??= this.resolve(v).ctxs;
    const wants = this.restoreWants(ctxs, previous, op, receipt);
    // Deletions first (contexts keyrot added): the PATCHes after them then record the final updated_at.
    if (v) v = await this.dropAdded(v, wants, op);
    await this.putBack(v, wants, op);
    // The engine builds again afterwards (redeploy, purpose restore) when redeploy: true.
  }

  /**
   * What each context goes back to: its own old value, nothing (keyrot added it), or for a
   * secret the environment's old key (`previous`), which Netlify never showed keyrot.
   */
  private restoreWants(ctxs: Ctx[], previous: Secret | null, op: OpContext, receipt: NetlifyReceipt | undefined): Array<{ c: Ctx; want: Secret | null }> {
    const before = this.before;
    const prior = before && (before.rotation === undefined || before.rotation === op.rotationId) ? before.map : undefined;
    const newFp = receipt?.fingerprint ?? op.fingerprint;
    return ctxs.map((c) => {
      const b = prior?.get(c.name);
      if (b?.kind === 'absent') return { c, want: null };
      if (b?.kind === 'value' && b.value.fingerprint !== newFp) return { c, want: b.value };
      if (receiptAdded(receipt, c) || previous === null) return { c, want: null };
      if (previous) return { c, want: previous };
      throw this.fail(
        `keyrot does not know the old ${c.label} value of ${this.varName} on ${this.api.siteLabel}: run \`keyrot resume --rollback --old-key SOURCE\``,
        'restore',
        'invalid',
        NOT_RETRYABLE,
      );
    });
  }

  /** Removes the values keyrot added; the whole variable when only those are left. Returns what remains. */
  private async dropAdded(v: EnvVar, wants: Array<{ c: Ctx; want: Secret | null }>, op: OpContext): Promise<EnvVar | undefined> {
    const drop: EnvValue[] = wants.filter((w) => w.want === null).flatMap((w) => entryFor(v, w.c) ?? []);
    if (!drop.length) return v;
    if (drop.length === (v.values ?? []).length) {
      // Only keyrot's values are left: the variable did not exist (or had no values) before keyrot.
      await this.api.deleteVar('restore', op.signal);
      return undefined;
    }
    for (const e of drop) if (e.id) await this.api.deleteValue(e.id, 'restore', op.signal);
    return v;
  }

  /** Writes each context's old value back, skipping what already holds it (or what this restore already wrote to a secret). */
  private async putBack(v: EnvVar | undefined, wants: Array<{ c: Ctx; want: Secret | null }>, op: OpContext): Promise<void> {
    const puts = wants.filter((w): w is { c: Ctx; want: Secret } => w.want !== null);
    const rkey = `restore:${op.rotationId}`;
    let rm = this.restoreMemo.get(rkey);
    if (!rm || !v || (v.updated_at ?? null) !== rm.updatedAt) this.restoreMemo.set(rkey, (rm = { updatedAt: null, ids: new Map() }));
    const memo = rm;
    const pending = puts.filter(({ c, want }) => {
      const e = entryFor(v, c);
      if (v && !this.isWriteOnly(v)) return e?.value !== want.reveal();
      // A secret: skip a context this restore already wrote, with the variable untouched since.
      return !(e && memo.ids.get(c.name) === `${e.id ?? ''}:${want.fingerprint}`);
    });
    const record = (after: EnvVar, c: Ctx, want: Secret) => {
      memo.updatedAt = after.updated_at ?? null;
      memo.ids.set(c.name, `${entryFor(after, c)?.id ?? ''}:${want.fingerprint}`);
    };
    if (pending.length && !v) {
      const after = await this.api.createVar(pending.map(({ c, want }) => ({ c, value: want.reveal() })), 'restore', op.signal);
      for (const { c, want } of pending) record(after, c, want);
    } else {
      for (const { c, want } of pending) record(await this.api.patchValue(c, want.reveal(), 'restore', op.signal), c, want);
    }
  }
}
