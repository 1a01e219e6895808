import type { SecretManagerServiceClient } from '@google-cloud/secret-manager';
import { Secret, fingerprint } from '../../core/secret.ts';
import { TargetError } from '../../core/errors.ts';
import { deadlineError, deadlineSignal, raceDeadline } from '../../runtime/deadline.ts';
import { crc32c } from './crc32c.ts';
import { gcpError, parseGoogleError, type GrpcStatus } from './errors.ts';
import type { Lane } from '../../runtime/pacer.ts';

/**
 * The versions of one Secret Manager secret, through the client: access (CRC32C checked), list,
 * add, disable. Every call runs under its deadline and its failure comes out translated (errors.ts).
 */

const CALL = { retry: null };

/** What a client method returns: a promise gax can cancel. */
type GaxCall<T> = Promise<T> & { cancel?: () => void };

/** A runaway paginator (a server that always answers a next page) stops here. */
const MAX_PAGES = 200;

export type Outcome<T> = { ok: true; value: T } | { ok: false; status: GrpcStatus | undefined; message: string | undefined; error: TargetError };

export interface Accessed {
  /** The resolved version id (the response names the numeric version even for `latest`; resources.proto). */
  version: string;
  data: Buffer;
  /** Whether the response carried a CRC32C (versions created before July 2021 may not). */
  checksummed: boolean;
}

export interface VersionMeta {
  version: string;
  state: 'ENABLED' | 'DISABLED' | 'DESTROYED' | 'STATE_UNSPECIFIED';
  etag: string;
}

export type Latest = { kind: 'value'; version: string; value: Secret } | { kind: 'absent' } | { kind: 'unreadable'; reason: string };

const STATES = ['STATE_UNSPECIFIED', 'ENABLED', 'DISABLED', 'DESTROYED'] as const;

/** The REST transport asks for numeric enums (`$alt=json;enum-encoding=int`): accept both. */
function stateOf(s: unknown): VersionMeta['state'] {
  if (typeof s === 'number') return STATES[s] ?? 'STATE_UNSPECIFIED';
  return (STATES as readonly string[]).includes(String(s)) ? (s as VersionMeta['state']) : 'STATE_UNSPECIFIED';
}

/** `projects/123/secrets/s/versions/7` → `7`. The API answers with the project NUMBER, so compare ids only. */
function versionId(name: string | null | undefined): string {
  const i = name?.lastIndexOf('/versions/') ?? -1;
  return i >= 0 ? name!.slice(i + '/versions/'.length) : '';
}

function bytesOf(data: unknown): Buffer {
  if (data == null) return Buffer.alloc(0);
  if (typeof data === 'string') return Buffer.from(data, 'base64');
  return Buffer.from(data as Uint8Array);
}

/**
 * The key a payload holds. Secrets created with `echo ... | gcloud secrets versions add --data-file=-`
 * end with a newline; like the file target, one trailing newline is not part of the key.
 */
export function decode(data: Buffer): string {
  return data.toString('utf8').replace(/\r?\n$/, '');
}

/** Who is calling and where, for error messages. */
export interface CallFacts {
  target: string;
  parent: string;
  credential: string;
  endpointText: string;
  timeoutMs: number;
  now: () => number;
  /** The project's pacing lane: every call is one request through it (its quota class: `classOf`). */
  lane: Lane;
}

/**
 * The project quota a call spends (cloud.google.com/secret-manager/quotas): `access` for
 * AccessSecretVersion, `write` for any mutation (add, disable), `read` for every other call
 * (list, get, TestIamPermissions).
 */
function classOf(permission: string | undefined): 'access' | 'read' | 'write' {
  if (permission === 'secretmanager.versions.access') return 'access';
  if (permission === 'secretmanager.versions.add' || permission === 'secretmanager.versions.disable') return 'write';
  return 'read';
}

export class GcpVersions {
  private readonly client: () => Promise<SecretManagerServiceClient>;
  private readonly f: CallFacts;

  constructor(client: () => Promise<SecretManagerServiceClient>, facts: CallFacts) {
    this.client = client;
    this.f = facts;
  }

  private versionName(v: string): string {
    return `${this.f.parent}/versions/${v}`;
  }

