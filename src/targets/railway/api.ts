import { laneOf, lazyCredential } from '../common.ts';
import { tokenRateLimitKey } from '../token-client.ts';
import { waitTimeoutMs, type CommonTargetConfig, type TargetContext } from '../types.ts';
import { TargetError, type TargetErrorKind } from '../../core/errors.ts';
import { createProviderHttp, type Described, type ProviderFailure, type ProviderHttp } from '../../runtime/provider-http.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import type { CredentialRef } from '../../inventory/credentials.ts';
import { formatDuration } from '../../inventory/duration.ts';
import { RAILWAY_API, railway, type RailwayConfig } from './index.ts';

/**
 * The Railway public GraphQL operations keyrot uses, with plain fetch (provider-http), and
 * Railway's answers (HTTP and GraphQL errors) turned into messages that say what to do. Signatures
 * follow the official CLI (railwayapp/cli @df3838b src/gql/schema.json, src/client.rs); README
 * "Provider facts".
 */

export interface DeploymentNode {
  id: string;
  status: string;
  createdAt: string;
}

type Named = { id: string; name: string };
export interface ProjectInfo {
  id?: string;
  name: string;
  environments: { edges: Array<{ node: Named }> };
  services: { edges: Array<{ node: Named }> };
}
type FailExtra = { retryAfterMs?: number; status?: number; retryable?: boolean };

