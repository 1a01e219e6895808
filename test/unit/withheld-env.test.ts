import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { keyrotEnv, withholdFromChildren } from '../../src/core/withheld-env.ts';
import { redact } from '../../src/core/redact.ts';
import { testKey } from '../helpers/keys.ts';

const NAMES = ['KEYROT_TEST_WITHHELD', 'KEYROT_TEST_SAME_VALUE', 'KEYROT_TEST_SHORT', 'KEYROT_TEST_SHORT_TWIN', 'KEYROT_TEST_UNRELATED'];
afterEach(() => {
  for (const n of NAMES) delete process.env[n];
});

describe('withholdFromChildren', () => {
  it('takes the variables, and any other holding the same value, out of what a child inherits; keyrot still reads them', () => {
    const key = testKey();
    Object.assign(process.env, { KEYROT_TEST_WITHHELD: key, KEYROT_TEST_SAME_VALUE: `${key}\n`, KEYROT_TEST_UNRELATED: 'stays' });
    withholdFromChildren(['KEYROT_TEST_WITHHELD', 'KEYROT_TEST_NOT_SET']);
    expect(process.env.KEYROT_TEST_WITHHELD).toBeUndefined();
    expect(process.env.KEYROT_TEST_SAME_VALUE).toBeUndefined();
    const child = execFileSync('env', { encoding: 'utf8' }); // a real child, inheriting process.env
    expect(child).not.toContain(key);
    expect(child).toContain('KEYROT_TEST_UNRELATED=stays');
    expect(keyrotEnv()).toMatchObject({ KEYROT_TEST_WITHHELD: key, KEYROT_TEST_SAME_VALUE: `${key}\n`, KEYROT_TEST_UNRELATED: 'stays' });
    expect(redact(`echoed ${key}`)).not.toContain(key);
  });

  it('a short value ("true", "1") is not looked for under other names', () => {
    Object.assign(process.env, { KEYROT_TEST_SHORT: 'true', KEYROT_TEST_SHORT_TWIN: 'true' });
    withholdFromChildren(['KEYROT_TEST_SHORT']);
    expect(process.env.KEYROT_TEST_SHORT).toBeUndefined();
    expect(process.env.KEYROT_TEST_SHORT_TWIN).toBe('true');
  });

  it('a variable set again later (keyrot demo sets emulator credentials between commands) reads its new value', () => {
    process.env.KEYROT_TEST_WITHHELD = 'first-value-123';
    withholdFromChildren(['KEYROT_TEST_WITHHELD']);
    process.env.KEYROT_TEST_WITHHELD = 'second-value-456';
    expect(keyrotEnv().KEYROT_TEST_WITHHELD).toBe('second-value-456');
  });
});
