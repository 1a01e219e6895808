import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { appendAudit, readAudit } from '../../src/state/audit-log.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { fakeClock, type Clock } from '../../src/runtime/clock.ts';
import { ConfigError, LockedError, TargetError } from '../../src/core/errors.ts';
import { latestRotation } from '../../src/machine/state.ts';
import { readJournal } from '../../src/state/journal.ts';
import { rotate } from '../../src/usecases/rotate.ts';
import { silentReporter } from '../../src/machine/progress.ts';
import { type EngineOptions } from '../../src/machine/run.ts';
import { CONFIGMAP_MAX_BYTES, KubernetesEmulator } from '../../emulators/kubernetes/emulator.ts';
import { parseInventory, selectEnvironment } from '../../src/inventory/load.ts';
import { Secret } from '../../src/core/secret.ts';
import {
  CONFIGMAP_LIMIT_BYTES,
  kubernetesState,
  kubernetesStateFromConfig,
  leaseName,
  type KubernetesStateOptions,
  type LeaseLockInfo,
} from '../../src/state/kubernetes.ts';
import type { StateStore } from '../../src/state/store.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * `state: kubernetes` against the loopback API server, through the real @kubernetes/client-node
 * 2.x: the Lease lock (including N acquirers racing), the journal and audit log in a ConfigMap
 * (concurrent audit writers keep one chain), RBAC errors, and a whole rotation with the state in
 * the cluster.
 */

const NS = 'keyrot';
const MICROTIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

let dir: string;
let emu: KubernetesEmulator;
let kubeconfig: string;
const stores: StateStore[] = [];
const releases: Array<() => Promise<void>> = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-k8s-state-'));
  emu = new KubernetesEmulator();
  await emu.start();
  kubeconfig = await emu.writeKubeconfig(join(dir, 'kubeconfig'));
});

afterAll(async () => {
  await emu.stop();
  await rm(dir, { recursive: true, force: true });
});

let run = 0;
let base: string;
beforeEach(() => {
  // A fresh name per test: the emulator is shared, the objects are not.
  base = `t${++run}`;
  emu.allowAll();
  emu.seedNamespace(NS);
});

afterEach(async () => {
  for (const r of releases.splice(0)) await r().catch(() => {});
  stores.length = 0;
});

function store(opts: Partial<KubernetesStateOptions> = {}): StateStore {
  const s = kubernetesState({ namespace: NS, name: base, env: { KUBECONFIG: kubeconfig }, warn: () => {}, ...opts });
  stores.push(s);
  return s;
}

async function hold(s: StateStore, env: string, command = 'rotate', rotation?: string) {
  const lock = await s.acquireLock(env, { command, rotation });
  releases.push(() => lock.release());
  return lock;
}

