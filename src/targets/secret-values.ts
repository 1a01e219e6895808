import { matchesVarName } from './common.ts';
import { plural } from '../render/plural.ts';
import type { DiscoverResult, DiscoveredPlace } from './types.ts';

/**
 * What one secret of a secret store (AWS Secrets Manager, Google Secret Manager, Azure Key Vault)
 * offers `keyrot discover`: when its text is a JSON object ("key/value" secrets such as
 * `{"OPENAI_API_KEY": "…", "DB_URL": "…"}`), each top-level string field named like a variable;
 * otherwise the whole text, when the secret itself is named like a variable (`named`).
 */
export function valuesOfInterest(text: string, named: boolean, varNames: string[]): Array<{ field?: string; value: string }> {
  const fields = jsonStringFields(text).filter(([field]) => matchesVarName(field, varNames));
  if (fields.length) return fields.map(([field, value]) => ({ field, value }));
  return named && text ? [{ value: text }] : [];
}

/** The non-empty string fields of a JSON object; none for any other text. */
function jsonStringFields(text: string): Array<[string, string]> {
  if (!text.trimStart().startsWith('{')) return [];
  try {
    const parsed: unknown = JSON.parse(text);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return [];
    return Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== '');
  } catch {
    return [];
  }
}

/**
 * Secrets whose name is not one of the variables are read only to look for a JSON field named like
 * one, and only this many per region, project or vault: each read is billed by the provider
 * (AWS per 10,000 GetSecretValue calls, Google per 10,000 access operations, Azure per 10,000
 * transactions) and decrypts with the secret's key. Secrets named like a variable are always read.
 */
export const MAX_OTHER_READS = 100;

/** The bookkeeping of one listing (a region, project or vault): what was listed, read, left unread, found. */
export class StoreSearch {
  listed = 0;
  read = 0;
  unread = 0;
  truncated = false;
  readonly places: DiscoveredPlace[] = [];
  private otherReads = 0;
  /** The most entries the listing's page bound lets through (for the report). */
  private readonly maxListed: number;

  constructor(maxListed: number) {
    this.maxListed = maxListed;
  }

  /** Counts one listed secret and says whether to read it: always when `named`, else within MAX_OTHER_READS. */
  take(named: boolean): boolean {
    this.listed++;
    if (!named && this.otherReads >= MAX_OTHER_READS) {
      this.unread++;
      return false;
    }
    if (!named) this.otherReads++;
    this.read++;
    return true;
  }

  /** "110 secrets in us-east-1, 103 read (…bounds)". */
  scope(where: string): string {
    const bounds = [
      this.truncated ? `first ${this.maxListed} listed only` : '',
      this.unread ? `${this.unread} not named like the variable left unread (at most ${MAX_OTHER_READS} are read for JSON fields)` : '',
    ].filter(Boolean);
    return `${plural(this.listed, 'secret')} ${where}, ${this.read} read${bounds.length ? ` (${bounds.join('; ')})` : ''}`;
  }
}

/** One DiscoverResult from the searches of each region, project or vault. */
export function resultOf(searches: Array<{ where: string; search: StoreSearch }>): DiscoverResult {
  return {
    scope: searches.map((s) => s.search.scope(s.where)).join('; '),
    count: searches.reduce((n, s) => n + s.search.listed, 0),
    places: searches.flatMap((s) => s.search.places),
  };
}
