import { fingerprint } from '../../core/secret.ts';
import { formatDuration } from '../../inventory/duration.ts';
import { ALL, buildFor, contextsOf, entryFor, labels, listLabel, parseCtx, plural, type Ctx, type EnvVar } from './contexts.ts';

/** What the plan's notes are about: the variable, where it lives, and how this target is configured. */
export interface PlanFacts {
  varName: string;
  siteLabel: string;
  account: string | undefined;
  /** The configured contexts; undefined = following the variable. */
  explicit: Ctx[] | undefined;
  redeployWanted: boolean;
  /** The build keyrot can start for the configured contexts. */
  build: { branch?: string } | undefined;
  timeoutMs: number;
  /** Whether the variable's values are write-only for this target. */
  secret: boolean;
}

/** Plan notes: what changes, what does not, how it is verified. */
export function planNotes(v: EnvVar | undefined, ctxs: Ctx[], f: PlanFacts): string[] {
  const others = contextsOf(v).filter((n) => !ctxs.some((c) => c.name === n));
  const notes: string[] = [];
  if (!f.explicit) notes.push(followedContextNote(v, ctxs, others, f.varName));
  notes.push(
    `changes the ${labels(ctxs)} ${plural(ctxs, 'value', 'values')} of ${f.varName} on Netlify site ${f.siteLabel} (team ${f.account}) with ${plural(ctxs, 'a single-context PATCH', 'one single-context PATCH per context')}; ${others.length ? `the ${listLabel(others)} ${plural(others.map(parseCtx), 'value', 'values')} and the other variables are untouched` : 'the other variables are untouched'}`,
  );
  notes.push(redeployNote(ctxs, f));
  notes.push(
    f.secret
      ? `${f.varName} is a Netlify secret (write-only): verified by metadata (each rotated context still has the value keyrot wrote, and the variable is unchanged since keyrot's last write)${f.redeployWanted ? ' and by the new deploy reaching ready' : ''}`
      : `verified by reading the ${labels(ctxs)} ${plural(ctxs, 'value', 'values')} back`,
  );
  const missing = ctxs.filter((c) => !entryFor(v, c));
  if (!v) notes.push(`${f.varName} does not exist on the site: keyrot will create it (not secret, all scopes) with ${plural(ctxs, 'a value', 'values')} for ${labels(ctxs)}, and delete it again on rollback`);
  else if (missing.length) notes.push(`${f.varName} has no ${labels(missing)} value yet: keyrot will add ${plural(missing, 'one', 'them')} (and remove ${plural(missing, 'it', 'them')} again on rollback)`);
  if (v && !f.secret) notes.push(...sameKeyNotes(v, ctxs, others));
  else if (v && f.secret && others.length) {
    notes.push(
      `${listLabel(others)} of secret ${f.varName} ${others.length === 1 ? 'keeps its' : 'keep their'} value; Netlify cannot show whether ${others.length === 1 ? 'it is' : 'they are'} the same key: if so, list ${others.length === 1 ? 'it' : 'them'} in \`context:\` (one target, a list)`,
    );
  }
  return notes;
}

/** Without `context:`: which value keyrot follows, and which contexts keep theirs. */
function followedContextNote(v: EnvVar | undefined, ctxs: Ctx[], others: string[], varName: string): string {
  if (ctxs[0] === ALL) {
    return v && contextsOf(v).length
      ? `\`context:\` not set: ${varName} has one value for all deploy contexts (Netlify's default), so keyrot rotates that value`
      : `\`context:\` not set: keyrot gives ${varName} one value for all deploy contexts (Netlify's default)`;
  }
  const keep = others.length
    ? `; ${listLabel(others)} keep${others.length === 1 ? 's' : ''} ${others.length === 1 ? 'its' : 'their'} value (list the contexts to rotate in \`context:\`, e.g. \`context: [production, ${others[0]}]\`)`
    : '';
  return `\`context:\` not set: ${varName} has separate values per deploy context, so keyrot rotates the production value only${keep}`;
}

function redeployNote(ctxs: Ctx[], f: PlanFacts): string {
  if (!f.redeployWanted) return `no redeploy (redeploy: false): deployed functions keep the old value until the site's next deploy`;
  const b = f.build && buildFor(ctxs);
  const unbuilt = ctxs.filter((c) => !['production', 'all'].includes(c.context) && !(c.context === 'branch' && b?.branch === c.branch));
  const what = b?.branch !== undefined ? `branch deploy of ${b.branch}` : 'production build';
  const rest = b && unbuilt.length ? `; keyrot cannot start ${labels(unbuilt)} deploys: they get the new value when they next build` : '';
  return `then starts a ${what} and waits until its deploy is ready (up to ${formatDuration(f.timeoutMs)})${rest}`;
}

/** Readable values: say when the listed contexts hold different keys, or an unlisted one holds the same key. */
function sameKeyNotes(v: EnvVar, ctxs: Ctx[], others: string[]): string[] {
  const notes: string[] = [];
  const held = ctxs.flatMap((c) => {
    const e = entryFor(v, c);
    return e?.value ? [{ c, fp: fingerprint(e.value) }] : [];
  });
  const fps = new Set(held.map((h) => h.fp));
  if (fps.size > 1) {
    notes.push(
      `the listed contexts hold different keys now (${held.map((h) => `${h.c.label}: ${h.fp}`).join(', ')}): all get the new key and each is restored to its own on rollback; the rotation reports ${held[0]!.fp} as the old key, so revoke the other one(s) yourself`,
    );
  }
  const same = others.filter((n) => {
    const val = entryFor(v, parseCtx(n))?.value;
    return val !== undefined && fps.has(fingerprint(val));
  });
  if (same.length) {
    notes.push(
      `WARNING: ${listLabel(same)} ${same.length === 1 ? 'holds' : 'hold'} the same key but ${same.length === 1 ? 'is' : 'are'} not rotated, and will break when the old key is revoked: add ${same.length === 1 ? 'it' : 'them'} to \`context:\` (one target, a list)`,
    );
  }
  return notes;
}
