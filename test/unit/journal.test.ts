import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { appendFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal, journalPath, newRotationId, readJournal, type JournalEvent, type TargetStartInfo } from '../../src/state/journal.ts';
import { latestRotation, replay } from '../../src/machine/state.ts';
import { Secret } from '../../src/core/secret.ts';
import { testKey } from '../helpers/keys.ts';

const OLD = 'aaaaaaaaaaaa';
const NEW = 'bbbbbbbbbbbb';
const targets: TargetStartInfo[] = [
  { name: 'dotenv:.env', type: 'dotenv', location: '.env', old: OLD, readBack: true },
  { name: 'file:key', type: 'file', location: 'key', old: null, readBack: true },
  { name: 'docker', type: 'docker-secret', location: 'openai_api_key', old: 'unreadable', readBack: false },
];

let clock = Date.parse('2026-03-01T09:00:00Z');
function ev(e: Partial<JournalEvent> & Pick<JournalEvent, 'step' | 'outcome'>, rotation = 'rot_1'): JournalEvent {
  clock += 1000;
  return { v: 1, rotation, env: 'production', at: new Date(clock).toISOString(), ...e };
}
const start = (rotation = 'rot_1') =>
  ev({ step: 'start', outcome: 'ok', mode: 'rotate', source: 'stdin', oldFingerprint: OLD, oldHint: 'sk-...OLD1', targets }, rotation);

