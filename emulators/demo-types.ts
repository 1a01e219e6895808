/**
 * How a provider's emulator joins `keyrot demo`: start the emulator, seed it with the current
 * (old) key, and hand back the targets.yaml entries and the credentials they reference.
 */
export interface DemoProvider {
  /** targets.yaml entries (plain objects) pointing at the emulator through `endpoint:`. */
  targets: Array<Record<string, unknown>>;
  /** Environment variables the entries' credential references need (throw-away emulator tokens). */
  env: Record<string, string>;
  /** One line for the narration: what was started where. */
  description: string;
  /**
   * Places seeded with the old key that the demo inventory leaves out (a forgotten app): `keyrot
   * discover` finds them, then the demo adds these entries, as a user would, before rotating.
   */
  forgotten?: Array<{ location: string; target: Record<string, unknown> }>;
  stop(): Promise<void>;
}

export interface DemoSetupOptions {
  /** The key the targets hold before the demo rotation. */
  oldKey: string;
  /** The demo's temp directory. */
  workDir: string;
  /** The variable name (`key.name`). */
  varName: string;
  /**
   * Asked before a provider uses a real service of the user's rather than an emulator (Docker
   * Swarm), with what it would create there: false (or absent) means skip it.
   */
  consent?: (what: string) => Promise<boolean>;
}

/** Returns the provider, or `{ skip }` with the reason when it cannot run here (no Docker Engine). */
export type DemoSetup = (opts: DemoSetupOptions) => Promise<DemoProvider | { skip: string }>;
