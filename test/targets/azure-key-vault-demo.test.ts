import { describe, it, expect } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { demo } from '../../emulators/azure-key-vault/demo.ts';
import { azureKeyVault } from '../../src/targets/azure-key-vault/index.ts';
import { parseCredentialRef } from '../../src/inventory/credentials.ts';
import { Secret } from '../../src/core/secret.ts';
import { testContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../../', import.meta.url));

describe('azure-key-vault: demo setup', () => {
  it('starts a seeded emulator whose targets.yaml entry rotates end to end, in-process', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyrot-akv-demo-'));
    const oldKey = testKey();
    const setup = await demo({ oldKey, workDir: dir, varName: 'OPENAI_API_KEY' });
    if ('skip' in setup) throw new Error(setup.skip);
    try {
      expect(setup.targets).toHaveLength(1);
      const entry = setup.targets[0]!;
      expect(entry).toMatchObject({ type: 'azure-key-vault', secret: 'openai-api-key' });
      expect(String(entry.vault)).toMatch(/^https:\/\/keyrot-demo\.vault\.localhost:\d+\/$/);
      expect(setup.description).toContain('Azure Key Vault emulator');
      const parsed = azureKeyVault.schema.parse({ vault: entry.vault, secret: entry.secret });
      const token = parseCredentialRef(String(entry.token))!;
      const target = await azureKeyVault.create({ ...parsed, token }, testContext({ env: { ...setup.env }, name: 'demo' }));
      const pf = await target.preflight();
      expect(pf.status, pf.reason).toBe('ready');
      expect(pf.current.kind === 'value' && pf.current.value.reveal()).toBe(oldKey);

      const newKey = new Secret(testKey());
      const op = { rotationId: 'rot_demo', fingerprint: newKey.fingerprint };
      const receipt = await target.write(newKey, op);
      await target.verify(newKey, op, receipt);
      await target.finalize!(op, receipt);
      const now = await target.read();
      expect(now.kind === 'value' && now.value.equals(newKey)).toBe(true);
      await target.close?.();
    } finally {
      await setup.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a child process started with NODE_EXTRA_CA_CERTS trusts the emulator', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyrot-akv-demo-'));
    const oldKey = testKey();
    const setup = await demo({ oldKey, workDir: dir, varName: 'OPENAI_API_KEY' });
    if ('skip' in setup) throw new Error(setup.skip);
    try {
      const script = join(dir, 'child.ts');
      // The child's target context gets only the token: trust comes from Node's own start-up handling.
      await writeFile(
        script,
        `import { azureKeyVault } from ${JSON.stringify(join(repo, 'src/targets/azure-key-vault/index.ts'))};
import { testContext } from ${JSON.stringify(join(repo, 'test/helpers/context.ts'))};
const t = await azureKeyVault.create({ vault: process.env.VAULT, secret: 'openai-api-key', token: { kind: 'env', name: 'KEYROT_DEMO_AZURE_KEYVAULT_TOKEN', raw: 'env:KEYROT_DEMO_AZURE_KEYVAULT_TOKEN' } },
  testContext({ env: { KEYROT_DEMO_AZURE_KEYVAULT_TOKEN: process.env.KEYROT_DEMO_AZURE_KEYVAULT_TOKEN } }));
const pf = await t.preflight();
console.log(JSON.stringify({ status: pf.status, reason: pf.reason, fingerprint: pf.current.kind === 'value' ? pf.current.value.fingerprint : null }));
await t.close();
`,
      );
      const { stdout } = await run(process.execPath, [script], {
        cwd: repo,
        env: { PATH: process.env.PATH, VAULT: String(setup.targets[0]!.vault), ...setup.env },
        timeout: 60_000,
      });
      const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as { status: string; reason?: string; fingerprint: string };
      expect(out.status, out.reason).toBe('ready');
      expect(out.fingerprint).toBe(new Secret(oldKey).fingerprint);
      expect(stdout).not.toContain(oldKey);
    } finally {
      await setup.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
