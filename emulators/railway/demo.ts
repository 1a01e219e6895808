import { randomBytes } from 'node:crypto';
import type { DemoSetup } from '../demo-types.ts';
import { RailwayEmulator } from './server.ts';

/**
 * `keyrot demo`: a Railway project (production environment, api and worker services) whose api
 * service holds the key; the rotation upserts it with skipDeploys and redeploys api once.
 */
export const demo: DemoSetup = async ({ oldKey, varName }) => {
  const emu = await RailwayEmulator.start({ phaseMs: 500 });
  const token = randomBytes(16).toString('hex');
  emu.addAccountToken(token);
  const seeded = emu.seedProject({
    name: 'nomora',
    environments: [{ name: 'production' }],
    services: [{ name: 'api' }, { name: 'worker' }],
    variables: {
      production: {
        api: { [varName]: oldKey, PORT: '8080', DATABASE_URL: 'postgres://app@db.railway.internal:5432/app' },
        worker: { QUEUE: 'jobs' },
      },
    },
  });
  return {
    targets: [
      {
        type: 'railway',
        project: seeded.id,
        environment: seeded.environments.production,
        service: seeded.services.api,
        endpoint: emu.graphqlUrl,
        token: 'env:KEYROT_DEMO_RAILWAY_TOKEN',
      },
    ],
    env: { KEYROT_DEMO_RAILWAY_TOKEN: token },
    description: `Railway GraphQL emulator on ${emu.graphqlUrl}: project nomora, service api (${varName}), one redeploy`,
    stop: () => emu.stop(),
  };
};
