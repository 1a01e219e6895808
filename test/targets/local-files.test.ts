import { execFileSync } from 'node:child_process';
import { chmod, chown, link, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TargetError } from '../../src/core/errors.ts';
import { Secret } from '../../src/core/secret.ts';
import { dotenv } from '../../src/targets/dotenv/index.ts';
import { file } from '../../src/targets/file/index.ts';
import type { OpContext, Target } from '../../src/targets/types.ts';
import { testContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * dotenv and file targets against real files: symlinks (Capistrano's shared/.env, chains,
 * relative links, linked directories), what keyrot refuses (dangling links, loops, directories,
 * FIFOs, devices, hard links, read-only files and directories), and modes kept exactly.
 */
const VAR = 'OPENAI_API_KEY';
let dir: string;
const op = (key: Secret): OpContext => ({ rotationId: 'rot_test_local', fingerprint: key.fingerprint });
const makeDotenv = (path: string): Promise<Target> => dotenv.create({ path }, testContext({ baseDir: dir, varName: VAR, name: 'env' }));
const makeFile = (path: string): Promise<Target> => file.create({ path }, testContext({ baseDir: dir, name: 'key-file' }));
const mode = async (p: string) => (await stat(p)).mode & 0o7777;
/** Every name under `d` that looks like a temp file (keyrot's or anyone's). */
const temps = async (d: string) => (await readdir(d)).filter((f) => f.includes('keyrot') || f.endsWith('.tmp'));

async function refusal(t: Target): Promise<{ reason: string; writeError: TargetError }> {
  const pre = await t.preflight();
  expect(pre.status).toBe('blocked');
  const key = new Secret(testKey());
  const writeError = (await t.write(key, op(key)).catch((e: unknown) => e)) as TargetError;
  expect(writeError).toBeInstanceOf(TargetError);
  expect(writeError.message).not.toContain(key.reveal());
  return { reason: pre.reason ?? '', writeError };
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-local-'));
});
afterEach(async () => {
  // Read-only directories made by a test must be writable again to be removed.
  execFileSync('chmod', ['-R', 'u+w', dir]);
  await rm(dir, { recursive: true, force: true });
});

