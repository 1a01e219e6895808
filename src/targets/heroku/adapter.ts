import { waitTimeoutMs } from '../types.ts';
import { Secret, fingerprint } from '../../core/secret.ts';
import { poll } from '../../runtime/poll.ts';
import { formatDuration } from '../../inventory/duration.ts';
import { preflightFailed, verifyByReadBack } from '../common.ts';
import type { CommonTargetConfig, OpContext, PreflightResult, ReadResult, RedeployPurpose, Target, TargetContext, VerifyResult } from '../types.ts';
import type { HerokuConfig, HerokuReceipt } from './index.ts';
import { HerokuApi, type HerokuRelease } from './api.ts';

export { HEROKU_429_RETRY_MS } from './api.ts';

/**
 * Heroku Platform API, spoken directly (no SDK). Facts relied on (README "Provider facts"):
 * - every request sends `Accept: application/vnd.heroku+json; version=3`, else 400 missing_version
 *   (real body quoted in marc0der/gradle-heroku#4) — heroku/platform-api lib/platform-api/client.rb;
 * - `PATCH /apps/{app}/config-vars` with ONE key is a merge: other vars are untouched; `null` deletes;
 * - every config change creates a release (and restarts the dynos); the newest release is asked for
 *   with `Range: version ..; max=1, order=desc` exactly as the Heroku CLI does
 *   (heroku/cli packages/cli/src/commands/ps/wait.ts, addons/detach) — without a Range lists come
 *   back in id order;
 * - `GET /apps/{app}/releases/{id}/config-vars` is the config a release runs with: it proves the
 *   restarted dynos see the new key;
 * - 429 carries `RateLimit-Remaining: 0` and no Retry-After; the bucket refills ~75 tokens/minute;
 *   every answer carries `RateLimit-Remaining`, which the account's pacing lane (runtime/pacer.ts)
 *   paces on before the bucket runs out;
 * - the PATCH answers with the app's config vars after the change: the write checks its value
 *   there, and verify relies on that answer when this process made the write; redeploy then reads
 *   the config of the newest release, the one the dynos run (a config change always makes a
 *   release, so a change after keyrot's shows there).
 */

const DEFAULT_TIMEOUT_MS = 10 * 60_000;

export function createHerokuTarget(config: HerokuConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): HerokuTarget {
  return new HerokuTarget(config, ctx);
}

/** One config var of one Heroku app; every change makes a release, which restarts the dynos. */
export class HerokuTarget implements Target<HerokuReceipt> {
  readonly id = 'heroku' as const;
  readonly name: string;
  readonly location: string;
  readonly lockKey: string;
  readonly rateLimitKey: string;
  private readonly api: HerokuApi;
  private readonly app: string;
  private readonly varName: string;
  private readonly where: string;
  private readonly timeoutMs: number;
  private readonly ctx: TargetContext & { name: string };
  /** The config vars preflight read: the first write uses them instead of reading them again. */
  private observed: Record<string, string | null> | undefined;

  constructor(config: HerokuConfig & CommonTargetConfig, ctx: TargetContext & { name: string }) {
    this.ctx = ctx;
    this.name = ctx.name;
    this.app = config.app;
    this.varName = ctx.varName;
    this.where = `Heroku app ${config.app} ${ctx.varName}`;
    this.location = `heroku app ${config.app}`;
    this.timeoutMs = waitTimeoutMs(config.timeout, DEFAULT_TIMEOUT_MS);
    this.api = new HerokuApi(config, ctx);
    // Releases are per app: two targets on one app (two variables) must not interleave their releases.
    this.lockKey = `heroku:${this.api.base}:${config.app}`;
    this.rateLimitKey = this.api.rateLimitKey;
  }

  /** The last `RateLimit-Remaining` Heroku reported for this token (undefined before the first call). */
  get rateLimitRemaining(): number | undefined {
    return this.api.remaining;
  }

