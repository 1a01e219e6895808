import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KubernetesEmulator } from '../../emulators/kubernetes/emulator.ts';
import { runCli, type CliResult } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * Item 18: keyrot's state cannot be used against it. The attacks run against the real CLI and the
 * real files of a local state: an audit log whose whole chain is recomputed, a log cut short, a
 * journal with forged "verified" events, a journal cut short; then the legacy (pre-authentication)
 * state, the key's first use, and the head a notification carries.
 */

let dir: string;
let config: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-state-auth-'));
  config = join(dir, 'config'); // this test's own XDG_CONFIG_HOME: its state key and anchors
  await writeFile(join(dir, 'app.key'), testKey(), { mode: 0o600 });
  await writeFile(join(dir, 'targets.yaml'), inventory());
  return () => rm(dir, { recursive: true, force: true });
});

function inventory(extra = ''): string {
  return `version: 1
key:
  source: env:NEW_KEY
  verify: false
${extra}environments:
  production:
    targets:
      - type: file
        name: key-file
        path: app.key
`;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCli(args, { cwd: dir, env: { XDG_CONFIG_HOME: config, NEW_KEY: testKey(), ...env } });
}

async function rotateAndRevoke(times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    const r = await cli(['rotate', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    const v = await cli(['revoke', '--yes']);
    expect(v.code, v.stderr).toBe(0);
  }
}

const auditFile = () => join(dir, '.keyrot', 'audit.ndjson');
const journalFile = () => join(dir, '.keyrot', 'journal', 'production.ndjson');
const readLines = async (p: string) => (await readFile(p, 'utf8')).split('\n').filter(Boolean);
const writeLines = (p: string, ls: string[]) => writeFile(p, ls.join('\n') + '\n');

/** What the audit chain alone allowed: rewrite entries and recompute every hash from the start. */
function recomputeChain(lines: string[], edit: (e: Record<string, unknown>) => void, keepSeal: boolean): string[] {
  let prev = '0'.repeat(64);
  return lines.map((line) => {
    const { kid, mac, ...e } = JSON.parse(line) as Record<string, unknown>;
    edit(e);
    e.prev = prev;
    const { seq, at, event, env, rotation, actor, details } = e;
    e.hash = createHash('sha256').update(JSON.stringify({ seq, at, event, env, rotation, actor, details, prev })).digest('hex');
    prev = e.hash as string;
    return JSON.stringify(keepSeal && mac ? { ...e, kid, mac } : e);
  });
}

describe('the audit log', () => {
  it('a recomputed chain no longer passes keyrot history: the MACs (or the anchor) say so', async () => {
    await rotateAndRevoke(2);
    const lines = await readLines(auditFile());
    expect(lines.length).toBeGreaterThanOrEqual(6);
    const clean = await cli(['history']);
    expect(clean.code, clean.stderr).toBe(0);

    // Rewrite who revoked the first key, keeping the old MAC fields: the MAC fails on that entry.
    const rewrite = (e: Record<string, unknown>) => {
      if (e.event === 'key.revoked') e.details = { ...(e.details as object), how: 'nobody revoked it' };
    };
    await writeLines(auditFile(), recomputeChain(lines, rewrite, true));
    const withSeal = await cli(['history']);
    expect(withSeal.code).toBe(1);
    expect(withSeal.stderr).toMatch(/audit log line \d+ \[mac\]: entry \d+ fails authentication/);

    // Strip every MAC too (as if written before authentication): the anchor outside the state says it was rewritten.
    await writeLines(auditFile(), recomputeChain(lines, rewrite, false));
    const stripped = await cli(['history', '--json']);
    expect(stripped.code).toBe(1);
    const j = JSON.parse(stripped.stdout) as { intact: boolean; broken: Array<{ check: string; problem: string }> };
    expect(j.intact).toBe(false);
    expect(j.broken).toEqual([{ line: lines.length, check: 'anchor', problem: expect.stringMatching(/is not the one the anchor \(.*\) recorded: the log was rewritten/) }]);
    // And what the untouched log said it had checked.
    expect(clean.stderr).toMatch(/Verified: \d+ entries' MACs \(state key .*state\.key\), the hash chain, the head \(seq \d+\) against the anchor/);
  }, 120_000);

  it('a log cut short: "the log ends at seq N but the anchor says M"', async () => {
    await rotateAndRevoke(1);
    const lines = await readLines(auditFile());
    const last = JSON.parse(lines.at(-1)!) as { seq: number };
    await writeLines(auditFile(), lines.slice(0, -2));
    const r = await cli(['history']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`[anchor]: the log ends at seq ${last.seq - 2} but the anchor (${join(config, 'keyrot', 'anchors')}`);
    expect(r.stderr).toContain(`says ${last.seq}`);
  }, 120_000);

  it('after a deliberate archive, --reanchor records the new heads, and only when every line verifies', async () => {
    await rotateAndRevoke(1);
    const archived = await readLines(auditFile());
    await rm(auditFile()); // archived elsewhere: the next entry starts a new chain
    expect((await cli(['rotate', '--yes'])).code).toBe(0);
    const before = await cli(['history']);
    expect(before.code).toBe(1);
    expect(before.stderr).toMatch(/\[anchor\]: entry \d+ is not the one the anchor .* recorded|the log ends at seq/);
    // A line that fails is never vouched for.
    const lines = await readLines(auditFile());
    await writeLines(auditFile(), [lines[0]!.replace('"rotation.started"', '"rotation.completed"'), ...lines.slice(1)]);
    const refused = await cli(['history', '--reanchor']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('Not re-anchored');
    await writeLines(auditFile(), lines);
    const re = await cli(['history', '--reanchor']);
    expect(re.code, re.stderr).toBe(0);
    expect(re.stdout).toMatch(/Re-anchored .* at the current heads \(audit seq \d+; journals production\)/);
    const after = await cli(['history']);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout).toContain('state.reanchored');
    expect(archived.length).toBeGreaterThan(0);
  }, 120_000);

  it('entries written before authentication stay readable, flagged; an unsealed entry after sealed ones fails', async () => {
    // Three entries as keyrot wrote them before authentication existed: hash-chained, no MAC.
    let prev = '0'.repeat(64);
    const legacy = [1, 2, 3].map((seq) => {
      const body = { seq, at: new Date(Date.UTC(2026, 0, seq)).toISOString(), event: 'rotation.completed', env: 'production', rotation: `rot_old${seq}`, actor: 'ops@host', details: undefined, prev };
      const hash = createHash('sha256').update(JSON.stringify(body)).digest('hex');
      prev = hash;
      return JSON.stringify({ ...body, hash });
    });
    await mkdir(join(dir, '.keyrot'), { recursive: true });
    await writeLines(auditFile(), legacy);
    await rotateAndRevoke(1);
    const ok = await cli(['history']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toContain('Audit log: entries 1–3 were written before authentication: not verifiable.');
    expect(ok.stdout).toContain('rot_old1');

    // A forged entry without a MAC, appended after authenticated ones.
    const lines = await readLines(auditFile());
    const tail = JSON.parse(lines.at(-1)!) as { seq: number; hash: string };
    const forged = { seq: tail.seq + 1, at: new Date().toISOString(), event: 'key.revoked', env: 'production', actor: 'ops@host', details: { how: 'forged' }, prev: tail.hash };
    const hash = createHash('sha256').update(JSON.stringify({ ...forged, rotation: undefined })).digest('hex');
    await writeLines(auditFile(), [...lines, JSON.stringify({ ...forged, hash })]);
    const bad = await cli(['history']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/\[mac\]: entry \d+ carries no MAC but follows authenticated lines/);
  }, 120_000);
});

describe('the journal', () => {
  /** A rotation killed right after its write was journaled: the journal ends at "write ok". */
  async function interruptedAfterWrite(): Promise<void> {
    const r = await cli(['rotate', '--yes'], { KEYROT_FAILPOINTS: 'after-write:key-file' });
    expect(r.signal ?? r.code).toBe('SIGKILL');
  }

  const forgedVerification = (lines: string[]) => {
    const last = JSON.parse(lines.at(-1)!) as Record<string, unknown>;
    const { kid: _k, mac: _m, ...base } = last;
    return [
      { ...base, step: 'verify', outcome: 'ok', method: 'read-back', detail: 'read back matches' },
      { ...base, step: 'verified-all', outcome: 'ok', target: undefined },
      { ...base, step: 'end', outcome: 'awaiting-revocation', target: undefined, fingerprint: undefined },
    ];
  };

  it('forged "verified" lines (no MAC, or a made-up one) are refused by revoke and resume', async () => {
    await interruptedAfterWrite();
    const lines = await readLines(journalFile());
    for (const variant of ['no MAC', 'made-up MAC'] as const) {
      const forged = forgedVerification(lines).map((e) =>
        variant === 'no MAC' ? JSON.stringify(e) : JSON.stringify({ ...e, kid: (JSON.parse(lines[0]!) as { kid: string }).kid, mac: randomBytes(32).toString('hex') }),
      );
      await writeLines(journalFile(), [...lines, ...forged]);
      const revoke = await cli(['revoke', '--yes']);
      expect(revoke.code, variant).toBe(1);
      expect(revoke.stderr).toContain('refusing to act on the journal of "production": it fails authentication, so the state may have been tampered with');
      expect(revoke.stderr).toMatch(variant === 'no MAC' ? /line \d+ carries no MAC but follows authenticated lines/ : /line \d+ fails authentication/);
      const resume = await cli(['resume']);
      expect(resume.code).toBe(1);
      expect(resume.stderr).toContain('may have been tampered with');
    }
    // The untouched journal resumes.
    await writeLines(journalFile(), lines);
    const resume = await cli(['resume']);
    expect(resume.code, resume.stderr).toBe(0);
  }, 120_000);

  it('a journal cut short of its anchor is refused', async () => {
    await interruptedAfterWrite();
    const lines = await readLines(journalFile());
    await writeLines(journalFile(), lines.slice(0, -1)); // the write never happened, says the journal now
    const r = await cli(['resume', '--rollback']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the journal ends at authenticated line ${lines.length - 1}, but the anchor`);
    expect(r.stderr).toContain(`says keyrot wrote ${lines.length}`);
  }, 120_000);
});

describe('the state key', () => {
  it('is generated on first use, 0600, outside the state directory, with a one-time message', async () => {
    const first = await cli(['rotate', '--yes']);
    expect(first.code, first.stderr).toBe(0);
    const keyFile = join(config, 'keyrot', 'state.key');
    expect(first.stderr).toContain(`generated keyrot's state key at ${keyFile} (mode 0600)`);
    expect(first.stderr).toMatch(/back it up .* keep it off the volume that holds the state/);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    const material = (await readFile(keyFile, 'utf8')).trim();
    expect(material).toMatch(/^[0-9a-f]{64}$/);
    // Nothing of it in the state.
    for (const f of [auditFile(), journalFile()]) expect(await readFile(f, 'utf8')).not.toContain(material);
    const second = await cli(['revoke', '--yes']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).not.toContain('generated');
    expect(second.stdout + second.stderr + first.stdout + first.stderr).not.toContain(material);
  }, 120_000);

  it('without the key that wrote the state, history says so; state_key makes it portable; a short one is refused', async () => {
    const stateKey = randomBytes(32).toString('hex');
    await writeFile(join(dir, 'targets.yaml'), inventory('state_key: env:KEYROT_STATE_KEY\n'));
    expect((await cli(['rotate', '--yes'], { KEYROT_STATE_KEY: stateKey })).code).toBe(0);
    // Another machine with the same state_key verifies it (it has no anchor: it says so).
    const elsewhere = await cli(['history'], { KEYROT_STATE_KEY: stateKey, XDG_CONFIG_HOME: join(dir, 'other') });
    expect(elsewhere.code, elsewhere.stderr).toBe(0);
    expect(elsewhere.stderr).toMatch(/no anchor is recorded at .*, so a log cut short is not detectable here/);
    // Another key: every entry names the key it was written with.
    const wrong = await cli(['history'], { KEYROT_STATE_KEY: randomBytes(32).toString('hex') });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/\[mac\]: entry 1 was authenticated with another state key \([0-9a-f]{8}; the key here, state_key env:KEYROT_STATE_KEY, is [0-9a-f]{8}\)/);
    const short = await cli(['rotate', '--yes'], { KEYROT_STATE_KEY: 'hunter2' });
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('is 7 characters: use at least 32 random characters');
  }, 120_000);
});

describe('the head a notification carries', () => {
  it('the webhook gets (seq, head); history --anchor catches a log cut short where no local anchor exists', async () => {
    const received: Array<{ audit?: { seq: number; head: string } }> = [];
    const hook = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        received.push(JSON.parse(body));
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`;
      const stateKey = randomBytes(32).toString('hex');
      await writeFile(join(dir, 'targets.yaml'), inventory('state_key: env:KEYROT_STATE_KEY\nnotify:\n  webhook: env:HOOK\n'));
      const r = await cli(['rotate', '--yes'], { KEYROT_STATE_KEY: stateKey, HOOK: url });
      expect(r.code, r.stderr).toBe(0);
      const lines = await readLines(auditFile());
      const last = JSON.parse(lines.at(-1)!) as { seq: number; hash: string };
      expect(received.at(-1)?.audit).toEqual({ seq: last.seq, head: last.hash });

      await writeLines(auditFile(), lines.slice(0, -1));
      const env = { KEYROT_STATE_KEY: stateKey, XDG_CONFIG_HOME: join(dir, 'fresh-machine') };
      expect((await cli(['history'], env)).code).toBe(0); // every remaining line verifies: only an anchor tells
      const checked = await cli(['history', '--anchor', `${last.seq}:${last.hash}`], env);
      expect(checked.code).toBe(1);
      expect(checked.stderr).toContain(`[anchor]: the log ends at seq ${last.seq - 1} but the anchor (--anchor) says ${last.seq}`);
      expect(await readdir(join(dir, 'fresh-machine')).catch(() => [])).toEqual([]);
    } finally {
      hook.close();
    }
  }, 120_000);
});

describe('cluster mode (state: kubernetes)', () => {
  const emu = new KubernetesEmulator();
  beforeAll(() => emu.start());
  afterAll(() => emu.stop());

  it('the key in its own Secret, the heads in their own ConfigMap: a state ConfigMap cut short or forged is caught', async () => {
    emu.allowAll();
    emu.seedNamespace('keyrot');
    const name = `auth${randomBytes(3).toString('hex')}`;
    const env = { KUBECONFIG: await emu.writeKubeconfig(join(dir, 'kubeconfig')) };
    await writeFile(join(dir, 'targets.yaml'), inventory(`state: { type: kubernetes, namespace: keyrot, name: ${name} }\n`));
    const first = await cli(['rotate', '--yes'], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain(`generated keyrot's state key in Secret keyrot/${name}-state-key`);
    const state = () => emu.getConfigMap('keyrot', `${name}-state`)!.data;
    const audit = state()['audit.ndjson']!.split('\n').filter(Boolean);
    const last = JSON.parse(audit.at(-1)!) as { seq: number; hash: string };
    expect(JSON.parse(emu.getConfigMap('keyrot', `${name}-anchor`)!.data['anchors.json']!).audit).toEqual({ seq: last.seq, head: last.hash });
    expect(Object.values(state()).join('\n')).not.toContain(emu.getSecret('keyrot', `${name}-state-key`)!.data['state.key']);

    // Whoever may update the state ConfigMap cuts the audit log short: history names the anchor.
    emu.seedConfigMap('keyrot', `${name}-state`, { ...state(), 'audit.ndjson': audit.slice(0, -1).join('\n') + '\n' });
    const cut = await cli(['history'], env);
    expect(cut.code).toBe(1);
    expect(cut.stderr).toContain(`[anchor]: the log ends at seq ${last.seq - 1} but the anchor (ConfigMap keyrot/${name}-anchor) says ${last.seq}`);
    emu.seedConfigMap('keyrot', `${name}-state`, { ...state(), 'audit.ndjson': audit.join('\n') + '\n' });
    expect((await cli(['history'], env)).code).toBe(0);

    // ... or forges the journal's word that the pending revocation was done and a new rotation verified.
    const journal = state()['journal.production.ndjson']!.split('\n').filter(Boolean);
    const end = JSON.parse(journal.at(-1)!) as Record<string, unknown>;
    const forged = JSON.stringify({ ...end, kid: undefined, mac: undefined, step: 'revoke', outcome: 'ok', detail: 'confirmed by the operator' });
    emu.seedConfigMap('keyrot', `${name}-state`, { ...state(), 'journal.production.ndjson': [...journal, forged].join('\n') + '\n' });
    const revoke = await cli(['revoke', '--yes'], env);
    expect(revoke.code).toBe(1);
    expect(revoke.stderr).toContain('refusing to act on the journal of "production": it fails authentication');
  }, 90_000);
});
