import { awsSecretsManager } from '../../../src/targets/aws-secrets-manager/index.ts';
import { AwsSecretsManagerEmulator } from '../../../emulators/aws-secrets-manager/emulator.ts';
import { testContext } from '../../helpers/context.ts';
import type { ConformanceHarness } from '../harness.ts';

const SECRET = 'conformance/openai-api-key';

export const harness: ConformanceHarness = {
  id: 'aws-secrets-manager',
  async setup(opts = {}) {
    const emu = new AwsSecretsManagerEmulator();
    await emu.start();
    const config = awsSecretsManager.schema.parse({ secret: SECRET, region: 'us-east-1' });
    const target = await awsSecretsManager.create(
      { ...config, endpoint: emu.url, requestTimeout: opts.requestTimeout },
      testContext({
        name: 'aws-secrets-manager',
        env: { AWS_ACCESS_KEY_ID: emu.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: emu.credentials.secretAccessKey },
      }),
    );
    return {
      target,
      emulator: emu.server,
      seed: async (v) => {
        emu.seed(SECRET, v);
      },
      // The write stages the key as AWSPENDING and verify promotes it to AWSCURRENT (two-phase,
      // see the target README). "What the provider holds" for this rotation is therefore the
      // value staged on top of AWSCURRENT (an AWSPENDING version newer than it) when there is
      // one, else AWSCURRENT. After verify AWSPENDING stays on the promoted version (the same
      // value); restore removes it. A seed over an earlier rotation (the fault matrix seeds every
      // cell) moves AWSCURRENT past the version that rotation left AWSPENDING on: that older
      // version is not this rotation's.
      peek: async () => {
        const versions = emu.versions(SECRET); // oldest first
        const current = versions.findIndex((v) => v.stages.includes('AWSCURRENT'));
        const pending = versions.findIndex((v) => v.stages.includes('AWSPENDING'));
        return versions[Math.max(current, pending)]?.value ?? null;
      },
      failNextWithRateLimit: () => emu.throttleNext(1),
      breakAuth: () => emu.revokeCredentials(),
      writeCount: async () => emu.versions(SECRET).length,
      close: async () => {
        await target.close?.();
        await emu.stop();
      },
    };
  },
};
