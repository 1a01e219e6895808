import { z } from 'zod';
import { defineTarget } from '../types.ts';

/** A `.env` file: only the one variable changes, every other byte is preserved. */
export const DotenvConfig = z.object({
  path: z.string().min(1, 'a file path'),
});
export type DotenvConfig = z.infer<typeof DotenvConfig>;

/** What a restore to "no value" must give back exactly: no file, no variable, an empty one, no final newline. */
export const DotenvReceipt = z.object({
  createdFile: z.boolean(),
  addedVar: z.boolean(),
  emptyVar: z.boolean().optional(),
  addedEol: z.boolean().optional(),
});
export type DotenvReceipt = z.infer<typeof DotenvReceipt>;

export const dotenv = defineTarget('dotenv', {
  schema: DotenvConfig,
  capabilities: { readBack: 'always', versioned: false },
  receipt: { version: 1, schema: DotenvReceipt },
  concurrency: 8,
  describe: (c) => c.path,
  create: async (config, ctx) => (await import('./adapter.ts')).createDotenvTarget(config, ctx),
});
