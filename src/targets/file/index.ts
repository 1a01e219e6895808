import { z } from 'zod';
import { defineTarget } from '../types.ts';

/** A file that holds only the key (the `OPENAI_API_KEY_FILE` / Docker `_FILE` convention). */
export const FileConfig = z.object({
  path: z.string().min(1, 'a file path'),
});
export type FileConfig = z.infer<typeof FileConfig>;

/** Whether keyrot created the file (a restore to "no value" removes it again). */
export const FileReceipt = z.object({ createdFile: z.boolean() });
export type FileReceipt = z.infer<typeof FileReceipt>;

export const file = defineTarget('file', {
  schema: FileConfig,
  capabilities: { readBack: 'always', versioned: false },
  receipt: { version: 1, schema: FileReceipt },
  concurrency: 8,
  describe: (c) => c.path,
  create: async (config, ctx) => (await import('./adapter.ts')).createFileTarget(config, ctx),
});
