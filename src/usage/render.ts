import { table } from '../cli/output.ts';

/** One key's use over the window, as `keyrot usage` reports it (`--json` prints this). */
export interface KeyUsageRow {
  role: 'current' | 'awaiting-revocation' | 'retired';
  hint: string | null;
  fingerprint: string;
  keyId: string | null;
  /** An `alsoRevoke` key: why the rotation retired it along with the old key. */
  why?: string;
  /** When every target switched away from a retired key. */
  retiredAt?: string;
  /** Why the key's id (and so its usage) is unknown; or why its usage could not be read. */
  idUnknown?: string;
  error?: string;
  requests: number;
  inputTokens: number;
  outputTokens: number;
  daily: Array<{ day: string; requests: number; inputTokens: number; outputTokens: number }>;
}

const BARS = '▁▂▃▄▅▆▇█';

/** ▁▂▃▄▅▆▇█ scaled to the largest value; a day without use is the lowest bar. */
export function sparkline(values: number[]): string {
  const max = Math.max(0, ...values);
  return values.map((v) => (max === 0 ? BARS[0] : BARS[Math.min(7, Math.round((v / max) * 7))])).join('');
}

const ROLE = { current: 'current', 'awaiting-revocation': 'awaiting revocation', retired: 'retired' } as const;

function label(k: KeyUsageRow): string {
  return `${k.hint ?? '(no hint)'} ${k.fingerprint}${k.why ? ` (${k.why})` : ''}`;
}

function problem(k: KeyUsageRow): string | undefined {
  return k.idUnknown ? `id unknown: ${k.idUnknown}` : k.error ? `usage not read: ${k.error}` : undefined;
}

/** A terminal: one line per key with its sparkline of requests per day. */
export function usageLines(rows: KeyUsageRow[], days: number): string {
  const body = rows.map((k) => {
    const p = problem(k);
    const figures = p ?? `${sparkline(k.daily.map((d) => d.requests))}  ${k.requests} requests, ${k.inputTokens} in / ${k.outputTokens} out tokens`;
    return [ROLE[k.role], label(k), k.keyId ?? '-', figures];
  });
  return `Requests per day over the last ${days} days (OpenAI Admin API, completions)\n${table([['KEY', 'HINT FINGERPRINT', 'ID', 'USE'], ...body])}`;
}

/** Not a terminal: a plain table, one row per key and day (a key without figures: one row saying why). */
export function usageTable(rows: KeyUsageRow[]): string {
  const body: string[][] = [];
  for (const k of rows) {
    const p = problem(k);
    if (p) body.push([ROLE[k.role], label(k), k.keyId ?? '-', '-', '-', '-', p]);
    else for (const d of k.daily) body.push([ROLE[k.role], label(k), k.keyId ?? '-', d.day, String(d.requests), String(d.inputTokens), String(d.outputTokens)]);
  }
  return table([['KEY', 'HINT FINGERPRINT', 'ID', 'DAY', 'REQUESTS', 'INPUT', 'OUTPUT'], ...body]);
}
