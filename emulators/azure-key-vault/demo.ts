import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { DemoSetup } from '../demo-types.ts';
import { KeyVaultEmulator } from './emulator.ts';

/**
 * `keyrot demo`: an Azure Key Vault emulator on https://keyrot-demo.vault.localhost:<port> with the
 * secret `openai-api-key` holding the old key (and an unrelated secret that must stay untouched).
 *
 * Two variables make the target reach it without the internet:
 * - the throw-away access token the emulator accepts, referenced by the entry's `token:`;
 * - NODE_EXTRA_CA_CERTS, the emulator's self-signed certificate (written to the demo's temp dir).
 *   A keyrot child process trusts it natively; in-process, the adapter reads it from the target
 *   context's environment, for loopback vaults only.
 */
export const demo: DemoSetup = async ({ oldKey, workDir }) => {
  const emu = new KeyVaultEmulator({ vaultName: 'keyrot-demo' });
  const vaultUrl = await emu.start();
  emu.seed('openai-api-key', oldKey, { contentType: 'text/plain', tags: { app: 'nomora-paw' } });
  emu.seed('database-password', randomBytes(18).toString('base64url'));
  const caPath = join(workDir, 'azure-key-vault-emulator-ca.pem');
  await writeFile(caPath, emu.caPem, { mode: 0o600 });
  return {
    targets: [
      {
        type: 'azure-key-vault',
        vault: `${vaultUrl}/`,
        secret: 'openai-api-key',
        token: 'env:KEYROT_DEMO_AZURE_KEYVAULT_TOKEN',
      },
    ],
    env: { KEYROT_DEMO_AZURE_KEYVAULT_TOKEN: emu.token, NODE_EXTRA_CA_CERTS: caPath },
    description: `Azure Key Vault emulator at ${vaultUrl} (https, self-signed CA in ${caPath}, 401 challenge flow)`,
    stop: () => emu.stop(),
  };
};
