import type { SecretManagerServiceClient } from '@google-cloud/secret-manager';
import { Secret, fingerprint } from '../../core/secret.ts';
import { TargetError } from '../../core/errors.ts';
import { waitTimeoutMs } from '../types.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import { laneOf, preflightFailed } from '../common.ts';
import type { CommonTargetConfig, OpContext, PreflightResult, ReadResult, Target, TargetContext, VerifyResult } from '../types.ts';
import { gcpSecretManager, type GcpSecretManagerConfig, type GcpSecretManagerReceipt } from './index.ts';
import { gcpError, roleHint } from './errors.ts';
import { makeClient, parseEndpoint, projectRateLimitKey } from './client.ts';
import { GcpVersions, decode, type Latest } from './versions.ts';

export { NO_GOOGLE_CREDENTIALS, parseEndpoint, type Endpoint } from './client.ts';

/**
 * Google Cloud Secret Manager through the official client (@google-cloud/secret-manager 6.3.0).
 *
 * Transport: the client's REST transport (`fallback: true`, "Use HTTP/1.1 REST mode" in the client's
 * constructor docs) for every endpoint. One transport means the path exercised against the loopback
 * emulator is the path used in production, errors included (see errors.ts for the GaxiosError shape).
 * For a loopback `endpoint` the client speaks plain http: gax's fallback `createStub` reads
 * `opts.protocol` (default https) (google-gax build/src/fallback.js).
 *
 * Retries: every call passes `retry: null` ("When set to null, the call will not retry",
 * google-gax build/src/gax.js CallSettings): the engine's withRetry is the one policy.
 *
 * The REST mapping used (service.proto `google.api.http`, @google-cloud/secret-manager 6.3.0):
 *   GET  /v1/projects/{p}/secrets/{s}/versions/{v}:access   (v may be `latest`)
 *   POST /v1/projects/{p}/secrets/{s}:addVersion            {"payload":{"data","dataCrc32c"}}
 *   GET  /v1/projects/{p}/secrets/{s}/versions              (newest first, pageToken)
 *   POST /v1/projects/{p}/secrets/{s}/versions/{v}:disable  {"etag"}
 *   POST /v1/projects/{p}/secrets/{s}:testIamPermissions    {"permissions":[...]}
 */

/** Every permission keyrot uses on the secret (README: the least-privilege custom role). */
export const PERMISSIONS = [
  'secretmanager.versions.access',
  'secretmanager.versions.add',
  'secretmanager.versions.list',
  'secretmanager.versions.disable',
] as const;

function toRead(l: Latest): ReadResult {
  return l.kind === 'value' ? { kind: 'value', value: l.value } : l;
}

