import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseInventory } from '../../src/inventory/load.ts';
import { ConfigError, ConfigErrors } from '../../src/core/errors.ts';
import { runCli } from '../helpers/cli.ts';

/**
 * Inventories written to hurt: every one is an inventory error (exit 2, file:line:column), found
 * in time linear in the input, with a message of readable size.
 */
const FILE = '/inv/targets.yaml';
const TARGETS = 'environments:\n  p:\n    targets:\n      - type: dotenv\n        path: a/.env\n';

async function rejection(text: string): Promise<ConfigErrors> {
  try {
    await parseInventory(text, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigErrors);
    for (const e of (err as ConfigErrors).errors) {
      expect(e).toBeInstanceOf(ConfigError);
      expect(e.position?.file).toBe(FILE);
    }
    return err as ConfigErrors;
  }
  throw new Error('expected the inventory to be rejected');
}

/** "billion laughs": nine levels of nine aliases, 400 bytes standing for 387 million strings. */
function aliasBomb(): string {
  let text = 'version: 1\na: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
  let prev = 'a';
  for (const c of 'bcdefghi') {
    text += `${c}: &${c} [${Array(9).fill(`*${prev}`).join(',')}]\n`;
    prev = c;
  }
  return text + TARGETS;
}

/**
 * The CPU time `fn` takes, in ms: what the code costs, unlike wall time, which a machine busy with
 * other test processes inflates at random.
 */
