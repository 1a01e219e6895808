import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenAIEmulator } from '../../emulators/openai/index.ts';
import { runCli, type CliResult } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * Every `keyrot …` command keyrot prints as a next step, in every command's output, names the
 * inventory and state the user gave (`-c other.yaml --state-dir st`): copied from the screen, it
 * acts on the same files.
 */
const openai = new OpenAIEmulator();
let dir: string;
const FLAGS = ['-c', 'other.yaml', '--state-dir', 'st'];
const COMMANDS = 'plan|rotate|emergency|revoke|resume|status|verify|history|scan|schedule';

/** Each `keyrot <command> …` in the text, up to the end of its command line. */
function printedCommands(text: string): string[] {
  return [...text.matchAll(new RegExp(`keyrot (?:${COMMANDS})\\b[^\`\\n]*`, 'g'))].map((m) => m[0]);
}

beforeAll(async () => {
  await openai.start();
  dir = await mkdtemp(join(tmpdir(), 'keyrot-next-'));
  await mkdir(join(dir, 'app'));
  const oldKey = testKey();
  openai.addKey(oldKey);
  await writeFile(join(dir, 'app/.env'), `OPENAI_API_KEY=${oldKey}\n`, { mode: 0o600 });
  await writeFile(
    join(dir, 'other.yaml'),
    `version: 1\nkey:\n  name: OPENAI_API_KEY\n  source: stdin\n  endpoint: ${openai.endpoint}\nenvironments:\n  local:\n    schedule:\n      cron: "0 3 1 * *"\n    targets:\n      - type: dotenv\n        name: app-env\n        path: app/.env\n`,
  );
});

afterAll(async () => {
  await openai.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('next steps keep -c and --state-dir', () => {
  it('every keyrot command printed by plan, rotate (killed), status, verify, resume, revoke, history, schedule carries both', async () => {
    const env = { XDG_CONFIG_HOME: join(dir, 'config') };
    const run = (args: string[], input?: string, extra: Record<string, string> = {}) => runCli([...args, ...FLAGS], { cwd: dir, input, env: { ...env, ...extra } });
    const newKey = testKey();
    openai.addKey(newKey);
    const outputs: CliResult[] = [];
    outputs.push(await run(['plan']));
    // Interrupted mid-write: status, verify and plan say how to resume.
    const killed = await run(['rotate', '--yes'], newKey + '\n', { KEYROT_FAILPOINTS: 'after-write:app-env' });
    expect(killed.signal).toBe('SIGKILL');
    outputs.push(await run(['status']), await run(['verify']), await run(['plan']), await run(['rotate', '--yes'], testKey() + '\n'));
    const resumed = await run(['resume']);
    expect(resumed.code, resumed.stderr + resumed.stdout).toBe(0);
    outputs.push(resumed, await run(['status']), await run(['revoke']), await run(['history']), await run(['schedule', '--once']));
    outputs.push(await run(['revoke', '--yes']), await run(['status']));
    const printed = outputs.flatMap((r) => printedCommands(r.stdout + r.stderr));
    // The scenario prints next steps of several kinds (resume, revoke, rotate, verify...).
    expect(new Set(printed.map((p) => p.split(' ')[1])).size, printed.join('\n')).toBeGreaterThanOrEqual(3);
    for (const p of printed) {
      expect(p, p).toMatch(/(^|\s)-c other\.yaml(\s|$)/);
      expect(p, p).toMatch(/(^|\s)--state-dir st(\s|$)/);
    }
  }, 120_000);
});
