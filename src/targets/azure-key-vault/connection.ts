import { readFileSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import * as tls from 'node:tls';
import { SecretClient } from '@azure/keyvault-secrets';
import { TargetError } from '../../core/errors.ts';
import { redirectRefused } from '../../runtime/http.ts';
import { retryAfterFromHeaders } from '../../runtime/retry.ts';
import type { Lane } from '../../runtime/pacer.ts';
import { laneOf } from '../common.ts';
import { credentialOrDefault } from '../../inventory/credentials.ts';
import type { CommonTargetConfig, TargetContext } from '../types.ts';
import { STATIC_TOKEN_ENV, azureKeyVault, type AzureKeyVaultConfig } from './index.ts';

/**
 * The SecretClient for one vault: which credential (a static token, or DefaultAzureCredential at
 * the vault's cloud authority), which TLS agent (emulators only), and no redirects followed.
 */

/**
 * Sovereign clouds sign tokens at their own authority. The scope always comes from the vault's 401
 * challenge (the SDK builds `resource + "/.default"`); the authority host is what
 * DefaultAzureCredential needs besides (AZURE_AUTHORITY_HOST, when set, wins). Hosts from
 * @azure/identity AzureAuthorityHosts.
 */
const AUTHORITY_BY_VAULT_SUFFIX: Array<[string, string]> = [
  ['.vault.azure.cn', 'https://login.chinacloudapi.cn'],
  ['.vault.usgovcloudapi.net', 'https://login.microsoftonline.us'],
];

type TokenCredential = ConstructorParameters<typeof SecretClient>[1];
type PipelinePolicy = NonNullable<NonNullable<ConstructorParameters<typeof SecretClient>[2]>['additionalPolicies']>[number]['policy'];

export function isLoopbackLiteral(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}

/** RFC 6761 §6.3: every `*.localhost` name is the loopback address, whatever the system resolver knows. */
const loopbackLookup = ((hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
  if (options?.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
  else callback(null, '127.0.0.1', 4);
}) as unknown as LookupFunction;

const refuseRedirects: PipelinePolicy = {
  name: 'keyrotRefuseRedirects',
  async sendRequest(request, next) {
    const res = await next(request);
    if (res.status < 300 || res.status >= 400) return res;
    throw redirectRefused({
      provider: 'Azure Key Vault',
      status: res.status,
      location: res.headers.get('location'),
      from: request.url,
      fix: 'set `vault:` (or `endpoint:`) to the vault’s own URL, https://<vault-name>.vault.azure.net',
    });
  },
};

/** The vault's rate-limit domain: Key Vault's transaction limits are per vault and region (the target README cites them). */
export function vaultRateLimitKey(url: URL): string {
  return `azure-key-vault:${url.host}`;
}

/**
 * Every request the SDK sends (the 401 challenge, each page of a listing included) through the
 * vault's pacing lane: `create` (setSecret, a PUT) and every other transaction are counted apart, as
 * Key Vault counts them; a 429 with its Retry-After pauses every call to the vault.
 */
function throughLane(lane: Lane, now: () => number): PipelinePolicy {
  return {
    name: 'keyrotPacing',
    async sendRequest(request, next) {
      return lane.request(() => next(request), {
        cls: request.method === 'PUT' ? 'create' : 'other',
        // The pipeline's AbortSignalLike is the caller's AbortSignal (core-rest-pipeline passes it through).
        signal: request.abortSignal as AbortSignal | undefined,
        answerOf: (res) => ({ status: res.status, rateLimit: res.status === 429 ? { retryAfterMs: retryAfterFromHeaders(new Headers(res.headers.toJSON()), now()) } : {} }),
      });
    },
  };
}

export class VaultConnection {
  /** Whether the credential is a static token (the 401 message says how to fix it). */
  usesStaticToken = false;
  private agent: HttpsAgent | undefined;
  private clientPromise: Promise<SecretClient> | undefined;
  private readonly config: AzureKeyVaultConfig & CommonTargetConfig;
  private readonly ctx: TargetContext & { name: string };
  private readonly vaultUrl: string;
  private readonly url: URL;

  constructor(config: AzureKeyVaultConfig & CommonTargetConfig, ctx: TargetContext & { name: string }, vaultUrl: string, url: URL) {
    this.config = config;
    this.ctx = ctx;
    this.vaultUrl = vaultUrl;
    this.url = url;
  }

  client(): Promise<SecretClient> {
    this.clientPromise ??= this.connect();
    this.clientPromise.catch(() => (this.clientPromise = undefined));
    return this.clientPromise;
  }

  close(): void {
    this.agent?.destroy();
    this.agent = undefined;
    this.clientPromise = undefined;
  }

  private async connect(): Promise<SecretClient> {
    const { hostname } = this.url;
    const credential = await this.makeCredential();
    if (isLoopbackLiteral(hostname) || hostname.endsWith('.localhost')) this.agent = this.localAgent();
    return new SecretClient(this.vaultUrl, credential, {
      // The engine retries (withRetry): one policy governs, so the SDK's own retries are off.
      retryOptions: { maxRetries: 0 },
      // Stays on for every real vault: the token's scope comes from the vault's challenge and the
      // SDK refuses a challenge whose resource is not a parent domain of the vault host. Only a
      // literal loopback address (an emulator such as lowkey-vault at https://localhost:8443) has
      // no parent domain to match; *.localhost vaults (keyrot's emulator) keep the check.
      disableChallengeResourceVerification: isLoopbackLiteral(hostname),
      userAgentOptions: { userAgentPrefix: 'keyrot' },
      // core-rest-pipeline's redirectPolicy follows a same-origin 300/301/302/307 (a 307 with the
      // PUT body, which holds the key) up to 20 times (@typespec/ts-http-runtime
      // policies/redirectPolicy.js): with maxRetries 0 it follows none, and refuseRedirects
      // turns the 3xx into an error naming the Location (the SDK's own error for an unexpected
      // 3xx is a TypeError from its deserializer, which says nothing).
      redirectOptions: { maxRetries: 0 },
      additionalPolicies: [
        { policy: refuseRedirects, position: 'perRetry' },
        { policy: throughLane(laneOf(this.ctx, vaultRateLimitKey(this.url), azureKeyVault), () => this.ctx.clock.now()), position: 'perRetry' },
      ],
      ...(this.agent && { agent: this.agent }),
    });
  }

  private async makeCredential(): Promise<TokenCredential> {
    const { config, ctx } = this;
    if (config.token || ctx.env[STATIC_TOKEN_ENV]) {
      const ref = credentialOrDefault(config.token, [STATIC_TOKEN_ENV], ctx.env);
      const token = await ctx.resolve(ref);
      this.usesStaticToken = true;
      return {
        // The scope and tenant the vault's challenge asked for are ignored: the token is what it is.
        getToken: async () => ({ token: token.reveal(), expiresOnTimestamp: Date.now() + 3_600_000, tokenType: 'Bearer' as const }),
      };
    }
    const { DefaultAzureCredential } = await import('@azure/identity');
    const authorityHost =
      ctx.env.AZURE_AUTHORITY_HOST ?? process.env.AZURE_AUTHORITY_HOST ?? AUTHORITY_BY_VAULT_SUFFIX.find(([s]) => this.url.hostname.endsWith(s))?.[1];
    return new DefaultAzureCredential(authorityHost ? { authorityHost } : {});
  }

  /**
   * Emulators only (loopback hosts): trust the CA named by NODE_EXTRA_CA_CERTS in the injected
   * environment too (Node reads the variable only at process start; `keyrot demo` sets it later),
   * and resolve *.localhost to 127.0.0.1. Real vaults never get a custom agent: the SDK's own
   * (proxy-aware) connection handling applies to them.
   */
  private localAgent(): HttpsAgent {
    const caFile = this.ctx.env.NODE_EXTRA_CA_CERTS;
    let ca: string[] | undefined;
    if (caFile) {
      try {
        const defaults = typeof tls.getCACertificates === 'function' ? tls.getCACertificates('default') : [...tls.rootCertificates];
        ca = [...defaults, readFileSync(caFile, 'utf8')];
      } catch (err) {
        throw new TargetError(`cannot read the CA certificate file NODE_EXTRA_CA_CERTS=${caFile} for vault ${this.url.host}`, {
          target: this.ctx.name,
          op: 'connect',
          kind: 'invalid',
          retryable: false,
          cause: err,
        });
      }
    }
    return new HttpsAgent({ keepAlive: true, ...(ca && { ca }), ...(this.url.hostname.endsWith('.localhost') && { lookup: loopbackLookup }) });
  }
}
