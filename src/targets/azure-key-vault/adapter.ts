import type { KeyVaultSecret } from '@azure/keyvault-secrets';
import { TargetError } from '../../core/errors.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import { waitTimeoutMs } from '../types.ts';
import { Secret, fingerprint } from '../../core/secret.ts';
import type { CommonTargetConfig, OpContext, PreflightResult, ReadResult, Target, TargetContext, VerifyResult } from '../types.ts';
import { STATIC_TOKEN_ENV, type AzureKeyVaultConfig, type AzureKeyVaultReceipt } from './index.ts';
import { VaultConnection, vaultRateLimitKey } from './connection.ts';
import { SecretVersions, currentSecret, userTags, type Latest } from './versions.ts';

/**
 * Azure Key Vault secrets through @azure/keyvault-secrets 4.11 and @azure/identity 4.13.
 * Wire facts: README "Provider facts" (challenge flow from
 * @azure/keyvault-common/dist/esm/keyVaultAuthenticationPolicy.js; error bodies from
 * keyvault-secrets/dist/esm/models/models.js keyVaultErrorDeserializer, which reads `innererror`).
 */

/**
 * STATIC_TOKEN_ENV: a static bearer token instead of DefaultAzureCredential, for emulators and tests
 * (and, if you must, a short-lived token from `az account get-access-token --resource
 * https://vault.azure.net`). The target's `token: env:VAR | file:PATH` does the same; this is its
 * default variable.
 */
export { STATIC_TOKEN_ENV };

export const TAGS = {
  /** The rotation that wrote this version (the idempotency token). */
  rotation: 'keyrot-rotation',
  /** Fingerprint (first 12 hex of SHA-256) of the value this version holds. */
  fingerprint: 'keyrot-fingerprint',
  /** The version that was current before this rotation's write, and its fingerprint: finalize uses them. */
  previousVersion: 'keyrot-previous-version',
  previousFingerprint: 'keyrot-previous-fingerprint',
  /** This version puts back the old value for the named rotation. */
  restore: 'keyrot-restore',
} as const;

const short = (v: string) => v.slice(0, 8);
const NOT_RETRYABLE = { retryable: false } as const;

/** What finalize knows about the version the write replaced. */
interface Replaced {
  ours: string | undefined;
  currentVersion: string | undefined;
  previousVersion: string | undefined;
  previousFingerprint: string | undefined;
}

