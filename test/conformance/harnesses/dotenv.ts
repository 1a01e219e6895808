import { renameSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dotenv } from '../../../src/targets/dotenv/index.ts';
import { getVar } from '../../../src/targets/dotenv/parse.ts';
import { testContext } from '../../helpers/context.ts';
import type { ConformanceHarness } from '../harness.ts';

export const harness: ConformanceHarness = {
  id: 'dotenv',
  noAuth: true,
  noEmulator: 'local files: no provider API',
  async setup() {
    const dir = await mkdtemp(join(tmpdir(), 'keyrot-conf-dotenv-'));
    const path = join(dir, '.env');
    const target = await dotenv.create({ path: '.env' }, testContext({ baseDir: dir, name: 'dotenv' }));
    return {
      target,
      seed: (v) => writeFile(path, `# app\nOTHER=1\nOPENAI_API_KEY=${v}\n`, { mode: 0o600 }),
      peek: async () => getVar(await readFile(path, 'utf8'), 'OPENAI_API_KEY'),
      failNextWithRateLimit() {},
      breakAuth() {},
      breakLocally() {
        renameSync(dir, `${dir}.gone`);
        return () => renameSync(`${dir}.gone`, dir);
      },
      close: () => rm(dir, { recursive: true, force: true }),
    };
  },
};
