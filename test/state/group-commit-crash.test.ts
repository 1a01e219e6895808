import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { getVar } from '../../src/targets/dotenv/parse.ts';
import { runCli } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * Group commit (src/state/group-commit.ts): events of targets that finish together are sealed and
 * fsynced as one commit. The failpoint `after-group-commit` SIGKILLs the process right after such
 * a commit is durable and before the journal's anchor moves past it: the journal is then longer
 * than the anchor says, and a resume must accept it and finish the rotation.
 */
const N = 12;
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-group-commit-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const files = () => Array.from({ length: N }, (_, i) => `svc${i}.env`);
const cli = (args: string[], input?: string, env?: Record<string, string>) => runCli([...args, '--state-dir', join(dir, 'state')], { cwd: dir, input, env });

it('killed right after a grouped fsync (before the anchor moves), the rotation resumes to the end', async () => {
  const oldKey = testKey();
  const targets = files().map((f) => `      - { type: dotenv, path: ${f} }`).join('\n');
  await writeFile(join(dir, 'targets.yaml'), `version: 1\nkey:\n  source: stdin\n  verify: false\nenvironments:\n  dev:\n    targets:\n${targets}\n`);
  for (const f of files()) await writeFile(join(dir, f), `PORT=1\nOPENAI_API_KEY=${oldKey}\n`, { mode: 0o600 });
  const newKey = testKey();
  const r = await cli(['rotate', '--yes'], newKey + '\n', { KEYROT_FAILPOINTS: 'after-group-commit' });
  // The failpoint fires only on a commit that grouped several events: the kill proves one happened.
  expect(r.signal, r.stdout + r.stderr).toBe('SIGKILL');
  const status = await cli(['status']);
  expect(status.stdout).toMatch(/interrupted/);

  // The grouped commit may be the writes' `started` events, before any file changed: keyrot then
  // knows the new key only by fingerprint and takes it again.
  const res = await cli(['resume', '--new-key', 'stdin', '--json'], newKey + '\n');
  expect(res.code, res.stderr + res.stdout).toBe(0);
  expect(JSON.parse(res.stdout).outcome).toBe('awaiting-revocation');
  for (const f of files()) expect(getVar(await readFile(join(dir, f), 'utf8'), 'OPENAI_API_KEY')).toBe(newKey);
  // Resume read the journal, grouped lines included, through its HMAC chain (it refuses a broken
  // one); the audit log is intact too.
  const h = await cli(['history', '--json']);
  expect(h.code, h.stderr).toBe(0);
  expect(JSON.parse(h.stdout)).toMatchObject({ intact: true, broken: [] });
  expect(res.stdout + res.stderr + r.stdout + r.stderr).not.toContain(newKey);
}, 120_000);
