import { EXIT, ExitError, type ExitCode } from '../core/errors.ts';
import type { AlsoRevoke, EndOutcome } from '../state/journal.ts';
import type { VerifyMethod } from '../targets/types.ts';
import { renderRefusal } from '../render/refusals.ts';

/**
 * What the engine returns: typed outcomes, never prose. The words, and the next-step commands
 * (with the user's `-c` / `--state-dir`), are rendered by src/render/ for the CLI and the webhook.
 */

export interface KeyRef {
  hint: string;
  fingerprint: string;
}

export type Holds = 'new' | 'old' | 'absent' | 'unknown' | 'other';

export interface TargetReport {
  name: string;
  type: string;
  location: string;
  holds: Holds;
  /** Fingerprint of what it holds, when known. */
  fingerprint?: string | null;
  verifiedBy?: VerifyMethod;
  /** A problem in product words (already redacted). */
  error?: string;
}

/** A command the operator runs next; rendered with the user's -c / --state-dir. */
export interface NextStep {
  command: 'resume' | 'revoke' | 'plan' | 'rotate';
  env: string;
  flags?: string[];
}

/** Where a key is revoked by hand (`place` names the page, `url` is it), or null when keyrot cannot know. */
export type RevokeAt = { place: string; url: string } | null;

/** Everything the engine has to say about a run. Rendered by src/render/notices.ts. */
export type Notice =
  | { code: 'preflight-blocked'; blocked: string[]; total: number; next: NextStep }
  | { code: 'drift'; fingerprints: string[] }
  | { code: 'carried-revocation'; rotation: string; old: KeyRef }
  | { code: 'old-key-rejected'; old: KeyRef; issuer: string }
  | { code: 'resuming'; rotation: string }
  | { code: 'stopped'; next: NextStep }
  | { code: 'failed-restored'; failed: string[] }
  | { code: 'restore-incomplete'; oldKeyUnknown: boolean; old: KeyRef | null; next: NextStep[] }
  | { code: 'revoked-first-failures'; next: NextStep }
  | { code: 'completed-revoked-first' }
  | { code: 'minted-deleted'; key: KeyRef | null }
  | { code: 'minted-delete-failed'; key: KeyRef | null; error: string }
  | { code: 'minted-unused'; key: KeyRef | null }
  | { code: 'rolled-back'; rotation: string; restored: string[]; unusedNewKey: KeyRef | null }
  | { code: 'awaiting-revocation'; old: KeyRef; revokeAt: RevokeAt; also: AlsoRevoke[]; next: NextStep }
  | { code: 'awaiting-revocation-unreadable'; targets: string[]; revokeAt: RevokeAt; next: NextStep }
  | { code: 'nothing-to-revoke' }
  | { code: 'revocation-next'; old: KeyRef }
  | { code: 'revoked-by-admin'; old: KeyRef; alreadyGone: boolean; also: AlsoRevoke[]; revokeAt: RevokeAt; issuer: string }
  | { code: 'revocation-recorded'; old: KeyRef; also: AlsoRevoke[] }
  | { code: 'admin-not-configured'; next: NextStep }
  | { code: 'admin-key-not-found'; old: KeyRef; project: string; revokeAt: RevokeAt; next: NextStep }
  /** `places`: where a quick discovery (EngineOptions.findKey) found the old key still held. */
  | { code: 'still-in-use'; old: KeyRef; lastUsedAt: number; places: string[]; next: NextStep }
  | { code: 'admin-refused'; old: KeyRef; detail: string; revokeAt: RevokeAt; next: NextStep }
  | { code: 'admin-failed'; error: string; issuer: string; next: NextStep }
  | { code: 'finalize-failed'; target: string; error: string; next: NextStep }
  | { code: 'cannot-resume-yet'; blocked: string[]; next: NextStep }
  | { code: 'revocation-declined' }
  | { code: 'revocation-step-failed'; error: string; next: NextStep }
  | { code: 'rotation-complete'; rotation: string };

export interface RotationReport {
  rotation?: string;
  env: string;
  outcome: EndOutcome | 'interrupted' | 'refused';
  exitCode: ExitCode;
  old?: KeyRef | null;
  new?: KeyRef | null;
  /** The old key's id at the issuer, when the admin API found it (usage review, revocation). */
  oldKeyId?: string | null;
  /** Other keys retired with the old key, to revoke too. */
  alsoRevoke?: AlsoRevoke[];
  targets: TargetReport[];
  notices: Notice[];
  preflight?: Array<{ name: string; status: string; reason?: string }>;
  /** The prompt was cancelled (Ctrl-C): the command exits 130 after the state is recorded. */
  cancelled?: boolean;
}

/**
 * A refusal before (or instead of) any change, with what to do next: thrown by the engine,
 * rendered by src/render/refusals.ts, exit code 1 unless `usage`.
 */
export type RefusalReason =
  | { code: 'interrupted-rotation'; rotation: string; next: NextStep[] }
  | { code: 'pending-revocation'; rotation: string; old: KeyRef | null; next: NextStep }
  | { code: 'nothing-to-resume'; rotation?: string; outcome?: EndOutcome; next?: NextStep }
  | { code: 'rollback-after-revocation'; rotation: string; old: KeyRef | null; revokedFirst: boolean; next: NextStep }
  | { code: 'inventory-changed'; rotation: string; missing: string[]; extra: string[] }
  | { code: 'wrong-new-key'; source: string; rotation: string; given: KeyRef; expected: KeyRef | null; next: NextStep[] }
  | { code: 'wrong-old-key'; source: string; rotation: string; given: KeyRef; expected: string }
  | { code: 'new-key-unavailable'; rotation: string; expected: KeyRef | null; next: NextStep[] }
  | { code: 'key-format'; reason: string; mintedCleanup?: Notice }
  | { code: 'same-key'; key: KeyRef; mintedCleanup?: Notice }
  | { code: 'key-rejected'; error: string; mintedCleanup?: Notice }
  | { code: 'live-check-failed'; error: string; mintedCleanup?: Notice }
  | { code: 'revoke-first-not-confirmed' }
  | { code: 'not-awaiting-revocation'; rotation?: string; outcome?: EndOutcome; next?: NextStep }
  | { code: 'unverified-targets'; targets: string[] }
  | { code: 'confirm-revocation'; old: KeyRef; also: AlsoRevoke[]; revokeAt: RevokeAt; next: NextStep }
  | { code: 'admin-revocation-failed'; notice: Notice }
  | { code: 'receipt-version'; target: string; found: number; supported: number; next: NextStep };

export class Refusal extends ExitError {
  override name = 'Refusal';
  readonly reason: RefusalReason;
  readonly env: string;
  constructor(reason: RefusalReason, env: string, exitCode: ExitCode = EXIT.failed) {
    // The message is the plain rendering (logs, tests); the CLI renders it again with the user's flags.
    super(exitCode, renderRefusal(reason, env));
    this.reason = reason;
    this.env = env;
  }

  get exitCode(): ExitCode {
    return this.code;
  }
}

export function next(command: NextStep['command'], env: string, ...flags: string[]): NextStep {
  return flags.length ? { command, env, flags } : { command, env };
}
