import { createHash } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import { stateOf, type StateRef } from './store.ts';
import { redactValue } from '../core/redact.ts';

/**
 * The audit log: append-only NDJSON, hash-chained. Each entry carries the SHA-256 of the previous
 * entry's line, so an edited, removed or reordered entry breaks the chain and `keyrot history`
 * says where.
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
  let entry!: AuditEntry;
  await (await stateOf(state)).appendAuditLine((last, count) => {
    let prev = GENESIS;
    let seq = 1;
    if (last) {
      try {
        const l = JSON.parse(last) as AuditEntry;
        prev = l.hash;
        seq = l.seq + 1;
      } catch {
        prev = createHash('sha256').update(last).digest('hex');
        seq = count + 1;
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
    return JSON.stringify(entry);
  });
  return entry;
}

export interface AuditReadResult {
  entries: AuditEntry[];
  /** Problems with the chain: which entry, what is wrong. Empty when intact. */
  broken: Array<{ line: number; problem: string }>;
}

export async function readAudit(state: StateRef): Promise<AuditReadResult> {
  const lines = (await (await stateOf(state)).readAuditText()).split('\n').filter((l) => l.trim());
  const entries: AuditEntry[] = [];
  const broken: AuditReadResult['broken'] = [];
  let prev = GENESIS;
  lines.forEach((line, i) => {
    let e: AuditEntry;
    try {
      e = JSON.parse(line) as AuditEntry;
    } catch {
      broken.push({ line: i + 1, problem: 'not valid JSON' });
      prev = createHash('sha256').update(line).digest('hex');
      return;
    }
    if (e.prev !== prev) broken.push({ line: i + 1, problem: `entry ${e.seq} does not follow the previous entry (removed, reordered or inserted entries)` });
    const { hash, ...body } = e;
    if (hashOf(body) !== hash) broken.push({ line: i + 1, problem: `entry ${e.seq} was modified after it was written` });
    entries.push(e);
    prev = e.hash;
  });
  return { entries, broken };
}
