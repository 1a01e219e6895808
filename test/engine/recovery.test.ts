import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fakeClock } from '../../src/runtime/clock.ts';
import { ExitError } from '../../src/core/errors.ts';
import { Journal, journalPath, readJournal, type JournalEvent } from '../../src/state/journal.ts';
import { latestRotation, replay } from '../../src/machine/state.ts';
import { lockPath } from '../../src/state/lock.ts';
import { resume } from '../../src/usecases/resume.ts';
import { revoke } from '../../src/usecases/revoke.ts';
import { rotate } from '../../src/usecases/rotate.ts';
import { type EngineOptions } from '../../src/machine/run.ts';
import { localState } from '../../src/state/local.ts';
import type { KeyIssuer, MintedKey } from '../../src/keys/openai-admin.ts';
import { Secret } from '../../src/core/secret.ts';
import { testKey } from '../helpers/keys.ts';
import { messagesOf } from '../helpers/messages.ts';
import { MemoryStore, memoryEngine, memoryTargets, type FaultPlan, memoryInventory } from '../helpers/memory-target.ts';
import { engineOptions, type TargetInput } from '../helpers/engine-options.ts';
import { killableState } from '../helpers/killable-state.ts';
import { awsEnv, startEmulator as startAwsEmulator } from '../helpers/aws-secrets-manager-fixture.ts';
import { awsSecretsManager } from '../../src/targets/aws-secrets-manager/index.ts';
import type { StateRef } from '../../src/state/store.ts';

const AWS_SECRET = 'recovery/openai-api-key';

/**
 * Crash/resume/report scenarios of the engine that the random properties do not reach: each one
 * was a bug (see the test names).
 */

let stateDir: string;
beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'keyrot-recovery-'));
});
afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

function plan(p: Partial<FaultPlan>): FaultPlan {
  return { readBack: true, write: [], verify: [], restore: [], ...p };
}

function engine(store: MemoryStore, n: number, extra: Partial<EngineOptions> = {}): EngineOptions {
  return memoryEngine(store, n, stateDir, { retry: { attempts: 3 }, ...extra });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the journal satisfies `pred` (the abandoned run got that far), then lets in-flight appends land. */
async function until(pred: (ev: JournalEvent[]) => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (pred(await readJournal(stateDir, 'test'))) {
      await sleep(20);
      return;
    }
    await sleep(5);
  }
  throw new Error('the abandoned rotation never got there');
}

/** The abandoned run's process is "dead": its lock names a pid that no longer exists on this host. */
async function deadLock(): Promise<void> {
  await writeFile(lockPath(stateDir, 'test'), JSON.stringify({ pid: 2 ** 22 + 4242, host: hostname(), at: new Date().toISOString() }));
}

function fakeIssuer(): KeyIssuer & { revoked: Array<Record<string, unknown>> } {
  const revoked: Array<Record<string, unknown>> = [];
  return {
    revoked,
    issue: async () => {
      throw new Error('not used');
    },
    find: async () => null,
    revoke: async (opts: { keyId?: string; serviceAccountId?: string }) => {
      revoked.push({ keyId: opts.keyId, serviceAccountId: opts.serviceAccountId });
      return { revoked: true, alreadyGone: false, detail: 'deleted' };
    },
    lastUsedAt: async () => null,
    usage: async () => ({ requests: 0, inputTokens: 0, outputTokens: 0, byModel: [] }),
  } as unknown as KeyIssuer & { revoked: Array<Record<string, unknown>> };
}

function minted(value: string): MintedKey {
  return { key: new Secret(value), keyId: 'key_test_minted', serviceAccountId: 'svc_test_minted', name: 'keyrot-test', expiresAt: null };
}

