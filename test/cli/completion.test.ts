import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { COMMANDS, optionsOf } from '../../src/cli/main.ts';
import { REGISTERED_IDS } from '../../src/targets/index.ts';

/**
 * `keyrot completion bash|zsh|fish`: the scripts are made from the command table, so they offer
 * exactly keyrot's commands and each command's flags. bash: sourced in a real bash, asked through
 * the completion function as bash would; fish: sourced and asked with `complete -C`; zsh: parsed
 * by zsh (-n). zsh and fish come from .ci/run; under CI=true a missing shell fails the test.
 */
let dir: string;
const scripts: Record<string, string> = {};
const has = (shell: string) => spawnSync('sh', ['-c', `command -v ${shell}`]).status === 0;
const needShell = (shell: string) => {
  if (!has(shell) && process.env.CI) throw new Error(`${shell} is not installed (.ci/run installs it)`);
  return has(shell);
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-completion-'));
  for (const shell of ['bash', 'zsh', 'fish']) {
    const r = await runCli(['completion', shell], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    scripts[shell] = r.stdout;
    await writeFile(join(dir, `keyrot.${shell}`), r.stdout);
  }
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** What bash's completion offers for the words typed so far (the last one being completed). */
function bashComplete(words: string[]): string[] {
  const script = `source ${join(dir, 'keyrot.bash')}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}
_keyrot; printf '%s\\n' "\${COMPREPLY[@]}"`;
  return execFileSync('bash', ['--norc', '-c', script], { cwd: dir, encoding: 'utf8' }).split('\n').filter(Boolean);
}

describe('shell completion', () => {
  it('bash: every command, each command’s own flags, flag values and arguments', () => {
    expect(bashComplete(['keyrot', '']).sort()).toEqual([...COMMANDS.map((c) => c.name), 'help', '--help', '--version'].sort());
    expect(bashComplete(['keyrot', 'ro'])).toEqual(['rotate']);
    for (const spec of COMMANDS) {
      const offered = bashComplete(['keyrot', spec.name, '-']);
      const flags = optionsOf(spec).flatMap((o) => o.flags.match(/--?[a-zA-Z][\w-]*/g) ?? []);
      expect(offered.sort(), spec.name).toEqual([...flags, '-h', '--help'].sort());
    }
    expect(bashComplete(['keyrot', 'rotate', '--new-key', 'o'])).toEqual(['openai-admin']);
    expect(bashComplete(['keyrot', 'init', '--type', 'her'])).toEqual(['heroku']);
    expect(bashComplete(['keyrot', 'completion', ''])).toEqual(['bash', 'zsh', 'fish']);
    expect(bashComplete(['keyrot', 'help', 'st'])).toEqual(['status']);
  });

  it('fish: parses, and `complete -C` offers the commands and a command’s flags', () => {
    if (!needShell('fish')) return;
    expect(spawnSync('fish', ['-n', join(dir, 'keyrot.fish')]).status).toBe(0);
    const ask = (line: string) =>
      execFileSync('fish', ['--no-config', '-c', `source ${join(dir, 'keyrot.fish')}; complete -C '${line}'`], { encoding: 'utf8' })
        .split('\n')
        .map((l) => l.split('\t')[0]!)
        .filter(Boolean);
    expect(ask('keyrot ').sort()).toEqual([...COMMANDS.map((c) => c.name), 'help'].sort());
    expect(ask('keyrot verify --')).toEqual(expect.arrayContaining(['--config', '--state-dir', '--json', '--wide', '--quiet', '--verbose']));
    expect(ask('keyrot verify --')).not.toContain('--yes');
    expect(ask('keyrot init --type ')).toEqual(expect.arrayContaining([...REGISTERED_IDS]));
  });

  it('zsh: parses (zsh -n) and names every command and flag', () => {
    if (needShell('zsh')) expect(spawnSync('zsh', ['-n', join(dir, 'keyrot.zsh')]).stderr.toString()).toBe('');
    for (const spec of COMMANDS) {
      expect(scripts.zsh).toContain(`    ${spec.name})`);
      for (const o of optionsOf(spec)) expect(scripts.zsh).toContain(`--${/--([a-z-]+)/.exec(o.flags)![1]}`);
    }
  });

  it('an unknown shell is a usage error with a suggestion', async () => {
    const r = await runCli(['completion', 'bsh'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^keyrot: no completion for shell "bsh" \(did you mean "bash"\?\)/);
  });
});
