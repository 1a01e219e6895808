import type { RefusalReason } from '../machine/outcome.ts';
import { cmd, type CommandFlags } from './command.ts';
import { alsoRevokeText, key, renderNotice, where } from './notices.ts';

type Renderers = { [C in RefusalReason['code']]: (r: Extract<RefusalReason, { code: C }>, env: string, f: CommandFlags) => string };

const minted = (r: { mintedCleanup?: Parameters<typeof renderNotice>[0] }, f: CommandFlags) => (r.mintedCleanup ? ` ${renderNotice(r.mintedCleanup, f)}` : '');

const WORDS: Renderers = {
  'interrupted-rotation': (r, env, f) =>
    `rotation ${r.rotation} of "${env}" was interrupted: finish it with ${cmd(r.next[0]!, f)} or undo it with ${cmd(r.next[1]!, f)}`,
  'pending-revocation': (r, env, f) =>
    `rotation ${r.rotation} of "${env}" is still awaiting revocation of ${key(r.old)}: revoke it and run ${cmd(r.next, f)} first (an emergency rotation may go ahead regardless)`,
  'nothing-to-resume': (r, env, f) =>
    !r.rotation
      ? `no rotation of "${env}" to resume: the journal is empty`
      : `nothing to resume: the latest rotation ${r.rotation} of "${env}" is not interrupted; ${r.next ? `it finished and awaits revocation: run ${cmd(r.next, f)}` : `it ended (${r.outcome})`}`,
  'rollback-after-revocation': (r, _env, f) =>
    `refusing to roll back rotation ${r.rotation}: its old key ${key(r.old)} was already revoked${r.revokedFirst ? ' (emergency --revoke-first)' : ''}, so every target restored would hold a dead key. Finish the rotation with ${cmd(r.next, f)}.`,
  'inventory-changed': (r) =>
    r.missing.length
      ? `the inventory no longer has target(s) ${r.missing.join(', ')} of rotation ${r.rotation}: put them back in targets.yaml to resume`
      : `the inventory has target(s) ${r.extra.join(', ')} that rotation ${r.rotation} did not include: remove them until the rotation is resumed`,
  'wrong-new-key': (r, _env, f) =>
    `--new-key ${r.source} gives key ${key(r.given)}, but rotation ${r.rotation} was writing ${key(r.expected)}: use the same key, or undo with ${cmd(r.next[0]!, f)}`,
  'wrong-old-key': (r) => `--old-key ${r.source} has fingerprint ${r.given.fingerprint}, but rotation ${r.rotation} replaced ${r.expected}: that is not the old key`,
  'new-key-unavailable': (r, _env, f) =>
    `no target holds the new key ${key(r.expected)} of rotation ${r.rotation} any more: pass it again with ${cmd(r.next[0]!, f)}, or undo with ${cmd(r.next[1]!, f)}`,
  'key-format': (r, _env, f) => `the new key was refused: ${r.reason}. Nothing was written.${minted(r, f)}`,
  'same-key': (r, _env, f) => `the new key ${key(r.key)} is the key the targets already hold: create a new key first. Nothing was written.${minted(r, f)}`,
  'key-rejected': (r, _env, f) => `${r.error}. Nothing was written.${minted(r, f)}`,
  'live-check-failed': (r, _env, f) =>
    `the live check of the new key failed: ${r.error}. Nothing was written. Check the network, or set key.verify: false to skip the check.${minted(r, f)}`,
  'revoke-first-not-confirmed': () => 'the revocation of the old key was not confirmed: nothing was changed',
  'not-awaiting-revocation': (r, env, f) =>
    !r.rotation
      ? `no rotation of "${env}" yet: nothing to revoke`
      : `refusing: the latest rotation ${r.rotation} of "${env}" is not awaiting revocation (${
          r.outcome === undefined
            ? `it was interrupted: finish it with ${r.next ? cmd(r.next, f) : '`keyrot resume`'} first`
            : r.outcome === 'completed'
              ? 'its old key was already revoked'
              : `it ended ${r.outcome}; the old key is still the live one`
        })`,
  'unverified-targets': (r) => `refusing: not every target was verified to hold the new key (${r.targets.join(', ') || 'verification not recorded'})`,
  'confirm-revocation': (r, _env, f) =>
    `in prompt mode keyrot records a revocation you made: revoke ${key(r.old)} in ${where(r.revokeAt)},${alsoRevokeText(r.also).replace(' Also revoke', ' and')} then confirm with ${cmd(r.next, f)}`,
  'admin-revocation-failed': (r, _env, f) => renderNotice(r.notice, f),
  'receipt-version': (r, _env, f) =>
    `the journal's receipt for target ${r.target} is version ${r.found}, and this keyrot reads version ${r.supported}: finish the rotation with the keyrot version that started it, or undo it with ${cmd(r.next, f)} (restores work without receipts)`,
};

export function renderRefusal(r: RefusalReason, env: string, flags: CommandFlags = {}): string {
  return (WORDS[r.code] as (r: RefusalReason, env: string, f: CommandFlags) => string)(r, env, flags);
}
