import type { DemoSetup } from '../demo-types.ts';
import { VaultEmulator } from './emulator.ts';

/**
 * `keyrot demo`: a loopback Vault with a KV v2 secret holding the old key next to other fields
 * (which must survive), and a least-privilege token generated now (read/create/update on that one
 * secret), valid only against this emulator.
 */
export const demo: DemoSetup = async ({ oldKey, varName }) => {
  const emu = new VaultEmulator();
  await emu.start();
  const path = 'keyrot-demo/api';
  emu.seed(path, { DATABASE_URL: 'postgres://app@db.internal:5432/app', [varName]: oldKey, LOG_LEVEL: 'info' });
  const token = emu.addToken({ rules: [{ path: `secret/data/${path}`, capabilities: ['read', 'create', 'update'] }] });
  return {
    targets: [{ type: 'vault', address: emu.url, mount: 'secret', path, token: 'env:KEYROT_DEMO_VAULT_TOKEN' }],
    env: { KEYROT_DEMO_VAULT_TOKEN: token },
    description: `Vault emulator (KV v2, check-and-set) at ${emu.url}: secret/${path} field ${varName}`,
    stop: () => emu.stop(),
  };
};