describe('journal replay', () => {
  it('start: every target holds its old value, nothing written', () => {
    const [r] = replay([start()]);
    expect(r).toMatchObject({ id: 'rot_1', env: 'production', mode: 'rotate', source: 'stdin', oldFingerprint: OLD, allVerified: false });
    expect(r!.outcome).toBeUndefined();
    expect([...r!.targets.keys()]).toEqual(targets.map((t) => t.name));
    expect(r!.targets.get('dotenv:.env')).toMatchObject({ holds: OLD, written: false, verified: undefined });
    expect(r!.targets.get('file:key')!.holds).toBeNull();
    expect(r!.targets.get('docker')!.holds).toBe('unknown'); // write-only: never read
  });

  it('key, write, verify, redeploy, verified-all, revoke, finalize, end', () => {
    const events = [
      start(),
      ev({ step: 'key', outcome: 'ok', fingerprint: NEW, hint: 'sk-...NEW1' }),
      ev({ step: 'write', outcome: 'ok', target: 'dotenv:.env', fingerprint: NEW, receipt: { createdFile: false } }),
      ev({ step: 'write', outcome: 'ok', target: 'file:key', receipt: { createdFile: true } }),
      ev({ step: 'write', outcome: 'ok', target: 'docker', fingerprint: NEW, receipt: { secret: 'openai_api_key_2' } }),
      ev({ step: 'verify', outcome: 'ok', target: 'dotenv:.env', method: 'read-back' }),
      ev({ step: 'verify', outcome: 'ok', target: 'file:key', method: 'read-back' }),
      ev({ step: 'redeploy', outcome: 'ok', target: 'docker', method: 'redeploy' }),
      ev({ step: 'verify', outcome: 'ok', target: 'docker', method: 'metadata' }),
      ev({ step: 'verified-all', outcome: 'ok' }),
      ev({ step: 'revoke', outcome: 'ok' }),
      ev({ step: 'finalize', outcome: 'ok', target: 'docker' }),
      ev({ step: 'end', outcome: 'completed' }),
    ];
    const [r] = replay(events);
    expect(r!.newFingerprint).toBe(NEW);
    expect(r!.newHint).toBe('sk-...NEW1');
    const d = r!.targets.get('dotenv:.env')!;
    expect(d).toMatchObject({ written: true, verified: 'read-back', holds: NEW, receipt: { version: 1, data: { createdFile: false } } });
    // A write without its own fingerprint holds the rotation's new key.
    expect(r!.targets.get('file:key')).toMatchObject({ written: true, holds: NEW, receipt: { version: 1, data: { createdFile: true } } });
    expect(r!.targets.get('docker')).toMatchObject({ redeployed: true, verified: 'metadata', finalized: true });
    expect(r!.allVerified).toBe(true);
    expect(r!.revokedAt).toBe(events[10]!.at);
    expect(r!.revokedFirst).toBe(false);
    expect(r!.outcome).toBe('completed');
    expect(r!.endedAt).toBe(events[12]!.at);
    expect(r!.events).toHaveLength(events.length);
  });

  it('a failed write leaves the target holding "unknown" with the error', () => {
    const [r] = replay([
      start(),
      ev({ step: 'key', outcome: 'ok', fingerprint: NEW }),
      ev({ step: 'write', outcome: 'failed', target: 'dotenv:.env', detail: 'permission denied' }),
    ]);
    expect(r!.targets.get('dotenv:.env')).toMatchObject({ written: false, writeFailed: true, holds: 'unknown', lastError: 'permission denied' });
    expect(r!.outcome).toBeUndefined(); // interrupted
  });

  it('a failed verify clears verified and keeps the error', () => {
    const [r] = replay([
      start(),
      ev({ step: 'write', outcome: 'ok', target: 'dotenv:.env', fingerprint: NEW }),
      ev({ step: 'verify', outcome: 'failed', target: 'dotenv:.env', detail: 'read-back mismatch' }),
    ]);
    expect(r!.targets.get('dotenv:.env')).toMatchObject({ written: true, verified: undefined, holds: NEW, lastError: 'read-back mismatch' });
  });

  it('restore: back to the old value (its own, or the environment old key for write-only targets)', () => {
    const [r] = replay([
      start(),
      ev({ step: 'key', outcome: 'ok', fingerprint: NEW }),
      ev({ step: 'write', outcome: 'ok', target: 'dotenv:.env', fingerprint: NEW }),
      ev({ step: 'write', outcome: 'ok', target: 'file:key', fingerprint: NEW }),
      ev({ step: 'write', outcome: 'ok', target: 'docker', fingerprint: NEW }),
      ev({ step: 'verify', outcome: 'ok', target: 'dotenv:.env', method: 'read-back' }),
      ev({ step: 'restore', outcome: 'ok', target: 'dotenv:.env' }),
      ev({ step: 'restore', outcome: 'ok', target: 'file:key' }),
      ev({ step: 'restore', outcome: 'ok', target: 'docker' }),
      ev({ step: 'end', outcome: 'rolled-back' }),
    ]);
    expect(r!.targets.get('dotenv:.env')).toMatchObject({ restored: true, written: false, verified: undefined, holds: OLD });
    expect(r!.targets.get('file:key')).toMatchObject({ restored: true, holds: null });
    expect(r!.targets.get('docker')).toMatchObject({ restored: true, holds: OLD });
    expect(r!.outcome).toBe('rolled-back');
  });

  it('a failed restore leaves "unknown"; a later write clears the restored flag', () => {
    const [r] = replay([
      start(),
      ev({ step: 'write', outcome: 'ok', target: 'dotenv:.env', fingerprint: NEW }),
      ev({ step: 'restore', outcome: 'failed', target: 'dotenv:.env', detail: 'disk full' }),
      ev({ step: 'write', outcome: 'ok', target: 'file:key', fingerprint: NEW }),
      ev({ step: 'restore', outcome: 'ok', target: 'file:key' }),
      ev({ step: 'write', outcome: 'ok', target: 'file:key', fingerprint: NEW }),
    ]);
    expect(r!.targets.get('dotenv:.env')).toMatchObject({ holds: 'unknown', lastError: 'disk full', restored: false });
    expect(r!.targets.get('file:key')).toMatchObject({ restored: false, written: true, holds: NEW });
  });

  it('revoke-first emergency', () => {
    const [r] = replay([
      ev({ step: 'start', outcome: 'ok', mode: 'emergency', targets }),
      ev({ step: 'revoke', outcome: 'ok', detail: 'revoked-first' }),
    ]);
    expect(r).toMatchObject({ mode: 'emergency', revokedFirst: true, oldFingerprint: null });
    expect(r!.revokedAt).toBeDefined();
  });

  it('several rotations are kept apart, oldest first; events of unknown rotations are ignored', () => {
    const events = [
      start('rot_1'),
      ev({ step: 'write', outcome: 'ok', target: 'dotenv:.env', fingerprint: NEW }, 'rot_1'),
      ev({ step: 'end', outcome: 'failed' }, 'rot_1'),
      ev({ step: 'write', outcome: 'ok', target: 'dotenv:.env', fingerprint: NEW }, 'rot_orphan'),
      start('rot_2'),
      ev({ step: 'end', outcome: 'awaiting-revocation' }, 'rot_2'),
    ];
    const all = replay(events);
    expect(all.map((r) => [r.id, r.outcome])).toEqual([
      ['rot_1', 'failed'],
      ['rot_2', 'awaiting-revocation'],
    ]);
    expect(all[1]!.targets.get('dotenv:.env')!.written).toBe(false);
  });

  it('events for targets the start did not list are ignored', () => {
    const [r] = replay([start(), ev({ step: 'write', outcome: 'ok', target: 'nope', fingerprint: NEW })]);
    expect(r!.targets.has('nope')).toBe(false);
    expect(r!.events).toHaveLength(2);
  });
});

