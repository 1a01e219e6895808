import { randomBytes, randomUUID } from 'node:crypto';
import { HttpEmulator, type EmuRequest, type EmuResponse } from '../server.ts';
import { KvMount, VaultFailure } from './kv.ts';

/**
 * A loopback emulator of the HashiCorp Vault / OpenBao HTTP API, as far as KV version 2 goes:
 * `/v1/<mount>/data/<path>` (read, `?version=N`, write with `options.cas`),
 * `/v1/<mount>/metadata/<path>` (read, `?list=true`), `/v1/sys/internal/ui/mounts/<path>` (what
 * the vault CLI asks to tell KV v1 from v2: hashicorp/vault command/kv_helpers.go
 * kvPreflightVersionRequest), `/v1/sys/seal-status`. Tokens in `X-Vault-Token` (or
 * `Authorization: Bearer`) carry ACL policies (path globs and capabilities); `X-Vault-Namespace`
 * selects a namespace (Vault Enterprise). Answers in Vault's shapes: the response envelope, errors
 * as `{"errors": [...]}`, 403 "permission denied" (and "invalid token" for a bad token, Vault PR
 * #26687), 503 "Vault is sealed", 404 with `{"errors":[]}` (developer.hashicorp.com/vault/api-docs
 * "HTTP status codes"). Storage rules are in ./kv.ts.
 */

export type Capability = 'create' | 'read' | 'update' | 'patch' | 'delete' | 'list';

export interface VaultPolicyRule {
  /** An ACL path: `secret/data/apps/*` (prefix), `secret/data/+/api` (one segment). */
  path: string;
  capabilities: Capability[];
}

interface TokenEntry {
  rules: VaultPolicyRule[];
  /** The namespace the token was created in ('' = root): valid there and below. */
  namespace: string;
}

const multi = (errors: string[]) => `${errors.length} error${errors.length > 1 ? 's' : ''} occurred:\n${errors.map((e) => `\t* ${e}`).join('\n')}\n\n`;

export class VaultEmulator extends HttpEmulator {
  private readonly tokens = new Map<string, TokenEntry>();
  /** namespace ('' = root) → mount path (no slashes) → mount. */
  private readonly namespaces = new Map<string, Map<string, KvMount>>([['', new Map([['secret', new KvMount(2)]])]]);
  private sealed = false;

  constructor() {
    super({ name: 'vault' });
    this.server.route('GET', '/v1/:rest*', (req) => this.handle(req));
    this.server.route('POST', '/v1/:rest*', (req) => this.handle(req));
    this.server.route('PUT', '/v1/:rest*', (req) => this.handle(req));
  }

  // ---------------------------------------------------------------- test/demo helpers

  /** A token with these policy rules (default: everything on `secret/`), valid in `namespace` and below. Generated now. */
  addToken(o: { rules?: VaultPolicyRule[]; namespace?: string } = {}): string {
    const token = `hvs.emu${randomBytes(18).toString('base64url')}`;
    const rules = o.rules ?? [{ path: 'secret/*', capabilities: ['create', 'read', 'update', 'list'] }];
    this.tokens.set(token, { rules, namespace: o.namespace ?? '' });
    return token;
  }

  revokeToken(token: string): void {
    this.tokens.delete(token);
  }

  /** Mounts a KV engine (version 2 unless said) at `path` in `namespace`. */
  enableKv(path: string, o: { version?: 1 | 2; namespace?: string } = {}): KvMount {
    const ns = o.namespace ?? '';
    const mounts = this.namespaces.get(ns) ?? new Map<string, KvMount>();
    this.namespaces.set(ns, mounts);
    const m = new KvMount(o.version ?? 2);
    mounts.set(path, m);
    return m;
  }

  mount(path = 'secret', namespace = ''): KvMount {
    const m = this.namespaces.get(namespace)?.get(path);
    if (!m) throw new Error(`vault emulator: no mount ${path} in namespace "${namespace}"`);
    return m;
  }

  /** Writes a new version of `path` (no check-and-set). Returns its version. */
  seed(path: string, data: Record<string, unknown>, o: { mount?: string; namespace?: string } = {}): number {
    return Number(this.mount(o.mount, o.namespace).write(path, { data }).version);
  }

  /** The data of the latest version (or `version`), undefined when there is none. */
  data(path: string, o: { mount?: string; namespace?: string; version?: number } = {}): Record<string, unknown> | undefined {
    try {
      return this.mount(o.mount, o.namespace).read(path, o.version).data;
    } catch {
      return undefined;
    }
  }

  seal(): void {
    this.sealed = true;
  }

  unseal(): void {
    this.sealed = false;
  }

  /** The next matching request answers a rate-limit quota's 429 with Retry-After and the X-Ratelimit headers (sys/quotas/config doc). */
  rateLimitNext(o: { path?: RegExp; retryAfterSeconds?: number } = {}): void {
    const s = o.retryAfterSeconds ?? 1;
    this.server.failNext({
      path: o.path,
      status: 429,
      headers: { 'retry-after': String(s), 'x-ratelimit-limit': '10', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(s), 'content-type': 'application/json' },
      body: { errors: ['request path: rate limit quota exceeded'] },
    });
  }

  // ---------------------------------------------------------------- protocol

