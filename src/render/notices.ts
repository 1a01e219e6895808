import type { AlsoRevoke } from '../state/journal.ts';
import type { KeyRef, Notice, RevokeAt } from '../machine/outcome.ts';
import { cmd, keyrotCommand, type CommandFlags } from './command.ts';

/**
 * The words for everything the engine reports (src/machine/outcome.ts). One place, so the CLI, the
 * JSON `messages` and the webhook say the same thing, and every command printed carries the
 * user's -c / --state-dir.
 */

export const key = (k: KeyRef | null | undefined): string => (k ? `${k.hint} (${k.fingerprint})` : '(unknown key)');

export function where(at: RevokeAt): string {
  return at ? `${at.place}: ${at.url}` : "the issuing provider's console";
}

/** " Also revoke sk-...AB12 (fp, held by target x (drift))." — or '' when there is nothing else. */
export function alsoRevokeText(also: AlsoRevoke[]): string {
  return also.length ? ` Also revoke ${also.map((a) => `${a.hint} (${a.fingerprint}, ${a.why})`).join(', ')}.` : '';
}

type Renderers = { [C in Notice['code']]: (n: Extract<Notice, { code: C }>, f: CommandFlags) => string };

const WORDS: Renderers = {
  'preflight-blocked': (n, f) =>
    `Preflight failed for ${n.blocked.length} of ${n.total} targets: nothing was written. Fix the targets above and run again (${cmd(n.next, f)} re-checks without writing).`,
  drift: (n) =>
    `Drift: targets held ${n.fingerprints.length} different keys before this rotation (${n.fingerprints.join(', ')}); all now receive the new key, and each is restored to its own value on failure.`,
  'carried-revocation': (n) => `Rotation ${n.rotation} still awaited the revocation of ${key(n.old)}: it is carried into this rotation's revocation.`,
  'old-key-rejected': (n) =>
    `${n.issuer} already rejects the old key ${n.old.hint} (401): it has been disabled or revoked. Apps still holding it are failing now; the rotation fixes them.`,
  resuming: (n) => `Resuming rotation ${n.rotation}.`,
  stopped: (n, f) =>
    `Stopped on request after the current step; nothing was rolled back. The journal records every completed step: run ${cmd(n.next, f)} (the scheduler does so at its next start). Do not revoke the old key.`,
  'failed-restored': (n) =>
    `The rotation failed (${n.failed.join(', ')}); every target written was restored to the old key. The old key stays valid: do not revoke it. Nothing needs resuming.`,
  'restore-incomplete': (n, f) =>
    n.oldKeyUnknown
      ? `No target holds the old key ${key(n.old)} any more, and keyrot never stores it: give it back with ${cmd(n.next[0]!, f)} (stdin, env:VAR, file:PATH). The rotation has turned back and cannot go forward again: \`keyrot resume\` without the old key only retries the undo.`
      : `The rotation failed and some targets could not be restored (see the table). Do not revoke the old key. Fix what the table names, then retry the undo with ${cmd(n.next[0]!, f)}.`,
  'revoked-first-failures': (n, f) =>
    `Some targets failed (see the table). The old key was revoked first, so nothing was rolled back: fix them and run ${cmd(n.next, f)}.`,
  'completed-revoked-first': () => 'Every target holds the new key; the old key was revoked first.',
  'minted-deleted': (n) => `The key minted for this rotation (${n.key?.hint ?? '?'}) was deleted again.`,
  'minted-delete-failed': (n) =>
    `The key minted for this rotation (${n.key?.hint ?? '?'}) could not be deleted: ${n.error}. Delete its service account in the issuer's dashboard.`,
  'minted-unused': (n) => `The key minted for this rotation (${n.key?.hint ?? '?'}) is held by no target now: delete its service account in the issuer's dashboard.`,
  'rolled-back': (n) =>
    `Rotation ${n.rotation} was undone: ${n.restored.length ? n.restored.join(', ') : 'no target'} restored; every target holds the old key. Do not revoke it.` +
    (n.unusedNewKey ? ` The new key ${key(n.unusedNewKey)} is used nowhere now: delete it where it was created.` : ''),
  'awaiting-revocation': (n, f) =>
    `Every target holds the new key. Revoke the old key ${n.old.hint} (fingerprint ${n.old.fingerprint}) in ${where(n.revokeAt)}, then run ${cmd(n.next, f)}.${alsoRevokeText(n.also)}`,
  'awaiting-revocation-unreadable': (n, f) =>
    `Every target holds the new key. keyrot could not read the key they held before (write-only: ${n.targets.join(', ')}): revoke that key in ${where(n.revokeAt)}, then run ${cmd(n.next, f)}.`,
  'nothing-to-revoke': () => 'No old key was found in any target (they held none): nothing to revoke.',
  'revocation-next': (n) => `Every target holds the new key; the old key ${key(n.old)} is revoked next.`,
  'revoked-by-admin': (n) =>
    `Old key ${key(n.old)} revoked through the ${n.issuer} Admin API${n.alreadyGone ? ' (it was already gone)' : ''}.` +
    (n.also.length ? ` Revoke the other retired keys in ${where(n.revokeAt)}:${alsoRevokeText(n.also).replace(' Also revoke', '')}` : ''),
  'revocation-recorded': (n) =>
    `Recorded: old key ${key(n.old)}${n.also.length ? ` (and ${n.also.map((a) => key(a)).join(', ')})` : ''} revoked.`,
  'admin-not-configured': (n, f) =>
    `revoke.mode is openai-admin but key.admin is not configured: revoke the old key in the dashboard, then run ${cmd(n.next, f)}.`,
  'admin-key-not-found': (n, f) =>
    `The old key ${key(n.old)} was not found in project ${n.project} through the admin API: revoke it in ${where(n.revokeAt)}, then run ${cmd(n.next, f)}.`,
  'still-in-use': (n, f) =>
    `Not revoked: the old key ${n.old.hint} was still used at ${new Date(n.lastUsedAt).toISOString()}, after every target of "${n.next.env}" switched. ` +
    (n.places.length
      ? `It is still held at ${n.places.join(', ')}: give those the new key (add them to targets.yaml and rotate) or stop what uses them. `
      : 'Something outside the inventory (another environment, a forgotten deployment, a developer machine) may still use it. ') +
    `\`${keyrotCommand(f, 'discover', '-e', n.next.env, '--key', 'env:OLD_KEY')}\` (the old key in OLD_KEY) searches every place the credentials reach. Then run ${cmd(n.next, f)}.`,
  'admin-refused': (n, f) => `Not revoked: ${n.detail}. Revoke it in ${where(n.revokeAt)}, then run ${cmd(n.next, f)}.`,
  'admin-failed': (n, f) => `Not revoked: the ${n.issuer} Admin API failed: ${n.error}. Run ${cmd(n.next, f)} to try again.`,
  'finalize-failed': (n, f) => `${n.target}: clean-up after revocation failed: ${n.error}. The old key is revoked; run ${cmd(n.next, f)} to retry the clean-up.`,
  'cannot-resume-yet': (n, f) => `Cannot resume yet: ${n.blocked.join(', ')} failed preflight. Fix them and run ${cmd(n.next, f)} again.`,
  'revocation-declined': () => 'Not recorded: the rotation still awaits revocation.',
  'revocation-step-failed': (n, f) => `The revocation step failed: ${n.error}. Run ${cmd(n.next, f)}.`,
  'rotation-complete': (n) => `Rotation ${n.rotation} is complete.`,
};

export function renderNotice(n: Notice, flags: CommandFlags = {}): string {
  return (WORDS[n.code] as (n: Notice, f: CommandFlags) => string)(n, flags);
}

export function renderNotices(notices: Notice[], flags: CommandFlags = {}): string[] {
  return notices.map((n) => renderNotice(n, flags));
}
