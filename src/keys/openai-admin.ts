import type { Clock } from '../runtime/clock.ts';
import { TargetError } from '../core/errors.ts';
import { liveCheck } from './kinds.ts';
import { Secret } from '../core/secret.ts';
import { readCosts, type CostLine } from './openai-costs.ts';
import { isKeyrotServiceAccount, redactedMatchesHint, RevocationRefused } from './revocation-check.ts';
import { OPENAI_ADMIN_KEYS_PAGE, OpenAIAdminApi, type RawProjectApiKey, type RawUsagePage } from './openai-admin-api.ts';

/**
 * The OpenAI Admin API as keyrot uses it (issue 6; docs/openai.md): mint a key by
 * creating a project service account, find a key we hold among the project's API keys, revoke it,
 * read its last use and its usage. Plain HTTP through `httpJson` (no SDK) so that no SDK error can
 * carry a key value; every path and shape below is checked against openai-node's generated
 * resources (openai/openai-node: src/resources/admin/organization/projects/service-accounts/
 * service-accounts.ts, projects/api-keys.ts, usage.ts, core/pagination.ts).
 *
 * Retries are the caller's (withRetry): transient failures are thrown as retryable TargetErrors
 * with the server's retry-after(-ms). The minted key's value exists only in the returned Secret.
 */

export interface MintedKey {
  key: Secret;
  keyId: string;
  serviceAccountId: string;
  name: string;
  /** ms; null when the key does not expire (or the API ignored expires_in_seconds). */
  expiresAt: number | null;
}

/** A project API key record, normalised (timestamps in ms). The provider's `redacted_value` is
 * deliberately left out: it shows more of the key than keyrot's hint, so nobody prints it. */
export interface ProjectApiKey {
  id: string;
  name: string;
  createdAt: number;
  lastUsedAt: number | null;
  owner: { type: 'user' | 'service_account'; id: string | null; name: string | null };
  ownerProjectAccess: 'active' | 'inactive' | null;
}

export interface KeyUsage {
  requests: number;
  inputTokens: number;
  outputTokens: number;
  /** Requests per model. */
  byModel: Record<string, number>;
  /** One entry per 1d bucket, start in ms. */
  buckets: Array<{ start: number; requests: number; inputTokens: number; outputTokens: number }>;
}

/** Where a key's id comes from when keyrot does not know it: the project's keys, matched by hint. */
export type LocatedKey = { found: true; keyId: string } | { found: false; reason: string };

export interface RevokeResult {
  revoked: boolean;
  alreadyGone: boolean;
  detail: string;
}

export interface KeyIssuer {
  /** Mint a key: a project service account named `keyrot-<env>-<rotationId>`, with expires_in_seconds
   * when `expiresSeconds` is set. Idempotent per name: an existing account of that name (a retried
   * creation whose response was lost, so its key value is gone) is deleted and created anew. */
  issue(opts: { env: string; rotationId: string; expiresSeconds?: number; signal?: AbortSignal }): Promise<MintedKey>;
  /** The project API key record of a key we hold: by id when known, else by redacted_value. null when not found. */
  find(opts: { keyId?: string; key?: Secret }): Promise<ProjectApiKey | null>;
  /**
   * Revoke idempotently: service-account-owned → delete the service account; user-owned → delete
   * the project key. Ids come from the journal, which whoever writes the state can edit, so
   * nothing is deleted before the Admin API confirms it (revocation-check.ts): `serviceAccountId`
   * (a key keyrot minted) must name keyrot's account for `env` owning `keyId`, whose redacted value
   * agrees with `hint`; `keyId` alone (a key looked up) must agree with `hint`. Otherwise a
   * RevocationRefused is thrown (and reported to `onRefusal`). With `key` (the value in memory) the
   * key itself is matched.
   */
  revoke(opts: { keyId?: string; serviceAccountId?: string; hint?: string; env?: string; key?: Secret }): Promise<RevokeResult>;
  /** last_used_at in ms, null when never used. Throws not-found when the key is gone. */
  lastUsedAt(keyId: string): Promise<number | null>;
  /** Completions usage of one key over the last `days` days (1d buckets, all pages). */
  usage(keyId: string, days: number, now: number): Promise<KeyUsage>;
  /** The id of the project API key whose redacted_value agrees with `hint` (exactly one, or why not). */
  locate(hint: string): Promise<LocatedKey>;
  /** Organization costs per day, project and line item over the last `days` days (all pages). */
  costs(days: number, now: number): Promise<CostLine[]>;
}

