import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyVaultEmulator, type KeyVaultEmulatorOptions } from '../../emulators/azure-key-vault/emulator.ts';
import { azureKeyVault, type AzureKeyVaultConfig } from '../../src/targets/azure-key-vault/index.ts';
import { STATIC_TOKEN_ENV } from '../../src/targets/azure-key-vault/adapter.ts';
import type { CommonTargetConfig, Target } from '../../src/targets/types.ts';
import { testContext } from './context.ts';
import { fakeClock } from '../../src/runtime/clock.ts';
import type { AzureKeyVaultReceipt } from '../../src/targets/azure-key-vault/index.ts';

export const SECRET = 'openai-api-key';

/**
 * A started Key Vault emulator plus a factory of targets pointing at it. The targets use the
 * static-token credential (the emulator's throw-away token) and trust the emulator's certificate
 * through NODE_EXTRA_CA_CERTS in the injected environment: nothing reaches the internet.
 */
export async function startKeyVault(opts: KeyVaultEmulatorOptions = {}) {
  const emu = new KeyVaultEmulator(opts);
  await emu.start();
  const dir = await mkdtemp(join(tmpdir(), 'keyrot-akv-'));
  const caFile = join(dir, 'emulator-ca.pem');
  await writeFile(caFile, emu.caPem, { mode: 0o600 });
  const env: NodeJS.ProcessEnv = { [STATIC_TOKEN_ENV]: emu.token, NODE_EXTRA_CA_CERTS: caFile };
  const targets: Target<AzureKeyVaultReceipt>[] = [];

  async function target(
    config: Partial<AzureKeyVaultConfig & CommonTargetConfig> = {},
    envOverride: NodeJS.ProcessEnv = {},
  ): Promise<Target<AzureKeyVaultReceipt>> {
    const t = await azureKeyVault.create(
      { vault: `${emu.vaultUrl}/`, secret: SECRET, ...config },
      // A fake clock: the vault's pacing lane waits out its rates and a 429's Retry-After in virtual time.
      { ...testContext({ env: { ...env, ...envOverride }, name: 'azure-key-vault' }), clock: fakeClock(Date.now()) },
    );
    targets.push(t);
    return t;
  }

  return {
    emu,
    env,
    caFile,
    target,
    async close() {
      await Promise.all(targets.map((t) => t.close?.()));
      await emu.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
