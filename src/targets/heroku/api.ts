import { TargetError } from '../../core/errors.ts';
import { createProviderHttp, type ProviderHttp } from '../../runtime/provider-http.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import { credentialOrDefault, type CredentialRef } from '../../inventory/credentials.ts';
import { laneOf, lazyCredential } from '../common.ts';
import { waitTimeoutMs, type CommonTargetConfig, type TargetContext } from '../types.ts';
import { HEROKU_API, HEROKU_TOKEN_ENV, heroku, type HerokuConfig } from './index.ts';

export const HEROKU_ACCEPT = 'application/vnd.heroku+json; version=3';
const USER_AGENT = 'keyrot';
/** Heroku sends no Retry-After on 429: a few seconds buys the handful of tokens one write needs. */
export const HEROKU_429_RETRY_MS = 5_000;

export interface HerokuRelease {
  id: string;
  version: number;
  status: 'pending' | 'succeeded' | 'failed';
  description?: string;
  current?: boolean;
}

export type ConfigVars = Record<string, string | null>;

function credentialName(ref: CredentialRef): string {
  return ref.kind === 'env' ? ref.name : ref.raw;
}

/** The Platform API calls on one app: config vars and releases, paced in the token's lane, failures in product words. */
export class HerokuApi {
  readonly base: string;
  readonly app: string;
  /** The token bucket is the account's: targets using the same token share one lane. */
  readonly rateLimitKey: string;
  /** The last `RateLimit-Remaining` Heroku reported for this token (undefined before the first call). */
  remaining: number | undefined;
  private readonly appPath: string;
  private readonly varName: string;
  private readonly credName: string;
  private readonly target: string;
  private readonly http: ProviderHttp<string>;

  constructor(config: HerokuConfig & CommonTargetConfig, ctx: TargetContext & { name: string }) {
    this.base = (config.endpoint ?? HEROKU_API).replace(/\/+$/, '');
    this.app = config.app;
    this.appPath = `/apps/${encodeURIComponent(config.app)}`;
    this.varName = ctx.varName;
    this.target = ctx.name;
    const ref = credentialOrDefault(config.token, HEROKU_TOKEN_ENV, ctx.env);
    this.credName = credentialName(ref);
    this.rateLimitKey = `heroku:${this.base}:${this.credName}`;
    const credential = lazyCredential(ctx, ref, (m) => `Heroku API token: ${m} (create one with \`heroku authorizations:create --scope read-protected,write-protected\`)`);
    this.http = createProviderHttp({
      provider: 'Heroku',
      baseUrl: this.base,
      target: ctx.name,
      clock: ctx.clock,
      timeoutMs: waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS),
      headers: { accept: HEROKU_ACCEPT, 'user-agent': USER_AGENT },
      auth: async (op) => ({ authorization: `Bearer ${(await credential(op)).reveal()}` }),
      lane: laneOf(ctx, this.rateLimitKey, heroku),
      endpointHint: 'set `endpoint:` of this target to the Platform API’s URL (or remove it for https://api.heroku.com)',
      // Heroku's 429 has no Retry-After (the engine's policy still adds jittered backoff).
      describe: (f) => ({ message: this.describe(f.status, f.message, f.op, f.about), retryAfterMs: f.rateLimit.retryAfterMs ?? (f.status === 429 ? HEROKU_429_RETRY_MS : undefined) }),
      onResponse: (r) => {
        if (r.rateLimit.remaining !== undefined) this.remaining = r.rateLimit.remaining;
      },
    });
  }

  fail(message: string, op: string, kind: TargetError['kind'], extra: { retryable?: boolean; cause?: unknown } = {}): TargetError {
    return new TargetError(message, { target: this.target, op, kind, ...extra });
  }

  async getVars(op: string, signal?: AbortSignal): Promise<ConfigVars> {
    return this.varsOf(this.app, op, signal);
  }

  /** The config vars of any app the token reaches (`keyrot discover` reads every app with one client). */
  async varsOf(app: string, op: string, signal?: AbortSignal): Promise<ConfigVars> {
    const res = await this.http.json<ConfigVars>({ op, path: `/apps/${encodeURIComponent(app)}/config-vars`, signal, about: app });
    if (!res.body || typeof res.body !== 'object') throw this.fail(`Heroku returned an unexpected config-vars body for app ${app}`, op, 'unavailable');
    return res.body;
  }

  /**
   * One page of the apps the token can read (`GET /apps`): Heroku pages lists with `Range`, and
   * answers 206 with `Next-Range` (the Range of the next page) when more remain
   * (devcenter.heroku.com/articles/platform-api-reference#ranges).
   */
  async appsPage(range: string, op: string, signal?: AbortSignal): Promise<{ apps: Array<{ id: string; name: string }>; next: string | undefined }> {
    const res = await this.http.json<Array<{ id: string; name: string }>>({ op, path: '/apps', headers: { range }, signal, about: '' });
    const apps = Array.isArray(res.body) ? res.body.filter((a) => typeof a?.name === 'string') : [];
    return { apps, next: res.status === 206 ? (res.headers.get('next-range') ?? undefined) : undefined };
  }

  /** PATCH exactly one key (a merge: nothing else changes; null deletes); answers the app's config vars after the change. */
  async patchVar(value: string | null, op: string, signal?: AbortSignal): Promise<ConfigVars | undefined> {
    return (await this.http.json<ConfigVars>({ op, method: 'PATCH', path: `${this.appPath}/config-vars`, body: { [this.varName]: value }, signal })).body;
  }

  async newestRelease(op: string, signal?: AbortSignal): Promise<HerokuRelease | undefined> {
    const res = await this.http.json<HerokuRelease[]>({ op, path: `${this.appPath}/releases`, headers: { range: 'version ..; max=1, order=desc' }, signal });
    return Array.isArray(res.body) ? res.body[0] : undefined;
  }

  async release(idOrVersion: string | number, op: string, signal?: AbortSignal): Promise<HerokuRelease> {
    return (await this.http.json<HerokuRelease>({ op, path: `${this.appPath}/releases/${encodeURIComponent(String(idOrVersion))}`, signal })).body;
  }

  /** The config a release runs with. */
  async releaseConfig(rel: HerokuRelease, op: string, signal?: AbortSignal): Promise<ConfigVars | undefined> {
    return (await this.http.json<ConfigVars>({ op, path: `${this.appPath}/releases/${encodeURIComponent(rel.id)}/config-vars`, signal })).body;
  }

  /** Product words for each status Heroku can answer (the provider message is already redacted). */
  private describe(status: number, message: string, op: string, about: string | undefined): string {
    const { credName, varName } = this;
    const app = about ?? this.app;
    // Heroku's own words go last, so the message leads with what is wrong and what to do.
    const said = message ? ` (Heroku said: ${message})` : '';
    if (status === 401) {
      return `Heroku rejected the API token (${credName}): create one with \`heroku authorizations:create --scope read-protected,write-protected\` and put it in ${credName}${said}`;
    }
    if (status === 403 && app === '') {
      return `Heroku denied listing the token's apps: the token needs the read scope at least (\`heroku authorizations:create --scope read-protected,write-protected\`)${said}`;
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
}
