import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dotenv } from '../../src/targets/dotenv/index.ts';
import { encodeValue, getVar, parseDotenv, removeVar, setVar } from '../../src/targets/dotenv/parse.ts';
import { Secret } from '../../src/core/secret.ts';
import { TargetError } from '../../src/core/errors.ts';
import type { OpContext, Target } from '../../src/targets/types.ts';
import { testContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';
import type { DotenvReceipt } from '../../src/targets/dotenv/index.ts';

const VAR = 'OPENAI_API_KEY';

/** setVar must change exactly the bytes between `before` and `after` of the given old value. */
function expectOnlyValueChanged(original: string, updated: string, oldRaw: string, newRaw: string): void {
  const at = original.indexOf(oldRaw);
  expect(at).toBeGreaterThanOrEqual(0);
  expect(updated).toBe(original.slice(0, at) + newRaw + original.slice(at + oldRaw.length));
}

describe('dotenv parser: byte preservation', () => {
  const oldKey = testKey();
  const newKey = testKey();

  it('unquoted value: only the value changes, comments/blank lines/order kept', () => {
    const text = `# production settings\n\nPORT=8080\n${VAR}=${oldKey}\n\n# trailing comment\nDEBUG=false\n`;
    const out = setVar(text, VAR, newKey);
    expectOnlyValueChanged(text, out, oldKey, newKey);
    expect(getVar(out, VAR)).toBe(newKey);
    expect(getVar(out, 'PORT')).toBe('8080');
    expect(getVar(out, 'DEBUG')).toBe('false');
  });

  it("single-quoted value keeps its quotes", () => {
    const text = `A=1\n${VAR}='${oldKey}'\nB=2\n`;
    const out = setVar(text, VAR, newKey);
    expect(out).toBe(`A=1\n${VAR}='${newKey}'\nB=2\n`);
    expect(getVar(out, VAR)).toBe(newKey);
  });

  it('double-quoted value keeps its quotes; escapes elsewhere are untouched', () => {
    const text = `GREETING="say \\"hi\\"\\n"\n${VAR}="${oldKey}"\nPATHS="a\\\\b"\n`;
    const out = setVar(text, VAR, newKey);
    expect(out).toBe(`GREETING="say \\"hi\\"\\n"\n${VAR}="${newKey}"\nPATHS="a\\\\b"\n`);
    expect(getVar(out, 'GREETING')).toBe('say "hi"\n');
    expect(getVar(out, 'PATHS')).toBe('a\\b');
  });

  it('backtick-quoted value keeps its backticks', () => {
    const text = `${VAR}=\`${oldKey}\`\n`;
    const out = setVar(text, VAR, newKey);
    expect(out).toBe(`${VAR}=\`${newKey}\`\n`);
    expect(getVar(out, VAR)).toBe(newKey);
  });

  it('multi-line double-quoted values around the variable stay intact', () => {
    const cert = '-----BEGIN CERT-----\nAAAA\nBBBB\n-----END CERT-----';
    const text = `CERT="${cert}"\n${VAR}=${oldKey}\nAFTER="x\ny"\n`;
    expect(getVar(text, 'CERT')).toBe(cert);
    const out = setVar(text, VAR, newKey);
    expectOnlyValueChanged(text, out, oldKey, newKey);
    expect(getVar(out, 'CERT')).toBe(cert);
    expect(getVar(out, 'AFTER')).toBe('x\ny');
  });

  it('the variable itself in a multi-line double-quoted slot', () => {
    const text = `A=1\n${VAR}="first\nsecond"\nB=2\n`;
    const out = setVar(text, VAR, newKey);
    expect(out).toBe(`A=1\n${VAR}="${newKey}"\nB=2\n`);
  });

  it('an assignment-looking line inside a multi-line value is not an assignment', () => {
    const text = `NOTE="line\n${VAR}=not-a-var\nend"\n`;
    expect(getVar(text, VAR)).toBeNull();
    const out = setVar(text, VAR, newKey);
    expect(out).toBe(`${text}${VAR}=${newKey}\n`);
    expect(getVar(out, 'NOTE')).toBe(`line\n${VAR}=not-a-var\nend`);
  });

  it('inline comments after unquoted and quoted values are kept', () => {
    const text = `${VAR}=${oldKey} # rotated monthly\nOTHER="v"   # quoted comment\n`;
    const out = setVar(text, VAR, newKey);
    expect(out).toBe(`${VAR}=${newKey} # rotated monthly\nOTHER="v"   # quoted comment\n`);
    const quoted = `${VAR}="${oldKey}"  # note\n`;
    expect(setVar(quoted, VAR, newKey)).toBe(`${VAR}="${newKey}"  # note\n`);
  });

  it('an empty value right before a comment gets the new value, not the comment', () => {
    const cases: Array<[string, string]> = [
      [`${VAR}=#fill me in\n`, `${VAR}=${newKey} #fill me in\n`],
      [`${VAR}= # fill me in\n`, `${VAR}= ${newKey} # fill me in\n`],
      [`${VAR}=\t# fill me in\r\n`, `${VAR}=\t${newKey} # fill me in\r\n`],
    ];
    for (const [text, expected] of cases) {
      expect(getVar(text, VAR)).toBe('');
      const out = setVar(text, VAR, newKey);
      expect(out).toBe(expected);
      expect(getVar(out, VAR)).toBe(newKey);
    }
  });

  it('a # inside an unquoted value without a leading blank is part of the value', () => {
    expect(getVar(`X=abc#def\n`, 'X')).toBe('abc#def');
  });

  it('full-line comments that mention the variable are never touched', () => {
    const text = `# ${VAR}=${oldKey}\n#${VAR}=x\n${VAR}=${oldKey}\n`;
    const out = setVar(text, VAR, newKey);
    expect(out).toBe(`# ${VAR}=${oldKey}\n#${VAR}=x\n${VAR}=${newKey}\n`);
  });

  it('`export ` prefix, indentation and spaces around = are preserved', () => {
    const text = `export ${VAR}=${oldKey}\n  export\tOTHER = 1\n`;
    expect(setVar(text, VAR, newKey)).toBe(`export ${VAR}=${newKey}\n  export\tOTHER = 1\n`);
    const spaced = `  ${VAR} =  ${oldKey}  \n`;
    expect(setVar(spaced, VAR, newKey)).toBe(`  ${VAR} =  ${newKey}  \n`);
  });

  it('CRLF files stay CRLF, and an appended variable uses CRLF', () => {
    const text = `A=1\r\n${VAR}=${oldKey}\r\nB="two"\r\n`;
    const out = setVar(text, VAR, newKey);
    expect(out).toBe(`A=1\r\n${VAR}=${newKey}\r\nB="two"\r\n`);
    expect(getVar(text, VAR)).toBe(oldKey); // no stray \r in the value
    const missing = 'A=1\r\nB=2\r\n';
    expect(setVar(missing, VAR, newKey)).toBe(`A=1\r\nB=2\r\n${VAR}=${newKey}\r\n`);
    const noFinal = 'A=1\r\nB=2';
    expect(setVar(noFinal, VAR, newKey)).toBe(`A=1\r\nB=2\r\n${VAR}=${newKey}\r\n`);
  });

  it('a file without a trailing newline keeps that last line intact', () => {
    const text = `A=1\n${VAR}=${oldKey}`;
    expect(setVar(text, VAR, newKey)).toBe(`A=1\n${VAR}=${newKey}`);
    const quoted = `${VAR}="${oldKey}"`;
    expect(setVar(quoted, VAR, newKey)).toBe(`${VAR}="${newKey}"`);
  });

  it('a missing variable is appended at the end with the file line ending', () => {
    expect(setVar('A=1\nB=2\n', VAR, newKey)).toBe(`A=1\nB=2\n${VAR}=${newKey}\n`);
    expect(setVar('A=1', VAR, newKey)).toBe(`A=1\n${VAR}=${newKey}\n`);
    expect(setVar('', VAR, newKey)).toBe(`${VAR}=${newKey}\n`);
  });

  it('a variable assigned twice: both assignments are updated, each in its own style', () => {
    const other = testKey();
    const text = `${VAR}=${oldKey}\nX=1\n${VAR}='${other}'\n`;
    const out = setVar(text, VAR, newKey);
    expect(out).toBe(`${VAR}=${newKey}\nX=1\n${VAR}='${newKey}'\n`);
    expect(parseDotenv(out).filter((a) => a.name === VAR).map((a) => a.value)).toEqual([newKey, newKey]);
  });

  it('getVar: the last assignment wins', () => {
    const a = testKey();
    const b = testKey();
    expect(getVar(`${VAR}=${a}\n${VAR}=${b}\n`, VAR)).toBe(b);
  });

  it('similarly named variables are untouched', () => {
    const old2 = testKey();
    const old3 = testKey();
    const text = `${VAR}_OLD=${old2}\nMY_${VAR}=${old3}\n${VAR}=${oldKey}\n${VAR}2=x\n`;
    const out = setVar(text, VAR, newKey);
    expect(out).toBe(`${VAR}_OLD=${old2}\nMY_${VAR}=${old3}\n${VAR}=${newKey}\n${VAR}2=x\n`);
    expect(getVar(out, `${VAR}_OLD`)).toBe(old2);
    expect(getVar(out, `MY_${VAR}`)).toBe(old3);
    // Only similar names: the variable is appended, the others stay.
    const only = `${VAR}_OLD=${old2}\nMY_${VAR}=${old3}\n`;
    expect(setVar(only, VAR, newKey)).toBe(`${only}${VAR}=${newKey}\n`);
  });

  it('a UTF-8 byte order mark before the first variable does not hide it', () => {
    const text = `\uFEFF${VAR}=${oldKey}\nA=1\n`;
    expect(getVar(text, VAR)).toBe(oldKey);
    const out = setVar(text, VAR, newKey);
    expect(out).toBe(`\uFEFF${VAR}=${newKey}\nA=1\n`);
    expect(out).not.toContain(oldKey);
  });

  it('values that need quoting are quoted so they read back exactly', () => {
    const tricky = ['has space', 'with#hash', 'dollar$HOME', 'quote"inside', "apos'trophe", 'back\\slash', 'tick`s', 'new\nline', ' lead', ''];
    for (const v of tricky) {
      for (const slot of [`${VAR}=old\n`, `${VAR}='old'\n`, `${VAR}="old"\n`, `${VAR}=\`old\`\n`, '']) {
        const out = setVar(slot, VAR, v);
        expect(getVar(out, VAR), `${JSON.stringify(v)} into ${JSON.stringify(slot)}`).toBe(v);
        expect(out.endsWith('\n')).toBe(true);
      }
    }
    expect(encodeValue('plain-value_1.2', '')).toBe('plain-value_1.2');
    expect(encodeValue('has space', '')).toBe('"has space"');
    expect(encodeValue("it's", "'")).toBe(`"it's"`);
  });

  it('removeVar removes every assignment line of the variable and nothing else', () => {
    const text = `A=1\n${VAR}=${oldKey}\nB=2\n${VAR}="x"\r\nC=3`;
    expect(removeVar(text, VAR)).toBe('A=1\nB=2\nC=3');
    expect(removeVar('A=1\n', VAR)).toBe('A=1\n');
  });

  it('round trip: setVar then setVar back to the old value restores the exact bytes', () => {
    const text = `# c\r\nexport ${VAR}='${oldKey}' # keep\r\nZ=9`;
    expect(setVar(setVar(text, VAR, newKey), VAR, oldKey)).toBe(text);
  });
});

describe('dotenv target (adapter)', () => {
  let dir: string;
  const op = (key: Secret): OpContext => ({ rotationId: 'rot_test_dotenv', fingerprint: key.fingerprint });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyrot-dotenv-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const make = (path = '.env', varName = VAR): Promise<Target<DotenvReceipt>> => dotenv.create({ path }, testContext({ baseDir: dir, varName, name: 'dotenv' }));
  const envPath = () => join(dir, '.env');
  const leftovers = async () => (await readdir(dir)).filter((f) => f.includes('keyrot') || f.endsWith('.tmp'));

  it('describes itself and resolves relative paths against baseDir', async () => {
    await writeFile(envPath(), `${VAR}=x-value\n`);
    const t = await make();
    expect(t.id).toBe('dotenv');
    expect(t.location).toBe('.env');
    expect(dotenv.capabilities.readBack).toBe('always');
    expect(t.lockKey).toBe(`file:${envPath()}`);
    const r = await t.read();
    expect(r.kind).toBe('value');
  });

  it('write changes only the value and keeps the file mode (0640 stays 0640), no temp files left', async () => {
    const oldKey = testKey();
    const newKey = new Secret(testKey());
    const text = `# app\nexport A="1"\r\n${VAR}='${oldKey}' # note\n\nB=2`;
    await writeFile(envPath(), text);
    await chmod(envPath(), 0o640);
    const t = await make();
    const receipt = await t.write(newKey, op(newKey));
    expect(receipt).toMatchObject({ createdFile: false, addedVar: false });
    expect(await readFile(envPath(), 'utf8')).toBe(text.replace(oldKey, newKey.reveal()));
    expect((await stat(envPath())).mode & 0o777).toBe(0o640);
    expect(await leftovers()).toEqual([]);
    await expect(t.verify(newKey, op(newKey), receipt)).resolves.toMatchObject({ method: 'read-back' });
  });

  it('write to a missing file creates it with mode 0600 holding only the variable', async () => {
    const key = new Secret(testKey());
    const t = await make();
    const receipt = await t.write(key, op(key));
    expect(receipt).toMatchObject({ createdFile: true, addedVar: true });
    expect(await readFile(envPath(), 'utf8')).toBe(`${VAR}=${key.reveal()}\n`);
    expect((await stat(envPath())).mode & 0o777).toBe(0o600);
    expect(await leftovers()).toEqual([]);
  });

  it('write is idempotent: a second identical write does not touch the file', async () => {
    const key = new Secret(testKey());
    await writeFile(envPath(), `A=1\n${VAR}=placeholder-old\n`);
    const t = await make();
    await t.write(key, op(key));
    const st1 = await stat(envPath());
    await new Promise((r) => setTimeout(r, 20));
    await t.write(key, op(key));
    const st2 = await stat(envPath());
    expect(st2.mtimeMs).toBe(st1.mtimeMs);
    expect(st2.ino).toBe(st1.ino);
    expect(await readFile(envPath(), 'utf8')).toBe(`A=1\n${VAR}=${key.reveal()}\n`);
  });

  it('verify fails with a mismatch (no value in the message) when the file holds something else', async () => {
    const key = new Secret(testKey());
    const other = testKey();
    await writeFile(envPath(), `${VAR}=${other}\n`);
    const t = await make();
    const err = await t.verify(key, op(key), undefined).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TargetError);
    expect((err as TargetError).kind).toBe('mismatch');
    expect((err as TargetError).message).not.toContain(key.reveal());
    expect((err as TargetError).message).not.toContain(other);
  });

  it('restore puts the previous value back byte for byte', async () => {
    const oldKey = testKey();
    const key = new Secret(testKey());
    const text = `# c\r\n${VAR}="${oldKey}"\r\nX=1\r\n`;
    await writeFile(envPath(), text);
    const t = await make();
    const pre = await t.preflight();
    expect(pre.current.kind).toBe('value');
    const receipt = await t.write(key, op(key));
    expect(await readFile(envPath(), 'utf8')).not.toContain(oldKey);
    await t.restore(new Secret(oldKey), op(key), receipt);
    expect(await readFile(envPath(), 'utf8')).toBe(text);
    // Idempotent.
    await t.restore(new Secret(oldKey), op(key), receipt);
    expect(await readFile(envPath(), 'utf8')).toBe(text);
  });

  it('restore with previous=null removes the added variable, giving back the exact original bytes', async () => {
    const key = new Secret(testKey());
    for (const text of ['# app\nA=1\n', 'A=1', 'A=1\r\nB=2\r\n', 'A=1\r\nB=2']) {
      await writeFile(envPath(), text);
      const t = await make();
      const receipt = await t.write(key, op(key));
      expect(receipt).toMatchObject({ createdFile: false, addedVar: true });
      expect(getVar(await readFile(envPath(), 'utf8'), VAR)).toBe(key.reveal());
      await t.restore(null, op(key), receipt);
      expect(await readFile(envPath(), 'utf8'), JSON.stringify(text)).toBe(text);
    }
  });

  it('restore with previous=null on an empty assignment empties it again and keeps the line', async () => {
    const key = new Secret(testKey());
    const text = `A=1\n${VAR}=\nB=2\n`;
    await writeFile(envPath(), text);
    const t = await make();
    expect((await t.read()).kind).toBe('absent');
    const receipt = await t.write(key, op(key));
    expect(getVar(await readFile(envPath(), 'utf8'), VAR)).toBe(key.reveal());
    await t.restore(null, op(key), receipt);
    expect(await readFile(envPath(), 'utf8')).toBe(text);
  });

  it('restore with previous=null deletes a file keyrot created', async () => {
    const key = new Secret(testKey());
    const t = await make();
    const receipt = await t.write(key, op(key));
    await t.restore(null, op(key), receipt);
    await expect(stat(envPath())).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readdir(dir)).toEqual([]);
    // Idempotent: restoring again with the file gone is fine.
    await expect(t.restore(null, op(key), receipt)).resolves.toBeUndefined();
  });

  it('restore with previous=null keeps a file keyrot created if something else was added since', async () => {
    const key = new Secret(testKey());
    const t = await make();
    const receipt = await t.write(key, op(key));
    await writeFile(envPath(), `${await readFile(envPath(), 'utf8')}OTHER=added-later\n`);
    await t.restore(null, op(key), receipt);
    expect(await readFile(envPath(), 'utf8')).toBe('OTHER=added-later\n');
  });

  it('restore recreates a deleted file with the previous value', async () => {
    const oldKey = testKey();
    const key = new Secret(testKey());
    await writeFile(envPath(), `${VAR}=${oldKey}\n`);
    const t = await make();
    const receipt = await t.write(key, op(key));
    await rm(envPath());
    await t.restore(new Secret(oldKey), op(key), receipt);
    expect(await readFile(envPath(), 'utf8')).toBe(`${VAR}=${oldKey}\n`);
  });

  it('writes the target var name (ctx.varName), not OPENAI_API_KEY', async () => {
    const key = new Secret(testKey());
    await writeFile(envPath(), `${VAR}=keep-me\n`);
    const t = await make('.env', 'LLM_KEY');
    await t.write(key, op(key));
    expect(await readFile(envPath(), 'utf8')).toBe(`${VAR}=keep-me\nLLM_KEY=${key.reveal()}\n`);
  });

  it('preflight: ready with the current value, no notes for a plain file', async () => {
    const oldKey = testKey();
    await writeFile(envPath(), `${VAR}=${oldKey}\n`);
    const t = await make();
    const pre = await t.preflight();
    expect(pre.status).toBe('ready');
    expect(pre.current.kind === 'value' && pre.current.value.reveal()).toBe(oldKey);
    expect(pre.willCreate).toBe(false);
    expect(pre.notes ?? []).toEqual([]);
  });

  it('preflight notes a missing variable (will be added)', async () => {
    await writeFile(envPath(), 'A=1\n');
    const t = await make();
    const pre = await t.preflight();
    expect(pre.status).toBe('ready');
    expect(pre.current.kind).toBe('absent');
    expect(pre.willCreate).toBe(true);
    expect(pre.notes?.join('\n')).toMatch(new RegExp(`${VAR} will be added`));
  });

  it('preflight notes duplicate assignments with different values (every one will be updated)', async () => {
    const a = testKey();
    const b = testKey();
    await writeFile(envPath(), `${VAR}=${a}\n${VAR}=${b}\n`);
    const t = await make();
    const pre = await t.preflight();
    expect(pre.status).toBe('ready');
    const notes = pre.notes?.join('\n') ?? '';
    expect(notes).toMatch(/2 different values/);
    expect(notes).toMatch(/every assignment will be updated/);
    expect(notes).not.toContain(a);
    expect(notes).not.toContain(b);
  });

  it('preflight for a missing file in an existing directory: ready, will create', async () => {
    const t = await make();
    const pre = await t.preflight();
    expect(pre.status).toBe('ready');
    expect(pre.willCreate).toBe(true);
    expect(pre.notes?.join('\n')).toMatch(/will be created \(mode 0600\)/);
    expect(await readdir(dir)).toEqual([]); // preflight never writes
  });

  it('preflight error for a missing directory; write fails with a TargetError naming the path', async () => {
    const t = await make('no-such-dir/.env');
    const pre = await t.preflight();
    expect(pre.status).toBe('blocked');
    expect(pre.reason).toContain(join(dir, 'no-such-dir'));
    const key = new Secret(testKey());
    const err = await t.write(key, op(key)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TargetError);
    expect((err as TargetError).retryable).toBe(false);
    expect((err as TargetError).message).not.toContain(key.reveal());
  });

  it('preflight error when the path is a directory', async () => {
    await mkdir(envPath());
    const t = await make();
    const pre = await t.preflight();
    expect(pre.status).toBe('blocked');
    expect(pre.reason).toMatch(/not a regular file/);
  });

  it('absolute paths are used as they are', async () => {
    const key = new Secret(testKey());
    const abs = join(dir, 'abs.env');
    const t = await dotenv.create({ path: abs }, testContext({ baseDir: '/nonexistent', varName: VAR }));
    await t.write(key, op(key));
    expect(await readFile(abs, 'utf8')).toBe(`${VAR}=${key.reveal()}\n`);
  });
});