  /** One call through the project's lane: a RESOURCE_EXHAUSTED answer slows the project's calls down. */
  attempt<T>(op: string, permission: string | undefined, fn: (c: SecretManagerServiceClient) => GaxCall<T>, signal?: AbortSignal): Promise<Outcome<T>> {
    return this.f.lane.request(() => this.attemptOnce(op, permission, fn, signal), { cls: classOf(permission), signal, failureIn: (r) => (r.ok ? undefined : r.error) });
  }

  private async attemptOnce<T>(op: string, permission: string | undefined, fn: (c: SecretManagerServiceClient) => GaxCall<T>, signal?: AbortSignal): Promise<Outcome<T>> {
    const { target, parent } = this.f;
    try {
      const c = await this.client();
      // gax's REST transport applies no deadline of its own (CallSettings.timeout only reaches
      // gRPC): the race ends the call at the deadline and cancels it; gaxios' own timeout
      // (client.ts transporterOptions) aborts the socket, stalled body included.
      return { ok: true, value: await raceDeadline(fn(c), deadlineSignal(this.f.timeoutMs, signal)) };
    } catch (err) {
      const late = deadlineError(err, signal, { provider: 'Google Secret Manager', call: `${op} on ${parent}`, timeoutMs: this.f.timeoutMs });
      if (late) return { ok: false, status: undefined, message: undefined, error: new TargetError(late.message, { target, op, kind: late.kind, retryable: late.retryable, cause: err }) };
      if (err instanceof TargetError) {
        const e = err.target ? err : new TargetError(err.message, { ...err, kind: err.kind, target, op, cause: err.cause });
        return { ok: false, status: undefined, message: undefined, error: e };
      }
      const info = parseGoogleError(err, this.f.now());
      const error = gcpError(err, { target, op, secret: parent, permission, credential: this.f.credential, endpoint: this.f.endpointText, now: this.f.now() });
      return { ok: false, status: info.status, message: info.message, error };
    }
  }

  async call<T>(op: string, permission: string | undefined, fn: (c: SecretManagerServiceClient) => GaxCall<T>, signal?: AbortSignal): Promise<T> {
    const r = await this.attempt(op, permission, fn, signal);
    if (!r.ok) throw r.error;
    return r.value;
  }

  /** The permissions (of `wanted`) the caller holds on the secret: TestIamPermissions needs none itself. */
  async heldPermissions(wanted: readonly string[], signal?: AbortSignal): Promise<Set<string>> {
    const [res] = await this.call('preflight', undefined, (c) => c.testIamPermissions({ resource: this.f.parent, permissions: [...wanted] }, CALL), signal);
    return new Set(res.permissions ?? []);
  }

  /** AccessSecretVersion, with the response's CRC32C checked against the data it came with. */
  async access(v: string, op: string, signal?: AbortSignal): Promise<Outcome<Accessed>> {
    const r = await this.attempt(op, 'secretmanager.versions.access', (c) => c.accessSecretVersion({ name: this.versionName(v) }, CALL), signal);
    if (!r.ok) return r;
    const [res] = r.value;
    const data = bytesOf(res.payload?.data);
    const version = versionId(res.name) || v;
    const sent = res.payload?.dataCrc32c;
    const checksummed = sent !== null && sent !== undefined;
    if (checksummed && crc32c(data) !== Number(String(sent))) {
      // The data does not match the checksum the service stored for it: corrupted somewhere between
      // Google's storage and us. Re-reading is the remedy, so the engine may retry.
      const error = new TargetError(
        `Google Secret Manager returned version ${version} of ${this.f.parent} with data that does not match its CRC32C checksum (corrupted in transit); keyrot will read it again`,
        { target: this.f.target, op, kind: 'mismatch', retryable: true },
      );
      return { ok: false, status: undefined, message: undefined, error };
    }
    return { ok: true, value: { version, data, checksummed } };
  }

  async accessOrThrow(v: string, op: string, signal?: AbortSignal): Promise<Accessed> {
    const r = await this.access(v, op, signal);
    if (!r.ok) throw r.error;
    return r.value;
  }

