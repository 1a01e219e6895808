import type { EmuRequest, EmuResponse } from '../server.ts';
import { isResponse, type EmuApi } from './api.ts';
import { ghError, iso, paginate, secretNameProblem, type Permission, type SecretStore, type StoredSecret, type TokenInfo } from './state.ts';

/**
 * GitHub's secret endpoints, the same five for each kind of store (docs.github.com/rest/actions/secrets,
 * /rest/dependabot/secrets): list (names and dates only), public key, get (metadata, never the
 * value), create or update (201 created / 204 updated) with a value sealed to the store's public
 * key, delete (204). Names are case-insensitive and kept upper-case, as GitHub does.
 */

type StoreKind = 'repo-actions' | 'repo-dependabot' | 'environment' | 'org-actions' | 'org-dependabot';

const DOC: Record<StoreKind, string> = {
  'repo-actions': 'https://docs.github.com/rest/actions/secrets#create-or-update-a-repository-secret',
  'repo-dependabot': 'https://docs.github.com/rest/dependabot/secrets#create-or-update-a-repository-secret',
  environment: 'https://docs.github.com/rest/actions/secrets#create-or-update-an-environment-secret',
  'org-actions': 'https://docs.github.com/rest/actions/secrets#create-or-update-an-organization-secret',
  'org-dependabot': 'https://docs.github.com/rest/dependabot/secrets#create-or-update-an-organization-secret',
};

/** The fine-grained permissions each store needs (an environment's needs Environments too). */
const PERMS: Record<StoreKind, Permission[]> = {
  'repo-actions': ['secrets'],
  'repo-dependabot': ['dependabot_secrets'],
  environment: ['secrets', 'environments'],
  'org-actions': ['organization_secrets'],
  'org-dependabot': ['organization_dependabot_secrets'],
};

const BASES: Record<StoreKind, string> = {
  'repo-actions': '/repos/:owner/:repo/actions/secrets',
  'repo-dependabot': '/repos/:owner/:repo/dependabot/secrets',
  environment: '/repos/:owner/:repo/environments/:env/secrets',
  'org-actions': '/orgs/:org/actions/secrets',
  'org-dependabot': '/orgs/:org/dependabot/secrets',
};

export function registerSecretRoutes(api: EmuApi): void {
  for (const kind of Object.keys(BASES) as StoreKind[]) {
    const base = BASES[kind];
    const store = (req: EmuRequest, tok: TokenInfo, access: 'read' | 'write') => storeFor(api, kind, req, tok, access);
    api.on('GET', base, (req, tok) => withStore(store(req, tok, 'read'), (s) => list(req, s, kind)));
    api.on('GET', `${base}/public-key`, (req, tok) => withStore(store(req, tok, 'read'), (s) => ({ status: 200, body: { key_id: s.keyId, key: s.publicKeyBase64() } })));
    api.on('GET', `${base}/:name`, (req, tok) =>
      withStore(store(req, tok, 'read'), (s) => {
        const secret = s.get(req.params.name!);
        return secret ? { status: 200, body: view(secret, kind, req) } : ghError(404, 'Not Found', { docs: DOC[kind] });
      }),
    );
    api.on('PUT', `${base}/:name`, (req, tok) => withStore(store(req, tok, 'write'), (s) => put(api, req, s, kind)));
    api.on('DELETE', `${base}/:name`, (req, tok) =>
      withStore(store(req, tok, 'write'), (s) => {
        if (!s.secrets.delete(req.params.name!.toUpperCase())) return ghError(404, 'Not Found', { docs: DOC[kind] });
        api.countWrite();
        return { status: 204 };
      }),
    );
    if (kind.startsWith('org-')) api.on('GET', `${base}/:name/repositories`, (req, tok) => withStore(store(req, tok, 'read'), (s) => selectedRepos(api, req, s)));
  }
}

function withStore(s: SecretStore | EmuResponse, fn: (s: SecretStore) => EmuResponse): EmuResponse {
  return isResponse(s) ? s : fn(s);
}

