import { z } from 'zod';
import { defineTarget } from '../types.ts';

/** A `.env` file: only the one variable changes, every other byte is preserved. */
export const DotenvConfig = z.object({
  path: z.string().min(1, 'a file path'),
});
export type DotenvConfig = z.infer<typeof DotenvConfig>;

export const dotenv = defineTarget({
  id: 'dotenv',
  schema: DotenvConfig,
  capabilities: { readBack: true, redeploy: false, versioned: false, finalize: false },
  concurrency: 8,
  describe: (c) => c.path,
  create: async (config, ctx) => (await import('./adapter.ts')).createDotenvTarget(config, ctx),
});
