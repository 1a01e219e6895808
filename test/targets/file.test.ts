import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { file } from '../../src/targets/file/index.ts';
import { Secret } from '../../src/core/secret.ts';
import { TargetError } from '../../src/core/errors.ts';
import type { OpContext, Target } from '../../src/targets/types.ts';
import { testContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';
import type { FileReceipt } from '../../src/targets/file/index.ts';

describe('file target', () => {
  let dir: string;
  const keyPath = () => join(dir, 'openai_api_key');
  const op = (key: Secret): OpContext => ({ rotationId: 'rot_test_file', fingerprint: key.fingerprint });
  const make = (path = 'openai_api_key'): Promise<Target<FileReceipt>> => file.create({ path }, testContext({ baseDir: dir, name: 'file' }));

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyrot-file-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a new file is created with mode 0600 and holds only the key (no newline)', async () => {
    const key = new Secret(testKey());
    const t = await make();
    expect(t.id).toBe('file');
    expect(t.location).toBe('openai_api_key');
    const receipt = await t.write(key, op(key));
    expect(receipt).toEqual({ createdFile: true });
    expect(await readFile(keyPath(), 'utf8')).toBe(key.reveal());
    expect((await stat(keyPath())).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['openai_api_key']); // no temp file left
    await expect(t.verify(key, op(key), receipt)).resolves.toMatchObject({ method: 'read-back' });
  });

  it('keeps the trailing newline convention of an existing file (LF, CRLF, none)', async () => {
    for (const eol of ['\n', '\r\n', '']) {
      const oldKey = testKey();
      const key = new Secret(testKey());
      await writeFile(keyPath(), oldKey + eol);
      const t = await make();
      const pre = await t.preflight();
      expect(pre.current.kind === 'value' && pre.current.value.reveal()).toBe(oldKey);
      const receipt = await t.write(key, op(key));
      expect(receipt).toEqual({ createdFile: false });
      expect(await readFile(keyPath(), 'utf8')).toBe(key.reveal() + eol);
      const r = await t.read();
      expect(r.kind === 'value' && r.value.equals(key)).toBe(true);
    }
  });

  it('keeps an existing mode (0640) across the atomic write', async () => {
    await writeFile(keyPath(), 'placeholder-old\n');
    await chmod(keyPath(), 0o640);
    const key = new Secret(testKey());
    const t = await make();
    await t.write(key, op(key));
    expect((await stat(keyPath())).mode & 0o777).toBe(0o640);
    expect(await readdir(dir)).toEqual(['openai_api_key']);
  });

  it('write is idempotent: the same value twice leaves the file untouched', async () => {
    const key = new Secret(testKey());
    const t = await make();
    await t.write(key, op(key));
    const st1 = await stat(keyPath());
    await new Promise((r) => setTimeout(r, 20));
    await t.write(key, op(key));
    const st2 = await stat(keyPath());
    expect(st2.mtimeMs).toBe(st1.mtimeMs);
    expect(st2.ino).toBe(st1.ino);
  });

  it('restore puts the previous value back with the same newline', async () => {
    const oldKey = testKey();
    const key = new Secret(testKey());
    await writeFile(keyPath(), `${oldKey}\n`);
    const t = await make();
    const receipt = await t.write(key, op(key));
    await t.restore(new Secret(oldKey), op(key), receipt);
    expect(await readFile(keyPath(), 'utf8')).toBe(`${oldKey}\n`);
  });

  it('restore with previous=null deletes a file keyrot created (idempotently)', async () => {
    const key = new Secret(testKey());
    const t = await make();
    const receipt = await t.write(key, op(key));
    await t.restore(null, op(key), receipt);
    await expect(stat(keyPath())).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(t.restore(null, op(key), receipt)).resolves.toBeUndefined();
    expect(await readdir(dir)).toEqual([]);
  });

  it('restore with previous=null on a file that existed empty empties it again (not deleted)', async () => {
    await writeFile(keyPath(), '');
    const key = new Secret(testKey());
    const t = await make();
    expect((await t.read()).kind).toBe('absent');
    const receipt = await t.write(key, op(key));
    expect(receipt).toEqual({ createdFile: false });
    await t.restore(null, op(key), receipt);
    expect(await readFile(keyPath(), 'utf8')).toBe('');
  });

  it('an empty or newline-only file reads as absent', async () => {
    const t = await make();
    expect((await t.read()).kind).toBe('absent');
    await writeFile(keyPath(), '\n');
    expect((await t.read()).kind).toBe('absent');
  });

  it('preflight: missing file will be created; missing directory is an error', async () => {
    const t = await make();
    const pre = await t.preflight();
    expect(pre).toMatchObject({ status: 'ready', willCreate: true });
    expect(await readdir(dir)).toEqual([]);
    const bad = await make('missing/dir/key');
    const pre2 = await bad.preflight();
    expect(pre2.status).toBe('blocked');
    expect(pre2.reason).toContain(join(dir, 'missing', 'dir'));
    const key = new Secret(testKey());
    await expect(bad.write(key, op(key))).rejects.toBeInstanceOf(TargetError);
  });

  it('verify reports a mismatch without the values', async () => {
    const other = testKey();
    const key = new Secret(testKey());
    await writeFile(keyPath(), other);
    const t = await make();
    const err = await t.verify(key, op(key), undefined).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TargetError);
    expect((err as TargetError).kind).toBe('mismatch');
    expect((err as TargetError).message).not.toContain(other);
    expect((err as TargetError).message).not.toContain(key.reveal());
  });
});
