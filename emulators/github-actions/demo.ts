import type { DemoSetup } from '../demo-types.ts';
import { GitHubEmulator } from './emulator.ts';

/**
 * `keyrot demo`: a repository whose CI keeps the key as an environment secret (write-only,
 * sealed to the repository's public key), with a smoke workflow keyrot dispatches after the write
 * and waits for: CI proving it works with the new key is this target's redeploy.
 */
export const demo: DemoSetup = async ({ oldKey, varName }) => {
  const emu = new GitHubEmulator({ runMs: 600 });
  await emu.start();
  // A throw-away token, generated now, valid only against this emulator.
  const token = emu.addToken({ repos: ['nomora/paw-api'] });
  emu.seedRepo('nomora/paw-api', { environments: ['production'], workflows: [{ file: 'smoke.yml', name: 'Smoke test', environment: 'production' }] });
  emu.setSecret({ repo: 'nomora/paw-api', environment: 'production' }, varName, oldKey);
  emu.setSecret({ repo: 'nomora/paw-api' }, 'DEPLOY_HOOK_URL', 'https://deploy.example.com/hook');
  return {
    targets: [
      {
        type: 'github-actions',
        repo: 'nomora/paw-api',
        environment: 'production',
        dispatch: { workflow: 'smoke.yml', ref: 'main' },
        endpoint: emu.url,
        token: 'env:KEYROT_DEMO_GITHUB_TOKEN',
      },
    ],
    env: { KEYROT_DEMO_GITHUB_TOKEN: token },
    description: `GitHub API emulator at ${emu.url} (nomora/paw-api, environment secret in production, smoke workflow dispatched after the write)`,
    stop: () => emu.stop(),
  };
};
