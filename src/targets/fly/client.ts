import { createHash } from 'node:crypto';
import { registerSensitive, type Secret } from '../../core/secret.ts';
import { tokenHttp, type TokenClientOptions } from '../token-client.ts';

/**
 * The Fly Machines API calls keyrot makes, spoken directly (no SDK). Facts relied on (see
 * README.md for the sources):
 * - `POST /v1/apps/{app}/secrets` `{"values": {NAME: value | null}}` sets / unsets app secrets
 *   and answers the app's new secrets `version` — what `fly secrets set|unset` do (flyctl
 *   internal/appsecrets, fly-go flaps UpdateAppSecrets); `GET` lists `{name, digest, updated_at}`;
 * - machines boot with the secrets: `POST /v1/apps/{app}/machines/{id}` (update) with the
 *   machine's own config and `min_secrets_version` restarts it onto them (flyctl's restart-only
 *   deploy after `fly secrets set`);
 * - errors are `{"error"}`; macaroon tokens are sent as `FlyV1`, others as `Bearer`.
 */

export const FLY_API = 'https://api.machines.dev';
export const TOKEN_HELP = 'create one with `fly tokens deploy -a APP` (or `fly tokens org` for discovery)';

export interface FlySecret {
  name: string;
  digest?: string;
  updated_at?: string;
}

export interface FlyMachine {
  id: string;
  name?: string;
  state?: string;
  region?: string;
  instance_id?: string;
  config?: Record<string, unknown>;
}

export interface FlyClientOptions extends TokenClientOptions {
  app?: string;
}

/**
 * The Authorization header for a Fly token as `fly tokens` prints it: the scheme is dropped and
 * chosen again, `FlyV1` when macaroons (fm1r_/fm1a_/fm2_) are present (fly-go tokens.go).
 */
export function flyAuthorization(token: string): string {
  const bare = token.trim().replace(/^((Bearer|FlyV1)\s+)+/i, '');
  const parts = bare.split(',').map((p) => p.trim()).filter(Boolean);
  for (const p of parts) registerSensitive(p);
  const macaroons = parts.filter((p) => /^(fm1r|fm1a|fm2)_/.test(p));
  return macaroons.length ? `FlyV1 ${macaroons.join(',')}` : `Bearer ${parts.join(',')}`;
}

/** Fly's documented digest of a secret (the MD5 hex of the value in its docs example), in memory. */
export function documentedDigest(value: Secret): string {
  return createHash('md5').update(value.reveal(), 'utf8').digest('hex');
}

function describe(status: number, message: string, op: string, o: FlyClientOptions): string {
  // Fly's own words go last, so the message leads with what is wrong and what to do.
  const said = message ? ` (Fly said: ${message})` : '';
  const app = o.app ? `app ${o.app}` : 'the organization';
  if (status === 401) return `Fly rejected the API token (${o.credName}): ${TOKEN_HELP} and put it in ${o.credName}${said}`;
  if (status === 403) return `Fly denied ${op} on ${app}: the token must be a deploy token of this app or an org token${said}`;
  if (status === 404) return `Fly ${app} not found: check \`app:\` in targets.yaml and that the token reaches it (a deploy token reaches only its own app)${said}`;
  if (status === 409) return `a machine of Fly ${app} is leased by another deploy (is \`fly deploy\` running?): keyrot will retry${said}`;
  if (status === 429) return `Fly rate limit reached (1 request per second per action and machine): keyrot will wait and retry`;
  if (status >= 500) return `Fly Machines API unavailable (HTTP ${status}) during ${op} on ${app}${said}`;
  return `Fly refused ${op} on ${app} (HTTP ${status})${said}`;
}

export function flyClient(o: FlyClientOptions) {
  const http = tokenHttp(o, {
    provider: 'Fly',
    baseUrl: `${(o.endpoint ?? FLY_API).replace(/\/+$/, '').replace(/\/v1$/, '')}/v1`,
    authorization: flyAuthorization,
    endpointHint: 'set `endpoint:` of this target to the Machines API’s URL (or remove it for https://api.machines.dev)',
    // A leased machine clears when the other deploy ends: worth retrying.
    describe: (f) => ({ message: describe(f.status, f.message, f.op, o), retryable: f.status === 409 || undefined }),
  });
  const app = (name: string) => `/apps/${encodeURIComponent(name)}`;

  return {
    app: async (name: string, op: string, signal?: AbortSignal) => (await http.json<{ name?: string; organization?: { slug?: string } }>({ op, path: app(name), signal })).body,
    async apps(org: string, op: string, signal?: AbortSignal): Promise<Array<{ name: string }>> {
      const body = (await http.json<{ apps?: Array<{ name: string }> }>({ op, path: '/apps', query: { org_slug: org }, signal })).body;
      return Array.isArray(body?.apps) ? body.apps : [];
    },
    /** The app's secrets; `version` asks for a read at least that recent (as flyctl does after a change). */
    async secrets(name: string, op: string, signal?: AbortSignal, version?: number): Promise<FlySecret[]> {
      const query = version !== undefined ? { version: String(version) } : undefined;
      const body = (await http.json<{ secrets?: FlySecret[] }>({ op, path: `${app(name)}/secrets`, query, signal })).body;
      return Array.isArray(body?.secrets) ? body.secrets : [];
    },
    /** Sets (a value) or unsets (null) secrets in one change; the answer's `version` orders it. */
    async update(name: string, values: Record<string, string | null>, op: string, signal?: AbortSignal): Promise<{ secrets: FlySecret[]; version: number | undefined }> {
      const body = (await http.json<{ secrets?: FlySecret[]; version?: number }>({ op, method: 'POST', path: `${app(name)}/secrets`, body: { values }, signal })).body;
      return { secrets: Array.isArray(body?.secrets) ? body.secrets : [], version: typeof body?.version === 'number' ? body.version : undefined };
    },
    async machines(name: string, op: string, signal?: AbortSignal): Promise<FlyMachine[]> {
      const body = (await http.json<FlyMachine[]>({ op, path: `${app(name)}/machines`, signal })).body;
      return Array.isArray(body) ? body : [];
    },
    machine: async (name: string, id: string, op: string, signal?: AbortSignal) => (await http.json<FlyMachine>({ op, path: `${app(name)}/machines/${encodeURIComponent(id)}`, signal })).body,
    updateMachine: async (name: string, id: string, body: Record<string, unknown>, op: string, signal?: AbortSignal) =>
      (await http.json<FlyMachine>({ op, method: 'POST', path: `${app(name)}/machines/${encodeURIComponent(id)}`, body, signal })).body,
  };
}

export type FlyClient = ReturnType<typeof flyClient>;
