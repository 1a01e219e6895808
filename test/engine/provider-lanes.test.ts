import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AwsSsmParameterEmulator } from '../../emulators/aws-ssm-parameter/emulator.ts';
import { GcpSecretManagerEmulator } from '../../emulators/gcp-secret-manager/emulator.ts';
import { KubernetesEmulator } from '../../emulators/kubernetes/emulator.ts';
import { VaultEmulator } from '../../emulators/vault/emulator.ts';
import { RenderEmulator } from '../../emulators/render/emulator.ts';
import { SupabaseEmulator } from '../../emulators/supabase/emulator.ts';
import { FlyEmulator } from '../../emulators/fly/emulator.ts';
import { NetlifyEmulator } from '../../emulators/netlify/emulator.ts';
import type { RecordedRequest } from '../../emulators/server.ts';
import { Secret } from '../../src/core/secret.ts';
import type { Clock } from '../../src/runtime/clock.ts';
import { Pacer } from '../../src/runtime/pacer.ts';
import { silentReporter } from '../../src/machine/progress.ts';
import { rotate } from '../../src/usecases/rotate.ts';
import { awsSsmParameter } from '../../src/targets/aws-ssm-parameter/index.ts';
import { azureKeyVault } from '../../src/targets/azure-key-vault/index.ts';
import { gcpSecretManager } from '../../src/targets/gcp-secret-manager/index.ts';
import { kubernetes } from '../../src/targets/kubernetes/index.ts';
import { vault } from '../../src/targets/vault/index.ts';
import { render } from '../../src/targets/render/index.ts';
import { supabase } from '../../src/targets/supabase/index.ts';
import { fly } from '../../src/targets/fly/index.ts';
import { netlify } from '../../src/targets/netlify/index.ts';
import { pacingOf, type DiscoverContext, type TargetDefinition } from '../../src/targets/types.ts';
import { engineOptions, type TargetInput } from '../helpers/engine-options.ts';
import { testContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';
import { startKeyVault } from '../helpers/azure-key-vault-fixture.ts';
import { dockerEngine, uniqueName, type TestDocker } from '../helpers/docker-engine.ts';
import { startEngineProxy } from '../helpers/docker-secret-proxy.ts';
import { dockerSecret } from '../../src/targets/docker-secret/index.ts';
import { railwayFixture } from '../helpers/railway-setup.ts';
import { railway } from '../../src/targets/railway/index.ts';
import { systemClock } from '../../src/runtime/clock.ts';

/**
 * Every provider request goes through its account's pacing lane (runtime/pacer.ts), in a
 * rotation and in `keyrot discover` alike: the emulators answer throttling in their provider's own
 * shape (AWS ThrottlingException, Google RESOURCE_EXHAUSTED with RetryInfo, Kubernetes APF 429,
 * Key Vault 429 Throttled, Vault's rate limit quota 429, with Retry-After where the provider sends
 * one), every item still ends done, and a class with a published rate never sends faster than it:
 * the lane gives each request a slot at least 1/rate after the previous one (burst 1) and sends it
 * no earlier, so N requests of the class take at least (N - 1)/rate of the clock's time.
 */

/** Virtual time: a sleep wakes at its own deadline (concurrent sleeps overlap, as real ones do), never earlier. */
function virtualClock(start = Date.parse('2026-01-01T00:00:00Z')): Clock {
  let t = start;
  return {
    now: () => t,
    sleep: async (ms) => {
      const until = t + ms;
      await Promise.resolve();
      t = Math.max(t, until);
    },
  };
}

/** At most `perSecond` requests a second from `start` to the clock's now (the first one free). */
function withinRate(requests: number, perSecond: number, clock: Clock, start: number): void {
  expect(requests).toBeLessThanOrEqual(1 + Math.floor((perSecond * (clock.now() - start)) / 1000));
}

/** The context `keyrot discover` gives one provider (usecases/discover.ts): lanes from one pacer, keyed by type. */
function discoverContextOf(def: TargetDefinition<any>, pacer: Pacer, base: Omit<DiscoverContext, 'lane'>): DiscoverContext {
  return { ...base, lane: (key) => pacer.lane(`${def.id}:${key}`, pacingOf(def)) };
}

/** The reporter's info lines (the lanes' notices: pauses a provider asked for, window cuts). */
function recordingReporter() {
  const infos: string[] = [];
  return { infos, reporter: { ...silentReporter, info: (m: string) => infos.push(m) } };
}

let stateDir: string;
let cleanup: Array<() => Promise<unknown>> = [];
beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'keyrot-lanes-'));
});
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
  await rm(stateDir, { recursive: true, force: true });
});

