/**
 * The organization costs endpoint (GET /v1/organization/costs) and the emergency's billing check.
 * Shapes per OpenAI's API reference (platform.openai.com/docs/api-reference/usage/costs) and its
 * OpenAPI spec as generated clients carry it (CostsResult: `object: "organization.costs.result"`,
 * `amount: { value, currency }`, `line_item`, `project_id`): start_time inclusive, end_time
 * exclusive (unix seconds), bucket_width `1d` only, group_by project_id / line_item, limit 1–180
 * (default 7), `page` = the previous answer's `next_page`.
 */

export interface RawCostsPage {
  data?: Array<{
    start_time?: number;
    results?: Array<{ amount?: { value?: number; currency?: string }; line_item?: string | null; project_id?: string | null }>;
  }>;
  has_more?: boolean;
  next_page?: string | null;
}

/** One day's cost of one project and line item. */
export interface CostLine {
  /** UTC day start, ms. */
  day: number;
  project: string;
  lineItem: string;
  value: number;
  currency: string;
}

const DAY = 86_400_000;

/** Walks every page of GET /organization/costs over the last `days` whole UTC days (today included). */
export async function readCosts(get: (query: string) => Promise<RawCostsPage>, days: number, now: number): Promise<CostLine[]> {
  const today = Math.floor(now / DAY);
  const start = (today - days + 1) * (DAY / 1000);
  const end = (today + 1) * (DAY / 1000);
  const fixed = `start_time=${start}&end_time=${end}&bucket_width=1d&limit=${Math.min(180, days)}&group_by[]=project_id&group_by[]=line_item`;
  const out: CostLine[] = [];
  let page: string | null = null;
  for (let pages = 0; pages < 100; pages++) {
    const body = await get(`${fixed}${page ? `&page=${encodeURIComponent(page)}` : ''}`);
    for (const b of body.data ?? []) {
      for (const r of b.results ?? []) {
        out.push({
          day: (b.start_time ?? 0) * 1000,
          project: r.project_id ?? '(no project)',
          lineItem: r.line_item ?? '(no line item)',
          value: typeof r.amount?.value === 'number' ? r.amount.value : 0,
          currency: r.amount?.currency ?? 'usd',
        });
      }
    }
    if (!body.has_more || !body.next_page) break;
    page = body.next_page;
  }
  return out;
}

/** The emergency compares the last 7 days with the 28 before them. */
export const RECENT_DAYS = 7;
export const BASELINE_DAYS = 28;
/** A jump is flagged above this multiple of the baseline's daily average... */
export const SPIKE_FACTOR = 2;
/** ...and only when the recent 7 days cost at least this much (pennies of noise are not a leak). */
export const SPIKE_FLOOR = 5;

export interface CostSpike {
  project: string;
  lineItem: string;
  currency: string;
  recentDaily: number;
  baselineDaily: number;
  recentTotal: number;
}

/**
 * Per project and line item: the daily average of the last RECENT_DAYS UTC days (today included)
 * against that of the BASELINE_DAYS before; flagged when above SPIKE_FACTOR × the baseline and
 * SPIKE_FLOOR in total (a line item with no baseline at all is flagged on the floor alone).
 */
export function costSpikes(lines: CostLine[], now: number): { spikes: CostSpike[]; recentTotal: number; baselineDaily: number; currency: string } {
  const firstRecent = (Math.floor(now / DAY) - RECENT_DAYS + 1) * DAY;
  const groups = new Map<string, { project: string; lineItem: string; currency: string; recent: number; base: number }>();
  let recentTotal = 0;
  let baseTotal = 0;
  for (const l of lines) {
    const k = JSON.stringify([l.project, l.lineItem, l.currency]);
    const g = groups.get(k) ?? { project: l.project, lineItem: l.lineItem, currency: l.currency, recent: 0, base: 0 };
    if (l.day >= firstRecent) (g.recent += l.value), (recentTotal += l.value);
    else (g.base += l.value), (baseTotal += l.value);
    groups.set(k, g);
  }
  const spikes = [...groups.values()]
    .map((g) => ({ project: g.project, lineItem: g.lineItem, currency: g.currency, recentDaily: g.recent / RECENT_DAYS, baselineDaily: g.base / BASELINE_DAYS, recentTotal: g.recent }))
    .filter((g) => g.recentTotal >= SPIKE_FLOOR && g.recentDaily > SPIKE_FACTOR * g.baselineDaily)
    .sort((a, b) => b.recentTotal - a.recentTotal);
  return { spikes, recentTotal, baselineDaily: baseTotal / BASELINE_DAYS, currency: lines[0]?.currency ?? 'usd' };
}
