import { laneOf, lazyCredential } from '../common.ts';
import { waitTimeoutMs, type CommonTargetConfig, type TargetContext } from '../types.ts';
import { TargetError } from '../../core/errors.ts';
import { absentOn404, createProviderHttp, type ProviderHttp } from '../../runtime/provider-http.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import { credentialOrDefault, type CredentialRef } from '../../inventory/credentials.ts';
import { valueBody, type Ctx, type EnvVar } from './contexts.ts';
import { NETLIFY_API, NETLIFY_TOKEN_ENV, netlify, type NetlifyConfig } from './index.ts';
import { tokenRateLimitKey } from '../token-client.ts';

/**
 * The Netlify API (`/api/v1`) routes keyrot uses, spoken directly (no SDK), and Netlify's answers
 * turned into messages that say what to do. Paths: netlify/open-api swagger.yml (getSite,
 * getEnvVar, createEnvVars, setEnvVarValue, deleteEnvVar, deleteEnvVarValue, createSiteBuild,
 * getSiteBuild, getSiteDeploy); the facts relied on are in README.md, "Provider facts".
 */

const USER_AGENT = 'keyrot';

export interface SiteInfo {
  id: string;
  name?: string;
  account_id?: string;
  account_slug?: string;
  admin_url?: string;
}
export interface Build {
  id: string;
  deploy_id?: string | null;
  done?: boolean;
  error?: string | null;
}
export interface Deploy {
  id: string;
  state?: string;
  error_message?: string | null;
}

/** What a Netlify call is about, for its error message. */
type About = 'site' | 'env' | 'deploy';
type Extra = { retryable?: boolean; cause?: unknown };

function credentialName(ref: CredentialRef): string {
  return ref.kind === 'env' ? ref.name : ref.raw;
}

export class NetlifyApi {
  readonly base: string;
  /** Netlify limits requests per token (500 a minute): the token's lane, shared by its sites and by discover. */
  readonly rateLimitKey: string;
  readonly siteId: string;
  /** The team (slug or id): configured, else the site's own, learnt on first use. */
  account: string | undefined;
  /** `name (id)` once the site was read, for messages. */
  siteLabel: string;
  private readonly http: ProviderHttp<About>;
  private readonly credName: string;
  private readonly ctx: TargetContext & { name: string };
  private readonly varName: string;
  /** The configured contexts, named in a refused write's message. */
  private readonly contextsLabel: string | undefined;

