import { waitTimeoutMs } from '../types.ts';
import { Secret, fingerprint } from '../../core/secret.ts';
import { TargetError, toTargetError } from '../../core/errors.ts';
import { createProviderHttp } from '../../runtime/provider-http.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import { poll } from '../../runtime/poll.ts';
import { credentialOrDefault, type CredentialRef } from '../../inventory/credentials.ts';
import { formatDuration } from '../../inventory/duration.ts';
import { laneOf, lazyCredential, verifyByReadBack } from '../common.ts';
import type { CommonTargetConfig, PreflightResult, ReadResult, RedeployPurpose, Target, TargetContext, VerifyResult } from '../types.ts';
import { HEROKU_API, HEROKU_TOKEN_ENV, heroku, type HerokuConfig, type HerokuReceipt } from './index.ts';

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

export const HEROKU_ACCEPT = 'application/vnd.heroku+json; version=3';
const USER_AGENT = 'keyrot';
/** Heroku sends no Retry-After on 429: a few seconds buys the handful of tokens one write needs. */
export const HEROKU_429_RETRY_MS = 5_000;
const DEFAULT_TIMEOUT_MS = 10 * 60_000;

interface HerokuRelease {
  id: string;
  version: number;
  status: 'pending' | 'succeeded' | 'failed';
  description?: string;
  current?: boolean;
}

type ConfigVars = Record<string, string | null>;

export type HerokuTarget = Target<HerokuReceipt> & {
  /** The last `RateLimit-Remaining` Heroku reported for this token (undefined before the first call). */
  readonly rateLimitRemaining: number | undefined;
};

function credentialName(ref: CredentialRef): string {
  return ref.kind === 'env' ? ref.name : ref.raw;
}

