import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';

/** A --state-dir that is a file is the user's input to fix: a usage error, never "a bug in keyrot". */
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-statedir-'));
  await writeFile(join(dir, 'targets.yaml'), 'version: 1\nkey: { source: stdin, verify: false }\nenvironments:\n  prod:\n    targets:\n      - { type: file, path: a.key }\n');
  await writeFile(join(dir, 'a.key'), 'placeholder', { mode: 0o600 });
  await writeFile(join(dir, 'not-a-dir'), '');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

it.each([['status'], ['plan'], ['history']])('%s with --state-dir pointing at a file: exit 2 saying what to do', async (cmd) => {
  for (const stateDir of ['not-a-dir', 'not-a-dir/below']) {
    const r = await runCli([cmd, '--state-dir', stateDir], { cwd: dir });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/is not a directory: point --state-dir \(or KEYROT_STATE_DIR\) at a directory/);
    expect(r.stderr).not.toMatch(/a bug in keyrot/);
  }
});
