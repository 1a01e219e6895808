import { z } from 'zod';
import { parseDuration } from '../inventory/duration.ts';
import type { Secret } from '../core/secret.ts';
import type { CredentialRef } from '../inventory/credentials.ts';
import type { Clock } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';

/** The closed list of target types: one kebab-case id names the folder, the registry key and `type:`. */
export const TARGET_IDS = [
  'dotenv',
  'file',
  'docker-secret',
  'kubernetes',
  'aws-secrets-manager',
  'gcp-secret-manager',
  'azure-key-vault',
  'heroku',
  'railway',
  'vercel',
  'netlify',
] as const;
export type TargetId = (typeof TARGET_IDS)[number];

/** How a target proves it holds the new key. */
export type VerifyMethod = 'read-back' | 'metadata' | 'redeploy';

export interface Capabilities {
  /** The stored value can be read back and compared. False for write-only stores (Docker secrets, Vercel sensitive...). */
  readBack: boolean;
  /** Running consumers only see a new value after a restart/redeploy that keyrot performs and waits for. */
  redeploy: boolean;
  /** The store keeps versions: restore is exact without re-sending the old value. */
  versioned: boolean;
  /** Something to clean up after revocation (old versions disabled, old Docker secret removed). */
  finalize: boolean;
}

/** Fields every target takes besides its own (PRODUCT.md: name, var, endpoint, token). */
export interface CommonTargetConfig {
  name?: string;
  var?: string;
  endpoint?: string;
  token?: CredentialRef;
  /** The deadline of each provider API call, connect to last byte (`RequestTimeout`; default 30s). */
  requestTimeout?: string | number;
}

/** What `read()` found. `unreadable` is a declared capability, never a silent failure. */
export type ReadResult =
  | { kind: 'value'; value: Secret }
  | { kind: 'absent' }
  | { kind: 'unreadable'; reason: string };

export type PreflightStatus = 'ready' | 'unknown' | 'error';

export interface PreflightResult {
  status: PreflightStatus;
  /** Why not ready, in product words: what is missing and what to do. */
  reason?: string;
  /** The current value (kept in memory only, for restore). */
  current: ReadResult;
  /** The variable/key does not exist yet and will be created. */
  willCreate?: boolean;
  /** Extra lines for the plan (e.g. "restarts deployment/api after write"). */
  notes?: string[];
  /** Risks that do not block the rotation, with what to do (a key file others can read). Shown by plan and rotate. */
  warnings?: string[];
}

/** Identifies one rotation's operation on a target: the rotation id is the idempotency token. */
export interface OpContext {
  rotationId: string;
  /** Fingerprint of the value being written. */
  fingerprint: string;
  signal?: AbortSignal;
}

/**
 * What a write left behind, in the journal (never a value): a version id, a new secret name...
 * Passed back to verify/restore/finalize, including after a crash (resume reads it from the journal).
 */
export type Receipt = Record<string, string | number | boolean | null | string[]>;

export interface VerifyResult {
  method: VerifyMethod;
  /** e.g. "read back matches", "version 7 tagged with this rotation", "deployment READY". */
  detail: string;
}

/** Everything an adapter needs from the outside world; no module-level state. */
export interface TargetContext {
  /** Directory of targets.yaml: relative paths are resolved against it. */
  baseDir: string;
  /** The variable name this target writes (target `var` or `key.name`). */
  varName: string;
  /** Environment variables (injectable for tests). */
  env: NodeJS.ProcessEnv;
  clock: Clock;
  logger: Logger;
  /** Resolves a `token: env:VAR | file:PATH` reference or the ecosystem default lazily. */
  resolve(ref: CredentialRef): Promise<Secret>;
}

/**
 * One configured target. Small and honest: everything the engine does goes through these methods.
 * Every method throws TargetError (already redacted, in product words) on failure.
 */
export interface Target {
  readonly id: TargetId;
  readonly name: string;
  /** Human location: "backend/.env", "default/openai-api-key[api-key]", "heroku app my-app". */
  readonly location: string;
  readonly capabilities: Capabilities;
  /** Targets with the same lock key are written one at a time (two dotenv targets on one file). */
  readonly lockKey?: string;

