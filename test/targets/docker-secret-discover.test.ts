import { afterAll, describe, expect, it } from 'vitest';
import { Secret } from '../../src/core/secret.ts';
import { dockerSecret } from '../../src/targets/docker-secret/index.ts';
import type { DiscoverContext, DiscoveredPlace } from '../../src/targets/types.ts';
import { testKey } from '../helpers/keys.ts';
import { testContext } from '../helpers/context.ts';
import { inventoryTakes } from '../helpers/discover.ts';
import { dockerEngine, uniqueName, type TestDocker } from '../helpers/docker-engine.ts';
import { startEngineProxy } from '../helpers/docker-secret-proxy.ts';

/*
 * docker-secret discover against the REAL private Engine (test/helpers/docker-engine.ts): the
 * Engine is shared with other test files and worktrees, so every assertion looks at this run's
 * secrets only (unique prefix). No Engine: a failure with CI=true, a skip otherwise.
 */
const docker = await dockerEngine();
const skip = 'skip' in docker ? docker.skip : undefined;
if (skip) console.warn(`[docker-secret discover] skipped: ${skip}`);

afterAll(() => {
  if (!('skip' in docker)) docker.close();
});

describe.skipIf(skip !== undefined)('docker-secret: discover (real Docker Engine)', () => {
  const d = docker as TestDocker;
  const prefixes: string[] = [];
  afterAll(async () => {
    for (const p of prefixes) await d.cleanup(p);
  });

  const ctxFor = (env: NodeJS.ProcessEnv, varName: string): DiscoverContext => ({ ...testContext({ env }), varName, varNames: [varName], configs: [] });
  const mine = (places: DiscoveredPlace[], p: string) => places.filter((x) => x.location.startsWith(`swarm secret ${p}`)).sort((a, b) => a.location.localeCompare(b.location));

  it('matches keyrot-labelled secrets by their fingerprint label and lists unlabelled ones named like the variable as unreadable', async () => {
    const p = uniqueName('krd');
    prefixes.push(p);
    const key = testKey();
    const other = testKey();
    const fp = (v: string) => new Secret(v).fingerprint;
    // keyrot's family: the old version (unmounted) and the current one, labelled as the adapter labels them.
    await d.createSecret(`${p}_openai`, other);
    await d.createSecret(`${p}_openai_2`, key, { 'managed-by': 'keyrot', 'keyrot.fingerprint': fp(key), 'keyrot.rotation': 'rot_1' });
    await d.createSecret(`${p}_billing_2`, other, { 'managed-by': 'keyrot', 'keyrot.fingerprint': fp(other) });
    // Left behind by keyrot and mounted by nothing: found, but no entry to rotate.
    await d.createSecret(`${p}_stale_2`, key, { 'managed-by': 'keyrot', 'keyrot.fingerprint': fp(key) });
    // Created by hand, named like the variable: its value cannot be read.
    await d.createSecret(`${p}_var`, testKey());
    await d.createSecret(`${p}_unrelated`, 'not-a-key');
    await d.createService(`${p}-api`, [{ secret: `${p}_openai_2`, target: 'openai_api_key' }]);
    await d.createService(`${p}-billing`, [{ secret: `${p}_billing_2`, target: 'openai_api_key' }]);
    await d.createService(`${p}-legacy`, [{ secret: `${p}_var`, target: 'openai_api_key' }]);

    const socket = d.host.replace(/^unix:\/\//, '');
    const proxy = await startEngineProxy(socket);
    try {
      const found = await dockerSecret.discover!(ctxFor({ DOCKER_HOST: proxy.host }, `${p}_var`));
      const places = mine(found.places, p);
      expect(places.map((x) => x.location)).toEqual([
        `swarm secret ${p}_billing_2 (${p}-billing)`,
        `swarm secret ${p}_openai_2 (${p}-api)`,
        `swarm secret ${p}_stale_2`,
        `swarm secret ${p}_var (${p}-legacy)`,
      ]);
      const [billing, openai, stale, byName] = places as [DiscoveredPlace, DiscoveredPlace, DiscoveredPlace, DiscoveredPlace];
      expect(stale.matches!(new Secret(key))).toBe(true);
      expect(stale.notRotatable).toMatch(/no service mounts it/);
      expect(openai.matches!(new Secret(key))).toBe(true);
      expect(openai.matches!(new Secret(other))).toBe(false);
      expect(billing.matches!(new Secret(key))).toBe(false);
      expect(billing.matches!(new Secret(other))).toBe(true);
      expect(byName.matches).toBeUndefined();
      expect(byName.holds).toMatchObject({ kind: 'unreadable', reason: expect.stringContaining('has no keyrot.fingerprint label') });
      expect(openai.target).toEqual({ type: 'docker-secret', secret: `${p}_openai`, services: [`${p}-api`] });
      for (const x of places.filter((y) => !y.notRotatable)) {
        const { type, ...fields } = x.target;
        expect(type).toBe('docker-secret');
        expect(dockerSecret.schema.safeParse(fields).success).toBe(true);
      }
      expect(await Promise.all(places.filter((x) => !x.notRotatable).map((x) => inventoryTakes(x.target)))).not.toContain(false);
      expect(found.count).toBeGreaterThanOrEqual(5);
      expect(found.scope).toMatch(new RegExp(`^\\d+ swarm secrets at ${proxy.host}`));
      // Requests: the Engine's version check, /info, /secrets and /services, once each; nothing written.
      const paths = proxy.requests.map((r) => `${r.method} ${r.path.replace(/^\/v[\d.]+/, '').split('?')[0]}`);
      expect(paths).toEqual(['GET /version', 'GET /info', 'GET /secrets', 'GET /services']);
    } finally {
      await proxy.close();
    }
  });

  it('a socket proxy refusing secrets is an auth error that says what to allow', async () => {
    const proxy = await startEngineProxy(d.host.replace(/^unix:\/\//, ''));
    try {
      proxy.hook = (q) => (/\/secrets/.test(q.path) ? { respond: { status: 403, body: { message: 'forbidden' } } } : undefined);
      await expect(dockerSecret.discover!(ctxFor({ DOCKER_HOST: proxy.host }, 'OPENAI_API_KEY'))).rejects.toMatchObject({
        kind: 'auth',
        message: expect.stringContaining('allow SECRETS, SERVICES, TASKS, INFO and POST'),
      });
    } finally {
      await proxy.close();
    }
  });
});