export { OPENAI_ADMIN_KEYS_PAGE };
/** service-accounts.ts ServiceAccountCreateParams: 1–31,536,000 seconds. */
export const MAX_EXPIRES_SECONDS = 31_536_000;

/** The service account name: says keyrot, the environment and the rotation (issue 6). */
export function serviceAccountName(env: string, rotationId: string): string {
  return `keyrot-${env}-${rotationId}`;
}

/**
 * Does the provider's `redacted_value` describe this key? The format is undocumented (docs examples
 * show "sk-abc...def"; the dashboard masks with `*`), so accept "visible prefix, a run of `*`, `.` or
 * `…`, visible suffix" and require at least 4 visible characters beyond the key family (sk-proj- …)
 * so that a bare "sk-proj-****" matches nothing (match by prefix/suffix).
 */
export function matchesRedacted(redacted: string | null | undefined, key: Secret): boolean {
  if (!redacted) return false;
  const v = key.reveal();
  if (redacted === v) return true;
  const m = /^([^*.…]*)[*.…]+([^*.…]*)$/.exec(redacted);
  if (!m) return false;
  const prefix = m[1]!;
  const suffix = m[2]!;
  const family = /^sk-(?:proj-|svcacct-|admin-)?/.exec(prefix)?.[0] ?? '';
  if (prefix.length - family.length + suffix.length < 4) return false;
  return v.length >= prefix.length + suffix.length && v.startsWith(prefix) && v.endsWith(suffix);
}

function normalise(raw: RawProjectApiKey): ProjectApiKey {
  const sa = raw.owner?.service_account;
  const user = raw.owner?.user;
  // owner.type is optional in the SDK types: fall back on which owner object is present.
  const type = raw.owner?.type === 'service_account' || (!raw.owner?.type && sa) ? 'service_account' : 'user';
  const who = type === 'service_account' ? sa : user;
  return {
    id: raw.id,
    name: raw.name ?? '',
    createdAt: (raw.created_at ?? 0) * 1000,
    lastUsedAt: typeof raw.last_used_at === 'number' ? raw.last_used_at * 1000 : null,
    owner: { type, id: who?.id ?? null, name: who?.name ?? null },
    ownerProjectAccess: raw.owner_project_access === 'active' || raw.owner_project_access === 'inactive' ? raw.owner_project_access : null,
  };
}

/** A revocation refused by the checks: what was asked, and why not (recorded in the audit log). */
export interface RefusedRevocation {
  env?: string;
  keyId?: string;
  serviceAccountId?: string;
  hint?: string;
  reason: string;
}

export function createOpenAIIssuer(opts: {
  endpoint: string;
  adminKey: Secret;
  project: string;
  clock: Clock;
  /** Told of every refused revocation before it is thrown (the CLI records it in the audit log). */
  onRefusal?: (r: RefusedRevocation) => Promise<void>;
  /** Told of every Admin API call that failed (the daemon counts them in its metrics). */
  onError?: (err: TargetError) => void;
}): KeyIssuer {
  return new OpenAIIssuer(new OpenAIAdminApi(opts), opts.clock, opts.onRefusal);
}

const gone = (detail: string): RevokeResult => ({ revoked: true, alreadyGone: true, detail });
const deleted = (detail: string): RevokeResult => ({ revoked: true, alreadyGone: false, detail });
const leftAlone = (detail: string): RevokeResult => ({ revoked: false, alreadyGone: false, detail });

/** Mints keys as project service accounts, and finds, revokes and reviews the project's keys. */
class OpenAIIssuer implements KeyIssuer {
  private readonly api: OpenAIAdminApi;
  private readonly clock: Clock;
  private readonly onRefusal: ((r: RefusedRevocation) => Promise<void>) | undefined;
  private readonly project: string;

