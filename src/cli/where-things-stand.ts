import { latestStanding, replay } from '../machine/state.ts';
import { readJournal } from '../state/journal.ts';
import type { CommandContext } from './context.ts';
import { keyrotCommand as nextCommand } from '../render/command.ts';

/** The journal's length before the command ran: what the command itself wrote is what follows. */
export async function journalMark(ctx: CommandContext, env: string): Promise<number> {
  return (await readJournal(ctx.state, env)).length;
}

export interface StandingOptions {
  /** The command that was interrupted; `revoke` only ever asks about a rotation awaiting revocation. */
  command: 'rotate' | 'emergency' | 'revoke';
  /** emergency --revoke-first: the old key was revoked before anything was written. */
  revokedFirst?: boolean;
}

/**
 * Where an interrupted command left the environment, in one line, read from the journal (the
 * record `resume` and `revoke` work from), so the line is true whatever step was running.
 */
export async function whereThingsStand(ctx: CommandContext, env: string, mark: number, o: StandingOptions): Promise<string> {
  const events = await readJournal(ctx.state, env);
  const all = replay(events);
  const latest = all[all.length - 1];
  const changed = events.length !== mark;
  const cmd = (...args: string[]) => `\`${nextCommand(ctx.flags, ...args, '-e', env)}\``;
  if (latest && latest.outcome === undefined) {
    return `${changed ? '' : 'nothing was written; '}the rotation is resumable: ${cmd('resume')}`;
  }
  const standing = latestStanding(all);
  if (standing?.outcome === 'awaiting-revocation' && (changed || o.command === 'revoke')) {
    const also = standing.alsoRevoke.length;
    const old = `${standing.oldHint ?? 'the old key'} (${standing.oldFingerprint ?? 'fingerprint unknown'})${also ? ` and ${also} other retired key${also > 1 ? 's' : ''}` : ''}`;
    return `every target holds the new key; the rotation awaits revocation: revoke the old key ${old}, then run ${cmd('revoke')}`;
  }
  if (changed && latest?.outcome) return `rotation ${latest.id} ended ${latest.outcome}: ${cmd('status')} shows where things stand`;
  if (o.revokedFirst) {
    return `nothing was written, but the old key was revoked first: apps still using it are failing; run ${cmd(o.command)} again now`;
  }
  return 'nothing was written';
}
