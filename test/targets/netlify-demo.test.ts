import { describe, it, expect } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demo } from '../../emulators/netlify/demo.ts';
import { NetlifyConfig, netlify } from '../../src/targets/netlify/index.ts';
import { parseCredentialRef } from '../../src/inventory/credentials.ts';
import { Secret } from '../../src/core/secret.ts';
import { testContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';

describe('netlify demo', () => {
  it('one target rotates the secret in production AND deploy-preview end to end against the emulator', async () => {
    const workDir = await mkdtemp(join(tmpdir(), 'keyrot-netlify-demo-'));
    const oldKey = testKey();
    const newKey = testKey();
    const setup = await demo({ oldKey, workDir, varName: 'OPENAI_API_KEY' });
    if ('skip' in setup) throw new Error(setup.skip);
    try {
      expect(setup.targets.map((e) => e.context)).toEqual([['production', 'deploy-preview']]);
      const op = { rotationId: 'rot_demo', fingerprint: new Secret(newKey).fingerprint };
      for (const entry of setup.targets) {
        const config = NetlifyConfig.parse(entry);
        expect(netlify.describe(config)).toBe(`${config.site}[production,deploy-preview]`);
        const token = parseCredentialRef(String(entry.token))!;
        const t = await netlify.create({ ...config, endpoint: String(entry.endpoint), token }, testContext({ env: setup.env, name: 'demo-netlify' }));
        const pf = await t.preflight();
        expect(pf.status, pf.reason).toBe('ready');
        expect(pf.current.kind).toBe('unreadable');
        expect(pf.notes!.join('\n')).toMatch(/production and deploy-preview values of OPENAI_API_KEY .* one single-context PATCH per context/);
        const receipt = await t.write(new Secret(newKey), op);
        expect(receipt.contexts).toEqual(['production', 'deploy-preview']);
        expect((await t.verify(new Secret(newKey), op, receipt)).method).toBe('metadata');
        if (t.redeploy) expect((await t.redeploy(op, receipt)).method).toBe('redeploy');
      }
    } finally {
      await setup.stop();
      await rm(workDir, { recursive: true, force: true });
    }
  });
});
