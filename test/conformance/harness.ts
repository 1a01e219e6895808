import type { Target, TargetId } from '../../src/targets/types.ts';

/**
 * What each target contributes to the conformance suite: a fresh provider (a loopback emulator,
 * a temp dir, a real Docker Engine) with a configured Target, plus direct access to the provider's
 * state that bypasses the adapter.
 */
export interface ConformanceFixture {
  target: Target;
  /** Put `value` in place as the current key (directly in the provider/emulator state). */
  seed(value: string): Promise<void>;
  /**
   * What the provider holds now, bypassing the adapter: the value, or null when absent.
   * For write-only providers the emulator still knows the value (or a fingerprint label: return
   * the value the fingerprint matches among `candidates`).
   */
  peek(candidates: string[]): Promise<string | null>;
  /** The next provider call answers the provider's own rate-limit response (429 + its headers). */
  failNextWithRateLimit(): void;
  /** Make credentials invalid: the next calls answer the provider's 401. */
  breakAuth(): void;
  /** Number of stored versions/entries changed, to prove a second identical write is a no-op. */
  writeCount?(): Promise<number>;
  close(): Promise<void>;
}

export interface ConformanceHarness {
  id: TargetId;
  setup(): Promise<ConformanceFixture>;
  /** Skip the auth case for targets with no credentials (local files). */
  noAuth?: boolean;
  /** Why the whole suite cannot run here (no Docker Engine outside CI); undefined = run. */
  skip?: string;
}
