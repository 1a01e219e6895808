/**
 * The cron check every command makes when it reads targets.yaml, without loading node-cron
 * (about 70 KB of code, a sixth of what `plan` loaded besides zod and yaml): node-cron's own
 * first checks (node-cron 4 dist/node-cron.js validateDetailed: its nicknames, its allowed
 * characters, 5 or 6 fields) and each number against its field's range. What this accepts,
 * node-cron may still refuse (31 February, a misplaced `W`): `cronRefusal` asks node-cron itself,
 * where the schedule is used (the daemon, status, verify, report), before anything is scheduled.
 */

/** node-cron 4 `NICKNAMES` (dist/_shared.js). */
const NICKNAMES = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);
/** node-cron 4 `ALLOWED_CHARS_REGEX`. */
const ALLOWED = /^[a-zA-Z0-9-*/,#? ]+$/;
/** Second, minute, hour, day of month, month, day of week (0 and 7 are Sunday). */
const FIELDS = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'week day', min: 0, max: 7 },
] as const;

/** Why `expr` is not a cron expression, or undefined when it has the shape of one. */
export function cronShapeProblem(expr: string): string | undefined {
  if (!expr.trim()) return 'it is empty';
  if (NICKNAMES.has(expr.trim().toLowerCase())) return undefined;
  if (!ALLOWED.test(expr)) return 'it has characters cron does not use';
  const raw = expr.replace(/\s{2,}/g, ' ').trim().split(' ');
  if (raw.length !== 5 && raw.length !== 6) return `expected 5 or 6 fields but got ${raw.length}`;
  const fields = raw.length === 5 ? ['0', ...raw] : raw;
  for (const [i, field] of fields.entries()) {
    const { name, min, max } = FIELDS[i]!;
    // Each number of a list or a range (a step after `/` counts intervals, not a value; `15W`,
    // `5#2` and `5L` start with the value).
    const values = field.split(',').flatMap((part) => part.split('/')[0]!.split('-'));
    const bad = values.map((v) => /^\d+/.exec(v)?.[0]).find((n) => n !== undefined && (Number(n) < min || Number(n) > max));
    if (bad !== undefined) return `${bad} is not a valid ${name} (${min}–${max})`;
  }
  return undefined;
}

/** node-cron's own verdict on `expr` (it loads node-cron): why it cannot run it, or undefined. */
export async function cronRefusal(expr: string): Promise<string | undefined> {
  const { validateDetailed } = await import('node-cron');
  const v = validateDetailed(expr);
  return v.valid ? undefined : v.errors.map((e) => `${e.field}: ${e.message}`).join('; ') || 'not a cron expression';
}
