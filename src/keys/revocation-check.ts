import { TargetError } from '../core/errors.ts';

/**
 * What `revoke` must establish through the Admin API before it deletes anything the journal
 * names: the journal can be edited by whoever writes the state, and a deleted service account
 * cannot be brought back. So: a service account must be one keyrot minted for this environment
 * (its name), it must own the recorded key id, and that key's `redacted_value` must agree with
 * the recorded hint. A key keyrot only looked up (found by its value) must still exist and agree
 * with the hint. Anything else is refused, loudly.
 */

/** Rotation ids: `rot_<UTC yyyymmddThhmmssZ>_<random>` (state/journal.ts newRotationId). */
const ROTATION_ID = 'rot_\\d{8}T\\d{6}Z_[a-z0-9]+';

/** Is `name` the service account keyrot mints for `env` (`keyrot-<env>-<rotation id>`, openai-admin.ts)? */
export function isKeyrotServiceAccount(name: string | null | undefined, env: string): boolean {
  if (!name) return false;
  const escaped = env.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // The whole name: env "prod" must not accept the accounts of env "prod-eu" (keyrot-prod-eu-rot_...).
  return new RegExp(`^keyrot-${escaped}-${ROTATION_ID}$`).test(name);
}

/**
 * Does the provider's `redacted_value` agree with keyrot's hint (`sk-proj-...WXYZ`)? The format is
 * not documented: the API reference's example is "sk-abc...def" (3 trailing characters), the
 * dashboard shows 4; so the visible tails are compared over what both show (at least 3
 * characters), and the visible prefix must be compatible with the hint's key family. A hint with
 * no tail (`***`: a short, never an OpenAI, key) matches nothing.
 */
export function redactedMatchesHint(redacted: string | null | undefined, hint: string): boolean {
  const h = /^(.*)\.\.\.(.{4})$/.exec(hint);
  const r = redacted ? /^([^*.…]*)[*.…]+([^*.…]*)$/.exec(redacted) : null;
  if (!h || !r) return false;
  const [family, tail] = [h[1]!, h[2]!];
  const [prefix, suffix] = [r[1]!, r[2]!];
  const n = Math.min(tail.length, suffix.length);
  if (n < 3 || tail.slice(-n) !== suffix.slice(-n)) return false;
  return prefix.startsWith(family) || family.startsWith(prefix);
}

/** A revocation keyrot will not perform: the state that asked for it may have been tampered with. */
export class RevocationRefused extends TargetError {
  readonly reason: string;
  constructor(reason: string, subject: string, project: string) {
    super(
      `refusing to revoke ${subject}: ${reason}. keyrot's state (its journal) may have been tampered with: ` +
        `run \`keyrot history\` to verify it, check who can write it, and look at ${subject} in project ${project} of the OpenAI dashboard ` +
        `(https://platform.openai.com/settings/organization/projects) before revoking anything by hand`,
      { kind: 'mismatch', retryable: false },
    );
    this.reason = reason;
  }
}