/** Real timers drive the renewal: poll (up to 5 s) instead of guessing a delay. */
async function until(ok: () => boolean): Promise<void> {
  for (const end = Date.now() + 5000; !ok(); ) {
    if (Date.now() > end) throw new Error('condition not reached within 5 s');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const lease = (env: string) => emu.getObject('leases', NS, leaseName(base, env));
const configMap = () => emu.getConfigMap(NS, `${base}-state`);

describe('Lease lock', () => {
  it('acquires a Lease with the holder, MicroTime fields and annotations, and releases it', async () => {
    const s = store();
    const lock = await hold(s, 'production', 'rotate', 'r-1');
    expect(lock.path).toBe(`Lease ${NS}/${base}-production`);
    const l = lease('production')!;
    expect(l.spec.holderIdentity).toMatch(new RegExp(`^${hostname()}/${process.pid}/[0-9a-f]{12}$`));
    expect(l.spec.leaseDurationSeconds).toBe(60);
    expect(l.spec.acquireTime).toMatch(MICROTIME_RE);
    expect(l.spec.renewTime).toMatch(MICROTIME_RE);
    expect(l.metadata.annotations).toMatchObject({ 'keyrot.dev/command': 'rotate', 'keyrot.dev/rotation': 'r-1', 'keyrot.dev/pid': String(process.pid) });

    const info = (await s.readLock('production')) as LeaseLockInfo;
    expect(info).toMatchObject({ pid: process.pid, host: hostname(), command: 'rotate', rotation: 'r-1', holderIdentity: l.spec.holderIdentity });
    expect(Date.parse(info.expiresAt) - Date.parse(info.renewedAt)).toBe(60_000);
    expect(s.isStale(info)).toBe(false);
    expect(await s.readLock('staging')).toBeNull();

    await lock.release();
    await lock.release(); // idempotent
    expect(lease('production')).toBeUndefined();
    expect(await s.readLock('production')).toBeNull();
    await (await hold(s, 'production')).release();
  });

  it('a second acquire while held is LockedError naming the holder, from any store', async () => {
    const a = store();
    await hold(a, 'production', 'rotate', 'r-42');
    for (const s of [a, store()]) {
      const err = await s.acquireLock('production', { command: 'resume' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LockedError);
      expect((err as Error).message).toMatch(new RegExp(`locked by rotate \\(pid ${process.pid} on ${hostname()}, since .*rotation r-42; Lease ${NS}/${base}-production held by ${hostname()}/${process.pid}/`));
      expect((err as Error).message).toMatch(/expires by itself at \d{4}-/);
    }
    // Another environment is another Lease.
    await hold(store(), 'staging');
  });

  it('an expired Lease is taken over (leaseTransitions + 1); the old holder cannot release it any more', async () => {
    const t0 = Date.parse('2026-03-01T09:00:00Z');
    const old = store({ clock: fakeClock(t0), leaseSeconds: 10, renewEveryMs: 1e9 });
    const first = await old.acquireLock('production', { command: 'rotate' });
    const later = fakeClock(t0 + 11_000);
    const s = store({ clock: later, leaseSeconds: 10 });
    const info = (await s.readLock('production')) as LeaseLockInfo | null;
    expect(s.isStale(info!)).toBe(true);
    expect(old.isStale(info!)).toBe(false);
    const taken = await hold(s, 'production', 'resume');
    const l = lease('production')!;
    expect(l.spec.leaseTransitions).toBe(1);
    expect(l.spec.holderIdentity).not.toBe(info!.holderIdentity);
    expect(l.metadata.annotations['keyrot.dev/command']).toBe('resume');
    expect(taken.info.command).toBe('resume');
    // The old holder's release leaves the new holder's Lease alone (delete precondition + holder check).
    await first.release();
    expect(lease('production')?.spec.holderIdentity).toBe(l.spec.holderIdentity);
  });

  it('under contention: of 5 stores racing on one environment, exactly one wins (8 rounds)', async () => {
    const racers = Array.from({ length: 5 }, () => store());
    for (let round = 0; round < 8; round++) {
      const results = await Promise.allSettled(racers.map((s, i) => s.acquireLock('production', { command: `rotate#${i}` })));
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won.length, `round ${round}`).toBe(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(LockedError);
      const winner = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<StateStore['acquireLock']>>>).value;
      expect(lease('production')!.metadata.annotations['keyrot.dev/command']).toBe(winner.info.command);
      await winner.release();
    }
  });

  it('under contention on an expired Lease: of 5 take-overs exactly one wins, the others get 409 → LockedError (5 rounds)', async () => {
    const t0 = Date.parse('2026-03-01T09:00:00Z');
    let refused = 0;
    for (let round = 0; round < 5; round++) {
      const dead = store({ clock: fakeClock(t0 + round * 3_600_000), leaseSeconds: 5, renewEveryMs: 1e9 });
      await dead.acquireLock('production', { command: 'rotate' }); // never released nor renewed: a crashed holder
      const racers = Array.from({ length: 5 }, () => store({ clock: fakeClock(t0 + round * 3_600_000 + 60_000), leaseSeconds: 5 }));
      const seen = emu.server.requests.length;
      const results = await Promise.allSettled(racers.map((s) => s.acquireLock('production', { command: 'resume' })));
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won.length, `round ${round}`).toBe(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(LockedError);
      // Every take-over PUT but the winner's was refused with 409 (racers that read after the
      // winner's PUT saw a live holder and sent none).
      const puts = emu.server.requests.slice(seen).filter((r) => r.method === 'PUT' && r.path.includes('/leases/'));
      expect(puts.filter((r) => r.status === 200).length).toBe(1);
      expect(puts.filter((r) => r.status !== 200).every((r) => r.status === 409)).toBe(true);
      refused += puts.filter((r) => r.status === 409).length;
      expect(lease('production')!.spec.leaseTransitions).toBe(1);
      await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<StateStore['acquireLock']>>>).value.release();
    }
    expect(refused).toBeGreaterThan(0);
  });

  it('renews the held Lease periodically, and warns when another keyrot took it over', async () => {
    const warnings: string[] = [];
    const s = store({ renewEveryMs: 40, leaseSeconds: 2, warn: (m) => warnings.push(m) });
    await hold(s, 'production');
    const acquired = lease('production')!.spec.renewTime as string;
    await until(() => Date.parse(lease('production')!.spec.renewTime) > Date.parse(acquired));
    const renewed = lease('production')!.spec.renewTime as string;
    expect(renewed).toMatch(MICROTIME_RE);
    expect(Date.parse(renewed)).toBeGreaterThan(Date.parse(acquired));
    expect(lease('production')!.spec.acquireTime).toMatch(MICROTIME_RE);

    // A holder that looked dead to someone else (here: a clock far ahead) loses it.
    const thief = store({ clock: fakeClock(Date.now() + 60_000), leaseSeconds: 2 });
    await hold(thief, 'production', 'resume');
    await until(() => warnings.length > 0);
    expect(warnings.join('\n')).toMatch(new RegExp(`lost its lock, the Lease ${NS}/${base}-production: it is now held by ${hostname()}/`));
    expect(lease('production')!.metadata.annotations['keyrot.dev/command']).toBe('resume');
  });

  it('release without delete permission empties holderIdentity instead (client-go style)', async () => {
    const s = store();
    const lock = await s.acquireLock('production', { command: 'rotate' });
    emu.deny('delete', 'leases');
    await lock.release();
    expect(lease('production')!.spec.holderIdentity).toBe('');
    expect(await s.readLock('production')).toBeNull();
    emu.allowAll();
    await hold(store(), 'production');
    expect(lease('production')!.spec.leaseTransitions).toBe(1);
  });

  it('403 on Leases is a permission error naming verb, resource and the grant', async () => {
    emu.deny('create', 'leases');
    const err = await store().acquireLock('production', { command: 'rotate' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TargetError);
    expect((err as TargetError).kind).toBe('permission');
    expect((err as Error).message).toBe(
      `Kubernetes denied create on leases.coordination.k8s.io/${base}-production in namespace ${NS} to ${emu.user}: keyrot's state (state: kubernetes) needs get, create, update and delete on leases (coordination.k8s.io) named ${base}-production in namespace ${NS}; see deploy/kubernetes/role.yaml`,
    );
  });

  it('Lease names are valid DNS-1123 names and distinct per environment', () => {
    const dns = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
    expect(leaseName('keyrot', 'production')).toBe('keyrot-production');
    for (const env of ['Prod', 'prod_eu', 'prod.eu', 'A'.repeat(300)]) {
      const n = leaseName('keyrot', env);
      expect(n).toMatch(dns);
      expect(n.length).toBeLessThanOrEqual(253);
    }
    expect(leaseName('keyrot', 'Prod')).not.toBe(leaseName('keyrot', 'prod'));
    expect(leaseName('keyrot', 'prod_eu')).not.toBe(leaseName('keyrot', 'prod-eu'));
  });
});

describe('journal and audit log in a ConfigMap', () => {
  it('appends and reads journal lines per environment, creating the ConfigMap on first use', async () => {
    const s = store();
    expect(await s.readJournalText('production')).toBe('');
    expect(await s.journalEnvs()).toEqual([]);
    await s.appendJournalLine('production', () => '{"n":1}');
    await s.appendJournalLine('staging', () => '{"n":2}');
    await Promise.all([s.appendJournalLine('production', () => '{"n":3}'), s.appendJournalLine('production', () => '{"n":4}')]);
    expect(await s.readJournalText('production')).toBe('{"n":1}\n{"n":3}\n{"n":4}\n');
    expect(await store().readJournalText('staging')).toBe('{"n":2}\n');
    expect((await s.journalEnvs()).sort()).toEqual(['production', 'staging']);
    const cm = configMap()!;
    expect(Object.keys(cm.data).sort()).toEqual(['journal.production.ndjson', 'journal.staging.ndjson']);
    expect(cm.object.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'keyrot' });
    expect(s.where).toBe(`ConfigMap ${NS}/${base}-state (Leases ${base}-<env>)`);
  });

  it('two stores creating the ConfigMap at once: AlreadyExists → re-read, nothing lost', async () => {
    const [a, b] = [store(), store()];
    await Promise.all([a.appendJournalLine('production', () => 'a'), b.appendJournalLine('production', () => 'b')]);
    expect((await a.readJournalText('production')).split('\n').filter(Boolean).sort()).toEqual(['a', 'b']);
  });

  it('a write that meets a concurrent change (409) re-reads and retries', async () => {
    const s = store();
    await s.appendJournalLine('production', () => 'one');
    emu.conflictNext({ resource: 'configmaps', times: 3 });
    await s.appendJournalLine('production', () => 'two');
    expect(await s.readJournalText('production')).toBe('one\ntwo\n');
  });

  it('audit appends from 5 concurrent writers keep one unbroken hash chain', async () => {
    const writers = Array.from({ length: 5 }, () => store());
    await Promise.all(
      writers.map(async (w, i) => {
        for (let j = 0; j < 6; j++) await appendAudit(w, { event: 'test', env: 'production', details: { writer: i, j } });
      }),
    );
    const { entries, broken } = await readAudit(store());
    expect(broken).toEqual([]);
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(new Set(entries.map((e) => `${(e.details as { writer: number }).writer}/${(e.details as { j: number }).j}`)).size).toBe(30);
    expect(Object.keys(configMap()!.data)).toEqual(['audit.ndjson']);
  });

  it('403 on the ConfigMap is a permission error naming verb and resource', async () => {
    const s = store();
    emu.deny('get', 'configmaps');
    const read = await s.readJournalText('production').catch((e: unknown) => e);
    expect(read).toBeInstanceOf(TargetError);
    expect((read as TargetError).kind).toBe('permission');
    expect((read as Error).message).toBe(
      `Kubernetes denied get on configmaps/${base}-state in namespace ${NS} to ${emu.user}: keyrot's state (state: kubernetes) needs get, create and update on configmaps named ${base}-state in namespace ${NS}; see deploy/kubernetes/role.yaml`,
    );
    emu.allowAll();
    emu.deny('create', 'configmaps');
    await expect(s.appendJournalLine('production', () => 'x')).rejects.toThrow(`Kubernetes denied create on configmaps/${base}-state in namespace ${NS}`);
    emu.allowAll();
    await s.appendJournalLine('production', () => 'x');
    emu.deny('update', 'configmaps');
    await expect(store().appendJournalLine('production', () => 'y')).rejects.toThrow(/denied update on configmaps\/.*-state .*needs get, create and update/);
  });

  it('a missing namespace is named as such', async () => {
    const s = kubernetesState({ namespace: 'nowhere', name: base, env: { KUBECONFIG: kubeconfig } });
    await expect(s.appendJournalLine('production', () => 'x')).rejects.toThrow(/namespace nowhere does not exist/);
  });

  it('refuses an append that would pass the 1 MiB ConfigMap limit, and warns at 80%', async () => {
    const warnings: string[] = [];
    emu.seedConfigMap(NS, `${base}-state`, { 'journal.old.ndjson': 'x'.repeat(Math.ceil(CONFIGMAP_LIMIT_BYTES * 0.85)) });
    const s = store({ warn: (m) => warnings.push(m) });
    await s.appendJournalLine('production', () => 'fits');
    expect(warnings.join()).toMatch(/uses 8\d% of Kubernetes' 1 MiB limit/);
    const err = await s.appendJournalLine('production', () => 'y'.repeat(CONFIGMAP_LIMIT_BYTES * 0.2)).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(new RegExp(`state ConfigMap ${NS}/${base}-state would exceed Kubernetes' 1 MiB ConfigMap limit`));
    expect(await s.readJournalText('production')).toBe('fits\n');
  });
});

describe('emulator: core/v1 ConfigMaps', () => {
  it('get/create/replace with resourceVersion conflicts, 404, 422 over 1 MiB, 403', async () => {
    const k8s = await import('@kubernetes/client-node');
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfig);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const name = `${base}-cm`;
    const code = (p: Promise<unknown>) => p.then(() => 0, (e: { code: number; body: unknown }) => ({ code: e.code, body: typeof e.body === 'string' ? JSON.parse(e.body) : e.body }));
    expect(await code(core.readNamespacedConfigMap({ name, namespace: NS }))).toMatchObject({ code: 404, body: { reason: 'NotFound', message: `configmaps "${name}" not found` } });
    const made = await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name }, data: { a: '1' } } });
    expect(made.metadata?.resourceVersion).toBeTruthy();
    expect(await code(core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name }, data: {} } }))).toMatchObject({ code: 409, body: { reason: 'AlreadyExists' } });
    const next = await core.replaceNamespacedConfigMap({ name, namespace: NS, body: { ...made, data: { a: '2' } } });
    expect(next.metadata?.resourceVersion).not.toBe(made.metadata?.resourceVersion);
    expect(await code(core.replaceNamespacedConfigMap({ name, namespace: NS, body: { ...made, data: { a: '3' } } }))).toMatchObject({ code: 409, body: { reason: 'Conflict' } });
    expect(await code(core.replaceNamespacedConfigMap({ name, namespace: NS, body: { ...next, data: { big: 'x'.repeat(CONFIGMAP_MAX_BYTES) } } }))).toMatchObject({
      code: 422,
      body: { reason: 'Invalid', message: `ConfigMap "${name}" is invalid: []: Too long: must have at most 1048576 bytes` },
    });
    expect(await code(core.replaceNamespacedConfigMap({ name, namespace: NS, body: { ...next, data: { 'bad/key': 'x' } } }))).toMatchObject({ code: 422 });
    emu.deny('update', 'configmaps', { name });
    expect(await code(core.replaceNamespacedConfigMap({ name, namespace: NS, body: next }))).toMatchObject({ code: 403, body: { reason: 'Forbidden' } });
    expect(emu.getConfigMap(NS, name)!.data).toEqual({ a: '2' });
  });
});