describe('aws-ssm-parameter', () => {
  const action = (r: RecordedRequest) => String(r.headers['x-amz-target'] ?? '').replace(/^AmazonSSM\./, '');
  const isGet = (r: RecordedRequest) => action(r) === 'GetParameter' || action(r) === 'GetParametersByPath';

  async function start(): Promise<{ emu: AwsSsmParameterEmulator; env: NodeJS.ProcessEnv }> {
    const emu = new AwsSsmParameterEmulator();
    await emu.start();
    cleanup.push(() => emu.stop());
    return { emu, env: { AWS_ACCESS_KEY_ID: emu.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: emu.credentials.secretAccessKey } };
  }

  it('a fleet rotation sends every GetParameter through the account lane: 40 a second at most, ThrottlingExceptions waited out, every parameter written', async () => {
    const { emu, env } = await start();
    const oldKey = testKey();
    const newKey = testKey();
    const names = Array.from({ length: 24 }, (_, i) => `/fleet/app-${i}/OPENAI_API_KEY`);
    for (const n of names) emu.seed(n, oldKey);
    emu.throttleNext(3, 'GetParameter');
    const targets: TargetInput[] = names.map((n, i) => ({ name: `p${i}`, definition: awsSsmParameter, config: { ...awsSsmParameter.schema.parse({ parameter: n, region: 'us-east-1' }), endpoint: emu.url } }));
    const clock = virtualClock();
    const t0 = clock.now();

    const rep = await rotate(engineOptions(targets, stateDir, { clock, processEnv: env, retry: { attempts: 5 } }), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) });

    expect(rep.outcome).toBe('awaiting-revocation');
    for (const n of names) expect(emu.value(n)).toBe(newKey);
    const gets = emu.server.requests.filter(isGet);
    // More than a second's worth: the published rate had to hold requests back, and did.
    expect(gets.length).toBeGreaterThan(40);
    withinRate(gets.length, 40, clock, t0);
  });

  it('discover pages GetParametersByPath through the same lane: within the rate, a ThrottlingException retried, every parameter found', async () => {
    const { emu, env } = await start();
    const key = testKey();
    for (let i = 0; i < 58; i++) emu.seed(`/noise/p-${String(i).padStart(2, '0')}`, `v${i}`);
    emu.seed('/apps/api/OPENAI_API_KEY', key);
    emu.seed('/apps/worker/openai_api_key', key);
    emu.throttleNext(2, 'GetParametersByPath');
    const clock = virtualClock();
    const t0 = clock.now();
    const pacer = new Pacer(clock);
    const ctx = discoverContextOf(awsSsmParameter, pacer, {
      ...testContext({ env: { ...env, AWS_REGION: 'us-east-1' }, name: 'discover' }),
      clock,
      varNames: ['OPENAI_API_KEY'],
      configs: [{ endpoint: emu.url, region: 'us-east-1' }],
    });

    const found = await awsSsmParameter.discover!(ctx);

    expect(found.count).toBe(60);
    expect(found.places.map((p) => p.location).sort()).toEqual(['/apps/api/OPENAI_API_KEY', '/apps/worker/openai_api_key']);
    const pages = emu.server.requests.filter(isGet);
    expect(pages.length).toBe(6 + 2); // six pages of ten, two throttled and asked again
    withinRate(pages.length, 40, clock, t0);
    // The rotation's lane: the account and region (aws-client.ts awsRateLimitKey), not a lane of its own; it saw the throttles.
    expect(pacer.lanes.map((l) => l.key)).toEqual([`aws-ssm-parameter:aws-ssm-parameter:us-east-1:${emu.url}:env`]);
    expect(pacer.lanes[0]!.stats.cuts).toBeGreaterThanOrEqual(1);
  });
});

