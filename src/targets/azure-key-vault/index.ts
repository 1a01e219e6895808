import { z } from 'zod';
import { defineTarget } from '../types.ts';
import { TARGET_TYPES } from '../index.ts';

/**
 * A secret in Azure Key Vault. Each write is a new version (tagged with the rotation), verified by
 * reading that version; restore is a new version holding the old value; finalize disables the
 * versions that hold the revoked key. The vault URL is any https URL: public Azure
 * (`*.vault.azure.net`), sovereign clouds (`*.vault.azure.cn`, `*.vault.usgovcloudapi.net`),
 * Azure Stack, or an emulator (`*.vault.localhost`).
 */
export const AzureKeyVaultConfig = z.object({
  vault: z
    .string()
    .refine((s) => URL.canParse(s), 'the vault URL, e.g. https://my-vault.vault.azure.net/')
    .refine((s) => !URL.canParse(s) || new URL(s).protocol === 'https:', 'Azure Key Vault is https only: https://<vault-name>.vault.azure.net/')
    .refine((s) => {
      if (!URL.canParse(s)) return true;
      const u = new URL(s);
      return !u.username && !u.password && !u.search && !u.hash && (u.pathname === '/' || u.pathname === '');
    }, 'the vault URL alone (https://<vault-name>.vault.azure.net/), without a path, query or credentials'),
  // The service's name rule: 1-127 characters, letters, digits and dashes (REST reference, Set Secret).
  secret: z.string().regex(/^[0-9a-zA-Z-]{1,127}$/, 'a Key Vault secret name: 1-127 letters, digits and dashes'),
});
export type AzureKeyVaultConfig = z.infer<typeof AzureKeyVaultConfig>;

/** The version this rotation wrote, and the one (and key) it replaced: what restore and finalize act on. */
export const AzureKeyVaultReceipt = z.object({
  version: z.string(),
  previousVersion: z.string().nullable(),
  previousFingerprint: z.string().nullable(),
  /** The vault already held the key: no version was added. */
  unchanged: z.boolean().optional(),
});
export type AzureKeyVaultReceipt = z.infer<typeof AzureKeyVaultReceipt>;

/** A bearer token for the vault, used instead of Entra ID when set (emulators, tokens minted elsewhere). */
export const STATIC_TOKEN_ENV = TARGET_TYPES['azure-key-vault'].credentialEnv[0];

export const azureKeyVault = defineTarget('azure-key-vault', {
  // `endpoint:` replaces the vault URL (plan names it); Entra ID tokens are requested from AZURE_AUTHORITY_HOST.
  endpoint: { env: ['AZURE_AUTHORITY_HOST'] },
  schema: AzureKeyVaultConfig,
  capabilities: { readBack: 'always', versioned: true },
  receipt: { version: 1, schema: AzureKeyVaultReceipt },
  // Per vault and region, 300 secret creates (setSecret: a new version) and 4,000 other
  // transactions every 10 seconds (learn.microsoft.com/azure/key-vault/general/service-limits);
  // a 429 carries Retry-After (.../general/overview-throttling). Every request goes through the
  // vault's lane, each class held to its limit spread evenly (burst 1: no 10 s can hold more).
  concurrency: 4,
  pacing: { rates: { create: { perSecond: 30, burst: 1 }, other: { perSecond: 400, burst: 1 } } },
  describe: (c) => `${URL.canParse(c.vault) ? new URL(c.vault).host : c.vault}/secrets/${c.secret}`,
  create: async (config, ctx) => (await import('./adapter.ts')).createAzureKeyVaultTarget(config, ctx),
});
