import { z } from 'zod';
import { defineTarget, WaitTimeout } from '../types.ts';
import { TARGET_TYPES } from '../index.ts';

/**
 * A deploy context whose value keyrot rotates: Netlify's contexts, or `branch:NAME` for one
 * branch's override (the Netlify CLI's `--context branch:NAME` convention).
 */
export const NetlifyContextName = z
  .string()
  .regex(
    /^(all|production|deploy-preview|branch-deploy|dev|dev-server|branch:[A-Za-z0-9._/-]+)$/,
    'all, production, deploy-preview, branch-deploy, dev, dev-server or branch:NAME',
  );

/** Several contexts of one variable, rotated together by one target (`[production, deploy-preview]`). */
export const NetlifyContextList = z
  .array(NetlifyContextName)
  .min(1, 'list at least one deploy context')
  .refine((l) => new Set(l).size === l.length, 'list each deploy context once')
  .refine((l) => l.length === 1 || !l.includes('all'), '`all` already covers every context: use `context: all` on its own');

/** One environment variable of a Netlify site (site-level; one deploy context, or several). */
export const NetlifyConfig = z.object({
  /** The site id (Site configuration → Site details → Site ID). */
  site: z.string().min(1, 'a Netlify site id'),
  /** The team (account) slug or id; discovered from the site when omitted. */
  account: z.string().min(1).optional(),
  /**
   * The deploy context(s) to rotate. Omitted: follow the variable — its `all` value when it has one
   * value for all contexts (Netlify's default), else its production value.
   */
  context: z
    .union([NetlifyContextName, NetlifyContextList], { error: 'a deploy context (production, deploy-preview, branch:NAME...) or a list of them' })
    .optional(),
  /** Trigger a build after the write and wait until its deploy is ready. */
  redeploy: z.boolean().default(false),
  /** How long to wait for that deploy (default 15m). */
  timeout: WaitTimeout.optional(),
});
export type NetlifyConfig = z.infer<typeof NetlifyConfig>;

/** The configured contexts as a list; undefined when `context:` is omitted. */
export function netlifyContexts(c: { context?: string | string[] }): string[] | undefined {
  return c.context === undefined ? undefined : Array.isArray(c.context) ? c.context : [c.context];
}

/**
 * What the write left: the contexts written, their value ids, the variable's updated_at after the
 * last write (a secret's proof), and which contexts keyrot added. `context`, `valueId` and
 * `addedValue` are the one-context fields of the first receipts, still read.
 */
export const NetlifyReceipt = z.object({
  site: z.string(),
  account: z.string(),
  context: z.string().optional(),
  contexts: z.array(z.string()).optional(),
  secret: z.boolean(),
  fingerprint: z.string(),
  changed: z.boolean(),
  createdVar: z.boolean().optional(),
  added: z.array(z.string()).optional(),
  addedValue: z.boolean().optional(),
  valueId: z.string().nullable().optional(),
  valueIds: z.array(z.string()).optional(),
  updatedAt: z.string().nullable(),
});
export type NetlifyReceipt = z.infer<typeof NetlifyReceipt>;

/** The Netlify API (docs.netlify.com/api/get-started): `/api/v1` is added to it. */
export const NETLIFY_API = 'https://api.netlify.com';

/** Where the token is read from without `token:` (the provider CLI's own variable). */
export const NETLIFY_TOKEN_ENV = TARGET_TYPES.netlify.credentialEnv;

export const netlify = defineTarget('netlify', {
  endpoint: { default: NETLIFY_API },
  schema: NetlifyConfig,
  // Non-secret values read back; `is_secret` values do not (the instance says so after preflight)
  // and are verified by metadata plus, with `redeploy: true`, the new deploy reaching `ready`.
  // Secret variables are write-only outside `dev`: verified by metadata and the build instead.
  capabilities: { readBack: 'per-value', versioned: false },
  receipt: { version: 1, schema: NetlifyReceipt },
  // 500 API requests/minute, but only 3 deploys/minute (README "Provider facts"): two sites building
  // at once stay under the deploy limit even when a retry adds a build.
  concurrency: 2,
  // Unchanged for an omitted or `production` context, so existing target names (and journals) stay valid.
  describe: (c) => {
    const list = netlifyContexts(c);
    return `${c.site}${list && !(list.length === 1 && list[0] === 'production') ? `[${list.join(',')}]` : ''}`;
  },
  create: async (config, ctx) => (await import('./adapter.ts')).createNetlifyTarget(config, ctx),
});
