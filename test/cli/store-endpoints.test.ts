import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/** Vault's address and the Parameter Store's endpoint variables follow the https-except-loopback rule, through the CLI. */
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-store-endpoints-'));
  return () => rm(dir, { recursive: true, force: true });
});

const inventory = (target: string) => `version: 1\nenvironments:\n  p:\n    targets:\n${target}`;

describe('aws-ssm-parameter and vault endpoints: plain http to another host is refused before anything is contacted', () => {
  it('vault address: over http in targets.yaml is an inventory error at file:line:column', async () => {
    const path = join(dir, 'targets.yaml');
    await writeFile(path, inventory('      - type: vault\n        address: http://vault.invalid:8200\n        path: apps/api\n'));
    const r = await runCli(['plan'], { cwd: dir, env: { VAULT_TOKEN: `tok-${testKey('')}` } });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`${path}:6:18: environments.p.targets[0].address: "http://vault.invalid:8200": plain http:// is allowed only to a loopback address`);
  });

  it('AWS_ENDPOINT_URL_SSM over http: a usage error naming the variable', async () => {
    await writeFile(join(dir, 'targets.yaml'), inventory('      - type: aws-ssm-parameter\n        parameter: /acme/openai-api-key\n        region: us-east-1\n'));
    const r = await runCli(['plan'], { cwd: dir, env: { AWS_ENDPOINT_URL_SSM: 'http://ssm.invalid/' } });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^keyrot: AWS_ENDPOINT_URL_SSM: "http:\/\/ssm\.invalid\/": plain http:\/\/ is allowed only to a loopback address/);
  });
});