describe('gcp-secret-manager', () => {
  const TOKEN = { kind: 'env' as const, name: 'GCP_ACCESS_TOKEN', raw: 'env:GCP_ACCESS_TOKEN' };
  const PROJECT = 'lanes-test';

  async function start(): Promise<GcpSecretManagerEmulator> {
    const emu = new GcpSecretManagerEmulator();
    await emu.start();
    cleanup.push(() => emu.stop());
    return emu;
  }

  it('a fleet rotation holds the project to 10 reads and 10 writes a second; RESOURCE_EXHAUSTED (RetryInfo) is waited out; every secret gets its version', async () => {
    const emu = await start();
    const oldKey = testKey();
    const newKey = testKey();
    const secrets = Array.from({ length: 20 }, (_, i) => `openai-${i}`);
    for (const s of secrets) emu.seed(PROJECT, s, oldKey);
    emu.throttleNext({ times: 2, retryDelayMs: 3000, path: /:addVersion$/ });
    const targets: TargetInput[] = secrets.map((s) => ({ name: s, definition: gcpSecretManager, config: { project: PROJECT, secret: s, endpoint: emu.endpoint, token: TOKEN } }));
    const clock = virtualClock();
    const t0 = clock.now();
    const { infos, reporter } = recordingReporter();

    const rep = await rotate(engineOptions(targets, stateDir, { clock, reporter, processEnv: { GCP_ACCESS_TOKEN: emu.token }, retry: { attempts: 5 } }), {
      mode: 'rotate',
      source: 'stdin',
      obtainKey: async () => new Secret(newKey),
    });

    expect(rep.outcome).toBe('awaiting-revocation');
    for (const s of secrets) expect(emu.versions(PROJECT, s).map((v) => v.value)).toEqual([oldKey, newKey]);
    const reads = emu.server.requests.filter((r) => /:testIamPermissions$/.test(r.path) || (r.method === 'GET' && /\/versions$/.test(r.path)));
    const writes = emu.server.requests.filter((r) => /:addVersion$/.test(r.path));
    expect(reads.length).toBeGreaterThanOrEqual(secrets.length);
    withinRate(reads.length, 10, clock, t0);
    expect(writes.length).toBe(secrets.length + 2);
    withinRate(writes.length, 10, clock, t0);
    // The project's lane (not the type's) saw Google's RetryInfo and paused every call to the project.
    expect(infos.some((m) => m.startsWith(`gcp-secret-manager:${emu.endpoint.replace(/^(?!https?:)/, 'http://')}/projects/${PROJECT}: pausing 3 s`))).toBe(true);
  });

  it('discover lists a big project within its read quota, waits out RESOURCE_EXHAUSTED, and finds every secret', async () => {
    const emu = await start();
    const key = testKey();
    for (let i = 0; i < 290; i++) emu.seed(PROJECT, `noise-${String(i).padStart(3, '0')}`, `v${i}`);
    emu.seed(PROJECT, 'openai-api-key', key);
    emu.throttleNext({ times: 2, retryDelayMs: 2000, path: /\/secrets$/ });
    const clock = virtualClock();
    const t0 = clock.now();
    const pacer = new Pacer(clock);
    const ctx = discoverContextOf(gcpSecretManager, pacer, {
      ...testContext({ env: { GCP_ACCESS_TOKEN: emu.token }, name: 'discover' }),
      clock,
      varNames: ['OPENAI_API_KEY'],
      configs: [{ project: PROJECT, secret: 'openai-api-key', endpoint: emu.endpoint, token: TOKEN }],
    });

    const found = await gcpSecretManager.discover!(ctx);

    expect(found.count).toBe(291);
    expect(found.places.map((p) => p.location)).toContain(`projects/${PROJECT}/secrets/openai-api-key`);
    const lists = emu.server.requests.filter((r) => r.method === 'GET' && new RegExp(`/projects/${PROJECT}/secrets$`).test(r.path));
    expect(lists.length).toBe(3 + 2); // three pages of 100, two throttled and asked again
    withinRate(lists.length, 10, clock, t0);
    // The project's lane saw both throttles; the 2 s Google asked for passed before the next page.
    const [lane] = pacer.lanes;
    expect(lane!.key).toMatch(new RegExp(`^gcp-secret-manager:gcp-secret-manager:.*/projects/${PROJECT}$`));
    expect(lane!.stats.cuts).toBeGreaterThanOrEqual(1);
    expect(clock.now() - t0).toBeGreaterThanOrEqual(4000);
  });
});

