import type { KeyVaultSecret, SecretClient, SecretProperties } from '@azure/keyvault-secrets';
import { TargetError } from '../../core/errors.ts';
import { deadlineSignal } from '../../runtime/deadline.ts';
import type { VaultConnection } from './connection.ts';
import { translateVaultError, type KvOp, type SdkError, type VaultFacts } from './errors.ts';

/**
 * The versions of one Key Vault secret, through the SDK: read the current one, read one version,
 * list them, add one, disable one. Every call runs under its deadline and its errors come out
 * translated (errors.ts).
 */

/** Key Vault allows at most 15 tags per secret version. */
const MAX_TAGS = 15;

export type Latest =
  | { kind: 'value'; secret: KeyVaultSecret; value: string }
  | { kind: 'empty'; secret: KeyVaultSecret }
  | { kind: 'disabled' }
  | { kind: 'absent' };

/** The current version's secret, when there is one (with or without a value). */
export function currentSecret(l: Latest): KeyVaultSecret | undefined {
  return l.kind === 'value' || l.kind === 'empty' ? l.secret : undefined;
}

/** The version's own tags, without keyrot's: carried over to the versions keyrot adds. */
export function userTags(s: KeyVaultSecret | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(s?.properties.tags ?? {}).filter(([k]) => !k.startsWith('keyrot-')));
}

export class SecretVersions {
  private readonly conn: VaultConnection;
  private readonly facts: VaultFacts;

  constructor(conn: VaultConnection, facts: VaultFacts) {
    this.conn = conn;
    this.facts = facts;
  }

  /**
   * Every call's abort signal: the caller's, under this call's deadline. The pipeline's own
   * `timeout` stops at the response headers (nodeHttpClient.js clears it there); an abort also
   * ends a stalled body.
   */
  private within(signal?: AbortSignal): AbortSignal {
    return deadlineSignal(this.facts.timeoutMs, signal);
  }

  translate(err: unknown, op: string, kvOp: KvOp): TargetError {
    return translateVaultError(err, op, kvOp, this.facts);
  }

  private async call<T>(op: string, kvOp: KvOp, fn: (c: SecretClient) => Promise<T>): Promise<T> {
    try {
      return await fn(await this.conn.client());
    } catch (err) {
      throw this.translate(err, op, kvOp);
    }
  }

  async latest(op: string, signal?: AbortSignal): Promise<Latest> {
    try {
      const s = await (await this.conn.client()).getSecret(this.facts.secretName, { abortSignal: this.within(signal) });
      return s.value ? { kind: 'value', secret: s, value: s.value } : { kind: 'empty', secret: s };
    } catch (err) {
      const e = err as SdkError;
      if (e?.statusCode === 404 && (e.details?.error?.code ?? e.code) === 'SecretNotFound') return { kind: 'absent' };
      if (e?.statusCode === 403 && e.details?.error?.innerError?.code === 'SecretDisabled') return { kind: 'disabled' };
      throw this.translate(err, op, 'get');
    }
  }

  getVersion(op: string, version: string, signal?: AbortSignal): Promise<KeyVaultSecret> {
    return this.call(op, 'get', (c) => c.getSecret(this.facts.secretName, { version, abortSignal: this.within(signal) }));
  }

  allVersions(op: string, signal?: AbortSignal): Promise<SecretProperties[]> {
    return this.call(op, 'list', async (c) => {
      const out: SecretProperties[] = [];
      for await (const p of c.listPropertiesOfSecretVersions(this.facts.secretName, { abortSignal: this.within(signal) })) out.push(p);
      return out;
    });
  }

  /** Reads one page of one version: proves the `list` permission without listing everything. */
  async probeList(op: string, signal?: AbortSignal): Promise<void> {
    await this.call(op, 'list', async (c) => {
      for await (const page of c.listPropertiesOfSecretVersions(this.facts.secretName, { abortSignal: this.within(signal) }).byPage({ maxPageSize: 1 })) {
        void page;
        break;
      }
    });
  }

  /** Adds a new, enabled version (Key Vault's only way to change a value). */
  setValue(op: string, value: string, tags: Record<string, string>, contentType: string | undefined, signal?: AbortSignal): Promise<KeyVaultSecret> {
    return this.call(op, 'set', (c) =>
      c.setSecret(this.facts.secretName, value, { tags, enabled: true, abortSignal: this.within(signal), ...(contentType !== undefined && { contentType }) }),
    );
  }

  async disable(op: string, version: string, signal?: AbortSignal): Promise<void> {
    await this.call(op, 'update', (c) => c.updateSecretProperties(this.facts.secretName, version, { enabled: false, abortSignal: this.within(signal) }));
  }

  /** Drops `optional` tags (in order) while over Key Vault's limit; fails when the user's own tags leave no room. */
  withinTagLimit(tags: Record<string, string>, optional: string[], op: string): Record<string, string> {
    const out = { ...tags };
    for (const k of optional) if (Object.keys(out).length > MAX_TAGS) delete out[k];
    if (Object.keys(out).length > MAX_TAGS) {
      const own = Object.keys(out).filter((k) => !k.startsWith('keyrot-')).length;
      throw new TargetError(`${this.facts.where} carries ${own} tags of its own: Key Vault allows ${MAX_TAGS} per version and keyrot needs 2; remove some`, {
        target: this.facts.target,
        op,
        kind: 'invalid',
        retryable: false,
      });
    }
    return out;
  }
}
