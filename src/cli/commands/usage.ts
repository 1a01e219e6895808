import { EXIT, ExitError, toTargetError } from '../../core/errors.ts';
import type { KeyIssuer as AdminApi, KeyUsage } from '../../keys/openai-admin.ts';
import { rotationsOf } from '../../machine/state.ts';
import { watchedKeys, type WatchedKey } from '../../usage/keys.ts';
import { usageLines, usageTable, type KeyUsageRow } from '../../usage/render.ts';
import { adminIssuer, commandContext, environment, startReadingCommand, type CommonFlags } from '../context.ts';

const DAY = 86_400_000;
const MAX_DAYS = 180;

/**
 * `keyrot usage`: requests and tokens per day of the environment's current key and of every key
 * keyrot retired in the window (old keys and the `alsoRevoke` keys retired with them), from the OpenAI Admin API (completions usage per api_key_id).
 * Keys appear by hint and fingerprint only. Exit 2 without key.admin; 1 when a key's usage could
 * not be read.
 */
export async function usageCommand(flags: CommonFlags & { days?: string }): Promise<number> {
  startReadingCommand('usage', flags);
  const days = parseDays(flags.days ?? '7');
  const ctx = await commandContext(flags);
  const env = environment(ctx);
  const admin = adminIssuer(ctx, env);
  if (!admin) {
    throw new ExitError(
      EXIT.usage,
      'keyrot usage reads the OpenAI Admin API, and key.admin is not configured. Add to targets.yaml:\n' +
        '  key:\n    admin:\n      project: proj_...        # the project the keys belong to\n      token: env:OPENAI_ADMIN_KEY  # an admin key with read access to Usage and API keys\n' +
        'Admin keys are made at https://platform.openai.com/settings/organization/admin-keys',
    );
  }
  const now = ctx.clock.now();
  const keys = watchedKeys(await rotationsOf(ctx.state, env.name), now - days * DAY);
  const api = await admin();
  const rows: KeyUsageRow[] = [];
  for (const k of keys) rows.push(await usageRow(api, k, days, now));
  if (ctx.out.json) ctx.out.result({ env: env.name, days, keys: rows });
  else if (rows.length === 0) ctx.out.human(`No key of "${env.name}" in keyrot's journal yet: rotate once (keyrot rotate -e ${env.name}) so keyrot knows which key to watch.`);
  else ctx.out.human(process.stdout.isTTY ? usageLines(rows, days) : usageTable(rows));
  return rows.some((r) => r.error) ? EXIT.failed : EXIT.ok;
}

function parseDays(text: string): number {
  if (!/^[1-9][0-9]*$/.test(text) || Number(text) > MAX_DAYS) {
    throw new ExitError(EXIT.usage, `--days ${text}: expected a whole number of days from 1 to ${MAX_DAYS}`);
  }
  return Number(text);
}

async function usageRow(api: AdminApi, k: WatchedKey, days: number, now: number): Promise<KeyUsageRow> {
  const { retiredAt, ...key } = k;
  const row: KeyUsageRow = { ...key, ...(retiredAt !== undefined && { retiredAt: new Date(retiredAt).toISOString() }), requests: 0, inputTokens: 0, outputTokens: 0, daily: [] };
  try {
    if (!row.keyId) {
      if (!k.hint) return { ...row, idUnknown: 'keyrot did not mint it and its journal records no hint to find it by' };
      const found = await api.locate(k.hint);
      if (!found.found) return { ...row, idUnknown: found.reason };
      row.keyId = found.keyId;
    }
    // From the first whole UTC day of the window, so the totals are the sum of the days shown.
    const firstDay = (Math.floor(now / DAY) - days + 1) * DAY;
    const u = await api.usage(row.keyId, (now - firstDay) / DAY, now);
    return { ...row, requests: u.requests, inputTokens: u.inputTokens, outputTokens: u.outputTokens, daily: dailySeries(u, days, now) };
  } catch (err) {
    return { ...row, error: toTargetError(err).message };
  }
}

/** One entry per UTC day of the window (oldest first), days without a bucket at zero. */
function dailySeries(u: KeyUsage, days: number, now: number): KeyUsageRow['daily'] {
  const today = Math.floor(now / DAY);
  const byDay = new Map(u.buckets.map((b) => [Math.floor(b.start / DAY), b]));
  return Array.from({ length: days }, (_, i) => {
    const d = today - days + 1 + i;
    const b = byDay.get(d);
    return { day: new Date(d * DAY).toISOString().slice(0, 10), requests: b?.requests ?? 0, inputTokens: b?.inputTokens ?? 0, outputTokens: b?.outputTokens ?? 0 };
  });
}