describe('inventory defaults', () => {
  it('namespace from the pod service account, else default; name keyrot; bad names are inventory errors', async () => {
    const sa = join(dir, `sa-${base}`);
    await mkdir(sa, { recursive: true });
    expect(kubernetesStateFromConfig({}, {}, { serviceAccountDir: sa }).where).toBe('ConfigMap default/keyrot-state (Leases keyrot-<env>)');
    await writeFile(join(sa, 'namespace'), 'ops\n');
    expect(kubernetesStateFromConfig({}, {}, { serviceAccountDir: sa }).where).toBe('ConfigMap ops/keyrot-state (Leases keyrot-<env>)');
    expect(kubernetesStateFromConfig({ namespace: 'x', name: 'rot' }, {}, { serviceAccountDir: sa }).where).toBe('ConfigMap x/rot-state (Leases rot-<env>)');
    expect(() => kubernetesStateFromConfig({ name: 'Bad_Name' }, {})).toThrow(ConfigError);
    expect(() => kubernetesStateFromConfig({ namespace: 'a.b' }, {})).toThrow(ConfigError);
  });

  it('no cluster configuration is a clear error, raised on first use (client-node is loaded lazily)', async () => {
    const s = kubernetesStateFromConfig({}, { HOME: dir });
    await expect(s.readAuditText()).rejects.toThrow(/no Kubernetes configuration/);
  });
});

