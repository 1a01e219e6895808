import type { Clock } from '../runtime/clock.ts';
import { checkFormat, liveCheck, openaiEndpoint, OPENAI_KEYS_PAGE } from '../keys/kinds.ts';
import type { AdminApi, KeyIssuer } from './types.ts';

/** OpenAI keys: sk-proj-/sk-svcacct-/legacy sk- formats, `GET /models` as the live check, the Admin API. */
export function openaiIssuer(opts: {
  endpoint: string | undefined;
  processEnv: NodeJS.ProcessEnv;
  clock: Clock;
  admin?: () => Promise<AdminApi>;
}): KeyIssuer {
  const endpoint = openaiEndpoint(opts.endpoint, opts.processEnv);
  return {
    kind: 'openai',
    title: 'OpenAI',
    revokeAt: { place: 'the OpenAI dashboard, API keys page', url: OPENAI_KEYS_PAGE },
    checkFormat: (key) => checkFormat('openai', key),
    liveCheck: (key, signal) => liveCheck(key, endpoint, opts.clock, signal),
    admin: opts.admin,
  };
}
