import { z } from 'zod';
import { defineTarget } from '../types.ts';
import { TARGET_TYPES } from '../index.ts';

/** One secret of a Cloudflare Worker (a `secret_text` binding). */
export const CloudflareWorkersConfig = z.object({
  /** The account id (dashboard → Workers & Pages → Account details). */
  account: z.string().regex(/^[A-Za-z0-9]+$/, 'a Cloudflare account id such as 0123abcd…'),
  /** The Worker's name. */
  script: z.string().regex(/^[A-Za-z0-9_-]+$/, 'a Worker name (letters, digits, - and _)'),
});
export type CloudflareWorkersConfig = z.infer<typeof CloudflareWorkersConfig>;

/**
 * What a write leaves: the version the Worker served before, the version (and its sequential
 * number) the secret change deployed, and whether keyrot created the secret. Never a value.
 */
export const CloudflareWorkersReceipt = z.object({
  fingerprint: z.string(),
  created: z.boolean(),
  versionBefore: z.string().nullable(),
  versionId: z.string().nullable(),
  versionNumber: z.number().nullable(),
  deploymentId: z.string().nullable(),
});
export type CloudflareWorkersReceipt = z.infer<typeof CloudflareWorkersReceipt>;

/** The Cloudflare API v4 root. */
export const CLOUDFLARE_API = 'https://api.cloudflare.com/client/v4';

/** Where the token is read from without `token:` (wrangler's variable). */
export const CLOUDFLARE_TOKEN_ENV = TARGET_TYPES['cloudflare-workers'].credentialEnv;

export const cloudflareWorkers = defineTarget('cloudflare-workers', {
  // keyrot always hands the client its base URL, so CLOUDFLARE_BASE_URL is never read.
  endpoint: { default: CLOUDFLARE_API },
  schema: CloudflareWorkersConfig,
  // Worker secrets are write-only. A secret change is itself a deployment (a new version serving
  // all traffic): nothing to redeploy; verified by that version serving with the secret bound.
  capabilities: { readBack: 'never', versioned: false },
  receipt: { version: 1, schema: CloudflareWorkersReceipt },
  // 1200 API requests per 5 minutes per user (developers.cloudflare.com/fundamentals/api/reference/limits):
  // a write takes ~6, a verify ~4; two Workers at a time stay far inside it.
  concurrency: 2,
  describe: (c) => `${c.account}/${c.script}`,
  create: async (config, ctx) => (await import('./adapter.ts')).createCloudflareWorkersTarget(config, ctx),
});
