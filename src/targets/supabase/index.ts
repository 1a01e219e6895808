import { z } from 'zod';
import { defineTarget } from '../types.ts';

/** One Edge Function secret of a Supabase project, set through the Management API. */
export const SupabaseConfig = z.object({
  /** The project ref (Project Settings → General, or the `<ref>.supabase.co` host). */
  project: z.string().regex(/^[a-z0-9]+$/, 'a Supabase project ref: lowercase letters (Project Settings → General)'),
});
export type SupabaseConfig = z.infer<typeof SupabaseConfig>;

/** Whether the write changed (or created) the secret. No value, no digest: the digest is a hash of the key. */
export const SupabaseReceipt = z.object({
  project: z.string(),
  changed: z.boolean(),
  created: z.boolean(),
});
export type SupabaseReceipt = z.infer<typeof SupabaseReceipt>;

export const supabase = defineTarget('supabase', {
  schema: SupabaseConfig,
  // The API never returns a secret's value, only its SHA-256 digest: verified by comparing that
  // digest with the new key's, in memory. Edge Functions read secrets at run time: no redeploy.
  capabilities: { readBack: 'never', versioned: false },
  receipt: { version: 1, schema: SupabaseReceipt },
  // 120 requests per minute per token and per project (Supabase docs, Management API rate
  // limits); a write costs ~3 and projects count separately, so 4 at once stay far inside it.
  concurrency: 4,
  describe: (c) => c.project,
  create: async (config, ctx) => (await import('./adapter.ts')).createSupabaseTarget(config, ctx),
});