export function createHerokuTarget(config: HerokuConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): HerokuTarget {
  const base = (config.endpoint ?? HEROKU_API).replace(/\/+$/, '');
  const app = config.app;
  const appPath = `/apps/${encodeURIComponent(app)}`;
  const varName = ctx.varName;
  const where = `Heroku app ${app} ${varName}`;
  const timeoutMs = waitTimeoutMs(config.timeout, DEFAULT_TIMEOUT_MS);
  const ref = credentialOrDefault(config.token, HEROKU_TOKEN_ENV, ctx.env);
  const credName = credentialName(ref);
  let remaining: number | undefined;
  // The token bucket is the account's: targets using the same token share one lane.
  const rateLimitKey = `heroku:${base}:${credName}`;
  const lane = laneOf(ctx, rateLimitKey, heroku);
  /** The config vars preflight read: the first write uses them instead of reading them again. */
  let observed: ConfigVars | undefined;
  /** Per rotation: the key this process's PATCH answer held. */
  const wrote = new Map<string, string>();

  function fail(message: string, op: string, kind: TargetError['kind'], extra: { retryable?: boolean; cause?: unknown } = {}): TargetError {
    return new TargetError(message, { target: ctx.name, op, kind, ...extra });
  }

  const credential = lazyCredential(
    ctx,
    ref,
    (m) => `Heroku API token: ${m} (create one with \`heroku authorizations:create --scope read-protected,write-protected\`)`,
  );

  /** Product words for each status Heroku can answer (the provider message is already redacted). */
  function describe(status: number, message: string, op: string): string {
    // Heroku's own words go last, so the message leads with what is wrong and what to do.
    const said = message ? ` (Heroku said: ${message})` : '';
    if (status === 401) {
      return `Heroku rejected the API token (${credName}): create one with \`heroku authorizations:create --scope read-protected,write-protected\` and put it in ${credName}${said}`;
    }
    if (status === 403) {
      return `Heroku denied access to the config vars of app ${app}: the token needs the read-protected and write-protected scopes (\`heroku authorizations:create --scope read-protected,write-protected\`) and access to the app${said}`;
    }
    if (status === 404) {
      return op === 'redeploy' || op === 'restore-release'
        ? `Heroku could not find the release keyrot is watching on app ${app}${said}`
        : `Heroku app ${app} not found: check \`app:\` in targets.yaml (name or id) and that the token's account can see the app${said}`;
    }
    if (status === 422) return `Heroku refused to change ${varName} on app ${app}${said}`;
    if (status === 429) {
      return `Heroku rate limit reached for the token's account (the bucket refills at about 75 requests per minute): keyrot will wait and retry`;
    }
    if (status >= 500) return `Heroku API unavailable (HTTP ${status}) during ${op} on app ${app}${said}`;
    // 400 missing_version / 406 / 410: keyrot speaks version 3; a change on Heroku's side.
    return `Heroku answered ${status} during ${op} on app ${app}${said}`;
  }

  const http = createProviderHttp({
    provider: 'Heroku',
    baseUrl: base,
    target: ctx.name,
    clock: ctx.clock,
    timeoutMs: waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS),
    headers: { accept: HEROKU_ACCEPT, 'user-agent': USER_AGENT },
    auth: async (op) => ({ authorization: `Bearer ${(await credential(op)).reveal()}` }),
    lane,
    endpointHint: 'set `endpoint:` of this target to the Platform API’s URL (or remove it for https://api.heroku.com)',
    // Heroku's 429 has no Retry-After (the engine's policy still adds jittered backoff).
    describe: (f) => ({ message: describe(f.status, f.message, f.op), retryAfterMs: f.rateLimit.retryAfterMs ?? (f.status === 429 ? HEROKU_429_RETRY_MS : undefined) }),
    onResponse: (r) => {
      if (r.rateLimit.remaining !== undefined) remaining = r.rateLimit.remaining;
    },
  });

  async function getVars(op: string, signal?: AbortSignal): Promise<ConfigVars> {
    const res = await http.json<ConfigVars>({ op, path: `${appPath}/config-vars`, signal });
    if (!res.body || typeof res.body !== 'object') throw fail(`Heroku returned an unexpected config-vars body for app ${app}`, op, 'unavailable');
    return res.body;
  }

  async function read(signal?: AbortSignal): Promise<ReadResult> {
    const v = (await getVars('read', signal))[varName];
    return typeof v === 'string' && v !== '' ? { kind: 'value', value: new Secret(v) } : { kind: 'absent' };
  }

  async function newestRelease(op: string, signal?: AbortSignal): Promise<HerokuRelease | undefined> {
    const res = await http.json<HerokuRelease[]>({ op, path: `${appPath}/releases`, headers: { range: 'version ..; max=1, order=desc' }, signal });
    return Array.isArray(res.body) ? res.body[0] : undefined;
  }

  /** Polls a release until it leaves `pending`, within the target's timeout. */
  function watchRelease(idOrVersion: string | number, op: string, signal?: AbortSignal): Promise<HerokuRelease> {
    return poll({
      check: async () => (await http.json<HerokuRelease>({ op, path: `${appPath}/releases/${encodeURIComponent(String(idOrVersion))}`, signal })).body,
      until: (r) => r.status !== 'pending',
      deadlineMs: timeoutMs,
      clock: ctx.clock,
      signal,
      target: ctx.name,
      op,
      describe: (r) =>
        `Heroku release ${r ? `v${r.version}` : String(idOrVersion)} of app ${app} is still pending after ${formatDuration(timeoutMs)}: check \`heroku releases:output ${r ? `v${r.version}` : String(idOrVersion)} --app ${app}\` (raise \`timeout:\` if its release phase is slow)`,
    });
  }

  /**
   * PATCH exactly one key (a merge: nothing else changes) and return the release the dynos get:
   * the newest once the PATCH returned, which is the PATCH's own or a later one (a release
   * snapshots the config when it is made, so a later one carries this value too, unless the
   * variable changed again, which redeploy's look at its config catches).
   */
  async function patchOne(value: string | null, op: string, signal?: AbortSignal): Promise<HerokuRelease | undefined> {
    const res = await http.json<ConfigVars>({ op, method: 'PATCH', path: `${appPath}/config-vars`, body: { [varName]: value }, signal });
    const after = res.body?.[varName];
    if ((value === null && after !== undefined && after !== null) || (value !== null && after !== value)) {
      throw fail(`Heroku accepted the change of ${varName} on app ${app} but its answer does not hold it`, op, 'mismatch', { retryable: true });
    }
    return newestRelease(op, signal);
  }

  const target: HerokuTarget = {
    id: 'heroku',
    name: ctx.name,
    location: `heroku app ${app}`,
    // Releases are per app: two targets on one app (two variables) must not interleave their releases.
    lockKey: `heroku:${base}:${app}`,
    rateLimitKey,
    get rateLimitRemaining() {
      return remaining;
    },

    async preflight(signal) {
      // Heroku config var names match ^\w+$ (platform-api schema, config-var definitions).
      if (!/^\w+$/.test(varName)) {
        const reason = `Heroku config var names may contain only letters, digits and underscores, not ${JSON.stringify(varName)}: change \`var:\` (or key.name)`;
        return { status: 'blocked', reason, current: { kind: 'unreadable', reason } };
      }
      try {
        // The config vars answer for the app too: 404 when it does not exist, 403 without the scope.
        const vars = await getVars('preflight', signal);
        observed = vars;
        const v = vars[varName];
        const current: ReadResult = typeof v === 'string' && v !== '' ? { kind: 'value', value: new Secret(v) } : { kind: 'absent' };
        const notes = [
          `setting ${varName} creates a new release of Heroku app ${app}, which restarts its dynos; keyrot waits for that release to succeed (up to ${formatDuration(timeoutMs)})`,
          `verified by reading the config var back, then by the config snapshot of the release the dynos run`,
        ];
        if (current.kind === 'absent') notes.push(`${varName} is not set on app ${app}: keyrot will create it (and remove it again on rollback)`);
        return { status: 'ready', current, willCreate: current.kind === 'absent', notes } satisfies PreflightResult;
      } catch (err) {
        const e = toTargetError(err, ctx.name, 'preflight');
        // Transient (429, 5xx, timeout): not an answer; the engine retries it, bounded.
        if (e.retryable) throw e;
        return { status: 'blocked', reason: e.message, current: { kind: 'unreadable', reason: e.message } };
      }
    },

    read,

    async write(value, op) {
      // Preflight's read, once (a retry reads again: the first attempt may have changed it).
      const vars = observed ?? (await getVars('write', op.signal));
      observed = undefined;
      const before = vars[varName];
      // Idempotent: the same value means no PATCH, hence no new release and no restart.
      if (before === value.reveal()) return { app, changed: false, created: false, releaseId: null, releaseVersion: null };
      const rel = await patchOne(value.reveal(), 'write', op.signal);
      wrote.set(op.rotationId, value.fingerprint);
      return {
        app,
        changed: true,
        created: before === undefined || before === null,
        releaseId: rel?.id ?? null,
        releaseVersion: rel?.version ?? null,
      } satisfies HerokuReceipt;
    },

    async verify(value, op) {
      // This process's PATCH was answered with the config holding the key: that answer is the read-back.
      if (wrote.get(op.rotationId) === value.fingerprint) {
        return { method: 'read-back', detail: `Heroku's answer to the write holds the new key in ${varName} of app ${app}; the release's config is checked next` };
      }
      return verifyByReadBack(read, value, ctx.name, where);
    },

    async redeploy(op, _receipt, purpose: RedeployPurpose = 'write'): Promise<VerifyResult> {
      // The release the dynos get is the newest: the write's (or restore's) own, or a later one,
      // which carries the value too unless the variable changed again (its config then says so).
      // Read fresh rather than remembered, so a change released after keyrot's is caught.
      const newest = await newestRelease('redeploy', op.signal);
      if (!newest) throw fail(`Heroku app ${app} has no release to watch`, 'redeploy', 'not-found', { retryable: false });
      const rel = newest.status === 'pending' ? await watchRelease(newest.id, 'redeploy', op.signal) : newest;
      if (rel.status === 'failed') {
        throw fail(
          `Heroku release v${rel.version} of app ${app} failed, so its dynos still run the previous release: see \`heroku releases:output v${rel.version} --app ${app}\``,
          'redeploy',
          'unavailable',
          { retryable: false },
        );
      }
      await checkReleaseRuns(rel, op.fingerprint, purpose, op.signal);
      const what = purpose === 'write' ? 'the new key' : 'the old value again';
      return { method: 'redeploy', detail: `release v${rel.version} of ${app} succeeded with ${what}; Heroku restarted the dynos` };
    },

    async restore(previous, op) {
      const vars = await getVars('restore', op.signal);
      const cur = vars[varName];
      const want = previous ? previous.reveal() : undefined;
      if (cur === want || (want === undefined && (cur === undefined || cur === null))) {
        // Already restored (an earlier attempt): still wait for its release if it is running.
        const newest = await newestRelease('restore', op.signal);
        if (newest?.status === 'pending') await settleRestore(newest, op.signal);
        return;
      }
      const rel = await patchOne(want ?? null, 'restore', op.signal);
      if (rel) await settleRestore(rel, op.signal);
    },
  };

  /**
   * Proves what the release the dynos now run carries, by fingerprint in memory: the new key after
   * a write; anything but the new key after a restore.
   */
  async function checkReleaseRuns(rel: HerokuRelease, newFp: string, purpose: RedeployPurpose, signal?: AbortSignal): Promise<void> {
    const snap = (await http.json<ConfigVars>({ op: 'redeploy', path: `${appPath}/releases/${encodeURIComponent(rel.id)}/config-vars`, signal })).body;
    const v = snap?.[varName];
    const holds = typeof v === 'string' && v !== '' ? fingerprint(v) : '';
    if (purpose === 'write' ? holds === newFp : holds !== newFp) return;
    const found = holds ? (holds === newFp ? 'the new key' : `a different key (${holds})`) : 'no value';
    const want = purpose === 'write' ? `the new key (${newFp})` : 'the old value';
    throw fail(
      `Heroku release v${rel.version} of app ${app} runs ${found} for ${varName}, not ${want}: another config change was released after keyrot's`,
      'redeploy',
      'mismatch',
      { retryable: false },
    );
  }

  async function settleRestore(rel: HerokuRelease, signal?: AbortSignal): Promise<void> {
    const done = await watchRelease(rel.id, 'restore-release', signal);
    if (done.status === 'failed') {
      throw fail(
        `Heroku release v${done.version} that puts ${varName} back on app ${app} failed: the config var holds the previous value, but the dynos run an older release; see \`heroku releases:output v${done.version} --app ${app}\``,
        'restore',
        'unavailable',
        { retryable: false },
      );
    }
  }

  return target;
}