  async list(op: string, signal?: AbortSignal): Promise<VersionMeta[]> {
    const out: VersionMeta[] = [];
    let pageToken: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const [versions, , resp] = await this.call(
        op,
        'secretmanager.versions.list',
        (c) => c.listSecretVersions({ parent: this.f.parent, pageSize: 100, pageToken }, { ...CALL, autoPaginate: false }),
        signal,
      );
      for (const v of versions) out.push({ version: versionId(v.name), state: stateOf(v.state), etag: v.etag ?? '' });
      pageToken = resp?.nextPageToken || undefined;
      if (!pageToken) return out;
    }
    throw new TargetError(`Google Secret Manager kept paginating the versions of ${this.f.parent} (more than ${MAX_PAGES} pages)`, {
      target: this.f.target,
      op,
      kind: 'invalid',
      retryable: false,
    });
  }

  /** What `latest` (the most recently created version) holds: what consumers of the secret read. */
  async readLatest(op: string, signal?: AbortSignal): Promise<Latest> {
    const r = await this.access('latest', op, signal);
    if (r.ok) {
      const text = decode(r.value.data);
      return text ? { kind: 'value', version: r.value.version, value: new Secret(text) } : { kind: 'absent' };
    }
    if (r.status === 'FAILED_PRECONDITION') {
      // "Secret Version [projects/…/versions/4] is in DISABLED state." — `latest` is not "the newest
      // enabled version": consumers of `latest` get this error too.
      return { kind: 'unreadable', reason: `the latest version of ${this.f.parent} is disabled or destroyed${r.message ? ` (Google: ${r.message})` : ''}` };
    }
    if (r.status === 'NOT_FOUND') {
      // "Secret [...] not found or has no versions.": tell the two apart (list throws not-found for a missing secret).
      const versions = await this.list(op, signal);
      if (versions.length === 0) return { kind: 'absent' };
    }
    throw r.error;
  }

  async add(value: Secret, op: string, signal?: AbortSignal): Promise<string> {
    const data = Buffer.from(value.reveal(), 'utf8');
    // dataCrc32c: the service verifies it and rejects a mismatch (INVALID_ARGUMENT), so what is
    // stored is exactly what keyrot sent (resources.proto SecretPayload).
    const [v] = await this.call(op, 'secretmanager.versions.add', (c) => c.addSecretVersion({ parent: this.f.parent, payload: { data, dataCrc32c: crc32c(data) } }, CALL), signal);
    return versionId(v.name);
  }

  /** DisableSecretVersion with the etag from the listing; a concurrent state change is re-read (bounded). */
  async disable(meta: VersionMeta, op: string, signal?: AbortSignal): Promise<boolean> {
    let etag = meta.etag;
    for (let i = 0; i < 3; i++) {
      const r = await this.attempt(op, 'secretmanager.versions.disable', (c) => c.disableSecretVersion({ name: this.versionName(meta.version), ...(etag ? { etag } : {}) }, CALL), signal);
      if (r.ok) return true;
      // Secret Manager answers a stale etag with FAILED_PRECONDITION (HTTP 400), not AIP-154's
      // ABORTED (https://cloud.google.com/secret-manager/docs/etags), and FAILED_PRECONDITION also
      // means "this version is DESTROYED". The message wording is not documented, so the version
      // is re-read to tell them apart rather than the message matched. ABORTED is kept for
      // AIP-154-style endpoints (emulators).
      if (r.status !== 'ABORTED' && r.status !== 'FAILED_PRECONDITION') throw r.error;
      const fresh = (await this.list(op, signal)).find((v) => v.version === meta.version);
      if (!fresh || fresh.state !== 'ENABLED') return false; // someone else disabled or destroyed it meanwhile
      // Still enabled under the same etag: the refusal was not a concurrent change.
      if (!etag || fresh.etag === etag) throw r.error;
      etag = fresh.etag;
    }
    throw new TargetError(`version ${meta.version} of ${this.f.parent} kept changing while keyrot tried to disable it; run finalize again`, {
      target: this.f.target,
      op,
      kind: 'conflict',
      retryable: true,
    });
  }

  /** The version just before `version` and the fingerprint of the key it holds (null when unreadable). */
  async previousOf(version: string, op: string, signal?: AbortSignal): Promise<{ version: string; fingerprint: string | null } | null> {
    const older = (await this.list(op, signal)).filter((v) => Number(v.version) < Number(version)).sort((a, b) => Number(b.version) - Number(a.version));
    const prev = older[0];
    if (!prev) return null;
    if (prev.state !== 'ENABLED') return { version: prev.version, fingerprint: null };
    const got = await this.accessOrThrow(prev.version, op, signal);
    const text = decode(got.data);
    return { version: prev.version, fingerprint: text ? fingerprint(text) : null };
  }
}