  private handle(req: EmuRequest): EmuResponse {
    const path = req.params.rest!;
    if (path === 'sys/seal-status') return this.ok({ type: 'shamir', initialized: true, sealed: this.sealed, t: 1, n: 1, progress: 0, version: '1.19.0' }, false);
    if (this.sealed) return error(503, ['Vault is sealed']);
    try {
      const namespace = String(req.headers['x-vault-namespace'] ?? '').replace(/^\/+|\/+$/g, '');
      if (namespace && !this.namespaces.has(namespace)) throw new VaultFailure(404, [`no handler for route "${path}". route entry not found.`]);
      const token = this.authorize(req, namespace);
      if (path.startsWith('sys/internal/ui/mounts/')) return this.mountInfo(path.slice('sys/internal/ui/mounts/'.length), namespace, token);
      return this.kv(req, path, namespace, token);
    } catch (err) {
      if (err instanceof VaultFailure) return error(err.status, err.errors, err.data);
      throw err;
    }
  }

  private authorize(req: EmuRequest, namespace: string): TokenEntry {
    const header = req.headers['x-vault-token'] ?? req.headers.authorization?.replace(/^Bearer\s+/i, '');
    const token = typeof header === 'string' && header ? this.tokens.get(header) : undefined;
    if (!header) throw new VaultFailure(403, [multi(['permission denied'])]);
    if (!token || !(namespace === token.namespace || namespace.startsWith(`${token.namespace}/`) || token.namespace === '')) {
      throw new VaultFailure(403, [multi(['permission denied', 'invalid token'])]);
    }
    return token;
  }

  private kv(req: EmuRequest, path: string, namespace: string, token: TokenEntry): EmuResponse {
    const { mount, rest } = this.mountOf(path, namespace);
    const [kind, ...tail] = rest.split('/');
    const key = tail.join('/');
    if (mount.version !== 2 || (kind !== 'data' && kind !== 'metadata')) throw new VaultFailure(404, [`no handler for route "${path}". route entry not found.`]);
    if (kind === 'metadata' && req.method === 'GET' && req.query.get('list') === 'true') {
      this.allow(token, path, 'list');
      return this.ok({ keys: mount.list(key) });
    }
    if (kind === 'metadata') {
      this.allow(token, path, 'read');
      return this.ok(mount.metadata(key));
    }
    if (req.method === 'GET') {
      this.allow(token, path, 'read');
      const version = req.query.get('version');
      return this.ok(mount.read(key, version ? Number(version) : undefined));
    }
    this.allow(token, path, mount.secrets.has(key) ? 'update' : 'create');
    return this.ok(mount.write(key, req.body));
  }

  /** What the vault CLI asks before a kv command: the mount that serves `path`, its type and KV version. */
  private mountInfo(path: string, namespace: string, token: TokenEntry): EmuResponse {
    const denied = new VaultFailure(403, [`preflight capability check returned 403, please ensure client's policies grant access to path "${path}/"`]);
    // No mount there answers the same 403 as no access (vault/logical_system.go: so that this path
    // cannot list the mounts; what `vault kv put foo/bar` prints when no foo/ is mounted).
    const found = this.findMount(path, namespace);
    if (!found) throw denied;
    const { mountPath, mount } = found;
    // Allowed when the token has any capability under the mount (vault/logical_system.go, hasMountAccess).
    if (!token.rules.some((r) => r.path.startsWith(`${mountPath}/`) || matches(r.path, `${mountPath}/`) || matches(r.path, `sys/internal/ui/mounts/${path}`))) throw denied;
    return this.ok({ path: `${mountPath}/`, type: 'kv', options: { version: String(mount.version) }, description: 'key/value secret storage', local: false, seal_wrap: false });
  }

  private mountOf(path: string, namespace: string): { mountPath: string; mount: KvMount; rest: string } {
    const found = this.findMount(path, namespace);
    if (!found) throw new VaultFailure(404, [`no handler for route "${path}". route entry not found.`]);
    return found;
  }

  /** The longest mount path that is `path` or a prefix of it. */
  private findMount(path: string, namespace: string): { mountPath: string; mount: KvMount; rest: string } | undefined {
    const mounts = this.namespaces.get(namespace) ?? new Map<string, KvMount>();
    const mountPath = [...mounts.keys()].sort((a, b) => b.length - a.length).find((m) => path === m || path.startsWith(`${m}/`));
    return mountPath === undefined ? undefined : { mountPath, mount: mounts.get(mountPath)!, rest: path.slice(mountPath.length + 1) };
  }

  private allow(token: TokenEntry, path: string, capability: Capability): void {
    if (!token.rules.some((r) => r.capabilities.includes(capability) && matches(r.path, path))) throw new VaultFailure(403, [multi(['permission denied'])]);
  }

  private ok(data: unknown, envelope = true): EmuResponse {
    const body = envelope
      ? { request_id: randomUUID(), lease_id: '', renewable: false, lease_duration: 0, data, wrap_info: null, warnings: null, auth: null, mount_type: 'kv' }
      : data;
    return { status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' }, body };
  }
}

function error(status: number, errors: string[], data?: unknown): EmuResponse {
  return { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' }, body: data === undefined ? { errors } : { request_id: randomUUID(), data, errors } };
}

/** ACL path matching: a trailing `*` is a prefix, `+` one segment (Vault policies doc). */
function matches(rule: string, path: string): boolean {
  const re = new RegExp(`^${rule.split('/').map((seg) => (seg === '+' ? '[^/]+' : seg.replace(/[.?^${}()|[\]\\]/g, '\\$&').replace(/\*$/, '.*'))).join('/')}$`);
  return re.test(path);
}
