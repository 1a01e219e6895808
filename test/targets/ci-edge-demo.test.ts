import { describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demo as githubDemo } from '../../emulators/github-actions/demo.ts';
import { demo as cloudflareDemo } from '../../emulators/cloudflare-workers/demo.ts';
import { GitHubActionsConfig, githubActions } from '../../src/targets/github-actions/index.ts';
import { CloudflareWorkersConfig, cloudflareWorkers } from '../../src/targets/cloudflare-workers/index.ts';
import { parseCredentialRef } from '../../src/inventory/credentials.ts';
import { Secret } from '../../src/core/secret.ts';
import type { DemoSetup } from '../../emulators/demo-types.ts';
import type { TargetDefinition } from '../../src/targets/types.ts';
import type { z } from 'zod';
import { testContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';

/** Each demo's targets.yaml entry parses and rotates end to end against its emulator. */
const cases: Array<[string, DemoSetup, TargetDefinition<any>, z.ZodType, string]> = [
  ['github-actions', githubDemo, githubActions, GitHubActionsConfig, 'redeploy'],
  ['cloudflare-workers', cloudflareDemo, cloudflareWorkers, CloudflareWorkersConfig, 'metadata'],
];

describe.each(cases)('%s demo', (id, setupDemo, definition, schema, lastMethod) => {
  it('its entry parses and rotates end to end against the emulator', async () => {
    const workDir = await mkdtemp(join(tmpdir(), `keyrot-${id}-demo-`));
    const oldKey = testKey();
    const newKey = testKey();
    const setup = await setupDemo({ oldKey, workDir, varName: 'OPENAI_API_KEY' });
    if ('skip' in setup) throw new Error(setup.skip);
    try {
      expect(setup.targets).toHaveLength(1);
      const entry = setup.targets[0]!;
      expect(entry.type).toBe(id);
      expect(JSON.stringify(setup.targets)).not.toContain(Object.values(setup.env)[0]!);
      const config = schema.parse(Object.fromEntries(Object.entries(entry).filter(([k]) => !['type', 'endpoint', 'token'].includes(k))));
      const token = parseCredentialRef(String(entry.token))!;
      const t = await definition.create({ ...(config as object), endpoint: String(entry.endpoint), token }, testContext({ env: setup.env, name: 'demo' }));
      const pf = await t.preflight();
      expect(pf.status, pf.reason).toBe('ready');
      const op = { rotationId: 'rot_demo', fingerprint: new Secret(newKey).fingerprint };
      const receipt = await t.write(new Secret(newKey), op);
      expect((await t.verify(new Secret(newKey), op, receipt)).method).toBe('metadata');
      const last = t.redeploy ? await t.redeploy(op, receipt, 'write') : await t.verify(new Secret(newKey), op, receipt);
      expect(last.method).toBe(lastMethod);
    } finally {
      await setup.stop();
      await rm(workDir, { recursive: true, force: true });
    }
  }, 30_000);
});
