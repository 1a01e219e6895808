import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GitHubEmulator } from '../../emulators/github-actions/emulator.ts';
import { githubActions, GitHubActionsConfig } from '../../src/targets/github-actions/index.ts';
import { SECONDARY_LIMIT_WAIT_MS } from '../../src/targets/github-actions/client.ts';
import { Secret } from '../../src/core/secret.ts';
import type { TargetError } from '../../src/core/errors.ts';
import { withRetry } from '../../src/runtime/retry.ts';
import { fakeClock, type Clock } from '../../src/runtime/clock.ts';
import type { Target } from '../../src/targets/types.ts';
import type { GitHubActionsReceipt } from '../../src/targets/github-actions/index.ts';
import { testContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';
import { targetErrorOf } from '../helpers/errors.ts';
import { restoreAndRedeploy } from '../helpers/restore.ts';

const REPO = 'acme/api';
const VAR = 'OPENAI_API_KEY';
/** Real time, every sleep at most 20 ms: runs progress in real time in the emulator. */
const quickClock: Clock = { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 20))) };

describe('github-actions target', () => {
  let emu: GitHubEmulator;
  let token: string;
  const oldKey = testKey();
  const newKey = testKey();
  const op = { rotationId: 'rot_gh_1', fingerprint: new Secret(newKey).fingerprint };

  async function makeTarget(config: Partial<GitHubActionsConfig> = {}, opts: { env?: NodeJS.ProcessEnv; clock?: Clock } = {}) {
    const parsed = GitHubActionsConfig.parse({ repo: REPO, ...config });
    const ctx = { ...testContext({ env: opts.env ?? { GH_TOKEN: token }, name: 'gh-test' }), clock: opts.clock ?? quickClock };
    return (await githubActions.create({ ...parsed, endpoint: emu.url }, ctx)) as Target<GitHubActionsReceipt>;
  }
  const held = (ref: Parameters<GitHubEmulator['peekSecret']>[0] = { repo: REPO }) => emu.peekSecret(ref, VAR)?.value;
  const puts = () => emu.server.requests.filter((r) => r.method === 'PUT');

  beforeEach(async () => {
    emu = new GitHubEmulator({ runMs: 90 });
    await emu.start();
    token = emu.addToken();
    emu.seedRepo(REPO, { environments: ['production'], workflows: [{ file: 'smoke.yml', name: 'Smoke' }, { file: 'build.yml', dispatchable: false }] });
    emu.setSecret({ repo: REPO }, VAR, oldKey);
  });
  afterEach(async () => {
    await emu.stop();
  });

  describe('preflight', () => {
    it('is ready, says the value is write-only and how it is verified, and authenticates as Octokit does', async () => {
      const pf = await (await makeTarget()).preflight();
      expect(pf.status, pf.reason).toBe('ready');
      expect(pf.current.kind).toBe('unreadable');
      expect(pf.willCreate).toBe(false);
      const notes = pf.notes!.join('\n');
      expect(notes).toMatch(/Actions secret OPENAI_API_KEY of repository acme\/api is write-only/);
      expect(notes).toMatch(/verified by the secret's updated_at moving past keyrot's write and the public key id used/);
      expect(notes).toMatch(/"Secrets: read and write"/);
      for (const r of emu.server.requests) {
        expect(r.headers.authorization).toBe(`token ${token}`);
        expect(r.headers['x-github-api-version']).toBe('2022-11-28');
        expect(r.headers['user-agent']).toMatch(/^keyrot/);
      }
    });

    it('takes GH_TOKEN before GITHUB_TOKEN (the GitHub CLI’s order)', async () => {
      const other = emu.addToken();
      await (await makeTarget({}, { env: { GITHUB_TOKEN: other, GH_TOKEN: token } })).preflight();
      expect(emu.server.requests.every((r) => r.headers.authorization === `token ${token}`)).toBe(true);
      emu.server.requests.length = 0;
      await (await makeTarget({}, { env: { GITHUB_TOKEN: other } })).preflight();
      expect(emu.server.requests.every((r) => r.headers.authorization === `token ${other}`)).toBe(true);
    });

    it('says plainly when the secret will be created', async () => {
      emu.deleteSecret({ repo: REPO }, VAR);
      const pf = await (await makeTarget()).preflight();
      expect([pf.status, pf.current.kind, pf.willCreate]).toEqual(['ready', 'absent', true]);
      expect(pf.notes!.join('\n')).toMatch(/does not exist in repository acme\/api: keyrot will create it/);
    });

    it('is blocked, in product words, for names GitHub refuses, a repository or environment it cannot see, a missing workflow', async () => {
      const reason = async (config: Partial<GitHubActionsConfig>, varName?: string) => {
        const ctx = { ...testContext({ env: { GH_TOKEN: token }, varName }), clock: quickClock };
        const t = await githubActions.create({ ...GitHubActionsConfig.parse({ repo: REPO, ...config }), endpoint: emu.url }, ctx);
        const pf = await t.preflight();
        expect(pf.status).toBe('blocked');
        return pf.reason!;
      };
      expect(await reason({}, 'GITHUB_OPENAI')).toMatch(/GitHub reserves secret names starting with GITHUB_/);
      expect(await reason({}, 'OPENAI-KEY')).toMatch(/letters, digits and underscores/);
      expect(await reason({ repo: 'acme/nope' })).toMatch(/GitHub could not find the secrets of repository acme\/nope: check `repo: acme\/nope`/);
      expect(await reason({ environment: 'staging' })).toMatch(/check `environment: staging` \(create it under the repository's Settings → Environments\)/);
      expect(await reason({ dispatch: { workflow: 'nope.yml', ref: 'main' } })).toMatch(/GitHub could not find workflow nope.yml of acme\/api on main: check `dispatch.workflow`/);
    });

    it('a rejected or missing token blocks with what to do, never the token', async () => {
      emu.revokeToken(token);
      const pf = await (await makeTarget()).preflight();
      expect(pf.status).toBe('blocked');
      expect(pf.reason).toMatch(/GitHub rejected the token in env:GH_TOKEN: it is missing, expired or revoked; create a fine-grained token with the repository permission "Secrets: read and write"/);
      expect(pf.reason).not.toContain(token);
      const none = await (await makeTarget({}, { env: {} })).preflight();
      expect(none.reason).toMatch(/credential env:GH_TOKEN is not set/);
    });
  });

  describe('write and verify', () => {
    it('seals the key with the repository’s public key: the request carries only the sealed value and the key id', async () => {
      const t = await makeTarget();
      const receipt = await t.write(new Secret(newKey), op);
      expect(held()).toBe(newKey);
      const [put] = puts();
      const body = JSON.parse(put!.rawBody);
      expect(Object.keys(body).sort()).toEqual(['encrypted_value', 'key_id']);
      expect(put!.rawBody).not.toContain(newKey);
      expect(put!.rawBody).not.toContain(Buffer.from(newKey).toString('base64'));
      expect(receipt).toMatchObject({ fingerprint: op.fingerprint, created: false, keyId: body.key_id, previousVisibility: null });
      expect(Date.parse(receipt.updatedAt)).toBeGreaterThanOrEqual(Date.parse(receipt.writtenAfter));
      expect(JSON.stringify(receipt)).not.toContain(newKey);
      const v = await t.verify(new Secret(newKey), op, receipt);
      expect(v.method).toBe('metadata');
      expect(v.detail).toMatch(/updated at .* by keyrot's write, sealed with public key \d+/);
    });

    it('a second write of the same rotation makes no PUT while nobody changed the secret; a change behind it is written again', async () => {
      const t = await makeTarget();
      const first = await t.write(new Secret(newKey), op);
      const writes = emu.writeCount();
      expect(await t.write(new Secret(newKey), op)).toEqual(first);
      expect(emu.writeCount()).toBe(writes);
      emu.setSecret({ repo: REPO }, VAR, testKey(), { at: Date.now() + 5_000 });
      await t.write(new Secret(newKey), op);
      expect(emu.writeCount()).toBe(writes + 1);
      expect(held()).toBe(newKey);
    });

    it('verify refuses a secret changed after the write, a rotated public key, a deleted secret, or no receipt — naming fingerprints only', async () => {
      const t = await makeTarget();
      const receipt = await t.write(new Secret(newKey), op);
      const intruder = testKey();
      emu.setSecret({ repo: REPO }, VAR, intruder, { at: Date.parse(receipt.updatedAt) + 3_000 });
      const changed = await targetErrorOf(t.verify(new Secret(newKey), op, receipt));
      expect([changed.kind, changed.retryable]).toEqual(['mismatch', false]);
      expect(changed.message).toMatch(/was updated again at .*, after keyrot wrote the new key/);
      const rewritten = await t.write(new Secret(newKey), { ...op, rotationId: 'rot_gh_2' });
      emu.rotatePublicKey({ repo: REPO });
      expect((await targetErrorOf(t.verify(new Secret(newKey), op, rewritten))).message).toMatch(/GitHub's public key for repository acme\/api changed \(now \d+\) since keyrot sealed the new key with \d+: write it again/);
      expect((await targetErrorOf(t.verify(new Secret(newKey), op, undefined))).message).toMatch(/is write-only and keyrot has no record of writing the new key \(\w{12}\) to it: write it again/);
      emu.deleteSecret({ repo: REPO }, VAR);
      const gone = await targetErrorOf(t.verify(new Secret(newKey), op, rewritten));
      expect(gone.message).toMatch(/no longer exists/);
      for (const e of [changed, gone]) for (const k of [newKey, intruder, oldKey]) expect(JSON.stringify({ m: e.message })).not.toContain(k);
    });

    it('environment and Dependabot secrets go to their own stores', async () => {
      await (await makeTarget({ environment: 'production' })).write(new Secret(newKey), op);
      expect(held({ repo: REPO, environment: 'production' })).toBe(newKey);
      await (await makeTarget({ dependabot: true })).write(new Secret(newKey), op);
      expect(held({ repo: REPO, dependabot: true })).toBe(newKey);
      expect(held()).toBe(oldKey);
      expect(puts().map((r) => r.path)).toEqual([`/repos/${REPO}/environments/production/secrets/${VAR}`, `/repos/${REPO}/dependabot/secrets/${VAR}`]);
    });
  });

  describe('restore', () => {
    it('writes the old key again, with or without the receipt, idempotently', async () => {
      const t = await makeTarget();
      const receipt = await t.write(new Secret(newKey), op);
      await t.restore(new Secret(oldKey), op, receipt);
      expect(held()).toBe(oldKey);
      await t.restore(new Secret(oldKey), op, receipt);
      expect(held()).toBe(oldKey);
      await t.write(new Secret(newKey), { ...op, rotationId: 'rot_gh_3' });
      await t.restore(new Secret(oldKey), op, undefined);
      expect(held()).toBe(oldKey);
    });

    it('deletes a secret keyrot created (previous: nothing), also when it is already gone', async () => {
      emu.deleteSecret({ repo: REPO }, VAR);
      const t = await makeTarget();
      const receipt = await t.write(new Secret(newKey), op);
      expect(receipt.created).toBe(true);
      await t.restore(null, op, receipt);
      expect(emu.peekSecret({ repo: REPO }, VAR)).toBeUndefined();
      await t.restore(null, op, receipt);
    });
  });

  describe('organisation secrets', () => {
    beforeEach(() => {
      emu.seedOrg('acme');
      emu.seedRepo('acme/web');
    });

    it('create needs `visibility:` (blocked at preflight otherwise); `selected` sends the ids of `repositories:`', async () => {
      const blocked = await (await makeTarget({ repo: undefined, org: 'acme' })).preflight();
      expect(blocked.reason).toMatch(/does not exist yet, and creating it needs a visibility: set `visibility: all \| private \| selected`/);
      const t = await makeTarget({ repo: undefined, org: 'acme', visibility: 'selected', repositories: ['api', 'web'] });
      expect((await t.preflight()).status).toBe('ready');
      await t.write(new Secret(newKey), op);
      const body = JSON.parse(puts()[0]!.rawBody);
      expect(body.visibility).toBe('selected');
      expect(body.selected_repository_ids).toHaveLength(2);
      expect(held({ org: 'acme' })).toBe(newKey);
    });

    it('keeps an existing secret’s visibility when targets.yaml names none, and restore puts a changed one back', async () => {
      emu.setSecret({ org: 'acme' }, VAR, oldKey, { visibility: 'all' });
      const keep = await makeTarget({ repo: undefined, org: 'acme' });
      await keep.write(new Secret(newKey), op);
      expect(emu.peekSecret({ org: 'acme' }, VAR)?.visibility).toBe('all');
      const change = await makeTarget({ repo: undefined, org: 'acme', visibility: 'private' });
      const receipt = await change.write(new Secret(newKey), { ...op, rotationId: 'rot_vis' });
      expect(receipt.previousVisibility).toBe('all');
      expect(emu.peekSecret({ org: 'acme' }, VAR)?.visibility).toBe('private');
      await change.restore(new Secret(oldKey), op, receipt);
      expect(emu.peekSecret({ org: 'acme' }, VAR)).toMatchObject({ value: oldKey, visibility: 'all' });
    });
  });

  describe('redeploy: a dispatched workflow run', () => {
    it('runs after the write and succeeds seeing the new key; after a restore, seeing the old key again', async () => {
      const t = await makeTarget({ dispatch: { workflow: 'smoke.yml', ref: 'main' } });
      expect(t.redeploy).toBeDefined();
      const receipt = await t.write(new Secret(newKey), op);
      const r = await t.redeploy!(op, receipt, 'write');
      expect(r.method).toBe('redeploy');
      expect(r.detail).toMatch(/workflow smoke.yml of acme\/api on main: run #1 \(https:\/\/github.com\/acme\/api\/actions\/runs\/\d+\) succeeded with the new key/);
      const body = JSON.parse(emu.server.calls('POST', /dispatches$/)[0]!.rawBody);
      expect(body).toEqual({ ref: 'main', inputs: {}, return_run_details: true });
      expect(emu.runs(REPO)[0]).toMatchObject({ status: 'completed', conclusion: 'success' });
      expect(emu.runs(REPO)[0]!.secretsSeen[VAR]).toBe(newKey);
      await restoreAndRedeploy(t, new Secret(oldKey), op, receipt);
      expect(emu.runs(REPO)).toHaveLength(2);
      expect(emu.runs(REPO)[1]!.secretsSeen[VAR]).toBe(oldKey);
    });

    it('a failed run is a failed redeploy naming the run (not retried)', async () => {
      const t = await makeTarget({ dispatch: { workflow: 'smoke.yml', ref: 'main' } });
      emu.failNextRun();
      const e = await targetErrorOf(t.redeploy!(op, undefined, 'write'));
      expect([e.kind, e.retryable, e.op]).toEqual(['unavailable', false, 'redeploy']);
      expect(e.message).toMatch(/run #1 \(https:\/\/github.com\/acme\/api\/actions\/runs\/\d+\) concluded failure, so CI did not prove it works with the new key/);
    });

    it('on a GitHub Enterprise Server that refuses `return_run_details` (3.20 and older), dispatches without it and finds the run', async () => {
      await emu.stop();
      emu = new GitHubEmulator({ prefix: '/api/v3', runDetails: false, runMs: 60 });
      await emu.start();
      token = emu.addToken();
      emu.seedRepo(REPO, { workflows: [{ file: 'smoke.yml' }] });
      const t = await makeTarget({ dispatch: { workflow: 'smoke.yml', ref: 'main' } });
      expect((await t.redeploy!(op, undefined, 'write')).detail).toMatch(/run #1 .* succeeded/);
      const posts = emu.server.requests.filter((r) => r.method === 'POST');
      expect(posts.map((r) => [r.status, JSON.parse(r.rawBody).return_run_details])).toEqual([[422, true], [204, undefined]]);
      expect(emu.runs(REPO)).toHaveLength(1);
      expect(emu.server.calls('GET', /\/api\/v3\/repos\/acme\/api\/actions\/workflows\/smoke.yml\/runs$/)[0]!.query).toMatch(/event=workflow_dispatch&branch=main&created=%3E%3D/);
    });

    it('a run that does not complete within `timeout:` fails with where to look', async () => {
      await emu.stop();
      emu = new GitHubEmulator({ runMs: 3_600_000 });
      await emu.start();
      token = emu.addToken();
      emu.seedRepo(REPO, { workflows: [{ file: 'smoke.yml' }] });
      const t = await makeTarget({ dispatch: { workflow: 'smoke.yml', ref: 'main' }, timeout: '2m' }, { clock: fakeClock() });
      const e = await targetErrorOf(t.redeploy!(op, undefined, 'write'));
      expect(e.kind).toBe('timeout');
      expect(e.message).toMatch(/run #1 is still (queued|in_progress) after 2m .*raise `timeout:`/);
    });
  });

  describe('errors', () => {
    it('a token without write permission: a `permission` error naming what it needs, never the key or token', async () => {
      const readOnly = emu.addToken({ permissions: { secrets: 'read' } });
      const t = await makeTarget({}, { env: { GITHUB_TOKEN: readOnly } });
      expect((await t.preflight()).status).toBe('ready');
      const e = await targetErrorOf(t.write(new Secret(newKey), op));
      expect([e.kind, e.retryable, e.status]).toEqual(['permission', false, 403]);
      expect(e.message).toMatch(/GitHub denied access to the Actions secret OPENAI_API_KEY of repository acme\/api: the token in env:GITHUB_TOKEN needs the repository permission "Secrets: read and write" \(GitHub accepts: secrets=write\)/);
      for (const s of [newKey, readOnly]) expect(JSON.stringify({ m: e.message })).not.toContain(s);
    });

    it('rate limits: a secondary limit waits its retry-after (or a minute), a spent primary limit until its reset', async () => {
      const t = await makeTarget();
      emu.failNextWithSecondaryLimit({ retryAfterSeconds: 7 });
      const secondary = await targetErrorOf(t.write(new Secret(newKey), op));
      expect([secondary.kind, secondary.retryable, secondary.retryAfterMs]).toEqual(['rate-limited', true, 7_000]);
      emu.server.failNext({ status: 403, body: { message: 'You have exceeded a secondary rate limit and have been temporarily blocked from content creation.' } });
      expect((await targetErrorOf(t.write(new Secret(newKey), op))).retryAfterMs).toBe(SECONDARY_LIMIT_WAIT_MS);
      emu.exhaustRateLimit(token, 40_000);
      const primary = await targetErrorOf(t.write(new Secret(newKey), op));
      expect(primary.kind).toBe('rate-limited');
      expect(primary.retryAfterMs).toBeGreaterThan(30_000);
      expect(primary.message).toMatch(/GitHub's rate limit for this token is spent until \d\d:\d\d:\d\d UTC/);
    });

    it('the engine’s retry policy carries a write through a 429 and a 502', async () => {
      const t = await makeTarget();
      emu.failNextWithSecondaryLimit({ status: 429, method: 'PUT' });
      emu.server.failNext({ status: 502, body: { message: 'Server Error' }, method: 'GET' });
      let attempts = 0;
      await withRetry(() => (attempts++, t.write(new Secret(newKey), op)), { clock: fakeClock(), random: () => 0.5 });
      expect(attempts).toBe(3);
      expect(held()).toBe(newKey);
    });

    it('a 5xx is `unavailable` and retryable; a 404 on the repository is `not-found`', async () => {
      const t = await makeTarget();
      emu.server.failNext({ status: 503, body: { message: 'Service Unavailable' } });
      const down: TargetError = await targetErrorOf(t.write(new Secret(newKey), op));
      expect([down.kind, down.retryable]).toEqual(['unavailable', true]);
      expect(down.message).toMatch(/GitHub API unavailable \(HTTP 503\) during write/);
      const missing = await targetErrorOf((await makeTarget({ repo: 'acme/gone' })).write(new Secret(newKey), op));
      expect([missing.kind, missing.retryable]).toEqual(['not-found', false]);
    });

    it('GitHub’s message is shown on one line without terminal control sequences', async () => {
      const t = await makeTarget();
      emu.server.failNext({ status: 422, body: { message: 'Invalid\x1b[2J\x1b]52;c;ZXZpbA==\x07 request\r\u202eok' } });
      const e = await targetErrorOf(t.write(new Secret(newKey), op));
      expect(e.message).toContain('(GitHub said: Invalid request ok)');
      expect(e.message).not.toMatch(/[\x00-\x1f\x7f-\x9f\u202a-\u202e]/);
    });
  });
});