describe('azure-key-vault', () => {
  it('discover pages the listing and reads through the vault lane: a 429 Throttled with Retry-After pauses the vault, every secret is found', async () => {
    const kv = await startKeyVault();
    cleanup.push(() => kv.close());
    const key = testKey();
    for (let i = 0; i < 30; i++) kv.emu.seed(`noise-${i}`, `v${i}`);
    kv.emu.seed('openai-api-key', key);
    kv.emu.throttleNext({ times: 2, retryAfterSeconds: 4 });
    const clock = virtualClock();
    const t0 = clock.now();
    const pacer = new Pacer(clock);
    const ctx = discoverContextOf(azureKeyVault, pacer, {
      ...testContext({ env: { AKV_TOKEN: kv.emu.token, NODE_EXTRA_CA_CERTS: kv.caFile }, name: 'discover' }),
      clock,
      varNames: ['OPENAI_API_KEY'],
      configs: [{ vault: `${kv.emu.vaultUrl}/`, secret: 'openai-api-key', token: { kind: 'env', name: 'AKV_TOKEN', raw: 'env:AKV_TOKEN' } }],
    });

    const found = await azureKeyVault.discover!(ctx);

    expect(found.places.map((p) => p.location)).toEqual([`${new URL(kv.emu.vaultUrl).host}/secrets/openai-api-key`]);
    expect(kv.emu.server.requests.filter((r) => r.status === 429)).toHaveLength(2);
    const [lane] = pacer.lanes;
    expect(lane!.key).toBe(`azure-key-vault:azure-key-vault:${new URL(kv.emu.vaultUrl).host}`);
    // The vault's lane saw the throttles; the 4 s the vault asked for, twice, passed before the next requests.
    expect(lane!.stats.cuts).toBeGreaterThanOrEqual(1);
    expect(clock.now() - t0).toBeGreaterThanOrEqual(8000);
  });
});

describe('kubernetes', () => {
  it('discover lists every page through the context lane: APF 429s with Retry-After pause it, every secret is found', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyrot-lanes-k8s-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const emu = new KubernetesEmulator();
    await emu.start();
    cleanup.push(() => emu.stop());
    const key = testKey();
    for (let i = 0; i < 250; i++) emu.seedSecret('noise', `s${String(i).padStart(3, '0')}`, { OTHER: `v${i}` });
    emu.seedSecret('prod', 'openai', { OPENAI_API_KEY: key });
    emu.failNextWithRateLimit({ retryAfterSeconds: 3, times: 2 });
    const kubeconfig = await emu.writeKubeconfig(join(dir, 'kubeconfig'), {});
    const clock = virtualClock();
    const t0 = clock.now();
    const pacer = new Pacer(clock);
    const ctx = discoverContextOf(kubernetes, pacer, { ...testContext({ baseDir: dir, env: { KUBECONFIG: kubeconfig }, name: 'discover' }), clock, varNames: ['OPENAI_API_KEY'], configs: [] });

    const found = await kubernetes.discover!(ctx);

    expect(found.count).toBe(251);
    expect(found.places.map((p) => p.location)).toContain('prod/openai[OPENAI_API_KEY]');
    expect(emu.server.requests.filter((r) => r.status === 429)).toHaveLength(2);
    expect(emu.server.requests.filter((r) => r.path === '/api/v1/secrets' && r.status === 200)).toHaveLength(3);
    const [lane] = pacer.lanes;
    expect(lane!.key).toBe('kubernetes:kubernetes:');
    expect(lane!.stats.cuts).toBeGreaterThanOrEqual(1);
    expect(clock.now() - t0).toBeGreaterThanOrEqual(6000);
  });
});

