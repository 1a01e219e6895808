import { waitTimeoutMs } from '../types.ts';
import { Secret, fingerprint } from '../../core/secret.ts';
import { TargetError, toTargetError } from '../../core/errors.ts';
import { poll } from '../../runtime/poll.ts';
import { formatDuration } from '../../inventory/duration.ts';
import type { CommonTargetConfig, OpContext, PreflightResult, ReadResult, RedeployPurpose, Target, TargetContext, VerifyResult } from '../types.ts';
import type { VercelConfig, VercelReceipt } from './index.ts';
import { VercelApi, type Deployment, type EnvEntry, type EnvTarget } from './api.ts';

/**
 * Vercel project environment variables over the REST API with plain fetch (httpJson): the
 * official @vercel/sdk takes ~1.6 s to import and its response schemas reject shapes the API
 * really sends (vercel/sdk#104; README "Provider facts"), so keyrot speaks the few routes it needs itself.
 * Routes and shapes: vercel/sdk 1.28.21 (@426eb4b) src/funcs/projects{FilterProjectEnvs,
 * GetProjectEnv,EditProjectEnv,CreateProjectEnv,RemoveProjectEnv}.ts, deployments{GetDeployments,
 * CreateDeployment,GetDeployment}.ts; the redeploy body is the one `vercel redeploy` sends
 * (vercel/vercel packages/cli/src/commands/redeploy/index.ts).
 *
 * Requests: the env list does not return values (`decrypt=true` is ignored: vercel/sdk#118, where
 * Vercel support advises reading each variable by id), so values are read entry by entry. The
 * write uses what preflight just read (once), and verify reads back the entries the receipt names
 * (their targets prove the coverage), without listing the project again.
 */

/** readyStates of a deployment that never served traffic and never will by itself. */
const NEVER_LIVE: readonly string[] = ['ERROR', 'CANCELED', 'BLOCKED'];
const NOT_RETRYABLE = { retryable: false } as const;

/** Orders entries so the one serving production is read first. */
function rank(e: EnvEntry): number {
  return e.target.includes('production') ? 0 : e.target.includes('preview') ? 1 : 2;
}

/** Marks an entry keyrot created during a rotation, so a resumed restore can find and remove it. */
function creationMarker(rotationId: string): string {
  return `created by keyrot rotation ${rotationId}`;
}

/** The receipt's `id@updatedAt` stamps, by entry id. */
function stampsOf(receipt: VercelReceipt | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of receipt?.stamps ?? []) {
    const at = s.lastIndexOf('@');
    if (at > 0) out.set(s.slice(0, at), Number(s.slice(at + 1)));
  }
  return out;
}

/** The entries of this key that serve the configured targets, and the targets nobody serves. */
interface Selection {
  covering: EnvEntry[];
  uncovered: EnvTarget[];
  branchOnly: number;
}

/** An entry read by id, with its value (null: sensitive, Vercel never returns it). */
interface EntryRead {
  entry: EnvEntry;
  value: string | null;
}

/** What preflight read: the first write uses it instead of reading again. */
interface Observed {
  s: Selection & { projectId: string };
  reads: Map<string, EntryRead>;
}

/** What one write has done so far, turned into the receipt at the end. */
interface WriteLog {
  entries: string[];
  patched: string[];
  created: string[];
  stamps: string[];
  sensitive: boolean;
}