const Q = {
  projectToken: 'query KeyrotProjectToken { projectToken { project { id name } environment { id name } } }',
  projects:
    'query KeyrotProjects($first: Int, $after: String) { projects(first: $first, after: $after) { pageInfo { hasNextPage endCursor } edges { node { id name environments { edges { node { id name } } } services { edges { node { id name } } } } } } }',
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

export class RailwayApi {
  readonly tokenRef: CredentialRef;
  readonly tokenType: 'project' | 'account';
  /** `Railway service S (project P, environment E)`, for messages. */
  readonly where: string;
  private readonly http: ProviderHttp;
  private readonly config: RailwayConfig & CommonTargetConfig;
  private readonly ctx: TargetContext & { name: string };
  private readonly ids: { projectId: string; environmentId: string; serviceId: string };
  /** Railway limits requests per token (an hourly budget): the token's lane, shared by its services and by discover. */
  readonly rateLimitKey: string;

  constructor(config: RailwayConfig & CommonTargetConfig, ctx: TargetContext & { name: string }) {
    this.config = config;
    this.ctx = ctx;
    // Railway's conventions (CLI consts.rs / client.rs): RAILWAY_API_TOKEN is an account or workspace
    // token (Authorization: Bearer), RAILWAY_TOKEN a project token (Project-Access-Token header).
    const envName = ctx.env.RAILWAY_API_TOKEN ? 'RAILWAY_API_TOKEN' : ctx.env.RAILWAY_TOKEN ? 'RAILWAY_TOKEN' : 'RAILWAY_API_TOKEN';
    this.tokenRef = config.token ?? { kind: 'env', name: envName, raw: `env:${envName}` };
    this.tokenType = config.tokenType ?? (config.token ? 'account' : envName === 'RAILWAY_TOKEN' ? 'project' : 'account');
    this.ids = { projectId: config.project, environmentId: config.environment, serviceId: config.service };
    // No service: a client that searches every project (`keyrot discover`).
    this.where = config.service ? `Railway service ${config.service} (project ${config.project}, environment ${config.environment})` : 'the Railway projects the token reaches';
    const credential = lazyCredential(ctx, this.tokenRef);
    this.rateLimitKey = tokenRateLimitKey('railway', config.endpoint, this.tokenRef.raw);
    this.http = createProviderHttp({
      provider: 'Railway',
      baseUrl: config.endpoint ?? RAILWAY_API,
      target: ctx.name,
      clock: ctx.clock,
      timeoutMs: waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS),
      headers: { 'user-agent': 'keyrot' },
      // Railway's conventions (CLI client.rs): an account/workspace token as Bearer, a project token as Project-Access-Token.
      auth: async (op): Promise<Record<string, string>> => {
        const token = (await credential(op)).reveal();
        return this.tokenType === 'project' ? { 'project-access-token': token } : { authorization: `Bearer ${token}` };
      },
      endpointHint: 'set `endpoint:` of this target to Railway’s GraphQL URL (or remove it for https://backboard.railway.com/graphql/v2)',
      describe: (f) => this.describe(f),
      describeGraphQL: (message, op) => this.describeGraphQL(message, op),
      // A spent budget (X-RateLimit-Remaining 0) holds every call of the token until its reset (at most a minute, then one looks again).
      lane: laneOf(ctx, this.rateLimitKey, railway),
    });
  }

  fail(message: string, kind: TargetErrorKind, op: string, extra: FailExtra = {}): TargetError {
    return new TargetError(message, { target: this.ctx.name, op, kind, ...extra });
  }

  private authFailure(detail: string): Described {
    const how =
      this.tokenType === 'project'
        ? `a project token for environment ${this.config.environment} (Project settings → Tokens), sent as Project-Access-Token`
        : 'an account or workspace token with access to the project (railway.com/account/tokens)';
    return { message: `Railway rejected the token from ${this.tokenRef.raw} (${detail}): use ${how}`, kind: 'auth', retryable: false };
  }

  /** A failed HTTP answer. */
  private describe(f: ProviderFailure): Described {
    const { where } = this;
    if (f.status === 429) {
      // Railway sends Retry-After (seconds) on every 429 (CLI client.rs).
      const secs = f.rateLimit.retryAfterMs !== undefined ? ` for ${formatDuration(f.rateLimit.retryAfterMs)}` : '';
      return `Railway rate-limited ${f.op} on ${where}${secs}`;
    }
    if (/not authorized/i.test(f.message) || f.status === 401) return this.authFailure(f.message || `HTTP ${f.status}`);
    if (f.status === 403) {
      // Cloudflare answers abusive traffic with an HTML "Access denied" page (station.railway.com).
      return { message: `Railway refused ${f.op} on ${where} (HTTP 403${f.message ? `: ${f.message.slice(0, 120)}` : ''}); wait a while before retrying`, kind: 'rate-limited', retryable: true, retryAfterMs: 60_000 };
    }
    if (f.status >= 500) return `Railway failed ${f.op} on ${where} (HTTP ${f.status}); try again later`;
    return { message: `Railway rejected keyrot's ${f.op} request for ${where} (HTTP ${f.status}${f.message ? `: ${f.message}` : ''})`, kind: 'invalid', retryable: false };
  }

  /** A GraphQL error (they arrive with HTTP 200). */
  private describeGraphQL(message: string, op: string): Described {
    const { where, config } = this;
    if (/project token not found/i.test(message)) return this.authFailure('project token not found: revoked or mistyped');
    if (/two factor authentication required/i.test(message)) {
      return { message: `Railway requires two-factor authentication for this workspace before ${op} on ${where}: enable 2FA for the token's owner`, kind: 'permission' };
    }
    // Railway says "Not Authorized" both for a dead token and for one that cannot see the
    // resource (the CLI treats it as an auth failure, client.rs auth_failure_error): say both.
    if (/not authorized/i.test(message)) {
      const reach = config.project ? `project ${config.project}${this.tokenType === 'project' ? ` environment ${config.environment}` : ''}` : 'the projects to search';
      return this.authFailure(`Not Authorized: the token is invalid, expired or revoked, or cannot reach ${reach}`);
    }
    if (/rate limit|too many requests/i.test(message)) return { message: `Railway rate-limited ${op} on ${where}`, kind: 'rate-limited' };
    if (/not found/i.test(message)) return { message: `${where}: ${message}; check project, environment and service ids in targets.yaml`, kind: 'not-found' };
    return { message: `Railway refused ${op} on ${where}: ${message}`, kind: 'invalid', retryable: false };
  }

  /** The service's variables (serviceId null: the environment's shared ones). Sealed values are null. */
  async variables(op: string, serviceId: string | null = this.config.service): Promise<Record<string, string | null>> {
    return this.variablesOf(op, { projectId: this.config.project, environmentId: this.config.environment, serviceId });
  }

  /** Any service's variables the token reaches (`keyrot discover` reads every service with one client). */
  async variablesOf(op: string, ids: { projectId: string; environmentId: string; serviceId: string | null }, signal?: AbortSignal): Promise<Record<string, string | null>> {
    const d = await this.http.graphql<{ variables: Record<string, string | null> }>(op, Q.variables, ids, signal);
    return d.variables ?? {};
  }

  /**
   * One page of the projects an account or workspace token reaches, with their environments and
   * services (`projects`: a Relay connection paged with `first` / `after`).
   */
  async projectsPage(first: number, after: string | undefined, signal?: AbortSignal): Promise<{ projects: Array<ProjectInfo & { id: string }>; next: string | undefined }> {
    type Page = { projects: { pageInfo?: { hasNextPage?: boolean; endCursor?: string | null }; edges: Array<{ node: ProjectInfo & { id: string } }> } };
    const d = await this.http.graphql<Page>('discover', Q.projects, { first, ...(after ? { after } : {}) }, signal);
    const info = d.projects.pageInfo;
    return { projects: d.projects.edges.map((e) => e.node), next: info?.hasNextPage && info.endCursor ? info.endCursor : undefined };
  }

  /** A project by id, with its environments and services. */
  async projectById(id: string, signal?: AbortSignal): Promise<ProjectInfo> {
    return (await this.http.graphql<{ project: ProjectInfo }>('discover', Q.project, { id }, signal)).project;
  }

  async upsert(op: string, value: string): Promise<void> {
    const d = await this.http.graphql<{ variableUpsert: boolean }>(op, Q.upsert, { input: { ...this.ids, name: this.ctx.varName, value, skipDeploys: true } });
    if (d.variableUpsert !== true) throw this.fail(`Railway did not confirm the upsert of ${this.ctx.varName} on ${this.where}`, 'unavailable', op);
  }

  /** Deletes the variable; already gone is fine. */
  async deleteVariable(op: string): Promise<void> {
    await this.http.graphql(op, Q.delete, { input: { ...this.ids, name: this.ctx.varName } }).catch((e: unknown) => {
      if (!(e instanceof TargetError && e.kind === 'not-found')) throw e;
    });
  }

  /** The service's newest deployments, newest first. */
  async deployments(op: string, first: number, signal?: AbortSignal): Promise<DeploymentNode[]> {
    const d = await this.http.graphql<{ deployments: { edges: Array<{ node: DeploymentNode }> } }>(op, Q.deployments, { input: this.ids, first }, signal);
    return d.deployments.edges.map((e) => e.node);
  }

  async deployment(op: string, id: string, signal?: AbortSignal): Promise<DeploymentNode> {
    return (await this.http.graphql<{ deployment: DeploymentNode }>(op, Q.deployment, { id }, signal)).deployment;
  }

  /** serviceInstanceRedeploy: answers a Boolean, not the deployment it creates. */
  async redeployService(op: string, signal?: AbortSignal): Promise<void> {
    const r = await this.http.graphql<{ serviceInstanceRedeploy: boolean }>(op, Q.redeploy, { environmentId: this.config.environment, serviceId: this.config.service }, signal);
    if (r.serviceInstanceRedeploy !== true) throw this.fail(`Railway did not accept the redeploy of ${this.where}`, 'unavailable', op, { retryable: false });
  }

  /** The project and environment a project token is bound to (the CLI's ProjectToken query). */
  async projectToken(signal?: AbortSignal, op = 'preflight'): Promise<{ project: Named; environment: Named }> {
    return (await this.http.graphql<{ projectToken: { project: Named; environment: Named } }>(op, Q.projectToken, {}, signal)).projectToken;
  }

  async project(signal?: AbortSignal): Promise<ProjectInfo> {
    return (await this.http.graphql<{ project: ProjectInfo }>('preflight', Q.project, { id: this.config.project }, signal)).project;
  }
}
