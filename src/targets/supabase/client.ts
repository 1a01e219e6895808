import { createHash } from 'node:crypto';
import type { Secret } from '../../core/secret.ts';
import { tokenHttp, type TokenClientOptions } from '../token-client.ts';

/**
 * The Supabase Management API calls keyrot makes, spoken directly (no SDK). Facts relied on
 * (see README.md for the sources):
 * - `GET /v1/projects/{ref}/secrets` lists `{name, value, updated_at}` where `value` is the
 *   SHA-256 hex digest of the secret — never the secret;
 * - `POST /v1/projects/{ref}/secrets` `[{name, value}]` creates or replaces (201, no body);
 *   `DELETE /v1/projects/{ref}/secrets` `["NAME"]` removes (200);
 * - errors are `{"message"}`; 120 requests/minute per token and project, `X-RateLimit-*` headers.
 */

export const SUPABASE_API = 'https://api.supabase.com';
export const TOKEN_HELP = 'create a personal access token at https://supabase.com/dashboard/account/tokens';

export interface SupabaseSecret {
  name: string;
  /** The SHA-256 hex digest of the value. */
  value: string;
  updated_at?: string;
}

export interface SupabaseProject {
  ref: string;
  name?: string;
  status?: string;
  organization_slug?: string;
}

/** What the target or discovery is about, for error messages. */
export interface SupabaseAbout {
  project?: string;
  varName?: string;
}

export type SupabaseClientOptions = TokenClientOptions;

/** The digest Supabase lists for a secret holding `value`: lowercase hex SHA-256, computed in memory. */
export function secretDigest(value: Secret): string {
  return createHash('sha256').update(value.reveal(), 'utf8').digest('hex');
}

export function holdsValue(entry: SupabaseSecret | undefined, value: Secret): boolean {
  return !!entry && entry.value.toLowerCase() === secretDigest(value);
}

function describe(status: number, message: string, op: string, about: SupabaseAbout, credName: string): string {
  // Supabase's own words go last, so the message leads with what is wrong and what to do.
  const said = message ? ` (Supabase said: ${message})` : '';
  const project = about.project ? `project ${about.project}` : 'the projects';
  if (status === 401) return `Supabase rejected the access token (${credName}): ${TOKEN_HELP} and put it in ${credName}${said}`;
  if (status === 403) {
    return `Supabase denied ${op} on ${project}: the token needs read and write access to Edge Function secrets (a scoped token must include this project and the secrets permissions)${said}`;
  }
  if (status === 404) return `Supabase ${project} not found: check \`project:\` (the ref under Project Settings → General) and that the token reaches it${said}`;
  if (status === 429) return `Supabase rate limit reached (120 requests per minute per project): keyrot will wait until it resets`;
  if (status === 400 || status === 422) return `Supabase refused to change ${about.varName ?? 'the secret'} on ${project}${said}`;
  if (status >= 500) return `Supabase Management API unavailable (HTTP ${status}) during ${op} on ${project}${said}`;
  return `Supabase answered ${status} during ${op} on ${project}${said}`;
}

export function supabaseClient(o: SupabaseClientOptions) {
  const http = tokenHttp<SupabaseAbout>(o, {
    provider: 'Supabase',
    baseUrl: o.endpoint ?? SUPABASE_API,
    endpointHint: 'set `endpoint:` of this target to the Management API’s URL (or remove it for https://api.supabase.com)',
    describe: (f) => describe(f.status, f.message, f.op, f.about ?? {}, o.credName),
    // The limit is per token and per project (X-RateLimit-* of each answer): one budget per project.
    bucketOf: (_method, path) => /^\/v1\/projects\/([^/]+)/.exec(path)?.[1] ?? '',
  });
  const path = (ref: string) => `/v1/projects/${encodeURIComponent(ref)}`;

  return {
    async projects(op: string, signal?: AbortSignal): Promise<SupabaseProject[]> {
      const res = await http.json<SupabaseProject[]>({ op, path: '/v1/projects', signal, about: {} });
      return Array.isArray(res.body) ? res.body : [];
    },
    async project(ref: string, op: string, signal?: AbortSignal): Promise<SupabaseProject> {
      return (await http.json<SupabaseProject>({ op, path: path(ref), signal, about: { project: ref } })).body;
    },
    async secrets(ref: string, op: string, signal?: AbortSignal): Promise<SupabaseSecret[]> {
      const res = await http.json<SupabaseSecret[]>({ op, path: `${path(ref)}/secrets`, signal, about: { project: ref } });
      return Array.isArray(res.body) ? res.body.filter((s) => typeof s?.name === 'string' && typeof s?.value === 'string') : [];
    },
    async set(ref: string, name: string, value: Secret, op: string, signal?: AbortSignal): Promise<void> {
      await http.json({ op, method: 'POST', path: `${path(ref)}/secrets`, body: [{ name, value: value.reveal() }], signal, about: { project: ref, varName: name } });
    },
    async remove(ref: string, name: string, op: string, signal?: AbortSignal): Promise<void> {
      await http.json({ op, method: 'DELETE', path: `${path(ref)}/secrets`, body: [name], signal, about: { project: ref, varName: name } });
    },
  };
}

export type SupabaseClient = ReturnType<typeof supabaseClient>;
