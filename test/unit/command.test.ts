import { expect, it } from 'vitest';
import { keyrotCommand as nextCommand } from '../../src/render/command.ts';

it('a printed next step keeps the -c and --state-dir given, quoted for the shell when needed', () => {
  expect(nextCommand({ config: 'targets.yaml' }, 'resume', '-e', 'prod')).toBe('keyrot resume -e prod');
  expect(nextCommand({ config: 'ops/keys.yaml', stateDir: '/var/lib/keyrot' }, 'revoke', '-e', 'prod')).toBe(
    'keyrot revoke -e prod -c ops/keys.yaml --state-dir /var/lib/keyrot',
  );
  expect(nextCommand({ config: 'my keys/t.yaml', stateDir: "it's" }, 'status')).toBe(`keyrot status -c 'my keys/t.yaml' --state-dir 'it'\\''s'`);
});
