import { describe, it, expect } from 'vitest';
import { demo } from '../../emulators/vault/demo.ts';
import { vault } from '../../src/targets/vault/index.ts';
import { parseCredentialRef } from '../../src/inventory/credentials.ts';
import { Secret } from '../../src/core/secret.ts';
import { testContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';

describe('vault demo', () => {
  it('its targets.yaml entry parses and rotates end to end against the emulator, and rolls back', async () => {
    const oldKey = testKey();
    const newKey = testKey();
    const setup = await demo({ oldKey, workDir: '/nonexistent', varName: 'OPENAI_API_KEY' });
    if ('skip' in setup) throw new Error(setup.skip);
    try {
      expect(setup.targets).toHaveLength(1);
      const { type, token, ...entry } = setup.targets[0]!;
      expect(type).toBe('vault');
      expect(JSON.stringify(setup.targets)).not.toContain(Object.values(setup.env)[0]!);
      const t = await vault.create({ ...vault.schema.parse(entry), token: parseCredentialRef(String(token))! }, testContext({ env: setup.env, name: 'demo', varName: 'OPENAI_API_KEY' }));
      const pf = await t.preflight();
      expect(pf.status, pf.reason).toBe('ready');
      expect(pf.current.kind === 'value' && pf.current.value.equals(new Secret(oldKey))).toBe(true);
      const op = { rotationId: 'rot_demo', fingerprint: new Secret(newKey).fingerprint };
      const receipt = await t.write(new Secret(newKey), op);
      expect((await t.verify(new Secret(newKey), op, receipt)).method).toBe('read-back');
      await t.restore(new Secret(oldKey), op, receipt);
      const back = await t.read();
      expect(back.kind === 'value' && back.value.equals(new Secret(oldKey))).toBe(true);
    } finally {
      await setup.stop();
    }
  });
});