  constructor(api: OpenAIAdminApi, clock: Clock, onRefusal: ((r: RefusedRevocation) => Promise<void>) | undefined) {
    this.api = api;
    this.clock = clock;
    this.onRefusal = onRefusal;
    this.project = api.project;
  }

  async issue({ env, rotationId, expiresSeconds, signal }: { env: string; rotationId: string; expiresSeconds?: number; signal?: AbortSignal }): Promise<MintedKey> {
    const name = serviceAccountName(env, rotationId);
    if (expiresSeconds !== undefined && (!Number.isInteger(expiresSeconds) || expiresSeconds < 1 || expiresSeconds > MAX_EXPIRES_SECONDS)) {
      throw new TargetError(`key.admin.expires must be between 1 second and 365 days (OpenAI's limit for expires_in_seconds), got ${expiresSeconds}s`, {
        kind: 'invalid',
        retryable: false,
      });
    }
    // No idempotency key exists for this POST (docs/openai.md): a lost response leaves an account whose key
    // value nobody has. List by name first and replace it, so retries never leave duplicates.
    const existing = (await this.api.listServiceAccounts(signal)).filter((sa) => sa.name === name);
    for (const sa of existing) await this.api.deleteServiceAccount(sa.id, signal);
    const body: Record<string, unknown> = { name };
    if (expiresSeconds !== undefined) body.expires_in_seconds = expiresSeconds;
    const created = await this.api.createServiceAccount(name, body, signal);
    const apiKey = created.api_key;
    if (!apiKey?.value || !apiKey.id) {
      // An account without a key is useless and would block the next attempt's name: remove it.
      await this.api.deleteServiceAccount(created.id).catch(() => undefined);
      throw new TargetError(`OpenAI created service account ${name} in project ${this.project} without an API key (api_key was empty): no key was minted`, {
        kind: 'invalid',
        retryable: false,
      });
    }
    // The unredacted key is only in this response (service-accounts.ts): straight into a Secret, never logged.
    const key = new Secret(apiKey.value);
    return {
      key,
      keyId: apiKey.id,
      serviceAccountId: created.id,
      name: created.name ?? name,
      // expires_in_seconds / api_key.expires_at are new in the SDK (availability unverified):
      // an API that ignores the request answers without expires_at, reported here as null.
      expiresAt: typeof apiKey.expires_at === 'number' ? apiKey.expires_at * 1000 : null,
    };
  }

  async find(o: { keyId?: string; key?: Secret }): Promise<ProjectApiKey | null> {
    if (o.keyId) {
      const raw = await this.api.getApiKey(o.keyId);
      if (!raw) return null;
      // Both given: never act on a record that is not the key we hold.
      if (o.key && raw.redacted_value && !matchesRedacted(raw.redacted_value, o.key)) {
        throw new TargetError(`OpenAI API key ${o.keyId} in project ${this.project} is not the key ${o.key.hint}: the recorded key id does not belong to this key`, {
          kind: 'mismatch',
          retryable: false,
        });
      }
      return normalise(raw);
    }
    if (!o.key) throw new TargetError('finding an OpenAI API key needs its id or the key', { kind: 'invalid', retryable: false });
    const key = o.key;
    const hits = (await this.api.listApiKeys()).filter((r) => matchesRedacted(r.redacted_value, key));
    if (hits.length > 1) {
      throw new TargetError(
        `${hits.length} API keys of project ${this.project} match ${key.hint} (${hits.map((h) => h.id).join(', ')}): keyrot cannot tell which one it is; revoke it by id or in the dashboard`,
        { kind: 'conflict', retryable: false },
      );
    }
    return hits[0] ? normalise(hits[0]) : null;
  }

