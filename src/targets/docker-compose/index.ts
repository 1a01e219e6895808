import { z } from 'zod';
import { defineTarget, WaitTimeout } from '../types.ts';
import { FileReceipt } from '../file/index.ts';
import { DotenvReceipt } from '../dotenv/index.ts';
import { DEFAULT_DOCKER_HOST } from '../docker-secret/index.ts';

/** Compose specification (02-model.md): lowercase letters, digits, dashes and underscores, starting with a letter or digit. */
const PROJECT_NAME = /^[a-z0-9][a-z0-9_-]*$/;
/** Compose specification schema (compose-spec.json): service names match `^[a-zA-Z0-9._-]+$`. */
const SERVICE_NAME = /^[a-zA-Z0-9._-]+$/;

/**
 * A key file or env file of a Docker Compose project: the file on this host (written like the
 * `file` / `dotenv` targets), then the named services' containers restarted or re-created so
 * they run the new key.
 */
export const DockerComposeConfig = z
  .object({
    /** A file that holds only the key: a Compose `secrets:` entry's `file:`, or a bind-mounted key file. */
    file: z.string().min(1, 'a file path').optional(),
    /** A dotenv file: a service's `env_file:` (or the project's `.env` read for `${VAR}`). */
    env_file: z.string().min(1, 'a file path').optional(),
    project: z
      .string()
      .regex(PROJECT_NAME, 'a Compose project name: lowercase letters, digits, "-" and "_", starting with a letter or digit (docker compose ls lists them)'),
    services: z
      .array(z.string().regex(SERVICE_NAME, 'a Compose service name: letters, digits, ".", "_" and "-"'))
      .min(1, 'at least one service whose containers read the key')
      .refine((s) => new Set(s).size === s.length, 'each service once'),
    /** `exec`: after the restart, each running container computes the SHA-256 of what it sees and keyrot compares it. */
    verify: z.literal('exec', { message: 'verify: exec is the only choice (omit it to verify by reading the file back)' }).optional(),
    /** How long to wait for each container to run (and be healthy) again (default 5m). */
    timeout: WaitTimeout.optional(),
  })
  .refine((c) => (c.file === undefined) !== (c.env_file === undefined), {
    message: 'exactly one of file: (a file holding only the key) or env_file: (a dotenv file)',
    path: ['file'],
  });
export type DockerComposeConfig = z.infer<typeof DockerComposeConfig>;

/** The receipt of the file part: the `file` or `dotenv` target's own (what a restore to "no value" must undo). */
export const DockerComposeReceipt = z.union([z.object({ file: FileReceipt }).strict(), z.object({ envFile: DotenvReceipt }).strict()]);
export type DockerComposeReceipt = z.infer<typeof DockerComposeReceipt>;

export const dockerCompose = defineTarget('docker-compose', {
  endpoint: { form: 'docker-host', default: DEFAULT_DOCKER_HOST, env: ['DOCKER_HOST'] },
  schema: DockerComposeConfig,
  // The file is read back; the containers are brought onto it by `redeploy` (restart or re-create).
  capabilities: { readBack: 'always', versioned: false },
  receipt: { version: 1, schema: DockerComposeReceipt },
  // Each write is followed by restarts on one Engine: a few at a time.
  concurrency: 2,
  describe: (c) => `${c.file ?? c.env_file}@${c.project}`,
  create: async (config, ctx) => (await import('./adapter.ts')).createDockerComposeTarget(config, ctx),
});
