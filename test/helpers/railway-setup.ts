import { randomBytes } from 'node:crypto';
import { systemClock, type Clock } from '../../src/runtime/clock.ts';
import { RailwayEmulator, type RailwayEmulatorOptions } from '../../emulators/railway/server.ts';
import { railway, type RailwayConfig } from '../../src/targets/railway/index.ts';
import type { Target } from '../../src/targets/types.ts';
import { testContext } from './context.ts';
import type { RailwayReceipt } from '../../src/targets/railway/index.ts';

/** Real time, but waits between deployment polls are capped so lifecycle tests stay fast. */
const quickClock: Clock = { now: () => Date.now(), sleep: (ms, signal) => systemClock.sleep(Math.min(ms, 25), signal) };

export interface RailwayFixture {
  emu: RailwayEmulator;
  token: string;
  ids: { project: string; environment: string; service: string; other: string; staging: string };
  target: Target<RailwayReceipt>;
  make(config?: Partial<RailwayConfig>, env?: NodeJS.ProcessEnv, clock?: Clock): Promise<Target<RailwayReceipt>>;
}

/**
 * A project with two environments (production, staging) and two services (api, worker); the api
 * service in production is the target. `vars` seeds api/production, `others` everything else.
 */
export async function railwayFixture(
  opts: {
    vars?: Record<string, string | { value: string; sealed?: boolean }>;
    emulator?: RailwayEmulatorOptions;
    deployed?: boolean;
    clock?: Clock;
  } = {},
): Promise<RailwayFixture> {
  const emu = await RailwayEmulator.start({ phaseMs: 40, ...opts.emulator });
  const token = randomBytes(16).toString('hex');
  emu.addAccountToken(token);
  const seeded = emu.seedProject({
    name: 'nomora',
    environments: [{ name: 'production' }, { name: 'staging' }],
    services: [{ name: 'api' }, { name: 'worker' }],
    variables: {
      production: {
        api: { PORT: '8080', DATABASE_URL: 'postgres://db/prod', ...opts.vars },
        worker: { OPENAI_API_KEY: 'worker-value', QUEUE: 'jobs' },
        '': { SHARED_FLAG: 'on' },
      },
      staging: { api: { OPENAI_API_KEY: 'staging-value' } },
    },
    ...(opts.deployed === false ? { deployed: false } : {}),
  });
  const ids = {
    project: seeded.id,
    environment: seeded.environments.production!,
    staging: seeded.environments.staging!,
    service: seeded.services.api!,
    other: seeded.services.worker!,
  };
  const make = (config: Partial<RailwayConfig> = {}, env: NodeJS.ProcessEnv = { RAILWAY_API_TOKEN: token }, clock: Clock = opts.clock ?? quickClock) =>
    railway.create(
      { project: ids.project, environment: ids.environment, service: ids.service, endpoint: emu.graphqlUrl, ...config },
      { ...testContext({ env, name: 'railway' }), clock },
    );
  return { emu, token, ids, target: await make(), make };
}
