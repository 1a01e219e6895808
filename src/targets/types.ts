import { z } from 'zod';
import { parseDuration } from '../inventory/duration.ts';
import type { Secret } from '../core/secret.ts';
import type { CredentialRef } from '../inventory/credentials.ts';
import type { EndpointForm } from '../inventory/endpoints.ts';
/** For a definition's own URL fields (vault's `address:`), which may import only zod and this module. */
export { EndpointUrlField } from '../inventory/endpoints.ts';
import type { Clock } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Lane, PacingLimits } from '../runtime/pacer.ts';
import { targetType, type TargetType } from './index.ts';

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
  'aws-ssm-parameter',
  'vault',
  'docker-compose',
  'supabase',
  'render',
  'fly',
  'github-actions',
  'cloudflare-workers',
] as const;
export type TargetId = (typeof TARGET_IDS)[number];

/** How a target proves it holds the new key. */
export type VerifyMethod = 'read-back' | 'metadata' | 'redeploy';

/**
 * What a target type can do, declared once per definition and never changed at run time.
 * Optional behaviour (a redeploy after the write, a clean-up after revocation) is not a flag here:
 * it is the presence of the `redeploy` / `finalize` method on the created target, which `create`
 * decides from the config alone (so it is fixed before preflight too).
 */
export interface Capabilities {
  /**
   * Can the stored value be read back and compared? `per-value`: the provider decides per
   * variable (Vercel "sensitive", Railway sealed): preflight's read says `unreadable` for those,
   * and they are verified by metadata and their redeploy instead.
   */
  readBack: 'always' | 'never' | 'per-value';
  /** The store keeps versions: restore is exact without re-sending the old value. */
  versioned: boolean;
}

/** Fields every target takes besides its own: name, var, endpoint, token. */
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

/**
 * The preflight contract: two questions, answered separately.
 * - "Can keyrot write here?" — `ready`, or `blocked` with the reason in product words (what is
 *   missing, what to do). Only `ready` lets a rotation write anything, anywhere.
 * - "What does it hold now?" — `current`, read in the same pass (kept in memory only).
 * A transient failure (429, 5xx, timeout, reset) is not an answer: the adapter throws a retryable
 * TargetError and the engine retries it, bounded, like a write; when the retries run out the
 * target is blocked.
 */
export type PreflightResult =
  | {
      status: 'ready';
      current: ReadResult;
      /** The variable/key does not exist yet and will be created. */
      willCreate?: boolean;
      /** Extra lines for the plan (e.g. "restarts deployment/api after write"). */
      notes?: string[];
      /** Risks that do not block the rotation, with what to do (a key file others can read). Shown by plan and rotate. */
      warnings?: string[];
      reason?: undefined;
    }
  | { status: 'blocked'; reason: string; current: ReadResult; notes?: string[]; warnings?: string[]; willCreate?: undefined };

/** Identifies one rotation's operation on a target: the rotation id is the idempotency token. */
export interface OpContext {
  rotationId: string;
  /** Fingerprint of the key this rotation writes (the new key), in every operation, restores included. */
  fingerprint: string;
  signal?: AbortSignal;
}

/** Why a redeploy runs: to put the written key in service, or to put the restored one back. */
export type RedeployPurpose = 'write' | 'restore';

export interface VerifyResult {
  method: VerifyMethod;
  /** e.g. "read back matches", "version 7 tagged with this rotation", "deployment READY". */
  detail: string;
}

/**
 * A target type's receipt: what a write leaves behind for verify/restore/finalize (a version id,
 * a new secret's name; never a value). The engine journals it with its version, hands back only
 * what the schema accepts, and upgrades (or refuses, with a clear message) receipts an older
 * keyrot wrote.
 */
export interface ReceiptSpec<R> {
  version: number;
  schema: z.ZodType<R>;
  /** Turns a receipt of an older `version` into the current shape; undefined = cannot. */
  upgrade?(old: unknown, fromVersion: number): R | undefined;
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
  /**
   * The pacing lane of a rate-limit domain (runtime/pacer.ts), by the key the target also gives as
   * `rateLimitKey`: its HTTP client waits on it before each request and tells it every answer.
   * Absent outside the engine (tests of an adapter alone): then nothing is paced.
   */
  lane?(key: string): Lane;
}

