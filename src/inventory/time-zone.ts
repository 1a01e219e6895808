/**
 * Whether `tz` names a time zone this Node's ICU knows (what node-cron passes to Intl for
 * `schedule.timezone`).
 *
 * The first `new Intl.DateTimeFormat(…, { timeZone })` of a process costs ~20 ms (ICU builds its
 * locale data), a tenth of keyrot's whole start-up; `Intl.supportedValuesOf('timeZone')` answers
 * for the canonical names in ~2 ms. It omits "UTC" and aliases such as "US/Eastern", which
 * DateTimeFormat accepts: those still go through the full check, so the answer is the same.
 */
export function isTimeZone(tz: string): boolean {
  if (tz === 'UTC' || Intl.supportedValuesOf('timeZone').includes(tz)) return true;
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
