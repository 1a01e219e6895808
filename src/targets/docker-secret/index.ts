import { z } from 'zod';
import { defineTarget, WaitTimeout } from '../types.ts';

/**
 * Swarm secret names: swarmkit accepts `^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$`, at most 64
 * characters (manager/controlapi/common.go validateConfigOrSecretAnnotations). keyrot appends
 * `_<n>`, so the base name keeps room for it. Service names follow the same rule (63 characters).
 */
const SWARM_NAME = /^[a-zA-Z0-9](?:[a-zA-Z0-9_.-]*[a-zA-Z0-9])?$/;


export const DockerSecretConfig = z.object({
  /** Base name: the first secret is `openai_api_key`, keyrot's are `openai_api_key_2`, `_3`... */
  secret: z
    .string()
    .max(56, 'at most 56 characters (keyrot appends _<n> and Docker allows 64)')
    .regex(SWARM_NAME, 'a Docker secret name: letters, digits, "-", "_" and ".", starting and ending with a letter or digit'),
  /** Services that mount the secret; each is updated to mount the new one under the same file name. */
  services: z
    .array(z.string().regex(SWARM_NAME, 'a Docker service name or id'))
    .min(1, 'at least one service that mounts the secret')
    .refine((s) => new Set(s).size === s.length, 'each service once'),
  /** How long to wait for each service's rolling update (default 5m). */
  timeout: WaitTimeout.optional(),
  /** `exec`: after the update, each running task's container computes the SHA-256 of its secret file and keyrot compares it. */
  verify: z.literal('exec', { message: 'verify: exec is the only choice (omit it to verify by the fingerprint label and the service references)' }).optional(),
});
export type DockerSecretConfig = z.infer<typeof DockerSecretConfig>;

/** The secret this rotation created and the one it replaced (both also in the new secret's labels). */
export const DockerSecretReceipt = z.object({
  newSecret: z.string(),
  newSecretId: z.string(),
  oldSecret: z.string().nullable(),
  oldSecretId: z.string().nullable(),
  services: z.array(z.string()),
});
export type DockerSecretReceipt = z.infer<typeof DockerSecretReceipt>;

/** Where the Engine listens when neither `endpoint:` nor DOCKER_HOST says otherwise. */
export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';

export const dockerSecret = defineTarget('docker-secret', {
  endpoint: { form: 'docker-host', default: DEFAULT_DOCKER_HOST, env: ['DOCKER_HOST'] },
  schema: DockerSecretConfig,
  // Write-only store (the Engine never returns secret data), versioned by name (the old secret stays
  // until finalize), no separate redeploy: swapping the reference IS the rolling restart, and write
  // waits for it.
  capabilities: { readBack: 'never', versioned: true },
  receipt: { version: 1, schema: DockerSecretReceipt },
  // Service updates on one swarm are cheap but each waits for a rolling update: a few at a time.
  concurrency: 2,
  describe: (c) => `${c.secret}@${c.services.join(',')}`,
  create: async (config, ctx) => (await import('./adapter.ts')).createDockerSecretTarget(config, ctx),
});