describe('the engine with state: kubernetes', () => {
  it('a rotation of two file/dotenv targets journals, audits and locks in the cluster', async () => {
    const work = join(dir, `work-${base}`);
    await mkdir(work, { recursive: true });
    const oldKey = testKey();
    const newKey = testKey();
    await writeFile(join(work, '.env'), `APP=1\nOPENAI_API_KEY=${oldKey}\n`);
    await writeFile(join(work, 'openai_api_key'), oldKey);
    const file = join(work, 'targets.yaml');
    const yaml = [
      'version: 1',
      'key:',
      '  source: stdin',
      '  verify: false',
      'environments:',
      '  production:',
      '    targets:',
      '      - type: dotenv',
      '        path: .env',
      '      - type: file',
      '        path: openai_api_key',
      '',
    ].join('\n');
    await writeFile(file, yaml);
    const inventory = await parseInventory(yaml, file);
    const s = store();
    const clock: Clock = { now: () => Date.now(), sleep: async () => {} };
    const o: EngineOptions = {
      inventory,
      env: selectEnvironment(inventory, 'production'),
      processEnv: {},
      clock,
      logger: silentLogger,
      state: s,
      reporter: silentReporter,
      interactive: false,
      yes: true,
      random: () => 0.5,
    };
    const rep = await rotate(o, { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) });
    expect(rep.outcome).toBe('awaiting-revocation');
    expect(await readFile(join(work, 'openai_api_key'), 'utf8')).toBe(newKey);
    expect(await readFile(join(work, '.env'), 'utf8')).toContain(`OPENAI_API_KEY=${newKey}`);

    const cm = configMap()!;
    const journal = cm.data['journal.production.ndjson']!;
    expect(journal.split('\n').filter(Boolean).map((l) => JSON.parse(l).step)).toEqual(expect.arrayContaining(['start', 'write', 'verify', 'verified-all', 'end']));
    const last = await latestRotation(store(), 'production');
    expect(last?.outcome).toBe('awaiting-revocation');
    expect(last?.newFingerprint).toBe(new Secret(newKey).fingerprint);
    expect((await readJournal(s, 'production')).length).toBeGreaterThan(5);
    expect(await readAudit(s)).toMatchObject({ broken: [] });
    // Invariant 3: neither key is in the cluster state, in any form.
    const all = JSON.stringify(cm.object);
    for (const k of [oldKey, newKey]) {
      expect(all).not.toContain(k);
      expect(all).not.toContain(Buffer.from(k).toString('base64'));
    }
    // The lock was released; its Lease is gone.
    expect(lease('production')).toBeUndefined();
    expect(emu.writes.leases).toBeGreaterThan(0);
    // Size estimate for the README: one rotation of two targets.
    const bytes = Buffer.byteLength(journal) + Buffer.byteLength(cm.data['audit.ndjson'] ?? '');
    expect(bytes).toBeLessThan(16 * 1024);
  });
});

