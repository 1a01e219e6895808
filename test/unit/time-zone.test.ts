import { describe, expect, it } from 'vitest';
import { isTimeZone } from '../../src/inventory/time-zone.ts';

function intlAccepts(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

describe('isTimeZone', () => {
  it('accepts canonical names, UTC and the aliases Intl accepts (outside the canonical list)', () => {
    for (const tz of ['UTC', 'Etc/UTC', 'Europe/Paris', 'America/New_York', 'US/Eastern', 'Asia/Calcutta', 'GMT']) expect(isTimeZone(tz), tz).toBe(true);
  });

  it('refuses what Intl refuses', () => {
    for (const tz of ['', 'Mars/Olympus', 'Europe/Pariss', 'utc+2', '../etc/passwd']) expect(isTimeZone(tz), tz).toBe(false);
  });

  it('answers like Intl.DateTimeFormat for every canonical name and a sample of others', () => {
    const names = [...Intl.supportedValuesOf('timeZone'), 'EST', 'Canada/Yukon', 'Etc/GMT+5', 'Nowhere/Land', 'europe/paris'];
    for (const tz of names) expect(isTimeZone(tz), tz).toBe(intlAccepts(tz));
  });
});
