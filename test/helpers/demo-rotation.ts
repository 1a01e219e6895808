import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { DemoSetup } from '../../emulators/demo-types.ts';
import { parseCredentialRef } from '../../src/inventory/credentials.ts';
import { Secret } from '../../src/core/secret.ts';
import type { TargetDefinition, VerifyMethod } from '../../src/targets/types.ts';
import { testContext } from './context.ts';
import { testKey } from './keys.ts';

/**
 * A provider's `keyrot demo` entry, parsed by its target's schema and rotated against the demo's
 * emulator: preflight, write, verify (by `method`) and, when the target has one, redeploy. The
 * entry must reference its token, never hold it.
 */
export async function rotateDemoEntry(demo: DemoSetup, def: TargetDefinition<any>, verifyMethod: VerifyMethod): Promise<void> {
  const workDir = await mkdtemp(join(tmpdir(), `keyrot-${def.id}-demo-`));
  const newKey = testKey();
  const setup = await demo({ oldKey: testKey(), workDir, varName: 'OPENAI_API_KEY' });
  if ('skip' in setup) throw new Error(setup.skip);
  try {
    const entry = setup.targets[0]!;
    expect(JSON.stringify(setup.targets)).not.toContain(Object.values(setup.env)[0]!);
    const config = def.schema.parse(entry);
    const t = await def.create({ ...config, endpoint: String(entry.endpoint), token: parseCredentialRef(String(entry.token))! }, testContext({ env: setup.env, name: 'demo' }));
    expect((await t.preflight()).status).toBe('ready');
    const op = { rotationId: 'rot_demo', fingerprint: new Secret(newKey).fingerprint };
    const receipt = await t.write(new Secret(newKey), op);
    expect((await t.verify(new Secret(newKey), op, receipt)).method).toBe(verifyMethod);
    if (t.redeploy) expect((await t.redeploy(op, receipt)).method).toBe('redeploy');
  } finally {
    await setup.stop();
    await rm(workDir, { recursive: true, force: true });
  }
}