describe('deploy/kubernetes manifests', () => {
  const docs = async (f: string) => {
    const { parseAllDocuments } = await import('yaml');
    return parseAllDocuments(await readFile(join('deploy/kubernetes', f), 'utf8')).map((d) => d.toJS() as Record<string, any>);
  };

  it('the inventory ConfigMap is a valid targets.yaml with state: kubernetes', async () => {
    const [cm] = await docs('configmap-inventory.yaml');
    const inv = await parseInventory(cm!.data['targets.yaml'], '/config/targets.yaml');
    expect(inv.config.state).toBe('kubernetes');
    expect(inv.environments.get('production')!.targets.map((t) => t.type)).toEqual(['kubernetes']);
  });

  it('the state Role grants what the store uses, on its names; create alone is unrestricted', async () => {
    const roles = await docs('role.yaml');
    const state = roles.find((r) => r.metadata.name === 'keyrot-state')!;
    const grants = (resource: string) => state.rules.filter((r: any) => r.resources.includes(resource));
    expect(grants('leases')).toEqual([
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [leaseName('keyrot', 'production')], verbs: ['get', 'update', 'delete'] },
    ]);
    expect(grants('configmaps')).toEqual([
      { apiGroups: [''], resources: ['configmaps'], verbs: ['create'] },
      { apiGroups: [''], resources: ['configmaps'], resourceNames: ['keyrot-state', 'keyrot-anchor'], verbs: ['get', 'update'] },
    ]);
    // The state key: read; created on first use only.
    expect(grants('secrets')).toEqual([
      { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
      { apiGroups: [''], resources: ['secrets'], resourceNames: ['keyrot-state-key'], verbs: ['get'] },
    ]);
    const bindings = await docs('rolebinding.yaml');
    expect(bindings.map((b) => [b.metadata.namespace, b.roleRef.name, b.subjects[0].name])).toEqual([
      ['keyrot', 'keyrot-state', 'keyrot'],
      ['default', 'keyrot-target', 'keyrot'],
    ]);
  });

  it('the CronJob runs schedule --once as non-root on a read-only root filesystem, Forbid', async () => {
    const [cj] = await docs('cronjob.yaml');
    expect(cj!.spec.concurrencyPolicy).toBe('Forbid');
    expect(cj!.spec.startingDeadlineSeconds).toBeGreaterThan(0);
    const pod = cj!.spec.jobTemplate.spec.template.spec;
    expect(cj!.spec.jobTemplate.spec.backoffLimit).toBeGreaterThanOrEqual(0);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001 });
    const c = pod.containers[0];
    expect(c.args).toEqual(['schedule', '--once', '-c', '/config/targets.yaml']);
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(c.volumeMounts).toEqual(expect.arrayContaining([{ name: 'tmp', mountPath: '/tmp' }]));
    expect(c.env.find((e: any) => e.name === 'OPENAI_NEW_KEY').valueFrom.secretKeyRef).toMatchObject({ name: 'keyrot-credentials' });
    expect(JSON.stringify(cj)).not.toMatch(/sk-/);
  });
});
