import { z } from 'zod';
import { defineTarget } from '../types.ts';

/**
 * A Google Cloud Secret Manager secret (global replication): keyrot adds a version holding the new
 * key, reads it back by CRC32C and value, and after revocation disables the versions holding the old
 * one. `endpoint` (common field) is the API's `host:port` (emulators, private endpoints).
 */
export const GcpSecretManagerConfig = z.object({
  // Project ids (my-project, example.com:my-project) or project numbers.
  project: z
    .string()
    .regex(/^(?:[a-z][a-z0-9.:-]*[a-z0-9]|\d+)$/, 'a Google Cloud project id (my-project) or project number'),
  // Secret ids: [a-zA-Z0-9_-]{1,255} (Secret Manager API, CreateSecretRequest.secret_id).
  secret: z.string().regex(/^[A-Za-z0-9_-]{1,255}$/, 'a secret id: letters, digits, _ and -, at most 255 characters'),
});
export type GcpSecretManagerConfig = z.infer<typeof GcpSecretManagerConfig>;

/** The version this rotation added (or found holding the key), and the one (and key) it replaced. */
export const GcpSecretManagerReceipt = z.object({
  version: z.string(),
  previousVersion: z.string().nullable(),
  previousFingerprint: z.string().nullable(),
  added: z.boolean(),
});
export type GcpSecretManagerReceipt = z.infer<typeof GcpSecretManagerReceipt>;

export const gcpSecretManager = defineTarget('gcp-secret-manager', {
  endpoint: { form: 'host:port', default: 'secretmanager.googleapis.com:443' },
  schema: GcpSecretManagerConfig,
  capabilities: { readBack: 'always', versioned: true },
  receipt: { version: 1, schema: GcpSecretManagerReceipt },
  // Request quotas per project (cloud.google.com/secret-manager/quotas): access 90,000 a minute,
  // read (list, get, TestIamPermissions) 600 and write (add, disable) 600 a minute; AddSecretVersion
  // also 2 qps per secret. Every call goes through the project's lane, its class held to the quota
  // spread evenly (burst 1: no minute can hold more than the quota); RESOURCE_EXHAUSTED halves the window.
  concurrency: 4,
  pacing: { rates: { access: { perSecond: 1500, burst: 1 }, read: { perSecond: 10, burst: 1 }, write: { perSecond: 10, burst: 1 } } },
  describe: (c) => `projects/${c.project}/secrets/${c.secret}`,
  create: async (config, ctx) => (await import('./adapter.ts')).createGcpSecretManagerTarget(config, ctx),
});