describe('journal on disk', () => {
  let stateDir: string;
  beforeEach(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'keyrot-journal-'));
  });
  afterEach(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  it('append then read back; file is 0600; a torn last line is ignored', async () => {
    const now = Date.parse('2026-03-01T09:00:00Z');
    const j = new Journal(stateDir, 'production', 'rot_x', () => now);
    await j.append({ step: 'start', outcome: 'ok', targets });
    await j.append({ step: 'write', outcome: 'ok', target: 'dotenv:.env', fingerprint: NEW });
    expect((await stat(journalPath(stateDir, 'production'))).mode & 0o777).toBe(0o600);
    await appendFile(journalPath(stateDir, 'production'), '{"v":1,"rotation":"rot_x","env":"production","step":"verify","outc');
    const events = await readJournal(stateDir, 'production');
    expect(events.map((e) => e.step)).toEqual(['start', 'write']);
    expect(events[0]).toMatchObject({ v: 2, rotation: 'rot_x', env: 'production', at: '2026-03-01T09:00:00.000Z' });
    const r = await latestRotation(stateDir, 'production');
    expect(r!.targets.get('dotenv:.env')).toMatchObject({ written: true, verified: undefined, holds: NEW });
  });

  it('no journal: no events, no rotation', async () => {
    expect(await readJournal(stateDir, 'production')).toEqual([]);
    expect(await latestRotation(stateDir, 'production')).toBeUndefined();
  });

  it('never records a key value, even one passed in a detail', async () => {
    const key = testKey();
    const s = new Secret(key);
    const j = new Journal(stateDir, 'production', 'rot_x');
    await j.append({ step: 'write', outcome: 'failed', target: 't', detail: `provider echoed ${key}`, fingerprint: s.fingerprint, hint: s.hint });
    const raw = await readFile(journalPath(stateDir, 'production'), 'utf8');
    expect(raw).not.toContain(key);
    expect(raw).toContain(s.fingerprint);
  });

  it('rotation ids sort by time', () => {
    const a = newRotationId(Date.parse('2026-11-26T05:02:12.345Z'), () => 'k3j9x2');
    expect(a).toBe('rot_20261126T050212Z_k3j9x2');
    const b = newRotationId(Date.parse('2026-11-26T05:02:13Z'), () => 'aaaaaa');
    expect([b, a].sort()).toEqual([a, b]);
  });
});
