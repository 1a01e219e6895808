import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { appendAudit } from '../../src/state/audit-log.ts';
import { BIN } from '../helpers/cli.ts';

/**
 * `keyrot <command> | head`: a real shell pipe into `head -n 1`, which exits after the first line
 * while keyrot still has ~150 KB to write (more than a pipe buffers), so keyrot's next write fails
 * with EPIPE. keyrot must end quietly: no stack trace, its own exit code.
 */
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-pipe-'));
  // A long audit log written through the real appender (hash chain intact).
  for (let i = 0; i < 400; i++) await appendAudit(join(dir, 'state'), { event: 'rotation-started', env: 'local', details: { n: i, note: 'x'.repeat(100) } });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('`keyrot history --json | head -n 1` exits 0 with nothing on stderr', async () => {
  const script = '{ "$0" "$1" history -n 1000 --json --state-dir "$2/state" -c "$2/none.yaml" 2>"$2/stderr"; echo $? >"$2/code"; } | head -n 1';
  const { stdout } = await promisify(execFile)('sh', ['-c', script, process.execPath, BIN, dir], {
    // The state key the appender used (test/helpers/global-setup.ts) must be the one keyrot reads.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME ?? '', NO_COLOR: '1' },
  });
  expect(stdout).toBe('{\n');
  expect(await readFile(join(dir, 'stderr'), 'utf8')).toBe('');
  expect((await readFile(join(dir, 'code'), 'utf8')).trim()).toBe('0');
});

it('`keyrot completion bash > /dev/full` says the output is incomplete, no stack trace, exit 1', async () => {
  const script = '"$0" "$1" completion bash >/dev/full 2>"$2/full-stderr"; echo $? >"$2/full-code"';
  await promisify(execFile)('sh', ['-c', script, process.execPath, BIN, dir], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NO_COLOR: '1' } });
  expect(await readFile(join(dir, 'full-stderr'), 'utf8')).toBe(
    'keyrot: could not write to standard output (ENOSPC): the output is incomplete; free space or write it elsewhere, then run the command again\n',
  );
  expect((await readFile(join(dir, 'full-code'), 'utf8')).trim()).toBe('1');
});