async function cpuMs(fn: () => Promise<unknown>): Promise<number> {
  const before = process.cpuUsage();
  await fn();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

/** A mapping of `n` distinct keys, where the inventory has none: every key must be compared for duplicates. */
const manyKeys = (n: number) => `version: 1\n${TARGETS}x:\n${Array.from({ length: n }, (_, i) => `  key${i}: v`).join('\n')}\n`;

describe('hostile inventories are inventory errors', () => {
  it('an alias bomb is refused at the alias that expands too much, without expanding it', async () => {
    const err = await rejection(aliasBomb()); // expanded, it would be 387 million strings
    expect(err.errors).toHaveLength(1);
    const e = err.errors[0]!;
    expect(e.message).toMatch(/aliases expand this document to more than 100000 values/);
    expect(e.position?.line).toBeGreaterThan(2);
  });

  it('an alias to no anchor, and an alias inside its own anchor, are errors at the alias', async () => {
    const undefinedAlias = (await rejection(`version: 1\nkey: *nowhere\n${TARGETS}`)).errors[0]!;
    expect(undefinedAlias.message).toMatch(/alias \*nowhere refers to no anchor/);
    expect(undefinedAlias.position).toEqual({ file: FILE, line: 2, column: 6 });
    const circular = (await rejection(`version: 1\nx: &loop [*loop]\n${TARGETS}`)).errors[0]!;
    expect(circular.message).toMatch(/alias \*loop refers to no anchor/);
    expect(circular.position).toEqual({ file: FILE, line: 2, column: 11 });
  });

  it('aliases used ordinarily still work (more than the YAML library allows by default)', async () => {
    const targets = Array.from({ length: 150 }, (_, i) => `      - type: dotenv\n        name: t${i}\n        path: *p`).join('\n');
    const inv = await parseInventory(`version: 1\nkey:\n  name: &p SHARED\nenvironments:\n  p:\n    targets:\n${targets}\n`, FILE);
    const env = inv.environments.get('p')!;
    expect(env.targets).toHaveLength(150);
    expect(env.targets.every((t) => t.config.path === 'SHARED')).toBe(true);
  });

  it('duplicate keys are found in linear time: 50,000 keys cost less than 20× the CPU time of 5,000 keys', async () => {
    const small = manyKeys(5_000);
    const large = manyKeys(50_000);
    const parse = (text: string) => () => rejection(text);
    await parse(small)(); // warm up the JIT
    // Interleaved, and the least of each.
    let [small5k, large50k] = [Infinity, Infinity];
    for (let i = 0; i < 3; i++) {
      small5k = Math.min(small5k, await cpuMs(parse(small)));
      large50k = Math.min(large50k, await cpuMs(parse(large)));
      small5k = Math.min(small5k, await cpuMs(parse(small)));
    }
    // Linear is 10× (measured 10-12×); the quadratic check this replaces cost about 100× (50,000 keys: 44 s to minutes).
    expect(large50k / small5k).toBeLessThan(20);
  }, 120_000);

  it('a duplicate key is an error at the second occurrence, naming the first', async () => {
    const e = (await rejection(`version: 1\nkey:\n  name: A\n  kind: generic\n  name: B\n${TARGETS}`)).errors[0]!;
    expect(e.message).toMatch(/^duplicate key "name" \(first at line 3\)/);
    expect(e.position).toEqual({ file: FILE, line: 5, column: 3 });
  });

  it('thousands of mistakes give 20 lines and a count', async () => {
    const err = await rejection(`version: 1\n${TARGETS}x:\n${Array.from({ length: 3000 }, (_, i) => `  k${i % 7}: v`).join('\n')}\n`);
    expect(err.errors).toHaveLength(20);
    expect(err.omitted).toBeGreaterThan(2900);
    expect(err.message).toMatch(/\.\.\. and \d+ more$/);
  });

  it('collections nested hundreds of levels deep are refused at once', async () => {
    for (const text of [`version: 1\nx: ${'['.repeat(200_000)}`, `version: 1\nx: ${'{a: '.repeat(100)}`, `${'- '.repeat(100_000)}a\n`]) {
      const e = (await rejection(text)).errors[0]!;
      expect(e.message).toMatch(/nested more than 64 levels deep/);
    }
  });

  it('a quoted input is cut to 80 characters, control characters escaped', async () => {
    const huge = `\x1b]52;c;${'A'.repeat(500_000)}\x07`;
    const err = await rejection(`version: 1\nenvironments:\n  p:\n    targets: ${JSON.stringify(huge)}\n`);
    const e = err.errors[0]!;
    expect(e.format().length).toBeLessThan(300);
    expect(e.message).toContain('"\\u001b]52;c;AAAA');
    expect(e.message).toMatch(/…" \(500008 characters\)$/);
    expect(e.message).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
  });

  it('a long unknown target type and a long unknown key are quoted cut, too', async () => {
    const longType = 't'.repeat(10_000);
    const err = await rejection(`version: 1\nenvironments:\n  p:\n    targets:\n      - type: ${longType}\n        ${'k'.repeat(1000)}: 1\n`);
    // Bounded whatever the input's size: the quoted part is cut (the list of valid types keyrot
    // appends grows with each target type, not with the input).
    for (const e of err.errors) expect(e.format().length).toBeLessThan(700);
    for (const e of err.errors) expect(e.format()).not.toContain('t'.repeat(200));
  });
});

describe('CLI: hostile inventory files exit 2 with file:line:column and a short message', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyrot-hostile-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  async function plan(name: string, content: string | Buffer) {
    const path = join(dir, name);
    await writeFile(path, content);
    const r = await runCli(['plan', '-c', path], { cwd: dir });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.length).toBeLessThan(1000);
    expect(r.stderr).not.toMatch(/a bug in keyrot/);
    return { ...r, path };
  }

  it('an alias bomb', async () => {
    const r = await plan('bomb.yaml', aliasBomb());
    expect(r.stderr).toMatch(new RegExp(`${r.path}:\\d+:\\d+: aliases expand`));
  });

  it('a 10 MB binary file: refused by size, unread past 1 MiB', async () => {
    const r = await plan('binary.yaml', randomBytes(10 * 1024 * 1024));
    expect(r.stderr).toContain(`${r.path}:1:1: the inventory is larger than 1 MiB`);
  });

  it('a small binary file (NUL bytes)', async () => {
    const r = await plan('small-binary.yaml', Buffer.concat([Buffer.from('version: 1\n'), Buffer.from([0, 1, 2, 3]), Buffer.from('x')]));
    expect(r.stderr).toContain(`${r.path}:2:1: the inventory holds a NUL byte: this looks like a binary file, not YAML`);
  });

  it('not UTF-8 (a Latin-1 file): the position of the first bad byte', async () => {
    const r = await plan('latin1.yaml', Buffer.concat([Buffer.from('version: 1\n# caf'), Buffer.from([0xe9]), Buffer.from('\n')]));
    expect(r.stderr).toContain(`${r.path}:2:6: the inventory is not UTF-8 text (byte 0xe9 at offset 16)`);
  });

  it('a terminal escape sequence in the file', async () => {
    const r = await plan('escape.yaml', `version: 1\nkey:\n  name: "A\x1b[2J"\n${TARGETS}`);
    expect(r.stderr).toContain(`${r.path}:3:11: the inventory holds a control character (U+001B)`);
    expect(r.stderr).not.toContain('\x1b');
  });

  it('a bidirectional override (text that reads differently in review)', async () => {
    const r = await plan('bidi.yaml', `version: 1\nkey:\n  source: env:A\u202eB\n${TARGETS}`);
    expect(r.stderr).toContain(`${r.path}:3:16: the inventory holds a bidirectional control character (U+202E)`);
  });

  it('just over 1 MiB of valid YAML', async () => {
    const r = await plan('big.yaml', `version: 1\n# ${'x'.repeat(1024 * 1024)}\n${TARGETS}`);
    expect(r.stderr).toContain('larger than 1 MiB');
  });

  it('a directory given as the inventory', async () => {
    const r = await runCli(['plan', '-c', dir], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${dir} is a directory`);
  });
});
