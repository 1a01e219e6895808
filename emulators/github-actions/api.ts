import type { EmuRequest, EmuResponse } from '../server.ts';
import type { Access, Org, Permission, Repo, TokenInfo } from './state.ts';

/**
 * What the GitHub emulator's route modules get from it: authenticated routes (token, rate limit
 * and its headers handled), repository and organisation look-ups that answer GitHub's 404 for
 * what the token cannot see, and the permission check that answers GitHub's 403.
 */
export type Handler = (req: EmuRequest, tok: TokenInfo) => EmuResponse | Promise<EmuResponse>;

export interface EmuApi {
  /** A route behind GitHub's authentication and rate limit (the path prefix is added). */
  on(method: string, pattern: string, handler: Handler): void;
  /** The repository of `:owner/:repo`, or GitHub's 404 when it does not exist or the token cannot see it. */
  repo(req: EmuRequest, tok: TokenInfo): Repo | EmuResponse;
  /** The organisation of `:org`, or GitHub's 404. */
  org(req: EmuRequest, tok: TokenInfo): Org | EmuResponse;
  /** GitHub's 403 when the token lacks `perm` at `access`; undefined when it has it. */
  need(tok: TokenInfo, perm: Permission, access: Access, docs: string): EmuResponse | undefined;
  repoById(id: number): Repo | undefined;
  orgNamed(login: string): Org | undefined;
  now(): number;
  nextId(): number;
  /** The base URL clients see (GHES: with /api/v3), for the URLs in answers. */
  baseUrl(): string;
  /** A secret was created, changed or deleted through the API. */
  countWrite(): void;
  runs: { durationMs: number; details: boolean; takeFailure(): boolean };
}

export function isResponse(x: unknown): x is EmuResponse {
  return typeof x === 'object' && x !== null && 'status' in x && typeof (x as { status: unknown }).status === 'number';
}