  constructor(config: NetlifyConfig & CommonTargetConfig, ctx: TargetContext & { name: string }, varName: string, contextsLabel: string | undefined) {
    this.ctx = ctx;
    this.varName = varName;
    this.contextsLabel = contextsLabel;
    this.base = `${(config.endpoint ?? NETLIFY_API).replace(/\/+$/, '')}/api/v1`;
    this.siteId = config.site;
    this.siteLabel = config.site;
    this.account = config.account;
    const ref = credentialOrDefault(config.token, NETLIFY_TOKEN_ENV, ctx.env);
    this.credName = credentialName(ref);
    this.rateLimitKey = tokenRateLimitKey('netlify', this.base, this.credName);
    const credential = lazyCredential(ctx, ref, (m) => `Netlify access token: ${m} (create a personal access token under User settings → Applications)`);
    this.http = createProviderHttp<About>({
      provider: 'Netlify',
      baseUrl: this.base,
      target: ctx.name,
      clock: ctx.clock,
      timeoutMs: waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS),
      headers: { 'user-agent': USER_AGENT },
      auth: async (op) => ({ authorization: `Bearer ${(await credential(op)).reveal()}` }),
      endpointHint: 'set `endpoint:` of this target to the Netlify API’s URL (or remove it for https://api.netlify.com)',
      describe: (f) => this.describe(f.status, f.message, f.op, f.about ?? 'env'),
      lane: laneOf(ctx, this.rateLimitKey, netlify),
    });
  }

  fail(message: string, op: string, kind: TargetError['kind'], extra: Extra = {}): TargetError {
    return new TargetError(message, { target: this.ctx.name, op, kind, ...extra });
  }

  /** A failed call in words: what is wrong and what to do first, Netlify's own words last. */
  private describe(status: number, message: string, op: string, about: About): string {
    const said = message ? ` (Netlify said: ${message})` : '';
    const { siteLabel, siteId, varName } = this;
    if (status === 401) {
      return `Netlify rejected the access token (${this.credName}): create a personal access token under User settings → Applications → Personal access tokens and put it in ${this.credName}${said}`;
    }
    if (status === 403) {
      return `Netlify denied ${about === 'deploy' ? 'starting a build' : `changing ${varName}`} on site ${siteLabel}: the token's user must be an Owner or Developer of the team that owns the site${said}`;
    }
    if (status === 404) {
      if (about === 'site') {
        return `Netlify site ${siteId} not found: check \`site:\` (the Site ID under Site configuration → Site details) and that the token's user is on the site's team${said}`;
      }
      if (about === 'deploy') return `Netlify could not find the build keyrot is watching on site ${siteLabel}${said}`;
      return `Netlify team ${this.account ?? '(unknown)'} or site ${siteLabel} not found: check \`account:\` (or leave it out to use the site's own team)${said}`;
    }
    if (status === 429) return `Netlify rate limit reached (500 requests/minute, 3 deploys/minute): keyrot will wait until it resets${said}`;
    if (status === 400 || status === 409 || status === 422) {
      return `Netlify refused to change ${varName}${this.contextsLabel ? ` (${this.contextsLabel})` : ''} on site ${siteLabel}${said}`;
    }
    if (status >= 500) return `Netlify API unavailable (HTTP ${status}) during ${op} on site ${siteLabel}${said}`;
    return `Netlify answered ${status} during ${op} on site ${siteLabel}${said}`;
  }

  async getSite(op: string, signal?: AbortSignal): Promise<SiteInfo> {
    const site = (await this.http.json<SiteInfo>({ op, path: `/sites/${encodeURIComponent(this.siteId)}`, about: 'site', signal })).body;
    if (site.name) this.siteLabel = `${site.name} (${this.siteId})`;
    return site;
  }

  /** One page of the sites of every team the token's user is on (listSites: `filter=all`, `page` / `per_page`). */
  async sitesPage(page: number, perPage: number, op: string, signal?: AbortSignal): Promise<SiteInfo[]> {
    const query = { filter: 'all', page: String(page), per_page: String(perPage) };
    const body = (await this.http.json<SiteInfo[]>({ op, path: '/sites', query, about: 'site', signal })).body;
    return Array.isArray(body) ? body.filter((s) => typeof s?.id === 'string') : [];
  }

  /** Every site-level variable of a site (getEnvVars with `site_id`: not merged with the team's). */
  async siteVars(account: string, siteId: string, op: string, signal?: AbortSignal): Promise<EnvVar[]> {
    const path = `/accounts/${encodeURIComponent(account)}/env`;
    const body = (await this.http.json<EnvVar[]>({ op, path, query: { site_id: siteId }, signal })).body;
    return Array.isArray(body) ? body : [];
  }

  async accountId(op: string, signal?: AbortSignal): Promise<string> {
    if (this.account) return this.account;
    const site = await this.getSite(op, signal);
    // The CLI addresses the env API with the team slug; the id works too.
    this.account = site.account_slug || site.account_id;
    if (!this.account) throw this.fail(`Netlify did not say which team owns site ${this.siteLabel}: set \`account:\` in targets.yaml`, op, 'invalid', { retryable: false });
    return this.account;
  }

  private envPath(acct: string, suffix = ''): string {
    return `/accounts/${encodeURIComponent(acct)}/env/${encodeURIComponent(this.varName)}${suffix}?site_id=${encodeURIComponent(this.siteId)}`;
  }

  /** The site-level variable (getEnvVar: not merged with the team's), or undefined when absent. */
  async getVar(op: string, signal?: AbortSignal): Promise<EnvVar | undefined> {
    const acct = await this.accountId(op, signal);
    const res = await this.http.json<EnvVar>({ op, path: this.envPath(acct), signal }).catch(absentOn404);
    return res?.body;
  }

  /** Creates the missing variable with these contexts' values: not secret, every scope (the CLI's `env:set KEY VALUE`). */
  async createVar(values: Array<{ c: Ctx; value: string }>, op: string, signal?: AbortSignal): Promise<EnvVar> {
    const acct = await this.accountId(op, signal);
    const body = [{ key: this.varName, values: values.map((x) => valueBody(x.c, x.value)) }];
    const path = `/accounts/${encodeURIComponent(acct)}/env?site_id=${encodeURIComponent(this.siteId)}`;
    const created = (await this.http.json<EnvVar[]>({ op, method: 'POST', path, body, signal })).body;
    const after = Array.isArray(created) ? created.find((x) => x.key === this.varName) : undefined;
    if (!after) throw this.fail(`Netlify did not return ${this.varName} after creating it on site ${this.siteLabel}`, op, 'unavailable');
    return after;
  }

  /** Sets one context's value with a single-context PATCH (setEnvVarValue): the other contexts are untouched. */
  async patchValue(c: Ctx, value: string, op: string, signal?: AbortSignal): Promise<EnvVar> {
    const acct = await this.accountId(op, signal);
    return (await this.http.json<EnvVar>({ op, method: 'PATCH', path: this.envPath(acct), body: valueBody(c, value), signal })).body;
  }

  /** Deletes the whole variable; already gone is fine. */
  async deleteVar(op: string, signal?: AbortSignal): Promise<void> {
    const acct = await this.accountId(op, signal);
    await this.http.json({ op, method: 'DELETE', path: this.envPath(acct), signal }).catch(absentOn404);
  }

  /** Deletes one context's value by its id; already gone is fine. */
  async deleteValue(valueId: string, op: string, signal?: AbortSignal): Promise<void> {
    const acct = await this.accountId(op, signal);
    await this.http.json({ op, method: 'DELETE', path: this.envPath(acct, `/value/${encodeURIComponent(valueId)}`), signal }).catch(absentOn404);
  }

  /** Starts a build: production, or the deploy of one branch. */
  async startBuild(branch: string | undefined, op: string, signal?: AbortSignal): Promise<Build> {
    const q = branch !== undefined ? `?branch=${encodeURIComponent(branch)}` : '';
    return (await this.http.json<Build>({ op, method: 'POST', path: `/sites/${encodeURIComponent(this.siteId)}/builds${q}`, about: 'deploy', signal })).body;
  }

  async getBuild(buildId: string, op: string, signal?: AbortSignal): Promise<Build> {
    return (await this.http.json<Build>({ op, path: `/builds/${encodeURIComponent(buildId)}`, about: 'deploy', signal })).body;
  }

  async getDeploy(deployId: string, op: string, signal?: AbortSignal): Promise<Deploy> {
    const path = `/sites/${encodeURIComponent(this.siteId)}/deploys/${encodeURIComponent(deployId)}`;
    return (await this.http.json<Deploy>({ op, path, about: 'deploy', signal })).body;
  }
}
