import type { Secret } from '../core/secret.ts';
import type { AdminApi, FormatCheck, KeyIssuer } from './types.ts';

/** `kind: generic`: any secret of 8+ characters without whitespace; no live check, no admin API. */
export function genericIssuer(opts: { admin?: () => Promise<AdminApi> } = {}): KeyIssuer {
  return {
    kind: 'generic',
    title: 'the issuer',
    revokeAt: null,
    checkFormat(key: Secret): FormatCheck {
      const v = key.reveal();
      if (/\s/.test(v)) return { ok: false, reason: 'the key contains whitespace: paste only the key' };
      return v.length >= 8 ? { ok: true } : { ok: false, reason: 'the key is shorter than 8 characters' };
    },
    admin: opts.admin,
  };
}
