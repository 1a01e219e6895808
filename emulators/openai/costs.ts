/**
 * GET /v1/organization/costs as the OpenAI API reference describes it
 * (platform.openai.com/docs/api-reference/usage/costs; the OpenAPI spec's CostsResult): 1d buckets
 * only (`object: "bucket"`, start_time/end_time in unix seconds, UTC-midnight aligned
 * [UNCERTAIN alignment]), results `object: "organization.costs.result"` with `amount: { value,
 * currency }` and, when grouped, `project_id` / `line_item` (null otherwise); `limit` 1–180
 * (default 7); `page` is the opaque cursor the previous page gave as `next_page`.
 */

export interface CostRecord {
  project: string;
  lineItem: string;
  at: number; // unix s
  value: number;
  currency: string;
}

const DAY_S = 86_400;

export type CostsAnswer = { ok: true; body: unknown } | { ok: false; message: string; param: string };

export function costsPage(q: URLSearchParams, records: readonly CostRecord[], nowSec: number): CostsAnswer {
  const arr = (name: string) => [...q.getAll(`${name}[]`), ...q.getAll(name)];
  const startRaw = q.get('start_time');
  if (startRaw === null || !/^\d+$/.test(startRaw)) return { ok: false, message: "Missing required parameter: 'start_time'.", param: 'start_time' };
  const width = q.get('bucket_width') ?? '1d';
  if (width !== '1d') return { ok: false, message: `Invalid 'bucket_width': ${width}. Only 1d is supported.`, param: 'bucket_width' };
  const limit = q.get('limit') === null ? 7 : Number(q.get('limit'));
  if (!Number.isInteger(limit) || limit < 1 || limit > 180) return { ok: false, message: "Invalid 'limit': it must be between 1 and 180.", param: 'limit' };
  const start = Number(startRaw);
  const end = q.get('end_time') !== null ? Number(q.get('end_time')) : nowSec + 1;
  const groupBy = arr('group_by');
  const projects = arr('project_ids');
  let bucket = Math.floor(start / DAY_S) * DAY_S;
  const page = q.get('page');
  if (page) {
    const m = /^costs:(\d+)$/.exec(Buffer.from(page, 'base64url').toString('utf8'));
    if (!m) return { ok: false, message: "Invalid 'page' cursor.", param: 'page' };
    bucket = Number(m[1]);
  }
  const data: unknown[] = [];
  for (; bucket < end && data.length < limit; bucket += DAY_S) {
    const inBucket = records.filter(
      (r) => r.at >= Math.max(bucket, start) && r.at < Math.min(bucket + DAY_S, end) && (projects.length === 0 || projects.includes(r.project)),
    );
    data.push({ object: 'bucket', start_time: bucket, end_time: bucket + DAY_S, results: group(inBucket, groupBy) });
  }
  const hasMore = bucket < end;
  return {
    ok: true,
    body: { object: 'page', data, has_more: hasMore, next_page: hasMore ? Buffer.from(`costs:${bucket}`, 'utf8').toString('base64url') : null },
  };
}

function group(records: CostRecord[], groupBy: string[]): unknown[] {
  const groups = new Map<string, { project: string | null; lineItem: string | null; currency: string; value: number }>();
  for (const r of records) {
    const g = { project: groupBy.includes('project_id') ? r.project : null, lineItem: groupBy.includes('line_item') ? r.lineItem : null, currency: r.currency };
    const k = JSON.stringify(g);
    const cur = groups.get(k) ?? { ...g, value: 0 };
    cur.value += r.value;
    groups.set(k, cur);
  }
  return [...groups.values()].map((g) => ({
    object: 'organization.costs.result',
    amount: { value: g.value, currency: g.currency },
    line_item: g.lineItem,
    project_id: g.project,
  }));
}
