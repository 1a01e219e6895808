import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { EmulatorServer, Fault } from '../../emulators/server.ts';
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
  /** The provider's loopback emulator, for fault injection (undefined: no emulated provider API). */
  emulator?: EmulatorServer;
  /**
   * Fault injection without an emulator (a real Engine behind a loopback front): the next requests
   * answer the fault instead of the provider. Targets with an emulator inject through it.
   */
  faults?: { failNext(fault: Fault): unknown; clearFaults(): void };
  /**
   * For a provider that never receives the key as is (GitHub: a sealed box only it can open): the
   * plaintext a request body carries, as the provider sees it, so faults can target the write of a key.
   */
  opens?(rawBody: string): string;
  /**
   * What the running consumers use now (a redeploy target's current release/deployment), when the
   * target redeploys: a write is in service only once they run it; a restore, once they are back.
   */
  running?(): Promise<string | null>;
  /**
   * `readBack: 'per-value'` targets: whether the stored value's type lets the provider's API return
   * it (Vercel's sensitive, Netlify's secret, Railway's sealed values do not).
   */
  readable?(): boolean;
  /**
   * Targets without an emulated API (local files): the provider fails on its own terms — the
   * directory holding the file vanishes — until the returned function puts it back.
   */
  breakLocally?(): () => void;
  /** Number of stored versions/entries changed, to prove a second identical write is a no-op. */
  writeCount?(): Promise<number>;
  close(): Promise<void>;
}

export interface ConformanceHarness {
  id: TargetId;
  /**
   * `requestTimeout`: the target's per-call deadline (the fault cases shorten it). `wait`: how long
   * a target that waits for a release or deploy keeps waiting (`timeout:`; the fault matrix
   * shortens it: a provider answering 500 to every poll is waited out until then).
   */
  setup(opts?: { requestTimeout?: string; wait?: string }): Promise<ConformanceFixture>;
  /** Skip the auth case for targets with no credentials (local files). */
  noAuth?: boolean;
  /** Why the fault cases (faults.test.ts) do not apply: no emulated provider API to fault. */
  noEmulator?: string;
  /** Why the whole suite cannot run here (no Docker Engine outside CI); undefined = run. */
  skip?: string;
}

/** Every harness in ./harnesses/ (one per target type). */
export async function loadHarnesses(): Promise<ConformanceHarness[]> {
  const dir = fileURLToPath(new URL('./harnesses/', import.meta.url));
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  return Promise.all(files.map(async (f) => (await import(/* @vite-ignore */ pathToFileURL(join(dir, f)).href)).harness as ConformanceHarness));
}