  async revoke(o: { keyId?: string; serviceAccountId?: string; hint?: string; env?: string; key?: Secret }): Promise<RevokeResult> {
    if (o.serviceAccountId) return this.revokeMinted({ ...o, serviceAccountId: o.serviceAccountId });
    if (o.keyId && !o.key) return this.revokeLookedUp({ ...o, keyId: o.keyId });
    if (!o.key) throw new TargetError('revoking an OpenAI API key needs its id, its service account id or the key', { kind: 'invalid', retryable: false });
    const rec = await this.find({ keyId: o.keyId, key: o.key });
    const label = `${o.key.hint}${o.keyId ? ` (${o.keyId})` : ''}`;
    if (rec) return this.deleteKeyOf(rec, label);
    if (o.keyId) return gone(`API key ${o.keyId} is no longer in project ${this.project}`);
    return this.revokeUnlisted(o.key, label);
  }

  /**
   * Not listed: already deleted, or a key of another project / a legacy user key. The key itself
   * tells which (GET /models: 401 means it no longer works).
   */
  private async revokeUnlisted(key: Secret, label: string): Promise<RevokeResult> {
    try {
      await liveCheck(key, this.api.base, this.clock);
    } catch (err) {
      if (err instanceof TargetError && err.status === 401) return gone(`${label} is not among the keys of project ${this.project} and OpenAI rejects it (401): already revoked`);
      throw err;
    }
    return leftAlone(
      `${label} still works but is not among the API keys of project ${this.project}: it belongs to another project or is a legacy user key; revoke it at https://platform.openai.com/api-keys`,
    );
  }

  /** Tells onRefusal, then gives the error to throw. */
  private async refuse(reason: string, subject: string, o: Omit<RefusedRevocation, 'reason'>): Promise<RevocationRefused> {
    await this.onRefusal?.({ ...o, reason });
    return new RevocationRefused(reason, subject, this.project);
  }

  /** A key keyrot minted: its service account, checked to be keyrot's for `env` and to own `keyId` matching `hint`. */
  private async revokeMinted(o: { keyId?: string; serviceAccountId: string; hint?: string; env?: string }): Promise<RevokeResult> {
    const subject = `service account ${o.serviceAccountId}`;
    const { keyId, hint, env } = o;
    if (!keyId || !hint || !env) throw await this.refuse('the journal does not record the key id, hint and environment that identify it', subject, o);
    const sa = await this.api.getServiceAccount(o.serviceAccountId);
    if (!sa) return gone(`${subject} of project ${this.project} was already deleted`);
    if (!isKeyrotServiceAccount(sa.name, env)) {
      throw await this.refuse(`it is named "${sa.name ?? ''}", not keyrot-${env}-rot_… (the accounts keyrot mints for environment "${env}")`, subject, o);
    }
    const key = await this.api.getApiKey(keyId);
    if (!key) throw await this.refuse(`it does not own API key ${keyId}, the key the journal records (no such key in the project)`, subject, o);
    const owner = normalise(key).owner;
    if (owner.type !== 'service_account' || owner.id !== o.serviceAccountId) {
      const by = owner.type === 'user' ? 'a user' : `service account ${owner.id ?? '(unnamed)'}`;
      throw await this.refuse(`API key ${keyId}, the key the journal records, is owned by ${by}, not by it`, subject, o);
    }
    if (!redactedMatchesHint(key.redacted_value, hint)) throw await this.refuse(`its API key ${keyId} is not the recorded key ${hint}`, subject, o);
    return (await this.api.deleteServiceAccount(o.serviceAccountId))
      ? deleted(`deleted service account ${sa.name} (${o.serviceAccountId}) of project ${this.project} (its API key no longer works)`)
      : gone(`${subject} of project ${this.project} was already deleted`);
  }

  /** A key keyrot found by its value earlier: it must still exist and match the recorded hint. */
  private async revokeLookedUp(o: { keyId: string; hint?: string; env?: string }): Promise<RevokeResult> {
    const subject = `API key ${o.keyId}`;
    if (!o.hint) throw await this.refuse('the journal records no hint to check it against', subject, o);
    const raw = await this.api.getApiKey(o.keyId);
    if (!raw) return gone(`API key ${o.keyId} is no longer in project ${this.project}`);
    if (!redactedMatchesHint(raw.redacted_value, o.hint)) throw await this.refuse(`it is not the recorded key ${o.hint}`, subject, o);
    return this.deleteKeyOf(normalise(raw), `${o.hint} (${o.keyId})`);
  }

