import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, afterAll, beforeEach, describe, expect, it } from 'vitest';
import { OpenAIEmulator } from '../../emulators/openai/index.ts';
import { FlyEmulator } from '../../emulators/fly/emulator.ts';
import { RenderEmulator } from '../../emulators/render/emulator.ts';
import { SupabaseEmulator } from '../../emulators/supabase/emulator.ts';
import { runCli } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * `plan`, `rotate` and `verify` through the real CLI on the Fly, Render and Supabase targets
 * (nothing target-specific in the engine): a rotation that lands everywhere, and one whose Render
 * deploy fails, rolled back with Fly's machines and Render's service put back on the old key.
 */
const openai = new OpenAIEmulator();
let dir: string;
let oldKey: string;
let fly: FlyEmulator;
let render: RenderEmulator;
let supa: SupabaseEmulator;
let env: Record<string, string>;
let svc: string;
let ref: string;

beforeAll(async () => {
  await openai.start();
});
afterAll(async () => {
  await openai.stop();
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-paas-'));
  oldKey = testKey();
  openai.addKey(oldKey);
  fly = new FlyEmulator({ phaseMs: 20 });
  render = new RenderEmulator({ phaseMs: 20 });
  supa = new SupabaseEmulator();
  await Promise.all([fly.start(), render.start(), supa.start()]);
  fly.seedApp('api', { secrets: { OPENAI_API_KEY: oldKey }, machines: 2 });
  svc = render.seedService({ env: { OPENAI_API_KEY: oldKey } });
  ref = supa.seedProject({ secrets: { OPENAI_API_KEY: oldKey } });
  env = { FLY_API_TOKEN: fly.addToken({ apps: ['api'] }), RENDER_API_KEY: render.addToken(), SUPABASE_ACCESS_TOKEN: supa.addToken() };
  await writeFile(
    join(dir, 'targets.yaml'),
    `version: 1
key:
  name: OPENAI_API_KEY
  source: stdin
  endpoint: ${openai.endpoint}
environments:
  prod:
    targets:
      - type: supabase
        project: ${ref}
        endpoint: ${supa.url}
      - type: fly
        app: api
        endpoint: ${fly.url}
      - type: render
        service: ${svc}
        endpoint: ${render.url}/v1
`,
  );
});
afterEach(async () => {
  await Promise.all([fly.stop(), render.stop(), supa.stop()]);
  await rm(dir, { recursive: true, force: true });
});

describe('fly, render and supabase through the CLI', () => {
  it('plan names all three; rotate writes, redeploys and verifies each; verify agrees', async () => {
    const plan = await runCli(['plan'], { cwd: dir, env });
    expect(plan.code, plan.stderr).toBe(0);
    for (const t of [`supabase:${ref}`, 'fly:api', `render:${svc}`]) expect(plan.stdout).toContain(t);
    const newKey = testKey();
    openai.addKey(newKey);
    const r = await runCli(['rotate', '--new-key', 'stdin', '--yes'], { cwd: dir, env, input: newKey + '\n' });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/awaiting revocation/);
    expect(supa.secret(ref, 'OPENAI_API_KEY')).toBe(newKey);
    expect(fly.machines('api').every((m) => m.state === 'started' && m.env.OPENAI_API_KEY === newKey)).toBe(true);
    expect(render.runningEnv(svc)!.OPENAI_API_KEY).toBe(newKey);
    const v = await runCli(['verify'], { cwd: dir, env });
    expect(v.code, v.stderr + v.stdout).toBe(0);
    for (const out of [plan, r, v]) expect(out.stdout + out.stderr).not.toContain(newKey);
  }, 120_000);

  it('a failed Render deploy rolls everything back: secrets restored, Fly machines and the Render service run the old key again', async () => {
    const newKey = testKey();
    openai.addKey(newKey);
    render.failNextDeploy(svc, 'update_failed');
    const r = await runCli(['rotate', '--new-key', 'stdin', '--yes'], { cwd: dir, env, input: newKey + '\n' });
    expect(r.code, r.stderr + r.stdout).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/ended update_failed/);
    expect(supa.secret(ref, 'OPENAI_API_KEY')).toBe(oldKey);
    expect(fly.secret('api', 'OPENAI_API_KEY')).toBe(oldKey);
    expect(fly.machines('api').every((m) => m.state === 'started' && m.env.OPENAI_API_KEY === oldKey)).toBe(true);
    // Whether Fly's machines were updated forward depends on when the Render deploy failed: if they
    // were, the restore updated them again, onto the restored secrets version.
    const updates = fly.server.calls('POST', /^\/v1\/apps\/api\/machines\/[^/]+$/).length;
    expect([0, 4]).toContain(updates);
    if (updates) expect(fly.machines('api').every((m) => m.secretsVersion === fly.secretsVersion('api'))).toBe(true);
    expect(render.deploys(svc).map((d) => d.status)).toEqual(['deactivated', 'update_failed', 'live']);
    expect(render.vars(svc).OPENAI_API_KEY).toBe(oldKey);
    expect(render.runningEnv(svc)!.OPENAI_API_KEY).toBe(oldKey);
    expect(r.stdout + r.stderr).not.toContain(newKey);
  }, 120_000);
});
