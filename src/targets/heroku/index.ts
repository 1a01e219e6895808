import { z } from 'zod';
import { defineTarget } from '../types.ts';

/** `10m`, `90s`, `1h30m` or a number of seconds (parsed by inventory/duration.ts in the adapter). */
const Duration = z.union([
  z.number().nonnegative(),
  z.string().regex(/^(\d+(\.\d+)?|(\d+(\.\d+)?(ms|s|m|h|d))+)$/, 'a duration such as 90s, 10m or 1h'),
]);

/** One config var of a Heroku app, set through the Platform API. */
export const HerokuConfig = z.object({
  /** App name or id (the Platform API accepts either in paths). */
  app: z.string().min(1, 'a Heroku app name or id'),
  /** How long to wait for the release a config change creates (default 10m). */
  timeout: Duration.optional(),
});
export type HerokuConfig = z.infer<typeof HerokuConfig>;

export const heroku = defineTarget({
  id: 'heroku',
  schema: HerokuConfig,
  // Heroku has no write-only config vars: the value reads back. Every config change creates a
  // release that restarts the dynos; keyrot waits for it (redeploy).
  capabilities: { readBack: true, redeploy: true, versioned: false, finalize: false },
  // The account's token bucket holds 4500 requests and refills at ~75/minute (provider-apis.md §1.5).
  // One target costs ~6 requests to write plus a few polls of its release; 4 apps at once stay far
  // inside the bucket, while writes to ONE app are serialised by the lock key (releases are per app).
  concurrency: 4,
  describe: (c) => c.app,
  create: async (config, ctx) => (await import('./adapter.ts')).createHerokuTarget(config, ctx),
});