  async preflight(signal?: AbortSignal): Promise<PreflightResult> {
    const { varName, app } = this;
    // Heroku config var names match ^\w+$ (platform-api schema, config-var definitions).
    if (!/^\w+$/.test(varName)) {
      const reason = `Heroku config var names may contain only letters, digits and underscores, not ${JSON.stringify(varName)}: change \`var:\` (or key.name)`;
      return { status: 'blocked', reason, current: { kind: 'unreadable', reason } };
    }
    try {
      // The config vars answer for the app too: 404 when it does not exist, 403 without the scope.
      const vars = await this.api.getVars('preflight', signal);
      this.observed = vars;
      const current = valueOf(vars[varName]);
      const notes = [
        `setting ${varName} creates a new release of Heroku app ${app}, which restarts its dynos; keyrot waits for that release to succeed (up to ${formatDuration(this.timeoutMs)})`,
        `verified by reading the config var back, then by the config snapshot of the release the dynos run`,
      ];
      if (current.kind === 'absent') notes.push(`${varName} is not set on app ${app}: keyrot will create it (and remove it again on rollback)`);
      return { status: 'ready', current, willCreate: current.kind === 'absent', notes };
    } catch (err) {
      return preflightFailed(err, this.name);
    }
  }

  async read(signal?: AbortSignal): Promise<ReadResult> {
    return valueOf((await this.api.getVars('read', signal))[this.varName]);
  }

  async write(value: Secret, op: OpContext): Promise<HerokuReceipt> {
    const app = this.app;
    // Preflight's read, once (a retry reads again: the first attempt may have changed it).
    const vars = this.observed ?? (await this.api.getVars('write', op.signal));
    this.observed = undefined;
    const before = vars[this.varName];
    // Idempotent: the same value means no PATCH, hence no new release and no restart.
    if (before === value.reveal()) return { app, changed: false, created: false, releaseId: null, releaseVersion: null };
    const rel = await this.patchOne(value.reveal(), 'write', op.signal);
    return { app, changed: true, created: before === undefined || before === null, releaseId: rel?.id ?? null, releaseVersion: rel?.version ?? null };
  }

  async verify(value: Secret, op: OpContext, _receipt?: HerokuReceipt): Promise<VerifyResult> {
    // Always a fresh read, even though the PATCH's answer already held the key: verify attests what
    // the app holds after the write, and a change made between the write and now (someone putting
    // the old key back) must fail it. The fault matrix's read-back mismatch cell checks this.
    return verifyByReadBack(() => this.read(op.signal), value, this.name, this.where);
  }

  async redeploy(op: OpContext, _receipt: HerokuReceipt | undefined, purpose: RedeployPurpose = 'write'): Promise<VerifyResult> {
    const app = this.app;
    // The release the dynos get is the newest: the write's (or restore's) own, or a later one,
    // which carries the value too unless the variable changed again (its config then says so).
    // Read fresh rather than remembered, so a change released after keyrot's is caught.
    const newest = await this.api.newestRelease('redeploy', op.signal);
    if (!newest) throw this.api.fail(`Heroku app ${app} has no release to watch`, 'redeploy', 'not-found', { retryable: false });
    const rel = newest.status === 'pending' ? await this.watchRelease(newest.id, 'redeploy', op.signal) : newest;
    if (rel.status === 'failed') {
      throw this.api.fail(
        `Heroku release v${rel.version} of app ${app} failed, so its dynos still run the previous release: see \`heroku releases:output v${rel.version} --app ${app}\``,
        'redeploy',
        'unavailable',
        { retryable: false },
      );
    }
    await this.checkReleaseRuns(rel, op.fingerprint, purpose, op.signal);
    const what = purpose === 'write' ? 'the new key' : 'the old value again';
    return { method: 'redeploy', detail: `release v${rel.version} of ${app} succeeded with ${what}; Heroku restarted the dynos` };
  }