describe('vault', () => {
  it('a fleet rotation sends every request through the cluster lane: a rate limit quota 429 (Retry-After) pauses all of them, every secret is written', async () => {
    const emu = new VaultEmulator();
    await emu.start();
    cleanup.push(() => emu.stop());
    const token = emu.addToken();
    const oldKey = testKey();
    const newKey = testKey();
    const paths = Array.from({ length: 16 }, (_, i) => `apps/fleet-${i}`);
    for (const p of paths) emu.seed(p, { OPENAI_API_KEY: oldKey, OTHER: 'kept' });
    emu.rateLimitNext({ retryAfterSeconds: 5 });
    const targets: TargetInput[] = paths.map((path, i) => ({ name: `v${i}`, definition: vault, config: vault.schema.parse({ address: emu.url, path }) }));
    const clock = virtualClock();
    const t0 = clock.now();
    const { infos, reporter } = recordingReporter();

    const rep = await rotate(engineOptions(targets, stateDir, { clock, reporter, processEnv: { VAULT_TOKEN: token }, retry: { attempts: 5 } }), {
      mode: 'rotate',
      source: 'stdin',
      obtainKey: async () => new Secret(newKey),
    });

    expect(rep.outcome).toBe('awaiting-revocation');
    for (const p of paths) expect(emu.data(p)).toEqual({ OPENAI_API_KEY: newKey, OTHER: 'kept' });
    expect(emu.server.requests.filter((r) => r.status === 429)).toHaveLength(1);
    // The cluster's lane (address and namespace), not the type's, was told and paused every request.
    expect(infos.some((m) => m.startsWith(`vault:${emu.url}:: pausing 5 s`))).toBe(true);
    expect(clock.now() - t0).toBeGreaterThanOrEqual(5000);
  });
});

/**
 * The token-authenticated HTTP providers (token-client.ts): a rotation of several targets on one
 * token shares the token's lane; the emulator's 429 (the provider's own body and rate-limit
 * headers, the budget spent with its reset) pauses every call made with that token.
 */
