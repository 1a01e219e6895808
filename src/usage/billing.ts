import { toTargetError } from '../core/errors.ts';
import type { KeyIssuer as AdminApi } from '../keys/openai-admin.ts';
import { BASELINE_DAYS, costSpikes, RECENT_DAYS, SPIKE_FACTOR, SPIKE_FLOOR, type CostSpike } from '../keys/openai-costs.ts';

/** The emergency's billing check: the last 7 days' costs against the 28 before, per project and line item. */
export type BillingFinding =
  | { ok: true; recentTotal: number; baselineDaily: number; currency: string; spikes: CostSpike[] }
  | { ok: false; why: string };

/** Never throws: a failed costs call is a finding that says why (the emergency goes on). */
export async function checkBilling(api: () => Promise<AdminApi>, now: number): Promise<BillingFinding> {
  try {
    const lines = await (await api()).costs(RECENT_DAYS + BASELINE_DAYS, now);
    return { ok: true, ...costSpikes(lines, now) };
  } catch (err) {
    return { ok: false, why: `the costs API failed: ${toTargetError(err).message}` };
  }
}

export function money(value: number, currency: string): string {
  return currency.toLowerCase() === 'usd' ? `$${value.toFixed(2)}` : `${value.toFixed(2)} ${currency.toUpperCase()}`;
}

const BILLING_PAGE = 'the OpenAI dashboard Billing page';

/** The checklist's billing line: done with the figures, the flagged spend for you, or why it was not checked. */
export function billingLine(b: BillingFinding | undefined): { state: 'done' | 'operator' | 'skipped'; detail: string } {
  if (!b) return { state: 'operator', detail: `look for unexpected spend in ${BILLING_PAGE}; set a usage limit if none (configure key.admin and keyrot checks the costs)` };
  if (!b.ok) return { state: 'skipped', detail: `could not be checked (${b.why}): look for unexpected spend in ${BILLING_PAGE}` };
  const figures = `${money(b.recentTotal, b.currency)} in the last ${RECENT_DAYS} days against ${money(b.baselineDaily, b.currency)}/day over the ${BASELINE_DAYS} before`;
  if (b.spikes.length === 0) return { state: 'done', detail: `${figures}: no project or line item above ${SPIKE_FACTOR}× its daily average` };
  const flagged = b.spikes
    .map((s) => `${s.project} ${s.lineItem}: ${money(s.recentDaily, s.currency)}/day against ${money(s.baselineDaily, s.currency)}/day`)
    .join('; ');
  return {
    state: 'operator',
    detail: `${figures}; above ${SPIKE_FACTOR}× the baseline (and ${money(SPIKE_FLOOR, b.currency)} in ${RECENT_DAYS} days): ${flagged}. Check it in ${BILLING_PAGE} and set a usage limit`,
  };
}
