import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { VercelEmulator } from '../../emulators/vercel/server.ts';
import { Secret } from '../../src/core/secret.ts';
import { runCli } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

const VAR = 'OPENAI_API_KEY';
let cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

/**
 * Vercel limits each endpoint per window and says so on every answer (X-RateLimit-Remaining,
 * X-RateLimit-Reset; a 429 once spent, whose reset is the time to retry). A budget far below what
 * the fleet needs in one window: keyrot paces on the headers, ends with every project written, and
 * sends no request the limit does not allow (the emulator answers none of them 429).
 */
it('a fleet rotation under a per-endpoint rate limit paces on the headers: every target written, no 429', async () => {
  const LIMIT = 4;
  const PROJECTS = 8;
  const emu = await VercelEmulator.start({ rateLimit: { limit: LIMIT, windowMs: 1_000 } });
  cleanup.push(() => emu.stop());
  const token = `vcp_${randomBytes(16).toString('hex')}`;
  emu.addToken(token);
  const oldKey = testKey();
  const newKey = testKey();
  const names = Array.from({ length: PROJECTS }, (_, i) => `paced-${i}`);
  for (const name of names) emu.seedProject({ name, envs: [{ key: VAR, value: oldKey, type: 'encrypted', target: ['production'] }] });
  const dir = await mkdtemp(join(tmpdir(), 'keyrot-pacing-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const targets = names.map((p) => `      - { type: vercel, project: ${p}, endpoint: "${emu.url}", token: "env:VERCEL_TOKEN" }`).join('\n');
  await writeFile(join(dir, 'targets.yaml'), `version: 1\nkey:\n  verify: false\n  source: env:NEW_KEY\nenvironments:\n  fleet:\n    targets:\n${targets}\n`);

  const r = await runCli(['rotate', '-e', 'fleet', '--yes', '--json'], { cwd: dir, env: { VERCEL_TOKEN: token, NEW_KEY: newKey } });
  expect(r.code, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ outcome: 'awaiting-revocation' });
  for (const name of names) expect(emu.getEnv(name, VAR).map((e) => e.value)).toEqual([newKey]);
  // The fleet needed several windows of each endpoint's budget, and spent none past it.
  const reads = emu.server.requests.filter((q) => q.method === 'GET' && /^\/v1\/projects\/[^/]+\/env\/[^/]+$/.test(q.path));
  expect(reads.length).toBeGreaterThan(2 * LIMIT);
  expect(emu.server.requests.filter((q) => q.status === 429)).toEqual([]);
  expect(r.stdout + r.stderr).not.toContain(newKey);
  expect(r.stdout + r.stderr).not.toContain(new Secret(oldKey).reveal());
});
