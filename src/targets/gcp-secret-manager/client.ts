import { SecretManagerServiceClient } from '@google-cloud/secret-manager';
import { GoogleAuth, OAuth2Client, type AuthClient } from 'google-auth-library';
import { TargetError } from '../../core/errors.ts';
import type { CommonTargetConfig, TargetContext } from '../types.ts';
import type { GcpSecretManagerConfig } from './index.ts';
import { dropMetadataLookupWarnings } from './metadata-warning.ts';
import { providerText } from '../../core/printable.ts';

/**
 * The SecretManagerServiceClient keyrot uses: REST transport, credentials resolved before the
 * client exists (a fixed token, or Application Default Credentials), the endpoint parsed and
 * refused in clear to anything but loopback.
 */

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

/**
 * Options of the auth client's HTTP transport (gaxios), which the REST transport sends every call
 * through (gax fallbackServiceStub.js: `auth.fetch`): a deadline over the whole exchange (gaxios
 * turns `timeout` into an AbortSignal that also aborts the body), and redirects refused (gaxios
 * hands `redirect` to node-fetch, whose 'manual' returns the 3xx instead of following it).
 */
function transporterOptions(timeoutMs: number) {
  return { timeout: timeoutMs, redirect: 'manual' as const };
}
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

/** The project's rate-limit domain: Secret Manager's request quotas are per project (cloud.google.com/secret-manager/quotas). */
export function projectRateLimitKey(endpointText: string, project: string): string {
  return `gcp-secret-manager:${endpointText}/projects/${project}`;
}

/** Makes the client for this target's endpoint and credentials. */
export async function makeClient(config: GcpSecretManagerConfig & CommonTargetConfig, ctx: TargetContext, endpoint: Endpoint | undefined, timeoutMs: number): Promise<SecretManagerServiceClient> {
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
}