describe('symlinked targets: the file at the end of the link gets the key, the link stays a link', () => {
  it('Capistrano: current/.env linked to the sibling shared/.env (relative link) is written through, mode kept', async () => {
    await mkdir(join(dir, 'shared'));
    await mkdir(join(dir, 'current'));
    const oldKey = testKey();
    const text = `# shared config\nPORT=3000\n${VAR}=${oldKey}\n`;
    await writeFile(join(dir, 'shared/.env'), text);
    await chmod(join(dir, 'shared/.env'), 0o640);
    // A relative link, as Capistrano makes: current/.env points one level up into shared/.env.
    const relativeLink = join('..', 'shared', '.env');
    await symlink(relativeLink, join(dir, 'current/.env'));
    const t = await makeDotenv('current/.env');

    const pre = await t.preflight();
    expect(pre.status, pre.reason).toBe('ready');
    expect(pre.current.kind === 'value' && pre.current.value.reveal()).toBe(oldKey);
    expect(pre.notes?.join('\n')).toContain(`is a symlink to ${join(dir, 'shared/.env')}`);

    const key = new Secret(testKey());
    const receipt = await t.write(key, op(key));
    expect((await lstat(join(dir, 'current/.env'))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(dir, 'current/.env'))).toBe(relativeLink);
    expect(await readFile(join(dir, 'shared/.env'), 'utf8')).toBe(text.replace(oldKey, key.reveal()));
    expect(await mode(join(dir, 'shared/.env'))).toBe(0o640);
    await expect(t.verify(key, op(key), receipt)).resolves.toMatchObject({ method: 'read-back' });
    expect([...(await temps(join(dir, 'shared'))), ...(await temps(join(dir, 'current')))]).toEqual([]);

    await t.restore(new Secret(oldKey), op(key), receipt);
    expect((await lstat(join(dir, 'current/.env'))).isSymbolicLink()).toBe(true);
    expect(await readFile(join(dir, 'shared/.env'), 'utf8')).toBe(text);
  });

  it('a chain of links (absolute, then relative) through a linked directory', async () => {
    await mkdir(join(dir, 'mnt/config'), { recursive: true });
    await writeFile(join(dir, 'mnt/config/app.env'), `${VAR}=${testKey()}\n`);
    await symlink(join(dir, 'mnt/config'), join(dir, 'config')); // a mounted config directory
    await symlink('config/app.env', join(dir, 'middle.env'));
    await symlink(join(dir, 'middle.env'), join(dir, '.env'));
    const t = await makeDotenv('.env');
    expect((await t.preflight()).status).toBe('ready');

    const key = new Secret(testKey());
    await t.write(key, op(key));
    for (const l of ['.env', 'middle.env', 'config']) expect((await lstat(join(dir, l))).isSymbolicLink()).toBe(true);
    expect(await readFile(join(dir, 'mnt/config/app.env'), 'utf8')).toBe(`${VAR}=${key.reveal()}\n`);
    expect(await temps(join(dir, 'mnt/config'))).toEqual([]);
  });

  it('a file target that is a link to a mounted key file is written through', async () => {
    await mkdir(join(dir, 'run/secrets'), { recursive: true });
    const real = join(dir, 'run/secrets/openai');
    await writeFile(real, `${testKey()}\n`);
    await chmod(real, 0o600);
    await symlink(real, join(dir, 'openai_api_key'));
    const t = await makeFile('openai_api_key');
    const key = new Secret(testKey());
    await t.write(key, op(key));
    expect((await lstat(join(dir, 'openai_api_key'))).isSymbolicLink()).toBe(true);
    expect(await readFile(real, 'utf8')).toBe(`${key.reveal()}\n`);
    expect(await mode(real)).toBe(0o600);
    await expect(t.verify(key, op(key), undefined)).resolves.toMatchObject({ method: 'read-back' });
  });

  it.runIf(process.getuid?.() === 0)('the file at the end of the link keeps its owner and group (keyrot as root)', async () => {
    await mkdir(join(dir, 'shared'));
    await writeFile(join(dir, 'shared/.env'), `${VAR}=${testKey()}\n`);
    await chown(join(dir, 'shared/.env'), 4321, 8765);
    await symlink('shared/.env', join(dir, '.env'));
    const t = await makeDotenv('.env');
    const key = new Secret(testKey());
    await t.write(key, op(key));
    expect(await readFile(join(dir, 'shared/.env'), 'utf8')).toBe(`${VAR}=${key.reveal()}\n`);
    const st = await stat(join(dir, 'shared/.env'));
    expect([st.uid, st.gid]).toEqual([4321, 8765]);
    expect(await mode(join(dir, 'shared/.env'))).toBe(0o644);
  });
});

