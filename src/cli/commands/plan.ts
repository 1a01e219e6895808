import { isAbsolute, resolve } from 'node:path';
import { closeAll, createTargets } from '../../machine/live-targets.ts';
import { preflightAll } from '../../machine/preflight.ts';
import { latestRotation } from '../../machine/state.ts';
import type { Capabilities, ReadResult } from '../../targets/types.ts';
import { EXIT } from '../../core/errors.ts';
import type { TargetSpec } from '../../inventory/load.ts';
import { commandContext, environment, startReadingCommand, type CommonFlags } from '../context.ts';
import type { Environment } from '../../inventory/load.ts';
import { OPENAI_DEFAULT_ENDPOINT, openaiEndpoint } from '../../keys/kinds.ts';
import { safeUrl } from '../../runtime/http.ts';
import { bold, dim, green, red, yellow } from '../output.ts';
import type { Column } from '../table.ts';
import { plural } from '../../render/plural.ts';
import { keyrotCommand } from '../../render/command.ts';
import { exposureMessage, gitExposures } from '../../scan/git-exposure.ts';
import { discoveryWarnings, planDiscovery } from '../plan-discovery.ts';

const PLAN_COLUMNS: Column[] = [
  { header: '', fit: 'fixed' },
  { header: 'TARGET', min: 12, priority: 2 },
  { header: 'TYPE', min: 8, priority: 1, optional: true },
  { header: 'LOCATION', min: 12, priority: 0 },
  // A hint, then its fingerprint: on two lines when the screen is narrow.
  { header: 'CURRENT KEY', fit: 'wrap', min: 15 },
  { header: 'WRITES', min: 10, priority: 3 },
  { header: 'THEN', fit: 'fixed' },
  { header: 'VERIFIED BY', fit: 'fixed' },
];

export interface PlanTarget {
  name: string;
  type: string;
  location: string;
  status: 'ready' | 'blocked';
  reason?: string;
  current: { hint: string; fingerprint: string } | 'absent' | 'unreadable';
  writes: string;
  willCreate: boolean;
  redeploy: boolean;
  verification: 'read-back' | 'metadata' | 'redeploy';
  /** Where the target's credentials go, when that is not the provider's public endpoint. */
  endpoint?: string;
  notes: string[];
  /** Risks that do not block the rotation (a key file others can read, temp files a crash left). */
  warnings: string[];
}

/** How a rotation will prove this target holds the new key. */
function verificationOf(caps: Capabilities, redeploy: boolean, current: ReadResult | undefined): PlanTarget['verification'] {
  // A target not reached says nothing about its value: its declared capability stands.
  const readable = caps.readBack === 'always' || (caps.readBack === 'per-value' && current?.kind !== 'unreadable');
  return readable ? 'read-back' : redeploy ? 'redeploy' : 'metadata';
}


/**
 * The endpoint a target talks to when it is not the provider's public one: from `endpoint:`, or
 * from a variable the provider's client reads (AWS_ENDPOINT_URL...). That host receives the
 * target's credentials, so plan names it (targets.yaml is code: README "Security model").
 */
