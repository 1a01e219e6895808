import { z } from 'zod';
import { defineTarget, WaitTimeout } from '../types.ts';

/** One secret of a Fly app, staged through the Machines API, then the app's machines updated onto it. */
export const FlyConfig = z.object({
  /** The app name (`app` in fly.toml, `fly apps list`). */
  app: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'a Fly app name: lowercase letters, digits and dashes'),
  /** Update the app's machines onto the new secret and wait until they run (default true). */
  redeploy: z.boolean().optional(),
  /** Longest wait for the machines (default 10m). */
  timeout: WaitTimeout.optional(),
});
export type FlyConfig = z.infer<typeof FlyConfig>;

/**
 * What the write left: the app's secrets version after it (machines are updated to at least this
 * one) and the secret's `updated_at` (metadata proof after a restart). Never a value or a digest.
 */
export const FlyReceipt = z.object({
  app: z.string(),
  /** The key the write was for (its fingerprint), so `updatedAt` proves nothing about another key. */
  fingerprint: z.string(),
  changed: z.boolean(),
  created: z.boolean(),
  version: z.number().nullable(),
  updatedAt: z.string().nullable(),
});
export type FlyReceipt = z.infer<typeof FlyReceipt>;

export const fly = defineTarget('fly', {
  schema: FlyConfig,
  // Fly secrets are write-only (the API lists a digest, never the value): verified by that digest
  // and the write's metadata. Machines only see secrets when they boot: `redeploy` (present unless
  // `redeploy: false`) updates every machine and waits until the running ones are started again.
  capabilities: { readBack: 'never', versioned: false },
  receipt: { version: 1, schema: FlyReceipt },
  // The Machines API allows 1 request per second per action and machine (bursts of 3): apps are
  // independent, and one app's machines are updated one at a time anyway.
  concurrency: 4,
  describe: (c) => c.app,
  create: async (config, ctx) => (await import('./adapter.ts')).createFlyTarget(config, ctx),
});