  async restore(previous: Secret | null, op: OpContext, _receipt?: HerokuReceipt): Promise<void> {
    const cur = (await this.api.getVars('restore', op.signal))[this.varName];
    const want = previous ? previous.reveal() : undefined;
    if (cur === want || (want === undefined && (cur === undefined || cur === null))) {
      // Already restored (an earlier attempt): still wait for its release if it is running.
      const newest = await this.api.newestRelease('restore', op.signal);
      if (newest?.status === 'pending') await this.settleRestore(newest, op.signal);
      return;
    }
    const rel = await this.patchOne(want ?? null, 'restore', op.signal);
    if (rel) await this.settleRestore(rel, op.signal);
  }

  /**
   * PATCH exactly one key (a merge: nothing else changes) and return the release the dynos get:
   * the newest once the PATCH returned, which is the PATCH's own or a later one (a release
   * snapshots the config when it is made, so a later one carries this value too, unless the
   * variable changed again, which redeploy's look at its config catches).
   */
  private async patchOne(value: string | null, op: string, signal?: AbortSignal): Promise<HerokuRelease | undefined> {
    const after = (await this.api.patchVar(value, op, signal))?.[this.varName];
    if ((value === null && after !== undefined && after !== null) || (value !== null && after !== value)) {
      throw this.api.fail(`Heroku accepted the change of ${this.varName} on app ${this.app} but its answer does not hold it`, op, 'mismatch', { retryable: true });
    }
    return this.api.newestRelease(op, signal);
  }

  /** Polls a release until it leaves `pending`, within the target's timeout. */
  private watchRelease(idOrVersion: string | number, op: string, signal?: AbortSignal): Promise<HerokuRelease> {
    const { app, timeoutMs } = this;
    return poll({
      check: () => this.api.release(idOrVersion, op, signal),
      until: (r) => r.status !== 'pending',
      deadlineMs: timeoutMs,
      clock: this.ctx.clock,
      signal,
      target: this.name,
      op,
      describe: (r) =>
        `Heroku release ${r ? `v${r.version}` : String(idOrVersion)} of app ${app} is still pending after ${formatDuration(timeoutMs)}: check \`heroku releases:output ${r ? `v${r.version}` : String(idOrVersion)} --app ${app}\` (raise \`timeout:\` if its release phase is slow)`,
    });
  }

  /**
   * Proves what the release the dynos now run carries, by fingerprint in memory: the new key after
   * a write; anything but the new key after a restore.
   */
  private async checkReleaseRuns(rel: HerokuRelease, newFp: string, purpose: RedeployPurpose, signal?: AbortSignal): Promise<void> {
    const v = (await this.api.releaseConfig(rel, 'redeploy', signal))?.[this.varName];
    const holds = typeof v === 'string' && v !== '' ? fingerprint(v) : '';
    if (purpose === 'write' ? holds === newFp : holds !== newFp) return;
    const found = holds ? (holds === newFp ? 'the new key' : `a different key (${holds})`) : 'no value';
    const want = purpose === 'write' ? `the new key (${newFp})` : 'the old value';
    throw this.api.fail(
      `Heroku release v${rel.version} of app ${this.app} runs ${found} for ${this.varName}, not ${want}: another config change was released after keyrot's`,
      'redeploy',
      'mismatch',
      { retryable: false },
    );
  }

  private async settleRestore(rel: HerokuRelease, signal?: AbortSignal): Promise<void> {
    const done = await this.watchRelease(rel.id, 'restore-release', signal);
    if (done.status === 'failed') {
      throw this.api.fail(
        `Heroku release v${done.version} that puts ${this.varName} back on app ${this.app} failed: the config var holds the previous value, but the dynos run an older release; see \`heroku releases:output v${done.version} --app ${this.app}\``,
        'restore',
        'unavailable',
        { retryable: false },
      );
    }
  }
}

function valueOf(v: string | null | undefined): ReadResult {
  return typeof v === 'string' && v !== '' ? { kind: 'value', value: new Secret(v) } : { kind: 'absent' };
}
