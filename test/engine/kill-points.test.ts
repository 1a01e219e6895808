import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprint } from '../../src/core/secret.ts';
import { replay } from '../../src/machine/state.ts';
import { parseJournal, type JournalEvent } from '../../src/state/journal.ts';
import { runCli, type CliResult } from '../helpers/cli.ts';
import { inProcessSpent, runMainInProcess } from '../helpers/cli-in-process.ts';
import { testKey } from '../helpers/keys.ts';
import { FLEET_CONSUMERS, startFleet, type Fleet, type FleetCopy } from '../helpers/mixed-fleet.ts';

/**
 * Invariant 5 at every crash point, through the whole CLI: `keyrot rotate` over ten targets of
 * mixed types (test/helpers/mixed-fleet.ts) is SIGKILLed right after each journal event in turn
 * (`KEYROT_FAILPOINTS=journal:k`, every event, not a sample). Each kill point is run twice on
 * fresh copies: one is finished with `keyrot resume`, the other undone with `keyrot resume
 * --rollback` (with `--new-key` / `--old-key` when keyrot asks for them). At the crash point and
 * after each, the journal's claims are checked against the providers; at the end every target
 * and every consumer (Heroku release, Vercel production deployment, Kubernetes pods, AWSCURRENT)
 * runs the one key the outcome names, nothing was revoked, and the journal ends with `end`.
 *
 * The killed `rotate` is a real subprocess; resume and rollback run the CLI's main() in this
 * process (test/helpers/cli-in-process.ts) to keep ~40 kill points within CI's time.
 */

let fleet: Fleet;
/** Journal events of an uninterrupted rotation of a copy: the kill points are 1..E. */
let E = 0;

const journalOf = async (c: FleetCopy): Promise<JournalEvent[]> =>
  parseJournal(await readFile(join(c.stateDir, 'journal', 'fleet.ndjson'), 'utf8').catch(() => ''));

const cliJson = (r: CliResult): { outcome?: string; messages?: string[]; targets?: Array<{ name: string; holds: string; error?: string }>; error?: { message: string } } => {
  try {
    return JSON.parse(r.stdout);
  } catch {
    return {};
  }
};

function fail(what: string): never {
  throw new Error(what);
}

/** Every claim the journal makes about what a target holds is true of the provider. */
async function journalTellsTheTruth(c: FleetCopy, when: string): Promise<void> {
  const r = replay(await journalOf(c)).at(-1);
  if (!r) return;
  const holds = await c.holds();
  for (const [name, t] of r.targets) {
    if (t.holds === 'unknown') continue;
    const actual = holds[name as keyof typeof holds];
    const fp = actual === null ? null : fingerprint(actual);
    if (fp !== t.holds) fail(`${when}: the journal says ${name} holds ${t.holds}, it holds ${fp}`);
  }
}

/** Every target and every consumer holds `key`; the journal is clean and nothing was revoked. */
async function everythingOn(c: FleetCopy, key: string, when: string): Promise<void> {
  const holds = await c.holds();
  const running = c.running();
  const off = Object.entries(holds).filter(([, v]) => v !== key).map(([n]) => n);
  const offRunning = FLEET_CONSUMERS.filter((n) => running[n] !== key);
  if (off.length || offRunning.length) fail(`${when}: not on the ${key === c.newKey ? 'new' : 'old'} key: targets [${off}], consumers [${offRunning}]`);
  const ev = await journalOf(c);
  const last = ev.at(-1);
  if (last?.step !== 'end') fail(`${when}: the journal ends with ${last?.step}:${last?.outcome}, not an end event`);
  const verifiedAt = ev.findIndex((e) => e.step === 'verified-all');
  const revokedAt = ev.findIndex((e) => e.step === 'revoke');
  if (revokedAt >= 0 && (verifiedAt < 0 || revokedAt < verifiedAt)) fail(`${when}: a revoke event before verified-all`);
  await journalTellsTheTruth(c, when);
}

/** A fresh copy, rotated with a SIGKILL right after its k-th journal event. */
async function killedAt(k: number, tag: string): Promise<{ copy: FleetCopy; events: JournalEvent[] }> {
  const copy = await fleet.copy(`${tag}${k}`, { oldKey: testKey(), newKey: testKey() });
  const t0 = performance.now();
  const r = await runCli(['rotate', '--yes', '--json', ...copy.args], { cwd: copy.dir, env: { ...copy.env, KEYROT_FAILPOINTS: `journal:${k}` } });
  rotateMs += performance.now() - t0;
  if (r.signal !== 'SIGKILL') fail(`k=${k}: rotate was not killed at its event ${k} (exit ${r.code}): ${r.stderr.slice(-400)}`);
  const events = await journalOf(copy);
  if (events.length !== k) fail(`k=${k}: killed after event ${k}, the journal holds ${events.length}`);
  await journalTellsTheTruth(copy, `k=${k} at the kill`);
  return { copy, events };
}

/** Wall time of the killed `rotate` subprocesses, summed (printed with inProcessSpent: where the test's time goes). */
let rotateMs = 0;