describe('resume', () => {
  it('redeploys a target killed between its verify and its redeploy (the app would still run the old key)', async () => {
    const store = new MemoryStore();
    const oldKey = testKey();
    const newKey = testKey();
    for (let i = 0; i < 2; i++) store.set(`t${i}`, oldKey);
    // t0 needs a restart to take the new key; the process dies while it redeploys.
    store.plans.set('t0', plan({ redeploy: ['hang'] }));
    void rotate(engine(store, 2), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) });
    // ...and its redeploy call has started (took the 'hang' fault): killing before that would
    // leave the fault to the resumed run, which would then hang instead.
    await until(
      (ev) =>
        ev.some((e) => e.step === 'verify' && e.target === 't0' && e.outcome === 'ok') &&
        ev.some((e) => e.step === 'verify' && e.target === 't1') &&
        store.plans.get('t0')!.redeploy!.length === 0,
    );
    store.kill(); // the abandoned run is dead: none of its calls reaches the store any more
    await deadLock();

    const rep = await resume(engine(store, 2), { rollback: false });
    expect(rep.outcome).toBe('awaiting-revocation');
    // Invariant 1: "verified" for t0 includes its consumers running the new key.
    expect(store.redeploys.get('t0')).toBe(1);
    const ev = await readJournal(stateDir, 'test');
    const redeployAt = ev.findIndex((e) => e.step === 'redeploy' && e.target === 't0' && e.outcome === 'ok');
    const verifiedAllAt = ev.findIndex((e) => e.step === 'verified-all');
    expect(redeployAt).toBeGreaterThan(-1);
    expect(redeployAt).toBeLessThan(verifiedAllAt);
  });

  it('replay: a redeploy from before a restore or re-write does not count for the new write', () => {
    const base = { v: 1 as const, rotation: 'rot_x', env: 'test', at: '2026-01-01T00:00:00.000Z' };
    const ev: JournalEvent[] = [
      { ...base, step: 'start', outcome: 'ok', targets: [{ name: 't0', type: 'file', location: 'm', old: 'aaa', readBack: true }] },
      { ...base, step: 'key', outcome: 'ok', fingerprint: 'bbb' },
      { ...base, step: 'write', target: 't0', outcome: 'ok', fingerprint: 'bbb' },
      { ...base, step: 'verify', target: 't0', outcome: 'ok', method: 'read-back' },
      { ...base, step: 'redeploy', target: 't0', outcome: 'ok', method: 'redeploy' },
      { ...base, step: 'restore', target: 't0', outcome: 'ok', fingerprint: 'aaa' },
      { ...base, step: 'write', target: 't0', outcome: 'ok', fingerprint: 'bbb' },
      { ...base, step: 'verify', target: 't0', outcome: 'ok', method: 'read-back' },
    ];
    const t = replay(ev)[0]!.targets.get('t0')!;
    expect(t.verified).toBeTruthy();
    expect(t.redeployed).toBe(false);
  });

  it('--rollback restores a write-only target whose write was in flight at the crash', async () => {
    const store = new MemoryStore();
    const oldKey = testKey();
    const newKey = testKey();
    for (let i = 0; i < 3; i++) store.set(`t${i}`, oldKey);
    store.plans.set('t0', plan({}));
    // t1 is write-only: the provider applied the write, then the process died before journaling it.
    store.plans.set('t1', plan({ readBack: false, write: ['hang-after-write'] }));
    // t2 never got its write: it still holds (and shows) the old key.
    store.plans.set('t2', plan({ write: ['hang'] }));
    void rotate(engine(store, 3), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) });
    // The provider applied t1's write (its answer never comes), and t0's write is journaled.
    await until((ev) => store.values.get('t1') === newKey && ev.some((e) => e.step === 'write' && e.target === 't0' && e.outcome === 'ok'));
    store.kill(); // the abandoned run is dead: none of its calls reaches the store any more
    await deadLock();

    const rep = await resume(engine(store, 3), { rollback: true });
    expect(rep.outcome).toBe('rolled-back');
    // "every target holds the old key" must be true.
    for (let i = 0; i < 3; i++) expect(store.values.get(`t${i}`)).toBe(oldKey);
  });

  it('--rollback removes the new key AWS Secrets Manager staged, though AWSCURRENT still reads the old one', async () => {
    // Found by kill-points.test.ts: the write stages the key as AWSPENDING (promoted once
    // verified); a read shows AWSCURRENT, the old key, so resume took the target for untouched
    // and left the new key staged in the secret after "every target holds the old key".
    const emu = await startAwsEmulator();
    try {
      const store = new MemoryStore();
      const oldKey = testKey();
      const newKey = testKey();
      emu.seed(AWS_SECRET, oldKey);
      store.set('t0', oldKey);
      store.plans.set('t0', plan({ write: ['hang'] }));
      const aws: TargetInput = { name: 'aws', definition: awsSecretsManager, config: { secret: AWS_SECRET, region: 'us-east-1', endpoint: emu.url } };
      const options = (state: StateRef) => engineOptions([...memoryTargets(store, 1), aws], state, { retry: { attempts: 3 }, processEnv: awsEnv(emu) });
      void rotate(options(await killableState(stateDir, () => store.generation > 0)), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) });
      await until((ev) => ev.some((e) => e.step === 'write' && e.target === 'aws' && e.outcome === 'ok'));
      expect(emu.value(AWS_SECRET, 'AWSPENDING')).toBe(newKey);
      store.kill();
      await deadLock();

      const rep = await resume(options(stateDir), { rollback: true });
      expect(rep.outcome).toBe('rolled-back');
      expect(emu.value(AWS_SECRET)).toBe(oldKey);
      expect(emu.value(AWS_SECRET, 'AWSPENDING')).toBeUndefined();
    } finally {
      await emu.stop();
    }
  });

  it('--rollback deletes the key minted for the rotation (nothing holds it any more)', async () => {
    const store = new MemoryStore();
    const oldKey = testKey();
    const newKey = testKey();
    for (let i = 0; i < 2; i++) store.set(`t${i}`, oldKey);
    store.plans.set('t1', plan({ write: ['hang'] }));
    const issuer = fakeIssuer();
    void rotate(engine(store, 2, { admin: async () => issuer }), { mode: 'rotate', source: 'openai-admin', obtainKey: async () => minted(newKey) });
    await until((ev) => ev.some((e) => e.step === 'write' && e.target === 't0'));
    store.kill(); // the abandoned run is dead: none of its calls reaches the store any more
    await deadLock();

    const rep = await resume(engine(store, 2, { admin: async () => issuer }), { rollback: true });
    expect(rep.outcome).toBe('rolled-back');
    expect(issuer.revoked).toEqual([{ keyId: 'key_test_minted', serviceAccountId: 'svc_test_minted' }]);
  });

  it('an emergency rotation resumed on a terminal has no grace period', async () => {
    const store = new MemoryStore();
    const oldKey = testKey();
    const newKey = testKey();
    for (let i = 0; i < 2; i++) store.set(`t${i}`, oldKey);
    store.plans.set('t1', plan({ write: ['hang'] }));
    void rotate(engine(store, 2), { mode: 'emergency', source: 'stdin', obtainKey: async () => new Secret(newKey) });
    await until((ev) => ev.some((e) => e.step === 'write' && e.target === 't0'));
    store.kill(); // the abandoned run is dead: none of its calls reaches the store any more
    await deadLock();

    const o = engine(store, 2, { interactive: true, yes: false, confirmRevocation: async () => false });
    o.inventory.config.revoke.grace = 600_000;
    const rep = await resume(o, { rollback: false });
    expect(rep.outcome).toBe('awaiting-revocation');
    expect((o.clock as ReturnType<typeof fakeClock>).slept).not.toContain(600_000);
  });

  it('a resume refused by preflight reports what each target really holds', async () => {
    const store = new MemoryStore();
    const oldKey = testKey();
    const newKey = testKey();
    for (let i = 0; i < 2; i++) store.set(`t${i}`, oldKey);
    store.plans.set('t1', plan({ write: ['hang'] }));
    void rotate(engine(store, 2), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) });
    await until((ev) => ev.some((e) => e.step === 'write' && e.target === 't0'));
    store.kill(); // the abandoned run is dead: none of its calls reaches the store any more
    await deadLock();
    store.plans.set('t1', plan({ preflightError: 'memory: credentials expired' }));

    const rep = await resume(engine(store, 2), { rollback: false });
    expect(rep.outcome).toBe('interrupted');
    const t0 = rep.targets.find((t) => t.name === 't0')!;
    const t1 = rep.targets.find((t) => t.name === 't1')!;
    expect(store.values.get('t0')).toBe(newKey);
    expect(t0.holds).toBe('new');
    expect(t0.fingerprint).toBe(new Secret(newKey).fingerprint);
    expect(t1.holds).toBe('unknown');
  });
});

