import { randomBytes } from 'node:crypto';
import { EmulatorServer, bearer, type EmuRequest, type EmuResponse } from '../server.ts';

/**
 * A loopback emulator of the OpenAI API surface keyrot uses: `GET /v1/models` for the live check
 * (provider-apis.md §10.2: 200 list; 401 `invalid_api_key` error object; `x-request-id` on every
 * response; 429 with `x-ratelimit-*` and `retry-after` headers, §10.7).
 */
export class OpenAIEmulator {
  readonly server = new EmulatorServer({
    name: 'OpenAI',
    notFound: (req) => this.error(404, `Invalid URL (${req.method} ${req.path})`, 'invalid_request_error', null),
  });
  readonly #valid = new Set<string>();

  constructor() {
    this.server.route('GET', '/v1/models', (req) => this.models(req));
  }

  /** Keys the emulated organisation accepts. */
  addKey(key: string): void {
    this.#valid.add(key);
  }

  /** The dashboard's "revoke": the key answers 401 from now on. */
  revokeKey(key: string): void {
    this.#valid.delete(key);
  }

  isValid(key: string): boolean {
    return this.#valid.has(key);
  }

  start(port = 0): Promise<string> {
    return this.server.start(port);
  }

  stop(): Promise<void> {
    return this.server.stop();
  }

  /** Base URL as `key.endpoint` takes it. */
  get endpoint(): string {
    return `${this.server.url}/v1`;
  }

  /** The next request answers 429 as OpenAI does (rate limit headers + retry-after). */
  rateLimitNext(retryAfterSeconds = 1): void {
    this.server.failNext({
      status: 429,
      headers: {
        'retry-after': String(retryAfterSeconds),
        'x-ratelimit-limit-requests': '500',
        'x-ratelimit-remaining-requests': '0',
        'x-ratelimit-reset-requests': `${retryAfterSeconds}s`,
        'x-request-id': `req_${randomBytes(8).toString('hex')}`,
      },
      body: { error: { message: 'Rate limit reached for requests', type: 'requests', param: null, code: 'rate_limit_exceeded' } },
    });
  }

  private error(status: number, message: string, type: string, code: string | null): EmuResponse {
    return {
      status,
      headers: { 'x-request-id': `req_${randomBytes(8).toString('hex')}` },
      body: { error: { message, type, param: null, code } },
    };
  }

  private models(req: EmuRequest): EmuResponse {
    const key = bearer(req);
    if (!key) {
      return this.error(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        'invalid_request_error',
        null,
      );
    }
    if (!this.#valid.has(key)) {
      // The real message echoes a redacted form of the key; keyrot's redactor must cope with it.
      const shown = key.length > 8 ? `${key.slice(0, 8)}${'*'.repeat(10)}${key.slice(-4)}` : '****';
      return this.error(
        401,
        `Incorrect API key provided: ${shown}. You can find your API key at https://platform.openai.com/account/api-keys.`,
        'invalid_request_error',
        'invalid_api_key',
      );
    }
    const created = 1_700_000_000;
    return {
      status: 200,
      headers: {
        'x-request-id': `req_${randomBytes(8).toString('hex')}`,
        'x-ratelimit-limit-requests': '500',
        'x-ratelimit-remaining-requests': '499',
      },
      body: {
        object: 'list',
        data: ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small'].map((id) => ({ id, object: 'model', created, owned_by: 'system' })),
      },
    };
  }
}
