import { randomBytes } from 'node:crypto';
import { systemClock, type Clock } from '../../src/runtime/clock.ts';
import { VercelEmulator, type VercelEmulatorOptions, type VercelEnvSeed } from '../../emulators/vercel/server.ts';
import { vercel, type VercelConfig } from '../../src/targets/vercel/index.ts';
import type { Target } from '../../src/targets/types.ts';
import { testContext } from './context.ts';
import type { VercelReceipt } from '../../src/targets/vercel/index.ts';

/** Real time, but waits between deployment polls are capped so lifecycle tests stay fast. */
export const quickClock: Clock = { now: () => Date.now(), sleep: (ms, signal) => systemClock.sleep(Math.min(ms, 25), signal) };

export interface VercelFixture {
  emu: VercelEmulator;
  token: string;
  target: Target<VercelReceipt>;
  project: { id: string; name: string };
  make(config?: Partial<VercelConfig>, env?: NodeJS.ProcessEnv, clock?: Clock): Promise<Target<VercelReceipt>>;
}

/** An emulator with one project (and its envs), a token, and a target built from the definition. */
export async function vercelFixture(
  opts: { envs?: VercelEnvSeed[]; config?: Partial<VercelConfig>; emulator?: VercelEmulatorOptions; team?: { id: string; slug: string }; clock?: Clock } = {},
): Promise<VercelFixture> {
  const emu = await VercelEmulator.start({ queuedMs: 30, buildingMs: 60, ...opts.emulator });
  const token = `vcp_${randomBytes(16).toString('hex')}`;
  emu.addToken(token, opts.team ? [opts.team.id] : []);
  const project = emu.seedProject({ name: 'nomora-paw', envs: opts.envs ?? [], ...(opts.team ? { team: opts.team } : {}) });
  const make = (config: Partial<VercelConfig> = {}, env: NodeJS.ProcessEnv = { VERCEL_TOKEN: token }, clock: Clock = opts.clock ?? quickClock) =>
    vercel.create(
      { project: 'nomora-paw', endpoint: emu.url, ...(opts.team ? { team: opts.team.id } : {}), ...opts.config, ...config },
      { ...testContext({ env, name: 'vercel' }), clock },
    );
  return { emu, token, project, target: await make(), make };
}
