import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';

/**
 * A path the system refuses (no such directory, a file where a directory should be) is the
 * operator's to fix: keyrot says which path and what to do, exit 1, and never calls it a bug in
 * keyrot or names its own temp file. (Permission errors take the same path, but tests run as root.)
 */
let dir: string;
const cli = (args: string[]) => runCli(args, { cwd: dir, env: { XDG_CONFIG_HOME: join(dir, 'config') } });

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-fs-errors-'));
  return () => rm(dir, { recursive: true, force: true });
});

describe('file-system errors of a command', () => {
  it('init -c under a file: names the path and what to do', async () => {
    await writeFile(join(dir, 'plain'), 'not a directory\n');
    const r = await cli(['init', '--type', 'dotenv', '-c', join(dir, 'plain', 'targets.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`keyrot: cannot mkdir ${join(dir, 'plain')}: something is already there (a file where a directory is needed?): fix the path`);
    expect(r.stderr).not.toMatch(/bug in keyrot|\n\s+at /);
  });

  it('report -o into a missing directory: the file asked for, not the temp file', async () => {
    await writeFile(join(dir, 'targets.yaml'), 'version: 1\nkey: {name: OPENAI_API_KEY}\nenvironments:\n  local:\n    targets:\n      - {type: file, path: k}\n');
    const out = join(dir, 'missing', 'report.html');
    const r = await cli(['report', '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`keyrot: cannot open ${out}: no such file or directory: create the directory first, or fix the path`);
    expect(r.stderr).not.toMatch(/bug in keyrot|\.tmp/);
  });
});