  /** Read-only checks: credentials, permission, existence; reads the current value. Never writes. */
  preflight(signal?: AbortSignal): Promise<PreflightResult>;
  /**
   * Before preflight, under the environment's lock: removes what an interrupted keyrot run left
   * behind (local files: temp files holding a copy of the key). Returns what it removed.
   */
  removeStrays?(): Promise<string[]>;
  read(signal?: AbortSignal): Promise<ReadResult>;
  /** Idempotent: writing the value a target already holds (same rotation) changes nothing. */
  write(value: Secret, op: OpContext): Promise<Receipt>;
  /** Proves the target holds `value` (read back, or metadata for write-only stores). */
  verify(value: Secret, op: OpContext, receipt: Receipt | undefined): Promise<VerifyResult>;
  /** Restart/redeploy consumers and wait until they run the written value. Only when capabilities.redeploy. */
  redeploy?(op: OpContext, receipt: Receipt | undefined): Promise<VerifyResult>;
  /**
   * Undo this rotation's write: back to `previous` (the value read in preflight, or the
   * environment's old key for write-only targets; null when the target had no value).
   * Versioned stores use their versions. Must be idempotent.
   */
  restore(previous: Secret | null, op: OpContext, receipt: Receipt | undefined): Promise<void>;
  /** After the old key is revoked: disable old versions, remove the old Docker secret. Idempotent. */
  finalize?(op: OpContext, receipt: Receipt | undefined): Promise<void>;
  /** Release clients, sockets, watchers. */
  close?(): Promise<void>;
}

/**
 * The light half of a target, imported at start-up: its config schema and how to describe it.
 * `create` loads the implementation (and its SDK) only when an inventory uses the type.
 */
export interface TargetDefinition<C extends object = object> {
  readonly id: TargetId;
  /** A zod object of the type's own fields (common fields are added by the inventory). */
  readonly schema: z.ZodType<C>;
  readonly capabilities: Capabilities;
  /** Default concurrency cap for writes to this provider. */
  readonly concurrency: number;
  /** The location shown to users and used in the default name `type:location`. */
  describe(config: C): string;
  create(config: C & CommonTargetConfig, ctx: TargetContext & { name: string }): Promise<Target>;
}

/**
 * `timeout:` of the targets that wait for a restart or a deploy: `90s`, `10m`, `1h30m`, or a
 * number of seconds. Kept as written; `waitTimeoutMs` turns it into milliseconds.
 */
export const WaitTimeout = z.union([
  z.string().regex(/^(\d+(\.\d+)?|(\d+(\.\d+)?(ms|s|m|h|d))+)$/, 'a duration such as 90s, 10m or 1h'),
  z.number().nonnegative(),
]);

/**
 * `requestTimeout:` of any target that calls a provider API: how long ONE call may take, from
 * connecting to the last byte of the answer, before keyrot gives up on it (a retryable timeout).
 * Not the wait for a deploy (`timeout:`).
 */
export const RequestTimeout = WaitTimeout.refine((v) => (parseDuration(v) ?? 0) > 0, 'a duration above zero such as 30s');

/** A target's `timeout:` in milliseconds, or its default. */
export function waitTimeoutMs(timeout: string | number | undefined, defaultMs: number): number {
  return timeout === undefined ? defaultMs : (parseDuration(timeout) ?? defaultMs);
}

/** Helper so each target folder declares its definition with types inferred from its schema. */
export function defineTarget<S extends z.ZodObject>(def: {
  id: TargetId;
  schema: S;
  capabilities: Capabilities;
  concurrency?: number;
  describe(config: z.infer<S>): string;
  create(config: z.infer<S> & CommonTargetConfig, ctx: TargetContext & { name: string }): Promise<Target>;
}): TargetDefinition<z.infer<S>> {
  return { concurrency: 4, ...def } as unknown as TargetDefinition<z.infer<S>>;
}