describe('resume --rollback after the old key was revoked', () => {
  it('is refused: it would put every target on a dead key', async () => {
    const store = new MemoryStore();
    const oldKey = testKey();
    const newKey = testKey();
    for (let i = 0; i < 2; i++) store.set(`t${i}`, oldKey);
    store.plans.set('t1', plan({ write: ['fail'] }));
    const rep = await rotate(engine(store, 2), { mode: 'emergency', source: 'stdin', obtainKey: async () => new Secret(newKey), revokeFirst: async () => true });
    expect(rep.outcome).toBe('interrupted');
    expect(store.values.get('t0')).toBe(newKey);

    await expect(resume(engine(store, 2), { rollback: true })).rejects.toThrow(/revoked/);
    expect(store.values.get('t0')).toBe(newKey);
    // Finishing it forward still works.
    const done = await resume(engine(store, 2), { rollback: false });
    expect(done.outcome).toBe('completed');
    for (let i = 0; i < 2; i++) expect(store.values.get(`t${i}`)).toBe(newKey);
  });
});

describe('resume races', () => {
  it('a resume that waited for the lock does not continue a rotation another resume rolled back meanwhile', async () => {
    const store = new MemoryStore();
    const oldKey = testKey();
    const newKey = testKey();
    for (let i = 0; i < 2; i++) store.set(`t${i}`, oldKey);
    store.plans.set('t1', plan({ write: ['hang'] }));
    void rotate(engine(store, 2), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) });
    await until((ev) => ev.some((e) => e.step === 'write' && e.target === 't0'));
    store.kill(); // the abandoned run is dead: none of its calls reaches the store any more
    await deadLock();

    // B (the scheduler resuming at start) read the journal; before it takes the lock, the operator's
    // `resume --rollback` (A) runs to its end.
    const local = localState(stateDir);
    let rolledBack: Promise<unknown> | undefined;
    const racing = {
      ...local,
      acquireLock: async (env: string, meta: { rotation?: string; command: string }) => {
        rolledBack ??= resume(engine(store, 2), { rollback: true });
        await rolledBack;
        return local.acquireLock(env, meta);
      },
    };
    const b = resume(engine(store, 2, { state: racing }), { rollback: false, newKey: { source: 'stdin', obtain: async () => new Secret(newKey) } });
    await expect(b).rejects.toThrow(/nothing to resume/);
    expect(((await rolledBack) as { outcome: string }).outcome).toBe('rolled-back');
    for (let i = 0; i < 2; i++) expect(store.values.get(`t${i}`)).toBe(oldKey);
    expect((await latestRotation(stateDir, 'test'))?.outcome).toBe('rolled-back');
  });
});