export function createGcpSecretManagerTarget(config: GcpSecretManagerConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target<GcpSecretManagerReceipt> {
  return new GcpSecretManagerTarget(config, ctx);
}

/** One secret: each write adds a version; finalize disables (never destroys) the versions holding the old key. */
class GcpSecretManagerTarget implements Target<GcpSecretManagerReceipt> {
  readonly id = 'gcp-secret-manager' as const;
  readonly name: string;
  readonly location: string;
  readonly lockKey: string;
  readonly rateLimitKey: string;
  private readonly versions: GcpVersions;
  private readonly parent: string;
  private readonly credential: string;
  private readonly endpointText: string;
  private clientP: Promise<SecretManagerServiceClient> | undefined;

  constructor(config: GcpSecretManagerConfig & CommonTargetConfig, ctx: TargetContext & { name: string }) {
    const endpoint = config.endpoint ? parseEndpoint(config.endpoint) : undefined;
    const timeoutMs = waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS);
    this.name = ctx.name;
    this.endpointText = endpoint ? `${endpoint.protocol}://${endpoint.host}:${endpoint.port}` : 'secretmanager.googleapis.com';
    this.parent = `projects/${config.project}/secrets/${config.secret}`;
    this.credential = config.token ? `token ${config.token.raw}` : 'Application Default Credentials';
    this.location = this.parent;
    this.lockKey = `gcp-secret-manager:${this.endpointText}/${this.parent}`;
    const client = () => {
      this.clientP ??= makeClient(config, ctx, endpoint, timeoutMs).catch((err: unknown) => {
        this.clientP = undefined;
        throw err;
      });
      return this.clientP;
    };
    this.rateLimitKey = projectRateLimitKey(this.endpointText, config.project);
    const lane = laneOf(ctx, this.rateLimitKey, gcpSecretManager);
    const facts = { target: ctx.name, parent: this.parent, credential: this.credential, endpointText: this.endpointText, timeoutMs, now: () => ctx.clock.now(), lane };
    this.versions = new GcpVersions(client, facts);
  }

  private fail(message: string, op: string, kind: TargetError['kind']): TargetError {
    return new TargetError(message, { target: this.name, op, kind, retryable: false });
  }

  async preflight(signal?: AbortSignal): Promise<PreflightResult> {
    const { parent } = this;
    try {
      signal?.throwIfAborted();
      // TestIamPermissions answers which of the permissions the caller holds on the secret,
      // without needing one itself: a read-only permission check that names what is missing.
      const held = await this.versions.heldPermissions(PERMISSIONS, signal);
      const missing = PERMISSIONS.filter((p) => !held.has(p));
      if (missing.length) {
        return {
          status: 'blocked',
          reason: `Google Cloud does not grant ${missing.join(', ')} on ${parent} to the account keyrot runs as (${this.credential}): grant ${missing
            .map((p) => `${p}${roleHint(p)}`)
            .join('; ')}. Google answers the same way when the secret does not exist`,
          current: { kind: 'absent' },
        };
      }
      const latest = await this.versions.readLatest('preflight', signal);
      const notes = [`adds a new version to ${parent}; consumers reading "latest" get the new key`, 'finalize disables (never destroys) the versions holding the old key'];
      if (latest.kind === 'absent') notes.unshift(`${parent} has no version yet: the first one will be added`);
      if (latest.kind === 'unreadable') notes.unshift(latest.reason);
      return { status: 'ready', current: toRead(latest), willCreate: latest.kind === 'absent', notes };
    } catch (err) {
      return preflightFailed(err instanceof TargetError ? err : gcpError(err, { target: this.name, op: 'preflight', secret: parent, credential: this.credential, endpoint: this.endpointText }), this.name);
    }
  }

  async read(signal?: AbortSignal): Promise<ReadResult> {
    signal?.throwIfAborted();
    return toRead(await this.versions.readLatest('read', signal));
  }

  async write(value: Secret, op: OpContext): Promise<GcpSecretManagerReceipt> {
    op.signal?.throwIfAborted();
    const latest = await this.versions.readLatest('write', op.signal);
    if (latest.kind === 'value' && latest.value.equals(value)) {
      // Idempotent: a retried write whose AddSecretVersion landed (the answer was lost), or a
      // rerun. No second version; the receipt names the version that holds the key.
      const prev = await this.versions.previousOf(latest.version, 'write', op.signal);
      return { version: latest.version, previousVersion: prev?.version ?? null, previousFingerprint: prev?.fingerprint ?? null, added: false };
    }
    const version = await this.versions.add(value, 'write', op.signal);
    return {
      version,
      previousVersion: latest.kind === 'value' ? latest.version : null,
      previousFingerprint: latest.kind === 'value' ? latest.value.fingerprint : null,
      added: true,
    };
  }

  async verify(value: Secret, op: OpContext, receipt: GcpSecretManagerReceipt | undefined): Promise<VerifyResult> {
    op.signal?.throwIfAborted();
    const { parent } = this;
    const version = receipt?.version || 'latest';
    const got = await this.versions.accessOrThrow(version, 'verify', op.signal);
    const text = decode(got.data);
    if (text !== value.reveal()) {
      const holds = text ? `a different key (${fingerprint(text)})` : 'nothing';
      throw this.fail(`read-back mismatch: version ${got.version} of ${parent} holds ${holds}, not the new key (${value.fingerprint})`, 'verify', 'mismatch');
    }
    // Consumers read `latest`: it must still be this version (or another holding the same key).
    if (version !== 'latest') await this.verifyLatest(got.version, value, op);
    return {
      method: 'read-back',
      detail: `version ${got.version} of ${parent} holds the new key (${got.checksummed ? 'CRC32C verified' : 'no checksum stored'}) and is "latest"`,
    };
  }

  private async verifyLatest(version: string, value: Secret, op: OpContext): Promise<void> {
    const latest = await this.versions.readLatest('verify', op.signal);
    if (latest.kind === 'value' && (latest.version === version || latest.value.equals(value))) return;
    const what = latest.kind === 'value' ? `version ${latest.version} holding ${latest.value.fingerprint}` : latest.kind === 'absent' ? 'nothing' : 'an unreadable version';
    throw this.fail(`"latest" of ${this.parent} is ${what}, not keyrot's version ${version}: another writer added a version after keyrot`, 'verify', 'mismatch');
  }

  async restore(previous: Secret | null, op: OpContext, receipt: GcpSecretManagerReceipt | undefined): Promise<void> {
    op.signal?.throwIfAborted();
    if (previous) {
      // Restore = a new version holding the old key. Disabling keyrot's version instead would not
      // bring the old key back: `latest` is the newest version whatever its state, so it would
      // become unreadable for every consumer.
      const latest = await this.versions.readLatest('restore', op.signal);
      if (latest.kind === 'value' && latest.value.equals(previous)) return; // idempotent
      await this.versions.add(previous, 'restore', op.signal);
      return;
    }
    // The secret had no readable value before this rotation (no version, or `latest` disabled):
    // the same state again is keyrot's version(s) disabled, so `latest` is unreadable as before.
    const candidates = (await this.versions.list('restore', op.signal)).filter((v) => v.state === 'ENABLED' && (receipt ? v.version === receipt.version : true));
    for (const v of candidates) {
      const got = await this.versions.accessOrThrow(v.version, 'restore', op.signal);
      if (fingerprint(decode(got.data)) === op.fingerprint) await this.versions.disable(v, 'restore', op.signal);
    }
  }

  async finalize(op: OpContext, receipt: GcpSecretManagerReceipt | undefined): Promise<void> {
    op.signal?.throwIfAborted();
    const latest = await this.versions.readLatest('finalize', op.signal);
    if (latest.kind !== 'value' || latest.value.fingerprint !== op.fingerprint) {
      throw this.fail(`refusing to disable old versions of ${this.parent}: "latest" does not hold the new key (${op.fingerprint}); run \`keyrot verify\``, 'finalize', 'conflict');
    }
    // The old key: from the receipt (the key `latest` held before keyrot's write). Without a
    // receipt (crash before the journal kept it), the newest older enabled version whose key is
    // not the new one holds it. Every ENABLED version older than `latest` holding that key is
    // disabled: the receipt's previousVersion and any older copy (an earlier restore, a manual
    // re-add). Versions holding other, older keys are not keyrot's to touch. Never destroyed:
    // disabling is reversible (`gcloud secrets versions enable`).
    let oldFp: string | null | undefined = receipt ? receipt.previousFingerprint : undefined;
    if (oldFp === null) return; // nothing readable was there before keyrot
    const older = (await this.versions.list('finalize', op.signal))
      .filter((v) => v.state === 'ENABLED' && Number(v.version) < Number(latest.version))
      .sort((a, b) => Number(b.version) - Number(a.version));
    for (const v of older) {
      const got = await this.versions.access(v.version, 'finalize', op.signal);
      if (!got.ok) {
        // Disabled between the listing and now: nothing to do for it.
        if (got.status === 'FAILED_PRECONDITION' || got.status === 'NOT_FOUND') continue;
        throw got.error;
      }
      const text = decode(got.value.data);
      const fp = text ? fingerprint(text) : null;
      if (fp === null || fp === op.fingerprint) continue;
      oldFp ??= fp;
      if (fp === oldFp) await this.versions.disable(v, 'finalize', op.signal);
    }
  }

  async close(): Promise<void> {
    const c = this.clientP ? await this.clientP.catch(() => undefined) : undefined;
    this.clientP = undefined;
    await c?.close();
  }
}
