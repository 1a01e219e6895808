import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubernetesEmulator } from '../../emulators/kubernetes/emulator.ts';
import { kubernetes } from '../../src/targets/kubernetes/index.ts';
import type { DiscoverContext, DiscoveredPlace } from '../../src/targets/types.ts';
import { testKey } from '../helpers/keys.ts';
import { testContext } from '../helpers/context.ts';
import { expectEntryHolds, inventoryTakes } from '../helpers/discover.ts';

let emu: KubernetesEmulator;
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-k8s-discover-'));
  emu = new KubernetesEmulator();
  await emu.start();
});
afterEach(async () => {
  await emu.stop();
  await rm(dir, { recursive: true, force: true });
});

async function ctxFor(opts: { token?: string; namespaces?: string[]; contextNamespace?: string } = {}): Promise<DiscoverContext> {
  const kubeconfig = await emu.writeKubeconfig(join(dir, 'kubeconfig'), { token: opts.token, namespace: opts.contextNamespace });
  return {
    ...testContext({ baseDir: dir, env: { KUBECONFIG: kubeconfig } }),
    varNames: ['OPENAI_API_KEY'],
    configs: (opts.namespaces ?? []).map((namespace) => ({ namespace, secret: 'openai' })),
  };
}

const valueOf = (p: DiscoveredPlace | undefined) => (p?.holds.kind === 'value' ? p.holds.value.reveal() : p?.holds.kind);
const lists = (path: string) => emu.server.requests.filter((r) => r.method === 'GET' && r.path === path && r.status === 200);

describe('kubernetes: discover', () => {
  it('lists the Secrets of all namespaces across pages and reports each data key named like the variable', async () => {
    const key = testKey();
    const other = testKey();
    emu.seedSecret('prod', 'openai', { OPENAI_API_KEY: key, DB_URL: 'postgres://db' });
    emu.seedSecret('staging', 'app-secrets', { 'openai-api-key': other });
    for (let i = 0; i < 120; i++) emu.seedSecret('noise', `s${String(i).padStart(3, '0')}`, { OTHER: `v${i}` });
    emu.seedSecret('zz-late', 'worker', { openai_api_key: key }); // sorts after the first 100 keys
    emu.seedSecret('kube-system', 'sa-token', { OPENAI_API_KEY: key }, { type: 'kubernetes.io/service-account-token' });

    const found = await kubernetes.discover!(await ctxFor());

    expect(found.count).toBe(124);
    const byLocation = new Map(found.places.map((p) => [p.location, p]));
    expect([...byLocation.keys()].sort()).toEqual(['prod/openai[OPENAI_API_KEY]', 'staging/app-secrets[openai-api-key]', 'zz-late/worker[openai_api_key]']);
    expect(valueOf(byLocation.get('prod/openai[OPENAI_API_KEY]'))).toBe(key);
    expect(valueOf(byLocation.get('zz-late/worker[openai_api_key]'))).toBe(key);
    expect(valueOf(byLocation.get('staging/app-secrets[openai-api-key]'))).toBe(other);
    // `key:` only when it differs from the variable (its default), so the entry compares equal to the inventory's.
    expect(byLocation.get('prod/openai[OPENAI_API_KEY]')!.target).toEqual({ type: 'kubernetes', namespace: 'prod', secret: 'openai' });
    expect(byLocation.get('staging/app-secrets[openai-api-key]')!.target).toEqual({ type: 'kubernetes', namespace: 'staging', secret: 'app-secrets', key: 'openai-api-key' });
    for (const p of found.places) {
      const { type, ...fields } = p.target;
      expect(type).toBe('kubernetes');
      expect(kubernetes.schema.safeParse(fields).success).toBe(true);
    }
    expect(await Promise.all(found.places.map((p) => inventoryTakes(p.target)))).not.toContain(false);
    // Requests: 2 pages of the all-namespaces list, nothing else.
    expect(lists('/api/v1/secrets')).toHaveLength(2);
    expect(emu.server.requests.filter((r) => r.path !== '/api/v1/secrets')).toHaveLength(0);
    expect(found.scope).toBe('124 secrets in all namespaces of context keyrot-emulator');
  });

  it('also matches the data key the inventory’s own Kubernetes targets use (key: api-key)', async () => {
    const key = testKey();
    emu.seedSecret('default', 'openai-api-key', { 'api-key': key });
    emu.seedSecret('batch', 'worker', { 'api-key': key, 'other-key': 'x' });
    const ctx = { ...(await ctxFor()), configs: [{ namespace: 'default', secret: 'openai-api-key', key: 'api-key' }] };
    const found = await kubernetes.discover!(ctx);
    expect(found.places.map((p) => p.location).sort()).toEqual(['batch/worker[api-key]', 'default/openai-api-key[api-key]']);
    expect(found.places.map((p) => valueOf(p))).toEqual([key, key]);
  });

  it('a found entry makes a ready target holding the same key', async () => {
    const key = testKey();
    emu.seedSecret('prod', 'openai', { OPENAI_API_KEY: key });
    const ctx = await ctxFor();
    const found = await kubernetes.discover!(ctx);
    await expectEntryHolds(kubernetes, found.places[0]!, ctx, key);
  });

  it('without a ClusterRole, lists the namespaces of the inventory one by one and says which were denied', async () => {
    const key = testKey();
    emu.seedSecret('prod', 'openai', { OPENAI_API_KEY: key });
    emu.seedSecret('dev', 'openai', { OPENAI_API_KEY: key });
    emu.seedSecret('hidden', 'openai', { OPENAI_API_KEY: key });
    emu.deny('list', 'secrets', { clusterScope: true });
    emu.deny('list', 'secrets', { namespace: 'dev' });

    const found = await kubernetes.discover!(await ctxFor({ namespaces: ['prod', 'dev'] }));

    expect(found.places.map((p) => p.location)).toEqual(['prod/openai[OPENAI_API_KEY]']);
    expect(found.scope).toBe('1 secret in namespace prod of context keyrot-emulator (listing all namespaces was denied; listing dev too)');
    expect(lists('/api/v1/namespaces/prod/secrets')).toHaveLength(1);
  });

  it('without targets and a ClusterRole, lists the namespace of the kubeconfig context', async () => {
    emu.seedSecret('team-a', 'openai', { OPENAI_API_KEY: testKey() });
    emu.deny('list', 'secrets', { clusterScope: true });
    const found = await kubernetes.discover!(await ctxFor({ contextNamespace: 'team-a' }));
    expect(found.places.map((p) => p.location)).toEqual(['team-a/openai[OPENAI_API_KEY]']);
  });

  it('rejected credentials, listing denied everywhere and no kubeconfig are auth errors that say what to do', async () => {
    await expect(kubernetes.discover!(await ctxFor({ token: 'not-a-token' }))).rejects.toMatchObject({ kind: 'auth', message: expect.stringContaining('Kubernetes rejected the credentials') });
    emu.deny('list', 'secrets');
    await expect(kubernetes.discover!(await ctxFor({ namespaces: ['prod'] }))).rejects.toMatchObject({
      kind: 'auth',
      message: expect.stringContaining('Kubernetes denied listing secrets in context keyrot-emulator, in all namespaces and in prod: grant "list" on secrets'),
    });
    const none = { ...testContext({ env: { HOME: dir } }), varNames: ['OPENAI_API_KEY'], configs: [] };
    await expect(kubernetes.discover!(none)).rejects.toMatchObject({ kind: 'auth', message: expect.stringContaining('point KUBECONFIG at a kubeconfig file') });
  });
});
