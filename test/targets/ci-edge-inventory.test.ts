import { describe, expect, it } from 'vitest';
import { credentialVariables } from '../../src/inventory/credentials.ts';
import { parseInventory } from '../../src/inventory/load.ts';

/**
 * What the inventory makes of github-actions and cloudflare-workers targets: their default token
 * variables are withheld from child processes like every credential keyrot reads, and `endpoint:`
 * (it receives the token) is https unless loopback.
 */
const inventory = (targets: string) =>
  parseInventory(
    `version: 1
key: { name: OPENAI_API_KEY, kind: openai, source: prompt }
environments:
  prod:
    targets:
${targets}`,
    '/nowhere/targets.yaml',
  );

describe('github-actions and cloudflare-workers in targets.yaml', () => {
  it('withholds GH_TOKEN, GITHUB_TOKEN and CLOUDFLARE_API_TOKEN, and a `token: env:` variable, from child processes', async () => {
    const inv = await inventory(`      - { type: github-actions, repo: acme/api }
      - { type: cloudflare-workers, account: 0123abcd, script: api-worker, token: "env:EDGE_TOKEN" }
`);
    expect(credentialVariables(inv, [])).toEqual(expect.arrayContaining(['GH_TOKEN', 'GITHUB_TOKEN', 'CLOUDFLARE_API_TOKEN', 'EDGE_TOKEN']));
  });

  it('refuses a plain-http endpoint that is not loopback, for either type, and takes GHES over https or an emulator on 127.0.0.1', async () => {
    for (const t of ['{ type: github-actions, repo: acme/api, endpoint: "http://ghe.example.com/api/v3" }', '{ type: cloudflare-workers, account: 0123abcd, script: w, endpoint: "http://cf.example.com/client/v4" }']) {
      await expect(inventory(`      - ${t}\n`)).rejects.toThrow(/loopback/);
    }
    const ok = await inventory(`      - { type: github-actions, repo: acme/api, endpoint: "https://ghe.example.com/api/v3" }
      - { type: cloudflare-workers, account: 0123abcd, script: w, endpoint: "http://127.0.0.1:8787/client/v4" }
`);
    expect(ok.environments.get('prod')!.targets.map((t) => t.config.endpoint)).toEqual(['https://ghe.example.com/api/v3', 'http://127.0.0.1:8787/client/v4']);
  });
});
