import { z } from 'zod';
import { defineTarget, WaitTimeout } from '../types.ts';
import { TARGET_TYPES } from '../index.ts';

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
export const HEROKU_TOKEN_ENV = TARGET_TYPES.heroku.credentialEnv;

export const heroku = defineTarget('heroku', {
  endpoint: { default: HEROKU_API },
  schema: HerokuConfig,
  // Heroku has no write-only config vars: the value reads back. Every config change creates a
  // release that restarts the dynos; keyrot waits for it (redeploy).
  capabilities: { readBack: 'always', versioned: false },
  receipt: { version: 1, schema: HerokuReceipt },
  // Heroku's limit is a token bucket per account: 4500 requests, refilled at about 75 a minute
  // (devcenter.heroku.com/articles/platform-api-reference#rate-limits), reported on every answer
  // as RateLimit-Remaining. No concurrency limit is published: the window starts at 8 and may
  // grow to 64 while answers stay healthy; the lane keeps 20 requests of the bucket for other
  // tools and paces one request per refill (800 ms) below that. Writes to ONE app are serialised
  // by the lock key (releases are per app).
  concurrency: 8,
  pacing: { max: 64, refillPerSecond: 75 / 60, reserve: 20 },
  describe: (c) => c.app,
  create: async (config, ctx) => (await import('./adapter.ts')).createHerokuTarget(config, ctx),
});