describe('rotate', () => {
  it('a refused rotation does not report a target that failed preflight as empty', async () => {
    const store = new MemoryStore();
    const oldKey = testKey();
    for (let i = 0; i < 2; i++) store.set(`t${i}`, oldKey);
    store.plans.set('t1', plan({ preflightError: 'memory: permission denied' }));
    const rep = await rotate(engine(store, 2), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(testKey()) });
    expect(rep.outcome).toBe('refused');
    expect(store.values.get('t1')).toBe(oldKey);
    expect(rep.targets.find((t) => t.name === 't1')!.holds).toBe('unknown');
  });

  it('a write-only target whose roll-forward failed is not reported as holding the new key', async () => {
    const store = new MemoryStore();
    const newKey = testKey();
    for (let i = 0; i < 2; i++) store.set(`t${i}`, testKey());
    // Both write-only: nobody can read the old key, so a failure rolls forward instead of back.
    store.plans.set('t0', plan({ readBack: false, write: ['ok', 'corrupt', 'corrupt', 'corrupt'] }));
    store.plans.set('t1', plan({ readBack: false, write: ['fail'] }));
    const rep = await rotate(engine(store, 2), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(newKey) });
    expect(rep.outcome).toBe('interrupted');
    for (const t of rep.targets) {
      if (t.holds === 'new') expect(store.values.get(t.name)).toBe(newKey);
    }
    expect(store.values.get('t0')).not.toBe(newKey);
    expect(rep.targets.find((t) => t.name === 't0')!.holds).toBe('unknown');
  });

  it('a key minted for a rotation whose live check fails is deleted again', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'Incorrect API key provided', code: 'invalid_api_key' } }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const store = new MemoryStore();
      for (let i = 0; i < 2; i++) store.set(`t${i}`, testKey());
      const issuer = fakeIssuer();
      const { inventory, env } = memoryInventory(store, 2, { verify: true });
      const o: EngineOptions = {
        ...engine(store, 2, { admin: async () => issuer }),
        inventory,
        env,
        processEnv: { OPENAI_BASE_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1` },
      };
      const err = await rotate(o, { mode: 'rotate', source: 'openai-admin', obtainKey: async () => minted(testKey()) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ExitError);
      expect(issuer.revoked).toEqual([{ keyId: 'key_test_minted', serviceAccountId: 'svc_test_minted' }]);
    } finally {
      server.close();
    }
  });
});

describe('revocation step', () => {
  it('with only write-only targets the old key is unknown, not absent: the rotation awaits its revocation', async () => {
    const store = new MemoryStore();
    const oldKey = testKey();
    for (let i = 0; i < 2; i++) {
      store.set(`t${i}`, oldKey);
      store.plans.set(`t${i}`, plan({ readBack: false }));
    }
    const rep = await rotate(engine(store, 2), { mode: 'emergency', source: 'stdin', obtainKey: async () => new Secret(testKey()) });
    expect(rep.outcome).toBe('awaiting-revocation');
    expect((await latestRotation(stateDir, 'test'))?.outcome).toBe('awaiting-revocation');
    const rev = await revoke(engine(store, 2));
    expect(rev.outcome).toBe('completed');
  });

  it('targets that held nothing before: nothing to revoke', async () => {
    const store = new MemoryStore();
    const rep = await rotate(engine(store, 2), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(testKey()) });
    expect(rep.outcome).toBe('completed');
  });
});

describe('pending revocation', () => {
  it('survives a later rotation that failed: rotate still refuses, revoke still records it', async () => {
    const store = new MemoryStore();
    const k0 = testKey();
    const k1 = testKey();
    for (let i = 0; i < 2; i++) store.set(`t${i}`, k0);
    const r1 = await rotate(engine(store, 2), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(k1) });
    expect(r1.outcome).toBe('awaiting-revocation');
    // An emergency rotation goes ahead regardless, fails, and restores every target to k1.
    store.plans.set('t1', plan({ write: ['fail'] }));
    const r2 = await rotate(engine(store, 2), { mode: 'emergency', source: 'stdin', obtainKey: async () => new Secret(testKey()) });
    expect(r2.outcome).toBe('failed');
    for (let i = 0; i < 2; i++) expect(store.values.get(`t${i}`)).toBe(k1);

    // k0 was never revoked: a new scheduled rotation must not bury it.
    await expect(rotate(engine(store, 2), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(testKey()) })).rejects.toThrow(
      /awaiting revocation/,
    );
    const rev = await revoke(engine(store, 2));
    expect(rev.outcome).toBe('completed');
    expect(rev.rotation).toBe(r1.rotation);
    expect(rev.old?.fingerprint).toBe(new Secret(k0).fingerprint);
  });

  it('an emergency rotation over a pending revocation says that key still needs revoking', async () => {
    const store = new MemoryStore();
    const k0 = testKey();
    for (let i = 0; i < 2; i++) store.set(`t${i}`, k0);
    await rotate(engine(store, 2), { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(testKey()) });
    const r2 = await rotate(engine(store, 2), { mode: 'emergency', source: 'stdin', obtainKey: async () => new Secret(testKey()) });
    expect(r2.outcome).toBe('awaiting-revocation');
    expect(messagesOf(r2).join('\n')).toContain(new Secret(k0).fingerprint);
  });
});

describe('journal', () => {
  it('an event appended after a torn last line is not lost', async () => {
    await mkdir(join(stateDir, 'journal'), { recursive: true });
    // A crash mid-append left half a line without its newline.
    await writeFile(journalPath(stateDir, 'test'), '{"v":1,"rotation":"rot_a","env":"test","step":"start","outcome":"ok","at":"2026-01-01T00:00:00.000Z"}\n{"v":1,"rotation":"rot_a","env":"te');
    await new Journal(stateDir, 'test', 'rot_a').append({ step: 'end', outcome: 'failed' });
    const last = await latestRotation(stateDir, 'test');
    expect(last?.outcome).toBe('failed');
    expect((await readFile(journalPath(stateDir, 'test'), 'utf8')).endsWith('\n')).toBe(true);
  });
});