export function nonDefaultEndpoint(spec: TargetSpec, env: NodeJS.ProcessEnv): { url: string; from: string } | undefined {
  const ep = spec.definition.endpoint;
  const variable = spec.config.endpoint ? undefined : ep?.env?.find((v) => env[v]);
  const raw = spec.config.endpoint ?? (variable ? env[variable] : undefined);
  if (!raw || (ep?.default && trimSlash(raw) === trimSlash(ep.default))) return undefined;
  return { url: /^https?:\/\//i.test(raw) ? safeUrl(raw) : raw, from: variable ?? 'endpoint:' };
}

const trimSlash = (u: string) => u.trim().replace(/\/+$/, '').toLowerCase();

function localPath(spec: TargetSpec, baseDir: string): string | undefined {
  const p = spec.definition.localFile?.(spec.config);
  if (!p) return undefined;
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

/** Per target (in order): the warning when its local secret file could be committed to git. */
async function localExposures(env: Environment, baseDir: string): Promise<Array<string | undefined>> {
  const paths = env.targets.map((s) => localPath(s, baseDir));
  const found = await gitExposures(paths.filter((p): p is string => p !== undefined));
  return paths.map((p) => {
    const e = p === undefined ? undefined : found.get(p);
    return p && e ? exposureMessage(p, e) : undefined;
  });
}

/** The OpenAI endpoints of the environment that are not the public API (the live check's, the Admin API's). */
function openaiEndpoints(env: Environment, admin: string | undefined, processEnv: NodeJS.ProcessEnv) {
  const found: Array<{ what: string; url: string; from: string; receives: string }> = [];
  if (env.key.kind === 'openai' && env.key.verify) {
    const url = openaiEndpoint(env.key.endpoint, processEnv);
    const from = env.key.endpoint ? 'key.endpoint' : 'OPENAI_BASE_URL';
    if (url !== OPENAI_DEFAULT_ENDPOINT) found.push({ what: 'live check', url: safeUrl(url), from, receives: 'the new key' });
  }
  if (admin && trimSlash(admin) !== trimSlash(OPENAI_DEFAULT_ENDPOINT)) {
    found.push({ what: 'Admin API', url: safeUrl(admin), from: 'key.admin.endpoint', receives: 'the admin key' });
  }
  return found;
}

export async function plan(flags: CommonFlags & { discover?: boolean }): Promise<number> {
  startReadingCommand('plan', flags);
  const ctx = await commandContext(flags);
  const env = environment(ctx);
  const out = ctx.out;
  const rt = { inventory: ctx.inventory, env, processEnv: ctx.processEnv, clock: ctx.clock, logger: ctx.logger };
  out.info(dim(`Checking ${plural(env.targets.length, 'target')} of "${env.name}" read-only...`, out.color));
  const targets = await createTargets(rt);
  try {
    const [pf, exposures, last, lock] = await Promise.all([
      preflightAll(targets, { clock: ctx.clock }),
      localExposures(env, ctx.inventory.baseDir),
      latestRotation(ctx.state, env.name),
      ctx.state.readLock(env.name),
    ]);
    const rows: PlanTarget[] = targets.map((lt, i) => {
      const p = pf.get(lt.spec.name)!;
      const caps = lt.spec.definition.capabilities;
      const redeploy = Boolean(lt.target?.redeploy);
      const notes = [...(p.notes ?? [])];
      if (exposures[i]) notes.push(exposures[i]!);
      const endpoint = nonDefaultEndpoint(lt.spec, ctx.processEnv);
      if (endpoint) {
        const usual = lt.spec.definition.endpoint?.default;
        notes.push(`talks to ${endpoint.url} (${endpoint.from}), ${usual ? `not ${usual}` : "not the provider's public endpoint"}: that host receives this target's credentials`);
      }
      return {
        name: lt.spec.name,
        type: lt.spec.type,
        location: lt.target?.location ?? lt.spec.definition.describe(lt.spec.config),
        status: p.status,
        reason: p.reason,
        current: p.current.kind === 'value' ? { hint: p.current.value.hint, fingerprint: p.current.value.fingerprint } : p.current.kind,
        writes: lt.spec.config.var ?? env.key.name,
        willCreate: Boolean(p.willCreate),
        redeploy,
        verification: verificationOf(caps, redeploy, p.status === 'ready' ? p.current : undefined),
        ...(endpoint ? { endpoint: endpoint.url } : {}),
        notes,
        warnings: p.warnings ?? [],
      };
    });
    const fps = new Set(rows.flatMap((r) => (typeof r.current === 'object' ? [r.current.fingerprint] : [])));
    const drift = fps.size > 1;
    const problems: string[] = [];
    const blocked = rows.filter((r) => r.status !== 'ready');
    if (blocked.length) problems.push(`${blocked.length} of ${plural(rows.length, 'target')} ${blocked.length === 1 ? 'is' : 'are'} not ready: a rotation would write nothing`);
    const exposed = exposures.filter(Boolean).length;
    if (exposed) problems.push(`${plural(exposed, 'local secret file')} could be committed to git`);
    const warnings: string[] = [];
    // Drift is what a rotation fixes (every key held is named for revocation): `rotate` goes
    // ahead with it, so the plan warns rather than calling it not ready.
    if (drift) warnings.push(`drift: targets hold ${fps.size} different keys (${[...fps].join(', ')}); a rotation gives them all the new key and names every old one for revocation`);
    // `keyrot rotate` refuses in both cases: the plan is not ready either.
    if (last && last.outcome === undefined) problems.push(`rotation ${last.id} was interrupted: run \`${keyrotCommand(ctx.flags, 'resume', '-e', env.name)}\` (or --rollback) before rotating`);
    if (last?.outcome === 'awaiting-revocation') problems.push(`rotation ${last.id} awaits revocation of ${last.oldHint} (${last.oldFingerprint}): revoke it, then \`${keyrotCommand(ctx.flags, 'revoke', '-e', env.name)}\` before rotating`);
    if (lock) {
      warnings.push(
        `locked by pid ${lock.pid} on ${lock.host} since ${lock.at} (${lock.command ?? 'keyrot'})${ctx.state.isStale(lock) ? ': stale, its process is gone' : ''}`,
      );
    }
    // --no-discover skips the pass (commander leaves `discover` true or unset without it).
    const discovered = flags.discover === false ? undefined : await planDiscovery(ctx, env, targets, pf);
    warnings.push(...discoveryWarnings(ctx, env, discovered));
    const keySource = env.keySource;
    const keyEndpoints = openaiEndpoints(env, ctx.inventory.config.key.admin?.endpoint, ctx.processEnv);

    if (out.json) {
      out.result({ env: env.name, keySource, keyName: env.key.name, ...(keyEndpoints.length ? { keyEndpoints } : {}), drift, problems, warnings, targets: rows, ...(discovered ? { discovered } : {}) });
    } else {
      const c = out.color;
      const lines = [bold(`Plan for "${env.name}"`, c) + dim(`  (${ctx.configPath})`, c), ''];
      const t = rows.map((r) => [
        r.status === 'ready' ? green('✓', c) : red('✗', c),
        r.name,
        r.type,
        r.location,
        typeof r.current === 'object'
          ? `${r.current.hint} ${dim(r.current.fingerprint, c)}`
          : r.status !== 'ready'
            ? dim('(unknown)', c)
            : r.current === 'absent'
              ? dim('(none)', c)
              : dim('(write-only)', c),
        r.willCreate ? `${r.writes} (new)` : r.writes,
        r.redeploy ? 'redeploy + wait' : '—',
        r.verification,
      ]);
      lines.push(out.table(PLAN_COLUMNS, t));
      for (const r of rows) {
        if (r.reason) lines.push(red(`  ✗ ${r.name}: ${r.reason}`, c));
        for (const n of r.notes) lines.push(dim(`  · ${r.name}: ${n}`, c));
        for (const w of r.warnings) lines.push(yellow(`  warning: ${r.name}: ${w}`, c));
      }
      lines.push('', `New key from: ${keySource}${env.key.kind === 'openai' && env.key.verify ? ' (live-checked with GET /models before any write)' : ''}`);
      for (const k of keyEndpoints) lines.push(yellow(`${k.what}: ${k.url} (${k.from}), not ${OPENAI_DEFAULT_ENDPOINT}: that host receives ${k.receives}`, c));
      for (const w of warnings) lines.push(yellow(`warning: ${w}`, c));
      for (const s of discovered?.skipped ?? []) lines.push(dim(`discovery: ${s.provider} not searched: ${s.reason}`, c));
      if (problems.length) lines.push(red(`Not ready: ${problems.join('; ')}.`, c));
      else lines.push(green(`Ready: \`${keyrotCommand(ctx.flags, 'rotate', ...(ctx.flags.env ? ['-e', env.name] : []))}\` would write every target above. Nothing was written.`, c));
      out.human(lines.join('\n'));
    }
    return problems.length ? EXIT.failed : EXIT.ok;
  } finally {
    await closeAll(targets);
  }
}
