import { z } from 'zod';
import { defineTarget, WaitTimeout } from '../types.ts';

/** One config var of a Heroku app, set through the Platform API. */
export const HerokuConfig = z.object({
  /** App name or id (the Platform API accepts either in paths). */
  app: z.string().min(1, 'a Heroku app name or id'),
  /** How long to wait for the release a config change creates (default 10m). */
  timeout: WaitTimeout.optional(),
});
export type HerokuConfig = z.infer<typeof HerokuConfig>;

/** The release the write created (what redeploy watches), or none when the value was already set. */
export const HerokuReceipt = z.object({
  app: z.string(),
  changed: z.boolean(),
  created: z.boolean(),
  releaseId: z.string().nullable(),
  releaseVersion: z.number().nullable(),
});
export type HerokuReceipt = z.infer<typeof HerokuReceipt>;

/** The Platform API (devcenter.heroku.com/articles/platform-api-reference). */
export const HEROKU_API = 'https://api.heroku.com';

/** Where the token is read from without `token:` (the provider CLI's own variable). */
export const HEROKU_TOKEN_ENV = ['HEROKU_API_KEY'];

export const heroku = defineTarget({
  id: 'heroku',
  endpoint: { default: HEROKU_API },
  credentialEnv: HEROKU_TOKEN_ENV,
  schema: HerokuConfig,
  // Heroku has no write-only config vars: the value reads back. Every config change creates a
  // release that restarts the dynos; keyrot waits for it (redeploy).
  capabilities: { readBack: 'always', versioned: false },
  receipt: { version: 1, schema: HerokuReceipt },
  // The account's token bucket holds 4500 requests and refills at ~75/minute (README "Provider facts").
  // One target costs ~6 requests to write plus a few polls of its release; 4 apps at once stay far
  // inside the bucket, while writes to ONE app are serialised by the lock key (releases are per app).
  concurrency: 4,
  describe: (c) => c.app,
  create: async (config, ctx) => (await import('./adapter.ts')).createHerokuTarget(config, ctx),
});
