import type { Clock } from '../runtime/clock.ts';
import { genericIssuer } from './generic.ts';
import { openaiIssuer } from './openai.ts';
import type { AdminApi, KeyIssuer } from './types.ts';

export type { AdminApi, KeyIssuer } from './types.ts';

/** The issuer of an environment's key (`key.kind`): the one place that tells the kinds apart. */
export function issuerFor(
  key: { kind: 'openai' | 'generic'; endpoint?: string; verify?: boolean },
  opts: { processEnv: NodeJS.ProcessEnv; clock: Clock; admin?: () => Promise<AdminApi> },
): KeyIssuer {
  const issuers: Record<typeof key.kind, () => KeyIssuer> = {
    openai: () => openaiIssuer({ endpoint: key.endpoint, processEnv: opts.processEnv, clock: opts.clock, admin: opts.admin }),
    generic: () => genericIssuer({ admin: opts.admin }),
  };
  return issuers[key.kind]();
}
