import { TargetError } from '../../core/errors.ts';
import type { Secret } from '../../core/secret.ts';
import { absentOn404 } from '../../runtime/provider-http.ts';
import type { CallAbout, GitHubClient } from './client.ts';
import type { GitHubActionsConfig } from './index.ts';
import type { SecretScope } from './scope.ts';
import { sealForGitHub } from './seal.ts';

/**
 * One GitHub secret through its store's routes: the public key, the secret's metadata (GitHub
 * returns `name`, `created_at`, `updated_at`, and for organisation secrets `visibility`, never the
 * value), create-or-update with a sealed value (201 created / 204 updated), delete (204). An
 * organisation secret's PUT must name its visibility, and its repositories when `selected`
 * (docs.github.com/rest/actions/secrets#create-or-update-an-organization-secret).
 */

export interface SecretMeta {
  name: string;
  created_at: string;
  updated_at: string;
  visibility?: 'all' | 'private' | 'selected';
}

export interface OrgAccess {
  visibility: 'all' | 'private' | 'selected';
  repositoryIds: number[] | null;
}

export interface PutResult {
  keyId: string;
  /** GitHub's clock just before the PUT, to the second (ISO). */
  writtenAfter: string;
  created: boolean;
  after: SecretMeta;
}

export function secretStore(client: GitHubClient, scope: SecretScope, config: GitHubActionsConfig, varName: string) {
  const params = { ...scope.params, secret_name: varName };
  const about: CallAbout = {
    subject: `the ${scope.what} ${varName} of ${scope.where}`,
    notFound: notFoundHint(scope, config),
    permission: scope.permissions,
  };

  async function publicKey(op: string, signal?: AbortSignal): Promise<{ key_id: string; key: string }> {
    const storeAbout = { ...about, subject: `the secrets of ${scope.where}` };
    return (await client.call<{ key_id: string; key: string }>(op, `GET ${scope.route}/public-key`, scope.params, storeAbout, signal)).data;
  }

  async function get(op: string, signal?: AbortSignal): Promise<SecretMeta | undefined> {
    return client.call<SecretMeta>(op, `GET ${scope.route}/{secret_name}`, params, about, signal).then((r) => r.data, absentOn404);
  }

  /**
   * Seals `value` with the store's current public key and PUTs it over `existing` (the secret as
   * the caller just read it); reads the secret back for its `updated_at`.
   */
  async function put(value: Secret, op: string, w: { access: OrgAccess | undefined; existing: SecretMeta | undefined }, signal?: AbortSignal): Promise<PutResult> {
    const key = await publicKey(op, signal);
    // GitHub's clock after the last answer, before the PUT: the secret's updated_at must not be older.
    const writtenAfter = new Date(client.serverNow() ?? Date.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const body: Record<string, unknown> = { encrypted_value: await sealForGitHub(value, key.key, scope.where), key_id: key.key_id };
    if (w.access) {
      body.visibility = w.access.visibility;
      if (w.access.visibility === 'selected') body.selected_repository_ids = w.access.repositoryIds ?? [];
    }
    const res = await client.call(op, `PUT ${scope.route}/{secret_name}`, { ...params, ...body }, about, signal);
    const after = await get(op, signal);
    if (!after) throw new TargetError(`GitHub accepted ${about.subject} (HTTP ${res.status}) but does not list it afterwards`, { kind: 'mismatch', op, retryable: true });
    return { keyId: key.key_id, writtenAfter, created: !w.existing, after };
  }

  /** Deletes the secret; false when it was already gone. */
  async function remove(op: string, signal?: AbortSignal): Promise<boolean> {
    const res = await client.call(op, `DELETE ${scope.route}/{secret_name}`, params, about, signal).catch(absentOn404);
    return res !== undefined;
  }

  /**
   * What an organisation secret's PUT says about access: `visibility:` from targets.yaml, else the
   * secret's own; with `selected`, the ids of `repositories:` (looked up by name), else the
   * secret's current selection. Undefined for repository and environment secrets.
   */
  async function orgAccess(op: string, existing: SecretMeta | undefined, signal?: AbortSignal): Promise<OrgAccess | undefined> {
    if (scope.kind !== 'org') return undefined;
    const visibility = config.visibility ?? existing?.visibility;
    if (!visibility) {
      throw new TargetError(`${about.subject} does not exist yet, and creating it needs a visibility: set \`visibility: all | private | selected\``, { kind: 'invalid', op, retryable: false });
    }
    if (visibility !== 'selected') return { visibility, repositoryIds: null };
    if (config.repositories) return { visibility, repositoryIds: await repositoryIds(config.repositories, op, signal) };
    return { visibility, repositoryIds: existing?.visibility === 'selected' ? await selectedIds(op, signal) : [] };
  }

  /** An organisation secret's access as it is (kept with the receipt, given back on restore); null for other stores. */
  async function currentAccess(existing: SecretMeta | undefined, op: string, signal?: AbortSignal): Promise<OrgAccess | null> {
    if (scope.kind !== 'org' || !existing?.visibility) return null;
    return { visibility: existing.visibility, repositoryIds: existing.visibility === 'selected' ? await selectedIds(op, signal) : null };
  }

  async function repositoryIds(names: string[], op: string, signal?: AbortSignal): Promise<number[]> {
    const ids: number[] = [];
    for (const name of names) {
      const repoAbout = { ...about, subject: `repository ${scope.params.org}/${name}`, notFound: 'check `repositories:` (names of the organisation’s repositories) and that the token can see them' };
      ids.push((await client.call<{ id: number }>(op, 'GET /repos/{owner}/{repo}', { owner: scope.params.org, repo: name }, repoAbout, signal)).data.id);
    }
    return ids;
  }

  async function selectedIds(op: string, signal?: AbortSignal): Promise<number[]> {
    const ids: number[] = [];
    for (let page = 1; page <= 10; page++) {
      const res = await client.call<{ repositories: Array<{ id: number }> }>(op, `GET ${scope.route}/{secret_name}/repositories`, { ...params, per_page: 100, page }, about, signal);
      ids.push(...res.data.repositories.map((r) => r.id));
      if (res.data.repositories.length < 100) break;
    }
    return ids;
  }

  return { about, publicKey, get, put, remove, orgAccess, currentAccess };
}

export type SecretStoreClient = ReturnType<typeof secretStore>;

function notFoundHint(scope: SecretScope, c: GitHubActionsConfig): string {
  if (scope.kind === 'org') return `check \`org: ${c.org}\` and that the token's resource owner is that organisation`;
  if (scope.kind === 'environment') {
    return `check \`environment: ${c.environment}\` (create it under the repository's Settings → Environments) and \`repo: ${c.repo}\`, and that the token can see the repository`;
  }
  return `check \`repo: ${c.repo}\` (OWNER/NAME) and that the token can see the repository (a fine-grained token lists it under "Repository access")`;
}
