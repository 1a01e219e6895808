import { z } from 'zod';
import { defineTarget, WaitTimeout } from '../types.ts';

/** One environment variable of a Render service, then one deploy of that service. */
export const RenderConfig = z.object({
  /** The service id (`srv-...`; cron jobs `crn-...`), from the service's dashboard URL or settings. */
  service: z.string().regex(/^[a-z]{3}-[A-Za-z0-9]+$/, 'a Render service id such as srv-abc123 (in the service’s dashboard URL)'),
  /** Deploy the service after the write and wait until the deploy is live (default true). */
  redeploy: z.boolean().optional(),
  /** Longest wait for the deploy (default 15m). */
  timeout: WaitTimeout.optional(),
});
export type RenderConfig = z.infer<typeof RenderConfig>;

/** Whether the write changed (or created) the variable; never the value. */
export const RenderReceipt = z.object({
  service: z.string(),
  changed: z.boolean(),
  created: z.boolean(),
});
export type RenderReceipt = z.infer<typeof RenderReceipt>;

export const render = defineTarget('render', {
  schema: RenderConfig,
  // Service variables read back. A running service sees a change only in a new deploy:
  // `redeploy` (present unless `redeploy: false`) deploys and waits until it is live.
  capabilities: { readBack: 'always', versioned: false },
  receipt: { version: 1, schema: RenderReceipt },
  // Render allows 30 writes a minute per API key and 10 deploys a minute per service
  // (api-docs.render.com rate limiting); a target costs 1-2 writes and one deploy.
  concurrency: 4,
  describe: (c) => c.service,
  create: async (config, ctx) => (await import('./adapter.ts')).createRenderTarget(config, ctx),
});
