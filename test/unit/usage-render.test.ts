import { describe, expect, it } from 'vitest';
import { sparkline, usageLines, type KeyUsageRow } from '../../src/usage/render.ts';

describe('keyrot usage on a terminal', () => {
  it('draws requests per day as ▁…█ scaled to the busiest day', () => {
    expect(sparkline([0, 1, 7, 14])).toBe('▁▂▅█');
    expect(sparkline([0, 0, 0])).toBe('▁▁▁');
  });

  it('shows one line per key: role, hint and fingerprint, id, sparkline and totals, or why not', () => {
    const base = { hint: 'sk-proj-...abcd', fingerprint: '0123456789ab', inputTokens: 40, outputTokens: 4 };
    const rows: KeyUsageRow[] = [
      { ...base, role: 'current', keyId: 'key_1', requests: 4, daily: [0, 1, 3].map((n, i) => ({ day: `d${i}`, requests: n, inputTokens: 0, outputTokens: 0 })) },
      { ...base, role: 'retired', keyId: null, idUnknown: 'no API key matches', requests: 0, daily: [] },
    ];
    const text = usageLines(rows, 3);
    expect(text).toMatch(/current\s+sk-proj-\.\.\.abcd 0123456789ab\s+key_1\s+▁▃█  4 requests, 40 in \/ 4 out tokens/);
    expect(text).toMatch(/retired\s+sk-proj-\.\.\.abcd 0123456789ab\s+-\s+id unknown: no API key matches/);
  });
});
