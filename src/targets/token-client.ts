import type { Secret } from '../core/secret.ts';
import type { Clock } from '../runtime/clock.ts';
import { createProviderHttp, type Described, type ProviderFailure, type ProviderHttp } from '../runtime/provider-http.ts';
import type { Lane } from '../runtime/pacer.ts';

/** What the REST client of a target authenticated by one API token takes (Render, Supabase, Fly). */
export interface TokenClientOptions {
  /** The API's base URL from `endpoint:` (undefined: the provider's). */
  endpoint?: string;
  credential: (op: string) => Promise<Secret>;
  /** Where the token comes from (`RENDER_API_KEY`, `file:...`), for messages. */
  credName: string;
  clock: Clock;
  target?: string;
  timeoutMs?: number;
  /** The token's pacing lane (`tokenRateLimitKey`): every call waits on it and tells it the answer's rate-limit state. */
  lane?: Lane;
}

/** The rate-limit domain of a token's calls (these providers limit per token): shared by its targets and by discover. */
export function tokenRateLimitKey(provider: string, endpoint: string | undefined, credName: string): string {
  return `${provider}:${endpoint ?? ''}:${credName}`;
}

/**
 * The provider HTTP helper of such a client: keyrot's User-Agent, the token resolved per call and
 * sent as `Authorization` (`Bearer <token>` unless the provider chooses its own scheme).
 */
export function tokenHttp<A = undefined>(
  o: TokenClientOptions,
  p: {
    provider: string;
    baseUrl: string;
    endpointHint: string;
    describe: (f: ProviderFailure<A>) => Described | undefined;
    authorization?: (token: string) => string;
    /** Which of the token's budgets a call spends, when the provider keeps several (Supabase: one per project). */
    bucketOf?: (method: string, path: string) => string;
  },
): ProviderHttp<A> {
  const authorization = p.authorization ?? ((token: string) => `Bearer ${token}`);
  return createProviderHttp<A>({
    provider: p.provider,
    baseUrl: p.baseUrl,
    target: o.target,
    clock: o.clock,
    timeoutMs: o.timeoutMs,
    headers: { 'user-agent': 'keyrot' },
    auth: async (op) => ({ authorization: authorization((await o.credential(op)).reveal()) }),
    endpointHint: p.endpointHint,
    describe: p.describe,
    lane: o.lane,
    bucketOf: p.bucketOf,
  });
}
