/**
 * A KV version 2 mount, as hashicorp/vault-plugin-secrets-kv implements it: path_data.go (read of
 * the latest or `?version=N`, 404 with the version's metadata when it is deleted or destroyed;
 * writes with `options.cas`, "check-and-set parameter did not match the current version",
 * "check-and-set parameter required for this call", `max_versions` pruning of the oldest,
 * default 10) and path_metadata.go (metadata read with `versions`, `current_version`,
 * `oldest_version`; LIST of the keys under a prefix, folders ending in `/`).
 */

export interface KvVersion {
  version: number;
  /** null once destroyed. */
  data: Record<string, unknown> | null;
  createdTime: string;
  deletionTime: string;
  destroyed: boolean;
}

export interface KvSecret {
  versions: Map<number, KvVersion>;
  currentVersion: number;
  oldestVersion: number;
  createdTime: string;
  updatedTime: string;
  casRequired: boolean;
  maxVersions: number;
}

/** A Vault error answer: status and `{"errors": [...]}`. */
export class VaultFailure extends Error {
  readonly status: number;
  readonly errors: string[];
  readonly data: unknown;
  constructor(status: number, errors: string[], data?: unknown) {
    super(errors.join('; '));
    this.status = status;
    this.errors = errors;
    this.data = data;
  }
}

const now = () => new Date().toISOString();

export class KvMount {
  readonly version: 1 | 2;
  readonly secrets = new Map<string, KvSecret>();
  /** Mount config (`<mount>/config`): when 0, Vault keeps 10 versions. */
  maxVersions = 0;
  casRequired = false;

  constructor(version: 1 | 2 = 2) {
    this.version = version;
  }

  read(path: string, version: number | undefined): { data: Record<string, unknown>; metadata: Record<string, unknown> } {
    const s = this.secrets.get(path);
    const v = s?.versions.get(version && version > 0 ? version : (s?.currentVersion ?? 0));
    if (!s || !v) throw new VaultFailure(404, []);
    const metadata = versionMetadata(v);
    if (v.destroyed || (v.deletionTime && v.deletionTime <= now())) throw new VaultFailure(404, [], { data: null, metadata });
    return { data: { ...v.data }, metadata };
  }

  write(path: string, body: unknown): Record<string, unknown> {
    const b = (body && typeof body === 'object' ? body : {}) as { data?: unknown; options?: { cas?: unknown } };
    if (!b.data || typeof b.data !== 'object') throw new VaultFailure(400, ['no data provided']);
    const s = this.secrets.get(path) ?? newSecret();
    const cas = b.options?.cas;
    if (cas !== undefined) {
      if (typeof cas !== 'number' && !/^\d+$/.test(String(cas))) throw new VaultFailure(400, ['error parsing check-and-set parameter']);
      if (Number(cas) !== s.currentVersion) throw new VaultFailure(400, ['check-and-set parameter did not match the current version']);
    } else if (this.casRequired || s.casRequired) {
      throw new VaultFailure(400, ['check-and-set parameter required for this call']);
    }
    const version = s.currentVersion + 1;
    const v: KvVersion = { version, data: { ...(b.data as Record<string, unknown>) }, createdTime: now(), deletionTime: '', destroyed: false };
    s.versions.set(version, v);
    s.currentVersion = version;
    s.updatedTime = v.createdTime;
    if (!s.oldestVersion) s.oldestVersion = version;
    this.secrets.set(path, s);
    this.prune(s);
    return versionMetadata(v);
  }

  /** Versions beyond max_versions (the key's, else the mount's, else 10) are permanently deleted, oldest first. */
  private prune(s: KvSecret): void {
    const max = s.maxVersions || this.maxVersions || 10;
    while (s.versions.size > max) {
      s.versions.delete(s.oldestVersion);
      s.oldestVersion++;
    }
  }

  metadata(path: string): Record<string, unknown> {
    const s = this.secrets.get(path);
    if (!s) throw new VaultFailure(404, []);
    const versions = Object.fromEntries([...s.versions].map(([n, v]) => [String(n), { created_time: v.createdTime, deletion_time: v.deletionTime, destroyed: v.destroyed }]));
    return {
      cas_required: s.casRequired,
      created_time: s.createdTime,
      current_version: s.currentVersion,
      custom_metadata: null,
      delete_version_after: '0s',
      max_versions: s.maxVersions,
      oldest_version: s.oldestVersion,
      updated_time: s.updatedTime,
      versions,
    };
  }

  /** The keys directly under `prefix` (folders end with `/`); 404 when there are none. */
  list(prefix: string): string[] {
    const p = prefix && !prefix.endsWith('/') ? `${prefix}/` : prefix;
    const keys = new Set<string>();
    for (const path of this.secrets.keys()) {
      if (!path.startsWith(p)) continue;
      const rest = path.slice(p.length);
      const slash = rest.indexOf('/');
      keys.add(slash < 0 ? rest : rest.slice(0, slash + 1));
    }
    if (!keys.size) throw new VaultFailure(404, []);
    return [...keys].sort();
  }

  /** Soft delete of the latest version (`DELETE <mount>/data/<path>`), for tests. */
  deleteLatest(path: string): void {
    const s = this.secrets.get(path);
    const v = s?.versions.get(s.currentVersion);
    if (v) v.deletionTime = new Date(Date.now() - 1000).toISOString();
  }
}

function newSecret(): KvSecret {
  const t = now();
  return { versions: new Map(), currentVersion: 0, oldestVersion: 0, createdTime: t, updatedTime: t, casRequired: false, maxVersions: 0 };
}

function versionMetadata(v: KvVersion): Record<string, unknown> {
  return { created_time: v.createdTime, custom_metadata: null, deletion_time: v.deletionTime, destroyed: v.destroyed, version: v.version };
}
