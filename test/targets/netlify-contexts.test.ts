import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { NetlifyEmulator, type NetlifyContext } from '../../emulators/netlify/emulator.ts';
import { NetlifyConfig, netlify } from '../../src/targets/netlify/index.ts';
import { Secret } from '../../src/core/secret.ts';
import { TargetError } from '../../src/core/errors.ts';
import { withRetry } from '../../src/runtime/retry.ts';
import { fakeClock, type Clock } from '../../src/runtime/clock.ts';
import type { Target } from '../../src/targets/types.ts';
import { testContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';
import { restoreAndRedeploy } from '../helpers/restore.ts';
import type { NetlifyReceipt } from '../../src/targets/netlify/index.ts';

/**
 * The deploy contexts a netlify target rotates: an omitted `context:` follows the variable's shape
 * (`all` value, or production), and a LIST of contexts is written, verified and restored by one target.
 */

const quickClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 20))),
};
const TEAM = 'nomora-team';
const VAR = 'OPENAI_API_KEY';

async function errorOf(p: Promise<unknown>): Promise<TargetError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(TargetError);
  return e as TargetError;
}

type Values = Array<{ context: NetlifyContext; value: string; context_parameter?: string }>;

describe('netlify target: deploy contexts', () => {
  let emu: NetlifyEmulator;
  let token: string;
  let siteId: string;
  const oldKey = testKey();
  const previewKey = testKey();
  const branchKey = testKey();
  const newKey = testKey();
  const op = { rotationId: 'rot_netlify_ctx', fingerprint: new Secret(newKey).fingerprint };

  function seed(key: Values | null, secret = false) {
    siteId = emu.seedSite({
      name: 'nomora-web',
      account: TEAM,
      env: [
        { key: 'NODE_VERSION', values: [{ context: 'all', value: '24' }] },
        {
          key: 'PUBLIC_API_URL',
          values: [
            { context: 'production', value: 'https://api.example.com' },
            { context: 'deploy-preview', value: 'https://staging.example.com' },
          ],
        },
        { key: 'SIGNING_SECRET', is_secret: true, values: [{ context: 'production', value: 'shh-do-not-touch' }] },
        ...(key ? [{ key: VAR, is_secret: secret, values: key }] : []),
      ],
    }).id;
    emu.seedAccountVar(TEAM, VAR, [{ context: 'all', value: 'team-level-value' }]);
  }

  async function makeTarget(opts: { context?: string | string[]; redeploy?: boolean } = {}): Promise<Target<NetlifyReceipt>> {
    const ctx = { ...testContext({ env: { NETLIFY_AUTH_TOKEN: token }, name: 'netlify-ctx' }), clock: quickClock };
    const config = NetlifyConfig.parse({ site: siteId, context: opts.context, redeploy: opts.redeploy ?? false });
    return netlify.create({ ...config, endpoint: emu.url }, ctx);
  }

  /** Other variables, team variables, and the rotated variable's values outside `contexts`, byte for byte. */
  function untouched(contexts: string[]) {
    const name = (v: { context: string; context_parameter?: string }) => (v.context === 'branch' ? `branch:${v.context_parameter}` : v.context);
    return {
      others: emu.getVars(siteId).filter((v) => v.key !== VAR),
      siblings: emu.getVar(siteId, VAR)?.values.filter((v) => !contexts.includes(name(v))) ?? [],
      team: emu.getAccountVars(TEAM),
    };
  }
  const valueOf = (context: string) => emu.getVar(siteId, VAR)?.values.find((v) => v.context === context)?.value;
  const patches = () => emu.server.calls('PATCH', `/api/v1/accounts/${TEAM}/env/${VAR}`).map((r) => JSON.parse(r.rawBody) as { context: string });

  beforeEach(async () => {
    emu = new NetlifyEmulator({ phaseMs: 20, deploysPerMinute: 100 });
    await emu.start();
    token = emu.addToken();
  });
  afterEach(async () => {
    await emu.stop();
  });

  describe('context omitted: follows the variable', () => {
    it('one value for all contexts (Netlify default): the `all` value is written, verified and restored', async () => {
      seed([{ context: 'all', value: oldKey }]);
      const before = untouched([]);
      const t = await makeTarget();
      const pf = await t.preflight();
      expect(pf.status, pf.reason).toBe('ready');
      expect(pf.current.kind === 'value' && pf.current.value.equals(new Secret(oldKey))).toBe(true);
      expect(pf.notes!.join('\n')).toMatch(/`context:` not set: OPENAI_API_KEY has one value for all deploy contexts .* keyrot rotates that value/);
      const receipt = await t.write(new Secret(newKey), op);
      expect(patches()).toStrictEqual([{ context: 'all', value: newKey }]);
      expect(receipt).toMatchObject({ context: 'all', contexts: ['all'], changed: true });
      expect(emu.getVar(siteId, VAR)!.values.map((v) => [v.context, v.value])).toStrictEqual([['all', newKey]]);
      expect(untouched([])).toMatchObject({ others: before.others, team: before.team });
      expect(await t.verify(new Secret(newKey), op, receipt)).toMatchObject({ method: 'read-back' });
      await restoreAndRedeploy(t, new Secret(oldKey), op, receipt);
      expect(emu.getVar(siteId, VAR)!.values.map((v) => [v.context, v.value])).toStrictEqual([['all', oldKey]]);
      expect(untouched([])).toMatchObject({ others: before.others, team: before.team });
    });

    it('per-context values: only production is written, and the plan names what changes and what does not', async () => {
      seed([
        { context: 'production', value: oldKey },
        { context: 'deploy-preview', value: oldKey },
        { context: 'branch', context_parameter: 'staging', value: branchKey },
      ]);
      const before = untouched(['production']);
      const t = await makeTarget();
      const pf = await t.preflight();
      expect(pf.status, pf.reason).toBe('ready');
      const notes = pf.notes!.join('\n');
      expect(notes).toMatch(/`context:` not set: .* separate values per deploy context, so keyrot rotates the production value only; deploy-preview and branch:staging keep their value/);
      expect(notes).toMatch(/changes the production value of OPENAI_API_KEY/);
      // deploy-preview holds the same key: the plan says it will break on revocation.
      expect(notes).toMatch(/WARNING: deploy-preview holds the same key but is not rotated/);
      expect(notes).not.toMatch(/WARNING: .*branch:staging/);
      const receipt = await t.write(new Secret(newKey), op);
      expect(patches()).toStrictEqual([{ context: 'production', value: newKey }]);
      expect(receipt.contexts).toStrictEqual(['production']);
      expect(valueOf('production')).toBe(newKey);
      expect(untouched(['production'])).toStrictEqual(before);
      expect(await t.verify(new Secret(newKey), op, receipt)).toMatchObject({ method: 'read-back' });
    });

    it('a missing variable is created with one value for all contexts (like `netlify env:set`), and deleted on restore', async () => {
      seed(null);
      const before = untouched([]);
      const t = await makeTarget();
      const pf = await t.preflight();
      expect(pf).toMatchObject({ status: 'ready', willCreate: true });
      expect(pf.notes!.join('\n')).toMatch(/keyrot will create it .* with a value for all/);
      const receipt = await t.write(new Secret(newKey), op);
      const post = emu.server.calls('POST', `/api/v1/accounts/${TEAM}/env`);
      expect(JSON.parse(post[0]!.rawBody)).toStrictEqual([{ key: VAR, values: [{ context: 'all', value: newKey }] }]);
      expect(receipt).toMatchObject({ createdVar: true, added: ['all'] });
      await restoreAndRedeploy(t, null, op, receipt);
      expect(emu.getVar(siteId, VAR)).toBeUndefined();
      expect(untouched([])).toStrictEqual(before);
    });

    it('a value for all contexts AND per-context values is refused: keyrot will not guess', async () => {
      seed([
        { context: 'all', value: oldKey },
        { context: 'production', value: previewKey },
      ]);
      const t = await makeTarget();
      const pf = await t.preflight();
      expect(pf.status).toBe('blocked');
      expect(pf.reason).toMatch(/has a value for all deploy contexts and separate values for production: keyrot will not guess/);
      expect((await errorOf(t.write(new Secret(newKey), op))).kind).toBe('invalid');
      expect(emu.writeCount(siteId)).toBe(0);
    });

    it('an explicit context stays strict: `all` on per-context values is refused and suggests a list', async () => {
      seed([
        { context: 'production', value: oldKey },
        { context: 'deploy-preview', value: previewKey },
      ]);
      const pf = await (await makeTarget({ context: 'all' })).preflight();
      expect(pf.status).toBe('blocked');
      expect(pf.reason).toMatch(/separate values per deploy context \(production, deploy-preview\): .* `context: \[production, deploy-preview\]`/);
      const prod = await (await makeTarget({ context: 'production' })).preflight();
      expect(prod.status).toBe('ready');
    });
  });

  describe('context: a list, one target', () => {
    const LIST = ['production', 'deploy-preview'];
    const perContext = (): Values => [
      { context: 'production', value: oldKey },
      { context: 'deploy-preview', value: previewKey },
      { context: 'branch', context_parameter: 'staging', value: branchKey },
      { context: 'dev', value: 'local-dev-value' },
    ];

    it('schema: a list parses; duplicates and `all` inside a list are refused; the default name shows the list', () => {
      const c = NetlifyConfig.parse({ site: 's1', context: ['production', 'branch:staging'] });
      expect(c.context).toStrictEqual(['production', 'branch:staging']);
      expect(netlify.describe(c)).toBe('s1[production,branch:staging]');
      expect(netlify.describe(NetlifyConfig.parse({ site: 's1' }))).toBe('s1');
      expect(netlify.describe(NetlifyConfig.parse({ site: 's1', context: 'production' }))).toBe('s1');
      expect(NetlifyConfig.safeParse({ site: 's1', context: ['production', 'production'] }).success).toBe(false);
      expect(NetlifyConfig.safeParse({ site: 's1', context: ['all', 'production'] }).success).toBe(false);
      expect(NetlifyConfig.safeParse({ site: 's1', context: [] }).success).toBe(false);
      expect(NetlifyConfig.safeParse({ site: 's1', context: ['preview'] }).success).toBe(false);
    });

    it('non-secret: each listed context is set (one PATCH each); other contexts and variables are byte-identical; second write is a no-op', async () => {
      seed(perContext());
      const before = untouched(LIST);
      const t = await makeTarget({ context: LIST });
      const pf = await t.preflight();
      expect(pf.status, pf.reason).toBe('ready');
      const notes = pf.notes!.join('\n');
      expect(notes).toMatch(/changes the production and deploy-preview values of OPENAI_API_KEY .* one single-context PATCH per context; the branch:staging and dev values and the other variables are untouched/);
      expect(notes).toMatch(/the listed contexts hold different keys now \(production: [0-9a-f]{12}, deploy-preview: [0-9a-f]{12}\)/);
      const receipt = await t.write(new Secret(newKey), op);
      expect(patches()).toStrictEqual([
        { context: 'production', value: newKey },
        { context: 'deploy-preview', value: newKey },
      ]);
      expect(receipt).toMatchObject({ contexts: LIST, changed: true, secret: false, added: [] });
      expect(JSON.stringify(receipt)).not.toContain(newKey);
      expect(valueOf('production')).toBe(newKey);
      expect(valueOf('deploy-preview')).toBe(newKey);
      expect(untouched(LIST)).toStrictEqual(before);
      const v = await t.verify(new Secret(newKey), op, receipt);
      expect(v).toMatchObject({ method: 'read-back' });
      expect(v.detail).toMatch(/production and deploy-preview values .* hold the new key/);

      const n = emu.writeCount(siteId);
      const again = await t.write(new Secret(newKey), op);
      expect(again.changed).toBe(false);
      expect(emu.writeCount(siteId)).toBe(n);
    });

    it('non-secret restore puts EACH context back to its own old value (read in preflight), idempotently', async () => {
      seed(perContext());
      const before = untouched(LIST);
      const original = emu.getVar(siteId, VAR)!.values;
      const t = await makeTarget({ context: LIST });
      const pf = await t.preflight();
      const receipt = await t.write(new Secret(newKey), op);
      // The engine passes preflight's single `current` (the first listed context's value).
      expect(pf.current.kind === 'value' && pf.current.value.equals(new Secret(oldKey))).toBe(true);
      await restoreAndRedeploy(t, new Secret(oldKey), op, receipt);
      expect(valueOf('production')).toBe(oldKey);
      expect(valueOf('deploy-preview')).toBe(previewKey);
      expect(emu.getVar(siteId, VAR)!.values).toStrictEqual(original);
      expect(untouched(LIST)).toStrictEqual(before);
      const n = emu.writeCount(siteId);
      await restoreAndRedeploy(t, new Secret(oldKey), op, receipt);
      expect(emu.writeCount(siteId)).toBe(n);
    });

    it('non-secret verify fails when one listed context changes after the write, naming that context', async () => {
      seed(perContext());
      const t = await makeTarget({ context: LIST });
      const receipt = await t.write(new Secret(newKey), op);
      const outside = testKey();
      emu.setValue(siteId, VAR, 'deploy-preview', outside);
      const err = await errorOf(t.verify(new Secret(newKey), op, receipt));
      expect(err.kind).toBe('mismatch');
      expect(err.message).toMatch(new RegExp(`the deploy-preview value holds a different key \\(${new Secret(outside).fingerprint}\\)`));
      expect(err.message).not.toContain(outside);
    });

    it('secret: both contexts written, verified by metadata against the LAST write; a same-rotation rewrite is a no-op', async () => {
      seed(perContext().filter((v) => v.context !== 'dev'), true);
      const before = untouched(LIST);
      const t = await makeTarget({ context: LIST });
      const pf = await t.preflight();
      expect(pf.status, pf.reason).toBe('ready');
      expect(pf.current.kind).toBe('unreadable');
      expect(pf.notes!.join('\n')).toMatch(/branch:staging of secret OPENAI_API_KEY keeps its value; Netlify cannot show whether it is the same key/);
      const receipt = await t.write(new Secret(newKey), op);
      expect(patches().map((p) => p.context)).toStrictEqual(LIST);
      expect(receipt).toMatchObject({ contexts: LIST, secret: true, changed: true });
      // The receipt's updated_at is the one after keyrot's last (deploy-preview) PATCH.
      expect(receipt.updatedAt).toBe(emu.getVar(siteId, VAR)!.updated_at);
      expect(valueOf('production')).toBe(newKey);
      expect(valueOf('deploy-preview')).toBe(newKey);
      expect(untouched(LIST)).toStrictEqual(before);
      const v = await t.verify(new Secret(newKey), op, receipt);
      expect(v.method).toBe('metadata');
      expect(v.detail).toMatch(/production and deploy-preview values keyrot wrote .* are unchanged/);

      const n = emu.writeCount(siteId);
      expect(await t.write(new Secret(newKey), op)).toStrictEqual(receipt);
      expect(emu.writeCount(siteId)).toBe(n);
      expect((await t.verify(new Secret(newKey), op, receipt)).method).toBe('metadata');
    });

    it('secret: a later outside change to one listed context fails verify', async () => {
      seed(perContext().filter((v) => v.context !== 'dev'), true);
      const t = await makeTarget({ context: LIST });
      const receipt = await t.write(new Secret(newKey), op);
      emu.setValue(siteId, VAR, 'deploy-preview', testKey());
      const err = await errorOf(t.verify(new Secret(newKey), op, receipt));
      expect(err.kind).toBe('mismatch');
      expect(err.message).toMatch(/changed at .* after keyrot's write .* whether the production and deploy-preview values are still the new key/);
    });

    it('secret: a listed value removed after the write fails verify', async () => {
      seed(perContext().filter((v) => v.context !== 'dev'), true);
      const t = await makeTarget({ context: LIST });
      const receipt = await t.write(new Secret(newKey), op);
      const id = emu.getVar(siteId, VAR)!.values.find((v) => v.context === 'deploy-preview')!.id;
      await fetch(`${emu.url}/api/v1/accounts/${TEAM}/env/${VAR}/value/${id}?site_id=${siteId}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
      const err = await errorOf(t.verify(new Secret(newKey), op, receipt));
      expect(err.message).toMatch(/has no deploy-preview value, not the new key/);
    });

    it('secret: a write that fails part-way is retried without rewriting the contexts already done', async () => {
      seed(perContext().filter((v) => v.context !== 'dev'), true);
      const t = await makeTarget({ context: LIST });
      emu.failNextValueWrite('deploy-preview');
      let attempts = 0;
      const receipt = await withRetry(
        () => {
          attempts++;
          return t.write(new Secret(newKey), op);
        },
        // The emulator's 502 carries X-RateLimit-Reset (end of the minute window), which engine/http.ts
        // turns into a wait of up to 60 s: allow it (the fake clock does not really wait).
        { clock: fakeClock(), random: () => 0.5, policy: { maxRetryAfterMs: 120_000 } },
      );
      expect(attempts).toBe(2);
      // production once, deploy-preview failed once then succeeded.
      expect(patches().map((p) => p.context)).toStrictEqual(['production', 'deploy-preview', 'deploy-preview']);
      expect(receipt.updatedAt).toBe(emu.getVar(siteId, VAR)!.updated_at);
      expect((await t.verify(new Secret(newKey), op, receipt)).method).toBe('metadata');
    });

    it('secret restore: every listed context gets the old key the engine passes; a context keyrot added is removed', async () => {
      seed([{ context: 'production', value: oldKey }, { context: 'branch', context_parameter: 'staging', value: branchKey }], true);
      const before = untouched(LIST);
      const t = await makeTarget({ context: LIST });
      const pf = await t.preflight();
      expect(pf.willCreate).toBe(true);
      expect(pf.notes!.join('\n')).toMatch(/has no deploy-preview value yet: keyrot will add one/);
      const receipt = await t.write(new Secret(newKey), op);
      expect(receipt.added).toStrictEqual(['deploy-preview']);
      expect(valueOf('deploy-preview')).toBe(newKey);
      await restoreAndRedeploy(t, new Secret(oldKey), op, receipt);
      expect(valueOf('production')).toBe(oldKey);
      expect(valueOf('deploy-preview')).toBeUndefined();
      expect(untouched(LIST)).toStrictEqual(before);
      const n = emu.writeCount(siteId);
      await restoreAndRedeploy(t, new Secret(oldKey), op, receipt);
      expect(emu.writeCount(siteId)).toBe(n);
    });

    it('secret restore of a list in a new process (resume): the receipt says which context keyrot added', async () => {
      seed([{ context: 'production', value: oldKey }], true);
      const first = await makeTarget({ context: LIST });
      await first.preflight();
      const receipt = await first.write(new Secret(newKey), op);
      // Same receipt (from the journal), a new target instance whose preflight sees the new key.
      const second = await makeTarget({ context: LIST });
      expect((await second.preflight()).status).toBe('ready');
      await second.restore(new Secret(oldKey), op, JSON.parse(JSON.stringify(receipt)));
      expect(emu.getVar(siteId, VAR)!.values.map((v) => [v.context, v.value])).toStrictEqual([['production', oldKey]]);
    });

    it('secret restore: a context Netlify never showed keyrot gets the environment old key (`previous`)', async () => {
      seed([{ context: 'production', value: oldKey }, { context: 'deploy-preview', value: previewKey }], true);
      const t = await makeTarget({ context: LIST });
      await t.preflight();
      const receipt = await t.write(new Secret(newKey), op);
      await restoreAndRedeploy(t, new Secret(oldKey), op, receipt);
      expect(valueOf('production')).toBe(oldKey);
      // Netlify never showed keyrot the deploy-preview secret (previewKey): it gets the environment's
      // old key, the only one keyrot has (README: secrets in several contexts should share one key).
      expect(valueOf('deploy-preview')).toBe(oldKey);
    });

    it('redeploy: ONE production build for the list; the plan says deploy-preview deploys pick it up on their next build', async () => {
      seed(perContext().filter((v) => v.context !== 'dev'), true);
      const t = await makeTarget({ context: LIST, redeploy: true });
      const pf = await t.preflight();
      expect(pf.status, pf.reason).toBe('ready');
      expect(pf.notes!.join('\n')).toMatch(/starts a production build .*; keyrot cannot start deploy-preview deploys: they get the new value when they next build/);
      const receipt = await t.write(new Secret(newKey), op);
      expect((await t.verify(new Secret(newKey), op, receipt)).method).toBe('metadata');
      await t.redeploy!(op, receipt);
      expect(emu.deploys(siteId)).toHaveLength(1);
      expect(emu.deploys(siteId)[0]).toMatchObject({ context: 'production', state: 'ready' });
      expect(emu.deploys(siteId)[0]!.env[VAR]).toBe(newKey);
      expect(emu.server.calls('POST', `/api/v1/sites/${siteId}/builds`)[0]!.query).toBe('');
    });

    it('redeploy is refused for a list with nothing keyrot can build', async () => {
      seed(perContext());
      const pf = await (await makeTarget({ context: ['deploy-preview', 'branch-deploy'], redeploy: true })).preflight();
      expect(pf.status).toBe('blocked');
      expect(pf.reason).toMatch(/cannot trigger a deploy-preview and branch-deploy deploy/);
      const two = await (await makeTarget({ context: ['branch:a', 'branch:b'], redeploy: true })).preflight();
      expect(two.status).toBe('blocked');
      expect(two.reason).toMatch(/one build per rotation/);
    });

    it('a secret list that includes dev is refused (Netlify secrets take no dev value)', async () => {
      seed(perContext().filter((v) => v.context !== 'dev'), true);
      const pf = await (await makeTarget({ context: ['production', 'dev'] })).preflight();
      expect(pf.status).toBe('blocked');
      expect(pf.reason).toMatch(/is a secret, and Netlify secrets take values only in non-dev contexts/);
    });
  });
});
