import { renameSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { file } from '../../../src/targets/file/index.ts';
import { testContext } from '../../helpers/context.ts';
import type { ConformanceHarness } from '../harness.ts';

export const harness: ConformanceHarness = {
  id: 'file',
  noAuth: true,
  noEmulator: 'local files: no provider API',
  async setup() {
    const dir = await mkdtemp(join(tmpdir(), 'keyrot-conf-file-'));
    const path = join(dir, 'openai_api_key');
    const target = await file.create({ path: 'openai_api_key' }, testContext({ baseDir: dir, name: 'file' }));
    return {
      target,
      seed: (v) => writeFile(path, v + '\n', { mode: 0o600 }),
      peek: async () => (await readFile(path, 'utf8').catch(() => null))?.replace(/\n$/, '') ?? null,
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
