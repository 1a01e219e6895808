import { z } from 'zod';
import { defineTarget, WaitTimeout } from '../types.ts';
import { TARGET_TYPES } from '../index.ts';

/**
 * A Vercel project's environment variable. A key can have several entries, each for a set of
 * targets (production, preview, development): only the entries covering the configured targets
 * are changed, and one is created for targets no entry covers.
 */
export const VercelConfig = z.object({
  /** Project name or id (`prj_...`). */
  project: z.string().min(1, 'a Vercel project name or id'),
  /** Team id (`team_...`) or slug; omitted: the token owner's personal scope. */
  team: z.string().min(1).optional(),
  /** Which environments get the new key (default: production). */
  targets: z.array(z.enum(['production', 'preview', 'development'])).min(1).optional(),
  /** Redeploy the latest production deployment after the write and wait until it is READY. */
  redeploy: z.boolean().optional(),
  /** Longest wait for the redeploy (default 20m). */
  timeout: WaitTimeout.optional(),
});
export type VercelConfig = z.infer<typeof VercelConfig>;

/** The entries the write set (patched or created), their updatedAt stamps (`id@ms`), and when. */
export const VercelReceipt = z.object({
  project: z.string(),
  entries: z.array(z.string()),
  patched: z.array(z.string()),
  created: z.array(z.string()),
  stamps: z.array(z.string()),
  writtenAt: z.number().nullable(),
  sensitive: z.boolean(),
});
export type VercelReceipt = z.infer<typeof VercelReceipt>;

/** The Vercel REST API (vercel.com/docs/rest-api). */
export const VERCEL_API = 'https://api.vercel.com';

/** Where the token is read from without `token:` (the provider CLI's own variable). */
export const VERCEL_TOKEN_ENV = TARGET_TYPES.vercel.credentialEnv;

export const vercel = defineTarget('vercel', {
  endpoint: { default: VERCEL_API },
  schema: VercelConfig,
  // readBack/redeploy are refined per instance: a `sensitive` entry cannot be read back, and the
  // redeploy only happens with `redeploy: true`.
  // Sensitive entries never return their value: verified by metadata and the redeploy instead.
  capabilities: { readBack: 'per-value', versioned: false },
  receipt: { version: 1, schema: VercelReceipt },
  // Vercel's API limits are per endpoint, unpublished in numbers, and reported on every answer
  // (X-RateLimit-Limit / -Remaining / -Reset; docs rest-api/errors: "The limit of request is per
  // endpoint basis"); deployments are capped per day (100 on Hobby, docs limits) and Hobby builds
  // one at a time. The window starts at 4 and may grow to 32 while answers stay healthy; each
  // endpoint's budget is spent no further than what is left in it (requests in flight counted),
  // then the next request waits for its reset.
  concurrency: 4,
  pacing: { max: 32, reserve: 0 },
  describe: (c) => `${c.team ? `${c.team}/` : ''}${c.project} (${(c.targets ?? ['production']).join(', ')})`,
  create: async (config, ctx) => (await import('./adapter.ts')).createVercelTarget(config, ctx),
});
