import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { fingerprint, hint } from '../../src/core/secret.ts';
import { runCli } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/** Every key a rotation retires is named for revocation: drift keys, an earlier pending revocation. */
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-also-'));
  await writeFile(
    join(dir, 'targets.yaml'),
    'version: 1\nkey:\n  source: stdin\n  verify: false\nenvironments:\n  prod:\n    targets:\n      - type: file\n        path: a.key\n      - type: file\n        path: b.key\n      - type: file\n        path: c.key\n',
  );
});
afterEach(() => rm(dir, { recursive: true, force: true }));

it('a drifted target key is retired too: named by rotate, status and revoke', async () => {
  const main = testKey();
  const drifted = testKey();
  await writeFile(join(dir, 'a.key'), main);
  await writeFile(join(dir, 'b.key'), main);
  await writeFile(join(dir, 'c.key'), drifted);
  const r = await runCli(['rotate', '--yes', '--json'], { cwd: dir, input: testKey() + '\n' });
  expect(r.code, r.stderr).toBe(0);
  const rep = JSON.parse(r.stdout);
  expect(rep.old.fingerprint).toBe(fingerprint(main));
  expect(rep.alsoRevoke).toEqual([{ hint: hint(drifted), fingerprint: fingerprint(drifted), why: 'held by target file:c.key (drift)' }]);
  expect(rep.messages.join(' ')).toContain(`Also revoke ${hint(drifted)} (${fingerprint(drifted)}`);
  const s = await runCli(['status'], { cwd: dir });
  expect(s.stdout).toContain(`and revoke ${hint(drifted)} (${fingerprint(drifted)})`);
  const rv = await runCli(['revoke', '--yes'], { cwd: dir });
  expect(rv.code, rv.stderr).toBe(0);
  expect(rv.stdout).toContain(`(and ${hint(drifted)} (${fingerprint(drifted)}))`);
  const audit = (await readFile(join(dir, '.keyrot/audit.ndjson'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  expect(audit.find((e) => e.event === 'key.revoked').details.also).toEqual([fingerprint(drifted)]);
  for (const out of [r, s, rv]) expect(out.stdout + out.stderr).not.toContain(drifted);
});

it('an emergency over a pending revocation carries the earlier old key into its own revocation', async () => {
  const k0 = testKey();
  for (const f of ['a.key', 'b.key', 'c.key']) await writeFile(join(dir, f), k0);
  expect((await runCli(['rotate', '--yes'], { cwd: dir, input: testKey() + '\n' })).code).toBe(0);
  const e = await runCli(['emergency', '--yes', '--json'], { cwd: dir, input: testKey() + '\n' });
  expect(e.code, e.stderr).toBe(0);
  const rep = JSON.parse(e.stdout);
  expect(rep.alsoRevoke.map((a: { fingerprint: string }) => a.fingerprint)).toEqual([fingerprint(k0)]);
  expect(rep.checklist[0].detail).toContain(fingerprint(k0));
  const s = JSON.parse((await runCli(['status', '--json'], { cwd: dir })).stdout).environments[0];
  expect(s.pendingRevocation.also.map((a: { fingerprint: string }) => a.fingerprint)).toEqual([fingerprint(k0)]);
});
