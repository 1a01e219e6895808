import { z } from 'zod';
import { defineTarget, WaitTimeout } from '../types.ts';

/** One service variable of a Railway project environment, then one redeploy of that service. */
export const RailwayConfig = z.object({
  /** Project id (UUID, from the project's settings or `railway status --json`). */
  project: z.string().min(1, 'a Railway project id'),
  /** Environment id. */
  environment: z.string().min(1, 'a Railway environment id'),
  /** Service id. */
  service: z.string().min(1, 'a Railway service id'),
  /**
   * What `token:` holds: an account/workspace token (sent as `Authorization: Bearer`, the default)
   * or a project token (sent as `Project-Access-Token`). Without `token:`, RAILWAY_API_TOKEN is an
   * account token and RAILWAY_TOKEN a project token, as for the Railway CLI.
   */
  tokenType: z.enum(['account', 'project']).optional(),
  /** Longest wait for the redeploy (default 15m). */
  timeout: WaitTimeout.optional(),
});
export type RailwayConfig = z.infer<typeof RailwayConfig>;

/** Whether the write changed (or created) the variable, and the deployment live before it. */
export const RailwayReceipt = z.object({
  upserted: z.boolean(),
  created: z.boolean(),
  sealed: z.boolean(),
  deploymentBefore: z.string().nullable(),
});
export type RailwayReceipt = z.infer<typeof RailwayReceipt>;

/** Railway's public GraphQL API (docs.railway.com/reference/public-api). */
export const RAILWAY_API = 'https://backboard.railway.com/graphql/v2';

export const railway = defineTarget('railway', {
  endpoint: { default: RAILWAY_API },
  schema: RailwayConfig,
  // readBack is refined per instance: a sealed variable cannot be read back.
  // Sealed variables come back without a value: verified by metadata and the redeploy instead.
  capabilities: { readBack: 'per-value', versioned: false },
  receipt: { version: 1, schema: RailwayReceipt },
  // Railway's public API allows 100 requests/hour on Free/Trial and 1000/hour on Hobby per token
  // (docs public-api), and watching a deployment costs a request per poll: two services at a
  // time keeps a whole rotation inside a Free plan's hourly budget.
  concurrency: 2,
  describe: (c) => `project ${c.project.slice(0, 8)} env ${c.environment.slice(0, 8)} service ${c.service.slice(0, 8)}`,
  create: async (config, ctx) => (await import('./adapter.ts')).createRailwayTarget(config, ctx),
});
