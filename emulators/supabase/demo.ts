import type { DemoSetup } from '../demo-types.ts';
import { SupabaseEmulator } from './emulator.ts';

/**
 * `keyrot demo`: a Supabase project whose Edge Functions read the key as a secret. The API lists
 * only a SHA-256 digest of each secret, so the demo shows verification by digest.
 */
export const demo: DemoSetup = async ({ oldKey, varName }) => {
  const emu = new SupabaseEmulator();
  await emu.start();
  // A throw-away token, generated now, valid only against this emulator.
  const token = emu.addToken();
  const project = emu.seedProject({ name: 'keyrot-demo-functions', secrets: { STRIPE_WEBHOOK_SECRET: 'whsec_demo', [varName]: oldKey } });
  return {
    targets: [{ type: 'supabase', project, endpoint: emu.url, token: 'env:KEYROT_DEMO_SUPABASE_TOKEN' }],
    env: { KEYROT_DEMO_SUPABASE_TOKEN: token },
    description: `Supabase Management API emulator at ${emu.url} (project ${project}, Edge Function secrets listed by SHA-256 digest)`,
    stop: () => emu.stop(),
  };
};
