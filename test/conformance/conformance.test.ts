import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Secret } from '../../src/core/secret.ts';
import { TargetError } from '../../src/core/errors.ts';
import { withRetry } from '../../src/runtime/retry.ts';
import { fakeClock } from '../../src/runtime/clock.ts';
import { testKey } from '../helpers/keys.ts';
import { loadHarnesses, type ConformanceFixture } from './harness.ts';
import { REGISTERED_IDS, loadTargetDefinitions } from '../../src/targets/index.ts';

/** Every registered definition, loaded (the registry loads them on demand). */
const TARGETS = Object.fromEntries(await loadTargetDefinitions(REGISTERED_IDS));

/**
 * The same cases against every registered target (one harness per target in ./harnesses/):
 * write then read, a second write is a no-op, restore is exact (with and without a receipt),
 * read-back as the definition declares, redeploy puts the key in service and a restore takes it
 * back out, finalize, optional methods decided by config, 429 is retried, 401 is `auth`, and the
 * key never appears in an error.
 */
const harnesses = await loadHarnesses();

function fail(what: string): never {
  throw new Error(what);
}

for (const h of harnesses) {
  describe.skipIf(Boolean(h.skip))(`conformance: ${h.id}${h.skip ? ` (skipped: ${h.skip})` : ''}`, () => {
    let fx: ConformanceFixture;
    const oldKey = testKey();
    const newKey = testKey();
    const op = { rotationId: `rot_conf_${h.id}`, fingerprint: new Secret(newKey).fingerprint };

    beforeAll(async () => {
      fx = await h.setup();
      await fx.seed(oldKey);
    }, 60_000);
    afterAll(async () => {
      await fx?.close();
    });

    it('preflight is ready and reads the current key (or says it cannot)', async () => {
      const pf = await fx.target.preflight();
      expect(pf.status, pf.reason).toBe('ready');
      if (TARGETS[h.id as keyof typeof TARGETS]?.capabilities.readBack !== 'never' && pf.current.kind !== 'unreadable') {
        expect(pf.current.kind).toBe('value');
        if (pf.current.kind === 'value') expect(pf.current.value.fingerprint).toBe(new Secret(oldKey).fingerprint);
      }
    });

    it('write then verify: the provider holds the new key', async () => {
      const receipt = await fx.target.write(new Secret(newKey), op);
      const v = await fx.target.verify(new Secret(newKey), op, receipt);
      expect(v.method).toMatch(/read-back|metadata|redeploy/);
      expect(await fx.peek([oldKey, newKey])).toBe(newKey);
    });

    it('a second identical write is a no-op', async () => {
      const before = await fx.writeCount?.();
      await fx.target.write(new Secret(newKey), op);
      expect(await fx.peek([oldKey, newKey])).toBe(newKey);
      if (before !== undefined) expect(await fx.writeCount!()).toBe(before);
    });

    it('restore puts the old key back exactly', async () => {
      const receipt = await fx.target.write(new Secret(newKey), op);
      await fx.target.restore(new Secret(oldKey), op, receipt);
      expect(await fx.peek([oldKey, newKey])).toBe(oldKey);
      // Restore is idempotent.
      await fx.target.restore(new Secret(oldKey), op, receipt);
      expect(await fx.peek([oldKey, newKey])).toBe(oldKey);
    });

    it('restore without a receipt (a crash before the write was journaled) puts the old key back', async () => {
      const crashed = { rotationId: `rot_conf_${h.id}_crashed`, fingerprint: op.fingerprint };
      await fx.target.write(new Secret(newKey), crashed);
      await fx.target.restore(new Secret(oldKey), crashed, undefined);
      expect(await fx.peek([oldKey, newKey])).toBe(oldKey);
    });

    it('read-back is as the definition says: always the value written, never nothing, per-value by its type', async () => {
      const readBack = TARGETS[h.id as keyof typeof TARGETS]!.capabilities.readBack;
      const honest = { rotationId: `rot_conf_${h.id}_read`, fingerprint: op.fingerprint };
      const receipt = await fx.target.write(new Secret(newKey), honest);
      // Read once the write is verified: AWS Secrets Manager stages it (AWSPENDING) and verify
      // promotes it; a read shows what consumers get (AWSCURRENT).
      await fx.target.verify(new Secret(newKey), honest, receipt);
      const r = await fx.target.read();
      const readable = readBack === 'always' || (readBack === 'per-value' && (fx.readable ?? fail(`${h.id}: a per-value harness says readable()`))());
      if (readable) {
        expect(r.kind).toBe('value');
        if (r.kind === 'value') expect(r.value.fingerprint).toBe(op.fingerprint);
      } else expect(r.kind).toBe('unreadable');
      await fx.target.restore(new Secret(oldKey), honest, receipt);
    });

    it('redeploy puts the written key in service, and a restore and its redeploy the old one back', async (ctx) => {
      if (!fx.target.redeploy) return ctx.skip(`${h.id}: no redeploy with this config`);
      const running = fx.running ?? fail(`${h.id}: a harness whose target redeploys says what its consumers run (running())`);
      const deploy = { rotationId: `rot_conf_${h.id}_redeploy`, fingerprint: op.fingerprint };
      const receipt = await fx.target.write(new Secret(newKey), deploy);
      await fx.target.redeploy(deploy, receipt, 'write');
      expect(await running()).toBe(newKey);
      await fx.target.restore(new Secret(oldKey), deploy, receipt);
      await fx.target.redeploy(deploy, receipt, 'restore');
      expect(await running()).toBe(oldKey);
      expect(await fx.peek([oldKey, newKey])).toBe(oldKey);
    });

    it('finalize (where present) keeps the new key in place and can run twice', async (ctx) => {
      if (!fx.target.finalize) return ctx.skip(`${h.id}: no finalize`);
      const fin = { rotationId: `rot_conf_${h.id}_finalize`, fingerprint: op.fingerprint };
      const receipt = await fx.target.write(new Secret(newKey), fin);
      await fx.target.verify(new Secret(newKey), fin, receipt);
      await fx.target.finalize(fin, receipt);
      await fx.target.finalize(fin, receipt);
      expect(await fx.peek([oldKey, newKey])).toBe(newKey);
      await fx.target.restore(new Secret(oldKey), fin, receipt);
    });

    it('which optional methods a target has is decided by its config alone', async () => {
      const again = await h.setup();
      try {
        const methods = (t: object) => (['redeploy', 'finalize', 'close'] as const).filter((m) => typeof (t as Record<string, unknown>)[m] === 'function');
        expect(methods(again.target)).toEqual(methods(fx.target));
      } finally {
        await again.close();
      }
    }, 60_000);

    it('a rate-limited call is retried by the engine policy', async () => {
      fx.failNextWithRateLimit();
      const clock = fakeClock();
      let attempts = 0;
      await withRetry(
        async () => {
          attempts++;
          return fx.target.write(new Secret(newKey), { ...op, rotationId: `${op.rotationId}_b` });
        },
        { clock, random: () => 0.5 },
      );
      expect(attempts).toBeGreaterThanOrEqual(h.noAuth ? 1 : 2);
      expect(await fx.peek([oldKey, newKey])).toBe(newKey);
    });

    it.skipIf(h.noAuth === true)('rejected credentials are an auth error that never shows the key', async () => {
      fx.breakAuth();
      const err = await fx.target.write(new Secret(testKey()), op).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TargetError);
      const te = err as TargetError;
      expect(['auth', 'permission']).toContain(te.kind);
      expect(te.message).not.toContain(oldKey);
      expect(te.message).not.toContain(newKey);
      expect(JSON.stringify(te)).not.toContain(newKey);
    });
  });
}
