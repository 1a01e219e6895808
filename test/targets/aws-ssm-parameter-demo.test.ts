import { describe, it, expect } from 'vitest';
import { demo } from '../../emulators/aws-ssm-parameter/demo.ts';
import { awsSsmParameter } from '../../src/targets/aws-ssm-parameter/index.ts';
import { Secret } from '../../src/core/secret.ts';
import { testContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';

describe('aws-ssm-parameter demo', () => {
  it('both targets.yaml entries (latest, and label: live) parse and rotate end to end against the emulator', async () => {
    const oldKey = testKey();
    const newKey = testKey();
    const setup = await demo({ oldKey, workDir: '/nonexistent', varName: 'OPENAI_API_KEY' });
    if ('skip' in setup) throw new Error(setup.skip);
    try {
      expect(setup.targets.map((e) => e.type)).toEqual(['aws-ssm-parameter', 'aws-ssm-parameter']);
      expect(JSON.stringify(setup.targets)).not.toContain(setup.env.AWS_SECRET_ACCESS_KEY!);
      for (const [i, { type: _type, endpoint, ...entry }] of setup.targets.entries()) {
        const t = await awsSsmParameter.create({ ...awsSsmParameter.schema.parse(entry), endpoint: String(endpoint) }, testContext({ env: setup.env, name: `demo-${i}` }));
        try {
          const pf = await t.preflight();
          expect(pf.status, pf.reason).toBe('ready');
          expect(pf.current.kind === 'value' && pf.current.value.equals(new Secret(oldKey))).toBe(true);
          const op = { rotationId: `rot_demo_${i}`, fingerprint: new Secret(newKey).fingerprint };
          const receipt = await t.write(new Secret(newKey), op);
          expect((await t.verify(new Secret(newKey), op, receipt)).method).toBe('read-back');
        } finally {
          await t.close?.();
        }
      }
    } finally {
      await setup.stop();
    }
  });
});
