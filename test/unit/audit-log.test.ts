import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GENESIS, appendAudit, auditPath, readAudit, type AuditEntry } from '../../src/state/audit-log.ts';
import { testKey } from '../helpers/keys.ts';

describe('audit log (hash-chained NDJSON)', () => {
  let stateDir: string;
  const t0 = Date.parse('2026-03-01T09:00:00Z');

  beforeEach(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'keyrot-audit-'));
  });
  afterEach(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  async function seed(n: number): Promise<AuditEntry[]> {
    const out: AuditEntry[] = [];
    for (let i = 0; i < n; i++) {
      out.push(await appendAudit(stateDir, { event: `event-${i + 1}`, env: 'production', rotation: `rot_${i + 1}`, details: { i } }, t0 + i * 1000));
    }
    return out;
  }
  const lines = async () => (await readFile(auditPath(stateDir), 'utf8')).split('\n').filter(Boolean);
  const writeLines = (ls: string[]) => writeFile(auditPath(stateDir), ls.join('\n') + '\n');

  it('an empty state directory reads as an empty, intact log', async () => {
    expect(await readAudit(stateDir)).toEqual({ entries: [], broken: [], legacy: [], head: null, anchor: null });
  });

  it('appends chain each entry to the previous one; the chain reads back intact', async () => {
    const written = await seed(4);
    expect(written.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(written[0]!.prev).toBe(GENESIS);
    for (let i = 1; i < written.length; i++) expect(written[i]!.prev).toBe(written[i - 1]!.hash);
    expect(written[0]!.at).toBe('2026-03-01T09:00:00.000Z');
    expect(written[0]!.actor).toMatch(/@/);
    const { entries, broken } = await readAudit(stateDir);
    expect(broken).toEqual([]);
    expect(entries).toEqual(written);
    expect(await lines()).toHaveLength(4);
    expect((await stat(auditPath(stateDir))).mode & 0o777).toBe(0o600);
  });

  it('details are redacted before they are written (and hashed)', async () => {
    const key = testKey();
    await appendAudit(stateDir, { event: 'incident', details: { reason: `leaked ${key} in a gist`, nested: { k: key } } });
    const raw = await readFile(auditPath(stateDir), 'utf8');
    expect(raw).not.toContain(key);
    expect((await readAudit(stateDir)).broken).toEqual([]);
  });

  it('editing a line is detected on that line', async () => {
    await seed(3);
    const ls = await lines();
    const e = JSON.parse(ls[1]!) as AuditEntry;
    e.event = 'revoke'; // the hash field left as it was
    ls[1] = JSON.stringify(e);
    await writeLines(ls);
    const { broken, entries } = await readAudit(stateDir);
    expect(entries).toHaveLength(3);
    // Both the entry's own hash and its MAC (under the state key) fail, on that line only.
    expect(broken).toEqual([
      { line: 2, check: 'mac', problem: expect.stringMatching(/entry 2 fails authentication/) },
      { line: 2, check: 'hash', problem: expect.stringMatching(/entry 2 was modified/) },
    ]);
  });

  it('editing a line and recomputing its hash breaks the next line', async () => {
    await seed(3);
    const ls = await lines();
    const e = JSON.parse(ls[1]!) as AuditEntry;
    e.details = { i: 99 };
    const { hash: _old, ...body } = e;
    const { seq, at, event, env, rotation, actor, details, prev } = body;
    e.hash = createHash('sha256').update(JSON.stringify({ seq, at, event, env, rotation, actor, details, prev })).digest('hex');
    ls[1] = JSON.stringify(e);
    await writeLines(ls);
    const { broken } = await readAudit(stateDir);
    // A recomputed hash passes the hash check, not the MAC: the edited line is named, and the chain breaks after it.
    expect(broken).toEqual([
      { line: 2, check: 'mac', problem: expect.stringMatching(/entry 2 fails authentication/) },
      { line: 3, check: 'chain', problem: expect.stringMatching(/entry 3 does not follow/) },
    ]);
  });

  it('deleting a line is detected at the line that follows it', async () => {
    await seed(4);
    const ls = await lines();
    ls.splice(1, 1);
    await writeLines(ls);
    const { broken, entries } = await readAudit(stateDir);
    expect(entries.map((e) => e.seq)).toEqual([1, 3, 4]);
    expect(broken).toEqual([
      { line: 2, check: 'mac', problem: expect.stringMatching(/entry 3 fails authentication/) },
      { line: 2, check: 'chain', problem: expect.stringMatching(/entry 3 does not follow the previous entry/) },
    ]);
  });

  it('deleting the first line is detected', async () => {
    await seed(2);
    await writeLines((await lines()).slice(1));
    expect((await readAudit(stateDir)).broken).toEqual([
      { line: 1, check: 'mac', problem: expect.stringMatching(/entry 2 fails authentication/) },
      { line: 1, check: 'chain', problem: expect.stringMatching(/entry 2 does not follow/) },
    ]);
  });

  it('reordering lines is detected', async () => {
    await seed(4);
    const ls = await lines();
    [ls[1], ls[2]] = [ls[2]!, ls[1]!];
    await writeLines(ls);
    const { broken } = await readAudit(stateDir);
    const chain = broken.filter((b) => b.check === 'chain');
    expect(chain.map((b) => b.line)).toEqual([2, 3, 4]);
    for (const b of chain) expect(b.problem).toMatch(/does not follow/);
    expect(broken.filter((b) => b.check === 'mac').map((b) => b.line)).toEqual([2, 3, 4]);
  });

  it('a line that is not JSON is named', async () => {
    await seed(2);
    const ls = await lines();
    ls.splice(1, 0, 'garbage {');
    await writeLines(ls);
    const { broken, entries } = await readAudit(stateDir);
    expect(entries).toHaveLength(2);
    expect(broken[0]).toEqual({ line: 2, check: 'json', problem: 'not valid JSON' });
    // The line after it no longer follows by hash; its MAC chains to the last sealed line and holds.
    expect(broken.slice(1)).toEqual([{ line: 3, check: 'chain', problem: expect.stringMatching(/does not follow/) }]);
  });

  it('appending after a tampered log keeps chaining from the last line', async () => {
    await seed(2);
    const ls = await lines();
    ls.push('torn-line');
    await writeLines(ls);
    const next = await appendAudit(stateDir, { event: 'after' });
    expect(next.prev).toBe(createHash('sha256').update('torn-line').digest('hex'));
    const { broken } = await readAudit(stateDir);
    // Only the torn line is reported; the entry after it follows it.
    expect(broken).toEqual([{ line: 3, check: 'json', problem: 'not valid JSON' }]);
  });
});
