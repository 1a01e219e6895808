import { GitHubEmulator } from '../../../emulators/github-actions/emulator.ts';
import { githubActions } from '../../../src/targets/github-actions/index.ts';
import { testContext } from '../../helpers/context.ts';
import type { ConformanceHarness } from '../harness.ts';

const REPO = 'conformance/app';
const VAR = 'OPENAI_API_KEY';

/** A repository Actions secret: write-only, sealed to the repository's public key, verified by metadata. */
export const harness: ConformanceHarness = {
  id: 'github-actions',
  async setup(opts = {}) {
    const emu = new GitHubEmulator();
    await emu.start();
    const token = emu.addToken({ repos: [REPO] });
    emu.seedRepo(REPO);
    emu.setSecret({ repo: REPO }, 'OTHER', 'neighbour');
    const target = await githubActions.create({ repo: REPO, endpoint: emu.url, requestTimeout: opts.requestTimeout }, testContext({ name: 'github-actions', env: { GITHUB_TOKEN: token } }));
    return {
      target,
      emulator: emu.server,
      seed: async (v) => emu.setSecret({ repo: REPO }, VAR, v),
      // GitHub opens the sealed value on its side; so does the emulator.
      peek: async () => emu.peekSecret({ repo: REPO }, VAR)?.value ?? null,
      opens: (rawBody) => emu.openSealed(rawBody),
      failNextWithRateLimit: () => emu.failNextWithSecondaryLimit({ retryAfterSeconds: 1 }),
      breakAuth: () => emu.revokeToken(token),
      writeCount: async () => emu.writeCount(),
      close: () => emu.stop(),
    };
  },
};