const inProcess = (c: FleetCopy, args: string[]) => runMainInProcess([...args, '--json', ...c.args], c.env);

/** `keyrot resume`, with --new-key when it asks for it: the rotation ends with every target on the new key. */
async function resumeForward(k: number, { copy, events }: { copy: FleetCopy; events: JournalEvent[] }): Promise<void> {
  const when = `k=${k} resume`;
  let r = await inProcess(copy, ['resume']);
  if (r.code === 1 && /--new-key SOURCE/.test(cliJson(r).error?.message ?? '')) r = await inProcess(copy, ['resume', '--new-key', copy.newKeySource]);
  const rep = cliJson(r);
  if (events.at(-1)?.step === 'end') {
    // Killed after its last event: the rotation had ended (awaiting revocation); nothing to resume.
    if (r.code !== 1 || !/nothing to resume|awaiting revocation/.test(rep.error?.message ?? '')) fail(`${when}: after the end event: exit ${r.code} ${r.stdout}`);
    return everythingOn(copy, copy.newKey, when);
  }
  if (rep.outcome === 'rolled-back' && !events.some((e) => e.step === 'write')) {
    // Nothing was written yet and no target can give the new key back: resume undoes it (resume.ts).
    if (r.code !== 0) fail(`${when}: rolled back with exit ${r.code}`);
    return everythingOn(copy, copy.oldKey, when);
  }
  if (r.code !== 0 || rep.outcome !== 'awaiting-revocation') fail(`${when}: exit ${r.code}, outcome ${rep.outcome}: ${r.stdout.slice(0, 600)} ${r.stderr.slice(-600)}`);
  await everythingOn(copy, copy.newKey, when);
}

/** `keyrot resume --rollback`, with --old-key when it asks for it: every target back on the old key. */
async function rollBack(k: number, { copy, events }: { copy: FleetCopy; events: JournalEvent[] }): Promise<void> {
  const when = `k=${k} rollback`;
  let r = await inProcess(copy, ['resume', '--rollback']);
  if (r.code === 1 && (cliJson(r).messages ?? []).some((m) => m.includes('--old-key SOURCE'))) {
    r = await inProcess(copy, ['resume', '--rollback', '--old-key', copy.oldKeySource]);
  }
  const rep = cliJson(r);
  if (events.at(-1)?.step === 'end') {
    // The rotation had ended awaiting revocation: it is not undone by resume (nothing to resume).
    if (r.code !== 1) fail(`${when}: after the end event: exit ${r.code} ${r.stdout}`);
    return everythingOn(copy, copy.newKey, when);
  }
  if (r.code !== 0 || rep.outcome !== 'rolled-back') fail(`${when}: exit ${r.code}, outcome ${rep.outcome}: ${r.stdout.slice(0, 600)} ${r.stderr.slice(-600)}`);
  await everythingOn(copy, copy.oldKey, when);
}

/** Runs `fn` over `items`, `width` at a time. */
async function pool<T>(items: T[], width: number, fn: (x: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: width }, async () => {
    for (let x = queue.shift(); x !== undefined; x = queue.shift()) await fn(x);
  }));
}

describe('every journal event is a crash point that resume and rollback recover from', () => {
  beforeAll(async () => {
    fleet = await startFleet();
    // Without a kill: how many events a rotation of a copy journals.
    const c = await fleet.copy('base', { oldKey: testKey(), newKey: testKey() });
    const r = await runCli(['rotate', '--yes', '--json', ...c.args], { cwd: c.dir, env: c.env });
    expect(r.code, r.stderr).toBe(0);
    await everythingOn(c, c.newKey, 'uninterrupted');
    E = (await journalOf(c)).length;
  }, 120_000);
  afterAll(async () => {
    await fleet?.stop();
  });

  it('kill after each event: resume finishes it, resume --rollback undoes it', async () => {
    expect(E).toBeGreaterThanOrEqual(30);
    const failures: string[] = [];
    let resumed = 0;
    let rolledBack = 0;
    const ks = Array.from({ length: E }, (_, i) => i + 1);
    await pool(ks, 2, async (k) => {
      const [a, b] = await Promise.all([killedAt(k, 'r').catch((e: Error) => e), killedAt(k, 'b').catch((e: Error) => e)]);
      for (const [copy, finish, count] of [
        [a, resumeForward, () => resumed++],
        [b, rollBack, () => rolledBack++],
      ] as const) {
        try {
          if (copy instanceof Error) throw copy;
          await finish(k, copy);
          count();
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    });
    console.log(`kill points: ${resumed} resumed, ${rolledBack} rolled back (of ${E} journal events)`);
    const s = (ms: number) => `${Math.round(ms / 1000)} s`;
    console.log(`kill points: killed rotate subprocesses ${s(rotateMs)} summed; resume and rollback in this process, one at a time: ${s(inProcessSpent.ms)} (${s(inProcessSpent.cpuMs)} of CPU)`);
    expect(fleet.openai.server.requests.filter((q) => q.method === 'DELETE')).toEqual([]);
    expect(failures).toEqual([]);
  }, 1_200_000);
});