/** The store a request addresses, after GitHub's checks: existence/visibility (404), then permission (403). */
function storeFor(api: EmuApi, kind: StoreKind, req: EmuRequest, tok: TokenInfo, access: 'read' | 'write'): SecretStore | EmuResponse {
  if (kind === 'org-actions' || kind === 'org-dependabot') {
    const org = api.org(req, tok);
    if (isResponse(org)) return org;
    return api.need(tok, PERMS[kind][0]!, access, DOC[kind]) ?? (kind === 'org-actions' ? org.actions : org.dependabot);
  }
  const repo = api.repo(req, tok);
  if (isResponse(repo)) return repo;
  for (const p of PERMS[kind]) {
    const denied = api.need(tok, p, access, DOC[kind]);
    if (denied) return denied;
  }
  if (kind === 'repo-actions') return repo.actions;
  if (kind === 'repo-dependabot') return repo.dependabot;
  return repo.environments.get(req.params.env!)?.store ?? ghError(404, 'Not Found', { docs: DOC[kind] });
}

function view(s: StoredSecret, kind: StoreKind, req: EmuRequest): Record<string, unknown> {
  const out: Record<string, unknown> = { name: s.name, created_at: iso(s.createdAt), updated_at: iso(s.updatedAt) };
  if (kind.startsWith('org-')) {
    out.visibility = s.visibility ?? 'private';
    if (s.visibility === 'selected') out.selected_repositories_url = `http://${req.headers.host}${req.path}/repositories`;
  }
  return out;
}

function list(req: EmuRequest, s: SecretStore, kind: StoreKind): EmuResponse {
  const all = [...s.secrets.values()].sort((a, b) => a.name.localeCompare(b.name));
  const page = paginate(req, all);
  const secrets = page.items.map((x) => {
    const v: Record<string, unknown> = { name: x.name, created_at: iso(x.createdAt), updated_at: iso(x.updatedAt) };
    if (kind.startsWith('org-')) v.visibility = x.visibility ?? 'private';
    return v;
  });
  return { status: 200, headers: page.headers, body: { total_count: all.length, secrets } };
}

/** Create or update: the body's `encrypted_value` must open with the store's current key (`key_id`). */
function put(api: EmuApi, req: EmuRequest, s: SecretStore, kind: StoreKind): EmuResponse {
  const name = req.params.name!;
  const bad = secretNameProblem(name);
  if (bad) return ghError(422, bad, { docs: DOC[kind] });
  const body = (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, unknown>;
  for (const field of ['encrypted_value', 'key_id']) {
    if (typeof body[field] !== 'string') return ghError(422, `Invalid request.\n\n"${field}" wasn't supplied.`, { docs: DOC[kind] });
  }
  const org = kind.startsWith('org-');
  if (org && !['all', 'private', 'selected'].includes(String(body.visibility))) {
    return ghError(422, `Invalid request.\n\n"visibility" wasn't supplied.`, { docs: DOC[kind] });
  }
  // Assumed (GitHub documents no error text for these): a stale key id or a value that does not
  // open with the store's key is refused with 422, never stored.
  if (body.key_id !== s.keyId) return ghError(422, 'Bad request: key_id does not match the current public key', { docs: DOC[kind] });
  const value = s.open(String(body.encrypted_value));
  if (value === undefined) return ghError(422, 'Bad request: encrypted_value could not be decrypted with the public key', { docs: DOC[kind] });
  const now = api.now();
  const existing = s.get(name);
  const next: StoredSecret = { name: name.toUpperCase(), value, createdAt: existing?.createdAt ?? now, updatedAt: now };
  if (org) {
    next.visibility = body.visibility as StoredSecret['visibility'];
    if (next.visibility === 'selected') {
      const ids = Array.isArray(body.selected_repository_ids) ? body.selected_repository_ids.map(Number) : existing?.selectedRepositoryIds;
      next.selectedRepositoryIds = ids ?? [];
    }
  }
  s.secrets.set(next.name, next);
  api.countWrite();
  // 201 with an empty JSON object when created, 204 when updated (docs: response status codes).
  return existing ? { status: 204 } : { status: 201, body: {} };
}

function selectedRepos(api: EmuApi, req: EmuRequest, s: SecretStore): EmuResponse {
  const secret = s.get(req.params.name!);
  if (!secret) return ghError(404, 'Not Found');
  if (secret.visibility !== 'selected') {
    return ghError(409, 'The visibility of this secret is not set to selected.');
  }
  const repos = (secret.selectedRepositoryIds ?? []).map((id) => api.repoById(id)).filter((r) => r !== undefined);
  const page = paginate(req, repos);
  const repositories = page.items.map((r) => ({ id: r.id, name: r.name, full_name: `${r.owner}/${r.name}`, private: r.private }));
  return { status: 200, headers: page.headers, body: { total_count: repos.length, repositories } };
}
