import { randomBytes } from 'node:crypto';
import { RailwayEmulator } from '../../../emulators/railway/server.ts';
import { railway } from '../../../src/targets/railway/index.ts';
import { testContext } from '../../helpers/context.ts';
import type { ConformanceHarness } from '../harness.ts';

const VAR = 'OPENAI_API_KEY';

export const harness: ConformanceHarness = {
  id: 'railway',
  async setup(opts = {}) {
    const emu = await RailwayEmulator.start({ phaseMs: 20 });
    const token = randomBytes(16).toString('hex');
    emu.addAccountToken(token);
    const seeded = emu.seedProject({
      name: 'conformance',
      environments: [{ name: 'production' }],
      services: [{ name: 'api' }, { name: 'worker' }],
      variables: { production: { api: { PORT: '8080' }, worker: { [VAR]: 'worker-value' } } },
    });
    const ids = { project: seeded.id, environment: seeded.environments.production!, service: seeded.services.api! };
    const target = await railway.create(
      { ...ids, endpoint: emu.graphqlUrl, requestTimeout: opts.requestTimeout },
      testContext({ env: { RAILWAY_API_TOKEN: token }, name: 'railway' }),
    );
    return {
      target,
      emulator: emu.server,
      seed: async (v) => emu.putVariable(ids.project, ids.environment, ids.service, VAR, v),
      peek: async () => emu.getVariables(ids.project, ids.environment, ids.service)[VAR]?.value ?? null,
      // The service runs the variables of its newest successful deployment.
      running: async () => emu.deployments(ids.service, ids.environment).find((d) => d.status === 'SUCCESS')?.snapshot[VAR] ?? null,
      readable: () => !emu.getVariables(ids.project, ids.environment, ids.service)[VAR]?.sealed,
      failNextWithRateLimit: () => emu.rateLimitNext(1),
      breakAuth: () => emu.revokeToken(token),
      writeCount: async () => emu.mutations,
      close: () => emu.stop(),
    };
  },
};
