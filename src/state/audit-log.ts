import { createHash } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import { stateOf, type StateRef } from './store.ts';
import { redactValue } from '../core/redact.ts';
import { checkLines, seal, unseal } from './seal.ts';
import { advanceAnchor } from './trust.ts';

const AUDIT_STREAM = 'audit';

/**
 * The audit log: append-only NDJSON, hash-chained. Each entry carries the SHA-256 of the previous
 * entry, so an edited, removed or reordered entry breaks the chain and `keyrot history` says
 * where. A chain alone can be recomputed by anyone, so each line is also sealed with an HMAC under
 * the state key (seal.ts), and the head is anchored outside the state (anchor.ts): cutting entries
 * off the end shows as "the log ends at seq N but the anchor says M".
 */
export interface AuditEntry {
  seq: number;
  at: string;
  event: string;
  env?: string;
  rotation?: string;
  actor: string;
  details?: Record<string, unknown>;
  prev: string;
  hash: string;
}

export const GENESIS = '0'.repeat(64);

export function auditPath(stateDir: string): string {
  return join(stateDir, 'audit.ndjson');
}

function hashOf(entry: Omit<AuditEntry, 'hash'>): string {
  const { seq, at, event, env, rotation, actor, details, prev } = entry;
  return createHash('sha256').update(JSON.stringify({ seq, at, event, env, rotation, actor, details, prev })).digest('hex');
}

function actor(): string {
  try {
    return `${userInfo().username}@${hostname()}`;
  } catch {
    return `uid${process.getuid?.() ?? '?'}@${hostname()}`;
  }
}

export async function appendAudit(
  state: StateRef,
  e: { event: string; env?: string; rotation?: string; details?: Record<string, unknown> },
  now: number = Date.now(),
): Promise<AuditEntry> {
  const store = await stateOf(state);
  const key = (await store.trust.key(true))!;
  let entry!: AuditEntry;
  await store.appendAuditLine((lines) => {
    const last = lines[lines.length - 1];
    let prev = GENESIS;
    let seq = 1;
    if (last) {
      try {
        const l = JSON.parse(last) as AuditEntry;
        prev = l.hash;
        seq = l.seq + 1;
      } catch {
        prev = createHash('sha256').update(last).digest('hex');
        seq = lines.length + 1;
      }
    }
    const body: Omit<AuditEntry, 'hash'> = {
      seq,
      at: new Date(now).toISOString(),
      event: e.event,
      env: e.env,
      rotation: e.rotation,
      actor: actor(),
      details: e.details ? redactValue(e.details) : undefined,
      prev,
    };
    entry = { ...body, hash: hashOf(body) };
    // The hash chain orders the entries; the seal (HMAC under the state key) makes them keyrot's.
    return seal(key, AUDIT_STREAM, lines, JSON.stringify(entry)).line;
  });
  await advanceAnchor(store.trust, { audit: { seq: entry.seq, head: entry.hash } });
  return entry;
}

/** Which check an entry failed: its JSON, its MAC, its hash, its place in the chain, the head's anchor. */
export type AuditCheck = 'json' | 'mac' | 'hash' | 'chain' | 'anchor';

export interface AuditReadResult {
  entries: AuditEntry[];
  /** Problems: which line, which check, what is wrong. Empty when everything verifies. */
  broken: Array<{ line: number; check: AuditCheck; problem: string }>;
  /** seq of entries written before authentication (no MAC): not verifiable. */
  legacy: number[];
  /** The last entry (what notifications carry as the head), if any. */
  head: { seq: number; head: string } | null;
  /** The anchor the head was checked against (null: none recorded where keyrot keeps it). */
  anchor: { seq: number; head: string; where: string } | null;
}

/**
 * Reads and verifies the audit log: each entry's MAC and hash, the chain, and the head against the
 * anchor (keyrot's own, and `expect` when given: a `(seq, head)` a notification carried).
 */
export async function readAudit(state: StateRef, expect?: { seq: number; head: string }): Promise<AuditReadResult> {
  const store = await stateOf(state);
  const lines = (await store.readAuditText()).split('\n').filter((l) => l.trim());
  const key = lines.some((l) => unseal(l)) ? await store.trust.key(false) : null;
  const checked = checkLines(lines, key, AUDIT_STREAM, store.trust.keyWhere);
  const entries: AuditEntry[] = [];
  const broken: AuditReadResult['broken'] = [];
  const legacy: number[] = [];
  let prev = GENESIS;
  checked.forEach((c, i) => {
    const line = i + 1;
    if (c.status === 'torn') {
      broken.push({ line, check: 'json', problem: 'not valid JSON' });
      prev = createHash('sha256').update(lines[i]!).digest('hex');
      return;
    }
    const e = c.value as unknown as AuditEntry;
    if (c.status === 'bad') broken.push({ line, check: 'mac', problem: `entry ${e.seq} ${c.problem}` });
    if (c.status === 'legacy') legacy.push(e.seq);
    if (e.prev !== prev) broken.push({ line, check: 'chain', problem: `entry ${e.seq} does not follow the previous entry (removed, reordered or inserted entries)` });
    const { hash, ...body } = e;
    if (hashOf(body) !== hash) broken.push({ line, check: 'hash', problem: `entry ${e.seq} was modified after it was written` });
    entries.push(e);
    prev = e.hash;
  });
  const last = entries[entries.length - 1];
  const head = last ? { seq: last.seq, head: last.hash } : null;
  const anchored = (await store.trust.anchors.read())?.audit;
  const anchor = anchored ? { ...anchored, where: store.trust.anchors.where } : null;
  for (const a of [anchor, expect ? { ...expect, where: '--anchor' } : null]) {
    const problem = a ? anchorProblem(entries, a) : undefined;
    if (problem) broken.push({ line: lines.length, check: 'anchor', problem });
  }
  return { entries, broken, legacy, head, anchor };
}

/** Is the anchored head (seq, hash) in the log? A log shorter than the anchor was cut. */
function anchorProblem(entries: AuditEntry[], a: { seq: number; head: string; where: string }): string | undefined {
  const at = entries.find((e) => e.seq === a.seq);
  if (at?.hash === a.head) return undefined;
  const end = entries[entries.length - 1]?.seq ?? 0;
  if (!at && end < a.seq) {
    return `the log ends at seq ${end} but the anchor (${a.where}) says ${a.seq}: entries were removed from its end, or the log was replaced`;
  }
  return `entry ${a.seq} is not the one the anchor (${a.where}) recorded: the log was rewritten`;
}

/** The last entry's (seq, hash): the head notifications carry, so a log cut short can be told later. */
export async function auditHead(state: StateRef): Promise<{ seq: number; head: string } | null> {
  const lines = (await (await stateOf(state)).readAuditText()).split('\n').filter((l) => l.trim());
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const e = JSON.parse(lines[i]!) as Partial<AuditEntry>;
      if (typeof e.seq === 'number' && typeof e.hash === 'string') return { seq: e.seq, head: e.hash };
    } catch {
      // a torn line: the one before it is the head
    }
  }
  return null;
}
