import { describe, it, expect } from 'vitest';
import { demo } from '../../emulators/aws-ssm-parameter/demo.ts';
import { demo as secretsManagerDemo } from '../../emulators/aws-secrets-manager/demo.ts';
import { awsSecretsManager } from '../../src/targets/aws-secrets-manager/index.ts';
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

  it('beside the Secrets Manager demo, one merged environment (as keyrot demo builds it) reaches both emulators', async () => {
    const oldKey = testKey();
    const opts = { oldKey, workDir: '/nonexistent', varName: 'OPENAI_API_KEY' };
    const [sm, ssm] = [await secretsManagerDemo(opts), await demo(opts)];
    if ('skip' in sm || 'skip' in ssm) throw new Error('an AWS demo skipped');
    try {
      const env = { ...sm.env, ...ssm.env };
      const defs = { 'aws-secrets-manager': awsSecretsManager, 'aws-ssm-parameter': awsSsmParameter } as const;
      for (const [i, { type, endpoint, ...entry }] of [...sm.targets, ...ssm.targets].entries()) {
        const def = defs[type as keyof typeof defs];
        const t = await def.create({ ...(def.schema.parse(entry) as any), endpoint: String(endpoint) }, testContext({ env, name: `demo-${i}` }));
        try {
          const pf = await t.preflight();
          expect(pf.status, `${type}: ${pf.reason}`).toBe('ready');
        } finally {
          await t.close?.();
        }
      }
    } finally {
      await sm.stop();
      await ssm.stop();
    }
  });
});