  /** Deletes a found key: its service account (if it owns nothing else) or the user key itself. */
  private async deleteKeyOf(rec: ProjectApiKey, label: string): Promise<RevokeResult> {
    if (rec.owner.type === 'service_account') return this.deleteOwningAccount(rec);
    return (await this.api.deleteApiKey(rec.id))
      ? deleted(`deleted project API key ${rec.id} (${label}) of project ${this.project}`)
      : gone(`project API key ${rec.id} was already deleted`);
  }

  /**
   * api-keys.ts: deleting a service account's key through api_keys is an error; the account must
   * go. If that account holds other keys, they would die too: refuse instead.
   */
  private async deleteOwningAccount(rec: ProjectApiKey): Promise<RevokeResult> {
    const { id, name } = rec.owner;
    if (!id) return leftAlone(`API key ${rec.id} is owned by a service account OpenAI did not name: revoke it in the dashboard`);
    const others = (await this.api.listApiKeys()).filter((k) => k.owner?.service_account?.id === id && k.id !== rec.id);
    if (others.length > 0) {
      return leftAlone(
        `API key ${rec.id} belongs to service account ${name ?? id}, which also owns ${others.length} other key(s) (${others.map((k) => k.id).join(', ')}); deleting the account would revoke them too, so keyrot left it: revoke this key in the dashboard`,
      );
    }
    return (await this.api.deleteServiceAccount(id))
      ? deleted(`deleted service account ${name ?? id} (${id}), owner of API key ${rec.id}, in project ${this.project}`)
      : gone(`service account ${id} (owner of API key ${rec.id}) was already deleted`);
  }

  async lastUsedAt(keyId: string): Promise<number | null> {
    const raw = await this.api.getApiKey(keyId);
    if (!raw) throw new TargetError(`OpenAI API key ${keyId} is not in project ${this.project} (deleted?)`, { kind: 'not-found', status: 404, retryable: false });
    return typeof raw.last_used_at === 'number' ? raw.last_used_at * 1000 : null;
  }

  async usage(keyId: string, days: number, now: number): Promise<KeyUsage> {
    if (!(days > 0)) throw new TargetError(`usage needs a positive number of days, got ${days}`, { kind: 'invalid', retryable: false });
    const start = Math.floor((now - days * 86_400_000) / 1000);
    const end = Math.floor(now / 1000) + 1; // end_time is exclusive (usage.ts)
    // 1d buckets allow at most 31 per page (usage.ts); next_page walks the rest. Arrays go
    // bracketed (group_by[]=…), as openai-node serialises them (internal/utils/query.ts).
    const limit = Math.min(31, Math.ceil(days) + 1);
    const fixed =
      `start_time=${start}&end_time=${end}&bucket_width=1d&limit=${limit}` +
      `&group_by[]=api_key_id&group_by[]=model&api_key_ids[]=${encodeURIComponent(keyId)}`;
    const out: KeyUsage = { requests: 0, inputTokens: 0, outputTokens: 0, byModel: {}, buckets: [] };
    let page: string | null = null;
    for (let pages = 0; pages < 100; pages++) {
      const body: RawUsagePage = await this.api.usagePage(keyId, `${fixed}${page ? `&page=${encodeURIComponent(page)}` : ''}`);
      for (const b of body.data ?? []) addBucket(out, b, keyId);
      if (!body.has_more || !body.next_page) break;
      page = body.next_page;
    }
    return out;
  }

  async locate(hint: string): Promise<LocatedKey> {
    const hits = (await this.api.listApiKeys()).filter((r) => redactedMatchesHint(r.redacted_value, hint));
    if (hits.length === 1) return { found: true, keyId: hits[0]!.id };
    if (hits.length === 0) return { found: false, reason: `no API key of project ${this.project} matches ${hint} (never minted by keyrot, and deleted or in another project)` };
    return { found: false, reason: `${hits.length} API keys of project ${this.project} match ${hint} (${hits.map((h) => h.id).join(', ')}): keyrot cannot tell which` };
  }

