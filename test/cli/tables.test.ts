import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenAIEmulator } from '../../emulators/openai/index.ts';
import { runCli } from '../helpers/cli.ts';
import { runCliOnPty } from '../helpers/pty.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * Tables fit the terminal: on a real pseudo-terminal of 80 and of 160 columns no line of plan's or
 * verify's table is wider than the screen, `--wide` prints them in full, COLUMNS is honoured
 * without a terminal, and counts are pluralised ("1 target", "3 targets").
 */
const openai = new OpenAIEmulator();
let dir: string;
const LONG = 'services/backend/config/environments/production-eu-west-1/application.env';

const inventory = (targets: number) =>
  `version: 1\nkey:\n  name: OPENAI_API_KEY\n  source: stdin\n  endpoint: ${openai.endpoint}\nenvironments:\n  production:\n    targets:\n` +
  Array.from({ length: targets }, (_, i) => `      - type: dotenv\n        name: backend-service-environment-file-number-${i}\n        path: ${LONG.replace('application', `application-${i}`)}\n`).join('');

/** The screen's lines as shown: control sequences and carriage returns taken out. */
function screenLines(text: string): string[] {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').split(/\r?\n/).map((l) => l.replace(/\r/g, ''));
}

/** The table's lines: from its header row (it has TARGET) to the first empty line. */
function tableLines(text: string): string[] {
  const lines = screenLines(text);
  const start = lines.findIndex((l) => /\bTARGET\b/.test(l));
  expect(start, text).toBeGreaterThanOrEqual(0);
  const end = lines.findIndex((l, i) => i > start && l.trim() === '');
  return lines.slice(start, end < 0 ? undefined : end);
}

/** The widest table line, in terminal columns (the table's characters are one column each). */
const widest = (text: string) => Math.max(...tableLines(text).map((l) => [...l].length));

async function onPty(args: string[], columns: number): Promise<string> {
  const s = runCliOnPty([...args, '-c', 'targets.yaml'], { cwd: dir, columns, env: { XDG_CONFIG_HOME: join(dir, 'config') } });
  await s.exited;
  return s.output();
}

beforeAll(async () => {
  await openai.start();
  dir = await mkdtemp(join(tmpdir(), 'keyrot-tables-'));
  const key = testKey();
  openai.addKey(key);
  for (let i = 0; i < 3; i++) {
    const path = join(dir, LONG.replace('application', `application-${i}`));
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, `OPENAI_API_KEY=${key}\n`, { mode: 0o600 });
  }
  await writeFile(join(dir, 'targets.yaml'), inventory(3));
  await writeFile(join(dir, 'one.yaml'), inventory(1));
});

afterAll(async () => {
  await openai.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('tables fit the terminal', () => {
  it('plan and verify fit 80 and 160 columns on a real terminal; --wide prints every cell in full', async () => {
    for (const cmd of ['plan', 'verify']) {
      const at80 = await onPty([cmd], 80);
      expect(at80, at80).toMatch(/backend.*umber-0/);
      expect(widest(at80), at80).toBeLessThanOrEqual(80);
      const at160 = await onPty([cmd], 160);
      expect(widest(at160), at160).toBeLessThanOrEqual(160);
      // --wide: every cell in full (plan's full path; both commands' full target names).
      const wide = await onPty([cmd, '--wide'], 80);
      expect(wide).toContain('backend-service-environment-file-number-0');
      if (cmd === 'plan') expect(wide).toContain(LONG.replace('application', 'application-0'));
      expect(widest(wide)).toBeGreaterThan(80);
    }
  }, 180_000);

  it('COLUMNS sizes tables without a terminal; a table with no content in a column leaves it out', async () => {
    const r = await runCli(['plan', '-c', 'targets.yaml'], { cwd: dir, env: { COLUMNS: '80', XDG_CONFIG_HOME: join(dir, 'config') } });
    expect(r.code, r.stderr).toBe(0);
    expect(widest(r.stdout), r.stdout).toBeLessThanOrEqual(80);
    // Not a terminal and no COLUMNS (a pipe, a CI log): in full.
    const piped = await runCli(['plan', '-c', 'targets.yaml'], { cwd: dir, env: { XDG_CONFIG_HOME: join(dir, 'config') } });
    expect(widest(piped.stdout)).toBeGreaterThan(80);
    const v = await runCli(['verify', '-c', 'targets.yaml', '--wide'], { cwd: dir, env: { XDG_CONFIG_HOME: join(dir, 'config') } });
    // Every target matches and was read back: the DETAIL column is empty, so not printed.
    expect(v.stdout).not.toContain('DETAIL');
    expect(v.stdout).toContain('HOLDS');
  }, 60_000);

  it('counts are pluralised: "1 target", "3 targets"', async () => {
    const one = await runCli(['verify', '-c', 'one.yaml'], { cwd: dir, env: { XDG_CONFIG_HOME: join(dir, 'config') } });
    expect(one.stderr).toContain('Reading 1 target of "production"');
    expect(one.stdout).toMatch(/The target holds/);
    expect(one.stdout + one.stderr).not.toMatch(/\b1 targets\b/);
    const three = await runCli(['plan', '-c', 'targets.yaml'], { cwd: dir, env: { XDG_CONFIG_HOME: join(dir, 'config') } });
    expect(three.stderr).toContain('Checking 3 targets of "production"');
    // A rotation's step lines too: "[write] 1 target".
    const newKey = testKey();
    openai.addKey(newKey);
    const rotated = await runCli(['rotate', '-c', 'one.yaml', '--yes'], { cwd: dir, input: newKey + '\n', env: { XDG_CONFIG_HOME: join(dir, 'config') } });
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stderr).toContain('[write] 1 target\n');
    expect(rotated.stdout + rotated.stderr).not.toMatch(/\b1 targets\b/);
  }, 60_000);
});
