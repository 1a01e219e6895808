import { z } from 'zod';
import { defineTarget } from '../types.ts';

/** Path segments of a mount or a secret: no leading or trailing slash, no empty segment, no `..`. */
const SEGMENTS = /^(?!.*(^|\/)\.\.?(\/|$))[^/\s]+(\/[^/\s]+)*$/;

/**
 * `https://`, or `http://` to a loopback address only (127.0.0.0/8, [::1], localhost): the address
 * receives the Vault token and the key.
 */
export function vaultAddressProblem(raw: string): string | undefined {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return `${JSON.stringify(raw)} is not a URL (expected https://vault.example.com:8200)`;
  }
  if (u.username || u.password) return 'credentials do not belong in the Vault address: use token: env:VAR or file:PATH';
  if (u.protocol === 'https:') return undefined;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (u.protocol === 'http:' && (host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host))) return undefined;
  return `${JSON.stringify(raw)}: plain http:// is allowed only to a loopback address (127.0.0.0/8, [::1], localhost): the token and the key would travel in clear; use https://`;
}

/** One field of a HashiCorp Vault / OpenBao KV version 2 secret. */
export const VaultConfig = z.object({
  /** The Vault server (`VAULT_ADDR` when omitted). */
  address: z
    .string()
    .superRefine((v, ctx) => {
      const problem = vaultAddressProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
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

export const vault = defineTarget({
  id: 'vault',
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
  discover: async (ctx) => (await import('./discover.ts')).discoverVault(ctx),
});