describe('render, supabase, fly: the token lane', () => {
  async function rotateFleet(targets: TargetInput[], processEnv: NodeJS.ProcessEnv, newKey: string) {
    // Starting now: Netlify's X-RateLimit-Reset is an epoch time.
    const clock = virtualClock(Date.now());
    const t0 = clock.now();
    const { infos, reporter } = recordingReporter();
    const rep = await rotate(engineOptions(targets, stateDir, { clock, reporter, processEnv, retry: { attempts: 5 } }), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) });
    return { rep, infos, elapsed: clock.now() - t0 };
  }

  it('render: a 429 (Ratelimit-Reset 4 s) pauses every service of the API key; every variable is written', async () => {
    const emu = new RenderEmulator();
    await emu.start();
    cleanup.push(() => emu.stop());
    const token = emu.addToken();
    const oldKey = testKey();
    const newKey = testKey();
    const services = Array.from({ length: 6 }, (_, i) => emu.seedService({ name: `api-${i}`, env: { OPENAI_API_KEY: oldKey } }));
    emu.failNextWithRateLimit(2);
    const targets: TargetInput[] = services.map((id, i) => ({ name: `r${i}`, definition: render, config: { service: id, endpoint: `${emu.url}/v1`, redeploy: false } }));

    const { rep, infos, elapsed } = await rotateFleet(targets, { RENDER_API_KEY: token }, newKey);

    expect(rep.outcome).toBe('awaiting-revocation');
    for (const id of services) expect(emu.vars(id).OPENAI_API_KEY).toBe(newKey);
    expect(infos.some((m) => m.startsWith(`render:${emu.url}/v1:RENDER_API_KEY: pausing 4 s`))).toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual(4000);
  });

  it('supabase: a 429 (X-RateLimit-Reset 7 s) pauses the token’s calls; every project’s secret is written', async () => {
    const emu = new SupabaseEmulator();
    await emu.start();
    cleanup.push(() => emu.stop());
    const token = emu.addToken();
    const oldKey = testKey();
    const newKey = testKey();
    const refs = Array.from({ length: 6 }, () => emu.seedProject({ secrets: { OPENAI_API_KEY: oldKey } }));
    emu.failNextWithRateLimit(2);
    const targets: TargetInput[] = refs.map((ref, i) => ({ name: `s${i}`, definition: supabase, config: { project: ref, endpoint: emu.url } }));

    const { rep, infos, elapsed } = await rotateFleet(targets, { SUPABASE_ACCESS_TOKEN: token }, newKey);

    expect(rep.outcome).toBe('awaiting-revocation');
    for (const ref of refs) expect(emu.secret(ref, 'OPENAI_API_KEY')).toBe(newKey);
    expect(infos.some((m) => m.startsWith(`supabase:${emu.url}:SUPABASE_ACCESS_TOKEN: pausing 7 s`))).toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual(7000);
  });

  it('fly: a 429 slows the token’s lane; every app’s secret is written', async () => {
    const emu = new FlyEmulator();
    await emu.start();
    cleanup.push(() => emu.stop());
    const apps = Array.from({ length: 6 }, (_, i) => `app-${i}`);
    const token = emu.addToken({ apps });
    const oldKey = testKey();
    const newKey = testKey();
    for (const app of apps) emu.seedApp(app, { secrets: { OPENAI_API_KEY: oldKey }, machines: 1 });
    emu.failNextWithRateLimit(2);
    const targets: TargetInput[] = apps.map((app, i) => ({ name: `f${i}`, definition: fly, config: { app, endpoint: emu.url, redeploy: false } }));

    const { rep, infos } = await rotateFleet(targets, { FLY_API_TOKEN: token }, newKey);

    expect(rep.outcome).toBe('awaiting-revocation');
    for (const app of apps) expect(emu.secret(app, 'OPENAI_API_KEY')).not.toBeUndefined();
    // Fly's 429 carries no Retry-After: the token's lane (not the type's) halves its window.
    expect(infos.some((m) => m.startsWith(`fly:${emu.url}:FLY_API_TOKEN: at most`))).toBe(true);
  });

  it('netlify: a 429 (X-RateLimit-Remaining 0) pauses every site of the token until the reset; every variable is written', async () => {
    const emu = new NetlifyEmulator();
    await emu.start();
    cleanup.push(() => emu.stop());
    const token = emu.addToken();
    const oldKey = testKey();
    const newKey = testKey();
    const sites = Array.from({ length: 6 }, (_, i) => emu.seedSite({ name: `site-${i}`, account: 'team', env: [{ key: 'OPENAI_API_KEY', values: [{ context: 'production', value: oldKey }] }] }).id);
    emu.failNextWithRateLimit(2);
    const targets: TargetInput[] = sites.map((site, i) => ({ name: `n${i}`, definition: netlify, config: { site, context: 'production', redeploy: false, endpoint: emu.url } }));

    const { rep, infos } = await rotateFleet(targets, { NETLIFY_AUTH_TOKEN: token }, newKey);

    expect(rep.outcome).toBe('awaiting-revocation');
    for (const site of sites) expect(emu.getVar(site, 'OPENAI_API_KEY')?.values.map((v) => v.value)).toEqual([newKey]);
    expect(infos.some((m) => m.startsWith(`netlify:${emu.url}/api/v1:NETLIFY_AUTH_TOKEN: pausing`))).toBe(true);
  });
});

