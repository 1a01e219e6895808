import { SecretManagerServiceClient } from '@google-cloud/secret-manager';
import { GoogleAuth, OAuth2Client, type AuthClient } from 'google-auth-library';
import { Secret, fingerprint } from '../../core/secret.ts';
import { TargetError } from '../../core/errors.ts';
import { waitTimeoutMs } from '../types.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS, deadlineError, deadlineSignal, raceDeadline } from '../../runtime/deadline.ts';
import type { CommonTargetConfig, OpContext, PreflightResult, ReadResult, Target, TargetContext } from '../types.ts';
import type { GcpSecretManagerConfig, GcpSecretManagerReceipt } from './index.ts';
import { crc32c } from './crc32c.ts';
import { gcpError, parseGoogleError, roleHint, type GrpcStatus } from './errors.ts';
import { dropMetadataLookupWarnings } from './metadata-warning.ts';
import { providerText } from '../../core/printable.ts';

/**
 * Google Cloud Secret Manager through the official client (@google-cloud/secret-manager 6.3.0).
 *
 * Transport: the client's REST transport (`fallback: true`, "Use HTTP/1.1 REST mode" in the client's
 * constructor docs) for every endpoint. One transport means the path exercised against the loopback
 * emulator is the path used in production, errors included (see errors.ts for the GaxiosError shape).
 * For a loopback `endpoint` the client speaks plain http: gax's fallback `createStub` reads
 * `opts.protocol` (default https) [S58 google-gax build/src/fallback.js, VERIFIED-LOCAL].
 *
 * Retries: every call passes `retry: null` ("When set to null, the call will not retry",
 * google-gax build/src/gax.js CallSettings): the engine's withRetry is the one policy.
 *
 * The REST mapping used (service.proto `google.api.http`) [S56]:
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

// Types from the client itself (google-gax is the client's dependency, not ours).
type ClientOptions = NonNullable<ConstructorParameters<typeof SecretManagerServiceClient>[0]>;

/** The client's own scope (SecretManagerServiceClient.scopes). */
const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';

export const NO_GOOGLE_CREDENTIALS =
  'no Google credentials found: run `gcloud auth application-default login`, set GOOGLE_APPLICATION_CREDENTIALS, or give the target a token: env:VAR';

/**
 * Application Default Credentials, resolved HERE, before any client call, and handed to the client
 * as `authClient`. Left to the client, google-gax resolves them lazily inside its first call
 * (fallback.js createStub → GoogleAuth.getClient) and, with no credentials, that rejection also
 * escaped as an unhandled rejection (a raw stack trace on `keyrot plan`). Resolved here, the one
 * failure is awaited and translated.
 *
 * google-auth-library's order (googleauth.js getApplicationDefaultAsync, 10.5.0): the file named by
 * GOOGLE_APPLICATION_CREDENTIALS, then $HOME/.config/gcloud/application_default_credentials.json
 * (%APPDATA% on Windows), then the metadata server when on Google Cloud (gcp-metadata: BIOS/MAC/
 * serverless env first, then a fast-fail ping of 169.254.169.254, which METADATA_SERVER_DETECTION=none
 * turns off). It reads process.env itself (in the CLI ctx.env is process.env).
 */
async function applicationDefaultCredentials(project: string, timeoutMs: number): Promise<AuthClient> {
  dropMetadataLookupWarnings();
  // projectId: the library otherwise looks the project up (env, `gcloud config`, the metadata
  // server) just to cache it; keyrot names the project in every call.
  const auth = new GoogleAuth({ scopes: [CLOUD_PLATFORM], projectId: project, clientOptions: { transporterOptions: transporterOptions(timeoutMs) } });
  // What the client would set on its own GoogleAuth (secret_manager_service_client.js constructor):
  // service-account keys then sign their own JWT instead of exchanging it for a token first.
  auth.useJWTAccessWithScope = true;
  auth.defaultServicePath = `secretmanager.${process.env.GOOGLE_CLOUD_UNIVERSE_DOMAIN || 'googleapis.com'}`;
  try {
    return await auth.getClient();
  } catch (err) {
    throw adcError(err);
  }
}

