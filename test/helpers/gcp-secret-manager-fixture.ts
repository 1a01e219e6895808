import { GcpSecretManagerEmulator } from '../../emulators/gcp-secret-manager/emulator.ts';
import { gcpSecretManager } from '../../src/targets/gcp-secret-manager/index.ts';
import type { Target } from '../../src/targets/types.ts';
import { testContext } from './context.ts';
import { fakeClock } from '../../src/runtime/clock.ts';
import type { GcpSecretManagerReceipt } from '../../src/targets/gcp-secret-manager/index.ts';

export const PROJECT = 'keyrot-test';
export const SECRET = 'openai-api-key';

export interface GcpFixture {
  emu: GcpSecretManagerEmulator;
  target: Target<GcpSecretManagerReceipt>;
  close(): Promise<void>;
}

/**
 * A loopback Secret Manager emulator and a target built from the real definition (index.ts →
 * adapter.ts → @google-cloud/secret-manager), authenticated with the emulator's token through
 * `token: env:GCP_ACCESS_TOKEN`.
 */
export async function gcpFixture(opts: { secret?: string; project?: string; requestTimeout?: string } = {}): Promise<GcpFixture> {
  const emu = new GcpSecretManagerEmulator();
  await emu.start();
  const env = { GCP_ACCESS_TOKEN: emu.token };
  const target = await gcpSecretManager.create(
    {
      project: opts.project ?? PROJECT,
      secret: opts.secret ?? SECRET,
      endpoint: emu.endpoint,
      token: { kind: 'env', name: 'GCP_ACCESS_TOKEN', raw: 'env:GCP_ACCESS_TOKEN' },
      requestTimeout: opts.requestTimeout,
    },
    // A fake clock: the target's pacing lane waits out RESOURCE_EXHAUSTED's RetryInfo in virtual time.
    { ...testContext({ env, name: 'gcp' }), clock: fakeClock(Date.now()) },
  );
  return {
    emu,
    target,
    async close() {
      await target.close?.();
      await emu.stop();
    },
  };
}
