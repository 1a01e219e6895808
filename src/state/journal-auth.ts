import { EXIT, ExitError } from '../core/errors.ts';
import type { JournalEvent } from './journal.ts';
import { afterJournalAppend, failpoint, journalEventsUntilFailpoint } from '../runtime/failpoints.ts';
import { GroupCommit } from './group-commit.ts';
import { checkLines, lastMac, ranges, sealAfter, unseal, type LineStatus } from './seal.ts';
import { stateOf, type StateRef, type StateStore } from './store.ts';
import { advanceAnchor } from './trust.ts';

/**
 * The journal's authentication: every line is sealed (seal.ts) when `Journal.append` writes it,
 * and read back through `verifyJournal` (per-line status) or `readVerifiedJournal` (the events, or
 * a refusal). resume and revoke act on what the journal says, so a line that fails is refused:
 * otherwise anyone who can write the state could forge "verified" events.
 */

const stream = (env: string) => `journal:${env}`;

/** Per store and environment: the group commit of its journal, and the tail it last wrote. */
interface JournalWriter {
  group: GroupCommit<string>;
  /** The file's lines as of our last commit: their count, the last one, how many are sealed, the last MAC. */
  tail?: { length: number; last: string | undefined; sealed: number; mac: string };
}
const writers = new WeakMap<StateStore, Map<string, JournalWriter>>();

/**
 * Appends one journal event (its JSON text) sealed under the state key; it is durable when this
 * resolves. Events appended while a commit is in flight are sealed in order and committed
 * together (group-commit.ts): one write, one fsync, one anchor move for all of them.
 */
export async function appendSealedJournalLine(state: StateRef, env: string, body: string): Promise<void> {
  const store = await stateOf(state);
  let perEnv = writers.get(store);
  if (!perEnv) writers.set(store, (perEnv = new Map()));
  let w = perEnv.get(env);
  if (!w) {
    const writer: JournalWriter = { group: new GroupCommit((bodies) => commitSealed(store, env, bodies, writer)) };
    perEnv.set(env, (w = writer));
  }
  await w.group.add(body);
}

/** The bodies of one group, committed together; a `journal:N` crash point cuts the group at its Nth event. */
async function commitSealed(store: StateStore, env: string, bodies: string[], w: JournalWriter): Promise<void> {
  for (let i = 0; i < bodies.length; ) {
    const n = journalEventsUntilFailpoint(bodies.length - i);
    await commitChunk(store, env, bodies.slice(i, i + n), w);
    i += n;
  }
}

/** One commit: the bodies sealed in order, each chained to the one before, then the anchor moved to the last. */
async function commitChunk(store: StateStore, env: string, bodies: string[], w: JournalWriter): Promise<void> {
  const key = (await store.trust.key(true))!;
  let head = { n: 0, mac: '' };
  let tail: JournalWriter['tail'];
  await store.appendJournalLine(env, (lines) => {
    let { sealed, mac } = tailOf(lines, w);
    const out: string[] = [];
    for (const body of bodies) {
      const s = sealAfter(key, stream(env), mac, body);
      out.push(s.line);
      mac = s.mac;
      sealed++;
    }
    head = { n: sealed, mac };
    tail = { length: lines.length + out.length, last: out.at(-1), sealed, mac };
    return out.join('\n');
  });
  w.tail = tail;
  // Before anything else can run (the next queued line, the anchor): a crash right here is the
  // harshest "after event N", a durable line with its anchor one behind.
  for (let i = 0; i < bodies.length; i++) afterJournalAppend();
  // Crash tests: killed right after a commit that grouped several events is durable (before the anchor moves).
  if (bodies.length > 1) failpoint('after-group-commit');
  await advanceAnchor(store.trust, { journal: { env, ...head } });
}

/** How many of `lines` are sealed and the last MAC: from our last commit when the file ends where it left it. */
function tailOf(lines: string[], w: JournalWriter): { sealed: number; mac: string } {
  const t = w.tail;
  if (t && t.length === lines.length && t.last === lines.at(-1)) return { sealed: t.sealed, mac: t.mac };
  return { sealed: lines.filter((l) => unseal(l)).length, mac: lastMac(lines) };
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