function adcError(err: unknown): TargetError {
  const e = (err ?? {}) as Error & { code?: unknown };
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (/Could not load the default credentials/i.test(message)) {
    return new TargetError(NO_GOOGLE_CREDENTIALS, { kind: 'auth', retryable: false, cause: err });
  }
  // A credentials file exists but cannot be used. Never echo a JSON parse error: Node quotes the
  // file's text in it, and that file holds a private key or a refresh token.
  const gac = process.env.GOOGLE_APPLICATION_CREDENTIALS;
  const source = gac ? `GOOGLE_APPLICATION_CREDENTIALS (${gac})` : 'the gcloud application-default credentials file';
  const why =
    e.name === 'SyntaxError'
      ? 'it is not valid JSON'
      : typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)
        ? `it cannot be read (${e.code})`
        : providerText(message, 200);
  return new TargetError(
    `cannot load Google credentials from ${source}: ${why}. Fix it, run \`gcloud auth application-default login\` again, or give the target a token: env:VAR`,
    { kind: 'auth', retryable: false, cause: err },
  );
}

const CALL = { retry: null };

/** What a client method returns: a promise gax can cancel. */
type GaxCall<T> = Promise<T> & { cancel?: () => void };

/**
 * Options of the auth client's HTTP transport (gaxios), which the REST transport sends every call
 * through (gax fallbackServiceStub.js: `auth.fetch`): a deadline over the whole exchange (gaxios
 * turns `timeout` into an AbortSignal that also aborts the body), and redirects refused (gaxios
 * hands `redirect` to node-fetch, whose 'manual' returns the 3xx instead of following it).
 */
function transporterOptions(timeoutMs: number) {
  return { timeout: timeoutMs, redirect: 'manual' as const };
}
/** A runaway paginator (a server that always answers a next page) stops here. */
const MAX_PAGES = 200;

export interface Endpoint {
  host: string;
  port: number;
  protocol: 'http' | 'https';
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\]|::1)$/i;

/**
 * `endpoint:` is the API's `host:port` (README, `endpoint`). A loopback host (an emulator) is spoken to over
 * plain http; anything else over https. `http://`/`https://` prefixes are accepted, but plain http
 * to a non-loopback host is refused: it would send the Google access token in clear.
 */
export function parseEndpoint(raw: string): Endpoint {
  let rest = raw.trim().replace(/\/+$/, '');
  let scheme: 'http' | 'https' | undefined;
  const m = /^(https?):\/\//i.exec(rest);
  if (m) {
    scheme = m[1]!.toLowerCase() as 'http' | 'https';
    rest = rest.slice(m[0].length);
  }
  const hp = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(rest);
  if (!hp) {
    throw new TargetError(`endpoint "${raw}" is not host:port (for example 127.0.0.1:8085 or secretmanager.googleapis.com:443)`, {
      kind: 'invalid',
      retryable: false,
    });
  }
  const host = hp[1]!;
  const loopback = LOOPBACK.test(host);
  const protocol = scheme ?? (loopback ? 'http' : 'https');
  if (protocol === 'http' && !loopback) {
    throw new TargetError(`endpoint "${raw}": plain http is only allowed to a loopback emulator (it would send the Google access token in clear); use https`, {
      kind: 'invalid',
      retryable: false,
    });
  }
  const port = hp[2] ? Number(hp[2]) : protocol === 'http' ? 80 : 443;
  return { host, port, protocol };
}

type Outcome<T> = { ok: true; value: T } | { ok: false; status: GrpcStatus | undefined; message: string | undefined; error: TargetError };

interface Accessed {
  /** The resolved version id (the response names the numeric version even for `latest`) [S56]. */
  version: string;
  data: Buffer;
  /** Whether the response carried a CRC32C (versions created before July 2021 may not). */
  checksummed: boolean;
}

interface VersionMeta {
  version: string;
  state: 'ENABLED' | 'DISABLED' | 'DESTROYED' | 'STATE_UNSPECIFIED';
  etag: string;
}

type Latest = { kind: 'value'; version: string; value: Secret } | { kind: 'absent' } | { kind: 'unreadable'; reason: string };

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
function decode(data: Buffer): string {
  return data.toString('utf8').replace(/\r?\n$/, '');
}

