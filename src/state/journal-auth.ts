import { EXIT, ExitError } from '../core/errors.ts';
import type { JournalEvent } from './journal.ts';
import { checkLines, ranges, seal, unseal, type LineStatus } from './seal.ts';
import { stateOf, type StateRef, type StateStore } from './store.ts';
import { advanceAnchor } from './trust.ts';
import { afterJournalAppend } from '../runtime/failpoints.ts';

/**
 * The journal's authentication: every line is sealed (seal.ts) when `Journal.append` writes it,
 * and read back through `verifyJournal` (per-line status) or `readVerifiedJournal` (the events, or
 * a refusal). resume and revoke act on what the journal says, so a line that fails is refused:
 * otherwise anyone who can write the state could forge "verified" events.
 */

const stream = (env: string) => `journal:${env}`;

/** Appends one journal event (its JSON text) sealed under the state key, then moves the anchor. */
export async function appendSealedJournalLine(state: StateRef, env: string, body: string): Promise<void> {
  const store = await stateOf(state);
  const key = (await store.trust.key(true))!;
  let head = { n: 0, mac: '' };
  await store.appendJournalLine(env, (lines) => {
    const s = seal(key, stream(env), lines, body);
    head = { n: lines.filter((l) => unseal(l)).length + 1, mac: s.mac };
    return s.line;
  });
  // Before anything else can run (the next queued line, the anchor): a crash right here is the
  // harshest "after event N", a durable line with its anchor one behind.
  afterJournalAppend();
  await advanceAnchor(store.trust, { journal: { env, ...head } });
}

export interface JournalLine {
  line: number;
  status: LineStatus;
  event?: JournalEvent;
  mac?: string;
  problem?: string;
}

export interface VerifiedJournal {
  env: string;
  lines: JournalLine[];
  /** Lines written before authentication (no MAC): accepted, not verifiable. */
  legacy: number[];
  /** What fails, one sentence each; empty when the journal verifies. */
  problems: string[];
  /** The one of `problems` that is the head disagreeing with the anchor. */
  anchorProblem?: string;
}

/** Every line of an environment's journal with its status, and the check of its head against the anchor. */
export async function verifyJournal(state: StateRef, env: string): Promise<VerifiedJournal> {
  const store = await stateOf(state);
  const lines = (await store.readJournalText(env)).split('\n').filter((l) => l.trim());
  const key = lines.some((l) => unseal(l)) ? await store.trust.key(false) : null;
  const checked = checkLines(lines, key, stream(env), store.trust.keyWhere);
  const out: JournalLine[] = checked.map((c) => ({ line: c.line, status: c.status, event: c.value as JournalEvent | undefined, mac: c.mac, problem: c.problem }));
  const problems = checked.filter((c) => c.status === 'bad').map((c) => `line ${c.line} ${c.problem}`);
  const anchorProblem = await checkJournalAnchor(store, env, checked);
  if (anchorProblem) problems.push(anchorProblem);
  return { env, lines: out, legacy: checked.filter((c) => c.status === 'legacy').map((c) => c.line), problems, anchorProblem };
}

async function checkJournalAnchor(store: StateStore, env: string, checked: ReturnType<typeof checkLines>): Promise<string | undefined> {
  const anchored = (await store.trust.anchors.read())?.journals[env];
  if (!anchored) return undefined;
  const sealed = checked.filter((c) => c.mac);
  const at = sealed.findIndex((c) => c.mac === anchored.mac);
  if (at >= 0 && at + 1 === anchored.n) return undefined;
  const where = store.trust.anchors.where;
  if (sealed.length < anchored.n) {
    return `the journal ends at authenticated line ${sealed.length}, but the anchor (${where}) says keyrot wrote ${anchored.n}: lines were removed from its end, or the journal was replaced`;
  }
  return `authenticated line ${anchored.n} is not the one keyrot wrote there (anchor: ${where}): the journal was rewritten`;
}

/** Raised when the state fails authentication: nothing is done on its word. */
export class StateTamperedError extends ExitError {
  constructor(what: string, problems: string[], where: string) {
    super(
      EXIT.failed,
      `refusing to act on ${what}: it fails authentication, so the state may have been tampered with. ` +
        `${problems.slice(0, 5).join('; ')}${problems.length > 5 ? `; and ${problems.length - 5} more` : ''}. ` +
        `Check who can write ${where}, compare with \`keyrot history\` and the audit heads your notifications carried, and restore the state from a backup. ` +
        `If the state key was changed or lost, give keyrot the key that wrote it (state_key).`,
    );
  }
}

/**
 * The events of an environment's journal, authenticated: what the engine (and every reader that
 * acts on the journal) reads. Legacy lines (before authentication) are included; any line that
 * fails, or a head that disagrees with the anchor, is a StateTamperedError.
 */
export async function readVerifiedJournal(state: StateRef, env: string): Promise<JournalEvent[]> {
  const v = await verifyJournal(state, env);
  if (v.problems.length) throw new StateTamperedError(`the journal of "${env}"`, v.problems, (await stateOf(state)).where);
  return v.lines.filter((l) => l.status === 'ok' || l.status === 'legacy').map((l) => l.event!);
}

/** "lines 1–40 were written before authentication: not verifiable", or ''. */
export function legacyNote(numbers: number[], noun: [string, string]): string {
  return numbers.length ? `${ranges(numbers, noun)} ${numbers.length === 1 ? 'was' : 'were'} written before authentication: not verifiable` : '';
}