export function createAzureKeyVaultTarget(config: AzureKeyVaultConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target<AzureKeyVaultReceipt> {
  // `endpoint` means the vault URL itself for this target (README: "`endpoint:` means the same here").
  const vaultUrl = (config.endpoint ?? config.vault).replace(/\/+$/, '');
  const url = URL.canParse(vaultUrl) ? new URL(vaultUrl) : undefined;
  if (!url || url.protocol !== 'https:') {
    throw new TargetError(`Azure Key Vault is https only: ${vaultUrl} is not an https URL`, { target: ctx.name, op: 'create', kind: 'invalid', retryable: false });
  }
  return new AzureKeyVaultTarget(config, ctx, new VaultConnection(config, ctx, vaultUrl, url), url);
}

/** One secret of one vault: each write is a new version; finalize disables the versions holding the old key. */
class AzureKeyVaultTarget implements Target<AzureKeyVaultReceipt> {
  readonly id = 'azure-key-vault' as const;
  readonly name: string;
  readonly location: string;
  readonly lockKey: string;
  readonly rateLimitKey: string;
  private readonly ctx: TargetContext & { name: string };
  private readonly conn: VaultConnection;
  private readonly vault: SecretVersions;
  private readonly secretName: string;
  /** `secret NAME in vault HOST`, for messages. */
  private readonly where: string;

  constructor(config: AzureKeyVaultConfig & CommonTargetConfig, ctx: TargetContext & { name: string }, conn: VaultConnection, url: URL) {
    this.ctx = ctx;
    this.conn = conn;
    this.name = ctx.name;
    this.secretName = config.secret;
    this.where = `secret ${config.secret} in vault ${url.host}`;
    this.location = `${url.host}/secrets/${config.secret}`;
    this.lockKey = `azure-key-vault:${url.host}/${config.secret.toLowerCase()}`;
    this.rateLimitKey = vaultRateLimitKey(url);
    this.vault = new SecretVersions(conn, {
      target: ctx.name,
      host: url.host,
      hostname: url.hostname,
      secretName: config.secret,
      where: this.where,
      timeoutMs: waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS),
      clock: ctx.clock,
      staticToken: () => (conn.usesStaticToken ? (config.token?.raw ?? `env:${STATIC_TOKEN_ENV}`) : undefined),
    });
  }

  private fail(message: string, op: string, kind: TargetError['kind']): TargetError {
    return new TargetError(message, { target: this.name, op, kind, retryable: false });
  }

  async preflight(signal?: AbortSignal): Promise<PreflightResult> {
    try {
      const l = await this.vault.latest('preflight', signal);
      if (l.kind === 'absent') {
        return {
          status: 'blocked',
          reason: `${this.where} does not exist: create it first (keyrot adds versions to an existing secret, it never creates one)`,
          current: { kind: 'absent' },
        } satisfies PreflightResult;
      }
      const notes = [`writes a new version of ${this.secretName} tagged ${TAGS.rotation}; finalize disables the versions that hold the old key`];
      const listProblem = await this.listProblem(signal);
      if (listProblem) notes.push(`finalize will fail: ${listProblem}`);
      notes.push('the "set" permission cannot be checked without writing: a missing grant shows at write');
      if (l.kind === 'disabled') {
        notes.push(`the current version of ${this.secretName} is disabled (readers get 403 today); keyrot adds an enabled version`);
        return { status: 'ready', current: { kind: 'unreadable', reason: `the current version of ${this.where} is disabled` }, notes };
      }
      return { status: 'ready', current: l.kind === 'value' ? { kind: 'value', value: new Secret(l.value) } : { kind: 'absent' }, notes };
    } catch (err) {
      const te = err instanceof TargetError ? err : this.vault.translate(err, 'preflight', 'get');
      // Transient (throttled, 5xx, timeout): not an answer; the engine retries it, bounded.
      if (te.retryable) throw te;
      return { status: 'blocked', reason: te.message, current: { kind: 'unreadable', reason: te.message } };
    }
  }

  /** Listing versions (readMetadata) is only needed by finalize: a missing grant is a note, not a blocker. */
  private async listProblem(signal?: AbortSignal): Promise<string | undefined> {
    try {
      await this.vault.probeList('preflight', signal);
      return undefined;
    } catch (err) {
      const te = err as TargetError;
      if (te.kind !== 'permission') throw err;
      return te.message;
    }
  }

  async read(signal?: AbortSignal): Promise<ReadResult> {
    const l = await this.vault.latest('read', signal);
    if (l.kind === 'value') return { kind: 'value', value: new Secret(l.value) };
    if (l.kind === 'disabled') return { kind: 'unreadable', reason: `the current version of ${this.where} is disabled` };
    return { kind: 'absent' };
  }

  async write(value: Secret, op: OpContext): Promise<AzureKeyVaultReceipt> {
    const l = await this.vault.latest('write', op.signal);
    if (l.kind === 'absent') throw this.fail(`${this.where} does not exist: create it first; keyrot only adds versions to an existing secret`, 'write', 'not-found');
    const cur = currentSecret(l);
    const curTags = cur?.properties.tags ?? {};
    // Idempotent: this rotation's version is already the current one (a retry after a lost answer).
    if (l.kind === 'value' && l.value === value.reveal() && curTags[TAGS.rotation] === op.rotationId && curTags[TAGS.fingerprint] === op.fingerprint) {
      return {
        version: l.secret.properties.version!,
        previousVersion: curTags[TAGS.previousVersion] ?? null,
        previousFingerprint: curTags[TAGS.previousFingerprint] ?? null,
      } satisfies AzureKeyVaultReceipt;
    }
    // The vault already holds this exact key (set by hand or by an earlier run): a new version would change nothing.
    if (l.kind === 'value' && l.value === value.reveal()) {
      return { version: l.secret.properties.version!, previousVersion: null, previousFingerprint: null, unchanged: true } satisfies AzureKeyVaultReceipt;
    }
    const previousVersion = cur?.properties.version ?? null;
    const previousFingerprint = l.kind === 'value' ? fingerprint(l.value) : null;
    const tags = this.vault.withinTagLimit(
      {
        ...userTags(cur),
        [TAGS.rotation]: op.rotationId,
        [TAGS.fingerprint]: op.fingerprint,
        ...(previousVersion && { [TAGS.previousVersion]: previousVersion }),
        ...(previousFingerprint && { [TAGS.previousFingerprint]: previousFingerprint }),
      },
      [TAGS.previousFingerprint, TAGS.previousVersion],
      'write',
    );
    // The contentType (and the user's own tags) carry over: only the value changes.
    const written = await this.vault.setValue('write', value.reveal(), tags, cur?.properties.contentType, op.signal);
    this.ctx.logger.debug(`azure-key-vault: wrote version ${short(written.properties.version ?? '')} of ${this.secretName}`);
    return { version: written.properties.version!, previousVersion, previousFingerprint } satisfies AzureKeyVaultReceipt;
  }

  async verify(value: Secret, op: OpContext, receipt: AzureKeyVaultReceipt | undefined): Promise<VerifyResult> {
    const version = receipt?.version;
    const mismatch = (what: string) => this.fail(`read-back mismatch: ${what}, not the new key (${value.fingerprint})`, 'verify', 'mismatch');
    // Read THAT version: proves the write landed, whatever happened after it.
    if (version) await this.verifyVersion(version, value, op, mismatch);
    // Consumers read the current version: it must be this one (or hold the same key).
    const l = await this.vault.latest('verify', op.signal);
    if (l.kind !== 'value') throw mismatch(`the current version of ${this.where} is ${l.kind === 'disabled' ? 'disabled' : 'missing'}`);
    if (l.value !== value.reveal()) {
      throw mismatch(
        version && l.secret.properties.version !== version
          ? `a newer version ${short(l.secret.properties.version ?? '')} of ${this.where} (not keyrot's) holds a different key (${fingerprint(l.value)})`
          : `${this.where} holds a different key (${fingerprint(l.value)})`,
      );
    }
    return { method: 'read-back', detail: `version ${short(l.secret.properties.version ?? '')} of ${this.secretName} holds the new key and is current` };
  }

  private async verifyVersion(version: string, value: Secret, op: OpContext, mismatch: (what: string) => TargetError): Promise<void> {
    let v: KeyVaultSecret;
    try {
      v = await this.vault.getVersion('verify', version, op.signal);
    } catch (err) {
      const te = err as TargetError;
      if (te.kind === 'not-found' || te.kind === 'conflict') throw mismatch(`version ${short(version)} of ${this.where} cannot be read (${te.kind === 'conflict' ? 'disabled' : 'missing'})`);
      throw err;
    }
    if (v.value !== value.reveal()) throw mismatch(`version ${short(version)} of ${this.where} holds ${v.value ? `a different key (${fingerprint(v.value)})` : 'nothing'}`);
  }

  async restore(previous: Secret | null, op: OpContext, receipt: AzureKeyVaultReceipt | undefined): Promise<void> {
    const l = await this.vault.latest('restore', op.signal);
    if (l.kind === 'absent') throw this.fail(`${this.where} no longer exists: nothing to restore into (recover it from the vault's deleted secrets)`, 'restore', 'not-found');
    const cur = currentSecret(l);
    const ours = (cur?.properties.tags ?? {})[TAGS.rotation] === op.rotationId;
    const old = (await this.oldValue(l, ours, op, receipt)) ?? (previous ? previous.reveal() : null);
    if (old === null) {
      // There was no readable key before (the current version was disabled): undo by disabling the
      // versions this rotation added, which leaves the secret as it was.
      for (const p of await this.vault.allVersions('restore', op.signal)) {
        if (p.enabled && p.version && p.tags?.[TAGS.rotation] === op.rotationId) await this.vault.disable('restore', p.version, op.signal);
      }
      return;
    }
    if (l.kind === 'value' && l.value === old) return; // already the old key: idempotent
    if (l.kind === 'value' && !ours) {
      // Not ours, not the old key: someone else wrote after us. Writing over it would lose their change.
      throw this.fail(
        `${this.where} was changed by someone else since keyrot's write (current version ${short(l.secret.properties.version ?? '')} holds ${fingerprint(l.value)}): not restoring over it; decide which key it should hold`,
        'restore',
        'conflict',
      );
    }
    // Key Vault cannot make an old version current again: the old value goes back as a new version.
    const tags = this.vault.withinTagLimit({ ...userTags(cur), [TAGS.restore]: op.rotationId, [TAGS.fingerprint]: fingerprint(old) }, [], 'restore');
    await this.vault.setValue('restore', old, tags, cur?.properties.contentType, op.signal);
  }

  /**
   * A versioned store: the exact old value comes from the vault's own previous version when known;
   * null sends restore to the value read at preflight (e.g. no receipt and the current version is not ours).
   */
  private async oldValue(l: Latest, ours: boolean, op: OpContext, receipt: AzureKeyVaultReceipt | undefined): Promise<string | null> {
    const curTags = currentSecret(l)?.properties.tags ?? {};
    const prevVersion = receipt?.previousVersion || (ours ? curTags[TAGS.previousVersion] : undefined);
    if (!prevVersion) return null;
    try {
      return (await this.vault.getVersion('restore', prevVersion, op.signal)).value ?? null;
    } catch (err) {
      const te = err as TargetError;
      if (te.kind !== 'not-found' && te.kind !== 'conflict') throw err;
      return null;
    }
  }

  async finalize(op: OpContext, receipt: AzureKeyVaultReceipt | undefined): Promise<void> {
    const l = await this.vault.latest('finalize', op.signal);
    const r = this.replaced(l, op, receipt);
    if (!r.previousVersion && !r.previousFingerprint) return; // nothing known to hold the old key
    if (r.previousFingerprint === op.fingerprint) return; // the "old" key is the new one: nothing to disable
    if (l.kind === 'value' && r.previousFingerprint && fingerprint(l.value) === r.previousFingerprint) {
      throw this.fail(`the current version of ${this.where} holds the old key: refusing to disable it (was the rotation restored?)`, 'finalize', 'conflict');
    }
    // Disable every enabled version holding the revoked key, not only the one the write replaced:
    // the same old key can sit in several versions (a keyrot restore adds one, a hand re-save
    // another). After revocation each is a dead credential that a reader pinned to a version id
    // would still fetch; disabled, such a reader fails loudly (403) instead. Versions holding any
    // other value are not keyrot's to touch, and the current version is never disabled.
    let disabled = 0;
    for (const p of await this.vault.allVersions('finalize', op.signal)) {
      const v = p.version;
      if (!v || !p.enabled || v === r.ours || v === r.currentVersion) continue;
      if (await this.holdsOldKey(v, p.tags?.[TAGS.fingerprint], r, op)) {
        await this.vault.disable('finalize', v, op.signal);
        disabled++;
      }
    }
    this.ctx.logger.info(`azure-key-vault: disabled ${disabled} version(s) of ${this.secretName} holding the old key (${r.previousFingerprint ?? short(r.previousVersion ?? '')})`);
  }

  /** The receipt's record of the replaced version, else the current version's tags when it is this rotation's. */
  private replaced(l: Latest, op: OpContext, receipt: AzureKeyVaultReceipt | undefined): Replaced {
    const cur = currentSecret(l);
    const curTags = cur?.properties.tags ?? {};
    const currentVersion = cur?.properties.version;
    const fromTags = curTags[TAGS.rotation] === op.rotationId;
    const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
    return {
      ours: str(receipt?.version) ?? (fromTags ? currentVersion : undefined),
      currentVersion,
      previousVersion: str(receipt?.previousVersion) ?? (fromTags ? curTags[TAGS.previousVersion] : undefined),
      previousFingerprint: str(receipt?.previousFingerprint) ?? (fromTags ? curTags[TAGS.previousFingerprint] : undefined),
    };
  }

  /** The replaced version, a version tagged with the old fingerprint, or an untagged one whose value has it. */
  private async holdsOldKey(version: string, tagFp: string | undefined, r: Replaced, op: OpContext): Promise<boolean> {
    if (version === r.previousVersion || (r.previousFingerprint !== undefined && tagFp === r.previousFingerprint)) return true;
    if (!r.previousFingerprint || tagFp !== undefined) return false;
    const s = await this.vault.getVersion('finalize', version, op.signal);
    return s.value !== undefined && s.value !== '' && fingerprint(s.value) === r.previousFingerprint;
  }

  async close(): Promise<void> {
    this.conn.close();
  }
}
