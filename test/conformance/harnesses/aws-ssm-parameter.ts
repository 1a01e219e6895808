import { awsSsmParameter } from '../../../src/targets/aws-ssm-parameter/index.ts';
import { AwsSsmParameterEmulator } from '../../../emulators/aws-ssm-parameter/emulator.ts';
import { testContext } from '../../helpers/context.ts';
import type { ConformanceHarness } from '../harness.ts';

const PARAMETER = '/conformance/openai-api-key';

export const harness: ConformanceHarness = {
  id: 'aws-ssm-parameter',
  async setup(opts = {}) {
    const emu = new AwsSsmParameterEmulator();
    await emu.start();
    const config = awsSsmParameter.schema.parse({ parameter: PARAMETER, region: 'us-east-1' });
    const target = await awsSsmParameter.create(
      { ...config, endpoint: emu.url, requestTimeout: opts.requestTimeout },
      testContext({
        name: 'aws-ssm-parameter',
        env: { AWS_ACCESS_KEY_ID: emu.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: emu.credentials.secretAccessKey },
      }),
    );
    return {
      target,
      emulator: emu.server,
      seed: async (v) => {
        emu.seed(PARAMETER, v);
      },
      // Consumers read the latest version.
      peek: async () => emu.value(PARAMETER) ?? null,
      failNextWithRateLimit: () => emu.throttleNext(1),
      breakAuth: () => emu.revokeCredentials(),
      writeCount: async () => emu.versions(PARAMETER).length,
      close: async () => {
        await target.close?.();
        await emu.stop();
      },
    };
  },
};
