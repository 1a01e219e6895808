import type { Secret } from '../core/secret.ts';
import type { RevokeAt } from '../machine/outcome.ts';
import type { KeyIssuer as OpenAIAdminApi } from '../keys/openai-admin.ts';

/** The issuer's admin API: mint, locate, revoke, last use, usage (today: the OpenAI Admin API). */
export type AdminApi = OpenAIAdminApi;

export type FormatCheck = { ok: true; warning?: string } | { ok: false; reason: string };

export type LiveCheck = { status: 'valid'; detail: string } | { status: 'restricted'; detail: string };

/**
 * Everything specific to who issued the key: what a well-formed key looks like, how to check one
 * works, where a person revokes one, and the admin API when configured. The engine talks only to
 * this interface; another vendor's key is one more implementation in this folder.
 */
export interface KeyIssuer {
  /** For records and messages: `openai`, `generic`. */
  readonly kind: string;
  /** Where an operator revokes a key by hand, or null when keyrot cannot know. */
  readonly revokeAt: RevokeAt;
  /** The issuer's name in sentences ("OpenAI"). */
  readonly title: string;
  checkFormat(key: Secret): FormatCheck;
  /**
   * Checks the key works at the issuer without spending anything. Absent when the issuer has no
   * such check. Throws a TargetError of kind `auth` when the issuer rejects the key.
   */
  liveCheck?(key: Secret, signal?: AbortSignal): Promise<LiveCheck>;
  /** The admin API, created on first use (its token is resolved then); absent when not configured. */
  admin?: () => Promise<AdminApi>;
}
