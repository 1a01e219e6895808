import type { Secret } from '../../core/secret.ts';
import { absentOn404 } from '../../runtime/provider-http.ts';
import { tokenHttp, type TokenClientOptions } from '../token-client.ts';

/**
 * The Render REST API calls keyrot makes, spoken directly (no SDK). Facts relied on (see
 * README.md for the sources):
 * - `GET/PUT/DELETE /services/{id}/env-vars/{key}` read, upsert (`{"value"}`) and delete ONE
 *   variable; keyrot never uses `PUT /services/{id}/env-vars`, which replaces all of them;
 * - `POST /services/{id}/deploys` answers 201 with the deploy, or 202 without a body when it was
 *   queued behind a running one (found with `GET /services/{id}/deploys?status=queued&limit=1`);
 * - lists page with `limit` (max 100) and the last item's `cursor`; errors are `{"id","message"}`.
 */

export const RENDER_API = 'https://api.render.com/v1';
export const KEY_HELP = 'create an API key under Account Settings → API Keys in the Render Dashboard';
const PAGE = 100;

export interface RenderService {
  id: string;
  name?: string;
  type?: string;
  suspended?: string;
  ownerId?: string;
}

export interface RenderDeploy {
  id: string;
  status?: string;
  createdAt?: string;
}

export interface RenderClientOptions extends TokenClientOptions {
  /** What the calls are about, for messages: the service and the variable. */
  service?: string;
  varName?: string;
}

function describe(status: number, message: string, op: string, o: RenderClientOptions): string {
  // Render's own words go last, so the message leads with what is wrong and what to do.
  const said = message ? ` (Render said: ${message})` : '';
  const svc = o.service ? `service ${o.service}` : 'the services';
  if (status === 401) return `Render rejected the API key (${o.credName}): ${KEY_HELP} and put it in ${o.credName}${said}`;
  if (status === 403) return `Render denied ${op} on ${svc}: the API key's user must be a member of the service's workspace with permission to change it${said}`;
  if (status === 404) {
    return op === 'redeploy' || op === 'restore-deploy'
      ? `Render could not find the deploy keyrot is watching on ${svc}${said}`
      : `Render ${svc} not found: check \`service:\` (the srv-... id in the service's dashboard URL) and that the API key's user can see it${said}`;
  }
  if (status === 429) return `Render rate limit reached (30 changes a minute per API key, 10 deploys a minute per service): keyrot will wait until it resets`;
  if (status === 400 || status === 409 || status === 422) return `Render refused ${op === 'redeploy' || op === 'restore-deploy' ? 'to deploy' : `to change ${o.varName ?? 'the variable'} on`} ${svc}${said}`;
  if (status >= 500) return `Render API unavailable (HTTP ${status}) during ${op} on ${svc}${said}`;
  return `Render answered ${status} during ${op} on ${svc}${said}`;
}

export function renderClient(o: RenderClientOptions) {
  const http = tokenHttp(o, {
    provider: 'Render',
    baseUrl: o.endpoint ?? RENDER_API,
    endpointHint: 'set `endpoint:` of this target to the Render API’s URL (or remove it for https://api.render.com/v1)',
    describe: (f) => describe(f.status, f.message, f.op, o),
  });
  const svc = (id: string) => `/services/${encodeURIComponent(id)}`;
  const varPath = (id: string, key: string) => `${svc(id)}/env-vars/${encodeURIComponent(key)}`;

  /** Every item of a cursor-paged list, 100 at a time. */
  async function all<T>(op: string, path: string, signal?: AbortSignal): Promise<T[]> {
    const out: T[] = [];
    for (let cursor: string | undefined; ; ) {
      const query: Record<string, string> = { limit: String(PAGE), ...(cursor ? { cursor } : {}) };
      const page = (await http.json<Array<T & { cursor?: string }>>({ op, path, query, signal })).body;
      const items = Array.isArray(page) ? page : [];
      out.push(...items);
      cursor = items.at(-1)?.cursor;
      if (items.length < PAGE || !cursor) return out;
    }
  }

  return {
    all,
    service: async (id: string, op: string, signal?: AbortSignal) => (await http.json<RenderService>({ op, path: svc(id), signal })).body,
    /** One variable's value; undefined when the service has no such variable. */
    async getVar(id: string, key: string, op: string, signal?: AbortSignal): Promise<string | undefined> {
      const res = await http.json<{ key?: string; value?: unknown }>({ op, path: varPath(id, key), signal }).catch(absentOn404);
      return typeof res?.body?.value === 'string' ? res.body.value : undefined;
    },
    async putVar(id: string, key: string, value: Secret, op: string, signal?: AbortSignal): Promise<string | undefined> {
      const res = await http.json<{ value?: unknown }>({ op, method: 'PUT', path: varPath(id, key), body: { value: value.reveal() }, signal });
      return typeof res.body?.value === 'string' ? res.body.value : undefined;
    },
    async deleteVar(id: string, key: string, op: string, signal?: AbortSignal): Promise<void> {
      await http.json({ op, method: 'DELETE', path: varPath(id, key), signal }).catch(absentOn404);
    },
    /** Starts a deploy; its id (a queued one is looked up, as the Render CLI does). */
    async deploy(id: string, body: Record<string, string>, op: string, signal?: AbortSignal): Promise<string | undefined> {
      const res = await http.json<RenderDeploy>({ op, method: 'POST', path: `${svc(id)}/deploys`, body, signal });
      if (res.status === 201 && res.body?.id) return res.body.id;
      const queued = await http.json<Array<{ deploy?: RenderDeploy }>>({ op, path: `${svc(id)}/deploys`, query: { status: 'queued', limit: '1' }, signal });
      return Array.isArray(queued.body) ? queued.body[0]?.deploy?.id : undefined;
    },
    getDeploy: async (id: string, deployId: string, op: string, signal?: AbortSignal) =>
      (await http.json<RenderDeploy>({ op, path: `${svc(id)}/deploys/${encodeURIComponent(deployId)}`, signal })).body,
  };
}

export type RenderClient = ReturnType<typeof renderClient>;
