import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dockerCompose } from '../../../src/targets/docker-compose/index.ts';
import { testContext } from '../../helpers/context.ts';
import { composeDocker, composeFixture, type ComposeFixture } from '../../helpers/compose.ts';
import { catInContainer } from '../../helpers/docker-engine.ts';
import type { ConformanceHarness } from '../harness.ts';

/**
 * docker-compose joins the suite against the REAL test Engine: one running busybox container of
 * service `api` bind-mounts the key file, as Compose mounts a `secrets:` file.
 *
 * - peek reads the host file (the target's store); running() what the container reads (cat inside it).
 * - failNextWithRateLimit / breakAuth: none. The Engine has no rate limits and the socket no
 *   credentials (`noAuth`); its deadline cases are in test/targets/docker-secret-engine.test.ts
 *   (the same client).
 */
const engine = await composeDocker();

export const harness: ConformanceHarness = {
  id: 'docker-compose',
  noAuth: true,
  noEmulator: 'a real Docker Engine and a local file: no provider API to fault',
  ...('skip' in engine ? { skip: engine.skip } : {}),
  async setup() {
    if ('skip' in engine) throw new Error(engine.skip);
    const fx: ComposeFixture = await composeFixture(engine);
    const path = join(fx.dir, 'openai_api_key');
    const target = await dockerCompose.create(
      { project: fx.project, file: 'openai_api_key', services: ['api'] },
      testContext({ baseDir: fx.dir, env: engine.env, name: 'docker-compose' }),
    );
    return {
      target,
      async seed(value) {
        await writeFile(path, value + '\n', { mode: 0o600 });
        await fx.container({ service: 'api', cmd: ['sh', '-c', 'exec sleep 3600'], binds: [{ source: path, target: '/run/secrets/openai_api_key' }] });
      },
      peek: async () => (await readFile(path, 'utf8').catch(() => null))?.replace(/\n$/, '') ?? null,
      // What the running container reads from its mount (cat inside it, through the Engine's exec).
      running: async () => {
        const c = await fx.serviceContainer('api');
        if (!c?.State?.Running) return null;
        return (await catInContainer(engine, c.Id, '/run/secrets/openai_api_key')).replace(/\r?\n$/, '');
      },
      failNextWithRateLimit() {},
      breakAuth() {},
      async close() {
        await target.close?.();
        await fx.close();
      },
    };
  },
};