export function createVercelTarget(config: VercelConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target<VercelReceipt> {
  return new VercelTarget(config, ctx);
}

/** One variable of one Vercel project, in the configured targets (production, preview, development). */
class VercelTarget implements Target<VercelReceipt> {
  readonly id = 'vercel' as const;
  readonly name: string;
  readonly location: string;
  readonly lockKey: string;
  readonly rateLimitKey: string;
  /** Present when the config asks for it (redeploy: true, with production): after writes and restores. */
  readonly redeploy?: (op: OpContext, receipt: VercelReceipt | undefined, purpose?: RedeployPurpose) => Promise<VerifyResult>;

  private readonly api: VercelApi;
  private readonly config: VercelConfig & CommonTargetConfig;
  private readonly ctx: TargetContext & { name: string };
  private readonly varName: string;
  private readonly where: string;
  private readonly wanted: EnvTarget[];
  private readonly timeoutMs: number;
  private readonly redeployOn: boolean;
  /** Sensitive entries this process wrote: entry id → fingerprint and the updatedAt Vercel returned. */
  private readonly written = new Map<string, { fingerprint: string; updatedAt: number }>();
  /** Per rotation: what each entry held before keyrot touched it (undefined = unreadable). */
  private readonly before = new Map<string, Map<string, string | undefined>>();
  /** Per rotation: the deployment keyrot triggered. */
  private readonly triggered = new Map<string, string>();
  /** What preflight read (entries, and the values of the covering ones), for the first write. */
  private observed: Observed | undefined;

  constructor(config: VercelConfig & CommonTargetConfig, ctx: TargetContext & { name: string }) {
    this.config = config;
    this.ctx = ctx;
    this.name = ctx.name;
    this.varName = ctx.varName;
    this.api = new VercelApi(config, ctx);
    this.where = this.api.where;
    this.wanted = [...new Set<EnvTarget>(config.targets ?? ['production'])];
    this.timeoutMs = waitTimeoutMs(config.timeout, 20 * 60_000);
    this.redeployOn = config.redeploy === true && this.wanted.includes('production');
    this.location = `${this.where} ${ctx.varName} (${this.wanted.join(', ')})`;
    this.lockKey = `vercel:${config.team ?? ''}/${config.project}/${ctx.varName}`;
    this.rateLimitKey = this.api.rateLimitKey;
    if (this.redeployOn) {
      this.redeploy = (op, receipt, purpose = 'write') => (purpose === 'restore' ? this.redeployRestored(op, receipt) : this.redeployWritten(op, receipt));
    }
  }

  private select(entries: EnvEntry[]): Selection {
    const mine = entries.filter((e) => e.key === this.varName);
    // Branch-specific preview entries and custom-environment-only entries are other variables
    // as far as the configured targets go: never touched.
    const general = mine.filter((e) => !e.gitBranch && e.target.length > 0);
    const covering = general.filter((e) => e.target.some((t) => this.wanted.includes(t))).sort((a, b) => rank(a) - rank(b));
    const covered = new Set(covering.flatMap((e) => e.target));
    return { covering, uncovered: this.wanted.filter((t) => !covered.has(t)), branchOnly: mine.length - general.length };
  }

  private async selection(op: string): Promise<Selection & { projectId: string; projectName: string }> {
    const p = await this.api.project(op);
    return { ...this.select(await this.api.listEntries(op, p.id)), projectId: p.id, projectName: p.name };
  }

  private checkTypes(covering: EnvEntry[], op: string): void {
    for (const e of covering) {
      if (e.type === 'secret' || e.type === 'system') {
        throw this.api.fail(
          `${this.where}: ${this.varName} entry ${e.id} (${e.target.join(', ')}) is of type "${e.type}", which keyrot cannot write: re-create it as a sensitive or encrypted variable`,
          'unsupported',
          op,
        );
      }
    }
  }

  /** Each covering entry with its value (null: sensitive, Vercel never returns it). */
  private async values(op: string, projectId: string, covering: EnvEntry[]): Promise<Array<{ e: EnvEntry; value: string | null; read: EntryRead }>> {
    const values: Array<{ e: EnvEntry; value: string | null; read: EntryRead }> = [];
    for (const e of covering) {
      const read = await this.api.readEntry(op, projectId, e.id);
      values.push({ e, value: read.value, read });
    }
    return values;
  }

  async preflight(): Promise<PreflightResult> {
    if (this.config.redeploy && !this.wanted.includes('production')) {
      return {
        status: 'blocked',
        reason: `${this.where}: redeploy: true redeploys production, but targets is ${this.wanted.join(', ')}; add production or drop redeploy`,
        current: { kind: 'absent' },
      };
    }
    try {
      // The project read doubles as the credential check: a bad token is a bare 403 "Not authorized",
      // a token without the team is "Not authorized: Trying to access resource under scope …"
      // (/v2/user is not used: a team- or project-scoped token need not be allowed to read it).
      const s = await this.selection('preflight');
      this.checkTypes(s.covering, 'preflight');
      const values = await this.values('preflight', s.projectId, s.covering);
      const notes = [...this.changeNotes(s, values), this.verifyNote(values), await this.redeployNote(s.projectId)];
      const hidden = values.find((v) => v.value === null);
      const current: ReadResult =
        s.covering.length === 0
          ? { kind: 'absent' }
          : hidden
            ? { kind: 'unreadable', reason: `${this.varName} entry ${hidden.e.id} is sensitive: Vercel never returns its value` }
            : values[0]!.value
              ? { kind: 'value', value: new Secret(values[0]!.value!) }
              : { kind: 'absent' };
      this.observed = { s, reads: new Map(values.map((v) => [v.e.id, v.read])) };
      return { status: 'ready', current, willCreate: s.uncovered.length > 0, notes } satisfies PreflightResult;
    } catch (e) {
      const err = toTargetError(e, this.name, 'preflight');
      // Transient (429, 5xx, timeout): not an answer; the engine retries it, bounded.
      if (err.retryable) throw err;
      return { status: 'blocked', reason: err.message, current: { kind: 'unreadable', reason: err.message } };
    }
  }

  /** Plan notes: which entries change, which are created, which are left alone. */
  private changeNotes(s: Selection, values: Array<{ e: EnvEntry; value: string | null }>): string[] {
    const { varName } = this;
    const notes: string[] = [];
    for (const { e } of values) {
      const extra = e.target.filter((t) => !this.wanted.includes(t));
      notes.push(`updates ${varName} entry ${e.id} (${e.type}, ${e.target.join(' + ')})${extra.length ? `: it also serves ${extra.join(', ')}, which gets the new key too` : ''}`);
    }
    const anySensitive = s.covering.some((e) => e.type === 'sensitive');
    if (s.uncovered.length) {
      const type = anySensitive && !s.uncovered.includes('development') ? 'sensitive' : 'encrypted';
      notes.push(`creates a new ${type} ${varName} entry for ${s.uncovered.join(', ')} (no entry covers ${s.uncovered.length > 1 ? 'them' : 'it'} yet)`);
    }
    if (s.branchOnly) notes.push(`${s.branchOnly} branch-specific or custom-environment ${varName} entr${s.branchOnly > 1 ? 'ies are' : 'y is'} left unchanged`);
    const distinct = new Set(values.filter((v) => v.value !== null).map((v) => v.value));
    if (distinct.size > 1) notes.push(`the covered entries disagree today (${distinct.size} different values): all get the new key`);
    return notes;
  }

  private verifyNote(values: Array<{ value: string | null }>): string {
    if (!values.some((v) => v.value === null)) return 'verified by reading the decrypted value back';
    return this.redeployOn
      ? 'sensitive: Vercel never returns the value; verified by metadata (the entry’s updatedAt after keyrot’s write), then by the production redeploy reaching READY'
      : 'sensitive: Vercel never returns the value; verified by metadata only (the entry’s updatedAt after keyrot’s write): set redeploy: true to prove it through a deployment';
  }

  private async redeployNote(projectId: string): Promise<string> {
    if (!this.redeployOn) return 'no redeploy: running deployments keep the old key until the next deployment (set redeploy: true), so revoke the old key only after one';
    const [latest] = await this.api.productionDeployments('preflight', projectId, { state: 'READY', limit: '1' });
    return latest
      ? `then redeploys the latest production deployment (${latest.id}) and waits up to ${formatDuration(this.timeoutMs)} for READY`
      : 'redeploy: true, but the project has no READY production deployment: nothing to redeploy, the next deployment uses the new key';
  }

  async read(): Promise<ReadResult> {
    const s = await this.selection('read');
    if (s.covering.length === 0) return { kind: 'absent' };
    const values = await this.values('read', s.projectId, s.covering);
    const hidden = values.find((v) => v.value === null);
    if (hidden) {
      return { kind: 'unreadable', reason: `${this.varName} entry ${hidden.e.id} (${hidden.e.target.join(', ')}) is sensitive: Vercel never returns its value` };
    }
    const v = values[0]!.value!;
    return v ? { kind: 'value', value: new Secret(v) } : { kind: 'absent' };
  }

  async write(value: Secret, op: OpContext): Promise<VercelReceipt> {
    // Preflight's reads, once (a retry reads again: the first attempt may have changed entries).
    const seen = this.observed;
    this.observed = undefined;
    const s = seen?.s ?? (await this.selection('write'));
    this.checkTypes(s.covering, 'write');
    const log: WriteLog = { entries: [], patched: [], created: [], stamps: [], sensitive: false };
    for (const e of s.covering) await this.writeEntry(e, s.projectId, value, op, log, seen?.reads.get(e.id));
    if (s.uncovered.length) await this.createFor(s.uncovered, s.projectId, value, op, log);
    const times = log.stamps.map((st) => Number(st.slice(st.lastIndexOf('@') + 1)));
    const { entries, patched, created, stamps, sensitive } = log;
    return { project: s.projectId, entries, patched, created, stamps, writtenAt: times.length ? Math.max(...times) : null, sensitive };
  }

  /** Puts the new key in one covering entry, unless it provably holds it already. */
  private async writeEntry(e: EnvEntry, projectId: string, value: Secret, op: OpContext, log: WriteLog, known?: EntryRead): Promise<void> {
    const marker = creationMarker(op.rotationId);
    const prior = this.priorOf(op.rotationId);
    // An entry this rotation created on an earlier attempt: already ours, restore removes it.
    if (e.comment === marker) log.created.push(e.id);
    else log.entries.push(e.id);
    const { entry, value: current } = known ?? (await this.api.readEntry('write', projectId, e.id));
    if (entry.type === 'sensitive') log.sensitive = true;
    // What the entry held before this rotation: recorded only when it does not hold the new key
    // yet (a resumed write must not mistake the new key for the old one).
    if (!prior.has(e.id) && e.comment !== marker && current !== value.reveal()) prior.set(e.id, current ?? undefined);
    if (current !== null) {
      if (current === value.reveal()) return; // idempotent: already the new key
    } else {
      // Write-only: skip only when this process wrote this very key and nobody changed it since.
      const w = this.written.get(e.id);
      if (w && w.fingerprint === value.fingerprint && w.updatedAt === entry.updatedAt) {
        log.stamps.push(`${e.id}@${w.updatedAt}`);
        return;
      }
    }
    const updatedAt = await this.api.patchValue('write', projectId, e.id, value.reveal());
    this.written.set(e.id, { fingerprint: value.fingerprint, updatedAt });
    log.patched.push(e.id);
    log.stamps.push(`${e.id}@${updatedAt}`);
  }

  /** Creates one entry for the targets no entry serves yet, marked with the rotation. */
  private async createFor(uncovered: EnvTarget[], projectId: string, value: Secret, op: OpContext, log: WriteLog): Promise<void> {
    // Keep the user's choice: a key kept sensitive elsewhere is created sensitive too
    // (not allowed for development: docs sensitive-environment-variables).
    const type = log.sensitive && !uncovered.includes('development') ? 'sensitive' : 'encrypted';
    const made = await this.api.createEntry(projectId, { key: this.varName, value: value.reveal(), type, target: uncovered, comment: creationMarker(op.rotationId) });
    log.created.push(made.id);
    const updatedAt = made.updatedAt ?? this.ctx.clock.now();
    if (type === 'sensitive') log.sensitive = true;
    this.written.set(made.id, { fingerprint: value.fingerprint, updatedAt });
    log.stamps.push(`${made.id}@${updatedAt}`);
  }

  private priorOf(rotationId: string): Map<string, string | undefined> {
    let m = this.before.get(rotationId);
    if (!m) this.before.set(rotationId, (m = new Map()));
    return m;
  }

  async verify(value: Secret, _op: OpContext, receipt: VercelReceipt | undefined): Promise<VerifyResult> {
    const s = await this.entriesToVerify(receipt);
    if (s.uncovered.length) {
      throw this.api.fail(`${this.where}: no ${this.varName} entry serves ${s.uncovered.join(', ')} after the write`, 'mismatch', 'verify', NOT_RETRYABLE);
    }
    const stamps = stampsOf(receipt);
    let metadata = 0;
    for (const r of s.covering) if (this.verifyEntry(r, value, stamps) === 'metadata') metadata++;
    const { varName, where } = this;
    if (metadata === 0) return { method: 'read-back', detail: `${s.covering.length} ${varName} entr${s.covering.length > 1 ? 'ies' : 'y'} of ${where} hold the new key` };
    return {
      method: 'metadata',
      detail: `${metadata} sensitive ${varName} entr${metadata > 1 ? 'ies' : 'y'} of ${where} unchanged since keyrot’s write (updatedAt); the value cannot be read back${this.redeployOn ? ', the redeploy proves it' : ''}`,
    };
  }

  /** Proves one entry holds the new key: read back, or (sensitive) unchanged since keyrot's write. */
  private verifyEntry({ entry: e, value: current }: EntryRead, value: Secret, stamps: Map<string, number>): 'read-back' | 'metadata' {
    const label = `${this.varName} entry ${e.id} (${e.target.join(', ')})`;
    const mismatch = (message: string) => this.api.fail(message, 'mismatch', 'verify', NOT_RETRYABLE);
    if (current !== null) {
      if (current === value.reveal()) return 'read-back';
      const found = current ? `a different key (${fingerprint(current)})` : 'an empty value';
      throw mismatch(`read-back mismatch: ${label} of ${this.where} holds ${found}, not the new key (${value.fingerprint})`);
    }
    // Sensitive: the value is write-only, so the proof is that the entry is exactly as keyrot's
    // write left it (Vercel stamps updatedAt on every change).
    const mine = this.written.get(e.id);
    const stamp = stamps.get(e.id) ?? (mine?.fingerprint === value.fingerprint ? mine.updatedAt : undefined);
    if (stamp === undefined) throw mismatch(`${label} of ${this.where} is sensitive and keyrot has no record of writing it in this rotation: run the write again`);
    if (e.updatedAt !== stamp) {
      throw mismatch(`${label} of ${this.where} changed after keyrot wrote it (updatedAt ${e.updatedAt ?? 'unknown'}, expected ${stamp}): someone else edited it`);
    }
    return 'metadata';
  }

  /**
   * The entries that must hold the new key, read back with their values, and the targets none of
   * them serves. With a receipt: exactly the entries the write set, each read by id (a deleted
   * one is a 404; their targets prove the coverage). Without one (a crash before the journal kept
   * it): every covering entry of a fresh listing.
   */
  private async entriesToVerify(receipt: VercelReceipt | undefined): Promise<{ covering: EntryRead[]; uncovered: EnvTarget[] }> {
    const ids = receipt ? [...receipt.entries, ...receipt.created] : [];
    if (!ids.length) {
      const s = await this.selection('verify');
      return { covering: (await this.values('verify', s.projectId, s.covering)).map((v) => v.read), uncovered: s.uncovered };
    }
    const p = await this.api.project('verify');
    const reads: EntryRead[] = [];
    for (const id of ids) reads.push(await this.api.readEntry('verify', p.id, id));
    const mine = reads.filter((r) => r.entry.key === this.varName && !r.entry.gitBranch);
    const served = new Set(mine.flatMap((r) => r.entry.target));
    return { covering: mine, uncovered: this.wanted.filter((t) => !served.has(t)) };
  }

  private async redeployWritten(op: OpContext, receipt: VercelReceipt | undefined): Promise<VerifyResult> {
    const p = await this.api.project('redeploy');
    const d = await this.ensureDeployment('redeploy', p.id, p.name, 'keyrotRotation', op.rotationId, op.signal);
    if (!d) return { method: 'metadata', detail: `${this.where} has no READY production deployment: the next deployment uses the new key` };
    // The deployment's environment is taken when it is created: it must postdate the write.
    const writtenAt = receipt?.writtenAt ?? undefined;
    if (writtenAt !== undefined && d.createdAt < writtenAt) {
      throw this.api.fail(`${this.where}: deployment ${d.id} was created before keyrot’s write: it cannot hold the new key`, 'mismatch', 'redeploy', NOT_RETRYABLE);
    }
    return { method: 'redeploy', detail: `production deployment ${d.id} of ${this.where} is READY, built after the write` };
  }

  /**
   * After a restore: production may run the new key if this rotation's redeploy went live, or if
   * any deployment was built after keyrot's write (a deployment takes its environment when it is
   * created); then production is deployed again with the old value back. Read from Vercel (the
   * deployment's meta, its createdAt), so it works after a crash too.
   */
  private async redeployRestored(op: OpContext, receipt: VercelReceipt | undefined): Promise<VerifyResult> {
    const p = await this.api.project('redeploy');
    const recent = await this.api.productionDeployments('redeploy', p.id, { limit: '20' });
    const ours = recent.find((d) => d.meta.keyrotRotation === op.rotationId);
    const [liveNow] = await this.api.productionDeployments('redeploy', p.id, { state: 'READY', limit: '1' });
    const builtAfterWrite = Boolean(liveNow && receipt?.writtenAt != null && liveNow.createdAt >= receipt.writtenAt);
    if (!builtAfterWrite && !(ours && (await this.wentLive(ours, op.signal)))) {
      return { method: 'redeploy', detail: `no deployment of ${this.where} ran the new key: production still runs the old value` };
    }
    const d = await this.ensureDeployment('redeploy', p.id, p.name, 'keyrotRestore', op.rotationId, op.signal);
    return { method: 'redeploy', detail: `production deployment ${d?.id ?? '?'} of ${this.where} is READY with the old value back` };
  }

  /** Did this deployment serve traffic (READY, or READY once it settles)? ERROR/CANCELED/BLOCKED never did. */
  private async wentLive(d: Deployment, signal?: AbortSignal): Promise<boolean> {
    if (NEVER_LIVE.includes(d.readyState)) return false;
    if (d.readyState === 'READY') return true;
    await this.watch('redeploy', d.id, signal).catch((err: unknown) => {
      if (!(err instanceof TargetError && err.kind === 'unavailable')) throw err;
    });
    return (await this.api.deployment('redeploy', d.id, signal)).readyState === 'READY';
  }

  /**
   * Makes sure a production deployment carrying `marker` exists and is READY: reuses one this
   * rotation already started (meta marker, so a retried or resumed call never deploys twice),
   * else redeploys the latest READY production deployment (`forceNew=1` so it is not
   * deduplicated to the old one). Returns null when the project has nothing in production.
   */
  private async ensureDeployment(op: string, projectId: string, projectName: string, marker: string, rotationId: string, signal?: AbortSignal): Promise<Deployment | null> {
    let id = this.triggered.get(`${marker}:${rotationId}`);
    if (!id) {
      const recent = await this.api.productionDeployments(op, projectId, { limit: '20' });
      const ours = recent.find((d) => d.meta[marker] === rotationId && !NEVER_LIVE.includes(d.readyState));
      if (ours) id = ours.id;
    }
    if (!id) {
      const [source] = await this.api.productionDeployments(op, projectId, { state: 'READY', limit: '1' });
      if (!source) return null;
      id = await this.api.redeployProduction(op, projectName, source.id, { [marker]: rotationId }, signal);
      this.triggered.set(`${marker}:${rotationId}`, id);
      this.ctx.logger.info(`${this.name}: redeploying production of ${this.where} (${id} from ${source.id})`);
    }
    return this.watch(op, id, signal);
  }

  /**
   * Polls one deployment until READY; ERROR/CANCELED/BLOCKED or the timeout fail the target.
   * BLOCKED is a readyState of its own (vercel/sdk @426eb4b getdeploymentresponsebody.ts
   * `GetDeploymentResponseBodyDeploymentsReadyState`): the deployment will not build until someone
   * acts on it, so waiting out the timeout would only hide why.
   */
  private watch(op: string, id: string, signal?: AbortSignal): Promise<Deployment> {
    const { where, timeoutMs } = this;
    const ended = (message: string) => this.api.fail(message, 'unavailable', op, NOT_RETRYABLE);
    return poll({
      check: () => this.api.deployment(op, id, signal, `deployment ${id} of ${where}`),
      until: (d) => {
        if (d.readyState === 'BLOCKED') {
          throw ended(
            `${where}: production deployment ${id} is BLOCKED: it will not build until it is unblocked in the Vercel dashboard (for example a commit author without access to the team); the previous deployment keeps serving. Unblock or redeploy it, then resume`,
          );
        }
        if (d.readyState === 'ERROR' || d.readyState === 'CANCELED') {
          throw ended(
            `${where}: production deployment ${id} ended ${d.readyState}${d.errorMessage ? ` (${d.errorMessage})` : ''}; the previous deployment keeps serving. Fix the build in the Vercel dashboard, then resume`,
          );
        }
        return d.readyState === 'READY';
      },
      deadlineMs: timeoutMs,
      clock: this.ctx.clock,
      signal,
      target: this.name,
      op,
      describe: (d) =>
        `${where}: production deployment ${id} is still ${d?.readyState ?? 'unknown'} after ${formatDuration(timeoutMs)}; raise timeout: or check the build in the Vercel dashboard`,
    });
  }

  async restore(previous: Secret | null, op: OpContext, receipt: VercelReceipt | undefined): Promise<void> {
    const s = await this.selection('restore');
    const marker = creationMarker(op.rotationId);
    const prior = this.before.get(op.rotationId);
    const createdIds = new Set<string>([...(receipt?.created ?? []), ...s.covering.filter((e) => e.comment === marker).map((e) => e.id)]);
    // The entries the write set: from the receipt and this process's memory; with neither (a
    // resumed restore after a crash before the journal got the receipt) every covering entry.
    const known = new Set<string>([...(receipt?.entries ?? []), ...(prior?.keys() ?? [])]);
    const trustKnown = receipt !== undefined || prior !== undefined;
    for (const e of s.covering) {
      // keyrot created this entry: nothing served these targets before.
      if (createdIds.has(e.id)) await this.api.deleteEntry('restore', s.projectId, e.id);
      else if (!trustKnown || known.has(e.id)) await this.restoreEntry(e, s.projectId, prior?.get(e.id) ?? previous?.reveal());
    }
  }

  /** Puts `target` back in one entry, unless it provably holds it already. */
  private async restoreEntry(e: EnvEntry, projectId: string, target: string | undefined): Promise<void> {
    if (target === undefined) return; // nothing known to put back: the engine reports it
    const { entry, value: current } = await this.api.readEntry('restore', projectId, e.id);
    if (current !== null && current === target) return;
    if (current === null) {
      const w = this.written.get(e.id);
      if (w && w.fingerprint === fingerprint(target) && w.updatedAt === entry.updatedAt) return;
    }
    const updatedAt = await this.api.patchValue('restore', projectId, e.id, target);
    if (current === null) this.written.set(e.id, { fingerprint: fingerprint(target), updatedAt });
  }
}
