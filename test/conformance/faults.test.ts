import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { EmulatorServer } from '../../emulators/server.ts';
import { Secret } from '../../src/core/secret.ts';
import { TargetError } from '../../src/core/errors.ts';
import { withRetry } from '../../src/runtime/retry.ts';
import { fakeClock } from '../../src/runtime/clock.ts';
import { testKey } from '../helpers/keys.ts';
import { targetErrorOf } from '../helpers/errors.ts';
import { loadHarnesses, type ConformanceFixture } from './harness.ts';

/**
 * Every provider behind an emulator, under the faults that once hung keyrot or leaked a key:
 * - the write that carries the key is accepted and never answered (or answered with headers and a
 *   body that stalls): the write fails as a retryable `timeout` within deadline × attempts;
 * - the write that carries the key is answered with a 307 to another loopback server (or to
 *   another path of the same one): nothing is sent there, and the error names the Location.
 * Providers run concurrently (each on its own emulator), after a set-up and warm-up one at a
 * time (loading an SDK blocks the event loop longer than a deadline); one provider's cases in order.
 */
const harnesses = (await loadHarnesses()).filter((h) => !h.noEmulator && !h.skip);
/** The per-call deadline the targets get here (`requestTimeout:`). */
const DEADLINE_MS = 1500;
/** Room for the calls that do answer (reads before the write) and a loaded machine. */
const SLACK_MS = 4000;

/** The key as it travels: plain (JSON bodies) or base64 (Kubernetes data, Google payloads). */
const forms = (key: string) => [key, Buffer.from(key).toString('base64')];
/** The request carries the key (as the provider reads it: a sealed body opened, see ConformanceFixture.opens). */
const carries = (key: string, fx: ConformanceFixture) => (req: { rawBody: string }) => {
  const seen = fx.opens ? `${req.rawBody}\n${fx.opens(req.rawBody)}` : req.rawBody;
  return forms(key).some((f) => seen.includes(f));
};


function expectNoKey(err: TargetError, key: string): void {
  for (const f of forms(key)) {
    expect(err.message).not.toContain(f);
    expect(JSON.stringify(err)).not.toContain(f);
  }
}

describe.concurrent('provider faults: deadlines and redirects', () => {
  let elsewhere: EmulatorServer;
  const ready = new Map<string, { fx: ConformanceFixture; oldKey: string; preflight: string | undefined }>();
  beforeAll(async () => {
    elsewhere = new EmulatorServer({ name: 'elsewhere' });
    await elsewhere.start();
    for (const h of harnesses) {
      const fx = await h.setup({ requestTimeout: `${DEADLINE_MS}ms` });
      const oldKey = testKey();
      await fx.seed(oldKey);
      // Warm up (clients, credentials, Key Vault's challenge) so only the write itself is faulted.
      // A first call can outlast the short deadline on a loaded machine (Google's client loads its
      // protos on it): a few tries.
      // A transient failure is thrown (the engine would retry it): tried again here.
      const attempt = () => fx.target.preflight().catch((e: Error) => ({ status: 'blocked' as const, reason: e.message }));
      let pf = await attempt();
      for (let i = 0; i < 4 && pf.status !== 'ready'; i++) pf = await attempt();
      ready.set(h.id, { fx, oldKey, preflight: pf.status === 'ready' ? undefined : pf.reason });
    }
  }, 120_000);
  afterAll(async () => {
    await Promise.all([...ready.values()].map((r) => r.fx.close()));
    await elsewhere.stop();
  });

  for (const h of harnesses) {
    it(`${h.id}: a silent, a stalled and a redirecting write`, async () => {
      const { fx, oldKey, preflight } = ready.get(h.id)!;
      expect(preflight).toBeUndefined();
      const emu = fx.emulator!;
      {

        // 1. Accepted, never answered: two attempts, each ends at the deadline, as a retryable timeout.
        const k1 = testKey();
        emu.failNext({ hang: 'headers', when: carries(k1, fx), times: 100 });
        let t0 = Date.now();
        const silent = await targetErrorOf(
          withRetry(() => fx.target.write(new Secret(k1), { rotationId: `rot_${h.id}_hang`, fingerprint: new Secret(k1).fingerprint }), {
            clock: fakeClock(),
            random: () => 0,
            policy: { attempts: 2 },
          }),
        );
        let elapsed = Date.now() - t0;
        expect(silent.kind, silent.message).toBe('timeout');
        expect(silent.retryable).toBe(true);
        expect(elapsed).toBeGreaterThanOrEqual(2 * DEADLINE_MS - 50);
        expect(elapsed).toBeLessThan(2 * DEADLINE_MS + SLACK_MS);
        expect(emu.requests.filter((r) => r.status === -2 && carries(k1, fx)(r))).toHaveLength(2);
        expectNoKey(silent, k1);
        emu.clearFaults();

        // 2. Headers, then a body that stalls: the deadline covers the whole answer.
        const k2 = testKey();
        emu.failNext({ hang: 'body', when: carries(k2, fx), times: 100 });
        t0 = Date.now();
        const stalled = await targetErrorOf(fx.target.write(new Secret(k2), { rotationId: `rot_${h.id}_stall`, fingerprint: new Secret(k2).fingerprint }));
        elapsed = Date.now() - t0;
        expect(stalled.kind, stalled.message).toBe('timeout');
        expect(stalled.retryable).toBe(true);
        expect(elapsed).toBeGreaterThanOrEqual(DEADLINE_MS - 50);
        expect(elapsed).toBeLessThan(DEADLINE_MS + SLACK_MS);
        expectNoKey(stalled, k2);
        emu.clearFaults();

        // 3. A 307 to another origin, then to another path of the same origin: neither is followed.
        const k3 = testKey();
        const op3 = { rotationId: `rot_${h.id}_redirect`, fingerprint: new Secret(k3).fingerprint };
        const before = elsewhere.requests.length;
        emu.failNext({ status: 307, headers: { location: `${elsewhere.url}/collect/${h.id}?token=stolen-here` }, when: carries(k3, fx), times: 100 });
        const away = await targetErrorOf(fx.target.write(new Secret(k3), op3));
        expect(elsewhere.requests.length).toBe(before);
        expect(away.kind, away.message).toBe('invalid');
        expect(away.retryable).toBe(false);
        expect(away.status).toBe(307);
        expect(away.message).toContain(`${new URL(elsewhere.url).host}/collect/${h.id}`);
        expect(away.message).toContain('does not follow redirects');
        expect(away.message).not.toContain('stolen-here');
        expectNoKey(away, k3);
        emu.clearFaults();

        emu.failNext({ status: 308, headers: { location: '/keyrot-moved-here?token=stolen-here' }, when: carries(k3, fx), times: 100 });
        const near = await targetErrorOf(fx.target.write(new Secret(k3), op3));
        expect(emu.requests.filter((r) => r.path.startsWith('/keyrot-moved-here'))).toEqual([]);
        expect(near.status).toBe(308);
        expect(near.message).toContain('/keyrot-moved-here');
        expect(near.message).not.toContain('stolen-here');
        expectNoKey(near, k3);
        emu.clearFaults();

        // Nothing of the faulted writes landed: the provider still holds the old key.
        expect(await fx.peek([oldKey, k1, k2, k3])).toBe(oldKey);
      }
    }, 60_000);
  }
});
