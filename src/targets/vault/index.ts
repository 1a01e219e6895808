import { z } from 'zod';
import { EndpointUrlField, defineTarget } from '../types.ts';
import { TARGET_TYPES } from '../index.ts';

/** Path segments of a mount or a secret: no leading or trailing slash, no empty segment, no `..`. */
const SEGMENTS = /^(?!.*(^|\/)\.\.?(\/|$))[^/\s]+(\/[^/\s]+)*$/;

/** One field of a HashiCorp Vault / OpenBao KV version 2 secret. */
export const VaultConfig = z.object({
  /** The Vault server (`VAULT_ADDR` when omitted). It receives the token and the key: https://, or http:// to loopback only. */
  address: EndpointUrlField.optional(),
  /** The KV v2 mount (default `secret`). */
  mount: z.string().regex(SEGMENTS, 'a mount path such as secret or kv/team-a').default('secret'),
  /** The secret's path inside the mount, e.g. apps/api. */
  path: z.string().regex(SEGMENTS, 'a secret path such as apps/api (no leading slash)'),
  /** The field of the secret holding the key (default: the variable name). */
  field: z.string().min(1, 'a field name').optional(),
  /** Vault Enterprise namespace (`X-Vault-Namespace`; `VAULT_NAMESPACE` when omitted). */
  namespace: z.string().regex(SEGMENTS, 'a namespace such as team-a or team-a/prod').optional(),
});
export type VaultConfig = z.infer<typeof VaultConfig>;

/** The version this rotation wrote, the one it was written on (check-and-set; null: the secret did not exist). */
export const VaultReceipt = z.object({
  version: z.number().int().positive(),
  previousVersion: z.number().int().positive().nullable(),
});
export type VaultReceipt = z.infer<typeof VaultReceipt>;

/** Where the token is read from without `token:` (the vault CLI's own variable). */
export const VAULT_TOKEN_ENV = TARGET_TYPES.vault.credentialEnv;

export const vault = defineTarget('vault', {
  // The address is `address:` (or VAULT_ADDR, checked by the adapter: it does not apply when address: is set).
  schema: VaultConfig,
  // KV v2 keeps versions; the value reads back. Restore writes the old value as a new version
  // (versions are never deleted or destroyed).
  capabilities: { readBack: 'always', versioned: true },
  receipt: { version: 1, schema: VaultReceipt },
  // One Vault cluster; writes to one secret are serialised by the lock key (check-and-set would
  // refuse the second anyway).
  concurrency: 4,
  describe: (c) => `${c.namespace ? `${c.namespace}/` : ''}${c.mount}/${c.path}${c.field ? `[${c.field}]` : ''}`,
  create: async (config, ctx) => (await import('./adapter.ts')).createVaultTarget(config, ctx),
});