describe('what keyrot refuses, with the reason and what to do', () => {
  it('a dangling link: nothing is created at its end', async () => {
    await symlink('shared/.env', join(dir, '.env'));
    const { reason, writeError } = await refusal(await makeDotenv('.env'));
    expect(reason).toMatch(/is a symlink to .*shared\/\.env, which does not exist/);
    expect(reason).toMatch(/create it|fix the link/);
    expect(writeError.message).toMatch(/which does not exist/);
    await expect(lstat(join(dir, 'shared'))).rejects.toThrow(/ENOENT/);
  });

  it('a link loop', async () => {
    await symlink('b.env', join(dir, 'a.env'));
    await symlink('a.env', join(dir, 'b.env'));
    const { reason } = await refusal(await makeDotenv('a.env'));
    expect(reason).toMatch(/loop/);
  });

  it('a directory, a FIFO, a device (directly or through a link)', async () => {
    await mkdir(join(dir, 'adir'));
    execFileSync('mkfifo', [join(dir, 'afifo')]);
    await symlink('/dev/null', join(dir, 'adevice'));
    await symlink('adir', join(dir, 'linked-dir'));
    expect((await refusal(await makeDotenv('adir'))).reason).toMatch(/is not a regular file: it is a directory/);
    expect((await refusal(await makeDotenv('linked-dir'))).reason).toMatch(/is a directory/);
    expect((await refusal(await makeFile('afifo'))).reason).toMatch(/is not a regular file: it is a FIFO/);
    expect((await refusal(await makeFile('adevice'))).reason).toMatch(/\/dev\/null is not a regular file: it is a character device/);
  });

  it('a hard-linked file: the atomic rename would leave the other name on the old key', async () => {
    const oldKey = testKey();
    await writeFile(join(dir, '.env'), `${VAR}=${oldKey}\n`);
    await link(join(dir, '.env'), join(dir, 'copy.env'));
    const { reason } = await refusal(await makeDotenv('.env'));
    expect(reason).toMatch(/has 2 hard links/);
    expect(reason).toMatch(/would keep the old key/);
    expect(reason).toMatch(/ln -s/);
    for (const n of ['.env', 'copy.env']) expect(await readFile(join(dir, n), 'utf8')).toBe(`${VAR}=${oldKey}\n`);
    expect((await stat(join(dir, '.env'))).nlink).toBe(2);
  });

  it.each(['0444', '0400'])('a read-only file (mode %s) in a writable directory: not ready, never replaced', async (octal) => {
    const m = parseInt(octal, 8);
    const oldKey = testKey();
    await writeFile(join(dir, 'openai_api_key'), oldKey);
    await chmod(join(dir, 'openai_api_key'), m);
    const { reason } = await refusal(await makeFile('openai_api_key'));
    expect(reason).toContain(`is read-only (mode ${octal})`);
    expect(reason).toMatch(/chmod u\+w/);
    expect(await readFile(join(dir, 'openai_api_key'), 'utf8')).toBe(oldKey);
    expect(await mode(join(dir, 'openai_api_key'))).toBe(m);
  });

  it('a writable file in a read-only directory: refused (no silent in-place write)', async () => {
    await mkdir(join(dir, 'conf'));
    const oldKey = testKey();
    await writeFile(join(dir, 'conf/.env'), `${VAR}=${oldKey}\n`, { mode: 0o600 });
    await chmod(join(dir, 'conf'), 0o555);
    const { reason } = await refusal(await makeDotenv('conf/.env'));
    expect(reason).toMatch(/directory .*conf is not writable/);
    expect(reason).toMatch(/does not rewrite the file in place/);
    expect(await readFile(join(dir, 'conf/.env'), 'utf8')).toBe(`${VAR}=${oldKey}\n`);
  });

  it('a missing file in a read-only directory', async () => {
    await mkdir(join(dir, 'conf'));
    await chmod(join(dir, 'conf'), 0o555);
    const { reason } = await refusal(await makeDotenv('conf/.env'));
    expect(reason).toMatch(/directory .*conf is not writable/);
    expect(await readdir(join(dir, 'conf'))).toEqual([]);
  });
});

describe('modes: never widened, and a warning when the key is readable by others', () => {
  it.each(['0600', '0640', '0660', '0604'])('a rewritten file keeps mode %s exactly', async (octal) => {
    const m = parseInt(octal, 8);
    await writeFile(join(dir, '.env'), `${VAR}=${testKey()}\n`);
    await chmod(join(dir, '.env'), m);
    const t = await makeDotenv('.env');
    const key = new Secret(testKey());
    await t.write(key, op(key));
    expect(await mode(join(dir, '.env'))).toBe(m);
    await t.restore(null, op(key), { createdFile: false, addedVar: true });
    expect(await mode(join(dir, '.env'))).toBe(m);
  });

  it('a new file is 0600 whatever the umask', async () => {
    const t = await makeFile('new_key');
    const key = new Secret(testKey());
    const before = process.umask(0);
    try {
      await t.write(key, op(key));
    } finally {
      process.umask(before);
    }
    expect(await mode(join(dir, 'new_key'))).toBe(0o600);
  });

  it('preflight warns about group/other access with the chmod that fixes it; none for 0600 or 0400', async () => {
    for (const [m, warned] of [
      [0o640, true],
      [0o644, true],
      [0o620, true],
      [0o600, false],
    ] as const) {
      await writeFile(join(dir, '.env'), `${VAR}=${testKey()}\n`);
      await chmod(join(dir, '.env'), m);
      const pre = await (await makeDotenv('.env')).preflight();
      expect(pre.status).toBe('ready');
      const w = (pre.warnings ?? []).join('\n');
      if (warned) {
        expect(w).toContain(`mode 0${m.toString(8)}`);
        expect(w).toContain(`chmod 600 ${join(dir, '.env')}`);
      } else {
        expect(w).toBe('');
      }
    }
  });

  it('the warning names the file at the end of a link', async () => {
    await mkdir(join(dir, 'shared'));
    await writeFile(join(dir, 'shared/key'), testKey(), { mode: 0o644 });
    await chmod(join(dir, 'shared/key'), 0o644);
    await symlink('shared/key', join(dir, 'key'));
    const pre = await (await makeFile('key')).preflight();
    expect(pre.warnings?.join('\n')).toContain(`chmod 600 ${join(dir, 'shared/key')}`);
  });
});