/**
 * One configured target. Small and honest: everything the engine does goes through these methods.
 * Every method throws TargetError (already redacted, in product words) on failure; a retryable
 * one is retried by the engine, bounded.
 */
export interface Target<R = unknown> {
  readonly id: TargetId;
  readonly name: string;
  /** Human location: "backend/.env", "default/openai-api-key[api-key]", "heroku app my-app". */
  readonly location: string;
  /** Targets with the same lock key are written one at a time (two dotenv targets on one file). */
  readonly lockKey?: string;
  /**
   * The provider's rate-limit domain this target spends (the account or token behind it, e.g.
   * `heroku:<endpoint>:<token ref>`): targets with the same key share one pacing lane. Default: the type id.
   */
  readonly rateLimitKey?: string;

  /** Read-only: can keyrot write here, and what does it hold now. Never writes. */
  preflight(signal?: AbortSignal): Promise<PreflightResult>;
  /**
   * Before preflight, under the environment's lock: removes what an interrupted keyrot run left
   * behind (local files: temp files holding a copy of the key). Returns what it removed.
   */
  removeStrays?(): Promise<string[]>;
  read(signal?: AbortSignal): Promise<ReadResult>;
  /** Idempotent: writing the value a target already holds (same rotation) changes nothing. */
  write(value: Secret, op: OpContext): Promise<R>;
  /** Proves the target holds `value` (read back, or metadata for write-only stores). */
  verify(value: Secret, op: OpContext, receipt: R | undefined): Promise<VerifyResult>;
  /**
   * Present when running consumers only see a stored value after a restart/redeploy: restarts
   * them and waits until they run the value stored now — the new key after a write (`purpose`
   * `write`, the default), no longer the new key after a restore (`restore`): a rollback is not
   * done while a deployment may still run the new key.
   */
  redeploy?(op: OpContext, receipt: R | undefined, purpose?: RedeployPurpose): Promise<VerifyResult>;
  /**
   * Undo this rotation's write: back to `previous` (the value read in preflight, or the
   * environment's old key for write-only targets; null when the target had no value).
   * Versioned stores use their versions. Must be idempotent, and work without a receipt (a crash
   * can come before the journal recorded it). The engine redeploys afterwards when `redeploy` exists.
   */
  restore(previous: Secret | null, op: OpContext, receipt: R | undefined): Promise<void>;
  /** Present when something is left to clean up after revocation (old versions, old Docker secret). Idempotent. */
  finalize?(op: OpContext, receipt: R | undefined): Promise<void>;
  /** Release clients, sockets, watchers. */
  close?(): Promise<void>;
}

/** Where `keyrot discover` searches, and with what: given by the command, never guessed. */
export interface DiscoverContext extends TargetContext {
  /** The variable names to look for (key.name and every target's `var:`). */
  varNames: string[];
  /** Credentials and endpoints as the inventory's targets of this type give them (may be empty: the ecosystem defaults then). */
  configs: Array<CommonTargetConfig & Record<string, unknown>>;
  signal?: AbortSignal;
}

/** One place a provider holds a variable of interest: where, the ready `targets.yaml` entry, and what it holds. */
export interface DiscoveredPlace {
  /** Human location, as `describe` would give it. */
  location: string;
  /** The `targets.yaml` entry that would rotate it (`type` included; no credential values). */
  target: Record<string, unknown>;
  /**
   * Set when no target type can rotate the place, with why (a field inside a JSON secret of a
   * store whose target writes whole values): `target` then names the secret that holds it, and is
   * not an entry to paste.
   */
  notRotatable?: string;
  /** What it holds: compared by fingerprint in memory, never printed. `unreadable` for write-only values. */
  holds: ReadResult;
  /**
   * For a write-only value whose provider lists a digest of it (Fly, Supabase): does it hold
   * `value`? Compared in memory against that digest; the digest itself is never returned.
   */
  matches?(value: Secret): boolean;
}

