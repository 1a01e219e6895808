import { describe, it, expect } from 'vitest';
import { jsonSafe, providerText, quoteInput, stripControls, terminalSafe } from '../../src/core/printable.ts';
import { errorCode } from '../../src/runtime/http.ts';
import { createLogger } from '../../src/runtime/logger.ts';
import { green, red } from '../../src/cli/output.ts';

const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

describe('terminal control sequences', () => {
  const hostile = 'a\x1b[2J\x1b[1;1Hb\rc\x1b]52;c;Y3VybA==\x07d\x1b]0;title\x1b\\e\x9b2Jf\u202eg\x00h\x7fi';

  it('stripControls removes whole sequences and every control character but \\n and \\t', () => {
    expect(stripControls(hostile)).toBe('abcde2Jfghi');
    expect(stripControls('line 1\n\tline 2')).toBe('line 1\n\tline 2');
  });

  it('terminalSafe keeps only the colours keyrot writes', () => {
    const ours = `${green('ok', true)} ${red('FAILED', true)}`;
    expect(terminalSafe(ours + hostile)).toBe(`${ours}abcde2Jfghi`);
    expect(terminalSafe('\x1b[8mhidden\x1b[0m')).toBe('hidden\x1b[0m'); // conceal is not one of ours
  });

  it('jsonSafe escapes what JSON.stringify leaves raw (DEL, C1, bidi)', () => {
    const out = jsonSafe(JSON.stringify({ m: hostile }));
    expect(out).not.toMatch(CONTROL);
    expect(JSON.parse(out).m).toBe(hostile);
  });

  it('JSON log lines and text log lines carry no control character', () => {
    const lines: string[] = [];
    createLogger({ json: true, write: (l) => lines.push(l) }).warn(hostile, { detail: hostile });
    createLogger({ write: (l) => lines.push(l) }).warn(hostile);
    for (const l of lines) expect(l).not.toMatch(CONTROL);
  });
});

describe('quoteInput', () => {
  it('quotes, escapes controls and cuts at 80 characters with the full length', () => {
    expect(quoteInput('plain')).toBe('"plain"');
    expect(quoteInput(42)).toBe('42');
    expect(quoteInput('a\x1b\u202eb')).toBe('"a\\u001b\\u202eb"');
    expect(quoteInput('x'.repeat(1000))).toBe(`"${'x'.repeat(80)}…" (1000 characters)`);
  });
});

describe('provider error text', () => {
  it('providerText: one line, no control sequence, redacted, cut to 300 characters', () => {
    expect(providerText('Incorrect API key\nprovided\x1b[2J')).toBe('Incorrect API key provided');
    expect(providerText('y'.repeat(1000))).toHaveLength(300);
  });

  it('an error code is a short token or nothing (never free text from a body)', () => {
    expect(errorCode('invalid_api_key')).toBe('invalid_api_key');
    expect(errorCode('401')).toBe('401');
    expect(errorCode('not a code: free text')).toBeUndefined();
    expect(errorCode(`x\x1b]52;c;${'A'.repeat(10)}`)).toBeUndefined();
    expect(errorCode('z'.repeat(65))).toBeUndefined();
  });
});
