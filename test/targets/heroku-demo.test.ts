import { describe, it, expect } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demo } from '../../emulators/heroku/demo.ts';
import { HerokuConfig, heroku } from '../../src/targets/heroku/index.ts';
import { parseCredentialRef } from '../../src/inventory/credentials.ts';
import { Secret } from '../../src/core/secret.ts';
import { testContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';

describe('heroku demo', () => {
  it('its targets.yaml entry parses and rotates end to end against the emulator', async () => {
    const workDir = await mkdtemp(join(tmpdir(), 'keyrot-heroku-demo-'));
    const oldKey = testKey();
    const newKey = testKey();
    const setup = await demo({ oldKey, workDir, varName: 'OPENAI_API_KEY' });
    if ('skip' in setup) throw new Error(setup.skip);
    try {
      expect(setup.targets).toHaveLength(1);
      const entry = setup.targets[0]!;
      expect(entry.type).toBe('heroku');
      expect(JSON.stringify(setup.targets)).not.toContain(Object.values(setup.env)[0]!);
      const config = HerokuConfig.parse(entry);
      const token = parseCredentialRef(String(entry.token))!;
      const t = await heroku.create({ ...config, endpoint: String(entry.endpoint), token }, testContext({ env: setup.env, name: 'demo' }));
      const pf = await t.preflight();
      expect(pf.status, pf.reason).toBe('ready');
      if (pf.current.kind === 'value') expect(pf.current.value.equals(new Secret(oldKey))).toBe(true);
      const op = { rotationId: 'rot_demo', fingerprint: new Secret(newKey).fingerprint };
      const receipt = await t.write(new Secret(newKey), op);
      expect((await t.verify(new Secret(newKey), op, receipt)).method).toBe('read-back');
      expect((await t.redeploy!(op, receipt)).method).toBe('redeploy');
    } finally {
      await setup.stop();
      await rm(workDir, { recursive: true, force: true });
    }
  });
});
