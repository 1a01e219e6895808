import { randomBytes } from 'node:crypto';
import type { DemoSetup } from '../demo-types.ts';
import { VercelEmulator } from './server.ts';

/**
 * `keyrot demo`: a Vercel project whose key is a sensitive variable for production and preview
 * (the Vercel CLI's default for those targets), so the rotation shows the write-only path:
 * metadata verification, then a production redeploy watched until READY.
 */
export const demo: DemoSetup = async ({ oldKey, varName }) => {
  const emu = await VercelEmulator.start({ queuedMs: 400, buildingMs: 1200 });
  const token = `vcp_${randomBytes(16).toString('hex')}`;
  emu.addToken(token);
  emu.seedProject({
    name: 'nomora-paw',
    envs: [
      { key: varName, value: oldKey, type: 'sensitive', target: ['production', 'preview'] },
      { key: 'DATABASE_URL', value: 'postgres://app@db.internal:5432/app', type: 'encrypted', target: ['production'] },
      { key: 'NEXT_PUBLIC_SITE_URL', value: 'https://nomora-paw.example', type: 'plain', target: ['production', 'preview', 'development'] },
    ],
  });
  return {
    targets: [
      {
        type: 'vercel',
        project: 'nomora-paw',
        targets: ['production', 'preview'],
        redeploy: true,
        endpoint: emu.url,
        token: 'env:KEYROT_DEMO_VERCEL_TOKEN',
      },
    ],
    env: { KEYROT_DEMO_VERCEL_TOKEN: token },
    description: `Vercel API emulator on ${emu.url}: project nomora-paw, sensitive ${varName} (production + preview), production redeploy`,
    stop: () => emu.stop(),
  };
};