export interface DiscoverResult {
  /** What was searched ("12 Heroku apps of the token's account"), for the report. */
  scope: string;
  /** How many objects (apps, projects, services, secrets, files) were searched, as `scope` says: not the places found. */
  count: number;
  places: DiscoveredPlace[];
}

/**
 * A target type's definition, loaded (src/targets/index.ts) only when a command uses the type: its
 * config schema, how to describe it, and `create`, which loads the implementation (and its SDK).
 * It carries the registry's facts of the type too (credentialEnv, localFile, discover).
 */
export interface TargetDefinition<C extends object = object, R = unknown> extends Omit<TargetType<C>, 'load'> {
  readonly id: TargetId;
  /** A zod object of the type's own fields (common fields are added by the inventory). */
  readonly schema: z.ZodType<C>;
  readonly capabilities: Capabilities;
  readonly receipt: ReceiptSpec<R>;
  /** How many targets of this provider keyrot works on at once at first (the pacing window's start). */
  readonly concurrency: number;
  /** How keyrot paces the provider (runtime/pacer.ts): the window's start and ceiling, published rates, budget refill (see `pacingOf`). */
  readonly pacing?: PacingLimits;
  /** The location shown to users and used in the default name `type:location`. */
  describe(config: C): string;
  create(config: C & CommonTargetConfig, ctx: TargetContext & { name: string }): Promise<Target<R>>;
  /** What `endpoint:` means for the type, and the provider's public one (`plan` shows any other). */
  readonly endpoint?: TargetEndpoint;
}

/**
 * `form`: how `endpoint:` is written (default an https:// URL; loopback may be http://), checked
 * when the inventory loads. `default`: the provider's public endpoint; a target configured with
 * another one is named by `plan`, since that host receives the target's credentials.
 */
export interface TargetEndpoint {
  form?: EndpointForm;
  default?: string;
  /** Variables the provider's client takes its endpoint from when `endpoint:` is not set (checked by the same rule). */
  env?: readonly string[];
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

/** The receipt of a target that needs none (its restore works from the previous value alone). */
export const NO_RECEIPT: ReceiptSpec<Record<string, never>> = { version: 1, schema: z.object({}).strict() as z.ZodType<Record<string, never>> };

/**
 * Helper so each target folder declares its definition with types inferred from its schemas. The
 * facts the registry holds for the type (credentialEnv, localFile, discover: src/targets/index.ts)
 * are taken from there, never repeated.
 */
export function defineTarget<S extends z.ZodObject, R>(
  id: TargetId,
  def: {
    schema: S;
    capabilities: Capabilities;
    receipt: ReceiptSpec<R>;
    concurrency?: number;
    /** The provider's published limits (window ceiling, request rates, budget refill); the window starts at `concurrency`. */
    pacing?: Partial<Omit<PacingLimits, 'initial'>>;
    describe(config: z.infer<S>): string;
    create(config: z.infer<S> & CommonTargetConfig, ctx: TargetContext & { name: string }): Promise<Target<R>>;
    endpoint?: TargetEndpoint;
  },
): TargetDefinition<z.infer<S>, R> {
  const type = targetType(id);
  if (!type) throw new Error(`target type ${id} is not in the registry (src/targets/index.ts)`);
  const concurrency = def.concurrency ?? 4;
  const pacing: PacingLimits = { max: DEFAULT_MAX_CONCURRENCY, ...def.pacing, initial: concurrency };
  const { load: _load, ...facts } = type;
  return { id, ...facts, ...def, concurrency, pacing } as unknown as TargetDefinition<z.infer<S>, R>;
}

/** The window's ceiling of a type that publishes none: a courtesy cap, far below what a 2-core machine could send. */
export const DEFAULT_MAX_CONCURRENCY = 16;

/** A definition's pacing, defaulted for definitions written without `defineTarget`. */
export function pacingOf(def: Pick<TargetDefinition<any>, 'concurrency' | 'pacing'>): PacingLimits {
  return def.pacing ?? { initial: def.concurrency, max: Math.max(def.concurrency, DEFAULT_MAX_CONCURRENCY) };
}