describe('railway', () => {
  it('targets of one token share its lane: a spent budget (X-RateLimit-Remaining 0) holds every service until the reset, no 429', async () => {
    // The emulator counts in real time (a 3-request window of 1 s), so the lane runs on the system clock; nothing here measures time.
    const fx = await railwayFixture({ vars: { OPENAI_API_KEY: testKey() }, emulator: { rateLimit: { limit: 3, windowMs: 1000 } }, clock: systemClock });
    cleanup.push(() => fx.emu.stop());
    const pacer = new Pacer(systemClock);
    const ctx = { ...testContext({ env: { RAILWAY_API_TOKEN: fx.token }, name: 'railway' }), lane: (key: string) => pacer.lane(key, pacingOf(railway)) };
    const next = testKey();
    const op = { rotationId: 'rot_lanes_railway', fingerprint: new Secret(next).fingerprint };
    const targets = await Promise.all(
      [fx.ids.service, fx.ids.other].map((service) => railway.create({ project: fx.ids.project, environment: fx.ids.environment, service, endpoint: fx.emu.graphqlUrl }, ctx)),
    );

    await Promise.all(targets.map(async (t) => t.verify(new Secret(next), op, await t.write(new Secret(next), op))));

    expect(fx.emu.server.requests.filter((r) => r.status === 429)).toEqual([]);
    expect(pacer.lanes.map((l) => l.key)).toEqual([`railway:${fx.emu.graphqlUrl}:env:RAILWAY_API_TOKEN`]);
    expect(pacer.lanes[0]!.stats.pacedRequests).toBeGreaterThan(0);
  });
});

/*
 * The Docker Engine has no rate limit, but a socket proxy in front of it may answer 429: the real
 * private Engine (test/helpers/docker-engine.ts) behind the recording proxy. No Engine: a failure
 * with CI=true, a skip otherwise.
 */
const docker = await dockerEngine();
const noDocker = 'skip' in docker ? docker.skip : undefined;

describe.skipIf(noDocker !== undefined)('docker-secret (real Docker Engine)', () => {
  it('discover sends every Engine exchange through the Docker host lane: a proxy’s 429s slow it down, every secret is still found', async () => {
    const d = docker as TestDocker;
    const p = uniqueName('krlane');
    cleanup.push(() => d.cleanup(p));
    await d.createSecret(`${p}_var`, testKey());
    const proxy = await startEngineProxy(d.host.replace(/^unix:\/\//, ''));
    cleanup.push(() => proxy.close());
    let refused = 0;
    proxy.hook = (req) => (req.method === 'GET' && /\/secrets$/.test(req.path) && refused++ < 2 ? { respond: { status: 429, body: { message: 'too many requests' } } } : undefined);
    const clock = virtualClock();
    const pacer = new Pacer(clock);
    const ctx = discoverContextOf(dockerSecret, pacer, { ...testContext({ env: { DOCKER_HOST: proxy.host }, name: 'discover' }), clock, varName: `${p}_var`, varNames: [`${p}_var`], configs: [] });

    const found = await dockerSecret.discover!(ctx);

    expect(found.places.map((x) => x.location)).toContain(`swarm secret ${p}_var`);
    expect(refused).toBe(3);
    const [lane] = pacer.lanes;
    expect(lane!.key).toBe(`docker-secret:docker-secret:${proxy.host}`);
    expect(lane!.stats.cuts).toBeGreaterThanOrEqual(1);
  });
});