  costs(days: number, now: number): Promise<CostLine[]> {
    return readCosts((q) => this.api.costsPage(q), days, now);
  }
}

/** Adds one day's bucket of one key's usage to the totals. */
function addBucket(out: KeyUsage, b: NonNullable<RawUsagePage['data']>[number], keyId: string): void {
  let n = 0;
  const [in0, out0] = [out.inputTokens, out.outputTokens];
  for (const r of b.results ?? []) {
    // api_key_ids[] filters already; a result for another key would be a server quirk.
    if (r.api_key_id && r.api_key_id !== keyId) continue;
    const req = r.num_model_requests ?? 0;
    n += req;
    out.inputTokens += r.input_tokens ?? 0;
    out.outputTokens += r.output_tokens ?? 0;
    const model = r.model ?? 'unknown';
    out.byModel[model] = (out.byModel[model] ?? 0) + req;
  }
  out.requests += n;
  out.buckets.push({ start: (b.start_time ?? 0) * 1000, requests: n, inputTokens: out.inputTokens - in0, outputTokens: out.outputTokens - out0 });
}

export type { CostLine };

export type DisuseResult = { idle: true } | { idle: false; lastUsedAt: number; detail: string };

/**
 * Revocation gated on disuse (issue 6): before the old key is revoked, wait until its last_used_at
 * shows no use since `since` (when every target switched to the new key). Checks start once
 * `since + marginMs` has passed, so uses that land late in last_used_at still show; idle means
 * last_used_at is null or earlier than `since`. A use at or after `since` means something outside the
 * inventory may still hold the key: poll every `pollMs` until `limitMs` (counted from now, never
 * shorter than the margin) and then report the last use. A key that no longer exists is idle.
 * Every wait goes through the injected clock. Transient Admin API errors skip a poll; if no poll
 * ever succeeds the last error is thrown.
 * [UNCERTAIN] how quickly and how precisely OpenAI updates last_used_at: keep the margin generous.
 */
export async function waitForDisuse(
  issuer: KeyIssuer,
  opts: {
    keyId: string;
    since: number;
    marginMs: number;
    limitMs: number;
    pollMs: number;
    clock: Clock;
    signal?: AbortSignal;
    onPoll?: (p: { at: number; lastUsedAt: number | null; idle: boolean }) => void;
  },
): Promise<DisuseResult> {
  const { clock, since, signal } = opts;
  const readyAt = since + Math.max(0, opts.marginMs);
  const deadline = Math.max(clock.now() + Math.max(0, opts.limitMs), readyAt);
  const pollMs = Math.max(1, opts.pollMs);
  if (clock.now() < readyAt) await clock.sleep(readyAt - clock.now(), signal);
  let last: number | null = null;
  let answered = false;
  let lastError: unknown;
  for (;;) {
    signal?.throwIfAborted();
    let wait = pollMs;
    try {
      const rec = await issuer.find({ keyId: opts.keyId });
      if (!rec) return { idle: true };
      answered = true;
      last = rec.lastUsedAt;
      // last_used_at has whole-second precision (unix seconds): a use in the same second as the
      // switch may have come after it, so that second counts as "since" (never revoke too early).
      const idle = last === null || last < Math.floor(since / 1000) * 1000;
      opts.onPoll?.({ at: clock.now(), lastUsedAt: last, idle });
      if (idle) return { idle: true };
    } catch (err) {
      if (!(err instanceof TargetError) || !err.retryable) throw err;
      lastError = err;
      if (err.retryAfterMs !== undefined) wait = Math.max(wait, err.retryAfterMs);
    }
    const now = clock.now();
    if (now >= deadline) break;
    await clock.sleep(Math.min(wait, deadline - now), signal);
  }
  if (!answered || last === null) throw lastError;
  const after = Math.round((last - since) / 1000);
  return {
    idle: false,
    lastUsedAt: last,
    detail:
      `OpenAI API key ${opts.keyId} was last used at ${new Date(last).toISOString()}, ${after}s after every target switched to the new key: ` +
      `something outside the inventory may still use it (gave up waiting after ${Math.round(opts.limitMs / 1000)}s)`,
  };
}