export function createGcpSecretManagerTarget(
  config: GcpSecretManagerConfig & CommonTargetConfig,
  ctx: TargetContext & { name: string },
): Target<GcpSecretManagerReceipt> {
  const endpoint = config.endpoint ? parseEndpoint(config.endpoint) : undefined;
  const endpointText = endpoint ? `${endpoint.protocol}://${endpoint.host}:${endpoint.port}` : 'secretmanager.googleapis.com';
  const parent = `projects/${config.project}/secrets/${config.secret}`;
  const credential = config.token ? `token ${config.token.raw}` : 'Application Default Credentials';
  const versionName = (v: string) => `${parent}/versions/${v}`;
  const timeoutMs = waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS);

  let clientP: Promise<SecretManagerServiceClient> | undefined;
  function client(): Promise<SecretManagerServiceClient> {
    clientP ??= (async () => {
      const opts: ClientOptions = { fallback: true };
      if (endpoint) Object.assign(opts, { apiEndpoint: endpoint.host, port: endpoint.port, protocol: endpoint.protocol });
      if (config.token) {
        // A fixed OAuth access token (`gcloud auth print-access-token`, a CI-minted token, an
        // emulator's token): an OAuth2Client with only an access_token and no expiry never
        // refreshes, so it makes no call to Google [VERIFIED-LOCAL: every request stays on the endpoint].
        const token = await ctx.resolve(config.token);
        const auth = new OAuth2Client({ transporterOptions: transporterOptions(timeoutMs) });
        auth.setCredentials({ access_token: token.reveal() });
        opts.authClient = auth;
      } else {
        // Without `token:`: Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's
        // application-default login, or the attached service account), resolved before the client exists.
        opts.authClient = await applicationDefaultCredentials(config.project, timeoutMs);
      }
      return new SecretManagerServiceClient(opts);
    })().catch((err: unknown) => {
      clientP = undefined;
      throw err;
    });
    return clientP;
  }

  async function attempt<T>(op: string, permission: string | undefined, fn: (c: SecretManagerServiceClient) => GaxCall<T>, signal?: AbortSignal): Promise<Outcome<T>> {
    try {
      const c = await client();
      // gax's REST transport applies no deadline of its own (CallSettings.timeout only reaches
      // gRPC): the race ends the call at the deadline and cancels it; gaxios' own timeout
      // (transporterOptions above) aborts the socket, stalled body included.
      return { ok: true, value: await raceDeadline(fn(c), deadlineSignal(timeoutMs, signal)) };
    } catch (err) {
      const late = deadlineError(err, signal, { provider: 'Google Secret Manager', call: `${op} on ${parent}`, timeoutMs });
      if (late) return { ok: false, status: undefined, message: undefined, error: new TargetError(late.message, { target: ctx.name, op, kind: late.kind, retryable: late.retryable, cause: err }) };
      if (err instanceof TargetError) {
        const e = err.target ? err : new TargetError(err.message, { ...err, kind: err.kind, target: ctx.name, op, cause: err.cause });
        return { ok: false, status: undefined, message: undefined, error: e };
      }
      const info = parseGoogleError(err, ctx.clock.now());
      const error = gcpError(err, { target: ctx.name, op, secret: parent, permission, credential, endpoint: endpointText, now: ctx.clock.now() });
      return { ok: false, status: info.status, message: info.message, error };
    }
  }

  async function call<T>(op: string, permission: string | undefined, fn: (c: SecretManagerServiceClient) => GaxCall<T>, signal?: AbortSignal): Promise<T> {
    const r = await attempt(op, permission, fn, signal);
    if (!r.ok) throw r.error;
    return r.value;
  }

  /** AccessSecretVersion, with the response's CRC32C checked against the data it came with. */
  async function access(v: string, op: string, signal?: AbortSignal): Promise<Outcome<Accessed>> {
    const r = await attempt(op, 'secretmanager.versions.access', (c) => c.accessSecretVersion({ name: versionName(v) }, CALL), signal);
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
        `Google Secret Manager returned version ${version} of ${parent} with data that does not match its CRC32C checksum (corrupted in transit); keyrot will read it again`,
        { target: ctx.name, op, kind: 'mismatch', retryable: true },
      );
      return { ok: false, status: undefined, message: undefined, error };
    }
    return { ok: true, value: { version, data, checksummed } };
  }

  async function accessOrThrow(v: string, op: string, signal?: AbortSignal): Promise<Accessed> {
    const r = await access(v, op, signal);
    if (!r.ok) throw r.error;
    return r.value;
  }

  async function listVersions(op: string, signal?: AbortSignal): Promise<VersionMeta[]> {
    const out: VersionMeta[] = [];
    let pageToken: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const [versions, , resp] = await call(op, 'secretmanager.versions.list', (c) =>
        c.listSecretVersions({ parent, pageSize: 100, pageToken }, { ...CALL, autoPaginate: false }),
      signal);
      for (const v of versions) out.push({ version: versionId(v.name), state: stateOf(v.state), etag: v.etag ?? '' });
      pageToken = resp?.nextPageToken || undefined;
      if (!pageToken) return out;
    }
    throw new TargetError(`Google Secret Manager kept paginating the versions of ${parent} (more than ${MAX_PAGES} pages)`, {
      target: ctx.name,
      op,
      kind: 'invalid',
      retryable: false,
    });
  }

  /** What `latest` (the most recently created version) holds: what consumers of the secret read. */
  async function readLatest(op: string, signal?: AbortSignal): Promise<Latest> {
    const r = await access('latest', op, signal);
    if (r.ok) {
      const text = decode(r.value.data);
      return text ? { kind: 'value', version: r.value.version, value: new Secret(text) } : { kind: 'absent' };
    }
    if (r.status === 'FAILED_PRECONDITION') {
      // "Secret Version [projects/…/versions/4] is in DISABLED state." — `latest` is not "the newest
      // enabled version": consumers of `latest` get this error too.
      return { kind: 'unreadable', reason: `the latest version of ${parent} is disabled or destroyed${r.message ? ` (Google: ${r.message})` : ''}` };
    }
    if (r.status === 'NOT_FOUND') {
      // "Secret [...] not found or has no versions.": tell the two apart (list throws not-found for a missing secret).
      const versions = await listVersions(op, signal);
      if (versions.length === 0) return { kind: 'absent' };
    }
    throw r.error;
  }

  function toRead(l: Latest): ReadResult {
    return l.kind === 'value' ? { kind: 'value', value: l.value } : l;
  }

  async function addVersion(value: Secret, op: string, signal?: AbortSignal): Promise<string> {
    const data = Buffer.from(value.reveal(), 'utf8');
    // dataCrc32c: the service verifies it and rejects a mismatch (INVALID_ARGUMENT), so what is
    // stored is exactly what keyrot sent [S56 resources.proto SecretPayload].
    const [v] = await call(op, 'secretmanager.versions.add', (c) => c.addSecretVersion({ parent, payload: { data, dataCrc32c: crc32c(data) } }, CALL), signal);
    return versionId(v.name);
  }

  /** DisableSecretVersion with the etag from the listing; a concurrent state change is re-read (bounded). */
  async function disable(meta: VersionMeta, op: string, signal?: AbortSignal): Promise<boolean> {
    let etag = meta.etag;
    for (let i = 0; i < 3; i++) {
      const r = await attempt(op, 'secretmanager.versions.disable', (c) =>
        c.disableSecretVersion({ name: versionName(meta.version), ...(etag ? { etag } : {}) }, CALL),
      signal);
      if (r.ok) return true;
      // Secret Manager answers a stale etag with FAILED_PRECONDITION (HTTP 400), not AIP-154's
      // ABORTED (https://cloud.google.com/secret-manager/docs/etags), and FAILED_PRECONDITION also
      // means "this version is DESTROYED". The message wording is not documented, so the version
      // is re-read to tell them apart rather than the message matched. ABORTED is kept for
      // AIP-154-style endpoints (emulators).
      if (r.status !== 'ABORTED' && r.status !== 'FAILED_PRECONDITION') throw r.error;
      const fresh = (await listVersions(op, signal)).find((v) => v.version === meta.version);
      if (!fresh || fresh.state !== 'ENABLED') return false; // someone else disabled or destroyed it meanwhile
      // Still enabled under the same etag: the refusal was not a concurrent change.
      if (!etag || fresh.etag === etag) throw r.error;
      etag = fresh.etag;
    }
    throw new TargetError(`version ${meta.version} of ${parent} kept changing while keyrot tried to disable it; run finalize again`, {
      target: ctx.name,
      op,
      kind: 'conflict',
      retryable: true,
    });
  }

  /** The version just before `version` and the fingerprint of the key it holds (null when unreadable). */
  async function previousOf(version: string, op: string, signal?: AbortSignal): Promise<{ version: string; fingerprint: string | null } | null> {
    const older = (await listVersions(op, signal)).filter((v) => Number(v.version) < Number(version)).sort((a, b) => Number(b.version) - Number(a.version));
    const prev = older[0];
    if (!prev) return null;
    if (prev.state !== 'ENABLED') return { version: prev.version, fingerprint: null };
    const got = await accessOrThrow(prev.version, op, signal);
    const text = decode(got.data);
    return { version: prev.version, fingerprint: text ? fingerprint(text) : null };
  }

  return {
    id: 'gcp-secret-manager',
    name: ctx.name,
    location: parent,
    lockKey: `gcp-secret-manager:${endpointText}/${parent}`,

    async preflight(signal) {
      try {
        signal?.throwIfAborted();
        // TestIamPermissions answers which of the permissions the caller holds on the secret,
        // without needing one itself: a read-only permission check that names what is missing.
        const [res] = await call('preflight', undefined, (c) => c.testIamPermissions({ resource: parent, permissions: [...PERMISSIONS] }, CALL), signal);
        const held = new Set(res.permissions ?? []);
        const missing = PERMISSIONS.filter((p) => !held.has(p));
        if (missing.length) {
          return {
            status: 'blocked',
            reason: `Google Cloud does not grant ${missing.join(', ')} on ${parent} to the account keyrot runs as (${credential}): grant ${missing
              .map((p) => `${p}${roleHint(p)}`)
              .join('; ')}. Google answers the same way when the secret does not exist`,
            current: { kind: 'absent' },
          };
        }
        const latest = await readLatest('preflight', signal);
        const notes = [`adds a new version to ${parent}; consumers reading "latest" get the new key`, 'finalize disables (never destroys) the versions holding the old key'];
        if (latest.kind === 'absent') notes.unshift(`${parent} has no version yet: the first one will be added`);
        if (latest.kind === 'unreadable') notes.unshift(latest.reason);
        const out: PreflightResult = { status: 'ready', current: toRead(latest), willCreate: latest.kind === 'absent', notes };
        return out;
      } catch (err) {
        const e = err instanceof TargetError ? err : gcpError(err, { target: ctx.name, op: 'preflight', secret: parent, credential, endpoint: endpointText });
        // Transient (throttled, 5xx, timeout): not an answer; the engine retries it, bounded.
        if (e.retryable) throw e;
        return { status: 'blocked', reason: e.message, current: { kind: 'unreadable', reason: e.message } };
      }
    },

    async read(signal) {
      signal?.throwIfAborted();
      return toRead(await readLatest('read', signal));
    },

    async write(value, op) {
      op.signal?.throwIfAborted();
      const latest = await readLatest('write', op.signal);
      if (latest.kind === 'value' && latest.value.equals(value)) {
        // Idempotent: a retried write whose AddSecretVersion landed (the answer was lost), or a
        // rerun. No second version; the receipt names the version that holds the key.
        const prev = await previousOf(latest.version, 'write', op.signal);
        return {
          version: latest.version,
          previousVersion: prev?.version ?? null,
          previousFingerprint: prev?.fingerprint ?? null,
          added: false,
        } satisfies GcpSecretManagerReceipt;
      }
      const version = await addVersion(value, 'write', op.signal);
      return {
        version,
        previousVersion: latest.kind === 'value' ? latest.version : null,
        previousFingerprint: latest.kind === 'value' ? latest.value.fingerprint : null,
        added: true,
      } satisfies GcpSecretManagerReceipt;
    },

    async verify(value, op, receipt) {
      op.signal?.throwIfAborted();
      const version = receipt?.version || 'latest';
      const got = await accessOrThrow(version, 'verify', op.signal);
      const text = decode(got.data);
      if (text !== value.reveal()) {
        throw new TargetError(
          `read-back mismatch: version ${got.version} of ${parent} holds ${text ? `a different key (${fingerprint(text)})` : 'nothing'}, not the new key (${value.fingerprint})`,
          { target: ctx.name, op: 'verify', kind: 'mismatch', retryable: false },
        );
      }
      if (version !== 'latest') {
        // Consumers read `latest`: it must still be this version (or another holding the same key).
        const latest = await readLatest('verify', op.signal);
        if (latest.kind !== 'value' || (latest.version !== got.version && !latest.value.equals(value))) {
          const what = latest.kind === 'value' ? `version ${latest.version} holding ${latest.value.fingerprint}` : latest.kind === 'absent' ? 'nothing' : 'an unreadable version';
          throw new TargetError(`"latest" of ${parent} is ${what}, not keyrot's version ${got.version}: another writer added a version after keyrot`, {
            target: ctx.name,
            op: 'verify',
            kind: 'mismatch',
            retryable: false,
          });
        }
      }
      return {
        method: 'read-back',
        detail: `version ${got.version} of ${parent} holds the new key (${got.checksummed ? 'CRC32C verified' : 'no checksum stored'}) and is "latest"`,
      };
    },

    async restore(previous, op, receipt) {
      op.signal?.throwIfAborted();
      if (previous) {
        // Restore = a new version holding the old key. Disabling keyrot's version instead would not
        // bring the old key back: `latest` is the newest version whatever its state, so it would
        // become unreadable for every consumer.
        const latest = await readLatest('restore', op.signal);
        if (latest.kind === 'value' && latest.value.equals(previous)) return; // idempotent
        await addVersion(previous, 'restore', op.signal);
        return;
      }
      // The secret had no readable value before this rotation (no version, or `latest` disabled):
      // the same state again is keyrot's version(s) disabled, so `latest` is unreadable as before.
      const versions = await listVersions('restore', op.signal);
      const candidates = versions.filter(
        (v) => v.state === 'ENABLED' && (receipt ? v.version === receipt.version : true),
      );
      for (const v of candidates) {
        const got = await accessOrThrow(v.version, 'restore', op.signal);
        if (fingerprint(decode(got.data)) === op.fingerprint) await disable(v, 'restore', op.signal);
      }
    },

    async finalize(op, receipt) {
      op.signal?.throwIfAborted();
      const latest = await readLatest('finalize', op.signal);
      if (latest.kind !== 'value' || latest.value.fingerprint !== op.fingerprint) {
        throw new TargetError(
          `refusing to disable old versions of ${parent}: "latest" does not hold the new key (${op.fingerprint}); run \`keyrot verify\``,
          { target: ctx.name, op: 'finalize', kind: 'conflict', retryable: false },
        );
      }
      // The old key: from the receipt (the key `latest` held before keyrot's write). Without a
      // receipt (crash before the journal kept it), the newest older enabled version whose key is
      // not the new one holds it. Every ENABLED version older than `latest` holding that key is
      // disabled: the receipt's previousVersion and any older copy (an earlier restore, a manual
      // re-add). Versions holding other, older keys are not keyrot's to touch. Never destroyed:
      // disabling is reversible (`gcloud secrets versions enable`).
      let oldFp: string | null | undefined = receipt ? receipt.previousFingerprint : undefined;
      if (oldFp === null) return; // nothing readable was there before keyrot
      const older = (await listVersions('finalize', op.signal))
        .filter((v) => v.state === 'ENABLED' && Number(v.version) < Number(latest.version))
        .sort((a, b) => Number(b.version) - Number(a.version));
      for (const v of older) {
        const got = await access(v.version, 'finalize', op.signal);
        if (!got.ok) {
          // Disabled between the listing and now: nothing to do for it.
          if (got.status === 'FAILED_PRECONDITION' || got.status === 'NOT_FOUND') continue;
          throw got.error;
        }
        const text = decode(got.value.data);
        const fp = text ? fingerprint(text) : null;
        if (fp === null || fp === op.fingerprint) continue;
        oldFp ??= fp;
        if (fp === oldFp) await disable(v, 'finalize', op.signal);
      }
    },

    async close() {
      const c = clientP ? await clientP.catch(() => undefined) : undefined;
      clientP = undefined;
      await c?.close();
    },
  };
}
